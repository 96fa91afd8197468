/* SPDX-License-Identifier: MIT */
/* Map from a 32-bit id to a pointer: open addressing, linear probing,
 * backward-shift deletion (no tombstones, so lookups stay short). */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct u32map {
        struct u32map_slot { uint32_t key; void *val; } *slot;   /* val NULL: empty */
        size_t cap, n;
};

void u32map_fini(struct u32map *m);
void *u32map_get(const struct u32map *m, uint32_t key);
int u32map_put(struct u32map *m, uint32_t key, void *val);   /* val != NULL; replaces; 0 or -ENOMEM */
void *u32map_del(struct u32map *m, uint32_t key);            /* returns the old value or NULL */
/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slot[i].val) ...;
 * deleting during iteration may move a later entry into slot i. */
