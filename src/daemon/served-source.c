/* SPDX-License-Identifier: MIT */
/* A served swarm's source: the file opened at START (and its memfd slab),
 * read once in order by deferred work a batch per loop turn, closed when
 * the whole file went out, and opened again by name for the chunks nobody
 * holds any more. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/catalog.h"
#include "daemon/srv.h"
#include "proto/hash.h"
#include "util/log.h"

#define PUMP_BATCH_BYTES (4u << 20)     /* source bytes read per turn at most */
#define SLAB_RESERVE_MAX ((size_t)1 << (sizeof(size_t) >= 8 ? 38 : 29))  /* address space per swarm */

/* ---- the source ---------------------------------------------------------- */

/* Reads the next chunk into a buffer; NULL with the swarm failed. */
static struct buf *source_read(struct served *sv, uint32_t idx)
{
        uint64_t now = loop_now(sv->srv->loop);
        uint32_t cs = swarm_chunk_size(sv->sw);
        uint64_t off = (uint64_t)idx * cs;
        uint64_t left = sv->src_size - off;
        size_t len = left < cs ? (size_t)left : cs;
        struct buf *b = buf_slab_alloc(sv->slab, len);
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
        served_source_close(sv);
        const struct manifest *mf = swarm_manifest(sv->sw);
        if (mf) {
                char hex[2 * P2S_HASH_SIZE + 1];
                hash_hex(mf->file_hash, hex);
                /* cheap to keep, and what a listing shows for this file */
                catalog_remember_hash(sv->srv->cat, swarm_name(sv->sw), mf->file_size, sv->src_mtime_sec,
                                      sv->src_mtime_nsec, mf->file_hash);
                log_info("swarm %u: distributed %llu bytes in %u chunks to %u members, source closed, sha256 %s",
                         swarm_id(sv->sw), (unsigned long long)mf->file_size, mf->chunk_count,
                         swarm_member_count(sv->sw), hex);
        }
}

/* Deferred work: one batch of the source per turn, so members' events are
 * served in between and nothing recurses however many chunks there are. */
void served_pump(struct loop *l, void *ud)
{
        struct served *sv = ud;
        size_t budget = PUMP_BATCH_BYTES;
        uint32_t idx;
        while (served_pump_wanted(sv) && (idx = swarm_source_next(sv->sw)) != P2S_NO_CHUNK) {
                /* at least one chunk a turn, however large (up to 16M) */
                if (budget < PUMP_BATCH_BYTES && budget < swarm_chunk_size(sv->sw)) {
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

/* Deferred work: chunks nobody holds any more, read again from the file by
 * the name it was served under (the same rules beneath the root); the
 * swarm checks each against the manifest. The file is opened per batch and
 * closed after it: the server never needs it between. */
void served_reread(struct loop *l, void *ud)
{
        struct served *sv = ud;
        uint32_t chunk;
        int fd = -1;
        const char *why = NULL;
        char ebuf[128];
        while (!sv->over && fifo_pop(&sv->rereads, &chunk)) {
                const struct manifest *mf = swarm_manifest(sv->sw);
                uint64_t now = loop_now(l);
                if (!mf || chunk >= mf->chunk_count)
                        continue;
                if (fd < 0 && !why) {
                        fd = catalog_open(sv->srv->cat, swarm_name(sv->sw));
                        if (fd < 0) {
                                snprintf(ebuf, sizeof(ebuf), "cannot open it: %s", strerror(-fd));
                                why = ebuf;
                        }
                }
                struct buf *b = NULL;
                if (fd >= 0) {
                        size_t len = manifest_chunk_len(mf, chunk);
                        b = buf_slab_alloc(sv->slab, len);
                        if (!b) {
                                why = "server out of memory";
                        } else {
                                off_t off = (off_t)chunk * mf->chunk_size;
                                for (size_t got = 0; got < len;) {
                                        ssize_t n = pread(fd, b->data + got, len - got, off + (off_t)got);
                                        if (n < 0 && errno == EINTR)
                                                continue;
                                        if (n <= 0) {
                                                snprintf(ebuf, sizeof(ebuf), "cannot read it: %s",
                                                         n < 0 ? strerror(errno) : "file shrank");
                                                why = ebuf;
                                                b = buf_unref(b);
                                                break;
                                        }
                                        got += (size_t)n;
                                }
                        }
                }
                if (b)
                        log_info("swarm %u: chunk %u held by no member, read again from '%s'",
                                 swarm_id(sv->sw), chunk, swarm_name(sv->sw));
                swarm_on_source_reread(sv->sw, chunk, b, why, now);
                buf_unref(b);
                served_drain(sv);
        }
        if (fd >= 0)
                close(fd);
}

void served_start_swarm(struct served *sv)
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
        /* Chunks over the TCP connections go out of a memfd with sendfile,
         * not copied into each member's socket. Address space only: twice
         * the file (a chunk read again while its old copy is still queued),
         * pages exist while a chunk is cached or queued. No slab, or a full
         * one, means heap buffers, as before; so do chunks that are not
         * whole pages, which would take more memory than --cache counts. */
        long page = sysconf(_SC_PAGESIZE);
        if (srv->control == P2S_CONTROL_UDP && !sv->slab && sv->src_size > 0 && page > 0 &&
            swarm_chunk_size(sv->sw) % (uint32_t)page == 0) {
                uint64_t r = 2 * sv->src_size + ((uint64_t)swarm_chunk_size(sv->sw) << 4);
                sv->slab = buf_slab_new(r > SLAB_RESERVE_MAX ? SLAB_RESERVE_MAX : (size_t)r);
                if (!sv->slab)
                        log_notice("swarm %u: no memfd for the cache (%s), chunks are copied to members",
                                   swarm_id(sv->sw), strerror(errno));
        }
        sv->src_mtime_sec = (int64_t)st.st_mtim.tv_sec;
        sv->src_mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
        log_info("swarm %u: starting with %u members, %llu bytes", swarm_id(sv->sw),
                 swarm_member_count(sv->sw), (unsigned long long)sv->src_size);
        swarm_set_file_meta(sv->sw, (int64_t)st.st_mtim.tv_sec, (uint32_t)st.st_mtim.tv_nsec, (uint32_t)st.st_mode);
        if (swarm_distribute(sv->sw, sv->src_size, now) < 0)
                served_source_close(sv);
        else
                loop_defer(srv->loop, &sv->pump);
}
