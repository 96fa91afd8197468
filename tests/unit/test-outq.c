/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "util/outq.h"
#include "runner.h"

static uint64_t rng_state = 0xda942042e4dd58b5ull;
static uint64_t rng(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

#define FILE_SIZE (1024 * 1024)

static int make_file(uint8_t **content)
{
        char path[] = "/tmp/test-outq-XXXXXX";
        int fd = mkstemp(path);
        uint8_t *d = malloc(FILE_SIZE);

        ck_assert_int_ge(fd, 0);
        unlink(path);
        for (size_t i = 0; i < FILE_SIZE; i++)
                d[i] = (uint8_t)rng();
        ck_assert_int_eq(write(fd, d, FILE_SIZE), FILE_SIZE);
        *content = d;
        return fd;
}

/* Small kernel buffers make every flush a partial write. */
static void make_pair(int sv[2])
{
        int one = 1;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one)), 0);
        ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &one, sizeof(one)), 0);
}

struct expect {
        uint8_t *d;
        size_t len, cap;
};

static void expect_add(struct expect *e, const void *p, size_t n)
{
        if (e->len + n > e->cap) {
                e->cap = (e->len + n) * 2;
                e->d = realloc(e->d, e->cap);
                ck_assert_ptr_nonnull(e->d);
        }
        if (n)
                memcpy(e->d + e->len, p, n);    /* p may be NULL when n is 0 */
        e->len += n;
}

/* When set, some memory items are slab buffers (sent with sendfile). */
static struct buf_slab *test_slab;

/* Queues a random item and appends its bytes to the expected stream. */
static void push_random(struct outq *q, struct expect *e, int fd, const uint8_t *file)
{
        uint8_t hdr[OUTQ_HDR_MAX];
        size_t hlen = rng() % 4 == 0 ? 0 : rng() % (OUTQ_HDR_MAX + 1);

        for (size_t i = 0; i < hlen; i++)
                hdr[i] = (uint8_t)rng();
        expect_add(e, hdr, hlen);
        if (rng() % 3 == 0) {
                size_t off = rng() % FILE_SIZE;
                size_t len = rng() % (FILE_SIZE - off + 1);

                if (rng() % 4 == 0)
                        len %= 100;
                ck_assert_int_eq(outq_push_file(q, hdr, hlen, fd, (off_t)off, len), 0);
                expect_add(e, file + off, len);
        } else if (rng() % 5 == 0) {
                ck_assert_int_eq(outq_push(q, hdr, hlen, NULL), 0);
        } else {
                size_t len = rng() % 4 == 0 ? rng() % 10 : rng() % 200000;
                struct buf *b = test_slab && rng() % 2 ? buf_slab_alloc(test_slab, len) : buf_new(len);

                ck_assert_ptr_nonnull(b);
                for (size_t i = 0; i < len; i++)
                        b->data[i] = (uint8_t)rng();
                ck_assert_int_eq(outq_push(q, hdr, hlen, b), 0);
                expect_add(e, b->data, len);
                buf_unref(b);           /* the queue holds its own */
        }
}

static size_t inq(int fd)
{
        int n = 0;

        ck_assert_int_eq(ioctl(fd, FIONREAD, &n), 0);
        return (size_t)n;
}

START_TEST(stream_exact)
{
        struct expect e = { 0 };
        /* _i: the loop test runs it once with heap buffers, once with a slab */
        test_slab = _i ? buf_slab_new(64u << 20) : NULL;
        ck_assert(!_i || test_slab);
        struct outq q;
        uint8_t *file, *got;
        int sv[2], fd = make_file(&file);
        size_t received = 0, total_pushed = 0;
        int r, rounds = 0;

        make_pair(sv);
        outq_init(&q);
        ck_assert(outq_empty(&q));
        ck_assert_int_eq(outq_flush(&q, sv[0]), 0);
        while (e.len < 4 * 1024 * 1024)
                push_random(&q, &e, fd, file);
        total_pushed = e.len;
        ck_assert_uint_eq(q.bytes, e.len);
        got = malloc(8 * 1024 * 1024);
        for (;;) {
                r = outq_flush(&q, sv[0]);
                ck_assert_int_ge(r, 0);
                /* Every byte is queued, in the peer's receive queue, or read:
                 * AF_UNIX puts written data straight into the peer's queue. */
                ck_assert_uint_eq(q.bytes + inq(sv[1]) + received, e.len);
                ck_assert(r == 0 || q.bytes > 0);
                ck_assert(r == 1 || q.bytes == 0);
                /* Add more while partly sent: appending must not disturb progress. */
                if (++rounds == 50 && e.len < 6 * 1024 * 1024) {
                        while (e.len < total_pushed + 2 * 1024 * 1024)
                                push_random(&q, &e, fd, file);
                        ck_assert_uint_eq(q.bytes + inq(sv[1]) + received, e.len);
                }
                size_t want = 1 + rng() % 5000;
                ssize_t n = read(sv[1], got + received, want);

                if (n < 0) {
                        ck_assert_int_eq(errno, EAGAIN);
                        if (r == 0)
                                break;
                        continue;
                }
                ck_assert_int_gt(n, 0);
                ck_assert(received + (size_t)n <= e.len);
                ck_assert(memcmp(got + received, e.d + received, (size_t)n) == 0);
                received += (size_t)n;
        }
        ck_assert_uint_eq(received, e.len);
        ck_assert_uint_eq(q.bytes, 0);
        ck_assert_uint_eq(q.items, 0);
        ck_assert(outq_empty(&q));
        ck_assert(memcmp(got, e.d, e.len) == 0);
        outq_fini(&q);
        test_slab = buf_slab_unref(test_slab);
        free(got);
        free(e.d);
        free(file);
        close(fd);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

/* A slab hands out file ranges; a freed range is reused for the same size,
 * and the slab outlives its owner while a buffer is still in use. */
START_TEST(slab_reuse)
{
        struct buf_slab *s = buf_slab_new(1u << 20);
        struct buf *a, *b, *c;
        off_t off;

        ck_assert_ptr_nonnull(s);
        a = buf_slab_alloc(s, 65536);
        ck_assert_ptr_nonnull(a);
        ck_assert_int_ge(a->fd, 0);
        memset(a->data, 0x5a, a->len);
        ck_assert_int_eq(pread(a->fd, &(uint8_t){ 0 }, 1, a->off), 1);
        off = a->off;
        buf_unref(a);
        b = buf_slab_alloc(s, 65536);
        ck_assert_int_eq(b->off, off);
        /* punched: the old bytes are gone, not left for the next owner */
        ck_assert_uint_eq(b->data[0], 0);
        c = buf_slab_alloc(s, 100);
        ck_assert_int_ne(c->off, off);
        /* larger than what is left: a heap buffer */
        a = buf_slab_alloc(s, 1u << 20);
        ck_assert_ptr_nonnull(a);
        ck_assert_int_eq(a->fd, -1);
        buf_unref(a);
        ck_assert_ptr_null(buf_slab_unref(s));
        memset(b->data, 1, b->len);     /* still mapped */
        buf_unref(b);
        buf_unref(c);
}
END_TEST

START_TEST(fini_drops_refs)
{
        struct outq q;
        struct buf *b = buf_new(10);
        uint8_t big[OUTQ_HDR_MAX + 1] = { 0 };

        outq_init(&q);
        ck_assert_int_eq(outq_push(&q, "ab", 2, b), 0);
        ck_assert_int_eq(outq_push(&q, "cd", 2, b), 0);
        ck_assert_uint_eq(b->refs, 3);
        ck_assert_uint_eq(q.bytes, 24);
        ck_assert_uint_eq(q.items, 2);
        ck_assert_int_eq(outq_push(&q, big, sizeof(big), NULL), -EINVAL);
        ck_assert_uint_eq(q.items, 2);
        outq_fini(&q);
        ck_assert_uint_eq(b->refs, 1);
        ck_assert(outq_empty(&q));
        ck_assert_uint_eq(q.bytes, 0);
        buf_unref(b);
}
END_TEST

START_TEST(peer_closed)
{
        struct outq q;
        uint8_t *file;
        int sv[2], fd = make_file(&file), r;
        struct buf *b = buf_new(1000);

        memset(b->data, 1, b->len);
        make_pair(sv);
        close(sv[1]);
        outq_init(&q);
        /* SIGPIPE left at default: MSG_NOSIGNAL must keep us alive. */
        ck_assert_int_eq(outq_push(&q, "hdr", 3, b), 0);
        r = outq_flush(&q, sv[0]);
        ck_assert(r == -EPIPE || r == -ECONNRESET);
        ck_assert_uint_eq(q.bytes, 1003);
        outq_fini(&q);
        /* sendfile cannot suppress SIGPIPE: callers ignore it (outq.h). */
        signal(SIGPIPE, SIG_IGN);
        outq_init(&q);
        ck_assert_int_eq(outq_push_file(&q, NULL, 0, fd, 0, 5000), 0);
        r = outq_flush(&q, sv[0]);
        ck_assert(r == -EPIPE || r == -ECONNRESET);
        outq_fini(&q);
        buf_unref(b);
        free(file);
        close(fd);
        close(sv[0]);
}
END_TEST

START_TEST(file_too_short)
{
        struct outq q;
        uint8_t *file, got[200];
        int sv[2], fd = make_file(&file);

        make_pair(sv);
        outq_init(&q);
        /* 100 bytes exist past the offset, 150 were promised. */
        ck_assert_int_eq(outq_push_file(&q, "H", 1, fd, FILE_SIZE - 100, 150), 0);
        /* A short sendfile may first report "would block" (1). */
        int r, tries = 0;
        do
                r = outq_flush(&q, sv[0]);
        while (r == 1 && ++tries < 10);
        ck_assert_int_eq(r, -EIO);
        ck_assert_uint_eq(q.bytes, 50);
        ck_assert_int_eq(read(sv[1], got, sizeof(got)), 101);
        ck_assert_uint_eq(got[0], 'H');
        ck_assert(memcmp(got + 1, file + FILE_SIZE - 100, 100) == 0);
        outq_fini(&q);
        free(file);
        close(fd);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

START_TEST(empty_items)
{
        struct outq q;
        int sv[2];
        char got[8];
        struct buf *b = buf_new(0);

        make_pair(sv);
        outq_init(&q);
        /* Items with nothing to send must not stall the queue. */
        ck_assert_int_eq(outq_push(&q, NULL, 0, NULL), 0);
        ck_assert_int_eq(outq_push(&q, NULL, 0, b), 0);
        ck_assert_int_eq(outq_push_file(&q, NULL, 0, sv[0], 0, 0), 0);
        ck_assert_int_eq(outq_push(&q, "xy", 2, NULL), 0);
        ck_assert_int_eq(outq_push(&q, NULL, 0, NULL), 0);
        ck_assert_uint_eq(q.bytes, 2);
        ck_assert_int_eq(outq_flush(&q, sv[0]), 0);
        ck_assert(outq_empty(&q));
        ck_assert_uint_eq(q.items, 0);
        ck_assert_int_eq(read(sv[1], got, sizeof(got)), 2);
        ck_assert(memcmp(got, "xy", 2) == 0);
        buf_unref(b);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

/* Reads everything the queue writes, flushing as the reader drains. */
static size_t drain_all(struct outq *q, int sv[2], uint8_t *out, size_t cap)
{
        size_t got = 0;
        for (int spins = 0; spins < 1000000; spins++) {
                int r = outq_flush(q, sv[0]);
                ck_assert_int_ge(r, 0);
                ssize_t n = read(sv[1], out + got, cap - got);
                if (n > 0)
                        got += (size_t)n;
                if (r == 0 && n <= 0)
                        break;
        }
        return got;
}

/* A control frame jumps ahead of queued bulk frames, in the order control
 * frames were pushed, but never into a frame already partly written. */
START_TEST(priority_lane)
{
        struct outq q;
        int sv[2];
        size_t big = 200 * 1000;
        struct buf *a = buf_new(big), *b = buf_new(big);
        static uint8_t out[3 * 200 * 1000];

        memset(a->data, 'a', big);
        memset(b->data, 'b', big);
        make_pair(sv);
        outq_init(&q);

        /* nothing written yet: the control frame goes first of all */
        ck_assert_int_eq(outq_push(&q, "A", 1, a), 0);
        ck_assert_int_eq(outq_push_prio(&q, "P0", 2, NULL), 0);
        ck_assert_uint_eq(q.bytes, 1 + big + 2);
        /* A is now partly written: it must finish before anything cuts in */
        ck_assert_int_eq(outq_flush(&q, sv[0]), 1);
        ck_assert_uint_gt(q.bytes, 0);
        ck_assert_int_eq(outq_push(&q, "B", 1, b), 0);
        ck_assert_int_eq(outq_push_prio(&q, "P1", 2, NULL), 0);
        ck_assert_int_eq(outq_push_prio(&q, "P2", 2, NULL), 0);
        size_t n = drain_all(&q, sv, out, sizeof(out));
        ck_assert_uint_eq(n, 2 + 1 + big + 2 + 2 + 1 + big);
        ck_assert(outq_empty(&q));
        ck_assert_uint_eq(q.bytes, 0);
        size_t o = 0;
        ck_assert(memcmp(out + o, "P0", 2) == 0);
        o += 2;
        ck_assert_int_eq(out[o], 'A');
        o++;
        for (size_t i = 0; i < big; i++)
                ck_assert_int_eq(out[o + i], 'a');
        o += big;
        ck_assert_msg(memcmp(out + o, "P1P2", 4) == 0, "control frames not next after the partly written frame");
        o += 4;
        ck_assert_int_eq(out[o], 'B');
        o++;
        for (size_t i = 0; i < big; i++)
                ck_assert_int_eq(out[o + i], 'b');

        /* the lane empties: a later control frame again goes first */
        ck_assert_int_eq(outq_push(&q, "A", 1, a), 0);
        ck_assert_int_eq(outq_push_prio(&q, "P3", 2, NULL), 0);
        ck_assert_int_eq(outq_push(&q, "B", 1, NULL), 0);
        ck_assert_int_eq(outq_push_prio(&q, "P4", 2, NULL), 0);
        n = drain_all(&q, sv, out, sizeof(out));
        ck_assert_uint_eq(n, 2 + 2 + 1 + big + 1);
        ck_assert(memcmp(out, "P3P4A", 5) == 0);
        ck_assert_int_eq(out[n - 1], 'B');
        buf_unref(a);
        buf_unref(b);
        close(sv[0]);
        close(sv[1]);
}
END_TEST

static Suite *outq_suite(void)
{
        Suite *s = suite_create("outq");
        TCase *tc;

        tc = tcase_create("queue");
        tcase_add_test(tc, fini_drops_refs);
        tcase_add_test(tc, empty_items);
        tcase_set_timeout(tc, 10);
        suite_add_tcase(s, tc);
        tc = tcase_create("socket");
        tcase_set_timeout(tc, 60);
        tcase_add_loop_test(tc, stream_exact, 0, 2);
        tcase_add_test(tc, slab_reuse);
        tcase_add_test(tc, peer_closed);
        tcase_add_test(tc, file_too_short);
        tcase_add_test(tc, priority_lane);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(outq_suite);
