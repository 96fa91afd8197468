/* SPDX-License-Identifier: MIT */
/* The client side of a swarm after the join, as a pure state machine: the
 * caller feeds it the server's messages and the time, and carries out the
 * actions it returns (send, write a chunk, upload a chunk, verify the file,
 * exit). It never touches a socket or a file. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <p2s/proto.h>
#include "proto/manifest.h"
#include "util/bitmap.h"
#include "util/buf.h"

enum member_order { MEMBER_ORDER_SEQUENTIAL, MEMBER_ORDER_RANDOM };

struct member_config {
        enum member_order order;
        unsigned window;                /* requests in flight, 1..MEMBER_MAX_WINDOW */
        uint64_t seed;                  /* for the random order */
        uint64_t rto_initial_us, rto_min_us, rto_max_us;
        uint64_t silence_timeout_us;    /* nothing from the server this long, in any state: give up */
        uint64_t ping_after_us;         /* quiet this long (at most a quarter of the above): PING */
        unsigned escalate_after;        /* unanswered datagrams before a retry goes over TCP */
};
#define MEMBER_MAX_WINDOW 1024
void member_config_defaults(struct member_config *c);

enum member_state {
        MEMBER_WAIT_START,      /* attached, swarm gathering */
        MEMBER_WAIT_MANIFEST,   /* receiving the share */
        MEMBER_FETCHING,
        MEMBER_VERIFYING,       /* VERIFY emitted, waiting for member_on_verified */
        MEMBER_COMPLETE,        /* file verified; serving until DONE */
        MEMBER_EXITED,
};

enum member_act_type {
        MEMBER_ACT_SEND,        /* msg (REQ, NOHAVE, COMPLETE, BYE) with chunk */
        MEMBER_ACT_PREPARE,     /* START known: create the output of file_size bytes */
        MEMBER_ACT_WRITE,       /* write body (a verified chunk, or a share chunk) at chunk's offset */
        MEMBER_ACT_UPLOAD,      /* send chunk from the output file as UPLOAD */
        MEMBER_ACT_VERIFY,      /* all chunks held: hash the whole file, call member_on_verified */
        MEMBER_ACT_FINALIZE,    /* whole-file hash matched: move the file into place */
        MEMBER_ACT_RTT,         /* a requested chunk arrived: log it */
        MEMBER_ACT_EXIT,        /* code (enum member_exit), err and reason */
        MEMBER_ACT_HAVE,        /* send HAVE for member_resumed()'s bits chunk .. chunk + count - 1 */
};

/* Why a member ended, for the program to turn into its exit status. */
enum member_exit {
        MEMBER_EXIT_OK     = 0,
        MEMBER_EXIT_FAIL   = 1, /* out of memory, or a failure the program reported */
        MEMBER_EXIT_SERVER = 2, /* a fatal ERR from the server: err holds its code */
        MEMBER_EXIT_GONE   = 3, /* the connection closed, or the server fell silent */
        MEMBER_EXIT_VERIFY = 4, /* the whole-file hash did not match the manifest */
        MEMBER_EXIT_SWARM  = 5, /* the swarm ended or the server broke the protocol */
};

struct member_action {
        enum member_act_type type;
        uint8_t msg;
        bool reliable;          /* SEND: a retry that must arrive: use the TCP connection */
        bool twice;             /* SEND as a datagram: one whose loss stalls the fetch, sent twice */
        uint16_t flags;         /* SEND: P2S_F_ACK on a NOHAVE that answers a QUERY */
        uint32_t chunk;
        uint32_t count;         /* HAVE: chunks from chunk on */
        struct buf *body;       /* WRITE: owned by the action */
        uint64_t file_size;     /* PREPARE */
        uint64_t req_time_us, rtt_us;   /* RTT */
        bool from_cache;        /* RTT */
        int code;               /* EXIT: enum member_exit */
        uint16_t err;           /* EXIT with MEMBER_EXIT_SERVER: the ERR's P2S_ERR_* code */
        char reason[P2S_MAX_REASON + 64];   /* EXIT */
};

struct member_stats {
        uint64_t chunks_share, chunks_cache, chunks_peer;
        uint64_t bytes_in, bytes_uploaded;
        uint64_t requests_sent, retries, bad_chunks, dup_chunks, queries, dropped_msgs;
        uint64_t chunks_resumed;        /* found verified in the output file of an earlier run */
};

struct member;

struct member *member_new(const struct member_config *cfg);   /* NULL on ENOMEM */
struct member *member_free(struct member *m);                 /* NULL-safe */

/* REQs travel on an ordered, reliable connection (--control tcp): none is
 * lost, and chunks come back over the data channel in any order, so one
 * answered ahead of an older REQ says nothing about that REQ. */
void member_set_reliable_requests(struct member *m, bool reliable);

enum member_state member_state(const struct member *m);
const struct manifest *member_manifest(const struct member *m);  /* valid after START */
const struct member_stats *member_stats(const struct member *m);
/* Chunks held (verified, or share chunks awaiting the manifest) and the total. */
uint64_t member_have(const struct member *m);
uint64_t member_total(const struct member *m);
bool member_has_chunk(const struct member *m, uint32_t chunk);

enum member_want {
        MEMBER_WANT_NO,         /* not acceptable now (wrong kind, index or length) */
        MEMBER_WANT_HAVE,       /* already held: the sender only needs an acknowledgement */
        MEMBER_WANT_YES,
};
/* Whether chunk data of kind (P2S_SHARE or P2S_DATA) for chunk, declared
 * chunk_len bytes long, is wanted: the caller reassembles nothing else. */
enum member_want member_wants_chunk(const struct member *m, uint8_t kind, uint32_t chunk, uint32_t chunk_len);

/* Resuming: chunk is in the output file already, read back and verified
 * against the manifest by the caller. Only between the manifest parts and
 * member_on_manifest_end (the caller holds MANIFEST_END back meanwhile);
 * a chunk already held (a share chunk) is left alone. Such chunks are
 * never requested, and member_on_manifest_end offers them to the server
 * with MEMBER_ACT_HAVE. 0, or -EINVAL out of turn or range. */
int member_resume_chunk(struct member *m, uint32_t chunk);
/* The chunks taken from an earlier run (valid after START). */
const struct bitmap *member_resumed(const struct member *m);

/* Server messages (decoded, authenticated). Each refreshes the silence timer. */
void member_on_start(struct member *m, const struct p2s_start *st, uint64_t now);
void member_on_share(struct member *m, uint32_t chunk, struct buf *data, uint64_t now);
void member_on_manifest(struct member *m, uint32_t first, const uint8_t *hashes, uint32_t n, uint64_t now);
void member_on_manifest_end(struct member *m, const uint8_t file_hash[P2S_HASH_SIZE], uint64_t now);
void member_on_data(struct member *m, uint32_t chunk, struct buf *data, bool from_cache, uint64_t now);
void member_on_query(struct member *m, uint32_t chunk, uint64_t now);
void member_on_complete_ack(struct member *m, uint64_t now);
void member_on_done(struct member *m, uint64_t now);
void member_on_error(struct member *m, uint16_t code, const char *reason, bool fatal, uint64_t now);
/* A PING from the server (ack: it answers ours); an unanswered one is
 * answered, over TCP when it came over TCP. */
void member_on_ping(struct member *m, bool ack, bool over_tcp, uint64_t now);
/* The server connection is gone (TCP closed). */
void member_on_disconnect(struct member *m, const char *why, uint64_t now);
/* Answer to MEMBER_ACT_VERIFY: the SHA-256 of the whole written file, or
 * NULL when it could not be read. */
void member_on_verified(struct member *m, const uint8_t *file_hash, uint64_t now);
/* The output could not be written: give up. */
void member_fail(struct member *m, const char *reason, uint64_t now);

uint64_t member_next_deadline(const struct member *m);
void member_on_tick(struct member *m, uint64_t now);

/* Takes the oldest queued action; false when there is none.
 *
 * Out of memory: an event that cannot allocate before it changes anything
 * is ignored (the server retries); an action that cannot be queued once
 * decided ends the member with EXIT code 1, "out of memory". BYE (answering
 * DONE) and EXIT live in room reserved by member_new, so they always come
 * out, EXIT last: after EXIT nothing more is queued. */
bool member_next_action(struct member *m, struct member_action *out);
