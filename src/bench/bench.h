/* SPDX-License-Identifier: MIT */
/* One p2s-bench run: the work directories, the source file, and the rounds
 * on either side (p2sd + p2s-fetch, or nginx + curl), each a set of real
 * processes watched from the one event loop. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <p2s/proto.h>
#include "bench/stats.h"

struct bench_opts {
        unsigned clients, rounds;
        uint64_t size;                  /* of the generated file; of --file once prepared */
        const char *file;               /* NULL: generate one */
        /* passed through as given (checked by main) */
        const char *control, *cache, *chunk_size, *query, *replicas;    /* p2sd */
        const char *order, *window;                                     /* p2s-fetch */
        const char *out;                /* parent of the copies' directory, or NULL */
        const char *keep_rtt;           /* copy the clients' RTT logs here, or NULL */
        const char *cpu_trace;          /* write the machine's CPU use per tick here, or NULL */
        const char *p2sd, *fetch, *nginx, *curl;
        uint64_t timeout_us;            /* per round and side */
        bool http, verbose, progress;
};

enum bench_side { BENCH_P2S, BENCH_HTTP };

struct bench_result {
        bool ran;                       /* the side ran to its end (the clock stopped) */
        bool ok;                        /* ran, every client exited 0, every copy verified */
        double wall_s;
        unsigned verified, failed;      /* copies matching the source; clients that exited non-zero */
        /* the server: p2sd or nginx (master and workers) */
        uint64_t srv_hwm_kib;           /* VmHWM just before stopping it; else ru_maxrss */
        double srv_cpu_s;
        /* the clients */
        uint64_t cli_max_rss_kib;
        double cli_cpu_s;
        /* p2sd only */
        bool have_status, have_complete;
        uint64_t mib_in, mib_out;
        struct p2sd_complete complete;
        uint64_t rtt_n, rtt_cache, rtt_peer, rtt_p50_us, rtt_p99_us;
        double rtt_mean_us;
        /* the whole machine while the clock ran (cpustat.h): the share busy,
         * and per CPU_TICK_US the least busy tick and the ticks under half */
        bool have_cpu;
        double cpu_busy, cpu_busy_min;
        unsigned cpu_ticks, cpu_low_ticks;
};

struct bench;

/* Creates the directories and the source (generated or linked) and hashes it.
 * NULL with a message in err. */
struct bench *bench_new(const struct bench_opts *o, char *err, size_t errlen);
/* Stops whatever still runs and removes every file and directory it made. */
struct bench *bench_free(struct bench *b);

/* One side of one round. 0 when it ran (res says how it went; a failed
 * client is reported on stderr), -EINTR after SIGINT/SIGTERM (bench_signal
 * tells which), other -errno when it could not run. */
int bench_run(struct bench *b, enum bench_side side, unsigned round, struct bench_result *res);
int bench_signal(const struct bench *b);
const char *bench_source(const struct bench *b);       /* the served file */
const char *bench_name(const struct bench *b);         /* its name */
const char *bench_copies_dir(const struct bench *b);
uint64_t bench_size(const struct bench *b);            /* bytes of the source */
