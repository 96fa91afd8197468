/* SPDX-License-Identifier: MIT */
/* How busy the whole machine is: the first line of /proc/stat, all CPUs
 * together, so that p2s-bench can show whether a swarm keeps the machine
 * busy or leaves it waiting. */
#pragma once
#include <stdint.h>

struct cpustat {
        uint64_t busy, total;           /* clock ticks since boot, all CPUs */
};

/* 0, or -errno when /proc/stat cannot be read or parsed. */
int cpustat_read(struct cpustat *s);
/* The share of b - a that was busy, 0 to 1; 0 when no tick passed. */
double cpustat_busy(const struct cpustat *a, const struct cpustat *b);
