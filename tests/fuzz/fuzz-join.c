/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the join handshake, both sides, without sockets:
 * p2sd's verdict on a datagram (wire_decode, then join_check_hello: cookie,
 * proof of the swarm secret, the HELLO's body) and the COOKIE it answers
 * with, and p2s-fetch's check that an answer carries its nonce.
 *
 * Input: byte 0 is a mode, byte 1 the clock's epoch, the rest one datagram.
 * Mode bit 0: the server has a swarm secret; bit 1: the datagram's token is
 * replaced by the valid cookie for the sender (so the fuzzer reaches the
 * proven paths); bit 2: its proof is replaced by the right one.
 *
 * Invariants (abort on breach): a reply to an unproven sender is a COOKIE
 * no larger than the datagram and echoing its nonce; a HELLO's name lies
 * inside the datagram with 1..P2S_MAX_NAME bytes and no NUL; only the right
 * proof is accepted when there is a secret; a client accepts only COOKIE,
 * WELCOME and P2S_F_JOIN ERR that carry its nonce byte for byte. */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/cookie.h"
#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t cookie_secret[COOKIE_SECRET_SIZE] = "fuzz-join cookie secret 0123456";
static const uint8_t client_nonce[P2S_NONCE_SIZE] = "fuzz-join-nonce";

static void check_client(const struct p2s_msg *m)
{
        bool ours = join_reply_is_ours(m, client_nonce);
        const uint8_t *echo = wire_reply_nonce(m);
        if (ours != (echo && !memcmp(echo, client_nonce, P2S_NONCE_SIZE)))
                abort();
        if (!echo)
                return;
        if (m->hdr.type != P2S_COOKIE && m->hdr.type != P2S_WELCOME &&
            !(m->hdr.type == P2S_ERR && (m->hdr.flags & P2S_F_JOIN)))
                abort();
        if (echo < m->body || echo + P2S_NONCE_SIZE > m->body + m->hdr.body_len)
                abort();
        if (m->hdr.type == P2S_ERR) {
                /* what on_join_err reads: the code and reason after the nonce */
                char reason[P2S_MAX_REASON + 1];
                if (m->hdr.body_len < P2S_NONCE_SIZE + P2S_ERR_BODY_MIN)
                        abort();
                if (wire_get_err(m->body + P2S_NONCE_SIZE, m->hdr.body_len - P2S_NONCE_SIZE, reason,
                                 sizeof(reason)) == 0)
                        abort();
        }
}

static void check_server(uint8_t mode, uint64_t now, const uint8_t *pkt, size_t len, struct p2s_msg *m)
{
        struct sockaddr_in from = { .sin_family = AF_INET, .sin_port = htons(4000) };
        from.sin_addr.s_addr = htonl(0xc0000201);
        struct swarm_secret ss = { .len = 6 };
        memcpy(ss.key, "fuzzed", 6);
        struct wire_hello wh;

        enum join_verdict v = join_check_hello(cookie_secret, (mode & 1) ? &ss : NULL, now, m,
                                               (struct sockaddr *)&from, sizeof(from), &wh);
        if ((const uint8_t *)wh.name < pkt || (const uint8_t *)wh.name + wh.name_len > pkt + len ||
            wh.name_len == 0 || wh.name_len > P2S_MAX_NAME || memchr(wh.name, 0, wh.name_len))
                abort();
        bool proven = m->hdr.token && cookie_check(cookie_secret, now, m->hdr.token, (struct sockaddr *)&from,
                                                   sizeof(from));
        if ((v == JOIN_SEND_COOKIE) == proven)
                abort();
        if (v == JOIN_SEND_COOKIE) {
                uint8_t out[P2S_HDR_SIZE + P2S_COOKIE_SIZE];
                size_t n = join_cookie_reply(out, sizeof(out), cookie_secret, now, &wh, (struct sockaddr *)&from,
                                             sizeof(from));
                struct p2s_msg r;
                if (n == 0 || n > len || wire_decode(out, n, &r) != WIRE_OK || r.hdr.type != P2S_COOKIE ||
                    r.hdr.token == 0 || !join_reply_is_ours(&r, wh.nonce))
                        abort();
                return;
        }
        if (!(mode & 1)) {
                if (v != JOIN_ACCEPT)
                        abort();
                return;
        }
        uint8_t want[P2S_PROOF_SIZE], zero[P2S_PROOF_SIZE] = { 0 };
        join_proof(&ss, m->hdr.token, wh.nonce, wh.name, wh.name_len, want);
        bool right = !memcmp(want, wh.proof, P2S_PROOF_SIZE);
        bool none = !memcmp(zero, wh.proof, P2S_PROOF_SIZE);
        if (v != (right ? JOIN_ACCEPT : none ? JOIN_NEED_SECRET : JOIN_BAD_SECRET))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 2 || size - 2 > P2S_MAX_DGRAM)
                return 0;
        uint8_t mode = data[0];
        uint64_t now = (uint64_t)data[1] * COOKIE_EPOCH_USEC + COOKIE_EPOCH_USEC / 2;
        size_t len = size - 2;
        /* a copy the helpers may rewrite, of exactly the datagram's length,
         * so a sanitizer sees any read past it */
        uint8_t *pkt = malloc(len ? len : 1);
        if (!pkt)
                return 0;
        memcpy(pkt, data + 2, len);

        struct p2s_hdr h;
        if ((mode & 2) && wire_decode_hdr(pkt, len, &h) == WIRE_OK && h.type == P2S_HELLO) {
                struct sockaddr_in from = { .sin_family = AF_INET, .sin_port = htons(4000) };
                from.sin_addr.s_addr = htonl(0xc0000201);
                uint64_t c = cookie_make(cookie_secret, now / COOKIE_EPOCH_USEC, (struct sockaddr *)&from,
                                         sizeof(from));
                for (int i = 0; i < 8; i++)
                        pkt[20 + i] = (uint8_t)(c >> (56 - 8 * i));
                if ((mode & 4) && len >= P2S_HDR_SIZE + P2S_HELLO_FIXED + 1 &&
                    len == P2S_HDR_SIZE + (size_t)h.body_len) {
                        struct swarm_secret ss = { .len = 6 };
                        memcpy(ss.key, "fuzzed", 6);
                        join_proof(&ss, c, pkt + P2S_HDR_SIZE, (const char *)pkt + P2S_HDR_SIZE + P2S_HELLO_FIXED,
                                   h.body_len - P2S_HELLO_FIXED, pkt + P2S_HDR_SIZE + P2S_NONCE_SIZE);
                }
        }

        struct p2s_msg m;
        if (wire_decode(pkt, len, &m) == WIRE_OK) {
                if (m.hdr.type == P2S_HELLO)
                        check_server(mode, now, pkt, len, &m);
                check_client(&m);
        }
        free(pkt);
        return 0;
}
