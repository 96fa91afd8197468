/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include "config.h"
#include "daemon/options.h"
#include "util/log.h"
#include "util/parse.h"

static const char usage[] =
"Usage: p2sd [OPTIONS] FILE...\n"
"       p2sd [OPTIONS] --root DIR\n"
"Serve files to a swarm of p2s-fetch clients through a bounded chunk cache.\n"
"\n"
"  -r, --root DIR              serve every regular file under DIR by relative name\n"
"  -l, --listen ADDR           address to bind, IPv4 or IPv6 (default: [::] and 0.0.0.0)\n"
"  -p, --port PORT             TCP and UDP port; 0 picks a free one (default 7700)\n"
"  -c, --control udp|tcp       transport for control messages (default udp)\n"
"  -n, --min-clients N         start a swarm once N members joined (default 0: timeout only)\n"
"  -g, --gather-timeout SEC    start a swarm SEC after its first member (default 3)\n"
"  -R, --replicas R            members that get each chunk of the share (default 1)\n"
"  -C, --cache SIZE            cache bound in bytes, K/M/G suffixes (default 64M)\n"
"  -k, --chunk-size SIZE       chunk size, 256 .. 16M (default 64K)\n"
"  -q, --query directed|broadcast  on a cache miss ask one holder or all (default directed)\n"
"      --log-level LEVEL       err, warning, notice, info, debug (default info)\n"
"  -h, --help                  show this help\n"
"  -V, --version               show the version\n";

static int bad(const char *opt, const char *val, const char *want)
{
        fprintf(stderr, "p2sd: %s: '%s' is not %s\n", opt, val, want);
        return 2;
}

int p2sd_options_parse(struct p2sd_options *o, int argc, char **argv)
{
        enum { OPT_LOG_LEVEL = 0x100 };
        static const struct option longopts[] = {
                { "root", required_argument, NULL, 'r' },
                { "listen", required_argument, NULL, 'l' },
                { "port", required_argument, NULL, 'p' },
                { "control", required_argument, NULL, 'c' },
                { "min-clients", required_argument, NULL, 'n' },
                { "gather-timeout", required_argument, NULL, 'g' },
                { "replicas", required_argument, NULL, 'R' },
                { "cache", required_argument, NULL, 'C' },
                { "chunk-size", required_argument, NULL, 'k' },
                { "query", required_argument, NULL, 'q' },
                { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        *o = (struct p2sd_options){ .port = P2S_DEFAULT_PORT, .control = P2S_CONTROL_UDP,
                                    .cache_bytes = 64u << 20, .log_level = LOG_INFO };
        swarm_config_defaults(&o->swarm);
        uint64_t v;
        int c;
        while ((c = getopt_long(argc, argv, "r:l:p:c:n:g:R:C:k:q:hV", longopts, NULL)) != -1) {
                switch (c) {
                case 'r':
                        o->root = optarg;
                        break;
                case 'l':
                        o->listen = optarg;
                        break;
                case 'p':
                        if (parse_uint(optarg, 0, 65535, &v) < 0)
                                return bad("--port", optarg, "a port number (0-65535)");
                        o->port = (uint16_t)v;
                        break;
                case 'c':
                        if (!strcmp(optarg, "udp"))
                                o->control = P2S_CONTROL_UDP;
                        else if (!strcmp(optarg, "tcp"))
                                o->control = P2S_CONTROL_TCP;
                        else
                                return bad("--control", optarg, "udp or tcp");
                        break;
                case 'n':
                        if (parse_uint(optarg, 0, 100000, &v) < 0)
                                return bad("--min-clients", optarg, "a count (0-100000)");
                        o->swarm.min_clients = (unsigned)v;
                        break;
                case 'g':
                        if (parse_seconds(optarg, &v) < 0)
                                return bad("--gather-timeout", optarg, "a number of seconds");
                        o->swarm.gather_timeout_us = v;
                        break;
                case 'R':
                        if (parse_uint(optarg, 1, 64, &v) < 0)
                                return bad("--replicas", optarg, "a count (1-64)");
                        o->swarm.replicas = (unsigned)v;
                        break;
                case 'C':
                        if (parse_size(optarg, &v) < 0)
                                return bad("--cache", optarg, "a size (bytes, or with K/M/G)");
                        o->cache_bytes = v;
                        break;
                case 'k':
                        if (parse_size(optarg, &v) < 0 || v < P2S_MIN_CHUNK || v > P2S_MAX_CHUNK)
                                return bad("--chunk-size", optarg, "a size from 256 to 16M");
                        o->swarm.chunk_size = (uint32_t)v;
                        break;
                case 'q':
                        if (!strcmp(optarg, "directed"))
                                o->swarm.query = SWARM_QUERY_DIRECTED;
                        else if (!strcmp(optarg, "broadcast"))
                                o->swarm.query = SWARM_QUERY_BROADCAST;
                        else
                                return bad("--query", optarg, "directed or broadcast");
                        break;
                case OPT_LOG_LEVEL:
                        if ((o->log_level = log_level_from_string(optarg)) < 0)
                                return bad("--log-level", optarg, "err, warning, notice, info or debug");
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return 1;
                case 'V':
                        printf("p2sd %s\n", P2S_VERSION_STR);
                        return 1;
                default:
                        return 2;       /* getopt printed the one line */
                }
        }
        o->files = argv + optind;
        o->nfiles = argc - optind;
        if (o->root && o->nfiles) {
                fprintf(stderr, "p2sd: give either --root DIR or FILE arguments, not both\n");
                return 2;
        }
        if (!o->root && !o->nfiles) {
                fprintf(stderr, "p2sd: nothing to serve: give FILE arguments or --root DIR\n");
                return 2;
        }
        return 0;
}
