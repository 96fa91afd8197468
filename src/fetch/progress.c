/* SPDX-License-Identifier: MIT */
/* p2s-fetch's progress on stderr and to the service manager: the clocks of
 * each output, the terminal's width, and the pure renderers of the bar, the
 * plain line and the JSON object. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include "fetch/progress.h"
#include "proto/hash.h"
#include "util/clock.h"

#define NOTIFY_EVERY_US (1 * USEC_PER_SEC)
#define BAR_EVERY_US    (200 * USEC_PER_MSEC)
#define PLAIN_EVERY_US  (5 * USEC_PER_SEC)
#define JSON_EVERY_US   (1 * USEC_PER_SEC)

#define BAR_MIN         10u     /* "[########]": narrower tells nothing */
#define BAR_MAX         52u     /* wider only makes the eye travel */
#define DEFAULT_WIDTH   80u

/* The terminal is the process's, not one progress's: main hears SIGWINCH. */
static bool width_stale = true;
static unsigned term_width = DEFAULT_WIDTH;
static bool bar_open;           /* a bar is drawn and the cursor sits after it */

void progress_resize(void)
{
        width_stale = true;
}

static unsigned terminal_width(void)
{
        if (width_stale) {
                struct winsize ws;
                term_width = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : DEFAULT_WIDTH;
                width_stale = false;
        }
        return term_width;
}

static void write_all(const char *s, size_t n)
{
        while (n > 0) {
                ssize_t w = write(STDERR_FILENO, s, n);
                if (w <= 0)
                        return;         /* nowhere to report it */
                s += w;
                n -= (size_t)w;
        }
}

void progress_interrupt(void)
{
        if (bar_open) {
                bar_open = false;
                write_all("\n", 1);
        }
}

/* ---- text helpers -------------------------------------------------------- */

struct out {
        char *p;
        size_t cap, len;        /* len < cap always; p[len] == 0 */
};

static void out_add(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_add(struct out *o, const char *fmt, ...)
{
        if (o->cap == 0)
                return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap - 1;
}

static struct out out_start(char *buf, size_t cap)
{
        if (cap)
                buf[0] = 0;
        return (struct out){ .p = buf, .cap = cap };
}

static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };

static unsigned unit_for(double v)
{
        unsigned u = 0;
        while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
                v /= 1024.0;
                u++;
        }
        return u;
}

static double in_unit(double v, unsigned u)
{
        while (u--)
                v /= 1024.0;
        return v;
}

size_t progress_format_duration(char *buf, size_t cap, double secs)
{
        struct out o = out_start(buf, cap);
        if (secs < 0 || secs != secs) {
                out_add(&o, "--:--");
                return o.len;
        }
        unsigned long long s = (unsigned long long)(secs + 0.5);
        if (s < 3600)
                out_add(&o, "%llu:%02llu", s / 60, s % 60);
        else if (s < 100 * 3600)
                out_add(&o, "%llu:%02llu:%02llu", s / 3600, s / 60 % 60, s % 60);
        else if (s < 1000ull * 86400)
                out_add(&o, "%llud%02lluh", s / 86400, s / 3600 % 24);
        else
                out_add(&o, ">999d");
        return o.len;
}

double progress_eta(const struct progress_view *v)
{
        if (v->state == PROGRESS_COMPLETE || (v->total && v->bytes >= v->total))
                return 0;
        if (v->state != PROGRESS_FETCHING || v->rate <= 0)
                return -1;
        return (double)(v->total - v->bytes) / v->rate;
}

static unsigned view_pct(const struct progress_view *v)
{
        if (v->state == PROGRESS_COMPLETE)
                return 100;
        return v->total ? (unsigned)((double)v->bytes * 100 / (double)v->total) : 0;
}

static void format_rate(char *buf, size_t cap, double rate)
{
        struct out o = out_start(buf, cap);
        if (rate <= 0) {
                out_add(&o, "  --.- B/s");
                return;
        }
        unsigned u = unit_for(rate);
        out_add(&o, "%5.1f %s/s", in_unit(rate, u), units[u]);
}

static void format_bytes(char *buf, size_t cap, uint64_t done, uint64_t total)
{
        struct out o = out_start(buf, cap);
        unsigned u = unit_for((double)total);
        if (u == 0)
                out_add(&o, "%llu/%llu B", (unsigned long long)done, (unsigned long long)total);
        else
                out_add(&o, "%.1f/%.1f %s", in_unit((double)done, u), in_unit((double)total, u), units[u]);
}

/* Cuts s to at most n bytes, marking the cut with "...". */
static void cut(char *s, size_t n)
{
        size_t l = strlen(s);
        if (l <= n)
                return;
        if (n >= 4) {
                memcpy(s + n - 3, "...", 3);
                s[n] = 0;
        } else {
                s[n] = 0;
        }
}

/* ---- renderers ----------------------------------------------------------- */

static size_t render_waiting(struct out *o, const struct progress_view *v, size_t limit)
{
        char line[512], el[32];
        progress_format_duration(el, sizeof(el), v->elapsed_us / 1e6);
        if (v->members)
                snprintf(line, sizeof(line), "%s: waiting for the swarm to start (%u member%s) %s", v->name,
                         v->members, v->members == 1 ? "" : "s", el);
        else
                snprintf(line, sizeof(line), "%s: waiting for the swarm to start %s", v->name, el);
        cut(line, limit);
        out_add(o, "%s", line);
        return o->len;
}

size_t progress_render_bar(char *buf, size_t cap, const struct progress_view *v, unsigned width)
{
        struct out o = out_start(buf, cap);
        size_t limit = width > 1 ? width - 1 : 1;
        if (v->state == PROGRESS_WAITING)
                return render_waiting(&o, v, limit);

        enum { F_PCT, F_BYTES, F_RATE, F_ETA, F_ELAPSED, F_N };
        char f[F_N][48], name[256];
        unsigned pct = view_pct(v);
        snprintf(f[F_PCT], sizeof(f[F_PCT]), "%3u%%", pct);
        format_bytes(f[F_BYTES], sizeof(f[F_BYTES]), v->bytes, v->total);
        format_rate(f[F_RATE], sizeof(f[F_RATE]), v->rate);
        if (v->state == PROGRESS_VERIFYING) {
                snprintf(f[F_ETA], sizeof(f[F_ETA]), "verifying");
        } else if (v->state == PROGRESS_COMPLETE) {
                snprintf(f[F_ETA], sizeof(f[F_ETA]), "done");
        } else {
                char eta[24];
                progress_format_duration(eta, sizeof(eta), progress_eta(v));
                snprintf(f[F_ETA], sizeof(f[F_ETA]), "ETA %5s", eta);
        }
        char el[24];
        progress_format_duration(el, sizeof(el), v->elapsed_us / 1e6);
        snprintf(f[F_ELAPSED], sizeof(f[F_ELAPSED]), "elapsed %s", el);

        /* the name keeps at most a third of the line, the numbers matter more */
        snprintf(name, sizeof(name), "%s", v->name ? v->name : "");
        cut(name, limit / 3 > 8 ? limit / 3 : 8);

        /* fields right of the bar go right to left until the bar has room;
         * the percentage goes with the bar, which without it says too little */
        int nf = F_N;
        size_t bar = 0;
        for (; nf >= 1; nf--) {
                size_t fixed = strlen(name);
                for (int i = 0; i < nf; i++)
                        fixed += 1 + strlen(f[i]);
                if (fixed + 1 + BAR_MIN <= limit) {
                        bar = limit - fixed - 1;
                        if (bar > BAR_MAX)
                                bar = BAR_MAX;
                        break;
                }
        }
        if (nf < 1) {
                /* no room for a bar: the name and as many fields as fit */
                nf = 0;
                size_t used = strlen(name);
                while (nf < F_N && used + 1 + strlen(f[nf]) <= limit)
                        used += 1 + strlen(f[nf++]);
                if (nf == 0) {
                        size_t keep = limit > 1 + strlen(f[F_PCT]) ? limit - 1 - strlen(f[F_PCT]) : 0;
                        cut(name, keep);
                        nf = strlen(name) + 1 + strlen(f[F_PCT]) <= limit ? 1 : 0;
                }
                out_add(&o, "%s", name);
                for (int i = 0; i < nf; i++)
                        out_add(&o, " %s", f[i]);
                if (o.len > limit)
                        o.p[o.len = limit] = 0;
                return o.len;
        }
        out_add(&o, "%s [", name);
        size_t inner = bar - 2, fill = inner * pct / 100;
        for (size_t i = 0; i < inner; i++)
                out_add(&o, "%c", i < fill ? '#' : '.');
        out_add(&o, "]");
        for (int i = 0; i < nf; i++)
                out_add(&o, " %s", f[i]);
        return o.len;
}

size_t progress_render_plain(char *buf, size_t cap, const struct progress_view *v)
{
        struct out o = out_start(buf, cap);
        char el[24];
        progress_format_duration(el, sizeof(el), v->elapsed_us / 1e6);
        if (v->state == PROGRESS_WAITING) {
                out_add(&o, "p2s-fetch: %s: waiting for the swarm to start", v->name);
                if (v->members)
                        out_add(&o, " (%u member%s)", v->members, v->members == 1 ? "" : "s");
                return o.len;
        }
        char bytes[48], rate[32], eta[24];
        format_bytes(bytes, sizeof(bytes), v->bytes, v->total);
        format_rate(rate, sizeof(rate), v->rate);
        progress_format_duration(eta, sizeof(eta), progress_eta(v));
        uint64_t got = v->cache + v->peer;
        unsigned cache_pct = got ? (unsigned)(v->cache * 100 / got) : 0;
        const char *r = rate;
        while (*r == ' ')
                r++;
        out_add(&o, "p2s-fetch: %s: %s (%u%%), %s, %u%% from cache, ", v->name, bytes, view_pct(v), r, cache_pct);
        if (v->state == PROGRESS_VERIFYING)
                out_add(&o, "verifying");
        else
                out_add(&o, "ETA %s", eta);
        out_add(&o, ", elapsed %s", el);
        return o.len;
}

static void json_string(struct out *o, const char *s)
{
        out_add(o, "\"");
        for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
                if (*c == '"' || *c == '\\')
                        out_add(o, "\\%c", *c);
                else if (*c < 0x20 || *c == 0x7f)
                        out_add(o, "\\u%04x", *c);
                else
                        out_add(o, "%c", *c);
        }
        out_add(o, "\"");
}

static const char *state_name(enum progress_state s)
{
        switch (s) {
        case PROGRESS_WAITING:
                return "waiting";
        case PROGRESS_FETCHING:
                return "fetching";
        case PROGRESS_VERIFYING:
                return "verifying";
        case PROGRESS_COMPLETE:
                return "complete";
        }
        return "unknown";
}

size_t progress_render_json(char *buf, size_t cap, const struct progress_view *v)
{
        struct out o = out_start(buf, cap);
        out_add(&o, "{\"state\":\"%s\",\"name\":", state_name(v->state));
        json_string(&o, v->name);
        out_add(&o, ",\"bytes\":%llu,\"total\":%llu,\"rate\":%.0f,\"eta\":", (unsigned long long)v->bytes,
                (unsigned long long)v->total, v->rate > 0 ? v->rate : 0.0);
        double eta = progress_eta(v);
        if (eta < 0)
                out_add(&o, "null");
        else
                out_add(&o, "%.1f", eta);
        out_add(&o, ",\"elapsed\":%.1f,\"share\":%llu,\"peer\":%llu,\"cache\":%llu,\"members\":",
                v->elapsed_us / 1e6, (unsigned long long)v->share, (unsigned long long)v->peer,
                (unsigned long long)v->cache);
        if (v->members)
                out_add(&o, "%u}", v->members);
        else
                out_add(&o, "null}");
        return o.len;
}

/* ---- the session's progress ---------------------------------------------- */

void progress_init(struct progress *p, const char *name, enum progress_mode mode)
{
        if (mode == PROGRESS_AUTO)
                mode = isatty(STDERR_FILENO) ? PROGRESS_BAR : PROGRESS_PLAIN;
        bool notify = getenv("NOTIFY_SOCKET") != NULL;
        /* both clocks run from the first tick: the caller re-arms its timer
         * from progress_next, which must not say "never" before the swarm
         * starts or nothing would wake it once it does */
        *p = (struct progress){ .name = name, .mode = mode, .notify = notify,
                                .next_notify = notify ? 0 : UINT64_MAX,
                                .next_print = mode == PROGRESS_NONE ? UINT64_MAX : 0 };
}

/* The service manager's STATUS= and the line on stderr run on their own
 * clocks: under systemd stderr is the journal, which wants a line every few
 * seconds, not every second. */
static uint64_t print_interval(const struct progress *p)
{
        switch (p->mode) {
        case PROGRESS_BAR:
                return BAR_EVERY_US;
        case PROGRESS_PLAIN:
                return PLAIN_EVERY_US;
        case PROGRESS_JSON:
                return JSON_EVERY_US;
        default:
                return UINT64_MAX;
        }
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
        p->next_print = p->mode == PROGRESS_NONE ? UINT64_MAX : p->started;
}

void progress_set_members(struct progress *p, unsigned members)
{
        p->members = members;
}

uint64_t progress_next(const struct progress *p)
{
        return p->next_notify < p->next_print ? p->next_notify : p->next_print;
}

static void emit(struct progress *p, const struct progress_view *v, bool final)
{
        char line[1024];
        size_t n;
        switch (p->mode) {
        case PROGRESS_BAR:
                line[0] = '\r';
                n = 1 + progress_render_bar(line + 1, sizeof(line) - 4, v, terminal_width());
                /* erase what a longer line drawn before left behind */
                memcpy(line + n, "\033[K", 3);
                n += 3;
                if (final)
                        line[n++] = '\n';
                bar_open = !final;
                break;
        case PROGRESS_PLAIN:
                n = progress_render_plain(line, sizeof(line) - 1, v);
                line[n++] = '\n';
                break;
        case PROGRESS_JSON:
                n = progress_render_json(line, sizeof(line) - 1, v);
                line[n++] = '\n';
                break;
        default:
                return;
        }
        write_all(line, n);
}

void progress_tick(struct progress *p, uint64_t have, const struct member_stats *st, uint64_t now)
{
        bool notify = now >= p->next_notify, print = now >= p->next_print;
        if (!notify && !print)
                return;
        struct progress_view v = { .name = p->name, .members = p->members, .share = st->chunks_share,
                                   .peer = st->chunks_peer, .cache = st->chunks_cache };
        if (!p->chunks) {
                if (!p->waiting_since)
                        p->waiting_since = now;
                v.state = PROGRESS_WAITING;
                v.elapsed_us = now - p->waiting_since;
                /* a line off a terminal says it once, not every few seconds */
                if (print) {
                        if (p->mode == PROGRESS_BAR || !p->waiting_shown)
                                emit(p, &v, false);
                        p->waiting_shown = true;
                        p->next_print = after(now, print_interval(p));
                }
                /* STATUS= keeps saying "joined swarm ..." meanwhile */
                if (notify)
                        p->next_notify = after(now, NOTIFY_EVERY_US);
                return;
        }
        uint64_t bytes = have >= p->chunks ? p->file_size : (uint64_t)((double)p->file_size * have / p->chunks);
        double dt = (now - p->last_t) / 1e6;
        if (dt > 0) {
                double inst = (double)(bytes - p->last_bytes) / dt;
                p->rate = p->rate ? 0.7 * p->rate + 0.3 * inst : inst;
        }
        p->last_bytes = bytes;
        p->last_t = now;
        if (notify) {
                uint64_t got = st->chunks_cache + st->chunks_peer;
                unsigned cache_pct = got ? (unsigned)(st->chunks_cache * 100 / got) : 0;
                double mib = 1024.0 * 1024.0;
                /* whole MiB as in "fetched 512/1024 MiB", tenths for small files */
                int prec = p->file_size < 10 * 1024 * 1024 ? 1 : 0;
                sd_notifyf(0, "STATUS=fetched %.*f/%.*f MiB, %.*f MiB/s, %u%% from cache", prec, bytes / mib,
                           prec, p->file_size / mib, prec, p->rate / mib, cache_pct);
                p->next_notify = now + NOTIFY_EVERY_US;
        }
        if (!print)
                return;
        v.state = have >= p->chunks ? PROGRESS_VERIFYING : PROGRESS_FETCHING;
        v.bytes = bytes;
        v.total = p->file_size;
        v.rate = p->rate;
        v.elapsed_us = now > p->started ? now - p->started : 0;
        emit(p, &v, false);
        p->next_print = after(now, print_interval(p));
}

void progress_complete(struct progress *p, const struct member_stats *st, const struct manifest *mf, uint64_t now)
{
        p->next_notify = p->next_print = UINT64_MAX;
        if (p->mode == PROGRESS_NONE)
                return;
        double secs = p->started && now > p->started ? (now - p->started) / 1e6 : 0;
        struct progress_view v = { .name = p->name, .state = PROGRESS_COMPLETE, .bytes = mf->file_size,
                                   .total = mf->file_size, .rate = secs > 0 ? mf->file_size / secs : 0,
                                   .elapsed_us = (uint64_t)(secs * 1e6), .share = st->chunks_share,
                                   .peer = st->chunks_peer, .cache = st->chunks_cache };
        /* the bar ends at 100% on a line of its own; json's last object says complete */
        if (p->mode == PROGRESS_BAR || p->mode == PROGRESS_JSON)
                emit(p, &v, true);
        uint64_t total = st->chunks_share + st->chunks_cache + st->chunks_peer;
        char hex[2 * P2S_HASH_SIZE + 1];
        hash_hex(mf->file_hash, hex);
        char line[1024];
        int n = snprintf(line, sizeof(line),
                         "p2s-fetch: %s: %llu bytes verified in %.2f s (%.1f MiB/s): %llu%% share, %llu%% cache, "
                         "%llu%% peers; sha256 %s\n",
                         p->name, (unsigned long long)mf->file_size, secs,
                         secs > 0 ? mf->file_size / secs / (1024.0 * 1024.0) : 0.0,
                         (unsigned long long)(total ? st->chunks_share * 100 / total : 0),
                         (unsigned long long)(total ? st->chunks_cache * 100 / total : 0),
                         (unsigned long long)(total ? st->chunks_peer * 100 / total : 0), hex);
        if (n > 0)
                write_all(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
