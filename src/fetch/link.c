/* SPDX-License-Identifier: MIT */
/* p2s-fetch's links to the server: the TCP connection (frames reassembled
 * across partial reads and checked against the routing rules before any
 * body is allocated, a queue with partial writes, a failed write settled
 * after what the server sent was read) and the UDP socket (control
 * datagrams, and chunk data through io/datachan with the member's say on
 * what to accept). Everything it receives goes to client_on_server_msg. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include "fetch/exitcode.h"
#include "fetch/session.h"
#include "util/log.h"

/* ---- sending ------------------------------------------------------------- */

void client_fill_hdr(struct client *c, struct p2s_hdr *h, uint8_t type, uint32_t chunk, uint32_t body_len)
{
        *h = (struct p2s_hdr){ .type = type, .body_len = body_len, .swarm_id = c->swarm_id,
                               .member_id = c->member_id, .token = c->token, .chunk = chunk };
}

int client_udp_send(struct client *c, const struct p2s_hdr *h, const void *body)
{
        uint8_t pkt[P2S_HDR_SIZE + P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX + P2S_MAX_NAME];
        size_t n = wire_encode(pkt, sizeof(pkt), h, body, h->body_len);
        /* a lost control datagram is recovered by its retry timer */
        if (n && send(c->udp_fd, pkt, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                return -errno;
        return 0;
}

void client_tcp_flush(struct client *c)
{
        if (c->tcp_err)
                return;
        int r = outq_flush(&c->q, c->tcp_fd);
        if (r < 0) {
                /* the server may have closed after an ERR still unread in our
                 * buffer: settle reads it before blaming the write */
                c->tcp_err = -r;
                loop_defer(c->loop, &c->settle);
                return;
        }
        bool want = r == 1;
        if (want != c->want_out) {
                c->want_out = want;
                loop_mod(c->loop, c->tcp_fd, EPOLLIN | (want ? EPOLLOUT : 0));
        }
}

void client_tcp_send(struct client *c, const struct p2s_hdr *h)
{
        uint8_t raw[P2S_HDR_SIZE];
        wire_encode_hdr(raw, h);
        if (outq_push(&c->q, raw, sizeof(raw), NULL) < 0) {
                member_fail(c->mb, "out of memory", loop_now(c->loop));
                return;
        }
        if (!c->want_out)
                client_tcp_flush(c);
}

/* ---- incoming ------------------------------------------------------------ */

static bool ours(const struct client *c, const struct p2s_hdr *h)
{
        return h->token == c->token && h->member_id == c->member_id && h->swarm_id == c->swarm_id;
}

/* ---- the data channel (--control=tcp) ------------------------------------ */

static enum datachan_want data_want(void *ud, uint8_t kind, uint32_t chunk, uint32_t chunk_len)
{
        struct client *c = ud;
        switch (member_wants_chunk(c->mb, kind, chunk, chunk_len)) {
        case MEMBER_WANT_YES:
                return DATACHAN_WANT;
        case MEMBER_WANT_HAVE:
                return DATACHAN_HAVE;
        default:
                return DATACHAN_REFUSE;
        }
}

static bool data_deliver(void *ud, uint8_t kind, uint32_t chunk, uint16_t flags, struct buf *data)
{
        struct client *c = ud;
        uint64_t now = loop_now(c->loop);
        if (kind == P2S_SHARE)
                member_on_share(c->mb, chunk, data, now);
        else
                member_on_data(c->mb, chunk, data, flags & P2S_F_FROM_CACHE, now);
        client_drain(c);
        /* acknowledged only once it is ours, verified where it can be */
        return member_has_chunk(c->mb, chunk);
}

static void data_silent(void *ud)
{
        struct client *c = ud;
        member_on_disconnect(c->mb, "the server stopped acknowledging uploads", loop_now(c->loop));
        client_drain(c);
}

const struct datachan_ops client_data_ops = {
        .want = data_want, .deliver = data_deliver, .silent = data_silent,
};

static void on_datagram(struct client *c, const uint8_t *pkt, size_t len)
{
        struct p2s_msg msg;
        int r = wire_decode(pkt, len, &msg);
        if (r != WIRE_OK) {
                log_rl(LOG_NOTICE, "dropped a datagram from the server: %s", wire_strerror(r));
                return;
        }
        const struct p2s_hdr *h = &msg.hdr;
        r = wire_check_route(h->type, WIRE_DIR_S2C, WIRE_CH_UDP, c->join == JOIN_HELLO ? 0 : c->control);
        if (r == WIRE_OK && (h->type == P2S_FRAG || h->type == P2S_FRAG_ACK || h->type == P2S_FRAG_NACK))
                r = wire_check_frag_route(h->type, msg.body[0], WIRE_DIR_S2C);
        if (r != WIRE_OK) {
                log_rl(LOG_NOTICE, "dropped a %s datagram from the server: %s", wire_type_name(h->type),
                       wire_strerror(r));
                return;
        }
        if (c->join == JOIN_HELLO) {
                join_on_datagram(c, &msg);
                return;
        }
        if (h->type == P2S_COOKIE || h->type == P2S_WELCOME)
                return;         /* the answer to a HELLO's second copy, or a late one */
        if (c->join != JOIN_ATTACHED || !ours(c, h))
                return;         /* not for this session: dropped */
        if (h->type == P2S_FRAG || h->type == P2S_FRAG_ACK || h->type == P2S_FRAG_NACK) {
                if (c->peer)
                        datachan_on_datagram(c->peer, &msg);
                return;
        }
        /* the routing rules above already let through only what the server
         * may send as a datagram in this mode */
        client_on_server_msg(c, &msg, NULL, false);
}

static void on_udp(const uint8_t *pkt, size_t len, const struct sockaddr *from, socklen_t fromlen, void *ud)
{
        struct client *c = ud;
        if (c->join != JOIN_DONE)
                on_datagram(c, pkt, len);
}

void link_udp_event(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct client *c = ud;
        if ((events & EPOLLERR) && c->join == JOIN_HELLO) {
                /* the kernel heard ICMP port unreachable for our HELLO: nobody
                 * listens there, and waiting for --timeout would not change it */
                int err = 0;
                socklen_t el = sizeof(err);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == ECONNREFUSED) {
                        join_refused(c);
                        return;
                }
        }
        if (events & EPOLLOUT)
                datachan_writable(&c->data);
        /* ECONNREFUSED later ends a batch early: the TCP connection tells us */
        udpdata_recv(&c->data.ud, 4, on_udp, c, NULL);
}

long link_tcp_hdr(const uint8_t *raw, void *ud)
{
        struct client *c = ud;
        struct p2s_hdr h;
        if (wire_decode_hdr(raw, P2S_HDR_SIZE, &h) != WIRE_OK)
                return -EBADMSG;
        /* nothing is allocated for a frame the server may not send */
        enum member_state st = member_state(c->mb);
        uint32_t cs = st == MEMBER_WAIT_START ? 0 : member_manifest(c->mb)->chunk_size;
        int r = wire_check_frame_hdr(&h, WIRE_DIR_S2C, c->control, cs);
        if (r == WIRE_E_ROUTE)
                return -EPERM;
        if (r != WIRE_OK)
                return -EMSGSIZE;
        return (long)h.body_len;
}

int link_tcp_frame(const uint8_t *raw, struct buf *body, void *ud)
{
        struct client *c = ud;
        struct p2s_msg msg;
        wire_decode_hdr(raw, P2S_HDR_SIZE, &msg.hdr);
        msg.body = body ? body->data : NULL;
        if (wire_check_body(&msg.hdr, msg.body) != WIRE_OK || !ours(c, &msg.hdr)) {
                member_on_disconnect(c->mb, "the server sent a malformed frame", loop_now(c->loop));
                client_drain(c);
                return 1;
        }
        client_on_server_msg(c, &msg, body, true);
        return c->join == JOIN_DONE;
}

void client_tcp_event(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct client *c = ud;
        if (c->join == JOIN_CONNECTING) {
                join_on_connect(c, events);
                return;
        }
        if (c->join != JOIN_ATTACHED)
                return;
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                int r = stream_rx_read(&c->rx, fd);
                /* a frame callback that ended the session also returns nonzero */
                if (c->join == JOIN_ATTACHED) {
                        if (r == STREAM_EOF)
                                member_on_disconnect(c->mb, "the server closed the connection", loop_now(l));
                        else if (r < 0)
                                member_on_disconnect(c->mb, strerror(-r), loop_now(l));
                }
        }
        if (c->join == JOIN_ATTACHED && (events & EPOLLOUT))
                client_tcp_flush(c);
        client_drain(c);
}

/* Deferred after a failed write: reported only once whatever the server
 * sent before closing has been read (its ERR says more than EPIPE). */
void link_settle(struct loop *l, void *ud)
{
        struct client *c = ud;
        if (!c->tcp_err || c->join != JOIN_ATTACHED)
                return;
        int r = stream_rx_read(&c->rx, c->tcp_fd);
        if (c->join == JOIN_ATTACHED) {
                const char *why = r == STREAM_EOF ? "the server closed the connection" : strerror(c->tcp_err);
                member_on_disconnect(c->mb, why, loop_now(c->loop));
                client_drain(c);
        }
}
