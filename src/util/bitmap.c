/* SPDX-License-Identifier: MIT */
/* Fixed-size bitmap with a running count of set bits. See bitmap.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "bitmap.h"

#define WORD_BITS 64u

static size_t bitmap_words(size_t nbits)
{
        return nbits / WORD_BITS + (nbits % WORD_BITS != 0);
}

int bitmap_init(struct bitmap *b, size_t nbits)
{
        size_t nw = bitmap_words(nbits);

        b->words = NULL;
        b->nbits = nbits;
        b->nset = 0;
        if (nw) {
                b->words = calloc(nw, sizeof(*b->words));
                if (!b->words) {
                        b->nbits = 0;
                        return -ENOMEM;
                }
        }
        return 0;
}

void bitmap_fini(struct bitmap *b)
{
        free(b->words);
        b->words = NULL;
        b->nbits = 0;
        b->nset = 0;
}

bool bitmap_test(const struct bitmap *b, size_t i)
{
        if (i >= b->nbits)
                return false;
        return (b->words[i / WORD_BITS] >> (i % WORD_BITS)) & 1u;
}

bool bitmap_set(struct bitmap *b, size_t i)
{
        uint64_t m;

        if (i >= b->nbits)
                return false;
        m = UINT64_C(1) << (i % WORD_BITS);
        if (b->words[i / WORD_BITS] & m)
                return false;
        b->words[i / WORD_BITS] |= m;
        b->nset++;
        return true;
}

bool bitmap_clear(struct bitmap *b, size_t i)
{
        uint64_t m;

        if (i >= b->nbits)
                return false;
        m = UINT64_C(1) << (i % WORD_BITS);
        if (!(b->words[i / WORD_BITS] & m))
                return false;
        b->words[i / WORD_BITS] &= ~m;
        b->nset--;
        return true;
}

void bitmap_clear_all(struct bitmap *b)
{
        size_t nw = bitmap_words(b->nbits);

        if (nw)
                memset(b->words, 0, nw * sizeof(*b->words));
        b->nset = 0;
}

void bitmap_set_all(struct bitmap *b)
{
        size_t nw = bitmap_words(b->nbits);

        if (!nw)
                return;
        memset(b->words, 0xff, nw * sizeof(*b->words));
        /* Bits past nbits stay clear so next_clear never has to mask them twice
         * and a word-wise count would still be right. */
        if (b->nbits % WORD_BITS)
                b->words[nw - 1] = (UINT64_C(1) << (b->nbits % WORD_BITS)) - 1;
        b->nset = b->nbits;
}

size_t bitmap_next_clear(const struct bitmap *b, size_t from)
{
        size_t w, nw = bitmap_words(b->nbits);
        uint64_t inv;

        if (from >= b->nbits)
                return b->nbits;
        if (b->nset == b->nbits)
                return b->nbits;
        w = from / WORD_BITS;
        /* Ones mark clear bits; mask off those below from in the first word. */
        inv = ~b->words[w] & (~UINT64_C(0) << (from % WORD_BITS));
        for (;;) {
                if (inv) {
                        size_t i = w * WORD_BITS + (size_t)__builtin_ctzll(inv);
                        return i < b->nbits ? i : b->nbits;
                }
                if (++w >= nw)
                        return b->nbits;
                inv = ~b->words[w];
        }
}

size_t bitmap_next_set(const struct bitmap *b, size_t from)
{
        size_t w, nw = bitmap_words(b->nbits);
        uint64_t v;

        if (from >= b->nbits || b->nset == 0)
                return b->nbits;
        w = from / WORD_BITS;
        v = b->words[w] & (~UINT64_C(0) << (from % WORD_BITS));
        for (;;) {
                if (v) {
                        size_t i = w * WORD_BITS + (size_t)__builtin_ctzll(v);
                        return i < b->nbits ? i : b->nbits;
                }
                if (++w >= nw)
                        return b->nbits;
                v = b->words[w];
        }
}
