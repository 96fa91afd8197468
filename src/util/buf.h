/* SPDX-License-Identifier: MIT */
/* Refcounted byte buffer: one chunk's bytes shared by the cache and every
 * output queue that sends it, so a chunk is never copied per receiver.
 * A buffer lives on the heap, or in a slab: a memfd mapped into memory, so
 * that its bytes are page-cache pages an output queue can hand the kernel
 * with sendfile(2) instead of copying them into every socket. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct buf_slab;

struct buf {
        unsigned refs;
        uint32_t len;
        uint8_t *data;
        int fd;                 /* the slab's memfd holding data at off, or -1 (heap) */
        off_t off;
        struct buf_slab *slab;
};

/* A new buffer of len bytes (uninitialised) with one reference; NULL on ENOMEM. */
struct buf *buf_new(size_t len);
struct buf *buf_ref(struct buf *b);
/* Drops one reference; frees on the last. NULL is a no-op; always returns NULL. */
struct buf *buf_unref(struct buf *b);

/* A slab of up to reserve bytes of address space in one memfd; pages are
 * only allocated when written and given back when their buffer is freed,
 * so its memory is what its live buffers hold. NULL with errno set. */
struct buf_slab *buf_slab_new(size_t reserve);
/* Lets go of the slab; it goes away with its last buffer. NULL-safe, returns NULL. */
struct buf_slab *buf_slab_unref(struct buf_slab *s);
/* A buffer of len bytes in the slab, or on the heap when the slab is NULL
 * or full; NULL on ENOMEM. Its bytes must not change once it is shared:
 * the kernel may still be sending the pages. */
struct buf *buf_slab_alloc(struct buf_slab *s, size_t len);
