/* SPDX-License-Identifier: MIT */
/* Progress reporting: sd_notify STATUS= when NOTIFY_SOCKET is set (at least
 * once a second), and on stderr one of (--progress): a bar redrawn in place
 * that fits the terminal (bar), a line every few seconds (plain), one JSON
 * object per line for scripts (json), or nothing (none, --quiet).
 *
 * The renderers are pure: they turn a struct progress_view (what is known
 * at one instant) into text for a given width, so tests need no terminal. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/member.h"

enum progress_mode {
        PROGRESS_AUTO,          /* bar on a terminal, plain otherwise */
        PROGRESS_BAR,
        PROGRESS_PLAIN,
        PROGRESS_JSON,
        PROGRESS_NONE,
};

enum progress_state {
        PROGRESS_WAITING,       /* attached, the swarm is gathering */
        PROGRESS_FETCHING,
        PROGRESS_VERIFYING,     /* every chunk held, the whole-file hash runs */
        PROGRESS_COMPLETE,
};

struct progress_view {
        const char *name;
        enum progress_state state;
        uint64_t bytes, total;
        double rate;            /* bytes/s; <= 0: not known yet */
        uint64_t elapsed_us;    /* since the file's size became known (or the wait began) */
        unsigned members;       /* PROGRESS_WAITING: members joined so far; 0: not known */
        uint64_t share, peer, cache;    /* chunks by where they came from */
};

struct progress {
        const char *name;
        enum progress_mode mode;        /* never PROGRESS_AUTO after progress_init */
        bool notify;
        unsigned width;                 /* terminal columns (bar) */
        unsigned members;
        bool waiting_shown;             /* plain, json: the wait was reported */
        uint64_t file_size, chunks;
        uint64_t waiting_since, started, last_bytes, last_t;
        double rate;            /* bytes/s, smoothed */
        uint64_t next_notify, next_print;       /* UINT64_MAX: never */
};

/* mode PROGRESS_AUTO picks bar when stderr is a terminal, plain otherwise. */
void progress_init(struct progress *p, const char *name, enum progress_mode mode);
void progress_start(struct progress *p, uint64_t file_size, uint64_t chunks);
/* Members in the gathering swarm, when the server tells (0: not known). */
void progress_set_members(struct progress *p, unsigned members);
/* When progress_tick wants to run next (UINT64_MAX: never). */
uint64_t progress_next(const struct progress *p);
/* Called while attached; before progress_start it reports the wait. */
void progress_tick(struct progress *p, uint64_t have_chunks, const struct member_stats *st, uint64_t now);
/* The copy is verified and in place: a last 100% bar, then the summary line. */
void progress_complete(struct progress *p, const struct member_stats *st, const struct manifest *mf, uint64_t now);

/* Process-wide, for main: the terminal was resized (SIGWINCH): the next bar
 * measures it again. */
void progress_resize(void);
/* Before anything else is written to stderr: ends a bar drawn in place with
 * a newline, so the message starts on a line of its own. */
void progress_interrupt(void);

/* ---- pure renderers (the text, without "\r" or "\n"); return its length -- */

/* The bar line in at most width - 1 columns (the last one is left alone so
 * no terminal wraps): name [####....] pct done/total rate ETA elapsed, the
 * fields dropped right to left as the width shrinks. */
size_t progress_render_bar(char *out, size_t cap, const struct progress_view *v, unsigned width);
/* The line written every few seconds off a terminal. */
size_t progress_render_plain(char *out, size_t cap, const struct progress_view *v);
/* One JSON object: state, name, bytes, total, rate, eta, elapsed, share,
 * peer, cache, members. */
size_t progress_render_json(char *out, size_t cap, const struct progress_view *v);
/* A duration for ETA and elapsed: "0:07", "12:34", "1:02:03", "5d03h";
 * negative: "--:--". */
size_t progress_format_duration(char *out, size_t cap, double secs);
/* Seconds left at rate, or -1 when not known. */
double progress_eta(const struct progress_view *v);
