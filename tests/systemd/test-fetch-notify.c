/* SPDX-License-Identifier: MIT */
/* p2s-fetch's progress: with NOTIFY_SOCKET it sends READY=1 once it joined
 * the swarm, then "STATUS=fetched A/B MiB, R MiB/s, P% from cache" at least
 * once a second while fetching; on a terminal a bar with rate and ETA. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "harness.h"
#include "runner.h"

#define FETCHED_RE "^STATUS=fetched [0-9.]+/[0-9.]+ MiB, [0-9.]+ MiB/s, [0-9]+% from cache$"

START_TEST(ready_then_fetched_status_every_second)
{
        const char *src = h_path("f.bin");
        h_make_file(src, 4u << 20, 1);
        struct h_notify *n = h_notify_open("notify");
        const char *args[] = { "--port", "0", "--min-clients", "3", "--gather-timeout", "60", "--cache", "1",
                               src, NULL };
        unsigned port;
        struct h_proc *d = h_p2sd_start(n, args, NULL, &port, NULL, 0);
        struct h_member m[3];
        /* member 0 runs with --quiet: STATUS= still goes to the service
         * manager, nothing to stderr */
        const char *quiet[] = { "--quiet", NULL };
        h_stalled_swarm(d, m, 3, port, "f.bin", "f", NULL, quiet);
        /* the first datagram was READY=1 with a STATUS= (h_member_joined waited for it) */
        ck_assert_msg(strstr(m[0].n->log, "READY=1\nSTATUS=joined swarm ") == m[0].n->log, "%s", m[0].n->log);

        char msg[512];
        double t[2];
        for (int i = 0; i < 2; i++) {
                ck_assert_msg(h_notify_wait(m[0].n, "STATUS=fetched ", msg, sizeof(msg), 5), "%s", m[0].n->log);
                t[i] = h_now();
                ck_assert_msg(h_match(msg, FETCHED_RE), "%s", msg);
        }
        ck_assert_msg(t[1] - t[0] < 1.5, "STATUS= %.0f ms apart", (t[1] - t[0]) * 1000);
        double got = 0, total = 0;
        ck_assert_int_eq(sscanf(msg, "STATUS=fetched %lf/%lf MiB", &got, &total), 2);
        ck_assert(got < total && total > 3.9 && total < 4.1);

        h_signal(m[1].p, SIGCONT);
        ck_assert_msg(h_wait_for(m[0].p, 30), "%s", h_log(m[0].p));
        ck_assert_msg(h_notify_wait(m[0].n, "STATUS=complete", msg, sizeof(msg), 0), "%s", m[0].n->log);
        ck_assert_msg(!*h_log(m[0].p), "--quiet printed: %s", h_log(m[0].p));
        ck_assert_msg(h_wait_for(m[2].p, 30), "%s", h_log(m[2].p));
        ck_assert_msg(strstr(h_log(m[2].p), "bytes verified"), "no summary line: %s", h_log(m[2].p));
        h_members_succeed(m, 3, src);
        h_proc_free(d);
        h_notify_close(n);
}
END_TEST

/* On a terminal: one line redrawn in place, with a bar, the rate and the
 * time left; the summary follows on a line of its own. */
START_TEST(progress_bar_on_a_terminal)
{
        const char *src = h_path("tty.bin");
        h_make_file(src, 4u << 20, 2);
        struct h_notify *n = h_notify_open("notify");
        const char *args[] = { "--port", "0", "--min-clients", "3", "--gather-timeout", "60", "--cache", "1",
                               src, NULL };
        unsigned port;
        struct h_proc *d = h_p2sd_start(n, args, NULL, &port, NULL, 0);
        struct h_member m[3];
        size_t from = h_log_len(d);
        for (int i = 0; i < 3; i++) {
                char out[16], joined[32];
                snprintf(out, sizeof(out), "tty.%d", i);
                h_member_start_tty(&m[i], port, "tty.bin", out, NULL, i == 0);
                ck_assert_msg(h_member_joined(&m[i], 10), "member %d did not join: %s", i, h_log(m[i].p));
                snprintf(joined, sizeof(joined), "(%d members)", i + 1);
                ck_assert_msg(h_log_wait_after(d, from, joined, 10), "%s", h_log(d));
                if (i == 1)
                        h_signal(m[1].p, SIGSTOP);
        }
        ck_assert_msg(h_log_wait_for(m[0].p, "ETA", 5), "no progress bar: %s", h_log(m[0].p));
        ck_assert_msg(h_match(h_log(m[0].p), "\rtty\\.bin \\[[#.]{30}\\] +[0-9]+% +[0-9.]+ MiB/s ETA +[0-9]+s "),
                      "progress bar: %s", h_log(m[0].p));
        ck_assert_msg(!strstr(h_log(m[0].p), "p2s-fetch: tty.bin: "), "plain lines on a terminal: %s", h_log(m[0].p));
        h_signal(m[1].p, SIGCONT);
        ck_assert_msg(h_log_wait_for(m[0].p, "bytes verified", 30), "%s", h_log(m[0].p));
        h_members_succeed(m, 3, src);
        h_proc_free(d);
        h_notify_close(n);
}
END_TEST

static Suite *fetch_notify_suite(void)
{
        Suite *s = suite_create("fetch-notify");
        TCase *tc = h_tcase("status", 60);
        tcase_add_test(tc, ready_then_fetched_status_every_second);
        tcase_add_test(tc, progress_bar_on_a_terminal);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(fetch_notify_suite);
