/* SPDX-License-Identifier: MIT */
/* What p2sd serves, for p2s-fetch --list and -r: LIST frames on a TCP
 * connection that is no member's, answered with LISTING frames on the same
 * connection. Nothing of it travels by datagram: TCP's handshake proved the
 * peer's address, so a spoofed one gets nothing. The first LIST of a
 * connection gets a COOKIE, the one echoing it a page of at most
 * P2S_LIST_PAGE names (with a swarm secret, only when it proves the secret
 * over its prefix); nothing is kept between pages but what the client sends
 * back. A connection that does not read its pages is dropped. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/catalog.h"
#include "daemon/srv.h"
#include "util/log.h"

#define LISTING_QUEUE_MAX (1u << 20)    /* more unread than a page or two: it does not read */

struct item {
        char *name;                     /* ours; e.name points to it */
        struct catalog_entry e;
};

struct page {
        const struct wire_list *req;
        struct item *e;
        size_t n, cap;
        int err;
};

static int entry_cmp(const void *a, const void *b)
{
        return strcmp(((const struct item *)a)->name, ((const struct item *)b)->name);
}

static void page_trim(struct page *p, size_t keep)
{
        if (p->n > 1)   /* qsort's array may not be NULL, even when empty */
                qsort(p->e, p->n, sizeof(*p->e), entry_cmp);
        for (size_t i = keep; i < p->n; i++)
                free(p->e[i].name);
        if (p->n > keep)
                p->n = keep;
}

/* Keeps the P2S_LIST_PAGE + 1 smallest names past after that start with
 * prefix: a tree of any size costs a bounded array (the one extra tells
 * whether more remain). */
static int page_add(const struct catalog_entry *e, void *ud)
{
        struct page *p = ud;
        const struct wire_list *l = p->req;
        size_t nl = strlen(e->name);
        if (nl < l->prefix_len || (l->prefix_len && memcmp(e->name, l->prefix, l->prefix_len)))
                return 0;
        if (l->after_len) {
                /* bytewise, as strcmp orders the page */
                int c = memcmp(e->name, l->after, nl < l->after_len ? nl : l->after_len);
                if (c < 0 || (c == 0 && nl <= l->after_len))
                        return 0;
        }
        if (p->n == p->cap) {
                page_trim(p, P2S_LIST_PAGE + 1);
                if (p->n == p->cap) {
                        size_t cap = p->cap ? 2 * p->cap : 64;
                        if (cap > 2 * (P2S_LIST_PAGE + 1))
                                cap = 2 * (P2S_LIST_PAGE + 1);
                        struct item *ne = realloc(p->e, cap * sizeof(*ne));
                        if (!ne)
                                return -ENOMEM;
                        p->e = ne;
                        p->cap = cap;
                }
        }
        struct item it = { .name = strdup(e->name), .e = *e };
        if (!it.name)
                return -ENOMEM;
        it.e.name = it.name;
        p->e[p->n++] = it;
        return 0;
}

static void page_free(struct page *p)
{
        for (size_t i = 0; i < p->n; i++)
                free(p->e[i].name);
        free(p->e);
}

static void list_refuse(struct conn *c, const struct p2s_hdr *req, uint16_t code, const char *reason)
{
        struct buf *b = wire_err_buf(code, reason);
        struct p2s_hdr e = { .type = P2S_ERR, .flags = P2S_F_FATAL, .body_len = b ? b->len : 0,
                             .token = req->token, .chunk = P2S_NO_CHUNK };
        conn_send(c, &e, b);
        buf_unref(b);
        conn_close_soon(c);
}

/* LISTING frames of at most P2S_LISTING_MAX entries each, the last LAST. */
static void send_page(struct conn *c, const struct p2s_hdr *req, const struct page *p, size_t n, bool more)
{
        size_t i = 0;
        do {
                size_t k = n - i < P2S_LISTING_MAX ? n - i : P2S_LISTING_MAX, len = 2;
                for (size_t j = 0; j < k; j++)
                        len += P2S_LISTING_ENTRY_FIXED + strlen(p->e[i + j].name);
                struct buf *b = buf_new(len);
                if (!b) {
                        conn_kill(c, "out of memory");
                        return;
                }
                size_t off = 2;
                for (size_t j = 0; j < k; j++) {
                        const struct catalog_entry *ce = &p->e[i + j].e;
                        struct wire_entry we = { .size = ce->size, .mtime_sec = ce->mtime_sec,
                                                 .has_hash = ce->has_hash, .name = ce->name,
                                                 .name_len = strlen(ce->name) };
                        memcpy(we.sha256, ce->sha256, sizeof(we.sha256));
                        off += wire_put_entry(b->data + off, len - off, &we);
                }
                wire_put_listing_count(b->data, (uint16_t)k);
                i += k;
                bool last = i == n;
                struct p2s_hdr h = { .type = P2S_LISTING, .body_len = (uint32_t)len, .token = req->token,
                                     .chunk = P2S_NO_CHUNK,
                                     .flags = last ? (uint16_t)(P2S_F_LAST | (more ? P2S_F_MORE : 0)) : 0 };
                conn_send(c, &h, b);
                buf_unref(b);
        } while (i < n && !c->dead);
}

void listing_on_list(struct conn *c, const struct p2s_msg *msg)
{
        struct server *srv = c->srv;
        uint64_t now = loop_now(srv->loop);
        struct wire_list l;
        char esc[LOG_ESCAPE_SIZE(P2S_MAX_NAME)];

        if (c->q.bytes > LISTING_QUEUE_MAX) {
                conn_kill(c, "asks for listings it does not read");
                return;
        }
        switch (join_check_list(srv->secret, &srv->swarm_secret, now, msg, (struct sockaddr *)&c->addr, c->addrlen,
                                &l)) {
        case JOIN_SEND_COOKIE: {
                struct buf *b = buf_new(P2S_COOKIE_SIZE);
                if (!b) {
                        conn_kill(c, "out of memory");
                        return;
                }
                memcpy(b->data, l.nonce, P2S_COOKIE_SIZE);
                struct p2s_hdr h = { .type = P2S_COOKIE, .body_len = P2S_COOKIE_SIZE, .chunk = P2S_NO_CHUNK,
                                     .token = cookie_make(srv->secret, now / COOKIE_EPOCH_USEC,
                                                          (struct sockaddr *)&c->addr, c->addrlen) };
                conn_send(c, &h, b);
                buf_unref(b);
                return;
        }
        case JOIN_NEED_SECRET:
                log_rl(LOG_NOTICE, "%s: LIST refused: no proof of the swarm secret", c->peer);
                list_refuse(c, &msg->hdr, P2S_ERR_SECRET, "this server requires a swarm secret");
                return;
        case JOIN_BAD_SECRET:
                log_rl(LOG_NOTICE, "%s: LIST refused: wrong swarm secret", c->peer);
                list_refuse(c, &msg->hdr, P2S_ERR_SECRET, "wrong swarm secret");
                return;
        case JOIN_ACCEPT:
                break;
        }
        if (srv->shutting_down) {
                list_refuse(c, &msg->hdr, P2S_ERR_SHUTDOWN, "server shutting down");
                return;
        }
        struct page p = { .req = &l };
        int r = catalog_each(srv->cat, page_add, &p);
        if (r < 0) {
                log_rl(LOG_WARNING, "%s: LIST: cannot read what is served: %s", c->peer, strerror(-r));
                page_free(&p);
                list_refuse(c, &msg->hdr, r == -ENOMEM ? P2S_ERR_BUSY : P2S_ERR_SOURCE,
                            r == -ENOMEM ? "server out of memory" : "the server cannot read its files");
                return;
        }
        page_trim(&p, P2S_LIST_PAGE + 1);
        bool more = p.n > P2S_LIST_PAGE;
        size_t n = more ? P2S_LIST_PAGE : p.n;
        log_debug("%s: LIST '%s': %zu names%s", c->peer, log_escape(esc, sizeof(esc), l.prefix, l.prefix_len), n,
                  more ? ", more to come" : "");
        send_page(c, &msg->hdr, &p, n, more);
        page_free(&p);
        /* each page asked for restarts the connection's time to live */
        c->born = now;
}
