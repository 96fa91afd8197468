/* SPDX-License-Identifier: MIT */
/* p2s-fetch's option table, its operands and its command line. */
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include "config.h"
#include "fetch/options.h"
#include "fetch/progress.h"
#include "util/clock.h"

#define PROG "p2s-fetch"
#define F(field) OPT_FIELD(struct fetch_options, field)

static const struct opt_choice order_choices[] = {
        { "sequential", MEMBER_ORDER_SEQUENTIAL, false }, { "random", MEMBER_ORDER_RANDOM, false }, { 0 },
};

static const struct opt_choice progress_choices[] = {
        { "bar", PROGRESS_BAR, false }, { "plain", PROGRESS_PLAIN, false }, { "json", PROGRESS_JSON, false },
        { "none", PROGRESS_NONE, false }, { 0 },
};

const struct opt fetch_option_table[] = {
        { "output", 'o', "FILE", OPT_STRING, F(output), .default_text = "the base name of NAME",
          .help = "where the copy goes" },
        { "order", 0, "sequential|random", OPT_CHOICE, F(member.order), .choices = order_choices,
          .help = "order of chunk requests" },
        { "window", 'w', "N", OPT_UINT, F(member.window), 1, MEMBER_MAX_WINDOW,
          .help = "chunk requests in flight" },
        { "rtt-log", 0, "FILE.csv", OPT_STRING, F(rtt_log),
          .help = "one row per relayed chunk:\nchunk,request_time_us,rtt_us,source" },
        { "timeout", 't', "SEC", OPT_SECONDS, F(timeout_us), USEC_PER_SEC / 10, 86400 * USEC_PER_SEC,
          .help = "give up joining after SEC, and when the server\n"
                  "is silent 3 x SEC during the swarm" },
        { "secret-file", 0, "FILE", OPT_STRING, F(secret_file), .unset_text = "(none)",
          .help = "prove the swarm secret in FILE when joining\n(mode 600 or stricter)" },
        { "progress", 0, "bar|plain|json|none", OPT_CHOICE, F(progress), .choices = progress_choices,
          .default_text = "bar on a terminal, else plain",
          .help = "progress on stderr: a bar drawn\n"
                  "in place, a line every 5 s, a JSON object\n"
                  "a second, or nothing" },
        { "quiet", 0, NULL, OPT_FLAG, F(quiet), .help = "no progress output (--progress=none)" },
        { "no-resume", 0, NULL, OPT_FLAG, F(no_resume),
          .help = "start over, even when OUTPUT.part could be\nresumed" },
        { "verify-file", 0, NULL, OPT_FLAG, F(verify_file),
          .help = "also read the finished copy back and check\nits whole-file SHA-256 (a second pass)" },
        { "log-level", 0, "LEVEL", OPT_CHOICE, F(log_level), .choices = opt_log_levels,
          .help = "err, warning, notice, info, debug" },
        { "help", 'h', NULL, OPT_ACTION, .help = "show this help" },
        { "version", 'V', NULL, OPT_ACTION, .help = "show the version" },
};
const size_t fetch_option_count = sizeof(fetch_option_table) / sizeof(fetch_option_table[0]);

void fetch_options_defaults(struct fetch_options *o)
{
        *o = (struct fetch_options){ .port = P2S_DEFAULT_PORT, .timeout_us = 10 * USEC_PER_SEC,
                                     .log_level = LOG_INFO };
        member_config_defaults(&o->member);
}

void fetch_options_help(FILE *f)
{
        struct fetch_options def;
        fetch_options_defaults(&def);
        fputs("Usage: " PROG " [OPTIONS] HOST[:PORT] NAME [-o OUTPUT]\n"
              "Join the p2s swarm for NAME at HOST and leave a verified copy at OUTPUT.\n"
              "\n", f);
        opt_help(f, fetch_option_table, fetch_option_count, &def);
}

/* HOST, HOST:PORT, [V6], [V6]:PORT; a bare V6 address has no port. */
static int split_host(char *arg, const char **host, uint16_t *port)
{
        char *colon = NULL;
        if (arg[0] == '[') {
                char *close = strchr(arg, ']');
                if (!close || (close[1] && close[1] != ':'))
                        return -1;
                *close = 0;
                *host = arg + 1;
                colon = close[1] == ':' ? close + 1 : NULL;
        } else {
                *host = arg;
                colon = strchr(arg, ':');
                if (colon && strchr(colon + 1, ':'))
                        colon = NULL;   /* an IPv6 address without brackets */
        }
        if (colon) {
                *colon = 0;
                uint64_t v;
                if (parse_uint(colon + 1, 1, 65535, &v) < 0)
                        return -1;
                *port = (uint16_t)v;
        }
        return **host ? 0 : -1;
}

static int usage_error(char *err, size_t errlen, const char *why)
{
        snprintf(err, errlen, PROG ": %s (try '" PROG " --help')", why);
        return 2;
}

int fetch_options_parse(struct fetch_options *o, int argc, char **argv, char *err, size_t errlen)
{
        struct opt_parser p;
        const struct opt *d;
        const char *arg;
        char why[512];
        int r;
        fetch_options_defaults(o);
        opt_parser_init(&p, fetch_option_table, fetch_option_count);
        while ((r = opt_parser_next(&p, argc, argv, &d, &arg, why, sizeof(why))) > 0) {
                if (!strcmp(d->name, "help")) {
                        fetch_options_help(stdout);
                        return 1;
                }
                if (!strcmp(d->name, "version")) {
                        printf(PROG " %s\n", P2S_VERSION_STR);
                        return 1;
                }
                char reason[256];
                if (opt_set(d, o, arg, reason, sizeof(reason)) < 0) {
                        snprintf(why, sizeof(why), "--%s %.200s: %s", d->name, *arg ? arg : "''", reason);
                        return usage_error(err, errlen, why);
                }
        }
        if (r < 0)
                return usage_error(err, errlen, why);
        if (argc - optind != 2) {
                snprintf(why, sizeof(why), "expected HOST[:PORT] and NAME, got %d argument%s", argc - optind,
                         argc - optind == 1 ? "" : "s");
                return usage_error(err, errlen, why);
        }
        char *hostarg = argv[optind];
        char shown[300];
        snprintf(shown, sizeof(shown), "%s", hostarg);  /* split_host cuts it up */
        if (split_host(hostarg, &o->host, &o->port) < 0) {
                snprintf(why, sizeof(why), "'%s' is not HOST, HOST:PORT or [IPV6]:PORT", shown);
                return usage_error(err, errlen, why);
        }
        o->name = argv[optind + 1];
        size_t nl = strlen(o->name);
        if (nl == 0 || nl > 255)
                return usage_error(err, errlen, "NAME must be 1 to 255 bytes long");
        if (!o->output) {
                const char *base = strrchr(o->name, '/');
                base = base ? base + 1 : o->name;
                if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
                        snprintf(why, sizeof(why), "cannot derive an output name from '%.255s': use -o", o->name);
                        return usage_error(err, errlen, why);
                }
                o->output = base;
        }
        /* Joining gives up after --timeout; once in a swarm the server may be
         * quiet for a while chasing a chunk from a slow holder (its own retries
         * take up to about 15 s), so silence there is allowed three times as long. */
        o->member.silence_timeout_us = 3 * o->timeout_us;
        if (o->quiet)
                o->progress = PROGRESS_NONE;
        return 0;
}
