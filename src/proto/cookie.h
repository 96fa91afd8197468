/* SPDX-License-Identifier: MIT */
/* Stateless HELLO cookies: the server answers an unproven HELLO with a
 * cookie derived from a secret, a time epoch and the sender's address, and
 * allocates nothing until a HELLO echoes a valid cookie. So a spoofed source
 * address costs the server no memory and gets no more bytes than it sent. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

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
