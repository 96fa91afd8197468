/* SPDX-License-Identifier: MIT */
/* The integration harness: real p2sd and p2s-fetch processes on 127.0.0.1,
 * each test in its own temporary directory (the test's working directory).
 *
 * Readiness and progress are events, never sleeps: p2sd's READY=1 on a
 * notify socket, a line appearing in a log (inotify), a process exiting
 * (pidfd). Every child gets PR_SET_PDEATHSIG, so a test that fails (check
 * ends the forked test at once, without the checked teardown) or times out
 * leaves nothing running; the per-TCase base directory is removed by an
 * unchecked teardown in the runner, so nothing is left on disk either. */
#pragma once

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define H_MAX_PROCS 96

struct h_proc {
        pid_t pid;
        int pidfd;                      /* -1 when pidfd_open is unavailable */
        bool reaped;
        int code;                       /* exit code, or 128 + signal number */
        char name[32];
        char log[48];                   /* stderr and stdout, in the test directory */
        double t_start, t_end;          /* h_now() at spawn and at reaping */
};

/* What p2sd's completion line reports for one swarm. */
struct h_stats {
        unsigned long long requests, cache_hits, uploads, dup_uploads;
};

/* ---- fixtures and runner ------------------------------------------------ */

/* A TCase with the harness fixtures and a timeout in seconds. */
TCase *h_tcase(const char *name, double timeout_s);
/* Runs one suite (CK_RUN_CASE and CK_VERBOSITY apply); the process exit code. */
int h_run(Suite *s);

double h_now(void);

/* ---- files -------------------------------------------------------------- */

/* A file of size pseudo-random bytes from seed (parents created). */
void h_make_file(const char *path, uint64_t size, uint64_t seed);
void h_copy_file(const char *from, const char *to);
bool h_exists(const char *path);
/* The whole file, NUL-terminated (len excludes the NUL); NULL if unreadable. */
char *h_slurp(const char *path, size_t *len);
/* copy has exactly the bytes of expected. */
void h_assert_same(const char *expected, const char *copy);
/* A finished fetch: copy identical and no copy.part left behind. */
void h_assert_fetched(const char *expected, const char *copy);

/* ---- processes ---------------------------------------------------------- */

/* argv[0] is the program; notify: NOTIFY_SOCKET for the child, or NULL to unset it. */
struct h_proc *h_spawn(const char *name, const char *const argv[], const char *notify);
/* p2sd on 127.0.0.1 with --port 0 and args (NULL-terminated); waits for
 * READY=1 and stores the port it reported. */
struct h_proc *h_p2sd_v(unsigned *port, const char *const args[]);
struct h_proc *h_p2sd(unsigned *port, ...) __attribute__((sentinel));
/* p2s-fetch 127.0.0.1:port name -o out [args], NULL-terminated. */
struct h_proc *h_fetch_v(unsigned port, const char *name, const char *out, const char *const args[]);
struct h_proc *h_fetch(unsigned port, const char *name, const char *out, ...) __attribute__((sentinel));
/* Runs argv (NULL-terminated) to completion within timeout_s; p->code is its exit code. */
struct h_proc *h_run_prog(const char *name, const char *const argv[], double timeout_s);

/* Waits for exit (fails the test after timeout_s); returns the exit code. */
int h_wait(struct h_proc *p, double timeout_s);
/* Waits up to timeout_s for p to exit; true if it has (then p->code is set). */
bool h_wait_for(struct h_proc *p, double timeout_s);
/* Waits for all n within one deadline; each must exit with code. */
void h_expect_exit(struct h_proc **ps, size_t n, double timeout_s, int code);
/* SIGTERM, then p2sd must exit 0 within timeout_s. */
void h_stop_p2sd(struct h_proc *d, double timeout_s);
void h_signal(struct h_proc *p, int sig);

/* ---- logs --------------------------------------------------------------- */

/* Waits until p's log contains needle; fails if p exits first or on timeout. */
void h_log_wait(struct h_proc *p, const char *needle, double timeout_s);
bool h_log_has(struct h_proc *p, const char *needle);
unsigned h_log_count(struct h_proc *p, const char *needle);
/* The last part of p's log, for failure messages (a static buffer). */
const char *h_tail(struct h_proc *p);
/* Parses p2sd's "'name' complete: ..." line; false if there is none. */
bool h_swarm_stats(struct h_proc *d, const char *name, struct h_stats *st);
/* The chunk count from p2sd's "distributed N bytes in C chunks" line for a swarm
 * of a file of size bytes; 0 if there is none. */
unsigned h_distributed_chunks(struct h_proc *d, uint64_t size);

/* ---- swarms -------------------------------------------------------------- */

/* Starts n clients for name, writing prefix-0.bin ... prefix-(n-1).bin,
 * each with args (NULL-terminated, or NULL); stores them in ps. */
void h_start_clients(struct h_proc **ps, unsigned n, unsigned port, const char *name,
                     const char *prefix, const char *const args[]);
/* All n exit 0 within timeout_s, every prefix-i.bin identical to expected,
 * no .part left. */
void h_expect_copies(struct h_proc **ps, unsigned n, const char *expected, const char *prefix, double timeout_s);
/* p2sd serving file (with dargs, --min-clients n --gather-timeout 10), n
 * clients (with fargs) all started together; every client exits 0 within
 * timeout_s with an identical copy, then p2sd stops cleanly on SIGTERM.
 * Returns p2sd, whose log the caller may inspect. */
struct h_proc *h_swarm(const char *file, unsigned n, const char *const dargs[], const char *const fargs[],
                       double timeout_s);

/* A first member for name that joins d's swarm and is then stopped
 * (SIGSTOP, after p2sd logged it joined): a swarm cannot finish without
 * the share it is given, so the relay stays mid-way until the test sends
 * SIGCONT (or SIGKILL). With --replicas 1 and a small cache the others
 * need its chunks through peer uploads. */
struct h_proc *h_stalled_member(struct h_proc *d, unsigned port, const char *name, const char *out,
                                const char *const fargs[]);
