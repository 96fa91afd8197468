/* SPDX-License-Identifier: MIT */
/* The p2sd server object: its sockets' life, the dispatch of every UDP
 * datagram (join, control, chunk data) to its owner, housekeeping on its own
 * timer, status, shutdown and reload. Data flows one way: socket ->
 * wire_decode -> swarm event -> actions -> wire_encode -> socket. See srv.h
 * for which file owns which concern. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/srv.h"
#include "util/clock.h"
#include "util/log.h"

/* ---- sending ------------------------------------------------------------- */

void udp_send(struct server *srv, const struct sockaddr *to, socklen_t tolen, const struct p2s_hdr *h,
              const void *body)
{
        uint8_t pkt[P2S_HDR_SIZE + P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX + P2S_MAX_REASON];
        size_t n = wire_encode(pkt, sizeof(pkt), h, body, h->body_len);
        /* control datagrams are small: a full socket buffer loses one, and the
         * peer's retry timer brings it back */
        if (n && sendto(srv->udp_fd, pkt, n, MSG_DONTWAIT | MSG_NOSIGNAL, to, tolen) > 0)
                srv->st.bytes_out += n;
}

/* An ERR in answer to a datagram of req_len bytes. To an address that has
 * proven nothing (no valid cookie) never more bytes than it sent: the reason
 * is cut to fit, and a datagram too short for even a bare ERR gets none.
 * After a valid cookie (req_len PROVEN) the whole reason. */
void udp_reply_err(struct server *srv, const struct sockaddr *to, socklen_t tolen, const struct p2s_hdr *req,
                   size_t req_len, uint16_t code, const char *reason)
{
        uint8_t body[P2S_ERR_BODY_MIN + P2S_MAX_REASON];
        size_t room = sizeof(body);
        if (req_len != PROVEN) {
                if (req_len < P2S_HDR_SIZE + P2S_ERR_BODY_MIN)
                        return;
                if (req_len - P2S_HDR_SIZE < room)
                        room = req_len - P2S_HDR_SIZE;
        }
        char r[P2S_MAX_REASON + 1];
        snprintf(r, sizeof(r), "%.*s", (int)(room - P2S_ERR_BODY_MIN), reason);
        size_t n = wire_put_err(body, sizeof(body), code, r);
        struct p2s_hdr h = { .type = P2S_ERR, .flags = P2S_F_FATAL, .body_len = (uint32_t)n,
                             .swarm_id = req->swarm_id, .member_id = req->member_id,
                             .token = req->token, .chunk = P2S_NO_CHUNK };
        udp_send(srv, to, tolen, &h, body);
}

/* ---- members ------------------------------------------------------------- */

void smember_free(struct server *srv, struct smember *m)
{
        u32map_del(&srv->members, m->id);
        if (m->data) {
                /* how the data channel fared on this member's path */
                const struct dgram_tx_stats *t = datachan_tx_stats(m->data);
                log_debug("member %u: chunks over UDP: %llu chunks, %llu fragments, %llu re-sent, %llu probes, "
                          "%llu nacks, %llu timeouts, cwnd %u, srtt %llu us, fragments of %u bytes "
                          "(of at most %u; %llu chunks cut again)", m->id,
                          (unsigned long long)t->chunks_sent, (unsigned long long)t->frags_sent,
                          (unsigned long long)t->frags_resent, (unsigned long long)t->probes,
                          (unsigned long long)t->nacks, (unsigned long long)t->timeouts, t->cwnd,
                          (unsigned long long)t->srtt_us, t->frag_size,
                          m->dgram_size - P2S_HDR_SIZE - P2S_FRAG_SIZE,
                          (unsigned long long)t->recuts);
        }
        datachan_peer_free(m->data);
        if (m->sv) {
                if (m->prev)
                        m->prev->next = m->next;
                else if (m->sv->members == m)
                        m->sv->members = m->next;
                if (m->next)
                        m->next->prev = m->prev;
        }
        free(m);
}

/* ---- datagrams ----------------------------------------------------------- */

static void on_datagram(struct server *srv, const uint8_t *pkt, size_t len,
                        const struct sockaddr *from, socklen_t fromlen)
{
        srv->st.bytes_in += len;
        struct p2s_msg msg;
        int r = wire_decode(pkt, len, &msg);
        if (r != WIRE_OK) {
                srv->st.bad_packets++;
                char a[NET_ADDRSTRLEN];
                log_rl(LOG_NOTICE, "dropped datagram from %s: %s", net_addr_str(from, a), wire_strerror(r));
                if ((r == WIRE_E_VERSION || r == WIRE_E_TYPE) && len >= P2S_HDR_SIZE) {
                        struct p2s_hdr h = { 0 };
                        /* echo the ids so the sender can match the ERR */
                        struct p2s_hdr raw;
                        if (wire_decode_hdr(pkt, len, &raw) == WIRE_OK)
                                h = raw;
                        udp_reply_err(srv, from, fromlen, &h, len, r == WIRE_E_VERSION ? P2S_ERR_VERSION : P2S_ERR_PROTO,
                                      r == WIRE_E_VERSION ? "unsupported protocol version" : "unknown message type");
                }
                return;
        }
        /* only what a member may send, and only as a datagram in this mode
         * (an ERR from a member is ignored, as p2s(7) says) */
        r = wire_check_route(msg.hdr.type, WIRE_DIR_C2S, WIRE_CH_UDP, srv->control);
        if (r == WIRE_OK && (msg.hdr.type == P2S_FRAG || msg.hdr.type == P2S_FRAG_ACK || msg.hdr.type == P2S_FRAG_NACK))
                r = wire_check_frag_route(msg.hdr.type, msg.body[0], WIRE_DIR_C2S);
        if (r != WIRE_OK) {
                srv->st.bad_packets++;
                log_rl(LOG_DEBUG, "dropped %s datagram: %s", wire_type_name(msg.hdr.type), wire_strerror(r));
                return;
        }
        if (msg.hdr.type == P2S_HELLO) {
                join_on_hello(srv, &msg, from, fromlen);
                return;
        }
        /* id, token and the address that proved itself at HELLO must all
         * agree: a valid token from elsewhere moves nothing and gets nothing */
        struct smember *m = u32map_get(&srv->members, msg.hdr.member_id);
        if (!m && msg.hdr.type == P2S_BYE)
                return;         /* the second copy of a BYE: the member left with the first */
        if (!m || m->token != msg.hdr.token || !m->sv || swarm_id(m->sv->sw) != msg.hdr.swarm_id ||
            !net_addr_equal((struct sockaddr *)&m->addr, from)) {
                srv->st.bad_packets++;
                log_rl(LOG_DEBUG, "dropped %s for unknown member %u, wrong token or address",
                       wire_type_name(msg.hdr.type), msg.hdr.member_id);
                return;
        }
        if (msg.hdr.type == P2S_FRAG || msg.hdr.type == P2S_FRAG_ACK || msg.hdr.type == P2S_FRAG_NACK) {
                if (m->data && m->sm && !m->sv->over && !datachan_on_datagram(m->data, &msg))
                        srv->st.bad_packets++;
                return;
        }
        /* a member we cannot send to yet gets nothing more queued */
        if (msg.hdr.type == P2S_REQ && conn_backpressured(m->conn))
                return;
        served_member_msg(m, &msg, NULL);
}

static void on_udp(const uint8_t *pkt, size_t len, const struct sockaddr *from, socklen_t fromlen, void *ud)
{
        on_datagram(ud, pkt, len, from, fromlen);
}

static void udp_event(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct server *srv = ud;
        if (events & EPOLLOUT)
                datachan_writable(&srv->data);
        uint64_t truncated = 0;
        /* a bounded number of batches per turn keeps TCP peers served too */
        udpdata_recv(&srv->data.ud, 8, on_udp, srv, &truncated);
        if (truncated) {
                srv->st.bad_packets += truncated;
                log_rl(LOG_NOTICE, "dropped %llu oversized datagrams", (unsigned long long)truncated);
        }
}

/* ---- time ---------------------------------------------------------------- */

/* Once a second, never pushed back by traffic: bounds on what waits. */
static void on_housekeep(struct loop *l, struct loop_timer *t, void *ud)
{
        struct server *srv = ud;
        uint64_t now = loop_now(l);
        join_expire(srv, now);
        served_housekeep(srv);
        loop_defer(l, &srv->reaper);
        if (srv->shutting_down && now >= srv->shutdown_deadline) {
                /* members that would not read their ERR: enough waiting */
                for (struct conn *c = srv->conns; c; c = c->next)
                        conn_kill(c, "shutdown");
                loop_quit(l, 0);
                return;
        }
        uint64_t next = now + HOUSEKEEP_US;
        if (srv->shutting_down && srv->shutdown_deadline < next)
                next = srv->shutdown_deadline;
        loop_timer_arm(l, t, next);
}

/* ---- setup --------------------------------------------------------------- */

struct server *server_new(const struct p2sd_options *o, struct catalog *cat, struct loop *l)
{
        struct server *srv = calloc(1, sizeof(*srv));
        if (!srv)
                return NULL;
        srv->opt = o;
        srv->cat = cat;
        srv->control = o->control;
        srv->dgram_size = o->max_datagram ? o->max_datagram : P2S_DEFAULT_DGRAM;
        srv->loop = l;
        srv->tcp_fd = srv->udp_fd = -1;
        srv->cache = lru_new(o->cache_bytes);
        if (!srv->cache) {
                free(srv);
                return NULL;
        }
        /* a predictable cookie secret would let anyone forge a proven address */
        if (random_bytes(srv->secret, sizeof(srv->secret)) < 0) {
                lru_free(srv->cache);
                free(srv);
                return NULL;
        }
        srv->next_swarm_id = (uint32_t)random_u64() & 0xffffff;
        loop_timer_init(&srv->housekeep, on_housekeep, srv);
        loop_timer_init(&srv->accept_timer, conn_accept_resume, srv);
        loop_defer_init(&srv->reaper, conn_reap, srv);
        return srv;
}

struct server *server_free(struct server *srv)
{
        if (!srv)
                return NULL;
        for (struct conn *c = srv->conns; c; c = c->next)
                conn_kill(c, NULL);
        conn_reap(srv->loop, srv);
        loop_defer_cancel(srv->loop, &srv->reaper);
        for (size_t i = 0; i < srv->members.cap; i++) {
                struct smember *m = srv->members.slot[i].val;
                if (m) {
                        datachan_peer_free(m->data);
                        free(m);
                }
        }
        u32map_fini(&srv->members);
        while (srv->served) {
                struct served *sv = srv->served;
                srv->served = sv->next;
                served_free(sv);
        }
        loop_timer_disarm(srv->loop, &srv->housekeep);
        loop_timer_disarm(srv->loop, &srv->accept_timer);
        if (srv->tcp_fd >= 0) {
                loop_del(srv->loop, srv->tcp_fd);
                close(srv->tcp_fd);
        }
        if (srv->udp_fd >= 0) {
                loop_del(srv->loop, srv->udp_fd);
                close(srv->udp_fd);
        }
        datachan_fini(&srv->data);
        lru_free(srv->cache);
        free(srv);
        return NULL;
}

int server_listen(struct server *srv, char *err, size_t errlen)
{
        int r = listen_open(srv, err, errlen);
        if (r < 0)
                return r;
        /* control bursts from many members at once must not overflow the queue */
        net_set_bufs(srv->udp_fd, 8 << 20, 16 << 20);
        if ((r = datachan_init(&srv->data, srv->loop, srv->udp_fd, EPOLLIN)) < 0) {
                snprintf(err, errlen, "out of memory");
                return r;
        }
        if ((r = loop_add(srv->loop, srv->tcp_fd, EPOLLIN, conn_accept, srv)) < 0 ||
            (r = loop_add(srv->loop, srv->udp_fd, EPOLLIN, udp_event, srv)) < 0) {
                snprintf(err, errlen, "epoll: %s", strerror(-r));
                return r;
        }
        loop_timer_arm(srv->loop, &srv->housekeep, loop_now(srv->loop) + HOUSEKEEP_US);
        return 0;
}

uint16_t server_port(const struct server *srv) { return srv->port; }
const char *server_listen_desc(const struct server *srv) { return srv->listen_desc; }

void server_shutdown(struct server *srv)
{
        if (srv->shutting_down)
                return;
        srv->shutting_down = true;
        srv->shutdown_deadline = loop_now(srv->loop) + SHUTDOWN_US;
        loop_del(srv->loop, srv->tcp_fd);
        for (struct served *sv = srv->served; sv; sv = sv->next) {
                if (sv->over)
                        continue;
                swarm_fail(sv->sw, P2S_ERR_SHUTDOWN, "server shutting down", loop_now(srv->loop));
                served_drain(sv);
        }
        for (struct conn *c = srv->conns; c; c = c->next)
                if (!c->m)
                        conn_kill(c, NULL);
        loop_defer(srv->loop, &srv->reaper);
        if (srv->shutdown_deadline < srv->housekeep.node.key || !loop_timer_armed(&srv->housekeep))
                loop_timer_arm(srv->loop, &srv->housekeep, srv->shutdown_deadline);
}

void server_get_status(const struct server *srv, struct server_status *st)
{
        *st = srv->st;
        /* with --control=tcp the chunks go out on the data channel */
        st->bytes_out += srv->data.ud.bytes_out;
        st->swarms = st->members = 0;
        st->cache_hits = st->cache_misses = 0;
        for (const struct served *sv = srv->served; sv; sv = sv->next) {
                if (sv->over)
                        continue;
                st->swarms++;
                st->members += swarm_member_count(sv->sw);
                st->cache_hits += swarm_stats(sv->sw)->cache_hits;
                st->cache_misses += swarm_stats(sv->sw)->cache_misses;
        }
}

struct catalog *server_reconfigure(struct server *srv, const struct p2sd_options *o, struct catalog *cat)
{
        struct catalog *old = srv->cat;
        srv->opt = o;
        srv->cat = cat;
        lru_set_max_bytes(srv->cache, o->cache_bytes);
        return old;
}
