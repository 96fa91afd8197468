/* SPDX-License-Identifier: MIT */
/* What the systemd suites share: real p2sd and p2s-fetch processes (found
 * through $P2SD and $P2S_FETCH), sockets passed the way systemd passes them,
 * and a NOTIFY_SOCKET owned by the test. Every wait is on an event (a
 * datagram, a log line, a process exit) with a deadline, never a sleep. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- scratch space ---- */
/* A directory for the whole test binary, made by h_tmp_setup (an unchecked
 * fixture: it runs in the runner process, so h_tmp_teardown runs even when
 * a test fails or times out). h_path returns h_tmp/NAME in a static ring. */
extern char h_tmp[];
void h_tmp_setup(void);
void h_tmp_teardown(void);
const char *h_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A file of size bytes whose content depends on seed. */
void h_make_file(const char *path, uint64_t size, uint32_t seed);
void h_write_text(const char *path, const char *text);
bool h_same_file(const char *a, const char *b);
bool h_exists(const char *path);

/* ---- processes ---- */
struct h_spawn {
        const char *const *argv;        /* argv[0] is the program */
        const char *const *env;         /* "NAME=VALUE" to set; NULL-terminated or NULL */
        const int *fds;                 /* passed as fds 3, 4, ... with LISTEN_FDS */
        int nfds;
        const char *fdnames;            /* LISTEN_FDNAMES, or NULL */
        bool wrong_listen_pid;          /* LISTEN_PID of another process */
        bool tty;                       /* stderr on a pseudo-terminal, not a pipe */
};
struct h_proc {
        pid_t pid;
        int err_fd;                     /* read end of the child's stderr */
        char *err;                      /* all stderr read so far, NUL-terminated */
        size_t err_len;
        bool exited;
        int status;
};
/* Starts a child with a clean systemd environment (no inherited
 * NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*, JOURNAL_STREAM), killed with SIGKILL
 * should the test die. */
void h_start(struct h_proc *p, const struct h_spawn *s);
/* Reads stderr until a line (ended by \n, or \r on a terminal) containing
 * text appears; false at the deadline or at EOF. */
bool h_wait_log(struct h_proc *p, const char *text, int timeout_ms);
/* The same, in what came after the first from bytes. */
bool h_wait_log_after(struct h_proc *p, size_t from, const char *text, int timeout_ms);
/* Waits for the exit; false at the deadline. Drains stderr meanwhile. */
bool h_wait_exit(struct h_proc *p, int timeout_ms);
/* Exit code of a process that exited normally, else 1000 + signal. */
int h_exit_code(const struct h_proc *p);
void h_kill(struct h_proc *p, int sig);
void h_proc_free(struct h_proc *p);
/* Path of the binaries under test. */
const char *h_p2sd(void);
const char *h_fetch(void);

/* ---- sockets ---- */
/* A listening TCP and a UDP socket on the same free port of 127.0.0.1. */
uint16_t h_tcp_udp_pair(int *tcp, int *udp);

/* ---- sd_notify ---- */
struct h_notify {
        int fd;
        char path[108];
        char env[128];                  /* "NOTIFY_SOCKET=path" */
        char *log;                      /* every datagram, separated by "\n--\n" */
        size_t log_len;
};
void h_notify_open(struct h_notify *n, const char *name);
void h_notify_close(struct h_notify *n);
/* Next datagram into buf (NUL-terminated); its length, or -1 at the deadline. */
int h_notify_recv(struct h_notify *n, char *buf, size_t len, int timeout_ms);
/* Receives until a datagram has a line starting with key (such as
 * "READY=1" or "STATUS=fetched "); copies it into buf. False at the deadline. */
bool h_notify_wait(struct h_notify *n, const char *key, char *buf, size_t len, int timeout_ms);
/* The value of the line starting with "KEY=" in a datagram, or NULL. */
const char *h_notify_field(const char *msg, const char *key, char *buf, size_t len);
/* The number in "KEY=N", or 0. */
unsigned long h_notify_uint(const char *msg, const char *key);
bool h_has_line(const char *msg, const char *prefix);
bool h_match(const char *text, const char *regex);

uint64_t h_now_ms(void);

/* ---- p2s-fetch members with their own NOTIFY_SOCKET ---- */
struct h_member {
        struct h_proc p;
        struct h_notify n;
        char out[512];
};
/* Starts p2s-fetch for name at 127.0.0.1:port into h_path(out), with extra
 * options (NULL-terminated, may be NULL) and NOTIFY_SOCKET h_path(out.notify). */
void h_member_start(struct h_member *m, uint16_t port, const char *name, const char *out,
                    const char *const *extra);
/* The same, with stderr on a pseudo-terminal when tty. */
void h_member_start_tty(struct h_member *m, uint16_t port, const char *name, const char *out,
                        const char *const *extra, bool tty);
/* Waits for READY=1 (joined the swarm). */
bool h_member_joined(struct h_member *m, int timeout_ms);
void h_member_free(struct h_member *m);

/* ---- p2sd ---- */
/* Starts p2sd with args (NULL-terminated) and NOTIFY_SOCKET n, plus env
 * ("NAME=VALUE", NULL-terminated, may be NULL); waits for READY=1 (the
 * message goes to ready when not NULL) and returns X_P2S_PORT. */
uint16_t h_p2sd_start(struct h_proc *d, struct h_notify *n, const char *const *args, const char *const *env,
                      char *ready, size_t readylen);
/* SIGTERM, then the exit within timeout_ms; returns the exit code. */
int h_p2sd_stop(struct h_proc *d, int timeout_ms);

/* ---- swarms ---- */
/* A swarm that cannot finish until the test lets it: with p2sd d run with
 * --cache 1 (no chunk is kept) and --min-clients n, members 0..n-1 join in
 * turn (p2sd logging each join) and member 1 is stopped (SIGSTOP) once
 * joined, before the last one joins; every member then needs chunks only
 * member 1 holds. SIGCONT it to let the swarm finish. The members run with
 * the options extra, member 0 with extra0 when not NULL. */
void h_stalled_swarm(struct h_proc *d, struct h_member *m, int n, uint16_t port, const char *name,
                     const char *tag, const char *const *extra, const char *const *extra0);
/* Every member exits 0 with a copy identical to src; frees them. */
void h_members_succeed(struct h_member *m, int n, const char *src);
/* One p2s-fetch of name into h_path(out); its exit code, its stderr in *err
 * (malloc'ed) when err is not NULL. */
int h_fetch_once(uint16_t port, const char *name, const char *out, char **err);
