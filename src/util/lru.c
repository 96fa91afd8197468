/* SPDX-License-Identifier: MIT */
/* Chained hash table (power-of-two buckets, grown at load 1) plus a doubly
 * linked recency list: most recent at head, eviction from tail. */
#include <errno.h>
#include <stdlib.h>
#include "lru.h"

struct lru_entry {
        uint64_t key;
        struct buf *b;
        struct lru_entry *hnext;                /* bucket chain */
        struct lru_entry *prev, *next;          /* recency list */
};

struct lru {
        struct lru_entry **buckets;
        unsigned bits;                          /* log2 of the bucket count */
        size_t count, bytes, max_bytes;
        struct lru_entry *head, *tail;
};

/* Fibonacci hashing: keys are (swarm << 32 | index), so the low bits alone
 * would cluster; the multiply spreads both halves into the top bits. */
static size_t lru_slot(uint64_t key, unsigned bits)
{
        return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - bits));
}

struct lru *lru_new(size_t max_bytes)
{
        struct lru *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->bits = 6;
        c->buckets = calloc((size_t)1 << c->bits, sizeof(*c->buckets));
        if (!c->buckets) {
                free(c);
                return NULL;
        }
        c->max_bytes = max_bytes;
        return c;
}

struct lru *lru_free(struct lru *c)
{
        struct lru_entry *e, *next;

        if (!c)
                return NULL;
        for (e = c->head; e; e = next) {
                next = e->next;
                buf_unref(e->b);
                free(e);
        }
        free(c->buckets);
        free(c);
        return NULL;
}

static struct lru_entry *lru_find(const struct lru *c, uint64_t key)
{
        struct lru_entry *e = c->buckets[lru_slot(key, c->bits)];

        while (e && e->key != key)
                e = e->hnext;
        return e;
}

static void lru_list_unlink(struct lru *c, struct lru_entry *e)
{
        if (e->prev)
                e->prev->next = e->next;
        else
                c->head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        else
                c->tail = e->prev;
        e->prev = e->next = NULL;
}

static void lru_list_push_front(struct lru *c, struct lru_entry *e)
{
        e->prev = NULL;
        e->next = c->head;
        if (c->head)
                c->head->prev = e;
        else
                c->tail = e;
        c->head = e;
}

/* Unlinks e from both structures, drops the cache's reference, frees e. */
static void lru_drop(struct lru *c, struct lru_entry *e)
{
        struct lru_entry **pp = &c->buckets[lru_slot(e->key, c->bits)];

        while (*pp != e)
                pp = &(*pp)->hnext;
        *pp = e->hnext;
        lru_list_unlink(c, e);
        c->bytes -= e->b->len;
        c->count--;
        buf_unref(e->b);
        free(e);
}

/* Doubles the bucket array. Failure is harmless: chains just get longer. */
static void lru_grow(struct lru *c)
{
        unsigned bits = c->bits + 1;
        struct lru_entry **nb;

        if (bits >= 8 * sizeof(size_t) - 1)
                return;
        nb = calloc((size_t)1 << bits, sizeof(*nb));
        if (!nb)
                return;
        for (struct lru_entry *e = c->head; e; e = e->next) {
                size_t s = lru_slot(e->key, bits);

                e->hnext = nb[s];
                nb[s] = e;
        }
        free(c->buckets);
        c->buckets = nb;
        c->bits = bits;
}

struct buf *lru_get(struct lru *c, uint64_t key)
{
        struct lru_entry *e = lru_find(c, key);

        if (!e)
                return NULL;
        if (c->head != e) {
                lru_list_unlink(c, e);
                lru_list_push_front(c, e);
        }
        return e->b;
}

int lru_put(struct lru *c, uint64_t key, struct buf *b)
{
        struct lru_entry *e;

        if (!b)
                return -EINVAL;
        if (b->len > c->max_bytes)
                return LRU_E_TOO_BIG;
        e = lru_find(c, key);
        if (e) {
                /* Ref the new one first: b may be the very buf already stored. */
                buf_ref(b);
                c->bytes -= e->b->len;
                buf_unref(e->b);
                e->b = b;
                c->bytes += b->len;
                lru_list_unlink(c, e);
                lru_list_push_front(c, e);
        } else {
                size_t s;

                e = calloc(1, sizeof(*e));
                if (!e)
                        return -ENOMEM;
                if (c->count + 1 > ((size_t)1 << c->bits))
                        lru_grow(c);
                s = lru_slot(key, c->bits);
                e->key = key;
                e->b = buf_ref(b);
                e->hnext = c->buckets[s];
                c->buckets[s] = e;
                lru_list_push_front(c, e);
                c->count++;
                c->bytes += b->len;
        }
        /* The new entry is at the head and fits alone, so this stops before it. */
        while (c->bytes > c->max_bytes && c->tail != e)
                lru_drop(c, c->tail);
        return 0;
}

void lru_remove(struct lru *c, uint64_t key)
{
        struct lru_entry *e = lru_find(c, key);

        if (e)
                lru_drop(c, e);
}

void lru_remove_prefix(struct lru *c, uint32_t hi)
{
        struct lru_entry *e, *next;

        for (e = c->head; e; e = next) {
                next = e->next;
                if ((uint32_t)(e->key >> 32) == hi)
                        lru_drop(c, e);
        }
}

size_t lru_bytes(const struct lru *c)
{
        return c->bytes;
}

size_t lru_count(const struct lru *c)
{
        return c->count;
}

size_t lru_max_bytes(const struct lru *c)
{
        return c->max_bytes;
}

void lru_set_max_bytes(struct lru *c, size_t max_bytes)
{
        c->max_bytes = max_bytes;
        while (c->bytes > c->max_bytes && c->tail)
                lru_drop(c, c->tail);
}
