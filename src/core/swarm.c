/* SPDX-License-Identifier: MIT */
/* Server-side swarm state machine: its life (config, new/free, the
 * accessors), members joining and leaving, and the action queue every other
 * part of it pushes to. See swarm.h for the contract, DESIGN.md for the life
 * of a swarm and swarm-internal.h for which file owns which concern. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "core/swarm-internal.h"
#include "proto/hash.h"
#include "proto/wire.h"

void swarm_config_defaults(struct swarm_config *c)
{
        *c = (struct swarm_config){
                .chunk_size = 64 * 1024,
                .replicas = 1,
                .min_clients = 0,
                .gather_timeout_us = 3000000,
                .query = SWARM_QUERY_DIRECTED,
                .query_timeout_us = 500000,
                .query_timeout_min_us = 50000,
                .query_timeout_max_us = 2000000,
                .query_tries = 8,
                .escalate_after = 2,
                .done_retry_us = 500000,
                .done_retry_min_us = 20000,
                .done_tries = 10,
                .ping_after_us = 1000000,
                .member_silence_us = 10000000,
                .max_strikes = 3,
        };
}

/* ---- actions ------------------------------------------------------------- */

/* The out-of-memory policy of the state machine. An allocation that fails
 * before any state changed drops the event as if it never came (the peer's
 * retry brings it again); one that would lose an action already decided
 * (a SEND that cannot be queued, a query timer that cannot be set) fails
 * the swarm: it is over, and its END, queued in reserved room, tells the
 * caller to close every member. END, START and DROP never need memory. */
void swarm_push_action(struct swarm *s, const struct swarm_action *a)
{
        if (s->ended || fifo_push(&s->actions, a) < 0) {
                buf_unref(a->body);
                if (!s->ended)
                        swarm_oom(s);
        }
}

/* START, DROP and END: into the room reserved for them. */
static void push_critical(struct swarm *s, const struct swarm_action *a)
{
        if (s->ended || fifo_push_reserved(&s->actions, a) < 0)
                buf_unref(a->body);     /* only after END, or with the accounting broken */
}

static void send_action(struct swarm *s, struct swarm_member *m, uint8_t msg, uint16_t flags,
                        uint32_t chunk, struct buf *body, bool reliable, bool twice)
{
        struct swarm_action a = {
                .type = SWARM_ACT_SEND, .member_id = m->id, .member_ud = m->ud,
                .msg = msg, .flags = flags, .chunk = chunk, .body = body ? buf_ref(body) : NULL,
                .reliable = reliable, .twice = twice,
        };
        swarm_push_action(s, &a);
}

void swarm_send_msg_via(struct swarm *s, struct swarm_member *m, uint8_t msg, uint16_t flags,
                        uint32_t chunk, struct buf *body, bool reliable)
{
        send_action(s, m, msg, flags, chunk, body, reliable, false);
}

void swarm_send_twice(struct swarm *s, struct swarm_member *m, uint8_t msg, bool reliable)
{
        send_action(s, m, msg, 0, P2S_NO_CHUNK, NULL, reliable, true);
}

void swarm_send_msg(struct swarm *s, struct swarm_member *m, uint8_t msg, uint16_t flags,
                    uint32_t chunk, struct buf *body)
{
        swarm_send_msg_via(s, m, msg, flags, chunk, body, false);
}

void swarm_emit(struct swarm *s, enum swarm_act_type type, struct swarm_member *m, int code)
{
        struct swarm_action a = { .type = type, .code = code, .chunk = P2S_NO_CHUNK };
        if (m) {
                if (m->dropped)
                        return;         /* one DROP per member: one reserved slot */
                m->dropped = type == SWARM_ACT_DROP;
                a.member_id = m->id;
                a.member_ud = m->ud;
        }
        push_critical(s, &a);
        if (type == SWARM_ACT_END)
                s->ended = true;
}

/* DROP with a reason the caller logs and tells the member. */
void swarm_drop(struct swarm *s, struct swarm_member *m, int code, const char *why)
{
        if (m->dropped)
                return;
        m->dropped = true;
        struct swarm_action a = { .type = SWARM_ACT_DROP, .code = code, .chunk = P2S_NO_CHUNK,
                                  .member_id = m->id, .member_ud = m->ud, .why = why };
        push_critical(s, &a);
}

void swarm_oom(struct swarm *s)
{
        s->state = SWARM_OVER;
        swarm_emit(s, SWARM_ACT_END, NULL, P2S_ERR_BUSY);
}

/* State changes after actions were queued: a failed push may have ended the
 * swarm meanwhile, and over is over. */
bool swarm_set_state(struct swarm *s, enum swarm_state st)
{
        if (s->state == SWARM_OVER)
                return false;
        s->state = st;
        return true;
}

/* ---- life ---------------------------------------------------------------- */

struct swarm *swarm_new(const struct swarm_config *cfg, uint32_t id, const char *name,
                        struct lru *cache)
{
        struct swarm *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->cfg = *cfg;
        if (s->cfg.replicas < 1)
                s->cfg.replicas = 1;
        rtt_init(&s->query_rtt, s->cfg.query_timeout_us, s->cfg.query_timeout_min_us, s->cfg.query_timeout_max_us);
        rtt_init(&s->done_rtt, s->cfg.done_retry_us, s->cfg.done_retry_min_us, s->cfg.done_retry_us);
        s->id = id;
        s->cache = cache;
        s->name = strdup(name);
        fifo_init(&s->actions, sizeof(struct swarm_action));
        /* START and END */
        if (!s->name || fifo_reserve(&s->actions, 2) < 0)
                return swarm_free(s);
        return s;
}

struct swarm *swarm_free(struct swarm *s)
{
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->pending.cap; i++) {
                struct pending *p = s->pending.slot[i].val;
                if (p) {
                        free(p->waiters);
                        free(p);
                }
        }
        u32map_fini(&s->pending);
        heap_fini(&s->timers);
        for (unsigned i = 0; i < s->nmembers; i++) {
                bitmap_fini(&s->members[i]->have);
                bitmap_fini(&s->members[i]->share);
                bitmap_fini(&s->members[i]->claimed);
                free(s->members[i]);
        }
        free(s->members);
        free(s->sharers);
        struct swarm_action a;
        while (fifo_pop(&s->actions, &a))
                buf_unref(a.body);
        fifo_fini(&s->actions);
        for (unsigned i = 0; i < s->nparts; i++)
                buf_unref(s->manifest_parts[i]);
        free(s->manifest_parts);
        buf_unref(s->manifest_end);
        buf_unref(s->start_body);
        hasher_free(s->file_hasher);
        manifest_fini(&s->manifest);
        if (s->cache)
                lru_remove_prefix(s->cache, s->id);
        free(s->name);
        free(s);
        return NULL;
}

uint32_t swarm_id(const struct swarm *s) { return s->id; }
const char *swarm_name(const struct swarm *s) { return s->name; }
uint32_t swarm_chunk_size(const struct swarm *s) { return s->cfg.chunk_size; }
enum swarm_state swarm_state(const struct swarm *s) { return s->state; }
const struct manifest *swarm_manifest(const struct swarm *s) { return s->manifest_ready ? &s->manifest : NULL; }
const struct swarm_stats *swarm_stats(const struct swarm *s) { return &s->stats; }
unsigned swarm_member_count(const struct swarm *s) { return s->nmembers; }
uint32_t swarm_member_id(const struct swarm_member *m) { return m->id; }
bool swarm_member_complete(const struct swarm_member *m) { return m->complete; }

bool swarm_joinable(const struct swarm *s)
{
        return s->state == SWARM_GATHER || s->state == SWARM_DISTRIBUTE || s->state == SWARM_RELAY;
}

/* Ends the swarm for everyone: a fatal ERR to each member, then END. */
void swarm_fail(struct swarm *s, int code, const char *reason, uint64_t now)
{
        (void)now;
        if (s->state == SWARM_OVER)
                return;
        /* Without memory for the ERR body the members learn it from their
         * connections closing on END; an ERR without a body would be malformed. */
        struct buf *body = wire_err_buf((uint16_t)code, reason);
        for (unsigned i = 0; body && i < s->nmembers; i++)
                swarm_send_msg(s, s->members[i], P2S_ERR, P2S_F_FATAL, P2S_NO_CHUNK, body);
        buf_unref(body);
        s->state = SWARM_OVER;
        swarm_emit(s, SWARM_ACT_END, NULL, code);     /* no-op if a failed push already ended it */
}

void swarm_end_ok(struct swarm *s)
{
        if (s->state == SWARM_OVER)
                return;
        s->state = SWARM_OVER;
        swarm_emit(s, SWARM_ACT_END, NULL, 0);
}

void swarm_request_start(struct swarm *s)
{
        if (s->start_requested)
                return;
        s->start_requested = true;
        swarm_emit(s, SWARM_ACT_START, NULL, 0);
}

struct swarm_member *swarm_join(struct swarm *s, uint32_t member_id, void *ud, uint64_t now)
{
        if (!swarm_joinable(s))
                return NULL;
        if (s->nmembers == s->capmembers) {
                unsigned ncap = s->capmembers ? s->capmembers * 2 : 8;
                struct swarm_member **nm = realloc(s->members, ncap * sizeof(*nm));
                if (!nm)
                        return NULL;
                s->members = nm;
                s->capmembers = ncap;
        }
        struct swarm_member *m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        /* its DROP, should it come to that */
        if (fifo_reserve(&s->actions, 1) < 0) {
                free(m);
                return NULL;
        }
        m->id = member_id;
        m->ud = ud;
        m->last_heard = m->last_ping = now;
        if (s->stats.joined++ == 0)
                s->live_deadline = now + s->cfg.ping_after_us;
        if (s->manifest.chunk_count || s->start_body) {
                if (bitmap_init(&m->have, s->manifest.chunk_count) < 0) {
                        fifo_unreserve(&s->actions, 1);
                        free(m);
                        return NULL;
                }
        }
        m->slot = s->nmembers;
        s->members[s->nmembers++] = m;

        switch (s->state) {
        case SWARM_GATHER:
                if (!s->have_first) {
                        s->have_first = true;
                        s->gather_deadline = now + s->cfg.gather_timeout_us;
                }
                if (s->cfg.min_clients && s->nmembers >= s->cfg.min_clients)
                        swarm_request_start(s);
                break;
        case SWARM_DISTRIBUTE:
                /* a late joiner: no share, the manifest when it is known */
                swarm_send_msg(s, m, P2S_START, 0, P2S_NO_CHUNK, s->start_body);
                break;
        case SWARM_RELAY:
                swarm_send_msg(s, m, P2S_START, 0, P2S_NO_CHUNK, s->start_body);
                swarm_send_manifest(s, m);
                break;
        default:
                break;
        }
        return m;
}

/* ---- leaving ------------------------------------------------------------- */

void swarm_member_remove(struct swarm *s, struct swarm_member *m, uint64_t now)
{
        /* unlink first, so every later holder search skips it */
        s->members[m->slot] = s->members[--s->nmembers];
        s->members[m->slot]->slot = m->slot;
        for (unsigned i = 0; i < s->nsharers; i++) {
                if (s->sharers[i] == m) {
                        memmove(&s->sharers[i], &s->sharers[i + 1], (s->nsharers - i - 1) * sizeof(*s->sharers));
                        s->nsharers--;
                        break;
                }
        }

        if (s->state == SWARM_OVER)
                goto out;
        if (s->nmembers == 0) {
                if (s->state == SWARM_FINISHING)
                        swarm_end_ok(s);
                else
                        swarm_fail(s, P2S_ERR_SWARM, "every member left", now);
                goto out;
        }

        /* queries it was asked, and waits it was part of */
        for (size_t i = 0; i < s->pending.cap && s->state != SWARM_OVER; i++) {
                struct pending *p = s->pending.slot[i].val;
                if (!p)
                        continue;
                for (unsigned w = 0; w < p->nwait; w++) {
                        if (p->waiters[w] == m) {
                                p->waiters[w] = p->waiters[--p->nwait];
                                break;
                        }
                }
                if (p->asked == m)
                        p->asked = NULL;
                if (p->nwait == 0) {
                        swarm_pending_free(s, p);
                        i--;    /* backward shift may have moved an entry into slot i */
                        continue;
                }
                if (!p->asked && s->cfg.query == SWARM_QUERY_DIRECTED)
                        swarm_ask(s, p, now);
        }

        /* a chunk only it held is read again from the source when someone
         * asks for it: nothing is lost yet */
        swarm_check_finish(s, now);
out:
        if (!m->dropped)
                fifo_unreserve(&s->actions, 1);
        bitmap_fini(&m->have);
        bitmap_fini(&m->share);
        bitmap_fini(&m->claimed);
        free(m);
}

void swarm_leave(struct swarm *s, struct swarm_member *m, uint64_t now)
{
        swarm_member_remove(s, m, now);
}

bool swarm_next_action(struct swarm *s, struct swarm_action *out)
{
        return fifo_pop(&s->actions, out);
}
