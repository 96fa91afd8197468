/* SPDX-License-Identifier: MIT */
/* Round-trip time estimate and retransmission timeout (RFC 6298). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct rtt {
        uint64_t srtt, rttvar;          /* usec; valid once have_sample */
        uint64_t rto;                   /* usec, within [min, max] */
        uint64_t min, max;
        bool have_sample;
};

void rtt_init(struct rtt *r, uint64_t initial, uint64_t min, uint64_t max);
/* One measured round trip (never of a retransmitted request: Karn). */
void rtt_sample(struct rtt *r, uint64_t sample);
/* The timeout the samples alone give (srtt + 4 rttvar within [min, max]),
 * without the backoff a caller applied to rto since; before any sample,
 * rto as it is. For a new exchange that has no reason to wait longer. */
uint64_t rtt_base(const struct rtt *r);
