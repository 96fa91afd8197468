/* SPDX-License-Identifier: MIT */
#include <errno.h>
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
"       p2sd [OPTIONS] --config FILE\n"
"Serve files to a swarm of p2s-fetch clients through a bounded chunk cache.\n"
"\n"
"  -f, --config FILE           read options from FILE (key = value lines, see p2sd.conf(5));\n"
"                              command-line options win; SIGHUP re-reads it\n"
"  -r, --root DIR              serve every regular file under DIR by relative name\n"
"  -l, --listen ADDR           address to bind, IPv4 or IPv6 (default: [::] and 0.0.0.0)\n"
"  -p, --port PORT             TCP and UDP port; 0 picks a free one (default 7700)\n"
"  -c, --control udp|tcp       transport for control messages (default udp)\n"
"  -D, --max-datagram BYTES    --control=tcp: largest UDP payload of chunk data; the\n"
"                              default 1452 fits a 1500-byte MTU, loopback takes 65507\n"
"  -n, --min-clients N         start a swarm once N members joined (default 0: timeout only)\n"
"  -g, --gather-timeout SEC    start a swarm SEC after its first member (default 3)\n"
"  -R, --replicas R            members that get each chunk of the share (default 1)\n"
"  -C, --cache SIZE            cache bound in bytes, K/M/G suffixes (default 64M)\n"
"  -k, --chunk-size SIZE       chunk size, 256 .. 16M (default 64K)\n"
"  -q, --query directed|broadcast  on a cache miss ask one holder or all (default directed)\n"
"      --log-level LEVEL       err, warning, notice, info, debug (default info)\n"
"  -h, --help                  show this help\n"
"  -V, --version               show the version\n";

const char *const p2sd_option_keys[] = {
        "root", "file", "listen", "port", "control", "max-datagram", "min-clients", "gather-timeout",
        "replicas", "cache", "chunk-size", "query", "log-level", NULL,
};

void p2sd_options_defaults(struct p2sd_options *o)
{
        *o = (struct p2sd_options){ .port = P2S_DEFAULT_PORT, .control = P2S_CONTROL_UDP,
                                    .max_datagram = P2S_DEFAULT_DGRAM,
                                    .cache_bytes = 64u << 20, .log_level = LOG_INFO };
        swarm_config_defaults(&o->swarm);
}

static int bad(char *err, size_t errlen, const char *val, const char *want)
{
        snprintf(err, errlen, "'%s' is not %s", val, want);
        return -EINVAL;
}

int p2sd_option_set(struct p2sd_options *o, const char *key, const char *val, unsigned *bit,
                    char *err, size_t errlen)
{
        uint64_t v;
        *bit = 0;
        if (!strcmp(key, "root")) {
                if (!*val)
                        return bad(err, errlen, val, "a directory");
                o->root = val;
                *bit = P2SD_SET_ROOT;
        } else if (!strcmp(key, "listen")) {
                if (!*val)
                        return bad(err, errlen, val, "an IPv4 or IPv6 address");
                o->listen = val;
                *bit = P2SD_SET_LISTEN;
        } else if (!strcmp(key, "port")) {
                if (parse_uint(val, 0, 65535, &v) < 0)
                        return bad(err, errlen, val, "a port number (0-65535)");
                o->port = (uint16_t)v;
                *bit = P2SD_SET_PORT;
        } else if (!strcmp(key, "control")) {
                if (!strcmp(val, "udp"))
                        o->control = P2S_CONTROL_UDP;
                else if (!strcmp(val, "tcp"))
                        o->control = P2S_CONTROL_TCP;
                else
                        return bad(err, errlen, val, "udp or tcp");
                *bit = P2SD_SET_CONTROL;
        } else if (!strcmp(key, "max-datagram")) {
                if (parse_uint(val, P2S_MIN_DGRAM, P2S_MAX_DGRAM, &v) < 0)
                        return bad(err, errlen, val, "a datagram size from 108 to 65507 bytes");
                o->max_datagram = (uint32_t)v;
                *bit = P2SD_SET_MAX_DGRAM;
        } else if (!strcmp(key, "min-clients")) {
                if (parse_uint(val, 0, 100000, &v) < 0)
                        return bad(err, errlen, val, "a count (0-100000)");
                o->swarm.min_clients = (unsigned)v;
                *bit = P2SD_SET_MIN_CLIENTS;
        } else if (!strcmp(key, "gather-timeout")) {
                if (parse_seconds(val, &v) < 0)
                        return bad(err, errlen, val, "a number of seconds");
                o->swarm.gather_timeout_us = v;
                *bit = P2SD_SET_GATHER;
        } else if (!strcmp(key, "replicas")) {
                if (parse_uint(val, 1, 64, &v) < 0)
                        return bad(err, errlen, val, "a count (1-64)");
                o->swarm.replicas = (unsigned)v;
                *bit = P2SD_SET_REPLICAS;
        } else if (!strcmp(key, "cache")) {
                if (parse_size(val, &v) < 0)
                        return bad(err, errlen, val, "a size (bytes, or with K/M/G)");
                o->cache_bytes = v;
                *bit = P2SD_SET_CACHE;
        } else if (!strcmp(key, "chunk-size")) {
                if (parse_size(val, &v) < 0 || v < P2S_MIN_CHUNK || v > P2S_MAX_CHUNK)
                        return bad(err, errlen, val, "a size from 256 to 16M");
                o->swarm.chunk_size = (uint32_t)v;
                *bit = P2SD_SET_CHUNK;
        } else if (!strcmp(key, "query")) {
                if (!strcmp(val, "directed"))
                        o->swarm.query = SWARM_QUERY_DIRECTED;
                else if (!strcmp(val, "broadcast"))
                        o->swarm.query = SWARM_QUERY_BROADCAST;
                else
                        return bad(err, errlen, val, "directed or broadcast");
                *bit = P2SD_SET_QUERY;
        } else if (!strcmp(key, "log-level")) {
                int l = log_level_from_string(val);
                if (l < 0)
                        return bad(err, errlen, val, "err, warning, notice, info or debug");
                o->log_level = l;
                *bit = P2SD_SET_LOG_LEVEL;
        } else {
                return -ENOENT;
        }
        return 0;
}

static void format_size(uint64_t v, char *buf, size_t len)
{
        static const char units[] = "KMG";
        int u = -1;
        while (u < 2 && v && v % 1024 == 0) {
                v /= 1024;
                u++;
        }
        if (u < 0)
                snprintf(buf, len, "%llu", (unsigned long long)v);
        else
                snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u]);
}

void p2sd_option_format(const struct p2sd_options *o, const char *key, char *buf, size_t len)
{
        static const char *const levels[] = { [LOG_ERR] = "err", [LOG_WARNING] = "warning",
                                              [LOG_NOTICE] = "notice", [LOG_INFO] = "info",
                                              [LOG_DEBUG] = "debug" };
        if (!strcmp(key, "root")) {
                snprintf(buf, len, "%s", o->root ? o->root : "(none)");
        } else if (!strcmp(key, "listen")) {
                snprintf(buf, len, "%s", o->listen ? o->listen : "(any)");
        } else if (!strcmp(key, "port")) {
                snprintf(buf, len, "%u", o->port);
        } else if (!strcmp(key, "control")) {
                snprintf(buf, len, "%s", o->control == P2S_CONTROL_TCP ? "tcp" : "udp");
        } else if (!strcmp(key, "max-datagram")) {
                snprintf(buf, len, "%u", o->max_datagram);
        } else if (!strcmp(key, "min-clients")) {
                snprintf(buf, len, "%u", o->swarm.min_clients);
        } else if (!strcmp(key, "gather-timeout")) {
                uint64_t us = o->swarm.gather_timeout_us;
                int n = snprintf(buf, len, "%llu.%06llu", (unsigned long long)(us / 1000000),
                                 (unsigned long long)(us % 1000000));
                /* "3.000000" -> "3", "0.500000" -> "0.5" */
                while (n > 0 && (size_t)n < len && buf[n - 1] == '0')
                        buf[--n] = 0;
                if (n > 0 && (size_t)n < len && buf[n - 1] == '.')
                        buf[--n] = 0;
        } else if (!strcmp(key, "replicas")) {
                snprintf(buf, len, "%u", o->swarm.replicas);
        } else if (!strcmp(key, "cache")) {
                format_size(o->cache_bytes, buf, len);
        } else if (!strcmp(key, "chunk-size")) {
                format_size(o->swarm.chunk_size, buf, len);
        } else if (!strcmp(key, "query")) {
                snprintf(buf, len, "%s", o->swarm.query == SWARM_QUERY_BROADCAST ? "broadcast" : "directed");
        } else if (!strcmp(key, "log-level")) {
                int l = o->log_level;
                snprintf(buf, len, "%s", l >= LOG_ERR && l <= LOG_DEBUG ? levels[l] : "?");
        } else {
                snprintf(buf, len, "?");
        }
}

int p2sd_options_check(const struct p2sd_options *o, char *err, size_t errlen)
{
        if (o->root && o->nfiles) {
                snprintf(err, errlen, "give either a root directory or files to serve, not both");
                return -EINVAL;
        }
        if (!o->root && !o->nfiles) {
                snprintf(err, errlen, "nothing to serve: give FILE arguments or --root DIR");
                return -EINVAL;
        }
        /* a FRAG numbers its fragments in 16 bits */
        uint32_t payload = o->max_datagram - P2S_HDR_SIZE - P2S_FRAG_SIZE;
        if (o->control == P2S_CONTROL_TCP && (o->swarm.chunk_size + payload - 1) / payload > UINT16_MAX) {
                snprintf(err, errlen, "chunk size %u needs more than 65535 datagrams of %u bytes: "
                         "raise max-datagram or lower chunk-size", o->swarm.chunk_size, o->max_datagram);
                return -EINVAL;
        }
        return 0;
}

int p2sd_options_parse(struct p2sd_options *o, int argc, char **argv)
{
        enum { OPT_LOG_LEVEL = 0x100 };
        static const struct option longopts[] = {
                { "config", required_argument, NULL, 'f' },
                { "root", required_argument, NULL, 'r' },
                { "listen", required_argument, NULL, 'l' },
                { "port", required_argument, NULL, 'p' },
                { "control", required_argument, NULL, 'c' },
                { "max-datagram", required_argument, NULL, 'D' },
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
        p2sd_options_defaults(o);
        int c, idx;
        while ((c = getopt_long(argc, argv, "f:r:l:p:c:D:n:g:R:C:k:q:hV", longopts, &idx)) != -1) {
                const char *key = NULL;
                switch (c) {
                case 'f':
                        o->config = optarg;
                        continue;
                case 'h':
                        fputs(usage, stdout);
                        return 1;
                case 'V':
                        printf("p2sd %s\n", P2S_VERSION_STR);
                        return 1;
                case '?':
                        return 2;       /* getopt printed the one line */
                default:
                        /* every other option is a key of the configuration file */
                        for (const struct option *lo = longopts; lo->name; lo++)
                                if (lo->val == c)
                                        key = lo->name;
                        break;
                }
                if (!key)
                        return 2;
                char err[256];
                unsigned bit;
                if (p2sd_option_set(o, key, optarg, &bit, err, sizeof(err)) < 0) {
                        fprintf(stderr, "p2sd: --%s: %s\n", key, err);
                        return 2;
                }
                o->set |= bit;
        }
        o->files = argv + optind;
        o->nfiles = argc - optind;
        if (o->nfiles)
                o->set |= P2SD_SET_ROOT;
        if (o->root && o->nfiles) {
                fprintf(stderr, "p2sd: give either --root DIR or FILE arguments, not both\n");
                return 2;
        }
        if (!o->config && !o->root && !o->nfiles) {
                fprintf(stderr, "p2sd: nothing to serve: give FILE arguments, --root DIR or --config FILE\n");
                return 2;
        }
        return 0;
}
