/* SPDX-License-Identifier: MIT */
/* p2sd's listening sockets, one TCP and one UDP on the same port: taken from
 * systemd's socket activation (told apart by type, never by name: one socket
 * unit names both alike) or bound here, dual-stack where the system has it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include "daemon/srv.h"

static const char *fd_kind(int fd, char *buf, size_t len)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return "not an open file descriptor";
        if (!S_ISSOCK(st.st_mode))
                return S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISREG(st.st_mode) ? "a regular file"
                       : S_ISCHR(st.st_mode) ? "a character device" : "not a socket";
        int dom = 0, type = 0, acc = 0;
        socklen_t sl = sizeof(int);
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &sl);
        sl = sizeof(int);
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl);
        sl = sizeof(int);
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl);
        const char *fam = dom == AF_UNIX ? "UNIX" : dom == AF_INET ? "IPv4" : dom == AF_INET6 ? "IPv6" : "non-IP";
        const char *ty = type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "datagram"
                         : type == SOCK_SEQPACKET ? "seqpacket" : "raw";
        snprintf(buf, len, "a%s %s %s socket%s", fam[0] == 'I' ? "n" : "", fam, ty,
                 type == SOCK_STREAM && !acc ? " that is not listening (Accept=yes?)" : "");
        return buf;
}

/* The server tells TCP from UDP by type; refuse here, with the reason, any
 * activated fd that is not an IPv4/IPv6 listening TCP or UDP socket. */
static int check_activated(int n, char *err, size_t errlen)
{
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0 ||
                    sd_is_socket_inet(fd, AF_UNSPEC, SOCK_DGRAM, -1, 0) > 0)
                        continue;
                char kind[96];
                snprintf(err, errlen, "socket activation passed fd %d, %s; p2sd takes only a listening TCP "
                         "socket and a UDP socket (ListenStream= and ListenDatagram=)", fd,
                         fd_kind(fd, kind, sizeof(kind)));
                return -EINVAL;
        }
        return 0;
}

static int bind_pair_once(struct server *srv, const struct sockaddr *sa, socklen_t sl, char *err, size_t errlen)
{
        int fam = sa->sa_family;
        int t = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int u = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1, zero = 0, r = 0;
        char a[NET_ADDRSTRLEN];
        if (t < 0 || u < 0) {
                r = -errno;
                goto fail;
        }
        setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (fam == AF_INET6 && ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr[0] == 0 &&
            !memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, &in6addr_any, sizeof(in6addr_any))) {
                setsockopt(t, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
                setsockopt(u, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        }
        if (bind(t, sa, sl) < 0 || listen(t, 1024) < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot listen on %s (TCP): %s", net_addr_str(sa, a), strerror(-r));
                goto fail;
        }
        /* with port 0 the kernel chose the TCP port; UDP takes the same */
        struct sockaddr_storage got;
        socklen_t gl = sizeof(got);
        getsockname(t, (struct sockaddr *)&got, &gl);
        if (bind(u, (struct sockaddr *)&got, gl) < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot bind %s (UDP): %s", net_addr_str((struct sockaddr *)&got, a), strerror(-r));
                goto fail;
        }
        srv->tcp_fd = t;
        srv->udp_fd = u;
        srv->port = net_addr_port((struct sockaddr *)&got);
        net_addr_str((struct sockaddr *)&got, srv->listen_desc);
        return 0;
fail:
        if (t >= 0)
                close(t);
        if (u >= 0)
                close(u);
        return r ? r : -EINVAL;
}

/* With port 0 the kernel picks a free TCP port, which some other program
 * may hold for UDP: then pick again, a bounded number of times. */
static int bind_pair(struct server *srv, const struct sockaddr *sa, socklen_t sl, char *err, size_t errlen)
{
        int r = bind_pair_once(srv, sa, sl, err, errlen);
        for (int i = 0; i < 32 && r == -EADDRINUSE && net_addr_port(sa) == 0; i++)
                r = bind_pair_once(srv, sa, sl, err, errlen);
        return r;
}

static int adopt_activated(struct server *srv, int n, char *err, size_t errlen)
{
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0 && srv->tcp_fd < 0)
                        srv->tcp_fd = fd;
                else if (sd_is_socket(fd, AF_UNSPEC, SOCK_DGRAM, -1) > 0 && srv->udp_fd < 0)
                        srv->udp_fd = fd;
                else {
                        snprintf(err, errlen, "socket activation passed fd %d, which is neither the listening TCP "
                                 "nor the UDP socket p2sd expects", fd);
                        return -EINVAL;
                }
        }
        if (srv->tcp_fd < 0 || srv->udp_fd < 0) {
                snprintf(err, errlen, "socket activation must pass one TCP listening and one UDP socket");
                return -EINVAL;
        }
        fcntl(srv->tcp_fd, F_SETFL, fcntl(srv->tcp_fd, F_GETFL) | O_NONBLOCK);
        fcntl(srv->udp_fd, F_SETFL, fcntl(srv->udp_fd, F_GETFL) | O_NONBLOCK);
        struct sockaddr_storage got;
        socklen_t gl = sizeof(got);
        getsockname(srv->tcp_fd, (struct sockaddr *)&got, &gl);
        srv->port = net_addr_port((struct sockaddr *)&got);
        snprintf(srv->listen_desc, sizeof(srv->listen_desc), "%s (activated)",
                 net_addr_str((struct sockaddr *)&got, (char[NET_ADDRSTRLEN]){ 0 }));
        return 0;
}

int listen_open(struct server *srv, char *err, size_t errlen)
{
        char **names = NULL;
        /* names are not trusted to tell the sockets apart (one socket unit
         * names both fds alike); adopt_activated checks their types */
        int n = sd_listen_fds_with_names(1, &names);
        if (names) {
                for (int i = 0; i < n; i++)
                        free(names[i]);
                free(names);
        }
        int r;
        if (n < 0) {
                snprintf(err, errlen, "socket activation: bad LISTEN_FDS: %s", strerror(-n));
                return n;
        }
        if (n > 0) {
                r = check_activated(n, err, errlen);
                if (r == 0)
                        r = adopt_activated(srv, n, err, errlen);
        } else {
                struct sockaddr_storage ss;
                socklen_t sl;
                if (srv->opt->listen) {
                        if (net_parse_addr(srv->opt->listen, srv->opt->port, &ss, &sl) < 0) {
                                snprintf(err, errlen, "--listen %s: not an IPv4 or IPv6 address", srv->opt->listen);
                                return -EINVAL;
                        }
                        r = bind_pair(srv, (struct sockaddr *)&ss, sl, err, errlen);
                } else {
                        net_parse_addr("::", srv->opt->port, &ss, &sl);
                        r = bind_pair(srv, (struct sockaddr *)&ss, sl, err, errlen);
                        if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL) {
                                net_parse_addr("0.0.0.0", srv->opt->port, &ss, &sl);
                                r = bind_pair(srv, (struct sockaddr *)&ss, sl, err, errlen);
                        }
                }
        }
        return r;
}
