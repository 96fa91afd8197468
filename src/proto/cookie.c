/* SPDX-License-Identifier: MIT */
/* Stateless cookies: a keyed hash of the sender's address and a coarse
 * time epoch, so the server remembers nothing about unproven senders. */
#include <netinet/in.h>
#include <string.h>

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
