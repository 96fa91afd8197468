/* SPDX-License-Identifier: MIT */
/* Progress reporting: sd_notify STATUS= when NOTIFY_SOCKET is set (at least
 * once a second), a one-line bar on a terminal, a plain line every few
 * seconds otherwise; nothing with --quiet except the final summary. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "core/member.h"

struct progress {
        const char *name;
        bool quiet, tty, notify;
        uint64_t file_size, chunks;
        uint64_t started, last_bytes, last_t;
        double rate;            /* bytes/s, smoothed */
        uint64_t next_notify, next_print;       /* UINT64_MAX: never */
};

void progress_init(struct progress *p, const char *name, bool quiet);
void progress_start(struct progress *p, uint64_t file_size, uint64_t chunks);
/* When progress_tick wants to run next (UINT64_MAX: never). */
uint64_t progress_next(const struct progress *p);
void progress_tick(struct progress *p, uint64_t have_chunks, const struct member_stats *st, uint64_t now);
/* The copy is verified and in place: print the summary line. */
void progress_complete(struct progress *p, const struct member_stats *st, const struct manifest *mf, uint64_t now);
