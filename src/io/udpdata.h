/* SPDX-License-Identifier: MIT */
/* The UDP side of chunk data (--control=tcp), shared by p2sd and
 * p2s-fetch: sends what a dgram_tx allows in as few syscalls as the kernel
 * permits (sendmmsg, and UDP GSO: many equal-sized datagrams in one buffer),
 * and receives in batches (recvmmsg, and UDP GRO: the kernel hands over
 * coalesced datagrams that udpdata_recv splits again). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <p2s/proto.h>
#include "core/dgram.h"

struct udpdata_bufs;

struct udpdata {
        int fd;
        bool gso, gro;
        struct udpdata_bufs *bufs;
        uint64_t bytes_out, datagrams_out, syscalls_out;
};

/* Turns on GRO and notes whether GSO works on fd. 0 or -ENOMEM. */
int udpdata_init(struct udpdata *u, int fd);
void udpdata_fini(struct udpdata *u);
/* Sends the fragments tx lets go now, each behind a header built from tmpl
 * (type, body_len, chunk and flags are filled in per fragment). to is NULL
 * on a connected socket. Returns 0 when tx has nothing more to send now, 1
 * when the socket is full (wait for EPOLLOUT), -errno on error. A datagram
 * the kernel refused counts as lost: tx recovers it. */
int udpdata_flush(struct udpdata *u, struct dgram_tx *tx, const struct p2s_hdr *tmpl,
                  struct sockaddr *to, socklen_t tolen, uint64_t now);

/* The body of a FRAG_ACK (res NULL) or of a FRAG_NACK carrying res's
 * bitmap, into out (P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX bytes). Returns
 * its length. */
size_t udpdata_ack_body(uint8_t *out, uint8_t kind, const struct dgram_rx_result *res);

/* One datagram as received (a GRO batch is split into these). */
typedef void (*udpdata_fn)(const uint8_t *pkt, size_t len, const struct sockaddr *from,
                           socklen_t fromlen, void *ud);
/* Receives up to about max_batches batches; calls fn per datagram. Returns
 * the number of datagrams delivered. Truncated datagrams are dropped and
 * counted in *truncated. */
size_t udpdata_recv(struct udpdata *u, unsigned max_batches, udpdata_fn fn, void *ud, uint64_t *truncated);
