/* SPDX-License-Identifier: MIT */
/* The relay path: a cache too small to hold the file, so chunks travel
 * member -> p2sd -> member; directed and broadcast queries; the source gone
 * after distribution; a late joiner; the RTT log. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"
#include "runner.h"

/* A chunk that is not in the cache when the relay starts can only reach the
 * members that lack it through an upload (requests are only served once
 * distribution is over, and only uploads fill the cache after that). So with
 * a cache of c chunks, uploads >= chunks - c. */
static void assert_relayed(struct h_proc *d, const char *name, uint64_t size, unsigned cache_chunks)
{
        unsigned chunks = h_distributed_chunks(d, size);
        ck_assert_msg(chunks > cache_chunks, "no distribution line:\n%s", h_tail(d));
        struct h_stats st;
        ck_assert_msg(h_swarm_stats(d, name, &st), "no completion line:\n%s", h_tail(d));
        ck_assert_msg(st.uploads >= chunks - cache_chunks,
                      "%llu uploads for %u chunks and a cache of %u: the relay path was not taken\n%s", st.uploads,
                      chunks, cache_chunks, h_tail(d));
}

/* A cache of two 64K chunks, 5 members, ~6 MB: nearly everything goes
 * through peer uploads. */
START_TEST(cache_of_two_chunks)
{
        const uint64_t size = 6 * 1000 * 1000 + 12345;
        h_make_file("src.bin", size, 11);
        static const char *const dargs[] = { "--cache", "128K", "--chunk-size", "64K", NULL };
        struct h_proc *d = h_swarm("src.bin", 5, dargs, NULL, 60);
        assert_relayed(d, "src.bin", size, 2);
}
END_TEST

/* --query broadcast: every member is asked on a miss; the first verified
 * upload wins and later ones are dropped, copies still identical. */
START_TEST(broadcast_query)
{
        const uint64_t size = 3 * 1000 * 1000 + 77;
        h_make_file("src.bin", size, 12);
        static const char *const dargs[] = { "--query", "broadcast", "--cache", "64K", "--chunk-size", "16K", NULL };
        struct h_proc *d = h_swarm("src.bin", 5, dargs, NULL, 60);
        assert_relayed(d, "src.bin", size, 4);
}
END_TEST

/* p2sd reads the source once and closes it: after "source closed" the file
 * is truncated (which a still-open descriptor would see) and unlinked, and
 * the swarm completes from members and cache alone. A stalled member keeps
 * the swarm from finishing before the source is gone. */
START_TEST(source_deleted_after_distribution)
{
        const uint64_t size = 2 * 1000 * 1000 + 3;
        h_make_file("src.bin", size, 13);
        h_copy_file("src.bin", "ref.bin");
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "3", "--gather-timeout", "10", "--cache", "32K",
                                  "--chunk-size", "8K", "src.bin", NULL);
        struct h_proc *v = h_stalled_member(d, port, "src.bin", "out-2.bin", NULL);
        struct h_proc *ps[3];
        h_start_clients(ps, 2, port, "src.bin", "out", NULL);
        ps[2] = v;
        h_log_wait(d, "source closed", 15);
        ck_assert_int_eq(truncate("src.bin", 0), 0);
        ck_assert_int_eq(unlink("src.bin"), 0);
        h_signal(v, SIGCONT);
        h_expect_copies(ps, 3, "ref.bin", "out", 40);
        ck_assert_msg(!h_log_has(d, "cannot read the source"), "%s", h_tail(d));
        assert_relayed(d, "src.bin", size, 4);
        h_stop_p2sd(d, 5);
}
END_TEST

/* A member that joins while the swarm is relaying gets no share, only the
 * manifest, and fetches every chunk through the relay; it joins the running
 * swarm (one swarm in the log), not a new one. */
START_TEST(late_joiner)
{
        const uint64_t size = 1500 * 1000 + 11;
        h_make_file("src.bin", size, 14);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "3", "--gather-timeout", "10", "--cache", "16K",
                                  "--chunk-size", "4K", "src.bin", NULL);
        struct h_proc *ps[4];
        ps[0] = h_stalled_member(d, port, "src.bin", "out-0.bin", NULL);
        ps[1] = h_fetch(port, "src.bin", "out-1.bin", NULL);
        ps[2] = h_fetch(port, "src.bin", "out-2.bin", NULL);
        h_log_wait(d, "distributed", 15);
        ps[3] = h_fetch(port, "src.bin", "out-3.bin", NULL);
        h_log_wait(d, "(4 members)", 15);
        h_signal(ps[0], SIGCONT);
        h_expect_copies(ps, 4, "src.bin", "out", 40);
        ck_assert_msg(h_log_count(d, "new swarm for") == 1, "the late joiner got a swarm of its own:\n%s",
                      h_tail(d));
        ck_assert_msg(h_log_has(d, "starting with 3 members"), "%s", h_tail(d));
        /* the completion line of p2s-fetch: "...): S% share, C% cache, P% peers" */
        ck_assert_msg(h_log_has(ps[3], "): 0% share"), "the late joiner had a share:\n%s", h_tail(ps[3]));
        ck_assert_msg(!h_log_has(ps[1], "): 0% share"), "a first member had no share:\n%s", h_tail(ps[1]));
        h_stop_p2sd(d, 5);
}
END_TEST

/* One p2sd, two swarms of the same name one after the other, the file
 * rewritten in between (same size): the second swarm must deliver the new
 * bytes. The cache (large enough to keep the whole first file) must not
 * serve the first swarm's chunks to the second. */
START_TEST(successive_swarms_fresh_content)
{
        const uint64_t size = 1000 * 1000 + 21;
        h_make_file("src.bin", size, 16);
        h_copy_file("src.bin", "v1.bin");
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "2", "--gather-timeout", "10", "src.bin", NULL);
        struct h_proc *ps[2];
        h_start_clients(ps, 2, port, "src.bin", "a", NULL);
        h_expect_copies(ps, 2, "v1.bin", "a", 30);
        h_log_wait(d, "'src.bin' complete", 5);
        h_make_file("src.bin", size, 17);
        h_start_clients(ps, 2, port, "src.bin", "b", NULL);
        h_expect_copies(ps, 2, "src.bin", "b", 30);
        h_stop_p2sd(d, 5);
        ck_assert_msg(h_log_count(d, "new swarm for") == 2, "%s", h_tail(d));
}
END_TEST

/* Parses one decimal field; false unless it is digits only (so no sign). */
static bool parse_u64(const char *s, uint64_t *v)
{
        if (!*s || strspn(s, "0123456789") != strlen(s))
                return false;
        *v = strtoull(s, NULL, 10);
        return true;
}

/* --rtt-log: the header, then one row per relayed chunk (not the share),
 * each chunk once, source cache or peer, times non-negative and within the
 * client's run. The share is chunk i for member (i mod n), so the chunks a
 * member did NOT log form exactly one residue class mod n. */
START_TEST(rtt_log)
{
        enum { N = 3 };
        const uint64_t size = 600 * 1000 + 1;
        const unsigned chunks = (unsigned)((size + 4095) / 4096);
        h_make_file("src.bin", size, 15);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "3", "--gather-timeout", "10", "--cache", "16K",
                                  "--chunk-size", "4K", "src.bin", NULL);
        struct h_proc *ps[N];
        char csv[N][32];
        for (unsigned i = 0; i < N; i++) {
                char out[32];
                snprintf(out, sizeof(out), "out-%u.bin", i);
                snprintf(csv[i], sizeof(csv[i]), "rtt-%u.csv", i);
                ps[i] = h_fetch(port, "src.bin", out, "--rtt-log", csv[i], NULL);
        }
        h_expect_copies(ps, N, "src.bin", "out", 40);
        h_stop_p2sd(d, 5);
        ck_assert_uint_eq(h_distributed_chunks(d, size), chunks);

        unsigned peer_rows = 0, total_rows = 0;
        bool residue_seen[N] = { false };
        for (unsigned i = 0; i < N; i++) {
                char *text = h_slurp(csv[i], NULL);
                ck_assert_msg(text, "%s was not written", csv[i]);
                const char *hdr = "chunk,request_time_us,rtt_us,source\n";
                ck_assert_msg(!strncmp(text, hdr, strlen(hdr)), "%s: bad header: %.60s", csv[i], text);
                bool *seen = calloc(chunks, 1);
                ck_assert(seen);
                uint64_t run_us = (uint64_t)((ps[i]->t_end - ps[i]->t_start) * 1e6) + 1;
                unsigned rows = 0, line = 1;
                char *save = NULL;
                for (char *l = strtok_r(text + strlen(hdr), "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                        line++;
                        char *f[5] = { 0 };
                        char *fs = NULL;
                        int nf = 0;
                        for (char *t = strtok_r(l, ",", &fs); t && nf < 5; t = strtok_r(NULL, ",", &fs))
                                f[nf++] = t;
                        ck_assert_msg(nf == 4, "%s:%u: %d fields", csv[i], line, nf);
                        uint64_t c, req, rtt;
                        ck_assert_msg(parse_u64(f[0], &c) && c < chunks, "%s:%u: bad chunk '%s'", csv[i], line, f[0]);
                        ck_assert_msg(parse_u64(f[1], &req) && req <= run_us, "%s:%u: bad request time '%s'",
                                      csv[i], line, f[1]);
                        ck_assert_msg(parse_u64(f[2], &rtt) && rtt <= run_us, "%s:%u: bad rtt '%s'", csv[i], line,
                                      f[2]);
                        ck_assert_msg(!strcmp(f[3], "cache") || !strcmp(f[3], "peer"), "%s:%u: bad source '%s'",
                                      csv[i], line, f[3]);
                        ck_assert_msg(!seen[c], "%s:%u: chunk %" PRIu64 " logged twice", csv[i], line, c);
                        seen[c] = true;
                        rows++;
                        peer_rows += !strcmp(f[3], "peer");
                }
                /* what it did not log is its share: one residue class mod N */
                int residue = -1;
                for (unsigned c = 0; c < chunks; c++) {
                        if (seen[c])
                                continue;
                        if (residue < 0)
                                residue = (int)(c % N);
                        ck_assert_msg(c % N == (unsigned)residue,
                                      "%s: chunks %d and %u both missing, not one share (rows %u of %u)", csv[i],
                                      residue, c, rows, chunks);
                }
                ck_assert_msg(residue >= 0, "%s: every chunk relayed, no share", csv[i]);
                ck_assert_msg(!residue_seen[residue], "two members logged the same share");
                residue_seen[residue] = true;
                unsigned share = (chunks - (unsigned)residue + N - 1) / N;
                ck_assert_uint_eq(rows, chunks - share);
                total_rows += rows;
                free(seen);
                free(text);
        }
        ck_assert_uint_eq(total_rows, (N - 1) * chunks);
        ck_assert_msg(peer_rows > 0, "a 4-chunk cache served everything: no peer row");
}
END_TEST

static Suite *relay_suite(void)
{
        Suite *s = suite_create("integration-relay");
        TCase *tc = h_tcase("relay", 90);
        tcase_add_test(tc, cache_of_two_chunks);
        tcase_add_test(tc, broadcast_query);
        tcase_add_test(tc, rtt_log);
        tcase_add_test(tc, successive_swarms_fresh_content);
        suite_add_tcase(s, tc);
        tc = h_tcase("mid-swarm", 90);
        tcase_add_test(tc, source_deleted_after_distribution);
        tcase_add_test(tc, late_joiner);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(relay_suite);
