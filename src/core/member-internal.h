/* SPDX-License-Identifier: MIT */
/* The private state of the client-side member state machine, shared by its
 * two files and by no one else: member.c (life, the action queue, the
 * clock: silence, PING, REQ and COMPLETE retries) and member-events.c (the
 * server's messages and the request window they open). */
#ifndef P2S_CORE_MEMBER_INTERNAL_H
#define P2S_CORE_MEMBER_INTERNAL_H
#include "core/member.h"
#include "util/fifo.h"
#include "util/rtt.h"

struct inflight {
        uint32_t chunk;
        unsigned retries;
        uint64_t seq;                   /* order of its last REQ among ours */
        uint64_t first_sent, sent;      /* its first REQ, its last */
        uint64_t deadline, rto;
        bool overtaken;                 /* deadline brought forward: a later REQ was answered */
};

struct member {
        struct member_config cfg;
        enum member_state state;
        struct manifest mf;
        struct bitmap have;             /* verified chunks, and share chunks until the manifest */
        struct bitmap asked;            /* chunks with a request in flight */
        struct bitmap share;            /* chunks that came as our share */
        struct bitmap parts;            /* MANIFEST frames received */
        struct bitmap resumed;          /* chunks found in the output file of an earlier run */
        uint8_t (*share_digest)[P2S_HASH_SIZE];
        uint32_t *order;                /* random order: a permutation; NULL for sequential */
        uint32_t cursor;

        struct inflight *fl;
        unsigned nfl;
        struct rtt rtt;
        bool reqs_reliable;             /* member_set_reliable_requests */
        uint64_t req_seq;               /* REQs sent, first tries and retries */
        uint64_t answered_seq;          /* the latest REQ whose chunk has come */
        uint64_t last_data;             /* when a requested chunk last came */

        uint64_t last_heard;
        bool clock_started;             /* the silence clock starts at the first tick, or a message */
        uint64_t last_ping;
        bool complete_acked;
        unsigned complete_tries;
        uint64_t complete_deadline, complete_rto;

        uint64_t rng;
        uint16_t exit_err;              /* the fatal ERR's code, for EXIT */
        /* Room reserved for the actions that must come out: BYE and EXIT. */
        struct fifo actions;
        struct member_stats stats;
};

/* ---- member.c: actions --------------------------------------------------- */

void member_push(struct member *m, struct member_action *a);
void member_push_critical(struct member *m, struct member_action *a);
bool member_set_state(struct member *m, enum member_state st);
void member_send_msg_via(struct member *m, uint8_t msg, uint32_t chunk, bool reliable);
void member_send_msg(struct member *m, uint8_t msg, uint32_t chunk);
void member_send_twice(struct member *m, uint8_t msg, uint32_t chunk, bool reliable);
void member_simple(struct member *m, enum member_act_type type, uint32_t chunk);
void member_write_chunk(struct member *m, uint32_t chunk, struct buf *data);
__attribute__((format(printf, 3, 4)))
void member_exit_with(struct member *m, int code, const char *fmt, ...);

#endif
