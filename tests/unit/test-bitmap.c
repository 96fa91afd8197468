/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <stdlib.h>
#include "util/bitmap.h"
#include "runner.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

/* Sizes straddling word boundaries, where off-by-one masks go wrong. */
static const size_t sizes[] = { 0, 1, 63, 64, 65, 127, 128, 129, 200 };

START_TEST(boundaries)
{
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                size_t nbits = sizes[k];
                struct bitmap b;

                ck_assert_int_eq(bitmap_init(&b, nbits), 0);
                ck_assert_uint_eq(bitmap_count(&b), 0);
                ck_assert(bitmap_full(&b) == (nbits == 0));
                ck_assert_uint_eq(bitmap_next_clear(&b, 0), 0);
                /* Out of range: no change, no crash. */
                ck_assert(!bitmap_set(&b, nbits));
                ck_assert(!bitmap_test(&b, nbits));
                ck_assert(!bitmap_clear(&b, nbits));
                ck_assert_uint_eq(bitmap_next_clear(&b, nbits), nbits);
                ck_assert_uint_eq(bitmap_next_clear(&b, nbits + 100), nbits);

                /* Fill everything one by one; next_clear must walk along. */
                for (size_t i = 0; i < nbits; i++) {
                        ck_assert_uint_eq(bitmap_next_clear(&b, 0), i);
                        ck_assert(bitmap_set(&b, i));
                        ck_assert(!bitmap_set(&b, i));
                        ck_assert(bitmap_test(&b, i));
                        ck_assert_uint_eq(bitmap_count(&b), i + 1);
                }
                ck_assert(bitmap_full(&b));
                ck_assert_uint_eq(bitmap_next_clear(&b, 0), nbits);
                /* A single hole at each interesting index. */
                size_t holes[] = { 0, 62, 63, 64, 65, 127, 128, nbits - 1 };
                for (size_t h = 0; h < sizeof(holes) / sizeof(holes[0]); h++) {
                        size_t i = holes[h];

                        if (nbits == 0 || i >= nbits)
                                continue;
                        ck_assert(bitmap_clear(&b, i));
                        ck_assert(!bitmap_clear(&b, i));
                        ck_assert(!bitmap_test(&b, i));
                        ck_assert_uint_eq(bitmap_count(&b), nbits - 1);
                        ck_assert(!bitmap_full(&b));
                        ck_assert_uint_eq(bitmap_next_clear(&b, 0), i);
                        ck_assert_uint_eq(bitmap_next_clear(&b, i), i);
                        ck_assert_uint_eq(bitmap_next_clear(&b, i + 1), nbits);
                        ck_assert(bitmap_set(&b, i));
                }
                bitmap_fini(&b);
                bitmap_fini(&b);        /* twice is allowed */
        }
}
END_TEST

START_TEST(set_all_tail)
{
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                size_t nbits = sizes[k];
                struct bitmap b;

                ck_assert_int_eq(bitmap_init(&b, nbits), 0);
                if (nbits > 3)
                        bitmap_set(&b, 3);
                bitmap_set_all(&b);
                ck_assert_uint_eq(bitmap_count(&b), nbits);
                ck_assert(bitmap_full(&b));
                ck_assert_uint_eq(bitmap_next_clear(&b, 0), nbits);
                ck_assert(!bitmap_test(&b, nbits));
                /* Clearing the last bit: the tail past nbits must not look clear
                 * or be counted. */
                if (nbits) {
                        ck_assert(bitmap_clear(&b, nbits - 1));
                        ck_assert_uint_eq(bitmap_count(&b), nbits - 1);
                        ck_assert_uint_eq(bitmap_next_clear(&b, 0), nbits - 1);
                        ck_assert(bitmap_set(&b, nbits - 1));
                        ck_assert(bitmap_full(&b));
                }
                /* and back: nothing set, nothing counted, every bit settable */
                bitmap_clear_all(&b);
                ck_assert_uint_eq(bitmap_count(&b), 0);
                ck_assert_uint_eq(bitmap_next_set(&b, 0), nbits);
                if (nbits)
                        ck_assert(bitmap_set(&b, nbits - 1));
                bitmap_fini(&b);
        }
}
END_TEST

START_TEST(random_vs_model)
{
        const size_t nbits = 333;
        struct bitmap b;
        bool model[333] = { false };
        size_t count = 0;

        ck_assert_int_eq(bitmap_init(&b, nbits), 0);
        for (int op = 0; op < 20000; op++) {
                size_t i = rng() % (nbits + 5);
                bool was = i < nbits && model[i];

                if (rng() & 1) {
                        ck_assert(bitmap_set(&b, i) == (i < nbits && !was));
                        if (i < nbits && !was) {
                                model[i] = true;
                                count++;
                        }
                } else {
                        ck_assert(bitmap_clear(&b, i) == was);
                        if (was) {
                                model[i] = false;
                                count--;
                        }
                }
                ck_assert_uint_eq(bitmap_count(&b), count);
                size_t from = rng() % (nbits + 2), want = from;
                while (want < nbits && model[want])
                        want++;
                if (want > nbits)
                        want = nbits;
                ck_assert_uint_eq(bitmap_next_clear(&b, from), want);
        }
        for (size_t i = 0; i < nbits; i++)
                ck_assert(bitmap_test(&b, i) == model[i]);
        bitmap_fini(&b);
}
END_TEST

static Suite *bitmap_suite(void)
{
        Suite *s = suite_create("bitmap");
        TCase *tc;

        tc = tcase_create("boundaries");
        tcase_add_test(tc, boundaries);
        tcase_add_test(tc, set_all_tail);
        suite_add_tcase(s, tc);
        tc = tcase_create("model");
        tcase_add_test(tc, random_vs_model);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(bitmap_suite);
