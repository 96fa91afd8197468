/* SPDX-License-Identifier: MIT */
/* Served swarms: one swarm state machine each, the source read once in
 * order (deferred work, a batch per loop turn, paused while a member is
 * backlogged), the actions the machine returns carried out, and its timer
 * re-armed to its next deadline whenever it was touched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/srv.h"
#include "proto/hash.h"
#include "util/clock.h"
#include "util/log.h"

#define PUMP_BATCH_BYTES (4u << 20)     /* source bytes read per turn at most */

static void served_timer(struct loop *l, struct loop_timer *t, void *ud);
static void served_pump(struct loop *l, void *ud);

struct served *served_find(struct server *srv, const char *name)
{
        for (struct served *sv = srv->served; sv; sv = sv->next)
                if (!sv->over && swarm_joinable(sv->sw) && !strcmp(swarm_name(sv->sw), name))
                        return sv;
        return NULL;
}

struct served *served_new(struct server *srv, const char *name)
{
        struct served *sv = calloc(1, sizeof(*sv));
        if (!sv)
                return NULL;
        sv->srv = srv;
        sv->src_fd = -1;
        if (++srv->next_swarm_id == 0)
                srv->next_swarm_id = 1;
        sv->sw = swarm_new(&srv->opt->swarm, srv->next_swarm_id, name, srv->cache);
        if (!sv->sw) {
                free(sv);
                return NULL;
        }
        sv->born = loop_now(srv->loop);
        loop_timer_init(&sv->timer, served_timer, sv);
        loop_defer_init(&sv->pump, served_pump, sv);
        sv->next = srv->served;
        srv->served = sv;
        log_info("swarm %u: new swarm for '%s'", swarm_id(sv->sw), name);
        return sv;
}

static void source_close(struct served *sv)
{
        if (sv->src_fd >= 0) {
                close(sv->src_fd);
                sv->src_fd = -1;
        }
}

void served_free(struct served *sv)
{
        loop_timer_disarm(sv->srv->loop, &sv->timer);
        loop_defer_cancel(sv->srv->loop, &sv->pump);
        source_close(sv);
        swarm_free(sv->sw);
        free(sv);
}

static bool pump_wanted(const struct served *sv)
{
        return !sv->over && sv->src_fd >= 0 && sv->nbacklogged == 0;
}

static void served_rearm(struct served *sv)
{
        struct loop *l = sv->srv->loop;
        uint64_t d = sv->over ? UINT64_MAX : swarm_next_deadline(sv->sw);
        if (d == UINT64_MAX)
                loop_timer_disarm(l, &sv->timer);
        else if (!loop_timer_armed(&sv->timer) || sv->timer.node.key != d)
                loop_timer_arm(l, &sv->timer, d);
}

/* ---- sending ------------------------------------------------------------- */

/* Which transport a server->member message takes in the configured mode. */
static bool goes_over_tcp(const struct server *srv, uint8_t msg, uint16_t flags)
{
        switch (msg) {
        case P2S_START: case P2S_MANIFEST: case P2S_MANIFEST_END:
                return true;
        case P2S_SHARE: case P2S_DATA:
                return srv->control == P2S_CONTROL_UDP;   /* the data channel */
        case P2S_ERR:
                /* a fatal error must arrive: the ordered connection carries it */
                return (flags & P2S_F_FATAL) || srv->control == P2S_CONTROL_TCP;
        default:
                return srv->control == P2S_CONTROL_TCP;
        }
}

void served_backlog_update(struct smember *m)
{
        struct served *sv = m->sv;
        if (!sv)
                return;
        bool now = (m->conn && m->conn->q.bytes >= DIST_HIWAT) ||
                   (m->data && datachan_pending_bytes(m->data) >= DIST_HIWAT);
        if (now == m->backlogged)
                return;
        m->backlogged = now;
        if (now) {
                sv->nbacklogged++;
        } else {
                sv->nbacklogged--;
                if (pump_wanted(sv))
                        loop_defer(sv->srv->loop, &sv->pump);
        }
}

void served_send(struct smember *m, uint8_t msg, uint16_t flags, uint32_t chunk, struct buf *body, bool reliable)
{
        struct server *srv = m->sv->srv;
        if ((msg == P2S_SHARE || msg == P2S_DATA) && srv->control == P2S_CONTROL_TCP) {
                if (m->data && body)
                        (void)datachan_send(m->data, msg, flags, chunk, body);  /* ENOMEM: the REQ retry */
                served_backlog_update(m);
                return;
        }
        struct p2s_hdr h = { .type = msg, .flags = flags, .body_len = body ? body->len : 0,
                             .swarm_id = swarm_id(m->sv->sw), .member_id = m->id,
                             .token = m->token, .chunk = chunk };
        if (reliable || goes_over_tcp(srv, msg, flags)) {
                if (m->conn) {
                        conn_send(m->conn, &h, body);
                        served_backlog_update(m);
                }
        } else {
                udp_send(srv, (struct sockaddr *)&m->addr, m->addrlen, &h, body ? body->data : NULL);
        }
}

/* ---- the source ---------------------------------------------------------- */

/* Reads the next chunk into a buffer; NULL with the swarm failed. */
static struct buf *source_read(struct served *sv, uint32_t idx)
{
        uint64_t now = loop_now(sv->srv->loop);
        uint32_t cs = swarm_chunk_size(sv->sw);
        uint64_t off = (uint64_t)idx * cs;
        uint64_t left = sv->src_size - off;
        size_t len = left < cs ? (size_t)left : cs;
        struct buf *b = buf_new(len);
        if (!b) {
                swarm_fail(sv->sw, P2S_ERR_BUSY, "server out of memory", now);
                return NULL;
        }
        for (size_t got = 0; got < len;) {
                ssize_t n = pread(sv->src_fd, b->data + got, len - got, (off_t)(off + got));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        char why[128];
                        snprintf(why, sizeof(why), "cannot read the source: %s",
                                 n < 0 ? strerror(errno) : "file shrank");
                        log_err("swarm %u: %s", swarm_id(sv->sw), why);
                        buf_unref(b);
                        swarm_fail(sv->sw, P2S_ERR_SOURCE, why, now);
                        return NULL;
                }
                got += (size_t)n;
        }
        return b;
}

static void source_done(struct served *sv)
{
        /* the whole file went out once; from here on only the cache */
        source_close(sv);
        const struct manifest *mf = swarm_manifest(sv->sw);
        if (mf) {
                char hex[2 * P2S_HASH_SIZE + 1];
                hash_hex(mf->file_hash, hex);
                log_info("swarm %u: distributed %llu bytes in %u chunks to %u members, source closed, sha256 %s",
                         swarm_id(sv->sw), (unsigned long long)mf->file_size, mf->chunk_count,
                         swarm_member_count(sv->sw), hex);
        }
}

/* Deferred work: one batch of the source per turn, so members' events are
 * served in between and nothing recurses however many chunks there are. */
static void served_pump(struct loop *l, void *ud)
{
        struct served *sv = ud;
        size_t budget = PUMP_BATCH_BYTES;
        uint32_t idx;
        while (pump_wanted(sv) && (idx = swarm_source_next(sv->sw)) != P2S_NO_CHUNK) {
                if (budget < swarm_chunk_size(sv->sw)) {
                        loop_defer(l, &sv->pump);
                        return;
                }
                struct buf *b = source_read(sv, idx);
                if (b) {
                        budget -= b->len;
                        swarm_source_chunk(sv->sw, idx, b, loop_now(l));
                        buf_unref(b);
                }
                served_drain(sv);
        }
        if (sv->src_fd >= 0 && swarm_source_next(sv->sw) == P2S_NO_CHUNK)
                source_done(sv);
}

static void start_swarm(struct served *sv)
{
        struct server *srv = sv->srv;
        uint64_t now = loop_now(srv->loop);
        int fd = catalog_open(srv->cat, swarm_name(sv->sw));
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                char why[160];
                int e = fd < 0 ? -fd : errno;
                /* the catalog says ENOENT for any name it no longer serves:
                 * the file was there at HELLO, so a reload (or a delete) took it */
                if (e == ENOENT)
                        snprintf(why, sizeof(why), "'%s' is no longer served (removed by a reload)", swarm_name(sv->sw));
                else if (e == EMFILE || e == ENFILE)
                        snprintf(why, sizeof(why), "cannot open '%s': server busy (too many open files)",
                                 swarm_name(sv->sw));
                else
                        snprintf(why, sizeof(why), "cannot open '%s': %s", swarm_name(sv->sw), strerror(e));
                log_err("swarm %u: %s", swarm_id(sv->sw), why);
                if (fd >= 0)
                        close(fd);
                swarm_fail(sv->sw, P2S_ERR_SOURCE, why, now);
                return;
        }
        sv->src_fd = fd;
        sv->src_size = (uint64_t)st.st_size;
        log_info("swarm %u: starting with %u members, %llu bytes", swarm_id(sv->sw),
                 swarm_member_count(sv->sw), (unsigned long long)sv->src_size);
        if (swarm_distribute(sv->sw, sv->src_size, now) < 0)
                source_close(sv);
        else
                loop_defer(srv->loop, &sv->pump);
}

/* ---- actions ------------------------------------------------------------- */

static void swarm_over(struct served *sv, int code)
{
        sv->over = true;
        source_close(sv);
        const struct swarm_stats *ss = swarm_stats(sv->sw);
        if (code == 0)
                log_notice("swarm %u: '%s' complete: %llu requests, %llu cache hits, %llu uploads, %llu duplicate uploads dropped; "
                           "%u members, %.3f s, %llu bytes from members, %llu bytes to members",
                           swarm_id(sv->sw), swarm_name(sv->sw), (unsigned long long)ss->requests,
                           (unsigned long long)ss->cache_hits, (unsigned long long)ss->uploads,
                           (unsigned long long)ss->dup_uploads, swarm_member_count(sv->sw),
                           (double)(loop_now(sv->srv->loop) - sv->born) / USEC_PER_SEC,
                           (unsigned long long)ss->bytes_uploaded,
                           (unsigned long long)(ss->bytes_shared + ss->bytes_relayed));
        else
                log_warning("swarm %u: '%s' failed (code %d)", swarm_id(sv->sw), swarm_name(sv->sw), code);
        for (struct smember *m = sv->members; m; m = m->next) {
                m->sm = NULL;
                if (m->conn)
                        conn_close_soon(m->conn);
        }
}

void served_drain(struct served *sv)
{
        struct swarm_action a;
        while (swarm_next_action(sv->sw, &a)) {
                struct smember *m = a.member_ud;
                switch (a.type) {
                case SWARM_ACT_SEND:
                        served_send(m, a.msg, a.flags, a.chunk, a.body, a.reliable);
                        break;
                case SWARM_ACT_START:
                        start_swarm(sv);
                        break;
                case SWARM_ACT_DROP:
                        m->sm = NULL;
                        if (a.code)
                                log_warning("swarm %u: member %u dropped (%s)", swarm_id(sv->sw), m->id,
                                            a.code == P2S_ERR_PROTO ? "sent a bad chunk" : "silent");
                        if (m->conn)
                                conn_close_soon(m->conn);
                        break;
                case SWARM_ACT_END:
                        swarm_over(sv, a.code);
                        break;
                }
                buf_unref(a.body);
        }
        served_rearm(sv);
}

static void served_timer(struct loop *l, struct loop_timer *t, void *ud)
{
        struct served *sv = ud;
        if (sv->over)
                return;
        swarm_on_tick(sv->sw, loop_now(l));
        served_drain(sv);
}

/* ---- members ------------------------------------------------------------- */

/* Nothing of ours is queued toward the member. */
static bool member_idle(const struct smember *m)
{
        return (!m->conn || outq_empty(&m->conn->q)) && (!m->data || datachan_pending_bytes(m->data) == 0);
}

void served_member_msg(struct smember *m, const struct p2s_msg *msg, struct buf *body)
{
        struct served *sv = m->sv;
        if (!sv || !m->sm || sv->over)
                return;
        uint64_t now = loop_now(sv->srv->loop);
        const struct p2s_hdr *h = &msg->hdr;
        switch (h->type) {
        case P2S_REQ:
                swarm_on_request(sv->sw, m->sm, h->chunk, member_idle(m), now);
                break;
        case P2S_NOHAVE:
                swarm_on_nohave(sv->sw, m->sm, h->chunk, h->flags & P2S_F_ACK, now);
                break;
        case P2S_COMPLETE:
                swarm_on_complete(sv->sw, m->sm, now);
                break;
        case P2S_BYE:
                swarm_on_bye(sv->sw, m->sm, now);
                break;
        case P2S_UPLOAD:
                if (body)
                        swarm_on_upload(sv->sw, m->sm, h->chunk, body, now);
                break;
        case P2S_HAVE:
                swarm_on_have(sv->sw, m->sm, h->chunk, msg->body, h->body_len, now);
                break;
        default:
                sv->srv->st.bad_packets++;
                log_rl(LOG_DEBUG, "member %u: unexpected %s", m->id, wire_type_name(h->type));
                return;
        }
        served_drain(sv);
}

void served_member_gone(struct smember *m)
{
        struct served *sv = m->sv;
        if (sv && m->backlogged) {
                m->backlogged = false;
                sv->nbacklogged--;
                if (pump_wanted(sv))
                        loop_defer(sv->srv->loop, &sv->pump);
        }
        if (sv && m->sm && !sv->over) {
                struct swarm_member *sm = m->sm;
                m->sm = NULL;
                swarm_leave(sv->sw, sm, loop_now(sv->srv->loop));
                served_drain(sv);
        }
}

/* ---- the data channel (--control=tcp) ------------------------------------ */

static enum datachan_want data_want(void *ud, uint8_t kind, uint32_t chunk, uint32_t chunk_len)
{
        struct smember *m = ud;
        struct served *sv = m->sv;
        const struct manifest *mf = sv && m->sm && !sv->over ? swarm_manifest(sv->sw) : NULL;
        /* the length is the chunk's own, or the member allocates what it likes */
        if (kind != P2S_UPLOAD || !mf || chunk >= mf->chunk_count || chunk_len != manifest_chunk_len(mf, chunk)) {
                sv->srv->st.bad_packets++;
                log_rl(LOG_NOTICE, "member %u: dropped a fragment of chunk %u that does not fit it", m->id, chunk);
                return DATACHAN_REFUSE;
        }
        /* nothing is reassembled that nobody asked for; an ACK stops the sender */
        if (!swarm_wants_upload(sv->sw, m->sm, chunk)) {
                log_rl(LOG_DEBUG, "member %u: upload of chunk %u not wanted", m->id, chunk);
                return DATACHAN_HAVE;
        }
        return DATACHAN_WANT;
}

static bool data_deliver(void *ud, uint8_t kind, uint32_t chunk, uint16_t flags, struct buf *data)
{
        struct smember *m = ud;
        struct served *sv = m->sv;
        log_debug("member %u: upload of chunk %u complete", m->id, chunk);
        swarm_on_upload(sv->sw, m->sm, chunk, data, loop_now(sv->srv->loop));
        served_drain(sv);
        return true;
}

static void data_silent(void *ud)
{
        struct smember *m = ud;
        log_warning("member %u: no acknowledgement of chunk data over UDP, dropped", m->id);
        if (m->conn)
                conn_kill(m->conn, "silent on the data channel");
}

static void data_drained(void *ud)
{
        served_backlog_update(ud);
}

const struct datachan_ops served_data_ops = {
        .want = data_want, .deliver = data_deliver, .silent = data_silent, .drained = data_drained,
};

/* ---- housekeeping -------------------------------------------------------- */

void served_housekeep(struct server *srv)
{
        /* gathering swarms nobody attached to, nor waits to attach to */
        for (struct served *sv = srv->served; sv; sv = sv->next) {
                if (sv->over || sv->members || swarm_state(sv->sw) != SWARM_GATHER)
                        continue;
                bool waiting = false;
                for (size_t i = 0; i < srv->members.cap && !waiting; i++) {
                        struct smember *m = srv->members.slot[i].val;
                        waiting = m && m->sv == sv;
                }
                if (!waiting)
                        sv->over = true;
        }
}

void served_reap(struct server *srv)
{
        for (struct served **p = &srv->served; *p;) {
                struct served *sv = *p;
                if (sv->over && !sv->members) {
                        *p = sv->next;
                        /* joins that never attached must not keep a pointer to it */
                        for (size_t i = 0; i < srv->members.cap; i++) {
                                struct smember *m = srv->members.slot[i].val;
                                if (m && m->sv == sv)
                                        m->sv = NULL;
                        }
                        served_free(sv);
                } else {
                        p = &sv->next;
                }
        }
}
