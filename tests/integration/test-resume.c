/* SPDX-License-Identifier: MIT */
/* An interrupted fetch resumes: SIGINT, kill -9 of p2s-fetch, kill -9 of
 * p2sd, then the same command again continues from OUTPUT.part and its
 * state file, fetching only what is missing; chunks the state lists but
 * the disk lost are fetched again; a changed source and --no-resume start
 * over.
 *
 * Mid-way is an event, not a time: the first run's p2sd has two members,
 * one of them stopped (SIGSTOP) and holding half the share, with no cache;
 * ours gets its half and then waits on the stopped one, and the test acts
 * once ours logged that it saved its state. The second run joins a swarm
 * whose only other member holds the whole share and is stopped until ours
 * has read its file back: ours joins after the distribution, so it gets no
 * share and must request every chunk it does not bring along. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"
#include "runner.h"

#define SIZE   (1000u * 1000u + 9u)
#define CHUNKS 977u             /* SIZE in 1K chunks */
#define STATE  "out.bin.part.p2s"

struct first {
        struct h_proc *d, *v, *f;
        unsigned saved;         /* chunks in the last state f said it saved */
};

static unsigned last_number_after(struct h_proc *p, const char *needle)
{
        const char *log = h_log(p), *at = NULL, *s;
        for (s = strstr(log, needle); s; s = strstr(s + 1, needle))
                at = s;
        ck_assert_msg(at, "%s: no '%s' in:\n%s", p->name, needle, h_tail(p));
        return (unsigned)strtoul(at + strlen(needle), NULL, 10);
}

/* "--log-level debug", then fargs (NULL, or at most 5 and NULL-terminated):
 * both runs log what they saved and resumed. */
static void debug_args(const char *args[8], const char *const *fargs)
{
        int i = 0;
        args[0] = "--log-level";
        args[1] = "debug";
        for (; fargs && fargs[i] && i < 5; i++)
                args[2 + i] = fargs[i];
        args[2 + i] = NULL;
}

static void first_run(struct first *r, const char *const *fargs)
{
        unsigned port;
        r->d = h_p2sd(&port, "--min-clients", "2", "--gather-timeout", "10", "--cache", "1", "--chunk-size", "1K",
                      "src.bin", NULL);
        r->v = h_stalled_member(r->d, port, "src.bin", "victim.bin", NULL);
        const char *args[8];
        debug_args(args, fargs);
        r->f = h_fetch_v(port, "src.bin", "out.bin", args);
        h_log_wait(r->f, "saved the state of out.bin.part: ", 20);
        r->saved = last_number_after(r->f, "saved the state of out.bin.part: ");
        ck_assert_msg(r->saved > 0 && r->saved < CHUNKS, "saved %u chunks mid-way", r->saved);
}

/* Stops the first run's p2s-fetch with sig; it must exit with code. */
static void first_stop(struct first *r, int sig, int code)
{
        h_signal(r->f, sig);
        ck_assert_int_eq(h_wait(r->f, 10), code);
}

/* What the first run leaves for the rerun: the partial copy and its state. */
static void assert_partial_left(void)
{
        ck_assert_msg(h_exists("out.bin.part"), "no out.bin.part left");
        ck_assert_msg(h_exists(STATE), "no " STATE " left");
}

static void first_end(struct first *r)
{
        r->v = h_proc_free(r->v);
        r->d = h_proc_free(r->d);
}

struct second {
        unsigned resumed, requests, share;
        struct h_proc *d, *f;
};

/* The same command again, into a swarm it joins after the distribution;
 * the seed runs again once f logged ready (its verdict on OUTPUT.part). */
static void second_run(struct second *r, const char *const *fargs, const char *ready)
{
        unsigned port;
        /* started by the gather timeout, long after the seed was stopped */
        r->d = h_p2sd(&port, "--min-clients", "0", "--gather-timeout", "1", "--cache", "1", "--chunk-size", "1K",
                      "src.bin", NULL);
        struct h_proc *seed = h_stalled_member(r->d, port, "src.bin", "seed.bin", NULL);
        h_log_wait(r->d, "source closed", 15);
        const char *args[8];
        debug_args(args, fargs);
        r->f = h_fetch_v(port, "src.bin", "out.bin", args);
        /* it joined and judged its OUTPUT.part: now it may be served */
        h_log_wait(r->f, ready, 15);
        h_signal(seed, SIGCONT);
        ck_assert_msg(h_wait(r->f, 60) == 0, "second run failed: %s", h_tail(r->f));
        ck_assert_int_eq(h_wait(seed, 30), 0);
        h_assert_fetched("src.bin", "out.bin");
        ck_assert_msg(!h_exists(STATE), "the state file outlived the copy");
        const char *st = strstr(h_log(r->f), "chunks: ");
        ck_assert_msg(st, "no stats line: %s", h_tail(r->f));
        unsigned cache, peer;
        ck_assert_int_eq(sscanf(st, "chunks: %u share, %u cache, %u peer, %u resumed; %u requests", &r->share, &cache,
                                &peer, &r->resumed, &r->requests), 5);
        ck_assert_uint_eq(r->share, 0);
        /* every chunk it lacked, requested once; none of those it brought */
        ck_assert_uint_eq(r->resumed + r->requests, CHUNKS);
        h_stop_p2sd(r->d, 10);
        struct h_stats ss;
        ck_assert_msg(h_swarm_stats(r->d, "src.bin", &ss), "no completion line: %s", h_tail(r->d));
        ck_assert_msg(ss.requests < CHUNKS || r->resumed == 0, "p2sd saw %llu requests for %u resumed chunks",
                      ss.requests, r->resumed);
}

/* The rerun resumes: it requests fewer chunks than the file has (the
 * caller checks how many it resumed). */
static void second_resumes(struct second *r)
{
        second_run(r, NULL, "resuming out.bin.part: ");
        ck_assert_uint_lt(r->requests, CHUNKS);
}

/* The rerun starts over: it resumes nothing and requests every chunk. */
static void second_starts_over(struct second *r, const char *const *fargs, const char *ready)
{
        second_run(r, fargs, ready);
        ck_assert_uint_eq(r->resumed, 0);
        ck_assert_uint_eq(r->requests, CHUNKS);
}

/* Ctrl-C mid-way: the state is saved on the way out, the rerun fetches
 * only the rest. */
START_TEST(sigint_then_resume)
{
        h_make_file("src.bin", SIZE, 41);
        struct first a;
        first_run(&a, NULL);
        first_stop(&a, SIGINT, 1);
        ck_assert_msg(h_log_has(a.f, "interrupted"), "%s", h_tail(a.f));
        assert_partial_left();
        unsigned kept = last_number_after(a.f, "kept out.bin.part with ");
        ck_assert_uint_ge(kept, a.saved);
        first_end(&a);

        struct second b;
        second_resumes(&b);
        /* everything it said it kept, and re-verified */
        ck_assert_uint_eq(b.resumed, kept);
}
END_TEST

/* Zeroes the first n chunks the state file lists in OUTPUT.part (state
 * layout: resume.h, the bitmap from byte 56): what a machine crash leaves
 * when the periodic saves, which do not flush the copy, ran ahead of the
 * kernel's writeback. Returns how many it damaged. */
static unsigned damage_listed(unsigned n)
{
        uint8_t map[(CHUNKS + 7) / 8], zero[1024] = { 0 };
        int st = open(STATE, O_RDONLY | O_CLOEXEC), part = open("out.bin.part", O_WRONLY | O_CLOEXEC);
        ck_assert_msg(st >= 0 && part >= 0, "cannot open the state or OUTPUT.part");
        ck_assert_int_eq(pread(st, map, sizeof(map), 56), (ssize_t)sizeof(map));
        unsigned done = 0;
        for (unsigned i = 0; i < CHUNKS && done < n; i++) {
                if (!(map[i / 8] & (1u << (i % 8))))
                        continue;
                /* the last chunk is short: 1K of zeroes still covers it */
                size_t len = i == CHUNKS - 1 ? SIZE - (size_t)i * 1024 : 1024;
                ck_assert_int_eq(pwrite(part, zero, len, (off_t)i * 1024), (ssize_t)len);
                done++;
        }
        close(st);
        close(part);
        return done;
}

/* The state lists chunks whose bytes never reached the disk: the rerun
 * re-verifies, fetches those again and trusts the rest. */
START_TEST(state_ahead_of_the_disk)
{
        h_make_file("src.bin", SIZE, 43);
        struct first a;
        first_run(&a, NULL);
        first_stop(&a, SIGINT, 1);
        unsigned kept = last_number_after(a.f, "kept out.bin.part with ");
        first_end(&a);
        unsigned bad = damage_listed(3);
        ck_assert_uint_eq(bad, 3);

        struct second b;
        second_run(&b, NULL, "resuming out.bin.part: ");
        ck_assert_msg(h_log_has(b.f, "3 chunks listed in out.bin.part.p2s did not match: fetched again"), "%s",
                      h_tail(b.f));
        ck_assert_uint_eq(b.resumed, kept - bad);
}
END_TEST

/* kill -9 of p2s-fetch: no chance to save at exit; the last periodic save
 * is what the rerun starts from. */
START_TEST(sigkill_fetch_then_resume)
{
        h_make_file("src.bin", SIZE, 42);
        struct first a;
        first_run(&a, NULL);
        first_stop(&a, SIGKILL, 128 + SIGKILL);
        assert_partial_left();
        first_end(&a);

        struct second b;
        second_resumes(&b);
        ck_assert_uint_ge(b.resumed, a.saved);
}
END_TEST

/* kill -9 of p2sd: the members see the connection close at once and say
 * so, keeping their partial files; p2sd restarted, the rerun resumes. */
START_TEST(sigkill_p2sd_then_resume)
{
        h_make_file("src.bin", SIZE, 43);
        struct first a;
        first_run(&a, NULL);
        h_signal(a.d, SIGKILL);
        ck_assert_int_eq(h_wait(a.d, 5), 128 + SIGKILL);
        double killed = h_now();
        /* p2s-fetch(1): the connection closing is noticed at once; 5 s is slack */
        ck_assert_int_eq(h_wait(a.f, 5), 6);
        ck_assert_msg(a.f->t_end - killed < 5, "took %.1f s", a.f->t_end - killed);
        ck_assert_msg(h_log_has(a.f, "lost the connection to the server"), "%s", h_tail(a.f));
        /* the stopped one too, once it runs again */
        h_signal(a.v, SIGCONT);
        ck_assert_int_eq(h_wait(a.v, 5), 6);
        ck_assert_msg(h_log_has(a.v, "lost the connection to the server"), "%s", h_tail(a.v));
        assert_partial_left();
        unsigned kept = last_number_after(a.f, "kept out.bin.part with ");
        first_end(&a);

        struct second b;
        second_resumes(&b);
        ck_assert_uint_eq(b.resumed, kept);
}
END_TEST

/* The source changed between the runs (same size): one line says so, and
 * the copy is the new file's. */
START_TEST(changed_source_starts_over)
{
        h_make_file("src.bin", SIZE, 44);
        struct first a;
        first_run(&a, NULL);
        first_stop(&a, SIGINT, 1);
        first_end(&a);
        h_make_file("src.bin", SIZE, 45);

        struct second b;
        second_starts_over(&b, NULL, "starting over");
        ck_assert_msg(h_log_count(b.f, "out.bin.part is from another version of src.bin: starting over") == 1, "%s",
                      h_log(b.f));
}
END_TEST

START_TEST(no_resume_starts_over)
{
        h_make_file("src.bin", SIZE, 46);
        struct first a;
        first_run(&a, NULL);
        first_stop(&a, SIGTERM, 1);
        ck_assert(h_exists(STATE));
        first_end(&a);

        static const char *const again[] = { "--no-resume", NULL };
        struct second b;
        second_starts_over(&b, again, "--no-resume: starting");
        ck_assert_msg(h_log_has(b.f, "--no-resume: starting out.bin.part over"), "%s", h_tail(b.f));
}
END_TEST

static Suite *resume_suite(void)
{
        Suite *s = suite_create("integration-resume");
        TCase *tc = h_tcase("resume", 120);
        tcase_add_test(tc, sigint_then_resume);
        tcase_add_test(tc, state_ahead_of_the_disk);
        tcase_add_test(tc, sigkill_fetch_then_resume);
        tcase_add_test(tc, sigkill_p2sd_then_resume);
        tcase_add_test(tc, changed_source_starts_over);
        tcase_add_test(tc, no_resume_starts_over);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(resume_suite);
