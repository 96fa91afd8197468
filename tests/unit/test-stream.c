/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "util/stream.h"
#include "runner.h"

/* ck_assert records a checkpoint through a pipe on every call: too slow for
 * loops of millions, so hot loops use this plain check. */
#define CHECK(c) do { if (!(c)) ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c); } while (0)

static uint64_t rng_state = 0x5851f42d4c957f2dull;
static uint64_t rng(void)
{
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

/* Test frame: 8-byte header "F", 3-byte sequence, 4-byte LE body length;
 * body bytes are a function of (seq, i) so delivery can be checked without
 * keeping a copy. */
#define HDR 8

static uint8_t body_byte(uint32_t seq, size_t i)
{
        return (uint8_t)(seq * 131u + i * 7u + (i >> 8));
}

struct wire {
        uint8_t *d;
        size_t len, cap;
        uint32_t nframes;
};

static void wire_frame(struct wire *w, uint32_t len, uint8_t magic)
{
        uint32_t seq = w->nframes++;

        if (w->len + HDR + len > w->cap) {
                w->cap = (w->len + HDR + len) * 2;
                w->d = realloc(w->d, w->cap);
                ck_assert_ptr_nonnull(w->d);
        }
        uint8_t *p = w->d + w->len;
        p[0] = magic;
        p[1] = (uint8_t)seq; p[2] = (uint8_t)(seq >> 8); p[3] = (uint8_t)(seq >> 16);
        p[4] = (uint8_t)len; p[5] = (uint8_t)(len >> 8); p[6] = (uint8_t)(len >> 16); p[7] = (uint8_t)(len >> 24);
        for (size_t i = 0; i < len; i++)
                p[HDR + i] = body_byte(seq, i);
        w->len += HDR + len;
}

/* Random sizes: many empty and tiny frames, some mid-sized, a few of MBs. */
static void wire_random(struct wire *w, int n, size_t big)
{
        for (int i = 0; i < n; i++) {
                unsigned k = (unsigned)(rng() % 10);
                uint32_t len = k < 3 ? 0 : k < 7 ? (uint32_t)(rng() % 100) : k < 9 ? (uint32_t)(rng() % 70000) : (uint32_t)(rng() % 300000);

                if (i % 40 == 20)
                        len = (uint32_t)(big + rng() % 1000);
                wire_frame(w, len, 'F');
        }
}

struct rx_state {
        uint32_t next_seq;
        uint32_t stop_at;       /* frame_fn returns 9 at this seq (0 = never) */
        struct buf *kept;       /* a body held past the callback */
        struct stream_rx *free_me;
};

static long hdr_fn(const uint8_t *h, void *ud)
{
        if (h[0] != 'F')
                return -EPROTO;
        return (long)((uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24);
}

static int frame_fn(const uint8_t *h, struct buf *body, void *ud)
{
        struct rx_state *st = ud;
        uint32_t seq = (uint32_t)h[1] | (uint32_t)h[2] << 8 | (uint32_t)h[3] << 16;
        uint32_t len = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;

        CHECK(seq == st->next_seq);
        st->next_seq++;
        if (len == 0) {
                CHECK(body == NULL);
        } else {
                CHECK(body != NULL);
                CHECK(body->len == len);
                for (size_t i = 0; i < len; i++)
                        if (body->data[i] != body_byte(seq, i))
                                ck_abort_msg("frame %u byte %zu corrupt", seq, i);
                if (!st->kept && len > 1000)
                        st->kept = buf_ref(body);
        }
        if (st->free_me && st->stop_at == seq + 1) {
                /* The connection goes away inside the callback. */
                stream_rx_fini(st->free_me);
                free(st->free_me);
                st->free_me = NULL;
                return 9;
        }
        if (st->stop_at && st->stop_at == seq + 1)
                return 9;
        return 0;
}

static void check_kept(struct rx_state *st)
{
        /* A body kept with buf_ref outlives the rx's use of it. */
        if (st->kept) {
                ck_assert_uint_eq(st->kept->refs, 1);
                st->kept = buf_unref(st->kept);
        }
}

static const size_t rcaps[] = { HDR, 13, 100, 4096, 256 * 1024 };

START_TEST(feed_whole)
{
        struct wire w = { 0 };

        wire_random(&w, 300, 3 * 1024 * 1024);
        for (size_t k = 0; k < sizeof(rcaps) / sizeof(rcaps[0]); k++) {
                struct rx_state st = { 0 };
                struct stream_rx rx;

                ck_assert_int_eq(stream_rx_init(&rx, HDR, rcaps[k], hdr_fn, frame_fn, &st), 0);
                ck_assert_int_eq(stream_rx_feed(&rx, w.d, w.len), 0);
                ck_assert_uint_eq(st.next_seq, w.nframes);
                ck_assert_ptr_null(rx.body);
                ck_assert_uint_eq(rx.rlen - rx.roff, 0);
                stream_rx_fini(&rx);
                check_kept(&st);
        }
        free(w.d);
}
END_TEST

START_TEST(feed_one_byte)
{
        struct wire w = { 0 };

        wire_random(&w, 120, 2 * 1024 * 1024);
        for (size_t k = 0; k < sizeof(rcaps) / sizeof(rcaps[0]); k += 2) {
                struct rx_state st = { 0 };
                struct stream_rx rx;

                ck_assert_int_eq(stream_rx_init(&rx, HDR, rcaps[k], hdr_fn, frame_fn, &st), 0);
                for (size_t i = 0; i < w.len; i++)
                        CHECK(stream_rx_feed(&rx, w.d + i, 1) == 0);
                ck_assert_uint_eq(st.next_seq, w.nframes);
                stream_rx_fini(&rx);
                check_kept(&st);
        }
        free(w.d);
}
END_TEST

START_TEST(feed_random_splits)
{
        struct wire w = { 0 };

        wire_random(&w, 400, 1024 * 1024);
        for (size_t k = 0; k < sizeof(rcaps) / sizeof(rcaps[0]); k++) {
                struct rx_state st = { 0 };
                struct stream_rx rx;
                size_t off = 0;

                ck_assert_int_eq(stream_rx_init(&rx, HDR, rcaps[k], hdr_fn, frame_fn, &st), 0);
                while (off < w.len) {
                        size_t n = rng() % 3 ? rng() % 30 : rng() % 100000;

                        if (n > w.len - off)
                                n = w.len - off;
                        ck_assert_int_eq(stream_rx_feed(&rx, w.d + off, n), 0);
                        off += n;
                }
                ck_assert_uint_eq(st.next_seq, w.nframes);
                stream_rx_fini(&rx);
                check_kept(&st);
        }
        free(w.d);
}
END_TEST

START_TEST(hdr_reject)
{
        struct wire w = { 0 };
        struct rx_state st = { 0 };
        struct stream_rx rx;

        wire_frame(&w, 10, 'F');
        wire_frame(&w, 0, 'F');
        wire_frame(&w, 5000, 'F');
        wire_frame(&w, 10, 'X');        /* rejected */
        wire_frame(&w, 10, 'F');
        ck_assert_int_eq(stream_rx_init(&rx, HDR, 64, hdr_fn, frame_fn, &st), 0);
        ck_assert_int_eq(stream_rx_feed(&rx, w.d, w.len), -EPROTO);
        ck_assert_uint_eq(st.next_seq, 3);
        stream_rx_fini(&rx);
        stream_rx_fini(&rx);    /* twice is safe */
        check_kept(&st);
        free(w.d);
}
END_TEST

START_TEST(callback_stops)
{
        struct wire w = { 0 };
        struct rx_state st = { .stop_at = 3 };
        struct stream_rx rx;

        for (int i = 0; i < 6; i++)
                wire_frame(&w, i % 2 ? 0 : 3000, 'F');
        ck_assert_int_eq(stream_rx_init(&rx, HDR, 4096, hdr_fn, frame_fn, &st), 0);
        ck_assert_int_eq(stream_rx_feed(&rx, w.d, w.len), 9);
        ck_assert_uint_eq(st.next_seq, 3);      /* nothing after the stop */
        stream_rx_fini(&rx);
        check_kept(&st);
        free(w.d);
}
END_TEST

START_TEST(init_checks)
{
        struct stream_rx rx;

        ck_assert_int_eq(stream_rx_init(&rx, 65, 4096, hdr_fn, frame_fn, NULL), -EINVAL);
        ck_assert_int_eq(stream_rx_init(&rx, 8, 4, hdr_fn, frame_fn, NULL), -EINVAL);
        stream_rx_fini(&rx);
}
END_TEST

static void make_pair(int sv[2])
{
        int one = 1;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one)), 0);
        ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &one, sizeof(one)), 0);
}

static void end_pair(struct stream_rx *rx, struct rx_state *st, int sv[2])
{
        stream_rx_fini(rx);
        check_kept(st);
        close(sv[0]);
        close(sv[1]);
}

/* Single thread: write what the tiny socket buffer takes, read, repeat. */
START_TEST(socket_pair)
{
        struct wire w = { 0 };
        int sv[2];

        wire_random(&w, 300, 3 * 1024 * 1024);
        for (size_t k = 1; k < sizeof(rcaps) / sizeof(rcaps[0]); k++) {
                struct rx_state st = { 0 };
                struct stream_rx rx;
                size_t off = 0;
                int r, eof = 0;

                make_pair(sv);
                ck_assert_int_eq(stream_rx_init(&rx, HDR, rcaps[k], hdr_fn, frame_fn, &st), 0);
                for (int rounds = 0; !eof; rounds++) {
                        if (off < w.len) {
                                size_t n = 1 + rng() % 20000;
                                ssize_t m;

                                if (n > w.len - off)
                                        n = w.len - off;
                                m = write(sv[0], w.d + off, n);
                                if (m < 0)
                                        CHECK(errno == EAGAIN);
                                else
                                        off += (size_t)m;
                                if (off == w.len)
                                        shutdown(sv[0], SHUT_WR);
                        }
                        r = stream_rx_read(&rx, sv[1]);
                        if (r == STREAM_EOF)
                                eof = 1;
                        else
                                CHECK(r == 0);
                        CHECK(rounds < 10000000);
                }
                ck_assert_uint_eq(off, w.len);
                ck_assert_uint_eq(st.next_seq, w.nframes);
                end_pair(&rx, &st, sv);
        }
        free(w.d);
}
END_TEST

/* A body being filled is read in place and what follows it lands in the read
 * buffer in the same readv: the end of one body, an empty frame, a small one
 * and the start of the next large body arrive in one write and are taken in
 * one call, in order and intact, with a read buffer smaller than any body. */
START_TEST(body_then_frames_in_one_read)
{
        struct wire w = { 0 };
        struct rx_state st = { 0 };
        struct stream_rx rx;
        int sv[2];

        wire_frame(&w, 5000, 'F');
        wire_frame(&w, 0, 'F');
        wire_frame(&w, 10, 'F');
        wire_frame(&w, 3000, 'F');
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        ck_assert_int_eq(stream_rx_init(&rx, HDR, 64, hdr_fn, frame_fn, &st), 0);
        ck_assert_int_eq(write(sv[0], w.d, HDR + 100), HDR + 100);
        ck_assert_int_eq(stream_rx_read(&rx, sv[1]), 0);
        ck_assert_uint_eq(st.next_seq, 0);
        ck_assert_uint_eq(stream_rx_partial(&rx), HDR + 100);
        ck_assert_int_eq(write(sv[0], w.d + HDR + 100, w.len - HDR - 100), (ssize_t)(w.len - HDR - 100));
        ck_assert_int_eq(stream_rx_read(&rx, sv[1]), 0);
        ck_assert_uint_eq(st.next_seq, 4);
        ck_assert_uint_eq(stream_rx_partial(&rx), 0);
        end_pair(&rx, &st, sv);
        free(w.d);
}
END_TEST

START_TEST(socket_eof_and_free_in_callback)
{
        struct wire w = { 0 };
        struct rx_state st = { 0 };
        struct stream_rx *rx = malloc(sizeof(*rx));
        int sv[2];

        /* Immediate EOF. */
        make_pair(sv);
        ck_assert_int_eq(stream_rx_init(rx, HDR, 4096, hdr_fn, frame_fn, &st), 0);
        ck_assert_int_eq(stream_rx_read(rx, sv[1]), 0);         /* nothing yet: EAGAIN */
        close(sv[0]);
        ck_assert_int_eq(stream_rx_read(rx, sv[1]), STREAM_EOF);
        close(sv[1]);

        /* The callback frees rx and returns nonzero: stream_rx_read must
         * return that without touching rx (valgrind checks). */
        make_pair(sv);
        wire_frame(&w, 10, 'F');
        wire_frame(&w, 20, 'F');
        wire_frame(&w, 30, 'F');
        ck_assert_int_eq(write(sv[0], w.d, w.len), (ssize_t)w.len);
        st.stop_at = 2;
        st.free_me = rx;
        ck_assert_int_eq(stream_rx_read(rx, sv[1]), 9);
        ck_assert_ptr_null(st.free_me);
        ck_assert_uint_eq(st.next_seq, 2);
        close(sv[0]);
        close(sv[1]);
        free(w.d);
}
END_TEST

/* ---- skipped bodies ------------------------------------------------------ */

static struct stream_rx *skip_rx;
static uint32_t skip_delivered;

static long skip_hdr_fn(const uint8_t *h, void *ud)
{
        if (h[0] == 'S')
                stream_rx_skip_body(skip_rx);
        else if (h[0] != 'F')
                return -EPROTO;
        return (long)((uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24);
}

static int skip_frame_fn(const uint8_t *h, struct buf *body, void *ud)
{
        uint32_t seq = (uint32_t)h[1] | (uint32_t)h[2] << 8 | (uint32_t)h[3] << 16;
        uint32_t len = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;

        /* an empty skipped frame is still a frame; a skipped body never arrives */
        CHECK(h[0] == 'F' || len == 0);
        CHECK((body == NULL) == (len == 0));
        for (size_t i = 0; i < len; i++)
                if (body->data[i] != body_byte(seq, i))
                        ck_abort_msg("frame %u byte %zu corrupt", seq, i);
        skip_delivered++;
        return 0;
}

/* A body the header callback refuses to keep is read through and dropped,
 * never allocated, whatever the splits; the frames after it arrive intact,
 * and stream_rx_partial counts what came of an unfinished frame. */
START_TEST(skip_bodies)
{
        struct wire w = { 0 };
        uint32_t expect = 0;

        for (int i = 0; i < 200; i++) {
                bool skip = i % 3 == 1;
                uint32_t len = (uint32_t)(rng() % (i % 17 == 0 ? 400000 : 3000));
                wire_frame(&w, skip ? len : len / 2, skip ? 'S' : 'F');
                expect += !skip || len == 0;
        }
        for (size_t k = 0; k < sizeof(rcaps) / sizeof(rcaps[0]); k++) {
                struct stream_rx rx;

                skip_rx = &rx;
                skip_delivered = 0;
                ck_assert_int_eq(stream_rx_init(&rx, HDR, rcaps[k], skip_hdr_fn, skip_frame_fn, NULL), 0);
                for (size_t off = 0; off < w.len;) {
                        size_t n = 1 + rng() % (k % 2 ? 7 : 70000);
                        if (n > w.len - off)
                                n = w.len - off;
                        CHECK(stream_rx_feed(&rx, w.d + off, n) == 0);
                        off += n;
                        /* skipped bodies cost no buffer */
                        CHECK(!rx.body || rx.hdr[0] == 'F');
                }
                ck_assert_uint_eq(skip_delivered, expect);
                ck_assert_uint_eq(stream_rx_partial(&rx), 0);
                stream_rx_fini(&rx);
        }

        /* partial: a header and part of a skipped body, then of a kept one */
        struct wire p = { 0 };
        wire_frame(&p, 1000, 'S');
        wire_frame(&p, 1000, 'F');
        struct stream_rx rx;
        skip_rx = &rx;
        skip_delivered = 0;
        ck_assert_int_eq(stream_rx_init(&rx, HDR, 4096, skip_hdr_fn, skip_frame_fn, NULL), 0);
        ck_assert_uint_eq(stream_rx_partial(&rx), 0);
        ck_assert_int_eq(stream_rx_feed(&rx, p.d, 5), 0);
        ck_assert_uint_eq(stream_rx_partial(&rx), 5);
        ck_assert_int_eq(stream_rx_feed(&rx, p.d + 5, HDR + 100 - 5), 0);
        ck_assert_uint_eq(stream_rx_partial(&rx), HDR + 100);
        ck_assert_int_eq(stream_rx_feed(&rx, p.d + HDR + 100, 900 + HDR + 10), 0);
        ck_assert_uint_eq(stream_rx_partial(&rx), HDR + 10);
        ck_assert_int_eq(stream_rx_feed(&rx, p.d + 2 * HDR + 1010, 990), 0);
        ck_assert_uint_eq(stream_rx_partial(&rx), 0);
        ck_assert_uint_eq(skip_delivered, 1);
        stream_rx_fini(&rx);
        free(p.d);
        free(w.d);
}
END_TEST

static Suite *stream_suite(void)
{
        Suite *s = suite_create("stream");
        TCase *tc;

        tc = tcase_create("feed");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, feed_whole);
        tcase_add_test(tc, feed_one_byte);
        tcase_add_test(tc, feed_random_splits);
        tcase_add_test(tc, hdr_reject);
        tcase_add_test(tc, callback_stops);
        tcase_add_test(tc, init_checks);
        tcase_add_test(tc, skip_bodies);
        suite_add_tcase(s, tc);
        tc = tcase_create("socket");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, socket_pair);
        tcase_add_test(tc, body_then_frames_in_one_read);
        tcase_add_test(tc, socket_eof_and_free_in_callback);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(stream_suite);
