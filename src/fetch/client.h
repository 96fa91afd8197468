/* SPDX-License-Identifier: MIT */
/* p2s-fetch's I/O edge: the join handshake, the sockets, the output file,
 * and the member state machine between them. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "core/member.h"
#include "util/loop.h"

struct swarm_secret;

struct fetch_options {
        const char *host;
        uint16_t port;
        const char *name;
        const char *output;
        const char *rtt_log;
        uint64_t timeout_us;
        const char *secret_file;
        const struct swarm_secret *secret;      /* loaded from secret_file by main; NULL: none */
        bool quiet;
        bool no_resume;                 /* start OUTPUT.part over whatever it holds */
        bool verify_file;               /* read the copy back and hash it whole (--verify-file) */
        int progress;                   /* enum progress_mode; --quiet makes it PROGRESS_NONE */
        int log_level;
        struct member_config member;
};

struct client;

/* NULL with a message in err on failure (bad host, cannot create output). */
struct client *client_new(const struct fetch_options *o, struct loop *l, char *err, size_t errlen);
struct client *client_free(struct client *c);
/* Starts the join; the loop then runs until the client calls loop_quit with
 * its exit code (0: verified copy in place). */
int client_start(struct client *c);
/* After the loop ended: why (for the error line). */
const char *client_reason(const struct client *c);
/* Counters of the session, as debug lines. */
void client_log_stats(const struct client *c);
