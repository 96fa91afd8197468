/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "util/lru.h"
#include "runner.h"

/* ck_assert records a checkpoint through a pipe on every call: too slow for
 * loops of millions, so hot loops use this plain check. */
#define CHECK(c) do { if (!(c)) ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c); } while (0)

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint64_t rng(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

static struct buf *mkbuf(size_t len, uint8_t fill)
{
        struct buf *b = buf_new(len);

        ck_assert_ptr_nonnull(b);
        memset(b->data, fill, len);
        return b;
}

static int put_new(struct lru *c, uint64_t key, size_t len)
{
        struct buf *b = mkbuf(len, (uint8_t)key);
        int r = lru_put(c, key, b);

        buf_unref(b);
        return r;
}

START_TEST(recency)
{
        struct lru *c = lru_new(300);

        ck_assert_int_eq(put_new(c, 1, 100), 0);
        ck_assert_int_eq(put_new(c, 2, 100), 0);
        ck_assert_int_eq(put_new(c, 3, 100), 0);
        ck_assert_uint_eq(lru_bytes(c), 300);
        /* get(1) makes 2 the least recent, so 4 evicts 2, not 1. */
        ck_assert_ptr_nonnull(lru_get(c, 1));
        ck_assert_int_eq(put_new(c, 4, 100), 0);
        ck_assert_ptr_null(lru_get(c, 2));
        ck_assert_ptr_nonnull(lru_get(c, 3));
        ck_assert_ptr_nonnull(lru_get(c, 1));
        ck_assert_ptr_nonnull(lru_get(c, 4));
        ck_assert_uint_eq(lru_count(c), 3);
        /* Order now 4,1,3 (most recent first): a 200-byte put evicts 3 and 1. */
        ck_assert_int_eq(put_new(c, 5, 200), 0);
        ck_assert_ptr_null(lru_get(c, 3));
        ck_assert_ptr_null(lru_get(c, 1));
        ck_assert_ptr_nonnull(lru_get(c, 4));
        ck_assert_ptr_nonnull(lru_get(c, 5));
        ck_assert_uint_eq(lru_bytes(c), 300);
        ck_assert_uint_eq(lru_max_bytes(c), 300);
        c = lru_free(c);
        ck_assert_ptr_null(c);
        ck_assert_ptr_null(lru_free(NULL));
}
END_TEST

START_TEST(too_big)
{
        struct lru *c = lru_new(100);
        struct buf *b = mkbuf(101, 0);

        ck_assert_int_eq(put_new(c, 1, 60), 0);
        ck_assert_int_eq(lru_put(c, 2, b), LRU_E_TOO_BIG);
        ck_assert_uint_eq(b->refs, 1);  /* the cache kept no reference */
        ck_assert_ptr_nonnull(lru_get(c, 1));   /* nothing evicted */
        ck_assert_ptr_null(lru_get(c, 2));
        ck_assert_uint_eq(lru_count(c), 1);
        /* Replacing an existing key with a too-big buf keeps the old entry. */
        ck_assert_int_eq(lru_put(c, 1, b), LRU_E_TOO_BIG);
        ck_assert_uint_eq(lru_get(c, 1)->len, 60);
        /* Exactly max fits, evicting everything else. */
        ck_assert_int_eq(put_new(c, 3, 100), 0);
        ck_assert_uint_eq(lru_count(c), 1);
        ck_assert_uint_eq(lru_bytes(c), 100);
        buf_unref(b);
        lru_free(c);
}
END_TEST

START_TEST(replace)
{
        struct lru *c = lru_new(1000);
        struct buf *b1 = mkbuf(10, 1), *b2 = mkbuf(30, 2);

        ck_assert_int_eq(lru_put(c, 7, b1), 0);
        ck_assert_uint_eq(b1->refs, 2);
        ck_assert_int_eq(lru_put(c, 7, b2), 0);
        ck_assert_uint_eq(b1->refs, 1);
        ck_assert_uint_eq(b2->refs, 2);
        ck_assert_uint_eq(lru_count(c), 1);
        ck_assert_uint_eq(lru_bytes(c), 30);
        ck_assert_ptr_eq(lru_get(c, 7), b2);
        /* The same buf again: no double reference, no early free. */
        ck_assert_int_eq(lru_put(c, 7, b2), 0);
        ck_assert_uint_eq(b2->refs, 2);
        ck_assert_uint_eq(lru_bytes(c), 30);
        lru_remove(c, 7);
        lru_remove(c, 7);
        ck_assert_uint_eq(b2->refs, 1);
        ck_assert_uint_eq(lru_count(c), 0);
        ck_assert_uint_eq(lru_bytes(c), 0);
        buf_unref(b1);
        buf_unref(b2);
        lru_free(c);
}
END_TEST

START_TEST(remove_prefix)
{
        struct lru *c = lru_new(1u << 20);

        for (uint64_t s = 1; s <= 3; s++)
                for (uint64_t i = 0; i < 50; i++)
                        ck_assert_int_eq(put_new(c, s << 32 | i, 10), 0);
        ck_assert_uint_eq(lru_count(c), 150);
        lru_remove_prefix(c, 2);
        ck_assert_uint_eq(lru_count(c), 100);
        ck_assert_uint_eq(lru_bytes(c), 1000);
        for (uint64_t i = 0; i < 50; i++) {
                ck_assert_ptr_nonnull(lru_get(c, 1ull << 32 | i));
                ck_assert_ptr_null(lru_get(c, 2ull << 32 | i));
                ck_assert_ptr_nonnull(lru_get(c, 3ull << 32 | i));
        }
        lru_remove_prefix(c, 9);        /* no match */
        ck_assert_uint_eq(lru_count(c), 100);
        lru_free(c);
}
END_TEST

START_TEST(evicted_buf_stays_valid)
{
        struct lru *c = lru_new(100);
        struct buf *b = mkbuf(80, 0xab);

        ck_assert_int_eq(lru_put(c, 1, b), 0);
        ck_assert_uint_eq(b->refs, 2);
        ck_assert_int_eq(put_new(c, 2, 80), 0);         /* evicts 1 */
        ck_assert_ptr_null(lru_get(c, 1));
        ck_assert_uint_eq(b->refs, 1);
        for (size_t i = 0; i < 80; i++)
                ck_assert_uint_eq(b->data[i], 0xab);
        lru_free(c);
        ck_assert_uint_eq(b->refs, 1);
        buf_unref(b);
}
END_TEST

/* Model: keys in recency order, most recent first. */
struct model_ent { uint64_t key; size_t len; struct buf *b; };

START_TEST(random_vs_model)
{
        const size_t max = 10000;
        struct lru *c = lru_new(max);
        struct model_ent m[512];
        size_t mn = 0, mbytes = 0;

        ck_assert_ptr_nonnull(c);
        for (int op = 0; op < 20000; op++) {
                uint64_t key = (rng() % 4) << 32 | (rng() % 100);
                unsigned what = (unsigned)(rng() % 10);
                size_t pos;

                for (pos = 0; pos < mn && m[pos].key != key; pos++)
                        ;
                if (what < 5) {
                        size_t len = rng() % 8 == 0 ? rng() % (max + 200) : rng() % 1500;
                        struct buf *b = mkbuf(len, 0);
                        int r = lru_put(c, key, b);

                        if (len > max) {
                                ck_assert_int_eq(r, LRU_E_TOO_BIG);
                        } else {
                                ck_assert_int_eq(r, 0);
                                if (pos < mn) {
                                        mbytes -= m[pos].len;
                                        memmove(&m[pos], &m[pos + 1], (mn - pos - 1) * sizeof(m[0]));
                                        mn--;
                                }
                                memmove(&m[1], &m[0], mn * sizeof(m[0]));
                                m[0] = (struct model_ent){ key, len, b };
                                mn++;
                                mbytes += len;
                                while (mbytes > max) {
                                        mbytes -= m[mn - 1].len;
                                        mn--;
                                }
                        }
                        buf_unref(b);
                } else if (what < 8) {
                        struct buf *b = lru_get(c, key);

                        if (pos < mn) {
                                struct model_ent e = m[pos];

                                ck_assert_ptr_eq(b, e.b);
                                memmove(&m[1], &m[0], pos * sizeof(m[0]));
                                m[0] = e;
                        } else {
                                ck_assert_ptr_null(b);
                        }
                } else if (what < 9) {
                        lru_remove(c, key);
                        if (pos < mn) {
                                mbytes -= m[pos].len;
                                memmove(&m[pos], &m[pos + 1], (mn - pos - 1) * sizeof(m[0]));
                                mn--;
                        }
                } else if (rng() % 20 == 0) {
                        uint32_t hi = (uint32_t)(key >> 32);
                        size_t j = 0;

                        lru_remove_prefix(c, hi);
                        for (size_t i = 0; i < mn; i++) {
                                if ((uint32_t)(m[i].key >> 32) == hi)
                                        mbytes -= m[i].len;
                                else
                                        m[j++] = m[i];
                        }
                        mn = j;
                }
                ck_assert_uint_le(lru_bytes(c), max);
                ck_assert_uint_eq(lru_bytes(c), mbytes);
                ck_assert_uint_eq(lru_count(c), mn);
                for (size_t i = 0; i < mn; i++)
                        CHECK(m[i].b->refs == 1);       /* the cache's one ref */
        }
        lru_free(c);
}
END_TEST

static Suite *lru_suite(void)
{
        Suite *s = suite_create("lru");
        TCase *tc;

        tc = tcase_create("basic");
        tcase_add_test(tc, recency);
        tcase_add_test(tc, too_big);
        tcase_add_test(tc, replace);
        tcase_add_test(tc, remove_prefix);
        tcase_add_test(tc, evicted_buf_stays_valid);
        suite_add_tcase(s, tc);
        tc = tcase_create("model");
        tcase_add_test(tc, random_vs_model);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(lru_suite);
