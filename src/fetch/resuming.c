/* SPDX-License-Identifier: MIT */
/* p2s-fetch resuming an earlier run: OUTPUT.part.p2s loaded at PREPARE,
 * kept or forgotten, the chunks it lists read back and re-verified against
 * the manifest a slice per turn before MANIFEST_END reaches the member, HAVE
 * offered to the server, and the state saved on a timer and at exit. The
 * file's format is resume.c's. Also the --sha256 pin, checked at
 * MANIFEST_END before any of it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fetch/exitcode.h"
#include "fetch/session.h"
#include "util/log.h"

#define SAVE_INTERVAL_US (500 * 1000)   /* the resume state at most this often */

/* ---- the resume state ---------------------------------------------------- */

void client_state_arm(struct client *c)
{
        if (c->state_ok && c->dirty && !loop_timer_armed(&c->save_timer))
                loop_timer_arm(c->loop, &c->save_timer, loop_now(c->loop) + SAVE_INTERVAL_US);
}

/* Lists the chunks written and verified. Runs on a timer and at exit,
 * never per chunk. The timer's saves do not flush OUTPUT.part: the next run
 * re-verifies every chunk listed, so one the kernel had not written back
 * when the machine went down is fetched again, not trusted; forcing the
 * copy to disk twice a second would instead make every fetch as slow as
 * the disk, where a download leaves that to the kernel's writeback. The
 * save at exit (durable) flushes OUTPUT.part, then the state, so what an
 * interrupted run kept survives the machine too. */
void client_state_save(struct client *c, bool durable)
{
        /* nothing new, unless the last save was the timer's, listed some
         * chunks, and this one must also reach the disk */
        if (!c->state_ok || (!c->dirty && (c->synced || !durable || !c->saved)) || c->store.fd < 0)
                return;
        const struct manifest *mf = member_manifest(c->mb);
        struct resume_state st = { .file_size = mf->file_size, .chunk_size = mf->chunk_size,
                                   .chunk_count = mf->chunk_count };
        memcpy(st.file_hash, mf->file_hash, P2S_HASH_SIZE);
        int r = durable ? store_sync(&c->store) : 0;
        if (r == 0)
                r = bitmap_init(&st.done, mf->chunk_count);
        if (r == 0) {
                for (size_t i = bitmap_next_set(&c->written, 0); i < c->written.nbits;
                     i = bitmap_next_set(&c->written, i + 1))
                        if (member_has_chunk(c->mb, (uint32_t)i))
                                bitmap_set(&st.done, i);
                r = resume_save(c->state_path, &st, durable);
        }
        if (r < 0) {
                log_rl(LOG_NOTICE, "cannot save %s: %s (the last one stays)", c->state_path, strerror(-r));
        } else {
                c->dirty = false;
                c->synced = durable;
                c->saved = bitmap_count(&st.done);
                log_debug("saved the state of %s: %zu of %u chunks", c->store.part_path, c->saved, mf->chunk_count);
        }
        resume_fini(&st);
}

void client_save_timer(struct loop *l, struct loop_timer *t, void *ud)
{
        struct client *c = ud;
        client_state_save(c, false);
        client_state_arm(c);   /* a failed save is tried again */
}

/* The earlier run's state is no good for this file: gone before anything
 * could make it overstate what OUTPUT.part holds. */
void client_forget_prior(struct client *c, bool say)
{
        if (say)
                log_notice("%s.part is from another version of %s: starting over", c->opt->output, c->opt->name);
        c->resuming = false;
        resume_fini(&c->prior);
        if (unlink(c->state_path) < 0 && errno != ENOENT)
                log_notice("cannot remove %s: %s", c->state_path, strerror(errno));
}

/* PREPARE: OUTPUT.part kept when an earlier run's state fits START (the
 * manifest decides later), else started over. */
int client_prepare(struct client *c, uint64_t size, char *why, size_t whylen)
{
        const struct manifest *mf = member_manifest(c->mb);
        bool keep = false;
        if (c->opt->no_resume) {
                if (access(c->state_path, F_OK) == 0)
                        log_info("--no-resume: starting %s.part over", c->opt->output);
        } else {
                int r = resume_load(c->state_path, &c->prior);
                if (r == 0 && c->prior.file_size == size && c->prior.chunk_size == mf->chunk_size)
                        keep = c->resuming = true;
                else if (r == 0)
                        log_notice("%s.part is from another version of %s: starting over", c->opt->output,
                                   c->opt->name);
                else if (r == -EBADMSG)
                        log_notice("%s is damaged: starting %s.part over", c->state_path, c->opt->output);
                else if (r != -ENOENT)
                        log_notice("cannot read %s: %s: starting %s.part over", c->state_path, strerror(-r),
                                   c->opt->output);
        }
        if (keep && !(c->check_buf = malloc(mf->chunk_size ? mf->chunk_size : 1)))
                keep = false;
        if (!keep)
                client_forget_prior(c, false);
        int r = store_open_locked(&c->store, keep);
        if (r < 0) {
                snprintf(why, whylen, "cannot create %s.part: %s", c->opt->output, strerror(-r));
                return r;
        }
        if ((r = store_prepare(&c->store, size)) < 0) {
                /* the file exists: what failed is making room for it */
                snprintf(why, whylen, "cannot reserve %llu bytes for %s.part: %s", (unsigned long long)size,
                         c->opt->output, strerror(-r));
                return r;
        }
        if (bitmap_init(&c->written, mf->chunk_count) < 0) {
                snprintf(why, whylen, "out of memory");
                return -ENOMEM;
        }
        return 0;
}

/* While the earlier run is not yet confirmed the same file, a chunk it
 * listed is overwritten only with the bytes already there; other bytes mean
 * another version, and the state goes first. */
void client_guard_prior(struct client *c, uint32_t chunk, const struct buf *data)
{
        if (!c->resuming || !bitmap_test(&c->prior.done, chunk))
                return;
        const struct manifest *mf = member_manifest(c->mb);
        if (store_read(&c->store, manifest_chunk_off(mf, chunk), c->check_buf, data->len) < 0 ||
            memcmp(c->check_buf, data->data, data->len))
                client_forget_prior(c, true);
}

/* Deferred work: the chunks the earlier run listed, read back and checked
 * against the new manifest a slice per turn; MANIFEST_END reaches the member
 * only after, so it requests none of them. */
void client_check_step(struct loop *l, void *ud)
{
        struct client *c = ud;
        if (!c->checking || c->join == JOIN_DONE)
                return;
        const struct manifest *mf = member_manifest(c->mb);
        const struct bitmap *listed = &c->prior.done;
        size_t budget = VERIFY_SLICE;
        for (size_t i = bitmap_next_set(listed, c->check_pos); i < listed->nbits; i = bitmap_next_set(listed, i + 1)) {
                if (budget == 0) {
                        c->check_pos = (uint32_t)i;
                        loop_defer(l, &c->check_step);
                        return;
                }
                uint32_t ch = (uint32_t)i, len = manifest_chunk_len(mf, ch);
                budget = len < budget ? budget - len : 0;
                if (member_has_chunk(c->mb, ch))
                        continue;       /* came as our share: checked with the manifest */
                if (store_read(&c->store, manifest_chunk_off(mf, ch), c->check_buf, len) == 0 &&
                    manifest_verify_chunk(mf, ch, c->check_buf, len) && member_resume_chunk(c->mb, ch) == 0)
                        bitmap_set(&c->written, ch);
                else
                        c->check_bad++;
        }
        c->checking = false;
        log_info("resuming %s: %llu of %u chunks verified on disk", c->store.part_path,
                 (unsigned long long)member_stats(c->mb)->chunks_resumed, mf->chunk_count);
        if (c->check_bad)
                log_notice("%u chunks listed in %s did not match: fetched again", c->check_bad, c->state_path);
        resume_fini(&c->prior);
        member_on_manifest_end(c->mb, c->end_hash, loop_now(l));
        client_drain(c);
}

static void hex(char *out, const uint8_t *b, size_t n)
{
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", b[i]);
}

void client_on_manifest_end(struct client *c, const uint8_t *hash, uint64_t now)
{
        if (c->checking)
                return;         /* a second one: the first is being acted on */
        if (c->opt->have_pin && memcmp(hash, c->opt->pinned, P2S_HASH_SIZE)) {
                /* not the file the user asked for: nothing of it reaches
                 * OUTPUT, and the share chunks this run put in OUTPUT.part go */
                char got[2 * P2S_HASH_SIZE + 1], why[P2S_MAX_REASON + 64];
                hex(got, hash, P2S_HASH_SIZE);
                snprintf(why, sizeof(why), "the server's SHA-256 is %s, not the pinned --sha256: refused", got);
                c->state_ok = false;
                if (c->store.created && c->store.fd >= 0) {
                        unlink(c->store.part_path);
                        c->store.created = false;
                }
                client_fail(c, FETCH_EXIT_VERIFY, why);
                return;
        }
        if (c->opt->have_pin)
                log_debug("the manifest matches the pinned --sha256");
        if (c->resuming && member_state(c->mb) == MEMBER_WAIT_MANIFEST) {
                c->resuming = false;
                if (!memcmp(c->prior.file_hash, hash, P2S_HASH_SIZE)) {
                        memcpy(c->end_hash, hash, P2S_HASH_SIZE);
                        c->checking = true;
                        c->check_pos = 0;
                        loop_defer(c->loop, &c->check_step);
                        return;
                }
                client_forget_prior(c, true);
        }
        member_on_manifest_end(c->mb, hash, now);
}

/* HAVE frames: the chunks brought from the earlier run, first .. first + count - 1. */
void client_send_have(struct client *c, uint32_t first, uint32_t count)
{
        const struct bitmap *res = member_resumed(c->mb);
        uint32_t n = (count + 7) / 8;
        struct buf *b = buf_new(n);
        if (!b) {
                member_fail(c->mb, "out of memory", loop_now(c->loop));
                return;
        }
        memset(b->data, 0, n);
        for (size_t i = bitmap_next_set(res, first); i < (size_t)first + count; i = bitmap_next_set(res, i + 1))
                b->data[(i - first) / 8] |= (uint8_t)(1u << ((i - first) % 8));
        struct p2s_hdr h;
        uint8_t raw[P2S_HDR_SIZE];
        client_fill_hdr(c, &h, P2S_HAVE, first, n);
        wire_encode_hdr(raw, &h);
        int r = outq_push(&c->q, raw, sizeof(raw), b);
        buf_unref(b);
        if (r < 0) {
                member_fail(c->mb, "out of memory", loop_now(c->loop));
                return;
        }
        if (!c->want_out)
                client_tcp_flush(c);
}
