/* SPDX-License-Identifier: MIT */
/* What p2sd serves: FILE arguments by base name, or a tree under --root by
 * relative name. Names come from the network and are checked before any
 * file system call sees them. */
#pragma once
#include <stdbool.h>

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
