/* SPDX-License-Identifier: MIT */
/* The join handshake against hostile and unauthorised peers: the swarm
 * secret (missing, wrong, right, badly protected), the bytes p2sd sends to
 * an address that proved nothing (per message type), forged answers sprayed
 * at a joining p2s-fetch, and a flood of cookie-proven HELLOs that must not
 * lock honest joins out. The raw peers speak through the project's codec. */
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"
#include "fetch/exitcode.h"
#include "proto/cookie.h"
#include "proto/wire.h"
#include "runner.h"

/* A UDP socket bound to ip (port 0) and connected to 127.0.0.1:port. */
static int udp_from(const char *ip, unsigned port)
{
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        ck_assert_int_ge(fd, 0);
        struct sockaddr_in a = { .sin_family = AF_INET };
        ck_assert_int_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        return fd;
}


static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void)
{
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t hello_pkt(uint8_t *out, size_t cap, const uint8_t nonce[P2S_NONCE_SIZE], const char *name,
                        uint64_t cookie)
{
        uint8_t body[P2S_HELLO_FIXED + P2S_MAX_NAME];
        size_t bl = wire_put_hello(body, sizeof(body), nonce, NULL, name, strlen(name));
        struct p2s_hdr h = { .type = P2S_HELLO, .token = cookie, .chunk = P2S_NO_CHUNK };
        return wire_encode(out, cap, &h, body, (uint32_t)bl);
}

static void write_secret(const char *name, const char *text, mode_t mode)
{
        h_write_text(name, text);
        ck_assert_int_eq(chmod(name, mode), 0);
}

/* ---- the swarm secret -------------------------------------------------------- */

START_TEST(secret_required)
{
        h_make_file("src.bin", 200 * 1000 + 7, 81);
        write_secret("swarm.key", "correct horse battery staple\n", 0600);
        write_secret("other.key", "correct horse battery stapler\n", 0600);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "2", "--secret-file", "swarm.key", "src.bin", NULL);

        struct h_proc *none = h_fetch(port, "src.bin", "none.bin", "--timeout", "5", NULL);
        ck_assert_int_eq(h_wait(none, 10), 4);
        ck_assert_msg(h_log_has(none, "p2sd requires a swarm secret: use --secret-file"), "%s", h_tail(none));

        struct h_proc *wrong = h_fetch(port, "src.bin", "wrong.bin", "--timeout", "5", "--secret-file",
                                       "other.key", NULL);
        ck_assert_int_eq(h_wait(wrong, 10), 4);
        ck_assert_msg(h_log_has(wrong, "the swarm secret was refused"), "%s", h_tail(wrong));

        const char *const fargs[] = { "--secret-file", "swarm.key", NULL };
        struct h_proc *ps[2];
        h_start_clients(ps, 2, port, "src.bin", "out", fargs);
        h_expect_copies(ps, 2, "src.bin", "out", 30);
        ck_assert_msg(h_log_has(d, "wrong swarm secret") && h_log_has(d, "no proof of the swarm secret"),
                      "refusals not logged:\n%s", h_tail(d));
        ck_assert_msg(!h_log_has(d, "horse"), "the secret reached the log:\n%s", h_tail(d));
        h_stop_p2sd(d, 5);
}
END_TEST

/* A client with a secret joins a server without one: the proof is ignored. */
START_TEST(secret_unused)
{
        h_make_file("src.bin", 50 * 1000, 82);
        write_secret("swarm.key", "k", 0400);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "1", "src.bin", NULL);
        struct h_proc *f = h_fetch(port, "src.bin", "out.bin", "--secret-file", "swarm.key", NULL);
        ck_assert_int_eq(h_wait(f, 20), 0);
        h_assert_fetched("src.bin", "out.bin");
        h_stop_p2sd(d, 5);
}
END_TEST

/* Group- or world-accessible, empty, or not a file: both programs exit 2
 * at startup with one line naming it. */
START_TEST(secret_file_refused)
{
        h_make_file("src.bin", 1000, 83);
        static const struct { const char *name, *text; mode_t mode; const char *why; } bad[] = {
                { "group.key", "k\n", 0640, "readable or writable by group or others" },
                { "world.key", "k\n", 0606, "readable or writable by group or others" },
                { "empty.key", "\n", 0600, "empty" },
                { ".", NULL, 0, "not a regular file" },
                { "missing.key", NULL, 0, "No such file" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (bad[i].text)
                        write_secret(bad[i].name, bad[i].text, bad[i].mode);
                const char *dargv[] = { h_bin_p2sd(), "--listen", "127.0.0.1", "--port", "0", "--secret-file",
                                        bad[i].name, "src.bin", NULL };
                struct h_proc *d = h_run_prog("p2sd", dargv, 10);
                ck_assert_msg(d->code == 2, "p2sd exited %d for %s", d->code, bad[i].name);
                ck_assert_msg(h_log_has(d, bad[i].why) && h_log_count(d, "\n") == 1, "p2sd for %s:\n%s",
                              bad[i].name, h_log(d));
                const char *fargv[] = { h_bin_fetch(), "--secret-file", bad[i].name, "127.0.0.1:9", "src.bin",
                                        "-o", "x.bin", NULL };
                struct h_proc *f = h_run_prog("p2s-fetch", fargv, 10);
                ck_assert_msg(f->code == 2, "p2s-fetch exited %d for %s", f->code, bad[i].name);
                ck_assert_msg(h_log_has(f, bad[i].why) && h_log_count(f, "\n") == 1, "p2s-fetch for %s:\n%s",
                              bad[i].name, h_log(f));
                ck_assert(!h_exists("x.bin.part") && !h_exists("x.bin"));
        }
}
END_TEST

/* ---- amplification ------------------------------------------------------------ */

struct tally {
        uint64_t sent, got;
        unsigned replies;
};

/* Takes one answer off fd within timeout_ms into t, failing on any type but
 * COOKIE and ERR; true if it was the COOKIE for the marker nonce. */
static bool take_reply(int fd, struct tally *t, int timeout_ms, const uint8_t marker[P2S_NONCE_SIZE], bool *got)
{
        static uint8_t in[70000];
        ssize_t r = h_recv_within(fd, in, sizeof(in), timeout_ms);
        *got = r > 0;
        if (r <= 0)
                return false;
        struct p2s_msg m;
        ck_assert_int_eq(wire_decode(in, (size_t)r, &m), WIRE_OK);
        ck_assert_msg(m.hdr.type == P2S_COOKIE || m.hdr.type == P2S_ERR, "an unproven address got a %s",
                      wire_type_name(m.hdr.type));
        if (m.hdr.type == P2S_COOKIE && join_reply_is_ours(&m, marker))
                return true;
        t->got += (uint64_t)r;
        t->replies++;
        return false;
}

/* Receives every answer to what was sent before a marker HELLO (its own
 * nonce), whose COOKIE is the last thing p2sd sends us: datagrams on one
 * loopback path keep their order. A marker lost to a full socket buffer
 * is sent again. */
static void drain_until_marker(int fd, unsigned port, struct tally *t, uint8_t tag)
{
        static uint32_t seq;
        uint8_t nonce[P2S_NONCE_SIZE], pkt[2048];
        memset(nonce, 0xee, sizeof(nonce));
        nonce[0] = tag;
        seq++;
        memcpy(nonce + 1, &seq, sizeof(seq));
        size_t n = hello_pkt(pkt, sizeof(pkt), nonce, "marker", 0);
        for (int tries = 0; tries < 20; tries++) {
                ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
                bool got = true;
                while (got)
                        if (take_reply(fd, t, 500, nonce, &got))
                                return;
        }
        ck_abort_msg("no COOKIE for the marker HELLO (port %u)", port);
}

/* One datagram of every type (and unknown ones), valid-looking headers with
 * random ids, tokens and chunks, bodies of every length the type allows
 * (HELLO of every size), some of another version: from an address that
 * never echoed a cookie, p2sd sends back at most as many bytes as it got,
 * for every type, and only COOKIE or ERR. */
START_TEST(no_amplification)
{
        h_make_file("src.bin", 100 * 1000, 84);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "5", "src.bin", NULL);
        int fd = udp_from("127.0.0.3", port);
        static uint8_t pkt[P2S_MAX_DGRAM];
        for (unsigned type = 0; type <= P2S_TYPE_MAX + 2; type++) {
                struct tally t = { 0 };
                unsigned since_sync = 0;
                uint32_t lo = 0, hi = wire_max_body((uint8_t)type, 0);
                if (hi > 1400)
                        hi = 1400;      /* lengths past one MTU teach nothing new */
                unsigned step = hi > 400 ? 7 : 1;
                for (uint32_t len = lo; len <= hi; len += step) {
                        for (int variant = 0; variant < 3; variant++) {
                                struct p2s_hdr h = { .type = (uint8_t)type, .flags = (uint16_t)rng(),
                                                     .swarm_id = (uint32_t)rng(), .member_id = (uint32_t)rng(),
                                                     .token = rng(),
                                                     .chunk = variant == 1 ? P2S_NO_CHUNK : (uint32_t)rng() % 100 };
                                for (uint32_t k = 0; k < len; k++)
                                        pkt[P2S_HDR_SIZE + k] = (uint8_t)('a' + rng() % 26);
                                if (type == P2S_ERR && len >= 2)
                                        pkt[P2S_HDR_SIZE + 1] = 1;
                                size_t n = wire_encode(pkt, sizeof(pkt), &h, pkt + P2S_HDR_SIZE, len);
                                ck_assert_uint_gt(n, 0);
                                if (variant == 2)
                                        pkt[4] = P2S_VERSION + 1 + (uint8_t)(rng() % 3);
                                ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
                                t.sent += n;
                                /* p2sd reads at its pace: never far ahead of it */
                                if (++since_sync == 32) {
                                        drain_until_marker(fd, port, &t, (uint8_t)type);
                                        since_sync = 0;
                                }
                        }
                }
                /* and datagrams cut short of the header, or of the body */
                for (size_t n = 0; n < P2S_HDR_SIZE + 8; n++) {
                        struct p2s_hdr h = { .type = (uint8_t)type, .body_len = 8, .chunk = P2S_NO_CHUNK };
                        wire_encode_hdr(pkt, &h);
                        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
                        t.sent += n;
                }
                drain_until_marker(fd, port, &t, (uint8_t)type);
                ck_assert_msg(t.got <= t.sent, "type %u (%s): %llu bytes back for %llu sent in %u replies", type,
                              wire_type_name((uint8_t)type), (unsigned long long)t.got,
                              (unsigned long long)t.sent, t.replies);
                printf("type %2u %-12s sent %8llu bytes, got back %7llu in %4u replies: ratio %.3f\n", type,
                       wire_type_name((uint8_t)type), (unsigned long long)t.sent, (unsigned long long)t.got,
                       t.replies, (double)t.got / (double)t.sent);
        }
        close(fd);
        h_stop_p2sd(d, 5);
}
END_TEST

/* ---- forged answers at a joining client ---------------------------------------- */

/* The test is the server (so its forgeries even come from the server's
 * address and port): answers without the client's nonce, COOKIE, WELCOME
 * (pointing at a listener of ours) and ERR alike, neither end nor redirect
 * the join; the genuine answers that follow are obeyed, and a reason with
 * control bytes is logged escaped. */
START_TEST(forged_answers)
{
        int tcp, udp, trap, one = 1;
        unsigned port = h_tcp_udp_pair(&tcp, &udp);
        trap = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in ta = { .sin_family = AF_INET };
        ta.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        setsockopt(trap, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        ck_assert_int_eq(bind(trap, (struct sockaddr *)&ta, sizeof(ta)), 0);
        ck_assert_int_eq(listen(trap, 4), 0);
        socklen_t tl = sizeof(ta);
        getsockname(trap, (struct sockaddr *)&ta, &tl);

        struct h_proc *f = h_fetch(port, "src.bin", "out.bin", "--timeout", "8", "--log-level", "debug", NULL);
        uint8_t in[2048], out[512], nonce[P2S_NONCE_SIZE];
        struct sockaddr_storage cl;
        socklen_t cll = sizeof(cl);
        struct pollfd p = { .fd = udp, .events = POLLIN };
        ck_assert_msg(poll(&p, 1, 5000) == 1, "no HELLO from p2s-fetch");
        ssize_t r = recvfrom(udp, in, sizeof(in), 0, (struct sockaddr *)&cl, &cll);
        struct p2s_msg m;
        ck_assert(r > 0 && wire_decode(in, (size_t)r, &m) == WIRE_OK && m.hdr.type == P2S_HELLO);
        struct wire_hello wh;
        wire_get_hello(&m, &wh);
        memcpy(nonce, wh.nonce, sizeof(nonce));
        ck_assert_uint_eq(m.hdr.token, 0);

        uint8_t bad[P2S_NONCE_SIZE];
        memcpy(bad, nonce, sizeof(bad));
        bad[7] ^= 0x01;
        uint8_t body[P2S_ERR_BODY_MIN + P2S_MAX_REASON];
        size_t n, bl;
        for (int round = 0; round < 50; round++) {
                const uint8_t *use = round % 2 ? bad : (const uint8_t *)"0123456789abcdef";
                bl = wire_put_join_err(body, sizeof(body), use, P2S_ERR_NOFILE, "forged refusal");
                struct p2s_hdr e = { .type = P2S_ERR, .flags = P2S_F_FATAL | P2S_F_JOIN, .chunk = P2S_NO_CHUNK };
                n = wire_encode(out, sizeof(out), &e, body, (uint32_t)bl);
                sendto(udp, out, n, 0, (struct sockaddr *)&cl, cll);
                /* an old-style ERR, without the flag: no nonce at all */
                bl = wire_put_err(body, sizeof(body), P2S_ERR_NOFILE, "forged plain refusal");
                e.flags = P2S_F_FATAL;
                n = wire_encode(out, sizeof(out), &e, body, (uint32_t)bl);
                sendto(udp, out, n, 0, (struct sockaddr *)&cl, cll);
                struct p2s_welcome w = { .control_mode = P2S_CONTROL_UDP, .port = ntohs(ta.sin_port) };
                memcpy(w.nonce, use, P2S_NONCE_SIZE);
                wire_put_welcome(body, &w);
                struct p2s_hdr wel = { .type = P2S_WELCOME, .swarm_id = 1, .member_id = 2, .token = 3,
                                       .chunk = P2S_NO_CHUNK };
                n = wire_encode(out, sizeof(out), &wel, body, P2S_WELCOME_SIZE);
                sendto(udp, out, n, 0, (struct sockaddr *)&cl, cll);
                struct p2s_hdr ck = { .type = P2S_COOKIE, .token = 0xbadbadbadull, .chunk = P2S_NO_CHUNK };
                n = wire_encode(out, sizeof(out), &ck, use, P2S_COOKIE_SIZE);
                sendto(udp, out, n, 0, (struct sockaddr *)&cl, cll);
        }
        /* the genuine COOKIE: the next HELLOs echo it, never the forged one */
        struct p2s_hdr ck = { .type = P2S_COOKIE, .token = 0x600d600dull, .chunk = P2S_NO_CHUNK };
        n = wire_encode(out, sizeof(out), &ck, nonce, P2S_COOKIE_SIZE);
        sendto(udp, out, n, 0, (struct sockaddr *)&cl, cll);
        for (;;) {
                ck_assert_msg(poll(&p, 1, 5000) == 1, "p2s-fetch stopped sending HELLOs:\n%s", h_tail(f));
                r = recv(udp, in, sizeof(in), 0);
                ck_assert(r > 0 && wire_decode(in, (size_t)r, &m) == WIRE_OK && m.hdr.type == P2S_HELLO);
                ck_assert_uint_ne(m.hdr.token, 0xbadbadbadull);
                wire_get_hello(&m, &wh);
                ck_assert_mem_eq(wh.nonce, nonce, P2S_NONCE_SIZE);
                if (m.hdr.token == 0x600d600dull)
                        break;
        }
        ck_assert_msg(!h_wait_for(f, 0.01), "a forged answer ended the join:\n%s", h_log(f));
        /* the genuine refusal, with bytes that would forge a journal record */
        bl = wire_put_join_err(body, sizeof(body), nonce, P2S_ERR_NOFILE, "genuine\n<0>refusal\x1b[2J");
        struct p2s_hdr e = { .type = P2S_ERR, .flags = P2S_F_FATAL | P2S_F_JOIN, .chunk = P2S_NO_CHUNK };
        n = wire_encode(out, sizeof(out), &e, body, (uint32_t)bl);
        sendto(udp, out, n, 0, (struct sockaddr *)&cl, cll);
        ck_assert_int_eq(h_wait(f, 10), 4);
        const char *log = h_log(f);
        ck_assert_msg(strstr(log, "genuine\\x0a<0>refusal\\x1b[2J"), "refusal not escaped:\n%s", log);
        ck_assert_msg(!strstr(log, "forged"), "a forged reason was taken:\n%s", log);
        ck_assert_msg(strstr(log, "does not answer our HELLO"), "drops not logged:\n%s", log);
        ck_assert_msg(accept(trap, NULL, NULL) < 0 && errno == EAGAIN, "a forged WELCOME redirected the join");
        close(trap);
        close(tcp);
        close(udp);
}
END_TEST

/* ---- floods of proven joins ----------------------------------------------------- */

/* One cookie-proven join from ip: 1 WELCOME, 0 refused BUSY, -1 other. */
static int proven_join(const char *ip, unsigned port, uint32_t seq)
{
        int fd = udp_from(ip, port);
        uint8_t nonce[P2S_NONCE_SIZE] = { 0 }, pkt[512], in[512];
        memcpy(nonce, &seq, sizeof(seq));
        size_t n = hello_pkt(pkt, sizeof(pkt), nonce, "src.bin", 0);
        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        ssize_t r = h_recv_within(fd, in, sizeof(in), 3000);
        struct p2s_msg m;
        ck_assert(r > 0 && wire_decode(in, (size_t)r, &m) == WIRE_OK && m.hdr.type == P2S_COOKIE);
        n = hello_pkt(pkt, sizeof(pkt), nonce, "src.bin", m.hdr.token);
        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        r = h_recv_within(fd, in, sizeof(in), 3000);
        close(fd);
        ck_assert(r > 0 && wire_decode(in, (size_t)r, &m) == WIRE_OK);
        ck_assert(join_reply_is_ours(&m, nonce));
        if (m.hdr.type == P2S_WELCOME)
                return 1;
        if (m.hdr.type == P2S_ERR && wire_get_err(m.body + P2S_NONCE_SIZE, m.hdr.body_len - P2S_NONCE_SIZE, NULL,
                                                  0) == P2S_ERR_BUSY)
                return 0;
        return -1;
}

/* 4096 proven HELLOs from one address take a bounded share of the join
 * slots; a flood from many addresses past the global bound evicts the
 * oldest; an honest swarm from another address joins and completes. */
START_TEST(flood_no_lockout)
{
        h_make_file("src.bin", 150 * 1000 + 9, 85);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "2", "--gather-timeout", "30", "src.bin", NULL);
        unsigned welcomed = 0, busy = 0;
        for (uint32_t i = 0; i < 4096; i++) {
                int r = proven_join("127.0.0.2", port, i);
                ck_assert_int_ge(r, 0);
                welcomed += (unsigned)r;
                busy += (unsigned)!r;
        }
        ck_assert_msg(welcomed >= 16 && welcomed <= 64, "one address got %u joins", welcomed);
        ck_assert_uint_eq(welcomed + busy, 4096);
        /* 140 addresses x 32 is past the 4096 joins waiting in all */
        for (uint32_t a = 1; a <= 140; a++) {
                char ip[32];
                snprintf(ip, sizeof(ip), "127.0.9.%u", a);
                for (uint32_t i = 0; i < 32; i++)
                        ck_assert_int_eq(proven_join(ip, port, a << 8 | i), 1);
        }
        ck_assert_msg(h_log_wait_for(d, "dropping the oldest", 5), "no eviction logged:\n%s", h_tail(d));
        struct h_proc *ps[2];
        h_start_clients(ps, 2, port, "src.bin", "out", NULL);
        h_expect_copies(ps, 2, "src.bin", "out", 30);
        h_stop_p2sd(d, 5);
}
END_TEST

static uint64_t mono_us(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* A server that never answers: the HELLOs back off from the first guess,
 * doubling, but never wait longer than JOIN_HELLO_RTO_MAX_US between two
 * (a lossy path must not leave a join seconds behind), and they stop at
 * --timeout. Each goes out twice, the copies back to back and alike. */
START_TEST(hello_backoff_is_capped)
{
        int tcp, udp;
        unsigned port = h_tcp_udp_pair(&tcp, &udp);
        struct h_proc *f = h_fetch(port, "src.bin", "out.bin", "--timeout", "3", NULL);
        uint64_t at[64];
        unsigned n = 0, copies[64] = { 0 };
        struct pollfd p = { .fd = udp, .events = POLLIN };
        uint8_t in[2048], first[2048];
        ssize_t first_len = 0;
        while (n < 64 && poll(&p, 1, 1500) == 1) {
                ssize_t r = recv(udp, in, sizeof(in), 0);
                struct p2s_msg m;
                if (r <= 0 || wire_decode(in, (size_t)r, &m) != WIRE_OK || m.hdr.type != P2S_HELLO)
                        continue;
                uint64_t t = mono_us();
                if (n && t - at[n - 1] < 10000) {
                        /* the copy: the same datagram */
                        ck_assert_int_eq(r, first_len);
                        ck_assert_int_eq(memcmp(in, first, (size_t)r), 0);
                        copies[n - 1]++;
                        continue;
                }
                memcpy(first, in, (size_t)r);
                first_len = r;
                copies[n] = 1;
                at[n++] = t;
        }
        ck_assert_int_eq(h_wait(f, 10), FETCH_EXIT_UNREACHABLE);
        for (unsigned i = 0; i < n; i++)
                ck_assert_msg(copies[i] == 2, "HELLO %u went out %u times", i, copies[i]);
        /* 0, 50, 150, 350, 750 ms, then every 500 ms until 3 s */
        ck_assert_msg(n >= 8, "only %u HELLOs in 3 s", n);
        uint64_t longest = 0;
        for (unsigned i = 1; i < n; i++)
                if (at[i] - at[i - 1] > longest)
                        longest = at[i] - at[i - 1];
        ck_assert_msg(at[1] - at[0] < JOIN_HELLO_RTO_MAX_US / 2, "the first retry after %llu us",
                      (unsigned long long)(at[1] - at[0]));
        ck_assert_msg(longest >= JOIN_HELLO_RTO_MAX_US * 3 / 4 && longest < JOIN_HELLO_RTO_MAX_US + 250000,
                      "longest wait between HELLOs %llu us", (unsigned long long)longest);
        close(tcp);
        close(udp);
        h_proc_free(f);
}
END_TEST

/* Takes the next datagram off fd within a second: it must be a t. Its
 * body goes to body when that is not NULL (cap bytes at most). */
static struct p2s_hdr expect_answer_body(int fd, uint8_t t, uint8_t *body, size_t cap)
{
        static uint8_t in[2048];
        ssize_t r = h_recv_within(fd, in, sizeof(in), 1000);
        ck_assert_msg(r > 0, "no %s", wire_type_name(t));
        struct p2s_msg m;
        ck_assert_int_eq(wire_decode(in, (size_t)r, &m), WIRE_OK);
        ck_assert_msg(m.hdr.type == t, "a %s, not a %s", wire_type_name(m.hdr.type), wire_type_name(t));
        if (body)
                memcpy(body, m.body, m.hdr.body_len < cap ? m.hdr.body_len : cap);
        return m.hdr;
}

static struct p2s_hdr expect_answer(int fd, uint8_t t)
{
        return expect_answer_body(fd, t, NULL, 0);
}

/* p2s-fetch sends every HELLO twice: p2sd answers each copy, with the same
 * cookie, and the same WELCOME (one member, one token) for both copies of
 * the HELLO that echoes it. */
START_TEST(hello_copies_make_one_member)
{
        h_make_file("src.bin", 100 * 1000, 85);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "5", "src.bin", NULL);
        int fd = udp_from("127.0.0.4", port);
        uint8_t nonce[P2S_NONCE_SIZE], pkt[2048];
        memset(nonce, 0x42, sizeof(nonce));
        size_t n = hello_pkt(pkt, sizeof(pkt), nonce, "src.bin", 0);
        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        struct p2s_hdr c1 = expect_answer(fd, P2S_COOKIE), c2 = expect_answer(fd, P2S_COOKIE);
        ck_assert(c1.token && c1.token == c2.token);
        n = hello_pkt(pkt, sizeof(pkt), nonce, "src.bin", c1.token);
        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        struct p2s_hdr w1 = expect_answer(fd, P2S_WELCOME), w2 = expect_answer(fd, P2S_WELCOME);
        ck_assert_uint_eq(w1.member_id, w2.member_id);
        ck_assert(w1.token && w1.token == w2.token);
        ck_assert_uint_eq(w1.swarm_id, w2.swarm_id);
        close(fd);
        h_stop_p2sd(d, 5);
}
END_TEST

/* The dgram_size a tcp-mode p2sd offers a member joining over loopback. */
static uint32_t offered_dgram(const char *max_datagram)
{
        unsigned port;
        struct h_proc *d = max_datagram ? h_p2sd(&port, "--control", "tcp", "-D", max_datagram, "src.bin", NULL)
                                        : h_p2sd(&port, "--control", "tcp", "src.bin", NULL);
        int fd = udp_from("127.0.0.5", port);
        uint8_t nonce[P2S_NONCE_SIZE], pkt[2048], body[P2S_WELCOME_SIZE];
        memset(nonce, 0x17, sizeof(nonce));
        size_t n = hello_pkt(pkt, sizeof(pkt), nonce, "src.bin", 0);
        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        struct p2s_hdr c = expect_answer(fd, P2S_COOKIE);
        n = hello_pkt(pkt, sizeof(pkt), nonce, "src.bin", c.token);
        ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        expect_answer_body(fd, P2S_WELCOME, body, sizeof(body));
        struct p2s_welcome w;
        wire_get_welcome(body, &w);
        ck_assert_uint_eq(w.control_mode, P2S_CONTROL_TCP);
        close(fd);
        h_stop_p2sd(d, 5);
        return w.dgram_size;
}

/* Chunk data goes in datagrams as large as the route to the member carries
 * whole (loopback: its MTU less 28 bytes of IPv4 and UDP header), never
 * more than --max-datagram. */
START_TEST(welcome_offers_the_route)
{
        h_make_file("src.bin", 100 * 1000, 86);
        FILE *f = fopen("/sys/class/net/lo/mtu", "r");
        unsigned mtu = 0;
        ck_assert(f && fscanf(f, "%u", &mtu) == 1);
        fclose(f);
        uint32_t route = mtu - 28 < P2S_MAX_DGRAM ? mtu - 28 : P2S_MAX_DGRAM;     /* IP_MTU says 65535 at most */
        ck_assert_uint_eq(offered_dgram(NULL), route);
        ck_assert_uint_eq(offered_dgram("9000"), 9000 < route ? 9000 : route);
        ck_assert_uint_eq(offered_dgram("1452"), 1452);
}
END_TEST

static Suite *join_suite(void)
{
        Suite *s = suite_create("join");
        TCase *tc = h_tcase("secret", 60);
        tcase_add_test(tc, secret_required);
        tcase_add_test(tc, secret_unused);
        tcase_add_test(tc, secret_file_refused);
        suite_add_tcase(s, tc);
        tc = h_tcase("hostile", 120);
        tcase_add_test(tc, no_amplification);
        tcase_add_test(tc, forged_answers);
        tcase_add_test(tc, flood_no_lockout);
        tcase_add_test(tc, hello_backoff_is_capped);
        tcase_add_test(tc, hello_copies_make_one_member);
        tcase_add_test(tc, welcome_offers_the_route);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(join_suite);
