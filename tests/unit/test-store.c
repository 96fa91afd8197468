/* SPDX-License-Identifier: MIT */
/* fetch/store: OUTPUT.part is created, sized, written in place, read back
 * and hashed, and becomes OUTPUT only at store_finalize; errors (an
 * unwritable directory, a file size limit) come back as -errno. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fetch/store.h"
#include "harness.h"
#include "proto/hash.h"
#include "runner.h"

static uint8_t *pattern(size_t len, unsigned seed)
{
        uint8_t *b = malloc(len);
        ck_assert_ptr_nonnull(b);
        uint32_t x = seed * 2654435761u + 1;
        for (size_t i = 0; i < len; i++) {
                x = x * 1103515245u + 12345u;
                b[i] = (uint8_t)(x >> 16);
        }
        return b;
}

/* The whole-file hash through the sliced verifier, in small slices so the
 * step-by-step path is what runs: 0 or -errno. */
static int whole_hash(struct store *s, uint8_t out[P2S_HASH_SIZE])
{
        struct store_verify *v = store_verify_new(s);
        int r;
        ck_assert_ptr_nonnull(v);
        while ((r = store_verify_step(s, v, 4093, out)) == 0)
                ;
        store_verify_free(v);
        return r < 0 ? r : 0;
}

START_TEST(part_then_output)
{
        const char *out = h_path("copy.bin");
        struct store s;
        ck_assert_int_eq(store_check(out), 0);
        ck_assert_int_eq(store_open(&s, out, false), 0);
        ck_assert_str_eq(s.path, out);
        ck_assert_str_eq(s.part_path, h_path("copy.bin.part"));
        ck_assert(h_exists(s.part_path));
        ck_assert(!h_exists(out));

        /* chunks arrive in any order and land in place */
        const size_t chunk = 64 * 1024, n = 5, size = n * chunk - 123;
        uint8_t *data = pattern(size, 1);
        ck_assert_int_eq(store_prepare(&s, size), 0);
        struct stat st;
        ck_assert_int_eq(stat(s.part_path, &st), 0);
        ck_assert_int_eq(st.st_size, (off_t)size);
        static const unsigned order[] = { 3, 0, 4, 1, 2 };
        for (size_t k = 0; k < n; k++) {
                size_t i = order[k], len = i == n - 1 ? size - i * chunk : chunk;
                ck_assert_int_eq(store_write(&s, i * chunk, data + i * chunk, len), 0);
        }
        /* read back any range, as for an upload */
        uint8_t back[1000];
        ck_assert_int_eq(store_read(&s, 2 * chunk - 500, back, sizeof(back)), 0);
        ck_assert_mem_eq(back, data + 2 * chunk - 500, sizeof(back));
        /* past the end is an error, not a short read */
        ck_assert_int_eq(store_read(&s, size - 10, back, 20), -EIO);

        uint8_t got[P2S_HASH_SIZE], want[P2S_HASH_SIZE];
        ck_assert_int_eq(whole_hash(&s, got), 0);
        hash_sha256(data, size, want);
        ck_assert_mem_eq(got, want, P2S_HASH_SIZE);

        ck_assert_int_eq(store_finalize(&s), 0);
        ck_assert(!h_exists(h_path("copy.bin.part")));
        size_t len;
        char *copy = h_slurp(out, &len);
        ck_assert_uint_eq(len, size);
        ck_assert_mem_eq(copy, data, size);
        free(copy);
        store_close(&s);
        ck_assert_int_eq(s.fd, -1);
        ck_assert_ptr_null(s.path);
        free(data);
}
END_TEST

/* A known SHA-256 (FIPS 180-2 "abc"), and the empty file. */
START_TEST(hash_known_values)
{
        struct store s;
        ck_assert_int_eq(store_open(&s, h_path("abc"), false), 0);
        ck_assert_int_eq(store_prepare(&s, 3), 0);
        ck_assert_int_eq(store_write(&s, 0, "abc", 3), 0);
        uint8_t h[P2S_HASH_SIZE];
        char hex[2 * P2S_HASH_SIZE + 1];
        ck_assert_int_eq(whole_hash(&s, h), 0);
        hash_hex(h, hex);
        ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        store_close(&s);
        ck_assert_int_eq(store_open(&s, h_path("empty"), false), 0);
        ck_assert_int_eq(store_prepare(&s, 0), 0);
        ck_assert_int_eq(whole_hash(&s, h), 0);
        hash_hex(h, hex);
        ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        ck_assert_int_eq(store_finalize(&s), 0);
        ck_assert(h_exists(h_path("empty")));
        store_close(&s);
}
END_TEST

/* A stale OUTPUT.part from an earlier run is truncated, not reused. */
START_TEST(open_truncates_a_stale_part)
{
        h_write_text(h_path("old.bin.part"), "stale bytes from before");
        struct store s;
        ck_assert_int_eq(store_open(&s, h_path("old.bin"), false), 0);
        struct stat st;
        ck_assert_int_eq(fstat(s.fd, &st), 0);
        ck_assert_int_eq(st.st_size, 0);
        store_close(&s);
        /* closing twice is harmless */
        store_close(&s);
}
END_TEST

/* keep: an earlier run's OUTPUT.part is opened as it is, and sizing it
 * leaves its bytes; store_sync reports success on a real file. */
START_TEST(open_keeps_a_part_to_resume)
{
        h_write_text(h_path("old.bin.part"), "bytes from before");
        struct store s;
        ck_assert_int_eq(store_open(&s, h_path("old.bin"), true), 0);
        ck_assert_int_eq(store_prepare(&s, 4096), 0);
        char b[17];
        ck_assert_int_eq(store_read(&s, 0, b, sizeof(b)), 0);
        ck_assert_mem_eq(b, "bytes from before", sizeof(b));
        ck_assert_int_eq(store_sync(&s), 0);
        store_close(&s);
        ck_assert_int_eq(store_sync(&s), -EBADF);
        /* and created when missing */
        ck_assert_int_eq(store_open(&s, h_path("new.bin"), true), 0);
        ck_assert(h_exists(h_path("new.bin.part")));
        store_close(&s);
}
END_TEST

START_TEST(relative_output)
{
        /* the harness runs each test in its own directory */
        ck_assert_int_eq(store_check("rel.bin"), 0);
        struct store s;
        ck_assert_int_eq(store_open(&s, "rel.bin", false), 0);
        ck_assert_str_eq(s.part_path, "rel.bin.part");
        ck_assert(h_exists(h_path("rel.bin.part")));
        store_close(&s);
}
END_TEST

START_TEST(missing_directory)
{
        const char *out = h_path("nodir/copy.bin");
        ck_assert_int_eq(store_check(out), -ENOENT);
        struct store s;
        ck_assert_int_eq(store_open(&s, out, false), -ENOENT);
        ck_assert_int_eq(s.fd, -1);
        ck_assert_ptr_null(s.path);
        ck_assert_ptr_null(s.part_path);
}
END_TEST

START_TEST(unwritable_directory)
{
        if (geteuid() == 0) {
                /* root writes anywhere that is not read-only */
                fprintf(stderr, "unwritable_directory: skipped as root\n");
                return;
        }
        ck_assert_int_eq(mkdir(h_path("ro"), 0555), 0);
        const char *out = h_path("ro/copy.bin");
        ck_assert_int_eq(store_check(out), -EACCES);
        struct store s;
        ck_assert_int_eq(store_open(&s, out, false), -EACCES);
        ck_assert(!h_exists(h_path("ro/copy.bin.part")));
        /* store_check creates nothing even where it may */
        ck_assert_int_eq(chmod(h_path("ro"), 0755), 0);
        ck_assert_int_eq(store_check(out), 0);
        ck_assert(!h_exists(h_path("ro/copy.bin.part")));
}
END_TEST

/* A file larger than the process may write (RLIMIT_FSIZE) stands in for a
 * full disk: store_prepare reports it up front, before any chunk. */
START_TEST(too_large_for_the_limit)
{
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = { .rlim_cur = 1 << 20, .rlim_max = 1 << 20 };
        /* lowering both is always allowed; check forks each test, so it ends with it */
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
        struct store s;
        ck_assert_int_eq(store_open(&s, h_path("big.bin"), false), 0);
        ck_assert_int_eq(store_prepare(&s, 2 << 20), -EFBIG);
        /* and a write past the limit, had prepare been skipped */
        uint8_t b[4096] = { 1 };
        ck_assert_int_eq(store_write(&s, (1 << 20) - 100, b, sizeof(b)), -EFBIG);
        /* within the limit all is well */
        ck_assert_int_eq(store_prepare(&s, 512 << 10), 0);
        ck_assert_int_eq(store_write(&s, 0, b, sizeof(b)), 0);
        store_close(&s);
}
END_TEST

static Suite *store_suite(void)
{
        Suite *s = suite_create("store");
        TCase *tc = h_tcase("files", 30);
        tcase_add_test(tc, part_then_output);
        tcase_add_test(tc, hash_known_values);
        tcase_add_test(tc, open_truncates_a_stale_part);
        tcase_add_test(tc, open_keeps_a_part_to_resume);
        tcase_add_test(tc, relative_output);
        suite_add_tcase(s, tc);
        tc = h_tcase("errors", 30);
        tcase_add_test(tc, missing_directory);
        tcase_add_test(tc, unwritable_directory);
        tcase_add_test(tc, too_large_for_the_limit);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(store_suite);
