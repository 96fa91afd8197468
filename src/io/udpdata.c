/* SPDX-License-Identifier: MIT */
/* Batched UDP I/O for chunk data: sendmmsg with UDP GSO (header and payload
 * iovecs, no copy), recvmmsg with UDP GRO split back into datagrams. See
 * udpdata.h. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include "io/udpdata.h"
#include "proto/wire.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define FRAG_HDR   (P2S_HDR_SIZE + P2S_FRAG_SIZE)
#define BATCH      32           /* messages per sendmmsg / recvmmsg */
#define GSO_BYTES  65000        /* one GSO message stays below the 64 KiB UDP limit */
#define GSO_SEGS   64           /* the kernel's UDP_MAX_SEGMENTS */
#define RX_BYTES   65536

/* Scratch space for one batch each way, on the heap: a few MiB of stack or
 * of function statics is what a small stack or a second instance cannot
 * afford. */
struct udpdata_bufs {
        struct mmsghdr mm[BATCH];
        struct iovec iov[BATCH * GSO_SEGS * 2];
        uint8_t hdr[BATCH * GSO_SEGS][FRAG_HDR];
        union { char b[CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } ctl[BATCH];
        uint16_t seg[BATCH];
        unsigned nseg[BATCH], first[BATCH];
        /* receive side: its own headers, since a datagram's handler may send
         * (and so rebuild the send side's) while the batch is still read */
        struct mmsghdr rmm[BATCH];
        struct iovec riov[BATCH];
        struct sockaddr_storage from[BATCH];
        union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } rctl[BATCH];
        uint8_t rx[BATCH][RX_BYTES];
};

int udpdata_init(struct udpdata *u, int fd)
{
        *u = (struct udpdata){ .fd = fd };
        /* untouched pages cost no memory: only what arrives is written */
        u->bufs = malloc(sizeof(*u->bufs));
        if (!u->bufs)
                return -ENOMEM;
        int one = 1, seg = 1200;
        /* both are per-socket options: the kernel tells us at once if it has them */
        u->gro = setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof(one)) == 0;
        u->gso = setsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof(seg)) == 0;
        if (u->gso) {
                seg = 0;        /* the size goes with each send, not the socket */
                setsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof(seg));
        }
        return 0;
}

void udpdata_fini(struct udpdata *u)
{
        free(u->bufs);
        u->bufs = NULL;
}

static void put_frag(uint8_t *out, const struct p2s_hdr *tmpl, const struct dgram_frag *f)
{
        struct p2s_hdr h = *tmpl;
        h.type = P2S_FRAG;
        h.flags = f->flags;
        h.chunk = f->chunk;
        h.body_len = P2S_FRAG_SIZE + f->len;
        wire_encode_hdr(out, &h);
        wire_put_frag(out + P2S_HDR_SIZE, &f->f);
}

/* sendmmsg; the return says how many messages went. */
static int send_batch(struct udpdata *u, struct mmsghdr *mm, unsigned n)
{
        int k = sendmmsg(u->fd, mm, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        u->syscalls_out++;
        if (k < 0)
                return -errno;
        for (int i = 0; i < k; i++)
                u->bytes_out += mm[i].msg_len;
        return k;
}

/* Without GSO: one datagram per message, header and payload from two iovecs. */
static int flush_plain(struct udpdata *u, struct dgram_tx *tx, const struct p2s_hdr *tmpl,
                       struct sockaddr *to, socklen_t tolen, uint64_t now)
{
        struct dgram_frag fr[BATCH];
        uint8_t hdr[BATCH][FRAG_HDR];
        struct iovec iov[BATCH][2];
        struct mmsghdr mm[BATCH];
        size_t n;
        while ((n = dgram_tx_next(tx, now, fr, BATCH)) > 0) {
                for (size_t i = 0; i < n; i++) {
                        put_frag(hdr[i], tmpl, &fr[i]);
                        iov[i][0] = (struct iovec){ hdr[i], FRAG_HDR };
                        iov[i][1] = (struct iovec){ fr[i].payload, fr[i].len };
                        mm[i].msg_hdr = (struct msghdr){ .msg_name = to, .msg_namelen = tolen,
                                                         .msg_iov = iov[i], .msg_iovlen = 2 };
                }
                int k = send_batch(u, mm, (unsigned)n);
                if (k < 0 && k != -EAGAIN)
                        return k;
                u->datagrams_out += k > 0 ? (uint64_t)k : 0;
                if (k < (int)n)
                        return 1;
        }
        return 0;
}

/* With GSO: runs of equal-sized datagrams (only the last of a run may be
 * shorter) as one message each, several messages per sendmmsg. A message's
 * iovec alternates header and payload, the payload straight from the chunk's
 * buffer: the kernel cuts the whole at every seg bytes, so nothing is copied
 * here. Payload pointers stay valid: only an acknowledgement frees a chunk. */
static int flush_gso(struct udpdata *u, struct dgram_tx *tx, const struct p2s_hdr *tmpl,
                     struct sockaddr *to, socklen_t tolen, uint64_t now)
{
        struct udpdata_bufs *b = u->bufs;
        struct dgram_frag f;
        bool stashed = false;   /* f was taken from tx but did not fit the last batch */
        for (;;) {
                unsigned nb = 0, nh = 0, niov = 0;
                size_t bytes = 0;       /* of message nb - 1 */
                bool open = false;      /* message nb - 1 takes more of its size */
                for (;;) {
                        if (!stashed && dgram_tx_next(tx, now, &f, 1) == 0)
                                break;
                        stashed = false;
                        size_t sl = FRAG_HDR + f.len;
                        if (open && (sl > b->seg[nb - 1] || bytes + sl > GSO_BYTES ||
                                     b->nseg[nb - 1] == GSO_SEGS))
                                open = false;
                        if (!open) {
                                if (nb == BATCH) {
                                        stashed = true;
                                        break;
                                }
                                nb++;
                                b->seg[nb - 1] = (uint16_t)sl;
                                b->nseg[nb - 1] = 0;
                                b->first[nb - 1] = niov;
                                bytes = 0;
                                open = true;
                        }
                        put_frag(b->hdr[nh], tmpl, &f);
                        b->iov[niov++] = (struct iovec){ b->hdr[nh++], FRAG_HDR };
                        b->iov[niov++] = (struct iovec){ f.payload, f.len };
                        bytes += sl;
                        b->nseg[nb - 1]++;
                        if (sl < b->seg[nb - 1])
                                open = false;   /* a short one ends its run */
                }
                if (nb == 0)
                        return 0;
                for (unsigned i = 0; i < nb; i++) {
                        unsigned end = i + 1 < nb ? b->first[i + 1] : niov;
                        b->mm[i].msg_hdr = (struct msghdr){ .msg_name = to, .msg_namelen = tolen,
                                                            .msg_iov = &b->iov[b->first[i]],
                                                            .msg_iovlen = end - b->first[i] };
                        if (b->nseg[i] > 1) {
                                memset(&b->ctl[i], 0, sizeof(b->ctl[i]));      /* the padding goes to the kernel too */
                                b->mm[i].msg_hdr.msg_control = b->ctl[i].b;
                                b->mm[i].msg_hdr.msg_controllen = sizeof(b->ctl[i].b);
                                struct cmsghdr *cm = CMSG_FIRSTHDR(&b->mm[i].msg_hdr);
                                cm->cmsg_level = IPPROTO_UDP;
                                cm->cmsg_type = UDP_SEGMENT;
                                cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                                memcpy(CMSG_DATA(cm), &b->seg[i], sizeof(uint16_t));
                        }
                }
                int k = send_batch(u, b->mm, nb);
                if (k == -EIO || k == -EINVAL) {
                        /* GSO refused on this path after all: these count as lost, plain from now on */
                        u->gso = false;
                        return flush_plain(u, tx, tmpl, to, tolen, now);
                }
                if (k < 0 && k != -EAGAIN)
                        return k;
                for (int i = 0; i < k; i++)
                        u->datagrams_out += b->nseg[i];
                if (k < (int)nb)
                        return 1;
        }
}

int udpdata_flush(struct udpdata *u, struct dgram_tx *tx, const struct p2s_hdr *tmpl,
                  struct sockaddr *to, socklen_t tolen, uint64_t now)
{
        return u->gso ? flush_gso(u, tx, tmpl, to, tolen, now) : flush_plain(u, tx, tmpl, to, tolen, now);
}

size_t udpdata_ack_body(uint8_t *out, uint8_t kind, const struct dgram_rx_result *res)
{
        struct p2s_frag_ack a = { .kind = kind, .base = res ? res->nack_base : 0 };
        wire_put_frag_ack(out, &a);
        if (!res)
                return P2S_FRAG_ACK_SIZE;
        memcpy(out + P2S_FRAG_ACK_SIZE, res->nack_map, res->nack_len);
        return P2S_FRAG_ACK_SIZE + res->nack_len;
}

size_t udpdata_recv(struct udpdata *u, unsigned max_batches, udpdata_fn fn, void *ud, uint64_t *truncated)
{
        struct udpdata_bufs *b = u->bufs;
        struct mmsghdr *mm = b->rmm;
        size_t delivered = 0;
        for (unsigned round = 0; round < max_batches; round++) {
                for (int i = 0; i < BATCH; i++) {
                        b->riov[i] = (struct iovec){ b->rx[i], RX_BYTES };
                        mm[i].msg_hdr = (struct msghdr){ .msg_name = &b->from[i], .msg_namelen = sizeof(b->from[i]),
                                                         .msg_iov = &b->riov[i], .msg_iovlen = 1,
                                                         .msg_control = u->gro ? b->rctl[i].b : NULL,
                                                         .msg_controllen = u->gro ? sizeof(b->rctl[i].b) : 0 };
                }
                int n = recvmmsg(u->fd, mm, BATCH, MSG_DONTWAIT, NULL);
                if (n <= 0)
                        break;
                for (int i = 0; i < n; i++) {
                        struct msghdr *mh = &mm[i].msg_hdr;
                        if (mh->msg_flags & MSG_TRUNC) {
                                if (truncated)
                                        (*truncated)++;
                                continue;
                        }
                        size_t len = mm[i].msg_len, seg = len;
                        for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
                                int gs;
                                if (cm->cmsg_level == IPPROTO_UDP && cm->cmsg_type == UDP_GRO) {
                                        memcpy(&gs, CMSG_DATA(cm), sizeof(gs));
                                        if (gs > 0)
                                                seg = (size_t)gs;
                                }
                        }
                        /* a coalesced batch: datagrams of seg bytes, the last maybe shorter */
                        for (size_t off = 0; off < len; off += seg) {
                                size_t l = len - off < seg ? len - off : seg;
                                fn(b->rx[i] + off, l, (struct sockaddr *)&b->from[i], mh->msg_namelen, ud);
                                delivered++;
                        }
                }
                if (n < BATCH)
                        break;
        }
        return delivered;
}
