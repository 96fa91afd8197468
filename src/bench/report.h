/* SPDX-License-Identifier: MIT */
/* What p2s-bench prints: each side of each round as it ends (text), and
 * the run's summary: medians, the p2s/http ratio, the copies verified, as
 * text or as one JSON object with every round's figures. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "bench/bench.h"

/* One side of one round, as text (the JSON has them in report_run). */
void report_round(const struct bench_opts *o, uint64_t size, unsigned round, enum bench_side side,
                  const struct bench_result *r);
/* The first rounds rounds of either side, then the medians and ratio. */
void report_run(const struct bench_opts *o, bool json, struct bench *b, const struct bench_result *p2s,
                const struct bench_result *http, unsigned rounds, bool interrupted);
