/* SPDX-License-Identifier: MIT */
/* p2sd's sockets and the glue between them and the swarm state machines.
 * Data flows one way: socket -> wire_decode -> swarm event -> actions ->
 * wire_encode -> socket. Connections are never freed inside a callback that
 * may still use them: they are marked dead and reaped at the end of the turn. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include "core/dgram.h"
#include "core/swarm.h"
#include "io/udpdata.h"
#include "daemon/server.h"
#include "proto/cookie.h"
#include "proto/hash.h"
#include "proto/wire.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/lru.h"
#include "util/net.h"
#include "util/outq.h"
#include "util/stream.h"
#include "util/u32map.h"

#define DIST_HIWAT        (4u << 20)    /* distribution waits while a member has this much queued */
#define ATTACH_TIMEOUT_US (10 * USEC_PER_SEC)
#define LINGER_US         (5 * USEC_PER_SEC)
#define SHUTDOWN_US       (3 * USEC_PER_SEC)
#define HOUSEKEEP_US      (1 * USEC_PER_SEC)
#define MAX_UNATTACHED    4096
#define RX_BUF            (64u << 10)   /* larger bodies are read straight into their buffer */
#define MAX_PRE_ATTACH    1024          /* TCP connections that have not sent ATTACH yet */
#define UPLOADS_IN_PROGRESS 64          /* partial uploads reassembled per member at once */
#define PROVEN            SIZE_MAX      /* udp_reply_err: the sender echoed a valid cookie */

struct conn;
struct served;

struct smember {
        uint32_t id;
        uint64_t token, cookie;
        struct sockaddr_storage addr;   /* where control datagrams go */
        socklen_t addrlen;
        struct served *sv;
        struct swarm_member *sm;        /* NULL until ATTACH, and after the swarm let go */
        struct conn *conn;
        struct dgram_tx *tx;            /* --control=tcp: chunk data to it over UDP */
        struct dgram_rx *rx;            /* --control=tcp: its uploads over UDP */
        uint64_t born;
        struct smember *next, *prev;    /* in sv->members once attached */
};

struct served {
        struct server *srv;
        struct swarm *sw;
        int src_fd;
        uint64_t src_size;
        bool over;
        struct smember *members;        /* attached members */
        struct served *next;
};

struct conn {
        struct server *srv;
        int fd;
        struct stream_rx rx;
        struct outq q;
        bool want_out, dead, closing, shut;
        struct smember *m;
        uint64_t born, linger_deadline;
        char peer[NET_ADDRSTRLEN];
        struct conn *next, *prev;
        struct conn *zombie_next;
};

struct server {
        const struct p2sd_options *opt;
        struct catalog *cat;
        struct loop *loop;
        int tcp_fd, udp_fd;
        int control;                    /* fixed for the process: members learned it */
        uint32_t dgram_size;            /* largest datagram of chunk data */
        struct dgram_config dgram;
        bool udp_blocked;               /* waiting for EPOLLOUT on the UDP socket */
        struct udpdata ud;
        uint16_t port;
        char listen_desc[NET_ADDRSTRLEN + 16];
        struct lru *cache;
        uint8_t secret[COOKIE_SECRET_SIZE];
        struct u32map members;          /* id -> smember, attached or not */
        struct served *served;
        struct conn *conns;
        struct conn *zombies;
        unsigned nunattached;
        unsigned npreattach;            /* TCP connections without ATTACH */
        uint32_t next_member_id, next_swarm_id;
        struct loop_timer tick;
        uint64_t next_housekeep;        /* not pushed back by traffic */
        bool shutting_down;
        uint64_t shutdown_deadline;
        struct server_status st;
};

static void drain(struct served *sv);
static void conn_kill(struct conn *c, const char *why);
static void reap(struct server *srv);
static void rearm(struct server *srv);

/* ---- sending ------------------------------------------------------------- */

static void conn_want_out(struct conn *c, bool on)
{
        if (c->want_out == on || c->dead)
                return;
        c->want_out = on;
        loop_mod(c->srv->loop, c->fd, EPOLLIN | (on ? EPOLLOUT : 0));
}

static void conn_flush(struct conn *c)
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
        if (r == 0 && c->closing && !c->shut) {
                /* Half-close and read on until the peer closes: closing with
                 * its data unread would reset the connection and could destroy
                 * our last message (an ERR) before the peer reads it. */
                shutdown(c->fd, SHUT_WR);
                c->shut = true;
        }
}

static void conn_send(struct conn *c, const struct p2s_hdr *h, struct buf *body)
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

static void udp_send(struct server *srv, const struct sockaddr *to, socklen_t tolen,
                     const struct p2s_hdr *h, const void *body)
{
        uint8_t pkt[P2S_HDR_SIZE + P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX + P2S_MAX_REASON];
        size_t n = wire_encode(pkt, sizeof(pkt), h, body, h->body_len);
        /* control datagrams are small: a full socket buffer loses one, and the
         * peer's retry timer brings it back */
        if (n && sendto(srv->udp_fd, pkt, n, MSG_DONTWAIT | MSG_NOSIGNAL, to, tolen) > 0)
                srv->st.bytes_out += n;
}

/* Which transport a server->member message takes in the configured mode. */
static bool goes_over_tcp(const struct server *srv, uint8_t msg, uint16_t flags)
{
        switch (msg) {
        case P2S_START: case P2S_MANIFEST: case P2S_MANIFEST_END:
                return true;
        case P2S_SHARE: case P2S_DATA:
                return srv->control == P2S_CONTROL_UDP;   /* the data channel */
        case P2S_ERR:
                /* a fatal error must arrive: the ordered connection carries it */
                return (flags & P2S_F_FATAL) || srv->control == P2S_CONTROL_TCP;
        default:
                return srv->control == P2S_CONTROL_TCP;
        }
}

static void udp_data_flush(struct server *srv, struct smember *m);

static void member_send(struct smember *m, uint8_t msg, uint16_t flags, uint32_t chunk, struct buf *body,
                        bool reliable)
{
        struct server *srv = m->sv->srv;
        if ((msg == P2S_SHARE || msg == P2S_DATA) && srv->control == P2S_CONTROL_TCP) {
                if (m->tx && body && dgram_tx_push(m->tx, msg, flags, chunk, body, loop_now(srv->loop)) == 0)
                        udp_data_flush(srv, m);
                return;
        }
        struct p2s_hdr h = { .type = msg, .flags = flags, .body_len = body ? body->len : 0,
                             .swarm_id = swarm_id(m->sv->sw), .member_id = m->id,
                             .token = m->token, .chunk = chunk };
        if (reliable || goes_over_tcp(srv, msg, flags)) {
                if (m->conn)
                        conn_send(m->conn, &h, body);
        } else {
                udp_send(srv, (struct sockaddr *)&m->addr, m->addrlen, &h, body ? body->data : NULL);
        }
}

/* Sends what the member's window allows; see io/udpdata. */
static void udp_data_flush(struct server *srv, struct smember *m)
{
        if (!m->tx || srv->udp_blocked)
                return;
        struct p2s_hdr tmpl = { .swarm_id = swarm_id(m->sv->sw), .member_id = m->id, .token = m->token };
        uint64_t before = srv->ud.bytes_out;
        int r = udpdata_flush(&srv->ud, m->tx, &tmpl, (struct sockaddr *)&m->addr, m->addrlen,
                              loop_now(srv->loop));
        srv->st.bytes_out += srv->ud.bytes_out - before;
        if (r == 1) {
                srv->udp_blocked = true;
                loop_mod(srv->loop, srv->udp_fd, EPOLLIN | EPOLLOUT);
        } else if (r < 0) {
                log_rl(LOG_WARNING, "member %u: sending chunk data: %s", m->id, strerror(-r));
        }
}

static void send_frag_ack(struct server *srv, struct smember *m, uint8_t type, uint8_t kind, uint32_t chunk,
                          const struct dgram_rx_result *res)
{
        uint8_t body[P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX];
        size_t len = udpdata_ack_body(body, kind, type == P2S_FRAG_NACK ? res : NULL);
        struct p2s_hdr h = { .type = type, .body_len = (uint32_t)len, .swarm_id = swarm_id(m->sv->sw),
                             .member_id = m->id, .token = m->token, .chunk = chunk };
        udp_send(srv, (struct sockaddr *)&m->addr, m->addrlen, &h, body);
}

/* An ERR in answer to a datagram of req_len bytes. To an address that has
 * proven nothing (no valid cookie) never more bytes than it sent: the reason
 * is cut to fit, and a datagram too short for even a bare ERR gets none.
 * After a valid cookie (req_len PROVEN) the whole reason. */
static void udp_reply_err(struct server *srv, const struct sockaddr *to, socklen_t tolen,
                          const struct p2s_hdr *req, size_t req_len, uint16_t code, const char *reason)
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

static void smember_free(struct server *srv, struct smember *m)
{
        u32map_del(&srv->members, m->id);
        dgram_tx_free(m->tx);
        dgram_rx_free(m->rx);
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

/* The member's connection ended: the swarm forgets it. */
static void smember_gone(struct server *srv, struct smember *m)
{
        struct served *sv = m->sv;
        if (sv && m->sm && !sv->over) {
                struct swarm_member *sm = m->sm;
                m->sm = NULL;
                swarm_leave(sv->sw, sm, loop_now(srv->loop));
                drain(sv);
        }
        smember_free(srv, m);
}

/* ---- swarms -------------------------------------------------------------- */

static struct served *served_find(struct server *srv, const char *name)
{
        for (struct served *sv = srv->served; sv; sv = sv->next)
                if (!sv->over && swarm_joinable(sv->sw) && !strcmp(swarm_name(sv->sw), name))
                        return sv;
        return NULL;
}

static struct served *served_new(struct server *srv, const char *name)
{
        struct served *sv = calloc(1, sizeof(*sv));
        if (!sv)
                return NULL;
        sv->srv = srv;
        sv->src_fd = -1;
        if (++srv->next_swarm_id == 0)
                srv->next_swarm_id = 1;
        sv->sw = swarm_new(&srv->opt->swarm, srv->next_swarm_id, name, srv->cache);
        if (!sv->sw) {
                free(sv);
                return NULL;
        }
        sv->next = srv->served;
        srv->served = sv;
        log_info("swarm %u: new swarm for '%s'", swarm_id(sv->sw), name);
        return sv;
}

static void source_close(struct served *sv)
{
        if (sv->src_fd >= 0) {
                close(sv->src_fd);
                sv->src_fd = -1;
        }
}

static bool members_backlogged(struct served *sv)
{
        for (struct smember *m = sv->members; m; m = m->next)
                if ((m->conn && m->conn->q.bytes >= DIST_HIWAT) ||
                    (m->tx && dgram_tx_pending_bytes(m->tx) >= DIST_HIWAT))
                        return true;
        return false;
}

/* Reads the source in order, once, as fast as the members take it. */
static void pump(struct served *sv)
{
        uint32_t idx;
        while (!sv->over && sv->src_fd >= 0 && (idx = swarm_source_next(sv->sw)) != P2S_NO_CHUNK) {
                if (members_backlogged(sv))
                        return;         /* conn_writable calls back when a queue drains */
                uint32_t cs = swarm_chunk_size(sv->sw);
                uint64_t off = (uint64_t)idx * cs;
                uint64_t left = sv->src_size - off;
                size_t len = left < cs ? (size_t)left : cs;
                struct buf *b = buf_new(len);
                if (!b) {
                        swarm_fail(sv->sw, P2S_ERR_BUSY, "server out of memory", loop_now(sv->srv->loop));
                        drain(sv);
                        return;
                }
                size_t got = 0;
                while (got < len) {
                        ssize_t n = pread(sv->src_fd, b->data + got, len - got, (off_t)(off + got));
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                char why[128];
                                snprintf(why, sizeof(why), "cannot read the source: %s",
                                         n < 0 ? strerror(errno) : "file shrank");
                                log_err("swarm %u: %s", swarm_id(sv->sw), why);
                                buf_unref(b);
                                swarm_fail(sv->sw, P2S_ERR_SOURCE, why, loop_now(sv->srv->loop));
                                drain(sv);
                                return;
                        }
                        got += (size_t)n;
                }
                swarm_source_chunk(sv->sw, idx, b, loop_now(sv->srv->loop));
                buf_unref(b);
                drain(sv);
        }
        if (sv->src_fd >= 0 && swarm_source_next(sv->sw) == P2S_NO_CHUNK) {
                /* the whole file went out once; from here on only the cache */
                source_close(sv);
                const struct manifest *mf = swarm_manifest(sv->sw);
                if (mf) {
                        char hex[2 * P2S_HASH_SIZE + 1];
                        hash_hex(mf->file_hash, hex);
                        log_info("swarm %u: distributed %llu bytes in %u chunks to %u members, source closed, sha256 %s",
                                 swarm_id(sv->sw), (unsigned long long)mf->file_size, mf->chunk_count,
                                 swarm_member_count(sv->sw), hex);
                }
        }
}

static void start_swarm(struct served *sv)
{
        struct server *srv = sv->srv;
        uint64_t now = loop_now(srv->loop);
        int fd = catalog_open(srv->cat, swarm_name(sv->sw));
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                char why[160];
                snprintf(why, sizeof(why), "cannot open '%s': %s", swarm_name(sv->sw), strerror(fd < 0 ? -fd : errno));
                log_err("swarm %u: %s", swarm_id(sv->sw), why);
                if (fd >= 0)
                        close(fd);
                swarm_fail(sv->sw, P2S_ERR_SOURCE, why, now);
                return;
        }
        sv->src_fd = fd;
        sv->src_size = (uint64_t)st.st_size;
        log_info("swarm %u: starting with %u members, %llu bytes", swarm_id(sv->sw),
                 swarm_member_count(sv->sw), (unsigned long long)sv->src_size);
        if (swarm_distribute(sv->sw, sv->src_size, now) < 0)
                source_close(sv);
}

static void swarm_over(struct served *sv, int code)
{
        sv->over = true;
        source_close(sv);
        const struct swarm_stats *ss = swarm_stats(sv->sw);
        if (code == 0)
                log_notice("swarm %u: '%s' complete: %llu requests, %llu cache hits, %llu uploads, %llu duplicate uploads dropped",
                           swarm_id(sv->sw), swarm_name(sv->sw), (unsigned long long)ss->requests,
                           (unsigned long long)ss->cache_hits, (unsigned long long)ss->uploads,
                           (unsigned long long)ss->dup_uploads);
        else
                log_warning("swarm %u: '%s' failed (code %d)", swarm_id(sv->sw), swarm_name(sv->sw), code);
        for (struct smember *m = sv->members; m; m = m->next) {
                m->sm = NULL;
                if (m->conn) {
                        m->conn->closing = true;
                        m->conn->linger_deadline = loop_now(sv->srv->loop) + LINGER_US;
                        conn_flush(m->conn);
                }
        }
}

/* Carries out everything the swarm asked for. Never frees a connection. */
static void drain(struct served *sv)
{
        struct swarm_action a;
        while (swarm_next_action(sv->sw, &a)) {
                struct smember *m = a.member_ud;
                switch (a.type) {
                case SWARM_ACT_SEND:
                        member_send(m, a.msg, a.flags, a.chunk, a.body, a.reliable);
                        break;
                case SWARM_ACT_START:
                        start_swarm(sv);
                        break;
                case SWARM_ACT_DROP:
                        m->sm = NULL;
                        if (a.code)
                                log_warning("swarm %u: member %u dropped (%s)", swarm_id(sv->sw), m->id,
                                            a.code == P2S_ERR_PROTO ? "sent a bad chunk" : "silent");
                        if (m->conn) {
                                m->conn->closing = true;
                                m->conn->linger_deadline = loop_now(sv->srv->loop) + LINGER_US;
                                conn_flush(m->conn);
                        }
                        break;
                case SWARM_ACT_END:
                        swarm_over(sv, a.code);
                        break;
                }
                buf_unref(a.body);
        }
        if (!sv->over)
                pump(sv);
}

/* ---- incoming messages --------------------------------------------------- */

/* Nothing of ours is queued toward the member. */
static bool member_idle(const struct smember *m)
{
        return (!m->conn || outq_empty(&m->conn->q)) && (!m->tx || dgram_tx_pending_bytes(m->tx) == 0);
}

static void member_msg(struct server *srv, struct smember *m, const struct p2s_msg *msg, struct buf *body)
{
        struct served *sv = m->sv;
        if (!sv || !m->sm || sv->over)
                return;
        uint64_t now = loop_now(srv->loop);
        const struct p2s_hdr *h = &msg->hdr;
        switch (h->type) {
        case P2S_REQ:
                swarm_on_request(sv->sw, m->sm, h->chunk, member_idle(m), now);
                break;
        case P2S_NOHAVE:
                swarm_on_nohave(sv->sw, m->sm, h->chunk, h->flags & P2S_F_ACK, now);
                break;
        case P2S_COMPLETE:
                swarm_on_complete(sv->sw, m->sm, now);
                break;
        case P2S_BYE:
                swarm_on_bye(sv->sw, m->sm, now);
                break;
        case P2S_UPLOAD:
                if (body)
                        swarm_on_upload(sv->sw, m->sm, h->chunk, body, now);
                break;
        default:
                srv->st.bad_packets++;
                log_rl(LOG_DEBUG, "member %u: unexpected %s", m->id, wire_type_name(h->type));
                return;
        }
        drain(sv);
}

static struct smember *find_by_cookie(struct server *srv, uint64_t cookie, const struct sockaddr *from)
{
        for (size_t i = 0; i < srv->members.cap; i++) {
                struct smember *m = srv->members.slot[i].val;
                if (m && !m->sm && !m->conn && m->cookie == cookie &&
                    net_addr_equal((struct sockaddr *)&m->addr, from))
                        return m;
        }
        return NULL;
}

static void send_welcome(struct server *srv, struct smember *m)
{
        struct p2s_welcome w = { .control_mode = (uint8_t)srv->control, .port = srv->port,
                                 .dgram_size = srv->control == P2S_CONTROL_TCP ? srv->dgram_size : 0 };
        uint8_t body[P2S_WELCOME_SIZE];
        wire_put_welcome(body, &w);
        struct p2s_hdr h = { .type = P2S_WELCOME, .body_len = sizeof(body), .swarm_id = swarm_id(m->sv->sw),
                             .member_id = m->id, .token = m->token, .chunk = P2S_NO_CHUNK };
        udp_send(srv, (struct sockaddr *)&m->addr, m->addrlen, &h, body);
}

static void on_hello(struct server *srv, const struct p2s_msg *msg, size_t len,
                     const struct sockaddr *from, socklen_t fromlen)
{
        uint64_t now = loop_now(srv->loop);
        const struct p2s_hdr *h = &msg->hdr;
        if (h->token == 0 || !cookie_check(srv->secret, now, h->token, from, fromlen)) {
                /* prove the address first: a cookie costs us nothing to keep */
                struct p2s_hdr r = { .type = P2S_COOKIE, .chunk = P2S_NO_CHUNK,
                                     .token = cookie_make(srv->secret, now / COOKIE_EPOCH_USEC, from, fromlen) };
                udp_send(srv, from, fromlen, &r, NULL);
                return;
        }
        struct smember *m = find_by_cookie(srv, h->token, from);
        if (m && m->sv) {
                send_welcome(srv, m);   /* our WELCOME was lost */
                return;
        }
        if (m) {
                /* its swarm ended before it attached: join afresh */
                srv->nunattached--;
                smember_free(srv, m);
        }
        char name[P2S_MAX_NAME + 1];
        memcpy(name, msg->body, h->body_len);
        name[h->body_len] = 0;
        if (srv->shutting_down) {
                udp_reply_err(srv, from, fromlen, h, PROVEN, P2S_ERR_SHUTDOWN, "server shutting down");
                return;
        }
        int fd = catalog_open(srv->cat, name);
        if (fd < 0) {
                log_rl(LOG_NOTICE, "HELLO for '%s' refused: not served", name);
                udp_reply_err(srv, from, fromlen, h, PROVEN, P2S_ERR_NOFILE, "no such file is served");
                return;
        }
        close(fd);
        if (srv->nunattached >= MAX_UNATTACHED) {
                udp_reply_err(srv, from, fromlen, h, PROVEN, P2S_ERR_BUSY, "too many joins at once");
                return;
        }
        struct served *sv = served_find(srv, name);
        if (!sv)
                sv = served_new(srv, name);
        m = calloc(1, sizeof(*m));
        if (!sv || !m) {
                free(m);
                udp_reply_err(srv, from, fromlen, h, PROVEN, P2S_ERR_BUSY, "server out of memory");
                return;
        }
        do
                m->id = ++srv->next_member_id;
        while (m->id == 0 || u32map_get(&srv->members, m->id));
        m->token = random_u64() | 1;
        m->cookie = h->token;
        memcpy(&m->addr, from, fromlen);
        m->addrlen = fromlen;
        m->sv = sv;
        m->born = now;
        if (u32map_put(&srv->members, m->id, m) < 0) {
                free(m);
                return;
        }
        srv->nunattached++;
        char a[NET_ADDRSTRLEN];
        log_debug("member %u: HELLO '%s' from %s", m->id, name, net_addr_str(from, a));
        send_welcome(srv, m);
}

/* Chunk data over UDP (--control=tcp): uploads in, acknowledgements of what we sent. */
static void on_data_datagram(struct server *srv, struct smember *m, const struct p2s_msg *msg)
{
        const struct p2s_hdr *h = &msg->hdr;
        struct served *sv = m->sv;
        uint64_t now = loop_now(srv->loop);
        if (!m->tx || !m->sm || sv->over)
                return;
        if (h->type == P2S_FRAG_ACK || h->type == P2S_FRAG_NACK) {
                struct p2s_frag_ack a;
                wire_get_frag_ack(msg->body, &a);
                if (h->type == P2S_FRAG_ACK)
                        dgram_tx_on_ack(m->tx, a.kind, h->chunk, now);
                else
                        dgram_tx_on_nack(m->tx, a.kind, h->chunk, a.base, msg->body + P2S_FRAG_ACK_SIZE,
                                         h->body_len - P2S_FRAG_ACK_SIZE, now);
                udp_data_flush(srv, m);
                if (swarm_state(sv->sw) == SWARM_DISTRIBUTE)
                        pump(sv);
                return;
        }
        struct p2s_frag f;
        wire_get_frag(msg->body, &f);
        const struct manifest *mf = swarm_manifest(sv->sw);
        /* the length is the chunk's own, or the member allocates what it likes */
        if (f.kind != P2S_UPLOAD || !mf || h->chunk >= mf->chunk_count ||
            f.chunk_len != manifest_chunk_len(mf, h->chunk)) {
                srv->st.bad_packets++;
                log_rl(LOG_NOTICE, "member %u: dropped a fragment of chunk %u that does not fit it", m->id, h->chunk);
                return;
        }
        /* nothing is reassembled that nobody asked for; an ACK stops the sender */
        if (!swarm_wants_upload(sv->sw, m->sm, h->chunk)) {
                log_rl(LOG_DEBUG, "member %u: upload of chunk %u not wanted", m->id, h->chunk);
                send_frag_ack(srv, m, P2S_FRAG_ACK, P2S_UPLOAD, h->chunk, NULL);
                return;
        }
        struct dgram_rx_result res;
        int r = dgram_rx_on_frag(m->rx, P2S_UPLOAD, h->chunk, &f, msg->body + P2S_FRAG_SIZE,
                                 (uint16_t)(h->body_len - P2S_FRAG_SIZE), now, &res);
        if (r == DGRAM_RX_COMPLETE) {
                log_debug("member %u: upload of chunk %u complete", m->id, h->chunk);
                send_frag_ack(srv, m, P2S_FRAG_ACK, P2S_UPLOAD, h->chunk, NULL);
                swarm_on_upload(sv->sw, m->sm, h->chunk, res.chunk, now);
                buf_unref(res.chunk);
                drain(sv);
        } else if (res.nack) {
                send_frag_ack(srv, m, P2S_FRAG_NACK, P2S_UPLOAD, h->chunk, &res);
        }
}

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
        if (msg.hdr.type == P2S_HELLO) {
                on_hello(srv, &msg, len, from, fromlen);
                return;
        }
        struct smember *m = u32map_get(&srv->members, msg.hdr.member_id);
        if (!m || m->token != msg.hdr.token || !m->sv || swarm_id(m->sv->sw) != msg.hdr.swarm_id) {
                srv->st.bad_packets++;
                log_rl(LOG_NOTICE, "dropped %s for unknown member %u or wrong token",
                       wire_type_name(msg.hdr.type), msg.hdr.member_id);
                return;
        }
        if (msg.hdr.type == P2S_UPLOAD)
                return;         /* chunk data travels on the data channel */
        if (msg.hdr.type == P2S_FRAG || msg.hdr.type == P2S_FRAG_ACK || msg.hdr.type == P2S_FRAG_NACK) {
                on_data_datagram(srv, m, &msg);
                return;
        }
        /* the token proves it is the member: follow its address (NAT rebinding) */
        memcpy(&m->addr, from, fromlen);
        m->addrlen = fromlen;
        member_msg(srv, m, &msg, NULL);
}

static void udp_writable(struct server *srv)
{
        srv->udp_blocked = false;
        loop_mod(srv->loop, srv->udp_fd, EPOLLIN);
        for (size_t i = 0; i < srv->members.cap && !srv->udp_blocked; i++) {
                struct smember *m = srv->members.slot[i].val;
                if (m && m->tx)
                        udp_data_flush(srv, m);
        }
}

static void on_udp(const uint8_t *pkt, size_t len, const struct sockaddr *from, socklen_t fromlen, void *ud)
{
        on_datagram(ud, pkt, len, from, fromlen);
}

static void udp_readable(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct server *srv = ud;
        if (events & EPOLLOUT)
                udp_writable(srv);
        uint64_t truncated = 0;
        /* a bounded number of batches per turn keeps TCP peers served too */
        udpdata_recv(&srv->ud, 8, on_udp, srv, &truncated);
        if (truncated) {
                srv->st.bad_packets += truncated;
                log_rl(LOG_NOTICE, "dropped %llu oversized datagrams", (unsigned long long)truncated);
        }
        reap(srv);
        rearm(srv);
}

/* ---- TCP connections ----------------------------------------------------- */

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
        if (h.type == P2S_UPLOAD && c->m->sv && h.body_len > swarm_chunk_size(c->m->sv->sw))
                return -EMSGSIZE;
        return (long)h.body_len;
}

static void on_attach(struct conn *c, const struct p2s_hdr *h)
{
        struct server *srv = c->srv;
        struct smember *m = u32map_get(&srv->members, h->member_id);
        if (!m || m->token != h->token || m->conn || m->sm || !m->sv || swarm_id(m->sv->sw) != h->swarm_id) {
                srv->st.bad_packets++;
                log_rl(LOG_NOTICE, "%s: ATTACH for unknown member %u or wrong token", c->peer, h->member_id);
                conn_kill(c, "bad ATTACH");
                return;
        }
        struct served *sv = m->sv;
        srv->nunattached--;
        srv->npreattach--;
        m->conn = c;
        c->m = m;
        if (sv->over || !swarm_joinable(sv->sw)) {
                struct p2s_hdr e = { .type = P2S_ERR, .flags = P2S_F_FATAL, .member_id = m->id,
                                     .token = m->token, .swarm_id = h->swarm_id, .chunk = P2S_NO_CHUNK };
                struct buf *b = wire_err_buf(P2S_ERR_SWARM, "swarm already ended; join again");
                e.body_len = b ? b->len : 0;
                conn_send(c, &e, b);
                buf_unref(b);
                c->closing = true;
                c->linger_deadline = loop_now(srv->loop) + LINGER_US;
                conn_flush(c);
                return;
        }
        if (srv->control == P2S_CONTROL_TCP) {
                m->tx = dgram_tx_new(&srv->dgram);
                m->rx = dgram_rx_new(UPLOADS_IN_PROGRESS);
                if (!m->tx || !m->rx) {
                        conn_kill(c, "out of memory");
                        return;
                }
        }
        m->sm = swarm_join(sv->sw, m->id, m, loop_now(srv->loop));
        if (!m->sm) {
                conn_kill(c, "cannot join");
                return;
        }
        m->next = sv->members;
        if (sv->members)
                sv->members->prev = m;
        sv->members = m;
        log_info("swarm %u: member %u joined from %s (%u members)", swarm_id(sv->sw), m->id, c->peer,
                 swarm_member_count(sv->sw));
        drain(sv);
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
                        on_attach(c, &msg.hdr);
                return c->dead;
        }
        struct smember *m = c->m;
        if (msg.hdr.member_id != m->id || msg.hdr.token != m->token) {
                srv->st.bad_packets++;
                conn_kill(c, "frame with another member's id or token");
                return 1;
        }
        member_msg(srv, m, &msg, body);
        return c->dead;
}

static void conn_readable(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct conn *c = ud;
        struct server *srv = c->srv;
        if (c->dead)
                return;
        if (events & EPOLLOUT) {
                conn_flush(c);
                if (!c->dead && c->m && c->m->sv && !c->m->sv->over && c->q.bytes < DIST_HIWAT)
                        pump(c->m->sv);
        }
        if (!c->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                int r = stream_rx_read(&c->rx, fd);
                if (!c->dead) {
                        if (r == STREAM_EOF)
                                conn_kill(c, NULL);
                        else if (r < 0)
                                conn_kill(c, strerror(-r));
                }
        }
        reap(srv);
        rearm(srv);
}

static void conn_kill(struct conn *c, const char *why)
{
        if (c->dead)
                return;
        c->dead = true;
        if (why)
                log_info("%s: connection closed (%s)%s", c->peer, why, c->m ? "" : " before ATTACH");
        c->zombie_next = c->srv->zombies;
        c->srv->zombies = c;
}

static void reap(struct server *srv)
{
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
                        smember_gone(srv, m);   /* may kill more: the loop takes them */
                }
        }
        /* swarms that are over and have nobody left */
        for (struct served **p = &srv->served; *p;) {
                struct served *sv = *p;
                if (sv->over && !sv->members) {
                        *p = sv->next;
                        /* joins that never attached must not keep a pointer to it */
                        for (size_t i = 0; i < srv->members.cap; i++) {
                                struct smember *m = srv->members.slot[i].val;
                                if (m && m->sv == sv)
                                        m->sv = NULL;
                        }
                        swarm_free(sv->sw);
                        free(sv);
                } else {
                        p = &sv->next;
                }
        }
        if (srv->shutting_down && !srv->conns)
                loop_quit(srv->loop, 0);
}

static void tcp_acceptable(struct loop *l, int fd, uint32_t events, void *ud)
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
                if (loop_add(srv->loop, cfd, EPOLLIN, conn_readable, c) < 0) {
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

/* ---- time ---------------------------------------------------------------- */

static void housekeep(struct server *srv, uint64_t now)
{
        for (struct conn *c = srv->conns; c; c = c->next) {
                if (!c->m && now - c->born > ATTACH_TIMEOUT_US)
                        conn_kill(c, "no ATTACH in time");
                else if (c->closing && c->linger_deadline && now > c->linger_deadline)
                        conn_kill(c, "peer stopped reading");
        }
        for (size_t i = 0; i < srv->members.cap; i++) {
                struct smember *m = srv->members.slot[i].val;
                if (m && !m->conn && !m->sm && now - m->born > ATTACH_TIMEOUT_US) {
                        srv->nunattached--;
                        smember_free(srv, m);
                        i--;    /* deletion may move a later entry into slot i */
                }
        }
        /* gathering swarms nobody attached to */
        for (struct served *sv = srv->served; sv; sv = sv->next) {
                if (sv->over || sv->members || swarm_state(sv->sw) != SWARM_GATHER)
                        continue;
                bool waiting = false;
                for (size_t i = 0; i < srv->members.cap && !waiting; i++) {
                        struct smember *m = srv->members.slot[i].val;
                        waiting = m && m->sv == sv;
                }
                if (!waiting)
                        sv->over = true;
        }
        if (srv->shutting_down && now >= srv->shutdown_deadline) {
                /* members that would not read their ERR: enough waiting */
                for (struct conn *c = srv->conns; c; c = c->next)
                        conn_kill(c, "shutdown");
                loop_quit(srv->loop, 0);
        }
}

static void on_tick(struct loop *l, struct loop_timer *t, void *ud)
{
        struct server *srv = ud;
        uint64_t now = loop_now(l);
        for (struct served *sv = srv->served; sv; sv = sv->next) {
                if (!sv->over && swarm_next_deadline(sv->sw) <= now) {
                        swarm_on_tick(sv->sw, now);
                        drain(sv);
                }
        }
        for (size_t i = 0; i < srv->members.cap; i++) {
                struct smember *m = srv->members.slot[i].val;
                if (!m || !m->tx || !m->conn || dgram_tx_next_deadline(m->tx) > now)
                        continue;
                if (dgram_tx_on_tick(m->tx, now)) {
                        log_warning("member %u: no acknowledgement of chunk data over UDP, dropped", m->id);
                        conn_kill(m->conn, "silent on the data channel");
                        continue;
                }
                udp_data_flush(srv, m);
        }
        if (now >= srv->next_housekeep || (srv->shutting_down && now >= srv->shutdown_deadline)) {
                housekeep(srv, now);
                srv->next_housekeep = now + HOUSEKEEP_US;
        }
        reap(srv);
        rearm(srv);
}

static void rearm(struct server *srv)
{
        uint64_t d = srv->next_housekeep;
        for (struct served *sv = srv->served; sv; sv = sv->next) {
                if (sv->over)
                        continue;
                uint64_t sd = swarm_next_deadline(sv->sw);
                if (sd < d)
                        d = sd;
                for (struct smember *m = sv->members; m && srv->control == P2S_CONTROL_TCP; m = m->next) {
                        uint64_t td = m->tx ? dgram_tx_next_deadline(m->tx) : UINT64_MAX;
                        if (td < d)
                                d = td;
                }
        }
        if (srv->shutting_down && srv->shutdown_deadline < d)
                d = srv->shutdown_deadline;
        if (!loop_timer_armed(&srv->tick) || srv->tick.node.key != d)
                loop_timer_arm(srv->loop, &srv->tick, d);
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
        dgram_config_defaults(&srv->dgram, srv->dgram_size);
        srv->loop = l;
        srv->tcp_fd = srv->udp_fd = -1;
        srv->cache = lru_new(o->cache_bytes);
        if (!srv->cache) {
                free(srv);
                return NULL;
        }
        random_bytes(srv->secret, sizeof(srv->secret));
        srv->next_housekeep = loop_now(l) + HOUSEKEEP_US;
        srv->next_swarm_id = (uint32_t)random_u64() & 0xffffff;
        loop_timer_init(&srv->tick, on_tick, srv);
        return srv;
}

struct server *server_free(struct server *srv)
{
        if (!srv)
                return NULL;
        for (struct conn *c = srv->conns; c; c = c->next)
                conn_kill(c, NULL);
        reap(srv);
        for (size_t i = 0; i < srv->members.cap; i++)
                free(srv->members.slot[i].val);
        u32map_fini(&srv->members);
        while (srv->served) {
                struct served *sv = srv->served;
                srv->served = sv->next;
                source_close(sv);
                swarm_free(sv->sw);
                free(sv);
        }
        loop_timer_disarm(srv->loop, &srv->tick);
        if (srv->tcp_fd >= 0) {
                loop_del(srv->loop, srv->tcp_fd);
                close(srv->tcp_fd);
        }
        if (srv->udp_fd >= 0) {
                loop_del(srv->loop, srv->udp_fd);
                close(srv->udp_fd);
        }
        lru_free(srv->cache);
        free(srv);
        return NULL;
}

static int bind_pair(struct server *srv, const struct sockaddr *sa, socklen_t sl, char *err, size_t errlen)
{
        int fam = sa->sa_family;
        int t = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int u = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1, zero = 0, r = 0;
        char a[NET_ADDRSTRLEN];
        if (t < 0 || u < 0) {
                r = -errno;
                goto fail;
        }
        setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (fam == AF_INET6 && ((struct sockaddr_in6 *)sa)->sin6_addr.s6_addr[0] == 0 &&
            !memcmp(&((struct sockaddr_in6 *)sa)->sin6_addr, &in6addr_any, sizeof(in6addr_any))) {
                setsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
                setsockopt(u, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        }
        if (bind(t, sa, sl) < 0 || listen(t, 1024) < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot listen on %s (TCP): %s", net_addr_str(sa, a), strerror(-r));
                goto fail;
        }
        /* with port 0 the kernel chose the TCP port; UDP takes the same */
        struct sockaddr_storage got;
        socklen_t gl = sizeof(got);
        getsockname(t, (struct sockaddr *)&got, &gl);
        if (bind(u, (struct sockaddr *)&got, gl) < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot bind %s (UDP): %s", net_addr_str((struct sockaddr *)&got, a), strerror(-r));
                goto fail;
        }
        srv->tcp_fd = t;
        srv->udp_fd = u;
        srv->port = net_addr_port((struct sockaddr *)&got);
        net_addr_str((struct sockaddr *)&got, srv->listen_desc);
        return 0;
fail:
        if (t >= 0)
                close(t);
        if (u >= 0)
                close(u);
        return r ? r : -EINVAL;
}

static int adopt_activated(struct server *srv, int n, char *err, size_t errlen)
{
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0 && srv->tcp_fd < 0)
                        srv->tcp_fd = fd;
                else if (sd_is_socket(fd, AF_UNSPEC, SOCK_DGRAM, -1) > 0 && srv->udp_fd < 0)
                        srv->udp_fd = fd;
                else {
                        snprintf(err, errlen, "socket activation passed fd %d, which is neither the listening TCP "
                                 "nor the UDP socket p2sd expects", fd);
                        return -EINVAL;
                }
        }
        if (srv->tcp_fd < 0 || srv->udp_fd < 0) {
                snprintf(err, errlen, "socket activation must pass one TCP listening and one UDP socket");
                return -EINVAL;
        }
        fcntl(srv->tcp_fd, F_SETFL, fcntl(srv->tcp_fd, F_GETFL) | O_NONBLOCK);
        fcntl(srv->udp_fd, F_SETFL, fcntl(srv->udp_fd, F_GETFL) | O_NONBLOCK);
        struct sockaddr_storage got;
        socklen_t gl = sizeof(got);
        getsockname(srv->tcp_fd, (struct sockaddr *)&got, &gl);
        srv->port = net_addr_port((struct sockaddr *)&got);
        snprintf(srv->listen_desc, sizeof(srv->listen_desc), "%s (activated)",
                 net_addr_str((struct sockaddr *)&got, (char[NET_ADDRSTRLEN]){ 0 }));
        return 0;
}

int server_listen(struct server *srv, char *err, size_t errlen)
{
        char **names = NULL;
        /* names are not trusted to tell the sockets apart (one socket unit
         * names both fds alike); adopt_activated checks their types */
        int n = sd_listen_fds_with_names(1, &names);
        if (names) {
                for (int i = 0; i < n; i++)
                        free(names[i]);
                free(names);
        }
        int r;
        if (n > 0) {
                r = adopt_activated(srv, n, err, errlen);
        } else {
                struct sockaddr_storage ss;
                socklen_t sl;
                if (srv->opt->listen) {
                        if (net_parse_addr(srv->opt->listen, srv->opt->port, &ss, &sl) < 0) {
                                snprintf(err, errlen, "--listen %s: not an IPv4 or IPv6 address", srv->opt->listen);
                                return -EINVAL;
                        }
                        r = bind_pair(srv, (struct sockaddr *)&ss, sl, err, errlen);
                } else {
                        net_parse_addr("::", srv->opt->port, &ss, &sl);
                        r = bind_pair(srv, (struct sockaddr *)&ss, sl, err, errlen);
                        if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL) {
                                net_parse_addr("0.0.0.0", srv->opt->port, &ss, &sl);
                                r = bind_pair(srv, (struct sockaddr *)&ss, sl, err, errlen);
                        }
                }
        }
        if (r < 0)
                return r;
        /* control bursts from many members at once must not overflow the queue */
        net_set_bufs(srv->udp_fd, 8 << 20, 16 << 20);
        udpdata_init(&srv->ud, srv->udp_fd);
        if ((r = loop_add(srv->loop, srv->tcp_fd, EPOLLIN, tcp_acceptable, srv)) < 0 ||
            (r = loop_add(srv->loop, srv->udp_fd, EPOLLIN, udp_readable, srv)) < 0) {
                snprintf(err, errlen, "epoll: %s", strerror(-r));
                return r;
        }
        rearm(srv);
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
                drain(sv);
        }
        for (struct conn *c = srv->conns; c; c = c->next)
                if (!c->m)
                        conn_kill(c, NULL);
        reap(srv);
        rearm(srv);
}

void server_get_status(const struct server *srv, struct server_status *st)
{
        *st = srv->st;
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
