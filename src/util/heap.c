/* SPDX-License-Identifier: MIT */
/* Binary min-heap of deadlines; see heap.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include "heap.h"

/* Does not touch the nodes: their owners may already have freed them. */
void heap_fini(struct heap *h)
{
        free(h->v);
        h->v = NULL;
        h->n = h->cap = 0;
}

static void heap_place(struct heap *h, size_t i, struct heap_node *node)
{
        h->v[i] = node;
        node->idx = i;
}

static void heap_sift_up(struct heap *h, size_t i)
{
        struct heap_node *node = h->v[i];

        while (i > 0) {
                size_t p = (i - 1) / 2;

                if (h->v[p]->key <= node->key)
                        break;
                heap_place(h, i, h->v[p]);
                i = p;
        }
        heap_place(h, i, node);
}

static void heap_sift_down(struct heap *h, size_t i)
{
        struct heap_node *node = h->v[i];

        for (;;) {
                size_t c = 2 * i + 1;

                if (c >= h->n)
                        break;
                if (c + 1 < h->n && h->v[c + 1]->key < h->v[c]->key)
                        c++;
                if (node->key <= h->v[c]->key)
                        break;
                heap_place(h, i, h->v[c]);
                i = c;
        }
        heap_place(h, i, node);
}

int heap_reserve(struct heap *h, size_t total)
{
        struct heap_node **v;

        if (total <= h->cap)
                return 0;
        if (total > SIZE_MAX / sizeof(*v))
                return -ENOMEM;
        v = realloc(h->v, total * sizeof(*v));
        if (!v)
                return -ENOMEM;
        h->v = v;
        h->cap = total;
        return 0;
}

int heap_push(struct heap *h, struct heap_node *node, uint64_t key)
{
        if (heap_node_queued(node)) {
                uint64_t old = node->key;

                node->key = key;
                if (key < old)
                        heap_sift_up(h, node->idx);
                else
                        heap_sift_down(h, node->idx);
                return 0;
        }
        if (h->n == h->cap) {
                int r = heap_reserve(h, h->cap ? h->cap * 2 : 16);

                if (r < 0)
                        return r;
        }
        node->key = key;
        h->v[h->n] = node;
        node->idx = h->n++;
        heap_sift_up(h, node->idx);
        return 0;
}

void heap_remove(struct heap *h, struct heap_node *node)
{
        size_t i = node->idx;
        struct heap_node *last;

        if (!heap_node_queued(node))
                return;
        node->idx = HEAP_NOT_IN;
        last = h->v[--h->n];
        if (last == node)
                return;
        /* The last node fills the hole; it may belong above or below it. */
        h->v[i] = last;
        last->idx = i;
        if (i > 0 && h->v[(i - 1) / 2]->key > last->key)
                heap_sift_up(h, i);
        else
                heap_sift_down(h, i);
}

struct heap_node *heap_pop(struct heap *h)
{
        struct heap_node *top = heap_top(h);

        if (top)
                heap_remove(h, top);
        return top;
}
