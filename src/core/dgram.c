/* SPDX-License-Identifier: MIT */
/* Chunk transfer over datagrams. See dgram.h for the scheme. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "core/dgram.h"
#include "util/bitmap.h"
#include "util/rtt.h"

/* a report per this many new fragments keeps the sender's window moving
 * without waiting for a timeout (cwnd_min is larger than it) */
#define DGRAM_STATUS_EVERY 8
#define DGRAM_CWND_MIN 16
/* Silent probes of a chunk sent at the RTO before its timer starts to double:
 * at 20 % loss a probe round trip fails one time in three, so two in a row
 * fail one time in nine, mostly for the last chunks of a transfer, when
 * nothing else can show the peer alive (10 clients x 8 MiB, tcp control,
 * 20 % loss, same hour: 2.17-2.31 x the lossless time against 2.47-3.19 x,
 * slowest round 0.52 s against 0.75 s). A peer that is gone still meets
 * the doubling, and is found out after max_tries probes and silent_min. */
#define DGRAM_PATIENT_PROBES 2
#define DGRAM_INIT_WINDOW (64u * 1408u)
/* the window never holds fewer than this many fragments of the current size */
#define DGRAM_MIN_FRAGS 4

void dgram_config_defaults(struct dgram_config *c, uint32_t dgram_size)
{
        uint32_t payload = dgram_size - P2S_HDR_SIZE - P2S_FRAG_SIZE;
        if (payload > UINT16_MAX)
                payload = UINT16_MAX;
        uint32_t first = P2S_DEFAULT_DGRAM - P2S_HDR_SIZE - P2S_FRAG_SIZE;
        if (first > payload)
                first = payload;
        /* the first window is 88 KiB (64 fragments of a 1500-byte path),
         * in fewer fragments when they are smaller, but not below the floor */
        unsigned init = DGRAM_INIT_WINDOW / first;
        if (init > 64)
                init = 64;
        *c = (struct dgram_config){
                .frag_size = (uint16_t)first, .frag_max = (uint16_t)payload,
                .cwnd_init = init, .cwnd_min = DGRAM_CWND_MIN, .cwnd_max = 8192,
                /* a timeout only probes (one fragment), so its floor can
                 * sit near the real round trip: at 20 ms, 10 clients x 8 MiB
                 * at 20 % loss spent most of their time waiting on it
                 * (5.0 x the lossless time, 3.2 x at 5 ms); the window cuts
                 * keep their own, longer period */
                .rto_initial_us = 50000, .rto_min_us = 5000, .rto_max_us = 2000000,
                .cut_every_us = 20000,
                .max_tries = 12, .silent_min_us = 10000000,
                .max_partial = 256,
        };
}

/* ---- sender -------------------------------------------------------------- */

struct txc {
        uint8_t kind;
        uint16_t flags;
        uint32_t chunk;
        struct buf *data;
        uint16_t frag;          /* payload bytes per fragment, fixed at the first send */
        bool sized;             /* frag chosen (at the first send, or cut again small) */
        uint16_t count;         /* fragments */
        unsigned weight;        /* window units (fragments of frag_size) per fragment */
        uint16_t next_new;      /* first fragment never sent */
        struct bitmap resend;   /* fragments reported missing, to send again */
        struct bitmap round;    /* the holes of the last report acted on (not its probe) */
        unsigned inflight;      /* fragments of this chunk counted in tx->inflight */
        uint32_t *sent_at;      /* per fragment: us after first_sent it went out, or
                                 * SENT_TWICE (Karn: its answer times nothing) */
        unsigned tries;         /* probes since the last sign of life */
        unsigned lost_probes;   /* probes unanswered while the peer answered others */
        bool retransmitted;
        uint64_t first_sent, deadline, rto;
        uint64_t last_probe;    /* its first send, then its latest probe */
        uint64_t quiet_until;   /* holes just re-sent: later reports of them are stale */
};

#define SENT_TWICE UINT32_MAX

struct dgram_tx {
        struct dgram_config cfg;
        struct txc **q;
        size_t n, cap;
        size_t pending_bytes;
        double cwnd, ssthresh;
        unsigned inflight;
        struct rtt rtt;
        uint64_t recovery_until;        /* one window cut per round trip, at most per cut_every */
        bool heard;                     /* any FRAG_ACK or FRAG_NACK yet */
        uint64_t last_heard;            /* the latest */
        struct dgram_tx_stats st;
};

struct dgram_tx *dgram_tx_new(const struct dgram_config *cfg)
{
        struct dgram_tx *tx = calloc(1, sizeof(*tx));
        if (!tx)
                return NULL;
        tx->cfg = *cfg;
        /* cfg.frag_max is the size chunks are cut into: lowered after a black hole */
        if (tx->cfg.frag_max < tx->cfg.frag_size)
                tx->cfg.frag_max = tx->cfg.frag_size;
        tx->cwnd = cfg->cwnd_init;
        tx->ssthresh = cfg->cwnd_max;
        rtt_init(&tx->rtt, cfg->rto_initial_us, cfg->rto_min_us, cfg->rto_max_us);
        return tx;
}

static void txc_free(struct txc *c)
{
        buf_unref(c->data);
        bitmap_fini(&c->resend);
        bitmap_fini(&c->round);
        free(c->sent_at);
        free(c);
}

struct dgram_tx *dgram_tx_free(struct dgram_tx *tx)
{
        if (!tx)
                return NULL;
        for (size_t i = 0; i < tx->n; i++)
                txc_free(tx->q[i]);
        free(tx->q);
        free(tx);
        return NULL;
}

static struct txc *tx_find(struct dgram_tx *tx, uint8_t kind, uint32_t chunk, size_t *pos)
{
        for (size_t i = 0; i < tx->n; i++) {
                if (tx->q[i]->chunk == chunk && tx->q[i]->kind == kind) {
                        if (pos)
                                *pos = i;
                        return tx->q[i];
                }
        }
        return NULL;
}

int dgram_tx_push(struct dgram_tx *tx, uint8_t kind, uint16_t flags, uint32_t chunk, struct buf *data, uint64_t now)
{
        if (tx_find(tx, kind, chunk, NULL))
                return 0;
        if (tx->n == tx->cap) {
                size_t ncap = tx->cap ? tx->cap * 2 : 32;
                struct txc **nq = realloc(tx->q, ncap * sizeof(*nq));
                if (!nq)
                        return -ENOMEM;
                tx->q = nq;
                tx->cap = ncap;
        }
        struct txc *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->kind = kind;
        c->flags = flags;
        c->chunk = chunk;
        /* room for the most fragments it can be cut into; the size is
         * chosen when it first goes out */
        c->frag = tx->cfg.frag_size;
        c->count = (uint16_t)((data->len + c->frag - 1) / c->frag);
        c->weight = 1;
        c->sent_at = malloc(((size_t)c->count + 1) * sizeof(*c->sent_at));
        if (!c->sent_at || bitmap_init(&c->resend, c->count) < 0 || bitmap_init(&c->round, c->count) < 0) {
                bitmap_fini(&c->resend);
                free(c->sent_at);
                free(c);
                return -ENOMEM;
        }
        c->data = buf_ref(data);
        c->rto = tx->rtt.rto;
        c->deadline = UINT64_MAX;
        tx->q[tx->n++] = c;
        tx->pending_bytes += data->len;
        return 0;
}

static void fill_frag(const struct txc *c, uint16_t index, struct dgram_frag *out)
{
        uint32_t off = (uint32_t)index * c->frag;
        uint32_t len = c->data->len - off < c->frag ? c->data->len - off : c->frag;
        *out = (struct dgram_frag){
                .kind = c->kind, .flags = c->flags, .chunk = c->chunk,
                .f = { .kind = c->kind, .index = index, .count = c->count,
                       .frag_size = c->frag, .chunk_len = c->data->len },
                .payload = c->data->data + off, .len = (uint16_t)len,
        };
}

/* Cuts a chunk about to go out for the first time at the current ceiling, in
 * equal fragments (65536 bytes at most 65463 a fragment: two of 32768, not
 * one and a runt). */
static void size_chunk(const struct dgram_tx *tx, struct txc *c)
{
        uint32_t len = c->data->len, n = (len + tx->cfg.frag_max - 1) / tx->cfg.frag_max;  /* len > 0 */
        c->frag = (uint16_t)((len + n - 1) / n);
        if (c->frag < tx->cfg.frag_size)
                c->frag = tx->cfg.frag_size < len ? tx->cfg.frag_size : (uint16_t)len;
        c->count = (uint16_t)((len + c->frag - 1) / c->frag);
        c->weight = (c->frag + tx->cfg.frag_size - 1u) / tx->cfg.frag_size;
        c->sized = true;
}

/* Two probes of a chunk cut large went unanswered: its datagrams may never
 * get through (a path narrower than its route: a tunnel, or an MTU black
 * hole), so it goes again from the start in fragments of frag_size, which
 * the receiver takes as a fresh cut, and no chunk is cut larger than half
 * the failed size again. On a merely lossy path this costs a chunk sent
 * twice now and then, and a lower ceiling. */
static void recut(struct dgram_tx *tx, struct txc *c, uint64_t now)
{
        uint16_t base = tx->cfg.frag_size, ceiling = c->frag / 2 < base ? base : c->frag / 2;
        if (tx->cfg.frag_max > ceiling)
                tx->cfg.frag_max = ceiling;
        tx->inflight -= c->inflight * c->weight;
        c->inflight = 0;
        c->frag = base;
        c->count = (uint16_t)((c->data->len + base - 1) / base);
        c->weight = 1;
        c->next_new = 0;
        bitmap_clear_all(&c->resend);
        bitmap_clear_all(&c->round);
        c->retransmitted = true;
        c->deadline = UINT64_MAX;       /* until its first fragment goes again */
        c->last_probe = now;
        tx->st.recuts++;
}

static void sent_one(struct dgram_tx *tx, struct txc *c, uint16_t index, bool again, uint64_t now)
{
        c->inflight++;
        tx->inflight += c->weight;
        if (!c->first_sent)
                c->first_sent = c->last_probe = now;
        uint64_t at = now - c->first_sent;
        c->sent_at[index] = again || at >= SENT_TWICE ? SENT_TWICE : (uint32_t)at;
        /* from the latest send: what the timer waits for is the report
         * on the fragment sent last */
        if (c->deadline == UINT64_MAX || c->deadline < now + c->rto)
                c->deadline = now + c->rto;
}

size_t dgram_tx_next(struct dgram_tx *tx, uint64_t now, struct dgram_frag *out, size_t max)
{
        size_t k = 0;
        /* holes first: they hold up whole chunks at the receiver */
        for (size_t i = 0; i < tx->n && k < max && tx->inflight < (unsigned)tx->cwnd; i++) {
                struct txc *c = tx->q[i];
                for (size_t b = 0; bitmap_count(&c->resend) && k < max && tx->inflight < (unsigned)tx->cwnd;) {
                        b = bitmap_next_set(&c->resend, b);
                        if (b >= c->count)
                                break;
                        bitmap_clear(&c->resend, b);
                        fill_frag(c, (uint16_t)b, &out[k++]);
                        sent_one(tx, c, (uint16_t)b, true, now);
                        tx->st.frags_resent++;
                }
        }
        for (size_t i = 0; i < tx->n && k < max && tx->inflight < (unsigned)tx->cwnd; i++) {
                struct txc *c = tx->q[i];
                if (!c->sized && c->data->len) {
                        size_chunk(tx, c);
                        tx->st.chunks_sent++;
                }
                while (c->next_new < c->count && k < max && tx->inflight < (unsigned)tx->cwnd) {
                        sent_one(tx, c, c->next_new, false, now);
                        fill_frag(c, c->next_new++, &out[k++]);
                        tx->st.frags_sent++;
                }
        }
        return k;
}

static void loss(struct dgram_tx *tx, uint64_t now)
{
        if (now < tx->recovery_until)
                return;
        /* a few fragments of the current size stay in flight, or one lost
         * would stall the path until a timeout */
        unsigned floor = DGRAM_MIN_FRAGS * ((tx->cfg.frag_max + tx->cfg.frag_size - 1u) / tx->cfg.frag_size);
        if (floor < tx->cfg.cwnd_min)
                floor = tx->cfg.cwnd_min;
        tx->ssthresh = tx->cwnd / 2 < floor ? floor : tx->cwnd / 2;
        tx->cwnd = tx->ssthresh;
        /* One cut per round trip, but never more often than cut_every: on
         * loopback or a LAN the round trip is well under a millisecond,
         * and at a steady random loss a cut per round trip keeps the
         * window at its floor (10 clients x 8 MiB at 20 % loss: 5.3 x the
         * lossless time, against 3.3 x). Congestion that lasts still
         * halves the window 50 times a second. */
        uint64_t period = tx->rtt.have_sample ? tx->rtt.srtt : tx->rtt.rto;
        tx->recovery_until = now + (period > tx->cfg.cut_every_us ? period : tx->cfg.cut_every_us);
}

/* A report is sent when a fragment arrives that is the highest the
 * receiver has (a new highest, the last one, or a probe of it), so it
 * answers that fragment: a round trip, unless the fragment went out twice.
 * Timing reports, not only whole chunks sent once, keeps the estimate
 * alive on a lossy path, where few chunks of many fragments lose none (at
 * 20 % loss 0.8^47 of 64 KiB chunks: the RTO stayed at its first guess). */
static void sample_report(struct dgram_tx *tx, const struct txc *c, long hi, uint64_t now)
{
        if (hi < 0 || hi >= (long)c->next_new || c->sent_at[hi] == SENT_TWICE)
                return;
        uint64_t sent = c->first_sent + c->sent_at[hi];
        if (now >= sent)
                rtt_sample(&tx->rtt, now - sent);
}

void dgram_tx_on_ack(struct dgram_tx *tx, uint8_t kind, uint32_t chunk, uint64_t now)
{
        size_t pos;
        tx->heard = true;
        tx->last_heard = now;
        struct txc *c = tx_find(tx, kind, chunk, &pos);
        if (!c)
                return;         /* a repeated ACK */
        /* in order on a sane path: the last fragment completed it */
        if (!c->retransmitted)
                sample_report(tx, c, (long)c->count - 1, now);
        tx->inflight -= c->inflight * c->weight;
        /* grow: slow start below ssthresh, then about one fragment per window */
        double units = (double)c->count * c->weight;
        if (tx->cwnd < tx->ssthresh)
                tx->cwnd += units;
        else
                tx->cwnd += units * units / tx->cwnd;
        if (tx->cwnd > tx->cfg.cwnd_max)
                tx->cwnd = tx->cfg.cwnd_max;
        tx->pending_bytes -= c->data->len;
        txc_free(c);
        memmove(&tx->q[pos], &tx->q[pos + 1], (tx->n - pos - 1) * sizeof(*tx->q));
        tx->n--;
}

/* Whether a report was made after some of this round's re-sent fragments
 * arrived: it shows one of them received (below base, or clear in the
 * map). One made before shows them all still missing, and is stale. */
static bool round_seen(const struct txc *c, uint16_t base, const uint8_t *map, size_t nbits)
{
        for (size_t i = bitmap_next_set(&c->round, 0); i < c->count; i = bitmap_next_set(&c->round, i + 1)) {
                if (i < base)
                        return true;
                if (i - base < nbits && !(map[(i - base) / 8] & (1u << ((i - base) % 8))))
                        return true;
        }
        return false;
}

void dgram_tx_on_nack(struct dgram_tx *tx, uint8_t kind, uint32_t chunk, uint16_t base,
                      const uint8_t *map, size_t map_len, uint64_t now)
{
        tx->heard = true;
        tx->last_heard = now;
        struct txc *c = tx_find(tx, kind, chunk, NULL);
        if (!c)
                return;
        tx->st.nacks++;
        c->tries = 0;           /* the peer is alive: no more backoff */
        c->lost_probes = 0;
        c->rto = tx->rtt.rto;
        c->deadline = now + c->rto;
        /* A report sent before our re-sends arrived would make us send them
         * twice; one that shows some of them arrived was sent after the
         * probe that ends the round (the receiver does not report on re-sent
         * holes, and datagrams of one sender arrive in order on a sane
         * path), so what it still lacks is lost again. */
        size_t nbits = map_len * 8;
        /* The highest fragment the receiver has: holes below it are lost
         * (datagrams of one sender arrive in order on a sane path); what
         * was sent beyond it is still on its way. */
        long hi = (long)base - 1;
        for (size_t i = 0; i < nbits && base + i < c->count; i++)
                if (!(map[i / 8] & (1u << (i % 8))))
                        hi = (long)(base + i);
        sample_report(tx, c, hi, now);
        if (now < c->quiet_until && !round_seen(c, base, map, nbits))
                return;
        bool any = false;
        for (size_t i = 0; i < nbits && (long)(base + i) < hi; i++) {
                size_t frag = base + i;
                if (frag < c->next_new && (map[i / 8] & (1u << (i % 8))) && bitmap_set(&c->resend, frag)) {
                        if (!any)
                                bitmap_clear_all(&c->round);
                        bitmap_set(&c->round, frag);
                        any = true;
                }
        }
        unsigned still = c->next_new > hi + 1 ? (unsigned)(c->next_new - (hi + 1)) : 0;
        tx->inflight -= c->inflight * c->weight;
        c->inflight = still;
        tx->inflight += still * c->weight;
        if (any) {
                /* The highest fragment it has, sent again after the holes,
                 * makes it report at once what the round did not mend, where
                 * the chunk's timer would wait an RTO: a probe, one datagram. */
                if (hi >= (long)base && hi < (long)c->next_new)
                        bitmap_set(&c->resend, (size_t)hi);
                c->retransmitted = true;
                c->quiet_until = now + (tx->rtt.have_sample ? tx->rtt.srtt + tx->rtt.rttvar : tx->rtt.rto / 2);
                loss(tx, now);
        }
}

bool dgram_tx_on_tick(struct dgram_tx *tx, uint64_t now)
{
        for (size_t i = 0; i < tx->n; i++) {
                struct txc *c = tx->q[i];
                if (c->deadline > now)
                        continue;
                /* The peer answered about other chunks since this one was
                 * last probed: it is there and the path works, so the probe
                 * or its report was lost at random, and at 20 % loss a probe
                 * round fails one time in three: backing off on each would
                 * leave some chunk of a big transfer seconds behind. Probe
                 * again after the measured RTO; only a chunk stuck through
                 * many such probes means a broken peer. Backoff, and the
                 * silence verdict, are for a peer that says nothing. */
                bool alive = tx->heard && tx->last_heard > c->last_probe;
                /* and silent for a while, not only for max_tries probes: a
                 * fast path's probes come 5 ms apart, and a peer busy for a
                 * few seconds is not a gone one */
                uint64_t heard = tx->heard && tx->last_heard > c->first_sent ? tx->last_heard : c->first_sent;
                if (alive ? ++c->lost_probes > 4 * tx->cfg.max_tries
                          : ++c->tries > tx->cfg.max_tries && now - heard >= tx->cfg.silent_min_us)
                        return true;
                tx->st.timeouts++;
                loss(tx, now);
                if (c->frag > tx->cfg.frag_size && c->tries + c->lost_probes >= 2) {
                        recut(tx, c, now);
                        continue;
                }
                tx->st.probes++;
                c->retransmitted = true;
                tx->inflight -= c->inflight * c->weight;
                c->inflight = 0;
                /* the last fragment sent makes the receiver report its holes */
                uint16_t last = c->next_new ? c->next_new - 1 : 0;
                if (c->next_new == 0)
                        c->next_new = 1;
                c->sized = true;        /* what went out stays cut as it went */
                bitmap_set(&c->resend, last);
                if (alive || c->tries <= DGRAM_PATIENT_PROBES)
                        c->rto = tx->rtt.rto;
                else
                        c->rto = c->rto * 2 > tx->cfg.rto_max_us ? tx->cfg.rto_max_us : c->rto * 2;
                c->deadline = now + c->rto;
                c->last_probe = now;
        }
        return false;
}

uint64_t dgram_tx_next_deadline(const struct dgram_tx *tx)
{
        uint64_t d = UINT64_MAX;
        for (size_t i = 0; i < tx->n; i++)
                if (tx->q[i]->deadline < d)
                        d = tx->q[i]->deadline;
        return d;
}

size_t dgram_tx_pending_bytes(const struct dgram_tx *tx)
{
        return tx->pending_bytes;
}

/* Not const: the window and RTT are copied into the counters on the way out. */
const struct dgram_tx_stats *dgram_tx_stats(struct dgram_tx *tx)
{
        tx->st.cwnd = (unsigned)tx->cwnd;
        tx->st.frag_size = tx->cfg.frag_max;
        tx->st.srtt_us = tx->rtt.srtt;
        return &tx->st;
}

/* ---- receiver ------------------------------------------------------------ */

struct rxc {
        uint8_t kind;
        uint32_t chunk;
        uint32_t chunk_len;
        uint16_t frag_size, count;
        uint16_t highest;       /* highest fragment index received */
        struct buf *data;
        struct bitmap got;
        uint64_t last_seen;
};

struct dgram_rx {
        struct rxc **v;
        unsigned n, max;
};

struct dgram_rx *dgram_rx_new(unsigned max_partial)
{
        struct dgram_rx *rx = calloc(1, sizeof(*rx));
        if (!rx)
                return NULL;
        rx->max = max_partial ? max_partial : 1;
        rx->v = calloc(rx->max, sizeof(*rx->v));
        if (!rx->v) {
                free(rx);
                return NULL;
        }
        return rx;
}

static void rxc_free(struct rxc *c)
{
        buf_unref(c->data);
        bitmap_fini(&c->got);
        free(c);
}

struct dgram_rx *dgram_rx_free(struct dgram_rx *rx)
{
        if (!rx)
                return NULL;
        for (unsigned i = 0; i < rx->n; i++)
                rxc_free(rx->v[i]);
        free(rx->v);
        free(rx);
        return NULL;
}

static void rx_remove(struct dgram_rx *rx, unsigned i)
{
        rxc_free(rx->v[i]);
        rx->v[i] = rx->v[--rx->n];
}

static void make_nack(const struct rxc *c, struct dgram_rx_result *res)
{
        size_t first = bitmap_next_clear(&c->got, 0);
        if (first >= c->count)
                return;
        res->nack = true;
        res->nack_base = (uint16_t)first;
        memset(res->nack_map, 0, sizeof(res->nack_map));
        size_t span = c->count - first;
        if (span > P2S_NACK_MAP_MAX * 8)
                span = P2S_NACK_MAP_MAX * 8;
        for (size_t i = 0; i < span; i++)
                if (!bitmap_test(&c->got, first + i))
                        res->nack_map[i / 8] |= (uint8_t)(1u << (i % 8));
        res->nack_len = (span + 7) / 8;
}

int dgram_rx_on_frag(struct dgram_rx *rx, uint8_t kind, uint32_t chunk, const struct p2s_frag *f,
                     const uint8_t *payload, uint16_t len, uint64_t now, struct dgram_rx_result *res)
{
        res->chunk = NULL;
        res->nack = false;
        struct rxc *c = NULL;
        unsigned idx = 0;
        for (unsigned i = 0; i < rx->n; i++) {
                if (rx->v[i]->chunk == chunk && rx->v[i]->kind == kind) {
                        c = rx->v[i];
                        idx = i;
                        break;
                }
        }
        if (c && (c->chunk_len != f->chunk_len || f->frag_size > c->frag_size))
                return DGRAM_RX_DROP;   /* another chunk, or a cut it gave up on */
        if (c && f->frag_size < c->frag_size) {
                /* cut again smaller: the larger datagrams do not get through
                 * (a path narrower than its route says); start over */
                bitmap_fini(&c->got);
                if (bitmap_init(&c->got, f->count) < 0) {
                        rx_remove(rx, idx);
                        return DGRAM_RX_DROP;
                }
                c->frag_size = f->frag_size;
                c->count = f->count;
                c->highest = 0;
        }
        if (!c) {
                if (rx->n == rx->max) {
                        /* the stalest reassembly makes room; its sender will probe again */
                        unsigned old = 0;
                        for (unsigned i = 1; i < rx->n; i++)
                                if (rx->v[i]->last_seen < rx->v[old]->last_seen)
                                        old = i;
                        rx_remove(rx, old);
                }
                c = calloc(1, sizeof(*c));
                if (!c)
                        return DGRAM_RX_DROP;
                c->kind = kind;
                c->chunk = chunk;
                c->chunk_len = f->chunk_len;
                c->frag_size = f->frag_size;
                c->count = f->count;
                c->data = buf_new(f->chunk_len);
                if (!c->data || bitmap_init(&c->got, f->count) < 0) {
                        rxc_free(c);
                        return DGRAM_RX_DROP;
                }
                idx = rx->n;
                rx->v[rx->n++] = c;
        }
        c->last_seen = now;
        bool fresh = bitmap_set(&c->got, f->index);
        bool probe = !fresh && f->index >= c->highest;
        bool advance = f->index > c->highest;
        if (f->index > c->highest)
                c->highest = f->index;
        if (fresh)
                memcpy(c->data->data + (size_t)f->index * c->frag_size, payload, len);
        if (bitmap_full(&c->got)) {
                res->chunk = buf_ref(c->data);
                rx_remove(rx, idx);
                return DGRAM_RX_COMPLETE;
        }
        /* Report where we are: when a round ends (the last fragment), when the
         * sender probes (our highest fragment again), and every so often on a
         * long chunk so its window opens before the chunk is whole. A re-sent
         * hole arriving is no reason to talk: that would feed a storm. */
        if ((fresh && f->index == c->count - 1) || probe ||
            (fresh && advance && bitmap_count(&c->got) % DGRAM_STATUS_EVERY == 0))
                make_nack(c, res);
        return DGRAM_RX_PARTIAL;
}
