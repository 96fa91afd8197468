/* SPDX-License-Identifier: MIT */
/* One round of p2s-bench: the clients spawned (p2s-fetch or curl), the
 * clock from the first spawned to the last reaped, the server's figures,
 * and the copies verified and kept where asked. */
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

#define PASS(opt, val) do { if (val) { argv[n++] = opt; argv[n++] = val; } } while (0)

static int spawn_client(struct bench *b, unsigned i)
{
        char copy[PATH_MAX], log[PATH_MAX], rtt[PATH_MAX], host[32], url[1024];
        const char *argv[24];
        int n = 0;
        bench_path_in(copy, sizeof(copy), b->copies, b->side == BENCH_P2S ? "copy-" : "http-", i, "");
        bench_path_in(log, sizeof(log), b->work, b->side == BENCH_P2S ? "fetch-" : "curl-", i, ".log");
        bench_path_in(rtt, sizeof(rtt), b->work, "rtt-", i, ".csv");
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
        b->cli[i] = proc_spawn(b->loop, &spec, bench_on_cli_exit, b);
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
                bench_progress_clear(b);
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
                res->cli_cpu_s += bench_ru_cpu_s(ru);
                bench_path_in(path, sizeof(path), b->copies, b->side == BENCH_P2S ? "copy-" : "http-", i, "");
                if (bench_hash_file(path, h) == 0 && !memcmp(h, b->hash, sizeof(h)))
                        res->verified++;
                unlink(path);
                if (b->side == BENCH_P2S) {
                        strcat(path, ".part");
                        unlink(path);
                        bench_path_in(path, sizeof(path), b->work, "rtt-", i, ".csv");
                        stats_read_rtt_log(path, &rtt, &res->rtt_cache, &res->rtt_peer, &bad);
                        if (b->o.keep_rtt)
                                keep_rtt_log(b, i, path, &told_keep);
                        unlink(path);
                }
                bench_path_in(path, sizeof(path), b->work, b->side == BENCH_P2S ? "fetch-" : "curl-", i, ".log");
                if (proc_code(p) != 0 && !told) {
                        bench_progress_clear(b);
                        fprintf(stderr, "p2s-bench: round %u %s: client %u exited with %d; its last lines:\n",
                                b->round + 1, b->side == BENCH_P2S ? "p2s" : "http", i, proc_code(p));
                        bench_print_file_tail(path, 8);
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

/* The machine's CPU use over the last tick: an idle machine while clients
 * still run means the swarm waits on something other than work. */
void bench_on_cpu_tick(struct loop *l, struct loop_timer *t, void *ud)
{
        struct bench *b = ud;
        struct cpustat now;
        if (cpustat_read(&now) < 0) {
                b->cpu_ok = false;
                return;
        }
        /* a tick that came right after a late one spans too few clock
         * ticks of /proc/stat to say anything: it joins the next one */
        if (now.total - b->cpu_last.total >= CPU_TICK_MIN) {
                double busy = cpustat_busy(&b->cpu_last, &now);
                b->cpu_last = now;
                if (!b->cpu_ticks++ || busy < b->cpu_min)
                        b->cpu_min = busy;
                if (busy < 0.5)
                        b->cpu_low++;
                if (b->cpu_trace)
                        fprintf(b->cpu_trace, "%s,%u,%.0f,%.1f\n", b->side == BENCH_P2S ? "p2s" : "http",
                                b->round + 1, (double)(now_usec() - b->t0) / 1e3, 100 * busy);
        }
        /* on a steady grid from t0; a late tick just covers a longer span */
        uint64_t next = t->node.key + CPU_TICK_US;
        loop_timer_arm(l, t, next > now_usec() ? next : now_usec() + CPU_TICK_US);
}

static void cpu_start(struct bench *b)
{
        b->cpu_ticks = b->cpu_low = 0;
        b->cpu_min = 0;
        b->cpu_t1 = (struct cpustat){ 0 };      /* read when the clock stops */
        b->cpu_ok = cpustat_read(&b->cpu_t0) == 0;
        b->cpu_last = b->cpu_t0;
        if (b->cpu_ok)
                loop_timer_arm(b->loop, &b->cpu_tick, b->t0 + CPU_TICK_US);
}

static void cpu_stop(struct bench *b, struct bench_result *res)
{
        loop_timer_disarm(b->loop, &b->cpu_tick);
        if (!b->cpu_ok || !b->cpu_t1.total)
                return;
        res->have_cpu = true;
        res->cpu_busy = cpustat_busy(&b->cpu_t0, &b->cpu_t1);
        res->cpu_ticks = b->cpu_ticks;
        res->cpu_busy_min = b->cpu_min;
        res->cpu_low_ticks = b->cpu_low;
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

        int r = side == BENCH_P2S ? bench_start_p2sd(b) : bench_start_nginx(b);
        if (r < 0)
                goto out;
        r = bench_wait_for(b, PH_READY, READY_US);
        loop_timer_disarm(b->loop, &b->poll);
        if (r < 0) {
                if (r != -EINTR) {
                        bench_progress_clear(b);
                        fprintf(stderr, "p2s-bench: %s %s\n", what,
                                r == -ETIMEDOUT ? "was not ready in time" : "exited before it was ready");
                        if (side == BENCH_P2S) {
                                bench_srv_stop(b);
                                bench_srv_tail(b);
                        } else {
                                char path[PATH_MAX + 16];
                                snprintf(path, sizeof(path), "%s/nginx/error.log", b->work);
                                bench_print_file_tail(path, 8);
                                snprintf(path, sizeof(path), "%s/nginx/stderr.log", b->work);
                                bench_print_file_tail(path, 8);
                        }
                }
                goto out;
        }

        b->t0 = now_usec();
        cpu_start(b);
        for (unsigned i = 0; i < b->o.clients; i++)
                if ((r = spawn_client(b, i)) < 0)
                        goto out;
        if (b->o.progress)
                loop_timer_arm(b->loop, &b->progress, now_usec() + PROGRESS_US);
        if (b->done < b->o.clients) {
                r = bench_wait_for(b, PH_CLIENTS, b->o.timeout_us);
        } else {
                b->t1 = now_usec();
                r = 0;
        }
        loop_timer_disarm(b->loop, &b->progress);
        cpu_stop(b, res);
        bench_progress_clear(b);
        if (r == -ETIMEDOUT) {
                fprintf(stderr, "p2s-bench: round %u %s: %u of %u clients still running after %.0f s: stopping them\n",
                        round + 1, side == BENCH_P2S ? "p2s" : "http", b->o.clients - b->done, b->o.clients,
                        (double)b->o.timeout_us / 1e6);
                b->t1 = now_usec();
        } else if (r == -ECHILD) {
                fprintf(stderr, "p2s-bench: round %u: %s exited while the clients ran\n", round + 1, what);
                if (side == BENCH_P2S) {
                        bench_srv_stop(b);
                        bench_srv_tail(b);
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
                r = bench_wait_for(b, PH_STATUS, STATUS_WAIT_US);
                if (r == -EINTR)
                        goto out;
                r = 0;  /* without a fresh STATUS= the last one stands */
        }
        if (b->srv && !proc_exited(b->srv))
                res->srv_hwm_kib = side == BENCH_P2S ? bench_hwm_kib(proc_pid(b->srv)) : bench_tree_hwm_kib(proc_pid(b->srv));
        if (b->srv) {
                proc_signal(b->srv, SIGTERM);
                int s = bench_wait_for(b, PH_STOP, STOP_US);
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
                bench_srv_stop(b);    /* frees it; drains p2sd's last lines */
                res->srv_cpu_s = bench_ru_cpu_s(&ru);
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
        bench_side_cleanup(b);
        b->spawned = 0;
        return r;
}
