/* SPDX-License-Identifier: MIT */
/* The member's answers to the server: START, SHARE, MANIFEST, DATA, QUERY,
 * the verdict of VERIFY, DONE, ERR, PING and the connection lost, and the
 * window of REQs they open and refill. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "core/member-internal.h"
#include "proto/hash.h"

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
                *f = (struct inflight){ .chunk = c, .seq = ++m->req_seq, .first_sent = now, .sent = now,
                                        .rto = m->rtt.rto, .deadline = now + m->rtt.rto };
                bitmap_set(&m->asked, c);
                member_send_msg(m, P2S_REQ, c);
                m->stats.requests_sent++;
        }
}

static void start_verify(struct member *m)
{
        if (member_set_state(m, MEMBER_VERIFYING))
                member_simple(m, MEMBER_ACT_VERIFY, P2S_NO_CHUNK);
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
                member_exit_with(m, MEMBER_EXIT_SWARM, "server sent an unusable START (size %llu, chunk size %u)",
                                 (unsigned long long)st->file_size, st->chunk_size);
                return;
        }
        uint32_t n = m->mf.chunk_count;
        uint32_t nparts = (n + P2S_MANIFEST_PART - 1) / P2S_MANIFEST_PART;
        if (bitmap_init(&m->have, n) < 0 || bitmap_init(&m->asked, n) < 0 ||
            bitmap_init(&m->share, n) < 0 || bitmap_init(&m->parts, nparts) < 0 ||
            bitmap_init(&m->resumed, n) < 0 ||
            !(m->share_digest = calloc(n ? n : 1, P2S_HASH_SIZE))) {
                member_exit_with(m, MEMBER_EXIT_FAIL, "out of memory for %u chunks", n);
                return;
        }
        if (m->cfg.order == MEMBER_ORDER_RANDOM && n) {
                m->order = malloc((size_t)n * sizeof(*m->order));
                if (!m->order) {
                        member_exit_with(m, MEMBER_EXIT_FAIL, "out of memory for %u chunks", n);
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
        member_set_state(m, MEMBER_WAIT_MANIFEST);
        struct member_action a = { .type = MEMBER_ACT_PREPARE, .file_size = st->file_size,
                                   .chunk = P2S_NO_CHUNK };
        member_push(m, &a);
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
                        member_send_msg_via(m, P2S_NOHAVE, chunk, true);  /* the server counts it as ours */
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
        member_write_chunk(m, chunk, data);
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
                member_push(m, &a);
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
                member_exit_with(m, MEMBER_EXIT_SWARM, "server sent an incomplete manifest (%zu of %zu parts)",
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
                        member_send_msg_via(m, P2S_NOHAVE, c, true);
                }
        }
        free(m->share_digest);
        m->share_digest = NULL;
        if (!member_set_state(m, MEMBER_FETCHING))
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

/* The server answers REQs from its cache in the order they come, so an
 * older REQ still unanswered well after a younger one's answer came was
 * most likely lost: it is asked again one round trip (the one just seen)
 * and a reordering allowance after it was sent, not a whole RTO later,
 * which before the first sample is the 300 ms guess (RACK, RFC 8985, for
 * requests). A chunk relayed from a member may come later than that
 * (its holder is slow, or its query was lost): the server adds the REQ to
 * the waiters it has, and costs one datagram, so only a request's first
 * retry is brought forward; later ones wait for its timer, which that
 * retry restarted at the current RTO. */
static void mark_overtaken(struct member *m, const struct inflight *ans, uint64_t now)
{
        if (m->reqs_reliable)
                return;
        uint64_t rtt = now - ans->sent;
        uint64_t reo = m->rtt.have_sample ? m->rtt.srtt / 4 : 0;
        if (reo < m->cfg.rto_min_us)
                reo = m->cfg.rto_min_us;
        for (unsigned i = 0; i < m->nfl; i++) {
                struct inflight *g = &m->fl[i];
                if (g->seq >= ans->seq || g->retries)
                        continue;
                uint64_t d = g->sent + rtt + reo;
                if (d < g->deadline) {
                        g->deadline = d;
                        g->overtaken = true;
                }
        }
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
                member_send_msg_via(m, P2S_NOHAVE, chunk, true);
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
                /* Karn again: the answer to a retried REQ may be the first
                 * one's, and its round trip would look short enough to
                 * declare every older REQ lost */
                if (f->retries == 0)
                        mark_overtaken(m, f, now);
                struct member_action a = { .type = MEMBER_ACT_RTT, .chunk = chunk,
                                           .req_time_us = f->first_sent, .rtt_us = now - f->first_sent,
                                           .from_cache = from_cache };
                member_push(m, &a);
                *f = m->fl[--m->nfl];
        }
        bitmap_clear(&m->asked, chunk);
        bitmap_set(&m->have, chunk);
        if (from_cache)
                m->stats.chunks_cache++;
        else
                m->stats.chunks_peer++;
        m->stats.bytes_in += data->len;
        member_write_chunk(m, chunk, data);
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
                member_simple(m, MEMBER_ACT_UPLOAD, chunk);
                m->stats.bytes_uploaded += manifest_chunk_len(&m->mf, chunk);
        } else {
                /* flagged as the answer it is: an unflagged NOHAVE would say we
                 * threw away a chunk the server counts as ours */
                struct member_action a = { .type = MEMBER_ACT_SEND, .msg = P2S_NOHAVE, .chunk = chunk,
                                           .flags = P2S_F_ACK };
                member_push(m, &a);
        }
}

void member_on_verified(struct member *m, const uint8_t *file_hash, uint64_t now)
{
        if (m->state != MEMBER_VERIFYING)
                return;
        if (!file_hash || memcmp(file_hash, m->mf.file_hash, P2S_HASH_SIZE)) {
                member_exit_with(m, MEMBER_EXIT_VERIFY, "whole-file SHA-256 does not match the manifest%s",
                                 file_hash ? "" : " (file could not be read)");
                return;
        }
        member_simple(m, MEMBER_ACT_FINALIZE, P2S_NO_CHUNK);
        if (!member_set_state(m, MEMBER_COMPLETE))
                return;
        m->last_heard = now;
        /* a new exchange: the backoff lost REQs put on the RTO is no reason
         * to wait longer for this one */
        m->complete_rto = rtt_base(&m->rtt);
        m->complete_deadline = now + m->complete_rto;
        member_send_twice(m, P2S_COMPLETE, P2S_NO_CHUNK, false);
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
        struct member_action bye = { .type = MEMBER_ACT_SEND, .msg = P2S_BYE, .chunk = P2S_NO_CHUNK, .twice = true };
        member_push_critical(m, &bye);
        if (m->state == MEMBER_COMPLETE)
                member_exit_with(m, 0, "swarm complete");
        else
                member_exit_with(m, MEMBER_EXIT_SWARM, "server ended the swarm before this copy was complete");
}

void member_on_error(struct member *m, uint16_t code, const char *reason, bool fatal, uint64_t now)
{
        m->last_heard = now;
        if (fatal) {
                m->exit_err = code;
                member_exit_with(m, MEMBER_EXIT_SERVER, "server: %s", reason);
        }
        else
                m->stats.dropped_msgs++;
}

void member_on_ping(struct member *m, bool ack, bool over_tcp, uint64_t now)
{
        m->last_heard = now;
        if (m->state == MEMBER_EXITED || ack)
                return;
        /* The server pings over TCP once its datagram ones went unanswered:
         * the answer goes the same way. Under load (a thousand members, its
         * socket full of REQs) a datagram answer may be lost every time, and
         * a member done and waiting for DONE says nothing else. */
        struct member_action a = { .type = MEMBER_ACT_SEND, .msg = P2S_PING, .chunk = P2S_NO_CHUNK,
                                   .flags = P2S_F_ACK, .reliable = over_tcp };
        member_push(m, &a);
}

void member_on_disconnect(struct member *m, const char *why, uint64_t now)
{
        member_exit_with(m, MEMBER_EXIT_GONE, "lost the connection to the server: %s", why);
}

void member_fail(struct member *m, const char *reason, uint64_t now)
{
        member_exit_with(m, MEMBER_EXIT_FAIL, "%s", reason);
}
