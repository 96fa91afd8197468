/* SPDX-License-Identifier: MIT */
/* Byte-bounded LRU cache of chunk buffers keyed by a 64-bit key
 * (swarm id << 32 | chunk index). The bound counts buf->len of every entry. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

struct lru;

struct lru *lru_new(size_t max_bytes);        /* NULL on ENOMEM */
struct lru *lru_free(struct lru *c);          /* NULL-safe, returns NULL; unrefs all bufs */
/* Borrowed pointer (take buf_ref to keep it) and marks the entry most recently
 * used; NULL on a miss. */
struct buf *lru_get(struct lru *c, uint64_t key);
/* Stores b (taking its own reference), replacing any entry with that key, and
 * evicts least recently used entries until the total is within max_bytes.
 * Returns 0 on success, LRU_E_TOO_BIG (positive) when b alone exceeds the
 * bound (nothing stored), -ENOMEM. */
#define LRU_E_TOO_BIG 1
int lru_put(struct lru *c, uint64_t key, struct buf *b);
void lru_remove(struct lru *c, uint64_t key);
/* Drops every entry whose key >> 32 == hi (all chunks of one swarm). */
void lru_remove_prefix(struct lru *c, uint32_t hi);
size_t lru_bytes(const struct lru *c);
size_t lru_count(const struct lru *c);
size_t lru_max_bytes(const struct lru *c);
/* Changes the bound, evicting least recently used entries down to it. */
void lru_set_max_bytes(struct lru *c, size_t max_bytes);
