/* SPDX-License-Identifier: MIT */
/* p2s-bench: time N p2s-fetch clients against one p2sd on loopback (and, with
 * --http, the same downloads from nginx with curl), verify every copy, report. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bench/bench.h"
#include "config.h"
#include "util/parse.h"

static const char usage[] =
"Usage: p2s-bench [OPTIONS]\n"
"Time N p2s-fetch clients fetching one file from p2sd on 127.0.0.1, verify\n"
"every copy, and report the figures; with --http, also from nginx with curl.\n"
"\n"
"  -n, --clients N          clients per round (default 10)\n"
"  -s, --size SIZE          generate a pseudo-random file of SIZE, K/M/G (default 64M)\n"
"  -f, --file FILE          serve FILE instead\n"
"  -r, --rounds N           rounds (default 1); with --http each runs both sides,\n"
"                           alternating which goes first\n"
"      --control udp|tcp    p2sd --control\n"
"      --cache SIZE         p2sd --cache\n"
"      --chunk-size SIZE    p2sd --chunk-size\n"
"      --query directed|broadcast  p2sd --query\n"
"      --replicas R         p2sd --replicas\n"
"      --order sequential|random   p2s-fetch --order\n"
"      --window N           p2s-fetch --window\n"
"  -o, --out DIR            put the copies in a new directory under DIR (tmpfs or\n"
"                           disk; default: the bench's directory under $TMPDIR or /tmp)\n"
"      --keep-rtt DIR       copy each client's RTT log to DIR/rtt-rROUND-cCLIENT.csv\n"
"                           (DIR is created if missing)\n"
"      --cpu-trace FILE     write the machine's CPU use every 100 ms of each clock\n"
"                           to FILE (CSV)\n"
"      --http               also download with curl from nginx, and compare\n"
"      --json               print one JSON object instead of text\n"
"  -t, --timeout SEC        give up on a side of a round after SEC (default 300)\n"
"      --p2sd PATH          p2sd to run (default $P2SD, else ../daemon/p2sd next to\n"
"                           this program, else p2sd in PATH)\n"
"      --p2s-fetch PATH     likewise p2s-fetch ($P2S_FETCH, ../fetch/p2s-fetch)\n"
"  -v, --verbose            copy p2sd's log to stderr\n"
"  -h, --help               show this help\n"
"  -V, --version            show the version\n";

static int bad(const char *opt, const char *val, const char *want)
{
        fprintf(stderr, "p2s-bench: %s: '%s' is not %s\n", opt, val, want);
        return 2;
}

static bool one_of(const char *v, const char *a, const char *b)
{
        return !strcmp(v, a) || !strcmp(v, b);
}

struct cmdline {
        struct bench_opts o;
        bool json;
        bool size_set;
};

static int parse_args(struct cmdline *c, int argc, char **argv)
{
        enum { OPT_CONTROL = 0x100, OPT_CACHE, OPT_CHUNK, OPT_QUERY, OPT_REPLICAS, OPT_ORDER, OPT_WINDOW,
               OPT_HTTP, OPT_JSON, OPT_P2SD, OPT_FETCH, OPT_KEEP_RTT, OPT_CPU_TRACE };
        static const struct option longopts[] = {
                { "clients", required_argument, NULL, 'n' },
                { "size", required_argument, NULL, 's' },
                { "file", required_argument, NULL, 'f' },
                { "rounds", required_argument, NULL, 'r' },
                { "control", required_argument, NULL, OPT_CONTROL },
                { "cache", required_argument, NULL, OPT_CACHE },
                { "chunk-size", required_argument, NULL, OPT_CHUNK },
                { "query", required_argument, NULL, OPT_QUERY },
                { "replicas", required_argument, NULL, OPT_REPLICAS },
                { "order", required_argument, NULL, OPT_ORDER },
                { "window", required_argument, NULL, OPT_WINDOW },
                { "out", required_argument, NULL, 'o' },
                { "keep-rtt", required_argument, NULL, OPT_KEEP_RTT },
                { "cpu-trace", required_argument, NULL, OPT_CPU_TRACE },
                { "http", no_argument, NULL, OPT_HTTP },
                { "json", no_argument, NULL, OPT_JSON },
                { "timeout", required_argument, NULL, 't' },
                { "p2sd", required_argument, NULL, OPT_P2SD },
                { "p2s-fetch", required_argument, NULL, OPT_FETCH },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        struct bench_opts *o = &c->o;
        *c = (struct cmdline){ .o = { .clients = 10, .rounds = 1, .size = 64u << 20,
                                      .timeout_us = 300 * 1000000ull } };
        uint64_t v;
        int ch;
        opterr = 0;     /* our own one-line messages */
        while ((ch = getopt_long(argc, argv, ":n:s:f:r:o:t:vhV", longopts, NULL)) != -1) {
                switch (ch) {
                case 'n':
                        if (parse_uint(optarg, 1, 2000, &v) < 0)
                                return bad("--clients", optarg, "a count from 1 to 2000");
                        o->clients = (unsigned)v;
                        break;
                case 's':
                        if (parse_size(optarg, &v) < 0 || v == 0)
                                return bad("--size", optarg, "a size above 0 (bytes, or with K/M/G)");
                        o->size = v;
                        c->size_set = true;
                        break;
                case 'f':
                        o->file = optarg;
                        break;
                case 'r':
                        if (parse_uint(optarg, 1, 1000, &v) < 0)
                                return bad("--rounds", optarg, "a count from 1 to 1000");
                        o->rounds = (unsigned)v;
                        break;
                case OPT_CONTROL:
                        if (!one_of(optarg, "udp", "tcp"))
                                return bad("--control", optarg, "udp or tcp");
                        o->control = optarg;
                        break;
                case OPT_CACHE:
                        if (parse_size(optarg, &v) < 0)
                                return bad("--cache", optarg, "a size (bytes, or with K/M/G)");
                        o->cache = optarg;
                        break;
                case OPT_CHUNK:
                        if (parse_size(optarg, &v) < 0 || v < P2S_MIN_CHUNK || v > P2S_MAX_CHUNK)
                                return bad("--chunk-size", optarg, "a size from 256 to 16M");
                        o->chunk_size = optarg;
                        break;
                case OPT_QUERY:
                        if (!one_of(optarg, "directed", "broadcast"))
                                return bad("--query", optarg, "directed or broadcast");
                        o->query = optarg;
                        break;
                case OPT_REPLICAS:
                        if (parse_uint(optarg, 1, 64, &v) < 0)
                                return bad("--replicas", optarg, "a count from 1 to 64");
                        o->replicas = optarg;
                        break;
                case OPT_ORDER:
                        if (!one_of(optarg, "sequential", "random"))
                                return bad("--order", optarg, "sequential or random");
                        o->order = optarg;
                        break;
                case OPT_WINDOW:
                        if (parse_uint(optarg, 1, 1024, &v) < 0)
                                return bad("--window", optarg, "a count from 1 to 1024");
                        o->window = optarg;
                        break;
                case 'o':
                        if (!*optarg)
                                return bad("--out", optarg, "a directory");
                        o->out = optarg;
                        break;
                case OPT_KEEP_RTT:
                        if (!*optarg)
                                return bad("--keep-rtt", optarg, "a directory");
                        o->keep_rtt = optarg;
                        break;
                case OPT_CPU_TRACE:
                        if (!*optarg)
                                return bad("--cpu-trace", optarg, "a file");
                        o->cpu_trace = optarg;
                        break;
                case OPT_HTTP:
                        o->http = true;
                        break;
                case OPT_JSON:
                        c->json = true;
                        break;
                case 't':
                        if (parse_seconds(optarg, &v) < 0 || v == 0)
                                return bad("--timeout", optarg, "a positive number of seconds");
                        o->timeout_us = v;
                        break;
                case OPT_P2SD:
                        o->p2sd = optarg;
                        break;
                case OPT_FETCH:
                        o->fetch = optarg;
                        break;
                case 'v':
                        o->verbose = true;
                        break;
                case 'h':
                        fputs(usage, stdout);
                        return 1;
                case 'V':
                        printf("p2s-bench %s\n", P2S_VERSION_STR);
                        return 1;
                case ':':
                        fprintf(stderr, "p2s-bench: option '%s' needs a value\n", argv[optind - 1]);
                        return 2;
                default:
                        if (optopt)
                                fprintf(stderr, "p2s-bench: unknown option '-%c'\n", optopt);
                        else
                                fprintf(stderr, "p2s-bench: unknown option '%s'\n", argv[optind - 1]);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "p2s-bench: unexpected argument '%s' (try --help)\n", argv[optind]);
                return 2;
        }
        if (o->file && c->size_set) {
                fprintf(stderr, "p2s-bench: give either --size or --file, not both\n");
                return 2;
        }
        return 0;
}

/* ---- finding the programs ------------------------------------------------------ */

static char *in_path(const char *prog)
{
        const char *path = getenv("PATH");
        char buf[PATH_MAX];
        /* nginx lives in sbin, which a user's PATH may lack */
        char *all = NULL;
        if (asprintf(&all, "%s:/usr/local/sbin:/usr/sbin:/sbin", path && *path ? path : "/usr/local/bin:/usr/bin:/bin") < 0)
                return NULL;
        char *save = NULL, *found = NULL;
        for (char *d = strtok_r(all, ":", &save); d && !found; d = strtok_r(NULL, ":", &save))
                if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", *d ? d : ".", prog) < sizeof(buf) &&
                    access(buf, X_OK) == 0)
                        found = strdup(buf);
        free(all);
        return found;
}

/* --opt, else $ENV, else next to us in the build tree, else PATH. */
static char *find_program(const char *given, const char *env, const char *rel, const char *prog)
{
        const char *e = getenv(env);
        if (given)
                return strdup(given);
        if (e && *e)
                return strdup(e);
        char self[PATH_MAX], buf[PATH_MAX + 64];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = 0;
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = 0;
                        snprintf(buf, sizeof(buf), "%s/%s", self, rel);
                        if (access(buf, X_OK) == 0)
                                return strdup(buf);
                }
        }
        return in_path(prog);
}

static int check_program(const char *path, const char *what, const char *how)
{
        if (path && access(path, X_OK) == 0)
                return 0;
        if (path)
                fprintf(stderr, "p2s-bench: cannot execute %s %s: %s (%s)\n", what, path, strerror(errno), how);
        else
                fprintf(stderr, "p2s-bench: %s not found (%s)\n", what, how);
        return 1;
}

/* ---- reports --------------------------------------------------------------------- */

static double goodput_mib_s(const struct bench_opts *o, uint64_t size, const struct bench_result *r)
{
        return r->wall_s > 0 ? (double)o->clients * (double)size / (1024.0 * 1024.0) / r->wall_s : 0;
}

static void text_cpu(const struct bench_result *r)
{
        if (r->have_cpu)
                printf("  machine: %.0f%% busy over the clock, least busy 100 ms %.0f%%, %u of %u ticks under half busy\n",
                       100 * r->cpu_busy, 100 * r->cpu_busy_min, r->cpu_low_ticks, r->cpu_ticks);
}

static void text_round(const struct bench_opts *o, uint64_t size, unsigned round, enum bench_side side,
                       const struct bench_result *r)
{
        printf("round %u %s: %.3f s, %.1f MiB/s aggregate goodput, %u/%u copies verified%s\n", round + 1,
               side == BENCH_P2S ? "p2s " : "http", r->wall_s, goodput_mib_s(o, size, r), r->verified, o->clients,
               r->failed ? ", clients failed" : "");
        if (side == BENCH_P2S) {
                printf("  p2sd: peak RSS %llu KiB, CPU %.2f s", (unsigned long long)r->srv_hwm_kib, r->srv_cpu_s);
                if (r->have_status)
                        printf(", %llu MiB in, %llu MiB out", (unsigned long long)r->mib_in,
                               (unsigned long long)r->mib_out);
                if (r->have_complete)
                        printf(", %llu requests, %llu cache hits (%.1f%%)",
                               (unsigned long long)r->complete.requests, (unsigned long long)r->complete.cache_hits,
                               r->complete.requests ? 100.0 * (double)r->complete.cache_hits /
                                                      (double)r->complete.requests : 0.0);
                printf("\n  p2s-fetch: largest RSS %llu KiB, total CPU %.2f s; relay RTT ",
                       (unsigned long long)r->cli_max_rss_kib, r->cli_cpu_s);
                if (r->rtt_n)
                        printf("mean %.0f us, p50 %llu us, p99 %llu us (%llu chunks, %llu from cache)\n",
                               r->rtt_mean_us, (unsigned long long)r->rtt_p50_us,
                               (unsigned long long)r->rtt_p99_us, (unsigned long long)r->rtt_n,
                               (unsigned long long)r->rtt_cache);
                else
                        printf("none (no chunk went through the relay)\n");
        } else {
                printf("  nginx: peak RSS %llu KiB, CPU %.2f s\n  curl: largest RSS %llu KiB, total CPU %.2f s\n",
                       (unsigned long long)r->srv_hwm_kib, r->srv_cpu_s, (unsigned long long)r->cli_max_rss_kib,
                       r->cli_cpu_s);
        }
        text_cpu(r);
}

static void json_string(const char *s)
{
        putchar('"');
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\')
                        printf("\\%c", c);
                else if (c < 0x20)
                        printf("\\u%04x", c);
                else
                        putchar(c);
        }
        putchar('"');
}

static void json_round(const struct bench_opts *o, uint64_t size, unsigned round, enum bench_side side,
                       const struct bench_result *r)
{
        printf("{\"round\": %u, \"ran\": %s, \"ok\": %s, \"wall_s\": %.6f, \"goodput_mib_s\": %.3f, "
               "\"verified\": %u, \"failed_clients\": %u, \"server_peak_rss_kib\": %llu, \"server_cpu_s\": %.3f, "
               "\"client_max_rss_kib\": %llu, \"clients_cpu_s\": %.3f",
               round + 1, r->ran ? "true" : "false", r->ok ? "true" : "false", r->wall_s,
               goodput_mib_s(o, size, r), r->verified, r->failed, (unsigned long long)r->srv_hwm_kib,
               r->srv_cpu_s, (unsigned long long)r->cli_max_rss_kib, r->cli_cpu_s);
        if (side == BENCH_P2S) {
                if (r->have_status)
                        printf(", \"server_mib_in\": %llu, \"server_mib_out\": %llu",
                               (unsigned long long)r->mib_in, (unsigned long long)r->mib_out);
                if (r->have_complete)
                        printf(", \"requests\": %llu, \"cache_hits\": %llu, \"cache_hit_ratio\": %.4f, "
                               "\"uploads\": %llu, \"dup_uploads\": %llu",
                               (unsigned long long)r->complete.requests, (unsigned long long)r->complete.cache_hits,
                               r->complete.requests ? (double)r->complete.cache_hits / (double)r->complete.requests : 0.0,
                               (unsigned long long)r->complete.uploads, (unsigned long long)r->complete.dup_uploads);
                printf(", \"rtt_samples\": %llu, \"rtt_from_cache\": %llu, \"rtt_from_peer\": %llu, "
                       "\"rtt_mean_us\": %.1f, \"rtt_p50_us\": %llu, \"rtt_p99_us\": %llu",
                       (unsigned long long)r->rtt_n, (unsigned long long)r->rtt_cache,
                       (unsigned long long)r->rtt_peer, r->rtt_mean_us, (unsigned long long)r->rtt_p50_us,
                       (unsigned long long)r->rtt_p99_us);
        }
        if (r->have_cpu)
                printf(", \"machine_busy\": %.4f, \"machine_busy_min_tick\": %.4f, \"ticks\": %u, \"ticks_under_half\": %u",
                       r->cpu_busy, r->cpu_busy_min, r->cpu_ticks, r->cpu_low_ticks);
        putchar('}');
}

static void json_opt(const char *key, const char *v)
{
        printf(", \"%s\": ", key);
        if (v)
                json_string(v);
        else
                fputs("null", stdout);
}

struct summary {
        double p2s_med, http_med, ratio_med, ratio_min, ratio_max;
        unsigned verified, copies;
        bool all_verified, ok;
};

static void summarize(const struct bench_opts *o, const struct bench_result *p2s, const struct bench_result *http,
                      unsigned rounds, struct summary *s)
{
        double *a = calloc(3 * (size_t)rounds + 1, sizeof(double)), *h = a + rounds, *q = h + rounds;
        unsigned nq = 0;
        *s = (struct summary){ .ok = true };
        if (!a)
                return;
        for (unsigned i = 0; i < rounds; i++) {
                a[i] = p2s[i].wall_s;
                s->verified += p2s[i].verified;
                s->copies += o->clients;
                s->ok = s->ok && p2s[i].ok;
                if (o->http) {
                        h[i] = http[i].wall_s;
                        s->verified += http[i].verified;
                        s->copies += o->clients;
                        s->ok = s->ok && http[i].ok;
                        if (http[i].wall_s > 0 && p2s[i].ran && http[i].ran)
                                q[nq++] = p2s[i].wall_s / http[i].wall_s;
                }
        }
        s->all_verified = s->copies && s->verified == s->copies;
        s->p2s_med = stats_median(a, rounds);
        if (o->http)
                s->http_med = stats_median(h, rounds);
        if (nq) {
                s->ratio_med = stats_median(q, nq);     /* sorts q */
                s->ratio_min = q[0];
                s->ratio_max = q[nq - 1];
        }
        free(a);
}

static void report(const struct cmdline *c, struct bench *b, const struct bench_result *p2s,
                   const struct bench_result *http, unsigned rounds, bool interrupted)
{
        const struct bench_opts *o = &c->o;
        uint64_t size = bench_size(b);
        struct summary s;
        summarize(o, p2s, http, rounds, &s);
        if (c->json) {
                printf("{\"clients\": %u, \"size\": %llu, \"rounds\": %u, \"rounds_done\": %u", o->clients,
                       (unsigned long long)size, o->rounds, rounds);
                json_opt("file", o->file ? bench_source(b) : NULL);
                json_opt("control", o->control);
                json_opt("cache", o->cache);
                json_opt("chunk_size", o->chunk_size);
                json_opt("query", o->query);
                json_opt("replicas", o->replicas);
                json_opt("order", o->order);
                json_opt("window", o->window);
                json_opt("copies_dir", bench_copies_dir(b));
                json_opt("keep_rtt", o->keep_rtt);
                printf(", \"p2s\": [");
                for (unsigned i = 0; i < rounds; i++) {
                        if (i)
                                fputs(", ", stdout);
                        json_round(o, size, i, BENCH_P2S, &p2s[i]);
                }
                printf("]");
                if (o->http) {
                        printf(", \"http\": [");
                        for (unsigned i = 0; i < rounds; i++) {
                                if (i)
                                        fputs(", ", stdout);
                                json_round(o, size, i, BENCH_HTTP, &http[i]);
                        }
                        printf("], \"http_median_s\": %.6f, \"ratio_p2s_http_median\": %.4f, "
                               "\"ratio_p2s_http_min\": %.4f, \"ratio_p2s_http_max\": %.4f",
                               s.http_med, s.ratio_med, s.ratio_min, s.ratio_max);
                }
                printf(", \"p2s_median_s\": %.6f, \"copies\": %u, \"copies_verified\": %u, "
                       "\"all_verified\": %s, \"interrupted\": %s, \"ok\": %s}\n",
                       s.p2s_med, s.copies, s.verified, s.all_verified ? "true" : "false",
                       interrupted ? "true" : "false", s.ok && !interrupted ? "true" : "false");
                return;
        }
        if (rounds && (rounds > 1 || o->http)) {
                printf("p2s  times:");
                for (unsigned i = 0; i < rounds; i++)
                        printf(" %.3f", p2s[i].wall_s);
                printf(" s (median %.3f s)\n", s.p2s_med);
        }
        if (rounds && o->http) {
                printf("http times:");
                for (unsigned i = 0; i < rounds; i++)
                        printf(" %.3f", http[i].wall_s);
                printf(" s (median %.3f s)\n", s.http_med);
                printf("p2s/http: median %.3f (min %.3f, max %.3f)\n", s.ratio_med, s.ratio_min, s.ratio_max);
        }
        printf("%u/%u copies verified%s\n", s.verified, s.copies, interrupted ? " (interrupted)" : "");
}

int main(int argc, char **argv)
{
        struct cmdline c;
        int r = parse_args(&c, argc, argv);
        if (r)
                return r == 1 ? 0 : 2;
        struct bench_opts *o = &c.o;
        char *p2sd = find_program(o->p2sd, "P2SD", "../daemon/p2sd", "p2sd");
        char *fetch = find_program(o->fetch, "P2S_FETCH", "../fetch/p2s-fetch", "p2s-fetch");
        char *nginx = NULL, *curl = NULL;
        int bad_prog = check_program(p2sd, "p2sd", "give --p2sd PATH or set $P2SD") +
                       check_program(fetch, "p2s-fetch", "give --p2s-fetch PATH or set $P2S_FETCH");
        if (o->http) {
                const char *e;
                nginx = (e = getenv("NGINX")) && *e ? strdup(e) : in_path("nginx");
                curl = (e = getenv("CURL")) && *e ? strdup(e) : in_path("curl");
                bad_prog += check_program(nginx, "nginx", "--http needs it: install nginx (or nginx-light), "
                                          "or set $NGINX");
                bad_prog += check_program(curl, "curl", "--http needs it: install curl, or set $CURL");
        }
        if (o->keep_rtt && mkdir(o->keep_rtt, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "p2s-bench: --keep-rtt: cannot create %s: %s\n", o->keep_rtt, strerror(errno));
                bad_prog++;
        } else if (o->keep_rtt && access(o->keep_rtt, W_OK | X_OK) < 0) {
                fprintf(stderr, "p2s-bench: --keep-rtt: cannot write into %s: %s\n", o->keep_rtt, strerror(errno));
                bad_prog++;
        }
        if (bad_prog) {
                free(p2sd);
                free(fetch);
                free(nginx);
                free(curl);
                return 1;
        }
        o->p2sd = p2sd;
        o->fetch = fetch;
        o->nginx = nginx;
        o->curl = curl;
        o->progress = isatty(STDERR_FILENO);

        char err[PATH_MAX + 128];
        struct bench *b = bench_new(o, err, sizeof(err));
        struct bench_result *p2s = calloc(o->rounds, sizeof(*p2s)), *http = calloc(o->rounds, sizeof(*http));
        if (!b || !p2s || !http) {
                fprintf(stderr, "p2s-bench: %s\n", b ? "out of memory" : err);
                r = 1;
                goto out;
        }
        if (!c.json)
                printf("p2s-bench: %u clients, %llu bytes ('%s'%s), %u round%s\n", o->clients,
                       (unsigned long long)bench_size(b), bench_name(b), o->file ? "" : ", generated", o->rounds,
                       o->rounds == 1 ? "" : "s");
        fflush(stdout);
        unsigned done = 0;
        bool failed = false;
        for (unsigned i = 0; i < o->rounds && !failed; i++) {
                /* alternate which side goes first, so neither always meets a warm page cache */
                for (int k = 0; k < (o->http ? 2 : 1) && !failed; k++) {
                        enum bench_side side = (o->http && (i % 2) != (unsigned)k) ? BENCH_HTTP : BENCH_P2S;
                        struct bench_result *res = side == BENCH_P2S ? &p2s[i] : &http[i];
                        r = bench_run(b, side, i, res);
                        if (r < 0) {
                                failed = true;
                                break;
                        }
                        if (!c.json) {
                                text_round(o, bench_size(b), i, side, res);
                                fflush(stdout);
                        }
                        if (!res->ok)
                                failed = true;
                }
                if (r == 0)
                        done = i + 1;
        }
        bool interrupted = r == -EINTR;
        if (r < 0 && !interrupted)
                fprintf(stderr, "p2s-bench: round %u could not run: %s\n", done + 1, strerror(-r));
        report(&c, b, p2s, http, done, interrupted);
        int sig = bench_signal(b);
        r = interrupted ? 128 + sig : failed ? 1 : 0;
out:
        bench_free(b);
        free(p2s);
        free(http);
        free(p2sd);
        free(fetch);
        free(nginx);
        free(curl);
        return r;
}
