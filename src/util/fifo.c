/* SPDX-License-Identifier: MIT */
/* Growing ring of fixed-size elements with reservable room; see fifo.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fifo.h"

void fifo_fini(struct fifo *f)
{
        free(f->v);
        *f = (struct fifo){ .esz = f->esz };
}

/* Makes cap >= need; 0 or -ENOMEM with the ring untouched. */
static int fifo_grow(struct fifo *f, size_t need)
{
        if (need <= f->cap)
                return 0;
        size_t ncap = f->cap ? f->cap : 16;
        while (ncap < need) {
                if (ncap > SIZE_MAX / 2)
                        return -ENOMEM;
                ncap *= 2;
        }
        if (f->esz && ncap > SIZE_MAX / f->esz)
                return -ENOMEM;
        unsigned char *nv = malloc(ncap * f->esz);
        if (!nv)
                return -ENOMEM;
        /* unroll the ring into the new array so head is 0 again */
        for (size_t i = 0; i < f->n; i++)
                memcpy(nv + i * f->esz, f->v + ((f->head + i) % f->cap) * f->esz, f->esz);
        free(f->v);
        f->v = nv;
        f->cap = ncap;
        f->head = 0;
        return 0;
}

static void fifo_put(struct fifo *f, const void *elem)
{
        memcpy(f->v + ((f->head + f->n) % f->cap) * f->esz, elem, f->esz);
        f->n++;
}

int fifo_push(struct fifo *f, const void *elem)
{
        int r = fifo_grow(f, f->n + f->reserved + 1);
        if (r < 0)
                return r;
        fifo_put(f, elem);
        return 0;
}

int fifo_reserve(struct fifo *f, size_t more)
{
        int r = fifo_grow(f, f->n + f->reserved + more);
        if (r < 0)
                return r;
        f->reserved += more;
        return 0;
}

void fifo_unreserve(struct fifo *f, size_t less)
{
        f->reserved -= less < f->reserved ? less : f->reserved;
}

int fifo_push_reserved(struct fifo *f, const void *elem)
{
        if (f->reserved == 0)
                return fifo_push(f, elem);
        /* n + reserved <= cap, so there is a free slot */
        f->reserved--;
        fifo_put(f, elem);
        return 0;
}

bool fifo_pop(struct fifo *f, void *out)
{
        if (!f->n)
                return false;
        memcpy(out, f->v + f->head * f->esz, f->esz);
        f->head = (f->head + 1) % f->cap;
        f->n--;
        return true;
}
