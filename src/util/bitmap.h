/* SPDX-License-Identifier: MIT */
/* Fixed-size bitmap with a running count of set bits. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bitmap {
        uint64_t *words;
        size_t nbits;
        size_t nset;
};

/* All bits clear. Returns 0 or -ENOMEM. nbits may be 0. */
int bitmap_init(struct bitmap *b, size_t nbits);
void bitmap_fini(struct bitmap *b);           /* safe on a zeroed or finished bitmap */
bool bitmap_test(const struct bitmap *b, size_t i);   /* i >= nbits: false */
/* Both return true if the bit changed. i >= nbits: false, no change. */
bool bitmap_set(struct bitmap *b, size_t i);
bool bitmap_clear(struct bitmap *b, size_t i);
void bitmap_set_all(struct bitmap *b);
void bitmap_clear_all(struct bitmap *b);
static inline size_t bitmap_count(const struct bitmap *b) { return b->nset; }
static inline bool bitmap_full(const struct bitmap *b) { return b->nset == b->nbits; }
/* First clear bit at index >= from, or b->nbits when there is none. */
size_t bitmap_next_clear(const struct bitmap *b, size_t from);
/* First set bit at index >= from, or b->nbits when there is none. */
size_t bitmap_next_set(const struct bitmap *b, size_t from);
