/* SPDX-License-Identifier: MIT */
/* Command-line value parsers shared by the programs. Each returns 0 or
 * -EINVAL / -ERANGE and never accepts trailing garbage. */
#pragma once
#include <stdint.h>

/* "65536", "64K", "1M", "2G" (powers of 1024), optional "B"/"iB" after the letter. */
int parse_size(const char *s, uint64_t *out);
/* Decimal seconds ("3", "0.5") to microseconds; 0 .. 1e6 s. */
int parse_seconds(const char *s, uint64_t *out_us);
/* Unsigned integer in [min, max]. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
