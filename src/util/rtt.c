/* SPDX-License-Identifier: MIT */
/* Round-trip time estimate and retransmission timeout (RFC 6298). See rtt.h. */
#include "rtt.h"

void rtt_init(struct rtt *r, uint64_t initial, uint64_t min, uint64_t max)
{
        *r = (struct rtt){ .rto = initial, .min = min, .max = max };
}

void rtt_sample(struct rtt *r, uint64_t sample)
{
        if (!r->have_sample) {
                r->srtt = sample;
                r->rttvar = sample / 2;
                r->have_sample = true;
        } else {
                uint64_t d = r->srtt > sample ? r->srtt - sample : sample - r->srtt;
                r->rttvar = (3 * r->rttvar + d) / 4;
                r->srtt = (7 * r->srtt + sample) / 8;
        }
        r->rto = rtt_base(r);
}

uint64_t rtt_base(const struct rtt *r)
{
        if (!r->have_sample)
                return r->rto;
        uint64_t rto = r->srtt + 4 * r->rttvar;
        return rto < r->min ? r->min : rto > r->max ? r->max : rto;
}
