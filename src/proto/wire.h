/* SPDX-License-Identifier: MIT */
/* Wire codec: one pure function decodes, one encodes. Every length, type and
 * index is checked before use; nothing from the peer is trusted. */
#pragma once
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
        WIRE_E_MAX,
};
const char *wire_strerror(int e);   /* "short", "bad magic", ... for log lines */

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
/* ERR body: code then reason (truncated to P2S_MAX_REASON). Returns body length. */
size_t wire_put_err(uint8_t *out, size_t cap, uint16_t code, const char *reason);
/* The same, in a new refcounted buffer for an output queue; NULL on ENOMEM. */
struct buf *wire_err_buf(uint16_t code, const char *reason);
/* Copies the reason into a NUL-terminated string (cap >= 1), returns code. */
uint16_t wire_get_err(const uint8_t *body, uint32_t body_len, char *reason, size_t cap);

/* Largest body a message of this type may carry (0 for none, including unknown types). */
uint32_t wire_max_body(uint8_t type);
const char *wire_type_name(uint8_t type);  /* "HELLO", ..., "?" */
