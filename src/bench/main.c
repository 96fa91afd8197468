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
#include "bench/report.h"
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
                                report_round(o, bench_size(b), i, side, res);
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
        report_run(o, c.json, b, p2s, http, done, interrupted);
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
