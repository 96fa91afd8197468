/* SPDX-License-Identifier: MIT */
/* p2sd's option table and its command line. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include "config.h"
#include "daemon/options.h"

#define PROG "p2sd"
#define F(field) OPT_FIELD(struct p2sd_options, field)

static const struct opt_choice control_choices[] = {
        { "udp", P2S_CONTROL_UDP, false }, { "tcp", P2S_CONTROL_TCP, false }, { 0 },
};
static const struct opt_choice query_choices[] = {
        { "directed", SWARM_QUERY_DIRECTED, false }, { "broadcast", SWARM_QUERY_BROADCAST, false }, { 0 },
};
const struct opt p2sd_option_table[] = {
        { "config", 'f', "FILE", OPT_STRING, F(config), .flags = P2SD_OPT_NO_FILE,
          .help = "read options from FILE (p2sd.conf(5)); options\n"
                  "on the command line win; SIGHUP re-reads it" },
        { "root", 'r', "DIR", OPT_STRING, F(root), .set_bit = P2SD_SET_ROOT, .unset_text = "(none)",
          .help = "serve the files under DIR by relative name" },
        /* FILE arguments on the command line */
        { "file", 0, "PATH", OPT_ACTION, .set_bit = P2SD_SET_ROOT, .flags = OPT_NO_COMMAND_LINE,
          .help = "serve PATH under its base name" },
        { "listen", 'l', "ADDR", OPT_ADDRESS, F(listen), .set_bit = P2SD_SET_LISTEN, .flags = P2SD_OPT_RESTART,
          .unset_text = "(any)", .default_text = "[::] and 0.0.0.0",
          .help = "address to bind, IPv4 or IPv6" },
        { "port", 'p', "PORT", OPT_UINT, F(port), 0, 65535, .set_bit = P2SD_SET_PORT, .flags = P2SD_OPT_RESTART,
          .help = "TCP and UDP port; 0 picks a free one" },
        { "control", 'c', "udp|tcp", OPT_CHOICE, F(control), .choices = control_choices,
          .set_bit = P2SD_SET_CONTROL, .flags = P2SD_OPT_RESTART,
          .help = "transport for control messages" },
        { "max-datagram", 'D', "BYTES", OPT_UINT, F(max_datagram), P2S_MIN_DGRAM, P2S_MAX_DGRAM,
          .set_bit = P2SD_SET_MAX_DGRAM, .flags = P2SD_OPT_RESTART,
          .help = "--control=tcp: largest UDP payload of chunk\n"
                  "data, and never more than the route to a\n"
                  "member carries unfragmented" },
        { "secret-file", 0, "FILE", OPT_STRING, F(secret_file), .set_bit = P2SD_SET_SECRET,
          .flags = P2SD_OPT_RESTART, .unset_text = "(none)",
          .help = "members must prove the swarm secret in FILE\nto join (mode 600 or stricter)" },
        { "min-clients", 'n', "N", OPT_UINT, F(swarm.min_clients), 0, 100000, .set_bit = P2SD_SET_MIN_CLIENTS,
          .help = "start a swarm once N members joined;\n0: on the gather timeout only" },
        { "gather-timeout", 'g', "SEC", OPT_SECONDS, F(swarm.gather_timeout_us), 0, 86400ull * 1000000,
          .set_bit = P2SD_SET_GATHER, .help = "start a swarm SEC after its first member" },
        { "replicas", 'R', "R", OPT_UINT, F(swarm.replicas), 1, 64, .set_bit = P2SD_SET_REPLICAS,
          .help = "members that get each chunk of the share" },
        { "cache", 'C', "SIZE", OPT_SIZE, F(cache_bytes), 1, 1ull << 40, .set_bit = P2SD_SET_CACHE,
          .help = "cache bound in bytes, K/M/G/T suffixes" },
        { "chunk-size", 'k', "SIZE", OPT_SIZE, F(swarm.chunk_size), P2S_MIN_CHUNK, P2S_MAX_CHUNK,
          .set_bit = P2SD_SET_CHUNK, .help = "chunk size" },
        { "query", 'q', "directed|broadcast", OPT_CHOICE, F(swarm.query), .choices = query_choices,
          .set_bit = P2SD_SET_QUERY, .help = "on a cache miss ask one holder or all" },
        { "max-members", 0, "N", OPT_UINT, F(max_members), 0, 1000000, .set_bit = P2SD_SET_MAX_MEMBERS,
          .help = "members per swarm; more are refused; 0: any" },
        { "max-connections", 0, "N", OPT_UINT, F(max_connections), 0, 10000000, .set_bit = P2SD_SET_MAX_CONNS,
          .default_text = "0",
          .help = "TCP connections at once; more are refused;\n0: the open-files limit less 64" },
        { "frame-timeout", 0, "SEC", OPT_SECONDS, F(frame_timeout_us), 100000, 3600ull * 1000000,
          .set_bit = P2SD_SET_FRAME_TIMEOUT,
          .help = "a TCP frame begun must end within SEC, plus\n1 s per 64 KiB of it; a member whose queue\n"
                  "does not move for SEC is dropped" },
        { "log-level", 0, "LEVEL", OPT_CHOICE, F(log_level), .choices = opt_log_levels,
          .set_bit = P2SD_SET_LOG_LEVEL, .help = "err, warning, notice, info, debug" },
        { "help", 'h', NULL, OPT_ACTION, .flags = P2SD_OPT_NO_FILE, .help = "show this help" },
        { "version", 'V', NULL, OPT_ACTION, .flags = P2SD_OPT_NO_FILE, .help = "show the version" },
};
const size_t p2sd_option_count = sizeof(p2sd_option_table) / sizeof(p2sd_option_table[0]);

void p2sd_options_defaults(struct p2sd_options *o)
{
        *o = (struct p2sd_options){ .port = P2S_DEFAULT_PORT, .control = P2S_CONTROL_UDP,
                                    .max_datagram = P2S_MAX_DGRAM,
                                    .cache_bytes = 64u << 20, .frame_timeout_us = 30 * 1000000ull,
                                    .log_level = LOG_INFO };
        swarm_config_defaults(&o->swarm);
}

const struct opt *p2sd_option_key(const char *key)
{
        const struct opt *d = opt_find(p2sd_option_table, p2sd_option_count, key);
        return d && !(d->flags & P2SD_OPT_NO_FILE) ? d : NULL;
}

int p2sd_options_check(const struct p2sd_options *o, bool merged, char *err, size_t errlen)
{
        if (o->root && o->nfiles) {
                snprintf(err, errlen, "give either --root DIR or FILE arguments, not both");
                return -EINVAL;
        }
        if (!merged)
                return 0;
        if (!o->root && !o->nfiles) {
                snprintf(err, errlen, "nothing to serve: %s", o->config
                         ? "set 'root' or 'file' (or give --root or FILE arguments)"
                         : "give FILE arguments, --root DIR or --config FILE");
                return -EINVAL;
        }
        /* a FRAG numbers its fragments in 16 bits, and a chunk may go out
         * in the smallest fragments */
        uint32_t dgram = o->max_datagram < P2S_DEFAULT_DGRAM ? o->max_datagram : P2S_DEFAULT_DGRAM;
        uint32_t payload = dgram - P2S_HDR_SIZE - P2S_FRAG_SIZE;
        if (o->control == P2S_CONTROL_TCP && (o->swarm.chunk_size + payload - 1) / payload > UINT16_MAX) {
                char chunk[32];
                opt_format(p2sd_option_key("chunk-size"), o, chunk, sizeof(chunk));
                snprintf(err, errlen, "chunk-size %s needs more than 65535 fragments of max-datagram %u bytes: "
                         "raise max-datagram or lower chunk-size", chunk, o->max_datagram);
                return -EINVAL;
        }
        return 0;
}

void p2sd_options_help(FILE *f)
{
        struct p2sd_options def;
        p2sd_options_defaults(&def);
        fputs("Usage: " PROG " [OPTIONS] FILE...\n"
              "       " PROG " [OPTIONS] --root DIR\n"
              "       " PROG " [OPTIONS] --config FILE\n"
              "Serve files to a swarm of p2s-fetch clients through a bounded chunk cache.\n"
              "\n", f);
        opt_help(f, p2sd_option_table, p2sd_option_count, &def);
}

static int usage_error(char *err, size_t errlen, const char *why)
{
        snprintf(err, errlen, PROG ": %s (try '" PROG " --help')", why);
        return 2;
}

int p2sd_options_parse(struct p2sd_options *o, int argc, char **argv, char *err, size_t errlen)
{
        struct opt_parser p;
        const struct opt *d;
        const char *arg;
        char why[256], msg[512];
        int r;
        p2sd_options_defaults(o);
        opt_parser_init(&p, p2sd_option_table, p2sd_option_count);
        while ((r = opt_parser_next(&p, argc, argv, &d, &arg, why, sizeof(why))) > 0) {
                if (!strcmp(d->name, "help")) {
                        p2sd_options_help(stdout);
                        return 1;
                }
                if (!strcmp(d->name, "version")) {
                        printf(PROG " %s\n", P2S_VERSION_STR);
                        return 1;
                }
                if (opt_set(d, o, arg, why, sizeof(why)) < 0) {
                        snprintf(msg, sizeof(msg), "--%s %s: %s", d->name, *arg ? arg : "''", why);
                        return usage_error(err, errlen, msg);
                }
                o->set |= d->set_bit;
        }
        if (r < 0)
                return usage_error(err, errlen, why);
        o->files = argv + optind;
        o->nfiles = argc - optind;
        if (o->nfiles)
                o->set |= P2SD_SET_ROOT;
        /* with --config what to serve, and more, may come from the file */
        if (p2sd_options_check(o, !o->config, why, sizeof(why)) < 0)
                return usage_error(err, errlen, why);
        return 0;
}
