/* SPDX-License-Identifier: MIT */
/* The UDP data channel endpoint: see datachan.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "io/datachan.h"
#include "util/log.h"

struct datachan_peer {
        struct datachan *dc;
        struct dgram_tx *tx;
        struct dgram_rx *rx;
        const struct datachan_ops *ops;
        void *ud;
        struct sockaddr_storage to;
        socklen_t tolen;                /* 0: the socket is connected */
        struct p2s_hdr ids;
        struct loop_timer timer;
        bool waiting;                   /* in dc->waiting */
        struct datachan_peer *wnext, *wprev;
};

int datachan_init(struct datachan *dc, struct loop *l, int fd, uint32_t base_events)
{
        *dc = (struct datachan){ .loop = l, .base_events = base_events };
        return udpdata_init(&dc->ud, fd);
}

void datachan_fini(struct datachan *dc)
{
        udpdata_fini(&dc->ud);
}

static void wait_add(struct datachan_peer *p)
{
        struct datachan *dc = p->dc;
        if (p->waiting)
                return;
        p->waiting = true;
        p->wprev = NULL;
        p->wnext = dc->waiting;
        if (dc->waiting)
                dc->waiting->wprev = p;
        dc->waiting = p;
}

static void wait_remove(struct datachan_peer *p)
{
        if (!p->waiting)
                return;
        if (p->wprev)
                p->wprev->wnext = p->wnext;
        else
                p->dc->waiting = p->wnext;
        if (p->wnext)
                p->wnext->wprev = p->wprev;
        p->waiting = false;
}

static void peer_rearm(struct datachan_peer *p)
{
        struct loop *l = p->dc->loop;
        uint64_t d = dgram_tx_next_deadline(p->tx);
        if (d == UINT64_MAX)
                loop_timer_disarm(l, &p->timer);
        else if (!loop_timer_armed(&p->timer) || p->timer.node.key != d)
                loop_timer_arm(l, &p->timer, d);
}

/* Sends what the window allows; a full socket parks the peer until
 * datachan_writable. */
static void peer_flush(struct datachan_peer *p)
{
        struct datachan *dc = p->dc;
        if (dc->blocked) {
                if (dgram_tx_pending_bytes(p->tx))
                        wait_add(p);
        } else {
                struct sockaddr *to = p->tolen ? (struct sockaddr *)&p->to : NULL;
                int r = udpdata_flush(&dc->ud, p->tx, &p->ids, to, p->tolen, loop_now(dc->loop));
                if (r == 1) {
                        dc->blocked = true;
                        wait_add(p);
                        loop_mod(dc->loop, dc->ud.fd, dc->base_events | EPOLLOUT);
                } else if (r < 0) {
                        /* what the kernel refused counts as lost: the sender recovers it */
                        log_rl(LOG_WARNING, "member %u: sending chunk data: %s", p->ids.member_id, strerror(-r));
                }
        }
        peer_rearm(p);
}

void datachan_writable(struct datachan *dc)
{
        if (!dc->blocked)
                return;
        dc->blocked = false;
        loop_mod(dc->loop, dc->ud.fd, dc->base_events);
        while (dc->waiting && !dc->blocked) {
                struct datachan_peer *p = dc->waiting;
                wait_remove(p);
                peer_flush(p);
        }
}

static void peer_timer(struct loop *l, struct loop_timer *t, void *ud)
{
        struct datachan_peer *p = ud;
        if (dgram_tx_on_tick(p->tx, loop_now(l))) {
                p->ops->silent(p->ud);  /* may free p */
                return;
        }
        peer_flush(p);
}

struct datachan_peer *datachan_peer_new(struct datachan *dc, const struct dgram_config *cfg,
                                        const struct datachan_ops *ops, void *ud)
{
        struct datachan_peer *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->dc = dc;
        p->ops = ops;
        p->ud = ud;
        p->tx = dgram_tx_new(cfg);
        p->rx = dgram_rx_new(cfg->max_partial);
        loop_timer_init(&p->timer, peer_timer, p);
        if (!p->tx || !p->rx)
                return datachan_peer_free(p);
        return p;
}

struct datachan_peer *datachan_peer_free(struct datachan_peer *p)
{
        if (!p)
                return NULL;
        wait_remove(p);
        loop_timer_disarm(p->dc->loop, &p->timer);
        dgram_tx_free(p->tx);
        dgram_rx_free(p->rx);
        free(p);
        return NULL;
}

void datachan_peer_set_dest(struct datachan_peer *p, const struct sockaddr *to, socklen_t tolen,
                            const struct p2s_hdr *ids)
{
        if (to && tolen <= sizeof(p->to)) {
                memcpy(&p->to, to, tolen);
                p->tolen = tolen;
        } else {
                p->tolen = 0;
        }
        p->ids = (struct p2s_hdr){ .swarm_id = ids->swarm_id, .member_id = ids->member_id, .token = ids->token };
}

int datachan_send(struct datachan_peer *p, uint8_t kind, uint16_t flags, uint32_t chunk, struct buf *data)
{
        int r = dgram_tx_push(p->tx, kind, flags, chunk, data, loop_now(p->dc->loop));
        if (r < 0)
                return r;
        peer_flush(p);
        return 0;
}

/* FRAG_ACK (res NULL) or FRAG_NACK with res's bitmap; a lost one is
 * recovered by the sender's probe. */
static void send_ack(struct datachan_peer *p, uint8_t type, uint8_t kind, uint32_t chunk,
                     const struct dgram_rx_result *res)
{
        uint8_t body[P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX];
        uint8_t pkt[P2S_HDR_SIZE + sizeof(body)];
        size_t len = udpdata_ack_body(body, kind, type == P2S_FRAG_NACK ? res : NULL);
        struct p2s_hdr h = p->ids;
        h.type = type;
        h.chunk = chunk;
        h.body_len = (uint32_t)len;
        size_t n = wire_encode(pkt, sizeof(pkt), &h, body, len);
        if (n && sendto(p->dc->ud.fd, pkt, n, MSG_DONTWAIT | MSG_NOSIGNAL,
                        p->tolen ? (const struct sockaddr *)&p->to : NULL, p->tolen) > 0)
                p->dc->ud.bytes_out += n;
}

bool datachan_on_datagram(struct datachan_peer *p, const struct p2s_msg *msg)
{
        const struct p2s_hdr *h = &msg->hdr;
        uint64_t now = loop_now(p->dc->loop);
        if (h->type == P2S_FRAG_ACK || h->type == P2S_FRAG_NACK) {
                struct p2s_frag_ack a;
                wire_get_frag_ack(msg->body, &a);
                if (h->type == P2S_FRAG_ACK)
                        dgram_tx_on_ack(p->tx, a.kind, h->chunk, now);
                else
                        dgram_tx_on_nack(p->tx, a.kind, h->chunk, a.base, msg->body + P2S_FRAG_ACK_SIZE,
                                         h->body_len - P2S_FRAG_ACK_SIZE, now);
                peer_flush(p);
                if (p->ops->drained)
                        p->ops->drained(p->ud);
                return true;
        }
        if (h->type != P2S_FRAG)
                return false;
        struct p2s_frag f;
        wire_get_frag(msg->body, &f);
        switch (p->ops->want(p->ud, f.kind, h->chunk, f.chunk_len)) {
        case DATACHAN_REFUSE:
                return false;
        case DATACHAN_HAVE:
                send_ack(p, P2S_FRAG_ACK, f.kind, h->chunk, NULL);     /* our ACK was lost */
                return true;
        case DATACHAN_WANT:
                break;
        }
        struct dgram_rx_result res;
        int r = dgram_rx_on_frag(p->rx, f.kind, h->chunk, &f, msg->body + P2S_FRAG_SIZE,
                                 (uint16_t)(h->body_len - P2S_FRAG_SIZE), now, &res);
        if (r == DGRAM_RX_COMPLETE) {
                bool taken = p->ops->deliver(p->ud, f.kind, h->chunk, h->flags, res.chunk);
                buf_unref(res.chunk);
                /* acknowledged only once it is ours, verified where it can be */
                if (taken)
                        send_ack(p, P2S_FRAG_ACK, f.kind, h->chunk, NULL);
        } else if (res.nack) {
                send_ack(p, P2S_FRAG_NACK, f.kind, h->chunk, &res);
        }
        return r != DGRAM_RX_DROP;
}

size_t datachan_pending_bytes(const struct datachan_peer *p)
{
        return dgram_tx_pending_bytes(p->tx);
}

const struct dgram_tx_stats *datachan_tx_stats(const struct datachan_peer *p)
{
        return dgram_tx_stats(p->tx);
}
