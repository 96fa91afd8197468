/* SPDX-License-Identifier: MIT */
/* p2sd --config FILE (p2sd.conf(5)): "key = value" lines, "#" comments,
 * the long option names as keys, the command line winning; every error
 * names FILE:LINE and makes p2sd exit 2 before it listens. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "runner.h"

/* Runs p2sd --config (text written to a file) plus args; when it must fail,
 * returns its exit code and stderr in err. */
static int run_failing(const char *text, const char *const *args, char *err, size_t errlen)
{
        const char *conf = h_path("p2sd.conf");
        h_write_text(conf, text);
        const char *argv[16] = { h_bin_p2sd(), "--config", conf };
        int a = 3;
        for (const char *const *p = args; p && *p; p++)
                argv[a++] = *p;
        argv[a] = NULL;
        struct h_proc *d = h_start(&(struct h_spawn){ .argv = argv });
        ck_assert_msg(h_wait_for(d, 10), "p2sd did not exit: %s", h_log(d));
        snprintf(err, errlen, "%s", h_log(d));
        int rc = d->code;
        h_proc_free(d);
        return rc;
}

static const struct bad_case {
        const char *text, *want;
} bad_cases[] = {
        { "root = /tmp\n\n# c\nprot = 1\n", "p2sd.conf:4: unknown key 'prot'" },
        { "root = /tmp\nport = x\n", "p2sd.conf:2: port = x: must be a number between 0 and 65535" },
        { "root = /tmp\nport 7700\n", "p2sd.conf:2: expected 'key = value', got 'port 7700'" },
        { "cache = 1M\nroot = /tmp\ncache = 2M\n", "p2sd.conf:3: 'cache' was already set on line 1" },
        { "root = /tmp\nfile = /etc/hostname\n", "p2sd.conf: 'root' and 'file' cannot both be set" },
        { "# nothing\nport = 0\n", "p2sd.conf: nothing to serve" },
        { "root = /tmp\nlisten =\n", "p2sd.conf:2: 'listen' needs a value" },
        { "root = /tmp\nchunk-size = 100\n", "p2sd.conf:2: chunk-size = 100: must be between 256 and 16M" },
        { "root = /tmp\ncontrol = sctp\n", "p2sd.conf:2: control = sctp: must be udp or tcp" },
        { "root = /tmp\nquery = all\n", "p2sd.conf:2: query = all: must be directed or broadcast" },
        { "root = /tmp\nlog-level = loud\n", "p2sd.conf:2: log-level = loud: must be err, warning" },
        { "root = /tmp\ngather-timeout = soon\n", "p2sd.conf:2: gather-timeout = soon: must be a number of seconds" },
        { "root = /tmp\nreplicas = 0\n", "p2sd.conf:2: replicas = 0: must be between 1 and 64" },
        /* a '#' after a blank starts a comment; any other '#' is part of the value */
        { "root = /tmp\nport = 7700#default\n", "p2sd.conf:2: port = 7700#default: must be a number" },
        { "root = /tmp\ncache = 0 # none\n", "p2sd.conf:2: cache = 0: must be between 1 and 1T" },
        { "root = /tmp\nlisten = localhost\n", "p2sd.conf:2: listen = localhost: must be an IPv4 or IPv6 address" },
        /* the check of the merged options, as on the command line */
        { "root = /tmp\ncontrol = tcp\nchunk-size = 16M\nmax-datagram = 108\n",
          "p2sd.conf: chunk-size 16M needs more than 65535 fragments of max-datagram 108 bytes" },
};

START_TEST(errors_name_file_and_line_and_exit_2)
{
        const struct bad_case *c = &bad_cases[_i];
        char err[2048];
        int rc = run_failing(c->text, NULL, err, sizeof(err));
        ck_assert_msg(rc == 2, "exit %d for:\n%s\n%s", rc, c->text, err);
        ck_assert_msg(strstr(err, c->want), "want '%s', got: %s", c->want, err);
        ck_assert_msg(!strstr(err, "listening"), "p2sd listened: %s", err);
}
END_TEST

START_TEST(missing_file_exits_2)
{
        const char *argv[] = { h_bin_p2sd(), "--config", h_path("nonexistent.conf"), NULL };
        struct h_proc *d = h_start(&(struct h_spawn){ .argv = argv });
        ck_assert(h_wait_for(d, 10));
        ck_assert_int_eq(d->code, 2);
        ck_assert_msg(strstr(h_log(d), "nonexistent.conf: No such file or directory"), "%s", h_log(d));
        h_proc_free(d);
}
END_TEST

/* p2sd runs with conf text and args; returns its stderr up to the
 * "listening" line (or all of it if it never came). */
static char *run_ok(const char *text, const char *const *args)
{
        const char *conf = h_path("ok.conf");
        h_write_text(conf, text);
        const char *argv[16] = { "--config", conf };
        int a = 2;
        for (const char *const *p = args; p && *p; p++)
                argv[a++] = *p;
        argv[a] = NULL;
        struct h_notify *n = h_notify_open("notify");
        unsigned port;
        struct h_proc *d = h_p2sd_start(n, argv, NULL, &port, NULL, 0);
        h_stop_p2sd(d, 10);
        char *err = strdup(h_log(d));
        h_proc_free(d);
        h_notify_close(n);
        return err;
}

START_TEST(values_and_layout)
{
        char text[1024];
        /* blanks around keys and values, comments, trailing comments, blank lines, CRLF */
        snprintf(text, sizeof(text), "# p2sd\r\n\n   root   =   %s   \r\n\t# indented comment\n"
                 "cache=2M  # comment\nchunk-size = 128K\t# tab\r\nport = 0\n", h_dir());
        char *err = run_ok(text, NULL);
        ck_assert_msg(strstr(err, "cache 2097152 bytes, chunk 131072 bytes"), "%s", err);
        free(err);
}
END_TEST

START_TEST(command_line_wins)
{
        char text[1024];
        const char *src = h_path("cmd.bin");
        h_make_file(src, 1000, 1);
        /* the file's root and port would fail; the command line's win */
        snprintf(text, sizeof(text), "root = %s/nonexistent\nport = 1\ncache = 2M\nchunk-size = 128K\n", h_dir());
        const char *args[] = { "--port", "0", "--cache", "3M", src, NULL };
        char *err = run_ok(text, args);
        ck_assert_msg(strstr(err, "cache 3145728 bytes, chunk 131072 bytes"), "%s", err);
        free(err);
}
END_TEST

START_TEST(log_level_from_the_file)
{
        char text[1024];
        snprintf(text, sizeof(text), "root = %s\nport = 0\nlog-level = warning\n", h_dir());
        char *err = run_ok(text, NULL);
        ck_assert_msg(!strstr(err, "listening"), "notice printed at log-level warning: %s", err);
        free(err);
        const char *args[] = { "--log-level", "notice", NULL };
        err = run_ok(text, args);
        ck_assert_msg(strstr(err, "listening"), "%s", err);
        free(err);
}
END_TEST

/* The configuration meson installs: every default commented out, serving
 * /srv/p2s. Run with that root pointed elsewhere, it must start. */
START_TEST(shipped_default_configuration)
{
        const char *path = getenv("P2SD_CONF");
        ck_assert_msg(path, "P2SD_CONF is not set");
        FILE *f = fopen(path, "re");
        ck_assert_msg(f, "%s", path);
        char text[16384];
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = 0;
        char *root = strstr(text, "\nroot = /srv/p2s\n");
        ck_assert_msg(root, "the shipped configuration does not serve /srv/p2s");
        char copy[17000];
        snprintf(copy, sizeof(copy), "%.*s\nroot = %s\nport = 0\n%s", (int)(root - text), text, h_dir(),
                 root + strlen("\nroot = /srv/p2s\n"));
        char *err = run_ok(copy, NULL);
        ck_assert_msg(strstr(err, "cache 67108864 bytes, chunk 65536 bytes"), "defaults changed: %s", err);
        free(err);
}
END_TEST

static Suite *config_suite(void)
{
        Suite *s = suite_create("config");
        TCase *tc = h_tcase("errors", 30);
        tcase_add_loop_test(tc, errors_name_file_and_line_and_exit_2, 0,
                            (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
        tcase_add_test(tc, missing_file_exits_2);
        suite_add_tcase(s, tc);
        tc = h_tcase("values", 30);
        tcase_add_test(tc, values_and_layout);
        tcase_add_test(tc, command_line_wins);
        tcase_add_test(tc, log_level_from_the_file);
        tcase_add_test(tc, shipped_default_configuration);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(config_suite);
