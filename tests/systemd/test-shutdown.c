/* SPDX-License-Identifier: MIT */
/* SIGTERM and SIGINT through the signalfd: p2sd stops accepting, tells every
 * member it is going away (they exit non-zero saying so, partial files
 * kept), sends STOPPING=1 and exits 0 within a bounded time. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "harness.h"
#include "runner.h"

/* server_shutdown's own bound is 3 s; allow for a slow machine */
#define STOP_BOUND_S 6.0

START_TEST(sigterm_in_the_middle_of_a_swarm)
{
        const char *src = h_path("mid.bin");
        h_make_file(src, 2u << 20, 1);
        struct h_notify *n = h_notify_open("notify");
        /* tiny chunks, one request in flight, no cache: a slow swarm, and one
         * that cannot end while member 1 is stopped */
        const char *args[] = { "--port", "0", "--min-clients", "3", "--gather-timeout", "60", "--cache", "1",
                               "--chunk-size", "1K", src, NULL };
        unsigned port;
        struct h_proc *d = h_p2sd_start(n, args, NULL, &port, NULL, 0);
        struct h_member m[3];
        const char *window[] = { "--window", "1", NULL };
        h_stalled_swarm(d, m, 3, port, "mid.bin", "mid", window, NULL);
        char msg[512];
        ck_assert_msg(h_notify_wait(m[0].n, "STATUS=fetched ", msg, sizeof(msg), 10), "%s", m[0].n->log);
        double got = 0, total = 0;
        ck_assert_int_eq(sscanf(strstr(msg, "STATUS=fetched "), "STATUS=fetched %lf/%lf MiB", &got, &total), 2);
        ck_assert_msg(got < total, "member 0 is not in the middle: %s", msg);

        double t0 = h_now();
        h_signal(d, SIGTERM);
        h_signal(m[1].p, SIGCONT);
        ck_assert_msg(h_notify_wait(n, "STOPPING=1", msg, sizeof(msg), 5), "no STOPPING=1:\n%s", n->log);
        ck_assert_msg(h_wait_for(d, STOP_BOUND_S), "p2sd still running %.0f s after SIGTERM: %s", STOP_BOUND_S,
                      h_log(d));
        double took = h_now() - t0;
        ck_assert_msg(d->code == 0, "p2sd exited %d: %s", d->code, h_log(d));
        ck_assert_msg(h_log_wait_for(d, "telling members and stopping", 0), "%s", h_log(d));
        for (int i = 0; i < 3; i++) {
                ck_assert_msg(h_wait_for(m[i].p, 15), "member %d still running: %s", i, h_log(m[i].p));
                /* 6: the server went away (p2s-fetch(1), EXIT STATUS) */
                ck_assert_msg(m[i].p->code == 6, "member %d exited %d: %s", i, m[i].p->code,
                              h_log(m[i].p));
                /* member 1 too, stopped until now with unread data both ways:
                 * p2sd's lingering close keeps the reset from eating its ERR */
                ck_assert_msg(strstr(h_log(m[i].p), "shutting down"), "member %d does not say why: %s", i, h_log(m[i].p));
                char part[600];
                snprintf(part, sizeof(part), "%s.part", m[i].out);
                ck_assert_msg(h_exists(part), "member %d lost its partial file %s", i, part);
                ck_assert_msg(!h_exists(m[i].out), "member %d left an unverified %s", i, m[i].out);
                h_member_free(&m[i]);
        }
        fprintf(stderr, "p2sd stopped %.0f ms after SIGTERM\n", took * 1000);
        h_proc_free(d);
        h_notify_close(n);
}
END_TEST

/* Members still gathering (no manifest yet) are told as well. */
START_TEST(sigterm_while_gathering)
{
        const char *src = h_path("gather.bin");
        h_make_file(src, 100000, 2);
        struct h_notify *n = h_notify_open("notify");
        const char *args[] = { "--port", "0", "--min-clients", "5", "--gather-timeout", "60", src, NULL };
        unsigned port;
        struct h_proc *d = h_p2sd_start(n, args, NULL, &port, NULL, 0);
        struct h_member m[2];
        for (int i = 0; i < 2; i++) {
                char out[32];
                snprintf(out, sizeof(out), "gather.%d", i);
                h_member_start(&m[i], port, "gather.bin", out, NULL);
                ck_assert_msg(h_member_joined(&m[i], 10), "member %d did not join: %s", i, h_log(m[i].p));
                /* READY=1 may leave the member before its ATTACH reaches p2sd */
                snprintf(out, sizeof(out), "(%d members)", i + 1);
                ck_assert_msg(h_log_wait_for(d, out, 10), "p2sd did not see member %d: %s", i, h_log(d));
        }
        h_stop_p2sd(d, STOP_BOUND_S);
        for (int i = 0; i < 2; i++) {
                ck_assert_msg(h_wait_for(m[i].p, 10), "member %d still running: %s", i, h_log(m[i].p));
                /* 6: the server went away (p2s-fetch(1), EXIT STATUS) */
                ck_assert_msg(m[i].p->code == 6, "member %d exited %d: %s", i, m[i].p->code,
                              h_log(m[i].p));
                ck_assert_msg(strstr(h_log(m[i].p), "shutting down"), "member %d does not say why: %s", i, h_log(m[i].p));
                h_member_free(&m[i]);
        }
        h_proc_free(d);
        h_notify_close(n);
}
END_TEST

START_TEST(sigint_stops_an_idle_server)
{
        const char *src = h_path("idle.bin");
        h_make_file(src, 1000, 3);
        struct h_notify *n = h_notify_open("notify");
        const char *args[] = { "--port", "0", src, NULL };
        unsigned port;
        struct h_proc *d = h_p2sd_start(n, args, NULL, &port, NULL, 0);
        double t0 = h_now();
        h_signal(d, SIGINT);
        char msg[256];
        ck_assert_msg(h_notify_wait(n, "STOPPING=1", msg, sizeof(msg), 5), "no STOPPING=1:\n%s", n->log);
        ck_assert_msg(h_wait_for(d, STOP_BOUND_S), "p2sd did not exit: %s", h_log(d));
        ck_assert_int_eq(d->code, 0);
        /* nobody to tell: no reason to wait for the bound */
        ck_assert_double_lt(h_now() - t0, 2.0);
        h_proc_free(d);
        h_notify_close(n);
}
END_TEST

static Suite *shutdown_suite(void)
{
        Suite *s = suite_create("shutdown");
        TCase *tc = h_tcase("signals", 60);
        tcase_add_test(tc, sigterm_in_the_middle_of_a_swarm);
        tcase_add_test(tc, sigterm_while_gathering);
        tcase_add_test(tc, sigint_stops_an_idle_server);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(shutdown_suite);
