/* SPDX-License-Identifier: MIT */
/* Client-side member state machine. See member.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/member.h"
#include "proto/hash.h"
#include "util/fifo.h"
#include "util/rtt.h"

struct inflight {
        uint32_t chunk;
        unsigned retries;
        uint64_t seq;                   /* order of its last REQ among ours */
        uint64_t first_sent, deadline, rto;
};

struct member {
        struct member_config cfg;
        enum member_state state;
        struct manifest mf;
        struct bitmap have;             /* verified chunks, and share chunks until the manifest */
        struct bitmap asked;            /* chunks with a request in flight */
        struct bitmap share;            /* chunks that came as our share */
        struct bitmap parts;            /* MANIFEST frames received */
        struct bitmap resumed;          /* chunks found in the output file of an earlier run */
        uint8_t (*share_digest)[P2S_HASH_SIZE];
        uint32_t *order;                /* random order: a permutation; NULL for sequential */
        uint32_t cursor;

        struct inflight *fl;
        unsigned nfl;
        struct rtt rtt;
        uint64_t req_seq;               /* REQs sent, first tries and retries */
        uint64_t answered_seq;          /* the latest REQ whose chunk has come */
        uint64_t last_data;             /* when a requested chunk last came */

        uint64_t last_heard;
        bool clock_started;             /* the silence clock starts at the first tick, or a message */
        uint64_t last_ping;
        bool complete_acked;
        unsigned complete_tries;
        uint64_t complete_deadline, complete_rto;

        uint64_t rng;
        uint16_t exit_err;              /* the fatal ERR's code, for EXIT */
        /* Room reserved for the actions that must come out: BYE and EXIT. */
        struct fifo actions;
        struct member_stats stats;
};

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

static void push(struct member *m, struct member_action *a)
{
        if (m->state == MEMBER_EXITED || fifo_push(&m->actions, a) < 0) {
                buf_unref(a->body);
                exit_oom(m);    /* no-op once exited */
        }
}

static void push_critical(struct member *m, struct member_action *a)
{
        if (m->state == MEMBER_EXITED || fifo_push_reserved(&m->actions, a) < 0)
                buf_unref(a->body);
}

/* A state change after actions were queued: a failed push may have ended
 * the member meanwhile, and exited is exited. */
static bool set_state(struct member *m, enum member_state st)
{
        if (m->state == MEMBER_EXITED)
                return false;
        m->state = st;
        return true;
}

static void send_msg_via(struct member *m, uint8_t msg, uint32_t chunk, bool reliable)
{
        struct member_action a = { .type = MEMBER_ACT_SEND, .msg = msg, .chunk = chunk, .reliable = reliable };
        push(m, &a);
}

static void send_msg(struct member *m, uint8_t msg, uint32_t chunk)
{
        send_msg_via(m, msg, chunk, false);
}

static void simple(struct member *m, enum member_act_type type, uint32_t chunk)
{
        struct member_action a = { .type = type, .chunk = chunk };
        push(m, &a);
}

static void write_chunk(struct member *m, uint32_t chunk, struct buf *data)
{
        struct member_action a = { .type = MEMBER_ACT_WRITE, .chunk = chunk, .body = buf_ref(data) };
        push(m, &a);
}

__attribute__((format(printf, 3, 4)))
static void exit_with(struct member *m, int code, const char *fmt, ...)
{
        if (m->state == MEMBER_EXITED)
                return;
        struct member_action a = { .type = MEMBER_ACT_EXIT, .code = code, .err = m->exit_err,
                                   .chunk = P2S_NO_CHUNK };
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a.reason, sizeof(a.reason), fmt, ap);
        va_end(ap);
        push_critical(m, &a);
        m->state = MEMBER_EXITED;
}

static void exit_oom(struct member *m)
{
        exit_with(m, MEMBER_EXIT_FAIL, "out of memory");
}

/* ---- requests ------------------------------------------------------------ */

static uint64_t rng_next(struct member *m)
{
        /* xorshift64*: only spreads the request order, nothing secret */
        m->rng ^= m->rng >> 12;
        m->rng ^= m->rng << 25;
        m->rng ^= m->rng >> 27;
        return m->rng * 2685821657736338717ull;
}

static uint32_t next_wanted(struct member *m)
{
        while (m->cursor < m->mf.chunk_count) {
                uint32_t c = m->order ? m->order[m->cursor] : m->cursor;
                m->cursor++;
                if (!bitmap_test(&m->have, c) && !bitmap_test(&m->asked, c))
                        return c;
        }
        return P2S_NO_CHUNK;
}

static void fill_window(struct member *m, uint64_t now)
{
        while (m->nfl < m->cfg.window) {
                uint32_t c = next_wanted(m);
                if (c == P2S_NO_CHUNK)
                        break;
                struct inflight *f = &m->fl[m->nfl++];
                *f = (struct inflight){ .chunk = c, .seq = ++m->req_seq, .first_sent = now,
                                        .rto = m->rtt.rto, .deadline = now + m->rtt.rto };
                bitmap_set(&m->asked, c);
                send_msg(m, P2S_REQ, c);
                m->stats.requests_sent++;
        }
}

static void start_verify(struct member *m)
{
        if (set_state(m, MEMBER_VERIFYING))
                simple(m, MEMBER_ACT_VERIFY, P2S_NO_CHUNK);
}

/* ---- events -------------------------------------------------------------- */

void member_on_start(struct member *m, const struct p2s_start *st, uint64_t now)
{
        m->last_heard = now;
        if (m->state != MEMBER_WAIT_START) {
                m->stats.dropped_msgs++;
                return;
        }
        int r = manifest_init(&m->mf, st->file_size, st->chunk_size);
        if (r == 0 && m->mf.chunk_count != st->chunk_count)
                r = -EINVAL;
        if (r < 0) {
                exit_with(m, MEMBER_EXIT_SWARM, "server sent an unusable START (size %llu, chunk size %u)",
                          (unsigned long long)st->file_size, st->chunk_size);
                return;
        }
        uint32_t n = m->mf.chunk_count;
        uint32_t nparts = (n + P2S_MANIFEST_PART - 1) / P2S_MANIFEST_PART;
        if (bitmap_init(&m->have, n) < 0 || bitmap_init(&m->asked, n) < 0 ||
            bitmap_init(&m->share, n) < 0 || bitmap_init(&m->parts, nparts) < 0 ||
            bitmap_init(&m->resumed, n) < 0 ||
            !(m->share_digest = calloc(n ? n : 1, P2S_HASH_SIZE))) {
                exit_with(m, MEMBER_EXIT_FAIL, "out of memory for %u chunks", n);
                return;
        }
        if (m->cfg.order == MEMBER_ORDER_RANDOM && n) {
                m->order = malloc((size_t)n * sizeof(*m->order));
                if (!m->order) {
                        exit_with(m, MEMBER_EXIT_FAIL, "out of memory for %u chunks", n);
                        return;
                }
                for (uint32_t i = 0; i < n; i++)
                        m->order[i] = i;
                for (uint32_t i = n - 1; i > 0; i--) {
                        uint32_t j = (uint32_t)(rng_next(m) % (i + 1));
                        uint32_t t = m->order[i];
                        m->order[i] = m->order[j];
                        m->order[j] = t;
                }
        }
        set_state(m, MEMBER_WAIT_MANIFEST);
        struct member_action a = { .type = MEMBER_ACT_PREPARE, .file_size = st->file_size,
                                   .chunk = P2S_NO_CHUNK };
        push(m, &a);
}

static bool chunk_fits(const struct member *m, uint32_t chunk, const struct buf *data)
{
        return chunk < m->mf.chunk_count && data && data->len == manifest_chunk_len(&m->mf, chunk);
}

static struct inflight *find_inflight(struct member *m, uint32_t chunk);

void member_on_share(struct member *m, uint32_t chunk, struct buf *data, uint64_t now)
{
        m->last_heard = now;
        bool early = m->state == MEMBER_WAIT_MANIFEST;
        /* over datagrams a share chunk may overtake START or trail the
         * manifest: after the manifest it is checked like any other chunk */
        bool late = m->state == MEMBER_FETCHING;
        if ((!early && !late) || !chunk_fits(m, chunk, data) || bitmap_test(&m->share, chunk) ||
            bitmap_test(&m->have, chunk)) {
                m->stats.dropped_msgs++;
                return;
        }
        if (late) {
                if (!manifest_verify_chunk(&m->mf, chunk, data->data, data->len)) {
                        m->stats.bad_chunks++;
                        send_msg_via(m, P2S_NOHAVE, chunk, true);  /* the server counts it as ours */
                        return;
                }
        } else {
                /* the manifest comes after the share: remember what we got, check it then */
                hash_sha256(data->data, data->len, m->share_digest[chunk]);
        }
        bitmap_set(&m->share, chunk);
        bitmap_set(&m->have, chunk);
        m->stats.chunks_share++;
        m->stats.bytes_in += data->len;
        write_chunk(m, chunk, data);
        if (late) {
                struct inflight *f = find_inflight(m, chunk);
                if (f)
                        *f = m->fl[--m->nfl];
                bitmap_clear(&m->asked, chunk);
                if (bitmap_full(&m->have))
                        start_verify(m);
                else
                        fill_window(m, now);
        }
}

int member_resume_chunk(struct member *m, uint32_t chunk)
{
        if (m->state != MEMBER_WAIT_MANIFEST || chunk >= m->mf.chunk_count)
                return -EINVAL;
        if (bitmap_test(&m->have, chunk))
                return 0;
        bitmap_set(&m->have, chunk);
        bitmap_set(&m->resumed, chunk);
        m->stats.chunks_resumed++;
        return 0;
}

/* The server counts what it sent us; what we brought along it learns from
 * HAVE, a frame per P2S_HAVE_MAX bytes of bitmap that has any bit set. */
static void offer_resumed(struct member *m)
{
        const uint32_t span = P2S_HAVE_MAX * 8;
        uint32_t n = m->mf.chunk_count;
        for (uint32_t first = 0; first < n && bitmap_count(&m->resumed); first += span) {
                uint32_t count = n - first < span ? n - first : span;
                size_t next = bitmap_next_set(&m->resumed, first);
                if (next >= (size_t)first + count)
                        continue;
                struct member_action a = { .type = MEMBER_ACT_HAVE, .chunk = first, .count = count };
                push(m, &a);
        }
}

void member_on_manifest(struct member *m, uint32_t first, const uint8_t *hashes, uint32_t n, uint64_t now)
{
        m->last_heard = now;
        /* frames must be exactly the server's split: whole parts, each once */
        uint32_t part = first / P2S_MANIFEST_PART;
        uint32_t want = m->mf.chunk_count - first < P2S_MANIFEST_PART ? m->mf.chunk_count - first
                                                                      : P2S_MANIFEST_PART;
        if (m->state != MEMBER_WAIT_MANIFEST || first % P2S_MANIFEST_PART || first >= m->mf.chunk_count ||
            n != want || bitmap_test(&m->parts, part) ||
            manifest_set_hashes(&m->mf, first, hashes, n) < 0) {
                m->stats.dropped_msgs++;
                return;
        }
        bitmap_set(&m->parts, part);
}

void member_on_manifest_end(struct member *m, const uint8_t file_hash[P2S_HASH_SIZE], uint64_t now)
{
        m->last_heard = now;
        if (m->state != MEMBER_WAIT_MANIFEST) {
                m->stats.dropped_msgs++;
                return;
        }
        if (!bitmap_full(&m->parts)) {
                exit_with(m, MEMBER_EXIT_SWARM, "server sent an incomplete manifest (%zu of %zu parts)",
                          bitmap_count(&m->parts), m->parts.nbits);
                return;
        }
        memcpy(m->mf.file_hash, file_hash, P2S_HASH_SIZE);
        for (uint32_t c = 0; c < m->mf.chunk_count; c++) {
                if (bitmap_test(&m->share, c) && memcmp(m->share_digest[c], m->mf.hashes[c], P2S_HASH_SIZE)) {
                        bitmap_clear(&m->have, c);
                        m->stats.bad_chunks++;
                        /* the server counts it as ours: say it is not (over TCP: it must
                         * arrive, or our requests for it would be ignored), then ask */
                        send_msg_via(m, P2S_NOHAVE, c, true);
                }
        }
        free(m->share_digest);
        m->share_digest = NULL;
        if (!set_state(m, MEMBER_FETCHING))
                return;
        offer_resumed(m);
        if (bitmap_full(&m->have))
                start_verify(m);
        else
                fill_window(m, now);
}

static struct inflight *find_inflight(struct member *m, uint32_t chunk)
{
        for (unsigned i = 0; i < m->nfl; i++)
                if (m->fl[i].chunk == chunk)
                        return &m->fl[i];
        return NULL;
}

void member_on_data(struct member *m, uint32_t chunk, struct buf *data, bool from_cache, uint64_t now)
{
        m->last_heard = now;
        if (m->state == MEMBER_EXITED)
                return;
        if (m->state != MEMBER_FETCHING || !chunk_fits(m, chunk, data)) {
                m->stats.dropped_msgs++;
                return;
        }
        if (bitmap_test(&m->have, chunk)) {
                m->stats.dup_chunks++;
                return;
        }
        struct inflight *f = find_inflight(m, chunk);
        if (!manifest_verify_chunk(&m->mf, chunk, data->data, data->len)) {
                m->stats.bad_chunks++;
                /* the server counts it as ours and would not send it again:
                 * say it is not (over TCP: it must arrive), then ask again at
                 * once; the server verified it, so this is rare */
                send_msg_via(m, P2S_NOHAVE, chunk, true);
                if (f) {
                        f->deadline = now;
                        f->seq = 0;     /* answered, wrongly: nothing to wait for */
                }
                return;
        }
        if (f) {
                if (f->retries == 0)
                        rtt_sample(&m->rtt, now - f->first_sent);
                if (f->seq > m->answered_seq)
                        m->answered_seq = f->seq;
                m->last_data = now;
                struct member_action a = { .type = MEMBER_ACT_RTT, .chunk = chunk,
                                           .req_time_us = f->first_sent, .rtt_us = now - f->first_sent,
                                           .from_cache = from_cache };
                push(m, &a);
                *f = m->fl[--m->nfl];
        }
        bitmap_clear(&m->asked, chunk);
        bitmap_set(&m->have, chunk);
        if (from_cache)
                m->stats.chunks_cache++;
        else
                m->stats.chunks_peer++;
        m->stats.bytes_in += data->len;
        write_chunk(m, chunk, data);
        if (bitmap_full(&m->have))
                start_verify(m);
        else
                fill_window(m, now);
}

void member_on_query(struct member *m, uint32_t chunk, uint64_t now)
{
        m->last_heard = now;
        if (m->state == MEMBER_EXITED || m->state == MEMBER_WAIT_START)
                return;
        m->stats.queries++;
        if (chunk < m->mf.chunk_count && bitmap_test(&m->have, chunk)) {
                simple(m, MEMBER_ACT_UPLOAD, chunk);
                m->stats.bytes_uploaded += manifest_chunk_len(&m->mf, chunk);
        } else {
                /* flagged as the answer it is: an unflagged NOHAVE would say we
                 * threw away a chunk the server counts as ours */
                struct member_action a = { .type = MEMBER_ACT_SEND, .msg = P2S_NOHAVE, .chunk = chunk,
                                           .flags = P2S_F_ACK };
                push(m, &a);
        }
}

void member_on_verified(struct member *m, const uint8_t *file_hash, uint64_t now)
{
        if (m->state != MEMBER_VERIFYING)
                return;
        if (!file_hash || memcmp(file_hash, m->mf.file_hash, P2S_HASH_SIZE)) {
                exit_with(m, MEMBER_EXIT_VERIFY, "whole-file SHA-256 does not match the manifest%s",
                          file_hash ? "" : " (file could not be read)");
                return;
        }
        simple(m, MEMBER_ACT_FINALIZE, P2S_NO_CHUNK);
        if (!set_state(m, MEMBER_COMPLETE))
                return;
        m->last_heard = now;
        m->complete_rto = m->rtt.rto;
        m->complete_deadline = now + m->complete_rto;
        send_msg(m, P2S_COMPLETE, P2S_NO_CHUNK);
}

void member_on_complete_ack(struct member *m, uint64_t now)
{
        m->last_heard = now;
        if (m->state == MEMBER_COMPLETE)
                m->complete_acked = true;
}

void member_on_done(struct member *m, uint64_t now)
{
        m->last_heard = now;
        if (m->state == MEMBER_EXITED)
                return;
        /* reserved room: the server must hear it even now */
        struct member_action bye = { .type = MEMBER_ACT_SEND, .msg = P2S_BYE, .chunk = P2S_NO_CHUNK };
        push_critical(m, &bye);
        if (m->state == MEMBER_COMPLETE)
                exit_with(m, 0, "swarm complete");
        else
                exit_with(m, MEMBER_EXIT_SWARM, "server ended the swarm before this copy was complete");
}

void member_on_error(struct member *m, uint16_t code, const char *reason, bool fatal, uint64_t now)
{
        m->last_heard = now;
        if (fatal) {
                m->exit_err = code;
                exit_with(m, MEMBER_EXIT_SERVER, "server: %s", reason);
        }
        else
                m->stats.dropped_msgs++;
}

void member_on_ping(struct member *m, bool ack, uint64_t now)
{
        m->last_heard = now;
        if (m->state == MEMBER_EXITED || ack)
                return;
        struct member_action a = { .type = MEMBER_ACT_SEND, .msg = P2S_PING, .chunk = P2S_NO_CHUNK,
                                   .flags = P2S_F_ACK };
        push(m, &a);
}

void member_on_disconnect(struct member *m, const char *why, uint64_t now)
{
        exit_with(m, MEMBER_EXIT_GONE, "lost the connection to the server: %s", why);
}

void member_fail(struct member *m, const char *reason, uint64_t now)
{
        exit_with(m, MEMBER_EXIT_FAIL, "%s", reason);
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

void member_on_tick(struct member *m, uint64_t now)
{
        if (m->state == MEMBER_EXITED)
                return;
        if (!m->clock_started && m->last_heard == 0)
                m->last_heard = now;
        m->clock_started = true;
        if (now >= m->last_heard + m->cfg.silence_timeout_us) {
                exit_with(m, MEMBER_EXIT_GONE, "server silent for %.1f s: giving up (p2sd stopped or unreachable?)",
                          (double)m->cfg.silence_timeout_us / 1e6);
                return;
        }
        uint64_t since = m->last_ping > m->last_heard ? m->last_ping : m->last_heard;
        if (now >= since + ping_after(m)) {
                m->last_ping = now;
                send_msg_via(m, P2S_PING, P2S_NO_CHUNK, now - m->last_heard >= 2 * ping_after(m));
        }
        bool backed_off = false;
        for (unsigned i = 0; i < m->nfl; i++) {
                struct inflight *f = &m->fl[i];
                if (f->deadline > now)
                        continue;
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
                f->retries++;
                f->rto = f->rto * 2 > m->cfg.rto_max_us ? m->cfg.rto_max_us : f->rto * 2;
                f->deadline = now + f->rto;
                f->seq = ++m->req_seq;
                send_msg_via(m, P2S_REQ, f->chunk, f->retries >= m->cfg.escalate_after);
                m->stats.retries++;
        }
        if (m->state == MEMBER_COMPLETE && !m->complete_acked && now >= m->complete_deadline) {
                m->complete_rto = m->complete_rto * 2 > m->cfg.rto_max_us ? m->cfg.rto_max_us
                                                                           : m->complete_rto * 2;
                m->complete_deadline = now + m->complete_rto;
                m->complete_tries++;
                send_msg_via(m, P2S_COMPLETE, P2S_NO_CHUNK, m->complete_tries >= m->cfg.escalate_after);
        }
}

bool member_next_action(struct member *m, struct member_action *out)
{
        return fifo_pop(&m->actions, out);
}
