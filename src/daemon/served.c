/* SPDX-License-Identifier: MIT */
/* Served swarms: one swarm state machine each, the source read once in
 * order (deferred work, a batch per loop turn, paused while a member is
 * backlogged), the actions the machine returns carried out, and its timer
 * re-armed to its next deadline whenever it was touched. Opening and
 * reading the source is served-source.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/catalog.h"
#include "daemon/srv.h"
#include "proto/hash.h"
#include "util/clock.h"
#include "util/log.h"

static void served_timer(struct loop *l, struct loop_timer *t, void *ud);

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
        struct swarm_config cfg = srv->opt->swarm;
        cfg.ordered_share = srv->control == P2S_CONTROL_UDP;
        sv->sw = swarm_new(&cfg, srv->next_swarm_id, name, srv->cache);
        if (!sv->sw) {
                free(sv);
                return NULL;
        }
        sv->born = loop_now(srv->loop);
        loop_timer_init(&sv->timer, served_timer, sv);
        loop_defer_init(&sv->pump, served_pump, sv);
        loop_defer_init(&sv->reread, served_reread, sv);
        fifo_init(&sv->rereads, sizeof(uint32_t));
        sv->next = srv->served;
        srv->served = sv;
        log_info("swarm %u: new swarm for '%s'", swarm_id(sv->sw), name);
        return sv;
}

void served_source_close(struct served *sv)
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
        loop_defer_cancel(sv->srv->loop, &sv->reread);
        fifo_fini(&sv->rereads);
        served_source_close(sv);
        swarm_free(sv->sw);
        sv->slab = buf_slab_unref(sv->slab);    /* freed with the last chunk still queued */
        free(sv);
}

bool served_pump_wanted(const struct served *sv)
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

void served_member_reading(struct smember *m)
{
        if (m->sv && m->sm && !m->sv->over)
                swarm_on_reading(m->sv->sw, m->sm, loop_now(m->sv->srv->loop));
}

void served_backlog_update(struct smember *m)
{
        struct served *sv = m->sv;
        if (!sv)
                return;
        /* a member the swarm let go holds nothing up, whatever it still has queued */
        bool now = m->sm && !sv->over &&
                   ((m->conn && m->conn->q.bytes >= DIST_HIWAT) ||
                    (m->data && datachan_pending_bytes(m->data) >= DIST_HIWAT));
        if (now == m->backlogged)
                return;
        m->backlogged = now;
        if (now) {
                m->backlogged_since = loop_now(sv->srv->loop);
                sv->nbacklogged++;
        } else {
                sv->nbacklogged--;
                if (served_pump_wanted(sv))
                        loop_defer(sv->srv->loop, &sv->pump);
        }
}

void served_send(struct smember *m, uint8_t msg, uint16_t flags, uint32_t chunk, struct buf *body, bool reliable,
                 bool twice)
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
                for (int copy = 0; copy < (twice ? 2 : 1); copy++)
                        udp_send(srv, (struct sockaddr *)&m->addr, m->addrlen, &h, body ? body->data : NULL);
        }
}

/* ---- actions ------------------------------------------------------------- */

static void swarm_over(struct served *sv, int code)
{
        sv->over = true;
        served_source_close(sv);
        const struct swarm_stats *ss = swarm_stats(sv->sw);
        if (code == 0 && ss->completed < ss->joined)
                log_warning("swarm %u: '%s' failed: %u of %u members completed, %u expelled, %.3f s",
                            swarm_id(sv->sw), swarm_name(sv->sw), ss->completed, ss->joined, ss->expelled,
                            (double)(loop_now(sv->srv->loop) - sv->born) / USEC_PER_SEC);
        else if (code == 0)
                log_notice("swarm %u: '%s' complete: %llu requests, %llu cache hits, %llu uploads, %llu duplicate uploads dropped; "
                           "%u members, %.3f s, %llu bytes from members, %llu bytes to members",
                           swarm_id(sv->sw), swarm_name(sv->sw), (unsigned long long)ss->requests,
                           (unsigned long long)ss->cache_hits, (unsigned long long)ss->uploads,
                           (unsigned long long)ss->dup_uploads, swarm_member_count(sv->sw),
                           (double)(loop_now(sv->srv->loop) - sv->born) / USEC_PER_SEC,
                           (unsigned long long)ss->bytes_uploaded,
                           (unsigned long long)(ss->bytes_shared + ss->bytes_relayed));
        else
                log_warning("swarm %u: '%s' failed: %s", swarm_id(sv->sw), swarm_name(sv->sw),
                            wire_err_name((uint16_t)code));
        for (struct smember *m = sv->members; m; m = m->next) {
                m->sm = NULL;
                if (m->conn)
                        conn_close_soon(m->conn);
        }
}

static const char *member_addr(const struct smember *m, char buf[NET_ADDRSTRLEN])
{
        if (m->conn)
                return m->conn->peer;
        return m->addrlen ? net_addr_str((const struct sockaddr *)&m->addr, buf) : "?";
}

/* Logged with who and why, and told why over its connection before it
 * closes: a member dropped must not have to guess. */
static void member_dropped(struct served *sv, struct smember *m, int code, const char *why)
{
        char a[NET_ADDRSTRLEN], reason[P2S_MAX_REASON - 32];
        if (!why)
                why = "dropped";
        if (!strcmp(why, "silent"))
                snprintf(reason, sizeof(reason), "silent for %.0f s",
                         (double)sv->srv->opt->swarm.member_silence_us / USEC_PER_SEC);
        else
                snprintf(reason, sizeof(reason), "%s", why);
        log_warning("swarm %u: member %u (%s) dropped: %s", swarm_id(sv->sw), m->id, member_addr(m, a), reason);
        if (!m->conn)
                return;
        char msg[P2S_MAX_REASON];
        snprintf(msg, sizeof(msg), "dropped from the swarm: %s", reason);
        struct buf *body = wire_err_buf((uint16_t)code, msg);
        if (!body)
                return;
        struct p2s_hdr h = { .type = P2S_ERR, .flags = P2S_F_FATAL, .body_len = (uint32_t)body->len,
                             .swarm_id = swarm_id(sv->sw), .member_id = m->id, .token = m->token,
                             .chunk = P2S_NO_CHUNK };
        conn_send(m->conn, &h, body);
        buf_unref(body);
}

void served_drain(struct served *sv)
{
        struct swarm_action a;
        while (swarm_next_action(sv->sw, &a)) {
                struct smember *m = a.member_ud;
                switch (a.type) {
                case SWARM_ACT_SEND:
                        served_send(m, a.msg, a.flags, a.chunk, a.body, a.reliable, a.twice);
                        break;
                case SWARM_ACT_START:
                        served_start_swarm(sv);
                        break;
                case SWARM_ACT_DROP:
                        m->sm = NULL;
                        served_backlog_update(m);       /* it holds nothing up from now on */
                        if (a.code)
                                member_dropped(sv, m, a.code, a.why);
                        if (m->conn)
                                conn_close_soon(m->conn);
                        break;
                case SWARM_ACT_READ:
                        if (fifo_push(&sv->rereads, &a.chunk) < 0)
                                swarm_on_source_reread(sv->sw, a.chunk, NULL, "server out of memory",
                                                       loop_now(sv->srv->loop));
                        else
                                loop_defer(sv->srv->loop, &sv->reread);
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

/* Nothing of ours is on its way to the member: a chunk it was sent and
 * asks for again is then worth sending again. Over the data channel
 * (--control=tcp) a chunk is on its way until acknowledged. Over the TCP
 * connection (--control=udp) it always is: an empty queue only means the
 * kernel holds it, and the connection delivers it or dies with the member;
 * a member that threw its copy away says so with a NOHAVE. */
static bool member_idle(const struct smember *m)
{
        if (m->sv->srv->control == P2S_CONTROL_UDP)
                return false;
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
        case P2S_PING:
                swarm_on_ping(sv->sw, m->sm, h->flags & P2S_F_ACK, now);
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
                if (served_pump_wanted(sv))
                        loop_defer(sv->srv->loop, &sv->pump);
        }
        if (sv && m->sm && !sv->over) {
                struct swarm_member *sm = m->sm;
                char a[NET_ADDRSTRLEN];
                log_info("swarm %u: member %u (%s) left%s", swarm_id(sv->sw), m->id, member_addr(m, a),
                         swarm_member_complete(sm) ? " complete" : " before its copy was complete");
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

/* Expelled like any member that holds the swarm up, so it is logged, told
 * why and counted the same, whichever verdict comes first: this one or the
 * swarm's silence (a stopped member meets both). */
static void data_silent(void *ud)
{
        struct smember *m = ud;
        struct served *sv = m->sv;
        if (sv && m->sm && !sv->over) {
                swarm_expel(sv->sw, m->sm, P2S_ERR_SWARM, "no acknowledgement of chunk data over UDP",
                            loop_now(sv->srv->loop));
                served_drain(sv);
                return;
        }
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
        /* members whose queue has not dropped below the mark for a long
         * time: they hold distribution up for everyone */
        uint64_t now = loop_now(srv->loop);
        for (struct served *sv = srv->served; sv; sv = sv->next) {
                if (sv->over || !sv->nbacklogged)
                        continue;
                for (struct smember *m = sv->members; m; m = m->next) {
                        if (m->sm && m->backlogged && now - m->backlogged_since >= BACKLOG_TIMEOUT_US) {
                                swarm_expel(sv->sw, m->sm, P2S_ERR_SWARM, "its queue did not drain for 20 s", now);
                                served_drain(sv);
                                break;  /* the list may have changed: the rest next time */
                        }
                }
        }
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
