/* SPDX-License-Identifier: MIT */
/* The machine's CPU time from /proc/stat. See cpustat.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "bench/cpustat.h"

int cpustat_read(struct cpustat *s)
{
        char buf[512];
        int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        int e = errno;
        close(fd);
        if (n < 0)
                return -e;
        buf[n] = 0;
        /* cpu user nice system idle iowait irq softirq steal ...: waiting
         * for I/O counts as idle, stolen time as busy (not ours to use) */
        uint64_t v[8] = { 0 };
        if (strncmp(buf, "cpu ", 4) ||
            sscanf(buf + 4, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                   " %" SCNu64, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 4)
                return -EINVAL;
        s->total = 0;
        for (int i = 0; i < 8; i++)
                s->total += v[i];
        s->busy = s->total - v[3] - v[4];
        return 0;
}

double cpustat_busy(const struct cpustat *a, const struct cpustat *b)
{
        if (b->total <= a->total)
                return 0;
        return (double)(b->busy - a->busy) / (double)(b->total - a->total);
}
