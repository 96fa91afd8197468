/* SPDX-License-Identifier: MIT */
/* Output queue for one non-blocking stream socket. Each item is a small
 * header copied in plus an optional body: a refcounted buffer, or a range of
 * a file sent with sendfile(2) (so is a buffer in a memfd slab). Partial
 * writes and EAGAIN are normal: the queue remembers how far it got.
 * Consecutive memory items go out in one writev. Two lanes: priority items (small control frames) go out before
 * every ordinary item queued, in their own order, but never cut into an item
 * already partly written: a frame on the stream is never split. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "buf.h"

#define OUTQ_HDR_MAX 64

struct outq_item;

struct outq {
        struct outq_item *head, *tail;
        struct outq_item *prio_tail;    /* last priority item, all of them at the front; or NULL */
        size_t bytes;       /* bytes queued and not yet written */
        size_t items;
};

void outq_init(struct outq *q);
void outq_fini(struct outq *q);                 /* drops everything unsent */
/* Queues hdr (hdr_len <= OUTQ_HDR_MAX, copied) followed by body (may be NULL;
 * the queue takes its own reference). 0 or -ENOMEM. A body in a slab
 * (body->fd >= 0) goes out with sendfile(2), like a file item. */
int outq_push(struct outq *q, const void *hdr, size_t hdr_len, struct buf *body);
/* The same in the priority lane: after the priority items already queued
 * (and after a partly written head), before every ordinary item. */
int outq_push_prio(struct outq *q, const void *hdr, size_t hdr_len, struct buf *body);
/* Queues hdr followed by len bytes of fd from offset off (sendfile). The fd
 * must stay open until the item is sent or the queue is finished. */
int outq_push_file(struct outq *q, const void *hdr, size_t hdr_len, int fd, off_t off, size_t len);
/* Writes as much as the socket takes. Returns 0 when the queue is empty,
 * 1 when the socket would block with data left (ask for EPOLLOUT), -errno on
 * a real error (EPIPE, ECONNRESET, ...; -EIO when a file range runs past the
 * end of its file). sockfd must be O_NONBLOCK. Memory items go out with
 * MSG_NOSIGNAL, but sendfile(2) has no such flag: programs using file items
 * must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) or a closed peer kills them.
 * 1 may also follow a short write (the buffer is then full in practice). */
int outq_flush(struct outq *q, int sockfd);
static inline bool outq_empty(const struct outq *q) { return q->head == NULL; }
