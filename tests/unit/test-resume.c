/* SPDX-License-Identifier: MIT */
/* fetch/resume: the state file round-trips; a truncated, damaged or
 * inconsistent one is refused (the fetch then starts over); a failed save
 * keeps the previous state. That the state understates (bits set only for
 * synced chunks) is the caller's rule, tested end to end in it-resume. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "fetch/resume.h"
#include "harness.h"
#include "runner.h"

static void sample(struct resume_state *st, uint32_t count)
{
        *st = (struct resume_state){ .chunk_size = 1024, .chunk_count = count,
                                     .file_size = (uint64_t)count * 1024 - 17 };
        for (int i = 0; i < P2S_HASH_SIZE; i++)
                st->file_hash[i] = (uint8_t)(i * 7 + 1);
        ck_assert_int_eq(bitmap_init(&st->done, count), 0);
        for (uint32_t i = 0; i < count; i += 3)
                bitmap_set(&st->done, i);
        bitmap_set(&st->done, count - 1);
}

START_TEST(round_trip)
{
        char *p = resume_path(h_path("copy.bin"));
        ck_assert_str_eq(p, h_path("copy.bin.part.p2s"));
        /* counts that fill the last byte and that do not */
        static const uint32_t counts[] = { 1, 8, 9, 1000, 70001 };
        for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
                struct resume_state a, b;
                sample(&a, counts[k]);
                ck_assert_int_eq(resume_save(p, &a, true), 0);
                ck_assert(!h_exists(h_path("copy.bin.part.p2s.tmp")));
                ck_assert_int_eq(resume_load(p, &b), 0);
                ck_assert_uint_eq(b.file_size, a.file_size);
                ck_assert_uint_eq(b.chunk_size, a.chunk_size);
                ck_assert_uint_eq(b.chunk_count, a.chunk_count);
                ck_assert_mem_eq(b.file_hash, a.file_hash, P2S_HASH_SIZE);
                ck_assert_uint_eq(bitmap_count(&b.done), bitmap_count(&a.done));
                for (uint32_t i = 0; i < a.chunk_count; i++)
                        ck_assert(bitmap_test(&a.done, i) == bitmap_test(&b.done, i));
                resume_fini(&a);
                resume_fini(&b);
        }
        free(p);
}
END_TEST

START_TEST(missing_is_enoent)
{
        struct resume_state st;
        ck_assert_int_eq(resume_load(h_path("none.part.p2s"), &st), -ENOENT);
        resume_fini(&st);
}
END_TEST

/* Every truncation, and every single flipped bit, is refused. */
START_TEST(damage_refused)
{
        const char *p = h_path("s.p2s");
        struct resume_state a, b;
        sample(&a, 21);
        ck_assert_int_eq(resume_save(p, &a, true), 0);
        size_t len;
        char *good = h_slurp(p, &len);
        ck_assert_ptr_nonnull(good);
        for (size_t n = 0; n < len; n++) {
                ck_assert_int_eq(truncate(p, (off_t)n), 0);
                ck_assert_msg(resume_load(p, &b) == -EBADMSG, "truncated to %zu accepted", n);
                resume_fini(&b);
        }
        for (size_t i = 0; i < len * 8; i++) {
                char *bad = malloc(len);
                memcpy(bad, good, len);
                bad[i / 8] ^= (char)(1 << (i % 8));
                FILE *f = fopen(p, "wb");
                ck_assert(f && fwrite(bad, 1, len, f) == len && fclose(f) == 0);
                ck_assert_msg(resume_load(p, &b) == -EBADMSG, "bit %zu flipped accepted", i);
                resume_fini(&b);
                free(bad);
        }
        /* trailing bytes too */
        FILE *f = fopen(p, "ab");
        ck_assert(f && fputc(0, f) == 0 && fclose(f) == 0);
        ck_assert_int_eq(resume_load(p, &b), -EBADMSG);
        free(good);
        resume_fini(&a);
}
END_TEST

/* A state whose own fields disagree (count vs size) is refused even with
 * a valid checksum: the file is not ours. */
START_TEST(inconsistent_refused)
{
        const char *p = h_path("s.p2s");
        struct resume_state a, b;
        sample(&a, 10);
        a.file_size = 100 * 1024;   /* 100 chunks, not 10 */
        ck_assert_int_eq(resume_save(p, &a, true), 0);
        ck_assert_int_eq(resume_load(p, &b), -EBADMSG);
        resume_fini(&a);
        /* a bitmap of the wrong size is not saved at all */
        sample(&a, 10);
        a.chunk_count = 11;
        ck_assert_int_eq(resume_save(p, &a, true), -EINVAL);
        resume_fini(&a);
}
END_TEST

/* A full disk while saving (RLIMIT_FSIZE stands in): the old state stays,
 * no temporary file is left. */
START_TEST(failed_save_keeps_old)
{
        const char *p = h_path("s.p2s");
        struct resume_state a, big, b;
        sample(&a, 10);
        ck_assert_int_eq(resume_save(p, &a, true), 0);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = { .rlim_cur = 4096, .rlim_max = 4096 };
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
        sample(&big, 100000);
        ck_assert_int_eq(resume_save(p, &big, false), -EFBIG);
        ck_assert(!h_exists(h_path("s.p2s.tmp")));
        ck_assert_int_eq(resume_load(p, &b), 0);
        ck_assert_uint_eq(b.chunk_count, 10);
        resume_fini(&a);
        resume_fini(&big);
        resume_fini(&b);
}
END_TEST

static Suite *resume_suite(void)
{
        Suite *s = suite_create("resume");
        TCase *tc = h_tcase("state", 30);
        tcase_add_test(tc, round_trip);
        tcase_add_test(tc, missing_is_enoent);
        tcase_add_test(tc, damage_refused);
        tcase_add_test(tc, inconsistent_refused);
        tcase_add_test(tc, failed_save_keeps_old);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(resume_suite);
