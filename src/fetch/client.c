/* SPDX-License-Identifier: MIT */
/* p2s-fetch's session once joined: the member state machine between the
 * server's messages (TCP frames, control datagrams, chunk data through
 * io/datachan) and the output file. Each concern has its own timer or
 * deferred work: the member's deadlines, the progress line, the whole-file
 * check a slice per turn, and reporting a failed write only after what the
 * server sent before closing was read. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include "fetch/session.h"
#include "proto/hash.h"
#include "util/clock.h"
#include "util/log.h"

#define RX_BUF           (1u << 20)
#define VERIFY_SLICE     (8u << 20)     /* bytes hashed per loop turn */

void client_finish(struct client *c, int code, const char *reason)
{
        if (c->join == JOIN_DONE)
                return;
        c->join = JOIN_DONE;
        c->exit_code = code;
        snprintf(c->reason, sizeof(c->reason), "%s", reason);
        loop_quit(c->loop, code);
}

/* ---- member actions ------------------------------------------------------ */

static void member_rearm(struct client *c)
{
        uint64_t d = c->join == JOIN_DONE ? UINT64_MAX : member_next_deadline(c->mb);
        if (d == UINT64_MAX)
                loop_timer_disarm(c->loop, &c->member_timer);
        else if (!loop_timer_armed(&c->member_timer) || c->member_timer.node.key != d)
                loop_timer_arm(c->loop, &c->member_timer, d);
}

static void do_upload(struct client *c, uint32_t chunk)
{
        const struct manifest *mf = member_manifest(c->mb);
        uint32_t len = manifest_chunk_len(mf, chunk);
        if (c->control == P2S_CONTROL_TCP) {
                /* datagrams need the bytes in hand; the buffer lives until acknowledged */
                struct buf *b = buf_new(len);
                if (!b || store_read(&c->store, manifest_chunk_off(mf, chunk), b->data, len) < 0 ||
                    datachan_send(c->peer, P2S_UPLOAD, 0, chunk, b) < 0) {
                        buf_unref(b);
                        member_fail(c->mb, "cannot read a chunk back from the output file", loop_now(c->loop));
                        return;
                }
                buf_unref(b);
                return;
        }
        struct p2s_hdr h;
        uint8_t raw[P2S_HDR_SIZE];
        client_fill_hdr(c, &h, P2S_UPLOAD, chunk, len);
        wire_encode_hdr(raw, &h);
        /* straight from the file: the kernel copies, we hold nothing */
        if (outq_push_file(&c->q, raw, sizeof(raw), c->store.fd, (off_t)manifest_chunk_off(mf, chunk), len) < 0) {
                member_fail(c->mb, "out of memory", loop_now(c->loop));
                return;
        }
        if (!c->want_out)
                client_tcp_flush(c);
}

static void do_rtt(struct client *c, const struct member_action *a)
{
        if (!c->rtt)
                return;
        fprintf(c->rtt, "%u,%llu,%llu,%s\n", a->chunk, (unsigned long long)(a->req_time_us - c->t0),
                (unsigned long long)a->rtt_us, a->from_cache ? "cache" : "peer");
}

void client_drain(struct client *c)
{
        struct member_action a;
        uint64_t now = loop_now(c->loop);
        int r;
        while (member_next_action(c->mb, &a)) {
                switch (a.type) {
                case MEMBER_ACT_SEND: {
                        struct p2s_hdr h;
                        client_fill_hdr(c, &h, a.msg, a.chunk, 0);
                        h.flags = a.flags;
                        if (c->control == P2S_CONTROL_TCP || a.reliable)
                                client_tcp_send(c, &h);
                        else
                                client_udp_send(c, &h, NULL);
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
                case MEMBER_ACT_VERIFY:
                        c->verify = store_verify_free(c->verify);
                        c->verify = store_verify_new(&c->store);
                        if (c->verify)
                                loop_defer(c->loop, &c->verify_step);
                        else
                                member_on_verified(c->mb, NULL, now);
                        break;
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
                                client_tcp_flush(c);
                        }
                        client_finish(c, a.code, a.reason);
                        break;
                }
                buf_unref(a.body);
        }
        member_rearm(c);
}

/* Deferred work: the whole-file hash, a slice per turn, so keep-alives and
 * QUERYs are answered while a large copy is read back. */
static void verify_step(struct loop *l, void *ud)
{
        struct client *c = ud;
        uint8_t hash[P2S_HASH_SIZE];
        if (!c->verify || c->join == JOIN_DONE)
                return;
        int r = store_verify_step(&c->store, c->verify, VERIFY_SLICE, hash);
        if (r == 0) {
                loop_defer(l, &c->verify_step);
                return;
        }
        c->verify = store_verify_free(c->verify);
        member_on_verified(c->mb, r < 0 ? NULL : hash, loop_now(l));
        client_drain(c);
}

static void member_timer(struct loop *l, struct loop_timer *t, void *ud)
{
        struct client *c = ud;
        member_on_tick(c->mb, loop_now(l));
        client_drain(c);
}

static void progress_timer(struct loop *l, struct loop_timer *t, void *ud)
{
        struct client *c = ud;
        uint64_t now = loop_now(l);
        if (c->join == JOIN_ATTACHED)
                progress_tick(&c->progress, member_have(c->mb), member_stats(c->mb), now);
        uint64_t d = progress_next(&c->progress);
        loop_timer_arm(l, t, d > now ? d : now + USEC_PER_SEC);
}

/* ---- server messages ----------------------------------------------------- */

void client_on_server_msg(struct client *c, const struct p2s_msg *msg, struct buf *body)
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
        client_drain(c);
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
        loop_timer_init(&c->member_timer, member_timer, c);
        loop_timer_init(&c->progress_timer, progress_timer, c);
        loop_timer_init(&c->join_timer, NULL, c);
        loop_defer_init(&c->settle, link_settle, c);
        loop_defer_init(&c->verify_step, verify_step, c);
        if (resolve(c, err, errlen) < 0)
                return client_free(c);
        c->mb = member_new(&o->member);
        if (!c->mb || stream_rx_init(&c->rx, P2S_HDR_SIZE, RX_BUF, link_tcp_hdr, link_tcp_frame, c) < 0) {
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
        if (datachan_init(&c->data, l, c->udp_fd, EPOLLIN) < 0) {
                snprintf(err, errlen, "out of memory");
                return client_free(c);
        }
        progress_init(&c->progress, o->name, o->progress);
        return c;
}

struct client *client_free(struct client *c)
{
        if (!c)
                return NULL;
        loop_timer_disarm(c->loop, &c->member_timer);
        loop_timer_disarm(c->loop, &c->progress_timer);
        loop_timer_disarm(c->loop, &c->join_timer);
        loop_defer_cancel(c->loop, &c->settle);
        loop_defer_cancel(c->loop, &c->verify_step);
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
        c->peer = datachan_peer_free(c->peer);
        datachan_fini(&c->data);
        c->verify = store_verify_free(c->verify);
        member_free(c->mb);
        store_close(&c->store);
        if (c->rtt)
                fclose(c->rtt);
        free(c);
        return NULL;
}

int client_start(struct client *c)
{
        int r = loop_add(c->loop, c->udp_fd, EPOLLIN, link_udp_event, c);
        if (r < 0)
                return r;
        join_start(c);
        loop_timer_arm(c->loop, &c->progress_timer, loop_now(c->loop) + USEC_PER_SEC);
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
        if (c->peer) {
                const struct dgram_tx_stats *t = datachan_tx_stats(c->peer);
                log_debug("uploads over UDP: %llu chunks, %llu fragments, %llu re-sent, %llu probes, %llu nacks, cwnd %u, srtt %llu us",
                          (unsigned long long)t->chunks_sent, (unsigned long long)t->frags_sent,
                          (unsigned long long)t->frags_resent, (unsigned long long)t->probes,
                          (unsigned long long)t->nacks, t->cwnd, (unsigned long long)t->srtt_us);
                log_debug("UDP out: %llu datagrams in %llu syscalls (GSO %s, GRO %s)",
                          (unsigned long long)c->data.ud.datagrams_out, (unsigned long long)c->data.ud.syscalls_out,
                          c->data.ud.gso ? "on" : "off", c->data.ud.gro ? "on" : "off");
        }
}

const char *client_reason(const struct client *c)
{
        return c->reason;
}
