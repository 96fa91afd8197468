/* SPDX-License-Identifier: MIT */
/* Whole swarms with real processes: sizes, member counts, chunk sizes,
 * request orders and replicas. Every copy must be byte-identical to the
 * source and no OUTPUT.part may remain. File sizes are deliberately not
 * multiples of the chunk size, so the short last chunk is always exercised. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness.h"
#include "runner.h"

/* Default options, 5 members, ~3 MB: the swarm starts when all five joined. */
START_TEST(five_clients_default)
{
        h_make_file("src.bin", 3 * 1000 * 1000 + 17, 1);
        struct h_proc *d = h_swarm("src.bin", 5, NULL, NULL, 30);
        ck_assert_msg(h_log_has(d, "starting with 5 members"), "%s", h_tail(d));
        struct h_stats st;
        ck_assert_msg(h_swarm_stats(d, "src.bin", &st), "no completion line:\n%s", h_tail(d));
        /* 46 chunks, each member holds ~1/5: the rest (4/5 of 46 per member)
         * must have been requested */
        ck_assert_msg(st.requests >= 4 * 46, "only %llu requests for 5 x 46 chunks", st.requests);
}
END_TEST

/* The other transport arrangement: control over TCP, chunk data in UDP
 * datagrams that fit a 1500-byte MTU, and again with loopback-sized ones;
 * uploads happen (small cache), so data crosses UDP both ways. */
START_TEST(control_tcp)
{
        h_make_file("src.bin", 3 * 1000 * 1000 + 17, 11);
        static const char *const dargs[] = { "--control", "tcp", "--cache", "256K", NULL };
        struct h_proc *d = h_swarm("src.bin", 6, dargs, NULL, 60);
        ck_assert_msg(h_log_has(d, "control over tcp"), "%s", h_tail(d));
        struct h_stats st;
        ck_assert_msg(h_swarm_stats(d, "src.bin", &st), "no completion line:\n%s", h_tail(d));
        ck_assert_msg(st.uploads > 0, "no upload went over UDP");
}
END_TEST

START_TEST(control_tcp_big_datagrams)
{
        h_make_file("src.bin", 3 * 1000 * 1000 + 17, 12);
        static const char *const dargs[] = { "--control", "tcp", "--max-datagram", "65000", "--cache", "256K", NULL };
        struct h_proc *d = h_swarm("src.bin", 4, dargs, NULL, 60);
        ck_assert_msg(h_log_has(d, "control over tcp"), "%s", h_tail(d));
}
END_TEST

/* IPv6: p2sd bound to ::1, members reaching it as [::1]:PORT. */
START_TEST(ipv6_loopback)
{
        h_make_file("src.bin", 1000 * 1000 + 3, 13);
        static const char *const dargs[] = { "--listen", "::1", "--min-clients", "3", "src.bin", NULL };
        unsigned port;
        struct h_proc *d = h_p2sd_v(&port, dargs);
        ck_assert_msg(h_log_has(d, "listening on [::1]"), "%s", h_tail(d));
        const char *fetch = getenv("P2S_FETCH");
        ck_assert(fetch);
        char hostport[32], out[3][16];
        snprintf(hostport, sizeof(hostport), "[::1]:%u", port);
        struct h_proc *ps[3];
        for (int i = 0; i < 3; i++) {
                snprintf(out[i], sizeof(out[i]), "v6-%d.bin", i);
                const char *const argv[] = { fetch, "--quiet", hostport, "src.bin", "-o", out[i], NULL };
                ps[i] = h_spawn("fetch", argv, NULL);
        }
        h_expect_exit(ps, 3, 30, 0);
        for (int i = 0; i < 3; i++)
                h_assert_fetched("src.bin", out[i]);
        h_stop_p2sd(d, 5);
}
END_TEST

/* Many members on few cores: 20, then 50, on a 2 MB file in 16K chunks. */
START_TEST(twenty_clients)
{
        h_make_file("src.bin", 2 * 1024 * 1024 - 4321, 2);
        static const char *const dargs[] = { "--chunk-size", "16K", NULL };
        static const char *const fargs[] = { "--quiet", NULL };
        struct h_proc *d = h_swarm("src.bin", 20, dargs, fargs, 60);
        ck_assert_msg(h_log_has(d, "starting with 20 members"), "%s", h_tail(d));
}
END_TEST

START_TEST(fifty_clients)
{
        h_make_file("src.bin", 2 * 1024 * 1024 + 999, 3);
        /* a cache of 64 of the 129 chunks: some requests go to peers */
        static const char *const dargs[] = { "--chunk-size", "16K", "--cache", "1M", NULL };
        static const char *const fargs[] = { "--quiet", NULL };
        struct h_proc *d = h_swarm("src.bin", 50, dargs, fargs, 90);
        ck_assert_msg(h_log_has(d, "starting with 50 members"), "%s", h_tail(d));
        ck_assert_msg(h_log_count(d, "new swarm for") == 1, "50 clients split over several swarms:\n%s",
                      h_tail(d));
}
END_TEST

/* The smallest sensible chunks: ~1000 of them, many messages per byte. */
START_TEST(one_k_chunks)
{
        h_make_file("src.bin", 1000 * 1000 + 333, 4);
        static const char *const dargs[] = { "--chunk-size", "1K", NULL };
        struct h_proc *d = h_swarm("src.bin", 5, dargs, NULL, 40);
        ck_assert_uint_eq(h_distributed_chunks(d, 1000 * 1000 + 333), 977);
}
END_TEST

/* --order random, with a small cache so the random requests miss it. */
START_TEST(random_order)
{
        h_make_file("src.bin", 2 * 1000 * 1000 + 5, 5);
        static const char *const dargs[] = { "--chunk-size", "16K", "--cache", "64K", NULL };
        static const char *const fargs[] = { "--order", "random", NULL };
        struct h_proc *d = h_swarm("src.bin", 5, dargs, fargs, 40);
        struct h_stats st;
        ck_assert_msg(h_swarm_stats(d, "src.bin", &st), "no completion line:\n%s", h_tail(d));
        ck_assert_msg(st.uploads > 0, "random order never missed a 4-chunk cache:\n%s", h_tail(d));
}
END_TEST

/* Without --min-clients the swarm starts --gather-timeout after its first
 * member (not before, not much after), with every member that joined by
 * then: the three clients are started together, well inside the 1.5 s.
 * The lower bound is measured from before the clients start (the first
 * member joins after that), the upper one from when the test saw it join:
 * a test slow to read the log (sanitizers, a loaded machine) shortens
 * neither wrongly. */
START_TEST(gather_timeout_starts_swarm)
{
        h_make_file("src.bin", 500 * 1000 + 3, 8);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--gather-timeout", "1.5", "src.bin", NULL);
        struct h_proc *ps[3];
        double t0 = h_now();
        h_start_clients(ps, 3, port, "src.bin", "out", NULL);
        h_log_wait(d, "(1 members)", 10);
        double t1 = h_now();
        h_log_wait(d, "starting with", 10);
        double since_start = h_now() - t0, since_join = h_now() - t1;
        ck_assert_msg(since_start > 1.4, "a 1.5 s gather started %.2f s after the clients", since_start);
        ck_assert_msg(since_join < 4.0, "a 1.5 s gather started %.2f s after the first join", since_join);
        ck_assert_msg(h_log_has(d, "starting with 3 members"), "%s", h_tail(d));
        h_expect_copies(ps, 3, "src.bin", "out", 20);
        h_stop_p2sd(d, 5);
}
END_TEST

/* CPU time (user + system, clock ticks) of a process, from /proc. */
static unsigned long long cpu_ticks(pid_t pid)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        char *st = h_slurp(path, NULL);
        ck_assert_msg(st, "cannot read %s", path);
        /* fields after the ")" that ends the command name: state is 3rd, utime 14th, stime 15th */
        const char *p = strrchr(st, ')');
        unsigned long long ut = 0, stime = 0;
        ck_assert(p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stime) == 2);
        free(st);
        return ut + stime;
}

/* After a swarm, p2sd is idle: no busy polling (EPOLLOUT only while a queue
 * is non-empty). Measured over one second of wall time. */
START_TEST(idle_after_swarm)
{
        h_make_file("src.bin", 2 * 1000 * 1000 + 1, 9);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "3", "--gather-timeout", "10", "--cache", "128K",
                                  "src.bin", NULL);
        struct h_proc *ps[3];
        h_start_clients(ps, 3, port, "src.bin", "out", NULL);
        h_expect_copies(ps, 3, "src.bin", "out", 30);
        h_log_wait(d, "'src.bin' complete", 5);
        unsigned long long t0 = cpu_ticks(d->pid);
        struct timespec one = { 1, 0 };
        nanosleep(&one, NULL);
        unsigned long long used = cpu_ticks(d->pid) - t0;
        ck_assert_msg(used <= 5, "idle p2sd used %llu clock ticks of CPU in 1 s", used);
        h_stop_p2sd(d, 5);
}
END_TEST

/* --replicas 2, 4 members. */
START_TEST(replicas_two)
{
        h_make_file("src.bin", 3 * 1000 * 1000 + 1, 6);
        static const char *const dargs[] = { "--replicas", "2", "--cache", "128K", NULL };
        h_swarm("src.bin", 4, dargs, NULL, 40);
}
END_TEST

/* --replicas 2 survives the loss of a member without the source (with
 * --replicas 1 the server reads its chunks again, test-failure.c): every
 * chunk it held is also held by another member. The victim is stopped
 * (SIGSTOP) right after joining, so it cannot finish before it is killed. */
START_TEST(replicas_survive_a_lost_member)
{
        h_make_file("src.bin", 1000 * 1000 + 7, 7);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--replicas", "2", "--min-clients", "4", "--gather-timeout", "10",
                                  "--chunk-size", "4K", "--cache", "16K", "src.bin", NULL);
        struct h_proc *victim = h_stalled_member(d, port, "src.bin", "victim.bin", NULL);
        struct h_proc *ps[3];
        h_start_clients(ps, 3, port, "src.bin", "out", NULL);
        h_log_wait(d, "source closed", 10);
        h_signal(victim, SIGKILL);
        ck_assert_int_eq(h_wait(victim, 5), 128 + SIGKILL);
        h_expect_copies(ps, 3, "src.bin", "out", 40);
        /* not "complete": one member never got its copy; nothing was re-read */
        h_log_wait(d, "'src.bin' failed: 3 of 4 members completed", 5);
        ck_assert_msg(!h_log_has(d, "read again"), "%s", h_tail(d));
        h_stop_p2sd(d, 5);
}
END_TEST

static Suite *swarm_suite(void)
{
        Suite *s = suite_create("integration-swarm");
        TCase *tc = h_tcase("basic", 60);
        tcase_add_test(tc, five_clients_default);
        tcase_add_test(tc, one_k_chunks);
        tcase_add_test(tc, random_order);
        tcase_add_test(tc, gather_timeout_starts_swarm);
        tcase_add_test(tc, idle_after_swarm);
        tcase_add_test(tc, control_tcp);
        tcase_add_test(tc, control_tcp_big_datagrams);
        tcase_add_test(tc, ipv6_loopback);
        suite_add_tcase(s, tc);
        tc = h_tcase("many", 120);
        tcase_add_test(tc, twenty_clients);
        tcase_add_test(tc, fifty_clients);
        suite_add_tcase(s, tc);
        tc = h_tcase("replicas", 60);
        tcase_add_test(tc, replicas_two);
        tcase_add_test(tc, replicas_survive_a_lost_member);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(swarm_suite);
