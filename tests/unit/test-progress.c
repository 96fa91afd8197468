/* SPDX-License-Identifier: MIT */
/* fetch/progress's renderers: the bar fits every width without wrapping and
 * drops its fields right to left, the wait and the final line say what they
 * should, durations read as a clock, and the JSON line parses with the keys
 * scripts rely on. */
#include <check.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fetch/progress.h"
#include "runner.h"

#define MIB (1024ull * 1024)

static struct progress_view fetching(void)
{
        return (struct progress_view){ .name = "images/debian-12.img", .state = PROGRESS_FETCHING,
                                       .bytes = 300 * MIB, .total = 1000 * MIB, .rate = 25.0 * MIB,
                                       .elapsed_us = 12ull * 1000000, .share = 10, .peer = 200, .cache = 90 };
}

static const char *bar(const struct progress_view *v, unsigned width)
{
        static char buf[1024];
        size_t n = progress_render_bar(buf, sizeof(buf), v, width);
        ck_assert_uint_eq(n, strlen(buf));
        return buf;
}

START_TEST(bar_at_200_columns_has_every_field)
{
        struct progress_view v = fetching();
        const char *b = bar(&v, 200);
        ck_assert_msg(strlen(b) <= 199, "%zu columns: %s", strlen(b), b);
        ck_assert_msg(strncmp(b, "images/debian-12.img [###", 25) == 0, "%s", b);
        ck_assert_msg(strstr(b, "]  30% 300.0/1000.0 MiB  25.0 MiB/s ETA  0:28 elapsed 0:12"), "%s", b);
}
END_TEST

START_TEST(bar_at_80_columns_keeps_eta)
{
        struct progress_view v = fetching();
        const char *b = bar(&v, 80);
        ck_assert_msg(strlen(b) <= 79, "%zu columns: %s", strlen(b), b);
        ck_assert_msg(strstr(b, "[") && strstr(b, " 30%") && strstr(b, "MiB/s") && strstr(b, "ETA  0:28"), "%s", b);
}
END_TEST

START_TEST(bar_at_40_columns_drops_from_the_right)
{
        struct progress_view v = fetching();
        const char *b = bar(&v, 40);
        ck_assert_msg(strlen(b) <= 39, "%zu columns: %s", strlen(b), b);
        ck_assert_msg(strstr(b, " 30%"), "the percentage went: %s", b);
        ck_assert_msg(!strstr(b, "ETA") && !strstr(b, "0:12"), "ETA and elapsed should go first: %s", b);
        /* the long name was cut, and says so */
        ck_assert_msg(strstr(b, "..."), "%s", b);
}
END_TEST

START_TEST(bar_never_wraps)
{
        const char *names[] = { "f", "a-rather-long-name-of-a-file/in/a/deep/tree/of/directories.tar.zst", "" };
        enum progress_state states[] = { PROGRESS_WAITING, PROGRESS_FETCHING, PROGRESS_VERIFYING,
                                         PROGRESS_COMPLETE };
        for (size_t ni = 0; ni < sizeof(names) / sizeof(names[0]); ni++)
                for (size_t si = 0; si < sizeof(states) / sizeof(states[0]); si++)
                        for (unsigned w = 2; w <= 300; w++) {
                                struct progress_view v = fetching();
                                v.name = names[ni];
                                v.state = states[si];
                                v.members = si == 0 ? 12 : 0;
                                const char *b = bar(&v, w);
                                ck_assert_msg(strlen(b) <= w - 1, "width %u: %zu columns: %s", w, strlen(b), b);
                                ck_assert_msg(!strchr(b, '\n') && !strchr(b, '\r'), "width %u: %s", w, b);
                                if (w >= 20 && si != 0)
                                        ck_assert_msg(strstr(b, "%"), "width %u: no percentage: %s", w, b);
                        }
}
END_TEST

START_TEST(waiting_says_so_with_the_member_count_when_known)
{
        struct progress_view v = { .name = "f.bin", .state = PROGRESS_WAITING, .elapsed_us = 3000000 };
        ck_assert_str_eq(bar(&v, 80), "f.bin: waiting for the swarm to start 0:03");
        v.members = 3;
        ck_assert_str_eq(bar(&v, 80), "f.bin: waiting for the swarm to start (3 members) 0:03");
        v.members = 1;
        ck_assert_str_eq(bar(&v, 80), "f.bin: waiting for the swarm to start (1 member) 0:03");
        ck_assert_uint_le(strlen(bar(&v, 40)), 39);
        char buf[256];
        progress_render_plain(buf, sizeof(buf), &v);
        ck_assert_str_eq(buf, "p2s-fetch: f.bin: waiting for the swarm to start (1 member)");
}
END_TEST

START_TEST(final_line_is_100_percent)
{
        struct progress_view v = fetching();
        v.state = PROGRESS_COMPLETE;
        v.bytes = v.total;
        const char *b = bar(&v, 100);
        const char *open = strchr(b, '['), *close = strchr(b, ']');
        ck_assert_msg(open && close && close - open > 10, "%s", b);
        for (const char *c = open + 1; c < close; c++)
                ck_assert_msg(*c == '#', "not a full bar: %s", b);
        ck_assert_msg(strstr(b, "100% 1000.0/1000.0 MiB") && strstr(b, " done "), "%s", b);
        v.state = PROGRESS_VERIFYING;
        ck_assert_msg(strstr(bar(&v, 100), "100% 1000.0/1000.0 MiB  25.0 MiB/s verifying"), "%s", bar(&v, 100));
}
END_TEST

START_TEST(plain_line_has_the_eta)
{
        struct progress_view v = fetching();
        char buf[512];
        size_t n = progress_render_plain(buf, sizeof(buf), &v);
        ck_assert_uint_eq(n, strlen(buf));
        ck_assert_str_eq(buf, "p2s-fetch: images/debian-12.img: 300.0/1000.0 MiB (30%), 25.0 MiB/s, "
                              "31% from cache, ETA 0:28, elapsed 0:12");
}
END_TEST

static void duration_is(double secs, const char *want)
{
        char buf[32];
        size_t n = progress_format_duration(buf, sizeof(buf), secs);
        ck_assert_uint_eq(n, strlen(buf));
        ck_assert_msg(!strcmp(buf, want), "%.1f s: '%s', want '%s'", secs, buf, want);
}

START_TEST(durations_read_as_a_clock)
{
        duration_is(0, "0:00");
        duration_is(7.2, "0:07");
        duration_is(59.6, "1:00");
        duration_is(754, "12:34");
        duration_is(3599, "59:59");
        duration_is(3723, "1:02:03");
        duration_is(99 * 3600 + 59 * 60 + 59, "99:59:59");
        duration_is(5 * 86400 + 3 * 3600 + 5, "5d03h");
        duration_is(2e9, ">999d");
        duration_is(-1, "--:--");
        char tiny[4];
        progress_format_duration(tiny, sizeof(tiny), 3723);
        ck_assert_str_eq(tiny, "1:0");
}
END_TEST

START_TEST(eta_from_the_rate)
{
        struct progress_view v = fetching();
        ck_assert(progress_eta(&v) == 700.0 / 25.0);
        v.rate = 0;
        ck_assert(progress_eta(&v) < 0);
        v.state = PROGRESS_WAITING;
        ck_assert(progress_eta(&v) < 0);
        v.state = PROGRESS_COMPLETE;
        ck_assert(progress_eta(&v) == 0);
}
END_TEST

/* ---- a small JSON reader: one flat object, values numbers, strings or null */

struct kv {
        char key[32];
        char type;              /* 'n' number, 's' string, 'z' null */
        double num;
        char str[128];
};

static const char *skip_ws(const char *p)
{
        while (*p == ' ')
                p++;
        return p;
}

static const char *parse_string(const char *p, char *out, size_t cap)
{
        size_t n = 0;
        if (*p++ != '"')
                return NULL;
        while (*p && *p != '"') {
                char c = *p++;
                if ((unsigned char)c < 0x20)
                        return NULL;    /* raw control bytes are not JSON */
                if (c == '\\') {
                        c = *p++;
                        if (c == 'u') {
                                unsigned v;
                                if (sscanf(p, "%4x", &v) != 1)
                                        return NULL;
                                p += 4;
                                c = (char)v;
                        } else if (c != '"' && c != '\\') {
                                return NULL;
                        }
                }
                if (n + 1 < cap)
                        out[n++] = c;
        }
        out[n] = 0;
        return *p == '"' ? p + 1 : NULL;
}

/* The number of pairs, or -1 when line is not one flat JSON object. */
static int parse_object(const char *line, struct kv *kv, int max)
{
        const char *p = skip_ws(line);
        int n = 0;
        if (*p++ != '{')
                return -1;
        for (;;) {
                p = skip_ws(p);
                if (n >= max || !(p = parse_string(p, kv[n].key, sizeof(kv[n].key))))
                        return -1;
                p = skip_ws(p);
                if (*p++ != ':')
                        return -1;
                p = skip_ws(p);
                if (*p == '"') {
                        kv[n].type = 's';
                        p = parse_string(p, kv[n].str, sizeof(kv[n].str));
                        if (!p)
                                return -1;
                } else if (!strncmp(p, "null", 4)) {
                        kv[n].type = 'z';
                        p += 4;
                } else {
                        char *end;
                        kv[n].type = 'n';
                        kv[n].num = strtod(p, &end);
                        if (end == p)
                                return -1;
                        p = end;
                }
                n++;
                p = skip_ws(p);
                if (*p == '}')
                        return *skip_ws(p + 1) == 0 ? n : -1;
                if (*p++ != ',')
                        return -1;
        }
}

static const struct kv *get(const struct kv *kv, int n, const char *key, char type)
{
        for (int i = 0; i < n; i++)
                if (!strcmp(kv[i].key, key)) {
                        ck_assert_msg(kv[i].type == type, "%s: type %c, want %c", key, kv[i].type, type);
                        return &kv[i];
                }
        ck_abort_msg("no key %s", key);
        return NULL;
}

START_TEST(json_parses_with_the_keys_scripts_use)
{
        struct progress_view v = fetching();
        v.name = "we\"ird\\na\nme";
        char buf[1024];
        struct kv kv[20];
        size_t len = progress_render_json(buf, sizeof(buf), &v);
        ck_assert_uint_eq(len, strlen(buf));
        ck_assert_msg(!strchr(buf, '\n'), "one object per line: %s", buf);
        int n = parse_object(buf, kv, 20);
        ck_assert_msg(n == 11, "%d pairs in %s", n, buf);
        ck_assert_str_eq(get(kv, n, "state", 's')->str, "fetching");
        ck_assert_str_eq(get(kv, n, "name", 's')->str, v.name);
        ck_assert(get(kv, n, "bytes", 'n')->num == 300.0 * MIB);
        ck_assert(get(kv, n, "total", 'n')->num == 1000.0 * MIB);
        ck_assert(get(kv, n, "rate", 'n')->num == 25.0 * MIB);
        ck_assert(get(kv, n, "eta", 'n')->num == 28.0);
        ck_assert(get(kv, n, "elapsed", 'n')->num == 12.0);
        ck_assert(get(kv, n, "share", 'n')->num == 10);
        ck_assert(get(kv, n, "peer", 'n')->num == 200);
        ck_assert(get(kv, n, "cache", 'n')->num == 90);
        get(kv, n, "members", 'z');

        v = (struct progress_view){ .name = "f", .state = PROGRESS_WAITING, .members = 4 };
        progress_render_json(buf, sizeof(buf), &v);
        n = parse_object(buf, kv, 20);
        ck_assert_msg(n == 11, "%s", buf);
        ck_assert_str_eq(get(kv, n, "state", 's')->str, "waiting");
        get(kv, n, "eta", 'z');
        ck_assert(get(kv, n, "members", 'n')->num == 4);

        v.state = PROGRESS_COMPLETE;
        progress_render_json(buf, sizeof(buf), &v);
        n = parse_object(buf, kv, 20);
        ck_assert_str_eq(get(kv, n, "state", 's')->str, "complete");
        ck_assert(get(kv, n, "eta", 'n')->num == 0);
}
END_TEST

START_TEST(small_buffers_stay_terminated)
{
        struct progress_view v = fetching();
        char buf[16];
        memset(buf, 'x', sizeof(buf));
        size_t n = progress_render_json(buf, sizeof(buf), &v);
        ck_assert_uint_eq(n, strlen(buf));
        ck_assert_uint_lt(n, sizeof(buf));
        n = progress_render_bar(buf, sizeof(buf), &v, 200);
        ck_assert_uint_eq(n, strlen(buf));
        n = progress_render_plain(buf, sizeof(buf), &v);
        ck_assert_uint_eq(n, strlen(buf));
        ck_assert_uint_eq(progress_render_json(buf, 0, &v), 0);
}
END_TEST

/* The drawing itself, on stderr made a pipe (check forks each test): a bar
 * is redrawn in place, progress_interrupt ends it with one newline, and
 * only once; the final bar ends its own line before the summary. */
START_TEST(interrupt_ends_a_drawn_bar_once)
{
        int p[2];
        ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
        ck_assert_int_eq(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
        unsetenv("NOTIFY_SOCKET");
        struct progress pr;
        struct member_stats st = { .chunks_peer = 5 };
        progress_init(&pr, "f.bin", PROGRESS_BAR);
        progress_interrupt();   /* nothing drawn: nothing to end */
        progress_start(&pr, 10 * MIB, 10);
        progress_tick(&pr, 5, &st, progress_next(&pr));
        progress_interrupt();
        progress_interrupt();
        char buf[4096];
        ssize_t n = read(p[0], buf, sizeof(buf) - 1);
        ck_assert_int_gt(n, 0);
        buf[n] = 0;
        ck_assert_msg(buf[0] == '\r' && strstr(buf, " 50% 5.0/10.0 MiB"), "%s", buf);
        const char *end = strstr(buf, "\033[K");
        ck_assert_msg(end && !strcmp(end, "\033[K\n"), "not ended by one newline: %s", buf);

        struct manifest mf = { .file_size = 10 * MIB };
        progress_complete(&pr, &st, &mf, pr.started + 2000000);
        progress_interrupt();   /* the final bar ended its line already */
        n = read(p[0], buf, sizeof(buf) - 1);
        ck_assert_int_gt(n, 0);
        buf[n] = 0;
        ck_assert_msg(strstr(buf, "100% 10.0/10.0 MiB") && strstr(buf, "\033[K\np2s-fetch: f.bin: 10485760 bytes verified"),
                      "%s", buf);
        ck_assert_msg(buf[n - 1] == '\n' && !strstr(buf, "\n\n"), "%s", buf);
        close(p[0]);
        close(p[1]);
}
END_TEST

static Suite *progress_suite(void)
{
        Suite *s = suite_create("progress");
        TCase *tc = tcase_create("render");
        tcase_add_test(tc, bar_at_200_columns_has_every_field);
        tcase_add_test(tc, bar_at_80_columns_keeps_eta);
        tcase_add_test(tc, bar_at_40_columns_drops_from_the_right);
        tcase_add_test(tc, bar_never_wraps);
        tcase_add_test(tc, waiting_says_so_with_the_member_count_when_known);
        tcase_add_test(tc, final_line_is_100_percent);
        tcase_add_test(tc, plain_line_has_the_eta);
        tcase_add_test(tc, durations_read_as_a_clock);
        tcase_add_test(tc, eta_from_the_rate);
        tcase_add_test(tc, json_parses_with_the_keys_scripts_use);
        tcase_add_test(tc, small_buffers_stay_terminated);
        tcase_add_test(tc, interrupt_ends_a_drawn_bar_once);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(progress_suite);
