/* SPDX-License-Identifier: MIT */
/* Frame reassembly for a byte stream: a fixed header, then the body its
 * length gives, across any split of reads. See stream.h. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include "stream.h"

/* Fairness budget per stream_rx_read call: one busy peer must not starve the
 * others sharing the (level-triggered) loop. */
#define STREAM_READS_MAX 8
#define STREAM_BYTES_MAX (1024 * 1024)

int stream_rx_init(struct stream_rx *rx, size_t hdr_size, size_t rcap,
                   stream_hdr_fn hdr_fn, stream_frame_fn frame_fn, void *ud)
{
        memset(rx, 0, sizeof(*rx));
        /* rcap >= hdr_size: a partial header must always fit after compaction. */
        if (hdr_size == 0 || hdr_size > sizeof(rx->hdr) || rcap < hdr_size || !hdr_fn || !frame_fn)
                return -EINVAL;
        rx->rbuf = malloc(rcap);
        if (!rx->rbuf)
                return -ENOMEM;
        rx->hdr_size = hdr_size;
        rx->rcap = rcap;
        rx->hdr_fn = hdr_fn;
        rx->frame_fn = frame_fn;
        rx->ud = ud;
        return 0;
}

void stream_rx_fini(struct stream_rx *rx)
{
        free(rx->rbuf);
        rx->rbuf = NULL;
        rx->body = buf_unref(rx->body);
        rx->rcap = rx->rlen = rx->roff = 0;
        rx->body_got = 0;
        rx->skip_left = rx->skip_got = 0;
}

size_t stream_rx_partial(const struct stream_rx *rx)
{
        if (rx->skip_left)
                return rx->hdr_size + rx->skip_got;
        if (rx->body)
                return rx->hdr_size + rx->body_got;
        return rx->rlen - rx->roff;
}

/* Delivers the completed body frame. rx must not be touched after a nonzero
 * return: the callback may have freed it. */
static int stream_deliver_body(struct stream_rx *rx)
{
        struct buf *body = rx->body;
        int r;

        rx->body = NULL;
        rx->body_got = 0;
        r = rx->frame_fn(rx->hdr, body, rx->ud);
        buf_unref(body);
        return r;
}

/* Parses every complete frame in rbuf[roff..rlen) (and a completed body),
 * then compacts rbuf. 0, or the nonzero value of a callback. */
static int stream_parse(struct stream_rx *rx)
{
        int r;

        for (;;) {
                size_t avail = rx->rlen - rx->roff;

                if (rx->skip_left) {
                        size_t n = avail < rx->skip_left ? avail : rx->skip_left;

                        rx->skip_left -= n;
                        rx->skip_got += n;
                        rx->roff += n;
                        if (rx->skip_left)
                                break;
                        rx->skip_got = 0;
                } else if (rx->body) {
                        size_t need = rx->body->len - rx->body_got;
                        size_t n = avail < need ? avail : need;

                        memcpy(rx->body->data + rx->body_got, rx->rbuf + rx->roff, n);
                        rx->body_got += n;
                        rx->roff += n;
                        if (rx->body_got < rx->body->len)
                                break;
                        r = stream_deliver_body(rx);
                        if (r)
                                return r;
                } else {
                        const uint8_t *hdr = rx->rbuf + rx->roff;
                        long blen;

                        if (avail < rx->hdr_size)
                                break;
                        rx->skip_next = false;
                        blen = rx->hdr_fn(hdr, rx->ud);
                        if (blen < 0)
                                return blen < INT_MIN ? -EINVAL : (int)blen;
                        rx->roff += rx->hdr_size;
                        if (rx->skip_next && blen > 0) {
                                rx->skip_next = false;
                                rx->skip_left = (size_t)blen;
                                rx->skip_got = 0;
                                continue;
                        }
                        rx->skip_next = false;
                        if (blen == 0) {
                                /* hdr stays valid in rbuf during the call. */
                                r = rx->frame_fn(hdr, NULL, rx->ud);
                                if (r)
                                        return r;
                                continue;
                        }
                        if ((unsigned long)blen > UINT32_MAX)
                                return -EMSGSIZE;
                        rx->body = buf_new((size_t)blen);
                        if (!rx->body)
                                return -ENOMEM;
                        rx->body_got = 0;
                        /* rbuf gets compacted under the body's feet. */
                        memcpy(rx->hdr, hdr, rx->hdr_size);
                }
        }
        if (rx->roff == rx->rlen) {
                rx->roff = rx->rlen = 0;
        } else if (rx->roff) {
                memmove(rx->rbuf, rx->rbuf + rx->roff, rx->rlen - rx->roff);
                rx->rlen -= rx->roff;
                rx->roff = 0;
        }
        return 0;
}

/* A body being filled is read in place, and whatever follows it in the same
 * readv lands in rbuf: a chunk's bytes are copied once, by the kernel, and
 * frames after it still come in the same call. The body branch of
 * stream_parse leaves rbuf empty, so the two pieces stay in stream order. */
int stream_rx_read(struct stream_rx *rx, int fd)
{
        size_t total = 0;

        for (int i = 0; i < STREAM_READS_MAX && total < STREAM_BYTES_MAX; i++) {
                struct iovec iov[2];
                int niov = 0;
                size_t body_want = 0, want;
                ssize_t n;
                int r;

                if (rx->body) {
                        body_want = rx->body->len - rx->body_got;
                        iov[niov++] = (struct iovec){ rx->body->data + rx->body_got, body_want };
                }
                iov[niov++] = (struct iovec){ rx->rbuf + rx->rlen, rx->rcap - rx->rlen };
                want = body_want + (rx->rcap - rx->rlen);
                n = readv(fd, iov, niov);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        return -errno;
                }
                if (n == 0)
                        return STREAM_EOF;
                if ((size_t)n <= body_want) {
                        rx->body_got += (size_t)n;
                } else {
                        rx->body_got += body_want;
                        rx->rlen += (size_t)n - body_want;
                }
                total += (size_t)n;
                r = stream_parse(rx);
                if (r)
                        return r;
                /* Short read: the socket is drained for now. The loop is
                 * level-triggered and calls again when more (or EOF) arrives. */
                if ((size_t)n < want)
                        return 0;
        }
        return 0;
}

int stream_rx_feed(struct stream_rx *rx, const uint8_t *data, size_t len)
{
        while (len) {
                size_t n;
                int r;

                if (rx->body) {
                        n = rx->body->len - rx->body_got;
                        if (n > len)
                                n = len;
                        memcpy(rx->body->data + rx->body_got, data, n);
                        rx->body_got += n;
                } else {
                        n = rx->rcap - rx->rlen;
                        if (n > len)
                                n = len;
                        memcpy(rx->rbuf + rx->rlen, data, n);
                        rx->rlen += n;
                }
                data += n;
                len -= n;
                r = stream_parse(rx);
                if (r)
                        return r;
        }
        return 0;
}
