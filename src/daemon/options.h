/* SPDX-License-Identifier: MIT */
/* p2sd's command line (doc/cli.md is the contract). The configuration file
 * (daemon/conffile.h) uses the same long option names as keys. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/swarm.h"

/* Bits of p2sd_options.set: which options the command line gave, so they
 * win over the configuration file, at startup and on every reload. */
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
};

struct p2sd_options {
        char **files;           /* FILE arguments, or NULL with root */
        int nfiles;
        const char *root;
        const char *listen;     /* NULL: [::] dual-stack, else 0.0.0.0 */
        uint16_t port;
        int control;            /* enum p2s_control_mode */
        uint32_t max_datagram;  /* --control=tcp: largest UDP payload of chunk data */
        uint64_t cache_bytes;
        int log_level;
        struct swarm_config swarm;
        const char *config;     /* --config FILE, or NULL */
        unsigned set;           /* P2SD_SET_* given on the command line */
};

/* The keys of the configuration file, in the order the man page lists them;
 * NULL-terminated. "file" is the one key that may repeat. */
extern const char *const p2sd_option_keys[];

void p2sd_options_defaults(struct p2sd_options *o);
/* Sets the option with the long name key from text (kept by pointer for
 * root and listen). 0; -ENOENT for an unknown key ("file" is the caller's);
 * -EINVAL with "'VAL' is not ..." in err. Returns the P2SD_SET_* bit in *bit. */
int p2sd_option_set(struct p2sd_options *o, const char *key, const char *val, unsigned *bit,
                    char *err, size_t errlen);
/* The value of key as text, for logging what a reload changed. */
void p2sd_option_format(const struct p2sd_options *o, const char *key, char *buf, size_t len);
/* Exactly one of root and FILE arguments. 0 or -EINVAL with a message. */
int p2sd_options_check(const struct p2sd_options *o, char *err, size_t errlen);

/* 0: run; 1: --help or --version was printed, exit 0; 2: bad command line,
 * one line was printed, exit 2. With --config, what to serve may come from
 * the file, so the check for it waits (p2sd_options_check). */
int p2sd_options_parse(struct p2sd_options *o, int argc, char **argv);
