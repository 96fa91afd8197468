/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "memfile.h"
#include "proto/hash.h"

void memfile_make(struct memfile *f, uint64_t size, uint32_t cs, uint64_t seed)
{
        uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;

        f->size = size;
        f->cs = cs;
        f->count = (uint32_t)((size + cs - 1) / cs);
        f->data = malloc(size ? size : 1);
        ck_assert_ptr_nonnull(f->data);
        for (uint64_t i = 0; i < size; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                f->data[i] = (uint8_t)(x >> 32);
        }
        f->hashes = calloc(f->count ? f->count : 1, P2S_HASH_SIZE);
        ck_assert_ptr_nonnull(f->hashes);
        for (uint32_t c = 0; c < f->count; c++)
                hash_sha256(f->data + (uint64_t)c * cs, memfile_clen(f, c), f->hashes[c]);
        hash_sha256(f->data, size, f->fh);
}

void memfile_free(struct memfile *f)
{
        free(f->data);
        free(f->hashes);
}

uint32_t memfile_clen(const struct memfile *f, uint32_t c)
{
        return c + 1 < f->count ? f->cs : (uint32_t)(f->size - (uint64_t)c * f->cs);
}

struct buf *memfile_chunk(const struct memfile *f, uint32_t c)
{
        uint32_t n = memfile_clen(f, c);
        struct buf *b = buf_new(n);
        ck_assert_ptr_nonnull(b);
        memcpy(b->data, f->data + (uint64_t)c * f->cs, n);
        return b;
}

bool memfile_chunk_equal(const struct memfile *f, uint32_t c, const struct buf *b)
{
        return c < f->count && b && b->len == memfile_clen(f, c) &&
               memcmp(b->data, f->data + (uint64_t)c * f->cs, b->len) == 0;
}
