/* SPDX-License-Identifier: MIT */
/* The servers of p2s-bench's two sides: p2sd started with our notify
 * socket and its stderr kept for the tail, nginx started on a free port
 * with a configuration of ours and polled until it accepts. */
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
#include "bench/bench-internal.h"
#include "bench/proc.h"
#include "proto/hash.h"
#include "util/clock.h"
#include "util/loop.h"

/* ---- p2sd's stderr and notify socket -------------------------------------- */

static void srv_line(struct bench *b, const char *s)
{
        struct p2sd_complete c;
        if (b->o.verbose) {
                bench_progress_clear(b);
                fprintf(stderr, "  p2sd| %s\n", s);
        }
        snprintf(b->tail[b->ntail++ % TAIL_LINES], sizeof(b->tail[0]), "%s", s);
        if (stats_parse_complete(s, &c)) {
                b->complete = c;
                b->have_complete = true;
        }
}

void bench_srv_log_close(struct bench *b)
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
bool bench_srv_log_read(struct bench *b)
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
        if (!bench_srv_log_read(b))
                bench_srv_log_close(b);
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

int bench_notify_open(struct bench *b)
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

/* ---- the two sides ---------------------------------------------------------- */

int bench_start_p2sd(struct bench *b)
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
        b->srv = proc_spawn(b->loop, &spec, bench_on_srv_exit, b);
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

void bench_on_connect_poll(struct loop *l, struct loop_timer *t, void *ud)
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

int bench_start_nginx(struct bench *b)
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
        b->srv = proc_spawn(b->loop, &spec, bench_on_srv_exit, b);
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
