/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include "buf.h"

struct buf *buf_new(size_t len)
{
        struct buf *b;

        /* len is stored in 32 bits; refusing here also keeps the size sum below
         * from wrapping. */
        if (len > UINT32_MAX) {
                errno = ENOMEM;
                return NULL;
        }
        b = malloc(sizeof(*b) + len);
        if (!b)
                return NULL;
        b->refs = 1;
        b->len = (uint32_t)len;
        return b;
}

struct buf *buf_ref(struct buf *b)
{
        if (b)
                b->refs++;
        return b;
}

struct buf *buf_unref(struct buf *b)
{
        if (b && --b->refs == 0)
                free(b);
        return NULL;
}
