/* SPDX-License-Identifier: MIT */
/* core/dgram: chunk transfer over datagrams, sender and receiver wired
 * together in memory with a simulated clock and a seeded loss pattern.
 * Invariants: every chunk arrives intact whatever is lost, only the holes
 * are sent again, the window grows without loss and shrinks with it, and
 * a peer that answers nothing is reported silent in bounded time. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "core/dgram.h"
#include "runner.h"

#define MS 1000ull

struct link {
        struct dgram_config cfg;
        struct dgram_tx *tx;
        struct dgram_rx *rx;
        uint64_t now, rng;
        double loss_data, loss_back;    /* sender -> receiver, and the reports back */
        uint16_t drop_above;            /* a path that loses every fragment larger (0: none) */
        unsigned delivered, nacks, frags;
        struct buf *chunks[64];
        bool got[64];
};

static bool lost(struct link *l, double p)
{
        l->rng ^= l->rng << 13, l->rng ^= l->rng >> 7, l->rng ^= l->rng << 17;
        return p > 0 && (double)(l->rng >> 11) * 0x1p-53 < p;
}

static void link_init(struct link *l, uint32_t dgram, unsigned nchunks, uint32_t chunk_len, uint64_t seed)
{
        memset(l, 0, sizeof(*l));
        dgram_config_defaults(&l->cfg, dgram);
        l->tx = dgram_tx_new(&l->cfg);
        l->rx = dgram_rx_new(l->cfg.max_partial);
        ck_assert(l->tx && l->rx);
        l->now = 1000 * MS;
        l->rng = seed | 1;
        for (unsigned c = 0; c < nchunks; c++) {
                l->chunks[c] = buf_new(chunk_len - c % 3);      /* a short last fragment now and then */
                for (uint32_t i = 0; i < l->chunks[c]->len; i++)
                        l->chunks[c]->data[i] = (uint8_t)(c * 131 + i * 7);
                ck_assert_int_eq(dgram_tx_push(l->tx, P2S_DATA, 0, c, l->chunks[c], l->now), 0);
        }
}

static void link_fini(struct link *l)
{
        for (unsigned c = 0; c < 64; c++)
                buf_unref(l->chunks[c]);
        dgram_tx_free(l->tx);
        dgram_rx_free(l->rx);
}

/* Runs until every chunk arrived, the sender reports the peer silent, or
 * max_steps. Returns true when the sender gave up. */
static bool run(struct link *l, unsigned nchunks, unsigned max_steps)
{
        struct dgram_frag fr[32];
        for (unsigned step = 0; step < max_steps && l->delivered < nchunks; step++) {
                size_t n = dgram_tx_next(l->tx, l->now, fr, 32);
                for (size_t i = 0; i < n; i++) {
                        l->frags++;
                        if (lost(l, l->loss_data) || (l->drop_above && fr[i].len > l->drop_above))
                                continue;
                        if (l->got[fr[i].chunk]) {
                                /* finished here: a repeated fragment gets the ACK again */
                                if (!lost(l, l->loss_back))
                                        dgram_tx_on_ack(l->tx, fr[i].kind, fr[i].chunk, l->now);
                                continue;
                        }
                        struct dgram_rx_result res;
                        int r = dgram_rx_on_frag(l->rx, fr[i].kind, fr[i].chunk, &fr[i].f, fr[i].payload,
                                                 fr[i].len, l->now, &res);
                        ck_assert_int_ne(r, DGRAM_RX_DROP);
                        if (r == DGRAM_RX_COMPLETE) {
                                struct buf *want = l->chunks[fr[i].chunk];
                                ck_assert_uint_eq(res.chunk->len, want->len);
                                ck_assert_mem_eq(res.chunk->data, want->data, want->len);
                                buf_unref(res.chunk);
                                l->got[fr[i].chunk] = true;
                                l->delivered++;
                                if (!lost(l, l->loss_back))
                                        dgram_tx_on_ack(l->tx, fr[i].kind, fr[i].chunk, l->now);
                        } else if (res.nack) {
                                l->nacks++;
                                if (!lost(l, l->loss_back))
                                        dgram_tx_on_nack(l->tx, fr[i].kind, fr[i].chunk, res.nack_base,
                                                         res.nack_map, res.nack_len, l->now);
                        }
                }
                if (n == 0) {
                        uint64_t d = dgram_tx_next_deadline(l->tx);
                        ck_assert_msg(d != UINT64_MAX, "nothing to send and no timer: stuck");
                        l->now = d > l->now ? d : l->now;
                        if (dgram_tx_on_tick(l->tx, l->now))
                                return true;
                } else {
                        l->now += 100;  /* 0.1 ms per batch on the wire */
                }
        }
        return false;
}

START_TEST(no_loss)
{
        struct link l;
        link_init(&l, P2S_DEFAULT_DGRAM, 20, 65536, 1);
        ck_assert(!run(&l, 20, 100000));
        ck_assert_uint_eq(l.delivered, 20);
        const struct dgram_tx_stats *st = dgram_tx_stats(l.tx);
        ck_assert_uint_eq(st->frags_resent, 0);
        ck_assert_uint_eq(st->probes, 0);
        ck_assert_uint_gt(st->cwnd, l.cfg.cwnd_init);           /* grew */
        ck_assert_uint_eq(dgram_tx_pending_bytes(l.tx), 0);
        link_fini(&l);
}
END_TEST

/* nchunks of 64 KiB over a link losing that share of data and of reports
 * alike: every one arrives intact, the peer is never given up on. */
static void run_lossy(struct link *l, uint32_t dgram, unsigned nchunks, double loss, uint64_t seed,
                      unsigned max_steps)
{
        link_init(l, dgram, nchunks, 65536, seed);
        l->loss_data = l->loss_back = loss;
        ck_assert_msg(!run(l, nchunks, max_steps), "gave up at %.0f %% loss", loss * 100);
        ck_assert_uint_eq(l->delivered, nchunks);
}

/* 1 %, 10 %, 30 % of data and of reports lost, several seeds each. */
START_TEST(lossy)
{
        static const double loss[] = { 0.01, 0.10, 0.30 };
        struct link l;
        run_lossy(&l, P2S_DEFAULT_DGRAM, 24, loss[_i % 3], 7 + (uint64_t)_i, 2000000);
        const struct dgram_tx_stats *st = dgram_tx_stats(l.tx);
        /* selective: what is sent again is about what was lost, not whole chunks */
        double sent = (double)(st->frags_sent + st->frags_resent);
        ck_assert_msg(st->frags_resent < sent * (loss[_i % 3] * 3 + 0.02),
                      "%llu of %.0f fragments re-sent at %.0f %% loss",
                      (unsigned long long)st->frags_resent, sent, loss[_i % 3] * 100);
        ck_assert_uint_ge(st->cwnd, l.cfg.cwnd_min);
        link_fini(&l);
}
END_TEST

/* Big datagrams, and chunks of many fragments: the receiver reports every
 * few fragments, so the window never waits for a timeout. */
START_TEST(long_chunks)
{
        struct link l;
        link_init(&l, 600, 4, 1 << 20, 3);     /* ~1900 fragments a chunk, window 64 */
        ck_assert(!run(&l, 4, 2000000));
        ck_assert_uint_eq(l.delivered, 4);
        ck_assert_uint_eq(dgram_tx_stats(l.tx)->probes, 0);
        link_fini(&l);
}
END_TEST

/* Loss shrinks the window; it never goes below its floor. */
START_TEST(window_shrinks)
{
        struct link l;
        link_init(&l, P2S_DEFAULT_DGRAM, 8, 65536, 5);
        ck_assert(!run(&l, 3, 100000));         /* grow first */
        unsigned grown = dgram_tx_stats(l.tx)->cwnd;
        l.loss_data = 0.5;
        ck_assert(!run(&l, 8, 2000000));
        ck_assert_uint_lt(dgram_tx_stats(l.tx)->cwnd, grown);
        ck_assert_uint_ge(dgram_tx_stats(l.tx)->cwnd, l.cfg.cwnd_min);
        link_fini(&l);
}
END_TEST

/* Nothing comes back: the sender probes with backoff and reports the peer
 * silent after max_tries, in bounded simulated time. */
START_TEST(silent_peer)
{
        struct link l;
        link_init(&l, P2S_DEFAULT_DGRAM, 2, 65536, 9);
        l.loss_data = l.loss_back = 1.0;      /* a peer that is gone */
        uint64_t start = l.now;
        ck_assert(run(&l, 2, 1000000));
        ck_assert_uint_ge(dgram_tx_stats(l.tx)->probes, l.cfg.max_tries);
        /* 12 probes, backoff from 50 ms to the 2 s cap: well under a minute */
        ck_assert_uint_lt(l.now - start, 60 * 1000 * MS);
        link_fini(&l);
}
END_TEST

/* A sender at the default size, and two chunks of 3000 bytes (all 1, all 2)
 * not yet queued. */
static struct dgram_tx *two_chunk_tx(struct dgram_config *cfg, struct buf **b0, struct buf **b1)
{
        dgram_config_defaults(cfg, P2S_DEFAULT_DGRAM);
        struct dgram_tx *tx = dgram_tx_new(cfg);
        ck_assert_ptr_nonnull(tx);
        *b0 = buf_new(3000);
        *b1 = buf_new(3000);
        memset((*b0)->data, 1, (*b0)->len);
        memset((*b1)->data, 2, (*b1)->len);
        return tx;
}

/* Chunk 0's fragments and probes are all lost while chunk 1 is
 * acknowledged: the peer is there, so chunk 0 is probed again after the
 * measured RTO (50 ms before any sample), no backoff; from the third probe
 * in a row with nothing heard since, the wait doubles. A peer answering
 * others but never this chunk is reported after 4 x max_tries probes. */
START_TEST(alive_peer_no_backoff)
{
        struct dgram_config cfg;
        struct buf *b0, *b1;
        struct dgram_tx *tx = two_chunk_tx(&cfg, &b0, &b1);
        uint64_t t = 1000 * MS;
        ck_assert_int_eq(dgram_tx_push(tx, P2S_DATA, 0, 0, b0, t), 0);
        ck_assert_int_eq(dgram_tx_push(tx, P2S_DATA, 0, 1, b1, t), 0);
        struct dgram_frag fr[16];
        size_t n = dgram_tx_next(tx, t, fr, 16);
        ck_assert_uint_eq(n, 2 * ((3000 + cfg.frag_size - 1) / cfg.frag_size));
        uint64_t rto = cfg.rto_initial_us;
        ck_assert_uint_eq(dgram_tx_next_deadline(tx), t + rto);
        /* chunk 1 is acknowledged 1 ms later: a sample of 1 ms, the RTO
         * its floor, rto_min */
        dgram_tx_on_ack(tx, P2S_DATA, 1, t + 1 * MS);
        /* chunk 0's first timeout, at the RTO it went out with: the peer
         * was heard since, so the next probe is one (sampled) RTO away */
        ck_assert(!dgram_tx_on_tick(tx, t + rto));
        n = dgram_tx_next(tx, t + rto, fr, 16);
        ck_assert_uint_eq(n, 1);                        /* the probe: its last fragment */
        uint64_t d1 = t + rto + cfg.rto_min_us;
        ck_assert_uint_eq(dgram_tx_next_deadline(tx), d1);
        /* nothing heard since: two probes more at the RTO (a lossy round
         * trip fails often), then it backs off */
        uint64_t at = d1;
        for (int silent = 1; silent <= 2; silent++) {
                ck_assert(!dgram_tx_on_tick(tx, at));
                dgram_tx_next(tx, at, fr, 16);
                ck_assert_uint_eq(dgram_tx_next_deadline(tx), at + cfg.rto_min_us);
                at += cfg.rto_min_us;
        }
        ck_assert(!dgram_tx_on_tick(tx, at));
        dgram_tx_next(tx, at, fr, 16);
        ck_assert_uint_eq(dgram_tx_next_deadline(tx), at + 2 * cfg.rto_min_us);
        ck_assert_uint_eq(dgram_tx_stats(tx)->probes, 4);

        /* alive but never answering about chunk 0: each probe heard from
         * elsewhere (a repeated ACK of chunk 1), at the RTO, until 4 x max_tries */
        uint64_t now = dgram_tx_next_deadline(tx);
        unsigned probes = 0;
        bool gave_up = false;
        for (unsigned i = 0; i < 8 * cfg.max_tries && !gave_up; i++) {
                dgram_tx_on_ack(tx, P2S_DATA, 1, now - 1);
                gave_up = dgram_tx_on_tick(tx, now);
                if (gave_up)
                        break;
                probes++;
                dgram_tx_next(tx, now, fr, 16);
                uint64_t d = dgram_tx_next_deadline(tx);
                ck_assert_uint_eq(d - now, cfg.rto_min_us);     /* never backed off */
                now = d;
        }
        ck_assert(gave_up);
        ck_assert_uint_eq(1 + probes, 4 * cfg.max_tries);     /* the first alive probe counted too */
        dgram_tx_free(tx);
        buf_unref(b0);
        buf_unref(b1);
}
END_TEST

/* A peer that was fast (RTO at its 5 ms floor) and then says nothing is
 * given up on after max_tries probes and silent_min of silence, not after
 * the ~5 s that 12 probes from 5 ms take: a member busy for a few seconds
 * is not a gone one. */
START_TEST(silence_takes_time)
{
        struct dgram_config cfg;
        struct buf *b0, *b1;
        struct dgram_tx *tx = two_chunk_tx(&cfg, &b0, &b1);
        uint64_t t = 1000 * MS;
        struct dgram_frag fr[16];
        ck_assert_int_eq(dgram_tx_push(tx, P2S_DATA, 0, 1, b1, t), 0);
        dgram_tx_next(tx, t, fr, 16);
        dgram_tx_on_ack(tx, P2S_DATA, 1, t + 100);      /* a 0.1 ms round trip */
        uint64_t heard = t + 100;
        ck_assert_int_eq(dgram_tx_push(tx, P2S_DATA, 0, 0, b0, heard), 0);
        dgram_tx_next(tx, heard, fr, 16);
        uint64_t now = heard;
        bool gone = false;
        while (!gone && now - heard < 60 * 1000 * MS) {
                now = dgram_tx_next_deadline(tx);
                gone = dgram_tx_on_tick(tx, now);
                dgram_tx_next(tx, now, fr, 16);
        }
        ck_assert(gone);
        ck_assert_uint_ge(dgram_tx_stats(tx)->probes, cfg.max_tries);
        ck_assert_uint_ge(now - heard, cfg.silent_min_us);
        ck_assert_uint_lt(now - heard, cfg.silent_min_us + 2 * cfg.rto_max_us);
        dgram_tx_free(tx);
        buf_unref(b0);
        buf_unref(b1);
}
END_TEST

/* The receiver refuses a fragment that contradicts the ones before it, and
 * makes room for new chunks by forgetting the stalest one. */
START_TEST(receiver_rules)
{
        struct dgram_rx *rx = dgram_rx_new(2);
        uint8_t payload[100] = { 0 };
        struct dgram_rx_result res;
        struct p2s_frag f = { .kind = P2S_DATA, .index = 0, .count = 3, .frag_size = 100, .chunk_len = 250 };
        ck_assert_int_eq(dgram_rx_on_frag(rx, P2S_DATA, 1, &f, payload, 100, 10, &res), DGRAM_RX_PARTIAL);
        struct p2s_frag g = f;
        g.chunk_len = 260;      /* same chunk, another length */
        ck_assert_int_eq(dgram_rx_on_frag(rx, P2S_DATA, 1, &g, payload, 100, 11, &res), DGRAM_RX_DROP);
        /* two more chunks with room for two: chunk 1 (stalest) goes */
        ck_assert_int_eq(dgram_rx_on_frag(rx, P2S_DATA, 2, &f, payload, 100, 12, &res), DGRAM_RX_PARTIAL);
        ck_assert_int_eq(dgram_rx_on_frag(rx, P2S_DATA, 3, &f, payload, 100, 13, &res), DGRAM_RX_PARTIAL);
        /* the last fragment of chunk 1 now starts it afresh: a report of holes 0 and 1 */
        struct p2s_frag last = f;
        last.index = 2;
        ck_assert_int_eq(dgram_rx_on_frag(rx, P2S_DATA, 1, &last, payload, 50, 14, &res), DGRAM_RX_PARTIAL);
        ck_assert(res.nack);
        ck_assert_uint_eq(res.nack_base, 0);
        ck_assert_uint_eq(res.nack_map[0] & 3u, 3u);
        /* the same fragment again (a probe) is answered with the same report */
        ck_assert_int_eq(dgram_rx_on_frag(rx, P2S_DATA, 1, &last, payload, 50, 15, &res), DGRAM_RX_PARTIAL);
        ck_assert(res.nack);
        /* cut again smaller: it starts over (holes 0..4 of 5); a larger cut
         * than the one it holds is one the sender gave up on */
        struct p2s_frag small = { .kind = P2S_DATA, .index = 4, .count = 5, .frag_size = 50, .chunk_len = 250 };
        ck_assert_int_eq(dgram_rx_on_frag(rx, P2S_DATA, 1, &small, payload, 50, 16, &res), DGRAM_RX_PARTIAL);
        ck_assert(res.nack);
        ck_assert_uint_eq(res.nack_base, 0);
        ck_assert_uint_eq(res.nack_map[0] & 0x1fu, 0x0fu);
        ck_assert_int_eq(dgram_rx_on_frag(rx, P2S_DATA, 1, &last, payload, 50, 17, &res), DGRAM_RX_DROP);
        dgram_rx_free(rx);
}
END_TEST

/* A one-chunk sender with every fragment sent at t. */
static struct dgram_tx *sent_chunk(struct dgram_config *cfg, struct buf **b, unsigned frags, uint64_t t)
{
        dgram_config_defaults(cfg, P2S_DEFAULT_DGRAM);
        struct dgram_tx *tx = dgram_tx_new(cfg);
        ck_assert_ptr_nonnull(tx);
        *b = buf_new(frags * cfg->frag_size);
        memset((*b)->data, 5, (*b)->len);
        ck_assert_int_eq(dgram_tx_push(tx, P2S_DATA, 0, 7, *b, t), 0);
        struct dgram_frag fr[64];
        ck_assert_uint_eq(dgram_tx_next(tx, t, fr, 64), frags);
        return tx;
}

/* A report with holes: the holes go out again, then the highest fragment
 * the receiver has (a probe), so that it reports at once what the round
 * did not mend. A report made before the re-sent holes arrived (all of
 * them still missing) is stale and ignored; one that shows some of them
 * arrived is acted on even within the quiet time: the rest were lost again. */
START_TEST(round_ends_with_a_probe)
{
        struct dgram_config cfg;
        struct buf *b;
        uint64_t t = 1000 * MS;
        struct dgram_tx *tx = sent_chunk(&cfg, &b, 10, t);
        struct dgram_frag fr[32];
        /* the receiver lacks 2, 3 and 5 of 0..9 (base 2: bits 0, 1, 3) */
        uint8_t map[2] = { 0x0b, 0 };
        dgram_tx_on_nack(tx, P2S_DATA, 7, 2, map, 1, t + 1 * MS);
        size_t n = dgram_tx_next(tx, t + 1 * MS, fr, 32);
        ck_assert_uint_eq(n, 4);
        ck_assert_uint_eq(fr[0].f.index, 2);
        ck_assert_uint_eq(fr[1].f.index, 3);
        ck_assert_uint_eq(fr[2].f.index, 5);
        ck_assert_uint_eq(fr[3].f.index, 9);            /* the probe, last */
        /* stale: made before the re-sends came, the same three missing */
        dgram_tx_on_nack(tx, P2S_DATA, 7, 2, map, 1, t + 1 * MS + 100);
        ck_assert_uint_eq(dgram_tx_next(tx, t + 1 * MS + 100, fr, 32), 0);
        /* after the probe: 2 and 5 arrived, 3 was lost again (base 3: bit 0) */
        uint8_t map2[1] = { 0x01 };
        dgram_tx_on_nack(tx, P2S_DATA, 7, 3, map2, 1, t + 1 * MS + 200);
        n = dgram_tx_next(tx, t + 1 * MS + 200, fr, 32);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(fr[0].f.index, 3);
        ck_assert_uint_eq(fr[1].f.index, 9);
        dgram_tx_on_ack(tx, P2S_DATA, 7, t + 2 * MS);
        ck_assert_uint_eq(dgram_tx_pending_bytes(tx), 0);
        dgram_tx_free(tx);
        buf_unref(b);
}
END_TEST

/* The receiver reports on its own only as it gets further into a chunk
 * (every few new fragments, and the last one): re-sent holes arriving are
 * never a reason to talk, however many, so a round is answered once, when
 * its probe comes. */
START_TEST(no_report_on_resent_holes)
{
        struct dgram_rx *rx = dgram_rx_new(4);
        uint8_t payload[100] = { 0 };
        struct dgram_rx_result res;
        struct p2s_frag f = { .kind = P2S_DATA, .count = 40, .frag_size = 100, .chunk_len = 4000 };
        /* 0..39 but the first 16, in order: reports at the last one */
        unsigned reports = 0;
        for (uint16_t i = 16; i < 40; i++) {
                f.index = i;
                ck_assert_int_eq(dgram_rx_on_frag(rx, P2S_DATA, 1, &f, payload, 100, 10, &res), DGRAM_RX_PARTIAL);
                reports += res.nack;
        }
        ck_assert_uint_ge(reports, 1);
        /* the 16 holes re-sent, but the last: the count passes two
         * multiples of the report step, and nothing is said */
        for (uint16_t i = 0; i < 15; i++) {
                f.index = i;
                ck_assert_int_eq(dgram_rx_on_frag(rx, P2S_DATA, 1, &f, payload, 100, 11, &res), DGRAM_RX_PARTIAL);
                ck_assert_msg(!res.nack, "reported on re-sent hole %u", i);
        }
        /* the probe (39 again) gets the report: only 15 missing */
        f.index = 39;
        ck_assert_int_eq(dgram_rx_on_frag(rx, P2S_DATA, 1, &f, payload, 100, 12, &res), DGRAM_RX_PARTIAL);
        ck_assert(res.nack);
        ck_assert_uint_eq(res.nack_base, 15);
        dgram_rx_free(rx);
}
END_TEST

/* What the probe at the end of each round buys, on the simulated link
 * (no delay, so every wait is a timer's): 24 chunks at 5 % loss, both
 * ways, over ten seeds. Waiting for the chunk timer after every round took
 * about 207 ms of simulated time on average; the probe brings it under 120. */
START_TEST(lossy_rounds_end_fast)
{
        uint64_t total = 0;
        for (uint64_t seed = 11; seed < 21; seed++) {
                struct link l;
                link_init(&l, P2S_DEFAULT_DGRAM, 24, 65536, seed);
                l.loss_data = l.loss_back = 0.05;
                uint64_t t0 = l.now;
                ck_assert(!run(&l, 24, 2000000));
                ck_assert_uint_eq(l.delivered, 24);
                total += l.now - t0;
                link_fini(&l);
        }
        ck_assert_msg(total / 10 < 120 * MS, "mean %llu us", (unsigned long long)(total / 10));
}
END_TEST

/* A report answers the arrival of the highest fragment the receiver has:
 * its round trip is sampled, even for a chunk that lost fragments (at 20 %
 * loss nearly every one), but not when that fragment went out twice. */
START_TEST(reports_time_the_path)
{
        struct dgram_config cfg;
        struct buf *b;
        uint64_t t = 1000 * MS;
        struct dgram_tx *tx = sent_chunk(&cfg, &b, 10, t);
        /* the last fragment came, 2 and 3 did not (base 2: bits 0, 1) */
        uint8_t map[1] = { 0x03 };
        dgram_tx_on_nack(tx, P2S_DATA, 7, 2, map, 1, t + 3 * MS);
        ck_assert_uint_eq(dgram_tx_stats(tx)->srtt_us, 3 * MS);
        struct dgram_frag fr[8];
        ck_assert_uint_eq(dgram_tx_next(tx, t + 3 * MS, fr, 8), 3);     /* 2, 3 and the probe 9 */
        /* the probe's report: 9 went out twice, so it times nothing */
        uint8_t map2[1] = { 0x01 };
        dgram_tx_on_nack(tx, P2S_DATA, 7, 3, map2, 1, t + 20 * MS);
        ck_assert_uint_eq(dgram_tx_stats(tx)->srtt_us, 3 * MS);
        dgram_tx_free(tx);
        buf_unref(b);
}
END_TEST

/* A chunk's timer waits for the report on the fragment it sent last: it
 * runs from that send, not from the chunk's first. */
START_TEST(timer_from_the_latest_send)
{
        struct dgram_config cfg;
        dgram_config_defaults(&cfg, P2S_DEFAULT_DGRAM);
        cfg.cwnd_init = cfg.cwnd_min = 16;
        struct dgram_tx *tx = dgram_tx_new(&cfg);
        struct buf *b = buf_new(40u * cfg.frag_size);
        memset(b->data, 6, b->len);
        uint64_t t = 1000 * MS;
        ck_assert_int_eq(dgram_tx_push(tx, P2S_DATA, 0, 7, b, t), 0);
        struct dgram_frag fr[64];
        ck_assert_uint_eq(dgram_tx_next(tx, t, fr, 64), 16);
        /* a report on 0..15, all there: the window opens */
        uint8_t map[3] = { 0xff, 0xff, 0xff };
        dgram_tx_on_nack(tx, P2S_DATA, 7, 16, map, 3, t + 5 * MS);
        uint64_t rto = dgram_tx_next_deadline(tx) - (t + 5 * MS);
        ck_assert_uint_eq(dgram_tx_next(tx, t + 10 * MS, fr, 64), 16);
        ck_assert_uint_eq(dgram_tx_next_deadline(tx), t + 10 * MS + rto);
        dgram_tx_free(tx);
        buf_unref(b);
}
END_TEST

/* Losses closer together than cut_every cut the window once: on a path of
 * sub-millisecond round trips, a cut per round trip would pin the window
 * at its floor at any steady random loss. The period is not rto_min: a
 * probe may go sooner than the window may shrink again. */
START_TEST(one_cut_per_cut_period)
{
        struct dgram_config cfg;
        struct buf *b;
        uint64_t t = 1000 * MS;
        struct dgram_tx *tx = sent_chunk(&cfg, &b, 40, t);
        unsigned w = dgram_tx_stats(tx)->cwnd;
        uint8_t map[5] = { 0x01 };      /* base 2: fragment 2 lost, the rest came */
        dgram_tx_on_nack(tx, P2S_DATA, 7, 2, map, 5, t + 300);
        ck_assert_uint_eq(dgram_tx_stats(tx)->cwnd, w / 2);
        struct dgram_frag fr[64];
        ck_assert_uint_gt(dgram_tx_next(tx, t + 300, fr, 64), 0);
        /* the round's report: 2 arrived, 4 (first sent) was lost too */
        uint8_t map2[5] = { 0x01 };
        dgram_tx_on_nack(tx, P2S_DATA, 7, 4, map2, 5, t + 600);
        ck_assert_uint_gt(dgram_tx_next(tx, t + 600, fr, 64), 0);
        ck_assert_uint_eq(dgram_tx_stats(tx)->cwnd, w / 2);
        /* rto_min later it still holds; cut_every later a new loss cuts again */
        ck_assert_uint_lt(cfg.rto_min_us, cfg.cut_every_us);
        uint8_t map3[5] = { 0x01 };
        dgram_tx_on_nack(tx, P2S_DATA, 7, 4, map3, 5, t + 600 + cfg.rto_min_us);
        ck_assert_uint_gt(dgram_tx_next(tx, t + 600 + cfg.rto_min_us, fr, 64), 0);
        ck_assert_uint_eq(dgram_tx_stats(tx)->cwnd, w / 2);
        dgram_tx_on_nack(tx, P2S_DATA, 7, 4, map3, 5, t + 600 + cfg.cut_every_us);
        ck_assert_uint_eq(dgram_tx_stats(tx)->cwnd, w / 4 < cfg.cwnd_min ? cfg.cwnd_min : w / 4);
        dgram_tx_free(tx);
        buf_unref(b);
}
END_TEST

/* frag_size is what a 1500-byte path carries (the window's unit), or less
 * when the limit is less; chunks are cut as large as the limit allows, in
 * equal fragments: 65536 bytes under a 65463-byte limit go as two of 32768. */
START_TEST(fragments_as_large_as_the_limit)
{
        struct dgram_config cfg;
        uint16_t first = P2S_DEFAULT_DGRAM - P2S_HDR_SIZE - P2S_FRAG_SIZE;
        dgram_config_defaults(&cfg, P2S_DEFAULT_DGRAM);
        ck_assert_uint_eq(cfg.frag_size, first);
        ck_assert_uint_eq(cfg.frag_max, first);
        ck_assert_uint_eq(cfg.cwnd_init, 64);
        dgram_config_defaults(&cfg, 600);
        ck_assert_uint_eq(cfg.frag_size, 600 - P2S_HDR_SIZE - P2S_FRAG_SIZE);
        ck_assert_uint_eq(cfg.frag_max, cfg.frag_size);
        dgram_config_defaults(&cfg, P2S_MAX_DGRAM);
        ck_assert_uint_eq(cfg.frag_size, first);
        ck_assert_uint_eq(cfg.frag_max, P2S_MAX_DGRAM - P2S_HDR_SIZE - P2S_FRAG_SIZE);
        struct dgram_tx *tx = dgram_tx_new(&cfg);
        struct buf *b[2] = { buf_new(65536), buf_new(100000) };
        memset(b[0]->data, 3, b[0]->len);
        memset(b[1]->data, 4, b[1]->len);
        ck_assert_int_eq(dgram_tx_push(tx, P2S_DATA, 0, 0, b[0], 1000 * MS), 0);
        ck_assert_int_eq(dgram_tx_push(tx, P2S_DATA, 0, 1, b[1], 1000 * MS), 0);
        struct dgram_frag out[16];
        /* the first window (64 fragments of 1408 bytes) holds 3 of these */
        size_t n = dgram_tx_next(tx, 1000 * MS, out, 16);
        ck_assert_uint_eq(n, 3);
        ck_assert_uint_eq(out[0].f.frag_size, 32768);
        ck_assert_uint_eq(out[0].f.count, 2);
        ck_assert_uint_eq(out[1].len, 32768);
        ck_assert_uint_eq(out[2].f.chunk_len, 100000);
        ck_assert_uint_eq(out[2].f.frag_size, 50000);
        dgram_tx_free(tx);
        buf_unref(b[0]);
        buf_unref(b[1]);
}
END_TEST

/* Random loss does not shrink the fragments: a path that loses datagrams
 * at random loses as many large ones as small (10 clients x 8 MiB at 5 %
 * loss of each datagram: 1.3 x the lossless time in fragments of 32 KiB,
 * 2 x in fragments of 1408 bytes). */
START_TEST(random_loss_keeps_the_size)
{
        struct link l;
        link_init(&l, P2S_MAX_DGRAM, 64, 65536, 13);
        l.loss_data = 0.1;
        ck_assert(!run(&l, 64, 4000000));
        ck_assert_uint_eq(l.delivered, 64);
        const struct dgram_tx_stats *st = dgram_tx_stats(l.tx);
        ck_assert_uint_eq(st->frag_size, l.cfg.frag_max);
        ck_assert_uint_lt(st->frags_sent, 64u * 3);
        link_fini(&l);
}
END_TEST

/* Nothing larger than frag_size gets through (a tunnel the route does not
 * show, an MTU black hole): the chunks cut large are cut again small after
 * two unanswered probes, the ceiling comes down, and every chunk arrives;
 * the peer is not given up on. */
START_TEST(large_fragments_black_holed)
{
        struct link l;
        link_init(&l, P2S_MAX_DGRAM, 64, 65536, 19);
        ck_assert(!run(&l, 24, 1000000));
        ck_assert_uint_eq(dgram_tx_stats(l.tx)->frag_size, l.cfg.frag_max);
        l.drop_above = l.cfg.frag_size;
        uint64_t t0 = l.now;
        ck_assert_msg(!run(&l, 64, 4000000), "gave up on a peer that takes small datagrams");
        ck_assert_uint_eq(l.delivered, 64);
        const struct dgram_tx_stats *st = dgram_tx_stats(l.tx);
        ck_assert_uint_ge(st->recuts, 1);
        ck_assert_uint_lt(st->frag_size, l.cfg.frag_max);
        ck_assert_msg(l.now - t0 < 2000 * MS, "the rest took %llu ms", (unsigned long long)((l.now - t0) / MS));
        link_fini(&l);
}
END_TEST

/* The lossy runs again with fragments as large as loopback allows. */
START_TEST(lossy_any_size)
{
        static const double loss[] = { 0.01, 0.05, 0.30 };
        struct link l;
        run_lossy(&l, P2S_MAX_DGRAM, 48, loss[_i % 3], 17 + (uint64_t)_i, 4000000);
        link_fini(&l);
}
END_TEST

static Suite *dgram_suite(void)
{
        Suite *s = suite_create("dgram");
        TCase *tc = tcase_create("transfer");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, no_loss);
        tcase_add_loop_test(tc, lossy, 0, 9);
        tcase_add_test(tc, long_chunks);
        tcase_add_test(tc, window_shrinks);
        tcase_add_test(tc, silent_peer);
        tcase_add_test(tc, alive_peer_no_backoff);
        tcase_add_test(tc, silence_takes_time);
        tcase_add_test(tc, receiver_rules);
        tcase_add_test(tc, round_ends_with_a_probe);
        tcase_add_test(tc, no_report_on_resent_holes);
        tcase_add_test(tc, lossy_rounds_end_fast);
        tcase_add_test(tc, reports_time_the_path);
        tcase_add_test(tc, timer_from_the_latest_send);
        tcase_add_test(tc, one_cut_per_cut_period);
        tcase_add_test(tc, fragments_as_large_as_the_limit);
        tcase_add_test(tc, random_loss_keeps_the_size);
        tcase_add_loop_test(tc, lossy_any_size, 0, 9);
        tcase_add_test(tc, large_fragments_black_holed);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(dgram_suite);
