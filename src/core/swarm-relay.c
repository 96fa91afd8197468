/* SPDX-License-Identifier: MIT */
/* The swarm's relay: REQ answered from the cache or by a QUERY to a holder,
 * UPLOADs verified and delivered to the waiters, NOHAVE and HAVE, the
 * pending chunks with their query timers, and the source read again for a
 * chunk nobody holds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/swarm-internal.h"
#include "proto/wire.h"

void swarm_pending_free(struct swarm *s, struct pending *p)
{
        if (p->asked)
                p->asked->busy--;
        heap_remove(&s->timers, &p->timer);
        u32map_del(&s->pending, p->chunk);
        free(p->waiters);
        free(p);
}

static bool is_waiter(const struct pending *p, const struct swarm_member *m)
{
        for (unsigned i = 0; i < p->nwait; i++)
                if (p->waiters[i] == m)
                        return true;
        return false;
}

static int add_waiter(struct pending *p, struct swarm_member *m)
{
        if (p->nwait == p->capwait) {
                unsigned ncap = p->capwait ? p->capwait * 2 : 4;
                struct swarm_member **nw = realloc(p->waiters, ncap * sizeof(*nw));
                if (!nw)
                        return -ENOMEM;
                p->waiters = nw;
                p->capwait = ncap;
        }
        p->waiters[p->nwait++] = m;
        return 0;
}

/* The least busy live holder of chunk other than avoid; avoid itself only
 * when it is the sole holder. O(members): only on a cache miss. */
static struct swarm_member *pick_holder(struct swarm *s, uint32_t chunk, struct swarm_member *avoid)
{
        struct swarm_member *best = NULL;
        for (unsigned i = 0; i < s->nmembers; i++) {
                struct swarm_member *m = s->members[i];
                if (m == avoid || !bitmap_test(&m->have, chunk))
                        continue;
                if (!best || m->busy < best->busy)
                        best = m;
        }
        if (!best && avoid && bitmap_test(&avoid->have, chunk))
                best = avoid;
        return best;
}

/* No live member holds p's chunk and the cache lacks it: the server reads
 * it again from the source (swarm_on_source_reread answers), and only a
 * source gone or changed fails the swarm. No timer meanwhile: the answer
 * always comes. */
static void deliver(struct swarm *s, struct swarm_member *m, uint32_t chunk, struct buf *b, uint16_t flags);

static void lost_chunk(struct swarm *s, struct pending *p, uint64_t now)
{
        (void)now;
        if (p->reading)
                return;
        p->reading = true;
        heap_remove(&s->timers, &p->timer);
        struct swarm_action a = { .type = SWARM_ACT_READ, .chunk = p->chunk };
        swarm_push_action(s, &a);
}

void swarm_on_source_reread(struct swarm *s, uint32_t chunk, struct buf *data, const char *why, uint64_t now)
{
        if ((s->state != SWARM_RELAY && s->state != SWARM_FINISHING) || chunk >= s->manifest.chunk_count)
                return;
        struct pending *p = u32map_get(&s->pending, chunk);
        if (!p || !p->reading)
                return;         /* an upload came first */
        char reason[P2S_MAX_REASON];
        if (!data) {
                snprintf(reason, sizeof(reason), "chunk %u is held by no member and not cached, and the source "
                         "'%s' is gone: %s", chunk, s->name, why ? why : "cannot read it");
                swarm_fail(s, P2S_ERR_SOURCE, reason, now);
                return;
        }
        if (!manifest_verify_chunk(&s->manifest, chunk, data->data, data->len)) {
                snprintf(reason, sizeof(reason), "chunk %u is held by no member and not cached, and the source "
                         "'%s' changed since it was served", chunk, s->name);
                swarm_fail(s, P2S_ERR_SOURCE, reason, now);
                return;
        }
        s->stats.source_rereads++;
        lru_put(s->cache, cache_key(s, chunk), data);
        for (unsigned i = 0; i < p->nwait; i++)
                deliver(s, p->waiters[i], chunk, data, P2S_F_FROM_CACHE);
        swarm_pending_free(s, p);
}

/* Sends the query for p (again). Returns false when the swarm failed. */
bool swarm_ask(struct swarm *s, struct pending *p, uint64_t now)
{
        if (p->reading)
                return true;
        /* after a few lost datagrams the retry takes the connection that cannot lose it */
        bool reliable = p->tries >= s->cfg.escalate_after;
        if (s->cfg.query == SWARM_QUERY_BROADCAST) {
                bool any = false;
                for (unsigned i = 0; i < s->nmembers; i++) {
                        struct swarm_member *m = s->members[i];
                        if (bitmap_test(&m->have, p->chunk))
                                any = true;
                        if (!is_waiter(p, m)) {
                                swarm_send_msg_via(s, m, P2S_QUERY, 0, p->chunk, NULL, reliable);
                                s->stats.queries++;
                        }
                }
                if (!any) {
                        lost_chunk(s, p, now);
                        return true;
                }
        } else {
                struct swarm_member *h = pick_holder(s, p->chunk, p->asked);
                if (!h) {
                        lost_chunk(s, p, now);
                        return true;
                }
                if (p->asked)
                        p->asked->busy--;
                if (p->asked != h)
                        p->asked_at = now;
                p->asked = h;
                p->answered = false;
                /* It holds the chunk for certain when the QUERY reaches it:
                 * it said COMPLETE before, or the chunk is its share, sent
                 * ahead of the manifest on the connection its REQ proves
                 * it read past. A NOHAVE to such a query is a lie. */
                p->asked_sure = h->complete || (s->cfg.ordered_share && h->fetching &&
                                                bitmap_test(&h->share, p->chunk));
                h->busy++;
                swarm_send_msg_via(s, h, P2S_QUERY, 0, p->chunk, NULL, reliable);
                s->stats.queries++;
        }
        /* room was reserved when p was made: this never allocates */
        if (heap_push(&s->timers, &p->timer, now + p->timeout) < 0) {
                swarm_oom(s);
                return false;
        }
        return true;
}

static void deliver(struct swarm *s, struct swarm_member *m, uint32_t chunk, struct buf *b, uint16_t flags)
{
        swarm_send_msg(s, m, P2S_DATA, flags, chunk, b);
        bitmap_set(&m->have, chunk);
        bitmap_clear(&m->claimed, chunk);
        s->stats.bytes_relayed += b->len;
}

void swarm_on_request(struct swarm *s, struct swarm_member *m, uint32_t chunk, bool idle, uint64_t now)
{
        if (s->state != SWARM_RELAY || chunk >= s->manifest.chunk_count) {
                s->stats.dropped_msgs++;
                return;
        }
        heard(m, now);
        m->fetching = true;
        s->stats.requests++;
        struct buf *b = lru_get(s->cache, cache_key(s, chunk));
        /* A chunk it offered with HAVE and now asks for: it lacks it after
         * all (its HAVE lied, or it lost the chunk). Ignoring the REQ as one
         * that crossed a DATA would leave it, and the swarm, waiting for ever. */
        if (bitmap_clear(&m->claimed, chunk))
                bitmap_clear(&m->have, chunk);
        if (bitmap_test(&m->have, chunk)) {
                /* Sent already, so most likely a retried REQ that crossed the
                 * DATA. With nothing queued toward it and the chunk at hand,
                 * sending it again costs little and settles the doubt; a
                 * member that threw its copy away says so with a NOHAVE. */
                if (idle && b) {
                        s->stats.cache_hits++;
                        deliver(s, m, chunk, b, P2S_F_FROM_CACHE);
                }
                return;
        }
        if (b) {
                s->stats.cache_hits++;
                deliver(s, m, chunk, b, P2S_F_FROM_CACHE);
                return;
        }
        struct pending *p = u32map_get(&s->pending, chunk);
        if (p) {
                if (!is_waiter(p, m) && add_waiter(p, m) == 0)
                        s->stats.coalesced++;
                return;
        }
        s->stats.cache_misses++;
        /* every pending chunk has a timer: room for its node first, so that
         * swarm_ask() never fails to set it */
        if (heap_reserve(&s->timers, s->pending.n + 1) < 0)
                return;         /* nothing changed: the member retries */
        p = calloc(1, sizeof(*p));
        if (!p)
                return;
        p->chunk = chunk;
        /* from the measured QUERY->UPLOAD time: a lost datagram on a fast
         * path costs a few round trips, not a fixed half second */
        p->timeout = s->query_rtt.rto;
        p->first_asked = now;
        heap_node_init(&p->timer);
        if (add_waiter(p, m) < 0 || u32map_put(&s->pending, chunk, p) < 0) {
                free(p->waiters);
                free(p);
                return;
        }
        swarm_ask(s, p, now);
}

void swarm_on_upload(struct swarm *s, struct swarm_member *m, uint32_t chunk, struct buf *data, uint64_t now)
{
        if ((s->state != SWARM_RELAY && s->state != SWARM_FINISHING) || chunk >= s->manifest.chunk_count) {
                s->stats.dropped_msgs++;
                return;
        }
        heard(m, now);
        struct pending *p = u32map_get(&s->pending, chunk);
        if (!p) {
                s->stats.dup_uploads++;
                return;
        }
        if (!manifest_verify_chunk(&s->manifest, chunk, data->data, data->len)) {
                /* Bytes other than the chunk are never cached nor relayed.
                 * It does not hold the chunk, whatever it says: the query
                 * goes to another holder or the source; a few of these and
                 * the member is broken or hostile, and leaves. */
                s->stats.bad_uploads++;
                if (++m->strikes >= s->cfg.max_strikes) {
                        swarm_expel(s, m, P2S_ERR_PROTO, "uploaded chunks that do not match the manifest", now);
                        return;
                }
                bitmap_clear(&m->have, chunk);
                if (p->asked == m)
                        swarm_ask(s, p, now);
                return;
        }
        s->stats.uploads++;
        s->stats.bytes_uploaded += data->len;
        if (p->tries == 0 && p->asked == m && now >= p->first_asked)
                rtt_sample(&s->query_rtt, now - p->first_asked);
        bitmap_set(&m->have, chunk);
        bitmap_clear(&m->claimed, chunk);
        lru_put(s->cache, cache_key(s, chunk), data);
        for (unsigned i = 0; i < p->nwait; i++)
                deliver(s, p->waiters[i], chunk, data, 0);
        swarm_pending_free(s, p);
}

bool swarm_wants_upload(const struct swarm *s, const struct swarm_member *m, uint32_t chunk)
{
        if ((s->state != SWARM_RELAY && s->state != SWARM_FINISHING) || chunk >= s->manifest.chunk_count)
                return false;
        /* from any member: a holder asked before a retry may still be the first to finish */
        return u32map_get(&s->pending, chunk) != NULL;
}

void swarm_on_nohave(struct swarm *s, struct swarm_member *m, uint32_t chunk, bool answer, uint64_t now)
{
        if (s->state != SWARM_RELAY || chunk >= s->manifest.chunk_count) {
                s->stats.dropped_msgs++;
                return;
        }
        heard(m, now);
        s->stats.nohaves++;
        struct pending *lp = answer ? u32map_get(&s->pending, chunk) : NULL;
        if (lp && lp->asked == m && lp->asked_sure && s->cfg.query == SWARM_QUERY_DIRECTED) {
                /* no holder of it, whatever it says; the third time a liar */
                s->stats.lying_nohaves++;
                bitmap_clear(&m->have, chunk);
                bitmap_clear(&m->share, chunk);
                if (++m->strikes >= s->cfg.max_strikes) {
                        swarm_expel(s, m, P2S_ERR_PROTO, "answered NOHAVE for chunks it was given", now);
                        return;
                }
                swarm_ask(s, lp, now);
                return;
        }
        if (!answer) {
                /* it discarded a chunk we counted as its own */
                bitmap_clear(&m->have, chunk);
                return;
        }
        struct pending *p = u32map_get(&s->pending, chunk);
        /* a late answer to a query that moved on, or a broadcast: others answer */
        if (!p || p->asked != m || s->cfg.query == SWARM_QUERY_BROADCAST)
                return;
        /* Asked: the chunk we sent it may still be on its way (in a socket
         * buffer, behind a retransmission), so the holder bit stays. Ask
         * someone else now, it again on the timer; members that all lack a
         * chunk they should hold cannot bounce the query for ever. */
        p->answered = true;
        if (++p->nohaves >= 4 * s->cfg.query_tries) {
                lost_chunk(s, p, now);
                return;
        }
        /* once per timer period: holders whose copies are all still on
         * their way would otherwise bounce the query at wire speed */
        if (p->rerouted)
                return;
        struct swarm_member *h = pick_holder(s, chunk, m);
        if (h && h != m) {
                p->rerouted = true;
                swarm_ask(s, p, now);
        } else if (!p->hurried && heap_node_queued(&p->timer) &&
                   p->timer.key > now + s->cfg.query_timeout_min_us) {
                /* It alone holds the chunk, which is on its way to it (its
                 * share behind START, say): ask again soon rather than after a
                 * whole query timeout; once, the timer paces the rest. */
                p->hurried = true;
                /* moves a queued node: cannot fail, but a timer lost is a hang */
                if (heap_push(&s->timers, &p->timer, now + s->cfg.query_timeout_min_us) < 0)
                        swarm_oom(s);
        }
}

void swarm_on_have(struct swarm *s, struct swarm_member *m, uint32_t first, const uint8_t *map, uint32_t len,
                   uint64_t now)
{
        /* before the relay the member cannot know the manifest it resumes against */
        if (s->state != SWARM_RELAY || first >= s->manifest.chunk_count || !map) {
                s->stats.dropped_msgs++;
                return;
        }
        if (!m->claimed.words && bitmap_init(&m->claimed, s->manifest.chunk_count) < 0)
                return;         /* the offer is only a hint: without room for it, ignored */
        uint32_t room = s->manifest.chunk_count - first;
        uint64_t bits = (uint64_t)len * 8 < room ? (uint64_t)len * 8 : room;
        for (uint32_t i = 0; i < bits; i++)
                if ((map[i / 8] & (1u << (i % 8))) && bitmap_set(&m->have, first + i))
                        bitmap_set(&m->claimed, first + i);
        /* nothing pending changes: a query already out stays with its holder,
         * and the next one may pick m */
}

void swarm_query_timed_out(struct swarm *s, struct pending *p, uint64_t now)
{
        p->tries++;
        p->rerouted = false;
        if (p->tries >= s->cfg.query_tries) {
                if (s->cfg.query == SWARM_QUERY_DIRECTED && p->answered) {
                        /* it answers, the chunk is just not there yet: keep asking */
                        p->tries = s->cfg.query_tries - 1;
                } else if (s->cfg.query == SWARM_QUERY_DIRECTED && p->asked &&
                           p->asked->last_heard > p->asked_at && now - p->asked_at < 2 * s->cfg.member_silence_us) {
                        /* It said something (a REQ, a PING) since we first asked
                         * it: not stuck, but slow to read, the QUERY waiting behind
                         * what we queued toward it (a slow downlink behind its
                         * share). The timeouts are measured on the swarm's fast
                         * holders, so 8 of them may be shorter than that queue:
                         * keep asking, at the longest wait, up to twice the
                         * silence that drops a member (one that talks but never
                         * uploads is broken, and must not hold the swarm). */
                        p->tries = s->cfg.query_tries - 1;
                } else if (s->cfg.query == SWARM_QUERY_DIRECTED && p->asked) {
                        /* the last tries went over TCP: a holder that still does
                         * not answer, and says nothing else, is stuck, not unlucky */
                        struct swarm_member *h = p->asked;
                        p->tries = s->cfg.escalate_after;
                        swarm_expel(s, h, P2S_ERR_SWARM, "does not answer queries", now);
                        return;         /* re-asked p elsewhere, or of the source */
                } else {
                        lost_chunk(s, p, now);
                        return;
                }
        }
        p->timeout *= 2;
        if (p->timeout > s->cfg.query_timeout_max_us)
                p->timeout = s->cfg.query_timeout_max_us;
        swarm_ask(s, p, now);
}
