/* SPDX-License-Identifier: MIT */
/* CLOCK_MONOTONIC in microseconds. */
#include <time.h>
#include "clock.h"

uint64_t now_usec(void)
{
        struct timespec ts;

        /* Cannot fail for CLOCK_MONOTONIC on Linux; a zero time is the safe fallback. */
        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                return 0;
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000u;
}
