/* SPDX-License-Identifier: MIT */
/* Hostile and broken members against real swarms: evil-peer (a member that
 * poisons, lies, floods, sends indexes out of range, stops reading or goes
 * silent), an honest member or p2sd itself SIGSTOPped, a sprayer of bad
 * datagrams and frames while a swarm of 10 runs, and 50 members stalled
 * half-way through huge UPLOAD frames. In every case the honest members
 * finish with identical copies (or, with p2sd stopped, give up in a bounded
 * time), p2sd survives with its memory bounded, and the member at fault is
 * named in p2sd's log. */
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "proto/wire.h"
#include "runner.h"

static bool alive(struct h_proc *p)
{
        return !h_wait_for(p, 0);
}

/* ---- evil-peer ----------------------------------------------------------- */

struct evil {
        struct h_proc *p;
        unsigned id;
        char addr[64];
};

static void evil_start(struct evil *e, unsigned port, const char *name, const char *flag)
{
        const char *bin = getenv("P2S_EVIL_PEER");
        ck_assert_msg(bin, "P2S_EVIL_PEER is not set");
        char ps[16];
        snprintf(ps, sizeof(ps), "%u", port);
        const char *const argv[] = { bin, flag, ps, name, NULL };
        struct h_spawn s = { .name = "evil", .argv = argv };
        e->p = h_start(&s);
        h_log_wait(e->p, "evil: member ", 10);
        const char *l = strstr(h_log(e->p), "evil: member ");
        ck_assert_msg(sscanf(l, "evil: member %u at %63s", &e->id, e->addr) == 2, "%s", h_tail(e->p));
}

/* 6 honest members and evil-peer FLAG in one swarm (--replicas 1, no cache:
 * the evil member's share is needed through it); every honest copy is
 * identical, p2sd lives and stops cleanly; with reason, p2sd logged the
 * evil member dropped for it, by id and address. */
static void evil_swarm(const char *flag, const char *control, const char *reason, uint64_t seed)
{
        h_make_file("src.bin", (1u << 20) + 333, seed);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "7", "--gather-timeout", "20", "--cache", "1",
                                  "--chunk-size", "16K", "--replicas", "1", "--control", control,
                                  "--log-level", "info", "src.bin", NULL);
        struct evil e;
        evil_start(&e, port, "src.bin", flag);
        h_log_wait(d, "(1 members)", 10);
        struct h_proc *ps[6];
        h_start_clients(ps, 6, port, "src.bin", "out", NULL);
        h_expect_copies(ps, 6, "src.bin", "out", 45);
        if (reason) {
                char needle[256];
                snprintf(needle, sizeof(needle), "member %u (%s) dropped: %s", e.id, e.addr, reason);
                h_log_wait(d, needle, 15);
        }
        ck_assert_msg(alive(d), "p2sd died with evil-peer %s, --control %s:\n%s", flag, control, h_tail(d));
        h_stop_p2sd(d, 5);
}

/* One case a test: each behaviour of evil-peer under both control modes
 * where they differ. reason NULL: p2sd need not drop it; "": it must drop
 * it, for whatever reason it gives. */
static const struct evil_case {
        const char *flag, *control, *reason;
        uint64_t seed;
} evil_cases[] = {
        { "--corrupt-uploads", "udp", "uploaded chunks that do not match the manifest", 81 },
        { "--corrupt-uploads", "tcp", "uploaded chunks that do not match the manifest", 82 },
        { "--nohave", "udp", "answered NOHAVE for chunks it was given", 83 },
        { "--nohave", "tcp", "answered NOHAVE for chunks it was given", 84 },
        { "--claim", "udp", NULL, 85 },
        { "--req-flood", "udp", NULL, 86 },
        { "--bad-indexes", "udp", NULL, 87 },
        { "--bad-indexes", "tcp", NULL, 88 },
        { "--stop-reading", "udp", "", 89 },
        /* silent for 10 s, or queried first and dropped for not answering */
        { "--silent", "udp", "", 90 },
};

START_TEST(evil_peer)
{
        const struct evil_case *c = &evil_cases[_i];
        /* check names a loop test's case by its number only; the log names it too */
        fprintf(stderr, "case %d: evil-peer %s, --control %s\n", _i, c->flag, c->control);
        evil_swarm(c->flag, c->control, c->reason, c->seed);
}
END_TEST

/* ---- stopped processes ---------------------------------------------------- */

/* One honest member stopped once joined, 7 others: they complete within
 * 40 s, p2sd drops the stopped one as silent; resumed, it is told and exits
 * non-zero. */
static void stopped_member(const char *control, uint64_t seed)
{
        h_make_file("src.bin", (2u << 20) + 7, seed);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "8", "--gather-timeout", "20", "--cache", "64K",
                                  "--chunk-size", "16K", "--control", control, "--log-level", "info", "src.bin",
                                  NULL);
        struct h_proc *v = h_stalled_member(d, port, "src.bin", "stopped.bin", NULL);
        struct h_proc *ps[7];
        h_start_clients(ps, 7, port, "src.bin", "out", NULL);
        h_expect_copies(ps, 7, "src.bin", "out", 40);
        /* silent for 10 s, or first queried and dropped for not answering */
        h_log_wait(d, ") dropped: ", 5);
        ck_assert_msg(h_log_has(d, "dropped: silent for 10 s") || h_log_has(d, "dropped: does not answer queries"),
                      "%s", h_tail(d));
        h_signal(v, SIGCONT);
        int code = h_wait(v, 15);
        ck_assert_msg(code != 0, "the stopped member exited 0:\n%s", h_tail(v));
        ck_assert_msg(h_log_has(v, "dropped"), "the stopped member was not told:\n%s", h_tail(v));
        h_stop_p2sd(d, 5);
}

START_TEST(stopped_member_udp)
{
        stopped_member("udp", 91);
}
END_TEST

START_TEST(stopped_member_tcp)
{
        stopped_member("tcp", 92);
}
END_TEST

/* p2sd stopped while members gather: each gives up within 3 x --timeout
 * and a margin, saying the server is silent. */
START_TEST(p2sd_stopped_gathering)
{
        h_make_file("src.bin", 100 * 1000, 93);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "10", "--gather-timeout", "120", "src.bin", NULL);
        static const char *const fargs[] = { "--timeout", "1", NULL };
        struct h_member m[3];
        for (int i = 0; i < 3; i++) {
                char out[16];
                snprintf(out, sizeof(out), "m%d.bin", i);
                h_member_start(&m[i], port, "src.bin", out, fargs);
                ck_assert(h_member_joined(&m[i], 10));
        }
        h_log_wait(d, "(3 members)", 5);
        h_signal(d, SIGSTOP);
        double t0 = h_now();
        for (int i = 0; i < 3; i++) {
                int code = h_wait(m[i].p, 8);
                ck_assert_msg(code != 0, "member %d exited 0", i);
                ck_assert_msg(h_log_has(m[i].p, "server silent"), "%s", h_tail(m[i].p));
        }
        double took = h_now() - t0;
        ck_assert_msg(took < 3 * 1 + 2.5, "gave up %.2f s after p2sd stopped", took);
        h_signal(d, SIGCONT);
        h_stop_p2sd(d, 5);
}
END_TEST

/* --control tcp, a member stopped during distribution (its share in
 * flight over UDP): p2sd drops it and distribution resumes, the others
 * complete. Failed before: the dead member's UDP sender kept its pending
 * bytes as backlog, and nobody ever finished. */
START_TEST(stopped_in_distribution_tcp)
{
        h_make_file("src.bin", (24u << 20) + 5, 94);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "6", "--gather-timeout", "20", "--cache", "1M",
                                  "--control", "tcp", "--log-level", "info", "src.bin", NULL);
        /* no notify sockets: nobody would read them while the test waits */
        struct h_proc *ps[6];
        h_start_clients(ps, 6, port, "src.bin", "out", NULL);
        h_log_wait(d, "starting with 6 members", 15);
        h_signal(ps[0], SIGSTOP);
        h_log_wait(d, ") dropped: ", 30);
        h_expect_exit(&ps[1], 5, 30, 0);
        for (int i = 1; i < 6; i++)
                h_assert_fetched("src.bin", h_path("out-%d.bin", i));
        /* counted as expelled whichever verdict came first: the swarm's
         * silence, or the data channel's unanswered probes */
        h_log_wait(d, "5 of 6 members completed, 1 expelled", 15);
        h_signal(ps[0], SIGCONT);
        ck_assert_int_ne(h_wait(ps[0], 15), 0);
        h_stop_p2sd(d, 5);
}
END_TEST

/* ---- the sprayer ---------------------------------------------------------- */

enum spray_class {
        SP_RANDOM, SP_VERSION, SP_TYPE, SP_LENGTH, SP_IDS, SP_TOKEN, SP_CHUNK, SP_FRAG, SP_TCP_TRUNC,
        SP_TCP_OVERSIZE, SP_MAX
};
static const char *const spray_names[SP_MAX] = {
        "random-datagram", "bad-version", "bad-type", "bad-length", "bad-ids", "bad-token", "bad-chunk",
        "bad-frag", "tcp-truncated", "tcp-oversized",
};

static uint64_t rnd_state = 0x243f6a8885a308d3ull;
static uint64_t rnd(void)
{
        rnd_state ^= rnd_state << 13;
        rnd_state ^= rnd_state >> 7;
        rnd_state ^= rnd_state << 17;
        return rnd_state;
}

static size_t spray_one(int cls, uint8_t *pkt, size_t cap)
{
        static const uint8_t types[] = { P2S_REQ, P2S_QUERY, P2S_NOHAVE, P2S_COMPLETE, P2S_BYE, P2S_PING,
                                         P2S_HAVE, P2S_UPLOAD, P2S_FRAG, P2S_FRAG_ACK, P2S_FRAG_NACK,
                                         P2S_HELLO, P2S_ATTACH };
        struct p2s_hdr h = { .type = types[rnd() % sizeof(types)], .swarm_id = 1 + (uint32_t)(rnd() % 4),
                             .member_id = 1 + (uint32_t)(rnd() % 16), .token = rnd(),
                             .chunk = (uint32_t)(rnd() % 64) };
        size_t body = 0;
        switch (cls) {
        case SP_RANDOM: {
                size_t len = rnd() % 1500;
                for (size_t i = 0; i < len; i++)
                        pkt[i] = (uint8_t)rnd();
                if (len >= 4 && rnd() % 2)
                        memcpy(pkt, "P2S1", 4);
                return len;
        }
        case SP_VERSION:
                break;
        case SP_TYPE:
                h.type = rnd() % 2 ? 0 : (uint8_t)(P2S_TYPE_MAX + 1 + rnd() % (255 - P2S_TYPE_MAX));
                break;
        case SP_LENGTH:
                body = rnd() % 64;
                break;
        case SP_IDS:
                h.swarm_id = (uint32_t)rnd();
                h.member_id = (uint32_t)rnd();
                break;
        case SP_TOKEN:
                h.type = P2S_REQ;
                break;
        case SP_CHUNK:
                h.type = rnd() % 2 ? P2S_REQ : P2S_NOHAVE;
                h.chunk = rnd() % 2 ? P2S_NO_CHUNK : (uint32_t)rnd();
                break;
        case SP_FRAG: {
                h.type = P2S_FRAG;
                struct p2s_frag f = { .kind = (uint8_t)(rnd() % 2 ? P2S_UPLOAD : rnd()), .index = (uint16_t)rnd(),
                                      .count = (uint16_t)rnd(), .frag_size = (uint16_t)(rnd() % 2000),
                                      .chunk_len = (uint32_t)rnd() };
                body = P2S_FRAG_SIZE + rnd() % 1400;
                wire_put_frag(pkt + P2S_HDR_SIZE, &f);
                for (size_t i = P2S_FRAG_SIZE; i < body; i++)
                        pkt[P2S_HDR_SIZE + i] = (uint8_t)rnd();
                break;
        }
        }
        h.body_len = (uint32_t)body;
        if (cls == SP_LENGTH)
                h.body_len = rnd() % 2 ? (uint32_t)rnd() : (uint32_t)body + 1 + (uint32_t)(rnd() % 100);
        wire_encode_hdr(pkt, &h);
        if (cls == SP_VERSION)
                pkt[4] = (uint8_t)(rnd() % 2 ? 0 : P2S_VERSION + 1 + rnd() % 200);
        (void)cap;
        return P2S_HDR_SIZE + body;
}

/* TCP: a header and a truncated body, or a header claiming more than any
 * chunk, then closed. */
static void spray_tcp(unsigned port, int cls)
{
        int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (t < 0)
                return;
        if (connect(t, (struct sockaddr *)&a, sizeof(a)) == 0) {
                uint8_t pkt[P2S_HDR_SIZE + 512];
                static const uint8_t types[] = { P2S_ATTACH, P2S_UPLOAD, P2S_SHARE, P2S_HAVE, P2S_REQ, P2S_ERR };
                struct p2s_hdr h = { .type = types[rnd() % sizeof(types)], .member_id = 1 + (uint32_t)(rnd() % 16),
                                     .swarm_id = 1, .token = rnd(), .chunk = 0 };
                h.body_len = cls == SP_TCP_OVERSIZE ? (rnd() % 2 ? 0xffffffffu : P2S_MAX_CHUNK + 1)
                                                    : 64 + (uint32_t)(rnd() % 4096);
                wire_encode_hdr(pkt, &h);
                size_t len = P2S_HDR_SIZE + (cls == SP_TCP_TRUNC ? rnd() % 512 : 0);
                for (size_t i = P2S_HDR_SIZE; i < len; i++)
                        pkt[i] = (uint8_t)rnd();
                send(t, pkt, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        close(t);
}

/* The sprayer: a child process, sending until stop (a pipe) closes, then
 * printing its counts. Never uses check (it is not a test process). */
static pid_t sprayer_start(unsigned port, int *stop_w)
{
        int pfd[2];
        ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid > 0) {
                close(pfd[0]);
                *stop_w = pfd[1];
                return pid;
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(pfd[1]);
        int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connect(u, (struct sockaddr *)&a, sizeof(a));
        unsigned long count[SP_MAX] = { 0 };
        static uint8_t pkt[4096];
        for (unsigned round = 0;; round++) {
                struct pollfd p = { .fd = pfd[0], .events = POLLIN };
                if (poll(&p, 1, 5) == 1)
                        break;
                /* about 10,000 datagrams a second, a TCP frame every 5 ms */
                for (int i = 0; i < 50; i++) {
                        int cls = (int)(rnd() % (SP_FRAG + 1));
                        size_t n = spray_one(cls, pkt, sizeof(pkt));
                        send(u, pkt, n, MSG_DONTWAIT);
                        count[cls]++;
                }
                int cls = round % 2 ? SP_TCP_TRUNC : SP_TCP_OVERSIZE;
                spray_tcp(port, cls);
                count[cls]++;
        }
        for (int c = 0; c < SP_MAX; c++)
                fprintf(stderr, "# spray: %s %lu\n", spray_names[c], count[c]);
        _exit(0);
}

/* Waits up to timeout_s for the peer to close t; true if it did. */
/* Reads whatever is buffered (a member given a chunk may hold megabytes
 * that p2sd sent before it closed): closed once EOF or an error shows. */
static bool closed_by_peer(int t)
{
        uint8_t in[65536];
        for (;;) {
                ssize_t n = recv(t, in, sizeof(in), MSG_DONTWAIT);
                if (n > 0)
                        continue;
                return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
        }
}

/* A swarm of 10, --replicas 2, 16 MiB through a 1 MiB cache, while the
 * sprayer runs and slow connections stall, and one member is killed: the
 * other 9 complete identical, p2sd lives with RSS within cache + 32 MiB of
 * its start, and every slow connection is closed by p2sd within
 * --frame-timeout and a margin. */
START_TEST(spray)
{
        h_make_file("src.bin", 16u << 20, 95);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "10", "--gather-timeout", "20", "--cache", "1M",
                                  "--replicas", "2", "--frame-timeout", "2", "--log-level", "info", "src.bin",
                                  NULL);
        unsigned long rss0 = h_rss_kib(d->pid), peak = rss0;
        int stop;
        pid_t sp = sprayer_start(port, &stop);

        /* slow connections: part of a header, then nothing */
        enum { SLOW = 16 };
        int slow[SLOW];
        double slow_t0 = h_now(), slow_closed[SLOW];
        for (int i = 0; i < SLOW; i++) {
                slow[i] = h_sock_to(port, SOCK_STREAM);
                struct p2s_hdr h = { .type = P2S_ATTACH, .member_id = 1, .token = rnd(), .chunk = P2S_NO_CHUNK };
                uint8_t pkt[P2S_HDR_SIZE];
                wire_encode_hdr(pkt, &h);
                ck_assert_int_eq(send(slow[i], pkt, 1 + i % (P2S_HDR_SIZE - 1), 0), 1 + i % (P2S_HDR_SIZE - 1));
                slow_closed[i] = 0;
        }

        struct h_proc *ps[10];
        h_start_clients(ps, 10, port, "src.bin", "out", NULL);
        h_log_wait(d, "starting with 10 members", 25);
        /* one member killed once the relay is under way */
        h_signal(ps[4], SIGKILL);
        double end = h_now() + 45;
        for (;;) {
                bool running = false;
                for (int i = 0; i < 10; i++)
                        if (i != 4 && !h_wait_for(ps[i], 0))
                                running = true;
                for (int i = 0; i < SLOW; i++)
                        if (!slow_closed[i] && closed_by_peer(slow[i]))
                                slow_closed[i] = h_now();
                ck_assert_msg(alive(d), "p2sd died:\n%s", h_tail(d));
                unsigned long r = h_rss_kib(d->pid);
                peak = r > peak ? r : peak;
                bool slow_open = false;
                for (int i = 0; i < SLOW; i++)
                        slow_open = slow_open || !slow_closed[i];
                if ((!running && !slow_open) || h_now() > end)
                        break;
                poll(NULL, 0, 50);
        }
        close(stop);
        int st;
        ck_assert_int_eq(waitpid(sp, &st, 0), sp);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        ck_assert_int_eq(h_wait(ps[4], 1), 128 + SIGKILL);
        struct h_proc *rest[9];
        for (int i = 0, k = 0; i < 10; i++)
                if (i != 4)
                        rest[k++] = ps[i];
        for (int i = 0; i < 9; i++) {
                char out[32];
                snprintf(out, sizeof(out), "out-%d.bin", i < 4 ? i : i + 1);
                ck_assert_msg(h_wait(rest[i], 1) == 0, "%s exited %d:\n%s", rest[i]->name, rest[i]->code,
                              h_tail(rest[i]));
                h_assert_fetched("src.bin", out);
        }
        double slowest = 0;
        for (int i = 0; i < SLOW; i++) {
                ck_assert_msg(slow_closed[i] > 0, "slow connection %d still open after %.1f s", i, h_now() - slow_t0);
                slowest = slow_closed[i] - slow_t0 > slowest ? slow_closed[i] - slow_t0 : slowest;
                close(slow[i]);
        }
        unsigned long rss1 = h_rss_kib(d->pid);
        fprintf(stderr, "# spray: rss-start %lu KiB, peak %lu KiB, end %lu KiB; slow connections closed within %.2f s\n",
                rss0, peak, rss1, slowest);
        ck_assert_msg(slowest < 2 + 2.5, "a slow connection lasted %.2f s with --frame-timeout 2", slowest);
        ck_assert_msg(peak < rss0 + H_RSS_SLACK * (1024 + 32 * 1024), "p2sd RSS peaked at %lu KiB (from %lu KiB)", peak, rss0);
        h_stop_p2sd(d, 5);
}
END_TEST

/* ---- stalled uploads ------------------------------------------------------ */

/* A member's keep-alive: p2sd drops one it has not heard from for 10 s. */
static void ping(int u, const struct p2s_hdr *ids)
{
        uint8_t pkt[P2S_HDR_SIZE];
        struct p2s_hdr h = { .type = P2S_PING, .swarm_id = ids->swarm_id, .member_id = ids->member_id,
                             .token = ids->token, .chunk = P2S_NO_CHUNK };
        wire_encode_hdr(pkt, &h);
        send(u, pkt, sizeof(pkt), MSG_DONTWAIT);
}

/* 50 attached members of a swarm in 16 MiB chunks each send the header and
 * 1 MiB of a 15 MiB UPLOAD body, then stall (reading nothing, sending only
 * keep-alives): p2sd's RSS stays within cache + 32 MiB of its start (all of
 * it held would be 50 MiB more), and every connection is closed within
 * --frame-timeout plus its second per 64 KiB that arrived. Failed before
 * the bounds: 781 MB. */
START_TEST(stalled_uploads)
{
        h_make_file("src.bin", 32u << 20, 96);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "50", "--gather-timeout", "60", "--cache", "1M",
                                  "--chunk-size", "16M", "--frame-timeout", "2", "--log-level", "info", "src.bin",
                                  NULL);
        unsigned long rss0 = h_rss_kib(d->pid), peak = rss0;
        enum { N = 50 };
        int t[N], u[N];
        struct p2s_hdr ids[N];
        for (int i = 0; i < N; i++) {
                t[i] = h_join_attach(port, "src.bin", &ids[i], &u[i]);
                int small = 4096;
                setsockopt(t[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
                fcntl(t[i], F_SETFL, O_NONBLOCK);
        }
        h_log_wait(d, "starting with 50 members", 10);
        for (int i = 0; i < N; i++) {
                uint8_t hdr[P2S_HDR_SIZE];
                struct p2s_hdr up = { .type = P2S_UPLOAD, .swarm_id = ids[i].swarm_id, .member_id = ids[i].member_id,
                                      .token = ids[i].token, .chunk = (uint32_t)(i % 2), .body_len = 15u << 20 };
                wire_encode_hdr(hdr, &up);
                ck_assert_int_eq(send(t[i], hdr, sizeof(hdr), 0), P2S_HDR_SIZE);
        }
        /* 1 MiB of body each, as fast as p2sd takes it */
        static uint8_t body[64 << 10];
        memset(body, 0xa5, sizeof(body));
        size_t sent[N] = { 0 }, want = 1u << 20;
        double t0 = h_now(), closed[N] = { 0 }, pinged = 0;
        for (bool more = true; more && h_now() - t0 < 20;) {
                more = false;
                for (int i = 0; i < N; i++) {
                        if (closed[i] || sent[i] >= want)
                                continue;
                        size_t n = want - sent[i] < sizeof(body) ? want - sent[i] : sizeof(body);
                        ssize_t r = send(t[i], body, n, MSG_NOSIGNAL);
                        if (r > 0)
                                sent[i] += (size_t)r;
                        else if (r < 0 && errno != EAGAIN)
                                closed[i] = h_now();
                        more = more || (!closed[i] && sent[i] < want);
                }
                if (h_now() - pinged >= 1) {
                        for (int i = 0; i < N; i++)
                                ping(u[i], &ids[i]);
                        pinged = h_now();
                }
                unsigned long r = h_rss_kib(d->pid);
                peak = r > peak ? r : peak;
                poll(NULL, 0, 1);
        }
        size_t total = 0;
        unsigned early = 0;
        for (int i = 0; i < N; i++) {
                total += sent[i];
                early += closed[i] > 0;
        }
        double t1 = h_now();
        /* closed within 2 s + 1 s per 64 KiB that arrived (16 s) and a margin */
        double deadline = t1 + 2 + 16 + 4;
        for (;;) {
                bool open = false;
                for (int i = 0; i < N; i++) {
                        if (!closed[i] && closed_by_peer(t[i]))
                                closed[i] = h_now();
                        open = open || !closed[i];
                }
                if (h_now() - pinged >= 1) {
                        for (int i = 0; i < N; i++)
                                ping(u[i], &ids[i]);
                        pinged = h_now();
                }
                unsigned long r = h_rss_kib(d->pid);
                peak = r > peak ? r : peak;
                if (!open || h_now() > deadline)
                        break;
                poll(NULL, 0, 50);
        }
        double first = 1e9, last = 0;
        for (int i = 0; i < N; i++) {
                ck_assert_msg(closed[i] > 0, "stalled upload %d still open %.1f s after its last byte", i,
                              h_now() - t1);
                last = closed[i] - t1 > last ? closed[i] - t1 : last;
                first = closed[i] - t1 < first ? closed[i] - t1 : first;
                close(t[i]);
                close(u[i]);
        }
        fprintf(stderr, "# stalled-uploads: %d members, %zu bytes sent, %u closed while sending, rss-start %lu KiB, "
                        "peak %lu KiB, closed %.2f .. %.2f s after the sends\n", N, total, early, rss0, peak, first, last);
        ck_assert_msg(alive(d), "p2sd died:\n%s", h_tail(d));
        ck_assert_msg(total >= (size_t)N * (want / 2), "only %zu bytes of UPLOAD bodies were taken", total);
        ck_assert_msg(peak < rss0 + H_RSS_SLACK * (1024 + 32 * 1024), "p2sd RSS peaked at %lu KiB (from %lu KiB)", peak, rss0);
        h_stop_p2sd(d, 5);
}
END_TEST

static Suite *hostile_suite(void)
{
        Suite *s = suite_create("hostile");
        TCase *tc = h_tcase("evil-peer", 60);
        tcase_add_loop_test(tc, evil_peer, 0, (int)(sizeof(evil_cases) / sizeof(evil_cases[0])));
        suite_add_tcase(s, tc);
        tc = h_tcase("stopped", 60);
        tcase_add_test(tc, stopped_member_udp);
        tcase_add_test(tc, stopped_member_tcp);
        tcase_add_test(tc, p2sd_stopped_gathering);
        tcase_add_test(tc, stopped_in_distribution_tcp);
        suite_add_tcase(s, tc);
        tc = h_tcase("spray", 60);
        tcase_add_test(tc, spray);
        tcase_add_test(tc, stalled_uploads);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(hostile_suite);
