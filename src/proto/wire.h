/* SPDX-License-Identifier: MIT */
/* Wire codec: one pure function decodes, one encodes. Every length, type and
 * index is checked before use; nothing from the peer is trusted. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <p2s/proto.h>
#include "util/buf.h"

/* Positive rejection reasons (the caller counts and drops). */
enum wire_error {
        WIRE_OK = 0,
        WIRE_E_SHORT,       /* fewer bytes than a header, or than header + body_len */
        WIRE_E_MAGIC,
        WIRE_E_VERSION,
        WIRE_E_TYPE,        /* unknown type */
        WIRE_E_LENGTH,      /* body_len not allowed for this type, or datagram longer than header + body */
        WIRE_E_BODY,        /* body content invalid (NUL in a name, bad START, ...) */
        WIRE_E_CHUNK,       /* chunk field required and P2S_NO_CHUNK, or set where not allowed */
        WIRE_E_ROUTE,       /* well-formed, but not in this direction, on this channel, in this mode */
        WIRE_E_MAX,
};
const char *wire_strerror(int e);   /* "short", "bad magic", ... for log lines */
/* A P2S_ERR_* code in words ("no such file is served", ...), for log lines. */
const char *wire_err_name(uint16_t code);

/* A decoded message. hdr is in host byte order; body points into the
 * caller's buffer (not copied). */
struct p2s_msg {
        struct p2s_hdr hdr;
        const uint8_t *body;
};

/* Decodes and checks a header alone (for streams: tells how long the body
 * is). Checks magic, version, type, body_len against the per-type bounds
 * and the chunk field rule. Needs len >= P2S_HDR_SIZE. *out is filled
 * whenever len >= P2S_HDR_SIZE, even on rejection (for logging or an ERR
 * reply); trust it only on WIRE_OK. */
int wire_decode_hdr(const uint8_t *buf, size_t len, struct p2s_hdr *out);
/* Decodes a whole message: len must be exactly P2S_HDR_SIZE + body_len,
 * and the body must be valid for the type (see wire_check_body). */
int wire_decode(const uint8_t *buf, size_t len, struct p2s_msg *out);
/* Checks a body against its type: HELLO a name of 1..P2S_MAX_NAME bytes
 * without NUL; WELCOME/START exact size and sane values (START: chunk_size in
 * [P2S_MIN_CHUNK, P2S_MAX_CHUNK], chunk_count == ceil(file_size/chunk_size)
 * <= P2S_MAX_CHUNKS, count 0 only for an empty file); MANIFEST a multiple of
 * 32 bytes whose last index stays below P2S_NO_CHUNK (else WIRE_E_CHUNK);
 * ERR a known-length reason and a non-zero code. Also re-checks h's framing
 * (type, body_len bounds, chunk rule), and trusts h->body_len bytes at body. */
int wire_check_body(const struct p2s_hdr *h, const uint8_t *body);

/* Writes the P2S_HDR_SIZE-byte header (magic and version are filled in). */
void wire_encode_hdr(uint8_t out[P2S_HDR_SIZE], const struct p2s_hdr *h);
/* Header + body into out (cap bytes); the header's body_len is taken from
 * the body_len argument. Returns total length or 0 if it does not fit. */
size_t wire_encode(uint8_t *out, size_t cap, const struct p2s_hdr *h, const void *body, uint32_t body_len);

/* Body helpers (network byte order inside). */
void wire_put_welcome(uint8_t out[P2S_WELCOME_SIZE], const struct p2s_welcome *w);
void wire_get_welcome(const uint8_t in[P2S_WELCOME_SIZE], struct p2s_welcome *w);
void wire_put_start(uint8_t out[P2S_START_SIZE], const struct p2s_start *s);
void wire_get_start(const uint8_t in[P2S_START_SIZE], struct p2s_start *s);
void wire_put_frag(uint8_t out[P2S_FRAG_SIZE], const struct p2s_frag *f);
void wire_get_frag(const uint8_t in[P2S_FRAG_SIZE], struct p2s_frag *f);
void wire_put_frag_ack(uint8_t out[P2S_FRAG_ACK_SIZE], const struct p2s_frag_ack *a);
void wire_get_frag_ack(const uint8_t in[P2S_FRAG_ACK_SIZE], struct p2s_frag_ack *a);
/* The body of a PING answered while gathering: members joined and the
 * --min-clients the swarm waits for (p2s-fetch shows "(k members)"). */
void wire_put_gather(uint8_t out[P2S_GATHER_SIZE], uint32_t members, uint32_t min_clients);
void wire_get_gather(const uint8_t in[P2S_GATHER_SIZE], uint32_t *members, uint32_t *min_clients);
/* The HELLO body of a decoded message (wire_decode checked its length):
 * name points into the message and is not NUL-terminated. */
struct wire_hello {
        uint8_t nonce[P2S_NONCE_SIZE];
        uint8_t proof[P2S_PROOF_SIZE];
        const char *name;
        size_t name_len;
};
void wire_get_hello(const struct p2s_msg *msg, struct wire_hello *out);
/* A HELLO body: nonce, proof (NULL: 32 zero bytes), name of 1..P2S_MAX_NAME
 * bytes. Returns its length, 0 if it does not fit cap or the name is bad. */
size_t wire_put_hello(uint8_t *out, size_t cap, const uint8_t nonce[P2S_NONCE_SIZE],
                      const uint8_t proof[P2S_PROOF_SIZE], const char *name, size_t name_len);
/* The body of an ERR answering a HELLO (send it with P2S_F_JOIN): nonce,
 * code, reason cut to fit cap and the ERR bound. 0 if cap cannot hold the
 * nonce and the code. */
size_t wire_put_join_err(uint8_t *out, size_t cap, const uint8_t nonce[P2S_NONCE_SIZE], uint16_t code,
                         const char *reason);
/* The nonce a decoded COOKIE, WELCOME or P2S_F_JOIN ERR carries back, or
 * NULL for any other message (which therefore answers no HELLO). */
const uint8_t *wire_reply_nonce(const struct p2s_msg *msg);

/* The listing (p2s.7, "Listing"). A decoded LIST's body: prefix and
 * after point into the message, not NUL-terminated. */
struct wire_list {
        uint8_t nonce[P2S_NONCE_SIZE];
        uint8_t proof[P2S_PROOF_SIZE];
        const char *prefix, *after;
        size_t prefix_len, after_len;
};
void wire_get_list(const struct p2s_msg *msg, struct wire_list *out);
/* A LIST body (proof NULL: 32 zero bytes); prefix and after of 0..P2S_MAX_NAME
 * bytes without NUL. Its length, 0 if it does not fit cap or a name is bad. */
size_t wire_put_list(uint8_t *out, size_t cap, const uint8_t nonce[P2S_NONCE_SIZE],
                     const uint8_t proof[P2S_PROOF_SIZE], const char *prefix, size_t prefix_len,
                     const char *after, size_t after_len);
/* One entry of a LISTING; name points into the body (not NUL-terminated). */
struct wire_entry {
        uint64_t size;
        int64_t mtime_sec;
        bool has_hash;
        uint8_t sha256[P2S_HASH_SIZE];
        const char *name;
        size_t name_len;
};
/* A LISTING body is its u16 count (written last, when known) then the entries. */
void wire_put_listing_count(uint8_t *body, uint16_t count);
/* Appends one entry at out; its length, 0 if it does not fit cap or the name is bad. */
size_t wire_put_entry(uint8_t *out, size_t cap, const struct wire_entry *e);
/* The next entry of a LISTING body, from *off (0 at first; advanced): 1 with
 * *e filled, 0 at the end of the body, -1 for a malformed entry.
 * wire_check_body has walked the body once, and checked the count. */
int wire_listing_next(const uint8_t *body, uint32_t body_len, size_t *off, struct wire_entry *e);

/* ERR body: code then reason (truncated to P2S_MAX_REASON). Returns body length. */
size_t wire_put_err(uint8_t *out, size_t cap, uint16_t code, const char *reason);
/* The same, in a new refcounted buffer for an output queue; NULL on ENOMEM. */
struct buf *wire_err_buf(uint16_t code, const char *reason);
/* Copies the reason into a NUL-terminated string (cap >= 1), returns code. */
uint16_t wire_get_err(const uint8_t *body, uint32_t body_len, char *reason, size_t cap);

/* Which way a message travels, and over what (bits, so the rule table can
 * hold "both"; a check is always for exactly one of each). */
enum wire_dir {
        WIRE_DIR_C2S = 1 << 0,  /* member (p2s-fetch) to server (p2sd) */
        WIRE_DIR_S2C = 1 << 1,
};
enum wire_channel {
        WIRE_CH_UDP = 1 << 0,   /* one datagram */
        WIRE_CH_TCP = 1 << 1,   /* one frame on the member's TCP connection */
};

/* Whether a message of this type may travel in direction dir over channel
 * ch when the swarm runs control_mode (P2S_CONTROL_UDP or _TCP; 0 before
 * WELCOME, when only what both modes allow is accepted): WIRE_OK,
 * WIRE_E_ROUTE, or WIRE_E_TYPE for an unknown type. The rules are
 * man/p2s.7's: the join is UDP, ATTACH/START/manifest TCP; control messages
 * either transport in either mode (retries escalate to TCP); SHARE, DATA
 * and UPLOAD TCP frames in udp mode only; FRAG, FRAG_ACK, FRAG_NACK
 * datagrams in tcp mode only; ERR server to member only. Check it before
 * acting on, or allocating for, anything the peer sent. A route error on
 * an ERR from a member is not worth an answer (p2s.7: p2sd ignores one). */
int wire_check_route(uint8_t type, enum wire_dir dir, enum wire_channel ch, int control_mode);
/* For FRAG, FRAG_ACK and FRAG_NACK (body already checked): a FRAG goes the
 * way its kind goes (SHARE/DATA server to member, UPLOAD member to server),
 * the acknowledgements the other way. WIRE_OK for other types; WIRE_E_BODY
 * for an unknown kind; WIRE_E_ROUTE. */
int wire_check_frag_route(uint8_t type, uint8_t kind, enum wire_dir dir);

/* Largest body a message of this type may carry (0 for none, including
 * unknown types). For SHARE, DATA and UPLOAD it is the swarm's chunk_size
 * (0: not known yet, the protocol's P2S_MAX_CHUNK), for the rest their
 * fixed or maximum size. */
uint32_t wire_max_body(uint8_t type, uint32_t chunk_size);
/* For a stream reader, on a header that passed wire_decode_hdr and before
 * any body is allocated: the route (channel TCP) and body_len <=
 * wire_max_body(type, chunk_size). WIRE_OK, WIRE_E_ROUTE or WIRE_E_LENGTH.
 * So a member cannot make p2sd allocate 16 MiB for a SHARE it has no
 * business sending, nor an UPLOAD larger than a chunk. */
int wire_check_frame_hdr(const struct p2s_hdr *h, enum wire_dir dir, int control_mode, uint32_t chunk_size);
const char *wire_type_name(uint8_t type);  /* "HELLO", ..., "?" */
