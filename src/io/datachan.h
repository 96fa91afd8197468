/* SPDX-License-Identifier: MIT */
/* Chunk data over UDP (--control=tcp), one endpoint shared by p2sd and
 * p2s-fetch. A datachan is the socket (its batched I/O, and who waits for it
 * to drain); a datachan_peer is one remote side: its sender and receiver
 * state machines (core/dgram), its retransmission timer, and the FRAG,
 * FRAG_ACK and FRAG_NACK handling between them. Which chunks to take is not
 * decided here: the owner's want() asks its state machine (swarm or member). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <p2s/proto.h>
#include "core/dgram.h"
#include "io/udpdata.h"
#include "proto/wire.h"
#include "util/loop.h"

struct datachan_peer;

struct datachan {
        struct loop *loop;
        struct udpdata ud;
        bool blocked;                   /* waiting for EPOLLOUT */
        uint32_t base_events;           /* what the owner watches the fd for */
        struct datachan_peer *waiting;  /* peers with data that found the socket full */
};

enum datachan_want {
        DATACHAN_REFUSE,        /* not acceptable: dropped and counted */
        DATACHAN_HAVE,          /* already ours: acknowledge, store nothing */
        DATACHAN_WANT,
};

struct datachan_ops {
        /* Whether a fragment of (kind, chunk) declaring chunk_len bytes is
         * acceptable now; nothing is reassembled that is not. */
        enum datachan_want (*want)(void *ud, uint8_t kind, uint32_t chunk, uint32_t chunk_len);
        /* A whole chunk arrived (data is the callee's to ref). True: it was
         * taken and is acknowledged. */
        bool (*deliver)(void *ud, uint8_t kind, uint32_t chunk, uint16_t flags, struct buf *data);
        /* The peer acknowledged nothing through dgram's max_tries probes.
         * The callee may free the peer. */
        void (*silent)(void *ud);
        /* Something sent was acknowledged (the backlog shrank); may be NULL. */
        void (*drained)(void *ud);
};

/* fd is the owner's UDP socket, watched for base_events by the owner, who
 * calls datachan_writable on EPOLLOUT. 0 or -ENOMEM. */
int datachan_init(struct datachan *dc, struct loop *l, int fd, uint32_t base_events);
void datachan_fini(struct datachan *dc);
/* The socket has room again: peers that waited send on. */
void datachan_writable(struct datachan *dc);

struct datachan_peer *datachan_peer_new(struct datachan *dc, const struct dgram_config *cfg,
                                        const struct datachan_ops *ops, void *ud);
struct datachan_peer *datachan_peer_free(struct datachan_peer *p);
/* Where its datagrams go (NULL on a connected socket), and the ids and
 * token every header carries. */
void datachan_peer_set_dest(struct datachan_peer *p, const struct sockaddr *to, socklen_t tolen,
                            const struct p2s_hdr *ids);
/* Queues a chunk for the peer (takes a reference) and sends what the window
 * allows. 0 or -ENOMEM. */
int datachan_send(struct datachan_peer *p, uint8_t kind, uint16_t flags, uint32_t chunk, struct buf *data);
/* A FRAG, FRAG_ACK or FRAG_NACK from this peer, decoded and authenticated.
 * Returns false when it was dropped (a refused fragment). */
bool datachan_on_datagram(struct datachan_peer *p, const struct p2s_msg *msg);
/* Chunk bytes queued toward the peer and not yet acknowledged. */
size_t datachan_pending_bytes(const struct datachan_peer *p);
const struct dgram_tx_stats *datachan_tx_stats(const struct datachan_peer *p);
