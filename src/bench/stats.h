/* SPDX-License-Identifier: MIT */
/* The figures p2s-bench collects: samples with their percentiles, the
 * clients' RTT logs, and the lines p2sd reports its counters in. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct samples {
        uint64_t *v;
        size_t n, cap;
        bool sorted;
};

int samples_add(struct samples *s, uint64_t v);            /* 0 or -ENOMEM */
void samples_clear(struct samples *s);                     /* frees the storage */
double samples_mean(const struct samples *s);              /* 0 when empty */
/* Nearest-rank percentile, q in [0, 100]; 0 when empty. */
uint64_t samples_percentile(struct samples *s, double q);

/* Median and range of n values (sorted in place); 0 when n is 0. */
double stats_median(double *v, size_t n);

/* Adds the rtt_us column of a p2s-fetch --rtt-log file
 * (chunk,request_time_us,rtt_us,cache|peer) to s; counts cache and peer rows.
 * A missing file counts as empty (a client that relayed nothing writes none).
 * 0, or -errno; malformed rows are skipped and counted in *bad. */
int stats_read_rtt_log(const char *path, struct samples *s, uint64_t *cache, uint64_t *peer, uint64_t *bad);

/* p2sd's completion line: "swarm N: 'NAME' complete: R requests, H cache hits, ...". */
struct p2sd_complete {
        uint64_t requests, cache_hits, uploads, dup_uploads;
};
bool stats_parse_complete(const char *line, struct p2sd_complete *c);

/* p2sd's STATUS=: "S swarms, M members, I MiB in, O MiB out, cache hits P%". */
bool stats_parse_status(const char *status, uint64_t *mib_in, uint64_t *mib_out);
