/* SPDX-License-Identifier: MIT */
/* Allocation failure on demand for unit tests. The test binary is linked
 * with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (tests/meson.build),
 * so every allocation in its own objects and libp2s goes through these;
 * libc and libcheck allocate as usual. Include from exactly one file. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);

/* < 0: never fail; otherwise that many more allocations succeed, then all fail */
static long failmalloc_left = -1;
static unsigned long failmalloc_failed;

static inline void failmalloc_after(long n) { failmalloc_left = n; }
static inline void failmalloc_off(void) { failmalloc_left = -1; }

static bool failmalloc_now(void)
{
        if (failmalloc_left < 0)
                return false;
        if (failmalloc_left == 0) {
                failmalloc_failed++;
                return true;
        }
        failmalloc_left--;
        return false;
}

void *__wrap_malloc(size_t n)
{
        return failmalloc_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
        return failmalloc_now() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
        return failmalloc_now() ? NULL : __real_realloc(p, n);
}
