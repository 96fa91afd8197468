/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"

#define READY_TIMEOUT_S 10.0
#define TAIL_BYTES      1500

/* The runner's per-TCase base directory (made before the tests fork, so the
 * unchecked teardown can remove what a failed test left) and the test's own. */
static char base_dir[64];
static char test_dir[128];
static struct h_proc procs[H_MAX_PROCS];
static unsigned nprocs, nnotify;

double h_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *env_or_die(const char *name)
{
        const char *v = getenv(name);
        ck_assert_msg(v && *v, "%s is not set: run the suite through meson test", name);
        return v;
}

/* ---- fixtures ------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        if (flag == FTW_DP)
                rmdir(path);
        else
                unlink(path);
        return 0;
}

static void rm_tree(const char *path)
{
        if (*path)
                nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

static bool keep_dirs(void)
{
        const char *k = getenv("P2S_IT_KEEP");
        return k && *k && strcmp(k, "0");
}

static void base_setup(void)
{
        snprintf(base_dir, sizeof(base_dir), "/tmp/p2s-it-XXXXXX");
        if (!mkdtemp(base_dir)) {
                fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
                abort();
        }
}

static void base_teardown(void)
{
        if (keep_dirs())
                fprintf(stderr, "P2S_IT_KEEP: leaving %s\n", base_dir);
        else
                rm_tree(base_dir);
        base_dir[0] = 0;
}

static void test_setup(void)
{
        snprintf(test_dir, sizeof(test_dir), "%s/t-XXXXXX", base_dir);
        ck_assert_msg(mkdtemp(test_dir), "mkdtemp %s: %s", test_dir, strerror(errno));
        ck_assert_msg(chdir(test_dir) == 0, "chdir %s: %s", test_dir, strerror(errno));
        nprocs = nnotify = 0;
        /* a client writing to a server that died must not kill the test */
        signal(SIGPIPE, SIG_IGN);
}

static void reap(struct h_proc *p, int status)
{
        p->reaped = true;
        p->t_end = h_now();
        p->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (p->pidfd >= 0) {
                close(p->pidfd);
                p->pidfd = -1;
        }
}

/* Kills (by PID, each one we started and have not reaped) and removes the dir. */
static void test_teardown(void)
{
        for (unsigned i = 0; i < nprocs; i++) {
                struct h_proc *p = &procs[i];
                if (p->reaped)
                        continue;
                kill(p->pid, SIGKILL);
                int st;
                while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
                        ;
                reap(p, st);
        }
        nprocs = 0;
        if (chdir("/") < 0)
                return;
        if (!keep_dirs())
                rm_tree(test_dir);
}

TCase *h_tcase(const char *name, double timeout_s)
{
        TCase *tc = tcase_create(name);
        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, test_setup, test_teardown);
        tcase_set_timeout(tc, timeout_s);
        return tc;
}

int h_run(Suite *s)
{
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_ENV);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}

/* ---- files ---------------------------------------------------------------- */

static void mkparents(const char *path)
{
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s", path);
        for (char *s = strchr(tmp + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                mkdir(tmp, 0755);
                *s = '/';
        }
}

void h_make_file(const char *path, uint64_t size, uint64_t seed)
{
        mkparents(path);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
        /* splitmix64: fast, deterministic, no pattern that a chunk size lines up with */
        static uint64_t block[8192];
        uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
        for (uint64_t done = 0; done < size;) {
                for (size_t i = 0; i < sizeof(block) / 8; i++) {
                        uint64_t z = (x += 0x9e3779b97f4a7c15ull);
                        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
                        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
                        block[i] = z ^ (z >> 31);
                }
                size_t n = size - done < sizeof(block) ? (size_t)(size - done) : sizeof(block);
                ck_assert_msg(write(fd, block, n) == (ssize_t)n, "write %s: %s", path, strerror(errno));
                done += n;
        }
        close(fd);
}

char *h_slurp(const char *path, size_t *len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        struct stat st;
        if (fstat(fd, &st) < 0) {
                close(fd);
                return NULL;
        }
        size_t cap = (size_t)st.st_size + 1, n = 0;
        char *b = malloc(cap);
        for (;;) {
                if (!b)
                        break;
                if (n + 1 >= cap) {
                        char *nb = realloc(b, cap *= 2);
                        if (!nb) {
                                free(b);
                                b = NULL;
                                break;
                        }
                        b = nb;
                }
                ssize_t r = read(fd, b + n, cap - n - 1);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                n += (size_t)r;
        }
        close(fd);
        if (b) {
                b[n] = 0;
                if (len)
                        *len = n;
        }
        return b;
}

void h_copy_file(const char *from, const char *to)
{
        size_t n;
        char *b = h_slurp(from, &n);
        ck_assert_msg(b, "read %s: %s", from, strerror(errno));
        int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_msg(fd >= 0 && write(fd, b, n) == (ssize_t)n, "write %s: %s", to, strerror(errno));
        close(fd);
        free(b);
}

bool h_exists(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0;
}

void h_assert_same(const char *expected, const char *copy)
{
        size_t ne, nc;
        char *e = h_slurp(expected, &ne);
        ck_assert_msg(e, "cannot read %s: %s", expected, strerror(errno));
        char *c = h_slurp(copy, &nc);
        ck_assert_msg(c, "cannot read the copy %s: %s", copy, strerror(errno));
        ck_assert_msg(ne == nc, "%s has %zu bytes, %s has %zu", copy, nc, expected, ne);
        if (memcmp(e, c, ne)) {
                size_t i = 0;
                while (e[i] == c[i])
                        i++;
                ck_abort_msg("%s differs from %s, first at byte %zu", copy, expected, i);
        }
        free(e);
        free(c);
}

void h_assert_fetched(const char *expected, const char *copy)
{
        h_assert_same(expected, copy);
        char part[PATH_MAX];
        snprintf(part, sizeof(part), "%s.part", copy);
        ck_assert_msg(!h_exists(part), "%s left behind after a successful fetch", part);
}

/* ---- processes ------------------------------------------------------------ */

static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
        return (int)syscall(SYS_pidfd_open, pid, 0);
#else
        (void)pid;
        errno = ENOSYS;
        return -1;
#endif
}

struct h_proc *h_spawn(const char *name, const char *const argv[], const char *notify)
{
        ck_assert_msg(nprocs < H_MAX_PROCS, "too many processes for one test");
        struct h_proc *p = &procs[nprocs];
        *p = (struct h_proc){ .pidfd = -1 };
        snprintf(p->name, sizeof(p->name), "%s", name);
        snprintf(p->log, sizeof(p->log), "%s.log", name);
        int logfd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
        int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_msg(logfd >= 0 && nullfd >= 0, "open %s: %s", p->log, strerror(errno));
        pid_t parent = getpid();
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
                /* dies with the test, however the test ends */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                dup2(nullfd, STDIN_FILENO);
                dup2(logfd, STDOUT_FILENO);
                dup2(logfd, STDERR_FILENO);
                if (notify)
                        setenv("NOTIFY_SOCKET", notify, 1);
                else
                        unsetenv("NOTIFY_SOCKET");
                unsetenv("LISTEN_FDS");
                unsetenv("LISTEN_PID");
                unsetenv("WATCHDOG_USEC");
                sigset_t all;
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGPIPE, SIG_DFL);
                execv(argv[0], (char *const *)argv);
                dprintf(STDERR_FILENO, "harness: exec %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        close(logfd);
        close(nullfd);
        p->pid = pid;
        p->pidfd = pidfd_open_(pid);
        p->t_start = h_now();
        nprocs++;
        return p;
}

static int ms_left(double deadline)
{
        double left = deadline - h_now();
        return left <= 0 ? 0 : (int)(left * 1000) + 1;
}

/* Reaps p if it has exited; true then. */
static bool try_reap(struct h_proc *p)
{
        if (p->reaped)
                return true;
        int st;
        pid_t r;
        while ((r = waitpid(p->pid, &st, WNOHANG)) < 0 && errno == EINTR)
                ;
        ck_assert_msg(r >= 0, "waitpid %s: %s", p->name, strerror(errno));
        if (r == 0)
                return false;
        reap(p, st);
        return true;
}

/* Blocks until p exits or the deadline; true if it exited. */
static bool wait_until(struct h_proc *p, double deadline)
{
        while (!try_reap(p)) {
                int ms = ms_left(deadline);
                if (ms == 0)
                        return false;
                if (p->pidfd >= 0) {
                        struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
                        poll(&pfd, 1, ms);
                } else {
                        /* no pidfd: short polls of waitpid */
                        nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
                }
        }
        return true;
}

int h_wait(struct h_proc *p, double timeout_s)
{
        ck_assert_msg(wait_until(p, h_now() + timeout_s), "%s did not exit within %.1f s; its log ends:\n%s",
                      p->name, timeout_s, h_tail(p));
        return p->code;
}

void h_expect_exit(struct h_proc **ps, size_t n, double timeout_s, int code)
{
        double deadline = h_now() + timeout_s;
        for (size_t i = 0; i < n; i++) {
                ck_assert_msg(wait_until(ps[i], deadline), "%s did not exit within %.1f s; its log ends:\n%s",
                              ps[i]->name, timeout_s, h_tail(ps[i]));
                ck_assert_msg(ps[i]->code == code, "%s exited %d, expected %d; its log ends:\n%s",
                              ps[i]->name, ps[i]->code, code, h_tail(ps[i]));
        }
}

void h_signal(struct h_proc *p, int sig)
{
        ck_assert_msg(!p->reaped, "%s already exited (%d); its log ends:\n%s", p->name, p->code, h_tail(p));
        ck_assert_msg(kill(p->pid, sig) == 0, "kill %s: %s", p->name, strerror(errno));
}

void h_stop_p2sd(struct h_proc *d, double timeout_s)
{
        h_signal(d, SIGTERM);
        int code = h_wait(d, timeout_s);
        ck_assert_msg(code == 0, "p2sd exited %d after SIGTERM; its log ends:\n%s", code, h_tail(d));
}

struct h_proc *h_run_prog(const char *name, const char *const argv[], double timeout_s)
{
        struct h_proc *p = h_spawn(name, argv, NULL);
        h_wait(p, timeout_s);
        return p;
}

static int notify_socket(char *path, size_t len)
{
        snprintf(path, len, "%s/notify-%u.sock", test_dir, nnotify++);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        ck_assert_msg(strlen(path) < sizeof(sa.sun_path), "notify socket path too long: %s", path);
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
        ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s: %s", path, strerror(errno));
        return fd;
}

struct h_proc *h_p2sd_v(unsigned *port, const char *const args[])
{
        const char *argv[64] = { env_or_die("P2SD"), "--listen", "127.0.0.1", "--port", "0" };
        size_t n = 5;
        for (size_t i = 0; args && args[i]; i++) {
                ck_assert(n < 63);
                argv[n++] = args[i];
        }
        argv[n] = NULL;
        char path[PATH_MAX];
        int nfd = notify_socket(path, sizeof(path));
        struct h_proc *d = h_spawn("p2sd", argv, path);
        /* READY=1 is the event; p2sd dying instead is a failure with its log */
        double deadline = h_now() + READY_TIMEOUT_S;
        long got = -1;
        while (got < 0) {
                struct pollfd pfd[2] = { { .fd = nfd, .events = POLLIN }, { .fd = d->pidfd, .events = POLLIN } };
                int ms = ms_left(deadline);
                ck_assert_msg(ms > 0, "p2sd sent no READY=1 within %.0f s; its log ends:\n%s", READY_TIMEOUT_S,
                              h_tail(d));
                poll(pfd, d->pidfd >= 0 ? 2 : 1, d->pidfd >= 0 ? ms : (ms < 20 ? ms : 20));
                char msg[1024];
                ssize_t r;
                while ((r = recv(nfd, msg, sizeof(msg) - 1, 0)) > 0) {
                        msg[r] = 0;
                        if (!strstr(msg, "READY=1"))
                                continue;
                        const char *pp = strstr(msg, "X_P2S_PORT=");
                        ck_assert_msg(pp, "READY=1 without X_P2S_PORT: '%s'", msg);
                        char *end;
                        got = strtol(pp + 11, &end, 10);
                        ck_assert_msg(got > 0 && got < 65536 && (*end == '\n' || *end == 0),
                                      "bad X_P2S_PORT in '%s'", msg);
                        ck_assert_msg(strstr(msg, "STATUS="), "READY=1 without STATUS=: '%s'", msg);
                        break;
                }
                if (got < 0 && try_reap(d))
                        ck_abort_msg("p2sd exited %d before READY=1; its log ends:\n%s", d->code, h_tail(d));
        }
        /* p2sd keeps sending STATUS=; a full queue would block it, so go away */
        close(nfd);
        unlink(path);
        *port = (unsigned)got;
        return d;
}

struct h_proc *h_p2sd(unsigned *port, ...)
{
        const char *args[48];
        size_t n = 0;
        va_list ap;
        va_start(ap, port);
        const char *a;
        while ((a = va_arg(ap, const char *))) {
                ck_assert(n < 47);
                args[n++] = a;
        }
        va_end(ap);
        args[n] = NULL;
        return h_p2sd_v(port, args);
}

struct h_proc *h_fetch_v(unsigned port, const char *name, const char *out, const char *const args[])
{
        char hostport[32], pname[32];
        snprintf(hostport, sizeof(hostport), "127.0.0.1:%u", port);
        snprintf(pname, sizeof(pname), "fetch-%u", nprocs);
        const char *argv[64] = { env_or_die("P2S_FETCH") };
        size_t n = 1;
        for (size_t i = 0; args && args[i]; i++) {
                ck_assert(n < 58);
                argv[n++] = args[i];
        }
        argv[n++] = hostport;
        argv[n++] = name;
        if (out) {
                argv[n++] = "-o";
                argv[n++] = out;
        }
        argv[n] = NULL;
        return h_spawn(pname, argv, NULL);
}

struct h_proc *h_fetch(unsigned port, const char *name, const char *out, ...)
{
        const char *args[48];
        size_t n = 0;
        va_list ap;
        va_start(ap, out);
        const char *a;
        while ((a = va_arg(ap, const char *))) {
                ck_assert(n < 47);
                args[n++] = a;
        }
        va_end(ap);
        args[n] = NULL;
        return h_fetch_v(port, name, out, args);
}

/* ---- logs ----------------------------------------------------------------- */

bool h_log_has(struct h_proc *p, const char *needle)
{
        char *b = h_slurp(p->log, NULL);
        bool r = b && strstr(b, needle);
        free(b);
        return r;
}

unsigned h_log_count(struct h_proc *p, const char *needle)
{
        char *b = h_slurp(p->log, NULL);
        unsigned n = 0;
        for (const char *s = b; s && (s = strstr(s, needle)); s += strlen(needle))
                n++;
        free(b);
        return n;
}

const char *h_tail(struct h_proc *p)
{
        static char out[TAIL_BYTES + 64];
        size_t n;
        char *b = h_slurp(p->log, &n);
        if (!b) {
                snprintf(out, sizeof(out), "(no log %s)", p->log);
                return out;
        }
        const char *s = n > TAIL_BYTES ? b + n - TAIL_BYTES : b;
        snprintf(out, sizeof(out), "%s%s", s == b ? "" : "...", s);
        free(b);
        return out;
}

void h_log_wait(struct h_proc *p, const char *needle, double timeout_s)
{
        /* inotify tells when the log grows; the pidfd when the writer is gone */
        int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        ck_assert_msg(in >= 0, "inotify_init1: %s", strerror(errno));
        ck_assert_msg(inotify_add_watch(in, p->log, IN_MODIFY) >= 0, "inotify_add_watch %s: %s", p->log,
                      strerror(errno));
        double deadline = h_now() + timeout_s;
        while (!h_log_has(p, needle)) {
                if (p->reaped || (p->pidfd < 0 && try_reap(p))) {
                        close(in);
                        ck_abort_msg("%s exited (%d) before logging '%s'; its log ends:\n%s", p->name, p->code,
                                     needle, h_tail(p));
                }
                int ms = ms_left(deadline);
                if (ms == 0) {
                        close(in);
                        ck_abort_msg("%s did not log '%s' within %.1f s; its log ends:\n%s", p->name, needle,
                                     timeout_s, h_tail(p));
                }
                struct pollfd pfd[2] = { { .fd = in, .events = POLLIN }, { .fd = p->pidfd, .events = POLLIN } };
                int np = p->pidfd >= 0 ? 2 : 1;
                if (poll(pfd, np, np == 2 ? ms : (ms < 20 ? ms : 20)) > 0) {
                        char ev[4096];
                        while (read(in, ev, sizeof(ev)) > 0)
                                ;
                        if (np == 2 && (pfd[1].revents & POLLIN) && !h_log_has(p, needle))
                                try_reap(p);
                }
        }
        close(in);
}

bool h_swarm_stats(struct h_proc *d, const char *name, struct h_stats *st)
{
        char *b = h_slurp(d->log, NULL);
        char key[300];
        snprintf(key, sizeof(key), "'%s' complete: ", name);
        const char *s = b ? strstr(b, key) : NULL;
        bool ok = s && sscanf(s + strlen(key), "%llu requests, %llu cache hits, %llu uploads, %llu duplicate",
                              &st->requests, &st->cache_hits, &st->uploads, &st->dup_uploads) == 4;
        free(b);
        return ok;
}

unsigned h_distributed_chunks(struct h_proc *d, uint64_t size)
{
        char *b = h_slurp(d->log, NULL);
        char key[64];
        snprintf(key, sizeof(key), "distributed %llu bytes in ", (unsigned long long)size);
        const char *s = b ? strstr(b, key) : NULL;
        unsigned n = 0;
        if (!s || sscanf(s + strlen(key), "%u chunks", &n) != 1)
                n = 0;
        free(b);
        return n;
}

/* ---- swarms --------------------------------------------------------------- */

void h_start_clients(struct h_proc **ps, unsigned n, unsigned port, const char *name, const char *prefix,
                     const char *const args[])
{
        for (unsigned i = 0; i < n; i++) {
                char out[PATH_MAX];
                snprintf(out, sizeof(out), "%s-%u.bin", prefix, i);
                ps[i] = h_fetch_v(port, name, out, args);
        }
}

void h_expect_copies(struct h_proc **ps, unsigned n, const char *expected, const char *prefix, double timeout_s)
{
        h_expect_exit(ps, n, timeout_s, 0);
        for (unsigned i = 0; i < n; i++) {
                char out[PATH_MAX];
                snprintf(out, sizeof(out), "%s-%u.bin", prefix, i);
                h_assert_fetched(expected, out);
        }
}

struct h_proc *h_swarm(const char *file, unsigned n, const char *const dargs[], const char *const fargs[],
                       double timeout_s)
{
        const char *args[48];
        char nbuf[16];
        size_t k = 0;
        for (size_t i = 0; dargs && dargs[i]; i++) {
                ck_assert(k < 40);
                args[k++] = dargs[i];
        }
        snprintf(nbuf, sizeof(nbuf), "%u", n);
        args[k++] = "--min-clients";
        args[k++] = nbuf;
        args[k++] = "--gather-timeout";
        args[k++] = "10";
        args[k++] = file;
        args[k] = NULL;
        unsigned port;
        struct h_proc *d = h_p2sd_v(&port, args);
        struct h_proc *ps[H_MAX_PROCS];
        ck_assert(n < H_MAX_PROCS - 1);
        h_start_clients(ps, n, port, file, "out", fargs);
        h_expect_copies(ps, n, file, "out", timeout_s);
        h_stop_p2sd(d, 5);
        return d;
}

struct h_proc *h_stalled_member(struct h_proc *d, unsigned port, const char *name, const char *out,
                                const char *const fargs[])
{
        struct h_proc *v = h_fetch_v(port, name, out, fargs);
        h_log_wait(d, "(1 members)", 10);
        h_signal(v, SIGSTOP);
        return v;
}

bool h_wait_for(struct h_proc *p, double timeout_s)
{
        return wait_until(p, h_now() + timeout_s);
}
