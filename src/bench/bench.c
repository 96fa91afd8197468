/* SPDX-License-Identifier: MIT */
/* The rounds of p2s-bench. Each side of a round starts its server, waits for
 * it to be ready (p2sd: READY=1 on our notify socket; nginx: a TCP connect
 * succeeds), starts the clock at the first client spawned, stops it when the
 * last client was reaped, then collects the server's figures, stops it, and
 * only then verifies the copies. Every wait is one loop_run ended by an event
 * (loop_quit with 0), a deadline (-ETIMEDOUT), the server dying (-ECHILD) or
 * SIGINT/SIGTERM (-EINTR). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "bench/bench.h"
#include "bench/proc.h"
#include "proto/hash.h"
#include "util/clock.h"
#include "util/loop.h"

#define READY_US        (10 * USEC_PER_SEC)     /* server start to ready */
#define STOP_US         (10 * USEC_PER_SEC)     /* SIGTERM to exit, then SIGKILL */
#define STATUS_WAIT_US  (3 * USEC_PER_SEC)      /* p2sd sends STATUS= every 2 s */
#define CONNECT_POLL_US (10 * USEC_PER_MSEC)
#define PROGRESS_US     (250 * USEC_PER_MSEC)
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
};

/* ---- small helpers --------------------------------------------------------- */

static void on_deadline(struct loop *l, struct loop_timer *t, void *ud)
{
        loop_quit(l, -ETIMEDOUT);
}

static int wait_for(struct bench *b, enum phase ph, uint64_t timeout_us)
{
        b->phase = ph;
        loop_timer_arm(b->loop, &b->deadline, now_usec() + timeout_us);
        int r = loop_run(b->loop);
        loop_timer_disarm(b->loop, &b->deadline);
        return r;
}

static void on_signal(struct loop *l, int signo, void *ud)
{
        struct bench *b = ud;
        b->signo = signo;
        loop_quit(l, -EINTR);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        remove(path);
        return 0;
}

static void rm_tree(const char *dir)
{
        if (*dir)
                nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t hwm_kib(pid_t pid)
{
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "re");
        unsigned long long kib = 0;
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmHWM: %llu kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

/* The largest VmHWM of pid and its children (nginx's workers). */
static uint64_t tree_hwm_kib(pid_t pid)
{
        uint64_t max = hwm_kib(pid);
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
        FILE *f = fopen(path, "re");
        int c;
        if (!f)
                return max;
        while (fscanf(f, "%d", &c) == 1) {
                uint64_t k = hwm_kib(c);
                if (k > max)
                        max = k;
        }
        fclose(f);
        return max;
}

static double ru_cpu_s(const struct rusage *ru)
{
        return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
               (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

static int hash_file(const char *path, uint8_t out[P2S_HASH_SIZE])
{
        enum { BUF = 1 << 20 };
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct hasher *h = hasher_new();
        char *buf = malloc(BUF);
        if (!h || !buf) {
                hasher_free(h);
                free(buf);
                close(fd);
                return -ENOMEM;
        }
        int r = 0;
        for (;;) {
                ssize_t n = read(fd, buf, BUF);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                hasher_update(h, buf, (size_t)n);
        }
        if (!r)
                hasher_final(h, out);
        hasher_free(h);
        free(buf);
        close(fd);
        return r;
}

static void print_file_tail(const char *path, unsigned lines)
{
        FILE *f = fopen(path, "re");
        char ring[16][256];
        unsigned n = 0;
        if (!f)
                return;
        if (lines > 16)
                lines = 16;
        while (fgets(ring[n % lines], sizeof(ring[0]), f))
                n++;
        fclose(f);
        for (unsigned i = n > lines ? n - lines : 0; i < n; i++)
                fprintf(stderr, "  | %s%s", ring[i % lines], strchr(ring[i % lines], '\n') ? "" : "\n");
}

static void progress_clear(struct bench *b)
{
        if (b->o.progress)
                fputs("\r\033[K", stderr);
}

static void on_progress(struct loop *l, struct loop_timer *t, void *ud)
{
        struct bench *b = ud;
        fprintf(stderr, "\r\033[Kp2s-bench: round %u/%u %s: %u/%u clients done, %.1f s", b->round + 1,
                b->o.rounds, b->side == BENCH_P2S ? "p2s" : "http", b->done, b->o.clients,
                (double)(now_usec() - b->t0) / 1e6);
        loop_timer_arm(l, t, now_usec() + PROGRESS_US);
}

/* ---- p2sd's stderr and notify socket -------------------------------------- */

static void srv_line(struct bench *b, const char *s)
{
        struct p2sd_complete c;
        if (b->o.verbose) {
                progress_clear(b);
                fprintf(stderr, "  p2sd| %s\n", s);
        }
        snprintf(b->tail[b->ntail++ % TAIL_LINES], sizeof(b->tail[0]), "%s", s);
        if (stats_parse_complete(s, &c)) {
                b->complete = c;
                b->have_complete = true;
        }
}

static void srv_log_close(struct bench *b)
{
        if (b->srv_log < 0)
                return;
        if (b->linelen) {
                b->line[b->linelen] = 0;
                srv_line(b, b->line);
                b->linelen = 0;
        }
        loop_del(b->loop, b->srv_log);
        close(b->srv_log);
        b->srv_log = -1;
}

/* Reads what there is; false at EOF or error. */
static bool srv_log_read(struct bench *b)
{
        char buf[4096];
        ssize_t n = read(b->srv_log, buf, sizeof(buf));
        if (n < 0)
                return errno == EAGAIN || errno == EINTR;
        if (n == 0)
                return false;
        for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == '\n' || b->linelen == sizeof(b->line) - 1) {
                        b->line[b->linelen] = 0;
                        srv_line(b, b->line);
                        b->linelen = 0;
                        if (buf[i] == '\n')
                                continue;
                }
                b->line[b->linelen++] = buf[i];
        }
        return true;
}

static void on_srv_log(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct bench *b = ud;
        if (!srv_log_read(b))
                srv_log_close(b);
}

static void on_notify(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct bench *b = ud;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        if (n <= 0 || !b->srv)
                return;
        buf[n] = 0;
        bool ready = false;
        unsigned port = 0;
        for (char *save = NULL, *s = strtok_r(buf, "\n", &save); s; s = strtok_r(NULL, "\n", &save)) {
                if (!strcmp(s, "READY=1"))
                        ready = true;
                else if (!strncmp(s, "X_P2S_PORT=", 11))
                        sscanf(s + 11, "%u", &port);
                else if (!strncmp(s, "STATUS=", 7) && stats_parse_status(s + 7, &b->mib_in, &b->mib_out)) {
                        b->have_status = true;
                        b->statuses++;
                        if (b->phase == PH_STATUS)
                                loop_quit(l, 0);
                }
        }
        if (ready && b->phase == PH_READY && port > 0 && port <= 65535) {
                b->port = (uint16_t)port;
                loop_quit(l, 0);
        }
}

static int notify_open(struct bench *b)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int n = snprintf(b->notify_path, sizeof(b->notify_path), "%s/notify.sock", b->work);
        if (n < 0 || (size_t)n >= sizeof(b->notify_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, b->notify_path, (size_t)n + 1);
        b->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (b->notify_fd < 0)
                return -errno;
        if (bind(b->notify_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        return loop_add(b->loop, b->notify_fd, EPOLLIN, on_notify, b);
}

/* ---- processes --------------------------------------------------------------- */

static void on_srv_exit(struct proc *p, void *ud)
{
        struct bench *b = ud;
        loop_quit(b->loop, b->phase == PH_STOP ? 0 : -ECHILD);
}

static void on_cli_exit(struct proc *p, void *ud)
{
        struct bench *b = ud;
        b->done++;
        if (proc_code(p) != 0)
                b->failed++;
        if (b->done == b->o.clients && b->phase == PH_CLIENTS) {
                b->t1 = now_usec();
                loop_quit(b->loop, 0);
        }
}

/* SIGTERM, then SIGKILL (by proc_free) if it does not exit in time. */
static void srv_stop(struct bench *b)
{
        if (b->srv && !proc_exited(b->srv) && proc_signal(b->srv, SIGTERM) == 0) {
                int r = wait_for(b, PH_STOP, STOP_US);
                if (r == -EINTR)
                        b->phase = PH_IDLE;
        }
        b->phase = PH_IDLE;
        b->srv = proc_free(b->srv);
        if (b->srv_log >= 0) {
                /* the writer is gone: what is left is buffered */
                while (srv_log_read(b))
                        ;
                srv_log_close(b);
        }
}

static void clients_free(struct bench *b)
{
        for (unsigned i = 0; i < b->spawned; i++)
                b->cli[i] = proc_free(b->cli[i]);
        b->spawned = 0;
}

static void side_cleanup(struct bench *b)
{
        loop_timer_disarm(b->loop, &b->progress);
        loop_timer_disarm(b->loop, &b->poll);
        clients_free(b);
        srv_stop(b);
}

static void srv_tail(struct bench *b)
{
        unsigned n = b->ntail < TAIL_LINES ? b->ntail : TAIL_LINES;
        for (unsigned i = b->ntail - n; i < b->ntail; i++)
                fprintf(stderr, "  | %s\n", b->tail[i % TAIL_LINES]);
}

/* dir/PREFIXi, plus for clients ".log" (their stderr) or ".csv" (their RTT log) */
static void path_in(char *out, size_t len, const char *dir, const char *prefix, unsigned i, const char *suffix)
{
        if ((size_t)snprintf(out, len, "%s/%s%u%s", dir, prefix, i, suffix) >= len)
                out[0] = 0;     /* cannot happen: dir is ours and short enough */
}

/* ---- the two sides ---------------------------------------------------------- */

static int start_p2sd(struct bench *b)
{
        char minc[16];
        snprintf(minc, sizeof(minc), "%u", b->o.clients);
        const char *argv[32];
        int n = 0;
        argv[n++] = b->o.p2sd;
        argv[n++] = "--listen";
        argv[n++] = "127.0.0.1";
        argv[n++] = "--port";
        argv[n++] = "0";
        /* the swarm starts once every client joined; the long gather
         * timeout only matters when spawning them is very slow */
        argv[n++] = "--min-clients";
        argv[n++] = minc;
        argv[n++] = "--gather-timeout";
        argv[n++] = "60";
#define PASS(opt, val) do { if (val) { argv[n++] = opt; argv[n++] = val; } } while (0)
        PASS("--control", b->o.control);
        PASS("--cache", b->o.cache);
        PASS("--chunk-size", b->o.chunk_size);
        PASS("--query", b->o.query);
        PASS("--replicas", b->o.replicas);
        argv[n++] = b->src;
        argv[n] = NULL;

        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        struct proc_spec spec = { .argv = argv, .notify = b->notify_path, .out_fd = pfd[1], .err_fd = pfd[1] };
        b->srv = proc_spawn(b->loop, &spec, on_srv_exit, b);
        int e = errno;
        close(pfd[1]);
        if (!b->srv) {
                close(pfd[0]);
                fprintf(stderr, "p2s-bench: cannot start %s: %s\n", b->o.p2sd, strerror(e));
                return -e;
        }
        b->srv_log = pfd[0];
        return loop_add(b->loop, b->srv_log, EPOLLIN, on_srv_log, b);
}

static int free_port(uint16_t *port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        close(fd);
        *port = ntohs(sa.sin_port);
        return 0;
}

static int write_nginx_conf(struct bench *b, const char *dir)
{
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/nginx.conf", dir);
        FILE *f = fopen(path, "we");
        if (!f)
                return -errno;
        fprintf(f, "# written by p2s-bench for one run; removed with its directory\n"
                "daemon off;\n"
                "worker_processes auto;\n"
                "pid %s/nginx.pid;\n"
                "error_log %s/error.log warn;\n", dir, dir);
        /* as root, the workers would switch to nobody and not reach our 0700 directory */
        if (geteuid() == 0) {
                struct passwd *pw = getpwuid(geteuid());
                struct group *gr = getgrgid(getegid());
                if (pw && gr)
                        fprintf(f, "user %s %s;\n", pw->pw_name, gr->gr_name);
        }
        fprintf(f, "events { worker_connections 4096; }\n"
                "http {\n"
                "    access_log off;\n"
                "    sendfile on;\n"
                "    tcp_nopush on;\n"
                "    default_type application/octet-stream;\n"
                "    client_body_temp_path %s/tmp-body;\n"
                "    proxy_temp_path %s/tmp-proxy;\n"
                "    fastcgi_temp_path %s/tmp-fastcgi;\n"
                "    uwsgi_temp_path %s/tmp-uwsgi;\n"
                "    scgi_temp_path %s/tmp-scgi;\n"
                "    server {\n"
                "        listen 127.0.0.1:%u;\n"
                "        root %s/www;\n"
                "        location / { }\n"
                "    }\n"
                "}\n", dir, dir, dir, dir, dir, b->port, b->work);
        int r = ferror(f) ? -EIO : 0;
        if (fclose(f) < 0 && !r)
                r = -errno;
        return r;
}

static void on_connect_poll(struct loop *l, struct loop_timer *t, void *ud)
{
        struct bench *b = ud;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(b->port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        /* a loopback connect completes or is refused at once */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int r = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        if (fd >= 0)
                close(fd);
        if (r == 0 && b->phase == PH_READY)
                loop_quit(l, 0);
        else
                loop_timer_arm(l, t, now_usec() + CONNECT_POLL_US);
}

static int start_nginx(struct bench *b)
{
        char dir[PATH_MAX], errlog[PATH_MAX + 16], prefix[PATH_MAX + 16], conf[PATH_MAX + 16];
        char out[PATH_MAX + 16];
        snprintf(dir, sizeof(dir), "%s/nginx", b->work);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        int r = free_port(&b->port);
        if (r < 0 || (r = write_nginx_conf(b, dir)) < 0) {
                fprintf(stderr, "p2s-bench: cannot set up nginx in %s: %s\n", dir, strerror(-r));
                return r;
        }
        snprintf(errlog, sizeof(errlog), "%s/error.log", dir);
        snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
        snprintf(prefix, sizeof(prefix), "%s/", dir);
        snprintf(out, sizeof(out), "%s/stderr.log", dir);
        const char *argv[] = { b->o.nginx, "-p", prefix, "-c", conf, "-e", errlog, NULL };
        int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct proc_spec spec = { .argv = argv, .out_fd = fd, .err_fd = fd };
        b->srv = proc_spawn(b->loop, &spec, on_srv_exit, b);
        int e = errno;
        if (fd >= 0)
                close(fd);
        if (!b->srv) {
                fprintf(stderr, "p2s-bench: cannot start %s: %s\n", b->o.nginx, strerror(e));
                return -e;
        }
        loop_timer_arm(b->loop, &b->poll, now_usec() + CONNECT_POLL_US);
        return 0;
}

static void url_escape(char *out, size_t len, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;
        for (; *s && o + 4 < len; s++) {
                unsigned char c = (unsigned char)*s;
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    strchr("-._~/", c)) {
                        out[o++] = (char)c;
                } else {
                        out[o++] = '%';
                        out[o++] = hex[c >> 4];
                        out[o++] = hex[c & 15];
                }
        }
        out[o] = 0;
}

static int spawn_client(struct bench *b, unsigned i)
{
        char copy[PATH_MAX], log[PATH_MAX], rtt[PATH_MAX], host[32], url[1024];
        const char *argv[24];
        int n = 0;
        path_in(copy, sizeof(copy), b->copies, b->side == BENCH_P2S ? "copy-" : "http-", i, "");
        path_in(log, sizeof(log), b->work, b->side == BENCH_P2S ? "fetch-" : "curl-", i, ".log");
        path_in(rtt, sizeof(rtt), b->work, "rtt-", i, ".csv");
        if (b->side == BENCH_P2S) {
                snprintf(host, sizeof(host), "127.0.0.1:%u", b->port);
                argv[n++] = b->o.fetch;
                argv[n++] = "--quiet";
                PASS("--order", b->o.order);
                PASS("--window", b->o.window);
                argv[n++] = "--rtt-log";
                argv[n++] = rtt;
                argv[n++] = host;
                argv[n++] = b->name;
                argv[n++] = "-o";
                argv[n++] = copy;
        } else {
                char esc[800];
                url_escape(esc, sizeof(esc), b->name);
                snprintf(url, sizeof(url), "http://127.0.0.1:%u/%s", b->port, esc);
                argv[n++] = b->o.curl;
                argv[n++] = "-sS";
                argv[n++] = "--fail";
                argv[n++] = "-o";
                argv[n++] = copy;
                argv[n++] = url;
        }
        argv[n] = NULL;
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        struct proc_spec spec = { .argv = argv, .out_fd = fd, .err_fd = fd };
        b->cli[i] = proc_spawn(b->loop, &spec, on_cli_exit, b);
        int e = errno;
        close(fd);
        if (!b->cli[i]) {
                fprintf(stderr, "p2s-bench: cannot start %s: %s\n", argv[0], strerror(e));
                return -e;
        }
        b->spawned++;
        return 0;
}
#undef PASS

/* Copies src to dst (both small CSV files); a missing src is no error: a
 * client that relayed nothing writes no RTT log. */
static int copy_file(const char *src, const char *dst)
{
        int in = open(src, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return errno == ENOENT ? 0 : -errno;
        int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out < 0) {
                int e = -errno;
                close(in);
                return e;
        }
        char buf[65536];
        ssize_t n;
        int r = 0;
        while ((n = read(in, buf, sizeof(buf))) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, buf + off, (size_t)(n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0) {
                                r = -errno;
                                goto done;
                        }
                        off += w;
                }
        }
done:
        close(in);
        if (close(out) < 0 && !r)
                r = -errno;
        return r;
}

/* --keep-rtt: client i's log of this round as DIR/rtt-rROUND-cI.csv
 * (both from 1), so that rounds and runs sharing DIR do not collide. */
static void keep_rtt_log(struct bench *b, unsigned i, const char *path, bool *told)
{
        char dst[PATH_MAX];
        if ((size_t)snprintf(dst, sizeof(dst), "%s/rtt-r%u-c%u.csv", b->o.keep_rtt, b->round + 1, i + 1) >=
            sizeof(dst)) {
                if (!*told)
                        fprintf(stderr, "p2s-bench: --keep-rtt: the directory name is too long\n");
                *told = true;
                return;
        }
        int r = copy_file(path, dst);
        if (r < 0 && !*told) {
                progress_clear(b);
                fprintf(stderr, "p2s-bench: --keep-rtt: cannot copy %s to %s: %s\n", path, dst, strerror(-r));
                *told = true;
        }
}

/* Figures from the clients and their files, after the clock stopped. */
static void collect_clients(struct bench *b, struct bench_result *res)
{
        struct samples rtt = { 0 };
        uint64_t bad = 0;
        bool told = false, told_keep = false;
        for (unsigned i = 0; i < b->spawned; i++) {
                const struct proc *p = b->cli[i];
                const struct rusage *ru = proc_rusage(p);
                char path[PATH_MAX];
                uint8_t h[P2S_HASH_SIZE];
                if ((uint64_t)ru->ru_maxrss > res->cli_max_rss_kib)
                        res->cli_max_rss_kib = (uint64_t)ru->ru_maxrss;
                res->cli_cpu_s += ru_cpu_s(ru);
                path_in(path, sizeof(path), b->copies, b->side == BENCH_P2S ? "copy-" : "http-", i, "");
                if (hash_file(path, h) == 0 && !memcmp(h, b->hash, sizeof(h)))
                        res->verified++;
                unlink(path);
                if (b->side == BENCH_P2S) {
                        strcat(path, ".part");
                        unlink(path);
                        path_in(path, sizeof(path), b->work, "rtt-", i, ".csv");
                        stats_read_rtt_log(path, &rtt, &res->rtt_cache, &res->rtt_peer, &bad);
                        if (b->o.keep_rtt)
                                keep_rtt_log(b, i, path, &told_keep);
                        unlink(path);
                }
                path_in(path, sizeof(path), b->work, b->side == BENCH_P2S ? "fetch-" : "curl-", i, ".log");
                if (proc_code(p) != 0 && !told) {
                        progress_clear(b);
                        fprintf(stderr, "p2s-bench: round %u %s: client %u exited with %d; its last lines:\n",
                                b->round + 1, b->side == BENCH_P2S ? "p2s" : "http", i, proc_code(p));
                        print_file_tail(path, 8);
                        told = true;
                }
                unlink(path);
        }
        res->rtt_n = rtt.n;
        res->rtt_mean_us = samples_mean(&rtt);
        res->rtt_p50_us = samples_percentile(&rtt, 50);
        res->rtt_p99_us = samples_percentile(&rtt, 99);
        samples_clear(&rtt);
}

int bench_run(struct bench *b, enum bench_side side, unsigned round, struct bench_result *res)
{
        *res = (struct bench_result){ 0 };
        b->side = side;
        b->round = round;
        b->port = 0;
        b->statuses = 0;
        b->have_status = b->have_complete = false;
        b->ntail = 0;
        b->done = b->failed = b->spawned = 0;
        const char *what = side == BENCH_P2S ? "p2sd" : "nginx";

        int r = side == BENCH_P2S ? start_p2sd(b) : start_nginx(b);
        if (r < 0)
                goto out;
        r = wait_for(b, PH_READY, READY_US);
        loop_timer_disarm(b->loop, &b->poll);
        if (r < 0) {
                if (r != -EINTR) {
                        progress_clear(b);
                        fprintf(stderr, "p2s-bench: %s %s\n", what,
                                r == -ETIMEDOUT ? "was not ready in time" : "exited before it was ready");
                        if (side == BENCH_P2S) {
                                srv_stop(b);
                                srv_tail(b);
                        } else {
                                char path[PATH_MAX + 16];
                                snprintf(path, sizeof(path), "%s/nginx/error.log", b->work);
                                print_file_tail(path, 8);
                                snprintf(path, sizeof(path), "%s/nginx/stderr.log", b->work);
                                print_file_tail(path, 8);
                        }
                }
                goto out;
        }

        b->t0 = now_usec();
        for (unsigned i = 0; i < b->o.clients; i++)
                if ((r = spawn_client(b, i)) < 0)
                        goto out;
        if (b->o.progress)
                loop_timer_arm(b->loop, &b->progress, now_usec() + PROGRESS_US);
        if (b->done < b->o.clients) {
                r = wait_for(b, PH_CLIENTS, b->o.timeout_us);
        } else {
                b->t1 = now_usec();
                r = 0;
        }
        loop_timer_disarm(b->loop, &b->progress);
        progress_clear(b);
        if (r == -ETIMEDOUT) {
                fprintf(stderr, "p2s-bench: round %u %s: %u of %u clients still running after %.0f s: stopping them\n",
                        round + 1, side == BENCH_P2S ? "p2s" : "http", b->o.clients - b->done, b->o.clients,
                        (double)b->o.timeout_us / 1e6);
                b->t1 = now_usec();
        } else if (r == -ECHILD) {
                fprintf(stderr, "p2s-bench: round %u: %s exited while the clients ran\n", round + 1, what);
                if (side == BENCH_P2S) {
                        srv_stop(b);
                        srv_tail(b);
                }
                b->t1 = now_usec();
        } else if (r < 0) {
                goto out;
        }
        /* the clock has stopped */
        res->ran = true;
        res->wall_s = (double)(b->t1 - b->t0) / 1e6;
        for (unsigned i = 0; i < b->spawned; i++)
                proc_kill(b->cli[i]);   /* only those still running after a failure */

        if (side == BENCH_P2S && b->srv && r == 0) {
                /* the counters as of after the swarm: the next STATUS= */
                r = wait_for(b, PH_STATUS, STATUS_WAIT_US);
                if (r == -EINTR)
                        goto out;
                r = 0;  /* without a fresh STATUS= the last one stands */
        }
        if (b->srv && !proc_exited(b->srv))
                res->srv_hwm_kib = side == BENCH_P2S ? hwm_kib(proc_pid(b->srv)) : tree_hwm_kib(proc_pid(b->srv));
        if (b->srv) {
                proc_signal(b->srv, SIGTERM);
                int s = wait_for(b, PH_STOP, STOP_US);
                if (s == -EINTR) {
                        r = s;
                        goto out;
                }
                if (s == -ETIMEDOUT)
                        fprintf(stderr, "p2s-bench: %s did not stop within %.0f s of SIGTERM: killing it\n", what,
                                STOP_US / 1e6);
                proc_kill(b->srv);
                struct rusage ru = *proc_rusage(b->srv);
                b->phase = PH_IDLE;
                srv_stop(b);    /* frees it; drains p2sd's last lines */
                res->srv_cpu_s = ru_cpu_s(&ru);
                if (!res->srv_hwm_kib)
                        res->srv_hwm_kib = (uint64_t)ru.ru_maxrss;
        }
        res->have_status = b->have_status;
        res->mib_in = b->mib_in;
        res->mib_out = b->mib_out;
        res->have_complete = b->have_complete;
        res->complete = b->complete;
        res->failed = b->failed + (b->o.clients - b->done);

        /* verification comes after the clock, and after the server stopped */
        collect_clients(b, res);
        res->ok = r == 0 && res->failed == 0 && res->verified == b->o.clients;
        r = 0;
out:
        side_cleanup(b);
        b->spawned = 0;
        return r;
}

/* ---- setup and teardown ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static int generate(const char *path, uint64_t size)
{
        static uint64_t buf[1 << 17];  /* 1 MiB */
        uint64_t seed = now_usec() ^ ((uint64_t)getpid() << 32);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        int r = 0;
        while (size && !r) {
                size_t n = size < sizeof(buf) ? (size_t)size : sizeof(buf);
                for (size_t i = 0; i < (n + 7) / 8; i++)
                        buf[i] = splitmix64(&seed);
                for (size_t off = 0; off < n;) {
                        ssize_t w = write(fd, (char *)buf + off, n - off);
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0) {
                                r = -errno;
                                break;
                        }
                        off += (size_t)w;
                }
                size -= n;
        }
        if (close(fd) < 0 && !r)
                r = -errno;
        return r;
}

static int make_dir(char *tmpl, size_t len, const char *parent)
{
        if ((size_t)snprintf(tmpl, len, "%s/p2s-bench.XXXXXX", parent) >= len)
                return -ENAMETOOLONG;
        return mkdtemp(tmpl) ? 0 : -errno;
}

struct bench *bench_new(const struct bench_opts *o, char *err, size_t errlen)
{
        struct bench *b = calloc(1, sizeof(*b));
        if (!b) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        b->o = *o;
        b->srv_log = b->notify_fd = -1;
        b->cli = calloc(o->clients, sizeof(*b->cli));
        b->loop = loop_new();
        if (!b->cli || !b->loop) {
                snprintf(err, errlen, "out of memory");
                return bench_free(b);
        }
        loop_timer_init(&b->deadline, on_deadline, b);
        loop_timer_init(&b->progress, on_progress, b);
        loop_timer_init(&b->poll, on_connect_poll, b);
        static const int sigs[] = { SIGINT, SIGTERM };
        int r = loop_signals(b->loop, sigs, 2, on_signal, b);
        if (r < 0) {
                snprintf(err, errlen, "cannot set up signal handling: %s", strerror(-r));
                return bench_free(b);
        }
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp)
                tmp = "/tmp";
        if ((r = make_dir(b->work, sizeof(b->work), tmp)) < 0) {
                b->work[0] = 0;
                snprintf(err, errlen, "cannot create a directory in %s: %s", tmp, strerror(-r));
                return bench_free(b);
        }
        if (o->out) {
                b->copies_outside = true;
                if ((r = make_dir(b->copies, sizeof(b->copies), o->out)) < 0) {
                        b->copies[0] = 0;
                        snprintf(err, errlen, "cannot create a directory in %s: %s", o->out, strerror(-r));
                        return bench_free(b);
                }
        } else {
                snprintf(b->copies, sizeof(b->copies), "%s/copies", b->work);
                if (mkdir(b->copies, 0700) < 0) {
                        snprintf(err, errlen, "cannot create %s: %s", b->copies, strerror(errno));
                        return bench_free(b);
                }
        }
        char www[PATH_MAX];
        snprintf(www, sizeof(www), "%s/www", b->work);
        if (mkdir(www, 0700) < 0) {
                snprintf(err, errlen, "cannot create %s: %s", www, strerror(errno));
                return bench_free(b);
        }
        if ((r = notify_open(b)) < 0) {
                snprintf(err, errlen, "cannot create the notify socket in %s: %s", b->work, strerror(-r));
                return bench_free(b);
        }
        if (o->file) {
                char real[PATH_MAX];
                struct stat st;
                if (!realpath(o->file, real) || stat(real, &st) < 0) {
                        snprintf(err, errlen, "%s: %s", o->file, strerror(errno));
                        return bench_free(b);
                }
                if (!S_ISREG(st.st_mode) || st.st_size == 0) {
                        snprintf(err, errlen, "%s: not a regular file with data in it", o->file);
                        return bench_free(b);
                }
                b->o.size = (uint64_t)st.st_size;
                const char *base = strrchr(real, '/');
                base = base ? base + 1 : real;
                if (strlen(base) >= sizeof(b->name)) {
                        snprintf(err, errlen, "%s: the name is longer than 255 bytes", o->file);
                        return bench_free(b);
                }
                memcpy(b->name, base, strlen(base) + 1);
                snprintf(b->src, sizeof(b->src), "%s", real);
                /* nginx serves it from our www directory */
                char link[2 * PATH_MAX];
                if ((size_t)snprintf(link, sizeof(link), "%s/%s", www, b->name) >= sizeof(link) ||
                    symlink(real, link) < 0) {
                        snprintf(err, errlen, "cannot link %s: %s", link, strerror(errno));
                        return bench_free(b);
                }
        } else {
                snprintf(b->name, sizeof(b->name), "p2s-bench.bin");
                if ((size_t)snprintf(b->src, sizeof(b->src), "%s/%s", www, b->name) >= sizeof(b->src))
                        r = -ENAMETOOLONG;
                else
                        r = generate(b->src, o->size);
                if (r < 0) {
                        snprintf(err, errlen, "cannot write %s: %s", b->src, strerror(-r));
                        return bench_free(b);
                }
        }
        if ((r = hash_file(b->src, b->hash)) < 0) {
                snprintf(err, errlen, "cannot read %s: %s", b->src, strerror(-r));
                return bench_free(b);
        }
        return b;
}

struct bench *bench_free(struct bench *b)
{
        if (!b)
                return NULL;
        if (b->loop)
                side_cleanup(b);
        if (b->notify_fd >= 0) {
                loop_del(b->loop, b->notify_fd);
                close(b->notify_fd);
        }
        if (b->copies_outside)
                rm_tree(b->copies);
        rm_tree(b->work);
        loop_free(b->loop);
        free(b->cli);
        free(b);
        return NULL;
}

int bench_signal(const struct bench *b)
{
        return b->signo;
}

const char *bench_source(const struct bench *b)
{
        return b->src;
}

const char *bench_name(const struct bench *b)
{
        return b->name;
}

const char *bench_copies_dir(const struct bench *b)
{
        return b->copies;
}

uint64_t bench_size(const struct bench *b)
{
        return b->o.size;
}
