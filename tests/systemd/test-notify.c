/* SPDX-License-Identifier: MIT */
/* p2sd and the service manager: a NOTIFY_SOCKET owned by the test sees
 * READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 in that order, and
 * RELOADING=1 then READY=1 around SIGHUP, which re-reads the configuration
 * for swarms that start afterwards and leaves running ones alone. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "runner.h"

#define STATUS_RE "^[0-9]+ swarms, [0-9]+ members, [0-9]+ MiB in, [0-9]+ MiB out, cache hits [0-9]+%$"

/* The periodic STATUS= datagrams are those without READY=1. */
static bool periodic_status(const char *msg)
{
        return h_has_line(msg, "STATUS=") && !h_has_line(msg, "READY=1") && !h_has_line(msg, "STOPPING=1") &&
               !h_has_line(msg, "RELOADING=1");
}

START_TEST(ready_status_watchdog_stopping_in_order)
{
        const char *src = h_path("order.bin");
        h_make_file(src, 100000, 1);
        struct h_notify *n = h_notify_open("notify");
        char msg[2048], v[256];
        /* the first datagram of all: READY=1 with the port and a STATUS= */
        const char *argv[] = { h_bin_p2sd(), "--port", "0", src, NULL };
        const char *env[] = { n->env, "WATCHDOG_USEC=200000", NULL };
        struct h_proc *d = h_start(&(struct h_spawn){ .argv = argv, .env = env });
        ck_assert_msg(h_notify_recv(n, msg, sizeof(msg), 10) > 0, "no datagram: %s", h_log(d));
        ck_assert_msg(h_has_line(msg, "READY=1"), "first datagram is not READY=1: %s", msg);
        ck_assert_uint_gt(h_notify_uint(msg, "X_P2S_PORT"), 0);
        ck_assert_msg(h_match(h_notify_field(msg, "STATUS", v, sizeof(v)) ? v : "", STATUS_RE), "STATUS: %s", msg);

        /* then, in any interleaving, WATCHDOG=1 every 100 ms and a STATUS= every few seconds */
        unsigned pings = 0, statuses = 0;
        double deadline = h_now() + 10;
        while ((statuses < 1 || pings < 5) && h_now() < deadline) {
                ck_assert_int_gt(h_notify_recv(n, msg, sizeof(msg), 10), 0);
                ck_assert_msg(!h_has_line(msg, "READY=1") && !h_has_line(msg, "STOPPING=1"), "unexpected: %s", msg);
                if (h_has_line(msg, "WATCHDOG=1"))
                        pings++;
                if (periodic_status(msg)) {
                        statuses++;
                        ck_assert_msg(h_match(h_notify_field(msg, "STATUS", v, sizeof(v)), STATUS_RE), "STATUS: %s", msg);
                }
        }
        ck_assert_msg(statuses >= 1 && pings >= 5, "%u STATUS=, %u WATCHDOG=1 within 10 s:\n%s", statuses, pings,
                      n->log);

        /* SIGTERM: STOPPING=1, then exit 0 */
        h_signal(d, SIGTERM);
        ck_assert_msg(h_notify_wait(n, "STOPPING=1", msg, sizeof(msg), 5), "no STOPPING=1:\n%s", n->log);
        ck_assert_msg(h_wait_for(d, 10), "p2sd did not exit: %s", h_log(d));
        ck_assert_int_eq(d->code, 0);
        while (h_notify_recv(n, msg, sizeof(msg), 0) > 0)
                ck_assert_msg(!h_has_line(msg, "READY=1"), "READY=1 after STOPPING=1:\n%s", n->log);
        h_proc_free(d);
        h_notify_close(n);
}
END_TEST

/* Without WATCHDOG_USEC there is no timer and no WATCHDOG=1. */
START_TEST(no_watchdog_without_watchdog_usec)
{
        const char *src = h_path("nowd.bin");
        h_make_file(src, 1000, 2);
        struct h_notify *n = h_notify_open("notify");
        const char *args[] = { "--port", "0", src, NULL };
        unsigned port;
        struct h_proc *d = h_p2sd_start(n, args, NULL, &port, NULL, 0);
        char msg[1024];
        do
                ck_assert_msg(h_notify_recv(n, msg, sizeof(msg), 10) > 0, "no STATUS= refresh");
        while (!periodic_status(msg));
        ck_assert_msg(!strstr(n->log, "WATCHDOG=1"), "WATCHDOG=1 without WATCHDOG_USEC:\n%s", n->log);
        h_stop_p2sd(d, 10);
        h_proc_free(d);
        h_notify_close(n);
}
END_TEST

/* in both control modes: with --control=tcp the chunks leave on the UDP
 * data channel, which the bytes out must count too */
START_TEST(status_counts_a_running_swarm)
{
        const char *src = h_path("count.bin");
        h_make_file(src, 4u << 20, 3);
        struct h_notify *n = h_notify_open("notify");
        const char *args[] = { "--port", "0", "--min-clients", "3", "--gather-timeout", "60", "--cache", "1",
                               "--control", _i ? "tcp" : "udp", src, NULL };
        unsigned port;
        struct h_proc *d = h_p2sd_start(n, args, NULL, &port, NULL, 0);
        struct h_member m[3];
        h_stalled_swarm(d, m, 3, port, "count.bin", "count", NULL, NULL);
        char msg[1024], v[256];
        do
                ck_assert_msg(h_notify_recv(n, msg, sizeof(msg), 10) > 0, "no STATUS=:\n%s", n->log);
        while (!periodic_status(msg));
        h_notify_field(msg, "STATUS", v, sizeof(v));
        ck_assert_msg(h_match(v, "^1 swarms, 3 members, "), "STATUS during the swarm: %s", v);
        h_signal(m[1].p, SIGCONT);
        h_members_succeed(m, 3, src);
        /* the swarm is over: 0 swarms, and the bytes it moved */
        do
                ck_assert_msg(h_notify_recv(n, msg, sizeof(msg), 10) > 0, "no STATUS=:\n%s", n->log);
        while (!periodic_status(msg) || !h_match(msg, "STATUS=0 swarms"));
        h_notify_field(msg, "STATUS", v, sizeof(v));
        ck_assert_msg(h_match(v, STATUS_RE), "STATUS: %s", v);
        unsigned long in = 0, out = 0;
        ck_assert_int_eq(sscanf(v, "0 swarms, 0 members, %lu MiB in, %lu MiB out", &in, &out), 2);
        /* 3 members x 4 MiB left the server; the relayed part came in first */
        ck_assert_msg(out >= 11 && in >= 3, "STATUS after the swarm: %s", v);
        h_stop_p2sd(d, 10);
        h_proc_free(d);
        h_notify_close(n);
}
END_TEST

/* SIGHUP: RELOADING=1 (with MONOTONIC_USEC=), then READY=1, and nothing
 * else in between but periodic STATUS= and WATCHDOG=1. */
static void hup(struct h_proc *d, struct h_notify *n)
{
        char msg[1024];
        h_signal(d, SIGHUP);
        ck_assert_msg(h_notify_wait(n, "RELOADING=1", msg, sizeof(msg), 5), "no RELOADING=1:\n%s", n->log);
        ck_assert_msg(h_notify_uint(msg, "MONOTONIC_USEC") > 0, "RELOADING=1 without MONOTONIC_USEC=: %s", msg);
        for (;;) {
                ck_assert_msg(h_notify_recv(n, msg, sizeof(msg), 5) > 0, "no READY=1 after RELOADING=1:\n%s",
                              n->log);
                if (h_has_line(msg, "READY=1"))
                        break;
                ck_assert_msg(periodic_status(msg) || h_has_line(msg, "WATCHDOG=1"), "between RELOADING=1 and "
                              "READY=1: %s", msg);
        }
}

START_TEST(sighup_rereads_the_configuration)
{
        const char *a = h_path("a.bin"), *b = h_path("b.bin"), *conf = h_path("p2sd.conf");
        h_make_file(a, 200000, 4);
        h_make_file(b, 300000, 5);
        char text[2048];
        snprintf(text, sizeof(text), "# test\nfile = %s\nmin-clients = 1\nport = 1\n", a);
        h_write_text(conf, text);
        struct h_notify *n = h_notify_open("notify");
        /* the command line's --port wins over the file's */
        const char *args[] = { "--config", conf, "--port", "0", NULL };
        unsigned port;
        struct h_proc *d = h_p2sd_start(n, args, NULL, &port, NULL, 0);
        char *err;
        ck_assert_int_eq(h_fetch_once(port, "a.bin", "a.out", NULL), 0);
        ck_assert(h_same_file(a, h_path("a.out")));
        ck_assert_int_eq(h_fetch_once(port, "b.bin", "b.out1", &err), 4);   /* 4: not served (p2s-fetch(1)) */
        ck_assert_msg(strstr(err, "refused 'b.bin'"), "%s", err);
        free(err);

        /* a new file to serve and a smaller cache */
        snprintf(text, sizeof(text), "file = %s\nfile = %s\nmin-clients = 1\ncache = 32M\nport = 1\n", a, b);
        h_write_text(conf, text);
        hup(d, n);
        ck_assert_msg(h_log_wait_for(d, "reload: now serving file", 1), "%s", h_log(d));
        ck_assert_msg(h_log_wait_for(d, "reload: cache changed from 64M to 32M", 1), "%s", h_log(d));
        ck_assert_int_eq(h_fetch_once(port, "b.bin", "b.out2", NULL), 0);
        ck_assert(h_same_file(b, h_path("b.out2")));

        /* a broken file: the old configuration stays, with the error logged */
        snprintf(text, sizeof(text), "file = %s\nmin-clients = 1\nchunk-size = huge\n", a);
        h_write_text(conf, text);
        hup(d, n);
        ck_assert_msg(h_log_wait_for(d, "reload failed, keeping the previous configuration: ", 1), "%s", h_log(d));
        ck_assert_msg(h_log_wait_for(d, "p2sd.conf:3: chunk-size = huge: must be a size", 1), "%s", h_log(d));
        ck_assert_int_eq(h_fetch_once(port, "b.bin", "b.out3", NULL), 0);
        ck_assert(h_same_file(b, h_path("b.out3")));

        /* the control mode belongs to the running sockets: kept, with a warning */
        snprintf(text, sizeof(text), "file = %s\nmin-clients = 1\ncontrol = tcp\n", a);
        h_write_text(conf, text);
        hup(d, n);
        ck_assert_msg(h_log_wait_for(d, "control = tcp in the configuration, but control stays udp until p2sd is "
                                 "restarted", 1), "%s", h_log(d));
        ck_assert_msg(h_log_wait_for(d, "reload: no longer serving file", 1), "%s", h_log(d));
        ck_assert_int_eq(h_fetch_once(port, "a.bin", "a.out4", NULL), 0);
        ck_assert(h_same_file(a, h_path("a.out4")));

        h_stop_p2sd(d, 10);
        h_proc_free(d);
        h_notify_close(n);
}
END_TEST

/* A swarm running through a reload keeps what it started with (its file,
 * its chunk size), while the next swarm gets the new configuration. */
START_TEST(sighup_leaves_running_swarms_alone)
{
        const char *a = h_path("run-a.bin"), *b = h_path("run-b.bin"), *conf = h_path("run.conf");
        h_make_file(a, 2u << 20, 6);
        h_make_file(b, 1u << 20, 7);
        char text[2048];
        snprintf(text, sizeof(text), "file = %s\nmin-clients = 3\ngather-timeout = 60\ncache = 1\n", a);
        h_write_text(conf, text);
        struct h_notify *n = h_notify_open("notify");
        const char *args[] = { "--config", conf, "--port", "0", NULL };
        unsigned port;
        struct h_proc *d = h_p2sd_start(n, args, NULL, &port, NULL, 0);
        struct h_member m[3];
        h_stalled_swarm(d, m, 3, port, "run-a.bin", "run", NULL, NULL);
        /* member 0 reports progress: the swarm is past its start */
        char msg[512];
        ck_assert_msg(h_notify_wait(m[0].n, "STATUS=fetched ", msg, sizeof(msg), 10), "%s", m[0].n->log);

        snprintf(text, sizeof(text), "file = %s\nmin-clients = 1\nchunk-size = 16K\n", b);
        h_write_text(conf, text);
        hup(d, n);
        h_signal(m[1].p, SIGCONT);
        h_members_succeed(m, 3, a);

        char *err;
        ck_assert_int_eq(h_fetch_once(port, "run-a.bin", "run-a.late", &err), 4);   /* 4: not served */
        ck_assert_msg(strstr(err, "refused"), "%s", err);
        free(err);
        ck_assert_int_eq(h_fetch_once(port, "run-b.bin", "run-b.out", NULL), 0);
        ck_assert(h_same_file(b, h_path("run-b.out")));
        /* 1 MiB in 16K chunks */
        ck_assert_msg(h_log_wait_for(d, "in 64 chunks", 1), "new chunk size not applied: %s", h_log(d));
        h_stop_p2sd(d, 10);
        h_proc_free(d);
        h_notify_close(n);
}
END_TEST

static Suite *notify_suite(void)
{
        Suite *s = suite_create("notify");
        TCase *tc = h_tcase("p2sd", 60);
        tcase_add_test(tc, ready_status_watchdog_stopping_in_order);
        tcase_add_test(tc, no_watchdog_without_watchdog_usec);
        tcase_add_loop_test(tc, status_counts_a_running_swarm, 0, 2);
        suite_add_tcase(s, tc);
        tc = h_tcase("reload", 60);
        tcase_add_test(tc, sighup_rereads_the_configuration);
        tcase_add_test(tc, sighup_leaves_running_swarms_alone);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(notify_suite);
