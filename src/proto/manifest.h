/* SPDX-License-Identifier: MIT */
/* A file's manifest: size, chunking, one SHA-256 per chunk and of the whole. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <p2s/proto.h>

struct manifest {
        uint64_t file_size;
        uint32_t chunk_size;
        uint32_t chunk_count;
        uint8_t (*hashes)[P2S_HASH_SIZE];   /* chunk_count entries, zeroed at init */
        uint8_t file_hash[P2S_HASH_SIZE];
};

/* Sizes and allocates the hash table. 0, -EINVAL (chunk_size out of range),
 * -EFBIG (more than P2S_MAX_CHUNKS chunks), -ENOMEM. */
int manifest_init(struct manifest *m, uint64_t file_size, uint32_t chunk_size);
void manifest_fini(struct manifest *m);
/* Number of chunks of a file of that size (0 for an empty file;
 * UINT64_MAX for chunk_size 0 and a non-empty file). */
uint64_t manifest_count_for(uint64_t file_size, uint32_t chunk_size);
/* Length of chunk idx (the last may be short); 0 if idx >= chunk_count. */
uint32_t manifest_chunk_len(const struct manifest *m, uint32_t idx);
static inline uint64_t manifest_chunk_off(const struct manifest *m, uint32_t idx) { return (uint64_t)idx * m->chunk_size; }
/* True when len equals the chunk's length and its SHA-256 matches. */
bool manifest_verify_chunk(const struct manifest *m, uint32_t idx, const void *data, size_t len);
/* Copies n hashes starting at first from a MANIFEST body; -EINVAL if out of range. */
int manifest_set_hashes(struct manifest *m, uint32_t first, const uint8_t *hashes, uint32_t n);
