/* SPDX-License-Identifier: MIT */
/* Manifest sizing and chunk verification, and the SHA-256 wrapper they rest
 * on (checked against FIPS 180-2 vectors so a wrong digest cannot pass as a
 * self-consistent one). */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/hash.h"
#include "proto/manifest.h"
#include "runner.h"

#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_448   "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
#define MSG_448   "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"

static void hex_of(const void *data, size_t len, char out[65]) {
        uint8_t h[P2S_HASH_SIZE];
        hash_sha256(data, len, h);
        hash_hex(h, out);
}

START_TEST(test_sha_oneshot) {
        char hex[65];

        hex_of("", 0, hex);
        ck_assert_str_eq(hex, SHA_EMPTY);
        hex_of(NULL, 0, hex);
        ck_assert_str_eq(hex, SHA_EMPTY);
        hex_of("abc", 3, hex);
        ck_assert_str_eq(hex, SHA_ABC);
        hex_of(MSG_448, strlen(MSG_448), hex);
        ck_assert_str_eq(hex, SHA_448);
}
END_TEST

START_TEST(test_sha_incremental) {
        struct hasher *h = hasher_new();
        uint8_t d[P2S_HASH_SIZE];
        char hex[65];

        ck_assert_ptr_nonnull(h);
        hasher_final(h, d);
        hash_hex(d, hex);
        ck_assert_str_eq(hex, SHA_EMPTY);

        hasher_reset(h);
        hasher_update(h, "a", 1);
        hasher_update(h, "", 0);
        hasher_update(h, "bc", 2);
        hasher_final(h, d);
        hash_hex(d, hex);
        ck_assert_str_eq(hex, SHA_ABC);

        /* byte by byte across block boundaries */
        hasher_reset(h);
        for (size_t i = 0; i < strlen(MSG_448); i++)
                hasher_update(h, &MSG_448[i], 1);
        hasher_final(h, d);
        hash_hex(d, hex);
        ck_assert_str_eq(hex, SHA_448);

        ck_assert_ptr_null(hasher_free(h));
        ck_assert_ptr_null(hasher_free(NULL));
}
END_TEST

START_TEST(test_hex) {
        uint8_t h[P2S_HASH_SIZE];
        char hex[65];

        for (int i = 0; i < P2S_HASH_SIZE; i++)
                h[i] = (uint8_t)(i * 17 + 0x0f);
        hash_hex(h, hex);
        ck_assert_uint_eq(strlen(hex), 64);
        ck_assert_mem_eq(hex, "0f20314253", 10);
        ck_assert_str_eq(hex + 62, "1e");
}
END_TEST

START_TEST(test_count_for) {
        const uint32_t c = 1024;

        ck_assert_uint_eq(manifest_count_for(0, c), 0);
        ck_assert_uint_eq(manifest_count_for(1, c), 1);
        ck_assert_uint_eq(manifest_count_for(c - 1, c), 1);
        ck_assert_uint_eq(manifest_count_for(c, c), 1);
        ck_assert_uint_eq(manifest_count_for(c + 1, c), 2);
        ck_assert_uint_eq(manifest_count_for(10ull * c, c), 10);
        ck_assert_uint_eq(manifest_count_for(1ull << 40, c), 1ull << 30);
        /* no wrap near the top: a naive (size + c - 1) / c gives 0 here */
        ck_assert_uint_eq(manifest_count_for(UINT64_MAX, c), UINT64_MAX / c + 1);
        ck_assert_uint_eq(manifest_count_for(UINT64_MAX, 1), UINT64_MAX);
        ck_assert_uint_eq(manifest_count_for(5, 0), UINT64_MAX);
        ck_assert_uint_eq(manifest_count_for(0, 0), 0);
}
END_TEST

START_TEST(test_init) {
        struct manifest m;
        const uint32_t c = P2S_MIN_CHUNK;

        ck_assert_int_eq(manifest_init(&m, 0, c), 0);
        ck_assert_uint_eq(m.chunk_count, 0);
        ck_assert_uint_eq(manifest_chunk_len(&m, 0), 0);
        manifest_fini(&m);

        ck_assert_int_eq(manifest_init(&m, 1000, c - 1), -EINVAL);
        ck_assert_int_eq(manifest_init(&m, 1000, 0), -EINVAL);
        ck_assert_int_eq(manifest_init(&m, 1000, P2S_MAX_CHUNK + 1), -EINVAL);
        ck_assert_ptr_null(m.hashes);
        ck_assert_int_eq(manifest_init(&m, 1000, P2S_MAX_CHUNK), 0);
        ck_assert_uint_eq(m.chunk_count, 1);
        manifest_fini(&m);

        /* the chunk-count limit, exactly at and one past */
        ck_assert_int_eq(manifest_init(&m, (uint64_t)P2S_MAX_CHUNKS * c, c), 0);
        ck_assert_uint_eq(m.chunk_count, P2S_MAX_CHUNKS);
        ck_assert_uint_eq(manifest_chunk_len(&m, P2S_MAX_CHUNKS - 1), c);
        manifest_fini(&m);
        ck_assert_int_eq(manifest_init(&m, (uint64_t)P2S_MAX_CHUNKS * c + 1, c), -EFBIG);
        ck_assert_int_eq(manifest_init(&m, UINT64_MAX, P2S_MAX_CHUNK), -EFBIG);
        ck_assert_ptr_null(m.hashes);

        /* hashes start zeroed */
        ck_assert_int_eq(manifest_init(&m, 3 * c, c), 0);
        for (uint32_t i = 0; i < 3; i++)
                for (int k = 0; k < P2S_HASH_SIZE; k++)
                        ck_assert_uint_eq(m.hashes[i][k], 0);
        manifest_fini(&m);
        manifest_fini(&m);   /* fini leaves a state fini accepts again */
}
END_TEST

START_TEST(test_chunk_len) {
        struct manifest m;
        const uint32_t c = 1000;

        ck_assert_int_eq(manifest_init(&m, 2 * c + 7, c), 0);
        ck_assert_uint_eq(m.chunk_count, 3);
        ck_assert_uint_eq(manifest_chunk_len(&m, 0), c);
        ck_assert_uint_eq(manifest_chunk_len(&m, 1), c);
        ck_assert_uint_eq(manifest_chunk_len(&m, 2), 7);
        ck_assert_uint_eq(manifest_chunk_len(&m, 3), 0);
        ck_assert_uint_eq(manifest_chunk_len(&m, UINT32_MAX), 0);
        ck_assert_uint_eq(manifest_chunk_off(&m, 2), 2 * c);
        manifest_fini(&m);

        ck_assert_int_eq(manifest_init(&m, 3 * c, c), 0);
        ck_assert_uint_eq(manifest_chunk_len(&m, 2), c);
        manifest_fini(&m);

        ck_assert_int_eq(manifest_init(&m, 1, c), 0);
        ck_assert_uint_eq(manifest_chunk_len(&m, 0), 1);
        manifest_fini(&m);

        /* a file past 4 GiB: offsets must be 64-bit */
        ck_assert_int_eq(manifest_init(&m, (5ull << 30) + 3, 1u << 20), 0);
        ck_assert_uint_eq(m.chunk_count, 5 * 1024 + 1);
        ck_assert_uint_eq(manifest_chunk_off(&m, 5 * 1024), 5ull << 30);
        ck_assert_uint_eq(manifest_chunk_len(&m, 5 * 1024), 3);
        manifest_fini(&m);
}
END_TEST

START_TEST(test_verify) {
        struct manifest m;
        const uint32_t c = 256;
        uint8_t file[2 * 256 + 10];

        for (size_t i = 0; i < sizeof(file); i++)
                file[i] = (uint8_t)(i * 7 + i / 256);   /* chunks must differ */
        ck_assert_int_eq(manifest_init(&m, sizeof(file), c), 0);
        for (uint32_t i = 0; i < m.chunk_count; i++)
                hash_sha256(file + manifest_chunk_off(&m, i), manifest_chunk_len(&m, i), m.hashes[i]);

        ck_assert(manifest_verify_chunk(&m, 0, file, c));
        ck_assert(manifest_verify_chunk(&m, 1, file + c, c));
        ck_assert(manifest_verify_chunk(&m, 2, file + 2 * c, 10));
        /* right data, wrong slot */
        ck_assert(!manifest_verify_chunk(&m, 1, file, c));
        /* one flipped bit, in the last byte so a prefix compare would miss it */
        file[c - 1] ^= 0x01;
        ck_assert(!manifest_verify_chunk(&m, 0, file, c));
        file[c - 1] ^= 0x01;
        /* wrong lengths: short, long, and a full chunk where the last is short */
        ck_assert(!manifest_verify_chunk(&m, 0, file, c - 1));
        ck_assert(!manifest_verify_chunk(&m, 0, file, c + 1));
        ck_assert(!manifest_verify_chunk(&m, 2, file + 2 * c, 9));
        ck_assert(!manifest_verify_chunk(&m, 2, file + c, c));
        ck_assert(!manifest_verify_chunk(&m, 0, file, 0));
        /* out of range */
        ck_assert(!manifest_verify_chunk(&m, 3, file, 10));
        ck_assert(!manifest_verify_chunk(&m, UINT32_MAX, file, c));
        manifest_fini(&m);
}
END_TEST

START_TEST(test_set_hashes) {
        struct manifest m;
        uint8_t h[4][P2S_HASH_SIZE];

        for (int i = 0; i < 4; i++)
                memset(h[i], 0x10 + i, P2S_HASH_SIZE);
        ck_assert_int_eq(manifest_init(&m, 4 * 256, 256), 0);

        ck_assert_int_eq(manifest_set_hashes(&m, 1, h[0], 2), 0);
        ck_assert_uint_eq(m.hashes[0][0], 0);
        ck_assert_mem_eq(m.hashes[1], h[0], P2S_HASH_SIZE);
        ck_assert_mem_eq(m.hashes[2], h[1], P2S_HASH_SIZE);
        ck_assert_uint_eq(m.hashes[3][0], 0);
        ck_assert_int_eq(manifest_set_hashes(&m, 0, h[0], 4), 0);
        ck_assert_mem_eq(m.hashes, h, sizeof(h));
        ck_assert_int_eq(manifest_set_hashes(&m, 4, h[0], 0), 0);

        /* out of range and wrapping ranges are refused and write nothing */
        memset(m.hashes, 0, 4 * P2S_HASH_SIZE);
        ck_assert_int_eq(manifest_set_hashes(&m, 3, h[0], 2), -EINVAL);
        ck_assert_int_eq(manifest_set_hashes(&m, 0, h[0], 5), -EINVAL);
        ck_assert_int_eq(manifest_set_hashes(&m, 4, h[0], 1), -EINVAL);
        ck_assert_int_eq(manifest_set_hashes(&m, 5, h[0], 0), -EINVAL);
        ck_assert_int_eq(manifest_set_hashes(&m, UINT32_MAX, h[0], 2), -EINVAL);
        ck_assert_int_eq(manifest_set_hashes(&m, 2, h[0], UINT32_MAX), -EINVAL);
        ck_assert_int_eq(manifest_set_hashes(&m, 0, NULL, 1), -EINVAL);
        for (int i = 0; i < 4; i++)
                ck_assert_uint_eq(m.hashes[i][0], 0);
        manifest_fini(&m);
}
END_TEST

static Suite *manifest_suite(void) {
        Suite *s = suite_create("manifest");
        TCase *tc;

        tc = tcase_create("hash");
        tcase_add_test(tc, test_sha_oneshot);
        tcase_add_test(tc, test_sha_incremental);
        tcase_add_test(tc, test_hex);
        suite_add_tcase(s, tc);

        tc = tcase_create("sizing");
        tcase_add_test(tc, test_count_for);
        tcase_add_test(tc, test_init);
        tcase_add_test(tc, test_chunk_len);
        suite_add_tcase(s, tc);

        tc = tcase_create("verify");
        tcase_add_test(tc, test_verify);
        tcase_add_test(tc, test_set_hashes);
        suite_add_tcase(s, tc);

        return s;
}

RUNNER_SUITES(manifest_suite);
