/* SPDX-License-Identifier: MIT */
/* Manifest: the per-chunk hashes every received chunk is checked against
 * before it is stored or relayed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/hash.h"
#include "proto/manifest.h"

uint64_t manifest_count_for(uint64_t file_size, uint32_t chunk_size)
{
        if (file_size == 0)
                return 0;
        /* No chunk size cannot hold a byte: a count larger than any limit
         * makes the caller's bound check fail instead of dividing by 0. */
        if (chunk_size == 0)
                return UINT64_MAX;
        /* ceil without file_size + chunk_size - 1, which can overflow. */
        return file_size / chunk_size + (file_size % chunk_size != 0);
}

int manifest_init(struct manifest *m, uint64_t file_size, uint32_t chunk_size)
{
        uint64_t count;

        memset(m, 0, sizeof(*m));
        if (chunk_size < P2S_MIN_CHUNK || chunk_size > P2S_MAX_CHUNK)
                return -EINVAL;
        count = manifest_count_for(file_size, chunk_size);
        if (count > P2S_MAX_CHUNKS)
                return -EFBIG;
        if (count > 0) {
                m->hashes = calloc((size_t)count, P2S_HASH_SIZE);
                if (!m->hashes)
                        return -ENOMEM;
        }
        m->file_size = file_size;
        m->chunk_size = chunk_size;
        m->chunk_count = (uint32_t)count;
        return 0;
}

void manifest_fini(struct manifest *m)
{
        if (!m)
                return;
        free(m->hashes);
        memset(m, 0, sizeof(*m));
}

uint32_t manifest_chunk_len(const struct manifest *m, uint32_t idx)
{
        uint64_t off;

        if (idx >= m->chunk_count)
                return 0;
        if (idx + 1 < m->chunk_count)
                return m->chunk_size;
        off = manifest_chunk_off(m, idx);
        /* init guarantees off < file_size and the rest fits a chunk. */
        return (uint32_t)(m->file_size - off);
}

bool manifest_verify_chunk(const struct manifest *m, uint32_t idx, const void *data, size_t len)
{
        uint8_t got[P2S_HASH_SIZE];
        uint32_t want_len = manifest_chunk_len(m, idx);

        if (want_len == 0 || !m->hashes || len != want_len || !data)
                return false;
        hash_sha256(data, len, got);
        return memcmp(got, m->hashes[idx], P2S_HASH_SIZE) == 0;
}

int manifest_set_hashes(struct manifest *m, uint32_t first, const uint8_t *hashes, uint32_t n)
{
        /* 64-bit sum: first + n must not wrap past the table's end. */
        if ((uint64_t)first + n > m->chunk_count)
                return -EINVAL;
        if (n == 0)
                return 0;
        if (!hashes || !m->hashes)
                return -EINVAL;
        memcpy(m->hashes[first], hashes, (size_t)n * P2S_HASH_SIZE);
        return 0;
}
