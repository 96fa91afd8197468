/* SPDX-License-Identifier: MIT */
/* The join handshake's proofs, as pure functions. Stateless HELLO cookies:
 * the server answers an unproven HELLO with a cookie derived from a secret,
 * a time epoch and the sender's address, and allocates nothing until a
 * HELLO echoes a valid cookie. So a spoofed source address costs the server
 * no memory and gets no more bytes than it sent. The client's nonce, echoed
 * in every answer, proves an answer comes from who saw the HELLO; the
 * optional swarm secret proves the client may join at all. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "proto/wire.h"

#define COOKIE_SECRET_SIZE 32
#define COOKIE_EPOCH_USEC (30ull * 1000000ull)

/* Never returns 0 (0 means "no cookie" on the wire). Hashes the family,
 * address and port only (AF_INET, AF_INET6); for any other family or a
 * short addrlen it returns 1, which cookie_check never accepts. */
uint64_t cookie_make(const uint8_t secret[COOKIE_SECRET_SIZE], uint64_t epoch,
                     const struct sockaddr *addr, socklen_t addrlen);
/* Valid for the epoch of now_us and the one before it. */
bool cookie_check(const uint8_t secret[COOKIE_SECRET_SIZE], uint64_t now_us, uint64_t cookie,
                  const struct sockaddr *addr, socklen_t addrlen);

/* ---- the swarm secret ---------------------------------------------------- */

/* --secret-file: a key shared by p2sd and its members, never sent: a HELLO
 * carries an HMAC over the server's cookie, the client's nonce and the
 * name (p2s.7, "Joining"). */
#define SWARM_SECRET_MAX 1024
struct swarm_secret {
        size_t len;             /* 0: none */
        uint8_t key[SWARM_SECRET_MAX];
};

/* Reads path into s: a regular file, neither readable nor writable by group
 * or others, of 1..SWARM_SECRET_MAX bytes once one trailing "\n" (or
 * "\r\n") is dropped. 0, or -errno with the one line to print in err. */
int swarm_secret_load(const char *path, struct swarm_secret *s, char *err, size_t errlen);
/* HMAC-SHA256(key, P2S_PROOF_LABEL || cookie || nonce || name). */
void join_proof(const struct swarm_secret *s, uint64_t cookie, const uint8_t nonce[P2S_NONCE_SIZE],
                const char *name, size_t name_len, uint8_t out[P2S_PROOF_SIZE]);

/* HMAC-SHA256(key, P2S_LIST_LABEL || cookie || nonce || prefix): a LIST's. */
void list_proof(const struct swarm_secret *s, uint64_t cookie, const uint8_t nonce[P2S_NONCE_SIZE],
                const char *prefix, size_t prefix_len, uint8_t out[P2S_PROOF_SIZE]);

/* ---- the server's side of a HELLO, without sockets ----------------------- */

enum join_verdict {
        JOIN_SEND_COOKIE = 1,   /* unproven address: answer a COOKIE, keep nothing */
        JOIN_NEED_SECRET,       /* proven, but no proof and the server has a secret */
        JOIN_BAD_SECRET,        /* proven, with a proof that does not match */
        JOIN_ACCEPT,            /* proven, and the secret (if any) too */
};
/* Decides what a decoded HELLO (wire_decode said WIRE_OK) earns: ss NULL or
 * empty means no swarm secret. Fills *hello in every case. */
enum join_verdict join_check_hello(const uint8_t secret[COOKIE_SECRET_SIZE], const struct swarm_secret *ss,
                                   uint64_t now_us, const struct p2s_msg *msg, const struct sockaddr *from,
                                   socklen_t fromlen, struct wire_hello *hello);
/* The same for a decoded LIST (over TCP, from the connection's peer
 * address): the proof is over its prefix, with P2S_LIST_LABEL. */
enum join_verdict join_check_list(const uint8_t secret[COOKIE_SECRET_SIZE], const struct swarm_secret *ss,
                                  uint64_t now_us, const struct p2s_msg *msg, const struct sockaddr *from,
                                  socklen_t fromlen, struct wire_list *list);
/* The COOKIE answering a HELLO: header and body into out (cap >= P2S_HDR_SIZE
 * + P2S_COOKIE_SIZE). Returns its length, never more than the HELLO's. */
size_t join_cookie_reply(uint8_t *out, size_t cap, const uint8_t secret[COOKIE_SECRET_SIZE], uint64_t now_us,
                         const struct wire_hello *hello, const struct sockaddr *from, socklen_t fromlen);

/* ---- the client's side ---------------------------------------------------- */

/* Whether a decoded datagram answers our HELLO: a COOKIE, WELCOME or
 * P2S_F_JOIN ERR carrying our nonce (compared in constant time). */
bool join_reply_is_ours(const struct p2s_msg *msg, const uint8_t nonce[P2S_NONCE_SIZE]);

/* The HELLO timer. Before any answer: a guess that costs little on a LAN
 * and backs off fast, doubling per retry up to the max. The max is short:
 * a HELLO costs the server one HMAC and no state, and on a lossy path a
 * 2 s step made the slowest of a swarm's joins (which the gather waits
 * for) seconds late. */
#define JOIN_HELLO_RTO_US     50000ull
#define JOIN_HELLO_RTO_MIN_US 10000ull
#define JOIN_HELLO_RTO_MAX_US 500000ull
/* The wait before the HELLO with the cookie is sent again, the COOKIE having
 * come elapsed us after the first HELLO: a few of that round trip (4 x,
 * within [MIN, RTO]) when the first HELLO was not re-sent; when it was,
 * the round trip is unknown (Karn) but the answer shows the server there
 * and the path open, so the backoff ends and the first guess starts again. */
uint64_t join_hello_rto_after_cookie(bool resent, uint64_t elapsed);
