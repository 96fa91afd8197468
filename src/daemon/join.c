/* SPDX-License-Identifier: MIT */
/* Becoming a member: HELLO -> COOKIE -> HELLO(cookie) -> WELCOME over UDP,
 * then ATTACH on a TCP connection. Nothing is kept for an address until it
 * has echoed a cookie (which costs us nothing to check), and no reply to an
 * unproven address is larger than what it sent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/srv.h"
#include "util/clock.h"
#include "util/log.h"

#define MAX_UNATTACHED    4096

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

void join_on_hello(struct server *srv, const struct p2s_msg *msg, const struct sockaddr *from, socklen_t fromlen)
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
                /* the answer follows the reason: out of descriptors is not "not served" */
                char esc[LOG_ESCAPE_SIZE(P2S_MAX_NAME)];
                bool busy = fd == -EMFILE || fd == -ENFILE;
                log_rl(busy ? LOG_WARNING : LOG_NOTICE, "HELLO for '%s' refused: %s",
                       log_escape(esc, sizeof(esc), name, h->body_len), fd == -ENOENT ? "not served" : strerror(-fd));
                udp_reply_err(srv, from, fromlen, h, PROVEN, fd == -ENOENT ? P2S_ERR_NOFILE : busy ? P2S_ERR_BUSY : P2S_ERR_SOURCE,
                              fd == -ENOENT ? "no such file is served" : fd == -EACCES ? "permission denied on the server"
                              : busy ? "server busy (too many open files)" : "the server cannot open that file");
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
        char a[NET_ADDRSTRLEN], esc[LOG_ESCAPE_SIZE(P2S_MAX_NAME)];
        log_debug("member %u: HELLO '%s' from %s", m->id, log_escape(esc, sizeof(esc), name, h->body_len),
                  net_addr_str(from, a));
        send_welcome(srv, m);
}

void join_on_attach(struct conn *c, const struct p2s_hdr *h)
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
                conn_close_soon(c);
                return;
        }
        if (srv->control == P2S_CONTROL_TCP) {
                m->data = datachan_peer_new(&srv->data, &srv->dgram, &served_data_ops, m);
                if (!m->data) {
                        conn_kill(c, "out of memory");
                        return;
                }
                struct p2s_hdr ids = { .swarm_id = swarm_id(sv->sw), .member_id = m->id, .token = m->token };
                datachan_peer_set_dest(m->data, (struct sockaddr *)&m->addr, m->addrlen, &ids);
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
        served_drain(sv);
}

/* Joins that never attached within ATTACH_TIMEOUT_US. */
void join_expire(struct server *srv, uint64_t now)
{
        for (size_t i = 0; i < srv->members.cap; i++) {
                struct smember *m = srv->members.slot[i].val;
                if (m && !m->conn && !m->sm && now - m->born > ATTACH_TIMEOUT_US) {
                        srv->nunattached--;
                        smember_free(srv, m);
                        i--;    /* deletion may move a later entry into slot i */
                }
        }
}
