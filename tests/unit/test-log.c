/* SPDX-License-Identifier: MIT */
/* util/log: the line format with and without journald's priority prefix
 * (JOURNAL_STREAM trusted only when it names our stderr), level filtering,
 * and log_rl's flood suppression with its "N similar messages suppressed"
 * report. stderr is a pipe the test reads. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "runner.h"
#include "util/log.h"

static int err_r = -1, saved_err = -1;

/* stderr becomes a pipe; check forks each test, so this ends with it. */
static void capture_setup(void)
{
        int p[2];
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        /* roomy enough for every line a test writes, so no write blocks */
        fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
        saved_err = dup(STDERR_FILENO);
        ck_assert_int_eq(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
        close(p[1]);
        err_r = p[0];
        unsetenv("JOURNAL_STREAM");
        log_init("/usr/bin/p2s-test");
        log_set_level(LOG_INFO);
}

static void capture_teardown(void)
{
        if (saved_err >= 0)
                dup2(saved_err, STDERR_FILENO);
        close(saved_err);
        close(err_r);
        saved_err = err_r = -1;
}

/* Everything written to stderr since the last call (a static buffer). */
static const char *taken(void)
{
        static char buf[1 << 16];
        size_t n = 0;
        ssize_t r;
        while (n < sizeof(buf) - 1 && (r = read(err_r, buf + n, sizeof(buf) - 1 - n)) > 0)
                n += (size_t)r;
        buf[n] = 0;
        return buf;
}

static unsigned count(const char *text, const char *needle)
{
        unsigned n = 0;
        for (const char *s = text; (s = strstr(s, needle)); s += strlen(needle))
                n++;
        return n;
}

/* p2s-fetch's hook: runs before each record is written, not for filtered ones */
static void before_write(void)
{
        ssize_t w = write(STDERR_FILENO, "[hook]", 6);
        (void)w;
}

START_TEST(before_write_hook_runs_first)
{
        log_set_before_write(before_write);
        log_err("e");
        log_debug("filtered");
        log_set_before_write(NULL);
        log_err("f");
        ck_assert_str_eq(taken(), "[hook]p2s-test: error: e\np2s-test: error: f\n");
}
END_TEST

START_TEST(plain_format)
{
        log_err("disk %s", "full");
        log_warning("w");
        log_notice("n");
        log_info("i");
        ck_assert_str_eq(taken(), "p2s-test: error: disk full\np2s-test: warning: w\n"
                                  "p2s-test: notice: n\np2s-test: info: i\n");
}
END_TEST

START_TEST(level_filters)
{
        log_debug("not at info");
        ck_assert_str_eq(taken(), "");
        log_set_level(LOG_WARNING);
        ck_assert_int_eq(log_get_level(), LOG_WARNING);
        log_notice("dropped");
        log_warning("kept");
        ck_assert_str_eq(taken(), "p2s-test: warning: kept\n");
        /* out of range clamps */
        log_set_level(99);
        ck_assert_int_eq(log_get_level(), LOG_DEBUG);
        log_debug("d");
        ck_assert_str_eq(taken(), "p2s-test: debug: d\n");
        ck_assert_int_eq(log_level_from_string("warn"), LOG_WARNING);
        ck_assert_int_eq(log_level_from_string("7"), LOG_DEBUG);
        ck_assert_int_eq(log_level_from_string("loud"), -1);
        ck_assert_int_eq(log_level_from_string("2"), -1);
}
END_TEST

static void set_journal_stream(int fd, long long ino_delta)
{
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        char v[64];
        snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + (unsigned long long)ino_delta);
        setenv("JOURNAL_STREAM", v, 1);
}

/* JOURNAL_STREAM naming our stderr: "<prio>message", nothing else. */
START_TEST(journal_prefix)
{
        set_journal_stream(STDERR_FILENO, 0);
        log_init("p2sd");
        log_err("e");
        log_warning("w");
        log_info("i");
        ck_assert_str_eq(taken(), "<3>e\n<4>w\n<6>i\n");
        log_set_prefix(false);
        log_err("e");
        ck_assert_str_eq(taken(), "p2sd: error: e\n");
}
END_TEST

/* Inherited by a child whose stderr is elsewhere: not trusted. */
START_TEST(journal_stream_of_another_file)
{
        set_journal_stream(STDERR_FILENO, 1);
        log_init("p2sd");
        log_err("e");
        ck_assert_str_eq(taken(), "p2sd: error: e\n");
        setenv("JOURNAL_STREAM", "garbage", 1);
        log_init("p2sd");
        log_err("e");
        ck_assert_str_eq(taken(), "p2sd: error: e\n");
        /* forced on without journald */
        unsetenv("JOURNAL_STREAM");
        log_init("p2sd");
        log_set_prefix(true);
        log_notice("n");
        ck_assert_str_eq(taken(), "<5>n\n");
}
END_TEST

/* A line longer than the buffer stays one line. */
START_TEST(long_line_stays_a_line)
{
        static char big[4000];
        memset(big, 'x', sizeof(big) - 1);
        log_err("%s", big);
        const char *t = taken();
        ck_assert_uint_eq(count(t, "\n"), 1);
        ck_assert(t[strlen(t) - 1] == '\n');
}
END_TEST

/* A flood through one call site: the burst passes, the rest is counted. */
START_TEST(rate_limit_suppresses_a_flood)
{
        for (int i = 0; i < 100; i++)
                log_rl(LOG_WARNING, "bad packet %d", i);
        const char *t = taken();
        ck_assert_msg(count(t, "bad packet") == 10, "%s", t);
        ck_assert(strstr(t, "bad packet 0\n") && strstr(t, "bad packet 9\n") && !strstr(t, "bad packet 10\n"));
        ck_assert_msg(!strstr(t, "suppressed"), "%s", t);
        /* a second call site has its own budget */
        log_rl(LOG_WARNING, "other site");
        ck_assert_str_eq(taken(), "p2s-test: warning: other site\n");
}
END_TEST

/* When the window has passed, the first line says how many were dropped.
 * The window is moved back by hand: the test does not wait 5 s. */
START_TEST(rate_limit_reports_suppressed)
{
        struct log_ratelimit rl = { 0 };
        for (int i = 0; i < 25; i++)
                log_msg_rl(&rl, LOG_ERR, "flood %d", i);
        const char *t = taken();
        ck_assert_uint_eq(count(t, "flood"), 10);
        ck_assert_uint_eq(rl.suppressed, 15);
        rl.window_start_us = 1;
        log_msg_rl(&rl, LOG_ERR, "after");
        ck_assert_str_eq(taken(), "p2s-test: error: (15 similar messages suppressed)\np2s-test: error: after\n");
        ck_assert_uint_eq(rl.suppressed, 0);
        ck_assert_uint_eq(rl.emitted, 1);
        /* a new window with nothing dropped reports nothing */
        rl.window_start_us = 1;
        log_msg_rl(&rl, LOG_ERR, "quiet");
        ck_assert_str_eq(taken(), "p2s-test: error: quiet\n");
        /* below the level: neither printed nor counted */
        log_set_level(LOG_WARNING);
        struct log_ratelimit rl2 = { 0 };
        for (int i = 0; i < 20; i++)
                log_msg_rl(&rl2, LOG_INFO, "info %d", i);
        ck_assert_str_eq(taken(), "");
        ck_assert_uint_eq(rl2.suppressed, 0);
}
END_TEST

/* Under journald the report carries the flood's priority. */
START_TEST(rate_limit_report_has_the_priority)
{
        set_journal_stream(STDERR_FILENO, 0);
        log_init("p2sd");
        struct log_ratelimit rl = { 0 };
        for (int i = 0; i < 12; i++)
                log_msg_rl(&rl, LOG_WARNING, "w");
        taken();
        rl.window_start_us = 1;
        log_msg_rl(&rl, LOG_WARNING, "next");
        ck_assert_str_eq(taken(), "<4>(2 similar messages suppressed)\n<4>next\n");
}
END_TEST

static Suite *log_suite(void)
{
        Suite *s = suite_create("log");
        TCase *tc = tcase_create("format");
        tcase_add_checked_fixture(tc, capture_setup, capture_teardown);
        tcase_add_test(tc, plain_format);
        tcase_add_test(tc, level_filters);
        tcase_add_test(tc, journal_prefix);
        tcase_add_test(tc, journal_stream_of_another_file);
        tcase_add_test(tc, long_line_stays_a_line);
        suite_add_tcase(s, tc);
        tc = tcase_create("ratelimit");
        tcase_add_checked_fixture(tc, capture_setup, capture_teardown);
        tcase_add_test(tc, rate_limit_suppresses_a_flood);
        tcase_add_test(tc, rate_limit_reports_suppressed);
        tcase_add_test(tc, rate_limit_report_has_the_priority);
        tcase_add_test(tc, before_write_hook_runs_first);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(log_suite);
