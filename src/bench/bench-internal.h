/* SPDX-License-Identifier: MIT */
/* The private state of p2s-bench's rounds, shared by bench.c (the bench
 * object, waiting, processes, helpers), bench-servers.c (starting p2sd and
 * nginx, p2sd's stderr and notify socket) and bench-round.c (a round: the
 * clients, the clock, collecting and verifying the copies). */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <stdio.h>
#include "bench/bench.h"
#include "bench/cpustat.h"
#include "bench/proc.h"
#include "proto/hash.h"
#include "util/clock.h"
#include "util/loop.h"

#define READY_US        (10 * USEC_PER_SEC)     /* server start to ready */
#define STOP_US         (10 * USEC_PER_SEC)     /* SIGTERM to exit, then SIGKILL */
#define STATUS_WAIT_US  (3 * USEC_PER_SEC)      /* p2sd sends STATUS= every 2 s */
#define CONNECT_POLL_US (10 * USEC_PER_MSEC)
#define PROGRESS_US     (250 * USEC_PER_MSEC)
#define CPU_TICK_US     (100 * USEC_PER_MSEC)     /* machine CPU use sampled this often */
#define CPU_TICK_MIN    8       /* /proc/stat clock ticks (all CPUs) a sample must span */
#define TAIL_LINES      12

enum phase { PH_IDLE, PH_READY, PH_CLIENTS, PH_STATUS, PH_STOP };

struct bench {
        struct bench_opts o;
        struct loop *loop;
        char work[PATH_MAX - 64];       /* ours: removed whole at the end */
        char copies[PATH_MAX];          /* work/copies, or a directory of ours under --out */
        bool copies_outside;
        char src[PATH_MAX];
        char name[256];
        uint8_t hash[P2S_HASH_SIZE];
        int signo;

        /* the side that runs now */
        enum bench_side side;
        enum phase phase;
        unsigned round;
        struct proc *srv;
        int srv_log;                    /* read end of p2sd's stderr, or -1 */
        char line[1024];
        size_t linelen;
        char tail[TAIL_LINES][256];
        unsigned ntail;
        int notify_fd;
        char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
        uint16_t port;
        unsigned statuses;              /* STATUS= received from p2sd */
        uint64_t mib_in, mib_out;
        bool have_status, have_complete;
        struct p2sd_complete complete;
        struct proc **cli;
        unsigned spawned, done, failed;
        uint64_t t0, t1;
        struct loop_timer deadline, progress, poll;
        /* the machine's CPU use over the clock (cpu_t1 read when it stops) */
        struct loop_timer cpu_tick;
        struct cpustat cpu_t0, cpu_last, cpu_t1;
        bool cpu_ok;
        double cpu_min;
        unsigned cpu_ticks, cpu_low;
        FILE *cpu_trace;
};

/* bench.c */

int bench_wait_for(struct bench *b, enum phase ph, uint64_t timeout_us);
uint64_t bench_hwm_kib(pid_t pid);
uint64_t bench_tree_hwm_kib(pid_t pid);
double bench_ru_cpu_s(const struct rusage *ru);
int bench_hash_file(const char *path, uint8_t out[P2S_HASH_SIZE]);
void bench_print_file_tail(const char *path, unsigned lines);
void bench_progress_clear(struct bench *b);
void bench_on_srv_exit(struct proc *p, void *ud);
void bench_on_cli_exit(struct proc *p, void *ud);
void bench_srv_stop(struct bench *b);
void bench_side_cleanup(struct bench *b);
void bench_srv_tail(struct bench *b);
void bench_path_in(char *out, size_t len, const char *dir, const char *prefix, unsigned i, const char *suffix);

/* bench-servers.c */

void bench_srv_log_close(struct bench *b);
bool bench_srv_log_read(struct bench *b);
int bench_notify_open(struct bench *b);
int bench_start_p2sd(struct bench *b);
void bench_on_connect_poll(struct loop *l, struct loop_timer *t, void *ud);

/* bench-round.c */

void bench_on_cpu_tick(struct loop *l, struct loop_timer *t, void *ud);
int bench_start_nginx(struct bench *b);
