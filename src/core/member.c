/* SPDX-License-Identifier: MIT */
/* Client-side member state machine (see member.h): its life and accessors,
 * the action queue, and the clock (silence, PING, REQ and COMPLETE
 * retries). The server's messages are member-events.c's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/member-internal.h"

void member_config_defaults(struct member_config *c)
{
        *c = (struct member_config){
                .order = MEMBER_ORDER_SEQUENTIAL,
                .window = 32,
                .seed = 1,
                .rto_initial_us = 300000,
                .rto_min_us = 20000,    /* loopback and LAN round trips are well below */
                .rto_max_us = 3000000,
                .silence_timeout_us = 30000000,
                .ping_after_us = 1000000,
                .escalate_after = 2,
        };
}

struct member *member_new(const struct member_config *cfg)
{
        struct member *m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        m->cfg = *cfg;
        if (m->cfg.window < 1)
                m->cfg.window = 1;
        if (m->cfg.window > MEMBER_MAX_WINDOW)
                m->cfg.window = MEMBER_MAX_WINDOW;
        rtt_init(&m->rtt, m->cfg.rto_initial_us, m->cfg.rto_min_us, m->cfg.rto_max_us);
        m->rng = cfg->seed ? cfg->seed : 0x9e3779b97f4a7c15ull;
        fifo_init(&m->actions, sizeof(struct member_action));
        m->fl = calloc(m->cfg.window, sizeof(*m->fl));
        if (!m->fl || fifo_reserve(&m->actions, 2) < 0)
                return member_free(m);
        return m;
}

struct member *member_free(struct member *m)
{
        if (!m)
                return NULL;
        struct member_action a;
        while (fifo_pop(&m->actions, &a))
                buf_unref(a.body);
        fifo_fini(&m->actions);
        bitmap_fini(&m->have);
        bitmap_fini(&m->asked);
        bitmap_fini(&m->share);
        bitmap_fini(&m->parts);
        bitmap_fini(&m->resumed);
        free(m->share_digest);
        free(m->order);
        free(m->fl);
        manifest_fini(&m->mf);
        free(m);
        return NULL;
}

void member_set_reliable_requests(struct member *m, bool reliable) { m->reqs_reliable = reliable; }
enum member_state member_state(const struct member *m) { return m->state; }
const struct manifest *member_manifest(const struct member *m) { return &m->mf; }
const struct member_stats *member_stats(const struct member *m) { return &m->stats; }
uint64_t member_have(const struct member *m) { return bitmap_count(&m->have); }
uint64_t member_total(const struct member *m) { return m->mf.chunk_count; }
bool member_has_chunk(const struct member *m, uint32_t chunk) { return bitmap_test(&m->have, chunk); }
const struct bitmap *member_resumed(const struct member *m) { return &m->resumed; }

enum member_want member_wants_chunk(const struct member *m, uint8_t kind, uint32_t chunk, uint32_t chunk_len)
{
        if ((kind != P2S_SHARE && kind != P2S_DATA) || m->state == MEMBER_WAIT_START || m->state == MEMBER_EXITED)
                return MEMBER_WANT_NO;
        const struct manifest *mf = &m->mf;
        if (chunk >= mf->chunk_count || chunk_len != manifest_chunk_len(mf, chunk))
                return MEMBER_WANT_NO;
        return member_has_chunk(m, chunk) ? MEMBER_WANT_HAVE : MEMBER_WANT_YES;
}

/* ---- actions ------------------------------------------------------------- */

/* The out-of-memory policy: an allocation that fails before any state
 * changed drops the event (the server retries); an action already decided
 * that cannot be queued (a WRITE lost would corrupt the copy) ends the
 * member with EXIT 1. BYE and EXIT are queued in room reserved by
 * member_new, so they always come out, EXIT last. */
static void exit_oom(struct member *m);

void member_push(struct member *m, struct member_action *a)
{
        if (m->state == MEMBER_EXITED || fifo_push(&m->actions, a) < 0) {
                buf_unref(a->body);
                exit_oom(m);    /* no-op once exited */
        }
}

void member_push_critical(struct member *m, struct member_action *a)
{
        if (m->state == MEMBER_EXITED || fifo_push_reserved(&m->actions, a) < 0)
                buf_unref(a->body);
}

/* A state change after actions were queued: a failed push may have ended
 * the member meanwhile, and exited is exited. */
bool member_set_state(struct member *m, enum member_state st)
{
        if (m->state == MEMBER_EXITED)
                return false;
        m->state = st;
        return true;
}

static void send_action(struct member *m, uint8_t msg, uint32_t chunk, bool reliable, bool twice)
{
        struct member_action a = { .type = MEMBER_ACT_SEND, .msg = msg, .chunk = chunk, .reliable = reliable,
                                   .twice = twice };
        member_push(m, &a);
}

void member_send_msg_via(struct member *m, uint8_t msg, uint32_t chunk, bool reliable)
{
        send_action(m, msg, chunk, reliable, false);
}

void member_send_msg(struct member *m, uint8_t msg, uint32_t chunk)
{
        member_send_msg_via(m, msg, chunk, false);
}

/* For the datagrams whose loss costs a timer the whole fetch waits on: a
 * retried REQ (its first copy was lost already), COMPLETE and BYE. Two
 * copies cost one small datagram each and turn a loss p into p^2 (RFC
 * 9002, 6.2.4: a probe goes out twice for the same reason); REQs sent the
 * first time go out once, as a lost one is seen when a later one's answer
 * overtakes it. The copies are harmless: the server answers a second REQ
 * for a chunk on its way or ignores it, echoes every COMPLETE and ignores
 * a BYE from a member already gone. */
void member_send_twice(struct member *m, uint8_t msg, uint32_t chunk, bool reliable)
{
        send_action(m, msg, chunk, reliable, true);
}

void member_simple(struct member *m, enum member_act_type type, uint32_t chunk)
{
        struct member_action a = { .type = type, .chunk = chunk };
        member_push(m, &a);
}

void member_write_chunk(struct member *m, uint32_t chunk, struct buf *data)
{
        struct member_action a = { .type = MEMBER_ACT_WRITE, .chunk = chunk, .body = buf_ref(data) };
        member_push(m, &a);
}

__attribute__((format(printf, 3, 4)))
void member_exit_with(struct member *m, int code, const char *fmt, ...)
{
        if (m->state == MEMBER_EXITED)
                return;
        struct member_action a = { .type = MEMBER_ACT_EXIT, .code = code, .err = m->exit_err,
                                   .chunk = P2S_NO_CHUNK };
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a.reason, sizeof(a.reason), fmt, ap);
        va_end(ap);
        member_push_critical(m, &a);
        m->state = MEMBER_EXITED;
}

static void exit_oom(struct member *m)
{
        member_exit_with(m, MEMBER_EXIT_FAIL, "out of memory");
}

/* ---- time ---------------------------------------------------------------- */

/* The server is never silent for long, whatever the state: it answers
 * our PINGs, and sends its own to a quiet member. A stopped server, or a
 * connection stalled without closing, shows as silence; so the silence
 * timer runs from the first tick on, gathering and after COMPLETE too. */
static uint64_t ping_after(const struct member *m)
{
        uint64_t p = m->cfg.silence_timeout_us / 4;
        if (m->cfg.ping_after_us && m->cfg.ping_after_us < p)
                p = m->cfg.ping_after_us;
        return p ? p : 1;
}

uint64_t member_next_deadline(const struct member *m)
{
        uint64_t d = UINT64_MAX;
        if (m->state == MEMBER_EXITED)
                return d;
        for (unsigned i = 0; i < m->nfl; i++)
                if (m->fl[i].deadline < d)
                        d = m->fl[i].deadline;
        if (m->state == MEMBER_COMPLETE && !m->complete_acked && m->complete_deadline < d)
                d = m->complete_deadline;
        if (!m->clock_started && m->last_heard == 0)
                return 0;       /* start the clock */
        if (m->last_heard + m->cfg.silence_timeout_us < d)
                d = m->last_heard + m->cfg.silence_timeout_us;
        uint64_t since = m->last_ping > m->last_heard ? m->last_ping : m->last_heard;
        if (since + ping_after(m) < d)
                d = since + ping_after(m);
        return d;
}

/* f's REQ again, waiting rto for its answer; over TCP once datagrams
 * failed escalate_after times. */
static void retry_req(struct member *m, struct inflight *f, uint64_t rto, uint64_t now)
{
        f->retries++;
        f->rto = rto;
        f->sent = now;
        f->deadline = now + rto;
        f->seq = ++m->req_seq;
        member_send_twice(m, P2S_REQ, f->chunk, f->retries >= m->cfg.escalate_after);
        m->stats.retries++;
}

void member_on_tick(struct member *m, uint64_t now)
{
        if (m->state == MEMBER_EXITED)
                return;
        if (!m->clock_started && m->last_heard == 0)
                m->last_heard = now;
        m->clock_started = true;
        if (now >= m->last_heard + m->cfg.silence_timeout_us) {
                member_exit_with(m, MEMBER_EXIT_GONE, "server silent for %.1f s: giving up (p2sd stopped or unreachable?)",
                                 (double)m->cfg.silence_timeout_us / 1e6);
                return;
        }
        uint64_t since = m->last_ping > m->last_heard ? m->last_ping : m->last_heard;
        if (now >= since + ping_after(m)) {
                m->last_ping = now;
                member_send_msg_via(m, P2S_PING, P2S_NO_CHUNK, now - m->last_heard >= 2 * ping_after(m));
        }
        bool backed_off = false;
        for (unsigned i = 0; i < m->nfl; i++) {
                struct inflight *f = &m->fl[i];
                if (f->deadline > now)
                        continue;
                if (f->overtaken) {
                        /* a loss detected, not a timeout: the server answers,
                         * so neither the RTO nor this request backs off (and
                         * the RTO of now, not the guess it may have gone out with) */
                        f->overtaken = false;
                        retry_req(m, f, m->rtt.rto, now);
                        continue;
                }
                if (f->seq > m->answered_seq && now - m->last_data < m->rtt.rto) {
                        /* No chunk asked for after this one has come yet, and
                         * chunks still flow: the answers are queued behind those
                         * to earlier requests (the server serves in order), not
                         * lost. Asking again would only fetch it twice. A lost
                         * REQ shows as later chunks overtaking it. */
                        f->deadline = now + m->rtt.rto;
                        continue;
                }
                if (!backed_off) {
                        /* Karn: retried chunks give no sample, so without this the
                         * RTO stays at its start while the queue ahead of our
                         * requests grows, and every request is sent twice */
                        m->rtt.rto = m->rtt.rto * 2 > m->rtt.max ? m->rtt.max : m->rtt.rto * 2;
                        backed_off = true;
                }
                retry_req(m, f, f->rto * 2 > m->cfg.rto_max_us ? m->cfg.rto_max_us : f->rto * 2, now);
        }
        if (m->state == MEMBER_COMPLETE && !m->complete_acked && now >= m->complete_deadline) {
                m->complete_rto = m->complete_rto * 2 > m->cfg.rto_max_us ? m->cfg.rto_max_us
                                                                           : m->complete_rto * 2;
                m->complete_deadline = now + m->complete_rto;
                m->complete_tries++;
                member_send_twice(m, P2S_COMPLETE, P2S_NO_CHUNK, m->complete_tries >= m->cfg.escalate_after);
        }
}

bool member_next_action(struct member *m, struct member_action *out)
{
        return fifo_pop(&m->actions, out);
}
