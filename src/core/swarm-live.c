/* SPDX-License-Identifier: MIT */
/* The swarm's liveness and its end: PING, silent members expelled, BYE,
 * strikes turned into expulsion, COMPLETE, DONE and its retries while
 * finishing, and the clock (next deadline, tick) that drives them all. */
#include "core/swarm-internal.h"
#include "proto/wire.h"

void swarm_check_finish(struct swarm *s, uint64_t now)
{
        if (s->state != SWARM_RELAY || s->nmembers == 0)
                return;
        for (unsigned i = 0; i < s->nmembers; i++)
                if (!s->members[i]->complete)
                        return;
        if (!swarm_set_state(s, SWARM_FINISHING))
                return;
        /* twice as a datagram: a lost DONE keeps a member, and the swarm's
         * end, waiting a retry (members send COMPLETE and BYE twice too); a
         * member answers the second copy with nothing, having left */
        for (unsigned i = 0; i < s->nmembers; i++)
                swarm_send_twice(s, s->members[i], P2S_DONE, false);
        s->done_tries_left = s->cfg.done_tries;
        s->done_sent = now;
        s->done_wait = s->done_rtt.rto;
        s->done_deadline = now + s->done_wait;
}

/* Most members answer the first DONE at once: their BYEs time the round
 * trip, and the members whose DONE was lost hear it again a few of those
 * later (at least done_retry_min_us), not a fixed half second later. Only
 * first DONEs are timed (Karn). */
static void time_bye(struct swarm *s, uint64_t now)
{
        if (s->state != SWARM_FINISHING || s->done_tries_left != s->cfg.done_tries || now < s->done_sent)
                return;
        rtt_sample(&s->done_rtt, now - s->done_sent);
        s->done_wait = s->done_rtt.rto;
        s->done_deadline = s->done_sent + s->done_wait;
}

void swarm_on_complete(struct swarm *s, struct swarm_member *m, uint64_t now)
{
        if (s->state != SWARM_RELAY && s->state != SWARM_FINISHING) {
                s->stats.dropped_msgs++;
                return;
        }
        heard(m, now);
        swarm_send_msg(s, m, P2S_COMPLETE, P2S_F_ACK, P2S_NO_CHUNK, NULL);
        if (m->complete)
                return;
        m->complete = true;
        s->stats.completed++;
        bitmap_set_all(&m->have);
        bitmap_fini(&m->claimed);       /* it holds them all now */
        swarm_check_finish(s, now);
}

void swarm_on_bye(struct swarm *s, struct swarm_member *m, uint64_t now)
{
        if (s->state == SWARM_OVER)
                return;
        time_bye(s, now);
        swarm_emit(s, SWARM_ACT_DROP, m, 0);
        swarm_member_remove(s, m, now);
}

void swarm_on_reading(struct swarm *s, struct swarm_member *m, uint64_t now)
{
        m->last_read = now;
}

void swarm_on_ping(struct swarm *s, struct swarm_member *m, bool ack, uint64_t now)
{
        if (s->state == SWARM_OVER)
                return;
        heard(m, now);
        if (ack)
                return;
        /* while gathering the answer says how many have joined: the members'
         * progress shows it, and it costs no message of its own */
        struct buf *b = s->state == SWARM_GATHER ? buf_new(P2S_GATHER_SIZE) : NULL;
        if (b)
                wire_put_gather(b->data, s->nmembers, s->cfg.min_clients);
        swarm_send_msg(s, m, P2S_PING, P2S_F_ACK, P2S_NO_CHUNK, b);
        buf_unref(b);
}

void swarm_expel(struct swarm *s, struct swarm_member *m, int code, const char *why, uint64_t now)
{
        if (s->state == SWARM_OVER)
                return;
        s->stats.expelled++;
        swarm_drop(s, m, code, why);
        swarm_member_remove(s, m, now);
}

static bool live_checked(const struct swarm *s)
{
        return s->cfg.member_silence_us && s->nmembers && (s->state == SWARM_GATHER || s->state == SWARM_DISTRIBUTE || s->state == SWARM_RELAY);
}

/* Members we heard nothing from lately get a PING, over TCP once a datagram
 * may have been lost; one silent for member_silence_us (stopped, or its
 * connection stalled without closing) is dropped: it would hold up
 * distribution with its backlog, and the DONE of everyone else. */
static void live_tick(struct swarm *s, uint64_t now)
{
        for (unsigned i = s->nmembers; i-- > 0 && s->state != SWARM_OVER;) {
                if (i >= s->nmembers)
                        continue;       /* a removal shrank the array */
                struct swarm_member *m = s->members[i];
                uint64_t quiet = now - m->last_heard;
                /* With a thousand members each waits seconds for the chunks
                 * it asked for, saying nothing meanwhile, and under that load
                 * its answers to our PINGs may be lost with other datagrams:
                 * one that keeps reading what we queued for it is no stopped
                 * process. One that stops reading, or never asked for
                 * anything, is judged on what it says alone. */
                uint64_t unread = now - (m->last_read > m->last_heard ? m->last_read : m->last_heard);
                if (unread >= s->cfg.member_silence_us) {
                        swarm_expel(s, m, P2S_ERR_SWARM, "silent", now);
                } else if (quiet >= s->cfg.ping_after_us && now - m->last_ping >= s->cfg.ping_after_us) {
                        m->last_ping = now;
                        swarm_send_msg_via(s, m, P2S_PING, 0, P2S_NO_CHUNK, NULL, quiet >= 2 * s->cfg.ping_after_us);
                }
        }
        s->live_deadline = now + s->cfg.ping_after_us / 2;
}

uint64_t swarm_next_deadline(const struct swarm *s)
{
        uint64_t d = UINT64_MAX;
        if (s->state == SWARM_GATHER && s->have_first && !s->start_requested)
                d = s->gather_deadline;
        struct heap_node *top = heap_top(&s->timers);
        if (top && top->key < d)
                d = top->key;
        if (s->state == SWARM_FINISHING && s->done_deadline < d)
                d = s->done_deadline;
        if (live_checked(s) && s->live_deadline < d)
                d = s->live_deadline;
        return d;
}

void swarm_on_tick(struct swarm *s, uint64_t now)
{
        if (s->state == SWARM_GATHER && s->have_first && !s->start_requested && now >= s->gather_deadline)
                swarm_request_start(s);
        struct heap_node *top;
        while (s->state != SWARM_OVER && (top = heap_top(&s->timers)) && top->key <= now) {
                heap_pop(&s->timers);
                swarm_query_timed_out(s, container_of(top, struct pending, timer), now);
        }
        if (live_checked(s) && now >= s->live_deadline)
                live_tick(s, now);
        if (s->state == SWARM_FINISHING && now >= s->done_deadline) {
                if (s->done_tries_left == 0) {
                        /* members that never said BYE: done is done */
                        for (unsigned i = 0; i < s->nmembers; i++)
                                swarm_emit(s, SWARM_ACT_DROP, s->members[i], 0);
                        swarm_end_ok(s);
                        return;
                }
                s->done_tries_left--;
                bool reliable = s->cfg.done_tries - s->done_tries_left >= s->cfg.escalate_after;
                for (unsigned i = 0; i < s->nmembers; i++)
                        swarm_send_twice(s, s->members[i], P2S_DONE, reliable);
                /* lost again, or the member is slow: back off, up to done_retry_us */
                s->done_wait = s->done_wait * 2 > s->cfg.done_retry_us ? s->cfg.done_retry_us : s->done_wait * 2;
                s->done_deadline = now + s->done_wait;
        }
}
