/* SPDX-License-Identifier: MIT */
/* Becoming a member: HELLO -> COOKIE -> HELLO(cookie) -> WELCOME over UDP,
 * then ATTACH on a TCP connection. Nothing is kept for an address until it
 * has echoed a cookie (which costs us nothing to check), and no reply to an
 * unproven address is larger than what it sent. Every reply carries the
 * HELLO's nonce; with a swarm secret the HELLO must prove it. Joins waiting
 * for ATTACH are bounded per source address and in all (oldest evicted). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/srv.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/net.h"

/* ---- the index of unattached joins --------------------------------------- */

/* The IP of a sender, without its port: what a bound per host counts. */
static bool addr_key(const struct sockaddr *a, uint8_t *family, uint8_t ip[16])
{
        memset(ip, 0, 16);
        if (a->sa_family == AF_INET) {
                struct sockaddr_in sin;
                memcpy(&sin, a, sizeof(sin));
                memcpy(ip, &sin.sin_addr, 4);
        } else if (a->sa_family == AF_INET6) {
                struct sockaddr_in6 sin6;
                memcpy(&sin6, a, sizeof(sin6));
                memcpy(ip, &sin6.sin6_addr, 16);
        } else {
                return false;
        }
        *family = (uint8_t)a->sa_family;
        return true;
}

static uint64_t mix(uint64_t h)
{
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ull;
        return h ^ (h >> 33);
}

static size_t addr_hash(const struct join_index *ji, uint8_t family, const uint8_t ip[16])
{
        uint64_t a, b;
        memcpy(&a, ip, 8);
        memcpy(&b, ip + 8, 8);
        return (size_t)(mix(ji->seed ^ mix(a ^ family) ^ mix(b + ji->seed)) & (JOIN_ADDR_SLOTS - 1));
}

/* The slot of this address, or the free slot where it would go. The table
 * never holds more than JOIN_MAX_UNATTACHED addresses, so one is free. */
static struct join_addr *addr_slot(struct join_index *ji, uint8_t family, const uint8_t ip[16])
{
        size_t i = addr_hash(ji, family, ip);
        for (;;) {
                struct join_addr *e = &ji->addrs[i];
                if (e->n == 0 || (e->family == family && !memcmp(e->ip, ip, 16)))
                        return e;
                i = (i + 1) & (JOIN_ADDR_SLOTS - 1);
        }
}

static unsigned addr_count(struct join_index *ji, const struct sockaddr *a)
{
        uint8_t fam, ip[16];
        return addr_key(a, &fam, ip) ? addr_slot(ji, fam, ip)->n : 0;
}

static void addr_add(struct join_index *ji, const struct sockaddr *a)
{
        uint8_t fam, ip[16];
        if (!addr_key(a, &fam, ip))
                return;
        struct join_addr *e = addr_slot(ji, fam, ip);
        if (e->n == 0) {
                e->family = fam;
                memcpy(e->ip, ip, 16);
        }
        e->n++;
}

/* Linear probing without tombstones: a freed slot pulls back the entries
 * after it that would no longer be found. */
static void addr_drop(struct join_index *ji, const struct sockaddr *a)
{
        uint8_t fam, ip[16];
        if (!addr_key(a, &fam, ip))
                return;
        struct join_addr *e = addr_slot(ji, fam, ip);
        if (e->n == 0 || --e->n > 0)
                return;
        size_t hole = (size_t)(e - ji->addrs);
        for (size_t j = (hole + 1) & (JOIN_ADDR_SLOTS - 1); ji->addrs[j].n; j = (j + 1) & (JOIN_ADDR_SLOTS - 1)) {
                size_t home = addr_hash(ji, ji->addrs[j].family, ji->addrs[j].ip);
                /* may j's entry move to hole: is hole on the way from home to j? */
                bool between = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
                if (between) {
                        ji->addrs[hole] = ji->addrs[j];
                        ji->addrs[j].n = 0;
                        hole = j;
                }
        }
}

static size_t cookie_bucket(const struct join_index *ji, uint64_t cookie)
{
        return (size_t)(mix(cookie ^ ji->seed) & (JOIN_COOKIE_BUCKETS - 1));
}

static void pending_add(struct server *srv, struct smember *m)
{
        struct join_index *ji = &srv->joins;
        m->pending = true;
        m->jprev = ji->newest;
        m->jnext = NULL;
        if (ji->newest)
                ji->newest->jnext = m;
        else
                ji->oldest = m;
        ji->newest = m;
        size_t b = cookie_bucket(ji, m->cookie);
        m->cnext = ji->by_cookie[b];
        ji->by_cookie[b] = m;
        addr_add(ji, (struct sockaddr *)&m->addr);
        srv->nunattached++;
}

/* It attached, or is going away. */
static void pending_del(struct server *srv, struct smember *m)
{
        struct join_index *ji = &srv->joins;
        if (!m->pending)
                return;
        m->pending = false;
        if (m->jprev)
                m->jprev->jnext = m->jnext;
        else
                ji->oldest = m->jnext;
        if (m->jnext)
                m->jnext->jprev = m->jprev;
        else
                ji->newest = m->jprev;
        for (struct smember **p = &ji->by_cookie[cookie_bucket(ji, m->cookie)]; *p; p = &(*p)->cnext)
                if (*p == m) {
                        *p = m->cnext;
                        break;
                }
        m->jnext = m->jprev = m->cnext = NULL;
        addr_drop(ji, (struct sockaddr *)&m->addr);
        srv->nunattached--;
}

static void pending_free(struct server *srv, struct smember *m)
{
        pending_del(srv, m);
        smember_free(srv, m);
}

static struct smember *find_by_cookie(struct server *srv, uint64_t cookie, const struct sockaddr *from)
{
        struct join_index *ji = &srv->joins;
        for (struct smember *m = ji->by_cookie[cookie_bucket(ji, cookie)]; m; m = m->cnext)
                if (m->cookie == cookie && net_addr_equal((struct sockaddr *)&m->addr, from))
                        return m;
        return NULL;
}

/* ---- replies ---------------------------------------------------------------- */

/* --max-datagram, but no more than the route to the member carries whole:
 * loopback takes 64 KiB, an Ethernet path 1472 bytes; a datagram cut into
 * IP fragments is lost whole when one of them is. */
static uint32_t member_dgram_size(const struct server *srv, const struct smember *m)
{
        uint32_t route = net_route_udp_payload((const struct sockaddr *)&m->addr);
        if (route == 0)
                route = P2S_DEFAULT_DGRAM;
        uint32_t d = route < srv->dgram_size ? route : srv->dgram_size;
        return d < P2S_MIN_DGRAM ? P2S_MIN_DGRAM : d;
}

static void send_welcome(struct server *srv, struct smember *m)
{
        if (srv->control == P2S_CONTROL_TCP && !m->dgram_size)
                m->dgram_size = member_dgram_size(srv, m);
        struct p2s_welcome w = { .control_mode = (uint8_t)srv->control, .port = srv->port,
                                 .dgram_size = srv->control == P2S_CONTROL_TCP ? m->dgram_size : 0 };
        memcpy(w.nonce, m->nonce, P2S_NONCE_SIZE);
        uint8_t body[P2S_WELCOME_SIZE];
        wire_put_welcome(body, &w);
        struct p2s_hdr h = { .type = P2S_WELCOME, .body_len = sizeof(body), .swarm_id = swarm_id(m->sv->sw),
                             .member_id = m->id, .token = m->token, .chunk = P2S_NO_CHUNK };
        udp_send(srv, (struct sockaddr *)&m->addr, m->addrlen, &h, body);
}

/* Only to an address that echoed a valid cookie: the whole reason. */
static void join_refuse(struct server *srv, const struct sockaddr *to, socklen_t tolen, const struct p2s_hdr *req,
                        const struct wire_hello *hello, uint16_t code, const char *reason)
{
        uint8_t body[P2S_ERR_BODY_MIN + P2S_MAX_REASON];
        size_t n = wire_put_join_err(body, sizeof(body), hello->nonce, code, reason);
        struct p2s_hdr h = { .type = P2S_ERR, .flags = P2S_F_FATAL | P2S_F_JOIN, .body_len = (uint32_t)n,
                             .token = req->token, .chunk = P2S_NO_CHUNK };
        udp_send(srv, to, tolen, &h, body);
}

void server_set_swarm_secret(struct server *srv, const struct swarm_secret *secret)
{
        srv->swarm_secret = *secret;
}

void join_on_hello(struct server *srv, const struct p2s_msg *msg, const struct sockaddr *from, socklen_t fromlen)
{
        uint64_t now = loop_now(srv->loop);
        const struct p2s_hdr *h = &msg->hdr;
        struct join_index *ji = &srv->joins;
        struct wire_hello hello;
        char a[NET_ADDRSTRLEN];

        if (!ji->seed)
                ji->seed = random_u64() | 1;
        switch (join_check_hello(srv->secret, &srv->swarm_secret, now, msg, from, fromlen, &hello)) {
        case JOIN_SEND_COOKIE: {
                /* prove the address first: a cookie costs us nothing to keep */
                uint8_t pkt[P2S_HDR_SIZE + P2S_COOKIE_SIZE];
                size_t n = join_cookie_reply(pkt, sizeof(pkt), srv->secret, now, &hello, from, fromlen);
                if (n && sendto(srv->udp_fd, pkt, n, MSG_DONTWAIT | MSG_NOSIGNAL, from, fromlen) > 0)
                        srv->st.bytes_out += n;
                return;
        }
        case JOIN_NEED_SECRET:
                log_rl(LOG_NOTICE, "HELLO from %s refused: no proof of the swarm secret", net_addr_str(from, a));
                join_refuse(srv, from, fromlen, h, &hello, P2S_ERR_SECRET, "this server requires a swarm secret");
                return;
        case JOIN_BAD_SECRET:
                log_rl(LOG_NOTICE, "HELLO from %s refused: wrong swarm secret", net_addr_str(from, a));
                join_refuse(srv, from, fromlen, h, &hello, P2S_ERR_SECRET, "wrong swarm secret");
                return;
        case JOIN_ACCEPT:
                break;
        }
        struct smember *m = find_by_cookie(srv, h->token, from);
        if (m && m->sv && !memcmp(m->nonce, hello.nonce, P2S_NONCE_SIZE)) {
                send_welcome(srv, m);   /* our WELCOME was lost */
                return;
        }
        if (m) {
                /* its swarm ended before it attached, or a new process
                 * reuses the port within the cookie's life: join afresh */
                pending_free(srv, m);
        }
        char name[P2S_MAX_NAME + 1], esc[LOG_ESCAPE_SIZE(P2S_MAX_NAME)];
        memcpy(name, hello.name, hello.name_len);
        name[hello.name_len] = 0;
        if (srv->shutting_down) {
                join_refuse(srv, from, fromlen, h, &hello, P2S_ERR_SHUTDOWN, "server shutting down");
                return;
        }
        int fd = catalog_open(srv->cat, name);
        if (fd < 0) {
                /* the answer follows the reason: out of descriptors is not "not served" */
                bool busy = fd == -EMFILE || fd == -ENFILE;
                log_rl(busy ? LOG_WARNING : LOG_NOTICE, "HELLO for '%s' refused: %s",
                       log_escape(esc, sizeof(esc), name, hello.name_len),
                       fd == -ENOENT ? "not served" : strerror(-fd));
                join_refuse(srv, from, fromlen, h, &hello,
                            fd == -ENOENT ? P2S_ERR_NOFILE : busy ? P2S_ERR_BUSY : P2S_ERR_SOURCE,
                            fd == -ENOENT ? "no such file is served" : fd == -EACCES ? "permission denied on the server"
                            : busy ? "server busy (too many open files)" : "the server cannot open that file");
                return;
        }
        close(fd);
        /* one host cannot take every slot: past its share it waits (p2s-fetch
         * retries a BUSY join until its timeout) */
        if (addr_count(ji, from) >= JOIN_MAX_PER_ADDR) {
                ji->refused++;
                log_rl(LOG_NOTICE, "HELLO from %s refused: %u joins from that address wait to attach",
                       net_addr_str(from, a), JOIN_MAX_PER_ADDR);
                join_refuse(srv, from, fromlen, h, &hello, P2S_ERR_BUSY, "too many joins from your address at once");
                return;
        }
        /* full: the oldest join that never attached makes room, so a flood
         * from many addresses delays honest joins without locking them out */
        if (srv->nunattached >= JOIN_MAX_UNATTACHED && ji->oldest) {
                ji->evicted++;
                log_rl(LOG_NOTICE, "%u joins wait to attach: dropping the oldest (%llu so far)", srv->nunattached,
                       (unsigned long long)ji->evicted);
                pending_free(srv, ji->oldest);
        }
        struct served *sv = served_find(srv, name);
        if (!sv)
                sv = served_new(srv, name);
        m = calloc(1, sizeof(*m));
        if (!sv || !m) {
                free(m);
                join_refuse(srv, from, fromlen, h, &hello, P2S_ERR_BUSY, "server out of memory");
                return;
        }
        do
                m->id = ++srv->next_member_id;
        while (m->id == 0 || u32map_get(&srv->members, m->id));
        m->token = random_u64() | 1;
        m->cookie = h->token;
        memcpy(m->nonce, hello.nonce, P2S_NONCE_SIZE);
        memcpy(&m->addr, from, fromlen);
        m->addrlen = fromlen;
        m->sv = sv;
        m->born = now;
        if (u32map_put(&srv->members, m->id, m) < 0) {
                free(m);
                return;
        }
        pending_add(srv, m);
        log_debug("member %u: HELLO '%s' from %s", m->id, log_escape(esc, sizeof(esc), name, hello.name_len),
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
        pending_del(srv, m);
        conn_attached(c);
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
                struct dgram_config cfg;
                dgram_config_defaults(&cfg, m->dgram_size ? m->dgram_size : srv->dgram_size);
                cfg.max_partial = 64;   /* uploads reassembled per member at once */
                m->data = datachan_peer_new(&srv->data, &cfg, &served_data_ops, m);
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

/* Joins that never attached within ATTACH_TIMEOUT_US: the oldest first,
 * so only what expires is looked at. */
void join_expire(struct server *srv, uint64_t now)
{
        while (srv->joins.oldest && now - srv->joins.oldest->born > ATTACH_TIMEOUT_US)
                pending_free(srv, srv->joins.oldest);
}
