/* SPDX-License-Identifier: MIT */
/* FIFO of fixed-size elements in a growing ring: the action queues of the
 * state machines. Room can be reserved ahead of time, so the few actions
 * that must never be lost (a swarm's END, a member's EXIT) are queued
 * without allocating at the moment memory runs out. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct fifo {
        unsigned char *v;
        size_t esz, head, n, cap;
        size_t reserved;        /* slots kept free for fifo_push_reserved; n + reserved <= cap */
};

static inline void fifo_init(struct fifo *f, size_t esz) { *f = (struct fifo){ .esz = esz }; }
void fifo_fini(struct fifo *f);
/* Queues a copy of elem in room beyond the reservation, growing if need be.
 * 0 or -ENOMEM (nothing queued). */
int fifo_push(struct fifo *f, const void *elem);
/* Sets aside room for more further fifo_push_reserved calls, allocating
 * now. 0 or -ENOMEM (reservation unchanged). */
int fifo_reserve(struct fifo *f, size_t more);
/* Hands back reserved room that will not be used (at most what is held). */
void fifo_unreserve(struct fifo *f, size_t less);
/* Queues elem in reserved room: no allocation, cannot fail while a
 * reservation is held. Without one it is fifo_push. */
int fifo_push_reserved(struct fifo *f, const void *elem);
bool fifo_pop(struct fifo *f, void *out);             /* false when empty */
static inline size_t fifo_len(const struct fifo *f) { return f->n; }
static inline size_t fifo_reserved(const struct fifo *f) { return f->reserved; }
