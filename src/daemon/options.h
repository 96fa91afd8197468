/* SPDX-License-Identifier: MIT */
/* p2sd's options (doc/cli.md is the contract): one table, p2sd_option_table,
 * describes each option once, and drives the command line, --help, the keys
 * of the configuration file (daemon/conffile.h), the values logged on a
 * reload and the command line's overlay over the file. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/swarm.h"
#include "util/parse.h"

/* Bits of p2sd_options.set (struct opt.set_bit): which options the command
 * line gave, so they win over the configuration file, at startup and on
 * every reload. */
enum {
        P2SD_SET_ROOT = 1u << 0,        /* --root or FILE arguments */
        P2SD_SET_LISTEN = 1u << 1,
        P2SD_SET_PORT = 1u << 2,
        P2SD_SET_CONTROL = 1u << 3,
        P2SD_SET_MIN_CLIENTS = 1u << 4,
        P2SD_SET_GATHER = 1u << 5,
        P2SD_SET_REPLICAS = 1u << 6,
        P2SD_SET_CACHE = 1u << 7,
        P2SD_SET_CHUNK = 1u << 8,
        P2SD_SET_QUERY = 1u << 9,
        P2SD_SET_LOG_LEVEL = 1u << 10,
        P2SD_SET_MAX_DGRAM = 1u << 11,
        P2SD_SET_MAX_MEMBERS = 1u << 12,
        P2SD_SET_MAX_CONNS = 1u << 13,
        P2SD_SET_FRAME_TIMEOUT = 1u << 14,
        P2SD_SET_SECRET = 1u << 15,
};

/* p2sd's bits of struct opt.flags */
enum {
        P2SD_OPT_NO_FILE = 1u << 8,     /* not a key of the configuration file */
        P2SD_OPT_RESTART = 1u << 9,     /* belongs to the sockets: a reload keeps the value p2sd started with */
};

struct p2sd_options {
        char **files;           /* FILE arguments, or NULL with root */
        int nfiles;
        const char *root;
        const char *listen;     /* NULL: [::] dual-stack, else 0.0.0.0 */
        uint16_t port;
        int control;            /* enum p2s_control_mode */
        uint32_t max_datagram;  /* --control=tcp: largest UDP payload of chunk data */
        const char *secret_file;        /* --secret-file, or NULL */
        uint64_t cache_bytes;
        uint32_t max_members;   /* per swarm; 0: no bound */
        uint32_t max_connections;       /* TCP connections; 0: from RLIMIT_NOFILE */
        uint64_t frame_timeout_us;      /* a TCP frame begun must end within this */
        int log_level;
        struct swarm_config swarm;
        const char *config;     /* --config FILE, or NULL */
        unsigned set;           /* P2SD_SET_* given on the command line */
};

/* Every option and configuration key, in the order of --help and of the
 * man pages. "file" is the key that may repeat (FILE arguments on the
 * command line); "config", "help" and "version" are command line only. */
extern const struct opt p2sd_option_table[];
extern const size_t p2sd_option_count;

void p2sd_options_defaults(struct p2sd_options *o);
/* A key of the configuration file, or NULL. */
const struct opt *p2sd_option_key(const char *key);
/* What p2sd runs with is valid: exactly one of root and FILE arguments, and
 * chunks that fit the datagrams. With merged false (--config given, the
 * file not read yet) only what the file cannot change is checked. 0 or
 * -EINVAL with the reason in err. */
int p2sd_options_check(const struct p2sd_options *o, bool merged, char *err, size_t errlen);
void p2sd_options_help(FILE *f);

/* 0: run; 1: --help or --version was printed, exit 0; 2: bad command line,
 * err holds the one line to print ("p2sd: ... (try 'p2sd --help')"). */
int p2sd_options_parse(struct p2sd_options *o, int argc, char **argv, char *err, size_t errlen);
