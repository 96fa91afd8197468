/* SPDX-License-Identifier: MIT */
/* p2s-fetch's sockets and the glue to the member state machine.
 * Join: HELLO -> COOKIE -> HELLO(cookie) -> WELCOME over UDP, each retried
 * with backoff until --timeout; then the TCP connection and ATTACH; from then
 * on every message goes through member.c. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include "core/dgram.h"
#include "fetch/client.h"
#include "io/udpdata.h"
#include "fetch/progress.h"
#include "fetch/store.h"
#include "proto/hash.h"
#include "proto/wire.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/net.h"
#include "util/outq.h"
#include "util/stream.h"

#define HELLO_RTO_US     (250 * USEC_PER_MSEC)
#define HELLO_RTO_MAX_US (2 * USEC_PER_SEC)
#define RX_BUF           (1u << 20)

enum join_state { JOIN_HELLO, JOIN_CONNECTING, JOIN_ATTACHED, JOIN_DONE };

struct client {
        const struct fetch_options *opt;
        struct loop *loop;
        struct sockaddr_storage srv;
        socklen_t srvlen;
        char srv_desc[NET_ADDRSTRLEN];
        int udp_fd, tcp_fd;
        enum join_state join;
        uint64_t cookie, token;
        uint32_t swarm_id, member_id;
        uint64_t join_started, hello_deadline, hello_rto;
        struct stream_rx rx;
        struct outq q;
        bool want_out;
        int tcp_err;                    /* a write failed: reported by settle() */
        int control;                    /* what the server said in WELCOME */
        struct dgram_config dgram;
        struct dgram_tx *dtx;           /* --control=tcp: our uploads over UDP */
        struct dgram_rx *drx;           /* --control=tcp: chunk data from the server */
        struct udpdata ud;
        struct member *mb;
        struct store store;
        FILE *rtt;
        uint64_t t0;
        struct progress progress;
        struct loop_timer timer;
        int exit_code;
        char reason[P2S_MAX_REASON + 128];
};

static void drain(struct client *c);
static void rearm(struct client *c);

static void finish(struct client *c, int code, const char *reason)
{
        if (c->join == JOIN_DONE)
                return;
        c->join = JOIN_DONE;
        c->exit_code = code;
        snprintf(c->reason, sizeof(c->reason), "%s", reason);
        loop_quit(c->loop, code);
}

/* ---- sending ------------------------------------------------------------- */

static void fill_hdr(struct client *c, struct p2s_hdr *h, uint8_t type, uint32_t chunk, uint32_t body_len)
{
        *h = (struct p2s_hdr){ .type = type, .body_len = body_len, .swarm_id = c->swarm_id,
                               .member_id = c->member_id, .token = c->token, .chunk = chunk };
}

static void udp_send(struct client *c, const struct p2s_hdr *h, const void *body)
{
        uint8_t pkt[P2S_HDR_SIZE + P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX + P2S_MAX_NAME];
        size_t n = wire_encode(pkt, sizeof(pkt), h, body, h->body_len);
        /* a lost control datagram is recovered by its retry timer */
        if (n)
                send(c->udp_fd, pkt, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void tcp_flush(struct client *c)
{
        if (c->tcp_err)
                return;
        int r = outq_flush(&c->q, c->tcp_fd);
        if (r < 0) {
                /* the server may have closed after an ERR still unread in our
                 * buffer: settle() reads it before blaming the write */
                c->tcp_err = -r;
                return;
        }
        bool want = r == 1;
        if (want != c->want_out) {
                c->want_out = want;
                loop_mod(c->loop, c->tcp_fd, EPOLLIN | (want ? EPOLLOUT : 0));
        }
}

static void tcp_send(struct client *c, const struct p2s_hdr *h)
{
        uint8_t raw[P2S_HDR_SIZE];
        wire_encode_hdr(raw, h);
        if (outq_push(&c->q, raw, sizeof(raw), NULL) < 0) {
                member_fail(c->mb, "out of memory", loop_now(c->loop));
                return;
        }
        if (!c->want_out)
                tcp_flush(c);
}

/* Sends what the upload window allows; see io/udpdata. */
static void udp_data_flush(struct client *c)
{
        if (!c->dtx)
                return;
        struct p2s_hdr tmpl = { .swarm_id = c->swarm_id, .member_id = c->member_id, .token = c->token };
        /* a full socket buffer drains by itself; the tx timer carries on */
        udpdata_flush(&c->ud, c->dtx, &tmpl, NULL, 0, loop_now(c->loop));
}

static void send_frag_ack(struct client *c, uint8_t type, uint8_t kind, uint32_t chunk,
                          const struct dgram_rx_result *res)
{
        uint8_t body[P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX];
        size_t len = udpdata_ack_body(body, kind, type == P2S_FRAG_NACK ? res : NULL);
        struct p2s_hdr h;
        fill_hdr(c, &h, type, chunk, (uint32_t)len);
        udp_send(c, &h, body);
}

static void send_hello(struct client *c)
{
        struct p2s_hdr h = { .type = P2S_HELLO, .token = c->cookie, .chunk = P2S_NO_CHUNK,
                             .body_len = (uint32_t)strlen(c->opt->name) };
        udp_send(c, &h, c->opt->name);
}

/* ---- member actions ------------------------------------------------------ */

static void do_upload(struct client *c, uint32_t chunk)
{
        const struct manifest *mf = member_manifest(c->mb);
        uint32_t len = manifest_chunk_len(mf, chunk);
        if (c->control == P2S_CONTROL_TCP) {
                /* datagrams need the bytes in hand; the buffer lives until acknowledged */
                struct buf *b = buf_new(len);
                if (!b || store_read(&c->store, manifest_chunk_off(mf, chunk), b->data, len) < 0 ||
                    dgram_tx_push(c->dtx, P2S_UPLOAD, 0, chunk, b, loop_now(c->loop)) < 0) {
                        buf_unref(b);
                        member_fail(c->mb, "cannot read a chunk back from the output file", loop_now(c->loop));
                        return;
                }
                buf_unref(b);
                udp_data_flush(c);
                return;
        }
        struct p2s_hdr h;
        uint8_t raw[P2S_HDR_SIZE];
        fill_hdr(c, &h, P2S_UPLOAD, chunk, len);
        wire_encode_hdr(raw, &h);
        /* straight from the file: the kernel copies, we hold nothing */
        if (outq_push_file(&c->q, raw, sizeof(raw), c->store.fd, (off_t)manifest_chunk_off(mf, chunk), len) < 0) {
                member_fail(c->mb, "out of memory", loop_now(c->loop));
                return;
        }
        if (!c->want_out)
                tcp_flush(c);
}

static void do_rtt(struct client *c, const struct member_action *a)
{
        if (!c->rtt)
                return;
        fprintf(c->rtt, "%u,%llu,%llu,%s\n", a->chunk, (unsigned long long)(a->req_time_us - c->t0),
                (unsigned long long)a->rtt_us, a->from_cache ? "cache" : "peer");
}

static void drain(struct client *c)
{
        struct member_action a;
        uint64_t now = loop_now(c->loop);
        int r;
        while (member_next_action(c->mb, &a)) {
                switch (a.type) {
                case MEMBER_ACT_SEND: {
                        struct p2s_hdr h;
                        fill_hdr(c, &h, a.msg, a.chunk, 0);
                        h.flags = a.flags;
                        if (c->control == P2S_CONTROL_TCP || a.reliable)
                                tcp_send(c, &h);
                        else
                                udp_send(c, &h, NULL);
                        break;
                }
                case MEMBER_ACT_PREPARE:
                        /* created only now: a refused or failed join leaves no file behind */
                        if ((r = store_open(&c->store, c->opt->output)) < 0 ||
                            (r = store_prepare(&c->store, a.file_size)) < 0) {
                                char why[256];
                                snprintf(why, sizeof(why), "cannot create %s.part: %s", c->opt->output, strerror(-r));
                                member_fail(c->mb, why, now);
                        }
                        progress_start(&c->progress, a.file_size, member_total(c->mb));
                        break;
                case MEMBER_ACT_WRITE: {
                        const struct manifest *mf = member_manifest(c->mb);
                        if ((r = store_write(&c->store, manifest_chunk_off(mf, a.chunk), a.body->data, a.body->len)) < 0) {
                                char why[256];
                                snprintf(why, sizeof(why), "cannot write %s: %s", c->store.part_path, strerror(-r));
                                member_fail(c->mb, why, now);
                        }
                        break;
                }
                case MEMBER_ACT_UPLOAD:
                        do_upload(c, a.chunk);
                        break;
                case MEMBER_ACT_VERIFY: {
                        uint8_t hash[P2S_HASH_SIZE];
                        r = store_hash(&c->store, hash);
                        member_on_verified(c->mb, r < 0 ? NULL : hash, loop_now(c->loop));
                        break;
                }
                case MEMBER_ACT_FINALIZE:
                        if ((r = store_finalize(&c->store)) < 0) {
                                char why[256];
                                snprintf(why, sizeof(why), "cannot rename %s to %s: %s", c->store.part_path,
                                         c->store.path, strerror(-r));
                                member_fail(c->mb, why, now);
                        } else {
                                progress_complete(&c->progress, member_stats(c->mb), member_manifest(c->mb), now);
                                sd_notify(0, "STATUS=complete, serving the swarm until it ends");
                        }
                        break;
                case MEMBER_ACT_RTT:
                        do_rtt(c, &a);
                        break;
                case MEMBER_ACT_EXIT:
                        if (a.code == 0) {
                                /* BYE was queued before EXIT; try to get it out */
                                tcp_flush(c);
                        }
                        finish(c, a.code, a.reason);
                        break;
                }
                buf_unref(a.body);
        }
}

/* ---- incoming ------------------------------------------------------------ */

static bool ours(const struct client *c, const struct p2s_hdr *h)
{
        return h->token == c->token && h->member_id == c->member_id && h->swarm_id == c->swarm_id;
}

static void on_server_msg(struct client *c, const struct p2s_msg *msg, struct buf *body)
{
        const struct p2s_hdr *h = &msg->hdr;
        uint64_t now = loop_now(c->loop);
        switch (h->type) {
        case P2S_START: {
                struct p2s_start st;
                wire_get_start(msg->body, &st);
                member_on_start(c->mb, &st, now);
                break;
        }
        case P2S_SHARE:
                member_on_share(c->mb, h->chunk, body, now);
                break;
        case P2S_MANIFEST:
                member_on_manifest(c->mb, h->chunk, msg->body, h->body_len / P2S_HASH_SIZE, now);
                break;
        case P2S_MANIFEST_END:
                member_on_manifest_end(c->mb, msg->body, now);
                break;
        case P2S_DATA:
                member_on_data(c->mb, h->chunk, body, h->flags & P2S_F_FROM_CACHE, now);
                break;
        case P2S_QUERY:
                member_on_query(c->mb, h->chunk, now);
                break;
        case P2S_COMPLETE:
                if (h->flags & P2S_F_ACK)
                        member_on_complete_ack(c->mb, now);
                break;
        case P2S_DONE:
                member_on_done(c->mb, now);
                break;
        case P2S_ERR: {
                char reason[P2S_MAX_REASON + 1];
                uint16_t code = wire_get_err(msg->body, h->body_len, reason, sizeof(reason));
                member_on_error(c->mb, code, reason, h->flags & P2S_F_FATAL, now);
                break;
        }
        default:
                log_rl(LOG_NOTICE, "unexpected %s from the server", wire_type_name(h->type));
                break;
        }
        drain(c);
}

static void tcp_event(struct loop *l, int fd, uint32_t events, void *ud);

static void on_welcome(struct client *c, const struct p2s_msg *msg)
{
        struct p2s_welcome w;
        wire_get_welcome(msg->body, &w);
        c->control = w.control_mode;
        if (c->control == P2S_CONTROL_TCP) {
                dgram_config_defaults(&c->dgram, w.dgram_size);
                c->dtx = dgram_tx_new(&c->dgram);
                c->drx = dgram_rx_new(c->dgram.max_partial);
                if (!c->dtx || !c->drx) {
                        finish(c, 1, "out of memory");
                        return;
                }
        }
        c->token = msg->hdr.token;
        c->swarm_id = msg->hdr.swarm_id;
        c->member_id = msg->hdr.member_id;
        struct sockaddr_storage ss = c->srv;
        if (ss.ss_family == AF_INET)
                ((struct sockaddr_in *)&ss)->sin_port = htons(w.port);
        else
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons(w.port);
        c->tcp_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->tcp_fd < 0) {
                finish(c, 1, "cannot create a TCP socket");
                return;
        }
        int one = 1;
        setsockopt(c->tcp_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->tcp_fd, (struct sockaddr *)&ss, c->srvlen) < 0 && errno != EINPROGRESS) {
                char why[160];
                snprintf(why, sizeof(why), "cannot connect to %s over TCP: %s", c->srv_desc, strerror(errno));
                finish(c, 1, why);
                return;
        }
        c->join = JOIN_CONNECTING;
        loop_add(c->loop, c->tcp_fd, EPOLLIN | EPOLLOUT, tcp_event, c);
        c->want_out = true;
        log_debug("member %u of swarm %u, connecting the data channel", c->member_id, c->swarm_id);
}

/* Chunk data over UDP (--control=tcp): SHARE and DATA in, acknowledgements
 * of our uploads. */
static void on_data_datagram(struct client *c, const struct p2s_msg *msg)
{
        const struct p2s_hdr *h = &msg->hdr;
        uint64_t now = loop_now(c->loop);
        if (!c->dtx)
                return;
        if (h->type != P2S_FRAG) {
                struct p2s_frag_ack a;
                wire_get_frag_ack(msg->body, &a);
                if (h->type == P2S_FRAG_ACK)
                        dgram_tx_on_ack(c->dtx, a.kind, h->chunk, now);
                else
                        dgram_tx_on_nack(c->dtx, a.kind, h->chunk, a.base, msg->body + P2S_FRAG_ACK_SIZE,
                                         h->body_len - P2S_FRAG_ACK_SIZE, now);
                udp_data_flush(c);
                return;
        }
        struct p2s_frag f;
        wire_get_frag(msg->body, &f);
        const struct manifest *mf = member_manifest(c->mb);
        enum member_state st = member_state(c->mb);
        bool started = st != MEMBER_WAIT_START && st != MEMBER_EXITED;
        if (f.kind == P2S_UPLOAD || !started || h->chunk >= mf->chunk_count ||
            f.chunk_len != manifest_chunk_len(mf, h->chunk))
                return;
        if (member_has_chunk(c->mb, h->chunk)) {
                send_frag_ack(c, P2S_FRAG_ACK, f.kind, h->chunk, NULL);   /* our ACK was lost */
                return;
        }
        struct dgram_rx_result res;
        int r = dgram_rx_on_frag(c->drx, f.kind, h->chunk, &f, msg->body + P2S_FRAG_SIZE,
                                 (uint16_t)(h->body_len - P2S_FRAG_SIZE), now, &res);
        if (r == DGRAM_RX_COMPLETE) {
                if (f.kind == P2S_SHARE)
                        member_on_share(c->mb, h->chunk, res.chunk, now);
                else
                        member_on_data(c->mb, h->chunk, res.chunk, h->flags & P2S_F_FROM_CACHE, now);
                buf_unref(res.chunk);
                /* acknowledged only once it is ours, verified where it can be */
                if (member_has_chunk(c->mb, h->chunk))
                        send_frag_ack(c, P2S_FRAG_ACK, f.kind, h->chunk, NULL);
                drain(c);
        } else if (res.nack) {
                send_frag_ack(c, P2S_FRAG_NACK, f.kind, h->chunk, &res);
        }
}

static void on_datagram(struct client *c, const uint8_t *pkt, size_t len)
{
        struct p2s_msg msg;
        int r = wire_decode(pkt, len, &msg);
        if (r != WIRE_OK) {
                log_rl(LOG_NOTICE, "dropped a datagram from the server: %s", wire_strerror(r));
                return;
        }
        const struct p2s_hdr *h = &msg.hdr;
        if (c->join == JOIN_HELLO) {
                if (h->type == P2S_COOKIE && h->token) {
                        c->cookie = h->token;
                        send_hello(c);
                } else if (h->type == P2S_WELCOME) {
                        on_welcome(c, &msg);
                } else if (h->type == P2S_ERR) {
                        char reason[P2S_MAX_REASON + 1], why[P2S_MAX_REASON + 64];
                        wire_get_err(msg.body, h->body_len, reason, sizeof(reason));
                        snprintf(why, sizeof(why), "server refused '%s': %s", c->opt->name, reason);
                        finish(c, 1, why);
                }
                return;
        }
        if (c->join != JOIN_ATTACHED || !ours(c, h))
                return;         /* not for this session: dropped */
        if (h->type == P2S_FRAG || h->type == P2S_FRAG_ACK || h->type == P2S_FRAG_NACK) {
                on_data_datagram(c, &msg);
                return;
        }
        if (h->type == P2S_QUERY || h->type == P2S_DONE || h->type == P2S_COMPLETE || h->type == P2S_ERR)
                on_server_msg(c, &msg, NULL);
}

static void on_udp(const uint8_t *pkt, size_t len, const struct sockaddr *from, socklen_t fromlen, void *ud)
{
        struct client *c = ud;
        if (c->join != JOIN_DONE)
                on_datagram(c, pkt, len);
}

static void udp_event(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct client *c = ud;
        /* ECONNREFUSED while joining ends a batch early: HELLO retries until --timeout */
        udpdata_recv(&c->ud, 4, on_udp, c, NULL);
        rearm(c);
}

static long tcp_hdr(const uint8_t *raw, void *ud)
{
        struct p2s_hdr h;
        if (wire_decode_hdr(raw, P2S_HDR_SIZE, &h) != WIRE_OK)
                return -EBADMSG;
        return (long)h.body_len;
}

static int tcp_frame(const uint8_t *raw, struct buf *body, void *ud)
{
        struct client *c = ud;
        struct p2s_msg msg;
        wire_decode_hdr(raw, P2S_HDR_SIZE, &msg.hdr);
        msg.body = body ? body->data : NULL;
        if (wire_check_body(&msg.hdr, msg.body) != WIRE_OK || !ours(c, &msg.hdr)) {
                member_on_disconnect(c->mb, "the server sent a malformed frame", loop_now(c->loop));
                drain(c);
                return 1;
        }
        on_server_msg(c, &msg, body);
        return c->join == JOIN_DONE;
}

static void tcp_event(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct client *c = ud;
        if (c->join == JOIN_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof(err);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) {
                        char why[160];
                        snprintf(why, sizeof(why), "cannot connect to %s over TCP: %s", c->srv_desc, strerror(err));
                        finish(c, 1, why);
                        return;
                }
                if (!(events & EPOLLOUT))
                        return;
                struct p2s_hdr h;
                uint8_t raw[P2S_HDR_SIZE];
                fill_hdr(c, &h, P2S_ATTACH, P2S_NO_CHUNK, 0);
                wire_encode_hdr(raw, &h);
                outq_push(&c->q, raw, sizeof(raw), NULL);
                c->join = JOIN_ATTACHED;
                tcp_flush(c);
                sd_notifyf(0, "READY=1\nSTATUS=joined swarm %u for %s, waiting for it to start", c->swarm_id, c->opt->name);
                log_debug("attached");
                drain(c);
                rearm(c);
                return;
        }
        if (c->join != JOIN_ATTACHED)
                return;
        if (c->join == JOIN_ATTACHED && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
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
                tcp_flush(c);
        drain(c);
        rearm(c);
}

/* ---- time ---------------------------------------------------------------- */

static void on_timer(struct loop *l, struct loop_timer *t, void *ud)
{
        struct client *c = ud;
        uint64_t now = loop_now(l);
        if (c->join == JOIN_HELLO && (now >= c->hello_deadline || now - c->join_started >= c->opt->timeout_us)) {
                if (now - c->join_started >= c->opt->timeout_us) {
                        char why[160];
                        snprintf(why, sizeof(why), "no answer from %s within %.1f s", c->srv_desc,
                                 c->opt->timeout_us / 1e6);
                        finish(c, 1, why);
                        return;
                }
                c->hello_rto = c->hello_rto * 2 > HELLO_RTO_MAX_US ? HELLO_RTO_MAX_US : c->hello_rto * 2;
                c->hello_deadline = now + c->hello_rto;
                send_hello(c);
        }
        if (c->join == JOIN_CONNECTING && now - c->join_started >= c->opt->timeout_us) {
                finish(c, 1, "the TCP connection to the server did not complete in time");
                return;
        }
        if (c->join == JOIN_ATTACHED && c->dtx && dgram_tx_next_deadline(c->dtx) <= now) {
                if (dgram_tx_on_tick(c->dtx, now)) {
                        member_on_disconnect(c->mb, "the server stopped acknowledging uploads", now);
                        drain(c);
                        return;
                }
                udp_data_flush(c);
        }
        if (c->join == JOIN_ATTACHED) {
                if (member_next_deadline(c->mb) <= now) {
                        member_on_tick(c->mb, now);
                        drain(c);
                }
                progress_tick(&c->progress, member_have(c->mb), member_stats(c->mb), now);
        }
        rearm(c);
}

/* After each event: a failed write is reported only once whatever the
 * server sent before closing has been read (its ERR says more than EPIPE). */
static void settle(struct client *c)
{
        if (!c->tcp_err || c->join != JOIN_ATTACHED)
                return;
        int r = stream_rx_read(&c->rx, c->tcp_fd);
        if (c->join == JOIN_ATTACHED) {
                const char *why = r == STREAM_EOF ? "the server closed the connection" : strerror(c->tcp_err);
                member_on_disconnect(c->mb, why, loop_now(c->loop));
                drain(c);
        }
}

static void rearm(struct client *c)
{
        settle(c);
        if (c->join == JOIN_DONE)
                return;
        uint64_t now = loop_now(c->loop);
        uint64_t d = now + USEC_PER_SEC;
        if (c->join == JOIN_HELLO && c->hello_deadline < d)
                d = c->hello_deadline;
        if ((c->join == JOIN_HELLO || c->join == JOIN_CONNECTING) && c->join_started + c->opt->timeout_us < d)
                d = c->join_started + c->opt->timeout_us;
        if (c->join == JOIN_ATTACHED) {
                uint64_t md = member_next_deadline(c->mb);
                if (md < d)
                        d = md;
                uint64_t pd = progress_next(&c->progress);
                if (pd < d)
                        d = pd;
                uint64_t td = c->dtx ? dgram_tx_next_deadline(c->dtx) : UINT64_MAX;
                if (td < d)
                        d = td;
        }
        if (!loop_timer_armed(&c->timer) || c->timer.node.key != d)
                loop_timer_arm(c->loop, &c->timer, d);
}

/* ---- setup --------------------------------------------------------------- */

static int resolve(struct client *c, char *err, size_t errlen)
{
        char port[8];
        snprintf(port, sizeof(port), "%u", c->opt->port);
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM }, *res = NULL;
        int r = getaddrinfo(c->opt->host, port, &hints, &res);
        if (r) {
                snprintf(err, errlen, "cannot resolve '%s': %s", c->opt->host, gai_strerror(r));
                return -EINVAL;
        }
        memcpy(&c->srv, res->ai_addr, res->ai_addrlen);
        c->srvlen = res->ai_addrlen;
        freeaddrinfo(res);
        net_addr_str((struct sockaddr *)&c->srv, c->srv_desc);
        return 0;
}

struct client *client_new(const struct fetch_options *o, struct loop *l, char *err, size_t errlen)
{
        struct client *c = calloc(1, sizeof(*c));
        if (!c) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        c->opt = o;
        c->loop = l;
        c->udp_fd = c->tcp_fd = -1;
        c->store.fd = -1;
        outq_init(&c->q);
        loop_timer_init(&c->timer, on_timer, c);
        if (resolve(c, err, errlen) < 0)
                return client_free(c);
        c->mb = member_new(&o->member);
        if (!c->mb || stream_rx_init(&c->rx, P2S_HDR_SIZE, RX_BUF, tcp_hdr, tcp_frame, c) < 0) {
                snprintf(err, errlen, "out of memory");
                return client_free(c);
        }
        int r = store_check(o->output);
        if (r < 0) {
                snprintf(err, errlen, "cannot write %s: %s", o->output, strerror(-r));
                return client_free(c);
        }
        if (o->rtt_log) {
                c->rtt = fopen(o->rtt_log, "we");
                if (!c->rtt) {
                        snprintf(err, errlen, "cannot create %s: %s", o->rtt_log, strerror(errno));
                        return client_free(c);
                }
                fputs("chunk,request_time_us,rtt_us,source\n", c->rtt);
        }
        c->udp_fd = socket(c->srv.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->udp_fd < 0 || connect(c->udp_fd, (struct sockaddr *)&c->srv, c->srvlen) < 0) {
                snprintf(err, errlen, "cannot open a UDP socket to %s: %s", c->srv_desc, strerror(errno));
                return client_free(c);
        }
        net_set_bufs(c->udp_fd, 4 << 20, 8 << 20);
        udpdata_init(&c->ud, c->udp_fd);
        progress_init(&c->progress, o->name, o->quiet);
        return c;
}

struct client *client_free(struct client *c)
{
        if (!c)
                return NULL;
        loop_timer_disarm(c->loop, &c->timer);
        if (c->udp_fd >= 0) {
                loop_del(c->loop, c->udp_fd);
                close(c->udp_fd);
        }
        if (c->tcp_fd >= 0) {
                loop_del(c->loop, c->tcp_fd);
                close(c->tcp_fd);
        }
        outq_fini(&c->q);
        stream_rx_fini(&c->rx);
        dgram_tx_free(c->dtx);
        dgram_rx_free(c->drx);
        member_free(c->mb);
        store_close(&c->store);
        if (c->rtt)
                fclose(c->rtt);
        free(c);
        return NULL;
}

int client_start(struct client *c)
{
        int r = loop_add(c->loop, c->udp_fd, EPOLLIN, udp_event, c);
        if (r < 0)
                return r;
        c->t0 = c->join_started = loop_now(c->loop);
        c->join = JOIN_HELLO;
        c->hello_rto = HELLO_RTO_US;
        c->hello_deadline = c->join_started + c->hello_rto;
        send_hello(c);
        rearm(c);
        return 0;
}

void client_log_stats(const struct client *c)
{
        const struct member_stats *ms = member_stats(c->mb);
        log_debug("chunks: %llu share, %llu cache, %llu peer; %llu requests, %llu retries, %llu queries, "
                  "%llu bad, %llu duplicate, %llu dropped",
                  (unsigned long long)ms->chunks_share, (unsigned long long)ms->chunks_cache,
                  (unsigned long long)ms->chunks_peer, (unsigned long long)ms->requests_sent,
                  (unsigned long long)ms->retries, (unsigned long long)ms->queries,
                  (unsigned long long)ms->bad_chunks, (unsigned long long)ms->dup_chunks,
                  (unsigned long long)ms->dropped_msgs);
        if (c->dtx) {
                const struct dgram_tx_stats *t = dgram_tx_stats(c->dtx);
                log_debug("uploads over UDP: %llu chunks, %llu fragments, %llu re-sent, %llu probes, %llu nacks, cwnd %u, srtt %llu us",
                          (unsigned long long)t->chunks_sent, (unsigned long long)t->frags_sent,
                          (unsigned long long)t->frags_resent, (unsigned long long)t->probes,
                          (unsigned long long)t->nacks, t->cwnd, (unsigned long long)t->srtt_us);
                log_debug("UDP out: %llu datagrams in %llu syscalls (GSO %s, GRO %s)",
                          (unsigned long long)c->ud.datagrams_out, (unsigned long long)c->ud.syscalls_out,
                          c->ud.gso ? "on" : "off", c->ud.gro ? "on" : "off");
        }
}

const char *client_reason(const struct client *c)
{
        return c->reason;
}
