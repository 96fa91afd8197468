/* SPDX-License-Identifier: MIT */
/* Socket helpers shared by the programs: address parsing and printing,
 * buffer sizes, randomness for tokens and secrets. See net.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include "net.h"

uint32_t net_route_udp_payload(const struct sockaddr *sa)
{
        struct sockaddr_storage ss;
        socklen_t len;
        int level, opt, hdr;
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = in6->sin6_port };
                memcpy(&in.sin_addr, &in6->sin6_addr.s6_addr[12], sizeof(in.sin_addr));
                memcpy(&ss, &in, sizeof(in));
                len = sizeof(in);
        } else if (sa->sa_family == AF_INET6) {
                memcpy(&ss, sa, sizeof(*in6));
                len = sizeof(*in6);
        } else if (sa->sa_family == AF_INET) {
                memcpy(&ss, sa, sizeof(struct sockaddr_in));
                len = sizeof(struct sockaddr_in);
        } else {
                return 0;
        }
        if (ss.ss_family == AF_INET)
                level = IPPROTO_IP, opt = IP_MTU, hdr = 28;
        else
                level = IPPROTO_IPV6, opt = IPV6_MTU, hdr = 48;
        /* connecting a datagram socket only looks the route up: nothing is sent */
        int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return 0;
        int mtu = 0;
        socklen_t ml = sizeof(mtu);
        if (connect(fd, (struct sockaddr *)&ss, len) < 0 || getsockopt(fd, level, opt, &mtu, &ml) < 0)
                mtu = 0;
        close(fd);
        return mtu > hdr ? (uint32_t)(mtu - hdr) : 0;
}

int net_parse_addr(const char *s, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
        char tmp[INET6_ADDRSTRLEN + 2];
        size_t n = strlen(s);
        if (n >= sizeof(tmp))
                return -EINVAL;
        if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
                memcpy(tmp, s + 1, n - 2);
                tmp[n - 2] = 0;
        } else {
                memcpy(tmp, s, n + 1);
        }
        memset(ss, 0, sizeof(*ss));
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET, tmp, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons(port);
                *len = sizeof(*in);
                return 0;
        }
        if (inet_pton(AF_INET6, tmp, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(port);
                *len = sizeof(*in6);
                return 0;
        }
        return -EINVAL;
}

const char *net_addr_str(const struct sockaddr *sa, char buf[NET_ADDRSTRLEN])
{
        char a[INET6_ADDRSTRLEN];
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
                inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
                snprintf(buf, NET_ADDRSTRLEN, "%s:%u", a, ntohs(in->sin_port));
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
                if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                        inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], a, sizeof(a));
                        snprintf(buf, NET_ADDRSTRLEN, "%s:%u", a, ntohs(in6->sin6_port));
                } else {
                        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
                        snprintf(buf, NET_ADDRSTRLEN, "[%s]:%u", a, ntohs(in6->sin6_port));
                }
        } else {
                snprintf(buf, NET_ADDRSTRLEN, "(family %d)", sa->sa_family);
        }
        return buf;
}

uint16_t net_addr_port(const struct sockaddr *sa)
{
        if (sa->sa_family == AF_INET)
                return ntohs(((const struct sockaddr_in *)sa)->sin_port);
        if (sa->sa_family == AF_INET6)
                return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        return 0;
}

int net_addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
        if (a->sa_family != b->sa_family)
                return 0;
        if (a->sa_family == AF_INET) {
                const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
                return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
        }
        if (a->sa_family == AF_INET6) {
                const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
                return x->sin6_port == y->sin6_port &&
                       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
        }
        return 0;
}

void net_set_bufs(int fd, int snd, int rcv)
{
        /* the FORCE variants pass net.core.[rw]mem_max when we may (root) */
        if (snd > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd)) < 0)
                setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
        if (rcv > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
}

int random_bytes(void *buf, size_t len)
{
        unsigned char *p = buf;
        while (len) {
                ssize_t n = getrandom(p, len, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        /* ENOSYS, or EPERM from a seccomp filter: a secret
                         * left as zeros would be a guessable one */
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

uint64_t random_u64(void)
{
        uint64_t v;
        if (random_bytes(&v, sizeof(v)) < 0) {
                static const char msg[] = "p2s: getrandom failed: no randomness for a session token\n";
                if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
                        /* aborting anyway */
                }
                abort();
        }
        return v;
}
