/* SPDX-License-Identifier: MIT */
/* The process harness of the integration and systemd suites: real p2sd and
 * p2s-fetch processes (found through $P2SD and $P2S_FETCH) on 127.0.0.1,
 * sockets passed the way systemd passes them, NOTIFY_SOCKETs owned by the
 * test, and each test in its own temporary directory (its working
 * directory, h_dir()).
 *
 * Readiness and progress are events, never sleeps: a datagram on a notify
 * socket, a line appearing in a log (inotify), a process exiting (pidfd),
 * each with a deadline in seconds. Every child gets PR_SET_PDEATHSIG, so a
 * test that fails (check ends the forked test at once, without the checked
 * teardown) or times out leaves nothing running; the per-TCase base
 * directory is removed by an unchecked teardown in the runner, so nothing
 * is left on disk either. Processes and notify sockets belong to the
 * harness: the test's teardown kills and closes whatever is left.
 *
 * Exit codes follow the shell: the exit status, or 128 + signal number. */
#pragma once

#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <p2s/proto.h>
#include <sys/types.h>

#define H_MAX_PROCS 256
#define H_MAX_NOTIFY 96

/* ---- fixtures --------------------------------------------------------------- */

/* A TCase with the harness fixtures (a fresh directory per test, and the
 * cleanup) and a timeout in seconds. */
TCase *h_tcase(const char *name, double timeout_s);
/* The test's directory, and h_dir()/NAME in a static ring of 16. */
const char *h_dir(void);
const char *h_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* CLOCK_MONOTONIC in seconds. */
double h_now(void);

/* ---- files ------------------------------------------------------------------ */

/* A file of size pseudo-random bytes from seed (parents created). */
void h_make_file(const char *path, uint64_t size, uint64_t seed);
/* A new file renamed over path, as an editor saves. */
void h_write_text(const char *path, const char *text);
void h_copy_file(const char *from, const char *to);
bool h_exists(const char *path);
/* The whole file, NUL-terminated (len excludes the NUL); NULL if unreadable. */
char *h_slurp(const char *path, size_t *len);
bool h_same_file(const char *a, const char *b);
/* copy has exactly the bytes of expected. */
void h_assert_same(const char *expected, const char *copy);
/* A finished fetch: copy identical and no copy.part left behind. */
void h_assert_fetched(const char *expected, const char *copy);

/* ---- processes -------------------------------------------------------------- */

struct h_proc {
        pid_t pid;
        int pidfd;                      /* -1 when pidfd_open is unavailable */
        bool reaped;
        int code;                       /* -1 until reaped; then exit code, or 128 + signal */
        char name[32];
        char log[PATH_MAX];             /* stdout and stderr */
        double t_start, t_end;          /* h_now() at spawn and at reaping */
        int tty;                        /* master of the terminal on stderr, or -1 */
        char *text;                     /* h_log's copy of the log */
};

struct h_spawn {
        const char *name;               /* in messages and the log's name; argv[0]'s base name if NULL */
        const char *const *argv;        /* argv[0] is the program */
        const char *const *env;         /* "NAME=VALUE" to set; NULL-terminated or NULL */
        const char *notify;             /* NOTIFY_SOCKET, or NULL for none */
        const int *fds;                 /* passed as fds 3, 4, ... with LISTEN_FDS */
        int nfds;
        const char *fdnames;            /* LISTEN_FDNAMES, or NULL */
        bool wrong_listen_pid;          /* LISTEN_PID of another process */
        bool tty;                       /* stderr on a pseudo-terminal */
};

/* Starts a child with a clean systemd environment (no inherited
 * NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*, JOURNAL_STREAM), stdin /dev/null. */
struct h_proc *h_start(const struct h_spawn *s);
struct h_proc *h_spawn(const char *name, const char *const argv[], const char *notify);
/* Runs argv (NULL-terminated) to completion within timeout_s; p->code is its exit code. */
struct h_proc *h_run_prog(const char *name, const char *const argv[], double timeout_s);

/* Waits for exit (fails the test after timeout_s); returns the exit code. */
int h_wait(struct h_proc *p, double timeout_s);
/* Waits up to timeout_s for p to exit; true if it has (then p->code is set). */
bool h_wait_for(struct h_proc *p, double timeout_s);
/* Waits for all n within one deadline; each must exit with code. */
void h_expect_exit(struct h_proc **ps, size_t n, double timeout_s, int code);
/* Fails the test if p has already exited. */
void h_signal(struct h_proc *p, int sig);
/* SIGKILL if still running, and the harness forgets p; returns NULL. */
struct h_proc *h_proc_free(struct h_proc *p);

/* The binaries under test. */
const char *h_bin_p2sd(void);
const char *h_bin_fetch(void);

/* ---- logs ------------------------------------------------------------------- */

/* While p runs, only whole lines count (ended by \n, or \r on a terminal). */

/* All p logged so far, NUL-terminated; valid until the next h_log(p). */
const char *h_log(struct h_proc *p);
size_t h_log_len(struct h_proc *p);
bool h_log_has(struct h_proc *p, const char *needle);
unsigned h_log_count(struct h_proc *p, const char *needle);
/* Waits until p's log contains needle; false at the deadline or if p exited without it. */
bool h_log_wait_for(struct h_proc *p, const char *needle, double timeout_s);
/* The same in what came after the first from bytes. */
bool h_log_wait_after(struct h_proc *p, size_t from, const char *needle, double timeout_s);
/* h_log_wait_for, failing the test with p's log when false. */
void h_log_wait(struct h_proc *p, const char *needle, double timeout_s);
/* The last part of p's log, for failure messages (a static buffer). */
const char *h_tail(struct h_proc *p);
bool h_match(const char *text, const char *regex);

/* ---- sockets and sd_notify ------------------------------------------------- */

/* A listening TCP and a UDP socket on the same free port of 127.0.0.1. */
uint16_t h_tcp_udp_pair(int *tcp, int *udp);

struct h_notify {
        int fd;
        char path[108];
        char env[128];                  /* "NOTIFY_SOCKET=path" */
        char *log;                      /* every datagram, separated by "\n--\n" */
        size_t log_len;
};
/* A notify socket h_path(name). */
struct h_notify *h_notify_open(const char *name);
/* Closes it early (the teardown closes what is left); returns NULL. */
struct h_notify *h_notify_close(struct h_notify *n);
/* Next datagram into buf (NUL-terminated); its length, or -1 at the deadline. */
int h_notify_recv(struct h_notify *n, char *buf, size_t len, double timeout_s);
/* Receives until a datagram has a line starting with key (such as
 * "READY=1" or "STATUS=fetched "); copies it into buf. False at the deadline. */
bool h_notify_wait(struct h_notify *n, const char *key, char *buf, size_t len, double timeout_s);
/* The value of the line starting with "KEY=" in a datagram, or NULL. */
const char *h_notify_field(const char *msg, const char *key, char *buf, size_t len);
/* The number in "KEY=N", or 0. */
unsigned long h_notify_uint(const char *msg, const char *key);
bool h_has_line(const char *msg, const char *prefix);

/* ---- p2sd ------------------------------------------------------------------- */

/* What p2sd's completion line reports for one swarm. */
struct h_stats {
        unsigned long long requests, cache_hits, uploads, dup_uploads;
};

/* p2sd with exactly args (NULL-terminated) and env ("NAME=VALUE",
 * NULL-terminated, may be NULL), NOTIFY_SOCKET n (NULL: a private one,
 * closed after READY=1). Waits for READY=1 (its message into ready when not
 * NULL) and stores X_P2S_PORT in *port; p2sd exiting first fails the test. */
struct h_proc *h_p2sd_start(struct h_notify *n, const char *const args[], const char *const env[],
                            unsigned *port, char *ready, size_t readylen);
/* p2sd --listen 127.0.0.1 --port 0 args..., with a private notify socket. */
struct h_proc *h_p2sd_v(unsigned *port, const char *const args[]);
struct h_proc *h_p2sd(unsigned *port, ...) __attribute__((sentinel));
/* SIGTERM, then p2sd must exit 0 within timeout_s. */
void h_stop_p2sd(struct h_proc *d, double timeout_s);
/* Parses p2sd's "'name' complete: ..." line; false if there is none. */
bool h_swarm_stats(struct h_proc *d, const char *name, struct h_stats *st);
/* The chunk count from p2sd's "distributed N bytes in C chunks" line for a swarm
 * of a file of size bytes; 0 if there is none. */
unsigned h_distributed_chunks(struct h_proc *d, uint64_t size);

/* ---- p2s-fetch -------------------------------------------------------------- */

/* p2s-fetch [args] 127.0.0.1:port name -o out, args NULL-terminated. */
struct h_proc *h_fetch_v(unsigned port, const char *name, const char *out, const char *const args[]);
struct h_proc *h_fetch(unsigned port, const char *name, const char *out, ...) __attribute__((sentinel));

/* A p2s-fetch with its own NOTIFY_SOCKET (h_path(out.notify)) and --timeout 20. */
struct h_member {
        struct h_proc *p;
        struct h_notify *n;
        char out[PATH_MAX];             /* h_path(out) */
};
/* Starts it for name at 127.0.0.1:port into h_path(out), with extra options
 * (NULL-terminated, may be NULL), stderr on a terminal when tty. */
void h_member_start(struct h_member *m, unsigned port, const char *name, const char *out,
                    const char *const *extra);
void h_member_start_tty(struct h_member *m, unsigned port, const char *name, const char *out,
                        const char *const *extra, bool tty);
/* Waits for READY=1 (joined the swarm). */
bool h_member_joined(struct h_member *m, double timeout_s);
void h_member_free(struct h_member *m);
/* One member fetching name into h_path(out); its exit code, its log in
 * *log (malloc'ed) when log is not NULL. */
int h_fetch_once(unsigned port, const char *name, const char *out, char **log);

/* ---- swarms ----------------------------------------------------------------- */

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
/* A swarm that cannot finish until the test lets it: with p2sd d run with
 * --cache 1 (no chunk is kept) and --min-clients n, members 0..n-1 join in
 * turn (p2sd logging each join) and member 1 is stopped (SIGSTOP) once
 * joined, before the last one joins; every member then needs chunks only
 * member 1 holds. SIGCONT it to let the swarm finish. The members run with
 * the options extra, member 0 with extra0 when not NULL. */
void h_stalled_swarm(struct h_proc *d, struct h_member *m, int n, unsigned port, const char *name,
                     const char *tag, const char *const *extra, const char *const *extra0);
/* Every member exits 0 with a copy identical to src; frees them. */
void h_members_succeed(struct h_member *m, int n, const char *src);

/* ---- speaking the protocol by hand --------------------------------------- */

/* The nonce every hand-made HELLO of the tests carries. */
extern const uint8_t h_test_nonce[P2S_NONCE_SIZE];
/* A whole HELLO datagram for name with token (0: the first, else the
 * cookie), h_test_nonce and no proof, into out; its length. */
size_t h_hello(uint8_t *out, size_t cap, const char *name, uint64_t token);
/* A member joined by hand: HELLO, COOKIE, HELLO(cookie), WELCOME on a new UDP
 * socket (*udp), then ATTACH on a new TCP connection, returned; *ids gets
 * the member's header fields (swarm, member, token). */
int h_join_attach(unsigned port, const char *name, struct p2s_hdr *ids, int *udp);
/* p2s-fetch with exactly args (NULL-terminated, after the program), run to
 * completion within timeout_s. */
struct h_proc *h_fetch_args(const char *const *args, double timeout_s);
/* "127.0.0.1:port" in a static buffer. */
const char *h_hostport(unsigned port);
/* A socket of type (SOCK_STREAM, SOCK_DGRAM) connected to 127.0.0.1:port. */
int h_sock_to(unsigned port, int type);
/* What fd receives within timeout_ms (one datagram, or what a stream has), or -1. */
ssize_t h_recv_within(int fd, uint8_t *buf, size_t cap, int timeout_ms);
/* The process's resident set (VmRSS), KiB. */
unsigned long h_rss_kib(pid_t pid);

/* How much more memory a process may take in this build: 1, or 4 under
 * AddressSanitizer, whose shadow memory and quarantine count in RSS too
 * (a memory bound is the normal build's to prove). */
#if defined(__SANITIZE_ADDRESS__)
#define H_RSS_SLACK 4
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H_RSS_SLACK 4
#endif
#endif
#ifndef H_RSS_SLACK
#define H_RSS_SLACK 1
#endif
