/* SPDX-License-Identifier: MIT */
/* The swarm (server) state machine, two ways:
 *
 *  - "net": one swarm and N real member state machines wired together in
 *    memory. Messages go through one FIFO (so each direction of each link
 *    stays ordered, as on TCP); when nothing is in flight the simulated clock
 *    jumps to the earliest deadline of anyone, so retries and timeouts run
 *    deterministically and fast. A seeded PRNG can drop control messages.
 *    Every run is bounded by a step count: a bug shows as a failure, not a
 *    hang.
 *  - "rig": the swarm alone, members played by hand, for exact sequences
 *    (which holder is asked, coalescing, the query retry schedule).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/member.h"
#include "core/swarm.h"
#include "proto/hash.h"
#include "proto/wire.h"
#include "util/fifo.h"
#include "util/lru.h"
#include "failmalloc.h"
#include "memfile.h"
#include "runner.h"

#define CHECK(c) do { if (!(c)) ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c); } while (0)

#define CS       256u                   /* P2S_MIN_CHUNK: many chunks, small buffers */
#define T0       1000000ull             /* time starts away from 0 */
#define SEC      1000000ull
#define MAXSTEPS 3000000ull

/* ======================================================================== */
/* net: a whole swarm in memory                                              */
/* ======================================================================== */

#define MSG_CLOSE 0     /* not a wire type: the member's TCP connection closed */

struct net;

struct peer {
        struct net *net;
        unsigned idx;
        uint32_t id;
        struct member *m;
        struct swarm_member *sm;
        bool joined;            /* swarm_join done */
        bool gone;              /* the swarm forgot it: left, dropped, BYE */
        bool dead;              /* killed by the test: no deliveries, no ticks */
        bool dropped;           /* by a DROP action */
        int drop_code;
        bool exited;
        int exit_code;
        char reason[P2S_MAX_REASON + 64];
        uint64_t exit_time;
        bool finalized;
        uint8_t *out;           /* the output "file" */
        uint64_t out_size;
        uint16_t last_err;
        unsigned nerr, nfatal;
        /* misbehaviour knobs */
        bool swallow_uploads, corrupt_uploads;
        bool stopped;           /* SIGSTOPped: receives nothing, answers nothing, no ticks */
        bool nohave_liar;       /* answers every QUERY with NOHAVE */
        unsigned queries_unread;        /* the first this many QUERYs to it for chunk 0 are never
                                         * read (a slow downlink) */
        uint32_t corrupt_share;         /* chunk whose SHARE arrives damaged */
        unsigned uploads_swallowed, sent_after_dead;
};

struct msg {
        unsigned peer;
        bool to_swarm;
        uint8_t type;
        uint16_t flags;
        uint32_t chunk;
        struct buf *body;
        bool reliable;          /* over the member's TCP connection */
};

struct net {
        struct swarm_config scfg;
        struct member_config mcfg;
        size_t cache_bytes;
        struct swarm *s;
        struct lru *cache;
        struct peer *p;
        unsigned n;             /* peers allocated (joined or not) */
        struct memfile f;
        uint64_t now;
        struct fifo q;
        /* loss */
        double loss;
        uint64_t rng;
        unsigned drop_first[P2S_TYPE_MAX + 1];  /* drop the first k of a type, then none */
        bool lose_first_copy[P2S_TYPE_MAX + 1]; /* lose the first datagram of every send of a type */
        uint32_t lose_query_chunk;              /* drop the first lose_query_n QUERYs for it */
        unsigned lose_query_n;
        /* outcome */
        bool ended;
        int end_code;
        uint64_t end_time, start_time;
        unsigned nstart;
        /* accounting */
        unsigned *share_cnt;    /* per chunk */
        uint8_t *share_to, *data_to;    /* [peer * count + chunk] */
        uint64_t nsent[P2S_TYPE_MAX + 1];       /* swarm -> members, by type */
        uint64_t steps, lost_msgs, bad_relays, data_sent;
        /* knobs */
        int late_join_at;       /* join peer late_peer after feeding this many source chunks */
        unsigned late_peer;
        int source_fail_at;     /* call swarm_fail instead of feeding this chunk */
        int source_short_at;    /* feed this chunk one byte short */
        bool source_gone;       /* a READ finds the file gone */
        bool source_changed;    /* a READ finds other bytes */
        unsigned nreads;        /* READ actions */
        bool allow_dups;        /* long waits: a retried REQ that crossed the DATA gets it twice */
};

static uint64_t xorshift(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

/* n peers, a file of size bytes, a cache of cache_chunks chunks. Configs are
 * the defaults; change t->scfg / t->mcfg before net_setup. */
static struct net *net_new(unsigned n, uint64_t size, size_t cache_chunks)
{
        struct net *t = calloc(1, sizeof(*t));
        ck_assert_ptr_nonnull(t);
        swarm_config_defaults(&t->scfg);
        t->scfg.chunk_size = CS;
        t->scfg.ordered_share = true;   /* one ordered queue per member, as --control udp */
        t->scfg.min_clients = n;
        member_config_defaults(&t->mcfg);
        t->cache_bytes = cache_chunks * CS;
        t->n = n;
        t->now = T0;
        t->rng = 0x2545f4914f6cdd1dull;
        t->late_join_at = -1;
        t->source_fail_at = -1;
        t->source_short_at = -1;
        t->lose_query_chunk = P2S_NO_CHUNK;
        memfile_make(&t->f, size, CS, size + n);
        fifo_init(&t->q, sizeof(struct msg));
        return t;
}

static void net_setup(struct net *t)
{
        t->cache = lru_new(t->cache_bytes);
        ck_assert_ptr_nonnull(t->cache);
        t->s = swarm_new(&t->scfg, 7, "file", t->cache);
        ck_assert_ptr_nonnull(t->s);
        t->p = calloc(t->n, sizeof(*t->p));
        ck_assert_ptr_nonnull(t->p);
        size_t cells = (size_t)t->n * (t->f.count ? t->f.count : 1);
        t->share_cnt = calloc(t->f.count ? t->f.count : 1, sizeof(unsigned));
        t->share_to = calloc(cells, 1);
        t->data_to = calloc(cells, 1);
        ck_assert(t->share_cnt && t->share_to && t->data_to);
        for (unsigned i = 0; i < t->n; i++) {
                struct peer *p = &t->p[i];
                struct member_config mc = t->mcfg;
                mc.seed = 1000 + i;
                p->net = t;
                p->idx = i;
                p->id = 100 + i;
                p->corrupt_share = P2S_NO_CHUNK;
                p->m = member_new(&mc);
                ck_assert_ptr_nonnull(p->m);
        }
}

static void net_free(struct net *t)
{
        struct msg g;
        while (fifo_pop(&t->q, &g))
                buf_unref(g.body);
        fifo_fini(&t->q);
        swarm_free(t->s);
        lru_free(t->cache);
        for (unsigned i = 0; i < t->n; i++) {
                member_free(t->p[i].m);
                free(t->p[i].out);
        }
        free(t->p);
        free(t->share_cnt);
        free(t->share_to);
        free(t->data_to);
        memfile_free(&t->f);
        free(t);
}

/* drop_first loses a whole send, every copy of it; random loss one datagram. */
static bool lose_send(struct net *t, uint8_t type)
{
        if (t->drop_first[type]) {
                t->drop_first[type]--;
                t->lost_msgs++;
                return true;
        }
        return false;
}

static bool lose_copy(struct net *t)
{
        if (t->loss > 0 && (double)(xorshift(&t->rng) >> 11) * 0x1p-53 < t->loss) {
                t->lost_msgs++;
                return true;
        }
        return false;
}

static bool is_control(uint8_t type)
{
        switch (type) {
        case P2S_REQ: case P2S_QUERY: case P2S_NOHAVE: case P2S_COMPLETE: case P2S_DONE: case P2S_BYE:
                return true;
        default:
                return false;
        }
}

/* Takes body's reference. reliable: the sender chose the member's TCP
 * connection, which loses nothing. twice: a datagram sent twice, each copy
 * lost or delivered on its own, as on a lossy path. */
static void enqueue_copies(struct net *t, struct peer *p, bool to_swarm, uint8_t type, uint16_t flags,
                           uint32_t chunk, struct buf *body, bool reliable, bool twice)
{
        unsigned copies = !reliable && twice ? 2 : 1;
        if (!reliable && type == P2S_QUERY && chunk == t->lose_query_chunk && t->lose_query_n) {
                t->lose_query_n--;
                t->lost_msgs++;
                copies = 0;
        }
        if (!reliable && is_control(type) && lose_send(t, type))
                copies = 0;
        for (unsigned i = 0; i < copies; i++) {
                if (!reliable && is_control(type) && (lose_copy(t) || (i == 0 && t->lose_first_copy[type])))
                        continue;
                struct msg g = { .peer = p->idx, .to_swarm = to_swarm, .type = type, .flags = flags,
                                 .chunk = chunk, .body = buf_ref(body), .reliable = reliable };
                CHECK(fifo_push(&t->q, &g) == 0);
        }
        buf_unref(body);
}

static void enqueue_via(struct net *t, struct peer *p, bool to_swarm, uint8_t type, uint16_t flags,
                        uint32_t chunk, struct buf *body, bool reliable)
{
        enqueue_copies(t, p, to_swarm, type, flags, chunk, body, reliable, false);
}

static void enqueue(struct net *t, struct peer *p, bool to_swarm, uint8_t type, uint16_t flags,
                    uint32_t chunk, struct buf *body)
{
        enqueue_via(t, p, to_swarm, type, flags, chunk, body, false);
}

static void check_lru(struct net *t)
{
        CHECK(lru_bytes(t->cache) <= lru_max_bytes(t->cache));
}

static void net_join(struct net *t, unsigned i)
{
        struct peer *p = &t->p[i];
        CHECK(!p->joined);
        p->sm = swarm_join(t->s, p->id, p, t->now);
        CHECK(p->sm);
        CHECK(swarm_member_id(p->sm) == p->id);
        p->joined = true;
}

/* The swarm asked for the source: read it once, in order. */
static void distribute(struct net *t)
{
        t->start_time = t->now;
        int r = swarm_distribute(t->s, t->f.size, t->now);
        CHECK(r == 0);
        uint32_t c;
        int fed = 0;
        while ((c = swarm_source_next(t->s)) != P2S_NO_CHUNK) {
                if (fed == t->late_join_at)
                        net_join(t, t->late_peer);
                if ((int)c == t->source_fail_at) {
                        swarm_fail(t->s, P2S_ERR_SOURCE, "read error", t->now);
                        break;
                }
                struct buf *b = memfile_chunk(&t->f, c);
                if ((int)c == t->source_short_at)
                        b->len--;
                swarm_source_chunk(t->s, c, b, t->now);
                buf_unref(b);
                check_lru(t);
                fed++;
        }
}

static void on_swarm_send(struct net *t, struct peer *p, struct swarm_action *a)
{
        struct buf *body = a->body;
        a->body = NULL;
        CHECK(a->msg >= 1 && a->msg <= P2S_TYPE_MAX);
        t->nsent[a->msg]++;
        if (p->dead)
                p->sent_after_dead++;
        size_t cell = (size_t)p->idx * t->f.count + a->chunk;
        switch (a->msg) {
        case P2S_SHARE:
                CHECK(a->chunk < t->f.count);
                t->share_cnt[a->chunk]++;
                t->share_to[cell]++;
                if (!memfile_chunk_equal(&t->f, a->chunk, body))
                        t->bad_relays++;
                if (p->corrupt_share == a->chunk) {
                        struct buf *b = buf_new(body->len);
                        memcpy(b->data, body->data, body->len);
                        b->data[b->len / 2] ^= 0x5a;
                        buf_unref(body);
                        body = b;
                }
                break;
        case P2S_DATA:
                CHECK(a->chunk < t->f.count);
                t->data_to[cell]++;
                t->data_sent++;
                /* the server relays only verified bytes */
                if (!memfile_chunk_equal(&t->f, a->chunk, body))
                        t->bad_relays++;
                break;
        default:
                break;
        }
        enqueue_copies(t, p, false, a->msg, a->flags, a->chunk, body, a->reliable, a->twice);
}

static void pump_swarm(struct net *t)
{
        struct swarm_action a;
        while (swarm_next_action(t->s, &a)) {
                struct peer *p = a.member_ud;
                switch (a.type) {
                case SWARM_ACT_SEND:
                        CHECK(p && p->id == a.member_id);
                        on_swarm_send(t, p, &a);
                        break;
                case SWARM_ACT_START:
                        t->nstart++;
                        distribute(t);
                        break;
                case SWARM_ACT_DROP:
                        CHECK(p && p->id == a.member_id);
                        CHECK(!p->gone);
                        p->gone = p->dropped = true;
                        p->drop_code = a.code;
                        /* the server closes the connection after what it queued */
                        enqueue(t, p, false, MSG_CLOSE, 0, P2S_NO_CHUNK, NULL);
                        break;
                case SWARM_ACT_READ: {
                        CHECK(a.chunk < t->f.count);
                        t->nreads++;
                        struct buf *b = t->source_gone ? NULL : memfile_chunk(&t->f, a.chunk);
                        if (b && t->source_changed)
                                b->data[0] ^= 1;
                        swarm_on_source_reread(t->s, a.chunk, b, "No such file or directory", t->now);
                        buf_unref(b);
                        break;
                }
                case SWARM_ACT_END:
                        CHECK(!t->ended);
                        t->ended = true;
                        t->end_code = a.code;
                        t->end_time = t->now;
                        break;
                }
                buf_unref(a.body);
        }
        check_lru(t);
}

static void pump_member(struct net *t, struct peer *p)
{
        struct member_action a;
        while (member_next_action(p->m, &a)) {
                switch (a.type) {
                case MEMBER_ACT_SEND:
                        CHECK(a.msg == P2S_REQ || a.msg == P2S_NOHAVE || a.msg == P2S_COMPLETE ||
                              a.msg == P2S_BYE || a.msg == P2S_PING);
                        enqueue_copies(t, p, true, a.msg, a.flags, a.chunk, NULL, a.reliable, a.twice);
                        break;
                case MEMBER_ACT_PREPARE:
                        CHECK(!p->out);
                        CHECK(a.file_size == t->f.size);
                        p->out = calloc(1, a.file_size ? a.file_size : 1);
                        p->out_size = a.file_size;
                        break;
                case MEMBER_ACT_WRITE:
                        CHECK(p->out && a.chunk < t->f.count && a.body && a.body->len == memfile_clen(&t->f, a.chunk));
                        memcpy(p->out + (uint64_t)a.chunk * CS, a.body->data, a.body->len);
                        break;
                case MEMBER_ACT_UPLOAD: {
                        CHECK(p->out && a.chunk < t->f.count);
                        if (p->swallow_uploads) {
                                p->uploads_swallowed++;
                                break;
                        }
                        struct buf *b = buf_new(memfile_clen(&t->f, a.chunk));
                        memcpy(b->data, p->out + (uint64_t)a.chunk * CS, b->len);
                        if (p->corrupt_uploads)
                                b->data[0] ^= 0xff;
                        enqueue(t, p, true, P2S_UPLOAD, 0, a.chunk, b);
                        break;
                }
                case MEMBER_ACT_VERIFY: {
                        uint8_t h[P2S_HASH_SIZE];
                        CHECK(p->out);
                        hash_sha256(p->out, p->out_size, h);
                        member_on_verified(p->m, h, t->now);
                        break;
                }
                case MEMBER_ACT_FINALIZE:
                        p->finalized = true;
                        break;
                case MEMBER_ACT_RTT:
                        break;
                case MEMBER_ACT_HAVE:
                        CHECK(false);   /* nobody here resumes an earlier run */
                        break;
                case MEMBER_ACT_EXIT:
                        CHECK(!p->exited);
                        p->exited = true;
                        p->exit_code = a.code;
                        p->exit_time = t->now;
                        snprintf(p->reason, sizeof(p->reason), "%s", a.reason);
                        /* the process ends: its connection closes after what it sent */
                        enqueue(t, p, true, MSG_CLOSE, 0, P2S_NO_CHUNK, NULL);
                        break;
                }
                buf_unref(a.body);
        }
}

static void to_member(struct net *t, struct peer *p, struct msg *g)
{
        uint64_t now = t->now;
        struct member *m = p->m;

        switch (g->type) {
        case MSG_CLOSE:
                member_on_disconnect(m, "the server closed the connection", now);
                break;
        case P2S_START: {
                struct p2s_start st;
                CHECK(g->body && g->body->len == P2S_START_SIZE);
                wire_get_start(g->body->data, &st);
                member_on_start(m, &st, now);
                break;
        }
        case P2S_SHARE:
                member_on_share(m, g->chunk, g->body, now);
                break;
        case P2S_MANIFEST:
                CHECK(g->body && g->body->len % P2S_HASH_SIZE == 0);
                member_on_manifest(m, g->chunk, g->body->data, g->body->len / P2S_HASH_SIZE, now);
                break;
        case P2S_MANIFEST_END:
                CHECK(g->body && g->body->len == P2S_HASH_SIZE);
                member_on_manifest_end(m, g->body->data, now);
                break;
        case P2S_DATA:
                member_on_data(m, g->chunk, g->body, g->flags & P2S_F_FROM_CACHE, now);
                break;
        case P2S_QUERY:
                if (p->queries_unread && g->chunk == 0) {
                        p->queries_unread--;
                        return;
                }
                if (p->nohave_liar) {
                        enqueue(t, p, true, P2S_NOHAVE, P2S_F_ACK, g->chunk, NULL);
                        return;
                }
                member_on_query(m, g->chunk, now);
                break;
        case P2S_PING:
                member_on_ping(m, g->flags & P2S_F_ACK, g->reliable, now);
                break;
        case P2S_COMPLETE:
                CHECK(g->flags & P2S_F_ACK);
                member_on_complete_ack(m, now);
                break;
        case P2S_DONE:
                member_on_done(m, now);
                break;
        case P2S_ERR: {
                char reason[P2S_MAX_REASON + 1];
                CHECK(g->body);
                uint16_t code = wire_get_err(g->body->data, g->body->len, reason, sizeof(reason));
                p->last_err = code;
                p->nerr++;
                if (g->flags & P2S_F_FATAL)
                        p->nfatal++;
                member_on_error(m, code, reason, g->flags & P2S_F_FATAL, now);
                break;
        }
        default:
                ck_abort_msg("unexpected message type %u to a member", g->type);
        }
        pump_member(t, p);
}

/* Nothing queued toward p: what p2sd passes as "idle" (its output queue
 * to the member is empty). */
static bool peer_idle(struct net *t, struct peer *p)
{
        for (size_t i = 0; i < t->q.n; i++) {
                const struct msg *g = (const struct msg *)(t->q.v + ((t->q.head + i) % t->q.cap) * t->q.esz);
                if (!g->to_swarm && g->peer == p->idx)
                        return false;
        }
        return true;
}

static void to_swarm(struct net *t, struct peer *p, struct msg *g)
{
        uint64_t now = t->now;

        /* p2sd ignores a member it dropped, and everything once the swarm is over */
        if (t->ended || p->gone)
                return;
        switch (g->type) {
        case MSG_CLOSE:
                p->gone = true;
                swarm_leave(t->s, p->sm, now);
                break;
        case P2S_REQ:
                swarm_on_request(t->s, p->sm, g->chunk, peer_idle(t, p), now);
                break;
        case P2S_NOHAVE:
                swarm_on_nohave(t->s, p->sm, g->chunk, g->flags & P2S_F_ACK, now);
                break;
        case P2S_PING:
                swarm_on_ping(t->s, p->sm, g->flags & P2S_F_ACK, now);
                break;
        case P2S_COMPLETE:
                swarm_on_complete(t->s, p->sm, now);
                break;
        case P2S_BYE:
                swarm_on_bye(t->s, p->sm, now);
                break;
        case P2S_UPLOAD:
                swarm_on_upload(t->s, p->sm, g->chunk, g->body, now);
                break;
        default:
                ck_abort_msg("unexpected message type %u to the swarm", g->type);
        }
        pump_swarm(t);
}

/* The test kills member i: its process is gone, its connection closes. */
static void net_kill(struct net *t, unsigned i)
{
        struct peer *p = &t->p[i];
        CHECK(p->joined && !p->gone && !p->dead);
        p->dead = true;
        p->gone = true;
        swarm_leave(t->s, p->sm, t->now);
        pump_swarm(t);
}

static uint64_t peer_deadline(struct peer *p)
{
        if (p->dead || p->stopped)
                return UINT64_MAX;
        return member_next_deadline(p->m);
}

typedef bool (*until_fn)(struct net *t, void *arg);

/* Runs until `until` holds (true), or until nothing is in flight and no
 * timer is set (true without `until`), or for at most max_steps (false). */
static bool net_run(struct net *t, uint64_t max_steps, until_fn until, void *arg)
{
        for (uint64_t i = 0; i < max_steps; i++) {
                t->steps++;
                check_lru(t);
                if (until && until(t, arg))
                        return true;
                struct msg g;
                if (fifo_pop(&t->q, &g)) {
                        struct peer *p = &t->p[g.peer];
                        if (g.to_swarm)
                                to_swarm(t, p, &g);
                        else if (!p->dead && !p->stopped)
                                to_member(t, p, &g);
                        buf_unref(g.body);
                        continue;
                }
                uint64_t d = t->ended ? UINT64_MAX : swarm_next_deadline(t->s);
                for (unsigned k = 0; k < t->n; k++) {
                        uint64_t md = peer_deadline(&t->p[k]);
                        if (md < d)
                                d = md;
                }
                if (d == UINT64_MAX)
                        return until == NULL;
                if (d > t->now)
                        t->now = d;
                if (!t->ended && swarm_next_deadline(t->s) <= t->now) {
                        swarm_on_tick(t->s, t->now);
                        pump_swarm(t);
                }
                for (unsigned k = 0; k < t->n; k++) {
                        struct peer *p = &t->p[k];
                        if (peer_deadline(p) <= t->now) {
                                member_on_tick(p->m, t->now);
                                pump_member(t, p);
                        }
                }
        }
        return false;
}

/* Members 0 .. n-1 join, each handled before the next. */
static void net_join_all(struct net *t, unsigned n)
{
        for (unsigned i = 0; i < n; i++) {
                net_join(t, i);
                pump_swarm(t);
        }
}

/* Joins peers [0, n) at the current time and runs to the end. */
static void net_go(struct net *t, unsigned n)
{
        net_join_all(t, n);
        ck_assert_msg(net_run(t, MAXSTEPS, NULL, NULL), "no quiet state after %llu steps",
                      (unsigned long long)t->steps);
}

/* The swarm dropped peer k with code (what the misbehaving-member tests
 * check first; the message names the peer). */
static void assert_dropped(const struct net *t, unsigned k, int code)
{
        ck_assert_msg(t->p[k].dropped, "member %u was not dropped", k);
        ck_assert_msg(t->p[k].drop_code == code, "member %u dropped with %d, not %d", k, t->p[k].drop_code, code);
}

/* The swarm ended with code 0 and every live, undropped peer has exited 0
 * with a byte-exact copy. Each chunk reached each peer at most once. */
static void assert_success(struct net *t)
{
        ck_assert_msg(t->ended, "swarm did not end (state %d)", swarm_state(t->s));
        ck_assert_int_eq(t->end_code, 0);
        ck_assert_int_eq(swarm_state(t->s), SWARM_OVER);
        ck_assert_uint_eq(t->bad_relays, 0);
        for (unsigned i = 0; i < t->n; i++) {
                struct peer *p = &t->p[i];
                /* killed by the test, or dropped for misbehaving (a DROP after
                 * BYE has code 0) */
                if (!p->joined || p->dead || (p->dropped && p->drop_code != 0))
                        continue;
                ck_assert_msg(p->exited && p->exit_code == 0, "member %u: exited %d code %d (%s)", i,
                              p->exited, p->exit_code, p->reason);
                ck_assert(p->finalized);
                ck_assert_uint_eq(p->out_size, t->f.size);
                ck_assert_msg(memcmp(p->out, t->f.data, t->f.size) == 0, "member %u: bytes differ", i);
                ck_assert_uint_eq(member_have(p->m), t->f.count);
                ck_assert_uint_eq(p->nerr, 0);
                for (uint32_t c = 0; c < t->f.count; c++) {
                        size_t cell = (size_t)i * t->f.count + c;
                        /* a damaged share is fetched once more, nothing else */
                        CHECK(t->allow_dups || t->data_to[cell] + t->share_to[cell] <= 1u + (c == p->corrupt_share));
                }
        }
}

static bool until_relay_data(struct net *t, void *arg)
{
        return swarm_state(t->s) == SWARM_RELAY && t->data_sent >= *(uint64_t *)arg;
}

/* Members 0 .. n-1 join and the swarm runs until it relayed `want` chunks. */
static void net_go_until_data(struct net *t, unsigned n, uint64_t want)
{
        net_join_all(t, n);
        ck_assert(net_run(t, MAXSTEPS, until_relay_data, &want));
}

/* ---- completion ----------------------------------------------------------- */

/* N = 1, 5, 20 members, sequential and random order; the file is not a
 * multiple of the chunk size and the cache holds a quarter of it. */
START_TEST(complete_n)
{
        static const unsigned ns[] = { 1, 5, 20 };
        unsigned n = ns[_i % 3];
        enum member_order order = _i < 3 ? MEMBER_ORDER_SEQUENTIAL : MEMBER_ORDER_RANDOM;
        struct net *t = net_new(n, 96 * CS + 100, 24);

        t->mcfg.order = order;
        net_setup(t);
        net_go(t, n);
        assert_success(t);
        const struct swarm_stats *st = swarm_stats(t->s);
        ck_assert_uint_eq(t->nstart, 1);
        ck_assert_uint_eq(st->bytes_shared, t->f.size);
        for (uint32_t c = 0; c < t->f.count; c++)
                ck_assert_uint_eq(t->share_cnt[c], 1);
        /* the share is even: every member owns count / n chunks, give or take one */
        for (unsigned i = 0; i < n; i++) {
                uint64_t k = member_stats(t->p[i].m)->chunks_share;
                ck_assert_uint_ge(k, t->f.count / n);
                ck_assert_uint_le(k, (t->f.count + n - 1) / n);
        }
        if (n == 1) {
                ck_assert_uint_eq(st->requests, 0);
        } else {
                ck_assert_uint_eq(st->requests, st->cache_hits + st->cache_misses + st->coalesced);
                /* one upload or cached copy served several members */
                ck_assert_uint_gt(st->cache_hits + st->coalesced, 0);
                ck_assert_uint_gt(st->uploads, 0);
        }
        ck_assert_uint_eq(st->bad_uploads, 0);
        ck_assert_uint_eq(t->nsent[P2S_DONE], n);
        net_free(t);
}
END_TEST

/* Odd sizes: a last chunk of 1 byte, a file smaller than a chunk, exactly one
 * chunk, and an empty file (no chunk at all). */
START_TEST(complete_sizes)
{
        static const uint64_t sizes[] = { 10 * CS + 1, 100, CS, 0, 2 * CS };
        struct net *t = net_new(4, sizes[_i], 2);

        net_setup(t);
        net_go(t, 4);
        assert_success(t);
        ck_assert_uint_eq(swarm_manifest(t->s)->chunk_count, t->f.count);
        for (uint32_t c = 0; c < t->f.count; c++)
                ck_assert_uint_eq(t->share_cnt[c], 1);
        if (t->f.count == 0)
                ck_assert_uint_eq(t->nsent[P2S_SHARE], 0);
        net_free(t);
}
END_TEST

/* With --replicas R each chunk goes to min(R, N) distinct members. */
START_TEST(replica_counts)
{
        static const unsigned rn[][2] = { { 2, 5 }, { 3, 5 }, { 3, 2 }, { 5, 5 }, { 2, 1 } };
        unsigned r = rn[_i][0], n = rn[_i][1];
        unsigned want = r < n ? r : n;
        struct net *t = net_new(n, 37 * CS + 3, 4);

        t->scfg.replicas = r;
        net_setup(t);
        net_go(t, n);
        assert_success(t);
        for (uint32_t c = 0; c < t->f.count; c++) {
                ck_assert_msg(t->share_cnt[c] == want, "chunk %u shared %u times, want %u", c,
                              t->share_cnt[c], want);
                for (unsigned i = 0; i < n; i++)
                        CHECK(t->share_to[(size_t)i * t->f.count + c] <= 1);
        }
        ck_assert_uint_eq(swarm_stats(t->s)->bytes_shared, t->f.size * want);
        net_free(t);
}
END_TEST

/* A cache of 2 chunks for a 64-chunk file: misses are served by uploads from
 * members, and the cache never holds more than its bound (checked after
 * every step by the harness). */
START_TEST(small_cache)
{
        struct net *t = net_new(6, 64 * CS, 2);

        net_setup(t);
        net_go(t, 6);
        assert_success(t);
        const struct swarm_stats *st = swarm_stats(t->s);
        ck_assert_uint_gt(st->uploads, 0);
        ck_assert_uint_gt(st->cache_misses, 0);
        ck_assert_uint_eq(st->bytes_uploaded, st->uploads * CS);
        ck_assert_uint_le(lru_bytes(t->cache), 2 * CS);
        /* every miss is one query in directed mode when nothing is lost */
        ck_assert_uint_eq(st->queries, st->cache_misses);
        /* all the chunks this swarm left in the shared cache go with it */
        ck_assert_uint_gt(lru_count(t->cache), 0);
        t->s = swarm_free(t->s);
        ck_assert_uint_eq(lru_count(t->cache), 0);
        net_free(t);
}
END_TEST

/* No cache at all (every put is too big): distribution and relay still
 * work, every request is a miss served by an upload. */
START_TEST(no_cache)
{
        struct net *t = net_new(4, 20 * CS + 5, 0);

        net_setup(t);
        net_go(t, 4);
        assert_success(t);
        const struct swarm_stats *st = swarm_stats(t->s);
        ck_assert_uint_eq(st->cache_hits, 0);
        ck_assert_uint_eq(lru_count(t->cache), 0);
        ck_assert_uint_gt(st->uploads, 0);
        net_free(t);
}
END_TEST

/* Both holders of a chunk had their share damaged (R=2): each answers the
 * QUERY with NOHAVE, and each NOHAVE moves the query to the other holder at
 * once, without a timer or a try count. Must not spin forever. */
START_TEST(nohave_pingpong_bounded)
{
        struct net *t = net_new(3, 6 * CS, 1);

        t->scfg.replicas = 2;
        net_setup(t);
        t->p[0].corrupt_share = 0;              /* chunk 0: members 0 and 1 */
        t->p[1].corrupt_share = 0;
        net_join_all(t, 3);
        bool quiet = net_run(t, 50000, NULL, NULL);
        ck_assert_msg(quiet, "still busy after %llu steps at t=%.3f s: %llu QUERYs, %llu NOHAVEs",
                      (unsigned long long)t->steps, (double)(t->now - T0) / 1e6,
                      (unsigned long long)swarm_stats(t->s)->queries, (unsigned long long)swarm_stats(t->s)->nohaves);
        ck_assert(t->ended);
        net_free(t);
}
END_TEST

/* Many members fetching in the same order with a tiny cache ask for the
 * same missing chunks at about the same time: waiters are coalesced. */
START_TEST(coalesced_in_swarm)
{
        struct net *t = net_new(12, 48 * CS, 2);

        t->mcfg.window = 4;
        net_setup(t);
        net_go(t, 12);
        assert_success(t);
        const struct swarm_stats *st = swarm_stats(t->s);
        ck_assert_uint_gt(st->coalesced, 0);
        /* one upload serves every waiter: fewer uploads than misses + coalesced */
        ck_assert_uint_le(st->uploads, st->cache_misses);
        net_free(t);
}
END_TEST

/* Broadcast mode: every member is asked, the first good upload wins, later
 * copies are dropped. */
START_TEST(broadcast)
{
        struct net *t = net_new(5, 40 * CS + 17, 2);

        t->scfg.query = SWARM_QUERY_BROADCAST;
        t->scfg.replicas = 2;
        net_setup(t);
        net_go(t, 5);
        assert_success(t);
        const struct swarm_stats *st = swarm_stats(t->s);
        ck_assert_uint_gt(st->dup_uploads, 0);
        ck_assert_uint_gt(st->nohaves, 0);
        ck_assert_uint_gt(st->queries, st->cache_misses);
        ck_assert_uint_le(st->uploads, st->cache_misses);
        net_free(t);
}
END_TEST

/* ---- members that leave --------------------------------------------------- */

/* A member leaves mid-relay holding chunks that others hold too (R=2): the
 * rest complete and nothing more is sent to it. */
START_TEST(leave_mid_relay)
{
        struct net *t = net_new(5, 60 * CS, 4);
        uint64_t want = 60;

        t->scfg.replicas = 2;
        net_setup(t);
        net_go_until_data(t, 5, want);
        ck_assert(!t->ended);
        net_kill(t, 2);
        ck_assert(!t->ended);
        ck_assert_uint_eq(swarm_member_count(t->s), 4);
        ck_assert(net_run(t, MAXSTEPS, NULL, NULL));
        assert_success(t);
        ck_assert_uint_eq(t->p[2].sent_after_dead, 0);
        net_free(t);
}
END_TEST

/* A member leaves holding the only copy of chunks the tiny cache lost: they
 * are read again from the source, verified against the manifest, and the
 * others complete. */
START_TEST(leave_only_copy_reread)
{
        struct net *t = net_new(4, 64 * CS, 2);
        uint64_t want = 20;

        net_setup(t);
        net_go_until_data(t, 4, want);
        ck_assert(!t->ended);
        net_kill(t, 3);
        ck_assert(!t->ended);
        ck_assert(net_run(t, MAXSTEPS, NULL, NULL));
        assert_success(t);
        ck_assert_uint_gt(t->nreads, 0);
        ck_assert_uint_eq(swarm_stats(t->s)->source_rereads, t->nreads);
        net_free(t);
}
END_TEST

/* The same with the source gone (_i 0) or changed (_i 1) since it was
 * served: the swarm fails with ERR SOURCE saying so, naming the chunk and
 * the file, and nobody exits 0. */
START_TEST(leave_only_copy)
{
        struct net *t = net_new(4, 64 * CS, 2);
        uint64_t want = 20;

        net_setup(t);
        if (_i == 0)
                t->source_gone = true;
        else
                t->source_changed = true;
        net_go_until_data(t, 4, want);
        ck_assert(!t->ended);
        uint64_t left_at = t->now;
        net_kill(t, 3);
        ck_assert(net_run(t, MAXSTEPS, NULL, NULL));
        ck_assert(t->ended);
        ck_assert_int_eq(t->end_code, P2S_ERR_SOURCE);
        ck_assert_uint_gt(t->nreads, 0);
        for (unsigned i = 0; i < 3; i++) {
                ck_assert_ptr_nonnull(strstr(t->p[i].reason, "source 'file'"));
                ck_assert_ptr_nonnull(strstr(t->p[i].reason, _i == 0 ? "is gone" : "changed"));
        }
        ck_assert(net_run(t, MAXSTEPS, NULL, NULL));
        for (unsigned i = 0; i < 3; i++) {
                struct peer *p = &t->p[i];
                ck_assert_msg(p->exited && p->exit_code == MEMBER_EXIT_SERVER, "member %u: exited %d code %d", i, p->exited,
                              p->exit_code);
                ck_assert_uint_eq(p->last_err, P2S_ERR_SOURCE);
                ck_assert_uint_eq(p->nfatal, 1);
                ck_assert_ptr_nonnull(strstr(p->reason, "held by no member"));
                ck_assert_uint_le(p->exit_time, left_at + SEC);
        }
        ck_assert_uint_le(t->end_time, left_at + SEC);
        ck_assert_uint_eq(t->p[3].sent_after_dead, 0);
        net_free(t);
}
END_TEST

/* Every member leaves during the gather: the swarm ends, not successfully. */
START_TEST(all_leave_in_gather)
{
        struct net *t = net_new(3, 10 * CS, 4);

        t->scfg.min_clients = 5;
        net_setup(t);
        for (unsigned i = 0; i < 3; i++)
                net_join(t, i);
        pump_swarm(t);
        ck_assert_int_eq(swarm_state(t->s), SWARM_GATHER);
        for (unsigned i = 0; i < 3; i++)
                net_kill(t, i);
        ck_assert(t->ended);
        ck_assert_int_eq(t->end_code, P2S_ERR_SWARM);
        ck_assert_uint_eq(t->nstart, 0);
        ck_assert_ptr_null(swarm_join(t->s, 999, NULL, t->now));
        net_free(t);
}
END_TEST

/* ---- joining -------------------------------------------------------------- */

/* With min_clients 0 the swarm starts gather_timeout after the first join. */
START_TEST(gather_timeout)
{
        struct net *t = net_new(3, 20 * CS, 4);

        t->scfg.min_clients = 0;
        net_setup(t);
        net_join(t, 0);
        pump_swarm(t);
        t->now += 1000;
        net_join(t, 1);
        net_join(t, 2);
        pump_swarm(t);
        ck_assert_uint_le(swarm_next_deadline(t->s), T0 + t->scfg.gather_timeout_us);
        ck_assert(net_run(t, MAXSTEPS, NULL, NULL));
        ck_assert_uint_eq(t->start_time, T0 + t->scfg.gather_timeout_us);
        assert_success(t);
        net_free(t);
}
END_TEST

/* A member joining after the distribution gets START and the manifest but
 * no share, and fetches the whole file through the relay. */
START_TEST(late_joiner_relay)
{
        struct net *t = net_new(4, 50 * CS + 9, 6);
        uint64_t want = 10;

        t->scfg.min_clients = 3;
        net_setup(t);
        net_go_until_data(t, 3, want);
        net_join(t, 3);
        pump_swarm(t);
        ck_assert(net_run(t, MAXSTEPS, NULL, NULL));
        assert_success(t);
        for (uint32_t c = 0; c < t->f.count; c++) {
                ck_assert_uint_eq(t->share_to[3 * (size_t)t->f.count + c], 0);
                ck_assert_uint_eq(t->data_to[3 * (size_t)t->f.count + c], 1);
        }
        ck_assert_uint_eq(member_stats(t->p[3].m)->chunks_share, 0);
        net_free(t);
}
END_TEST

/* A member joining in the middle of the distribution: no share either, the
 * manifest when the distribution ends. */
START_TEST(late_joiner_distribution)
{
        struct net *t = net_new(4, 30 * CS, 4);

        t->scfg.min_clients = 3;
        t->late_join_at = 11;
        t->late_peer = 3;
        net_setup(t);
        net_go(t, 3);
        ck_assert(t->p[3].joined);
        assert_success(t);
        ck_assert_uint_eq(member_stats(t->p[3].m)->chunks_share, 0);
        for (uint32_t c = 0; c < t->f.count; c++)
                ck_assert_uint_eq(t->share_cnt[c], 1);
        net_free(t);
}
END_TEST

/* ---- members that stop, and liars ------------------------------------------ */

/* A holder SIGSTOPped mid-relay (replicas 2): its queries time out and go
 * to the other holder, it answers no PING and is dropped as silent within
 * member_silence_us (plus a scan), and everyone else completes. */
START_TEST(stopped_holder_rerouted)
{
        struct net *t = net_new(5, 64 * CS, 2);
        uint64_t want = 20;

        t->scfg.replicas = 2;
        t->allow_dups = true;
        net_setup(t);
        net_go_until_data(t, 5, want);
        uint64_t stopped_at = t->now;
        t->p[1].stopped = true;
        ck_assert(net_run(t, MAXSTEPS, NULL, NULL));
        assert_success(t);
        assert_dropped(t, 1, P2S_ERR_SWARM);
        ck_assert_uint_le(t->end_time - stopped_at, t->scfg.member_silence_us + 2 * SEC);
        ck_assert_uint_eq(swarm_stats(t->s)->expelled, 1);
        net_free(t);
}
END_TEST

/* Bug 1: a member SIGSTOPped after its share arrived, with a cache that
 * holds the whole file so that it is never queried: nothing noticed it,
 * and the others, complete, waited for it for good. Now it is pinged,
 * dropped as silent, and the swarm finishes. */
START_TEST(unqueried_member_stopped)
{
        struct net *t = net_new(4, 40 * CS, 40);
        uint64_t want = 1;

        net_setup(t);
        net_go_until_data(t, 4, want);
        uint64_t stopped_at = t->now;
        t->p[2].stopped = true;
        ck_assert(net_run(t, MAXSTEPS, NULL, NULL));
        assert_success(t);
        assert_dropped(t, 2, P2S_ERR_SWARM);
        ck_assert_uint_gt(t->nsent[P2S_PING], 0);
        ck_assert_uint_le(t->end_time - stopped_at, t->scfg.member_silence_us + 2 * SEC);
        net_free(t);
}
END_TEST

/* A member that says nothing (its answers lost, say) but whose connection
 * keeps taking what was queued for it is reading: never dropped as silent
 * while it reads, dropped member_silence_us after it stops. */
struct reader {
        unsigned peer;
        uint64_t until, last;
};

static bool keep_reading(struct net *t, void *arg)
{
        struct reader *r = arg;
        struct peer *p = &t->p[r->peer];
        ck_assert_msg(!p->dropped || t->now >= r->last + t->scfg.member_silence_us,
                      "dropped at %llu while reading", (unsigned long long)t->now);
        if (!p->gone && t->now < r->until && t->now >= r->last + SEC) {
                swarm_on_reading(t->s, p->sm, t->now);
                r->last = t->now;
        }
        return false;
}

START_TEST(reading_member_not_silent)
{
        struct net *t = net_new(4, 40 * CS, 40);
        uint64_t want = 1;

        net_setup(t);
        net_go_until_data(t, 4, want);
        t->p[2].stopped = true;
        struct reader r = { .peer = 2, .until = t->now + 3 * t->scfg.member_silence_us, .last = t->now };
        net_run(t, MAXSTEPS, keep_reading, &r);
        assert_success(t);
        assert_dropped(t, 2, P2S_ERR_SWARM);
        ck_assert_uint_ge(r.last + SEC, r.until);     /* it read to the end */
        ck_assert_uint_ge(t->end_time, r.last + t->scfg.member_silence_us);
        ck_assert_uint_le(t->end_time, r.last + t->scfg.member_silence_us + 2 * SEC);
        net_free(t);
}
END_TEST

/* Bug 1, second half: stopped before START (its share never arrives). It is
 * dropped as silent; the chunks it was given are read again from the
 * source; the others complete. */
START_TEST(stopped_before_start)
{
        struct net *t = net_new(4, 40 * CS, 2);

        net_setup(t);
        t->allow_dups = true;
        t->p[3].stopped = true;
        net_go(t, 4);
        assert_success(t);
        ck_assert(t->p[3].dropped);
        ck_assert_uint_gt(t->nreads, 0);
        ck_assert_uint_le(t->end_time - t->start_time, t->scfg.member_silence_us + 5 * SEC);
        net_free(t);
}
END_TEST

/* Bug 9: a member answering NOHAVE to every QUERY with replicas 1. Each
 * such answer for a chunk it was given clears its holder bit and the chunk
 * comes from the source; the third expels it with ERR PROTO; the honest
 * members complete, none of them on "server silent". */
START_TEST(nohave_liar_expelled)
{
        struct net *t = net_new(6, 60 * CS, 2);

        net_setup(t);
        t->p[1].nohave_liar = true;
        net_go(t, 6);
        assert_success(t);
        const struct swarm_stats *st = swarm_stats(t->s);
        assert_dropped(t, 1, P2S_ERR_PROTO);
        ck_assert_uint_eq(st->lying_nohaves, t->scfg.max_strikes);
        ck_assert_uint_eq(st->expelled, 1);
        ck_assert_uint_gt(t->nreads, 0);
        ck_assert_uint_ge(st->completed, 5);
        ck_assert_uint_eq(st->joined, 6);
        ck_assert_uint_lt(t->end_time - t->start_time, 10 * SEC);
        net_free(t);
}
END_TEST

/* A poisoner with the only copy (replicas 1): its bad uploads are never
 * relayed; each sends the query on (to the source, nobody else has it);
 * the third expels it. */
START_TEST(poisoned_uploads_sole_holder)
{
        struct net *t = net_new(4, 40 * CS, 1);

        net_setup(t);
        t->p[0].corrupt_uploads = true;
        net_go(t, 4);
        assert_success(t);
        const struct swarm_stats *st = swarm_stats(t->s);
        assert_dropped(t, 0, P2S_ERR_PROTO);
        ck_assert_uint_eq(st->bad_uploads, t->scfg.max_strikes);
        ck_assert_uint_eq(t->bad_relays, 0);
        ck_assert_uint_gt(t->nreads, 0);
        net_free(t);
}
END_TEST

/* ---- misbehaving members -------------------------------------------------- */

/* A holder that never answers QUERY, with a second holder for each chunk:
 * the query times out and moves to the other holder; everyone completes. */
START_TEST(silent_holder_other_holders)
{
        struct net *t = net_new(4, 40 * CS, 2);

        t->scfg.replicas = 2;
        net_setup(t);
        t->p[1].swallow_uploads = true;
        net_go(t, 4);
        assert_success(t);
        ck_assert_uint_gt(t->p[1].uploads_swallowed, 0);
        const struct swarm_stats *st = swarm_stats(t->s);
        ck_assert_uint_gt(st->queries, st->cache_misses);       /* re-asked elsewhere */
        net_free(t);
}
END_TEST

/* With query_tries 1 a holder is dropped at its first silence: the silent
 * member is dropped (DROP, P2S_ERR_SWARM), its queries go to the other
 * holders and the swarm completes for the rest. */
START_TEST(silent_holder_dropped)
{
        struct net *t = net_new(4, 40 * CS, 2);

        t->scfg.replicas = 2;
        t->scfg.query_tries = 1;
        net_setup(t);
        t->p[1].swallow_uploads = true;
        net_go(t, 4);
        assert_success(t);
        assert_dropped(t, 1, P2S_ERR_SWARM);
        ck_assert(t->p[1].exited);
        ck_assert_int_eq(t->p[1].exit_code, MEMBER_EXIT_GONE);
        for (unsigned i = 0; i < 4; i++)
                if (i != 1)
                        ck_assert_int_eq(t->p[i].drop_code, 0);
        net_free(t);
}
END_TEST

/* The sole holder of chunks stays silent: after query_tries asks it is
 * dropped, its chunks are read again from the source, and the others
 * complete in bounded time. */
START_TEST(silent_sole_holder)
{
        struct net *t = net_new(3, 30 * CS, 2);

        net_setup(t);
        t->p[2].swallow_uploads = true;
        t->allow_dups = true;
        net_go(t, 3);
        assert_success(t);
        assert_dropped(t, 2, P2S_ERR_SWARM);
        ck_assert_uint_gt(t->nreads, 0);
        ck_assert_uint_lt(t->end_time - t->start_time, 60 * SEC);
        net_free(t);
}
END_TEST

/* A member that uploads wrong bytes is dropped; nothing it sent is relayed
 * and the chunk comes from the other holder. */
START_TEST(bad_upload)
{
        struct net *t = net_new(4, 40 * CS, 2);

        t->scfg.replicas = 2;
        net_setup(t);
        t->p[2].corrupt_uploads = true;
        net_go(t, 4);
        assert_success(t);
        const struct swarm_stats *st = swarm_stats(t->s);
        ck_assert_uint_eq(st->bad_uploads, t->scfg.max_strikes);
        assert_dropped(t, 2, P2S_ERR_PROTO);
        ck_assert_int_eq(t->p[2].exit_code, MEMBER_EXIT_GONE);
        net_free(t);
}
END_TEST

/* A share chunk damaged on the way: the member rejects it against the
 * manifest and requests it like any missing chunk (member.c). The chunk is
 * in the cache the whole time, so the member must complete. */
START_TEST(damaged_share_refetched)
{
        struct net *t = net_new(3, 12 * CS, 64);        /* the cache holds the whole file */

        net_setup(t);
        t->p[1].corrupt_share = 4;                      /* chunk 4 belongs to member 4 % 3 = 1 */
        net_go(t, 3);
        ck_assert_uint_eq(t->share_to[1 * (size_t)t->f.count + 4], 1);
        ck_assert_uint_eq(member_stats(t->p[1].m)->bad_chunks, 1);
        ck_assert_msg(t->p[1].exited && t->p[1].exit_code == 0,
                      "member 1 re-requested its damaged share chunk 4 (cached) and got: exit %d \"%s\"",
                      t->p[1].exit_code, t->p[1].reason);
        assert_success(t);
        net_free(t);
}
END_TEST

/* The source fails while being read: every member gets a fatal ERR SOURCE. */
START_TEST(source_fails)
{
        for (int variant = 0; variant < 2; variant++) {
                struct net *t = net_new(3, 20 * CS, 4);
                if (variant == 0)
                        t->source_fail_at = 7;
                else
                        t->source_short_at = 7;     /* the file shrank under us */
                net_setup(t);
                net_go(t, 3);
                ck_assert(t->ended);
                ck_assert_int_eq(t->end_code, P2S_ERR_SOURCE);
                for (unsigned i = 0; i < 3; i++) {
                        ck_assert_uint_eq(t->p[i].last_err, P2S_ERR_SOURCE);
                        ck_assert(t->p[i].exited);
                        ck_assert_int_eq(t->p[i].exit_code, MEMBER_EXIT_SERVER);
                }
                net_free(t);
        }
}
END_TEST

/* ---- loss ----------------------------------------------------------------- */

/* 10 % and 30 % of control messages lost (REQ, QUERY, NOHAVE, COMPLETE and
 * its ACK, DONE, BYE): the retry timers on both sides recover. */
START_TEST(lossy_control)
{
        static const double loss[] = { 0.10, 0.30 };
        struct net *t = net_new(8, 64 * CS + 31, 4);

        t->loss = loss[_i];
        t->rng ^= (uint64_t)_i << 20;
        t->mcfg.order = MEMBER_ORDER_RANDOM;
        net_setup(t);
        net_go(t, 8);
        assert_success(t);
        ck_assert_uint_gt(t->lost_msgs, 0);
        uint64_t retries = 0;
        for (unsigned i = 0; i < 8; i++)
                retries += member_stats(t->p[i].m)->retries;
        ck_assert_uint_gt(retries, 0);
        const struct swarm_stats *st = swarm_stats(t->s);
        ck_assert_uint_gt(st->queries, st->cache_misses);       /* lost queries were re-sent */
        ck_assert_uint_ge(t->nsent[P2S_DONE], 8);               /* lost DONEs were re-sent */
        ck_assert_uint_lt(t->end_time - T0, 60 * SEC);
        net_free(t);
}
END_TEST

/* n members fetch a file of size (cache of 4 chunks) while the first k
 * messages of type are lost; they must all succeed. The caller checks the
 * retries in t and frees it. */
static struct net *net_losing_first(unsigned n, uint64_t size, enum p2s_type type, unsigned k)
{
        struct net *t = net_new(n, size, 4);

        net_setup(t);
        t->drop_first[type] = k;
        net_go(t, n);
        assert_success(t);
        return t;
}

/* Every first DONE is lost: the swarm sends DONE again after done_retry_us. */
START_TEST(done_retried)
{
        struct net *t = net_losing_first(3, 9 * CS, P2S_DONE, 3);

        ck_assert_uint_eq(t->nsent[P2S_DONE], 6);
        net_free(t);
}
END_TEST

static bool until_finishing(struct net *t, void *arg)
{
        (void)arg;
        return swarm_state(t->s) == SWARM_FINISHING;
}

static bool until_done_sent(struct net *t, void *arg)
{
        return t->nsent[P2S_DONE] >= *(unsigned *)arg;
}

/* COMPLETE, its ACK, DONE and BYE go out as two datagrams each: with the
 * first copy of every one lost the swarm still ends without waiting for
 * a single retry. */
START_TEST(second_copies_end_the_swarm)
{
        struct net *t = net_new(3, 9 * CS, 4);
        net_setup(t);
        t->lose_first_copy[P2S_COMPLETE] = t->lose_first_copy[P2S_DONE] = t->lose_first_copy[P2S_BYE] = true;
        net_join_all(t, 3);
        ck_assert(net_run(t, MAXSTEPS, until_finishing, NULL));
        uint64_t fin = t->now;
        ck_assert(net_run(t, MAXSTEPS, NULL, NULL));
        assert_success(t);
        ck_assert_uint_eq(t->nsent[P2S_DONE], 3);
        ck_assert_uint_eq(t->end_time, fin);
        ck_assert_uint_eq(t->nsent[P2S_COMPLETE], 3);   /* one ACK each: no COMPLETE was retried */
        net_free(t);
}
END_TEST

/* One first DONE of three is lost: the other two members' BYEs time the
 * round trip (0 here, the floor then), so the DONE is sent again
 * done_retry_min_us after the first, not done_retry_us; lost once more,
 * the wait doubles (and the second retry goes over TCP). */
START_TEST(done_retried_after_measured_rtt)
{
        for (unsigned twice = 0; twice < 2; twice++) {
                struct net *t = net_new(3, 9 * CS, 4);
                net_setup(t);
                t->drop_first[P2S_DONE] = 1;    /* nothing but the end sends DONE */
                net_join_all(t, 3);
                ck_assert(net_run(t, MAXSTEPS, until_finishing, NULL));
                uint64_t fin = t->now;
                if (twice) {
                        unsigned first = 3;
                        ck_assert(net_run(t, MAXSTEPS, until_done_sent, &first));
                        t->drop_first[P2S_DONE] = 1;    /* the first retry, a datagram */
                }
                ck_assert(net_run(t, MAXSTEPS, NULL, NULL));
                assert_success(t);
                ck_assert_uint_eq(t->nsent[P2S_DONE], 4 + twice);
                ck_assert_uint_eq(t->end_time - fin, (1 + 2 * twice) * t->scfg.done_retry_min_us);
                net_free(t);
        }
}
END_TEST

/* Lost COMPLETEs and ACKs: the member repeats COMPLETE until it hears the ACK. */
START_TEST(complete_retried)
{
        /* both directions share the type */
        struct net *t = net_losing_first(3, 9 * CS, P2S_COMPLETE, 5);

        ck_assert_uint_eq(t->lost_msgs, 5);
        ck_assert_uint_ge(t->nsent[P2S_COMPLETE], 3);
        net_free(t);
}
END_TEST

/* Lost BYEs: the member has exited; its closed connection ends it for the
 * server just as well. */
START_TEST(bye_lost)
{
        struct net *t = net_losing_first(3, 9 * CS, P2S_BYE, 3);

        ck_assert_uint_eq(t->nsent[P2S_DONE], 3);
        net_free(t);
}
END_TEST

/* Every DONE datagram is lost: after escalate_after tries the swarm sends
 * DONE over the member's TCP connection, which loses nothing, and the swarm
 * ends with every member told. */
START_TEST(done_tries_exhausted)
{
        struct net *t = net_losing_first(2, 4 * CS, P2S_DONE, 1000);

        ck_assert_uint_eq(t->nsent[P2S_DONE], 2 * (1 + t->scfg.escalate_after));
        net_free(t);
}
END_TEST

/* The QUERYs for one chunk would be lost query_tries times in a row (UDP
 * control, 30 % loss: a matter of time on a big file). The holder is alive,
 * its TCP connection open: after escalate_after lost datagrams the query
 * goes over TCP and the holder answers; it is not dropped as silent. */
START_TEST(lost_queries_fail_live_holder)
{
        struct net *t = net_new(3, 12 * CS, 1);

        net_setup(t);
        t->lose_query_chunk = 0;                /* chunk 0 is member 0's alone */
        t->lose_query_n = t->scfg.query_tries;
        net_go(t, 3);
        ck_assert_uint_eq(t->lost_msgs, t->scfg.escalate_after);
        ck_assert_msg(t->end_code == 0 && !(t->p[0].dropped && t->p[0].drop_code),
                      "live member 0 dropped (code %d) after %u lost QUERYs; swarm END %d; member 1: %s",
                      t->p[0].drop_code, t->scfg.query_tries, t->end_code, t->p[1].reason);
        assert_success(t);
        net_free(t);
}
END_TEST

/* A holder behind a slow downlink reads our QUERYs late (here: the first
 * query_tries + 2 never: 0.5 s doubling to 2 s, 17.5 s of asking) but
 * keeps talking (it fetches, it PINGs): it is asked on, at the longest
 * wait, and not expelled; the swarm succeeds. */
START_TEST(slow_holder_not_expelled)
{
        struct net *t = net_new(3, 12 * CS, 1);

        net_setup(t);
        t->p[0].queries_unread = t->scfg.query_tries + 2;       /* chunk 0 is member 0's alone */
        net_go(t, 3);
        ck_assert_msg(t->end_code == 0 && !(t->p[0].dropped && t->p[0].drop_code),
                      "slow member 0 dropped (code %d); swarm END %d", t->p[0].drop_code, t->end_code);
        ck_assert_uint_eq(swarm_stats(t->s)->expelled, 0);
        ck_assert_uint_eq(t->p[0].queries_unread, 0);
        assert_success(t);
        net_free(t);
}
END_TEST

/* The same in broadcast mode: query_tries unanswered rounds end the swarm
 * with ERR LOST "held by no member" while its holder is alive. */
START_TEST(lost_queries_fail_broadcast)
{
        struct net *t = net_new(3, 12 * CS, 1);

        t->scfg.query = SWARM_QUERY_BROADCAST;
        net_setup(t);
        t->lose_query_chunk = 0;
        t->lose_query_n = 2 * t->scfg.query_tries;     /* each round asks the 2 non-waiters */
        net_go(t, 3);
        ck_assert_msg(t->end_code == 0, "swarm END %d after %u lost QUERY rounds; member 1: %s", t->end_code,
                      t->scfg.query_tries, t->p[1].reason);
        assert_success(t);
        net_free(t);
}
END_TEST

/* Lost QUERYs are recovered by the swarm's timer: only escalate_after of
 * them are datagrams that can be lost, the rest go over TCP. */
START_TEST(lost_queries_recovered)
{
        struct net *t = net_new(3, 12 * CS, 1);

        net_setup(t);
        t->lose_query_chunk = 0;
        t->lose_query_n = t->scfg.query_tries - 1;
        net_go(t, 3);
        assert_success(t);
        ck_assert_uint_eq(t->lost_msgs, t->scfg.escalate_after);
        net_free(t);
}
END_TEST

/* ======================================================================== */
/* rig: the swarm alone                                                      */
/* ======================================================================== */

struct rig {
        struct swarm *s;
        struct lru *cache;
        struct memfile f;
        struct swarm_member *m[8];
        unsigned n;
        struct swarm_action *a;
        size_t na, capa;
        uint64_t now;
};

static void rig_collect(struct rig *r)
{
        struct swarm_action a;
        while (swarm_next_action(r->s, &a)) {
                if (a.type == SWARM_ACT_START) {
                        ck_assert_int_eq(swarm_distribute(r->s, r->f.size, r->now), 0);
                        uint32_t c;
                        while ((c = swarm_source_next(r->s)) != P2S_NO_CHUNK) {
                                struct buf *b = memfile_chunk(&r->f, c);
                                swarm_source_chunk(r->s, c, b, r->now);
                                buf_unref(b);
                        }
                }
                if (r->na == r->capa) {
                        r->capa = r->capa ? 2 * r->capa : 64;
                        r->a = realloc(r->a, r->capa * sizeof(*r->a));
                        ck_assert_ptr_nonnull(r->a);
                }
                r->a[r->na++] = a;
        }
}

static void rig_clear(struct rig *r)
{
        for (size_t i = 0; i < r->na; i++)
                buf_unref(r->a[i].body);
        r->na = 0;
}

/* members are ids 100.., ud = index + 1 */
static int rig_idx(const struct swarm_action *a)
{
        return a->member_ud ? (int)((uintptr_t)a->member_ud - 1) : -1;
}

static size_t rig_count(const struct rig *r, uint8_t msg, int who, uint32_t chunk)
{
        size_t k = 0;
        for (size_t i = 0; i < r->na; i++)
                if (r->a[i].type == SWARM_ACT_SEND && r->a[i].msg == msg && (who < 0 || rig_idx(&r->a[i]) == who) &&
                    (chunk == P2S_NO_CHUNK || r->a[i].chunk == chunk))
                        k++;
        return k;
}

/* n members, chunks of CS bytes, a cache of cache_chunks chunks; distributed
 * and in RELAY. */
static void rig_new(struct rig *r, unsigned n, uint32_t chunks, size_t cache_chunks, unsigned replicas,
                    enum swarm_query_mode mode)
{
        struct swarm_config cfg;
        memset(r, 0, sizeof(*r));
        swarm_config_defaults(&cfg);
        cfg.chunk_size = CS;
        cfg.min_clients = n;
        cfg.replicas = replicas;
        cfg.query = mode;
        cfg.member_silence_us = 0;      /* these are about queries: no keep-alives */
        r->now = T0;
        memfile_make(&r->f, (uint64_t)chunks * CS, CS, 99);
        r->cache = lru_new(cache_chunks * CS);
        r->s = swarm_new(&cfg, 3, "rig", r->cache);
        ck_assert_ptr_nonnull(r->s);
        r->n = n;
        for (unsigned i = 0; i < n; i++) {
                r->m[i] = swarm_join(r->s, 100 + i, (void *)(uintptr_t)(i + 1), r->now);
                ck_assert_ptr_nonnull(r->m[i]);
        }
        rig_collect(r);
        ck_assert_int_eq(swarm_state(r->s), SWARM_RELAY);
}

static void rig_free(struct rig *r)
{
        rig_clear(r);
        free(r->a);
        swarm_free(r->s);
        lru_free(r->cache);
        memfile_free(&r->f);
}

static void rig_upload(struct rig *r, unsigned who, uint32_t c, bool corrupt)
{
        struct buf *b = memfile_chunk(&r->f, c);
        if (corrupt)
                b->data[3] ^= 1;
        swarm_on_upload(r->s, r->m[who], c, b, r->now);
        buf_unref(b);
        rig_collect(r);
}

static const struct swarm_action *rig_find(const struct rig *r, enum swarm_act_type type)
{
        for (size_t i = 0; i < r->na; i++)
                if (r->a[i].type == type)
                        return &r->a[i];
        return NULL;
}

static const struct swarm_action *rig_last(const struct rig *r, uint8_t msg)
{
        for (size_t i = r->na; i-- > 0;)
                if (r->a[i].type == SWARM_ACT_SEND && r->a[i].msg == msg)
                        return &r->a[i];
        return NULL;
}

/* Chunk i of 6 with R=2 over A, B, C belongs to members i % 3 and (i+1) % 3;
 * a 1-chunk cache keeps only chunk 5. */
START_TEST(directed_least_busy)
{
        struct rig r;
        enum { A, B, C };
        rig_new(&r, 3, 6, 1, 2, SWARM_QUERY_DIRECTED);
        rig_clear(&r);

        /* chunk 2 (held by C and A, both idle): one QUERY */
        swarm_on_request(r.s, r.m[B], 2, false, r.now);
        rig_collect(&r);
        ck_assert_uint_eq(rig_count(&r, P2S_QUERY, -1, P2S_NO_CHUNK), 1);
        int first = rig_idx(rig_last(&r, P2S_QUERY));
        ck_assert(first == A || first == C);
        /* chunk 0 (held by A and B): if A is busy now, ask B */
        swarm_on_request(r.s, r.m[C], 0, false, r.now);
        rig_collect(&r);
        ck_assert_uint_eq(rig_count(&r, P2S_QUERY, -1, 0), 1);
        ck_assert_int_eq(rig_idx(rig_last(&r, P2S_QUERY)), first == A ? B : A);
        /* chunk 1 (held by B and C): ask whichever of them is not busy yet */
        swarm_on_request(r.s, r.m[A], 1, false, r.now);
        rig_collect(&r);
        ck_assert_uint_eq(rig_count(&r, P2S_QUERY, -1, 1), 1);
        int third = rig_idx(rig_last(&r, P2S_QUERY));
        /* busy counts now: first 1, (0's holder) 1, third 1: all distinct */
        ck_assert_int_ne(third, first);
        ck_assert_int_ne(third, first == A ? B : A);
        ck_assert_uint_eq(swarm_stats(r.s)->queries, 3);

        /* a NOHAVE from the asked holder moves the query on at once */
        rig_clear(&r);
        int asked0 = first == A ? B : A;
        swarm_on_nohave(r.s, r.m[asked0], 0, true, r.now);
        rig_collect(&r);
        ck_assert_uint_eq(rig_count(&r, P2S_QUERY, -1, 0), 1);
        ck_assert_int_eq(rig_idx(rig_last(&r, P2S_QUERY)), asked0 == A ? B : A);
        /* one from a member that was not asked changes nothing */
        rig_clear(&r);
        swarm_on_nohave(r.s, r.m[C], 0, true, r.now);
        rig_collect(&r);
        ck_assert_uint_eq(r.na, 0);
        ck_assert_uint_eq(swarm_stats(r.s)->nohaves, 2);
        rig_free(&r);
}
END_TEST

/* Two members want the same missing chunk: one QUERY, one upload, DATA to
 * both; a second upload of it is a duplicate and goes nowhere. */
START_TEST(coalesce_one_query_one_upload)
{
        struct rig r;
        enum { A, B, C };
        rig_new(&r, 3, 6, 1, 1, SWARM_QUERY_DIRECTED);  /* chunk 0 is A's alone */
        rig_clear(&r);

        swarm_on_request(r.s, r.m[B], 0, false, r.now);
        swarm_on_request(r.s, r.m[C], 0, false, r.now);
        swarm_on_request(r.s, r.m[B], 0, false, r.now);        /* a retry: already waiting */
        rig_collect(&r);
        const struct swarm_stats *st = swarm_stats(r.s);
        ck_assert_uint_eq(rig_count(&r, P2S_QUERY, A, 0), 1);
        ck_assert_uint_eq(r.na, 1);
        ck_assert_uint_eq(st->cache_misses, 1);
        ck_assert_uint_eq(st->coalesced, 1);
        ck_assert_uint_eq(st->queries, 1);

        rig_clear(&r);
        rig_upload(&r, A, 0, false);
        ck_assert_uint_eq(st->uploads, 1);
        ck_assert_uint_eq(rig_count(&r, P2S_DATA, B, 0), 1);
        ck_assert_uint_eq(rig_count(&r, P2S_DATA, C, 0), 1);
        ck_assert_uint_eq(r.na, 2);
        for (size_t i = 0; i < r.na; i++) {
                ck_assert(memfile_chunk_equal(&r.f, 0, r.a[i].body));
                ck_assert_uint_eq(r.a[i].flags & P2S_F_FROM_CACHE, 0);
        }

        rig_clear(&r);
        rig_upload(&r, A, 0, false);
        ck_assert_uint_eq(r.na, 0);
        ck_assert_uint_eq(st->dup_uploads, 1);
        ck_assert_uint_eq(st->uploads, 1);

        /* retried REQs that crossed the DATA are not answered twice */
        swarm_on_request(r.s, r.m[B], 0, false, r.now);
        swarm_on_request(r.s, r.m[C], 0, false, r.now);
        rig_collect(&r);
        ck_assert_uint_eq(r.na, 0);
        /* the upload went into the cache (evicting chunk 5) */
        ck_assert(memfile_chunk_equal(&r.f, 0, lru_get(r.cache, (3ull << 32) | 0)));
        ck_assert_ptr_null(lru_get(r.cache, (3ull << 32) | 5));
        rig_free(&r);
}
END_TEST

/* A sole holder that never answers is asked query_tries times at doubling
 * intervals (capped), then dropped; its chunk is lost and the swarm fails. */
START_TEST(query_retry_schedule)
{
        struct rig r;
        enum { A, B, C };
        rig_new(&r, 3, 6, 1, 1, SWARM_QUERY_DIRECTED);
        rig_clear(&r);
        struct swarm_config cfg;
        swarm_config_defaults(&cfg);

        uint64_t t0 = r.now;
        uint64_t qt[16];
        unsigned nq = 0;
        swarm_on_request(r.s, r.m[B], 0, false, r.now);
        rig_collect(&r);
        qt[nq++] = r.now;
        for (int i = 0; i < 50 && !rig_find(&r, SWARM_ACT_READ); i++) {
                uint64_t d = swarm_next_deadline(r.s);
                ck_assert_uint_ne(d, UINT64_MAX);
                ck_assert_uint_gt(d, r.now);
                r.now = d;
                size_t before = r.na;
                swarm_on_tick(r.s, r.now);
                rig_collect(&r);
                for (size_t k = before; k < r.na; k++)
                        if (r.a[k].type == SWARM_ACT_SEND && r.a[k].msg == P2S_QUERY) {
                                ck_assert_int_eq(rig_idx(&r.a[k]), A);
                                ck_assert(nq < 16);
                                qt[nq++] = r.now;
                        }
        }
        /* nobody else holds it: read again from the source, no timer meanwhile */
        const struct swarm_action *rd = rig_find(&r, SWARM_ACT_READ);
        ck_assert_ptr_nonnull(rd);
        ck_assert_uint_eq(rd->chunk, 0);
        ck_assert_uint_eq(swarm_next_deadline(r.s), UINT64_MAX);
        /* ... which is gone: ERR SOURCE for everyone */
        swarm_on_source_reread(r.s, 0, NULL, "No such file or directory", r.now);
        rig_collect(&r);
        ck_assert_int_eq(swarm_state(r.s), SWARM_OVER);
        ck_assert_uint_eq(nq, cfg.query_tries);
        uint64_t gap = cfg.query_timeout_us, at = t0;
        for (unsigned i = 0; i < nq; i++) {
                ck_assert_uint_eq(qt[i], at);
                at += gap;
                gap = gap * 2 > cfg.query_timeout_max_us ? cfg.query_timeout_max_us : gap * 2;
        }
        /* A is dropped as silent when the last wait runs out, then ERR LOST */
        ck_assert_uint_eq(r.now, at);
        size_t drop = r.na, end = r.na;
        for (size_t k = 0; k < r.na; k++) {
                if (r.a[k].type == SWARM_ACT_DROP && drop == r.na)
                        drop = k;
                if (r.a[k].type == SWARM_ACT_END)
                        end = k;
        }
        ck_assert_uint_lt(drop, r.na);
        ck_assert_int_eq(rig_idx(&r.a[drop]), A);
        ck_assert_int_eq(r.a[drop].code, P2S_ERR_SWARM);
        ck_assert_uint_lt(end, r.na);
        ck_assert_int_eq(r.a[end].code, P2S_ERR_SOURCE);
        ck_assert_uint_eq(rig_count(&r, P2S_ERR, B, P2S_NO_CHUNK), 1);
        ck_assert_uint_eq(rig_count(&r, P2S_ERR, C, P2S_NO_CHUNK), 1);
        ck_assert_uint_eq(rig_count(&r, P2S_ERR, A, P2S_NO_CHUNK), 0);
        const struct swarm_action *e = rig_last(&r, P2S_ERR);
        ck_assert(e->flags & P2S_F_FATAL);
        char reason[P2S_MAX_REASON + 1];
        ck_assert_uint_eq(wire_get_err(e->body->data, e->body->len, reason, sizeof(reason)), P2S_ERR_SOURCE);
        ck_assert_ptr_nonnull(strstr(reason, "chunk 0 "));
        ck_assert_ptr_nonnull(strstr(reason, "source 'rig' is gone: No such file"));
        rig_free(&r);
}
END_TEST

/* A three-member rig where chunk 0 is A's and B's (enum { A, B, C }): C
 * requests it; returns the holder the swarm asked, actions cleared before. */
static int rig_c_requests_chunk0(struct rig *r)
{
        rig_new(r, 3, 6, 1, 2, SWARM_QUERY_DIRECTED);
        rig_clear(r);
        swarm_on_request(r->s, r->m[2], 0, false, r->now);
        rig_collect(r);
        return rig_idx(rig_last(r, P2S_QUERY));
}

/* With two holders, each timeout re-asks the other one. */
START_TEST(query_retry_alternates)
{
        struct rig r;
        enum { A, B, C };
        int prev = rig_c_requests_chunk0(&r);
        for (int i = 0; i < 4; i++) {
                r.now = swarm_next_deadline(r.s);
                rig_clear(&r);
                swarm_on_tick(r.s, r.now);
                rig_collect(&r);
                ck_assert_uint_eq(rig_count(&r, P2S_QUERY, -1, 0), 1);
                int cur = rig_idx(rig_last(&r, P2S_QUERY));
                ck_assert(cur == A || cur == B);
                ck_assert_int_ne(cur, prev);
                prev = cur;
        }
        /* the late answer still serves the waiter */
        rig_clear(&r);
        rig_upload(&r, prev == A ? B : A, 0, false);
        ck_assert_uint_eq(rig_count(&r, P2S_DATA, C, 0), 1);
        ck_assert_uint_eq(swarm_next_deadline(r.s), UINT64_MAX);
        rig_free(&r);
}
END_TEST

/* A bad upload: counted, never cached nor relayed, the chunk asked of the
 * other holder; the third one expels the uploader with ERR PROTO. */
START_TEST(bad_upload_rig)
{
        struct rig r;
        enum { A, B, C };
        int asked = rig_c_requests_chunk0(&r);
        rig_clear(&r);
        rig_upload(&r, (unsigned)asked, 0, true);
        const struct swarm_stats *st = swarm_stats(r.s);
        ck_assert_uint_eq(st->bad_uploads, 1);
        ck_assert_uint_eq(st->uploads, 0);
        ck_assert_uint_eq(rig_count(&r, P2S_DATA, -1, P2S_NO_CHUNK), 0);
        ck_assert_ptr_null(rig_find(&r, SWARM_ACT_DROP));
        ck_assert_uint_eq(rig_count(&r, P2S_QUERY, asked == A ? B : A, 0), 1);
        ck_assert_uint_eq(swarm_member_count(r.s), 3);
        ck_assert_ptr_null(lru_get(r.cache, (3ull << 32) | 0));
        /* two more: expelled, with the reason */
        rig_upload(&r, (unsigned)asked, 0, true);
        ck_assert_ptr_null(rig_find(&r, SWARM_ACT_DROP));
        rig_upload(&r, (unsigned)asked, 0, true);
        const struct swarm_action *d = rig_find(&r, SWARM_ACT_DROP);
        ck_assert_ptr_nonnull(d);
        ck_assert_int_eq(rig_idx(d), asked);
        ck_assert_int_eq(d->code, P2S_ERR_PROTO);
        ck_assert_ptr_nonnull(strstr(d->why, "do not match"));
        ck_assert_uint_eq(st->bad_uploads, 3);
        ck_assert_uint_eq(st->expelled, 1);
        ck_assert_uint_eq(swarm_member_count(r.s), 2);
        ck_assert_uint_eq(rig_count(&r, P2S_DATA, -1, P2S_NO_CHUNK), 0);
        ck_assert_ptr_null(lru_get(r.cache, (3ull << 32) | 0));
        r.m[asked] = NULL;
        rig_free(&r);
}
END_TEST

/* ---- out of memory ---------------------------------------------------------- */

/* COMPLETE echoes queued with memory gone until the queue cannot grow: how
 * many calls it took to end the swarm (the last one's echo is lost). */
static unsigned echoes_until_over(struct rig *r, unsigned who, unsigned limit)
{
        unsigned k = 0;
        failmalloc_after(0);
        while (k < limit && swarm_state(r->s) != SWARM_OVER) {
                swarm_on_complete(r->s, r->m[who], r->now);
                k++;
        }
        failmalloc_off();
        return k;
}

/* A SEND that cannot be queued fails the swarm: END with ERR BUSY comes out,
 * last and once, and nothing is queued after it. */
START_TEST(oom_send_ends_swarm)
{
        struct rig r;
        rig_new(&r, 3, 6, 1, 2, SWARM_QUERY_DIRECTED);
        rig_clear(&r);
        unsigned k = echoes_until_over(&r, 0, 100000);
        ck_assert_int_eq(swarm_state(r.s), SWARM_OVER);
        rig_collect(&r);
        ck_assert_uint_eq(rig_count(&r, P2S_COMPLETE, 0, P2S_NO_CHUNK), k - 1);
        ck_assert_uint_eq(r.na, k);
        ck_assert_int_eq(r.a[r.na - 1].type, SWARM_ACT_END);
        ck_assert_int_eq(r.a[r.na - 1].code, P2S_ERR_BUSY);
        /* over is over */
        swarm_on_bye(r.s, r.m[1], r.now);
        swarm_on_request(r.s, r.m[2], 0, true, r.now);
        swarm_on_tick(r.s, r.now + 100 * SEC);
        size_t before = r.na;
        rig_collect(&r);
        ck_assert_uint_eq(r.na, before);
        rig_free(&r);
}
END_TEST

/* DATA from the cache for a chunk the member holds already (a retried REQ
 * while idle), with memory gone, until the queue cannot grow: changes
 * nothing but the queue. How many calls it took to end the swarm. */
static unsigned resends_until_over(struct rig *r, unsigned who, uint32_t cached, unsigned limit)
{
        unsigned k = 0;
        failmalloc_after(0);
        while (k < limit && swarm_state(r->s) != SWARM_OVER) {
                swarm_on_request(r->s, r->m[who], cached, true, r->now);
                k++;
        }
        failmalloc_off();
        return k;
}

/* A queue full up to its reservation, and no memory at all: every member
 * says BYE, and each DROP and the END still come out, in order. */
START_TEST(oom_drops_and_end_reserved)
{
        struct rig probe, r;
        enum { A, B, C };
        /* three replicas: everyone holds everything; the cache keeps chunk 5 */
        rig_new(&probe, 3, 6, 1, 3, SWARM_QUERY_DIRECTED);
        rig_clear(&probe);
        unsigned k = resends_until_over(&probe, A, 5, 100000);
        ck_assert_int_eq(swarm_state(probe.s), SWARM_OVER);
        rig_free(&probe);
        ck_assert_uint_gt(k, 1);

        /* the twin: the same history gives the same queue */
        rig_new(&r, 3, 6, 1, 3, SWARM_QUERY_DIRECTED);
        rig_clear(&r);
        failmalloc_after(0);
        for (unsigned i = 0; i + 1 < k; i++)
                swarm_on_request(r.s, r.m[A], 5, true, r.now);
        enum swarm_state full = swarm_state(r.s);
        swarm_on_bye(r.s, r.m[C], r.now);
        swarm_on_bye(r.s, r.m[B], r.now);
        enum swarm_state two_gone = swarm_state(r.s);
        swarm_on_bye(r.s, r.m[A], r.now);
        failmalloc_off();
        r.m[A] = r.m[B] = r.m[C] = NULL;
        ck_assert_int_eq(full, SWARM_RELAY);
        ck_assert_int_eq(two_gone, SWARM_RELAY);
        rig_collect(&r);
        ck_assert_uint_eq(r.na, (k - 1) + 4);
        ck_assert_uint_eq(rig_count(&r, P2S_DATA, A, 5), k - 1);
        const struct swarm_action *t = &r.a[k - 1];
        ck_assert_int_eq(t[0].type, SWARM_ACT_DROP);
        ck_assert_int_eq(rig_idx(&t[0]), C);
        ck_assert_int_eq(t[1].type, SWARM_ACT_DROP);
        ck_assert_int_eq(rig_idx(&t[1]), B);
        ck_assert_int_eq(t[2].type, SWARM_ACT_DROP);
        ck_assert_int_eq(rig_idx(&t[2]), A);
        /* no memory for the ERR bodies either: the END alone says it */
        ck_assert_int_eq(t[3].type, SWARM_ACT_END);
        ck_assert_int_eq(t[3].code, P2S_ERR_SWARM);
        rig_free(&r);
}
END_TEST

/* A cache miss with no memory for the query's timer changes nothing: no
 * QUERY without a timer to retry it; the member's retry then works. */
START_TEST(oom_request_ignored)
{
        struct rig r;
        enum { A, B, C };
        rig_new(&r, 3, 6, 1, 2, SWARM_QUERY_DIRECTED);
        rig_clear(&r);
        failmalloc_after(0);
        swarm_on_request(r.s, r.m[C], 0, false, r.now);
        uint64_t deadline = swarm_next_deadline(r.s);
        failmalloc_off();
        rig_collect(&r);
        ck_assert_uint_eq(r.na, 0);
        ck_assert_uint_eq(deadline, UINT64_MAX);
        ck_assert_int_eq(swarm_state(r.s), SWARM_RELAY);
        ck_assert(!swarm_wants_upload(r.s, r.m[A], 0));
        swarm_on_request(r.s, r.m[C], 0, false, r.now);
        rig_collect(&r);
        ck_assert_uint_eq(rig_count(&r, P2S_QUERY, -1, 0), 1);
        ck_assert_uint_ne(swarm_next_deadline(r.s), UINT64_MAX);
        rig_free(&r);
}
END_TEST

/* Joining with no memory: NULL, and the swarm is as it was. */
START_TEST(oom_join_refused)
{
        struct swarm_config cfg;
        swarm_config_defaults(&cfg);
        struct lru *cache = lru_new(1 << 20);
        struct swarm *s = swarm_new(&cfg, 9, "oom", cache);
        ck_assert_ptr_nonnull(s);
        failmalloc_after(0);
        struct swarm_member *m = swarm_join(s, 1, NULL, T0);
        failmalloc_off();
        ck_assert_ptr_null(m);
        ck_assert_uint_eq(swarm_member_count(s), 0);
        struct swarm_action a;
        ck_assert(!swarm_next_action(s, &a));
        swarm_free(s);
        lru_free(cache);
}
END_TEST

/* Out-of-range chunks and messages in the wrong state are counted as
 * dropped and change nothing. */
START_TEST(dropped_msgs_counted)
{
        struct rig r;
        enum { A, B, C };
        rig_new(&r, 3, 6, 1, 1, SWARM_QUERY_DIRECTED);
        rig_clear(&r);
        const struct swarm_stats *st = swarm_stats(r.s);
        struct buf *b = memfile_chunk(&r.f, 5);

        swarm_on_request(r.s, r.m[A], 6, false, r.now);
        swarm_on_request(r.s, r.m[A], P2S_NO_CHUNK, false, r.now);
        swarm_on_upload(r.s, r.m[A], 6, b, r.now);
        swarm_on_upload(r.s, r.m[A], P2S_NO_CHUNK, b, r.now);
        rig_collect(&r);
        ck_assert_uint_eq(r.na, 0);
        ck_assert_uint_eq(st->dropped_msgs, 4);
        ck_assert_uint_eq(st->requests, 0);
        ck_assert_uint_eq(st->cache_misses + st->cache_hits + st->uploads + st->dup_uploads + st->bad_uploads, 0);
        ck_assert_uint_eq(swarm_member_count(r.s), 3);
        ck_assert_uint_eq(swarm_next_deadline(r.s), UINT64_MAX);

        /* everyone complete: FINISHING, where requests are out of place and
         * nobody may join */
        for (unsigned i = 0; i < 3; i++)
                swarm_on_complete(r.s, r.m[i], r.now);
        rig_collect(&r);
        ck_assert_int_eq(swarm_state(r.s), SWARM_FINISHING);
        ck_assert_uint_eq(rig_count(&r, P2S_COMPLETE, -1, P2S_NO_CHUNK), 3);
        ck_assert_uint_eq(rig_count(&r, P2S_DONE, -1, P2S_NO_CHUNK), 3);
        rig_clear(&r);
        swarm_on_request(r.s, r.m[A], 1, false, r.now);
        rig_collect(&r);
        ck_assert_uint_eq(r.na, 0);
        ck_assert_uint_eq(st->dropped_msgs, 5);
        ck_assert(!swarm_joinable(r.s));
        ck_assert_ptr_null(swarm_join(r.s, 200, NULL, r.now));
        /* a repeated COMPLETE is acknowledged again, nothing more */
        swarm_on_complete(r.s, r.m[B], r.now);
        rig_collect(&r);
        ck_assert_uint_eq(r.na, 1);
        ck_assert_uint_eq(r.a[0].msg, P2S_COMPLETE);
        ck_assert(r.a[0].flags & P2S_F_ACK);
        buf_unref(b);
        rig_free(&r);
}
END_TEST

/* A swarm of 1 chunk-size CS gathering for 3 members, one (100) joined;
 * *cache is its cache for the caller to free after the swarm. */
static struct swarm *gathering_swarm(struct lru **cache, struct swarm_member **m)
{
        struct swarm_config cfg;
        swarm_config_defaults(&cfg);
        cfg.chunk_size = CS;
        cfg.min_clients = 3;
        *cache = lru_new(4 * CS);
        struct swarm *s = swarm_new(&cfg, 1, "g", *cache);
        *m = swarm_join(s, 100, NULL, T0);
        return s;
}

/* A PING answered while gathering says how many joined and how many the
 * swarm waits for; once it started, the answer is bare again. */
START_TEST(ping_answer_while_gathering)
{
        struct lru *cache;
        struct swarm_member *m;
        struct swarm *s = gathering_swarm(&cache, &m);
        swarm_join(s, 101, NULL, T0);
        struct swarm_action a;
        while (swarm_next_action(s, &a))
                buf_unref(a.body);
        swarm_on_ping(s, m, false, T0 + 1);
        ck_assert(swarm_next_action(s, &a));
        ck_assert_int_eq(a.type, SWARM_ACT_SEND);
        ck_assert_uint_eq(a.msg, P2S_PING);
        ck_assert(a.flags & P2S_F_ACK);
        ck_assert_ptr_nonnull(a.body);
        ck_assert_uint_eq(a.body->len, P2S_GATHER_SIZE);
        uint32_t joined, min_clients;
        wire_get_gather(a.body->data, &joined, &min_clients);
        ck_assert_uint_eq(joined, 2);
        ck_assert_uint_eq(min_clients, 3);
        buf_unref(a.body);
        /* an answer to our own PING (ACK) is not answered */
        swarm_on_ping(s, m, true, T0 + 2);
        ck_assert(!swarm_next_action(s, &a));
        swarm_free(s);
        lru_free(cache);
}
END_TEST

/* Before the swarm starts nothing but joining and leaving is valid. */
START_TEST(dropped_msgs_in_gather)
{
        struct lru *cache;
        struct swarm_member *m;
        struct swarm *s = gathering_swarm(&cache, &m);
        struct buf *b = buf_new(CS);
        memset(b->data, 0, CS);
        const struct swarm_stats *st = swarm_stats(s);
        struct swarm_action a;

        swarm_on_request(s, m, 0, false, T0);
        swarm_on_upload(s, m, 0, b, T0);
        swarm_on_complete(s, m, T0);
        ck_assert_uint_eq(st->dropped_msgs, 3);
        swarm_on_nohave(s, m, 0, true, T0);
        ck_assert(!swarm_next_action(s, &a));
        ck_assert_int_eq(swarm_state(s), SWARM_GATHER);
        ck_assert_uint_eq(st->dropped_msgs, 4);
        buf_unref(b);
        swarm_free(s);
        lru_free(cache);
}
END_TEST

static Suite *swarm_suite(void)
{
        Suite *s = suite_create("swarm");
        TCase *tc;

        tc = tcase_create("complete");
        tcase_set_timeout(tc, 60);
        tcase_add_loop_test(tc, complete_n, 0, 6);
        tcase_add_loop_test(tc, complete_sizes, 0, 5);
        tcase_add_loop_test(tc, replica_counts, 0, 5);
        tcase_add_test(tc, small_cache);
        tcase_add_test(tc, no_cache);
        tcase_add_test(tc, coalesced_in_swarm);
        tcase_add_test(tc, broadcast);
        suite_add_tcase(s, tc);

        tc = tcase_create("membership");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, leave_mid_relay);
        tcase_add_test(tc, leave_only_copy_reread);
        tcase_add_loop_test(tc, leave_only_copy, 0, 2);
        tcase_add_test(tc, all_leave_in_gather);
        tcase_add_test(tc, ping_answer_while_gathering);
        tcase_add_test(tc, gather_timeout);
        tcase_add_test(tc, late_joiner_relay);
        tcase_add_test(tc, late_joiner_distribution);
        suite_add_tcase(s, tc);

        tc = tcase_create("misbehaviour");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, silent_holder_other_holders);
        tcase_add_test(tc, stopped_holder_rerouted);
        tcase_add_test(tc, unqueried_member_stopped);
        tcase_add_test(tc, reading_member_not_silent);
        tcase_add_test(tc, stopped_before_start);
        tcase_add_test(tc, nohave_liar_expelled);
        tcase_add_test(tc, poisoned_uploads_sole_holder);
        tcase_add_test(tc, silent_holder_dropped);
        tcase_add_test(tc, silent_sole_holder);
        tcase_add_test(tc, bad_upload);
        tcase_add_test(tc, damaged_share_refetched);
        tcase_add_test(tc, nohave_pingpong_bounded);
        tcase_add_test(tc, source_fails);
        suite_add_tcase(s, tc);

        tc = tcase_create("loss");
        tcase_set_timeout(tc, 60);
        tcase_add_loop_test(tc, lossy_control, 0, 2);
        tcase_add_test(tc, done_retried);
        tcase_add_test(tc, second_copies_end_the_swarm);
        tcase_add_test(tc, complete_retried);
        tcase_add_test(tc, bye_lost);
        tcase_add_test(tc, done_tries_exhausted);
        tcase_add_test(tc, done_retried_after_measured_rtt);
        tcase_add_test(tc, lost_queries_recovered);
        tcase_add_test(tc, lost_queries_fail_live_holder);
        tcase_add_test(tc, slow_holder_not_expelled);
        tcase_add_test(tc, lost_queries_fail_broadcast);
        suite_add_tcase(s, tc);

        tc = tcase_create("rig");
        tcase_add_test(tc, directed_least_busy);
        tcase_add_test(tc, coalesce_one_query_one_upload);
        tcase_add_test(tc, query_retry_schedule);
        tcase_add_test(tc, query_retry_alternates);
        tcase_add_test(tc, oom_send_ends_swarm);
        tcase_add_test(tc, oom_drops_and_end_reserved);
        tcase_add_test(tc, oom_request_ignored);
        tcase_add_test(tc, oom_join_refused);
        tcase_add_test(tc, bad_upload_rig);
        tcase_add_test(tc, dropped_msgs_counted);
        tcase_add_test(tc, dropped_msgs_in_gather);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(swarm_suite);
