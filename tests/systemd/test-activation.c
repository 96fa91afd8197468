/* SPDX-License-Identifier: MIT */
/* Socket activation as systemd does it: the test opens the sockets, passes
 * them as fds 3, 4, ... with LISTEN_FDS, LISTEN_PID (the daemon's own pid,
 * set between fork and exec) and LISTEN_FDNAMES, and execs p2sd. */
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "harness.h"
#include "runner.h"

#define FILE_SIZE (3u << 20)

static struct h_proc *start_p2sd(struct h_notify *n, const int *fds, int nfds, const char *names,
                       bool wrong_pid, const char *const *extra_args)
{
        const char *argv[16] = { h_bin_p2sd(), "--log-level", "debug" };
        int a = 3;
        for (const char *const *e = extra_args; e && *e; e++)
                argv[a++] = *e;
        argv[a] = NULL;
        const char *env[] = { n->env, NULL };
        struct h_spawn s = { .argv = argv, .env = env, .fds = fds, .nfds = nfds, .fdnames = names,
                             .wrong_listen_pid = wrong_pid };
        return h_start(&s);
}

/* n clients fetch name from 127.0.0.1:port into outN; all must succeed. */
static void run_swarm(uint16_t port, const char *name, const char *src, int n)
{
        struct h_proc *c[8];
        char hp[32];
        snprintf(hp, sizeof(hp), "127.0.0.1:%u", port);
        for (int i = 0; i < n; i++) {
                const char *out = h_path("%s.out%d", name, i);
                const char *argv[] = { h_bin_fetch(), "--timeout", "20", hp, name, "-o", out, NULL };
                c[i] = h_start(&(struct h_spawn){ .argv = argv });
        }
        for (int i = 0; i < n; i++) {
                ck_assert_msg(h_wait_for(c[i], 60), "client %d did not finish: %s", i, h_log(c[i]));
                ck_assert_msg(c[i]->code == 0, "client %d exited %d: %s", i, c[i]->code, h_log(c[i]));
                ck_assert_msg(h_same_file(src, h_path("%s.out%d", name, i)), "copy %d differs from the source", i);
                h_proc_free(c[i]);
        }
}

static void stop_p2sd(struct h_proc *d)
{
        h_signal(d, SIGTERM);
        ck_assert_msg(h_wait_for(d, 10), "p2sd did not stop: %s", h_log(d));
        ck_assert_msg(d->code == 0, "p2sd exited %d: %s", d->code, h_log(d));
}

/* The invariant: p2sd serves through exactly the sockets it was given (the
 * test closes its own copies, and p2sd reports the port of fd 3), telling
 * TCP from UDP by type whatever the order and the names. */
static void swarm_through_activated(bool udp_first, const char *names, const char *control)

{
        int tcp, udp;
        uint16_t port = h_tcp_udp_pair(&tcp, &udp);
        const char *src = h_path("served-%d.bin", (int)udp_first);
        h_make_file(src, FILE_SIZE, port);
        struct h_notify *n = h_notify_open("notify");
        int fds[2] = { udp_first ? udp : tcp, udp_first ? tcp : udp };
        const char *args[] = { "--control", control, "--min-clients", "4", "--gather-timeout", "30",
                               "--chunk-size", "16K", src, NULL };
        struct h_proc *d = start_p2sd(n, fds, 2, names, false, args);
        close(tcp);
        close(udp);
        char msg[1024];
        ck_assert_msg(h_notify_wait(n, "READY=1", msg, sizeof(msg), 10), "no READY=1: %s", h_log(d));
        ck_assert_uint_eq(h_notify_uint(msg, "X_P2S_PORT"), port);
        ck_assert_msg(h_log_wait_for(d, "(activated)", 5), "p2sd did not say it was activated: %s", h_log(d));
        char name[64];
        snprintf(name, sizeof(name), "served-%d.bin", (int)udp_first);
        run_swarm(port, name, src, 4);
        stop_p2sd(d);
        h_proc_free(d);
        h_notify_close(n);
}

START_TEST(activated_tcp_then_udp)
{
        /* what one socket unit with ListenStream= and ListenDatagram= passes */
        swarm_through_activated(false, "p2sd.socket:p2sd.socket", "udp");
}
END_TEST

START_TEST(activated_udp_first_misleading_names)
{
        swarm_through_activated(true, "stream:dgram", "udp");
}
END_TEST

/* p2sd exits 1 before READY=1, with one error line naming fd and kind. */
static void refused(const int *fds, int nfds, const char *want)
{
        const char *src = h_path("small.bin");
        h_make_file(src, 4096, 1);
        struct h_notify *n = h_notify_open("notify");
        const char *args[] = { src, NULL };
        struct h_proc *d = start_p2sd(n, fds, nfds, NULL, false, args);
        ck_assert_msg(h_wait_for(d, 10), "p2sd did not exit: %s", h_log(d));
        ck_assert_msg(d->code == 1, "p2sd exited %d, want 1: %s", d->code, h_log(d));
        ck_assert_msg(strstr(h_log(d), want), "error does not say '%s': %s", want, h_log(d));
        char msg[256];
        ck_assert_msg(h_notify_recv(n, msg, sizeof(msg), 0) < 0, "p2sd notified: %s", msg);
        h_proc_free(d);
        h_notify_close(n);
}

static int unix_socket(int type, bool listening)
{
        int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h_path("unix-%d-%d", type, (int)listening));
        unlink(sa.sun_path);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        if (listening)
                ck_assert_int_eq(listen(fd, 1), 0);
        return fd;
}

START_TEST(refuses_unix_stream_in_place_of_tcp)
{
        int tcp, udp;
        h_tcp_udp_pair(&tcp, &udp);
        int fds[2] = { unix_socket(SOCK_STREAM, true), udp };
        refused(fds, 2, "socket activation passed fd 3, a UNIX stream socket");
}
END_TEST

START_TEST(refuses_unix_datagram_in_place_of_udp)
{
        int tcp, udp;
        h_tcp_udp_pair(&tcp, &udp);
        int fds[2] = { tcp, unix_socket(SOCK_DGRAM, false) };
        refused(fds, 2, "socket activation passed fd 4, a UNIX datagram socket");
}
END_TEST

START_TEST(refuses_a_third_socket)
{
        int tcp, udp;
        h_tcp_udp_pair(&tcp, &udp);
        int fds[3] = { tcp, udp, unix_socket(SOCK_DGRAM, false) };
        refused(fds, 3, "fd 5");
}
END_TEST

START_TEST(refuses_a_connection_socket)
{
        /* what Accept=yes would pass: a connected stream, not a listener */
        int tcp, udp;
        h_tcp_udp_pair(&tcp, &udp);
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        getsockname(tcp, (struct sockaddr *)&sa, &sl);
        int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_eq(connect(cl, (struct sockaddr *)&sa, sl), 0);
        int conn = accept4(tcp, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(conn, 0);
        int fds[2] = { conn, udp };
        refused(fds, 2, "not listening");
}
END_TEST

START_TEST(refuses_a_regular_file)
{
        int tcp, udp;
        h_tcp_udp_pair(&tcp, &udp);
        h_write_text(h_path("plain"), "x");
        FILE *f = fopen(h_path("plain"), "re");
        int fds[3] = { tcp, udp, fileno(f) };
        refused(fds, 3, "fd 5, a regular file");
        fclose(f);
}
END_TEST

START_TEST(refuses_tcp_without_udp)
{
        int tcp, udp;
        h_tcp_udp_pair(&tcp, &udp);
        int fds[1] = { tcp };
        refused(fds, 1, "one TCP listening and one UDP socket");
}
END_TEST

/* LISTEN_PID names another process: the fds are not for p2sd, which then
 * binds its own port as when started by hand. */
START_TEST(ignores_fds_meant_for_another_pid)
{
        int tcp, udp;
        uint16_t port = h_tcp_udp_pair(&tcp, &udp);
        const char *src = h_path("other.bin");
        h_make_file(src, 100000, 2);
        struct h_notify *n = h_notify_open("notify");
        const char *args[] = { "--port", "0", src, NULL };
        int fds[2] = { tcp, udp };
        struct h_proc *d = start_p2sd(n, fds, 2, "p2sd.socket:p2sd.socket", true, args);
        char msg[1024];
        ck_assert_msg(h_notify_wait(n, "READY=1", msg, sizeof(msg), 10), "no READY=1: %s", h_log(d));
        unsigned long got = h_notify_uint(msg, "X_P2S_PORT");
        ck_assert_uint_ne(got, 0);
        ck_assert_uint_ne(got, port);
        run_swarm((uint16_t)got, "other.bin", src, 1);
        stop_p2sd(d);
        ck_assert_msg(!strstr(h_log(d), "(activated)"), "p2sd took fds meant for another process: %s", h_log(d));
        h_proc_free(d);
        h_notify_close(n);
        close(tcp);
        close(udp);
}
END_TEST

static Suite *activation_suite(void)
{
        Suite *s = suite_create("activation");
        TCase *tc = h_tcase("swarm", 120);
        tcase_add_test(tc, activated_tcp_then_udp);
        tcase_add_test(tc, activated_udp_first_misleading_names);
        tcase_add_test(tc, ignores_fds_meant_for_another_pid);
        suite_add_tcase(s, tc);
        tc = h_tcase("refused", 30);
        tcase_add_test(tc, refuses_unix_stream_in_place_of_tcp);
        tcase_add_test(tc, refuses_unix_datagram_in_place_of_udp);
        tcase_add_test(tc, refuses_a_third_socket);
        tcase_add_test(tc, refuses_a_connection_socket);
        tcase_add_test(tc, refuses_a_regular_file);
        tcase_add_test(tc, refuses_tcp_without_udp);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(activation_suite);
