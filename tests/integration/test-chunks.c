/* SPDX-License-Identifier: MIT */
/* Many chunks, small chunks, small stacks. p2sd once recursed once per chunk
 * during distribution (a send that completed at once called straight back
 * into the source pump) and died with SIGSEGV on 32 MiB in 1K chunks, 8 MiB
 * in 512-byte chunks, or 48 MiB in the default 64K chunks under a 256 KiB
 * stack. Distribution is now deferred work, a batch per loop turn: these
 * swarms must complete whatever the chunk count. meson runs this suite (and
 * the rest of the integration suite) a second time under `ulimit -s 256`. */
#include <check.h>
#include <stdio.h>
#include <sys/resource.h>
#include "harness.h"
#include "runner.h"

#define MiB (1024u * 1024u)

/* One member, --min-clients 1: distribution runs with nothing else to do,
 * the case where every send completes at once. */
START_TEST(one_member_512_byte_chunks)
{
        h_make_file("src.bin", 16 * MiB + 77, 21);
        static const char *const dargs[] = { "--chunk-size", "512", NULL };
        struct h_proc *d = h_swarm("src.bin", 1, dargs, NULL, 120);
        ck_assert_uint_eq(h_distributed_chunks(d, 16 * MiB + 77), 16 * 2048 + 1);
}
END_TEST

START_TEST(one_member_1k_chunks_32m)
{
        h_make_file("src.bin", 32 * MiB, 22);
        static const char *const dargs[] = { "--chunk-size", "1K", NULL };
        struct h_proc *d = h_swarm("src.bin", 1, dargs, NULL, 120);
        ck_assert_uint_eq(h_distributed_chunks(d, 32 * MiB), 32 * 1024);
}
END_TEST

/* Several members, so chunks are relayed as well as distributed. */
START_TEST(three_members_1k_chunks)
{
        h_make_file("src.bin", 16 * MiB + 1, 23);
        static const char *const dargs[] = { "--chunk-size", "1K", "--cache", "256K", NULL };
        struct h_proc *d = h_swarm("src.bin", 3, dargs, NULL, 120);
        struct h_stats st;
        ck_assert_msg(h_swarm_stats(d, "src.bin", &st), "no completion line:\n%s", h_tail(d));
        /* each member lacks two thirds of 16385 chunks */
        ck_assert_msg(st.requests >= 3 * 10000, "only %llu requests", st.requests);
}
END_TEST

/* The other transport: chunk data in UDP fragments, 1K chunks. */
START_TEST(control_tcp_1k_chunks)
{
        h_make_file("src.bin", 16 * MiB + 3, 24);
        static const char *const dargs[] = { "--chunk-size", "1K", "--control", "tcp", NULL };
        h_swarm("src.bin", 2, dargs, NULL, 120);
}
END_TEST

/* 48 MiB in the default chunks: the size that crashed under a 256 KiB stack. */
START_TEST(default_chunks_48m)
{
        h_make_file("src.bin", 48 * MiB + 5, 25);
        h_swarm("src.bin", 2, NULL, NULL, 120);
}
END_TEST

/* The largest chunks: more than one turn's reading budget (4 MiB) each.
 * The pump must still read one a turn, not defer itself forever. */
START_TEST(largest_chunks_16m)
{
        h_make_file("src.bin", 40 * MiB + 9, 27);
        static const char *const dargs[] = { "--chunk-size", "16M", "--cache", "64M", NULL };
        struct h_proc *d = h_swarm("src.bin", 2, dargs, NULL, 120);
        ck_assert_uint_eq(h_distributed_chunks(d, 40 * MiB + 9), 3);
}
END_TEST

START_TEST(eight_mib_chunks_control_tcp)
{
        h_make_file("src.bin", 20 * MiB + 1, 28);
        static const char *const dargs[] = { "--chunk-size", "8M", "--control", "tcp", "--max-datagram", "65000", NULL };
        h_swarm("src.bin", 2, dargs, NULL, 120);
}
END_TEST

/* The original assignment's workload: 100 MB in 1 KB chunks, 10 clients. */
START_TEST(course_workload)
{
        h_make_file("src.bin", 100 * 1000 * 1000, 26);
        static const char *const dargs[] = { "--chunk-size", "1K", NULL };
        double t0 = h_now();
        struct h_proc *d = h_swarm("src.bin", 10, dargs, NULL, 240);
        ck_assert_uint_eq(h_distributed_chunks(d, 100 * 1000 * 1000), 97657);
        struct rlimit rl;
        getrlimit(RLIMIT_STACK, &rl);
        fprintf(stderr, "# course workload: 100 MB in 1K chunks to 10 clients in %.2f s (stack limit %llu KiB)\n",
                h_now() - t0, (unsigned long long)(rl.rlim_cur == RLIM_INFINITY ? 0 : rl.rlim_cur / 1024));
}
END_TEST

static Suite *chunks_suite(void)
{
        Suite *s = suite_create("integration-chunks");
        TCase *tc = h_tcase("many-chunks", 150);
        tcase_add_test(tc, one_member_512_byte_chunks);
        tcase_add_test(tc, one_member_1k_chunks_32m);
        tcase_add_test(tc, three_members_1k_chunks);
        tcase_add_test(tc, control_tcp_1k_chunks);
        tcase_add_test(tc, default_chunks_48m);
        tcase_add_test(tc, largest_chunks_16m);
        tcase_add_test(tc, eight_mib_chunks_control_tcp);
        suite_add_tcase(s, tc);
        tc = h_tcase("course", 300);
        tcase_add_test(tc, course_workload);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(chunks_suite);
