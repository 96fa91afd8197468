/* SPDX-License-Identifier: MIT */
/* The copy being fetched: OUTPUT.part, preallocated, chunks written in place,
 * renamed to OUTPUT only after the whole-file hash matched. Holds no file
 * data in memory. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <p2s/proto.h>

struct store {
        int fd;
        char *path, *part_path;
        uint64_t size;
        bool created;           /* store_lock made OUTPUT.part */
        bool prepared;          /* store_open ran: the file is this run's copy */
};

/* Whether OUTPUT.part could be created (its directory is writable), without
 * creating anything. 0 or -errno. */
int store_check(const char *output);
/* Opens OUTPUT.part (created empty when missing) and takes a write lock
 * on it, so a second run with the same output is refused at once:
 * -EBUSY when another holds it. Nothing is truncated. 0 or -errno. */
int store_lock(struct store *s, const char *output);
/* Removes OUTPUT.part if store_lock created it and nothing was prepared
 * in it since: a failed join leaves no file behind. Keeps the lock. */
void store_abandon(struct store *s);
/* After store_lock: empties the locked file unless keep. 0 or -errno. */
int store_open_locked(struct store *s, bool keep);
/* Without a lock: creates OUTPUT.part, or truncates it; keep: opens it as it is (created
 * when missing), to resume from what an earlier run wrote. 0 or -errno. */
int store_open(struct store *s, const char *output, bool keep);
void store_close(struct store *s);
/* Sizes the file and reserves its blocks, so a full disk shows up now;
 * the bytes of a kept file stay. */
int store_prepare(struct store *s, uint64_t size);
int store_write(struct store *s, uint64_t off, const void *data, size_t len);
/* Every byte written so far is on disk (fdatasync): only then may the
 * resume state list it. 0 or -errno. */
int store_sync(struct store *s);
/* Reads back len bytes written before (a chunk to upload). */
int store_read(struct store *s, uint64_t off, void *data, size_t len);
/* SHA-256 of the whole file as written, a slice at a time, so a large file
 * does not stop the caller's loop for a whole re-read. */
struct store_verify;
struct store_verify *store_verify_new(struct store *s);           /* NULL on ENOMEM */
struct store_verify *store_verify_free(struct store_verify *v);   /* NULL-safe */
/* Hashes up to budget more bytes: 0 more to do, 1 done (the hash in out),
 * or -errno. */
int store_verify_step(struct store *s, struct store_verify *v, size_t budget, uint8_t out[P2S_HASH_SIZE]);
/* Renames OUTPUT.part to OUTPUT. */
int store_finalize(struct store *s);
