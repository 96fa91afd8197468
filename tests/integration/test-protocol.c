/* SPDX-License-Identifier: MIT */
/* p2sd against a hand-driven peer on the wire: hostile or odd input gets a
 * counted drop, a bounded answer or a closed connection, and p2sd goes on
 * serving. The peer speaks through the project's own codec (wire.h), so
 * these tests check the daemon, not the encoder. */
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "harness.h"
#include "proto/wire.h"
#include "runner.h"





/* HELLO, COOKIE, HELLO(cookie), WELCOME: the member's header ids and token. */
static struct p2s_hdr join(int fd, const char *name, uint64_t *cookie)
{
        uint8_t pkt[512], in[512];
        size_t n = h_hello(pkt, sizeof(pkt), name, 0);
        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        ssize_t r = h_recv_within(fd, in, sizeof(in), 3000);
        struct p2s_msg m;
        ck_assert_msg(r > 0 && wire_decode(in, (size_t)r, &m) == WIRE_OK && m.hdr.type == P2S_COOKIE,
                      "no COOKIE for a first HELLO");
        /* no amplification: the answer to an unproven address is no larger */
        ck_assert_int_le(r, (ssize_t)n);
        *cookie = m.hdr.token;
        n = h_hello(pkt, sizeof(pkt), name, *cookie);
        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        r = h_recv_within(fd, in, sizeof(in), 3000);
        ck_assert_msg(r > 0 && wire_decode(in, (size_t)r, &m) == WIRE_OK && m.hdr.type == P2S_WELCOME,
                      "no WELCOME for a HELLO with its cookie");
        return m.hdr;
}

/* Malformed, foreign and unauthenticated datagrams are dropped; unknown
 * versions get an ERR no larger than the datagram; p2sd serves on. */
START_TEST(hostile_datagrams)
{
        h_make_file("src.bin", 300 * 1000 + 1, 21);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "2", "--log-level", "info", "src.bin", NULL);
        int fd = h_sock_to(port, SOCK_DGRAM);
        uint8_t pkt[2048], in[2048];

        /* a future version: ERR VERSION, no larger than what we sent */
        size_t n = h_hello(pkt, sizeof(pkt), "src.bin", 0);
        pkt[4] = P2S_VERSION + 1;
        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        ssize_t r = h_recv_within(fd, in, sizeof(in), 3000);
        ck_assert_msg(r > 0, "no answer to an unknown version");
        ck_assert_int_le(r, (ssize_t)n);
        struct p2s_hdr eh;
        ck_assert_int_eq(wire_decode_hdr(in, (size_t)r, &eh), WIRE_OK);
        ck_assert_int_eq(eh.type, P2S_ERR);

        /* a HELLO with a made-up cookie: another COOKIE, no member */
        n = h_hello(pkt, sizeof(pkt), "src.bin", 0x1234567890abcdefull);
        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        r = h_recv_within(fd, in, sizeof(in), 3000);
        struct p2s_msg m;
        ck_assert(r > 0 && wire_decode(in, (size_t)r, &m) == WIRE_OK);
        ck_assert_int_eq(m.hdr.type, P2S_COOKIE);

        /* garbage of every size, and REQs for a member that does not exist */
        uint64_t s = 0x9e3779b97f4a7c15ull;
        for (int i = 0; i < 2000; i++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                size_t len = s % sizeof(pkt);
                for (size_t k = 0; k < len; k++)
                        pkt[k] = (uint8_t)(s >> (k % 56));
                if (i % 2)
                        memcpy(pkt, "P2S1\1", len < 5 ? len : 5);       /* past the magic */
                send(fd, pkt, len, 0);
        }
        struct p2s_hdr req = { .type = P2S_REQ, .member_id = 4242, .token = 1, .chunk = 0 };
        n = wire_encode(pkt, sizeof(pkt), &req, NULL, 0);
        for (int i = 0; i < 100; i++)
                send(fd, pkt, n, 0);
        close(fd);

        /* still a server: a normal swarm completes */
        struct h_proc *ps[2];
        h_start_clients(ps, 2, port, "src.bin", "out", NULL);
        h_expect_copies(ps, 2, "src.bin", "out", 30);
        ck_assert_msg(h_log_has(d, "dropped"), "no drop was logged:\n%s", h_tail(d));
        h_stop_p2sd(d, 5);
}
END_TEST

/* Before ATTACH a TCP peer may send nothing but ATTACH: anything else, or
 * an ATTACH with a wrong token, closes the connection; nothing is read into
 * a buffer the size the peer claims. */
START_TEST(hostile_tcp)
{
        h_make_file("src.bin", 200 * 1000 + 3, 22);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "2", "src.bin", NULL);
        uint8_t pkt[64], in[64];

        /* an UPLOAD header claiming a 16 MiB body, before any ATTACH */
        struct p2s_hdr up = { .type = P2S_UPLOAD, .body_len = P2S_MAX_CHUNK, .chunk = 0 };
        wire_encode_hdr(pkt, &up);
        int t = h_sock_to(port, SOCK_STREAM);
        ck_assert_int_eq(send(t, pkt, P2S_HDR_SIZE, 0), P2S_HDR_SIZE);
        struct pollfd p = { .fd = t, .events = POLLIN };
        ck_assert_msg(poll(&p, 1, 5000) == 1 && recv(t, in, sizeof(in), 0) <= 0,
                      "p2sd kept a connection that sent UPLOAD before ATTACH");
        close(t);

        /* an ATTACH with a real member id but the wrong token */
        int u = h_sock_to(port, SOCK_DGRAM);
        uint64_t cookie;
        struct p2s_hdr w = join(u, "src.bin", &cookie);
        struct p2s_hdr at = { .type = P2S_ATTACH, .swarm_id = w.swarm_id, .member_id = w.member_id,
                              .token = w.token ^ 1, .chunk = P2S_NO_CHUNK };
        wire_encode_hdr(pkt, &at);
        t = h_sock_to(port, SOCK_STREAM);
        ck_assert_int_eq(send(t, pkt, P2S_HDR_SIZE, 0), P2S_HDR_SIZE);
        p = (struct pollfd){ .fd = t, .events = POLLIN };
        ck_assert_msg(poll(&p, 1, 5000) == 1 && recv(t, in, sizeof(in), 0) <= 0,
                      "p2sd kept a connection whose ATTACH had the wrong token");
        close(t);
        close(u);

        struct h_proc *ps[2];
        h_start_clients(ps, 2, port, "src.bin", "out", NULL);
        h_expect_copies(ps, 2, "src.bin", "out", 30);
        h_stop_p2sd(d, 5);
}
END_TEST

/* A member that said HELLO and never attached while its swarm ran, ended
 * and was freed: its repeated HELLO is answered (the old WELCOME while the
 * swarm lives, a new swarm's afterwards), an ATTACH with its old ids is
 * refused, and p2sd serves on. */
START_TEST(join_outlives_swarm)
{
        h_make_file("src.bin", 200 * 1000 + 9, 23);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "2", "--log-level", "info", "src.bin", NULL);
        int u = h_sock_to(port, SOCK_DGRAM);
        uint64_t cookie;
        struct p2s_hdr w = join(u, "src.bin", &cookie);

        struct h_proc *ps[2];
        h_start_clients(ps, 2, port, "src.bin", "out", NULL);
        h_expect_copies(ps, 2, "src.bin", "out", 30);
        h_log_wait(d, "complete:", 10);

        uint8_t pkt[512], in[512];
        size_t n = h_hello(pkt, sizeof(pkt), "src.bin", cookie);
        ck_assert_int_eq(send(u, pkt, n, 0), (ssize_t)n);
        ssize_t r = h_recv_within(u, in, sizeof(in), 3000);
        struct p2s_msg m;
        ck_assert_msg(r > 0 && wire_decode(in, (size_t)r, &m) == WIRE_OK &&
                      (m.hdr.type == P2S_WELCOME || m.hdr.type == P2S_COOKIE),
                      "no answer to a repeated HELLO after the swarm ended");

        /* the old ids are no longer a way in */
        struct p2s_hdr at = { .type = P2S_ATTACH, .swarm_id = w.swarm_id, .member_id = w.member_id,
                              .token = w.token, .chunk = P2S_NO_CHUNK };
        if (m.hdr.type != P2S_WELCOME || m.hdr.swarm_id != w.swarm_id) {
                wire_encode_hdr(pkt, &at);
                int t = h_sock_to(port, SOCK_STREAM);
                ck_assert_int_eq(send(t, pkt, P2S_HDR_SIZE, 0), P2S_HDR_SIZE);
                struct pollfd p = { .fd = t, .events = POLLIN };
                /* closed at once, or an ERR then closed: never a member of a freed swarm */
                bool closed = false;
                while (!closed && poll(&p, 1, 5000) == 1)
                        closed = recv(t, in, sizeof(in), 0) <= 0;
                ck_assert_msg(closed, "p2sd kept an ATTACH for a swarm that is gone");
                close(t);
        }
        close(u);

        h_start_clients(ps, 2, port, "src.bin", "again", NULL);
        h_expect_copies(ps, 2, "src.bin", "again", 30);
        h_stop_p2sd(d, 5);
}
END_TEST

static Suite *protocol_suite(void)
{
        Suite *s = suite_create("protocol");
        TCase *tc = h_tcase("hostile", 60);
        tcase_add_test(tc, hostile_datagrams);
        tcase_add_test(tc, hostile_tcp);
        tcase_add_test(tc, join_outlives_swarm);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(protocol_suite);
