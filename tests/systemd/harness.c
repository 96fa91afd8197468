/* SPDX-License-Identifier: MIT */
#include <check.h>
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"

char h_tmp[256];

uint64_t h_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int left_ms(uint64_t deadline)
{
        uint64_t now = h_now_ms();
        return now >= deadline ? 0 : (int)(deadline - now);
}

/* ---- scratch space ------------------------------------------------------- */

void h_tmp_setup(void)
{
        const char *base = getenv("TMPDIR");
        snprintf(h_tmp, sizeof(h_tmp), "%s/p2s-systemd-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(h_tmp)) {
                perror("mkdtemp");
                abort();
        }
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        remove(path);
        return 0;
}

void h_tmp_teardown(void)
{
        if (h_tmp[0])
                nftw(h_tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        h_tmp[0] = 0;
}

const char *h_path(const char *fmt, ...)
{
        static char ring[16][512];
        static unsigned next;
        char name[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(name, sizeof(name), fmt, ap);
        va_end(ap);
        char *p = ring[next++ % 16];
        snprintf(p, 512, "%s/%s", h_tmp, name);
        return p;
}

void h_make_file(const char *path, uint64_t size, uint32_t seed)
{
        FILE *f = fopen(path, "we");
        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        uint64_t x = 0x9e3779b97f4a7c15ull ^ seed;
        char buf[65536];
        while (size) {
                size_t n = size < sizeof(buf) ? (size_t)size : sizeof(buf);
                for (size_t i = 0; i < n; i += 8) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        memcpy(buf + i, &x, n - i < 8 ? n - i : 8);
                }
                ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
                size -= n;
        }
        ck_assert_int_eq(fclose(f), 0);
}

void h_write_text(const char *path, const char *text)
{
        /* write a new file and rename it, as an editor would */
        char tmp[600];
        snprintf(tmp, sizeof(tmp), "%s.new", path);
        FILE *f = fopen(tmp, "we");
        ck_assert_msg(f, "%s: %s", tmp, strerror(errno));
        fputs(text, f);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(rename(tmp, path), 0);
}

bool h_same_file(const char *a, const char *b)
{
        FILE *fa = fopen(a, "re"), *fb = fopen(b, "re");
        bool same = fa && fb;
        while (same) {
                char ba[65536], bb[65536];
                size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);
                if (na != nb || memcmp(ba, bb, na))
                        same = false;
                if (na == 0)
                        break;
        }
        if (fa)
                fclose(fa);
        if (fb)
                fclose(fb);
        return same;
}

bool h_exists(const char *path)
{
        return access(path, F_OK) == 0;
}

/* ---- processes ----------------------------------------------------------- */

const char *h_p2sd(void)
{
        const char *p = getenv("P2SD");
        ck_assert_msg(p && *p, "P2SD is not set (run through meson test)");
        return p;
}

const char *h_fetch(void)
{
        const char *p = getenv("P2S_FETCH");
        ck_assert_msg(p && *p, "P2S_FETCH is not set (run through meson test)");
        return p;
}

static void child(const struct h_spawn *s, int err_w, pid_t parent)
{
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(127);
        dup2(err_w, STDERR_FILENO);
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
        /* move the fds out of the way first: one may already sit at 3 or 4 */
        int high[8];
        for (int i = 0; i < s->nfds; i++)
                high[i] = fcntl(s->fds[i], F_DUPFD_CLOEXEC, 100);
        for (int i = 0; i < s->nfds; i++)
                dup2(high[i], 3 + i);   /* dup2 clears close-on-exec */
        static const char *const clean[] = { "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                                             "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM" };
        for (size_t i = 0; i < sizeof(clean) / sizeof(clean[0]); i++)
                unsetenv(clean[i]);
        for (const char *const *e = s->env; e && *e; e++)
                putenv((char *)*e);
        if (s->nfds) {
                char v[32];
                snprintf(v, sizeof(v), "%d", s->nfds);
                setenv("LISTEN_FDS", v, 1);
                snprintf(v, sizeof(v), "%d", s->wrong_listen_pid ? (int)parent : (int)getpid());
                setenv("LISTEN_PID", v, 1);
                if (s->fdnames)
                        setenv("LISTEN_FDNAMES", s->fdnames, 1);
        }
        execv(s->argv[0], (char *const *)s->argv);
        dprintf(err_w, "exec %s: %s\n", s->argv[0], strerror(errno));
        _exit(127);
}

void h_start(struct h_proc *p, const struct h_spawn *s)
{
        int pipefd[2];
        if (s->tty) {
                pipefd[0] = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
                ck_assert_int_ge(pipefd[0], 0);
                ck_assert(grantpt(pipefd[0]) == 0 && unlockpt(pipefd[0]) == 0);
                pipefd[1] = open(ptsname(pipefd[0]), O_RDWR | O_NOCTTY | O_CLOEXEC);
                ck_assert_int_ge(pipefd[1], 0);
        } else {
                ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        }
        ck_assert_int_le(s->nfds, 8);
        *p = (struct h_proc){ .err_fd = pipefd[0] };
        p->err = calloc(1, 1);
        pid_t parent = getpid();
        p->pid = fork();
        ck_assert_int_ge(p->pid, 0);
        if (p->pid == 0)
                child(s, pipefd[1], parent);
        close(pipefd[1]);
        fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
}

/* Reads what stderr has; false at EOF. */
static bool read_err(struct h_proc *p)
{
        for (;;) {
                char buf[4096];
                ssize_t n = read(p->err_fd, buf, sizeof(buf));
                if (n > 0) {
                        p->err = realloc(p->err, p->err_len + (size_t)n + 1);
                        memcpy(p->err + p->err_len, buf, (size_t)n);
                        p->err_len += (size_t)n;
                        p->err[p->err_len] = 0;
                        continue;
                }
                if (n == 0)
                        return false;
                /* a terminal's master reads EIO once the child is gone */
                return errno == EAGAIN || errno == EINTR;
        }
}

bool h_wait_log(struct h_proc *p, const char *text, int timeout_ms)
{
        return h_wait_log_after(p, 0, text, timeout_ms);
}

bool h_wait_log_after(struct h_proc *p, size_t from, const char *text, int timeout_ms)
{
        uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
        for (;;) {
                bool open = p->err_fd >= 0 && read_err(p);
                /* only whole lines count; a progress bar ends its lines with \r */
                char *nl = strrchr(p->err, '\n'), *cr = strrchr(p->err, '\r');
                if (cr > nl)
                        nl = cr;
                if (nl) {
                        char save = nl[1];
                        nl[1] = 0;
                        bool found = strstr(p->err + from, text) != NULL;
                        nl[1] = save;
                        if (found)
                                return true;
                }
                if (!open)
                        return false;
                struct pollfd pfd = { .fd = p->err_fd, .events = POLLIN };
                int left = left_ms(deadline);
                if (!left || poll(&pfd, 1, left) == 0)
                        return false;
        }
}

static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
        return (int)syscall(SYS_pidfd_open, pid, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

bool h_wait_exit(struct h_proc *p, int timeout_ms)
{
        if (p->exited)
                return true;
        uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
        int pfd = pidfd_open_(p->pid);
        for (;;) {
                if (p->err_fd >= 0 && !read_err(p)) {
                        close(p->err_fd);
                        p->err_fd = -1;
                }
                if (waitpid(p->pid, &p->status, WNOHANG) == p->pid) {
                        p->exited = true;
                        break;
                }
                int left = left_ms(deadline);
                if (!left)
                        break;
                struct pollfd fds[2];
                int n = 0;
                if (pfd >= 0)
                        fds[n++] = (struct pollfd){ .fd = pfd, .events = POLLIN };
                if (p->err_fd >= 0)
                        fds[n++] = (struct pollfd){ .fd = p->err_fd, .events = POLLIN };
                /* without pidfd (old kernels) look again every 10 ms */
                poll(fds, (nfds_t)n, pfd >= 0 ? left : (left < 10 ? left : 10));
        }
        if (pfd >= 0)
                close(pfd);
        if (p->exited && p->err_fd >= 0) {
                /* a grandchild could hold the pipe; take what is there */
                read_err(p);
                close(p->err_fd);
                p->err_fd = -1;
        }
        return p->exited;
}

int h_exit_code(const struct h_proc *p)
{
        if (!p->exited)
                return -1;
        if (WIFEXITED(p->status))
                return WEXITSTATUS(p->status);
        return 1000 + WTERMSIG(p->status);
}

void h_kill(struct h_proc *p, int sig)
{
        if (!p->exited)
                kill(p->pid, sig);
}

void h_proc_free(struct h_proc *p)
{
        if (p->pid > 0 && !p->exited) {
                kill(p->pid, SIGKILL);
                waitpid(p->pid, &p->status, 0);
                p->exited = true;
        }
        if (p->err_fd >= 0)
                close(p->err_fd);
        p->err_fd = -1;
        free(p->err);
        p->err = NULL;
}

/* ---- sockets ------------------------------------------------------------- */

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

/* ---- sd_notify ----------------------------------------------------------- */

void h_notify_open(struct h_notify *n, const char *name)
{
        *n = (struct h_notify){ .fd = -1 };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int len = snprintf(n->path, sizeof(n->path), "%s/%s", h_tmp, name);
        ck_assert_msg(len > 0 && (size_t)len < sizeof(sa.sun_path), "notify socket path too long");
        memcpy(sa.sun_path, n->path, (size_t)len + 1);
        n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(n->fd, 0);
        unlink(n->path);
        ck_assert_int_eq(bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        snprintf(n->env, sizeof(n->env), "NOTIFY_SOCKET=%s", n->path);
        n->log = calloc(1, 1);
}

void h_notify_close(struct h_notify *n)
{
        if (n->fd >= 0)
                close(n->fd);
        n->fd = -1;
        free(n->log);
        n->log = NULL;
}

int h_notify_recv(struct h_notify *n, char *buf, size_t len, int timeout_ms)
{
        struct pollfd pfd = { .fd = n->fd, .events = POLLIN };
        if (poll(&pfd, 1, timeout_ms) <= 0)
                return -1;
        ssize_t r = recv(n->fd, buf, len - 1, 0);
        if (r < 0)
                return -1;
        buf[r] = 0;
        size_t add = (size_t)r + 4;
        n->log = realloc(n->log, n->log_len + add + 1);
        memcpy(n->log + n->log_len, buf, (size_t)r);
        memcpy(n->log + n->log_len + r, "\n--\n", 5);
        n->log_len += add;
        return (int)r;
}

bool h_has_line(const char *msg, const char *prefix)
{
        size_t pl = strlen(prefix);
        for (const char *l = msg; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (!strncmp(l, prefix, pl))
                        return true;
        return false;
}

bool h_notify_wait(struct h_notify *n, const char *key, char *buf, size_t len, int timeout_ms)
{
        uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
        for (;;) {
                /* with no time left, still take what has already arrived */
                if (h_notify_recv(n, buf, len, left_ms(deadline)) < 0)
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

bool h_match(const char *text, const char *re)
{
        regex_t r;
        ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE), 0);
        bool m = regexec(&r, text, 0, NULL, 0) == 0;
        regfree(&r);
        return m;
}

/* ---- members ------------------------------------------------------------- */

void h_member_start(struct h_member *m, uint16_t port, const char *name, const char *out,
                    const char *const *extra)
{
        h_member_start_tty(m, port, name, out, extra, false);
}

void h_member_start_tty(struct h_member *m, uint16_t port, const char *name, const char *out,
                        const char *const *extra, bool tty)
{
        char hp[32], nn[300];
        snprintf(hp, sizeof(hp), "127.0.0.1:%u", port);
        snprintf(m->out, sizeof(m->out), "%s", h_path("%s", out));
        snprintf(nn, sizeof(nn), "%s.notify", out);
        h_notify_open(&m->n, nn);
        const char *argv[24] = { h_fetch(), "--timeout", "20" };
        int a = 3;
        for (const char *const *e = extra; e && *e && a < 18; e++)
                argv[a++] = *e;
        argv[a++] = hp;
        argv[a++] = name;
        argv[a++] = "-o";
        argv[a++] = m->out;
        argv[a] = NULL;
        const char *env[] = { m->n.env, NULL };
        h_start(&m->p, &(struct h_spawn){ .argv = argv, .env = env, .tty = tty });
}

bool h_member_joined(struct h_member *m, int timeout_ms)
{
        char msg[512];
        return h_notify_wait(&m->n, "READY=1", msg, sizeof(msg), timeout_ms);
}

void h_member_free(struct h_member *m)
{
        h_proc_free(&m->p);
        h_notify_close(&m->n);
}

/* ---- p2sd ---------------------------------------------------------------- */

uint16_t h_p2sd_start(struct h_proc *d, struct h_notify *n, const char *const *args, const char *const *env,
                      char *ready, size_t readylen)
{
        const char *argv[32] = { h_p2sd() };
        const char *envv[8] = { n->env };
        int a = 1, e = 1;
        for (const char *const *p = args; p && *p && a < 31; p++)
                argv[a++] = *p;
        for (const char *const *p = env; p && *p && e < 7; p++)
                envv[e++] = *p;
        h_start(d, &(struct h_spawn){ .argv = argv, .env = envv });
        char msg[1024];
        ck_assert_msg(h_notify_wait(n, "READY=1", msg, sizeof(msg), 10000), "p2sd sent no READY=1: %s", d->err);
        if (ready)
                snprintf(ready, readylen, "%s", msg);
        unsigned long port = h_notify_uint(msg, "X_P2S_PORT");
        ck_assert_msg(port > 0 && port < 65536, "READY=1 without X_P2S_PORT: %s", msg);
        return (uint16_t)port;
}

int h_p2sd_stop(struct h_proc *d, int timeout_ms)
{
        h_kill(d, SIGTERM);
        ck_assert_msg(h_wait_exit(d, timeout_ms), "p2sd did not exit within %d ms of SIGTERM: %s", timeout_ms,
                      d->err);
        return h_exit_code(d);
}

/* ---- swarms ------------------------------------------------------------- */

void h_stalled_swarm(struct h_proc *d, struct h_member *m, int n, uint16_t port, const char *name,
                     const char *tag, const char *const *extra, const char *const *extra0)
{
        size_t from = d->err_len;
        for (int i = 0; i < n; i++) {
                char out[64], joined[32];
                snprintf(out, sizeof(out), "%s.%d", tag, i);
                h_member_start(&m[i], port, name, out, i == 0 && extra0 ? extra0 : extra);
                ck_assert_msg(h_member_joined(&m[i], 10000), "member %d did not join: %s", i, m[i].p.err);
                /* the member's READY=1 may leave before its ATTACH reaches p2sd */
                snprintf(joined, sizeof(joined), "(%d members)", i + 1);
                ck_assert_msg(h_wait_log_after(d, from, joined, 10000), "p2sd did not see member %d: %s", i, d->err);
                if (i == 1)
                        h_kill(&m[1].p, SIGSTOP);
        }
}

void h_members_succeed(struct h_member *m, int n, const char *src)
{
        for (int i = 0; i < n; i++) {
                ck_assert_msg(h_wait_exit(&m[i].p, 30000), "member %d did not finish: %s", i, m[i].p.err);
                ck_assert_msg(h_exit_code(&m[i].p) == 0, "member %d exited %d: %s", i, h_exit_code(&m[i].p),
                              m[i].p.err);
                ck_assert_msg(h_same_file(src, m[i].out), "member %d's copy differs", i);
                h_member_free(&m[i]);
        }
}

int h_fetch_once(uint16_t port, const char *name, const char *out, char **err)
{
        struct h_member m;
        h_member_start(&m, port, name, out, NULL);
        ck_assert_msg(h_wait_exit(&m.p, 30000), "fetch of %s did not end: %s", name, m.p.err);
        int rc = h_exit_code(&m.p);
        if (err)
                *err = strdup(m.p.err);
        h_member_free(&m);
        return rc;
}
