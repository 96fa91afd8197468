/* SPDX-License-Identifier: MIT */
/* The swarm's distribution: START to the members gathered, the source read
 * in order and each chunk shared to its owners, sharers adopted when all
 * left, and the manifest built and sent once the whole file was read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "core/swarm-internal.h"
#include "proto/hash.h"
#include "proto/wire.h"

static void finish_distribution(struct swarm *s, uint64_t now);

void swarm_set_file_meta(struct swarm *s, int64_t mtime_sec, uint32_t mtime_nsec, uint32_t mode)
{
        s->mtime_sec = mtime_sec;
        s->mtime_nsec = mtime_nsec < 1000000000u ? mtime_nsec : 0;
        s->mode = mode & 07777u;
}

int swarm_distribute(struct swarm *s, uint64_t file_size, uint64_t now)
{
        if (s->state != SWARM_GATHER)
                return -EINVAL;
        int r = manifest_init(&s->manifest, file_size, s->cfg.chunk_size);
        if (r < 0) {
                swarm_fail(s, P2S_ERR_SOURCE, r == -EFBIG ? "file has too many chunks for this chunk size"
                                                          : "cannot size the manifest", now);
                return r;
        }
        s->file_hasher = hasher_new();
        s->start_body = buf_new(P2S_START_SIZE);
        s->sharers = calloc(s->nmembers ? s->nmembers : 1, sizeof(*s->sharers));
        if (!s->file_hasher || !s->start_body || !s->sharers) {
                swarm_fail(s, P2S_ERR_BUSY, "out of memory", now);
                return -ENOMEM;
        }
        struct p2s_start st = { .file_size = file_size, .chunk_size = s->cfg.chunk_size,
                                .chunk_count = s->manifest.chunk_count, .mtime_sec = s->mtime_sec,
                                .mtime_nsec = s->mtime_nsec, .mode = s->mode };
        wire_put_start(s->start_body->data, &st);
        for (unsigned i = 0; i < s->nmembers; i++) {
                struct swarm_member *m = s->members[i];
                if (bitmap_init(&m->have, s->manifest.chunk_count) < 0) {
                        swarm_fail(s, P2S_ERR_BUSY, "out of memory", now);
                        return -ENOMEM;
                }
                if (bitmap_init(&m->share, s->manifest.chunk_count) < 0) {
                        swarm_fail(s, P2S_ERR_BUSY, "out of memory", now);
                        return -ENOMEM;
                }
                m->sharer = true;
                s->sharers[s->nsharers++] = m;
                swarm_send_msg(s, m, P2S_START, 0, P2S_NO_CHUNK, s->start_body);
        }
        if (!swarm_set_state(s, SWARM_DISTRIBUTE))
                return -ENOMEM;
        if (s->manifest.chunk_count == 0)
                finish_distribution(s, now);
        return 0;
}

uint32_t swarm_source_next(const struct swarm *s)
{
        if (s->state != SWARM_DISTRIBUTE)
                return P2S_NO_CHUNK;
        return s->source_pos;
}

/* With every sharer gone mid-distribution the rest of the file would have no
 * home but the cache; the members still here take over the share. */
static void adopt_sharers(struct swarm *s)
{
        free(s->sharers);
        s->sharers = calloc(s->nmembers ? s->nmembers : 1, sizeof(*s->sharers));
        s->nsharers = 0;
        if (!s->sharers)
                return;
        for (unsigned i = 0; i < s->nmembers; i++) {
                s->members[i]->sharer = true;
                s->sharers[s->nsharers++] = s->members[i];
        }
}

void swarm_source_chunk(struct swarm *s, uint32_t idx, struct buf *data, uint64_t now)
{
        if (s->state != SWARM_DISTRIBUTE || idx != s->source_pos)
                return;
        if (!data || data->len != manifest_chunk_len(&s->manifest, idx)) {
                swarm_fail(s, P2S_ERR_SOURCE, "source file changed size while being read", now);
                return;
        }
        hash_sha256(data->data, data->len, s->manifest.hashes[idx]);
        hasher_update(s->file_hasher, data->data, data->len);
        lru_put(s->cache, cache_key(s, idx), data);
        if (s->nsharers == 0)
                adopt_sharers(s);
        unsigned owners = s->cfg.replicas < s->nsharers ? s->cfg.replicas : s->nsharers;
        for (unsigned r = 0; r < owners; r++) {
                struct swarm_member *o = s->sharers[(idx + r) % s->nsharers];
                swarm_send_msg(s, o, P2S_SHARE, 0, idx, data);
                bitmap_set(&o->have, idx);
                bitmap_set(&o->share, idx);
                s->stats.bytes_shared += data->len;
        }
        s->source_pos++;
        if (s->source_pos == s->manifest.chunk_count)
                finish_distribution(s, now);
}

static void finish_distribution(struct swarm *s, uint64_t now)
{
        struct manifest *mf = &s->manifest;
        if (s->state != SWARM_DISTRIBUTE)
                return;
        hasher_final(s->file_hasher, mf->file_hash);
        s->nparts = (mf->chunk_count + P2S_MANIFEST_PART - 1) / P2S_MANIFEST_PART;
        s->manifest_parts = calloc(s->nparts ? s->nparts : 1, sizeof(*s->manifest_parts));
        s->manifest_end = buf_new(P2S_HASH_SIZE);
        if (!s->manifest_parts || !s->manifest_end) {
                swarm_fail(s, P2S_ERR_BUSY, "out of memory", now);
                return;
        }
        memcpy(s->manifest_end->data, mf->file_hash, P2S_HASH_SIZE);
        for (unsigned i = 0; i < s->nparts; i++) {
                uint32_t first = i * P2S_MANIFEST_PART;
                uint32_t n = mf->chunk_count - first < P2S_MANIFEST_PART ? mf->chunk_count - first
                                                                          : P2S_MANIFEST_PART;
                s->manifest_parts[i] = buf_new((size_t)n * P2S_HASH_SIZE);
                if (!s->manifest_parts[i]) {
                        swarm_fail(s, P2S_ERR_BUSY, "out of memory", now);
                        return;
                }
                memcpy(s->manifest_parts[i]->data, mf->hashes[first], (size_t)n * P2S_HASH_SIZE);
        }
        s->manifest_ready = true;
        swarm_set_state(s, SWARM_RELAY);
        for (unsigned i = 0; i < s->nmembers; i++)
                swarm_send_manifest(s, s->members[i]);
        swarm_check_finish(s, now);
}

void swarm_send_manifest(struct swarm *s, struct swarm_member *m)
{
        for (unsigned i = 0; i < s->nparts; i++)
                swarm_send_msg(s, m, P2S_MANIFEST, 0, i * P2S_MANIFEST_PART, s->manifest_parts[i]);
        swarm_send_msg(s, m, P2S_MANIFEST_END, 0, P2S_NO_CHUNK, s->manifest_end);
}
