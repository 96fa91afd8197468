/* SPDX-License-Identifier: MIT */
/* The state file beside OUTPUT.part (OUTPUT.part.p2s) that lets a later run
 * resume: which file it is (the manifest's whole-file hash, size, chunk
 * size) and which chunks were written and verified. A later run re-verifies
 * every chunk listed before trusting it, so the list may run ahead of the
 * disk after a machine crash (such a chunk is fetched again) but must never
 * name a chunk that was not written. resume_save replaces the file
 * atomically: a crash of the program at any instant leaves either the old
 * state or the new one, never a torn one.
 *
 * Layout, all integers big-endian:
 *   0  4   magic "P2SR"
 *   4  4   version (1)
 *   8  8   file size
 *  16  4   chunk size
 *  20  4   chunk count
 *  24  32  SHA-256 of the whole file (the manifest's)
 *  56  n   bitmap, n = ceil(count / 8): chunk i is bit i % 8 of byte i / 8, from the least significant
 *  56+n 32 SHA-256 of every byte before it */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <p2s/proto.h>
#include "util/bitmap.h"

#define RESUME_SUFFIX ".p2s"

struct resume_state {
        uint64_t file_size;
        uint32_t chunk_size, chunk_count;
        uint8_t file_hash[P2S_HASH_SIZE];
        struct bitmap done;             /* chunk_count bits */
};

/* OUTPUT.part.p2s for OUTPUT, malloc'ed; NULL on ENOMEM. */
char *resume_path(const char *output);
/* Fills st (which the caller finishes with resume_fini): 0; -ENOENT when
 * there is no state file; -EBADMSG when it is truncated, damaged, of
 * another version or inconsistent; another -errno when unreadable. */
int resume_load(const char *path, struct resume_state *st);
/* Writes st to path.tmp and renames it over path; when durable, the file
 * is fsynced before the rename and the directory after it, so the state
 * survives a machine crash too. On failure (a full disk, say) the
 * temporary file is removed and the previous state file stays as it was.
 * 0 or -errno. */
int resume_save(const char *path, const struct resume_state *st, bool durable);
void resume_fini(struct resume_state *st);
