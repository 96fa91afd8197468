/* SPDX-License-Identifier: MIT */
/* Joining a swarm: HELLO -> COOKIE -> HELLO(cookie) -> WELCOME over UDP,
 * each retried with backoff on the join timer until --timeout; then the TCP
 * connection and ATTACH. Answers that do not carry our nonce are dropped;
 * a BUSY answer is retried. From then on client.c takes over. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include "fetch/exitcode.h"
#include "fetch/session.h"
#include "proto/cookie.h"
#include "util/clock.h"
#include "util/log.h"

/* The HELLO timer's constants and its reset by the COOKIE: proto/cookie.h. */

static void send_hello(struct client *c)
{
        uint8_t body[P2S_HELLO_FIXED + P2S_MAX_NAME], proof[P2S_PROOF_SIZE];
        size_t name_len = strlen(c->opt->name);
        bool prove = c->cookie && c->opt->secret && c->opt->secret->len;
        if (prove)
                join_proof(c->opt->secret, c->cookie, c->nonce, c->opt->name, name_len, proof);
        size_t n = wire_put_hello(body, sizeof(body), c->nonce, prove ? proof : NULL, c->opt->name, name_len);
        struct p2s_hdr h = { .type = P2S_HELLO, .token = c->cookie, .chunk = P2S_NO_CHUNK, .body_len = (uint32_t)n };
        if (n) {
                log_debug("HELLO to %s for '%s'%s%s", c->srv_desc, c->opt->name, c->cookie ? " with the cookie" : "",
                          prove ? " and the secret's proof" : "");
                /* twice: a lost HELLO, COOKIE or WELCOME costs the retry timer
                 * (a 50 ms guess at first), and a swarm starts once its last
                 * member joined. The server answers each copy (a COOKIE costs
                 * it one HMAC and no state; a repeated HELLO with the cookie
                 * gets the same WELCOME again), so both directions are sent
                 * twice and one lost datagram in the four costs nothing. */
                int r = client_udp_send(c, &h, body);
                if (r == 0)
                        r = client_udp_send(c, &h, body);
                /* the first copy's ICMP port unreachable, reported by the
                 * second's send rather than as EPOLLERR */
                if (r == -ECONNREFUSED)
                        join_refused(c);
        }
}

void join_refused(struct client *c)
{
        char why[NET_ADDRSTRLEN + 64];
        snprintf(why, sizeof(why), "connection refused by %s: is p2sd running on that port?", c->srv_desc);
        client_finish(c, FETCH_EXIT_UNREACHABLE, why);
}

static void join_timeout(struct loop *l, struct loop_timer *t, void *ud)
{
        struct client *c = ud;
        uint64_t now = loop_now(l);
        uint64_t deadline = c->join_started + c->opt->timeout_us;
        if (now >= deadline) {
                char why[P2S_MAX_REASON + 160];
                if (c->join == JOIN_HELLO && c->busy[0])
                        snprintf(why, sizeof(why), "server busy for %.1f s: %s", c->opt->timeout_us / 1e6, c->busy);
                else if (c->join == JOIN_HELLO)
                        snprintf(why, sizeof(why), "no answer from %s within %.1f s", c->srv_desc,
                                 c->opt->timeout_us / 1e6);
                else
                        snprintf(why, sizeof(why), "the TCP connection to the server did not complete in time");
                client_finish(c, FETCH_EXIT_UNREACHABLE, why);
                return;
        }
        if (c->join == JOIN_HELLO) {
                c->hello_rto = c->hello_rto * 2 > JOIN_HELLO_RTO_MAX_US ? JOIN_HELLO_RTO_MAX_US : c->hello_rto * 2;
                send_hello(c);
        }
        uint64_t next = c->join == JOIN_HELLO ? now + c->hello_rto : deadline;
        loop_timer_arm(l, t, next < deadline ? next : deadline);
}

void join_start(struct client *c)
{
        c->t0 = c->join_started = loop_now(c->loop);
        c->join = JOIN_HELLO;
        c->hello_rto = JOIN_HELLO_RTO_US;
        loop_timer_init(&c->join_timer, join_timeout, c);
        /* a fresh one per run: answers must prove they saw this HELLO */
        if (random_bytes(c->nonce, sizeof(c->nonce)) < 0) {
                client_finish(c, FETCH_EXIT_FAIL, "cannot read random bytes for the join");
                return;
        }
        loop_timer_arm(c->loop, &c->join_timer, c->join_started + c->hello_rto);
        send_hello(c);
}

static void on_welcome(struct client *c, const struct p2s_msg *msg)
{
        struct p2s_welcome w;
        wire_get_welcome(msg->body, &w);
        log_debug("WELCOME after %.3f s: control over %s, TCP port %u", 
                  (double)(loop_now(c->loop) - c->join_started) / USEC_PER_SEC,
                  w.control_mode == P2S_CONTROL_TCP ? "TCP (chunk data over UDP)" : "UDP", w.port);
        c->control = w.control_mode;
        member_set_reliable_requests(c->mb, c->control == P2S_CONTROL_TCP);
        c->token = msg->hdr.token;
        c->swarm_id = msg->hdr.swarm_id;
        c->member_id = msg->hdr.member_id;
        if (c->control == P2S_CONTROL_TCP) {
                dgram_config_defaults(&c->dgram, w.dgram_size);
                struct p2s_hdr ids = { .swarm_id = c->swarm_id, .member_id = c->member_id, .token = c->token };
                c->peer = datachan_peer_new(&c->data, &c->dgram, &client_data_ops, c);
                if (!c->peer) {
                        client_finish(c, FETCH_EXIT_FAIL, "out of memory");
                        return;
                }
                datachan_peer_set_dest(c->peer, NULL, 0, &ids);
        }
        struct sockaddr_storage ss = c->srv;
        if (ss.ss_family == AF_INET)
                ((struct sockaddr_in *)&ss)->sin_port = htons(w.port);
        else
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons(w.port);
        c->tcp_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->tcp_fd < 0) {
                client_finish(c, FETCH_EXIT_FAIL, "cannot create a TCP socket");
                return;
        }
        int one = 1;
        setsockopt(c->tcp_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->tcp_fd, (struct sockaddr *)&ss, c->srvlen) < 0 && errno != EINPROGRESS) {
                char why[160];
                snprintf(why, sizeof(why), "cannot connect to %s over TCP: %s", c->srv_desc, strerror(errno));
                client_finish(c, FETCH_EXIT_UNREACHABLE, why);
                return;
        }
        c->join = JOIN_CONNECTING;
        loop_add(c->loop, c->tcp_fd, EPOLLIN | EPOLLOUT, client_tcp_event, c);
        c->want_out = true;
        /* the join timer now only guards the connect */
        loop_timer_arm(c->loop, &c->join_timer, c->join_started + c->opt->timeout_us);
        log_debug("member %u of swarm %u, connecting the data channel", c->member_id, c->swarm_id);
}

static void on_join_err(struct client *c, const struct p2s_msg *msg)
{
        const struct p2s_hdr *h = &msg->hdr;
        const uint8_t *err = msg->body + P2S_NONCE_SIZE;
        uint32_t len = h->body_len - P2S_NONCE_SIZE;
        uint16_t code = wire_get_err(err, len, NULL, 0);
        char reason[P2S_MAX_REASON + 1], why[P2S_MAX_REASON + 64];
        /* the peer's text, rendered so it cannot forge a log record */
        log_escape(reason, sizeof(reason), err + P2S_ERR_BODY_MIN, len - P2S_ERR_BODY_MIN);
        if (code == P2S_ERR_SECRET) {
                client_finish(c, FETCH_EXIT_REFUSED, c->opt->secret ? "the swarm secret was refused"
                                                   : "p2sd requires a swarm secret: use --secret-file");
                return;
        }
        if (code == P2S_ERR_BUSY) {
                /* a full join table drains in seconds: the HELLO timer retries */
                if (strcmp(c->busy, reason))
                        log_debug("server busy, retrying: %s", reason);
                snprintf(c->busy, sizeof(c->busy), "%s", reason);
                return;
        }
        char name[LOG_ESCAPE_SIZE(64)];
        snprintf(why, sizeof(why), "server refused '%s': %s",
                 log_escape(name, sizeof(name), c->opt->name, strlen(c->opt->name)), reason);
        client_finish(c, fetch_exit_for_join_err(code), why);
}

void join_on_datagram(struct client *c, const struct p2s_msg *msg)
{
        const struct p2s_hdr *h = &msg->hdr;
        if (!join_reply_is_ours(msg, c->nonce)) {
                /* anyone who can send to our port could end or redirect the
                 * join otherwise: only who saw our HELLO knows the nonce */
                c->foreign_replies++;
                log_rl(LOG_DEBUG, "dropped a %s that does not answer our HELLO (%llu so far)",
                       wire_type_name(h->type), (unsigned long long)c->foreign_replies);
                return;
        }
        if (h->type == P2S_COOKIE && h->token) {
                if (h->token == c->cookie)
                        return;         /* the answer to the other copy of a HELLO */
                uint64_t now = loop_now(c->loop);
                bool first = !c->cookie;
                log_debug("COOKIE from %s after %.3f s: proving the address", c->srv_desc,
                          (double)(now - c->join_started) / USEC_PER_SEC);
                c->cookie = h->token;
                if (first && c->join == JOIN_HELLO) {
                        /* hello_rto is still the first guess only if no HELLO was re-sent */
                        bool resent = c->hello_rto != JOIN_HELLO_RTO_US || now < c->join_started;
                        c->hello_rto = join_hello_rto_after_cookie(resent, resent ? 0 : now - c->join_started);
                        uint64_t deadline = c->join_started + c->opt->timeout_us;
                        uint64_t next = now + c->hello_rto;
                        loop_timer_arm(c->loop, &c->join_timer, next < deadline ? next : deadline);
                }
                send_hello(c);
        } else if (h->type == P2S_WELCOME) {
                on_welcome(c, msg);
        } else if (h->type == P2S_ERR) {
                on_join_err(c, msg);
        }
}

void join_on_connect(struct client *c, uint32_t events)
{
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->tcp_fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
                char why[160];
                snprintf(why, sizeof(why), "cannot connect to %s over TCP: %s", c->srv_desc, strerror(err));
                client_finish(c, FETCH_EXIT_UNREACHABLE, why);
                return;
        }
        if (!(events & EPOLLOUT))
                return;
        struct p2s_hdr h;
        uint8_t raw[P2S_HDR_SIZE];
        client_fill_hdr(c, &h, P2S_ATTACH, P2S_NO_CHUNK, 0);
        wire_encode_hdr(raw, &h);
        if (outq_push(&c->q, raw, sizeof(raw), NULL) < 0) {
                client_finish(c, FETCH_EXIT_FAIL, "out of memory");
                return;
        }
        c->join = JOIN_ATTACHED;
        loop_timer_disarm(c->loop, &c->join_timer);
        client_tcp_flush(c);
        sd_notifyf(0, "READY=1\nSTATUS=joined swarm %u for %s, waiting for it to start", c->swarm_id, c->opt->name);
        log_debug("attached");
        client_drain(c);
}
