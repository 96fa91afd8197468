/* SPDX-License-Identifier: MIT */
/* Intrusive binary min-heap keyed by uint64_t (deadlines in microseconds).
 * Embed a heap_node in the object; idx lets remove/update run in O(log n). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEAP_NOT_IN ((size_t)-1)

struct heap_node {
        uint64_t key;
        size_t idx;     /* HEAP_NOT_IN when not in a heap */
};

struct heap {
        struct heap_node **v;
        size_t n, cap;
};

static inline void heap_node_init(struct heap_node *n) { n->key = 0; n->idx = HEAP_NOT_IN; }
static inline bool heap_node_queued(const struct heap_node *n) { return n->idx != HEAP_NOT_IN; }
void heap_fini(struct heap *h);                       /* frees the array, not the nodes */
/* Inserts node with key, or moves it there if already queued. 0 or -ENOMEM
 * (only a new node can fail: moving one never allocates). The caller must
 * handle the error: a deadline that silently never fires hangs its owner. */
int heap_push(struct heap *h, struct heap_node *node, uint64_t key);
/* Grows the array to hold total nodes, so the pushes up to that many cannot
 * fail later. 0 or -ENOMEM (heap unchanged). */
int heap_reserve(struct heap *h, size_t total);
void heap_remove(struct heap *h, struct heap_node *node);   /* no-op if not queued */
static inline struct heap_node *heap_top(const struct heap *h) { return h->n ? h->v[0] : NULL; }
struct heap_node *heap_pop(struct heap *h);           /* NULL when empty */
