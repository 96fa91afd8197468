/* SPDX-License-Identifier: MIT */
/* p2s-fetch: join a p2s swarm and leave a verified copy of one file. */
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include "config.h"
#include "fetch/client.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop.h"
#include "util/parse.h"

static const char usage[] =
"Usage: p2s-fetch [OPTIONS] HOST[:PORT] NAME [-o OUTPUT]\n"
"Join the p2s swarm for NAME at HOST and leave a verified copy at OUTPUT.\n"
"\n"
"  -o, --output FILE          where the copy goes (default: NAME's base name here)\n"
"      --order sequential|random  order of chunk requests (default sequential)\n"
"  -w, --window N             chunk requests in flight (default 32)\n"
"      --rtt-log FILE.csv     one row per relayed chunk: chunk,request_time_us,rtt_us,source\n"
"  -t, --timeout SEC          give up joining after SEC, and when the server is silent\n"
"                             3 x SEC during the swarm (default 10)\n"
"      --quiet                no progress output\n"
"      --log-level LEVEL      err, warning, notice, info, debug (default info)\n"
"  -h, --help                 show this help\n"
"  -V, --version              show the version\n";

static int bad(const char *opt, const char *val, const char *want)
{
        fprintf(stderr, "p2s-fetch: %s: '%s' is not %s\n", opt, val, want);
        return 2;
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

static int parse_args(struct fetch_options *o, int argc, char **argv)
{
        enum { OPT_ORDER = 0x100, OPT_RTT, OPT_QUIET, OPT_LOG };
        static const struct option longopts[] = {
                { "output", required_argument, NULL, 'o' },
                { "order", required_argument, NULL, OPT_ORDER },
                { "window", required_argument, NULL, 'w' },
                { "rtt-log", required_argument, NULL, OPT_RTT },
                { "timeout", required_argument, NULL, 't' },
                { "quiet", no_argument, NULL, OPT_QUIET },
                { "log-level", required_argument, NULL, OPT_LOG },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        *o = (struct fetch_options){ .port = 7700, .timeout_us = 10 * USEC_PER_SEC, .log_level = LOG_INFO };
        member_config_defaults(&o->member);
        uint64_t v;
        int c;
        while ((c = getopt_long(argc, argv, "o:w:t:hV", longopts, NULL)) != -1) {
                switch (c) {
                case 'o':
                        o->output = optarg;
                        break;
                case OPT_ORDER:
                        if (!strcmp(optarg, "sequential"))
                                o->member.order = MEMBER_ORDER_SEQUENTIAL;
                        else if (!strcmp(optarg, "random"))
                                o->member.order = MEMBER_ORDER_RANDOM;
                        else
                                return bad("--order", optarg, "sequential or random");
                        break;
                case 'w':
                        if (parse_uint(optarg, 1, MEMBER_MAX_WINDOW, &v) < 0)
                                return bad("--window", optarg, "a count from 1 to 1024");
                        o->member.window = (unsigned)v;
                        break;
                case OPT_RTT:
                        o->rtt_log = optarg;
                        break;
                case 't':
                        if (parse_seconds(optarg, &v) < 0 || v == 0)
                                return bad("--timeout", optarg, "a positive number of seconds");
                        o->timeout_us = v;
                        break;
                case OPT_QUIET:
                        o->quiet = true;
                        break;
                case OPT_LOG:
                        if ((o->log_level = log_level_from_string(optarg)) < 0)
                                return bad("--log-level", optarg, "err, warning, notice, info or debug");
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return 1;
                case 'V':
                        printf("p2s-fetch %s\n", P2S_VERSION_STR);
                        return 1;
                default:
                        return 2;
                }
        }
        if (argc - optind != 2) {
                fprintf(stderr, "p2s-fetch: expected HOST[:PORT] and NAME, got %d argument%s\n",
                        argc - optind, argc - optind == 1 ? "" : "s");
                return 2;
        }
        char *hostarg = argv[optind];
        char shown[300];
        snprintf(shown, sizeof(shown), "%s", hostarg);  /* split_host cuts it up */
        if (split_host(hostarg, &o->host, &o->port) < 0) {
                fprintf(stderr, "p2s-fetch: '%s' is not HOST, HOST:PORT or [IPV6]:PORT\n", shown);
                return 2;
        }
        o->name = argv[optind + 1];
        size_t nl = strlen(o->name);
        if (nl == 0 || nl > 255) {
                fprintf(stderr, "p2s-fetch: NAME must be 1 to 255 bytes long\n");
                return 2;
        }
        if (!o->output) {
                const char *base = strrchr(o->name, '/');
                base = base ? base + 1 : o->name;
                if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
                        fprintf(stderr, "p2s-fetch: cannot derive an output name from '%s': use -o\n", o->name);
                        return 2;
                }
                o->output = base;
        }
        /* Joining gives up after --timeout; once in a swarm the server may be
         * quiet for a while chasing a chunk from a slow holder (its own retries
         * take up to about 15 s), so silence there is allowed three times as long. */
        o->member.silence_timeout_us = 3 * o->timeout_us;
        o->member.seed = now_usec() ^ ((uint64_t)getpid() << 32);
        return 0;
}

int main(int argc, char **argv)
{
        struct fetch_options opt;
        int r = parse_args(&opt, argc, argv);
        if (r)
                return r == 1 ? 0 : 2;
        log_init("p2s-fetch");
        log_set_level(opt.log_level);
        /* uploads use sendfile, which has no MSG_NOSIGNAL */
        signal(SIGPIPE, SIG_IGN);

        struct loop *loop = loop_new();
        if (!loop) {
                log_err("cannot create the event loop: %m");
                return 1;
        }
        char err[256];
        struct client *c = client_new(&opt, loop, err, sizeof(err));
        if (!c) {
                log_err("%s", err);
                loop_free(loop);
                return 1;
        }
        if (client_start(c) < 0) {
                log_err("cannot start: %m");
                return 1;
        }
        r = loop_run(loop);
        if (r != 0)
                log_err("%s: %s", opt.name, client_reason(c));
        else
                log_debug("%s: %s", opt.name, client_reason(c));
        client_log_stats(c);
        client_free(c);
        loop_free(loop);
        return r == 0 ? 0 : 1;
}
