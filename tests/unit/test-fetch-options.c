/* SPDX-License-Identifier: MIT */
/* p2s-fetch's command line through its one table: every option sets its
 * field, every range bound is accepted and every value past it refused with
 * the range in the one line, the operands are checked, and --help lists
 * every option. */
#include <check.h>
#include "helptext.h"
#include "runner.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fetch/exitcode.h"
#include "fetch/options.h"
#include "core/member.h"

/* fetch_options_parse cuts the host argument up in place: each call gets
 * fresh copies of the strings. */
struct args {
        char *v[32];
        char buf[2048];
        int n;
};

static int parse(struct args *a, struct fetch_options *o, const char *const *args, char *err, size_t errlen)
{
        size_t used = 0;
        a->n = 0;
        a->v[a->n++] = strcpy(a->buf, "p2s-fetch");
        used = strlen(a->buf) + 1;
        for (; args && *args; args++) {
                size_t l = strlen(*args) + 1;
                ck_assert(a->n < 31 && used + l <= sizeof(a->buf));
                a->v[a->n++] = memcpy(a->buf + used, *args, l);
                used += l;
        }
        a->v[a->n] = NULL;
        err[0] = 0;
        return fetch_options_parse(o, a->n, a->v, err, errlen);
}

static const struct sample {
        const char *name, *val;
} samples[] = {
        { "output", "/tmp/x.img" }, { "order", "random" }, { "window", "7" }, { "rtt-log", "rtt.csv" },
        { "secret-file", "/etc/p2s/secret" },
        { "timeout", "2.5" }, { "quiet", NULL }, { "progress", "json" }, { "log-level", "warning" },
        { "no-resume", NULL }, { "verify-file", NULL }, { "parallel", "9" },
        { "sha256", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" },
        { "remote-time", NULL }, { "preserve", NULL }, { "list", NULL }, { "recursive", NULL },
};

START_TEST(every_option_sets_its_field)
{
        struct fetch_options def, o;
        struct args a;
        char err[512];
        fetch_options_defaults(&def);
        for (size_t i = 0; i < fetch_option_count; i++) {
                const struct opt *d = &fetch_option_table[i];
                if (d->kind == OPT_ACTION)
                        continue;
                const struct sample *s = NULL;
                for (size_t j = 0; j < sizeof(samples) / sizeof(samples[0]); j++)
                        if (!strcmp(samples[j].name, d->name))
                                s = &samples[j];
                ck_assert_msg(s, "no sample value for --%s", d->name);
                char opt[64], before[128], after[128];
                snprintf(opt, sizeof(opt), "--%s", d->name);
                const char *argv[] = { opt, s->val ? s->val : "h", s->val ? "h" : "n", s->val ? "n" : NULL, NULL };
                ck_assert_msg(parse(&a, &o, argv, err, sizeof(err)) == 0, "%s", err);
                opt_format(d, &def, before, sizeof(before));
                opt_format(d, &o, after, sizeof(after));
                ck_assert_msg(strcmp(before, after), "--%s %s left the default %s", d->name, s->val, before);
                ck_assert_msg(!strcmp(after, s->val ? s->val : "yes"), "--%s %s gave %s", d->name, s->val, after);
        }
        /* short options reach the same entries */
        const char *const shorts[] = { "-w", "3", "-t", "4", "-o", "out", "h", "n", NULL };
        ck_assert_msg(parse(&a, &o, shorts, err, sizeof(err)) == 0, "%s", err);
        ck_assert_uint_eq(o.member.window, 3);
        ck_assert_uint_eq(o.timeout_us, 4000000);
        ck_assert_str_eq(o.output_arg, "out");
}
END_TEST

START_TEST(operands)
{
        struct fetch_options o;
        struct args a;
        char err[512];
        const char *const plain[] = { "server.example", "sub/disk.img", NULL };
        ck_assert_msg(parse(&a, &o, plain, err, sizeof(err)) == 0, "%s", err);
        ck_assert_str_eq(o.host, "server.example");
        ck_assert_uint_eq(o.port, 7700);
        ck_assert_str_eq(o.name, "sub/disk.img");
        ck_assert_str_eq(o.output, "disk.img");
        /* the silence allowed inside a swarm is 3 x --timeout */
        ck_assert_uint_eq(o.member.silence_timeout_us, 30000000);
        const char *const v6[] = { "--timeout", "1", "[::1]:9000", "n", NULL };
        ck_assert_msg(parse(&a, &o, v6, err, sizeof(err)) == 0, "%s", err);
        ck_assert_str_eq(o.host, "::1");
        ck_assert_uint_eq(o.port, 9000);
        ck_assert_uint_eq(o.member.silence_timeout_us, 3000000);
        const char *const bare6[] = { "fe80::1", "n", NULL };
        ck_assert_msg(parse(&a, &o, bare6, err, sizeof(err)) == 0, "%s", err);
        ck_assert_str_eq(o.host, "fe80::1");
        ck_assert_uint_eq(o.port, 7700);
        const char *const v4[] = { "10.0.0.1:1", "n", "-o", "x", NULL };      /* options after operands */
        ck_assert_msg(parse(&a, &o, v4, err, sizeof(err)) == 0, "%s", err);
        ck_assert_str_eq(o.host, "10.0.0.1");
        ck_assert_uint_eq(o.port, 1);
        ck_assert_str_eq(o.output, "x");
        /* several NAMEs: one job each, on the one host */
        const char *const many[] = { "h:9", "a/x.img", "y.img", NULL };
        ck_assert_msg(parse(&a, &o, many, err, sizeof(err)) == 0, "%s", err);
        ck_assert_uint_eq(o.njobs, 2);
        ck_assert_str_eq(o.jobs[1].host, "h");
        ck_assert_uint_eq(o.jobs[1].port, 9);
        ck_assert_str_eq(o.jobs[0].name, "a/x.img");
        ck_assert_str_eq(o.jobs[1].name, "y.img");
        ck_assert_uint_eq(o.parallel, 4);
        /* URLs, IPv6 in brackets, each its own host */
        const char *const urls[] = { "p2s://[::1]:7720/sub/d.img", "p2s://srv/e", NULL };
        ck_assert_msg(parse(&a, &o, urls, err, sizeof(err)) == 0, "%s", err);
        ck_assert_uint_eq(o.njobs, 2);
        ck_assert_str_eq(o.jobs[0].host, "::1");
        ck_assert_uint_eq(o.jobs[0].port, 7720);
        ck_assert_str_eq(o.jobs[0].name, "sub/d.img");
        ck_assert_str_eq(o.output, "d.img");
        ck_assert_str_eq(o.jobs[1].host, "srv");
        ck_assert_uint_eq(o.jobs[1].port, 7700);
        ck_assert_str_eq(o.jobs[1].name, "e");
        /* a bare IPv6 address whose last group cannot be a port stays an address */
        const char *const v6b[] = { "fe80::1:abcd", "n", NULL };
        ck_assert_msg(parse(&a, &o, v6b, err, sizeof(err)) == 0, "%s", err);
        ck_assert_str_eq(o.host, "fe80::1:abcd");
        const char *const pin[] = { "--sha256", "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff", "h",
                                    "n", "--preserve", NULL };
        ck_assert_msg(parse(&a, &o, pin, err, sizeof(err)) == 0, "%s", err);
        ck_assert(o.have_pin);
        ck_assert_uint_eq(o.pinned[0], 0x00);
        ck_assert_uint_eq(o.pinned[10], 0xaa);
        ck_assert_uint_eq(o.pinned[31], 0xff);
        ck_assert(o.remote_time);       /* --preserve implies -R */
}
END_TEST

static void expect_usage(const char *const *args, const char *why)
{
        struct fetch_options o;
        struct args a;
        char err[512], want[512];
        ck_assert_int_eq(parse(&a, &o, args, err, sizeof(err)), 2);
        snprintf(want, sizeof(want), "p2s-fetch: %s (try 'p2s-fetch --help')", why);
        ck_assert_str_eq(err, want);
}

static void expect_value_refused(const char *name, const char *val, const char *why)
{
        char opt[64], msg[256];
        snprintf(opt, sizeof(opt), "--%s", name);
        const char *const argv[] = { opt, val, "h", "n", NULL };
        snprintf(msg, sizeof(msg), "--%s %s: %s", name, *val ? val : "''", why);
        expect_usage(argv, msg);
}

START_TEST(range_bounds)
{
        size_t ranged = 0;
        for (size_t i = 0; i < fetch_option_count; i++) {
                const struct opt *d = &fetch_option_table[i];
                if (d->kind != OPT_UINT && d->kind != OPT_SIZE && d->kind != OPT_SECONDS)
                        continue;
                ranged++;
                char lo[32], hi[32], why[128], opt[64], v[64];
                opt_format_value(d, d->min, lo, sizeof(lo));
                opt_format_value(d, d->max, hi, sizeof(hi));
                snprintf(why, sizeof(why), "must be between %s and %s%s", lo, hi,
                         d->kind == OPT_SECONDS ? " seconds" : "");
                snprintf(opt, sizeof(opt), "--%s", d->name);
                for (int k = 0; k < 2; k++) {
                        struct fetch_options o;
                        struct args a;
                        char err[512];
                        const char *const argv[] = { opt, k ? hi : lo, "h", "n", NULL };
                        ck_assert_msg(parse(&a, &o, argv, err, sizeof(err)) == 0, "%s", err);
                }
                uint64_t past[2] = { d->min - 1, d->max + 1 };
                for (int k = d->min ? 0 : 1; k < 2; k++) {
                        if (d->kind == OPT_SECONDS)
                                snprintf(v, sizeof(v), "%llu.%06llu", (unsigned long long)(past[k] / 1000000),
                                         (unsigned long long)(past[k] % 1000000));
                        else
                                snprintf(v, sizeof(v), "%llu", (unsigned long long)past[k]);
                        expect_value_refused(d->name, v, why);
                }
        }
        ck_assert_uint_eq(ranged, 3);
}
END_TEST

START_TEST(documented_messages)
{
        expect_value_refused("window", "0", "must be between 1 and 1024");
        expect_value_refused("window", "1025", "must be between 1 and 1024");
        expect_value_refused("window", "many", "must be a number between 1 and 1024");
        expect_value_refused("timeout", "0", "must be between 0.1 and 86400 seconds");
        expect_value_refused("timeout", "86401", "must be between 0.1 and 86400 seconds");
        expect_value_refused("timeout", "1e3", "must be a number of seconds between 0.1 and 86400");
        expect_value_refused("order", "backwards", "must be sequential or random");
        expect_value_refused("log-level", "chatty", "must be err, warning, notice, info or debug");
        expect_value_refused("output", "", "must not be empty");
        expect_usage((const char *const[]){ "--bogus", "h", "n", NULL }, "unknown option '--bogus'");
        expect_usage((const char *const[]){ "--port", "1", "h", "n", NULL }, "unknown option '--port'");
        expect_usage((const char *const[]){ "-o", NULL }, "option '-o' needs an argument");
        expect_usage((const char *const[]){ "h", "n", "--window", NULL }, "option '--window' needs an argument");
        expect_usage((const char *const[]){ "--quiet=yes", "h", "n", NULL }, "option '--quiet' takes no argument");
        expect_usage((const char *const[]){ "h", NULL }, "expected HOST[:PORT] and NAME, got 1 argument");
        expect_usage((const char *const[]){ NULL }, "expected HOST[:PORT] and NAME, got 0 arguments");
        expect_usage((const char *const[]){ "::1:7720", "n", NULL },
                     "'::1:7720' is ambiguous: write [::1]:7720 for a port, or [::1:7720] for the address");
        expect_usage((const char *const[]){ "p2s://h", NULL }, "'p2s://h' is not p2s://HOST[:PORT]/NAME");
        expect_usage((const char *const[]){ "p2s://h/", NULL }, "'p2s://h/' is not p2s://HOST[:PORT]/NAME");
        expect_usage((const char *const[]){ "p2s://h:0/n", NULL }, "'p2s://h:0/n' is not HOST, HOST:PORT or [IPV6]:PORT");
        expect_usage((const char *const[]){ "p2s://::1:7720/n", NULL },
                     "'p2s://::1:7720/n' is ambiguous: write p2s://[::1]:7720/n for a port, "
                     "or p2s://[::1:7720]/n for the address");
        expect_usage((const char *const[]){ "p2s://h/a", "b", NULL },
                     "'b' is not a p2s:// URL: give URLs only, or HOST NAME...");
        expect_usage((const char *const[]){ "h", "a", "dir/", NULL }, "cannot derive an output name from 'dir/': use -o");
        expect_usage((const char *const[]){ "--sha256", "abc", "h", "n", NULL }, "--sha256 abc: must be 64 hexadecimal digits");
        expect_usage((const char *const[]){ "--sha256", "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                                            "h", "n", NULL },
                     "--sha256 zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff: must be 64 hexadecimal digits");
        expect_usage((const char *const[]){ "--sha256", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                                            "h", "a", "b", NULL },
                     "--sha256 pins one file: give one NAME with it");
        expect_usage((const char *const[]){ "127.0.0.1:abc", "n", NULL },
                     "'127.0.0.1:abc' is not HOST, HOST:PORT or [IPV6]:PORT");
        expect_usage((const char *const[]){ "h:0", "n", NULL }, "'h:0' is not HOST, HOST:PORT or [IPV6]:PORT");
        expect_usage((const char *const[]){ "h:70000", "n", NULL }, "'h:70000' is not HOST, HOST:PORT or [IPV6]:PORT");
        expect_usage((const char *const[]){ "[::1", "n", NULL }, "'[::1' is not HOST, HOST:PORT or [IPV6]:PORT");
        expect_usage((const char *const[]){ "h", "", NULL }, "NAME must be 1 to 255 bytes long");
        expect_usage((const char *const[]){ "h", "dir/..", NULL }, "cannot derive an output name from 'dir/..': use -o");
}
END_TEST

/* The one table from how a session ended to the exit status: every kind
 * and every ERR code a distinct, documented number. */
START_TEST(exit_code_table)
{
        ck_assert_int_eq(fetch_exit_for(MEMBER_EXIT_OK, 0), 0);
        ck_assert_int_eq(fetch_exit_for(MEMBER_EXIT_FAIL, 0), 1);
        ck_assert_int_eq(fetch_exit_for(MEMBER_EXIT_GONE, 0), 6);
        ck_assert_int_eq(fetch_exit_for(MEMBER_EXIT_VERIFY, 0), 8);
        ck_assert_int_eq(fetch_exit_for(MEMBER_EXIT_SWARM, 0), 5);
        ck_assert_int_eq(fetch_exit_for(MEMBER_EXIT_SERVER, P2S_ERR_LOST), 5);
        ck_assert_int_eq(fetch_exit_for(MEMBER_EXIT_SERVER, P2S_ERR_SHUTDOWN), 6);
        ck_assert_int_eq(fetch_exit_for(MEMBER_EXIT_SERVER, P2S_ERR_SOURCE), 5);
        ck_assert_int_eq(fetch_exit_for(MEMBER_EXIT_SERVER, 999), 5);
        ck_assert_int_eq(fetch_exit_for_join_err(P2S_ERR_NOFILE), 4);
        ck_assert_int_eq(fetch_exit_for_join_err(P2S_ERR_SOURCE), 4);
        ck_assert_int_eq(fetch_exit_for_join_err(P2S_ERR_SECRET), 4);
        ck_assert_int_eq(fetch_exit_for_join_err(P2S_ERR_BUSY), 3);
        ck_assert_int_eq(fetch_exit_for_join_err(P2S_ERR_SHUTDOWN), 6);
        ck_assert_int_eq(fetch_exit_for_join_err(999), 4);
        ck_assert_str_eq(fetch_exit_name(0), "done");
        ck_assert_str_eq(fetch_exit_name(3), "cannot reach the server");
        ck_assert_str_eq(fetch_exit_name(8), "verification failed");
        ck_assert_str_eq(fetch_exit_name(-1), "failed");
        ck_assert_str_eq(fetch_exit_name(99), "failed");
}
END_TEST

START_TEST(help_lists_every_option)
{
        char *text = help_text(fetch_options_help);
        ck_assert(strstr(text, "Usage: p2s-fetch "));
        for (size_t i = 0; i < fetch_option_count; i++) {
                char want[128];
                help_option_line(&fetch_option_table[i], want, sizeof(want));
                ck_assert_msg(strstr(text, want), "--help lacks '%s':\n%s", want, text);
        }
        help_assert_width(text);
        free(text);
}
END_TEST

static Suite *fetch_options_suite(void)
{
        Suite *s = suite_create("fetch-options");
        TCase *tc = tcase_create("command-line");
        tcase_add_test(tc, every_option_sets_its_field);
        tcase_add_test(tc, operands);
        tcase_add_test(tc, range_bounds);
        tcase_add_test(tc, documented_messages);
        tcase_add_test(tc, help_lists_every_option);
        tcase_add_test(tc, exit_code_table);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(fetch_options_suite);
