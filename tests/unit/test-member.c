/* SPDX-License-Identifier: MIT */
/* The member (client) state machine alone, driven by hand: each test plays
 * the server, feeds one event at a time and checks the actions that come
 * back. No sockets, no files; time is a plain number. */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "core/member.h"
#include "proto/hash.h"
#include "failmalloc.h"
#include "memfile.h"
#include "runner.h"

#define CHECK(c) do { if (!(c)) ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c); } while (0)

/* ---- the member's actions, logged ---------------------------------------- */

struct log {
        struct member_action *v;
        size_t n, cap;
        uint64_t *when;
};

/* Drains m's actions into l (keeps WRITE bodies until log_free). Returns
 * how many were added. */
static size_t drain(struct member *m, struct log *l, uint64_t now)
{
        struct member_action a;
        size_t added = 0;

        while (member_next_action(m, &a)) {
                if (l->n == l->cap) {
                        l->cap = l->cap ? 2 * l->cap : 64;
                        l->v = realloc(l->v, l->cap * sizeof(*l->v));
                        l->when = realloc(l->when, l->cap * sizeof(*l->when));
                        ck_assert(l->v && l->when);
                }
                l->when[l->n] = now;
                l->v[l->n++] = a;
                added++;
        }
        return added;
}

static void log_free(struct log *l)
{
        for (size_t i = 0; i < l->n; i++)
                buf_unref(l->v[i].body);
        free(l->v);
        free(l->when);
        *l = (struct log){ 0 };
}

static size_t count_type(const struct log *l, size_t from, enum member_act_type t, int msg)
{
        size_t k = 0;
        for (size_t i = from; i < l->n; i++)
                if (l->v[i].type == t && (msg < 0 || l->v[i].msg == msg))
                        k++;
        return k;
}

static size_t count_req(const struct log *l, size_t from, uint32_t chunk)
{
        size_t k = 0;
        for (size_t i = from; i < l->n; i++)
                if (l->v[i].type == MEMBER_ACT_SEND && l->v[i].msg == P2S_REQ && l->v[i].chunk == chunk)
                        k++;
        return k;
}

/* SENDs of msg from `from` on, and how many of them go out twice. */
static size_t count_twice(const struct log *l, size_t from, int msg, size_t *sends)
{
        size_t k = 0;
        *sends = 0;
        for (size_t i = from; i < l->n; i++)
                if (l->v[i].type == MEMBER_ACT_SEND && l->v[i].msg == msg) {
                        (*sends)++;
                        k += l->v[i].twice;
                }
        return k;
}

static const struct member_action *find_type(const struct log *l, size_t from, enum member_act_type t)
{
        for (size_t i = from; i < l->n; i++)
                if (l->v[i].type == t)
                        return &l->v[i];
        return NULL;
}

/* ---- playing the server --------------------------------------------------- */

static struct member *mk(enum member_order order, unsigned window)
{
        struct member_config cfg;
        member_config_defaults(&cfg);
        cfg.order = order;
        cfg.window = window;
        cfg.seed = 7;
        struct member *m = member_new(&cfg);
        ck_assert_ptr_nonnull(m);
        return m;
}

static void send_start(struct member *m, const struct memfile *f, uint64_t now)
{
        struct p2s_start st = { .file_size = f->size, .chunk_size = f->cs, .chunk_count = f->count };
        member_on_start(m, &st, now);
}

static void send_share(struct member *m, const struct memfile *f, uint32_t c, uint64_t now)
{
        struct buf *b = memfile_chunk(f, c);
        member_on_share(m, c, b, now);
        buf_unref(b);
}

static void send_part(struct member *m, const struct memfile *f, unsigned part, uint64_t now)
{
        uint32_t first = part * P2S_MANIFEST_PART;
        uint32_t n = f->count - first < P2S_MANIFEST_PART ? f->count - first : P2S_MANIFEST_PART;
        member_on_manifest(m, first, f->hashes[first], n, now);
}

static void send_manifest(struct member *m, const struct memfile *f, uint64_t now)
{
        unsigned nparts = (f->count + P2S_MANIFEST_PART - 1) / P2S_MANIFEST_PART;
        for (unsigned p = 0; p < nparts; p++)
                send_part(m, f, p, now);
        member_on_manifest_end(m, f->fh, now);
}

/* The RTO tests' member: a window of 4, and never silent for long enough
 * to give up (their clocks jump far ahead). */
static void rto_config(struct member_config *cfg)
{
        member_config_defaults(cfg);
        cfg->window = 4;
        cfg->silence_timeout_us = 1000000000;
}

/* m, made by the caller, told START and the whole manifest of f (size bytes
 * in 256-byte chunks from seed) at now; its first REQs are in l. */
static void start_fetching(struct member *m, struct memfile *f, struct log *l, uint64_t size, uint64_t seed,
                           uint64_t now)
{
        memfile_make(f, size, 256, seed);
        send_start(m, f, now);
        send_manifest(m, f, now);
        drain(m, l, now);
}

/* How most tests begin: f is size bytes in 256-byte chunks from seed, and a
 * new member (order, window) has been told its START; end_member frees
 * the member, its log and f. */
static struct member *start_member(struct memfile *f, enum member_order order, unsigned window, uint64_t size,
                                   uint64_t seed)
{
        struct member *m = mk(order, window);
        memfile_make(f, size, 256, seed);
        send_start(m, f, 0);
        return m;
}

static void end_member(struct member *m, struct log *l, struct memfile *f)
{
        member_free(m);
        log_free(l);
        memfile_free(f);
}

static void send_data(struct member *m, const struct memfile *f, uint32_t c, bool from_cache, uint64_t now)
{
        struct buf *b = memfile_chunk(f, c);
        member_on_data(m, c, b, from_cache, now);
        buf_unref(b);
}

/* The member's in-memory output: WRITE actions copied in place. */
static void apply_writes(const struct log *l, size_t from, uint8_t *out, const struct memfile *f)
{
        for (size_t i = from; i < l->n; i++) {
                const struct member_action *a = &l->v[i];
                if (a->type != MEMBER_ACT_WRITE)
                        continue;
                CHECK(a->chunk < f->count && a->body && a->body->len == memfile_clen(f, a->chunk));
                memcpy(out + (uint64_t)a->chunk * f->cs, a->body->data, a->body->len);
        }
}

/* ---- START ---------------------------------------------------------------- */

START_TEST(start_prepares)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = mk(MEMBER_ORDER_SEQUENTIAL, 4);

        memfile_make(&f, 1000, 256, 1);
        ck_assert_int_eq(member_state(m), MEMBER_WAIT_START);
        send_start(m, &f, 0);
        drain(m, &l, 0);
        ck_assert_uint_eq(l.n, 1);
        ck_assert_int_eq(l.v[0].type, MEMBER_ACT_PREPARE);
        ck_assert_uint_eq(l.v[0].file_size, 1000);
        ck_assert_int_eq(member_state(m), MEMBER_WAIT_MANIFEST);
        ck_assert_uint_eq(member_total(m), 4);
        ck_assert_uint_eq(member_manifest(m)->chunk_size, 256);
        /* a second START is out of place: counted, nothing else */
        send_start(m, &f, 1);
        ck_assert_uint_eq(drain(m, &l, 1), 0);
        ck_assert_uint_eq(member_stats(m)->dropped_msgs, 1);
        ck_assert_int_eq(member_state(m), MEMBER_WAIT_MANIFEST);
        end_member(m, &l, &f);
}
END_TEST

/* chunk_count must be ceil(size / chunk_size); anything else is a broken
 * server, and so is a chunk size out of range. */
START_TEST(start_inconsistent)
{
        static const struct p2s_start bad[] = {
                { .file_size = 1000, .chunk_size = 256, .chunk_count = 3 },
                { .file_size = 1000, .chunk_size = 256, .chunk_count = 5 },
                { .file_size = 0, .chunk_size = 256, .chunk_count = 1 },
                { .file_size = 1000, .chunk_size = 100, .chunk_count = 10 },    /* < P2S_MIN_CHUNK */
                { .file_size = 1000, .chunk_size = 0, .chunk_count = 0 },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct log l = { 0 };
                struct member *m = mk(MEMBER_ORDER_SEQUENTIAL, 4);
                member_on_start(m, &bad[i], 0);
                drain(m, &l, 0);
                ck_assert_uint_eq(l.n, 1);
                ck_assert_int_eq(l.v[0].type, MEMBER_ACT_EXIT);
                ck_assert_int_eq(l.v[0].code, MEMBER_EXIT_SWARM);
                ck_assert_ptr_nonnull(strstr(l.v[0].reason, "START"));
                ck_assert_int_eq(member_state(m), MEMBER_EXITED);
                ck_assert_uint_eq(member_next_deadline(m), UINT64_MAX);
                member_free(m);
                log_free(&l);
        }
}
END_TEST

/* ---- share ---------------------------------------------------------------- */

START_TEST(share_wrong_length)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = start_member(&f, MEMBER_ORDER_SEQUENTIAL, 4, 1000, 2);  /* chunks 256, 256, 256, 232 */
        drain(m, &l, 0);
        size_t mark = l.n;

        struct buf *shorter = buf_new(255), *longer = buf_new(257), *full = buf_new(256);
        memcpy(shorter->data, f.data, 255);
        memcpy(longer->data, f.data, 256);
        longer->data[256] = 0;
        memcpy(full->data, f.data + 768, 232);
        memset(full->data + 232, 0, 24);
        member_on_share(m, 0, shorter, 0);      /* one byte short */
        member_on_share(m, 0, longer, 0);       /* one byte long */
        member_on_share(m, 3, full, 0);         /* the last chunk is short: 256 is wrong */
        member_on_share(m, 4, full, 0);         /* no chunk 4 */
        member_on_share(m, P2S_NO_CHUNK, full, 0);
        member_on_share(m, 1, NULL, 0);
        ck_assert_uint_eq(drain(m, &l, 0), 0);
        ck_assert_uint_eq(member_stats(m)->dropped_msgs, 6);
        ck_assert_uint_eq(member_have(m), 0);
        ck_assert(!member_has_chunk(m, 0));
        ck_assert(!member_has_chunk(m, 3));

        /* the right lengths are taken and written as they are */
        send_share(m, &f, 0, 0);
        send_share(m, &f, 3, 0);
        drain(m, &l, 0);
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_WRITE, -1), 2);
        ck_assert_uint_eq(member_have(m), 2);
        ck_assert_uint_eq(member_stats(m)->chunks_share, 2);
        /* a second copy of a share chunk is dropped */
        send_share(m, &f, 0, 0);
        ck_assert_uint_eq(drain(m, &l, 0), 0);
        ck_assert_uint_eq(member_stats(m)->dropped_msgs, 7);

        buf_unref(shorter);
        buf_unref(longer);
        buf_unref(full);
        end_member(m, &l, &f);
}
END_TEST

/* A share chunk is checked once the manifest arrives; one that does not
 * match is forgotten and fetched like any missing chunk. */
START_TEST(share_digest_mismatch)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = start_member(&f, MEMBER_ORDER_SEQUENTIAL, 32, 8 * 256, 3);
        send_share(m, &f, 1, 0);
        send_share(m, &f, 4, 0);
        struct buf *bad = memfile_chunk(&f, 6);
        bad->data[17] ^= 0x40;
        member_on_share(m, 6, bad, 0);
        buf_unref(bad);
        ck_assert_uint_eq(member_have(m), 3);   /* unchecked until the manifest */
        drain(m, &l, 0);
        size_t mark = l.n;
        send_manifest(m, &f, 0);
        drain(m, &l, 0);
        ck_assert_int_eq(member_state(m), MEMBER_FETCHING);
        ck_assert_uint_eq(member_stats(m)->bad_chunks, 1);
        ck_assert(!member_has_chunk(m, 6));
        ck_assert(member_has_chunk(m, 1));
        ck_assert(member_has_chunk(m, 4));
        ck_assert_uint_eq(count_req(&l, mark, 6), 1);
        ck_assert_uint_eq(count_req(&l, mark, 1), 0);
        ck_assert_uint_eq(count_req(&l, mark, 4), 0);
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_SEND, P2S_REQ), 6);
        end_member(m, &l, &f);
}
END_TEST

/* ---- manifest ------------------------------------------------------------- */

/* 2 full parts and a short third: 2 * 2048 + 5 chunks of 256 bytes. */
#define BIG_COUNT (2 * P2S_MANIFEST_PART + 5)

/* Each MANIFEST frame names its first index, so parts may come in any order. */
START_TEST(manifest_out_of_order)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = start_member(&f, MEMBER_ORDER_SEQUENTIAL, 4, (uint64_t)BIG_COUNT * 256, 4);
        send_part(m, &f, 2, 0);
        send_part(m, &f, 0, 0);
        send_part(m, &f, 1, 0);
        member_on_manifest_end(m, f.fh, 0);
        drain(m, &l, 0);
        ck_assert_int_eq(member_state(m), MEMBER_FETCHING);
        ck_assert_uint_eq(member_stats(m)->dropped_msgs, 0);
        ck_assert_ptr_null(find_type(&l, 0, MEMBER_ACT_EXIT));
        ck_assert_uint_eq(count_type(&l, 0, MEMBER_ACT_SEND, P2S_REQ), 4);
        ck_assert_int_eq(memcmp(member_manifest(m)->hashes, f.hashes, (size_t)f.count * P2S_HASH_SIZE), 0);
        end_member(m, &l, &f);
}
END_TEST

static void expect_incomplete(struct member *m, const struct memfile *f, struct log *l)
{
        member_on_manifest_end(m, f->fh, 0);
        drain(m, l, 0);
        const struct member_action *e = find_type(l, 0, MEMBER_ACT_EXIT);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->code, MEMBER_EXIT_SWARM);
        ck_assert_ptr_nonnull(strstr(e->reason, "incomplete manifest"));
        ck_assert_uint_eq(count_type(l, 0, MEMBER_ACT_SEND, P2S_REQ), 0);
        ck_assert_int_eq(member_state(m), MEMBER_EXITED);
}

START_TEST(manifest_missing_part)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = start_member(&f, MEMBER_ORDER_SEQUENTIAL, 4, (uint64_t)BIG_COUNT * 256, 5);
        send_part(m, &f, 0, 0);
        send_part(m, &f, 2, 0);
        expect_incomplete(m, &f, &l);
        end_member(m, &l, &f);
}
END_TEST

/* A duplicated part does not count twice: two copies of part 0 and part 1
 * are still two parts of three. */
START_TEST(manifest_duplicated_part)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = start_member(&f, MEMBER_ORDER_SEQUENTIAL, 4, (uint64_t)BIG_COUNT * 256, 6);
        send_part(m, &f, 0, 0);
        send_part(m, &f, 0, 0);
        send_part(m, &f, 1, 0);
        ck_assert_uint_eq(member_stats(m)->dropped_msgs, 1);
        expect_incomplete(m, &f, &l);
        end_member(m, &l, &f);
}
END_TEST

/* Frames that are not exactly one of the server's parts are dropped and do
 * not count: a misaligned first index, a short part, one past the end. */
START_TEST(manifest_malformed_parts)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = start_member(&f, MEMBER_ORDER_SEQUENTIAL, 4, (uint64_t)BIG_COUNT * 256, 8);
        member_on_manifest(m, 1, f.hashes[1], P2S_MANIFEST_PART, 0);          /* misaligned */
        member_on_manifest(m, 0, f.hashes[0], P2S_MANIFEST_PART - 1, 0);      /* short */
        member_on_manifest(m, 2 * P2S_MANIFEST_PART, f.hashes[2 * P2S_MANIFEST_PART], 4, 0);  /* short last */
        member_on_manifest(m, 3 * P2S_MANIFEST_PART, f.hashes[0], 5, 0);      /* past the end */
        member_on_manifest(m, P2S_NO_CHUNK - 31, f.hashes[0], 1, 0);
        ck_assert_uint_eq(member_stats(m)->dropped_msgs, 5);
        send_part(m, &f, 0, 0);
        send_part(m, &f, 1, 0);
        expect_incomplete(m, &f, &l);
        end_member(m, &l, &f);
}
END_TEST

/* MANIFEST before START is out of place. */
START_TEST(manifest_before_start)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = mk(MEMBER_ORDER_SEQUENTIAL, 4);

        memfile_make(&f, 1000, 256, 9);
        member_on_manifest(m, 0, f.hashes[0], f.count, 0);
        member_on_manifest_end(m, f.fh, 0);
        ck_assert_uint_eq(drain(m, &l, 0), 0);
        ck_assert_uint_eq(member_stats(m)->dropped_msgs, 2);
        ck_assert_int_eq(member_state(m), MEMBER_WAIT_START);
        end_member(m, &l, &f);
}
END_TEST

/* ---- fetching ------------------------------------------------------------- */

/* Requests in flight never exceed cfg.window, whatever the mix of answers
 * and timeouts: count distinct chunks requested and not yet answered. */
START_TEST(window_bound)
{
        const unsigned window = 5;
        struct memfile f;
        struct log l = { 0 };
        struct member_config cfg;
        member_config_defaults(&cfg);
        cfg.window = window;
        cfg.silence_timeout_us = 1000000000;    /* this test is about the window only */
        struct member *m = member_new(&cfg);
        uint64_t now = 0, x = 0x1234567;
        unsigned answered = 0;

        memfile_make(&f, 120 * 256, 256, 10);
        bool *open = calloc(f.count, sizeof(bool));
        uint32_t *list = calloc(f.count, sizeof(uint32_t));
        uint8_t *out = calloc(1, f.size);
        send_start(m, &f, now);
        drain(m, &l, now);
        size_t mark = l.n;
        send_manifest(m, &f, now);
        drain(m, &l, now);
        /* the first batch fills the window exactly */
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_SEND, P2S_REQ), window);
        for (int step = 0; step < 10000 && member_state(m) == MEMBER_FETCHING; step++) {
                drain(m, &l, now);
                for (size_t i = mark; i < l.n; i++)
                        if (l.v[i].type == MEMBER_ACT_SEND && l.v[i].msg == P2S_REQ)
                                open[l.v[i].chunk] = true;
                mark = l.n;
                unsigned nopen = 0;
                for (uint32_t c = 0; c < f.count; c++)
                        if (open[c])
                                list[nopen++] = c;
                CHECK(nopen <= window);
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                if (nopen && x % 3 != 0) {
                        uint32_t pick = list[(x >> 8) % nopen];
                        send_data(m, &f, pick, false, now);
                        open[pick] = false;
                        answered++;
                } else {
                        /* let a retry timer fire instead */
                        now = member_next_deadline(m);
                        CHECK(now != UINT64_MAX);
                        member_on_tick(m, now);
                }
        }
        drain(m, &l, now);
        ck_assert_int_eq(member_state(m), MEMBER_VERIFYING);
        ck_assert_uint_eq(answered, f.count);
        ck_assert_uint_gt(member_stats(m)->retries, 0);
        apply_writes(&l, 0, out, &f);
        ck_assert_int_eq(memcmp(out, f.data, f.size), 0);
        free(open);
        free(list);
        free(out);
        end_member(m, &l, &f);
}
END_TEST

/* With the server silent, a request is repeated at doubling intervals up to
 * rto_max; silence_timeout after the last word from the server the member
 * gives up. Defaults: rto 0.3 s initial, 3 s max, silence 10 s. */
START_TEST(rto_backoff_then_silent)
{
        struct memfile f;
        struct log l = { 0 };
        struct member_config cfg;
        member_config_defaults(&cfg);
        struct member *m = member_new(&cfg);
        const uint64_t t0 = 5000000;
        uint64_t now = t0;

        memfile_make(&f, 200, 256, 11);            /* one chunk: one request */
        send_start(m, &f, now);
        send_manifest(m, &f, now);
        drain(m, &l, now);
        for (int i = 0; i < 100 && member_state(m) != MEMBER_EXITED; i++) {
                uint64_t d = member_next_deadline(m);
                CHECK(d != UINT64_MAX && d > now);
                now = d;
                member_on_tick(m, now);
                drain(m, &l, now);
        }
        ck_assert_int_eq(member_state(m), MEMBER_EXITED);
        ck_assert_uint_eq(member_next_deadline(m), UINT64_MAX);

        uint64_t t[32];
        unsigned nt = 0;
        for (size_t i = 0; i < l.n && nt < 32; i++)
                if (l.v[i].type == MEMBER_ACT_SEND && l.v[i].msg == P2S_REQ) {
                        ck_assert_uint_eq(l.v[i].chunk, 0);
                        t[nt++] = l.when[i];
                }
        ck_assert_uint_ge(nt, 4);
        ck_assert_uint_eq(t[0], t0);
        ck_assert_uint_eq(t[1] - t[0], cfg.rto_initial_us);
        for (unsigned i = 2; i < nt; i++) {
                uint64_t prev = t[i - 1] - t[i - 2], cur = t[i] - t[i - 1];
                ck_assert_uint_le(cur, cfg.rto_max_us);
                if (prev < cfg.rto_max_us)
                        ck_assert_uint_eq(cur, prev * 2 < cfg.rto_max_us ? prev * 2 : cfg.rto_max_us);
                else
                        ck_assert_uint_eq(cur, cfg.rto_max_us);
        }
        ck_assert_uint_eq(member_stats(m)->retries, nt - 1);
        /* every retry, none of the first REQs, goes out twice */
        size_t sends;
        ck_assert_uint_eq(count_twice(&l, 0, P2S_REQ, &sends), nt - 1);
        const struct member_action *e = find_type(&l, 0, MEMBER_ACT_EXIT);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->code, MEMBER_EXIT_GONE);
        ck_assert_ptr_nonnull(strstr(e->reason, "silent"));
        ck_assert_uint_eq(l.when[e - l.v], t0 + cfg.silence_timeout_us);
        end_member(m, &l, &f);
}
END_TEST

/* Bug 3: a server SIGSTOPped while the swarm gathers. The member pings it
 * when quiet (at most every second, over TCP after two unanswered) and
 * gives up silence_timeout after the last word, with a message saying so. */
START_TEST(silence_while_gathering)
{
        struct member_config cfg;
        member_config_defaults(&cfg);
        cfg.silence_timeout_us = 6000000;
        struct member *m = member_new(&cfg);
        struct log l = { 0 };
        uint64_t now = 5000000;
        ck_assert_ptr_nonnull(m);
        /* the first tick starts the clock */
        ck_assert_uint_eq(member_next_deadline(m), 0);
        member_on_tick(m, now);
        drain(m, &l, now);
        uint64_t t0 = now;
        /* answered pings keep it waiting for ever */
        for (int i = 0; i < 20; i++) {
                now = member_next_deadline(m);
                ck_assert_uint_le(now, t0 + (uint64_t)(i + 1) * 1000000 + 1);
                member_on_tick(m, now);
                drain(m, &l, now);
                member_on_ping(m, true, false, now);
        }
        ck_assert_int_eq(member_state(m), MEMBER_WAIT_START);
        size_t mark = l.n;
        uint64_t last = now;
        while (member_state(m) != MEMBER_EXITED) {
                now = member_next_deadline(m);
                ck_assert_uint_ne(now, UINT64_MAX);
                member_on_tick(m, now);
                drain(m, &l, now);
        }
        ck_assert_uint_eq(now, last + cfg.silence_timeout_us);
        ck_assert_uint_ge(count_type(&l, mark, MEMBER_ACT_SEND, P2S_PING), 4);
        const struct member_action *e = find_type(&l, mark, MEMBER_ACT_EXIT);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->code, MEMBER_EXIT_GONE);
        ck_assert_ptr_nonnull(strstr(e->reason, "server silent for 6.0 s"));
        member_free(m);
        log_free(&l);
}
END_TEST

/* Anything from the server resets the silence clock: a QUERY now and then
 * keeps a member whose requests go unanswered alive. */
START_TEST(silence_reset_by_any_message)
{
        struct memfile f;
        struct log l = { 0 };
        struct member_config cfg;
        member_config_defaults(&cfg);
        struct member *m = member_new(&cfg);
        const uint64_t half = cfg.silence_timeout_us / 2;
        uint64_t now = 0;

        memfile_make(&f, 4 * 256, 256, 12);
        send_start(m, &f, now);
        send_share(m, &f, 0, now);
        send_manifest(m, &f, now);
        drain(m, &l, now);
        for (int i = 0; i < 40; i++) {
                /* the retry timers run up to just before the next QUERY */
                uint64_t d;
                while ((d = member_next_deadline(m)) < now + half) {
                        member_on_tick(m, d);
                        drain(m, &l, d);
                }
                now += half;
                member_on_query(m, 0, now);
                drain(m, &l, now);
        }
        ck_assert_int_eq(member_state(m), MEMBER_FETCHING);
        ck_assert_ptr_null(find_type(&l, 0, MEMBER_ACT_EXIT));
        ck_assert_uint_eq(count_type(&l, 0, MEMBER_ACT_UPLOAD, -1), 40);
        ck_assert_uint_gt(member_stats(m)->retries, 40);
        end_member(m, &l, &f);
}
END_TEST

/* DATA that fails its hash is neither written nor counted; the request
 * stays open and is sent again at once. */
START_TEST(bad_data_rerequested)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = mk(MEMBER_ORDER_SEQUENTIAL, 4);
        uint64_t now = 1000;

        start_fetching(m, &f, &l, 3 * 256 + 10, 13, now);
        size_t mark = l.n;
        ck_assert_uint_eq(count_req(&l, 0, 2), 1);

        now += 50;
        struct buf *b = memfile_chunk(&f, 2);
        b->data[100] ^= 1;
        member_on_data(m, 2, b, true, now);
        buf_unref(b);
        drain(m, &l, now);
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_WRITE, -1), 0);
        ck_assert(!member_has_chunk(m, 2));
        ck_assert_uint_eq(member_stats(m)->bad_chunks, 1);
        ck_assert_uint_eq(member_stats(m)->chunks_cache, 0);
        /* the server counts it as ours until told otherwise */
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_SEND, P2S_NOHAVE), 1);
        /* wrong length for the short last chunk is dropped, not "bad" */
        struct buf *wrong = buf_new(256);
        memset(wrong->data, 0, 256);
        member_on_data(m, 3, wrong, false, now);
        buf_unref(wrong);
        ck_assert_uint_eq(member_stats(m)->dropped_msgs, 1);

        ck_assert_uint_eq(member_next_deadline(m), now);
        member_on_tick(m, now);
        drain(m, &l, now);
        ck_assert_uint_eq(count_req(&l, mark, 2), 1);
        ck_assert_uint_eq(count_req(&l, mark, 0), 0);

        /* the good copy is written */
        send_data(m, &f, 2, true, now);
        drain(m, &l, now);
        ck_assert(member_has_chunk(m, 2));
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_WRITE, -1), 1);
        ck_assert_uint_eq(member_stats(m)->chunks_cache, 1);
        /* and a copy of it later is a duplicate */
        send_data(m, &f, 2, false, now);
        ck_assert_uint_eq(member_stats(m)->dup_chunks, 1);
        end_member(m, &l, &f);
}
END_TEST

/* Answers queued behind those to earlier requests are waited for while
 * chunks keep coming (asking again would fetch them twice); a request
 * overtaken by a later one's answer is asked again at its deadline. */
START_TEST(queued_not_retried_overtaken_is)
{
        struct memfile f;
        struct log l = { 0 };
        struct member_config cfg;
        rto_config(&cfg);
        struct member *m = member_new(&cfg);
        uint64_t now = 1000000;

        start_fetching(m, &f, &l, 16 * 256, 12, now);
        ck_assert_uint_eq(count_type(&l, 0, MEMBER_ACT_SEND, P2S_REQ), 4);      /* 0..3 */
        /* answers in order, each a little before the deadline of the next */
        uint64_t step = cfg.rto_initial_us - 1000;
        for (uint32_t c = 0; c < 3; c++) {
                now += step;
                size_t mark = l.n;
                member_on_tick(m, now);
                drain(m, &l, now);
                send_data(m, &f, c, true, now);
                drain(m, &l, now);
                ck_assert_uint_eq(count_req(&l, mark, c), 0);
        }
        ck_assert_uint_eq(member_stats(m)->retries, 0);
        /* 4, 5 and 6 were asked for after 3: 5's answer overtakes 3 and 4 */
        now += 1000;
        send_data(m, &f, 5, true, now);
        drain(m, &l, now);
        size_t mark = l.n;
        uint64_t t5 = now;
        while ((count_req(&l, mark, 3) == 0 || count_req(&l, mark, 4) == 0) && now < t5 + cfg.rto_max_us) {
                uint64_t d = member_next_deadline(m);
                now = d > now ? d : now;        /* brought forward into the past: due now */
                member_on_tick(m, now);
                drain(m, &l, now);
        }
        ck_assert_uint_eq(count_req(&l, mark, 3), 1);
        ck_assert_uint_eq(count_req(&l, mark, 4), 1);
        ck_assert_uint_le(now - t5, 2 * cfg.rto_initial_us + 2000000);
        ck_assert_uint_gt(member_stats(m)->retries, 0);
        end_member(m, &l, &f);
}
END_TEST

/* A lost REQ in the first window: the server answers in order, so once
 * the answer to a younger REQ has come, the older one is asked again one
 * round trip (the one just measured) plus the reordering allowance
 * (rto_min, srtt / 4 when larger) after it was sent, not after the initial
 * RTO guess; and that retry backs off neither the RTO nor the request. */
START_TEST(overtaken_retried_after_rtt)
{
        struct memfile f;
        struct log l = { 0 };
        struct member_config cfg;
        rto_config(&cfg);
        cfg.rto_min_us = 5000;
        struct member *m = member_new(&cfg);
        uint64_t t0 = 1000000, now = t0;

        start_fetching(m, &f, &l, 16 * 256, 31, now);
        ck_assert_uint_eq(count_type(&l, 0, MEMBER_ACT_SEND, P2S_REQ), 4);      /* 0..3 */
        size_t sends;
        ck_assert_uint_eq(count_twice(&l, 0, P2S_REQ, &sends), 0);      /* first REQs go once */
        /* 0's REQ was lost: 1 comes after 2 ms. The sample makes the RTO
         * 2 + 4 * 1 = 6 ms (4 goes out now with it); the allowance is
         * rto_min, srtt / 4 being less: 0 is due 2 + 5 ms after it went out */
        now = t0 + 2000;
        send_data(m, &f, 1, true, now);
        drain(m, &l, now);
        uint64_t due = t0 + 2000 + cfg.rto_min_us;
        ck_assert_uint_eq(member_next_deadline(m), due);
        size_t mark = l.n;
        member_on_tick(m, due - 1);
        drain(m, &l, due - 1);
        ck_assert_uint_eq(count_req(&l, mark, 0), 0);
        member_on_tick(m, due);
        drain(m, &l, due);
        ck_assert_uint_eq(count_req(&l, mark, 0), 1);
        ck_assert_uint_eq(member_stats(m)->retries, 1);
        /* its first copy was lost: the retry goes out twice */
        ck_assert_uint_eq(count_twice(&l, mark, P2S_REQ, &sends), 1);
        ck_assert_uint_eq(sends, 1);
        /* a detected loss is no timeout: 4's deadline is still the sampled
         * RTO after it went out, not a backed-off one */
        ck_assert_uint_eq(member_next_deadline(m), t0 + 2000 + 6000);
        /* the retry's timer is the RTO of now (6 ms), not the 300 ms guess
         * the first REQ went out with; and only a first retry is brought
         * forward: 5, younger than the retry, answered does not move it */
        send_data(m, &f, 2, true, due);
        send_data(m, &f, 3, true, due);
        send_data(m, &f, 4, true, due);
        drain(m, &l, due);
        send_data(m, &f, 5, true, due + 2000);
        drain(m, &l, due + 2000);
        ck_assert_uint_eq(member_next_deadline(m), due + 6000);
        end_member(m, &l, &f);
}
END_TEST

/* Over --control tcp REQs are never lost and chunks come back in any
 * order: an answer overtaking an older REQ brings nothing forward. */
START_TEST(overtaken_ignored_when_reliable)
{
        struct memfile f;
        struct log l = { 0 };
        struct member_config cfg;
        rto_config(&cfg);
        cfg.rto_min_us = 5000;
        struct member *m = member_new(&cfg);
        member_set_reliable_requests(m, true);
        uint64_t t0 = 1000000, now = t0;

        start_fetching(m, &f, &l, 16 * 256, 32, now);
        now = t0 + 2000;
        send_data(m, &f, 1, true, now);
        drain(m, &l, now);
        /* only 4, sent now, is due early: 0 keeps its first deadline */
        ck_assert_uint_eq(member_next_deadline(m), t0 + 2000 + 6000);
        size_t mark = l.n;
        member_on_tick(m, t0 + cfg.rto_initial_us - 1);
        drain(m, &l, t0 + cfg.rto_initial_us - 1);
        ck_assert_uint_eq(count_req(&l, mark, 0), 0);
        ck_assert_uint_eq(count_req(&l, mark, 4), 1);
        end_member(m, &l, &f);
}
END_TEST

/* Each answer to a first request gives an RTT sample (log line) with the
 * request time and the cache flag. */
/* A PING is answered the way it came: over TCP the server pings a member
 * whose datagrams went unanswered, and a datagram answer could be lost
 * again. */
START_TEST(ping_answered_the_way_it_came)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = start_member(&f, MEMBER_ORDER_SEQUENTIAL, 4, 6 * 256, 17);
        for (int over_tcp = 0; over_tcp < 2; over_tcp++) {
                size_t mark = l.n;
                member_on_ping(m, false, over_tcp, 10);
                drain(m, &l, 10);
                ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_SEND, P2S_PING), 1);
                const struct member_action *a = find_type(&l, mark, MEMBER_ACT_SEND);
                ck_assert(a->flags & P2S_F_ACK);
                ck_assert_int_eq(a->reliable, over_tcp);
        }
        end_member(m, &l, &f);
}
END_TEST

START_TEST(rtt_reported)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = mk(MEMBER_ORDER_SEQUENTIAL, 4);

        memfile_make(&f, 2 * 256, 256, 14);
        send_start(m, &f, 100);
        send_manifest(m, &f, 100);
        send_data(m, &f, 1, true, 1100);
        drain(m, &l, 1100);
        const struct member_action *r = find_type(&l, 0, MEMBER_ACT_RTT);
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(r->chunk, 1);
        ck_assert_uint_eq(r->req_time_us, 100);
        ck_assert_uint_eq(r->rtt_us, 1000);
        ck_assert(r->from_cache);
        end_member(m, &l, &f);
}
END_TEST

/* ---- serving -------------------------------------------------------------- */

START_TEST(query_answers)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = mk(MEMBER_ORDER_SEQUENTIAL, 4);

        memfile_make(&f, 6 * 256, 256, 15);
        /* before START there is nothing to serve, and nothing to say */
        member_on_query(m, 0, 0);
        ck_assert_uint_eq(drain(m, &l, 0), 0);
        send_start(m, &f, 0);
        send_share(m, &f, 2, 0);
        send_manifest(m, &f, 0);
        send_data(m, &f, 0, false, 0);
        drain(m, &l, 0);
        size_t mark = l.n;
        member_on_query(m, 2, 1);               /* share chunk */
        member_on_query(m, 0, 1);               /* fetched chunk */
        member_on_query(m, 5, 1);               /* missing */
        member_on_query(m, 6, 1);               /* out of range */
        drain(m, &l, 1);
        ck_assert_uint_eq(l.n - mark, 4);
        ck_assert_int_eq(l.v[mark].type, MEMBER_ACT_UPLOAD);
        ck_assert_uint_eq(l.v[mark].chunk, 2);
        ck_assert_int_eq(l.v[mark + 1].type, MEMBER_ACT_UPLOAD);
        ck_assert_uint_eq(l.v[mark + 1].chunk, 0);
        ck_assert_int_eq(l.v[mark + 2].type, MEMBER_ACT_SEND);
        ck_assert_uint_eq(l.v[mark + 2].msg, P2S_NOHAVE);
        ck_assert_uint_eq(l.v[mark + 2].chunk, 5);
        ck_assert_int_eq(l.v[mark + 3].type, MEMBER_ACT_SEND);
        ck_assert_uint_eq(l.v[mark + 3].msg, P2S_NOHAVE);
        ck_assert_uint_eq(l.v[mark + 3].chunk, 6);
        ck_assert_uint_eq(member_stats(m)->queries, 4);
        ck_assert_uint_eq(member_stats(m)->bytes_uploaded, 512);
        end_member(m, &l, &f);
}
END_TEST

/* ---- the end -------------------------------------------------------------- */

/* Fetches everything (answering each REQ in turn) up to VERIFY. */
static void fetch_all(struct member *m, const struct memfile *f, struct log *l, uint64_t now)
{
        size_t mark = l->n;
        send_start(m, f, now);
        send_manifest(m, f, now);
        for (int guard = 0; guard < 100000; guard++) {
                drain(m, l, now);
                if (mark == l->n)
                        break;
                size_t end = l->n;
                for (size_t i = mark; i < end; i++)
                        if (l->v[i].type == MEMBER_ACT_SEND && l->v[i].msg == P2S_REQ)
                                send_data(m, f, l->v[i].chunk, false, now);
                mark = end;
        }
        ck_assert_int_eq(member_state(m), MEMBER_VERIFYING);
}

START_TEST(done_before_complete)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = start_member(&f, MEMBER_ORDER_SEQUENTIAL, 4, 6 * 256, 16);
        send_manifest(m, &f, 0);
        drain(m, &l, 0);
        size_t mark = l.n;
        member_on_done(m, 10);
        drain(m, &l, 10);
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_SEND, P2S_BYE), 1);
        const struct member_action *e = find_type(&l, mark, MEMBER_ACT_EXIT);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->code, MEMBER_EXIT_SWARM);
        ck_assert_int_eq(member_state(m), MEMBER_EXITED);
        /* nothing more after the exit */
        member_on_done(m, 20);
        member_on_tick(m, 1000000000);
        ck_assert_uint_eq(drain(m, &l, 20), 0);
        end_member(m, &l, &f);
}
END_TEST

/* DONE while the whole-file hash is being computed is also too early. */
START_TEST(done_while_verifying)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = mk(MEMBER_ORDER_SEQUENTIAL, 4);

        memfile_make(&f, 3 * 256, 256, 17);
        fetch_all(m, &f, &l, 0);
        size_t mark = l.n;
        member_on_done(m, 1);
        drain(m, &l, 1);
        const struct member_action *e = find_type(&l, mark, MEMBER_ACT_EXIT);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->code, MEMBER_EXIT_SWARM);
        /* the late verification result changes nothing */
        member_on_verified(m, f.fh, 2);
        ck_assert_uint_eq(drain(m, &l, 2), 0);
        end_member(m, &l, &f);
}
END_TEST

START_TEST(file_hash_mismatch)
{
        for (int variant = 0; variant < 2; variant++) {
                struct memfile f;
                struct log l = { 0 };
                struct member *m = mk(MEMBER_ORDER_SEQUENTIAL, 4);
                uint8_t wrong[P2S_HASH_SIZE];

                memfile_make(&f, 3 * 256, 256, 18);
                fetch_all(m, &f, &l, 0);
                ck_assert_ptr_nonnull(find_type(&l, 0, MEMBER_ACT_VERIFY));
                size_t mark = l.n;
                memcpy(wrong, f.fh, sizeof(wrong));
                wrong[31] ^= 1;
                member_on_verified(m, variant ? NULL : wrong, 1);
                drain(m, &l, 1);
                ck_assert_ptr_null(find_type(&l, mark, MEMBER_ACT_FINALIZE));
                ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_SEND, P2S_COMPLETE), 0);
                const struct member_action *e = find_type(&l, mark, MEMBER_ACT_EXIT);
                ck_assert_ptr_nonnull(e);
                ck_assert_int_eq(e->code, MEMBER_EXIT_VERIFY);
                ck_assert_ptr_nonnull(strstr(e->reason, "SHA-256"));
                member_free(m);
                log_free(&l);
                memfile_free(&f);
        }
}
END_TEST

/* The happy end: FINALIZE, COMPLETE retried until acknowledged, then DONE
 * makes it say BYE and exit 0. */
START_TEST(complete_retry_ack_done)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = mk(MEMBER_ORDER_SEQUENTIAL, 4);
        uint64_t now = 0;

        memfile_make(&f, 5 * 256 + 1, 256, 19);
        fetch_all(m, &f, &l, now);
        size_t mark = l.n;
        member_on_verified(m, f.fh, now);
        drain(m, &l, now);
        ck_assert_int_eq(member_state(m), MEMBER_COMPLETE);
        ck_assert_ptr_nonnull(find_type(&l, mark, MEMBER_ACT_FINALIZE));
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_SEND, P2S_COMPLETE), 1);
        /* unacknowledged: COMPLETE again on a timer */
        for (int i = 0; i < 50 && count_type(&l, mark, MEMBER_ACT_SEND, P2S_COMPLETE) < 4; i++) {
                uint64_t d = member_next_deadline(m);
                ck_assert_uint_ne(d, UINT64_MAX);
                now = d;
                member_on_tick(m, now);
                drain(m, &l, now);
                member_on_ping(m, true, false, now);   /* the server answers the keep-alives */
        }
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_SEND, P2S_COMPLETE), 4);
        /* the swarm's end waits on it: every COMPLETE goes out twice */
        size_t sends;
        ck_assert_uint_eq(count_twice(&l, mark, P2S_COMPLETE, &sends), 4);
        member_on_complete_ack(m, now);
        /* acknowledged: it waits for DONE as long as it takes, pinging a
         * quiet server now and then, never retrying COMPLETE */
        ck_assert_uint_eq(member_next_deadline(m), now + 1000000);
        /* still serving */
        member_on_query(m, 3, now);
        drain(m, &l, now);
        ck_assert_int_eq(l.v[l.n - 1].type, MEMBER_ACT_UPLOAD);
        mark = l.n;
        member_on_done(m, now + 1);
        drain(m, &l, now + 1);
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_SEND, P2S_BYE), 1);
        ck_assert_uint_eq(count_twice(&l, mark, P2S_BYE, &sends), 1);
        const struct member_action *e = find_type(&l, mark, MEMBER_ACT_EXIT);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->code, 0);
        uint8_t *out = calloc(1, f.size);
        apply_writes(&l, 0, out, &f);
        ck_assert_int_eq(memcmp(out, f.data, f.size), 0);
        free(out);
        end_member(m, &l, &f);
}
END_TEST

/* COMPLETE is a new exchange: it is first retried after the RTO the samples
 * give, not after the one lost REQs backed off. */
START_TEST(complete_retry_from_sampled_rto)
{
        struct memfile f;
        struct log l = { 0 };
        struct member_config cfg;
        rto_config(&cfg);
        struct member *m = member_new(&cfg);
        uint64_t now = 1000000;

        start_fetching(m, &f, &l, 4 * 256, 33, now);
        /* 0..2 answered after 2 ms: samples of 2 ms, RTO rto_min */
        now += 2000;
        for (uint32_t c = 0; c < 3; c++)
                send_data(m, &f, c, true, now);
        drain(m, &l, now);
        /* 3 times out twice: the RTO doubles twice */
        for (int i = 0; i < 2; i++) {
                now = member_next_deadline(m);
                member_on_tick(m, now);
                drain(m, &l, now);
        }
        ck_assert_uint_eq(member_stats(m)->retries, 2);
        now += 1000;
        send_data(m, &f, 3, true, now);
        drain(m, &l, now);
        size_t mark = l.n;
        member_on_verified(m, f.fh, now);
        drain(m, &l, now);
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_SEND, P2S_COMPLETE), 1);
        ck_assert_uint_eq(member_next_deadline(m), now + cfg.rto_min_us);
        end_member(m, &l, &f);
}
END_TEST

START_TEST(fatal_error_exits)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = start_member(&f, MEMBER_ORDER_SEQUENTIAL, 4, 5 * 256, 20);
        send_manifest(m, &f, 0);
        drain(m, &l, 0);
        size_t mark = l.n;
        member_on_error(m, P2S_ERR_PROTO, "just a warning", false, 1);
        ck_assert_uint_eq(drain(m, &l, 1), 0);
        ck_assert_int_eq(member_state(m), MEMBER_FETCHING);
        member_on_error(m, P2S_ERR_LOST, "chunk 3 is held by no member", true, 2);
        drain(m, &l, 2);
        const struct member_action *e = find_type(&l, mark, MEMBER_ACT_EXIT);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_eq(e->code, MEMBER_EXIT_SERVER);
        ck_assert_ptr_nonnull(strstr(e->reason, "chunk 3 is held by no member"));
        end_member(m, &l, &f);
}
END_TEST

/* ---- out of memory --------------------------------------------------------- */

/* A complete member, its queue drained. */
static struct member *complete_member(struct memfile *f, struct log *l)
{
        struct member *m = mk(MEMBER_ORDER_SEQUENTIAL, 4);
        memfile_make(f, 5 * 256 + 1, 256, 21);
        fetch_all(m, f, l, 0);
        member_on_verified(m, f->fh, 0);
        drain(m, l, 0);
        ck_assert_int_eq(member_state(m), MEMBER_COMPLETE);
        return m;
}

/* Queries answered with memory gone, until the queue cannot grow: how many
 * went in before the member gave up. */
static unsigned queries_until_exit(struct member *m, unsigned limit)
{
        unsigned k = 0;
        failmalloc_after(0);
        while (k < limit && member_state(m) != MEMBER_EXITED) {
                member_on_query(m, k % 5, 1);
                k++;
        }
        failmalloc_off();
        return k;
}

/* An UPLOAD that cannot be queued ends the member, and its EXIT still comes
 * out, last and once. */
START_TEST(oom_exit_comes_out)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = complete_member(&f, &l);
        size_t mark = l.n;
        unsigned k = queries_until_exit(m, 100000);
        ck_assert_int_eq(member_state(m), MEMBER_EXITED);
        drain(m, &l, 1);
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_UPLOAD, -1), k - 1);
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_EXIT, -1), 1);
        const struct member_action *e = &l.v[l.n - 1];
        ck_assert_int_eq(e->type, MEMBER_ACT_EXIT);
        ck_assert_int_eq(e->code, 1);
        ck_assert_str_eq(e->reason, "out of memory");
        /* exited is exited: nothing more is queued, no timer is left */
        member_on_query(m, 1, 2);
        member_on_done(m, 2);
        member_on_tick(m, UINT64_MAX - 1);
        ck_assert_uint_eq(drain(m, &l, 2), 0);
        ck_assert_uint_eq(member_next_deadline(m), UINT64_MAX);
        end_member(m, &l, &f);
}
END_TEST

/* DONE on a queue already full to its reservation, with no memory at all:
 * the BYE and the EXIT (success) come out. */
START_TEST(oom_bye_and_exit_reserved)
{
        struct memfile f1, f2;
        struct log l1 = { 0 }, l2 = { 0 };
        /* a twin tells how many actions fill the queue to its reservation */
        struct member *probe = complete_member(&f1, &l1);
        unsigned k = queries_until_exit(probe, 100000);
        member_free(probe);
        ck_assert_uint_gt(k, 1);

        struct member *m = complete_member(&f2, &l2);
        size_t mark = l2.n;
        failmalloc_after(0);
        for (unsigned i = 0; i + 1 < k; i++)
                member_on_query(m, i % 5, 1);
        enum member_state before = member_state(m);
        member_on_done(m, 2);
        failmalloc_off();
        ck_assert_int_eq(before, MEMBER_COMPLETE);
        drain(m, &l2, 2);
        ck_assert_uint_eq(count_type(&l2, mark, MEMBER_ACT_UPLOAD, -1), k - 1);
        ck_assert_int_eq(l2.v[l2.n - 2].type, MEMBER_ACT_SEND);
        ck_assert_int_eq(l2.v[l2.n - 2].msg, P2S_BYE);
        ck_assert_int_eq(l2.v[l2.n - 1].type, MEMBER_ACT_EXIT);
        ck_assert_int_eq(l2.v[l2.n - 1].code, 0);
        member_free(m);
        log_free(&l1);
        log_free(&l2);
        memfile_free(&f1);
        memfile_free(&f2);
}
END_TEST

/* Chunks arriving with memory gone: their WRITE, RTT and the next REQ
 * cannot all be queued. A WRITE lost would leave a hole the member believes
 * filled, so any action lost means EXIT, never a silent gap. */
START_TEST(oom_write_exits)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = start_member(&f, MEMBER_ORDER_SEQUENTIAL, 64, 200 * 256, 22);
        send_manifest(m, &f, 0);
        drain(m, &l, 0);
        size_t mark = l.n;
        /* data arrives with memory gone; the chunk buffers exist already */
        struct buf *b[64];
        for (uint32_t c = 0; c < 64; c++)
                b[c] = memfile_chunk(&f, c);
        failmalloc_after(0);
        uint32_t c = 0;
        while (c < 64 && member_state(m) != MEMBER_EXITED) {
                member_on_data(m, c, b[c], false, 1);
                c++;
        }
        failmalloc_off();
        for (uint32_t i = 0; i < 64; i++)
                buf_unref(b[i]);
        ck_assert_int_eq(member_state(m), MEMBER_EXITED);
        drain(m, &l, 1);
        const struct member_action *e = &l.v[l.n - 1];
        ck_assert_int_eq(e->type, MEMBER_ACT_EXIT);
        ck_assert_str_eq(e->reason, "out of memory");
        ck_assert_uint_eq(count_type(&l, mark, MEMBER_ACT_EXIT, -1), 1);
        end_member(m, &l, &f);
}
END_TEST

/* Random order: a permutation, so every chunk is asked exactly once when
 * every request is answered, and not in index order. */
START_TEST(random_order_each_once)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = mk(MEMBER_ORDER_RANDOM, 8);
        const uint32_t shares[] = { 3, 50, 51, 199 };

        memfile_make(&f, 200 * 256 - 77, 256, 21);
        send_start(m, &f, 0);
        for (size_t i = 0; i < sizeof(shares) / sizeof(shares[0]); i++)
                send_share(m, &f, shares[i], 0);
        size_t mark = l.n;
        send_manifest(m, &f, 0);
        for (int guard = 0; guard < 100000; guard++) {
                drain(m, &l, 0);
                if (mark == l.n)
                        break;
                size_t end = l.n;
                for (size_t i = mark; i < end; i++)
                        if (l.v[i].type == MEMBER_ACT_SEND && l.v[i].msg == P2S_REQ)
                                send_data(m, &f, l.v[i].chunk, false, 0);
                mark = end;
        }
        ck_assert_int_eq(member_state(m), MEMBER_VERIFYING);
        unsigned *n = calloc(f.count, sizeof(unsigned));
        unsigned inorder = 0;
        uint32_t prev = 0;
        bool first = true;
        for (size_t i = 0; i < l.n; i++) {
                if (l.v[i].type != MEMBER_ACT_SEND || l.v[i].msg != P2S_REQ)
                        continue;
                n[l.v[i].chunk]++;
                if (!first && l.v[i].chunk == prev + 1)
                        inorder++;
                prev = l.v[i].chunk;
                first = false;
        }
        for (uint32_t c = 0; c < f.count; c++) {
                bool share = false;
                for (size_t i = 0; i < sizeof(shares) / sizeof(shares[0]); i++)
                        share |= shares[i] == c;
                ck_assert_msg(n[c] == (share ? 0u : 1u), "chunk %u requested %u times", c, n[c]);
        }
        ck_assert_uint_lt(inorder, 20);         /* 196 requests; sequential would be ~190 */
        ck_assert_uint_eq(member_stats(m)->retries, 0);
        member_on_verified(m, f.fh, 0);
        drain(m, &l, 0);
        ck_assert_int_eq(member_state(m), MEMBER_COMPLETE);
        uint8_t *out = calloc(1, f.size);
        apply_writes(&l, 0, out, &f);
        ck_assert_int_eq(memcmp(out, f.data, f.size), 0);
        free(out);
        free(n);
        end_member(m, &l, &f);
}
END_TEST

/* An empty file: no chunk to fetch, verify at once. */
START_TEST(empty_file)
{
        struct memfile f;
        struct log l = { 0 };
        struct member *m = start_member(&f, MEMBER_ORDER_RANDOM, 4, 0, 22);
        member_on_manifest_end(m, f.fh, 0);
        drain(m, &l, 0);
        ck_assert_int_eq(member_state(m), MEMBER_VERIFYING);
        ck_assert_uint_eq(count_type(&l, 0, MEMBER_ACT_SEND, P2S_REQ), 0);
        member_on_verified(m, f.fh, 0);
        drain(m, &l, 0);
        ck_assert_int_eq(member_state(m), MEMBER_COMPLETE);
        end_member(m, &l, &f);
}
END_TEST

/* ---- resuming ------------------------------------------------------------- */

/* Chunks resumed between the manifest parts and MANIFEST_END are held, never
 * requested, offered with HAVE (one per P2S_HAVE_MAX * 8 chunks with any
 * set) and counted; a share chunk is not taken twice; out of turn refused. */
START_TEST(resumed_chunks_not_requested)
{
        struct memfile f;
        struct log l = { 0 };
        /* 3 HAVE spans' worth of chunks: only the first and last have resumed ones */
        const uint32_t span = P2S_HAVE_MAX * 8;
        memfile_make(&f, (uint64_t)(2 * span + 10) * 256, 256, 3);
        struct member *m = mk(MEMBER_ORDER_SEQUENTIAL, 1024);
        ck_assert_int_eq(member_resume_chunk(m, 0), -EINVAL);  /* before START */
        send_start(m, &f, 0);
        send_share(m, &f, 1, 0);
        unsigned nparts = (f.count + P2S_MANIFEST_PART - 1) / P2S_MANIFEST_PART;
        for (unsigned p = 0; p < nparts; p++)
                send_part(m, &f, p, 0);
        for (uint32_t c = 0; c < 5; c++)
                ck_assert_int_eq(member_resume_chunk(m, c), 0);
        ck_assert_int_eq(member_resume_chunk(m, 2 * span + 3), 0);
        ck_assert_int_eq(member_resume_chunk(m, f.count), -EINVAL);
        /* 0, 2, 3, 4 and the last span's one: chunk 1 came as share */
        ck_assert_uint_eq(member_stats(m)->chunks_resumed, 5);
        ck_assert(!bitmap_test(member_resumed(m), 1));
        ck_assert(member_has_chunk(m, 1) && member_has_chunk(m, 4));
        size_t from = l.n;
        drain(m, &l, 0);
        from = l.n;
        member_on_manifest_end(m, f.fh, 0);
        ck_assert_int_eq(member_resume_chunk(m, 7), -EINVAL);  /* after the manifest */
        drain(m, &l, 0);
        ck_assert_uint_eq(count_type(&l, from, MEMBER_ACT_HAVE, -1), 2);
        const struct member_action *h = find_type(&l, from, MEMBER_ACT_HAVE);
        ck_assert_uint_eq(h->chunk, 0);
        ck_assert_uint_eq(h->count, span);
        for (uint32_t c = 0; c < 5; c++)
                ck_assert_uint_eq(count_req(&l, from, c), 0);
        ck_assert_uint_eq(count_req(&l, from, 2 * span + 3), 0);
        ck_assert_uint_eq(count_req(&l, from, 5), 1);
        ck_assert_uint_eq(member_have(m), 6);
        end_member(m, &l, &f);
}
END_TEST

/* Everything resumed: no request, straight to the whole-file check. */
START_TEST(resumed_everything_verifies)
{
        struct memfile f;
        struct log l = { 0 };
        memfile_make(&f, 10 * 1024 + 5, 1024, 4);
        struct member *m = mk(MEMBER_ORDER_RANDOM, 8);
        send_start(m, &f, 0);
        for (unsigned p = 0; p < 1; p++)
                send_part(m, &f, p, 0);
        for (uint32_t c = 0; c < f.count; c++)
                ck_assert_int_eq(member_resume_chunk(m, c), 0);
        member_on_manifest_end(m, f.fh, 0);
        drain(m, &l, 0);
        ck_assert_uint_eq(count_type(&l, 0, MEMBER_ACT_SEND, P2S_REQ), 0);
        ck_assert_uint_eq(count_type(&l, 0, MEMBER_ACT_HAVE, -1), 1);
        ck_assert_ptr_nonnull(find_type(&l, 0, MEMBER_ACT_VERIFY));
        ck_assert_int_eq(member_state(m), MEMBER_VERIFYING);
        end_member(m, &l, &f);
}
END_TEST

static Suite *member_suite(void)
{
        Suite *s = suite_create("member");
        TCase *tc;

        tc = tcase_create("start");
        tcase_add_test(tc, start_prepares);
        tcase_add_test(tc, start_inconsistent);
        tcase_add_test(tc, share_wrong_length);
        tcase_add_test(tc, share_digest_mismatch);
        suite_add_tcase(s, tc);

        tc = tcase_create("manifest");
        tcase_add_test(tc, manifest_out_of_order);
        tcase_add_test(tc, manifest_missing_part);
        tcase_add_test(tc, manifest_duplicated_part);
        tcase_add_test(tc, manifest_malformed_parts);
        tcase_add_test(tc, manifest_before_start);
        suite_add_tcase(s, tc);

        tc = tcase_create("fetch");
        tcase_add_test(tc, window_bound);
        tcase_add_test(tc, rto_backoff_then_silent);
        tcase_add_test(tc, silence_reset_by_any_message);
        tcase_add_test(tc, silence_while_gathering);
        tcase_add_test(tc, bad_data_rerequested);
        tcase_add_test(tc, queued_not_retried_overtaken_is);
        tcase_add_test(tc, overtaken_retried_after_rtt);
        tcase_add_test(tc, overtaken_ignored_when_reliable);
        tcase_add_test(tc, rtt_reported);
        tcase_add_test(tc, ping_answered_the_way_it_came);
        tcase_add_test(tc, query_answers);
        tcase_add_test(tc, random_order_each_once);
        tcase_add_test(tc, empty_file);
        tcase_add_test(tc, resumed_chunks_not_requested);
        tcase_add_test(tc, resumed_everything_verifies);
        suite_add_tcase(s, tc);

        tc = tcase_create("end");
        tcase_add_test(tc, done_before_complete);
        tcase_add_test(tc, done_while_verifying);
        tcase_add_test(tc, file_hash_mismatch);
        tcase_add_test(tc, complete_retry_ack_done);
        tcase_add_test(tc, complete_retry_from_sampled_rto);
        tcase_add_test(tc, oom_exit_comes_out);
        tcase_add_test(tc, oom_bye_and_exit_reserved);
        tcase_add_test(tc, oom_write_exits);
        tcase_add_test(tc, fatal_error_exits);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(member_suite);
