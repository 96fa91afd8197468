/* SPDX-License-Identifier: MIT */
/* Small socket helpers shared by p2sd and p2s-fetch. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NET_ADDRSTRLEN 64

/* "1.2.3.4", "::1" or "[::1]" with port into ss. 0 or -EINVAL. */
int net_parse_addr(const char *s, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);
/* "1.2.3.4:7700" / "[::1]:7700" (v4-mapped v6 shown as v4). */
const char *net_addr_str(const struct sockaddr *sa, char buf[NET_ADDRSTRLEN]);
uint16_t net_addr_port(const struct sockaddr *sa);
int net_addr_equal(const struct sockaddr *a, const struct sockaddr *b);
/* The largest UDP payload the route toward sa carries unfragmented (its
 * MTU, less the IP and UDP headers: 28 bytes over IPv4, 48 over IPv6; a
 * v4-mapped address counts as IPv4), or 0 when it cannot be found out (no
 * route, no descriptor to spare). Costs a socket and three syscalls. */
uint32_t net_route_udp_payload(const struct sockaddr *sa);
/* Sets SO_SNDBUF/SO_RCVBUF (0 leaves one alone), as root past the sysctl caps. */
void net_set_bufs(int fd, int snd, int rcv);
/* Fills buf from getrandom(2) (blocks only at early boot). 0, or -errno
 * when the kernel gives no randomness (ENOSYS, EPERM under a seccomp
 * filter): buf is then not usable as a secret and the caller must fail. */
int random_bytes(void *buf, size_t len);
/* 64 random bits for tokens. Has no error path: when getrandom fails it
 * writes a line to stderr and aborts, since a predictable token is worse
 * than no server. Call random_bytes once at startup to fail cleanly first. */
uint64_t random_u64(void);
