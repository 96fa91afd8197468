/* SPDX-License-Identifier: MIT */
/* p2sd's I/O edge: sockets in, wire decode, swarm state machines, actions,
 * wire encode, sockets out. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "daemon/catalog.h"
#include "daemon/options.h"
#include "util/loop.h"

struct server;

struct server_status {
        unsigned swarms, members;
        uint64_t bytes_in, bytes_out;
        uint64_t cache_hits, cache_misses;
        uint64_t bad_packets;
};

struct server *server_new(const struct p2sd_options *o, struct catalog *cat, struct loop *l);
struct server *server_free(struct server *s);
/* Takes sockets from systemd (LISTEN_FDS) or binds its own. 0 or -errno with
 * a message in err. */
int server_listen(struct server *s, char *err, size_t errlen);
uint16_t server_port(const struct server *s);
const char *server_listen_desc(const struct server *s);
/* Stops accepting, ends every swarm with ERR SHUTDOWN and calls loop_quit(0)
 * once every member connection is flushed and closed (or after a bound). */
void server_shutdown(struct server *s);
/* New options and catalog for swarms that start from now on; running swarms
 * keep theirs. Listen address, port and control mode stay as they were.
 * Returns the previous catalog for the caller to free. */
struct catalog *server_reconfigure(struct server *s, const struct p2sd_options *o, struct catalog *cat);
/* The swarm secret joining members must prove (a copy is kept; len 0:
 * none). Set once, before server_listen. */
struct swarm_secret;
void server_set_swarm_secret(struct server *s, const struct swarm_secret *secret);
void server_get_status(const struct server *s, struct server_status *st);
