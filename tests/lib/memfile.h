/* SPDX-License-Identifier: MIT */
/* A file to serve in the unit tests of the core state machines: seeded
 * pseudo-random bytes in memory, cut into chunks of cs bytes, with each
 * chunk's hash and the whole file's (what a manifest carries). The swarm
 * and member suites both need one; the bytes are arbitrary, only that the
 * same seed gives the same file matters. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <p2s/proto.h>
#include "util/buf.h"

struct memfile {
        uint8_t *data;
        uint64_t size;
        uint32_t cs, count;
        uint8_t (*hashes)[P2S_HASH_SIZE];
        uint8_t fh[P2S_HASH_SIZE];
};

void memfile_make(struct memfile *f, uint64_t size, uint32_t cs, uint64_t seed);
void memfile_free(struct memfile *f);
/* Chunk c's length (the last one may be short). */
uint32_t memfile_clen(const struct memfile *f, uint32_t c);
/* A fresh buf with chunk c's bytes (the caller unrefs). */
struct buf *memfile_chunk(const struct memfile *f, uint32_t c);
/* b holds exactly chunk c's bytes. */
bool memfile_chunk_equal(const struct memfile *f, uint32_t c, const struct buf *b);
