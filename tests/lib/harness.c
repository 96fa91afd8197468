/* SPDX-License-Identifier: MIT */
/* The process harness (see harness.h): fixtures, files, children and their
 * logs, notify sockets, and the one wait loop every wait goes through. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <regex.h>
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
#include "proto/wire.h"
#include "util/exec.h"

#define READY_TIMEOUT_S 10.0
#define TAIL_BYTES      1500

/* The runner's per-TCase base directory (made before the tests fork, so the
 * unchecked teardown can remove what a failed test left) and the test's own. */

static char base_dir[PATH_MAX];
static char test_dir[PATH_MAX];
static struct h_proc procs[H_MAX_PROCS];
static bool proc_used[H_MAX_PROCS];
static unsigned nprocs;
static struct h_notify notifies[H_MAX_NOTIFY];
static unsigned nnotify;
/* one inotify for the test: a watch on every log */
static int log_watch = -1;

double h_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int ms_left(double deadline)
{
        double left = deadline - h_now();
        return left <= 0 ? 0 : (int)(left * 1000) + 1;
}

static const char *env_or_die(const char *name)
{
        const char *v = getenv(name);
        ck_assert_msg(v && *v, "%s is not set: run the suite through meson test", name);
        return v;
}

const char *h_bin_p2sd(void)
{
        return env_or_die("P2SD");
}

const char *h_bin_fetch(void)
{
        return env_or_die("P2S_FETCH");
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
        const char *k = getenv("P2S_TEST_KEEP");
        return k && *k && strcmp(k, "0");
}

static void base_setup(void)
{
        /* short: notify socket paths must fit in sun_path */
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp || strlen(tmp) > 40)
                tmp = "/tmp";
        snprintf(base_dir, sizeof(base_dir), "%s/p2s-test-XXXXXX", tmp);
        if (!mkdtemp(base_dir)) {
                fprintf(stderr, "mkdtemp %s: %s\n", base_dir, strerror(errno));
                abort();
        }
}

static void base_teardown(void)
{
        if (keep_dirs())
                fprintf(stderr, "P2S_TEST_KEEP: leaving %s\n", base_dir);
        else
                rm_tree(base_dir);
        base_dir[0] = 0;
}

static void test_setup(void)
{
        ck_assert(snprintf(test_dir, sizeof(test_dir), "%s/t-XXXXXX", base_dir) < (int)sizeof(test_dir));
        ck_assert_msg(mkdtemp(test_dir), "mkdtemp %s: %s", test_dir, strerror(errno));
        ck_assert_msg(chdir(test_dir) == 0, "chdir %s: %s", test_dir, strerror(errno));
        nprocs = nnotify = 0;
        log_watch = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        ck_assert_msg(log_watch >= 0, "inotify_init1: %s", strerror(errno));
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

static void kill_and_reap(struct h_proc *p)
{
        if (p->reaped)
                return;
        kill(p->pid, SIGKILL);
        int st;
        while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
                ;
        reap(p, st);
}

/* Kills (by PID, each one we started and have not reaped), closes and removes the dir. */
static void test_teardown(void)
{
        for (unsigned i = 0; i < nprocs; i++)
                if (proc_used[i])
                        h_proc_free(&procs[i]);
        nprocs = 0;
        for (unsigned i = 0; i < nnotify; i++)
                h_notify_close(&notifies[i]);
        nnotify = 0;
        if (log_watch >= 0)
                close(log_watch);
        log_watch = -1;
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

const char *h_dir(void)
{
        return test_dir;
}

const char *h_path(const char *fmt, ...)
{
        static char ring[16][PATH_MAX];
        static unsigned next;
        char name[PATH_MAX / 2];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(name, sizeof(name), fmt, ap);
        va_end(ap);
        char *p = ring[next++ % 16];
        ck_assert_msg(snprintf(p, PATH_MAX, "%s/%s", test_dir, name) < PATH_MAX, "path too long: %s", name);
        return p;
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

void h_write_text(const char *path, const char *text)
{
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s.new", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_msg(fd >= 0, "create %s: %s", tmp, strerror(errno));
        size_t n = strlen(text);
        ck_assert_msg(write(fd, text, n) == (ssize_t)n, "write %s: %s", tmp, strerror(errno));
        close(fd);
        ck_assert_msg(rename(tmp, path) == 0, "rename %s: %s", tmp, strerror(errno));
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

bool h_same_file(const char *a, const char *b)
{
        size_t na, nb;
        char *ba = h_slurp(a, &na), *bb = h_slurp(b, &nb);
        bool same = ba && bb && na == nb && !memcmp(ba, bb, na);
        free(ba);
        free(bb);
        return same;
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

/* ---- the wait loop -------------------------------------------------------- */

/* Copies what a terminal has into its process's log: nobody else reads the
 * master, and a full terminal would block the child. */
static void pump_tty(struct h_proc *p)
{
        if (p->tty < 0)
                return;
        int fd = open(p->log, O_WRONLY | O_APPEND | O_CLOEXEC);
        for (;;) {
                char buf[4096];
                ssize_t r = read(p->tty, buf, sizeof(buf));
                if (r > 0) {
                        if (fd >= 0 && write(fd, buf, (size_t)r) != r)
                                break;
                        continue;
                }
                if (r < 0 && errno == EINTR)
                        continue;
                /* a master reads EIO once the last slave is closed */
                if (r == 0 || errno != EAGAIN) {
                        close(p->tty);
                        p->tty = -1;
                }
                break;
        }
        if (fd >= 0)
                close(fd);
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
        /* what the terminal still holds is part of the log */
        pump_tty(p);
        reap(p, st);
        return true;
}

static void pump_all(void)
{
        for (unsigned i = 0; i < nprocs; i++) {
                if (!proc_used[i])
                        continue;
                pump_tty(&procs[i]);
                try_reap(&procs[i]);
        }
}

/* Every wait: until done(arg) or the deadline (true if done). Wakes on a
 * log growing, a child exiting, a terminal to drain and on extra_fd; the
 * condition is tested at least once, also with no time left. */
static bool wait_event(double deadline, bool (*done)(void *arg), void *arg, int extra_fd)
{
        for (;;) {
                pump_all();
                if (done(arg))
                        return true;
                int ms = ms_left(deadline);
                if (ms == 0)
                        return false;
                struct pollfd pfd[2 * H_MAX_PROCS + 2];
                nfds_t n = 0;
                bool blind = false;
                if (log_watch >= 0)
                        pfd[n++] = (struct pollfd){ .fd = log_watch, .events = POLLIN };
                if (extra_fd >= 0)
                        pfd[n++] = (struct pollfd){ .fd = extra_fd, .events = POLLIN };
                for (unsigned i = 0; i < nprocs; i++) {
                        struct h_proc *p = &procs[i];
                        if (!proc_used[i] || p->reaped)
                                continue;
                        if (p->pidfd >= 0)
                                pfd[n++] = (struct pollfd){ .fd = p->pidfd, .events = POLLIN };
                        else
                                blind = true;
                        if (p->tty >= 0)
                                pfd[n++] = (struct pollfd){ .fd = p->tty, .events = POLLIN };
                }
                /* without pidfd (old kernels) look again every 10 ms */
                poll(pfd, n, blind && ms > 10 ? 10 : ms);
                char ev[4096];
                while (log_watch >= 0 && read(log_watch, ev, sizeof(ev)) > 0)
                        ;
        }
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

static void child(const struct h_spawn *s, int logfd, int errfd, pid_t parent)
{
        /* dies with the test, however the test ends */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(127);
        int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        dup2(nullfd, STDIN_FILENO);
        dup2(logfd, STDOUT_FILENO);
        dup2(errfd, STDERR_FILENO);
        /* move the fds out of the way first: one may already sit at 3 or 4 */
        int high[16];
        for (int i = 0; i < s->nfds; i++)
                high[i] = fcntl(s->fds[i], F_DUPFD_CLOEXEC, 100);
        for (int i = 0; i < s->nfds; i++)
                dup2(high[i], 3 + i);   /* dup2 clears close-on-exec */
        static const char *const clean[] = { "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                                             "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM" };
        for (size_t i = 0; i < sizeof(clean) / sizeof(clean[0]); i++)
                unsetenv(clean[i]);
        if (s->notify)
                setenv("NOTIFY_SOCKET", s->notify, 1);
        for (const char *const *e = s->env; e && *e; e++)
                putenv(strdup(*e));   /* putenv keeps the pointer: a copy it may own */
        if (s->nfds) {
                char v[32];
                snprintf(v, sizeof(v), "%d", s->nfds);
                setenv("LISTEN_FDS", v, 1);
                snprintf(v, sizeof(v), "%d", s->wrong_listen_pid ? (int)parent : (int)getpid());
                setenv("LISTEN_PID", v, 1);
                if (s->fdnames)
                        setenv("LISTEN_FDNAMES", s->fdnames, 1);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        exec_argv(s->argv);
        dprintf(STDERR_FILENO, "harness: exec %s: %s\n", s->argv[0], strerror(errno));
        _exit(127);
}

struct h_proc *h_start(const struct h_spawn *s)
{
        ck_assert_msg(nprocs < H_MAX_PROCS, "too many processes for one test");
        ck_assert_msg(s->nfds >= 0 && s->nfds <= 16, "too many fds to pass");
        unsigned idx = nprocs;
        struct h_proc *p = &procs[idx];
        *p = (struct h_proc){ .pidfd = -1, .code = -1, .tty = -1 };
        if (s->name) {
                snprintf(p->name, sizeof(p->name), "%s", s->name);
        } else {
                const char *b = strrchr(s->argv[0], '/');
                snprintf(p->name, sizeof(p->name), "%s-%u", b ? b + 1 : s->argv[0], idx);
        }
        /* numbered: two processes of one name keep two logs */
        ck_assert(snprintf(p->log, sizeof(p->log), "%s/%02u-%s.log", test_dir, idx, p->name) < (int)sizeof(p->log));
        int logfd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
        ck_assert_msg(logfd >= 0, "open %s: %s", p->log, strerror(errno));
        ck_assert_msg(inotify_add_watch(log_watch, p->log, IN_MODIFY) >= 0, "inotify_add_watch %s: %s", p->log,
                      strerror(errno));
        int errfd = logfd;
        if (s->tty) {
                p->tty = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
                ck_assert_msg(p->tty >= 0, "posix_openpt: %s", strerror(errno));
                ck_assert(grantpt(p->tty) == 0 && unlockpt(p->tty) == 0);
                errfd = open(ptsname(p->tty), O_RDWR | O_NOCTTY | O_CLOEXEC);
                ck_assert_msg(errfd >= 0, "open %s: %s", ptsname(p->tty), strerror(errno));
                fcntl(p->tty, F_SETFL, O_NONBLOCK);
        }
        pid_t parent = getpid();
        fflush(NULL);
        /* before the fork: under load the child may run for a while before
         * the parent is scheduled again, and a child's own clock must never
         * seem to start before t_start */
        p->t_start = h_now();
        pid_t pid = fork();
        ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0)
                child(s, logfd, errfd, parent);
        close(logfd);
        if (errfd != logfd)
                close(errfd);
        p->pid = pid;
        p->pidfd = pidfd_open_(pid);
        proc_used[idx] = true;
        nprocs++;
        return p;
}

struct h_proc *h_spawn(const char *name, const char *const argv[], const char *notify)
{
        return h_start(&(struct h_spawn){ .name = name, .argv = argv, .notify = notify });
}

struct h_proc *h_run_prog(const char *name, const char *const argv[], double timeout_s)
{
        struct h_proc *p = h_spawn(name, argv, NULL);
        h_wait(p, timeout_s);
        return p;
}

static bool is_reaped(void *arg)
{
        return ((struct h_proc *)arg)->reaped;
}

bool h_wait_for(struct h_proc *p, double timeout_s)
{
        return wait_event(h_now() + timeout_s, is_reaped, p, -1);
}

int h_wait(struct h_proc *p, double timeout_s)
{
        ck_assert_msg(h_wait_for(p, timeout_s), "%s did not exit within %.1f s; its log ends:\n%s", p->name,
                      timeout_s, h_tail(p));
        return p->code;
}

void h_expect_exit(struct h_proc **ps, size_t n, double timeout_s, int code)
{
        double deadline = h_now() + timeout_s;
        for (size_t i = 0; i < n; i++) {
                ck_assert_msg(wait_event(deadline, is_reaped, ps[i], -1),
                              "%s did not exit within %.1f s; its log ends:\n%s", ps[i]->name, timeout_s,
                              h_tail(ps[i]));
                ck_assert_msg(ps[i]->code == code, "%s exited %d, expected %d; its log ends:\n%s", ps[i]->name,
                              ps[i]->code, code, h_tail(ps[i]));
        }
}

void h_signal(struct h_proc *p, int sig)
{
        ck_assert_msg(!p->reaped, "%s already exited (%d); its log ends:\n%s", p->name, p->code, h_tail(p));
        ck_assert_msg(kill(p->pid, sig) == 0, "kill %s: %s", p->name, strerror(errno));
}

struct h_proc *h_proc_free(struct h_proc *p)
{
        if (!p)
                return NULL;
        unsigned idx = (unsigned)(p - procs);
        if (idx >= H_MAX_PROCS || !proc_used[idx])
                return NULL;
        kill_and_reap(p);
        if (p->tty >= 0)
                close(p->tty);
        p->tty = -1;
        free(p->text);
        p->text = NULL;
        proc_used[idx] = false;
        return NULL;
}

/* ---- logs ----------------------------------------------------------------- */

const char *h_log(struct h_proc *p)
{
        pump_tty(p);
        free(p->text);
        p->text = h_slurp(p->log, NULL);
        if (!p->text)
                p->text = calloc(1, 1);
        ck_assert(p->text);
        return p->text;
}

size_t h_log_len(struct h_proc *p)
{
        return strlen(h_log(p));
}

/* The log's whole lines (all of it once p is gone), NUL-terminated in p->text. */
static const char *log_lines(struct h_proc *p)
{
        h_log(p);
        if (!p->reaped) {
                char *nl = strrchr(p->text, '\n'), *cr = strrchr(p->text, '\r');
                if (cr > nl)
                        nl = cr;
                if (nl)
                        nl[1] = 0;
                else
                        p->text[0] = 0;
        }
        return p->text;
}

bool h_log_has(struct h_proc *p, const char *needle)
{
        return strstr(log_lines(p), needle) != NULL;
}

unsigned h_log_count(struct h_proc *p, const char *needle)
{
        unsigned n = 0;
        for (const char *s = log_lines(p); (s = strstr(s, needle)); s += strlen(needle))
                n++;
        return n;
}

const char *h_tail(struct h_proc *p)
{
        static char out[TAIL_BYTES + 64];
        const char *b = h_log(p);
        size_t n = strlen(b);
        const char *s = n > TAIL_BYTES ? b + n - TAIL_BYTES : b;
        snprintf(out, sizeof(out), "%s%s", s == b ? "" : "...", s);
        return out;
}

struct log_cond {
        struct h_proc *p;
        size_t from;
        const char *needle;
        bool found;
};

static bool log_done(void *arg)
{
        struct log_cond *c = arg;
        bool gone = c->p->reaped;
        const char *t = log_lines(c->p);
        c->found = strlen(t) > c->from && strstr(t + c->from, c->needle);
        /* gone and all of its log read: it will not come */
        return c->found || gone;
}

bool h_log_wait_after(struct h_proc *p, size_t from, const char *needle, double timeout_s)
{
        struct log_cond c = { .p = p, .from = from, .needle = needle };
        wait_event(h_now() + timeout_s, log_done, &c, -1);
        return c.found;
}

bool h_log_wait_for(struct h_proc *p, const char *needle, double timeout_s)
{
        return h_log_wait_after(p, 0, needle, timeout_s);
}

void h_log_wait(struct h_proc *p, const char *needle, double timeout_s)
{
        if (h_log_wait_for(p, needle, timeout_s))
                return;
        if (p->reaped)
                ck_abort_msg("%s exited (%d) before logging '%s'; its log ends:\n%s", p->name, p->code, needle,
                             h_tail(p));
        ck_abort_msg("%s did not log '%s' within %.1f s; its log ends:\n%s", p->name, needle, timeout_s,
                     h_tail(p));
}

bool h_match(const char *text, const char *re)
{
        regex_t r;
        ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE), 0);
        bool m = regexec(&r, text, 0, NULL, 0) == 0;
        regfree(&r);
        return m;
}

/* ---- sockets -------------------------------------------------------------- */

uint16_t h_tcp_udp_pair(int *tcp, int *udp)
{
        for (int attempt = 0; attempt < 50; attempt++) {
                struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                socklen_t sl = sizeof(sa);
                int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                ck_assert(t >= 0 && u >= 0);
                ck_assert_int_eq(bind(t, (struct sockaddr *)&sa, sizeof(sa)), 0);
                ck_assert_int_eq(listen(t, 128), 0);
                ck_assert_int_eq(getsockname(t, (struct sockaddr *)&sa, &sl), 0);
                if (bind(u, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                        *tcp = t;
                        *udp = u;
                        return ntohs(sa.sin_port);
                }
                close(t);
                close(u);       /* that UDP port is taken: another one */
        }
        ck_abort_msg("no free port for TCP and UDP together");
        return 0;
}

/* ---- sd_notify ------------------------------------------------------------ */

struct h_notify *h_notify_open(const char *name)
{
        ck_assert_msg(nnotify < H_MAX_NOTIFY, "too many notify sockets for one test");
        struct h_notify *n = &notifies[nnotify++];
        *n = (struct h_notify){ .fd = -1 };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int len = snprintf(n->path, sizeof(n->path), "%s/%s", test_dir, name);
        ck_assert_msg(len > 0 && (size_t)len < sizeof(sa.sun_path), "notify socket path too long: %s/%s", test_dir,
                      name);
        memcpy(sa.sun_path, n->path, (size_t)len + 1);
        n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ck_assert_msg(n->fd >= 0, "socket: %s", strerror(errno));
        unlink(n->path);
        ck_assert_msg(bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s: %s", n->path,
                      strerror(errno));
        /* both in *n: copied piecewise, the compiler cannot tell they never overlap */
        static const char key[] = "NOTIFY_SOCKET=";
        memcpy(n->env, key, sizeof(key) - 1);
        memcpy(n->env + sizeof(key) - 1, n->path, (size_t)len + 1);
        n->log = calloc(1, 1);
        return n;
}

struct h_notify *h_notify_close(struct h_notify *n)
{
        if (!n || n->fd < 0)
                return NULL;
        close(n->fd);
        n->fd = -1;
        unlink(n->path);
        free(n->log);
        n->log = NULL;
        n->log_len = 0;
        return NULL;
}

struct notify_cond {
        struct h_notify *n;
        char *buf;
        size_t len;
        int got;
};

/* Takes one datagram if there is one. */
static bool notify_take(void *arg)
{
        struct notify_cond *c = arg;
        ssize_t r;
        while ((r = recv(c->n->fd, c->buf, c->len - 1, 0)) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return false;
        c->buf[r] = 0;
        size_t add = (size_t)r + 4;
        char *log = realloc(c->n->log, c->n->log_len + add + 1);
        ck_assert(log);
        memcpy(log + c->n->log_len, c->buf, (size_t)r);
        memcpy(log + c->n->log_len + r, "\n--\n", 5);
        c->n->log = log;
        c->n->log_len += add;
        c->got = (int)r;
        return true;
}

int h_notify_recv(struct h_notify *n, char *buf, size_t len, double timeout_s)
{
        ck_assert_msg(n->fd >= 0, "notify socket %s is closed", n->path);
        struct notify_cond c = { .n = n, .buf = buf, .len = len, .got = -1 };
        return wait_event(h_now() + timeout_s, notify_take, &c, n->fd) ? c.got : -1;
}

bool h_has_line(const char *msg, const char *prefix)
{
        size_t pl = strlen(prefix);
        for (const char *l = msg; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (!strncmp(l, prefix, pl))
                        return true;
        return false;
}

bool h_notify_wait(struct h_notify *n, const char *key, char *buf, size_t len, double timeout_s)
{
        double deadline = h_now() + timeout_s;
        for (;;) {
                /* with no time left, still take what has already arrived */
                double left = deadline - h_now();
                if (h_notify_recv(n, buf, len, left > 0 ? left : 0) < 0)
                        return false;
                if (h_has_line(buf, key))
                        return true;
        }
}

const char *h_notify_field(const char *msg, const char *key, char *buf, size_t len)
{
        size_t kl = strlen(key);
        for (const char *l = msg; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                if (strncmp(l, key, kl) || l[kl] != '=')
                        continue;
                const char *v = l + kl + 1, *e = strchr(v, '\n');
                size_t vl = e ? (size_t)(e - v) : strlen(v);
                if (vl >= len)
                        vl = len - 1;
                memcpy(buf, v, vl);
                buf[vl] = 0;
                return buf;
        }
        return NULL;
}

unsigned long h_notify_uint(const char *msg, const char *key)
{
        char v[32];
        return h_notify_field(msg, key, v, sizeof(v)) ? strtoul(v, NULL, 10) : 0;
}

/* ---- p2sd ----------------------------------------------------------------- */

struct ready_cond {
        struct notify_cond nc;
        struct h_proc *d;
        bool ready;
};

static bool ready_done(void *arg)
{
        struct ready_cond *c = arg;
        while (notify_take(&c->nc))
                if (h_has_line(c->nc.buf, "READY=1")) {
                        c->ready = true;
                        return true;
                }
        return c->d->reaped;
}

struct h_proc *h_p2sd_start(struct h_notify *n, const char *const args[], const char *const env[],
                            unsigned *port, char *ready, size_t readylen)
{
        struct h_notify *own = n ? NULL : h_notify_open("p2sd-ready.sock");
        if (own)
                n = own;
        const char *argv[64] = { h_bin_p2sd() };
        size_t a = 1;
        for (const char *const *p = args; p && *p; p++) {
                ck_assert(a < 63);
                argv[a++] = *p;
        }
        argv[a] = NULL;
        struct h_proc *d = h_start(&(struct h_spawn){ .name = "p2sd", .argv = argv, .env = env,
                                                      .notify = n->path });
        /* READY=1 is the event; p2sd dying instead is a failure with its log */
        char msg[2048];
        struct ready_cond c = { .nc = { .n = n, .buf = msg, .len = sizeof(msg) }, .d = d };
        wait_event(h_now() + READY_TIMEOUT_S, ready_done, &c, n->fd);
        if (!c.ready && d->reaped)
                ck_abort_msg("p2sd exited %d before READY=1; its log ends:\n%s", d->code, h_tail(d));
        ck_assert_msg(c.ready, "p2sd sent no READY=1 within %.0f s; its log ends:\n%s", READY_TIMEOUT_S, h_tail(d));
        const char *pp = strstr(msg, "X_P2S_PORT=");
        ck_assert_msg(pp, "READY=1 without X_P2S_PORT: '%s'", msg);
        char *end;
        long got = strtol(pp + 11, &end, 10);
        ck_assert_msg(got > 0 && got < 65536 && (*end == '\n' || *end == 0), "bad X_P2S_PORT in '%s'", msg);
        ck_assert_msg(h_has_line(msg, "STATUS="), "READY=1 without STATUS=: '%s'", msg);
        if (ready)
                snprintf(ready, readylen, "%s", msg);
        /* p2sd keeps sending STATUS=; a full queue would block it, so go away */
        h_notify_close(own);
        *port = (unsigned)got;
        return d;
}

struct h_proc *h_p2sd_v(unsigned *port, const char *const args[])
{
        const char *argv[64] = { "--listen", "127.0.0.1", "--port", "0" };
        size_t n = 4;
        for (size_t i = 0; args && args[i]; i++) {
                ck_assert(n < 62);
                argv[n++] = args[i];
        }
        argv[n] = NULL;
        return h_p2sd_start(NULL, argv, NULL, port, NULL, 0);
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

void h_stop_p2sd(struct h_proc *d, double timeout_s)
{
        h_signal(d, SIGTERM);
        int code = h_wait(d, timeout_s);
        ck_assert_msg(code == 0, "p2sd exited %d after SIGTERM; its log ends:\n%s", code, h_tail(d));
}

bool h_swarm_stats(struct h_proc *d, const char *name, struct h_stats *st)
{
        char key[300];
        snprintf(key, sizeof(key), "'%s' complete: ", name);
        const char *s = strstr(h_log(d), key);
        return s && sscanf(s + strlen(key), "%llu requests, %llu cache hits, %llu uploads, %llu duplicate",
                           &st->requests, &st->cache_hits, &st->uploads, &st->dup_uploads) == 4;
}

unsigned h_distributed_chunks(struct h_proc *d, uint64_t size)
{
        char key[64];
        snprintf(key, sizeof(key), "distributed %llu bytes in ", (unsigned long long)size);
        const char *s = strstr(h_log(d), key);
        unsigned n = 0;
        if (!s || sscanf(s + strlen(key), "%u chunks", &n) != 1)
                n = 0;
        return n;
}

/* ---- p2s-fetch ------------------------------------------------------------ */

struct h_proc *h_fetch_v(unsigned port, const char *name, const char *out, const char *const args[])
{
        char hostport[32], pname[32];
        snprintf(hostport, sizeof(hostport), "127.0.0.1:%u", port);
        snprintf(pname, sizeof(pname), "fetch-%u", nprocs);
        const char *argv[64] = { h_bin_fetch() };
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

void h_member_start(struct h_member *m, unsigned port, const char *name, const char *out,
                    const char *const *extra)
{
        h_member_start_tty(m, port, name, out, extra, false);
}

void h_member_start_tty(struct h_member *m, unsigned port, const char *name, const char *out,
                        const char *const *extra, bool tty)
{
        char hp[32], nn[PATH_MAX / 2], pname[32];
        snprintf(hp, sizeof(hp), "127.0.0.1:%u", port);
        snprintf(m->out, sizeof(m->out), "%s", h_path("%s", out));
        snprintf(nn, sizeof(nn), "%s.notify", out);
        snprintf(pname, sizeof(pname), "member-%s", out);
        m->n = h_notify_open(nn);
        const char *argv[64] = { h_bin_fetch(), "--timeout", "20" };
        int a = 3;
        for (const char *const *e = extra; e && *e; e++) {
                ck_assert(a < 58);
                argv[a++] = *e;
        }
        argv[a++] = hp;
        argv[a++] = name;
        argv[a++] = "-o";
        argv[a++] = m->out;
        argv[a] = NULL;
        m->p = h_start(&(struct h_spawn){ .name = pname, .argv = argv, .notify = m->n->path, .tty = tty });
}

bool h_member_joined(struct h_member *m, double timeout_s)
{
        char msg[512];
        return h_notify_wait(m->n, "READY=1", msg, sizeof(msg), timeout_s);
}

void h_member_free(struct h_member *m)
{
        m->p = h_proc_free(m->p);
        m->n = h_notify_close(m->n);
}

int h_fetch_once(unsigned port, const char *name, const char *out, char **log)
{
        struct h_member m;
        h_member_start(&m, port, name, out, NULL);
        ck_assert_msg(h_wait_for(m.p, 30), "fetch of %s did not end: %s", name, h_tail(m.p));
        int rc = m.p->code;
        if (log)
                *log = strdup(h_log(m.p));
        h_member_free(&m);
        return rc;
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

void h_stalled_swarm(struct h_proc *d, struct h_member *m, int n, unsigned port, const char *name,
                     const char *tag, const char *const *extra, const char *const *extra0)
{
        size_t from = h_log_len(d);
        for (int i = 0; i < n; i++) {
                char out[64], joined[32];
                snprintf(out, sizeof(out), "%s.%d", tag, i);
                h_member_start(&m[i], port, name, out, i == 0 && extra0 ? extra0 : extra);
                ck_assert_msg(h_member_joined(&m[i], 10), "member %d did not join: %s", i, h_tail(m[i].p));
                /* the member's READY=1 may leave before its ATTACH reaches p2sd */
                snprintf(joined, sizeof(joined), "(%d members)", i + 1);
                ck_assert_msg(h_log_wait_after(d, from, joined, 10), "p2sd did not see member %d: %s", i,
                              h_tail(d));
                if (i == 1)
                        h_signal(m[1].p, SIGSTOP);
        }
}

void h_members_succeed(struct h_member *m, int n, const char *src)
{
        for (int i = 0; i < n; i++) {
                ck_assert_msg(h_wait_for(m[i].p, 30), "member %d did not finish: %s", i, h_tail(m[i].p));
                ck_assert_msg(m[i].p->code == 0, "member %d exited %d: %s", i, m[i].p->code, h_tail(m[i].p));
                ck_assert_msg(h_same_file(src, m[i].out), "member %d's copy differs", i);
                h_member_free(&m[i]);
        }
}

/* ---- speaking the protocol by hand --------------------------------------- */

const uint8_t h_test_nonce[P2S_NONCE_SIZE] = "p2s-test-nonce!";

size_t h_hello(uint8_t *out, size_t cap, const char *name, uint64_t token)
{
        uint8_t body[P2S_HELLO_FIXED + P2S_MAX_NAME];
        size_t bl = wire_put_hello(body, sizeof(body), h_test_nonce, NULL, name, strlen(name));
        ck_assert_msg(bl > 0, "cannot encode a HELLO for '%s'", name);
        struct p2s_hdr h = { .type = P2S_HELLO, .token = token, .chunk = P2S_NO_CHUNK, .body_len = (uint32_t)bl };
        return wire_encode(out, cap, &h, body, h.body_len);
}

int h_join_attach(unsigned port, const char *name, struct p2s_hdr *ids, int *udp)
{
        uint8_t pkt[512], in[512];
        int u = h_sock_to(port, SOCK_DGRAM);
        uint64_t cookie = 0;
        struct p2s_msg m;
        for (int step = 0; step < 2; step++) {
                size_t n = h_hello(pkt, sizeof(pkt), name, cookie);
                ck_assert_int_eq(send(u, pkt, n, 0), (ssize_t)n);
                struct pollfd p = { .fd = u, .events = POLLIN };
                ck_assert_msg(poll(&p, 1, 3000) == 1, "no answer to HELLO %d for '%s'", step, name);
                ssize_t r = recv(u, in, sizeof(in), 0);
                ck_assert_msg(r > 0 && wire_decode(in, (size_t)r, &m) == WIRE_OK, "bad answer to HELLO %d for '%s'",
                              step, name);
                ck_assert_int_eq(m.hdr.type, step ? P2S_WELCOME : P2S_COOKIE);
                cookie = m.hdr.token;
        }
        *ids = m.hdr;
        int t = h_sock_to(port, SOCK_STREAM);
        struct p2s_hdr at = { .type = P2S_ATTACH, .swarm_id = ids->swarm_id, .member_id = ids->member_id,
                              .token = ids->token, .chunk = P2S_NO_CHUNK };
        wire_encode_hdr(pkt, &at);
        ck_assert_int_eq(send(t, pkt, P2S_HDR_SIZE, 0), P2S_HDR_SIZE);
        *udp = u;
        return t;
}

struct h_proc *h_fetch_args(const char *const *args, double timeout_s)
{
        const char *argv[32] = { h_bin_fetch() };
        size_t n = 1;
        for (; *args; args++) {
                ck_assert(n < 31);
                argv[n++] = *args;
        }
        argv[n] = NULL;
        return h_run_prog("p2s-fetch", argv, timeout_s);
}

const char *h_hostport(unsigned port)
{
        static char b[32];
        snprintf(b, sizeof(b), "127.0.0.1:%u", port);
        return b;
}

int h_sock_to(unsigned port, int type)
{
        int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        return fd;
}

ssize_t h_recv_within(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, timeout_ms) != 1)
                return -1;
        return recv(fd, buf, cap, 0);
}

unsigned long h_rss_kib(pid_t pid)
{
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        unsigned long kib = 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %lu kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}
