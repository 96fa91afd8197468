/* SPDX-License-Identifier: MIT */
#include <time.h>
#include "clock.h"

static uint64_t clock_usec(clockid_t id)
{
        struct timespec ts;

        /* Cannot fail for these clocks on Linux; a zero time is the safe fallback. */
        if (clock_gettime(id, &ts) < 0)
                return 0;
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t now_usec(void)
{
        return clock_usec(CLOCK_MONOTONIC);
}

uint64_t wallclock_usec(void)
{
        return clock_usec(CLOCK_REALTIME);
}
