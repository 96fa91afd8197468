/* SPDX-License-Identifier: MIT */
/* p2s-fetch's side of the listing: one TCP connection, LIST token 0, the
 * COOKIE, then LIST pages until one comes without MORE. Blocking, with a
 * deadline per wait: nothing else runs while a listing is fetched. What the
 * server sends is checked before use: names in strictly increasing order
 * (so every page moves on), each under the prefix and one a server may
 * serve, at most FETCH_LIST_MAX in all. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fetch/exitcode.h"
#include "fetch/listing.h"
#include "proto/cookie.h"
#include "proto/hash.h"
#include "proto/wire.h"
#include "util/clock.h"
#include "util/net.h"

struct lconn {
        int fd;
        uint64_t timeout_us;
        char desc[NET_ADDRSTRLEN];
        char *err;
        size_t errlen;
};

static int wait_fd(struct lconn *c, short ev)
{
        struct pollfd p = { .fd = c->fd, .events = ev };
        int ms = (int)(c->timeout_us / 1000) + 1, r;
        while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
                ;
        if (r == 0) {
                snprintf(c->err, c->errlen, "no answer from %s within %.1f s", c->desc,
                         (double)c->timeout_us / USEC_PER_SEC);
                return FETCH_EXIT_UNREACHABLE;
        }
        return r < 0 ? FETCH_EXIT_FAIL : 0;
}

static int io_full(struct lconn *c, void *buf, size_t n, bool out)
{
        for (size_t done = 0; done < n;) {
                ssize_t k = out ? send(c->fd, (uint8_t *)buf + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT)
                                : recv(c->fd, (uint8_t *)buf + done, n - done, MSG_DONTWAIT);
                if (k > 0) {
                        done += (size_t)k;
                        continue;
                }
                if (k == 0 && !out) {
                        snprintf(c->err, c->errlen, "%s closed the connection (a server too old to list?)", c->desc);
                        return FETCH_EXIT_GONE;
                }
                if (k < 0 && errno != EAGAIN && errno != EINTR) {
                        snprintf(c->err, c->errlen, "%s: %s", c->desc, strerror(errno));
                        return errno == ECONNREFUSED ? FETCH_EXIT_UNREACHABLE : FETCH_EXIT_GONE;
                }
                int r = wait_fd(c, out ? POLLOUT : POLLIN);
                if (r)
                        return r;
        }
        return 0;
}

static int send_list(struct lconn *c, uint64_t token, const uint8_t nonce[P2S_NONCE_SIZE],
                     const struct swarm_secret *secret, const char *prefix, const char *after)
{
        uint8_t frame[P2S_HDR_SIZE + P2S_LIST_MAX], proof[P2S_PROOF_SIZE];
        size_t pl = strlen(prefix), al = after ? strlen(after) : 0;
        bool prove = secret && token;
        if (prove)
                list_proof(secret, token, nonce, prefix, pl, proof);
        size_t bl = wire_put_list(frame + P2S_HDR_SIZE, P2S_LIST_MAX, nonce, prove ? proof : NULL, prefix, pl,
                                  after, al);
        struct p2s_hdr h = { .type = P2S_LIST, .token = token, .chunk = P2S_NO_CHUNK, .body_len = (uint32_t)bl };
        wire_encode_hdr(frame, &h);
        return io_full(c, frame, P2S_HDR_SIZE + bl, true);
}

/* One frame, checked as a stream reader checks one. */
static int read_frame(struct lconn *c, struct p2s_msg *m, uint8_t *body, size_t cap)
{
        uint8_t hdr[P2S_HDR_SIZE];
        int r = io_full(c, hdr, sizeof(hdr), false);
        if (r)
                return r;
        if (wire_decode_hdr(hdr, sizeof(hdr), &m->hdr) != WIRE_OK ||
            wire_check_frame_hdr(&m->hdr, WIRE_DIR_S2C, 0, 0) != WIRE_OK || m->hdr.body_len > cap) {
                snprintf(c->err, c->errlen, "%s sent a malformed frame", c->desc);
                return FETCH_EXIT_FAIL;
        }
        if ((r = io_full(c, body, m->hdr.body_len, false)))
                return r;
        m->body = body;
        if (wire_check_body(&m->hdr, body) != WIRE_OK) {
                snprintf(c->err, c->errlen, "%s sent a malformed %s", c->desc, wire_type_name(m->hdr.type));
                return FETCH_EXIT_FAIL;
        }
        return 0;
}

/* The rules a name must pass to be served at all (catalog_name_ok). */
static bool name_ok(const char *name, size_t len)
{
        if (len == 0 || len > P2S_MAX_NAME || name[0] == '/')
                return false;
        size_t comp = 0;
        for (size_t i = 0; i <= len; i++) {
                if (i == len || name[i] == '/') {
                        size_t n = i - comp;
                        const char *s = name + comp;
                        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                                return false;
                        comp = i + 1;
                } else if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
                        return false;
                }
        }
        return true;
}

static int add_page(struct lconn *c, const struct p2s_msg *m, const char *prefix, struct fetch_listing *out)
{
        size_t off = 0, pl = strlen(prefix);
        struct wire_entry we;
        int r;
        while ((r = wire_listing_next(m->body, m->hdr.body_len, &off, &we)) == 1) {
                char name[P2S_MAX_NAME + 1];
                memcpy(name, we.name, we.name_len);
                name[we.name_len] = 0;
                bool ordered = !out->n || strcmp(out->e[out->n - 1].name, name) < 0;
                if (!name_ok(name, we.name_len) || we.name_len < pl || memcmp(name, prefix, pl) || !ordered) {
                        snprintf(c->err, c->errlen, "%s sent a listing out of order or outside the prefix", c->desc);
                        return FETCH_EXIT_FAIL;
                }
                if (out->n == FETCH_LIST_MAX) {
                        snprintf(c->err, c->errlen, "%s lists more than %u files", c->desc, FETCH_LIST_MAX);
                        return FETCH_EXIT_FAIL;
                }
                if (out->n == out->cap) {
                        size_t cap = out->cap ? 2 * out->cap : 64;
                        struct fetch_entry *ne = realloc(out->e, cap * sizeof(*ne));
                        if (!ne)
                                goto oom;
                        out->e = ne;
                        out->cap = cap;
                }
                struct fetch_entry *e = &out->e[out->n];
                *e = (struct fetch_entry){ .name = strdup(name), .size = we.size, .mtime_sec = we.mtime_sec,
                                           .has_hash = we.has_hash };
                if (!e->name)
                        goto oom;
                memcpy(e->sha256, we.sha256, sizeof(e->sha256));
                out->n++;
        }
        return 0;
oom:
        snprintf(c->err, c->errlen, "out of memory");
        return FETCH_EXIT_FAIL;
}

static int connect_to(struct lconn *c, const char *host, uint16_t port)
{
        char ps[8];
        snprintf(ps, sizeof(ps), "%u", port);
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
        int r = getaddrinfo(host, ps, &hints, &res);
        if (r) {
                snprintf(c->err, c->errlen, "cannot resolve '%s': %s", host, gai_strerror(r));
                return FETCH_EXIT_UNREACHABLE;
        }
        net_addr_str(res->ai_addr, c->desc);
        c->fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || (connect(c->fd, res->ai_addr, res->ai_addrlen) < 0 && errno != EINPROGRESS)) {
                snprintf(c->err, c->errlen, "cannot connect to %s: %s", c->desc, strerror(errno));
                freeaddrinfo(res);
                return FETCH_EXIT_UNREACHABLE;
        }
        freeaddrinfo(res);
        int one = 1, soerr = 0;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if ((r = wait_fd(c, POLLOUT)))
                return r;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
                snprintf(c->err, c->errlen, "cannot connect to %s: %s", c->desc,
                         soerr == ECONNREFUSED ? "connection refused" : strerror(soerr ? soerr : errno));
                return FETCH_EXIT_UNREACHABLE;
        }
        return 0;
}

int fetch_list(const char *host, uint16_t port, const char *prefix, const struct swarm_secret *secret,
               uint64_t timeout_us, struct fetch_listing *out, char *err, size_t errlen)
{
        static uint8_t body[P2S_LISTING_BODY_MAX];
        struct lconn c = { .fd = -1, .timeout_us = timeout_us, .err = err, .errlen = errlen };
        uint8_t nonce[P2S_NONCE_SIZE];
        uint64_t token = 0;
        unsigned cookies = 0;
        char *after = NULL;
        int r;

        *out = (struct fetch_listing){ 0 };
        if (random_bytes(nonce, sizeof(nonce)) < 0) {
                snprintf(err, errlen, "no random bytes for the nonce");
                return FETCH_EXIT_FAIL;
        }
        if ((r = connect_to(&c, host, port)))
                goto done;
        if ((r = send_list(&c, 0, nonce, secret, prefix, NULL)))
                goto done;
        for (;;) {
                struct p2s_msg m;
                if ((r = read_frame(&c, &m, body, sizeof(body))))
                        goto done;
                if (m.hdr.type == P2S_COOKIE) {
                        /* the first, or a new one for a cookie that went stale:
                         * a server that never stops asking is not listing */
                        if (!join_reply_is_ours(&m, nonce) || m.hdr.token == 0 || ++cookies > 8) {
                                snprintf(err, errlen, "%s sent a COOKIE that answers no LIST of ours", c.desc);
                                r = FETCH_EXIT_FAIL;
                                goto done;
                        }
                        token = m.hdr.token;
                        if ((r = send_list(&c, token, nonce, secret, prefix, after)))
                                goto done;
                } else if (m.hdr.type == P2S_ERR) {
                        char reason[P2S_MAX_REASON + 1];
                        uint16_t code = wire_get_err(m.body, m.hdr.body_len, reason, sizeof(reason));
                        snprintf(err, errlen, "listing refused by %s: %s", c.desc, reason[0] ? reason
                                 : wire_err_name(code));
                        r = fetch_exit_for_join_err(code);
                        goto done;
                } else if (m.hdr.type == P2S_LISTING) {
                        if ((r = add_page(&c, &m, prefix, out)))
                                goto done;
                        if (!(m.hdr.flags & P2S_F_LAST))
                                continue;
                        if (!(m.hdr.flags & P2S_F_MORE))
                                break;
                        if (!out->n) {
                                snprintf(err, errlen, "%s says more follows an empty page", c.desc);
                                r = FETCH_EXIT_FAIL;
                                goto done;
                        }
                        after = out->e[out->n - 1].name;
                        if ((r = send_list(&c, token, nonce, secret, prefix, after)))
                                goto done;
                } else {
                        snprintf(err, errlen, "%s sent %s while listing", c.desc, wire_type_name(m.hdr.type));
                        r = FETCH_EXIT_FAIL;
                        goto done;
                }
        }
        r = 0;
done:
        if (c.fd >= 0)
                close(c.fd);
        if (r)
                fetch_listing_free(out);
        return r;
}

void fetch_listing_free(struct fetch_listing *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->e[i].name);
        free(l->e);
        *l = (struct fetch_listing){ 0 };
}

void fetch_listing_print(const struct fetch_listing *l, FILE *f)
{
        for (size_t i = 0; i < l->n; i++) {
                char hex[2 * P2S_HASH_SIZE + 1] = "-";
                if (l->e[i].has_hash)
                        hash_hex(l->e[i].sha256, hex);
                fprintf(f, "%llu  %s  %s\n", (unsigned long long)l->e[i].size, hex, l->e[i].name);
        }
}

char *fetch_mirror_path(const char *dir, const char *prefix, const char *name, char *err, size_t errlen)
{
        size_t nl = strlen(name), pl = strlen(prefix);
        /* the listing checked it, but this is what keeps a copy inside dir */
        if (!name_ok(name, nl) || nl < pl || memcmp(name, prefix, pl)) {
                snprintf(err, errlen, "'%.255s' is not a name under '%.255s' that may be saved", name, prefix);
                return NULL;
        }
        const char *slash = NULL;
        for (size_t i = pl; i-- > 0;)
                if (prefix[i] == '/') {
                        slash = prefix + i;
                        break;
                }
        const char *rel = slash ? name + (slash - prefix) + 1 : name;
        char *out = NULL;
        size_t dl = strlen(dir);
        if (!*rel || asprintf(&out, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", rel) < 0) {
                snprintf(err, errlen, "cannot save '%.255s'", name);
                return NULL;
        }
        return out;
}

int fetch_mirror_dirs(const char *dir, const char *path)
{
        size_t dl = strlen(dir);
        char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                int e = errno;
                free(p);
                return -e;
        }
        /* each directory below dir: made, or one already there (not a symlink) */
        for (char *s = p + dl; (s = strchr(s + 1, '/'));) {
                *s = 0;
                struct stat st;
                if (mkdir(p, 0755) < 0 && (errno != EEXIST || lstat(p, &st) < 0 || !S_ISDIR(st.st_mode))) {
                        int e = errno == EEXIST ? ENOTDIR : errno;
                        free(p);
                        return -e;
                }
                *s = '/';
        }
        free(p);
        return 0;
}
