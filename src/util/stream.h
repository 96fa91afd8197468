/* SPDX-License-Identifier: MIT */
/* Frame reassembly for a byte stream (TCP): fixed-size header, then a body
 * whose length the header gives. Survives any split of the stream into
 * reads, down to one byte at a time. Frames are parsed out of a read buffer;
 * the rest of a body is read straight into its own buffer, together with
 * what follows it (readv), so the read buffer only ever holds headers, small
 * frames and the first bytes of a body. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "buf.h"

/* Validates a complete header and returns the body length that follows
 * (>= 0), or a negative value to reject the stream (the value is passed back
 * from stream_rx_read). */
typedef long (*stream_hdr_fn)(const uint8_t *hdr, void *ud);
/* A complete frame: hdr (hdr_size bytes) and body (NULL when its length is 0;
 * borrowed: buf_ref to keep it). Return 0 to go on, nonzero to stop reading
 * (e.g. the connection was closed by the callback); stream_rx_read then
 * returns that value. */
typedef int (*stream_frame_fn)(const uint8_t *hdr, struct buf *body, void *ud);

struct stream_rx {
        size_t hdr_size;
        stream_hdr_fn hdr_fn;
        stream_frame_fn frame_fn;
        void *ud;
        uint8_t *rbuf;          /* read buffer */
        size_t rcap, rlen, roff;
        uint8_t hdr[64];        /* header of the frame whose body is being filled */
        struct buf *body;       /* body being filled, or NULL */
        size_t body_got;
        size_t skip_left;       /* bytes of a discarded body still to come */
        size_t skip_got;
        bool skip_next;         /* set by hdr_fn: discard the body it accepts */
};

/* 0 < hdr_size <= 64; rcap >= hdr_size: read buffer size (e.g. 64 KiB).
 * 0, -EINVAL or -ENOMEM. fini is safe on a zeroed or finished rx. A frame_fn
 * that frees rx must return nonzero. Bodies are limited to UINT32_MAX bytes
 * (-EMSGSIZE). */
int stream_rx_init(struct stream_rx *rx, size_t hdr_size, size_t rcap,
                   stream_hdr_fn hdr_fn, stream_frame_fn frame_fn, void *ud);
void stream_rx_fini(struct stream_rx *rx);
/* Reads from the non-blocking fd, delivering every complete frame. For
 * fairness between connections it stops after 8 read() calls or ~1 MiB, or
 * after a short read, and returns 0 even though data may still be pending:
 * the loop is level-triggered and calls again. Returns 0 then or on EAGAIN
 * (more later), -ECONNRESET... on error,
 * STREAM_EOF (positive) on orderly end of stream, or the nonzero value a
 * callback returned. A header rejected by hdr_fn returns its negative value. */
#define STREAM_EOF 1
int stream_rx_read(struct stream_rx *rx, int fd);
/* The same, from a memory buffer (tests, fuzzing); never returns STREAM_EOF. */
int stream_rx_feed(struct stream_rx *rx, const uint8_t *data, size_t len);
/* Called from hdr_fn: the body of the header being accepted is read and
 * thrown away, never allocated, and frame_fn is not called for it. */
static inline void stream_rx_skip_body(struct stream_rx *rx) { rx->skip_next = true; }
/* Bytes of an unfinished frame received so far (header and body, kept or
 * skipped); 0 between frames. What a frame-completion deadline measures. */
size_t stream_rx_partial(const struct stream_rx *rx);
