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
#include "bench/bench-internal.h"
#include "bench/proc.h"
#include "proto/hash.h"
#include "util/clock.h"
#include "util/loop.h"

/* ---- small helpers --------------------------------------------------------- */

static void on_deadline(struct loop *l, struct loop_timer *t, void *ud)
{
        loop_quit(l, -ETIMEDOUT);
}

int bench_wait_for(struct bench *b, enum phase ph, uint64_t timeout_us)
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

uint64_t bench_hwm_kib(pid_t pid)
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
uint64_t bench_tree_hwm_kib(pid_t pid)
{
        uint64_t max = bench_hwm_kib(pid);
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
        FILE *f = fopen(path, "re");
        int c;
        if (!f)
                return max;
        while (fscanf(f, "%d", &c) == 1) {
                uint64_t k = bench_hwm_kib(c);
                if (k > max)
                        max = k;
        }
        fclose(f);
        return max;
}

double bench_ru_cpu_s(const struct rusage *ru)
{
        return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
               (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

int bench_hash_file(const char *path, uint8_t out[P2S_HASH_SIZE])
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

void bench_print_file_tail(const char *path, unsigned lines)
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

void bench_progress_clear(struct bench *b)
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

/* ---- processes --------------------------------------------------------------- */

void bench_on_srv_exit(struct proc *p, void *ud)
{
        struct bench *b = ud;
        loop_quit(b->loop, b->phase == PH_STOP ? 0 : -ECHILD);
}

void bench_on_cli_exit(struct proc *p, void *ud)
{
        struct bench *b = ud;
        b->done++;
        if (proc_code(p) != 0)
                b->failed++;
        if (b->done == b->o.clients && b->phase == PH_CLIENTS) {
                b->t1 = now_usec();
                if (b->cpu_ok && cpustat_read(&b->cpu_t1) < 0)
                        b->cpu_ok = false;
                loop_quit(b->loop, 0);
        }
}

/* SIGTERM, then SIGKILL (by proc_free) if it does not exit in time. */
void bench_srv_stop(struct bench *b)
{
        if (b->srv && !proc_exited(b->srv) && proc_signal(b->srv, SIGTERM) == 0) {
                int r = bench_wait_for(b, PH_STOP, STOP_US);
                if (r == -EINTR)
                        b->phase = PH_IDLE;
        }
        b->phase = PH_IDLE;
        b->srv = proc_free(b->srv);
        if (b->srv_log >= 0) {
                /* the writer is gone: what is left is buffered */
                while (bench_srv_log_read(b))
                        ;
                bench_srv_log_close(b);
        }
}

static void clients_free(struct bench *b)
{
        for (unsigned i = 0; i < b->spawned; i++)
                b->cli[i] = proc_free(b->cli[i]);
        b->spawned = 0;
}

void bench_side_cleanup(struct bench *b)
{
        loop_timer_disarm(b->loop, &b->progress);
        loop_timer_disarm(b->loop, &b->poll);
        loop_timer_disarm(b->loop, &b->cpu_tick);
        clients_free(b);
        bench_srv_stop(b);
}

void bench_srv_tail(struct bench *b)
{
        unsigned n = b->ntail < TAIL_LINES ? b->ntail : TAIL_LINES;
        for (unsigned i = b->ntail - n; i < b->ntail; i++)
                fprintf(stderr, "  | %s\n", b->tail[i % TAIL_LINES]);
}

/* dir/PREFIXi, plus for clients ".log" (their stderr) or ".csv" (their RTT log) */
void bench_path_in(char *out, size_t len, const char *dir, const char *prefix, unsigned i, const char *suffix)
{
        if ((size_t)snprintf(out, len, "%s/%s%u%s", dir, prefix, i, suffix) >= len)
                out[0] = 0;     /* cannot happen: dir is ours and short enough */
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
        loop_timer_init(&b->poll, bench_on_connect_poll, b);
        loop_timer_init(&b->cpu_tick, bench_on_cpu_tick, b);
        if (o->cpu_trace) {
                if (!(b->cpu_trace = fopen(o->cpu_trace, "we"))) {
                        snprintf(err, errlen, "--cpu-trace: cannot create %s: %s", o->cpu_trace, strerror(errno));
                        return bench_free(b);
                }
                fputs("side,round,ms,busy_pct\n", b->cpu_trace);
        }
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
        if ((r = bench_notify_open(b)) < 0) {
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
        if ((r = bench_hash_file(b->src, b->hash)) < 0) {
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
                bench_side_cleanup(b);
        if (b->notify_fd >= 0) {
                loop_del(b->loop, b->notify_fd);
                close(b->notify_fd);
        }
        if (b->copies_outside)
                rm_tree(b->copies);
        rm_tree(b->work);
        loop_free(b->loop);
        if (b->cpu_trace)
                fclose(b->cpu_trace);
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
