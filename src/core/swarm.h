/* SPDX-License-Identifier: MIT */
/* The server side of one swarm, as a pure state machine: the caller feeds it
 * events (a member joined, a request, an upload, a chunk read from the
 * source, the time) and drains the actions it returns (send this message to
 * that member, open the source, drop a member, the swarm is over). It never
 * touches a socket or a file, so tests drive whole swarms in memory. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <p2s/proto.h>
#include "proto/manifest.h"
#include "util/buf.h"
#include "util/heap.h"
#include "util/lru.h"

enum swarm_query_mode {
        SWARM_QUERY_DIRECTED,   /* ask one holder, the least busy; on timeout another */
        SWARM_QUERY_BROADCAST,  /* ask every member; the first good upload wins */
};

struct swarm_config {
        uint32_t chunk_size;
        unsigned replicas;              /* >= 1 */
        unsigned min_clients;           /* 0: start only on the gather timeout */
        uint64_t gather_timeout_us;
        enum swarm_query_mode query;
        uint64_t query_timeout_us;      /* first wait for an upload until one was measured; doubles per retry */
        uint64_t query_timeout_min_us;  /* floor of the measured timeout */
        uint64_t query_timeout_max_us;
        unsigned query_tries;           /* asks of one chunk before its holder is dropped as silent */
        unsigned escalate_after;        /* unanswered datagrams before a retry goes over TCP */
        uint64_t done_retry_us;         /* first DONE retry until a BYE was timed; cap of the backoff */
        uint64_t done_retry_min_us;     /* floor of the measured DONE -> BYE timeout */
        unsigned done_tries;
        uint64_t ping_after_us;         /* a member heard nothing from this long gets a PING */
        uint64_t member_silence_us;     /* a member heard nothing from this long is dropped */
        unsigned max_strikes;           /* bad uploads, or NOHAVEs for chunks it was given, before expulsion */
        bool ordered_share;             /* SHAREs travel before MANIFEST_END on one ordered
                                         * connection (--control udp): a member that sent a
                                         * REQ holds its whole share */
};
void swarm_config_defaults(struct swarm_config *c);

enum swarm_state {
        SWARM_GATHER,
        SWARM_DISTRIBUTE,
        SWARM_RELAY,
        SWARM_FINISHING,        /* DONE sent, waiting for BYEs */
        SWARM_OVER,             /* END action emitted; free it */
};

enum swarm_act_type {
        SWARM_ACT_SEND,         /* send msg/flags/chunk/body to member */
        SWARM_ACT_START,        /* open the source, then call swarm_distribute() */
        SWARM_ACT_DROP,         /* member is gone from the swarm: close its connections */
        SWARM_ACT_END,          /* the swarm is over: code 0 success, else p2s_err_code */
        SWARM_ACT_READ,         /* chunk is held by nobody: read it from the source again and
                                 * pass it to swarm_on_source_reread */
};

struct swarm_action {
        enum swarm_act_type type;
        uint32_t member_id;
        void *member_ud;        /* the pointer given to swarm_join */
        uint8_t msg;            /* SEND: enum p2s_type */
        uint16_t flags;
        uint32_t chunk;
        struct buf *body;       /* SEND: owned by the action (unref when done), may be NULL */
        bool reliable;          /* SEND: a retry that must arrive: use the member's TCP connection */
        bool twice;             /* SEND as a datagram: one whose loss stalls the swarm, sent twice */
        int code;               /* END/DROP: reason code */
        const char *why;        /* DROP with a code: why, a static string */
};

struct swarm_stats {
        uint64_t requests, cache_hits, cache_misses, coalesced;
        uint64_t queries, uploads, dup_uploads, bad_uploads, nohaves;
        uint64_t bytes_shared, bytes_relayed, bytes_uploaded;
        uint64_t dropped_msgs;  /* well-formed but not valid in this state */
        uint64_t source_rereads;        /* chunks read again from the source */
        uint64_t lying_nohaves;         /* NOHAVE for a chunk the member was given */
        unsigned joined, completed;     /* members that ever joined, that said COMPLETE */
        unsigned expelled;              /* members dropped for silence or lies */
};

struct swarm;
struct swarm_member;

/* id: the swarm id on the wire; cache: shared by every swarm (keys
 * id << 32 | chunk). NULL on ENOMEM. */
struct swarm *swarm_new(const struct swarm_config *cfg, uint32_t id, const char *name,
                        struct lru *cache);
struct swarm *swarm_free(struct swarm *s);      /* NULL-safe; drops queued actions */

uint32_t swarm_id(const struct swarm *s);
const char *swarm_name(const struct swarm *s);
uint32_t swarm_chunk_size(const struct swarm *s);
enum swarm_state swarm_state(const struct swarm *s);
const struct manifest *swarm_manifest(const struct swarm *s);
const struct swarm_stats *swarm_stats(const struct swarm *s);
unsigned swarm_member_count(const struct swarm *s);
/* True while new members may join (not finishing or over). */
bool swarm_joinable(const struct swarm *s);

/* A member (its TCP connection attached) joins; ud comes back in actions.
 * NULL on ENOMEM (nothing changed) or when the swarm is not joinable. */
struct swarm_member *swarm_join(struct swarm *s, uint32_t member_id, void *ud, uint64_t now);
/* The member is gone (connection closed): dropped from every holder set.
 * The handle is invalid afterwards. No DROP action is emitted for it. */
void swarm_leave(struct swarm *s, struct swarm_member *m, uint64_t now);
uint32_t swarm_member_id(const struct swarm_member *m);
bool swarm_member_complete(const struct swarm_member *m);
/* The caller gives up on m (its queue does not drain, say): DROP with
 * code and why (a static string) is queued and the member removed. */
void swarm_expel(struct swarm *s, struct swarm_member *m, int code, const char *why, uint64_t now);

/* After SWARM_ACT_START: the source is open and file_size bytes long.
 * Returns 0, or a negative errno: the swarm then has failed (ERR SOURCE, or
 * ERR BUSY out of memory) and END is queued. */
int swarm_distribute(struct swarm *s, uint64_t file_size, uint64_t now);
/* Before swarm_distribute: the source's mtime and mode, carried in START. */
void swarm_set_file_meta(struct swarm *s, int64_t mtime_sec, uint32_t mtime_nsec, uint32_t mode);
/* Index of the next chunk the caller must read and pass to
 * swarm_source_chunk, or P2S_NO_CHUNK when the whole source was read. */
uint32_t swarm_source_next(const struct swarm *s);
/* Chunk idx (== swarm_source_next) as read from the source; len must be the
 * chunk's length. */
void swarm_source_chunk(struct swarm *s, uint32_t idx, struct buf *data, uint64_t now);
/* Answer to SWARM_ACT_READ: chunk as read again from the source, or NULL
 * with why saying what went wrong (the file is gone, unreadable). A chunk
 * whose SHA-256 no longer matches the manifest fails the swarm too. */
void swarm_on_source_reread(struct swarm *s, uint32_t chunk, struct buf *data, const char *why, uint64_t now);
/* The source could not be read: every member gets ERR SOURCE. */
void swarm_fail(struct swarm *s, int code, const char *reason, uint64_t now);

/* Messages from a member, already decoded and authenticated. */
/* idle: nothing of ours is queued toward m; a request for a chunk we sent
 * it is then answered again from the cache, if the cache has it. */
void swarm_on_request(struct swarm *s, struct swarm_member *m, uint32_t chunk, bool idle, uint64_t now);
void swarm_on_upload(struct swarm *s, struct swarm_member *m, uint32_t chunk, struct buf *data, uint64_t now);
/* Whether an upload of chunk from m would be used now; the caller refuses
 * to reassemble data nobody asked for. */
bool swarm_wants_upload(const struct swarm *s, const struct swarm_member *m, uint32_t chunk);
/* answer: the NOHAVE answers a QUERY (P2S_F_ACK); otherwise m says it
 * discarded a chunk we counted as its own. */
void swarm_on_nohave(struct swarm *s, struct swarm_member *m, uint32_t chunk, bool answer, uint64_t now);
void swarm_on_complete(struct swarm *s, struct swarm_member *m, uint64_t now);
/* HAVE: m resumed a file and holds, besides what it was sent, the chunks
 * whose bits are set in map (len bytes, bit i % 8 of byte i / 8 from the least significant) from
 * chunk first on; it becomes a holder of them. Bits past the last chunk
 * are ignored; outside the relay the message is dropped. */
void swarm_on_have(struct swarm *s, struct swarm_member *m, uint32_t first, const uint8_t *map, uint32_t len,
                   uint64_t now);
void swarm_on_bye(struct swarm *s, struct swarm_member *m, uint64_t now);
/* A PING from m (ack: it answers ours). Every message from a member proves
 * it alive; PING is what a quiet one sends, or answers. */
void swarm_on_ping(struct swarm *s, struct swarm_member *m, bool ack, uint64_t now);
/* m's connection took data queued for it: it reads what it asked for, so
 * a long wait for that data is no silence of its own (only the expulsion
 * of silent members counts it, nothing else it owes). */
void swarm_on_reading(struct swarm *s, struct swarm_member *m, uint64_t now);

/* Timers: the earliest deadline (UINT64_MAX: none); call on_tick at or after it. */
uint64_t swarm_next_deadline(const struct swarm *s);
void swarm_on_tick(struct swarm *s, uint64_t now);

/* Takes the oldest queued action; false when there is none.
 *
 * Out of memory: an event whose handling cannot allocate before it changes
 * anything is ignored (the member's retry brings it again); one that would
 * lose a decided action (a SEND) fails the swarm with END code
 * P2S_ERR_BUSY, and the members learn it from their connections closing.
 * START, DROP and END live in room reserved in swarm_new and swarm_join, so
 * they always come out, END last: after END nothing more is queued. */
bool swarm_next_action(struct swarm *s, struct swarm_action *out);
