/* SPDX-License-Identifier: MIT */
/* Map from a 32-bit id to a pointer, open addressing. See u32map.h. */
#include <errno.h>
#include <stdlib.h>
#include "u32map.h"

static size_t home(uint32_t key, size_t cap)
{
        return (size_t)((key * 2654435761u) & (cap - 1));
}

void u32map_fini(struct u32map *m)
{
        free(m->slot);
        *m = (struct u32map){ 0 };
}

void *u32map_get(const struct u32map *m, uint32_t key)
{
        if (!m->cap)
                return NULL;
        for (size_t i = home(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
                if (!m->slot[i].val)
                        return NULL;
                if (m->slot[i].key == key)
                        return m->slot[i].val;
        }
}

static void insert(struct u32map_slot *slot, size_t cap, uint32_t key, void *val)
{
        size_t i = home(key, cap);
        while (slot[i].val && slot[i].key != key)
                i = (i + 1) & (cap - 1);
        slot[i].key = key;
        slot[i].val = val;
}

int u32map_put(struct u32map *m, uint32_t key, void *val)
{
        void *old = u32map_get(m, key);
        if (old) {
                insert(m->slot, m->cap, key, val);
                return 0;
        }
        if ((m->n + 1) * 2 > m->cap) {
                size_t ncap = m->cap ? m->cap * 2 : 16;
                struct u32map_slot *ns = calloc(ncap, sizeof(*ns));
                if (!ns)
                        return -ENOMEM;
                for (size_t i = 0; i < m->cap; i++)
                        if (m->slot[i].val)
                                insert(ns, ncap, m->slot[i].key, m->slot[i].val);
                free(m->slot);
                m->slot = ns;
                m->cap = ncap;
        }
        insert(m->slot, m->cap, key, val);
        m->n++;
        return 0;
}

void *u32map_del(struct u32map *m, uint32_t key)
{
        if (!m->cap)
                return NULL;
        size_t mask = m->cap - 1, i = home(key, m->cap);
        while (m->slot[i].val && m->slot[i].key != key)
                i = (i + 1) & mask;
        void *old = m->slot[i].val;
        if (!old)
                return NULL;
        m->slot[i].val = NULL;
        m->n--;
        for (size_t j = (i + 1) & mask; m->slot[j].val; j = (j + 1) & mask) {
                size_t h = home(m->slot[j].key, m->cap);
                /* move j back to i unless its home lies cyclically in (i, j] */
                if ((i <= j) ? (h <= i || h > j) : (h <= i && h > j)) {
                        m->slot[i] = m->slot[j];
                        m->slot[j].val = NULL;
                        i = j;
                }
        }
        return old;
}
