/* SPDX-License-Identifier: MIT */
/* What an unproven or hostile peer may cost p2sd: connections that stop
 * half-way through a frame are closed after --frame-timeout, a swarm holds
 * at most --max-members, running out of descriptors is survived without
 * spinning, and a member that asks for everything and reads nothing is
 * dropped with p2sd's memory bounded. Hand-driven peers speak the project's
 * wire codec; everything else is real p2sd and p2s-fetch processes. */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "harness.h"
#include "proto/wire.h"
#include "runner.h"

/* Waits up to timeout_s for the peer to close t (reading what it sends). */
static bool closed_within(int t, double timeout_s)
{
        uint8_t in[4096];
        double end = h_now() + timeout_s;
        while (h_now() < end) {
                struct pollfd p = { .fd = t, .events = POLLIN };
                if (poll(&p, 1, 100) == 1 && recv(t, in, sizeof(in), 0) <= 0)
                        return true;
        }
        return false;
}

/* A member that sends part of a header, and one that sends a header and
 * part of its body, then nothing: both closed after --frame-timeout. */
START_TEST(slowloris)
{
        h_make_file("src.bin", 100 * 1000, 31);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "5", "--gather-timeout", "60", "--frame-timeout", "1",
                                  "--log-level", "info", "src.bin", NULL);
        struct p2s_hdr ids;
        int u1, u2;
        int t1 = h_join_attach(port, "src.bin", &ids, &u1);
        h_log_wait(d, "joined", 5);
        uint8_t pkt[P2S_HDR_SIZE + 8];
        struct p2s_hdr bye = { .type = P2S_NOHAVE, .swarm_id = ids.swarm_id, .member_id = ids.member_id,
                               .token = ids.token, .chunk = 0 };
        wire_encode_hdr(pkt, &bye);
        ck_assert_int_eq(send(t1, pkt, 7, 0), 7);
        int t2 = h_join_attach(port, "src.bin", &ids, &u2);
        struct p2s_hdr big = { .type = P2S_REQ, .swarm_id = ids.swarm_id, .member_id = ids.member_id,
                               .token = ids.token, .chunk = 0, .body_len = 0 };
        wire_encode_hdr(pkt, &big);
        ck_assert_int_eq(send(t2, pkt, P2S_HDR_SIZE - 1, 0), P2S_HDR_SIZE - 1);
        double t0 = h_now();
        ck_assert_msg(closed_within(t1, 8), "a half-sent header was kept open:\n%s", h_tail(d));
        ck_assert_msg(closed_within(t2, 8), "a half-sent frame was kept open:\n%s", h_tail(d));
        ck_assert_msg(h_now() - t0 >= 0.5, "closed before the timeout");
        ck_assert(h_log_has(d, "a frame begun and not finished in time"));
        close(t1);
        close(t2);
        close(u1);
        close(u2);
        h_stop_p2sd(d, 5);
}
END_TEST

/* --max-members 1: the second fetch is refused with the reason and exits
 * non-zero; the first one completes. */
START_TEST(max_members)
{
        h_make_file("src.bin", 300 * 1000, 32);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "2", "--gather-timeout", "4", "--max-members", "1",
                                  "src.bin", NULL);
        struct h_member a;
        h_member_start(&a, port, "src.bin", "a.bin", NULL);
        ck_assert(h_member_joined(&a, 10));
        char *log = NULL;
        int code = h_fetch_once(port, "src.bin", "b.bin", &log);
        ck_assert_int_ne(code, 0);
        ck_assert_msg(log && strstr(log, "swarm is full (1 members)"), "refusal not said:\n%s", log ? log : "");
        free(log);
        h_members_succeed(&a, 1, "src.bin");
        h_stop_p2sd(d, 5);
}
END_TEST

static double cpu_seconds(pid_t pid)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        char buf[2048];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        ck_assert_ptr_nonnull(p);
        unsigned long ut = 0, st = 0;
        /* fields after the name: state is 3rd; utime and stime are 14th and 15th */
        ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st), 2);
        return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}


/* With 64 descriptors, 100 idle TCP connections: p2sd does not spin on
 * accept errors, logs it, and serves an honest fetch once they are gone. */
START_TEST(out_of_descriptors)
{
        h_make_file("src.bin", 200 * 1000, 33);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "1", "--max-connections", "100000", "src.bin", NULL);
        struct rlimit rl = { 64, 64 };
        ck_assert_int_eq(prlimit(d->pid, RLIMIT_NOFILE, &rl, NULL), 0);
        int idle[100];
        for (int i = 0; i < 100; i++)
                idle[i] = h_sock_to(port, SOCK_STREAM);
        h_log_wait(d, "not accepting", 5);
        double c0 = cpu_seconds(d->pid), t0 = h_now();
        while (h_now() - t0 < 2)
                poll(NULL, 0, 100);
        double used = cpu_seconds(d->pid) - c0;
        ck_assert_msg(used < 0.5, "p2sd used %.2f s of CPU in 2 s while out of descriptors", used);
        for (int i = 0; i < 100; i++)
                close(idle[i]);
        ck_assert_int_eq(h_fetch_once(port, "src.bin", "out.bin", NULL), 0);
        h_assert_fetched("src.bin", "out.bin");
        h_stop_p2sd(d, 5);
}
END_TEST

/* 1100 idle TCP connections that never send ATTACH (more than the 1024 that
 * may wait): the oldest give way, so an honest fetch still joins at once
 * instead of finding every slot taken (issue 8, bug 5). */
START_TEST(idle_connections_give_way)
{
        enum { IDLE = 1100 };
        h_make_file("src.bin", 200 * 1000, 34);
        struct rlimit rl;
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_cur < IDLE + 256 && rl.rlim_max >= IDLE + 256) {
                rl.rlim_cur = IDLE + 256;
                ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        }
        if (rl.rlim_cur < IDLE + 256)
                return;         /* cannot open that many here: nothing to show */
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "1", "src.bin", NULL);
        static int idle[IDLE];
        for (int i = 0; i < IDLE; i++)
                idle[i] = h_sock_to(port, SOCK_STREAM);
        h_log_wait(d, "wait for their ATTACH: closing the oldest", 10);
        double t0 = h_now();
        ck_assert_int_eq(h_fetch_once(port, "src.bin", "out.bin", NULL), 0);
        ck_assert_msg(h_now() - t0 < 8, "the fetch took %.1f s", h_now() - t0);
        h_assert_fetched("src.bin", "out.bin");
        for (int i = 0; i < IDLE; i++)
                close(idle[i]);
        h_stop_p2sd(d, 5);
}
END_TEST

/* A member that asks for every chunk and never reads: dropped with a log
 * line, p2sd's RSS stays within cache + 32 MiB, and the honest member
 * (whose distribution waited on it) completes. --replicas 2: the honest one
 * gets every share itself, so this does not depend on the swarm surviving
 * the loss of a holder (another test's concern). */
START_TEST(non_reading_member)
{
        uint64_t size = 64ull << 20;
        h_make_file("src.bin", size, 34);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "2", "--gather-timeout", "20", "--cache", "8M", "--replicas", "2",
                                  "--frame-timeout", "2", "--log-level", "info", "src.bin", NULL);
        unsigned long rss0 = h_rss_kib(d->pid);
        struct p2s_hdr ids;
        int u;
        int t = h_join_attach(port, "src.bin", &ids, &u);
        int small = 4096;
        setsockopt(t, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        h_log_wait(d, "joined", 5);
        struct h_member a;
        h_member_start(&a, port, "src.bin", "a.bin", NULL);
        uint8_t pkt[P2S_HDR_SIZE];
        uint32_t chunks = (uint32_t)(size / (64 << 10));
        for (uint32_t i = 0; i < chunks; i++) {
                struct p2s_hdr r = { .type = P2S_REQ, .swarm_id = ids.swarm_id, .member_id = ids.member_id,
                                     .token = ids.token, .chunk = i };
                wire_encode_hdr(pkt, &r);
                if (send(t, pkt, sizeof(pkt), MSG_DONTWAIT) < 0)
                        break;
        }
        unsigned long peak = 0;
        double end = h_now() + 30;
        while (h_now() < end && !h_log_has(d, "dropped")) {
                unsigned long r = h_rss_kib(d->pid);
                peak = r > peak ? r : peak;
                poll(NULL, 0, 50);
        }
        ck_assert_msg(h_log_has(d, "dropped"), "the non-reading member was not dropped:\n%s", h_tail(d));
        ck_assert_msg(peak < rss0 + H_RSS_SLACK * (8 * 1024 + 32 * 1024), "p2sd RSS %lu KiB (from %lu KiB)", peak, rss0);
        h_members_succeed(&a, 1, "src.bin");
        close(t);
        close(u);
        h_stop_p2sd(d, 5);
}
END_TEST

static Suite *bounds_suite(void)
{
        Suite *s = suite_create("bounds");
        TCase *tc = h_tcase("bounds", 90);
        tcase_add_test(tc, slowloris);
        tcase_add_test(tc, max_members);
        tcase_add_test(tc, out_of_descriptors);
        tcase_add_test(tc, idle_connections_give_way);
        tcase_add_test(tc, non_reading_member);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(bounds_suite);
