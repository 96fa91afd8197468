/* SPDX-License-Identifier: MIT */
/* p2s-fetch's I/O edge: the join handshake, the sockets, the output file,
 * and the member state machine between them. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "core/member.h"
#include "util/loop.h"

struct swarm_secret;

/* One file to fetch: HOST NAME, or a p2s:// URL. */
struct fetch_job {
        const char *host;
        uint16_t port;
        const char *name;
};

struct fetch_options {
        /* the file of this session (main sets them per job) */
        const char *host;
        uint16_t port;
        const char *name;
        const char *output;
        /* the command line's files: jobs[0] is also in host, port, name */
        struct fetch_job *jobs;
        size_t njobs;
        const char *output_arg;         /* -o as given; NULL: none */
        unsigned parallel;              /* files fetched at once */
        bool list;                      /* --list: print what the server serves under prefix */
        bool recursive;                 /* -r: fetch all of it, mirrored under -o DIR */
        const char *prefix;             /* of --list and -r ("" for everything) */
        const char *sha256;             /* --sha256 as given (64 hex digits) */
        uint8_t pinned[32];             /* its bytes, when have_pin */
        bool have_pin;
        bool remote_time;               /* -R: keep the source's mtime */
        bool preserve;                  /* and its mode */
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
/* Called once, from the loop, when the session ended (client_exit_code
 * says how); the client may be freed from there. */
typedef void (*client_done_fn)(struct client *c, void *ud);

/* NULL with a message in err and an exit status (enum fetch_exit) in
 * *code on failure (bad host, output locked or not writable). Several
 * clients may share one loop. */
struct client *client_new(const struct fetch_options *o, struct loop *l, client_done_fn done, void *ud, int *code,
                          char *err, size_t errlen);
struct client *client_free(struct client *c);
/* Starts the join; done is called when the session is over. */
int client_start(struct client *c);
/* SIGINT or SIGTERM: ends the session as a failure (OUTPUT.part kept). */
void client_interrupt(struct client *c, int signo);
/* enum fetch_exit: 0 a verified copy is in place. */
int client_exit_code(const struct client *c);
/* After the session ended: why (for the error line). */
const char *client_reason(const struct client *c);
/* Counters of the session, as debug lines. */
void client_log_stats(const struct client *c);
