/* SPDX-License-Identifier: MIT */
/* p2s-fetch's session once joined: the member state machine between the
 * server's messages (TCP frames, control datagrams, chunk data through
 * io/datachan) and the output file. Each concern has its own timer or
 * deferred work: the member's deadlines, the progress line, the whole-file
 * check a slice per turn, and reporting a failed write only after what the
 * server sent before closing was read. Resuming an earlier run (its state
 * saved on a timer, its chunks read back a slice per turn) is resuming.c's. */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include "fetch/exitcode.h"
#include "fetch/session.h"
#include "proto/hash.h"
#include "util/clock.h"
#include "util/log.h"

/* Chunk bodies are read in place (stream.h): the read buffer holds headers,
 * small frames and a body's first bytes, and each of its bytes is one more
 * copy, so it is one page. */
#define RX_BUF           4096u

void client_finish(struct client *c, int code, const char *reason)
{
        if (c->join == JOIN_DONE)
                return;
        c->join = JOIN_DONE;
        c->exit_code = code;
        snprintf(c->reason, sizeof(c->reason), "%s", reason);
        if (code != 0 && c->state_ok) {
                /* whatever ended us, the next run starts from here */
                client_state_save(c, true);
                if (c->saved)
                        log_info("kept %s with %zu of %llu chunks verified: the same command resumes it",
                                 c->store.part_path, c->saved, (unsigned long long)member_total(c->mb));
        }
        if (c->done)
                c->done(c, c->done_ud);
}

void client_fail(struct client *c, int code, const char *reason)
{
        if (!c->fail_code)
                c->fail_code = code;
        member_fail(c->mb, reason, loop_now(c->loop));
}

/* ---- member actions ------------------------------------------------------ */

/* -R and --preserve: the source's mtime and mode as START gave them; a
 * failure is worth a line, not the verified copy. */
static void apply_meta(struct client *c)
{
        if (c->opt->preserve && fchmod(c->store.fd, (mode_t)(c->start.mode & 0777)) < 0)
                log_notice("cannot set the mode of %s: %s", c->store.path, strerror(errno));
        if (c->opt->remote_time) {
                struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT },
                                          { .tv_sec = (time_t)c->start.mtime_sec,
                                            .tv_nsec = (long)c->start.mtime_nsec } };
                if (futimens(c->store.fd, ts) < 0)
                        log_notice("cannot set the time of %s: %s", c->store.path, strerror(errno));
        }
}

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
                        client_fail(c, FETCH_EXIT_LOCAL, "cannot read a chunk back from the output file");
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
        log_debug("%s: chunk %u from the %s in %.1f ms", c->opt->name, a->chunk, a->from_cache ? "cache" : "peer",
                  (double)a->rtt_us / USEC_PER_MSEC);
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
                                for (int copy = 0; copy < (a.twice ? 2 : 1); copy++)
                                        client_udp_send(c, &h, NULL);
                        break;
                }
                case MEMBER_ACT_PREPARE: {
                        /* created only now: a refused or failed join leaves no file behind */
                        char why[256];
                        if (client_prepare(c, a.file_size, why, sizeof(why)) < 0)
                                client_fail(c, FETCH_EXIT_LOCAL, why);
                        progress_start(&c->progress, a.file_size, member_total(c->mb));
                        break;
                }
                case MEMBER_ACT_WRITE: {
                        const struct manifest *mf = member_manifest(c->mb);
                        client_guard_prior(c, a.chunk, a.body);
                        if ((r = store_write(&c->store, manifest_chunk_off(mf, a.chunk), a.body->data, a.body->len)) < 0) {
                                char why[256];
                                snprintf(why, sizeof(why), "cannot write %s: %s", c->store.part_path, strerror(-r));
                                client_fail(c, FETCH_EXIT_LOCAL, why);
                        } else {
                                bitmap_set(&c->written, a.chunk);
                                c->dirty = true;
                        }
                        break;
                }
                case MEMBER_ACT_HAVE:
                        client_send_have(c, a.chunk, a.count);
                        break;
                case MEMBER_ACT_UPLOAD:
                        do_upload(c, a.chunk);
                        break;
                case MEMBER_ACT_VERIFY:
                        if (!c->opt->verify_file) {
                                /* every chunk matched its manifest hash before it was
                                 * written: the file is the manifest's (p2s-fetch(1),
                                 * VERIFICATION) without hashing it all again */
                                member_on_verified(c->mb, member_manifest(c->mb)->file_hash, now);
                                break;
                        }
                        c->verify = store_verify_free(c->verify);
                        c->verify = store_verify_new(&c->store);
                        if (c->verify)
                                loop_defer(c->loop, &c->verify_step);
                        else
                                member_on_verified(c->mb, NULL, now);
                        break;
                case MEMBER_ACT_FINALIZE:
                        apply_meta(c);
                        if ((r = store_finalize(&c->store)) < 0) {
                                char why[256];
                                snprintf(why, sizeof(why), "cannot rename %s to %s: %s", c->store.part_path,
                                         c->store.path, strerror(-r));
                                client_fail(c, FETCH_EXIT_LOCAL, why);
                        } else {
                                /* nothing left to resume */
                                c->state_ok = false;
                                loop_timer_disarm(c->loop, &c->save_timer);
                                if (unlink(c->state_path) < 0 && errno != ENOENT)
                                        log_notice("cannot remove %s: %s", c->state_path, strerror(errno));
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
                        client_finish(c, a.code == MEMBER_EXIT_FAIL && c->fail_code ? c->fail_code
                                                                                    : fetch_exit_for(a.code, a.err),
                                      a.reason);
                        break;
                }
                buf_unref(a.body);
        }
        enum member_state st = member_state(c->mb);
        if (!c->state_ok && c->store.fd >= 0 && (st == MEMBER_FETCHING || st == MEMBER_VERIFYING)) {
                /* the manifest is known: from now on the state can say which file it is */
                c->state_ok = true;
                c->dirty = bitmap_count(&c->written) > 0;
        }
        client_state_arm(c);
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
        if (r < 0 || memcmp(hash, member_manifest(c->mb)->file_hash, P2S_HASH_SIZE)) {
                /* every chunk checked and still wrong: a state listing them would
                 * only lead the next run into the same wall */
                c->state_ok = false;
                client_forget_prior(c, false);
        }
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

void client_on_server_msg(struct client *c, const struct p2s_msg *msg, struct buf *body, bool over_tcp)
{
        const struct p2s_hdr *h = &msg->hdr;
        uint64_t now = loop_now(c->loop);
        switch (h->type) {
        case P2S_START: {
                struct p2s_start st;
                wire_get_start(msg->body, &st);
                c->start = st;
                log_debug("START: %llu bytes in %u chunks of %u", (unsigned long long)st.file_size, st.chunk_count,
                          st.chunk_size);
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
                client_on_manifest_end(c, msg->body, now);
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
        case P2S_PING:
                if ((h->flags & P2S_F_ACK) && h->body_len == P2S_GATHER_SIZE) {
                        uint32_t joined, min_clients;
                        wire_get_gather(msg->body, &joined, &min_clients);
                        progress_set_members(&c->progress, joined);
                }
                member_on_ping(c->mb, h->flags & P2S_F_ACK, over_tcp, now);
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

struct client *client_new(const struct fetch_options *o, struct loop *l, client_done_fn done, void *ud, int *code,
                          char *err, size_t errlen)
{
        struct client *c = calloc(1, sizeof(*c));
        *code = FETCH_EXIT_FAIL;
        if (!c) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        c->opt = o;
        c->loop = l;
        c->done = done;
        c->done_ud = ud;
        c->udp_fd = c->tcp_fd = -1;
        c->store.fd = -1;
        outq_init(&c->q);
        loop_timer_init(&c->member_timer, member_timer, c);
        loop_timer_init(&c->progress_timer, progress_timer, c);
        loop_timer_init(&c->join_timer, NULL, c);
        loop_defer_init(&c->settle, link_settle, c);
        loop_defer_init(&c->verify_step, verify_step, c);
        loop_defer_init(&c->check_step, client_check_step, c);
        loop_timer_init(&c->save_timer, client_save_timer, c);
        if (resolve(c, err, errlen) < 0) {
                *code = FETCH_EXIT_UNREACHABLE;
                return client_free(c);
        }
        if (!(c->state_path = resume_path(o->output))) {
                snprintf(err, errlen, "out of memory");
                return client_free(c);
        }
        c->mb = member_new(&o->member);
        if (!c->mb || stream_rx_init(&c->rx, P2S_HDR_SIZE, RX_BUF, link_tcp_hdr, link_tcp_frame, c) < 0) {
                snprintf(err, errlen, "out of memory");
                return client_free(c);
        }
        /* taken now, before the join: a second run for the same output is
         * told at once, not after both wrote into one file */
        int r = store_lock(&c->store, o->output);
        if (r == -EBUSY) {
                snprintf(err, errlen, "%s.part is in use by another p2s-fetch: not fetching into it twice",
                         o->output);
                *code = FETCH_EXIT_LOCAL;
                return client_free(c);
        }
        if (r < 0) {
                snprintf(err, errlen, "cannot write %s.part: %s", o->output, strerror(-r));
                *code = FETCH_EXIT_LOCAL;
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
        *code = FETCH_EXIT_OK;
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
        loop_defer_cancel(c->loop, &c->check_step);
        loop_timer_disarm(c->loop, &c->save_timer);
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
        store_abandon(&c->store);
        store_close(&c->store);
        resume_fini(&c->prior);
        bitmap_fini(&c->written);
        free(c->check_buf);
        free(c->state_path);
        if (c->rtt)
                fclose(c->rtt);
        free(c);
        return NULL;
}

/* Ctrl-C and SIGTERM end the fetch like any failure: the resume state is
 * saved and OUTPUT.part kept. */
void client_interrupt(struct client *c, int signo)
{
        if (c->join == JOIN_DONE)
                return;
        client_fail(c, FETCH_EXIT_FAIL, signo == SIGINT ? "interrupted (SIGINT)" : "stopped (SIGTERM)");
        client_drain(c);
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

int client_exit_code(const struct client *c)
{
        return c->exit_code;
}

void client_log_stats(const struct client *c)
{
        const struct member_stats *ms = member_stats(c->mb);
        log_debug("chunks: %llu share, %llu cache, %llu peer, %llu resumed; %llu requests, %llu retries, %llu queries, "
                  "%llu bad, %llu duplicate, %llu dropped",
                  (unsigned long long)ms->chunks_share, (unsigned long long)ms->chunks_cache,
                  (unsigned long long)ms->chunks_peer, (unsigned long long)ms->chunks_resumed,
                  (unsigned long long)ms->requests_sent,
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
