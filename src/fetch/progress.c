/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include "fetch/progress.h"
#include "proto/hash.h"
#include "util/clock.h"

#define NOTIFY_EVERY_US (1 * USEC_PER_SEC)
#define TTY_EVERY_US    (200 * USEC_PER_MSEC)
#define PLAIN_EVERY_US  (5 * USEC_PER_SEC)

void progress_init(struct progress *p, const char *name, bool quiet)
{
        *p = (struct progress){ .name = name, .quiet = quiet, .next_notify = UINT64_MAX,
                                .next_print = UINT64_MAX };
        p->tty = !quiet && isatty(STDERR_FILENO);
        p->notify = getenv("NOTIFY_SOCKET") != NULL;
}

/* The service manager's STATUS= and the line on stderr run on their own
 * clocks: under systemd stderr is the journal, which wants a line every few
 * seconds, not every second. */
static uint64_t print_interval(const struct progress *p)
{
        if (p->quiet)
                return UINT64_MAX;
        return p->tty ? TTY_EVERY_US : PLAIN_EVERY_US;
}

static uint64_t after(uint64_t t, uint64_t iv)
{
        return iv == UINT64_MAX ? UINT64_MAX : t + iv;
}

void progress_start(struct progress *p, uint64_t file_size, uint64_t chunks)
{
        p->file_size = file_size;
        p->chunks = chunks;
        p->started = p->last_t = now_usec();
        p->next_notify = after(p->started, p->notify ? NOTIFY_EVERY_US : UINT64_MAX);
        p->next_print = after(p->started, print_interval(p));
}

uint64_t progress_next(const struct progress *p)
{
        return p->next_notify < p->next_print ? p->next_notify : p->next_print;
}

void progress_tick(struct progress *p, uint64_t have, const struct member_stats *st, uint64_t now)
{
        bool notify = now >= p->next_notify, print = now >= p->next_print;
        if (!p->chunks || (!notify && !print))
                return;
        uint64_t bytes = p->file_size * have / p->chunks;
        double dt = (now - p->last_t) / 1e6;
        if (dt > 0) {
                double inst = (double)(bytes - p->last_bytes) / dt;
                p->rate = p->rate ? 0.7 * p->rate + 0.3 * inst : inst;
        }
        p->last_bytes = bytes;
        p->last_t = now;
        uint64_t got = st->chunks_cache + st->chunks_peer;
        unsigned cache_pct = got ? (unsigned)(st->chunks_cache * 100 / got) : 0;
        unsigned pct = (unsigned)(have * 100 / p->chunks);
        double mib = 1024.0 * 1024.0;
        /* whole MiB as in "fetched 512/1024 MiB", tenths for small files */
        int prec = p->file_size < 10 * 1024 * 1024 ? 1 : 0;
        if (notify) {
                sd_notifyf(0, "STATUS=fetched %.*f/%.*f MiB, %.*f MiB/s, %u%% from cache", prec, bytes / mib,
                           prec, p->file_size / mib, prec, p->rate / mib, cache_pct);
                p->next_notify = now + NOTIFY_EVERY_US;
        }
        if (!print)
                return;
        if (p->tty) {
                char bar[31];
                unsigned fill = pct * 30 / 100;
                for (unsigned i = 0; i < 30; i++)
                        bar[i] = i < fill ? '#' : '.';
                bar[30] = 0;
                double eta = p->rate > 0 ? (double)(p->file_size - bytes) / p->rate : 0;
                fprintf(stderr, "\r%s [%s] %3u%% %7.1f MiB/s ETA %4.0fs ", p->name, bar, pct, p->rate / mib, eta);
        } else {
                fprintf(stderr, "p2s-fetch: %s: %.1f/%.1f MiB (%u%%), %.1f MiB/s, %u%% from cache\n", p->name,
                        bytes / mib, p->file_size / mib, pct, p->rate / mib, cache_pct);
        }
        p->next_print = after(now, print_interval(p));
}

void progress_complete(struct progress *p, const struct member_stats *st, const struct manifest *mf, uint64_t now)
{
        p->next_notify = p->next_print = UINT64_MAX;
        if (p->quiet)
                return;
        if (p->tty)
                fputc('\n', stderr);
        double secs = p->started && now > p->started ? (now - p->started) / 1e6 : 0;
        uint64_t total = st->chunks_share + st->chunks_cache + st->chunks_peer;
        char hex[2 * P2S_HASH_SIZE + 1];
        hash_hex(mf->file_hash, hex);
        fprintf(stderr, "p2s-fetch: %s: %llu bytes verified in %.2f s (%.1f MiB/s): %llu%% share, %llu%% cache, %llu%% peers; sha256 %s\n",
                p->name, (unsigned long long)mf->file_size, secs,
                secs > 0 ? mf->file_size / secs / (1024.0 * 1024.0) : 0.0,
                (unsigned long long)(total ? st->chunks_share * 100 / total : 0),
                (unsigned long long)(total ? st->chunks_cache * 100 / total : 0),
                (unsigned long long)(total ? st->chunks_peer * 100 / total : 0), hex);
}
