/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <stdlib.h>
#include "util/heap.h"
#include "runner.h"

/* ck_assert records a checkpoint through a pipe on every call: too slow for
 * loops of millions, so hot loops use this plain check. */
#define CHECK(c) do { if (!(c)) ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c); } while (0)

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

/* The heap shape and every node's back index; a stale idx breaks remove. */
static void check_invariant(const struct heap *h)
{
        for (size_t i = 0; i < h->n; i++) {
                ck_assert_uint_eq(h->v[i]->idx, i);
                if (i)
                        ck_assert_uint_le(h->v[(i - 1) / 2]->key, h->v[i]->key);
        }
}

START_TEST(pop_order)
{
        struct heap h = { 0 };
        struct heap_node n[100];

        for (int i = 0; i < 100; i++) {
                heap_node_init(&n[i]);
                ck_assert(!heap_node_queued(&n[i]));
                ck_assert_int_eq(heap_push(&h, &n[i], (uint64_t)((i * 37) % 100)), 0);
                ck_assert(heap_node_queued(&n[i]));
        }
        check_invariant(&h);
        for (uint64_t k = 0; k < 100; k++) {
                struct heap_node *t = heap_pop(&h);

                ck_assert_ptr_nonnull(t);
                ck_assert_uint_eq(t->key, k);
                ck_assert(!heap_node_queued(t));
        }
        ck_assert_ptr_null(heap_pop(&h));
        ck_assert_ptr_null(heap_top(&h));
        heap_remove(&h, &n[0]);         /* not queued: no-op */
        heap_fini(&h);
}
END_TEST

START_TEST(update_key)
{
        struct heap h = { 0 };
        struct heap_node a, b, c;

        heap_node_init(&a);
        heap_node_init(&b);
        heap_node_init(&c);
        heap_push(&h, &a, 10);
        heap_push(&h, &b, 20);
        heap_push(&h, &c, 30);
        ck_assert_ptr_eq(heap_top(&h), &a);
        heap_push(&h, &a, 40);          /* moves down */
        ck_assert_uint_eq(h.n, 3);
        ck_assert_ptr_eq(heap_top(&h), &b);
        heap_push(&h, &c, 5);           /* moves up */
        ck_assert_ptr_eq(heap_top(&h), &c);
        check_invariant(&h);
        heap_remove(&h, &c);
        ck_assert_ptr_eq(heap_pop(&h), &b);
        ck_assert_ptr_eq(heap_pop(&h), &a);
        ck_assert_ptr_null(heap_pop(&h));
        heap_fini(&h);
}
END_TEST

#define N 300
START_TEST(random_vs_model)
{
        struct heap h = { 0 };
        static struct heap_node n[N];
        static bool in[N];
        static uint64_t key[N];

        for (int i = 0; i < N; i++) {
                heap_node_init(&n[i]);
                in[i] = false;
        }
        for (int op = 0; op < 50000; op++) {
                int i = (int)(rng() % N);
                unsigned what = (unsigned)(rng() % 8);

                if (what < 4) {                 /* push or update */
                        key[i] = rng() % 1000;  /* small range: many ties */
                        ck_assert_int_eq(heap_push(&h, &n[i], key[i]), 0);
                        in[i] = true;
                } else if (what < 6) {          /* remove */
                        heap_remove(&h, &n[i]);
                        in[i] = false;
                } else {                        /* pop: must be a minimum */
                        struct heap_node *t = heap_pop(&h);
                        uint64_t min = UINT64_MAX;
                        size_t cnt = 0;

                        for (int j = 0; j < N; j++)
                                if (in[j]) {
                                        cnt++;
                                        if (key[j] < min)
                                                min = key[j];
                                }
                        if (!cnt) {
                                ck_assert_ptr_null(t);
                        } else {
                                int j = (int)(t - n);

                                ck_assert(j >= 0 && j < N && in[j]);
                                ck_assert_uint_eq(t->key, min);
                                in[j] = false;
                        }
                }
                size_t cnt = 0;
                for (int j = 0; j < N; j++) {
                        CHECK(heap_node_queued(&n[j]) == in[j]);
                        cnt += in[j];
                }
                ck_assert_uint_eq(h.n, cnt);
                if (op % 16 == 0)
                        check_invariant(&h);
        }
        heap_fini(&h);
}
END_TEST

static Suite *heap_suite(void)
{
        Suite *s = suite_create("heap");
        TCase *tc;

        tc = tcase_create("basic");
        tcase_add_test(tc, pop_order);
        tcase_add_test(tc, update_key);
        suite_add_tcase(s, tc);
        tc = tcase_create("model");
        tcase_add_test(tc, random_vs_model);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(heap_suite);
