/* SPDX-License-Identifier: MIT */
/* Time in microseconds on CLOCK_MONOTONIC, and its units. */
#pragma once
#include <stdint.h>

#define USEC_PER_SEC  1000000ull
#define USEC_PER_MSEC 1000ull

/* CLOCK_MONOTONIC in microseconds. */
uint64_t now_usec(void);
