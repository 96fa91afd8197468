/* SPDX-License-Identifier: MIT */
/* p2sd --root DIR: files by relative name, two swarms at once, and the
 * names it must refuse (escapes by "..", absolute names, symlinks leaving
 * DIR, missing files, directories). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"
#include "runner.h"

/* Two files, one in a subdirectory, three members each, all six started
 * together: two swarms run side by side in one p2sd, both through a cache
 * too small for either file. */
START_TEST(two_swarms_at_once)
{
        h_make_file("root/a.bin", 1500 * 1000 + 1, 21);
        h_make_file("root/sub/b.bin", 1000 * 1000 + 2, 22);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--root", "root", "--min-clients", "3", "--gather-timeout", "10",
                                  "--cache", "64K", "--chunk-size", "8K", NULL);
        struct h_proc *ps[6];
        for (unsigned i = 0; i < 3; i++) {
                char out[32];
                snprintf(out, sizeof(out), "a-%u.bin", i);
                ps[2 * i] = h_fetch(port, "a.bin", out, NULL);
                snprintf(out, sizeof(out), "b-%u.bin", i);
                ps[2 * i + 1] = h_fetch(port, "sub/b.bin", out, NULL);
        }
        h_expect_exit(ps, 6, 60, 0);
        for (unsigned i = 0; i < 3; i++) {
                char out[32];
                snprintf(out, sizeof(out), "a-%u.bin", i);
                h_assert_fetched("root/a.bin", out);
                snprintf(out, sizeof(out), "b-%u.bin", i);
                h_assert_fetched("root/sub/b.bin", out);
        }
        h_stop_p2sd(d, 5);
        struct h_stats st;
        ck_assert_msg(h_swarm_stats(d, "a.bin", &st), "no completion for a.bin:\n%s", h_tail(d));
        ck_assert_msg(h_swarm_stats(d, "sub/b.bin", &st), "no completion for sub/b.bin:\n%s", h_tail(d));
        ck_assert_msg(h_log_count(d, "new swarm for") == 2, "%s", h_tail(d));
}
END_TEST

/* Names p2sd --root must refuse, with a file outside the root that the
 * escaping ones would reach. */
static const char *const refused[] = {
        "../etc/passwd",        /* climbs out */
        "/etc/passwd",          /* absolute */
        "../outside.bin",       /* climbs out to a file that exists */
        "sub/../../outside.bin",
        "escape",               /* symlink -> ../outside.bin */
        "abs",                  /* symlink -> /etc/passwd */
        "missing.bin",          /* not there */
        "sub",                  /* a directory */
};
#define NREFUSED (sizeof(refused) / sizeof(refused[0]))

static struct h_proc *refusal_setup(unsigned *port)
{
        h_make_file("root/a.bin", 100 * 1000 + 3, 23);
        h_make_file("root/sub/b.bin", 1000, 24);
        h_make_file("outside.bin", 5000, 25);
        ck_assert_int_eq(symlink("../outside.bin", "root/escape"), 0);
        ck_assert_int_eq(symlink("/etc/passwd", "root/abs"), 0);
        return h_p2sd(port, "--root", "root", "--min-clients", "1", NULL);
}

/* Every refused name: p2s-fetch exits 1 within its --timeout with an error
 * that says the server refused that name, and leaves no OUTPUT nor
 * OUTPUT.part behind (nothing was ever fetched). A served name still works
 * afterwards, so the refusals are not a broken server. */
START_TEST(refused_names)
{
        unsigned port;
        struct h_proc *d = refusal_setup(&port);
        struct h_proc *ps[NREFUSED];
        for (unsigned i = 0; i < NREFUSED; i++) {
                char out[32];
                snprintf(out, sizeof(out), "out-%u.bin", i);
                ps[i] = h_fetch(port, refused[i], out, "--timeout", "5", NULL);
        }
        h_expect_exit(ps, NREFUSED, 15, 4);
        for (unsigned i = 0; i < NREFUSED; i++) {
                char want[300];
                snprintf(want, sizeof(want), "refused '%s'", refused[i]);
                ck_assert_msg(h_log_has(ps[i], want), "asking for '%s': no refusal in:\n%s", refused[i],
                              h_tail(ps[i]));
        }
        for (unsigned i = 0; i < NREFUSED; i++) {
                char out[32];
                snprintf(out, sizeof(out), "out-%u.bin", i);
                ck_assert_msg(!h_exists(out), "'%s' was refused but %s exists", refused[i], out);
        }
        struct h_proc *ok = h_fetch(port, "sub/b.bin", "ok.bin", NULL);
        h_expect_exit(&ok, 1, 20, 0);
        h_assert_fetched("root/sub/b.bin", "ok.bin");
        h_stop_p2sd(d, 5);
        /* last, so the assertions above still run: a refused fetch must not
         * leave (or clobber) an OUTPUT.part either */
        for (unsigned i = 0; i < NREFUSED; i++) {
                char part[40];
                snprintf(part, sizeof(part), "out-%u.bin.part", i);
                ck_assert_msg(!h_exists(part), "'%s' was refused but %s was created", refused[i], part);
        }
}
END_TEST

/* The refusal says why in full. The second HELLO carries a valid cookie, so
 * the address is proven and the reason need not be cut to the size of the
 * request; the user must see "no such file", not "n" or "no su". */
START_TEST(refusal_reason_complete)
{
        unsigned port;
        struct h_proc *d = refusal_setup(&port);
        static const char *const names[] = { "missing.bin", "sub", "escape", "x" };
        struct h_proc *ps[4];
        for (unsigned i = 0; i < 4; i++) {
                char out[32];
                snprintf(out, sizeof(out), "out-%u.bin", i);
                ps[i] = h_fetch(port, names[i], out, "--timeout", "5", NULL);
        }
        h_expect_exit(ps, 4, 15, 4);
        h_stop_p2sd(d, 5);
        for (unsigned i = 0; i < 4; i++)
                ck_assert_msg(h_log_has(ps[i], "no such file"), "asking for '%s', the reason is cut short:\n%s",
                              names[i], h_tail(ps[i]));
}
END_TEST

static Suite *root_suite(void)
{
        Suite *s = suite_create("integration-root");
        TCase *tc = h_tcase("root", 60);
        tcase_add_test(tc, two_swarms_at_once);
        tcase_add_test(tc, refused_names);
        tcase_add_test(tc, refusal_reason_complete);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(root_suite);
