/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "fifo.h"

void fifo_fini(struct fifo *f)
{
        free(f->v);
        *f = (struct fifo){ .esz = f->esz };
}

int fifo_push(struct fifo *f, const void *elem)
{
        if (f->n == f->cap) {
                size_t ncap = f->cap ? f->cap * 2 : 16;
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
        }
        memcpy(f->v + ((f->head + f->n) % f->cap) * f->esz, elem, f->esz);
        f->n++;
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
