/* SPDX-License-Identifier: MIT */
/* The join's proofs. Stateless cookies: a keyed hash of the sender's
 * address and a coarse time epoch, so the server remembers nothing about
 * unproven senders. The swarm secret's HMAC, the client's nonce check, and
 * the server's verdict on a HELLO, all free of sockets (tests/fuzz). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "proto/cookie.h"
#include "proto/hash.h"

/* secret, epoch, family, IPv6-sized address, port. */
#define COOKIE_INPUT_MAX (COOKIE_SECRET_SIZE + 8 + 2 + 16 + 2)

/* Serialises the fields that identify a sender into buf, never the whole
 * sockaddr: its padding and sin6_flowinfo are not the sender's identity.
 * Returns the length used, or 0 for a family or length we cannot read. */
static size_t cookie_input(uint8_t buf[COOKIE_INPUT_MAX], const uint8_t secret[COOKIE_SECRET_SIZE],
                           uint64_t epoch, const struct sockaddr *addr, socklen_t addrlen)
{
        size_t n = 0;

        if (!addr || addrlen < (socklen_t)sizeof(sa_family_t))
                return 0;
        memcpy(buf, secret, COOKIE_SECRET_SIZE);
        n += COOKIE_SECRET_SIZE;
        for (int i = 7; i >= 0; i--)
                buf[n++] = (uint8_t)(epoch >> (8 * i));
        buf[n++] = (uint8_t)(addr->sa_family >> 8);
        buf[n++] = (uint8_t)addr->sa_family;

        if (addr->sa_family == AF_INET) {
                struct sockaddr_in sin;
                if (addrlen < (socklen_t)sizeof(sin))
                        return 0;
                memcpy(&sin, addr, sizeof(sin));   /* addr may be unaligned storage */
                memcpy(buf + n, &sin.sin_addr, 4);
                n += 4;
                memcpy(buf + n, &sin.sin_port, 2);   /* already network order */
                n += 2;
        } else if (addr->sa_family == AF_INET6) {
                struct sockaddr_in6 sin6;
                if (addrlen < (socklen_t)sizeof(sin6))
                        return 0;
                memcpy(&sin6, addr, sizeof(sin6));
                memcpy(buf + n, &sin6.sin6_addr, 16);
                n += 16;
                memcpy(buf + n, &sin6.sin6_port, 2);
                n += 2;
        } else {
                return 0;
        }
        return n;
}

uint64_t cookie_make(const uint8_t secret[COOKIE_SECRET_SIZE], uint64_t epoch,
                     const struct sockaddr *addr, socklen_t addrlen)
{
        uint8_t buf[COOKIE_INPUT_MAX];
        uint8_t digest[P2S_HASH_SIZE];
        uint64_t c = 0;
        size_t n = cookie_input(buf, secret, epoch, addr, addrlen);

        /* An address we cannot read gets a fixed cookie; cookie_check
         * refuses such addresses whatever cookie they bring. */
        if (n == 0)
                return 1;
        hash_sha256(buf, n, digest);
        for (int i = 0; i < 8; i++)
                c = c << 8 | digest[i];
        return c ? c : 1;   /* 0 on the wire means "no cookie" */
}

bool cookie_check(const uint8_t secret[COOKIE_SECRET_SIZE], uint64_t now_us, uint64_t cookie,
                  const struct sockaddr *addr, socklen_t addrlen)
{
        uint8_t buf[COOKIE_INPUT_MAX];
        uint64_t epoch = now_us / COOKIE_EPOCH_USEC;

        if (cookie == 0 || cookie_input(buf, secret, epoch, addr, addrlen) == 0)
                return false;
        if (cookie_make(secret, epoch, addr, addrlen) == cookie)
                return true;
        /* A cookie issued just before an epoch boundary stays good for one
         * more epoch, so it lives between 30 and 60 seconds. */
        return epoch > 0 && cookie_make(secret, epoch - 1, addr, addrlen) == cookie;
}

/* ---- the swarm secret ---------------------------------------------------- */

int swarm_secret_load(const char *path, struct swarm_secret *s, char *err, size_t errlen)
{
        uint8_t buf[SWARM_SECRET_MAX + 3];
        struct stat st;
        ssize_t n;
        int fd, e;

        s->len = 0;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                e = errno;
                snprintf(err, errlen, "secret file %s: %s", path, strerror(e));
                return -e;
        }
        if (fstat(fd, &st) < 0) {
                e = errno;
                snprintf(err, errlen, "secret file %s: %s", path, strerror(e));
                close(fd);
                return -e;
        }
        if (!S_ISREG(st.st_mode)) {
                snprintf(err, errlen, "secret file %s: not a regular file", path);
                close(fd);
                return -EINVAL;
        }
        /* a secret others can read is no secret, one they can write not ours */
        if (st.st_mode & 077) {
                snprintf(err, errlen, "secret file %s: readable or writable by group or others (mode %04o): "
                         "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
                close(fd);
                return -EPERM;
        }
        size_t len = 0;
        while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        e = errno;
                        snprintf(err, errlen, "secret file %s: %s", path, strerror(e));
                        close(fd);
                        explicit_bzero(buf, sizeof(buf));
                        return -e;
                }
                len += (size_t)n;
        }
        close(fd);
        /* "echo secret > FILE" must give the same key as printf */
        if (len > 0 && buf[len - 1] == '\n') {
                len--;
                if (len > 0 && buf[len - 1] == '\r')
                        len--;
        }
        if (len == 0 || len > SWARM_SECRET_MAX) {
                snprintf(err, errlen, "secret file %s: %s", path,
                         len == 0 ? "empty" : "longer than 1024 bytes");
                explicit_bzero(buf, sizeof(buf));
                return len == 0 ? -EINVAL : -EFBIG;
        }
        memcpy(s->key, buf, len);
        s->len = len;
        explicit_bzero(buf, sizeof(buf));
        return 0;
}

/* HMAC-SHA256(key, label || cookie || nonce || name): a HELLO's and a
 * LIST's proofs differ in the label, so neither stands in for the other. */
static void labeled_proof(const char *label, const struct swarm_secret *s, uint64_t cookie,
                          const uint8_t nonce[P2S_NONCE_SIZE], const char *name, size_t name_len,
                          uint8_t out[P2S_PROOF_SIZE])
{
        uint8_t msg[16 + 8 + P2S_NONCE_SIZE + P2S_MAX_NAME];
        size_t n = 0, ll = strlen(label);
        unsigned outlen = 0;

        if (name_len > P2S_MAX_NAME)
                name_len = P2S_MAX_NAME;
        if (ll > 16)
                ll = 16;
        memcpy(msg, label, ll);
        n += ll;
        for (int i = 7; i >= 0; i--)
                msg[n++] = (uint8_t)(cookie >> (8 * i));
        memcpy(msg + n, nonce, P2S_NONCE_SIZE);
        n += P2S_NONCE_SIZE;
        if (name_len)
                memcpy(msg + n, name, name_len);
        n += name_len;
        /* HMAC on valid arguments fails only when libcrypto is broken: a
         * zero proof then, which no server accepts */
        if (!HMAC(EVP_sha256(), s->key, (int)s->len, msg, n, out, &outlen) || outlen != P2S_PROOF_SIZE)
                memset(out, 0, P2S_PROOF_SIZE);
}

void join_proof(const struct swarm_secret *s, uint64_t cookie, const uint8_t nonce[P2S_NONCE_SIZE],
                const char *name, size_t name_len, uint8_t out[P2S_PROOF_SIZE])
{
        labeled_proof(P2S_PROOF_LABEL, s, cookie, nonce, name, name_len, out);
}

void list_proof(const struct swarm_secret *s, uint64_t cookie, const uint8_t nonce[P2S_NONCE_SIZE],
                const char *prefix, size_t prefix_len, uint8_t out[P2S_PROOF_SIZE])
{
        labeled_proof(P2S_LIST_LABEL, s, cookie, nonce, prefix, prefix_len, out);
}

/* ---- the server's side of a HELLO ---------------------------------------- */

static bool all_zero(const uint8_t *p, size_t n)
{
        uint8_t acc = 0;
        for (size_t i = 0; i < n; i++)
                acc |= p[i];
        return acc == 0;
}

/* The verdict on a request that echoes token, proving label over name. */
static enum join_verdict check_proven(const char *label, const uint8_t secret[COOKIE_SECRET_SIZE],
                                      const struct swarm_secret *ss, uint64_t now_us, uint64_t token,
                                      const uint8_t nonce[P2S_NONCE_SIZE], const uint8_t proof[P2S_PROOF_SIZE],
                                      const char *name, size_t name_len, const struct sockaddr *from,
                                      socklen_t fromlen)
{
        if (token == 0 || !cookie_check(secret, now_us, token, from, fromlen))
                return JOIN_SEND_COOKIE;
        if (!ss || ss->len == 0)
                return JOIN_ACCEPT;     /* a proof we cannot check is ignored */
        if (all_zero(proof, P2S_PROOF_SIZE))
                return JOIN_NEED_SECRET;
        uint8_t want[P2S_PROOF_SIZE];
        labeled_proof(label, ss, token, nonce, name, name_len, want);
        bool ok = CRYPTO_memcmp(want, proof, P2S_PROOF_SIZE) == 0 && !all_zero(want, P2S_PROOF_SIZE);
        return ok ? JOIN_ACCEPT : JOIN_BAD_SECRET;
}

enum join_verdict join_check_hello(const uint8_t secret[COOKIE_SECRET_SIZE], const struct swarm_secret *ss,
                                   uint64_t now_us, const struct p2s_msg *msg, const struct sockaddr *from,
                                   socklen_t fromlen, struct wire_hello *hello)
{
        wire_get_hello(msg, hello);
        return check_proven(P2S_PROOF_LABEL, secret, ss, now_us, msg->hdr.token, hello->nonce, hello->proof,
                            hello->name, hello->name_len, from, fromlen);
}

enum join_verdict join_check_list(const uint8_t secret[COOKIE_SECRET_SIZE], const struct swarm_secret *ss,
                                  uint64_t now_us, const struct p2s_msg *msg, const struct sockaddr *from,
                                  socklen_t fromlen, struct wire_list *list)
{
        wire_get_list(msg, list);
        return check_proven(P2S_LIST_LABEL, secret, ss, now_us, msg->hdr.token, list->nonce, list->proof,
                            list->prefix, list->prefix_len, from, fromlen);
}

size_t join_cookie_reply(uint8_t *out, size_t cap, const uint8_t secret[COOKIE_SECRET_SIZE], uint64_t now_us,
                         const struct wire_hello *hello, const struct sockaddr *from, socklen_t fromlen)
{
        struct p2s_hdr r = { .type = P2S_COOKIE, .chunk = P2S_NO_CHUNK, .body_len = P2S_COOKIE_SIZE,
                             .token = cookie_make(secret, now_us / COOKIE_EPOCH_USEC, from, fromlen) };
        /* 48 bytes, and a HELLO is at least 81: no amplification */
        return wire_encode(out, cap, &r, hello->nonce, P2S_COOKIE_SIZE);
}

/* ---- the client's side ---------------------------------------------------- */

bool join_reply_is_ours(const struct p2s_msg *msg, const uint8_t nonce[P2S_NONCE_SIZE])
{
        const uint8_t *echo = wire_reply_nonce(msg);
        return echo && CRYPTO_memcmp(echo, nonce, P2S_NONCE_SIZE) == 0;
}

uint64_t join_hello_rto_after_cookie(bool resent, uint64_t elapsed)
{
        if (resent)
                return JOIN_HELLO_RTO_US;
        uint64_t rto = 4 * elapsed;
        return rto < JOIN_HELLO_RTO_MIN_US ? JOIN_HELLO_RTO_MIN_US : rto > JOIN_HELLO_RTO_US ? JOIN_HELLO_RTO_US : rto;
}
