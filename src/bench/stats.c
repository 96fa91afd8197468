/* SPDX-License-Identifier: MIT */
/* Samples, RTT logs and p2sd's report lines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench/stats.h"

int samples_add(struct samples *s, uint64_t v)
{
        if (s->n == s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 1024;
                uint64_t *nv = realloc(s->v, cap * sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                s->v = nv;
                s->cap = cap;
        }
        s->v[s->n++] = v;
        s->sorted = false;
        return 0;
}

void samples_clear(struct samples *s)
{
        free(s->v);
        *s = (struct samples){ 0 };
}

double samples_mean(const struct samples *s)
{
        double sum = 0;
        for (size_t i = 0; i < s->n; i++)
                sum += (double)s->v[i];
        return s->n ? sum / (double)s->n : 0;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

uint64_t samples_percentile(struct samples *s, double q)
{
        if (!s->n)
                return 0;
        if (!s->sorted) {
                qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
                s->sorted = true;
        }
        /* nearest rank: the smallest value with at least q% of samples at or below it */
        double rank = q / 100.0 * (double)s->n;
        size_t k = (size_t)rank;
        if ((double)k < rank)
                k++;
        if (k < 1)
                k = 1;
        if (k > s->n)
                k = s->n;
        return s->v[k - 1];
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

double stats_median(double *v, size_t n)
{
        if (!n)
                return 0;
        qsort(v, n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int stats_read_rtt_log(const char *path, struct samples *s, uint64_t *cache, uint64_t *peer, uint64_t *bad)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : -errno;
        char line[256];
        int r = 0;
        while (fgets(line, sizeof(line), f)) {
                unsigned long long chunk, t, rtt;
                char src[16];
                if (sscanf(line, "%llu,%llu,%llu,%15[a-z]", &chunk, &t, &rtt, src) != 4 ||
                    (strcmp(src, "cache") && strcmp(src, "peer"))) {
                        (*bad)++;       /* a header row, or a row cut short */
                        continue;
                }
                if ((r = samples_add(s, rtt)) < 0)
                        break;
                (*(src[0] == 'c' ? cache : peer))++;
        }
        if (!r && ferror(f))
                r = -EIO;
        fclose(f);
        return r;
}

bool stats_parse_complete(const char *line, struct p2sd_complete *c)
{
        /* the swarm's name is quoted and may hold anything: look after its end */
        const char *p = strstr(line, "' complete: ");
        if (!p || !strstr(line, "swarm "))
                return false;
        unsigned long long r, h, u, d;
        if (sscanf(p, "' complete: %llu requests, %llu cache hits, %llu uploads, %llu duplicate",
                   &r, &h, &u, &d) != 4)
                return false;
        *c = (struct p2sd_complete){ r, h, u, d };
        return true;
}

bool stats_parse_status(const char *status, uint64_t *mib_in, uint64_t *mib_out)
{
        unsigned sw, m;
        unsigned long long in, out;
        if (sscanf(status, "%u swarms, %u members, %llu MiB in, %llu MiB out", &sw, &m, &in, &out) != 4)
                return false;
        *mib_in = in;
        *mib_out = out;
        return true;
}
