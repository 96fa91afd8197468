/* SPDX-License-Identifier: MIT */
/* p2sd's TCP connections: accepting them, reassembling frames across
 * partial reads, queueing with partial writes, and closing them. Before its
 * ATTACH a connection may send nothing else and costs one read buffer; a
 * closed one is reaped by deferred work after the turn, never inside the
 * callback that killed it.
 *
 * What a peer costs is bounded (p2sd(8), LIMITS), each connection on its own
 * timer at its earliest deadline, never a scan of all of them: ATTACH within
 * ATTACH_TIMEOUT_US; a frame begun ends within --frame-timeout plus 1 s per
 * FRAME_MIN_RATE bytes of it that arrived (slowloris); a queue toward the
 * member moves at least once per --frame-timeout, and its REQs wait while
 * MEMBER_QUEUE_MAX is queued, and past MEMBER_QUEUE_HARD it is dropped; an
 * UPLOAD body is allocated only while the swarm waits for that chunk and
 * RX_BODY_BUDGET has room, else it is read through and dropped (the swarm
 * asks again). Control frames go out before queued bulk data. Instead of
 * ATTACH a connection may ask for the listing (LIST, listing.c). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "daemon/srv.h"
#include "util/clock.h"
#include "util/log.h"

#define RX_BUF            (64u << 10)   /* larger bodies are read straight into their buffer */
#define MAX_PRE_ATTACH    1024          /* TCP connections that have not sent ATTACH yet */
#define CONN_UNSENT_MAX   (128u << 10)  /* TCP_NOTSENT_LOWAT of a member connection */

/* ---- deadlines ----------------------------------------------------------- */

static uint64_t frame_timeout(const struct server *srv)
{
        return srv->opt->frame_timeout_us ? srv->opt->frame_timeout_us : 30 * USEC_PER_SEC;
}

/* The earliest deadline of c, and the reason it is killed for at it. */
static uint64_t conn_deadline(const struct conn *c, const char **why)
{
        uint64_t d = UINT64_MAX;
        const char *w = NULL;
        if (!c->m) {
                d = c->born + ATTACH_TIMEOUT_US;
                w = "no ATTACH in time";
        }
        if (c->frame_start) {
                /* time earned by what arrived: a slow honest sender goes on,
                 * one that sends a header and stops does not */
                uint64_t f = c->frame_start + frame_timeout(c->srv) +
                             (uint64_t)stream_rx_partial(&c->rx) * USEC_PER_SEC / FRAME_MIN_RATE;
                if (f < d) {
                        d = f;
                        w = "a frame begun and not finished in time";
                }
        }
        if (!outq_empty(&c->q) && !c->closing && c->out_progress + frame_timeout(c->srv) < d) {
                d = c->out_progress + frame_timeout(c->srv);
                w = "peer stopped reading";
        }
        if (c->closing && c->linger_deadline && c->linger_deadline < d) {
                d = c->linger_deadline;
                w = "peer stopped reading";
        }
        *why = w;
        return d;
}

/* Arms the timer when a deadline came earlier than the one it waits for;
 * a later one is found when it fires (no re-arm per read). */
static void conn_touch(struct conn *c)
{
        const char *why;
        if (c->dead)
                return;
        uint64_t d = conn_deadline(c, &why);
        if (d != UINT64_MAX && (!loop_timer_armed(&c->timer) || d < c->timer.node.key))
                loop_timer_arm(c->srv->loop, &c->timer, d);
}

static void conn_timer(struct loop *l, struct loop_timer *t, void *ud)
{
        struct conn *c = ud;
        const char *why;
        if (c->dead)
                return;
        uint64_t d = conn_deadline(c, &why);
        if (d <= loop_now(l)) {
                if (c->m && why && !strcmp(why, "peer stopped reading"))
                        log_warning("member %u: %zu bytes queued and none read for %.1f s, dropped", c->m->id,
                                    c->q.bytes, (double)frame_timeout(c->srv) / USEC_PER_SEC);
                conn_kill(c, why);
        } else if (d != UINT64_MAX) {
                loop_timer_arm(l, t, d);
        }
}

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
        bool was_full = c->want_out;
        int r = outq_flush(&c->q, c->fd);
        c->srv->st.bytes_out += before - c->q.bytes;
        if (c->q.bytes != before) {
                c->out_progress = loop_now(c->srv->loop);
                /* the socket was full and took more: the peer read, whatever
                 * it says (bytes going into an empty buffer prove nothing) */
                if (c->m && was_full)
                        served_member_reading(c->m);
        }
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
        /* Slow is not silent: a QUERY or ERR must not wait behind megabytes
         * of chunk data on a slow link. Bulk and what orders with it (START,
         * the manifest) keep their order in the ordinary lane. */
        bool bulk = h->type == P2S_SHARE || h->type == P2S_DATA || h->type == P2S_START ||
                    h->type == P2S_MANIFEST || h->type == P2S_MANIFEST_END || h->body_len > 1024;
        if (bulk && c->m && c->q.bytes + h->body_len > MEMBER_QUEUE_HARD) {
                log_warning("member %u: more than %u bytes queued toward it, dropped", c->m->id,
                            (unsigned)MEMBER_QUEUE_HARD);
                conn_kill(c, "peer does not read what it asked for");
                return;
        }
        if (outq_empty(&c->q))
                c->out_progress = loop_now(c->srv->loop);
        if ((bulk ? outq_push(&c->q, hdr, sizeof(hdr), body) : outq_push_prio(&c->q, hdr, sizeof(hdr), body)) < 0) {
                conn_kill(c, "out of memory");
                return;
        }
        if (!c->want_out)
                conn_flush(c);
        conn_touch(c);
}

void conn_close_soon(struct conn *c)
{
        c->closing = true;
        c->linger_deadline = loop_now(c->srv->loop) + LINGER_US;
        conn_flush(c);
        conn_touch(c);
}

/* Connections without ATTACH wait in a FIFO: when it is full the oldest
 * gives way, so idle connections re-opened as fast as they are closed
 * cannot lock honest joins out (an honest client sends ATTACH at once). */
static void wait_add(struct conn *c)
{
        struct server *srv = c->srv;
        c->waiting = true;
        c->wait_next = NULL;
        c->wait_prev = srv->wait_tail;
        if (srv->wait_tail)
                srv->wait_tail->wait_next = c;
        else
                srv->wait_head = c;
        srv->wait_tail = c;
        srv->npreattach++;
}

static void wait_remove(struct conn *c)
{
        struct server *srv = c->srv;
        if (!c->waiting)
                return;
        if (c->wait_prev)
                c->wait_prev->wait_next = c->wait_next;
        else
                srv->wait_head = c->wait_next;
        if (c->wait_next)
                c->wait_next->wait_prev = c->wait_prev;
        else
                srv->wait_tail = c->wait_prev;
        c->waiting = false;
        srv->npreattach--;
}

void conn_attached(struct conn *c)
{
        wait_remove(c);
}

void conn_kill(struct conn *c, const char *why)
{
        if (c->dead)
                return;
        c->dead = true;
        wait_remove(c);
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
                /* what is still queued is dropped anyway: reset the
                 * connection, or the kernel keeps the bytes it took and
                 * probes a peer that reads nothing, and that peer never
                 * learns it was closed */
                if (!outq_empty(&c->q)) {
                        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
                        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
                }
                close(c->fd);
                if (c->prev)
                        c->prev->next = c->next;
                else
                        srv->conns = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                struct smember *m = c->m;
                wait_remove(c);
                srv->nconns--;
                srv->rx_bodies -= c->rx_body;
                loop_timer_disarm(srv->loop, &c->timer);
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
        /* a descriptor came free: the listener need not sleep on */
        if (srv->accept_paused && !srv->shutting_down) {
                srv->accept_paused = false;
                loop_timer_disarm(srv->loop, &srv->accept_timer);
                loop_mod(srv->loop, srv->tcp_fd, EPOLLIN);
        }
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
                return h.type == P2S_ATTACH || h.type == P2S_LIST ? (long)h.body_len : -EPERM;
        uint32_t cs = c->m->sv ? swarm_chunk_size(c->m->sv->sw) : 0;
        r = wire_check_frame_hdr(&h, WIRE_DIR_C2S, c->srv->control, cs);
        if (r == WIRE_E_ROUTE)
                return -EPERM;
        if (r != WIRE_OK)
                return -EMSGSIZE;
        if (h.type == P2S_UPLOAD && h.body_len) {
                /* memory only for what the swarm waits for, within one budget
                 * for every connection: else read through, the swarm asks again */
                struct smember *m = c->m;
                bool wanted = m->sv && m->sm && !m->sv->over && swarm_wants_upload(m->sv->sw, m->sm, h.chunk);
                if (!wanted || c->srv->rx_bodies + h.body_len > RX_BODY_BUDGET) {
                        log_rl(LOG_DEBUG, "member %u: UPLOAD of chunk %u %s, discarded", m->id, h.chunk,
                               wanted ? "over the receive budget" : "not asked for");
                        stream_rx_skip_body(&c->rx);
                        if (!wanted)
                                c->srv->st.bad_packets++;
                } else {
                        c->rx_body = h.body_len;
                        c->srv->rx_bodies += h.body_len;
                }
        }
        return (long)h.body_len;
}

/* An ERR frame on a connection that is no member's (yet), then closed. */
static void conn_refuse(struct conn *c, const struct p2s_hdr *req, uint16_t code, const char *reason)
{
        struct buf *b = wire_err_buf(code, reason);
        struct p2s_hdr e = { .type = P2S_ERR, .flags = P2S_F_FATAL, .body_len = b ? b->len : 0,
                             .chunk = P2S_NO_CHUNK };
        if (req) {
                e.swarm_id = req->swarm_id;
                e.member_id = req->member_id;
                e.token = req->token;
        }
        conn_send(c, &e, b);
        buf_unref(b);
        conn_close_soon(c);
}

/* --max-members: a valid ATTACH to a swarm that has as many is refused with
 * the reason; its join expires as one that never attached. */
static bool swarm_full(struct conn *c, const struct p2s_hdr *h)
{
        uint32_t max = c->srv->opt->max_members;
        struct smember *m = u32map_get(&c->srv->members, h->member_id);
        if (!max || !m || m->token != h->token || !m->sv || m->sv->over || swarm_member_count(m->sv->sw) < max)
                return false;
        char why[64];
        snprintf(why, sizeof(why), "swarm is full (%u members)", max);
        log_rl(LOG_WARNING, "swarm %u: member %u from %s refused: %s", swarm_id(m->sv->sw), m->id, c->peer, why);
        conn_refuse(c, h, P2S_ERR_BUSY, why);
        return true;
}

static int conn_frame(const uint8_t *raw, struct buf *body, void *ud)
{
        struct conn *c = ud;
        struct server *srv = c->srv;
        struct p2s_msg msg;
        srv->st.bytes_in += P2S_HDR_SIZE + (body ? body->len : 0);
        srv->rx_bodies -= c->rx_body;
        c->rx_body = 0;
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
                else if (!swarm_full(c, &msg.hdr))
                        join_on_attach(c, &msg.hdr);
                return c->dead;
        }
        if (msg.hdr.type == P2S_LIST) {
                /* a listing is asked on a connection of its own */
                if (c->m)
                        conn_kill(c, "LIST from a member");
                else
                        listing_on_list(c, &msg);
                return c->dead;
        }
        struct smember *m = c->m;
        if (msg.hdr.member_id != m->id || msg.hdr.token != m->token) {
                srv->st.bad_packets++;
                conn_kill(c, "frame with another member's id or token");
                return 1;
        }
        /* nothing more is asked of a member that has not read what it got:
         * the REQ is dropped and the member's retry comes back later */
        if (msg.hdr.type == P2S_REQ && conn_backpressured(c)) {
                log_rl(LOG_DEBUG, "member %u: REQ for chunk %u waits: %zu bytes queued toward it", m->id,
                       msg.hdr.chunk, c->q.bytes);
                return 0;
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
                if (!c->dead) {
                        bool partial = stream_rx_partial(&c->rx) > 0;
                        if (!partial)
                                c->frame_start = 0;
                        else if (!c->frame_start)
                                c->frame_start = loop_now(l);
                        conn_touch(c);
                }
        }
}

/* ---- accepting ----------------------------------------------------------- */

void conn_accept_resume(struct loop *l, struct loop_timer *t, void *ud)
{
        struct server *srv = ud;
        if (!srv->accept_paused || srv->shutting_down)
                return;
        srv->accept_paused = false;
        loop_mod(l, srv->tcp_fd, EPOLLIN);
}

/* Out of descriptors: a level-triggered listener would wake us at once, for
 * ever. It sleeps until a connection closes or ACCEPT_PAUSE_US passed. */
static void accept_pause(struct server *srv, int err)
{
        log_rl(LOG_WARNING, "accept: %s: not accepting for %u ms (%u connections)", strerror(err),
               ACCEPT_PAUSE_US / 1000, srv->nconns);
        srv->accept_paused = true;
        loop_mod(srv->loop, srv->tcp_fd, 0);
        loop_timer_arm(srv->loop, &srv->accept_timer, loop_now(srv->loop) + ACCEPT_PAUSE_US);
}

static unsigned max_connections(struct server *srv)
{
        if (srv->opt->max_connections)
                return srv->opt->max_connections;
        if (!srv->max_conns_auto) {
                /* room left for the sockets, the served files and the journal */
                struct rlimit rl;
                rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
                srv->max_conns_auto = n == RLIM_INFINITY || n > 1000064 ? 1000000 : n > 80 ? (unsigned)(n - 64) : 16;
        }
        return srv->max_conns_auto;
}

/* A connection over --max-connections gets a bare ERR frame, best effort
 * (its socket buffer is empty), and is closed: it costs nothing further. */
static void refuse_fd(int fd, unsigned max)
{
        char why[64];
        snprintf(why, sizeof(why), "server busy (%u connections)", max);
        uint8_t frame[P2S_HDR_SIZE + P2S_ERR_BODY_MIN + 64];
        size_t blen = wire_put_err(frame + P2S_HDR_SIZE, sizeof(frame) - P2S_HDR_SIZE, P2S_ERR_BUSY, why);
        struct p2s_hdr e = { .type = P2S_ERR, .flags = P2S_F_FATAL, .body_len = (uint32_t)blen,
                             .chunk = P2S_NO_CHUNK };
        wire_encode_hdr(frame, &e);
        (void)!send(fd, frame, P2S_HDR_SIZE + blen, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
}

void conn_accept(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct server *srv = ud;
        for (int i = 0; i < 64; i++) {
                struct sockaddr_storage ss;
                socklen_t sl = sizeof(ss);
                int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                                accept_pause(srv, errno);
                        else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_rl(LOG_WARNING, "accept: %s", strerror(errno));
                        break;
                }
                if (srv->nconns >= max_connections(srv)) {
                        log_rl(LOG_WARNING, "refused a TCP connection: %u connections (--max-connections)",
                               srv->nconns);
                        refuse_fd(cfd, max_connections(srv));
                        continue;
                }
                /* each costs a read buffer before it has proven anything:
                 * at the bound the one that waited longest makes room */
                if (srv->npreattach >= MAX_PRE_ATTACH && srv->wait_head) {
                        log_rl(LOG_WARNING, "%u TCP connections wait for their ATTACH: closing the oldest",
                               srv->npreattach);
                        conn_kill(srv->wait_head, NULL);
                }
                struct conn *c = calloc(1, sizeof(*c));
                if (!c || stream_rx_init(&c->rx, P2S_HDR_SIZE, RX_BUF, conn_hdr, conn_frame, c) < 0) {
                        free(c);
                        close(cfd);
                        continue;
                }
                int one = 1, unsent = CONN_UNSENT_MAX;
                setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                /* what the kernel holds unsent is a queue our priority lane
                 * cannot jump: kept short, a query or a DROP waits behind
                 * that little, not behind seconds of chunks to a slow link */
                setsockopt(cfd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &unsent, sizeof(unsent));
                c->srv = srv;
                c->fd = cfd;
                c->born = loop_now(srv->loop);
                loop_timer_init(&c->timer, conn_timer, c);
                outq_init(&c->q);
                net_addr_str((struct sockaddr *)&ss, c->peer);
                memcpy(&c->addr, &ss, sl <= sizeof(ss) ? sl : sizeof(ss));
                c->addrlen = sl <= sizeof(ss) ? sl : (socklen_t)sizeof(ss);
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
                wait_add(c);
                srv->nconns++;
                conn_touch(c);
        }
}
