/* SPDX-License-Identifier: MIT */
/* p2sd's TCP connections: accepting them, reassembling frames across
 * partial reads, queueing with partial writes, and closing them. Before its
 * ATTACH a connection may send nothing else and costs one read buffer; a
 * closed one is reaped by deferred work after the turn, never inside the
 * callback that killed it. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/srv.h"
#include "util/clock.h"
#include "util/log.h"

#define RX_BUF            (64u << 10)   /* larger bodies are read straight into their buffer */
#define MAX_PRE_ATTACH    1024          /* TCP connections that have not sent ATTACH yet */

static void conn_want_out(struct conn *c, bool on)
{
        if (c->want_out == on || c->dead)
                return;
        c->want_out = on;
        loop_mod(c->srv->loop, c->fd, EPOLLIN | (on ? EPOLLOUT : 0));
}

void conn_flush(struct conn *c)
{
        if (c->dead)
                return;
        size_t before = c->q.bytes;
        int r = outq_flush(&c->q, c->fd);
        c->srv->st.bytes_out += before - c->q.bytes;
        if (r < 0) {
                conn_kill(c, strerror(-r));
                return;
        }
        conn_want_out(c, r == 1);
        if (c->m)
                served_backlog_update(c->m);
        if (r == 0 && c->closing && !c->shut) {
                /* Half-close and read on until the peer closes: closing with
                 * its data unread would reset the connection and could destroy
                 * our last message (an ERR) before the peer reads it. */
                shutdown(c->fd, SHUT_WR);
                c->shut = true;
        }
}

void conn_send(struct conn *c, const struct p2s_hdr *h, struct buf *body)
{
        if (c->dead)
                return;
        uint8_t hdr[P2S_HDR_SIZE];
        wire_encode_hdr(hdr, h);
        if (outq_push(&c->q, hdr, sizeof(hdr), body) < 0) {
                conn_kill(c, "out of memory");
                return;
        }
        if (!c->want_out)
                conn_flush(c);
}

void conn_close_soon(struct conn *c)
{
        c->closing = true;
        c->linger_deadline = loop_now(c->srv->loop) + LINGER_US;
        conn_flush(c);
}

void conn_kill(struct conn *c, const char *why)
{
        if (c->dead)
                return;
        c->dead = true;
        if (why)
                log_info("%s: connection closed (%s)%s", c->peer, why, c->m ? "" : " before ATTACH");
        c->zombie_next = c->srv->zombies;
        c->srv->zombies = c;
        loop_defer(c->srv->loop, &c->srv->reaper);
}

/* Deferred work: frees what conn_kill marked, and what that lets go. */
void conn_reap(struct loop *l, void *ud)
{
        struct server *srv = ud;
        while (srv->zombies) {
                struct conn *c = srv->zombies;
                srv->zombies = c->zombie_next;
                loop_del(srv->loop, c->fd);
                close(c->fd);
                if (c->prev)
                        c->prev->next = c->next;
                else
                        srv->conns = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                struct smember *m = c->m;
                if (!m)
                        srv->npreattach--;
                outq_fini(&c->q);
                stream_rx_fini(&c->rx);
                free(c);
                if (m) {
                        m->conn = NULL;
                        served_member_gone(m);  /* may kill more: this loop takes them */
                        smember_free(srv, m);
                }
        }
        served_reap(srv);
        if (srv->shutting_down && !srv->conns)
                loop_quit(srv->loop, 0);
}

/* ---- incoming ------------------------------------------------------------ */

static long conn_hdr(const uint8_t *raw, void *ud)
{
        struct conn *c = ud;
        struct p2s_hdr h;
        int r = wire_decode_hdr(raw, P2S_HDR_SIZE, &h);
        if (r != WIRE_OK)
                return -EBADMSG;
        /* before ATTACH only ATTACH; after it, never a body larger than a chunk
         * of this swarm: nothing big is allocated for an unproven peer */
        if (!c->m)
                return h.type == P2S_ATTACH ? (long)h.body_len : -EPERM;
        uint32_t cs = c->m->sv ? swarm_chunk_size(c->m->sv->sw) : 0;
        r = wire_check_frame_hdr(&h, WIRE_DIR_C2S, c->srv->control, cs);
        if (r == WIRE_E_ROUTE)
                return -EPERM;
        if (r != WIRE_OK)
                return -EMSGSIZE;
        return (long)h.body_len;
}

static int conn_frame(const uint8_t *raw, struct buf *body, void *ud)
{
        struct conn *c = ud;
        struct server *srv = c->srv;
        struct p2s_msg msg;
        srv->st.bytes_in += P2S_HDR_SIZE + (body ? body->len : 0);
        wire_decode_hdr(raw, P2S_HDR_SIZE, &msg.hdr);
        msg.body = body ? body->data : NULL;
        int r = wire_check_body(&msg.hdr, msg.body);
        if (r != WIRE_OK) {
                srv->st.bad_packets++;
                conn_kill(c, wire_strerror(r));
                return 1;
        }
        if (msg.hdr.type == P2S_ATTACH) {
                if (c->m)
                        conn_kill(c, "second ATTACH");
                else
                        join_on_attach(c, &msg.hdr);
                return c->dead;
        }
        struct smember *m = c->m;
        if (msg.hdr.member_id != m->id || msg.hdr.token != m->token) {
                srv->st.bad_packets++;
                conn_kill(c, "frame with another member's id or token");
                return 1;
        }
        served_member_msg(m, &msg, body);
        return c->dead;
}

static void conn_event(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct conn *c = ud;
        if (c->dead)
                return;
        if (events & EPOLLOUT)
                conn_flush(c);
        if (!c->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                int r = stream_rx_read(&c->rx, fd);
                if (!c->dead) {
                        if (r == STREAM_EOF)
                                conn_kill(c, NULL);
                        else if (r < 0)
                                conn_kill(c, strerror(-r));
                }
        }
}

void conn_accept(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct server *srv = ud;
        for (int i = 0; i < 64; i++) {
                struct sockaddr_storage ss;
                socklen_t sl = sizeof(ss);
                int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_rl(LOG_WARNING, "accept: %s", strerror(errno));
                        break;
                }
                /* each costs a read buffer before it has proven anything */
                if (srv->npreattach >= MAX_PRE_ATTACH) {
                        log_rl(LOG_WARNING, "refused a TCP connection: %u are waiting for their ATTACH", srv->npreattach);
                        close(cfd);
                        continue;
                }
                struct conn *c = calloc(1, sizeof(*c));
                if (!c || stream_rx_init(&c->rx, P2S_HDR_SIZE, RX_BUF, conn_hdr, conn_frame, c) < 0) {
                        free(c);
                        close(cfd);
                        continue;
                }
                int one = 1;
                setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                c->srv = srv;
                c->fd = cfd;
                c->born = loop_now(srv->loop);
                outq_init(&c->q);
                net_addr_str((struct sockaddr *)&ss, c->peer);
                if (loop_add(srv->loop, cfd, EPOLLIN, conn_event, c) < 0) {
                        stream_rx_fini(&c->rx);
                        free(c);
                        close(cfd);
                        continue;
                }
                c->next = srv->conns;
                if (srv->conns)
                        srv->conns->prev = c;
                srv->conns = c;
                srv->npreattach++;
        }
}

void conn_housekeep(struct server *srv, uint64_t now)
{
        for (struct conn *c = srv->conns; c; c = c->next) {
                if (!c->m && now - c->born > ATTACH_TIMEOUT_US)
                        conn_kill(c, "no ATTACH in time");
                else if (c->closing && c->linger_deadline && now > c->linger_deadline)
                        conn_kill(c, "peer stopped reading");
        }
}
