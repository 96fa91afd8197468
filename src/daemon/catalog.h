/* SPDX-License-Identifier: MIT */
/* What p2sd serves: FILE arguments by base name, or a tree under --root by
 * relative name. Names come from the network and are checked before any
 * file system call sees them. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct catalog;

/* Opens root (O_PATH) or checks each file is a readable regular file.
 * NULL with a message in err (errlen bytes) on failure. */
struct catalog *catalog_new(const char *root, char **files, int nfiles, char *err, size_t errlen);
struct catalog *catalog_free(struct catalog *c);
/* True for names that may be asked for at all: 1..255 printable bytes, not
 * absolute, no empty, "." or ".." components. */
bool catalog_name_ok(const char *name);
/* Opens name read-only; a regular file only, never leaving the root (no
 * "..", no symlink pointing outside). Returns an fd or -errno (-ENOENT for
 * anything not served; -EMFILE, -ENFILE, -EACCES... when a served file cannot
 * be opened now). */
int catalog_open(const struct catalog *c, const char *name);
/* catalog_open as where openat2 is refused: a root resolved one component
 * at a time, no symlink followed. What catalog_open falls back to; here so
 * that tests reach it on kernels that have openat2. */
int catalog_open_components(const struct catalog *c, const char *name);

/* ---- what is served, for a listing -------------------------------------- */

#define CATALOG_MAX_DEPTH 32    /* directories deeper beneath --root are not listed */
#define CATALOG_HASHES    4096  /* whole-file hashes remembered; the oldest is forgotten */

struct catalog_entry {
        const char *name;       /* NUL-terminated; passes catalog_name_ok */
        uint64_t size;
        int64_t mtime_sec;
        uint32_t mtime_nsec;
        bool has_hash;          /* sha256 is known for this size and mtime */
        uint8_t sha256[32];
};
typedef int (*catalog_each_fn)(const struct catalog_entry *e, void *ud);
/* Calls fn for each file served, in no particular order. FILE mode: each
 * name whose path can be stat'ed now, as a regular file. --root mode: each
 * regular file beneath the root reached without a symlink (a symlink is
 * neither followed nor listed: catalog_open may refuse where it leads),
 * at most CATALOG_MAX_DEPTH directories down, whose relative name passes
 * catalog_name_ok; an unreadable directory is skipped. A non-zero return
 * of fn stops the walk and is returned; else 0, or -errno when the root
 * itself cannot be read. */
int catalog_each(const struct catalog *c, catalog_each_fn fn, void *ud);
/* The SHA-256 of name as it was at size and mtime (a swarm's manifest):
 * catalog_each reports it while the file still has both. */
void catalog_remember_hash(struct catalog *c, const char *name, uint64_t size, int64_t mtime_sec,
                           uint32_t mtime_nsec, const uint8_t sha256[32]);
