/* SPDX-License-Identifier: MIT */
/* p2sd's command line (doc/cli.md is the contract). */
#pragma once
#include <stdint.h>
#include "core/swarm.h"

struct p2sd_options {
        char **files;           /* FILE arguments, or NULL with root */
        int nfiles;
        const char *root;
        const char *listen;     /* NULL: [::] dual-stack, else 0.0.0.0 */
        uint16_t port;
        int control;            /* enum p2s_control_mode */
        uint64_t cache_bytes;
        int log_level;
        struct swarm_config swarm;
};

/* 0: run; 1: --help or --version was printed, exit 0; 2: bad command line,
 * one line was printed, exit 2. */
int p2sd_options_parse(struct p2sd_options *o, int argc, char **argv);
