/* SPDX-License-Identifier: MIT */
/* p2s-fetch --list and -r: what a server serves under a prefix, asked over
 * a TCP connection of its own (p2s.7, "Listing"), and the local paths -r
 * mirrors it to. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct swarm_secret;

struct fetch_entry {
        char *name;
        uint64_t size;
        int64_t mtime_sec;
        bool has_hash;
        uint8_t sha256[32];
};

struct fetch_listing {
        struct fetch_entry *e;  /* in byte order of name, each name once */
        size_t n, cap;
};

#define FETCH_LIST_MAX 1000000  /* entries accepted from one server */

/* Every name host:port serves that starts with prefix, page after page.
 * 0, or an exit status (enum fetch_exit) with the one line in err. secret
 * NULL: none. timeout_us bounds each wait for the server. */
int fetch_list(const char *host, uint16_t port, const char *prefix, const struct swarm_secret *secret,
               uint64_t timeout_us, struct fetch_listing *out, char *err, size_t errlen);
void fetch_listing_free(struct fetch_listing *l);
/* Prints "SIZE  SHA256-or-dash  NAME" lines. */
void fetch_listing_print(const struct fetch_listing *l, FILE *f);
/* Where -r saves name listed under prefix: dir, then name without the
 * prefix up to its last '/' ("img/" and "img/a/b" give DIR/a/b). NULL (with
 * err) for a name that would leave dir or is not one the server may serve. */
char *fetch_mirror_path(const char *dir, const char *prefix, const char *name, char *err, size_t errlen);
/* Creates the directories of path below dir (dir itself too), following no
 * symlink that is in the way: 0 or -errno. */
int fetch_mirror_dirs(const char *dir, const char *path);
