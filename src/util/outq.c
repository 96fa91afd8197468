/* SPDX-License-Identifier: MIT */
/* A stream socket's output queue: partial writes, a priority lane for
 * control frames, bodies sent from memory or with sendfile. See outq.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "outq.h"

#define OUTQ_IOV_MAX 64
/* sendfile(2) moves at most this much per call anyway. */
#define OUTQ_SENDFILE_MAX 0x7ffff000u

struct outq_item {
        struct outq_item *next;
        struct buf *body;       /* memory body, or NULL */
        int fd;                 /* file body when >= 0 */
        off_t off;
        size_t body_len;
        size_t sent;            /* bytes of hdr + body already written */
        uint8_t hdr_len;
        uint8_t hdr[OUTQ_HDR_MAX];
};

void outq_init(struct outq *q)
{
        q->head = q->tail = q->prio_tail = NULL;
        q->bytes = 0;
        q->items = 0;
}

static void outq_pop(struct outq *q)
{
        struct outq_item *it = q->head;

        q->head = it->next;
        if (!q->head)
                q->tail = NULL;
        if (q->prio_tail == it)
                q->prio_tail = NULL;
        q->items--;
        q->bytes -= it->hdr_len + it->body_len - it->sent;
        buf_unref(it->body);
        free(it);
}

void outq_fini(struct outq *q)
{
        while (q->head)
                outq_pop(q);
}

static struct outq_item *outq_item_new(const void *hdr, size_t hdr_len)
{
        struct outq_item *it;

        if (hdr_len > OUTQ_HDR_MAX || (hdr_len && !hdr))
                return NULL;
        it = calloc(1, sizeof(*it));
        if (!it)
                return NULL;
        it->fd = -1;
        it->hdr_len = (uint8_t)hdr_len;
        if (hdr_len)
                memcpy(it->hdr, hdr, hdr_len);
        return it;
}

static void outq_append(struct outq *q, struct outq_item *it)
{
        if (q->tail)
                q->tail->next = it;
        else
                q->head = it;
        q->tail = it;
        q->items++;
        q->bytes += it->hdr_len + it->body_len;
}

/* Links it in after the priority items, or after a head already partly
 * written (cutting into it would interleave two frames on the stream). */
static void outq_insert_prio(struct outq *q, struct outq_item *it)
{
        struct outq_item *after = q->prio_tail;

        if (!after && q->head && q->head->sent > 0)
                after = q->head;
        if (after) {
                it->next = after->next;
                after->next = it;
                if (q->tail == after)
                        q->tail = it;
        } else {
                it->next = q->head;
                q->head = it;
                if (!q->tail)
                        q->tail = it;
        }
        q->prio_tail = it;
        q->items++;
        q->bytes += it->hdr_len + it->body_len;
}

static int outq_push_lane(struct outq *q, const void *hdr, size_t hdr_len, struct buf *body, bool prio)
{
        struct outq_item *it;

        if (hdr_len > OUTQ_HDR_MAX)
                return -EINVAL;
        it = outq_item_new(hdr, hdr_len);
        if (!it)
                return -ENOMEM;
        if (body) {
                it->body = buf_ref(body);
                it->body_len = body->len;
                /* a slab buffer is a file range: sendfile hands the kernel
                 * its pages instead of copying them into this socket */
                if (body->fd >= 0 && body->len > 0) {
                        it->fd = body->fd;
                        it->off = body->off;
                }
        }
        if (prio)
                outq_insert_prio(q, it);
        else
                outq_append(q, it);
        return 0;
}

int outq_push(struct outq *q, const void *hdr, size_t hdr_len, struct buf *body)
{
        return outq_push_lane(q, hdr, hdr_len, body, false);
}

int outq_push_prio(struct outq *q, const void *hdr, size_t hdr_len, struct buf *body)
{
        return outq_push_lane(q, hdr, hdr_len, body, true);
}

int outq_push_file(struct outq *q, const void *hdr, size_t hdr_len, int fd, off_t off, size_t len)
{
        struct outq_item *it;

        if (hdr_len > OUTQ_HDR_MAX || fd < 0 || off < 0)
                return -EINVAL;
        it = outq_item_new(hdr, hdr_len);
        if (!it)
                return -ENOMEM;
        it->fd = fd;
        it->off = off;
        it->body_len = len;
        outq_append(q, it);
        return 0;
}

/* Accounts n written bytes against the head items, freeing finished ones. */
static void outq_consume(struct outq *q, size_t n)
{
        while (q->head) {
                struct outq_item *it = q->head;
                size_t left = it->hdr_len + it->body_len - it->sent;

                if (n < left) {
                        it->sent += n;
                        q->bytes -= n;
                        return;
                }
                n -= left;
                outq_pop(q);    /* subtracts the rest of it from q->bytes */
        }
}

/* Gathers consecutive memory items from the head into one vectored write.
 * Returns bytes written, or -errno. */
static ssize_t outq_write_mem(struct outq *q, int sockfd, size_t *want)
{
        struct iovec iov[OUTQ_IOV_MAX];
        struct msghdr mh = { .msg_iov = iov };
        size_t niov = 0, total = 0;
        ssize_t n;

        for (struct outq_item *it = q->head; it && it->fd < 0; it = it->next) {
                size_t s = it->sent;

                if (niov + 2 > OUTQ_IOV_MAX)
                        break;
                if (s < it->hdr_len) {
                        iov[niov].iov_base = it->hdr + s;
                        iov[niov++].iov_len = it->hdr_len - s;
                        total += it->hdr_len - s;
                        s = it->hdr_len;
                }
                if (it->body_len > s - it->hdr_len) {
                        size_t boff = s - it->hdr_len;

                        iov[niov].iov_base = it->body->data + boff;
                        iov[niov++].iov_len = it->body_len - boff;
                        total += it->body_len - boff;
                }
        }
        *want = total;
        if (total == 0)
                return 0;
        mh.msg_iovlen = niov;
        /* sendmsg for MSG_NOSIGNAL; writev only for non-sockets (tests, pipes). */
        n = sendmsg(sockfd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == ENOTSOCK)
                n = writev(sockfd, iov, (int)niov);
        return n < 0 ? -errno : n;
}

/* Writes what is left of the file item at the head: header, then sendfile.
 * Returns bytes written, or -errno; *want says how much was asked for. */
static ssize_t outq_write_file(struct outq_item *it, int sockfd, size_t *want)
{
        ssize_t n;
        off_t off;
        size_t len;

        if (it->sent < it->hdr_len) {
                *want = it->hdr_len - it->sent;
                /* MSG_MORE: let the kernel coalesce the header with the file data. */
                n = send(sockfd, it->hdr + it->sent, *want,
                         MSG_NOSIGNAL | MSG_DONTWAIT | (it->body_len ? MSG_MORE : 0));
                if (n < 0 && errno == ENOTSOCK)
                        n = write(sockfd, it->hdr + it->sent, *want);
                return n < 0 ? -errno : n;
        }
        off = it->off + (off_t)(it->sent - it->hdr_len);
        len = it->body_len - (it->sent - it->hdr_len);
        if (len > OUTQ_SENDFILE_MAX)
                len = OUTQ_SENDFILE_MAX;
        *want = len;
        if (len == 0)
                return 0;
        n = sendfile(sockfd, it->fd, &off, len);
        if (n < 0)
                return -errno;
        /* The file ended before the range did: nothing will ever fill it. */
        if (n == 0)
                return -EIO;
        return n;
}

int outq_flush(struct outq *q, int sockfd)
{
        while (q->head) {
                size_t want = 0;
                ssize_t n;

                if (q->head->fd < 0)
                        n = outq_write_mem(q, sockfd, &want);
                else
                        n = outq_write_file(q->head, sockfd, &want);
                if (n < 0) {
                        if (n == -EAGAIN || n == -EWOULDBLOCK)
                                return 1;
                        if (n == -EINTR)
                                continue;
                        return (int)n;
                }
                outq_consume(q, (size_t)n);
                /* A short write means the socket buffer is full: EPOLLOUT will
                 * say when to go on, so skip the syscall that would hit EAGAIN. */
                if ((size_t)n < want)
                        return 1;
        }
        return 0;
}
