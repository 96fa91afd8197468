/* SPDX-License-Identifier: MIT */
/* p2s-fetch's option table, its operands and its command line. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
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
        { "output", 'o', "FILE|DIR/", OPT_STRING, F(output_arg), .default_text = "the base name of NAME",
          .help = "where the copy goes: a file, or a directory\n"
                  "(existing, or ending in '/') for DIR/NAME" },
        { "parallel", 'P', "N", OPT_UINT, F(parallel), 1, 64, .help = "files fetched at once" },
        { "list", 0, NULL, OPT_FLAG, F(list),
          .help = "print what HOST serves under PREFIX:\nSIZE  SHA256-or-dash  NAME, sorted" },
        { "recursive", 'r', NULL, OPT_FLAG, F(recursive),
          .help = "fetch every file served under PREFIX,\nmirrored under -o DIR (default .)" },
        { "sha256", 0, "HEX", OPT_STRING, F(sha256), .unset_text = "(none)",
          .help = "the expected SHA-256 of the whole file:\na manifest that differs is refused" },
        { "remote-time", 'R', NULL, OPT_FLAG, F(remote_time),
          .help = "give the copy the source's modification time" },
        { "preserve", 0, NULL, OPT_FLAG, F(preserve),
          .help = "give the copy the source's mode and time" },
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
                                     .log_level = LOG_INFO, .parallel = 4 };
        member_config_defaults(&o->member);
}

void fetch_options_help(FILE *f)
{
        struct fetch_options def;
        fetch_options_defaults(&def);
        fputs("Usage: " PROG " [OPTIONS] HOST[:PORT] NAME... [-o OUTPUT]\n"
              "       " PROG " [OPTIONS] p2s://HOST[:PORT]/NAME... [-o OUTPUT]\n"
              "       " PROG " --list [OPTIONS] HOST[:PORT] [PREFIX]\n"
              "       " PROG " -r [OPTIONS] HOST[:PORT] [PREFIX] [-o DIR]\n"
              "Join the p2s swarm for each NAME at HOST and leave a verified copy at OUTPUT.\n"
              "\n", f);
        opt_help(f, fetch_option_table, fetch_option_count, &def);
}

/* HOST, HOST:PORT, [V6], [V6]:PORT; a bare V6 address has no port.
 * -1: malformed; -2: a bare V6 address whose last group could be a
 * port (::1:7720): ambiguous, the caller hints at the brackets. */
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
                if (colon && strchr(colon + 1, ':')) {
                        /* an IPv6 address without brackets */
                        char *last = strrchr(arg, ':'), head[INET6_ADDRSTRLEN];
                        struct in6_addr a6;
                        size_t hl = (size_t)(last - arg);
                        bool digits = last[1] && strspn(last + 1, "0123456789") == strlen(last + 1);
                        if (digits && hl < sizeof(head)) {
                                memcpy(head, arg, hl);
                                head[hl] = 0;
                                if (inet_pton(AF_INET6, head, &a6) == 1)
                                        return -2;
                        }
                        colon = NULL;
                }
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

static int host_error(char *err, size_t errlen, const char *shown, int r);

/* p2s://HOST[:PORT]/NAME, cut up in place. 0, or a usage error in err. */
static int split_url(char *arg, struct fetch_job *j, char *err, size_t errlen)
{
        char shown[300];
        snprintf(shown, sizeof(shown), "%s", arg);
        char *hostpart = arg + strlen(P2S_URL_SCHEME);
        char *slash = hostpart[0] == '[' ? strchr(hostpart, ']') : hostpart;
        slash = slash ? strchr(slash, '/') : NULL;
        if (!slash || !slash[1]) {
                char why[400];
                snprintf(why, sizeof(why), "'%s' is not p2s://HOST[:PORT]/NAME", shown);
                return host_error(err, errlen, why, 0);
        }
        *slash = 0;
        j->port = P2S_DEFAULT_PORT;
        j->name = slash + 1;
        char hp[300];
        snprintf(hp, sizeof(hp), "%s", hostpart);
        int r = split_host(hostpart, &j->host, &j->port);
        if (r == -2) {
                char why[600];
                const char *last = strrchr(hp, ':');
                snprintf(why, sizeof(why), "'%.100s' is ambiguous: write " P2S_URL_SCHEME "[%.*s]:%.8s/%.60s for a port, "
                         "or " P2S_URL_SCHEME "[%.60s]/%.60s for the address", shown, (int)(last - hp) & 63, hp,
                         last + 1, j->name, hp, j->name);
                return host_error(err, errlen, why, 0);
        }
        if (r < 0)
                return host_error(err, errlen, shown, r);
        return 0;
}

static int usage_error(char *err, size_t errlen, const char *why)
{
        snprintf(err, errlen, PROG ": %s (try '" PROG " --help')", why);
        return 2;
}

/* r: split_host's; 0: shown is the whole message. */
static int host_error(char *err, size_t errlen, const char *shown, int r)
{
        char why[900];
        if (r == -2) {
                const char *last = strrchr(shown, ':');
                snprintf(why, sizeof(why), "'%s' is ambiguous: write [%.*s]:%s for a port, or [%s] for the address",
                         shown, (int)(last - shown), shown, last + 1, shown);
        } else if (r == -1) {
                snprintf(why, sizeof(why), "'%s' is not HOST, HOST:PORT or [IPV6]:PORT", shown);
        } else {
                snprintf(why, sizeof(why), "%s", shown);
        }
        return usage_error(err, errlen, why);
}

static int check_name(const char *name, char *err, size_t errlen)
{
        size_t nl = strlen(name);
        if (nl == 0 || nl > 255)
                return usage_error(err, errlen, "NAME must be 1 to 255 bytes long");
        return 0;
}

/* The base name of NAME, or NULL when it has none (dir/, dir/..). */
const char *fetch_base_name(const char *name)
{
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
                return NULL;
        return base;
}

static int parse_hex256(const char *hex, uint8_t out[32])
{
        if (strlen(hex) != 64)
                return -1;
        for (int i = 0; i < 32; i++) {
                unsigned v;
                if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
                    sscanf(hex + 2 * i, "%2x", &v) != 1)
                        return -1;
                out[i] = (uint8_t)v;
        }
        return 0;
}

/* --list and -r: HOST[:PORT] [PREFIX], or p2s://HOST[:PORT]/[PREFIX]. */
static int parse_listing(struct fetch_options *o, int argc, char **argv, char *err, size_t errlen)
{
        static struct fetch_job job;
        char why[600];
        int nargs = argc - optind, r;
        const char *mode = o->list ? "--list" : "-r";
        if (o->list && o->recursive)
                return usage_error(err, errlen, "--list and -r do not go together");
        if (nargs < 1 || nargs > 2) {
                snprintf(why, sizeof(why), "%s expects HOST[:PORT] and at most one PREFIX, got %d argument%s", mode,
                         nargs, nargs == 1 ? "" : "s");
                return usage_error(err, errlen, why);
        }
        if (o->sha256)
                return usage_error(err, errlen, "--sha256 pins one file: not with --list or -r");
        char *arg = argv[optind];
        job = (struct fetch_job){ .port = P2S_DEFAULT_PORT, .name = nargs == 2 ? argv[optind + 1] : "" };
        if (!strncmp(arg, P2S_URL_SCHEME, strlen(P2S_URL_SCHEME))) {
                if (nargs == 2)
                        return usage_error(err, errlen, "give the PREFIX in the URL or after HOST, not both");
                char *hostpart = arg + strlen(P2S_URL_SCHEME);
                char *slash = hostpart[0] == '[' ? strchr(hostpart, ']') : hostpart;
                slash = slash ? strchr(slash, '/') : NULL;
                if (slash) {
                        *slash = 0;
                        job.name = slash + 1;
                }
                arg = hostpart;
        }
        char shown[300];
        snprintf(shown, sizeof(shown), "%s", arg);
        if ((r = split_host(arg, &job.host, &job.port)) < 0)
                return host_error(err, errlen, shown, r);
        if (strlen(job.name) > 255)
                return usage_error(err, errlen, "PREFIX must be at most 255 bytes long");
        o->jobs = &job;
        o->njobs = 1;
        o->host = job.host;
        o->port = job.port;
        o->prefix = job.name;
        o->name = NULL;
        o->output = o->output_arg;
        o->member.silence_timeout_us = 3 * o->timeout_us;
        if (o->preserve)
                o->remote_time = true;
        if (o->quiet)
                o->progress = PROGRESS_NONE;
        return 0;
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
        int nargs = argc - optind;
        bool urls = nargs > 0 && !strncmp(argv[optind], P2S_URL_SCHEME, strlen(P2S_URL_SCHEME));
        if (o->list || o->recursive)
                return parse_listing(o, argc, argv, err, errlen);
        if (nargs < (urls ? 1 : 2)) {
                snprintf(why, sizeof(why), "expected HOST[:PORT] and NAME, got %d argument%s", nargs,
                         nargs == 1 ? "" : "s");
                return usage_error(err, errlen, why);
        }
        /* operands live as long as argv: only the array is ours (never
         * freed: main runs once, the tests parse a few times) */
        static struct fetch_job *jobs;
        free(jobs);
        jobs = calloc((size_t)nargs, sizeof(*jobs));
        if (!jobs)
                return usage_error(err, errlen, "out of memory");
        size_t nj = 0;
        if (urls) {
                for (int i = optind; i < argc; i++) {
                        if (strncmp(argv[i], P2S_URL_SCHEME, strlen(P2S_URL_SCHEME))) {
                                snprintf(why, sizeof(why), "'%.255s' is not a p2s:// URL: give URLs only, or HOST NAME...",
                                         argv[i]);
                                return usage_error(err, errlen, why);
                        }
                        if ((r = split_url(argv[i], &jobs[nj], err, errlen)) != 0)
                                return r;
                        if ((r = check_name(jobs[nj].name, err, errlen)) != 0)
                                return r;
                        nj++;
                }
        } else {
                char *hostarg = argv[optind];
                char shown[300];
                const char *host;
                uint16_t port = P2S_DEFAULT_PORT;
                snprintf(shown, sizeof(shown), "%s", hostarg);  /* split_host cuts it up */
                if ((r = split_host(hostarg, &host, &port)) < 0)
                        return host_error(err, errlen, shown, r);
                for (int i = optind + 1; i < argc; i++) {
                        if ((r = check_name(argv[i], err, errlen)) != 0)
                                return r;
                        jobs[nj++] = (struct fetch_job){ .host = host, .port = port, .name = argv[i] };
                }
        }
        o->jobs = jobs;
        o->njobs = nj;
        o->host = jobs[0].host;
        o->port = jobs[0].port;
        o->name = jobs[0].name;
        o->output = o->output_arg;
        for (size_t i = 0; i < nj; i++) {
                if (o->output_arg && nj == 1)
                        break;
                if (!fetch_base_name(jobs[i].name)) {
                        snprintf(why, sizeof(why), "cannot derive an output name from '%.255s': use -o", jobs[i].name);
                        return usage_error(err, errlen, why);
                }
        }
        if (!o->output)
                o->output = fetch_base_name(o->name);
        if (o->sha256) {
                if (nj > 1)
                        return usage_error(err, errlen, "--sha256 pins one file: give one NAME with it");
                if (parse_hex256(o->sha256, o->pinned) < 0) {
                        snprintf(why, sizeof(why), "--sha256 %.100s: must be 64 hexadecimal digits", o->sha256);
                        return usage_error(err, errlen, why);
                }
                o->have_pin = true;
                /* a pin is about the bytes: the manifest's chunk hashes come
                 * from the same server as its whole-file hash, so only a pass
                 * over the written copy ties the copy to the pin */
                o->verify_file = true;
        }
        if (o->preserve)
                o->remote_time = true;
        /* Joining gives up after --timeout; once in a swarm the server may be
         * quiet for a while chasing a chunk from a slow holder (its own retries
         * take up to about 15 s), so silence there is allowed three times as long. */
        o->member.silence_timeout_us = 3 * o->timeout_us;
        if (o->quiet)
                o->progress = PROGRESS_NONE;
        return 0;
}
