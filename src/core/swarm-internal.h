/* SPDX-License-Identifier: MIT */
/* The private state of the server-side swarm state machine, shared by its
 * files and by no one else: swarm.c (life, joining and leaving, the action
 * queue), swarm-dist.c (distribution and the manifest), swarm-relay.c
 * (queries, uploads, NOHAVE, HAVE and pending chunks with their timers) and
 * swarm-live.c (liveness, finishing and the swarm's clock). */
#ifndef P2S_CORE_SWARM_INTERNAL_H
#define P2S_CORE_SWARM_INTERNAL_H
#include <stddef.h>
#include "core/swarm.h"
#include "util/bitmap.h"
#include "util/fifo.h"
#include "util/rtt.h"
#include "util/u32map.h"

#define container_of(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))

struct swarm_member {
        uint32_t id;
        void *ud;
        unsigned slot;          /* index in swarm.members */
        unsigned busy;          /* queries outstanding at this member */
        bool sharer, complete;
        bool dropped;           /* its DROP is queued: its reserved action slot is used */
        bool fetching;          /* it sent a REQ: past MANIFEST_END, so it has every SHARE sent over TCP */
        unsigned strikes;       /* bad uploads and NOHAVEs for chunks it was given */
        uint64_t last_heard, last_ping;
        uint64_t last_read;             /* it took chunk data we had queued for it */
        struct bitmap have;     /* chunks it holds: its share plus all delivered */
        struct bitmap share;    /* chunks given to it as its share */
        struct bitmap claimed;  /* chunks in have only by its HAVE (never sent it); empty until one */
};

/* A chunk some members wait for and the cache lacks. */
struct pending {
        uint32_t chunk;
        struct swarm_member *asked;     /* directed mode: the holder asked last */
        struct swarm_member **waiters;
        unsigned nwait, capwait;
        unsigned tries, nohaves;
        uint64_t asked_at;      /* when the holder asked last was first asked */
        bool answered;          /* the holder asked last said NOHAVE */
        bool rerouted;          /* a NOHAVE moved the query on since the timer last fired */
        bool hurried;           /* a NOHAVE brought the timer forward once */
        bool reading;           /* held by nobody: READ from the source is out, no timer */
        bool asked_sure;        /* the holder asked last surely had the chunk when asked */
        uint64_t timeout;
        uint64_t first_asked;
        struct heap_node timer;
};

struct swarm {
        struct swarm_config cfg;
        uint32_t id;
        char *name;
        enum swarm_state state;
        struct lru *cache;

        struct swarm_member **members;
        unsigned nmembers, capmembers;
        struct swarm_member **sharers;  /* owners of the initial share, in order */
        unsigned nsharers;

        bool start_requested, have_first;
        uint64_t gather_deadline;

        struct manifest manifest;
        bool manifest_ready;
        struct hasher *file_hasher;
        uint32_t source_pos;
        struct buf *start_body;
        int64_t mtime_sec;              /* swarm_set_file_meta: for START */
        uint32_t mtime_nsec, mode;
        struct buf **manifest_parts;
        unsigned nparts;
        struct buf *manifest_end;

        struct u32map pending;  /* chunk -> struct pending */
        struct heap timers;
        struct rtt query_rtt;           /* QUERY to UPLOAD, first tries only (Karn) */

        uint64_t done_deadline;
        unsigned done_tries_left;
        uint64_t done_sent;             /* the first DONEs went out */
        uint64_t done_wait;             /* until the next DONE retry; doubles per retry */
        struct rtt done_rtt;            /* first DONE to BYE, of members answering the first */
        uint64_t live_deadline;         /* next scan for quiet and silent members */

        /* Room for every action that must not be lost is reserved ahead:
         * START and END once each, one DROP per member. */
        struct fifo actions;
        bool ended;             /* END is queued: nothing more is */
        struct swarm_stats stats;
};

/* ---- swarm.c: actions, life, leaving ------------------------------------- */

void swarm_push_action(struct swarm *s, const struct swarm_action *a);
void swarm_send_msg_via(struct swarm *s, struct swarm_member *m, uint8_t msg, uint16_t flags,
                        uint32_t chunk, struct buf *body, bool reliable);
/* A bodiless message that goes out as two datagrams (see the action's twice). */
void swarm_send_twice(struct swarm *s, struct swarm_member *m, uint8_t msg, bool reliable);
void swarm_send_msg(struct swarm *s, struct swarm_member *m, uint8_t msg, uint16_t flags,
                    uint32_t chunk, struct buf *body);
void swarm_emit(struct swarm *s, enum swarm_act_type type, struct swarm_member *m, int code);
void swarm_drop(struct swarm *s, struct swarm_member *m, int code, const char *why);
void swarm_oom(struct swarm *s);
bool swarm_set_state(struct swarm *s, enum swarm_state st);
void swarm_end_ok(struct swarm *s);
void swarm_request_start(struct swarm *s);
void swarm_member_remove(struct swarm *s, struct swarm_member *m, uint64_t now);

static inline uint64_t cache_key(const struct swarm *s, uint32_t chunk)
{
        return ((uint64_t)s->id << 32) | chunk;
}

/* Every message from a member proves it alive. */
static inline void heard(struct swarm_member *m, uint64_t now)
{
        m->last_heard = now;
}

/* ---- swarm-dist.c -------------------------------------------------------- */

void swarm_send_manifest(struct swarm *s, struct swarm_member *m);

/* ---- swarm-relay.c ------------------------------------------------------- */

void swarm_pending_free(struct swarm *s, struct pending *p);
bool swarm_ask(struct swarm *s, struct pending *p, uint64_t now);
void swarm_query_timed_out(struct swarm *s, struct pending *p, uint64_t now);

/* ---- swarm-live.c -------------------------------------------------------- */

void swarm_check_finish(struct swarm *s, uint64_t now);

#endif
