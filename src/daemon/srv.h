/* SPDX-License-Identifier: MIT */
/* p2sd's internals shared by its I/O files, one concern each:
 *   server.c   the server object, datagram dispatch, housekeeping, status
 *   listen.c   listening sockets: socket activation or our own bind
 *   join.c     HELLO, cookies, WELCOME, ATTACH: becoming a member
 *   conn.c     TCP connections: accept, framing, queues, closing
 *   served.c   served swarms: the action drain, timers, members' messages,
 *              the data channel's callbacks, housekeeping
 *   served-source.c  a swarm's source: opened at START, the pump, re-reads
 *   listing.c  LIST on a connection that is no member's: what is served
 * Nothing is freed inside a callback that may still use it: connections are
 * marked dead and reaped by deferred work after the turn. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "core/swarm.h"
#include "daemon/server.h"
#include "io/datachan.h"
#include "proto/cookie.h"
#include "proto/wire.h"
#include "util/fifo.h"
#include "util/lru.h"
#include "util/net.h"
#include "util/outq.h"
#include "util/stream.h"
#include "util/u32map.h"

#define DIST_HIWAT        (4u << 20)    /* distribution waits while a member has this much queued */
#define BACKLOG_TIMEOUT_US (20 * USEC_PER_SEC) /* a member backlogged this long without a pause is dropped */
#define ATTACH_TIMEOUT_US (10 * USEC_PER_SEC)
#define LINGER_US         (5 * USEC_PER_SEC)
#define SHUTDOWN_US       (3 * USEC_PER_SEC)
#define HOUSEKEEP_US      (1 * USEC_PER_SEC)
#define PROVEN            SIZE_MAX      /* udp_reply_err: the sender echoed a valid cookie */
/* Bounds on what one connection may cost (p2sd(8), LIMITS): */
#define MEMBER_QUEUE_MAX  (2 * DIST_HIWAT)              /* REQs wait while more is queued to a member */
#define MEMBER_QUEUE_HARD (4 * DIST_HIWAT + P2S_MAX_CHUNK) /* beyond this the member is dropped */
#define RX_BODY_BUDGET    (64u << 20)   /* UPLOAD bodies being received, all connections together */
#define FRAME_MIN_RATE    (64u << 10)   /* bytes/s of a frame that earn it time past --frame-timeout */
#define ACCEPT_PAUSE_US   (100 * 1000)  /* out of descriptors: accept again this much later */

struct conn;
struct served;

/* join.c: joins that have a WELCOME but no ATTACH yet, bounded per source
 * address (IP, not port) and in all, each found by its cookie in O(1). Its
 * arrays are part of the server: nothing is allocated for an address
 * before it has echoed a cookie, and a member only after that. */
#define JOIN_MAX_UNATTACHED 4096
#define JOIN_MAX_PER_ADDR   32
#define JOIN_COOKIE_BUCKETS 4096
#define JOIN_ADDR_SLOTS     (2 * JOIN_MAX_UNATTACHED)   /* open addressing, at most half full */
struct join_addr {
        uint16_t n;                     /* unattached joins from it; 0: free slot */
        uint8_t family;
        uint8_t ip[16];
};
struct join_index {
        struct smember *oldest, *newest;        /* unattached, in order of arrival */
        struct smember *by_cookie[JOIN_COOKIE_BUCKETS];
        struct join_addr addrs[JOIN_ADDR_SLOTS];
        uint64_t seed;                  /* hashes an attacker cannot aim at one bucket */
        uint64_t evicted, refused;
};

struct smember {
        uint32_t id;
        uint64_t token, cookie;
        struct sockaddr_storage addr;   /* where control datagrams go */
        socklen_t addrlen;
        struct served *sv;
        struct swarm_member *sm;        /* NULL until ATTACH, and after the swarm let go */
        struct conn *conn;
        struct datachan_peer *data;     /* --control=tcp: chunk data both ways over UDP */
        uint32_t dgram_size;            /* its largest datagram of chunk data, once WELCOMEd */
        bool backlogged;                /* counted in sv->nbacklogged */
        uint64_t backlogged_since;
        uint64_t born;
        struct smember *next, *prev;    /* in sv->members once attached */
        uint8_t nonce[P2S_NONCE_SIZE];  /* of the HELLO that made it: WELCOME echoes it */
        bool pending;                   /* in srv->joins: WELCOME sent, no ATTACH yet */
        struct smember *jnext, *jprev, *cnext;  /* arrival order; cookie bucket */
};

struct served {
        struct server *srv;
        struct swarm *sw;
        int src_fd;
        uint64_t src_size;
        int64_t src_mtime_sec;          /* at start: the hash remembered for a listing is of this */
        uint32_t src_mtime_nsec;
        uint64_t born;
        bool over;
        unsigned nbacklogged;           /* members with DIST_HIWAT or more queued */
        struct smember *members;        /* attached members */
        struct loop_timer timer;        /* at swarm_next_deadline */
        struct loop_defer pump;         /* reads the source on, one batch a turn */
        struct fifo rereads;            /* uint32_t chunks held by nobody, to read again */
        struct loop_defer reread;       /* reads them, by the name served, after the turn */
        struct buf_slab *slab;          /* source chunks, sent with sendfile (--control=udp); or NULL */
        struct served *next;
};

struct conn {
        struct server *srv;
        int fd;
        struct stream_rx rx;
        struct outq q;
        bool want_out, dead, closing, shut;
        struct smember *m;
        uint64_t born, linger_deadline;
        uint64_t frame_start;           /* when the unfinished frame began, 0 between frames */
        uint64_t out_progress;          /* last write, or when the queue stopped being empty */
        size_t rx_body;                 /* bytes of RX_BODY_BUDGET the body being read holds */
        struct loop_timer timer;        /* at the earliest of the deadlines above */
        char peer[NET_ADDRSTRLEN];
        struct sockaddr_storage addr;   /* the peer's: a LIST's cookie is bound to it */
        socklen_t addrlen;
        struct conn *next, *prev;
        struct conn *zombie_next;
        bool waiting;                   /* in the server's FIFO of connections without ATTACH */
        struct conn *wait_next, *wait_prev;
};

struct server {
        const struct p2sd_options *opt;
        struct catalog *cat;
        struct loop *loop;
        int tcp_fd, udp_fd;
        int control;                    /* fixed for the process: members learned it */
        uint32_t dgram_size;            /* largest datagram of chunk data (less on a route that carries less) */
        struct datachan data;
        uint16_t port;
        char listen_desc[NET_ADDRSTRLEN + 16];
        struct lru *cache;
        uint8_t secret[COOKIE_SECRET_SIZE];
        struct swarm_secret swarm_secret;       /* --secret-file; len 0: none */
        struct join_index joins;
        struct u32map members;          /* id -> smember, attached or not */
        struct served *served;
        struct conn *conns;
        struct conn *zombies;
        unsigned nunattached;
        unsigned npreattach;            /* TCP connections without ATTACH: the wait FIFO's length */
        struct conn *wait_head, *wait_tail;     /* oldest first */
        unsigned nconns;                /* TCP connections, all of them */
        unsigned max_conns_auto;        /* --max-connections 0: from RLIMIT_NOFILE, once */
        size_t rx_bodies;               /* of RX_BODY_BUDGET, in use */
        bool accept_paused;             /* out of descriptors: the listener sleeps */
        struct loop_timer accept_timer;
        uint32_t next_member_id, next_swarm_id;
        struct loop_timer housekeep;
        struct loop_defer reaper;
        bool shutting_down;
        uint64_t shutdown_deadline;
        struct server_status st;
};

/* server.c */
void udp_send(struct server *srv, const struct sockaddr *to, socklen_t tolen, const struct p2s_hdr *h,
              const void *body);
void udp_reply_err(struct server *srv, const struct sockaddr *to, socklen_t tolen, const struct p2s_hdr *req,
                   size_t req_len, uint16_t code, const char *reason);
void smember_free(struct server *srv, struct smember *m);

/* listen.c */
int listen_open(struct server *srv, char *err, size_t errlen);

/* join.c */
void join_on_hello(struct server *srv, const struct p2s_msg *msg, const struct sockaddr *from, socklen_t fromlen);
void join_on_attach(struct conn *c, const struct p2s_hdr *h);
void join_expire(struct server *srv, uint64_t now);

/* conn.c */
void conn_accept(struct loop *l, int fd, uint32_t events, void *ud);
void conn_send(struct conn *c, const struct p2s_hdr *h, struct buf *body);
void conn_flush(struct conn *c);
/* Flushes what is queued, then half-closes; killed at now + LINGER_US. */
void conn_close_soon(struct conn *c);
void conn_kill(struct conn *c, const char *why);
/* The connection sent its ATTACH: it no longer waits for one. */
void conn_attached(struct conn *c);
/* MEMBER_QUEUE_MAX or more is queued toward the member: its REQs should wait
 * (dropped; its retry comes back). conn.c applies it to REQs over TCP;
 * server.c should to REQs over UDP. */
static inline bool conn_backpressured(const struct conn *c) { return c && c->q.bytes >= MEMBER_QUEUE_MAX; }
/* The accept pause (out of descriptors) is over. */
void conn_accept_resume(struct loop *l, struct loop_timer *t, void *ud);
void conn_reap(struct loop *l, void *ud);

/* listing.c: a LIST frame (checked) on a connection without a member. */
void listing_on_list(struct conn *c, const struct p2s_msg *msg);

/* served.c */
struct served *served_find(struct server *srv, const char *name);
struct served *served_new(struct server *srv, const char *name);
void served_free(struct served *sv);
/* Carries out the swarm's actions and re-arms its timer; never frees a
 * connection and never reads the source (that is deferred work). */
void served_drain(struct served *sv);
void served_member_msg(struct smember *m, const struct p2s_msg *msg, struct buf *body);
/* Sends to a member over the transport the mode gives the message. */
void served_send(struct smember *m, uint8_t msg, uint16_t flags, uint32_t chunk, struct buf *body, bool reliable,
                 bool twice);
/* Its connection, full, took more of what we had queued for it: it reads. */
void served_member_reading(struct smember *m);
/* The member's queues changed size: distribution may go on. */
void served_backlog_update(struct smember *m);
/* The member's connection ended: the swarm forgets it. */
void served_member_gone(struct smember *m);
/* Swarms that gather with nobody attached or waiting to attach. */
void served_housekeep(struct server *srv);
/* Frees swarms that are over and have nobody left. */
void served_reap(struct server *srv);
extern const struct datachan_ops served_data_ops;
void served_source_close(struct served *sv);
/* The pump runs only while no member is backlogged. */
bool served_pump_wanted(const struct served *sv);

/* served-source.c */
/* Opens the source and starts the distribution (SWARM_ACT_START). */
void served_start_swarm(struct served *sv);
/* Deferred work: the next batch of the source. */
void served_pump(struct loop *l, void *ud);
/* Deferred work: the chunks queued in sv->rereads read again. */
void served_reread(struct loop *l, void *ud);
