/* SPDX-License-Identifier: MIT */
/* Refcounted byte buffer: one chunk's bytes shared by the cache and every
 * output queue that sends it, so a chunk is never copied per receiver. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct buf {
        unsigned refs;
        uint32_t len;
        uint8_t data[];
};

/* A new buffer of len bytes (uninitialised) with one reference; NULL on ENOMEM. */
struct buf *buf_new(size_t len);
struct buf *buf_ref(struct buf *b);
/* Drops one reference; frees on the last. NULL is a no-op; always returns NULL. */
struct buf *buf_unref(struct buf *b);
