/* SPDX-License-Identifier: MIT */
/* Failure paths: nobody listening, a member lost with the only copy of some
 * chunks, p2sd stopped mid-swarm, p2sd unable to start, bad command lines.
 * Each must end in a bounded time with a clear message and the documented
 * exit code, never a hang. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "harness.h"
#include "runner.h"

/* A socket on 127.0.0.1 of type, bound to a kernel-chosen port. */
static int bound_socket(int type, unsigned *port)
{
        int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
        ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sa);
        ck_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        ck_assert(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
        *port = ntohs(sa.sin_port);
        return fd;
}

static void expect_gives_up(unsigned port)
{
        struct h_proc *p = h_fetch(port, "x.bin", "x.bin", "--timeout", "1", NULL);
        h_expect_exit(&p, 1, 10, 3);
        double took = p->t_end - p->t_start;
        ck_assert_msg(took < 5.0, "--timeout 1 took %.2f s", took);
        ck_assert_msg(took >= 0.9, "gave up after %.2f s, before its --timeout of 1 s", took);
        ck_assert_msg(h_log_has(p, "no answer from 127.0.0.1"), "%s", h_tail(p));
}

/* A closed port (the kernel answers ICMP port unreachable). */
START_TEST(nothing_listens)
{
        unsigned port;
        close(bound_socket(SOCK_DGRAM, &port));
        /* the kernel says so at once: no need to wait out --timeout */
        struct h_proc *p = h_fetch(port, "x.bin", "x.bin", "--timeout", "5", NULL);
        h_expect_exit(&p, 1, 10, 3);
        ck_assert_msg(p->t_end - p->t_start < 2.0, "took %.2f s", p->t_end - p->t_start);
        ck_assert_msg(h_log_has(p, "connection refused by 127.0.0.1"), "%s", h_tail(p));
}
END_TEST

/* A port that swallows every datagram and never answers. */
START_TEST(silent_port)
{
        unsigned port;
        int fd = bound_socket(SOCK_DGRAM, &port);
        expect_gives_up(port);
        close(fd);
}
END_TEST

/* A member holding the only copy of a third of the chunks (--replicas 1,
 * a 4-chunk cache) is killed mid-swarm: p2sd reads those chunks again from
 * the source, checked against the manifest, and the others complete with
 * identical copies. Failed before: "chunk N is held by no member". */
START_TEST(member_lost_with_only_copy)
{
        h_make_file("src.bin", 1000 * 1000 + 9, 31);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "3", "--gather-timeout", "10", "--cache", "4K",
                                  "--chunk-size", "1K", "src.bin", NULL);
        struct h_proc *victim = h_stalled_member(d, port, "src.bin", "victim.bin", NULL);
        struct h_proc *ps[2];
        h_start_clients(ps, 2, port, "src.bin", "out", NULL);
        h_log_wait(d, "source closed", 15);
        h_signal(victim, SIGKILL);
        ck_assert_int_eq(h_wait(victim, 5), 128 + SIGKILL);
        h_expect_copies(ps, 2, "src.bin", "out", 30);
        ck_assert_msg(h_log_has(d, "read again from 'src.bin'"), "%s", h_tail(d));
        h_stop_p2sd(d, 5);
}
END_TEST

/* The same with the source deleted before the member is killed: both
 * others fail with a message naming the source, keeping their .part. */
START_TEST(member_lost_source_gone)
{
        h_make_file("src.bin", 1000 * 1000 + 9, 32);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "3", "--gather-timeout", "10", "--cache", "4K",
                                  "--chunk-size", "1K", "src.bin", NULL);
        struct h_proc *victim = h_stalled_member(d, port, "src.bin", "victim.bin", NULL);
        struct h_proc *ps[2];
        h_start_clients(ps, 2, port, "src.bin", "out", NULL);
        h_log_wait(d, "source closed", 15);
        ck_assert_int_eq(unlink(h_path("src.bin")), 0);
        h_signal(victim, SIGKILL);
        ck_assert_int_eq(h_wait(victim, 5), 128 + SIGKILL);
        h_expect_exit(ps, 2, 15, 5);
        for (unsigned i = 0; i < 2; i++) {
                ck_assert_msg(h_log_has(ps[i], "source 'src.bin' is gone"), "%s: no word of the source:\n%s",
                              ps[i]->name, h_tail(ps[i]));
                char out[32], part[40];
                snprintf(out, sizeof(out), "out-%u.bin", i);
                snprintf(part, sizeof(part), "%s.part", out);
                ck_assert_msg(!h_exists(out), "%s exists after a failed swarm", out);
                ck_assert_msg(h_exists(part), "%s was removed", part);
        }
        h_log_wait(d, "'src.bin' failed", 5);
        h_stop_p2sd(d, 5);
}
END_TEST

/* p2sd on a 1 MB file in 1K chunks with a 4-chunk cache, three members
 * with --window 1; the first is stalled, so the swarm is mid-relay for as
 * long as the test wants. */
static struct h_proc *slow_swarm(struct h_proc *ps[3], uint64_t seed)
{
        h_make_file("src.bin", 1000 * 1000 + 5, seed);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "3", "--gather-timeout", "10", "--cache", "4K",
                                  "--chunk-size", "1K", "src.bin", NULL);
        static const char *const fargs[] = { "--window", "1", NULL };
        ps[2] = h_stalled_member(d, port, "src.bin", "out-2.bin", fargs);
        h_start_clients(ps, 2, port, "src.bin", "out", fargs);
        h_log_wait(d, "source closed", 15);
        return d;
}

static void assert_parts_kept(void)
{
        for (unsigned i = 0; i < 3; i++) {
                char out[32], part[40];
                snprintf(out, sizeof(out), "out-%u.bin", i);
                snprintf(part, sizeof(part), "%s.part", out);
                ck_assert_msg(!h_exists(out), "%s exists after the swarm was stopped", out);
                ck_assert_msg(h_exists(part), "%s was not kept", part);
        }
}

/* SIGTERM to p2sd mid-swarm: p2sd exits 0 within 5 s; the two active
 * members are told (ERR SHUTDOWN) and exit 1 saying so; the stalled one,
 * resumed after p2sd is gone, fails too. Every OUTPUT.part is kept, no
 * OUTPUT appears. */
START_TEST(sigterm_mid_swarm)
{
        struct h_proc *ps[3];
        struct h_proc *d = slow_swarm(ps, 32);
        double t0 = h_now();
        h_signal(d, SIGTERM);
        ck_assert_msg(h_wait(d, 5) == 0, "p2sd exited %d:\n%s", d->code, h_tail(d));
        ck_assert_msg(d->t_end - t0 < 5.0, "p2sd took %.2f s to stop", d->t_end - t0);
        ck_assert_msg(h_log_has(d, "'src.bin' failed"), "%s", h_tail(d));
        h_expect_exit(ps, 2, 10, 6);
        for (unsigned i = 0; i < 2; i++)
                ck_assert_msg(h_log_has(ps[i], "shutting down"), "%s: no word of the shutdown:\n%s", ps[i]->name,
                              h_tail(ps[i]));
        h_signal(ps[2], SIGCONT);
        h_expect_exit(&ps[2], 1, 15, 6);
        assert_parts_kept();
}
END_TEST

/* A member that is slow to read when p2sd stops (resumed as soon as p2sd
 * has handled SIGTERM, well within its grace) must be told too: the fatal
 * ERR goes on the ordered connection precisely so that it arrives. */
START_TEST(sigterm_slow_member_told)
{
        struct h_proc *ps[3];
        struct h_proc *d = slow_swarm(ps, 33);
        h_signal(d, SIGTERM);
        h_log_wait(d, "got Terminated", 5);
        h_signal(ps[2], SIGCONT);
        ck_assert_msg(h_wait(d, 5) == 0, "p2sd exited %d:\n%s", d->code, h_tail(d));
        h_expect_exit(ps, 3, 15, 6);
        assert_parts_kept();
        for (unsigned i = 0; i < 3; i++)
                ck_assert_msg(h_log_has(ps[i], "shutting down"), "%s%s: no word of the shutdown:\n%s",
                              ps[i]->name, i == 2 ? " (the slow member)" : "", h_tail(ps[i]));
}
END_TEST

/* A swarm with a member that never reads: two members, the first stalled,
 * and a 10 MB file. The stalled one's share (5 MB) is more than its socket
 * buffers take, so p2sd's queue to it stays non-empty: at shutdown only
 * p2sd's grace deadline can end that connection. */
static struct h_proc *stuck_distribution(struct h_proc *ps[2], uint64_t seed)
{
        h_make_file("src.bin", 10 * 1000 * 1000 + 1, seed);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "2", "--gather-timeout", "10", "src.bin", NULL);
        ps[1] = h_stalled_member(d, port, "src.bin", "out-1.bin", NULL);
        ps[0] = h_fetch(port, "src.bin", "out-0.bin", NULL);
        h_log_wait(d, "starting with 2 members", 10);
        return d;
}

/* SIGTERM while a member never reads: p2sd tells the other, then gives up on
 * the stuck one after its shutdown grace and exits 0 within 5 s. */
START_TEST(sigterm_with_stuck_reader)
{
        struct h_proc *ps[2];
        struct h_proc *d = stuck_distribution(ps, 35);
        double t0 = h_now();
        h_signal(d, SIGTERM);
        h_expect_exit(ps, 1, 10, 6);
        ck_assert_msg(h_log_has(ps[0], "shutting down"), "no word of the shutdown:\n%s", h_tail(ps[0]));
        ck_assert_msg(h_wait(d, 6) == 0, "p2sd exited %d:\n%s", d->code, h_tail(d));
        ck_assert_msg(d->t_end - t0 < 5.0, "p2sd took %.2f s to stop", d->t_end - t0);
        if (getenv("P2S_IT_DEBUG"))
                fprintf(stderr, "sigterm_with_stuck_reader: p2sd stopped in %.2f s\n", d->t_end - t0);
        h_signal(ps[1], SIGCONT);
        h_expect_exit(&ps[1], 1, 15, 6);
        ck_assert_msg(!h_exists("out-0.bin") && !h_exists("out-1.bin"), "an OUTPUT appeared");
}
END_TEST

/* The same while datagrams keep arriving (a stray one every 100 ms, as a
 * scanner or a misconfigured client would send): the shutdown grace is a
 * deadline and must fire however busy the UDP port is. */
START_TEST(sigterm_under_udp_traffic)
{
        struct h_proc *ps[2];
        struct h_proc *d = stuck_distribution(ps, 36);
        unsigned port = 0;
        char *log = h_slurp(d->log, NULL);
        const char *pp = log ? strstr(log, " port ") : NULL;
        ck_assert_msg(pp && sscanf(pp, " port %u", &port) == 1, "no port in the p2sd log:\n%s", h_tail(d));
        free(log);
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert(fd >= 0);
        struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        double t0 = h_now();
        h_signal(d, SIGTERM);
        while (!h_wait_for(d, 0.1) && h_now() - t0 < 6)
                sendto(fd, "junk", 4, 0, (struct sockaddr *)&to, sizeof(to));
        close(fd);
        ck_assert_msg(h_wait_for(d, 0), "p2sd still running %.1f s after SIGTERM:\n%s", h_now() - t0, h_tail(d));
        ck_assert_msg(d->code == 0, "p2sd exited %d:\n%s", d->code, h_tail(d));
        ck_assert_msg(d->t_end - t0 < 5.0, "p2sd took %.2f s to stop", d->t_end - t0);
}
END_TEST

/* p2sd dies (SIGKILL) mid-swarm: no ERR can come, but every member notices
 * the lost connection and exits 1 promptly, keeping its OUTPUT.part. */
START_TEST(p2sd_killed_mid_swarm)
{
        struct h_proc *ps[3];
        struct h_proc *d = slow_swarm(ps, 34);
        h_signal(d, SIGKILL);
        ck_assert_int_eq(h_wait(d, 5), 128 + SIGKILL);
        h_signal(ps[2], SIGCONT);
        h_expect_exit(ps, 3, 10, 6);
        for (unsigned i = 0; i < 3; i++)
                ck_assert_msg(h_log_has(ps[i], "lost the connection to the server"), "%s:\n%s", ps[i]->name,
                              h_tail(ps[i]));
        assert_parts_kept();
}
END_TEST

/* p2sd cannot start: exit 1 and one error line naming the cause. */
static void expect_start_failure(const char *const argv[], const char *needle)
{
        struct h_proc *p = h_run_prog("p2sd", argv, 10);
        ck_assert_msg(p->code == 1, "p2sd exited %d, expected 1:\n%s", p->code, h_tail(p));
        ck_assert_msg(h_log_has(p, needle), "no '%s' in:\n%s", needle, h_tail(p));
        ck_assert_msg(!h_log_has(p, "listening on"), "it started:\n%s", h_tail(p));
}

START_TEST(p2sd_cannot_start)
{
        const char *p2sd = getenv("P2SD");
        ck_assert(p2sd);
        const char *const missing[] = { p2sd, "--port", "0", "nosuch.bin", NULL };
        expect_start_failure(missing, "nosuch.bin");
        const char *const noroot[] = { p2sd, "--port", "0", "--root", "nosuchdir", NULL };
        expect_start_failure(noroot, "nosuchdir");
        h_make_file("src.bin", 10, 34);
        unsigned port;
        int fd = bound_socket(SOCK_STREAM, &port);
        ck_assert(listen(fd, 1) == 0);
        char ps[8];
        snprintf(ps, sizeof(ps), "%u", port);
        const char *const busy[] = { p2sd, "--listen", "127.0.0.1", "--port", ps, "src.bin", NULL };
        expect_start_failure(busy, "cannot listen");
        close(fd);
}
END_TEST

/* A bad command line: exit 2 and exactly one line on stderr; nothing created. */
static void expect_usage_error(const char *prog, const char *const *args)
{
        const char *argv[16] = { prog };
        size_t n = 1;
        while (args[n - 1])
                argv[n] = args[n - 1], n++;
        argv[n] = NULL;
        char cmd[512] = "";
        for (size_t i = 1; i < n; i++)
                snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " %s", argv[i]);
        struct h_proc *p = h_run_prog(strstr(prog, "fetch") ? "fetch" : "p2sd", argv, 10);
        size_t len;
        char *log = h_slurp(p->log, &len);
        ck_assert(log);
        unsigned lines = 0;
        for (size_t i = 0; i < len; i++)
                lines += log[i] == '\n';
        ck_assert_msg(p->code == 2, "%s%s: exit %d, expected 2:\n%s", prog, cmd, p->code, log);
        ck_assert_msg(lines == 1 && len > 1 && log[len - 1] == '\n', "%s%s: %u lines on stderr, expected one:\n%s",
                      prog, cmd, lines, log);
        /* the short name, never the path of the binary, and where to look */
        const char *name = strstr(prog, "fetch") ? "p2s-fetch" : "p2sd";
        char prefix[32], hint[64];
        snprintf(prefix, sizeof(prefix), "%s: ", name);
        snprintf(hint, sizeof(hint), " (try '%s --help')\n", name);
        ck_assert_msg(!strncmp(log, prefix, strlen(prefix)), "%s%s: the line does not start with '%s': %s", prog,
                      cmd, prefix, log);
        ck_assert_msg(len > strlen(hint) && !strcmp(log + len - strlen(hint), hint),
                      "%s%s: the line does not end with the hint: %s", prog, cmd, log);
        free(log);
        ck_assert_msg(!h_exists("n.part") && !h_exists("n"), "%s%s created an output", prog, cmd);
}

START_TEST(bad_command_lines)
{
        h_make_file("f", 10, 35);
        const char *p2sd = getenv("P2SD"), *fetch = getenv("P2S_FETCH");
        ck_assert(p2sd && fetch);
        static const char *const daemon_bad[][8] = {
                { "--bogus", "f" },
                { "--port", "abc", "f" },
                { "--port", "70000", "f" },
                { "--replicas", "0", "f" },
                { "--chunk-size", "100", "f" },
                { "--chunk-size", "32M", "f" },
                { "--cache", "12Q", "f" },
                { "--query", "loud", "f" },
                { "--control", "sctp", "f" },
                { "--min-clients", "-1", "f" },
                { "--gather-timeout", "soon", "f" },
                { "--log-level", "chatty", "f" },
                { "--root", ".", "f" },
                { "--max-datagram", "100", "f" },
                { "--max-datagram", "65508", "f" },
                /* 16 MiB chunks in 156-byte fragments would need more than 65535 of them */
                { "--control", "tcp", "--max-datagram", "200", "--chunk-size", "16M", "f" },
                { "--port" },
                { "--listen", "localhost", "f" },
                { "--cache", "0", "f" },
                { "--cache", "99999999G", "f" },
                { "--min-clients", "100001", "f" },
                { "--replicas", "65", "f" },
                { "--gather-timeout", "86401", "f" },
                { "--help=1" },
                { "f", "-x" },
                { "--root", "" },
                { NULL },
        };
        for (size_t i = 0; i < sizeof(daemon_bad) / sizeof(daemon_bad[0]); i++)
                expect_usage_error(p2sd, daemon_bad[i]);
        static const char *const fetch_bad[][6] = {
                { "--bogus", "127.0.0.1", "n" },
                { "--port", "abc", "127.0.0.1", "n" },
                { "127.0.0.1:abc", "n" },
                { "127.0.0.1:0", "n" },
                { "127.0.0.1:70000", "n" },
                { "[::1", "n" },
                { "--window", "0", "127.0.0.1", "n" },
                { "--timeout", "0", "127.0.0.1", "n" },
                { "--order", "backwards", "127.0.0.1", "n" },
                { "p2s://127.0.0.1/n", "extra" },
                { "::1:7720", "n" },
                { "-o", "-", "127.0.0.1", "n" },
                { "-o", "/dev/null", "127.0.0.1", "n" },
                { "--sha256", "00", "127.0.0.1", "n" },
                { "--parallel", "0", "127.0.0.1", "n" },
                { "127.0.0.1", ".." },
                { "127.0.0.1" },
                { "-o" },
                { "--window", "1025", "127.0.0.1", "n" },
                { "--timeout", "0.05", "127.0.0.1", "n" },
                { "--timeout", "86401", "127.0.0.1", "n" },
                { "--quiet=1", "127.0.0.1", "n" },
                { NULL },
        };
        for (size_t i = 0; i < sizeof(fetch_bad) / sizeof(fetch_bad[0]); i++)
                expect_usage_error(fetch, fetch_bad[i]);
}
END_TEST

/* The one line names the argument that is wrong: "127.0.0.1:abc", not the
 * host alone. */
START_TEST(bad_host_port_named)
{
        const char *fetch = getenv("P2S_FETCH");
        ck_assert(fetch);
        const char *const argv[] = { fetch, "127.0.0.1:abc", "n", NULL };
        struct h_proc *p = h_run_prog("fetch", argv, 10);
        ck_assert_int_eq(p->code, 2);
        ck_assert_msg(h_log_has(p, "127.0.0.1:abc"), "the error does not show the bad argument:\n%s", h_tail(p));
}
END_TEST

/* --help and --version: exit 0, output on stdout. */
START_TEST(help_and_version)
{
        const char *progs[] = { getenv("P2SD"), getenv("P2S_FETCH") };
        for (unsigned i = 0; i < 2; i++) {
                ck_assert(progs[i]);
                const char *const help[] = { progs[i], "--help", NULL };
                struct h_proc *p = h_run_prog("help", help, 10);
                ck_assert_int_eq(p->code, 0);
                ck_assert_msg(h_log_has(p, "Usage:"), "%s", h_tail(p));
                const char *const ver[] = { progs[i], "--version", NULL };
                p = h_run_prog("version", ver, 10);
                ck_assert_int_eq(p->code, 0);
                ck_assert_msg(h_log_has(p, i ? "p2s-fetch " : "p2sd "), "%s", h_tail(p));
        }
}
END_TEST

static Suite *failure_suite(void)
{
        Suite *s = suite_create("integration-failure");
        TCase *tc = h_tcase("unreachable", 30);
        tcase_add_test(tc, nothing_listens);
        tcase_add_test(tc, silent_port);
        suite_add_tcase(s, tc);
        tc = h_tcase("mid-swarm", 60);
        tcase_add_test(tc, member_lost_with_only_copy);
        tcase_add_test(tc, member_lost_source_gone);
        tcase_add_test(tc, sigterm_mid_swarm);
        tcase_add_test(tc, sigterm_slow_member_told);
        tcase_add_test(tc, p2sd_killed_mid_swarm);
        tcase_add_test(tc, sigterm_with_stuck_reader);
        tcase_add_test(tc, sigterm_under_udp_traffic);
        suite_add_tcase(s, tc);
        tc = h_tcase("command-line", 60);
        tcase_add_test(tc, p2sd_cannot_start);
        tcase_add_test(tc, bad_command_lines);
        tcase_add_test(tc, bad_host_port_named);
        tcase_add_test(tc, help_and_version);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(failure_suite);
