/* SPDX-License-Identifier: MIT */
/* FIFO of fixed-size elements in a growing ring: the action queues of the
 * state machines. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct fifo {
        unsigned char *v;
        size_t esz, head, n, cap;
};

static inline void fifo_init(struct fifo *f, size_t esz) { *f = (struct fifo){ .esz = esz }; }
void fifo_fini(struct fifo *f);
int fifo_push(struct fifo *f, const void *elem);     /* 0 or -ENOMEM */
bool fifo_pop(struct fifo *f, void *out);             /* false when empty */
static inline size_t fifo_len(const struct fifo *f) { return f->n; }
