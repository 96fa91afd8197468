/* SPDX-License-Identifier: MIT */
/* p2s-bench's output, text and JSON. See report.h. */
#include <stdio.h>
#include <stdlib.h>
#include "bench/report.h"
#include "bench/stats.h"

static double goodput_mib_s(const struct bench_opts *o, uint64_t size, const struct bench_result *r)
{
        return r->wall_s > 0 ? (double)o->clients * (double)size / (1024.0 * 1024.0) / r->wall_s : 0;
}

static void text_cpu(const struct bench_result *r)
{
        if (!r->have_cpu)
                return;
        printf("  machine: %.0f%% busy over the clock", 100 * r->cpu_busy);
        /* a clock shorter than one tick has no least busy tick to show */
        if (r->cpu_ticks)
                printf(", least busy 100 ms %.0f%%, %u of %u ticks under half busy", 100 * r->cpu_busy_min,
                       r->cpu_low_ticks, r->cpu_ticks);
        putchar('\n');
}

void report_round(const struct bench_opts *o, uint64_t size, unsigned round, enum bench_side side,
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
        if (r->have_cpu) {
                printf(", \"machine_busy\": %.4f, \"ticks\": %u, \"ticks_under_half\": %u", r->cpu_busy,
                       r->cpu_ticks, r->cpu_low_ticks);
                if (r->cpu_ticks)
                        printf(", \"machine_busy_min_tick\": %.4f", r->cpu_busy_min);
                else
                        fputs(", \"machine_busy_min_tick\": null", stdout);
        }
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

void report_run(const struct bench_opts *o, bool json, struct bench *b, const struct bench_result *p2s,
                const struct bench_result *http, unsigned rounds, bool interrupted)
{
        uint64_t size = bench_size(b);
        struct summary s;
        summarize(o, p2s, http, rounds, &s);
        if (json) {
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

