/* SPDX-License-Identifier: MIT */
/* Reliable chunk transfer over datagrams, as two pure state machines: a
 * sender (dgram_tx) toward one peer and a receiver (dgram_rx) from one peer.
 *
 * A chunk is cut into fragments that fit one datagram. The receiver
 * acknowledges a whole chunk once it is complete (FRAG_ACK); when the last
 * fragment arrives with holes it answers with a bitmap of what is missing
 * (FRAG_NACK), and only that is sent again, followed by the highest
 * fragment the receiver has: a probe that makes it report at once what the
 * round did not mend (re-sent holes arriving never make it talk, so the
 * report after a round is the probe's). Every report answers the arrival of
 * the receiver's highest fragment, so each one whose fragment went out once
 * times the path. A sender timeout (from that RTT, run from the chunk's
 * latest send, with exponential backoff) re-sends just the last fragment,
 * which makes the receiver report its holes: a probe, not a flood. The
 * backoff only applies while the peer says nothing at all, from its third
 * probe in a row; a probe lost while it answers about other chunks is
 * repeated after the measured RTO. A congestion window of fragments in
 * flight grows while chunks are acknowledged and halves on loss, once per
 * round trip and at most once per cut_every. Chunks are cut into
 * fragments as large as frag_max allows (the caller's datagram limit, from
 * the route): a datagram costs about the same to send and receive whatever
 * its size, and a path that loses datagrams at random loses as many large
 * ones as small. A chunk keeps the size it was first sent with, unless two
 * probes of it cut larger than frag_size go unanswered (a path narrower
 * than its route): then it is cut again at frag_size (the receiver starts
 * over on a smaller cut) and no fragment is cut larger than half the size
 * that failed. A peer that answers no probe for max_tries probes and
 * silent_min is reported silent, and so is one that answers others but not
 * 4 x max_tries probes of one chunk. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <p2s/proto.h>
#include "util/buf.h"

struct dgram_config {
        uint16_t frag_size;             /* payload bytes per fragment on a 1500-byte path: the
                                         * window's unit, and the size of a chunk cut again */
        uint16_t frag_max;              /* ... and what chunks are cut into */
        unsigned cwnd_init, cwnd_min, cwnd_max;  /* in flight, in fragments of frag_size */
        uint64_t rto_initial_us, rto_min_us, rto_max_us;
        uint64_t cut_every_us;          /* the window halves at most this often */
        uint64_t silent_min_us;         /* ... and at least this long with nothing heard */
        unsigned max_tries;             /* unanswered probes of one chunk before giving up
                                         * (4 x as many while the peer answers others) */
        unsigned max_partial;           /* receiver: chunks being reassembled at once */
};
/* Defaults for datagrams of at most dgram_size bytes (P2S_HDR_SIZE and the
 * fragment header included); frag_size is what a 1500-byte path carries
 * (P2S_DEFAULT_DGRAM), or less when dgram_size is less. */
void dgram_config_defaults(struct dgram_config *c, uint32_t dgram_size);

/* One fragment to put on the wire; payload points into the chunk's buffer,
 * valid until the next call into the sender. */
struct dgram_frag {
        uint8_t kind;
        uint16_t flags;
        uint32_t chunk;
        struct p2s_frag f;
        uint8_t *payload;               /* not const: iovecs and sendmsg take it as it is */
        uint16_t len;
};

struct dgram_tx_stats {
        uint64_t chunks_sent, frags_sent, frags_resent, probes, nacks, timeouts;
        uint64_t recuts;                        /* chunks cut again small after unanswered probes */
        unsigned cwnd, frag_size;
        uint64_t srtt_us;
};

struct dgram_tx;
struct dgram_tx *dgram_tx_new(const struct dgram_config *cfg);
struct dgram_tx *dgram_tx_free(struct dgram_tx *tx);
/* Queues a chunk (takes a reference). A chunk of that kind and index already
 * queued is not queued twice. 0 or -ENOMEM. */
int dgram_tx_push(struct dgram_tx *tx, uint8_t kind, uint16_t flags, uint32_t chunk, struct buf *data, uint64_t now);
/* Up to max fragments that may go out now; they count as in flight. */
size_t dgram_tx_next(struct dgram_tx *tx, uint64_t now, struct dgram_frag *out, size_t max);
void dgram_tx_on_ack(struct dgram_tx *tx, uint8_t kind, uint32_t chunk, uint64_t now);
void dgram_tx_on_nack(struct dgram_tx *tx, uint8_t kind, uint32_t chunk, uint16_t base,
                      const uint8_t *map, size_t map_len, uint64_t now);
/* Runs the retransmission timers. Returns true when the peer stayed silent
 * through max_tries probes of some chunk: the caller drops it. */
bool dgram_tx_on_tick(struct dgram_tx *tx, uint64_t now);
uint64_t dgram_tx_next_deadline(const struct dgram_tx *tx);
/* Chunk bytes queued and not yet acknowledged. */
size_t dgram_tx_pending_bytes(const struct dgram_tx *tx);
const struct dgram_tx_stats *dgram_tx_stats(struct dgram_tx *tx);

enum dgram_rx_result_type {
        DGRAM_RX_PARTIAL,       /* stored; maybe a NACK to send */
        DGRAM_RX_COMPLETE,      /* res->chunk holds the whole chunk (caller's reference) */
        DGRAM_RX_DROP,          /* inconsistent with what arrived before */
};

struct dgram_rx_result {
        struct buf *chunk;
        bool nack;
        uint16_t nack_base;
        size_t nack_len;                        /* bytes of nack_map used */
        uint8_t nack_map[P2S_NACK_MAP_MAX];
};

struct dgram_rx;
struct dgram_rx *dgram_rx_new(unsigned max_partial);
struct dgram_rx *dgram_rx_free(struct dgram_rx *rx);
/* A fragment (already checked by wire_check_body) of the chunk. The caller
 * decides first whether it wants this chunk at all. */
int dgram_rx_on_frag(struct dgram_rx *rx, uint8_t kind, uint32_t chunk, const struct p2s_frag *f,
                     const uint8_t *payload, uint16_t len, uint64_t now, struct dgram_rx_result *res);
