/* SPDX-License-Identifier: MIT */
/* Heap buffers, and the memfd slab: a bump allocator over a sparse memfd
 * with a free list per size (chunks come in one or two sizes), whose freed
 * ranges are punched out so that neither memory nor the kernel's view of
 * the pages outlives the buffer. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "buf.h"

#define SLAB_CLASSES 8

struct slab_class {
        size_t size;            /* page-rounded length, 0 unused */
        off_t *offs;            /* free ranges of that size */
        size_t n, cap;
};

struct buf_slab {
        unsigned refs;          /* the owner's plus one per live buffer */
        int fd;
        uint8_t *base;
        size_t reserve, used;   /* bytes of address space, bump position */
        size_t page;
        struct slab_class cls[SLAB_CLASSES];
};

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
        b->data = (uint8_t *)(b + 1);
        b->fd = -1;
        b->off = 0;
        b->slab = NULL;
        return b;
}

struct buf *buf_ref(struct buf *b)
{
        if (b)
                b->refs++;
        return b;
}

static void slab_destroy(struct buf_slab *s)
{
        for (unsigned i = 0; i < SLAB_CLASSES; i++)
                free(s->cls[i].offs);
        munmap(s->base, s->reserve);
        close(s->fd);
        free(s);
}

static struct slab_class *slab_class_for(struct buf_slab *s, size_t size, int create)
{
        struct slab_class *spare = NULL;

        for (unsigned i = 0; i < SLAB_CLASSES; i++) {
                if (s->cls[i].size == size)
                        return &s->cls[i];
                if (!spare && s->cls[i].size == 0)
                        spare = &s->cls[i];
        }
        if (spare && create)
                spare->size = size;
        return create ? spare : NULL;
}

static void slab_release(struct buf_slab *s, off_t off, uint32_t len)
{
        size_t size = (len + s->page - 1) & ~(s->page - 1);
        struct slab_class *c;

        /* Punched, not overwritten later: pages a socket still sends from
         * stay the kernel's, and the memory goes back now. */
        (void)fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, (off_t)size);
        c = slab_class_for(s, size, 1);
        if (c && c->n == c->cap) {
                size_t cap = c->cap ? 2 * c->cap : 16;
                off_t *o = realloc(c->offs, cap * sizeof(*o));

                if (o) {
                        c->offs = o;
                        c->cap = cap;
                }
        }
        /* no room to remember it: that range of address space is lost, not the memory */
        if (c && c->n < c->cap)
                c->offs[c->n++] = off;
        if (--s->refs == 0)
                slab_destroy(s);
}

struct buf *buf_unref(struct buf *b)
{
        if (b && --b->refs == 0) {
                if (b->slab)
                        slab_release(b->slab, b->off, b->len);
                free(b);
        }
        return NULL;
}

struct buf_slab *buf_slab_new(size_t reserve)
{
        struct buf_slab *s = calloc(1, sizeof(*s));
        long page = sysconf(_SC_PAGESIZE);

        if (!s)
                return NULL;
        s->page = page > 0 ? (size_t)page : 4096;
        s->reserve = (reserve + s->page - 1) & ~(s->page - 1);
        if (s->reserve == 0)
                s->reserve = s->page;
        s->fd = memfd_create("p2s-buf-slab", MFD_CLOEXEC);
        if (s->fd < 0)
                goto fail;
        /* sparse: the size costs nothing until pages are written */
        if (ftruncate(s->fd, (off_t)s->reserve) < 0)
                goto fail;
        s->base = mmap(NULL, s->reserve, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
        if (s->base == MAP_FAILED)
                goto fail;
        s->refs = 1;
        return s;
fail:;
        int e = errno;
        if (s->fd >= 0)
                close(s->fd);
        free(s);
        errno = e;
        return NULL;
}

struct buf_slab *buf_slab_unref(struct buf_slab *s)
{
        if (s && --s->refs == 0)
                slab_destroy(s);
        return NULL;
}

struct buf *buf_slab_alloc(struct buf_slab *s, size_t len)
{
        struct buf *b;
        struct slab_class *c;
        size_t size;
        off_t off;

        if (!s || len == 0 || len > UINT32_MAX)
                return buf_new(len);
        size = (len + s->page - 1) & ~(s->page - 1);
        c = slab_class_for(s, size, 0);
        if (c && c->n > 0) {
                off = c->offs[--c->n];
        } else if (s->reserve - s->used >= size) {
                off = (off_t)s->used;
                s->used += size;
        } else {
                return buf_new(len);
        }
        b = malloc(sizeof(*b));
        if (!b) {
                if (c && c->n < c->cap)
                        c->offs[c->n++] = off;
                return NULL;
        }
        b->refs = 1;
        b->len = (uint32_t)len;
        b->data = s->base + off;
        b->fd = s->fd;
        b->off = off;
        b->slab = s;
        s->refs++;
        return b;
}
