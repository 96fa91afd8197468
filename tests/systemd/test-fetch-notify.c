/* SPDX-License-Identifier: MIT */
/* p2s-fetch's progress: with NOTIFY_SOCKET it sends READY=1 once it joined
 * the swarm, then "STATUS=fetched A/B MiB, R MiB/s, P% from cache" at least
 * once a second while fetching; on a terminal a bar with rate and ETA that
 * fits the terminal's width, follows a resize and ends at 100%. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
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

/* The bars drawn in text ("\rLINE\033[K" each, the last one of a run
 * followed by a newline, which the terminal turns into "\r\n"): the widest, and the last one that ended with a newline
 * (its text in final, "" when none did). */
static size_t widest_bar(const char *text, char *final, size_t cap)
{
        size_t widest = 0;
        final[0] = 0;
        for (const char *p = strchr(text, '\r'); p; p = strchr(p, '\r')) {
                p++;
                if (*p == '\n')
                        continue;
                const char *end = strstr(p, "\033[K");
                if (!end)
                        break;
                size_t n = (size_t)(end - p);
                const char *cr = memchr(p, '\r', n), *nl = memchr(p, '\n', n);
                ck_assert_msg(!cr && !nl, "a bar holds a line break: %.*s", (int)n, p);
                if (n > widest)
                        widest = n;
                if (end[3] == '\n' || (end[3] == '\r' && end[4] == '\n'))
                        snprintf(final, cap, "%.*s", (int)n, p);
                p = end;
        }
        return widest;
}

/* On a terminal: one line redrawn in place, with a bar, the rate and the
 * time left; narrowed to 40 columns (TIOCSWINSZ and SIGWINCH) it drops
 * fields instead of wrapping; the last bar is at 100%, on a line of its
 * own, and the summary follows. */
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
        /* the terminal has no size yet: 80 columns, every field */
        ck_assert_msg(h_log_wait_for(m[0].p, "ETA", 5), "no progress bar: %s", h_log(m[0].p));
        ck_assert_msg(h_match(h_log(m[0].p), "\rtty\\.bin \\[[#.]{10,}\\] +[0-9]+% [0-9.]+/4\\.0 MiB +[0-9.]+ "
                                             "[KM]?i?B/s ETA +[0-9:-]+ elapsed [0-9:]+\033\\[K"),
                      "progress bar: %s", h_log(m[0].p));
        ck_assert_msg(!strstr(h_log(m[0].p), "p2s-fetch: tty.bin: "), "plain lines on a terminal: %s", h_log(m[0].p));
        char final[256];
        ck_assert_uint_le(widest_bar(h_log(m[0].p), final, sizeof(final)), 79);

        /* 40 columns: once the resize is seen no bar is wider than 39 */
        ck_assert_int_eq(ioctl(m[0].p->tty, TIOCSWINSZ, &(struct winsize){ .ws_row = 24, .ws_col = 40 }), 0);
        h_signal(m[0].p, SIGWINCH);
        size_t narrow_from = 0;
        for (double t0 = h_now(); !narrow_from && h_now() - t0 < 5;) {
                const char *text = h_log(m[0].p);
                const char *last = strrchr(text, '\r');
                const char *end = last ? strstr(last, "\033[K") : NULL;
                if (end && end - last - 1 <= 39)
                        narrow_from = (size_t)(last - text);
                else
                        h_log_wait_after(m[0].p, h_log_len(m[0].p), "\r", 1);
        }
        ck_assert_msg(narrow_from, "no narrow bar after SIGWINCH: %s", h_tail(m[0].p));
        h_signal(m[1].p, SIGCONT);
        ck_assert_msg(h_log_wait_for(m[0].p, "bytes verified", 30), "%s", h_log(m[0].p));
        const char *text = h_log(m[0].p) + narrow_from;
        size_t widest = widest_bar(text, final, sizeof(final));
        ck_assert_msg(widest <= 39, "a bar of %zu columns on a 40-column terminal: %s", widest, text);
        ck_assert_msg(strstr(final, "100%"), "the last bar is not at 100%%: '%s' in %s", final, text);
        ck_assert_msg(strstr(text, "\033[K\r\np2s-fetch: tty.bin: 4194304 bytes verified"),
                      "the summary is not on a line of its own: %s", text);
        h_members_succeed(m, 3, src);
        h_proc_free(d);
        h_notify_close(n);
}
END_TEST

/* While the swarm gathers the bar says so; --progress=json off a terminal
 * is one parseable object per line, the last one "complete". */
START_TEST(waiting_on_a_terminal_and_json_lines)
{
        const char *src = h_path("w.bin");
        h_make_file(src, 2u << 20, 3);
        struct h_notify *n = h_notify_open("notify");
        const char *args[] = { "--port", "0", "--min-clients", "2", "--gather-timeout", "60", src, NULL };
        unsigned port;
        struct h_proc *d = h_p2sd_start(n, args, NULL, &port, NULL, 0);
        struct h_member m[2];
        h_member_start_tty(&m[0], port, "w.bin", "w.0", NULL, true);
        ck_assert_msg(h_member_joined(&m[0], 10), "%s", h_log(m[0].p));
        ck_assert_msg(h_log_wait_for(m[0].p, "\rw.bin: waiting for the swarm to start", 5), "%s", h_log(m[0].p));
        /* the server's answer to the member's keep-alive PING brings the count */
        ck_assert_msg(h_log_wait_for(m[0].p, "waiting for the swarm to start (1 member)", 5), "%s", h_log(m[0].p));
        const char *json[] = { "--progress=json", NULL };
        h_member_start_tty(&m[1], port, "w.bin", "w.1", json, false);
        ck_assert_msg(h_wait_for(m[1].p, 30), "%s", h_log(m[1].p));
        ck_assert_msg(h_wait_for(m[0].p, 30), "%s", h_log(m[0].p));
        const char *log = h_log(m[1].p);
        unsigned objects = 0;
        for (const char *line = log; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
                if (*line != '{')
                        continue;
                objects++;
                char one[512];
                snprintf(one, sizeof(one), "%.*s", (int)strcspn(line, "\n"), line);
                ck_assert_msg(h_match(one, "^\\{\"state\":\"(waiting|fetching|verifying|complete)\",\"name\":\"w\\.bin\","
                                           "\"bytes\":[0-9]+,\"total\":2097152,\"rate\":[0-9]+,\"eta\":([0-9.]+|null),"
                                           "\"elapsed\":[0-9.]+,\"share\":[0-9]+,\"peer\":[0-9]+,\"cache\":[0-9]+,"
                                           "\"members\":([0-9]+|null)\\}$"),
                              "not a progress object: %s", one);
        }
        ck_assert_msg(objects >= 1 && strstr(log, "{\"state\":\"complete\",\"name\":\"w.bin\",\"bytes\":2097152,"),
                      "no final object: %s", log);
        h_members_succeed(m, 2, src);
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
        tcase_add_test(tc, waiting_on_a_terminal_and_json_lines);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(fetch_notify_suite);
