/* SPDX-License-Identifier: MIT */
/* Server-side swarm state machine. See swarm.h for the contract and
 * DESIGN.md for the life of a swarm. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/swarm.h"
#include "proto/hash.h"
#include "proto/wire.h"
#include "util/bitmap.h"
#include "util/fifo.h"
#include "util/rtt.h"
#include "util/u32map.h"

#define container_of(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))

struct swarm_member {
        uint32_t id;
        void *ud;
        unsigned slot;          /* index in swarm.members */
        unsigned busy;          /* queries outstanding at this member */
        bool sharer, complete;
        bool dropped;           /* its DROP is queued: its reserved action slot is used */
        bool fetching;          /* it sent a REQ: past MANIFEST_END, so it has every SHARE sent over TCP */
        unsigned strikes;       /* bad uploads and NOHAVEs for chunks it was given */
        uint64_t last_heard, last_ping;
        struct bitmap have;     /* chunks it holds: its share plus all delivered */
        struct bitmap share;    /* chunks given to it as its share */
        struct bitmap claimed;  /* chunks in have only by its HAVE (never sent it); empty until one */
};

/* A chunk some members wait for and the cache lacks. */
struct pending {
        uint32_t chunk;
        struct swarm_member *asked;     /* directed mode: the holder asked last */
        struct swarm_member **waiters;
        unsigned nwait, capwait;
        unsigned tries, nohaves;
        bool answered;          /* the holder asked last said NOHAVE */
        bool rerouted;          /* a NOHAVE moved the query on since the timer last fired */
        bool hurried;           /* a NOHAVE brought the timer forward once */
        bool reading;           /* held by nobody: READ from the source is out, no timer */
        bool asked_sure;        /* the holder asked last surely had the chunk when asked */
        uint64_t timeout;
        uint64_t first_asked;
        struct heap_node timer;
};

struct swarm {
        struct swarm_config cfg;
        uint32_t id;
        char *name;
        enum swarm_state state;
        struct lru *cache;

        struct swarm_member **members;
        unsigned nmembers, capmembers;
        struct swarm_member **sharers;  /* owners of the initial share, in order */
        unsigned nsharers;

        bool start_requested, have_first;
        uint64_t gather_deadline;

        struct manifest manifest;
        bool manifest_ready;
        struct hasher *file_hasher;
        uint32_t source_pos;
        struct buf *start_body;
        int64_t mtime_sec;              /* swarm_set_file_meta: for START */
        uint32_t mtime_nsec, mode;
        struct buf **manifest_parts;
        unsigned nparts;
        struct buf *manifest_end;

        struct u32map pending;  /* chunk -> struct pending */
        struct heap timers;
        struct rtt query_rtt;           /* QUERY to UPLOAD, first tries only (Karn) */

        uint64_t done_deadline;
        unsigned done_tries_left;
        uint64_t live_deadline;         /* next scan for quiet and silent members */

        /* Room for every action that must not be lost is reserved ahead:
         * START and END once each, one DROP per member. */
        struct fifo actions;
        bool ended;             /* END is queued: nothing more is */
        struct swarm_stats stats;
};

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
static void swarm_oom(struct swarm *s);

static void push_action(struct swarm *s, const struct swarm_action *a)
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

static void send_msg_via(struct swarm *s, struct swarm_member *m, uint8_t msg, uint16_t flags,
                         uint32_t chunk, struct buf *body, bool reliable)
{
        struct swarm_action a = {
                .type = SWARM_ACT_SEND, .member_id = m->id, .member_ud = m->ud,
                .msg = msg, .flags = flags, .chunk = chunk, .body = body ? buf_ref(body) : NULL,
                .reliable = reliable,
        };
        push_action(s, &a);
}

static void send_msg(struct swarm *s, struct swarm_member *m, uint8_t msg, uint16_t flags,
                     uint32_t chunk, struct buf *body)
{
        send_msg_via(s, m, msg, flags, chunk, body, false);
}

static void emit(struct swarm *s, enum swarm_act_type type, struct swarm_member *m, int code)
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
static void drop(struct swarm *s, struct swarm_member *m, int code, const char *why)
{
        if (m->dropped)
                return;
        m->dropped = true;
        struct swarm_action a = { .type = SWARM_ACT_DROP, .code = code, .chunk = P2S_NO_CHUNK,
                                  .member_id = m->id, .member_ud = m->ud, .why = why };
        push_critical(s, &a);
}

static void swarm_oom(struct swarm *s)
{
        s->state = SWARM_OVER;
        emit(s, SWARM_ACT_END, NULL, P2S_ERR_BUSY);
}

/* State changes after actions were queued: a failed push may have ended the
 * swarm meanwhile, and over is over. */
static bool set_state(struct swarm *s, enum swarm_state st)
{
        if (s->state == SWARM_OVER)
                return false;
        s->state = st;
        return true;
}

static inline uint64_t cache_key(const struct swarm *s, uint32_t chunk)
{
        return ((uint64_t)s->id << 32) | chunk;
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
        s->id = id;
        s->cache = cache;
        s->name = strdup(name);
        fifo_init(&s->actions, sizeof(struct swarm_action));
        /* START and END */
        if (!s->name || fifo_reserve(&s->actions, 2) < 0)
                return swarm_free(s);
        return s;
}

static void pending_free(struct swarm *s, struct pending *p)
{
        if (p->asked)
                p->asked->busy--;
        heap_remove(&s->timers, &p->timer);
        u32map_del(&s->pending, p->chunk);
        free(p->waiters);
        free(p);
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

/* Every message from a member proves it alive. */
static void heard(struct swarm_member *m, uint64_t now)
{
        m->last_heard = now;
}

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
                send_msg(s, s->members[i], P2S_ERR, P2S_F_FATAL, P2S_NO_CHUNK, body);
        buf_unref(body);
        s->state = SWARM_OVER;
        emit(s, SWARM_ACT_END, NULL, code);     /* no-op if a failed push already ended it */
}

static void end_ok(struct swarm *s)
{
        if (s->state == SWARM_OVER)
                return;
        s->state = SWARM_OVER;
        emit(s, SWARM_ACT_END, NULL, 0);
}

static void send_manifest(struct swarm *s, struct swarm_member *m)
{
        for (unsigned i = 0; i < s->nparts; i++)
                send_msg(s, m, P2S_MANIFEST, 0, i * P2S_MANIFEST_PART, s->manifest_parts[i]);
        send_msg(s, m, P2S_MANIFEST_END, 0, P2S_NO_CHUNK, s->manifest_end);
}

static void request_start(struct swarm *s)
{
        if (s->start_requested)
                return;
        s->start_requested = true;
        emit(s, SWARM_ACT_START, NULL, 0);
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
                        request_start(s);
                break;
        case SWARM_DISTRIBUTE:
                /* a late joiner: no share, the manifest when it is known */
                send_msg(s, m, P2S_START, 0, P2S_NO_CHUNK, s->start_body);
                break;
        case SWARM_RELAY:
                send_msg(s, m, P2S_START, 0, P2S_NO_CHUNK, s->start_body);
                send_manifest(s, m);
                break;
        default:
                break;
        }
        return m;
}

/* ---- distribution -------------------------------------------------------- */

static void finish_distribution(struct swarm *s, uint64_t now);

void swarm_set_file_meta(struct swarm *s, int64_t mtime_sec, uint32_t mtime_nsec, uint32_t mode)
{
        s->mtime_sec = mtime_sec;
        s->mtime_nsec = mtime_nsec < 1000000000u ? mtime_nsec : 0;
        s->mode = mode & 07777u;
}

int swarm_distribute(struct swarm *s, uint64_t file_size, uint64_t now)
{
        if (s->state != SWARM_GATHER)
                return -EINVAL;
        int r = manifest_init(&s->manifest, file_size, s->cfg.chunk_size);
        if (r < 0) {
                swarm_fail(s, P2S_ERR_SOURCE, r == -EFBIG ? "file has too many chunks for this chunk size"
                                                          : "cannot size the manifest", now);
                return r;
        }
        s->file_hasher = hasher_new();
        s->start_body = buf_new(P2S_START_SIZE);
        s->sharers = calloc(s->nmembers ? s->nmembers : 1, sizeof(*s->sharers));
        if (!s->file_hasher || !s->start_body || !s->sharers) {
                swarm_fail(s, P2S_ERR_BUSY, "out of memory", now);
                return -ENOMEM;
        }
        struct p2s_start st = { .file_size = file_size, .chunk_size = s->cfg.chunk_size,
                                .chunk_count = s->manifest.chunk_count, .mtime_sec = s->mtime_sec,
                                .mtime_nsec = s->mtime_nsec, .mode = s->mode };
        wire_put_start(s->start_body->data, &st);
        for (unsigned i = 0; i < s->nmembers; i++) {
                struct swarm_member *m = s->members[i];
                if (bitmap_init(&m->have, s->manifest.chunk_count) < 0) {
                        swarm_fail(s, P2S_ERR_BUSY, "out of memory", now);
                        return -ENOMEM;
                }
                if (bitmap_init(&m->share, s->manifest.chunk_count) < 0) {
                        swarm_fail(s, P2S_ERR_BUSY, "out of memory", now);
                        return -ENOMEM;
                }
                m->sharer = true;
                s->sharers[s->nsharers++] = m;
                send_msg(s, m, P2S_START, 0, P2S_NO_CHUNK, s->start_body);
        }
        if (!set_state(s, SWARM_DISTRIBUTE))
                return -ENOMEM;
        if (s->manifest.chunk_count == 0)
                finish_distribution(s, now);
        return 0;
}

uint32_t swarm_source_next(const struct swarm *s)
{
        if (s->state != SWARM_DISTRIBUTE)
                return P2S_NO_CHUNK;
        return s->source_pos;
}

/* With every sharer gone mid-distribution the rest of the file would have no
 * home but the cache; the members still here take over the share. */
static void adopt_sharers(struct swarm *s)
{
        free(s->sharers);
        s->sharers = calloc(s->nmembers ? s->nmembers : 1, sizeof(*s->sharers));
        s->nsharers = 0;
        if (!s->sharers)
                return;
        for (unsigned i = 0; i < s->nmembers; i++) {
                s->members[i]->sharer = true;
                s->sharers[s->nsharers++] = s->members[i];
        }
}

void swarm_source_chunk(struct swarm *s, uint32_t idx, struct buf *data, uint64_t now)
{
        if (s->state != SWARM_DISTRIBUTE || idx != s->source_pos)
                return;
        if (!data || data->len != manifest_chunk_len(&s->manifest, idx)) {
                swarm_fail(s, P2S_ERR_SOURCE, "source file changed size while being read", now);
                return;
        }
        hash_sha256(data->data, data->len, s->manifest.hashes[idx]);
        hasher_update(s->file_hasher, data->data, data->len);
        lru_put(s->cache, cache_key(s, idx), data);
        if (s->nsharers == 0)
                adopt_sharers(s);
        unsigned owners = s->cfg.replicas < s->nsharers ? s->cfg.replicas : s->nsharers;
        for (unsigned r = 0; r < owners; r++) {
                struct swarm_member *o = s->sharers[(idx + r) % s->nsharers];
                send_msg(s, o, P2S_SHARE, 0, idx, data);
                bitmap_set(&o->have, idx);
                bitmap_set(&o->share, idx);
                s->stats.bytes_shared += data->len;
        }
        s->source_pos++;
        if (s->source_pos == s->manifest.chunk_count)
                finish_distribution(s, now);
}

static void check_finish(struct swarm *s, uint64_t now);

static void finish_distribution(struct swarm *s, uint64_t now)
{
        struct manifest *mf = &s->manifest;
        if (s->state != SWARM_DISTRIBUTE)
                return;
        hasher_final(s->file_hasher, mf->file_hash);
        s->nparts = (mf->chunk_count + P2S_MANIFEST_PART - 1) / P2S_MANIFEST_PART;
        s->manifest_parts = calloc(s->nparts ? s->nparts : 1, sizeof(*s->manifest_parts));
        s->manifest_end = buf_new(P2S_HASH_SIZE);
        if (!s->manifest_parts || !s->manifest_end) {
                swarm_fail(s, P2S_ERR_BUSY, "out of memory", now);
                return;
        }
        memcpy(s->manifest_end->data, mf->file_hash, P2S_HASH_SIZE);
        for (unsigned i = 0; i < s->nparts; i++) {
                uint32_t first = i * P2S_MANIFEST_PART;
                uint32_t n = mf->chunk_count - first < P2S_MANIFEST_PART ? mf->chunk_count - first
                                                                          : P2S_MANIFEST_PART;
                s->manifest_parts[i] = buf_new((size_t)n * P2S_HASH_SIZE);
                if (!s->manifest_parts[i]) {
                        swarm_fail(s, P2S_ERR_BUSY, "out of memory", now);
                        return;
                }
                memcpy(s->manifest_parts[i]->data, mf->hashes[first], (size_t)n * P2S_HASH_SIZE);
        }
        s->manifest_ready = true;
        set_state(s, SWARM_RELAY);
        for (unsigned i = 0; i < s->nmembers; i++)
                send_manifest(s, s->members[i]);
        check_finish(s, now);
}

/* ---- relay --------------------------------------------------------------- */

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
        push_action(s, &a);
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
        pending_free(s, p);
}

/* Sends the query for p (again). Returns false when the swarm failed. */
static bool ask(struct swarm *s, struct pending *p, uint64_t now)
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
                                send_msg_via(s, m, P2S_QUERY, 0, p->chunk, NULL, reliable);
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
                p->asked = h;
                p->answered = false;
                /* It holds the chunk for certain when the QUERY reaches it:
                 * it said COMPLETE before, or the chunk is its share, sent
                 * ahead of the manifest on the connection its REQ proves
                 * it read past. A NOHAVE to such a query is a lie. */
                p->asked_sure = h->complete || (s->cfg.ordered_share && h->fetching &&
                                                bitmap_test(&h->share, p->chunk));
                h->busy++;
                send_msg_via(s, h, P2S_QUERY, 0, p->chunk, NULL, reliable);
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
        send_msg(s, m, P2S_DATA, flags, chunk, b);
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
         * ask() never fails to set it */
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
        ask(s, p, now);
}

static void member_remove(struct swarm *s, struct swarm_member *m, uint64_t now);

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
                        ask(s, p, now);
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
        pending_free(s, p);
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
                ask(s, lp, now);
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
                ask(s, p, now);
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

static void check_finish(struct swarm *s, uint64_t now)
{
        if (s->state != SWARM_RELAY || s->nmembers == 0)
                return;
        for (unsigned i = 0; i < s->nmembers; i++)
                if (!s->members[i]->complete)
                        return;
        if (!set_state(s, SWARM_FINISHING))
                return;
        for (unsigned i = 0; i < s->nmembers; i++)
                send_msg(s, s->members[i], P2S_DONE, 0, P2S_NO_CHUNK, NULL);
        s->done_tries_left = s->cfg.done_tries;
        s->done_deadline = now + s->cfg.done_retry_us;
}

void swarm_on_complete(struct swarm *s, struct swarm_member *m, uint64_t now)
{
        if (s->state != SWARM_RELAY && s->state != SWARM_FINISHING) {
                s->stats.dropped_msgs++;
                return;
        }
        heard(m, now);
        send_msg(s, m, P2S_COMPLETE, P2S_F_ACK, P2S_NO_CHUNK, NULL);
        if (m->complete)
                return;
        m->complete = true;
        s->stats.completed++;
        bitmap_set_all(&m->have);
        bitmap_fini(&m->claimed);       /* it holds them all now */
        check_finish(s, now);
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

void swarm_on_bye(struct swarm *s, struct swarm_member *m, uint64_t now)
{
        if (s->state == SWARM_OVER)
                return;
        emit(s, SWARM_ACT_DROP, m, 0);
        member_remove(s, m, now);
}

void swarm_on_ping(struct swarm *s, struct swarm_member *m, bool ack, uint64_t now)
{
        if (s->state == SWARM_OVER)
                return;
        heard(m, now);
        if (!ack)
                send_msg(s, m, P2S_PING, P2S_F_ACK, P2S_NO_CHUNK, NULL);
}

void swarm_expel(struct swarm *s, struct swarm_member *m, int code, const char *why, uint64_t now)
{
        if (s->state == SWARM_OVER)
                return;
        s->stats.expelled++;
        drop(s, m, code, why);
        member_remove(s, m, now);
}

/* ---- leaving ------------------------------------------------------------- */

static void member_remove(struct swarm *s, struct swarm_member *m, uint64_t now)
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
                        end_ok(s);
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
                        pending_free(s, p);
                        i--;    /* backward shift may have moved an entry into slot i */
                        continue;
                }
                if (!p->asked && s->cfg.query == SWARM_QUERY_DIRECTED)
                        ask(s, p, now);
        }

        /* a chunk only it held is read again from the source when someone
         * asks for it: nothing is lost yet */
        check_finish(s, now);
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
        member_remove(s, m, now);
}

/* ---- time ---------------------------------------------------------------- */

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
                if (quiet >= s->cfg.member_silence_us) {
                        swarm_expel(s, m, P2S_ERR_SWARM, "silent", now);
                } else if (quiet >= s->cfg.ping_after_us && now - m->last_ping >= s->cfg.ping_after_us) {
                        m->last_ping = now;
                        send_msg_via(s, m, P2S_PING, 0, P2S_NO_CHUNK, NULL, quiet >= 2 * s->cfg.ping_after_us);
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

static void query_timed_out(struct swarm *s, struct pending *p, uint64_t now)
{
        p->tries++;
        p->rerouted = false;
        if (p->tries >= s->cfg.query_tries) {
                if (s->cfg.query == SWARM_QUERY_DIRECTED && p->answered) {
                        /* it answers, the chunk is just not there yet: keep asking */
                        p->tries = s->cfg.query_tries - 1;
                } else if (s->cfg.query == SWARM_QUERY_DIRECTED && p->asked) {
                        /* the last tries went over TCP: a holder that still does
                         * not answer is stuck, not unlucky */
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
        ask(s, p, now);
}

void swarm_on_tick(struct swarm *s, uint64_t now)
{
        if (s->state == SWARM_GATHER && s->have_first && !s->start_requested && now >= s->gather_deadline)
                request_start(s);
        struct heap_node *top;
        while (s->state != SWARM_OVER && (top = heap_top(&s->timers)) && top->key <= now) {
                heap_pop(&s->timers);
                query_timed_out(s, container_of(top, struct pending, timer), now);
        }
        if (live_checked(s) && now >= s->live_deadline)
                live_tick(s, now);
        if (s->state == SWARM_FINISHING && now >= s->done_deadline) {
                if (s->done_tries_left == 0) {
                        /* members that never said BYE: done is done */
                        for (unsigned i = 0; i < s->nmembers; i++)
                                emit(s, SWARM_ACT_DROP, s->members[i], 0);
                        end_ok(s);
                        return;
                }
                s->done_tries_left--;
                bool reliable = s->cfg.done_tries - s->done_tries_left >= s->cfg.escalate_after;
                for (unsigned i = 0; i < s->nmembers; i++)
                        send_msg_via(s, s->members[i], P2S_DONE, 0, P2S_NO_CHUNK, NULL, reliable);
                s->done_deadline = now + s->cfg.done_retry_us;
        }
}

bool swarm_next_action(struct swarm *s, struct swarm_action *out)
{
        return fifo_pop(&s->actions, out);
}
