/* SPDX-License-Identifier: MIT */
/* Small util modules: the action FIFO, the heap's reservation, the u32 ->
 * pointer map, the command-line value parsers, the log's escaping, the
 * RTT estimator and the route's datagram size. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>
#include "failmalloc.h"
#include "util/fifo.h"
#include "util/heap.h"
#include "util/log.h"
#include "util/net.h"
#include "util/parse.h"
#include "util/rtt.h"
#include "util/u32map.h"
#include "runner.h"

/* ck_assert writes a checkpoint per call; hot loops use this plain check. */
#define CHECK(c) do { if (!(c)) ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c); } while (0)

static uint64_t rng_state;
static uint64_t rng(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

/* ---- fifo ---------------------------------------------------------------- */

/* An element size that is not a power of two, so an offset bug shows. */
struct elem {
        uint32_t seq;
        uint8_t pad[7];
};

static void push_seq(struct fifo *f, uint32_t seq)
{
        struct elem e = { .seq = seq };
        memset(e.pad, (int)(seq & 0xff), sizeof(e.pad));
        ck_assert_int_eq(fifo_push(f, &e), 0);
}

static uint32_t pop_seq(struct fifo *f)
{
        struct elem e;
        ck_assert(fifo_pop(f, &e));
        for (size_t i = 0; i < sizeof(e.pad); i++)
                ck_assert_uint_eq(e.pad[i], e.seq & 0xff);
        return e.seq;
}

START_TEST(fifo_empty)
{
        struct fifo f;
        struct elem e;

        fifo_init(&f, sizeof(struct elem));
        ck_assert_uint_eq(fifo_len(&f), 0);
        ck_assert(!fifo_pop(&f, &e));
        push_seq(&f, 1);
        ck_assert_uint_eq(pop_seq(&f), 1);
        ck_assert(!fifo_pop(&f, &e));
        fifo_fini(&f);
        /* fini keeps the element size: the fifo is reusable */
        push_seq(&f, 2);
        ck_assert_uint_eq(pop_seq(&f), 2);
        fifo_fini(&f);
}
END_TEST

/* Growth while the ring is wrapped (head != 0, tail before head) must
 * unroll the elements in order. */
START_TEST(fifo_wrap_then_grow)
{
        struct fifo f;
        uint32_t in = 0, out = 0;

        fifo_init(&f, sizeof(struct elem));
        for (int i = 0; i < 16; i++)            /* fill the first 16-slot ring */
                push_seq(&f, in++);
        ck_assert_uint_eq(f.cap, 16);
        for (int i = 0; i < 11; i++)
                ck_assert_uint_eq(pop_seq(&f), out++);
        for (int i = 0; i < 11; i++)            /* wraps: tail lands before head */
                push_seq(&f, in++);
        ck_assert_uint_eq(f.cap, 16);
        ck_assert_uint_ne(f.head, 0);
        for (int i = 0; i < 40; i++)            /* grows twice from a wrapped ring */
                push_seq(&f, in++);
        ck_assert_uint_ge(f.cap, 64);
        ck_assert_uint_eq(fifo_len(&f), in - out);
        while (fifo_len(&f))
                ck_assert_uint_eq(pop_seq(&f), out++);
        ck_assert_uint_eq(out, in);
        fifo_fini(&f);
}
END_TEST

/* Random bursts of pushes and pops against a counter model. */
START_TEST(fifo_random)
{
        struct fifo f;
        uint32_t in = 0, out = 0;

        rng_state = 0x243f6a8885a308d3ull;
        fifo_init(&f, sizeof(struct elem));
        for (int round = 0; round < 2000; round++) {
                unsigned np = (unsigned)(rng() % 40), nq = (unsigned)(rng() % 40);
                for (unsigned i = 0; i < np; i++)
                        push_seq(&f, in++);
                for (unsigned i = 0; i < nq && out < in; i++) {
                        struct elem e;
                        CHECK(fifo_pop(&f, &e));
                        CHECK(e.seq == out);
                        out++;
                }
                CHECK(fifo_len(&f) == in - out);
        }
        while (out < in)
                ck_assert_uint_eq(pop_seq(&f), out++);
        fifo_fini(&f);
}
END_TEST

/* ---- u32map -------------------------------------------------------------- */

/* Values are tagged pointers into this array: value for key k is &vals[k % NV]. */
#define NV 64
static char vals[NV];
static void *val_for(uint32_t key, unsigned gen) { return &vals[(key + gen) % NV]; }

START_TEST(u32map_basics)
{
        struct u32map m = { 0 };

        ck_assert_ptr_null(u32map_get(&m, 0));
        ck_assert_ptr_null(u32map_del(&m, 0));
        ck_assert_int_eq(u32map_put(&m, 0, &vals[0]), 0);
        ck_assert_int_eq(u32map_put(&m, 0xffffffffu, &vals[1]), 0);
        ck_assert_ptr_eq(u32map_get(&m, 0), &vals[0]);
        ck_assert_ptr_eq(u32map_get(&m, 0xffffffffu), &vals[1]);
        ck_assert_uint_eq(m.n, 2);
        /* replace keeps the count */
        ck_assert_int_eq(u32map_put(&m, 0, &vals[2]), 0);
        ck_assert_ptr_eq(u32map_get(&m, 0), &vals[2]);
        ck_assert_uint_eq(m.n, 2);
        ck_assert_ptr_eq(u32map_del(&m, 0), &vals[2]);
        ck_assert_ptr_null(u32map_get(&m, 0));
        ck_assert_ptr_null(u32map_del(&m, 0));
        ck_assert_ptr_eq(u32map_get(&m, 0xffffffffu), &vals[1]);
        ck_assert_uint_eq(m.n, 1);
        u32map_fini(&m);
        ck_assert_ptr_null(u32map_get(&m, 0xffffffffu));
}
END_TEST

/* Keys that share a home slot form one probe run; deleting from its middle
 * must shift the rest back so every one stays reachable. */
START_TEST(u32map_backward_shift)
{
        struct u32map m = { 0 };
        uint32_t same[6];
        unsigned ns = 0;

        /* fill to cap 16 first so homes are computed with a known mask */
        ck_assert_int_eq(u32map_put(&m, 0, &vals[0]), 0);
        ck_assert_uint_eq(m.cap, 16);
        size_t h0 = (size_t)((0u * 2654435761u) & 15);
        for (uint32_t k = 1; ns < 6 && k < 100000; k++)
                if (((k * 2654435761u) & 15) == h0)
                        same[ns++] = k;
        ck_assert_uint_eq(ns, 6);
        /* 7 keys with home h0 would exceed the load limit of 8 in 16 slots, and
         * growth rehashes; keep to 0 + 6 = 7 entries */
        for (unsigned i = 0; i < ns; i++)
                ck_assert_int_eq(u32map_put(&m, same[i], val_for(same[i], 0)), 0);
        ck_assert_uint_eq(m.cap, 16);
        /* delete from the middle, then the head of the run */
        ck_assert_ptr_eq(u32map_del(&m, same[2]), val_for(same[2], 0));
        ck_assert_ptr_eq(u32map_del(&m, 0), &vals[0]);
        for (unsigned i = 0; i < ns; i++) {
                if (i == 2)
                        ck_assert_ptr_null(u32map_get(&m, same[i]));
                else
                        ck_assert_ptr_eq(u32map_get(&m, same[i]), val_for(same[i], 0));
        }
        ck_assert_uint_eq(m.n, 5);
        u32map_fini(&m);
}
END_TEST

/* A run that wraps past the last slot to slot 0: deletion must move entries
 * across the wrap. */
START_TEST(u32map_wrap_shift)
{
        struct u32map m = { 0 };
        uint32_t keys[7];
        unsigned nk = 0;

        /* keys whose home is slot 15 (of 16) */
        for (uint32_t k = 0; nk < 7 && k < 1000000; k++)
                if (((k * 2654435761u) & 15) == 15)
                        keys[nk++] = k;
        ck_assert_uint_eq(nk, 7);
        for (unsigned i = 0; i < nk; i++)
                ck_assert_int_eq(u32map_put(&m, keys[i], val_for(keys[i], 1)), 0);
        ck_assert_uint_eq(m.cap, 16);
        for (unsigned d = 0; d < nk; d++) {
                ck_assert_ptr_eq(u32map_del(&m, keys[d]), val_for(keys[d], 1));
                for (unsigned i = 0; i < nk; i++) {
                        if (i <= d)
                                ck_assert_ptr_null(u32map_get(&m, keys[i]));
                        else
                                ck_assert_ptr_eq(u32map_get(&m, keys[i]), val_for(keys[i], 1));
                }
        }
        ck_assert_uint_eq(m.n, 0);
        u32map_fini(&m);
}
END_TEST

/* Random put/get/del against a direct-mapped model over a small key space
 * (dense collisions, many backward shifts) plus the two extreme keys. */
#define KEYSPACE 300
static uint32_t model_key(unsigned i)
{
        if (i == KEYSPACE - 2)
                return 0xffffffffu;
        if (i == KEYSPACE - 1)
                return 0xfffffffeu;
        return i * 16u;                 /* multiples of 16: many shared low bits */
}

START_TEST(u32map_random_vs_model)
{
        struct u32map m = { 0 };
        void *model[KEYSPACE] = { 0 };
        size_t n = 0;

        rng_state = 0x9e3779b97f4a7c15ull ^ (uint64_t)_i;
        for (int step = 0; step < 200000; step++) {
                unsigned i = (unsigned)(rng() % KEYSPACE);
                uint32_t k = model_key(i);
                unsigned op = (unsigned)(rng() % 10);
                if (op < 4) {
                        void *v = val_for(k, (unsigned)step);
                        CHECK(u32map_put(&m, k, v) == 0);
                        if (!model[i])
                                n++;
                        model[i] = v;
                } else if (op < 8) {
                        void *old = u32map_del(&m, k);
                        CHECK(old == model[i]);
                        if (model[i])
                                n--;
                        model[i] = NULL;
                } else {
                        CHECK(u32map_get(&m, k) == model[i]);
                }
                CHECK(m.n == n);
                if (step % 1000 == 0) {
                        for (unsigned j = 0; j < KEYSPACE; j++)
                                CHECK(u32map_get(&m, model_key(j)) == model[j]);
                        /* the table never holds more than half its slots */
                        CHECK(m.cap == 0 || m.n * 2 <= m.cap);
                }
        }
        for (unsigned j = 0; j < KEYSPACE; j++)
                ck_assert_ptr_eq(u32map_get(&m, model_key(j)), model[j]);
        size_t seen = 0;
        for (size_t s = 0; s < m.cap; s++)
                if (m.slot[s].val)
                        seen++;
        ck_assert_uint_eq(seen, n);
        u32map_fini(&m);
}
END_TEST

/* ---- parse --------------------------------------------------------------- */

static uint64_t size_ok(const char *s)
{
        uint64_t v = 0xdeadbeef;
        int r = parse_size(s, &v);
        ck_assert_msg(r == 0, "parse_size(\"%s\") = %d, want 0", s, r);
        return v;
}

static void size_bad(const char *s, int want)
{
        uint64_t v = 0xdeadbeef;
        int r = parse_size(s, &v);
        ck_assert_msg(r == want, "parse_size(\"%s\") = %d, want %d", s, r, want);
        ck_assert_msg(v == 0xdeadbeef, "parse_size(\"%s\") wrote its output on failure", s);
}

START_TEST(parse_size_accepts)
{
        ck_assert_uint_eq(size_ok("0"), 0);
        ck_assert_uint_eq(size_ok("65536"), 65536);
        ck_assert_uint_eq(size_ok("64K"), 65536);
        ck_assert_uint_eq(size_ok("64k"), 65536);
        ck_assert_uint_eq(size_ok("1M"), 1048576);
        ck_assert_uint_eq(size_ok("2G"), 2147483648ull);
        ck_assert_uint_eq(size_ok("3T"), 3ull << 40);
        /* an optional "B" or "iB" after the letter, any case */
        ck_assert_uint_eq(size_ok("1KiB"), 1024);
        ck_assert_uint_eq(size_ok("1kb"), 1024);
        ck_assert_uint_eq(size_ok("1KB"), 1024);
        ck_assert_uint_eq(size_ok("1kib"), 1024);
        ck_assert_uint_eq(size_ok("4MiB"), 4u << 20);
        /* a bare "B" means bytes */
        ck_assert_uint_eq(size_ok("512B"), 512);
        ck_assert_uint_eq(size_ok("512b"), 512);
        /* the largest values that fit */
        ck_assert_uint_eq(size_ok("18446744073709551615"), UINT64_MAX);
        ck_assert_uint_eq(size_ok("16777215T"), 16777215ull << 40);
        ck_assert_uint_eq(size_ok("17179869183G"), 17179869183ull << 30);
}
END_TEST

START_TEST(parse_size_rejects)
{
        size_bad("", -EINVAL);
        size_bad("K", -EINVAL);
        size_bad("B", -EINVAL);
        size_bad("12X", -EINVAL);
        size_bad("-1", -EINVAL);
        size_bad("+1", -EINVAL);
        size_bad(" 1", -EINVAL);
        size_bad("1 ", -EINVAL);
        size_bad("1 K", -EINVAL);
        size_bad("1iB", -EINVAL);      /* "iB" only after a unit letter */
        size_bad("1KBB", -EINVAL);
        size_bad("1KK", -EINVAL);
        size_bad("0x10", -EINVAL);
        size_bad("1.5M", -EINVAL);
        /* overflow: of the number itself, and of the shift */
        size_bad("99999999999G", -ERANGE);
        size_bad("16777216T", -ERANGE);
        size_bad("17179869184G", -ERANGE);
        size_bad("18446744073709551616", -ERANGE);
        ck_assert_int_eq(parse_size(NULL, &(uint64_t){ 0 }), -EINVAL);
}
END_TEST

static uint64_t secs_ok(const char *s)
{
        uint64_t v = 0xdeadbeef;
        int r = parse_seconds(s, &v);
        ck_assert_msg(r == 0, "parse_seconds(\"%s\") = %d, want 0", s, r);
        return v;
}

static void secs_bad(const char *s, int want)
{
        uint64_t v = 0xdeadbeef;
        int r = parse_seconds(s, &v);
        ck_assert_msg(r == want, "parse_seconds(\"%s\") = %d, want %d", s, r, want);
        ck_assert_msg(v == 0xdeadbeef, "parse_seconds(\"%s\") wrote its output on failure", s);
}

START_TEST(parse_seconds_values)
{
        ck_assert_uint_eq(secs_ok("0.5"), 500000);
        ck_assert_uint_eq(secs_ok(".5"), 500000);
        ck_assert_uint_eq(secs_ok("3"), 3000000);
        ck_assert_uint_eq(secs_ok("0"), 0);
        ck_assert_uint_eq(secs_ok("0.000001"), 1);
        ck_assert_uint_eq(secs_ok("1.25"), 1250000);
        ck_assert_uint_eq(secs_ok("1000000"), 1000000000000ull);   /* the upper bound */
        secs_bad("", -EINVAL);
        secs_bad("abc", -EINVAL);
        secs_bad("-1", -EINVAL);
        secs_bad("+1", -EINVAL);
        secs_bad(" 1", -EINVAL);
        secs_bad("1s", -EINVAL);
        secs_bad("1 ", -EINVAL);
        secs_bad("nan", -EINVAL);
        secs_bad("inf", -EINVAL);
        secs_bad("1e999", -EINVAL);     /* strtod overflows to inf with ERANGE */
        secs_bad("1000000.5", -ERANGE);
        secs_bad("2e6", -EINVAL);          /* decimal only: no exponents */
        ck_assert_int_eq(parse_seconds(NULL, &(uint64_t){ 0 }), -EINVAL);
}
END_TEST

/* parse.h promises *decimal* seconds; strtod also reads C99 hex floats. */
START_TEST(parse_seconds_decimal_only)
{
        secs_bad("0x10", -EINVAL);
        secs_bad("0x1p3", -EINVAL);
}
END_TEST

START_TEST(parse_uint_bounds)
{
        uint64_t v = 0;

        ck_assert_int_eq(parse_uint("0", 0, 10, &v), 0);
        ck_assert_uint_eq(v, 0);
        ck_assert_int_eq(parse_uint("10", 0, 10, &v), 0);
        ck_assert_uint_eq(v, 10);
        ck_assert_int_eq(parse_uint("1", 1, 1, &v), 0);
        ck_assert_uint_eq(v, 1);
        ck_assert_int_eq(parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
        ck_assert_uint_eq(v, UINT64_MAX);

        v = 42;
        ck_assert_int_eq(parse_uint("11", 0, 10, &v), -ERANGE);
        ck_assert_int_eq(parse_uint("0", 1, 10, &v), -ERANGE);
        ck_assert_int_eq(parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
        ck_assert_int_eq(parse_uint("", 0, 10, &v), -EINVAL);
        ck_assert_int_eq(parse_uint("-1", 0, 10, &v), -EINVAL);
        ck_assert_int_eq(parse_uint("+1", 0, 10, &v), -EINVAL);
        ck_assert_int_eq(parse_uint(" 1", 0, 10, &v), -EINVAL);
        ck_assert_int_eq(parse_uint("1x", 0, 10, &v), -EINVAL);
        ck_assert_int_eq(parse_uint("1K", 0, 10000, &v), -EINVAL);
        ck_assert_int_eq(parse_uint(NULL, 0, 10, &v), -EINVAL);
        ck_assert_uint_eq(v, 42);       /* untouched on failure */
}
END_TEST

/* ---- reservations under allocation failure ------------------------------ */

/* Reserved room survives memory running out; ordinary pushes do not eat it. */
START_TEST(fifo_reserved_room)
{
        struct fifo f;
        fifo_init(&f, sizeof(struct elem));
        ck_assert_int_eq(fifo_reserve(&f, 3), 0);
        ck_assert_uint_eq(fifo_reserved(&f), 3);
        uint32_t seq = 0;
        /* fill every unreserved slot, then memory runs out */
        size_t free_slots = f.cap - f.n - f.reserved;
        for (size_t i = 0; i < free_slots; i++)
                push_seq(&f, seq++);
        failmalloc_after(0);
        struct elem e = { .seq = seq };
        memset(e.pad, (int)(seq & 0xff), sizeof(e.pad));
        int r = fifo_push(&f, &e);
        int r2 = fifo_reserve(&f, 1);
        int crit[3];
        for (int i = 0; i < 3; i++) {
                e.seq = seq;
                memset(e.pad, (int)(seq++ & 0xff), sizeof(e.pad));
                crit[i] = fifo_push_reserved(&f, &e);
        }
        failmalloc_off();
        ck_assert_int_eq(r, -ENOMEM);
        ck_assert_int_eq(r2, -ENOMEM);
        ck_assert_uint_eq(fifo_reserved(&f), 0);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(crit[i], 0);
        /* all there, in order: the refused push left no trace */
        ck_assert_uint_eq(fifo_len(&f), free_slots + 3);
        for (uint32_t i = 0; i < free_slots; i++)
                ck_assert_uint_eq(pop_seq(&f), i);
        for (uint32_t i = 0; i < 3; i++)
                ck_assert_uint_eq(pop_seq(&f), (uint32_t)free_slots + i);
        fifo_fini(&f);
}
END_TEST

/* Reservations taken across a wrapped ring and a growth keep their room. */
START_TEST(fifo_reserve_wrapped)
{
        struct fifo f;
        fifo_init(&f, sizeof(struct elem));
        uint32_t in = 0, out = 0;
        for (int i = 0; i < 10; i++)
                push_seq(&f, in++);
        for (int i = 0; i < 8; i++)
                ck_assert_uint_eq(pop_seq(&f), out++);
        ck_assert_int_eq(fifo_reserve(&f, 40), 0);     /* grows, unrolling the ring */
        ck_assert_uint_ge(f.cap, f.n + 40);
        failmalloc_after(0);
        int bad = 0;
        for (int i = 0; i < 40; i++) {
                struct elem e = { .seq = in };
                memset(e.pad, (int)(in++ & 0xff), sizeof(e.pad));
                bad += fifo_push_reserved(&f, &e) != 0;
        }
        failmalloc_off();
        ck_assert_int_eq(bad, 0);
        fifo_unreserve(&f, 5);          /* more than is held: clamps to 0 */
        ck_assert_uint_eq(fifo_reserved(&f), 0);
        while (fifo_len(&f))
                ck_assert_uint_eq(pop_seq(&f), out++);
        ck_assert_uint_eq(out, in);
        /* without a reservation a reserved push is an ordinary one */
        push_seq(&f, 0);
        ck_assert_int_eq(fifo_reserve(&f, 2), 0);
        fifo_unreserve(&f, 1);
        ck_assert_uint_eq(fifo_reserved(&f), 1);
        fifo_fini(&f);
}
END_TEST

START_TEST(heap_reserve_then_push)
{
        struct heap h = { 0 };
        struct heap_node n[40];
        ck_assert_int_eq(heap_reserve(&h, 40), 0);
        failmalloc_after(0);
        int bad = 0;
        for (int i = 0; i < 40; i++) {
                heap_node_init(&n[i]);
                bad += heap_push(&h, &n[i], (uint64_t)(40 - i)) != 0;
        }
        struct heap_node extra;
        heap_node_init(&extra);
        int r = heap_push(&h, &extra, 1);
        /* moving a queued node never allocates */
        int moved = heap_push(&h, &n[0], 0);
        failmalloc_off();
        ck_assert_int_eq(bad, 0);
        ck_assert_int_eq(r, -ENOMEM);
        ck_assert(!heap_node_queued(&extra));
        ck_assert_int_eq(moved, 0);
        ck_assert_ptr_eq(heap_top(&h), &n[0]);
        heap_fini(&h);
}
END_TEST

/* ---- log ----------------------------------------------------------------- */

START_TEST(log_escape_renders)
{
        char out[64];
        ck_assert_str_eq(log_escape(out, sizeof(out), "plain name.iso", 14), "plain name.iso");
        ck_assert_str_eq(log_escape(out, sizeof(out), "a\nb", 3), "a\\x0ab");
        ck_assert_str_eq(log_escape(out, sizeof(out), "\r\x1b[2J", 5), "\\x0d\\x1b[2J");
        ck_assert_str_eq(log_escape(out, sizeof(out), "back\\slash", 10), "back\\x5cslash");
        ck_assert_str_eq(log_escape(out, sizeof(out), "\x7f\x80\xff", 3), "\\x7f\\x80\\xff");
        /* a NUL is a byte like any other: inlen, not strlen */
        ck_assert_str_eq(log_escape(out, sizeof(out), "a\0b", 3), "a\\x00b");
        ck_assert_str_eq(log_escape(out, sizeof(out), "", 0), "");
        /* "\x0a" as text and a real newline render differently */
        char other[64];
        log_escape(other, sizeof(other), "a\\x0ab", 6);
        ck_assert_str_ne(other, "a\\x0ab");
}
END_TEST

START_TEST(log_escape_bounded)
{
        char out[16];
        uint8_t in[300];
        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (uint8_t)i;
        /* exactly fitting: no ellipsis */
        ck_assert_str_eq(log_escape(out, 5, "abcd", 4), "abcd");
        ck_assert_str_eq(log_escape(out, 5, "abcde", 5), "a...");
        /* never writes past outlen, cuts at a whole escape, always terminated */
        for (size_t len = 1; len <= sizeof(out); len++) {
                memset(out, 'Z', sizeof(out));
                log_escape(out, len, in, sizeof(in));
                ck_assert_uint_lt(strlen(out), len);
                for (size_t k = len; k < sizeof(out); k++)
                        ck_assert_int_eq(out[k], 'Z');
                const char *bs = strrchr(out, '\\');
                if (bs)
                        ck_assert_uint_ge(strlen(bs), 4);
                if (len >= 4)
                        ck_assert(strstr(out, "...") != NULL);
        }
        ck_assert_str_eq(log_escape(out, 0, "x", 1), "");
        ck_assert_str_eq(log_escape(out, 1, "x", 1), "");
        /* LOG_ESCAPE_SIZE holds the worst case in full */
        char big[LOG_ESCAPE_SIZE(sizeof(in))];
        log_escape(big, sizeof(big), in, sizeof(in));
        ck_assert_ptr_null(strstr(big, "..."));
        size_t want = 0;
        for (size_t i = 0; i < sizeof(in); i++)
                want += in[i] >= 0x20 && in[i] < 0x7f && in[i] != '\\' ? 1 : 4;
        ck_assert_uint_eq(strlen(big), want);
        ck_assert_uint_gt(want, 3 * sizeof(in) / 2);
}
END_TEST

/* What log_msg writes to stderr, captured through a pipe. */
static void capture_log(const char *msg, char *got, size_t cap)
{
        int p[2];
        ck_assert_int_eq(pipe(p), 0);
        int saved = dup(STDERR_FILENO);
        ck_assert_int_ge(saved, 0);
        ck_assert_int_ge(dup2(p[1], STDERR_FILENO), 0);
        log_set_prefix(false);
        log_msg(LOG_ERR, "peer said: %s", msg);
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(p[1]);
        ssize_t n = read(p[0], got, cap - 1);
        close(p[0]);
        ck_assert_int_gt(n, 0);
        got[n] = '\0';
}

START_TEST(log_one_record_one_line)
{
        char got[512];
        log_init("test-misc");
        capture_log("hello\n<3>p2sd: error: forged\r\x1b[31m\ttab", got, sizeof(got));
        /* exactly one newline, at the end */
        ck_assert_ptr_eq(strchr(got, '\n'), got + strlen(got) - 1);
        ck_assert_ptr_null(strchr(got, '\r'));
        ck_assert_ptr_null(strchr(got, '\x1b'));
        ck_assert_str_eq(got, "test-misc: error: peer said: hello\\n<3>p2sd: error: forged\\r\\x1b[31m\ttab\n");
        /* UTF-8 in a file name passes */
        capture_log("caf\xc3\xa9", got, sizeof(got));
        ck_assert_str_eq(got, "test-misc: error: peer said: caf\xc3\xa9\n");
}
END_TEST

/* rtt_base is what the samples say, whatever backoff a caller put on rto:
 * a new exchange (a COMPLETE after a lossy fetch) starts from it. */
START_TEST(rtt_base_ignores_backoff)
{
        struct rtt r;
        rtt_init(&r, 300000, 20000, 3000000);
        ck_assert_uint_eq(rtt_base(&r), 300000);        /* no sample: the initial guess */
        rtt_sample(&r, 4000);                           /* srtt 4 ms, rttvar 2 ms: 12 ms, floored */
        ck_assert_uint_eq(r.rto, 20000);
        r.rto = 2560000;                                /* a caller's backoff */
        ck_assert_uint_eq(rtt_base(&r), 20000);
        rtt_sample(&r, 100000);
        ck_assert_uint_eq(rtt_base(&r), r.rto);
        ck_assert_uint_eq(r.rto, r.srtt + 4 * r.rttvar);
        r.rto = r.max;
        rtt_sample(&r, 10000000);                       /* far beyond: capped */
        ck_assert_uint_eq(rtt_base(&r), 3000000);
}
END_TEST

static unsigned lo_mtu(void)
{
        FILE *f = fopen("/sys/class/net/lo/mtu", "r");
        unsigned mtu = 0;
        ck_assert(f && fscanf(f, "%u", &mtu) == 1);
        fclose(f);
        return mtu;
}

/* The route's MTU less 28 bytes over IPv4 (a v4-mapped address too), 48
 * over IPv6; 0 where there is no route to ask. */
START_TEST(route_udp_payload)
{
        unsigned mtu6 = lo_mtu(), mtu = mtu6 > 65535 ? 65535 : mtu6;  /* what IP_MTU reports at most */
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(9) };
        in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_uint_eq(net_route_udp_payload((struct sockaddr *)&in), mtu - 28);
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(9) };
        ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr), 1);
        ck_assert_uint_eq(net_route_udp_payload((struct sockaddr *)&in6), mtu - 28);
        in6.sin6_addr = in6addr_loopback;
        uint32_t v6 = net_route_udp_payload((struct sockaddr *)&in6);
        ck_assert_msg(v6 == mtu6 - 48 || v6 == 0, "::1: %u", v6);  /* 0 where IPv6 is off */
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        ck_assert_uint_eq(net_route_udp_payload((struct sockaddr *)&un), 0);
}
END_TEST

static Suite *misc_suite(void)
{
        Suite *s = suite_create("misc");
        TCase *tc;

        tc = tcase_create("fifo");
        tcase_add_test(tc, fifo_empty);
        tcase_add_test(tc, fifo_wrap_then_grow);
        tcase_add_test(tc, fifo_random);
        tcase_add_test(tc, fifo_reserved_room);
        tcase_add_test(tc, fifo_reserve_wrapped);
        tcase_add_test(tc, heap_reserve_then_push);
        suite_add_tcase(s, tc);

        tc = tcase_create("log");
        tcase_add_test(tc, log_escape_renders);
        tcase_add_test(tc, log_escape_bounded);
        tcase_add_test(tc, log_one_record_one_line);
        suite_add_tcase(s, tc);

        tc = tcase_create("u32map");
        tcase_add_test(tc, u32map_basics);
        tcase_add_test(tc, u32map_backward_shift);
        tcase_add_test(tc, u32map_wrap_shift);
        tcase_add_loop_test(tc, u32map_random_vs_model, 0, 3);
        suite_add_tcase(s, tc);

        tc = tcase_create("parse");
        tcase_add_test(tc, parse_size_accepts);
        tcase_add_test(tc, parse_size_rejects);
        tcase_add_test(tc, parse_seconds_values);
        tcase_add_test(tc, parse_seconds_decimal_only);
        tcase_add_test(tc, parse_uint_bounds);
        suite_add_tcase(s, tc);

        tc = tcase_create("rtt");
        tcase_add_test(tc, rtt_base_ignores_backoff);
        suite_add_tcase(s, tc);

        tc = tcase_create("net");
        tcase_add_test(tc, route_udp_payload);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(misc_suite);
