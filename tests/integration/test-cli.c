/* SPDX-License-Identifier: MIT */
/* p2s-fetch as a user drives it, with real processes on 127.0.0.1: the
 * outputs it refuses (standard output, a device, a FIFO, a socket, a name
 * saved twice), -o DIR, the lock on OUTPUT.part, several files in one
 * command, p2s:// URLs, -R and --preserve, --sha256, and every exit status
 * of p2s-fetch(1) one by one. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "harness.h"
#include "runner.h"



static void expect(struct h_proc *p, int code, const char *needle)
{
        ck_assert_msg(p->code == code, "exit %d, expected %d:\n%s", p->code, code, h_tail(p));
        ck_assert_msg(h_log_has(p, needle), "no '%s' in:\n%s", needle, h_tail(p));
}

/* ---- outputs --------------------------------------------------------------- */

START_TEST(refused_outputs)
{
        h_make_file("src.bin", 5000, 1);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, h_path("src.bin"), "--min-clients", "1", NULL);
        const char *hp = h_hostport(port);
        /* a character device: never renamed over */
        struct h_proc *p = h_fetch_args((const char *const[]){ hp, "src.bin", "-o", "/dev/null", NULL }, 10);
        expect(p, 2, "/dev/null is a character device");
        struct stat st;
        ck_assert(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
        /* a FIFO */
        ck_assert(mkfifo(h_path("fifo"), 0600) == 0);
        p = h_fetch_args((const char *const[]){ hp, "src.bin", "-o", h_path("fifo"), NULL }, 10);
        expect(p, 2, "is a FIFO");
        ck_assert(stat(h_path("fifo"), &st) == 0 && S_ISFIFO(st.st_mode));
        ck_assert(!h_exists(h_path("fifo.part")));
        /* a socket */
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h_path("sock"));
        ck_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        p = h_fetch_args((const char *const[]){ hp, "src.bin", "-o", h_path("sock"), NULL }, 10);
        expect(p, 2, "is a socket");
        close(fd);
        /* standard output */
        p = h_fetch_args((const char *const[]){ hp, "src.bin", "-o", "-", NULL }, 10);
        expect(p, 2, "-o -: writing to standard output is not supported");
        ck_assert(!h_exists("-"));
        /* empty */
        p = h_fetch_args((const char *const[]){ hp, "src.bin", "-o", "", NULL }, 10);
        expect(p, 2, "--output '': must not be empty");
        /* several files into one file name */
        p = h_fetch_args((const char *const[]){ hp, "src.bin", "other", "-o", h_path("one.bin"), NULL }, 10);
        expect(p, 2, "several files need a directory");
        /* two names with one base name */
        p = h_fetch_args((const char *const[]){ hp, "a/x", "b/x", "-o", h_path("d/"), NULL }, 10);
        expect(p, 2, "would both be saved as");
        /* nothing of these reached the server */
        ck_assert_msg(!h_log_has(d, "new swarm for"), "%s", h_tail(d));
        h_stop_p2sd(d, 5);
}
END_TEST

START_TEST(output_directory)
{
        h_make_file("src.bin", 70000, 2);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, h_path("src.bin"), "--min-clients", "1", NULL);
        ck_assert(mkdir(h_path("existing"), 0755) == 0);
        struct h_proc *p = h_fetch_args((const char *const[]){ "--quiet", h_hostport(port), "src.bin", "-o",
                                                            h_path("existing"), NULL }, 30);
        ck_assert_msg(p->code == 0, "%s", h_tail(p));
        h_assert_fetched(h_path("src.bin"), h_path("existing/src.bin"));
        /* a name ending in '/' is created */
        p = h_fetch_args((const char *const[]){ "--quiet", h_hostport(port), "src.bin", "-o", h_path("new/"), NULL }, 30);
        ck_assert_msg(p->code == 0, "%s", h_tail(p));
        h_assert_fetched(h_path("src.bin"), h_path("new/src.bin"));
        h_stop_p2sd(d, 5);
}
END_TEST

/* The second run for one output refuses at once while the first waits
 * for its swarm; the first then completes alone. */
START_TEST(output_locked)
{
        h_make_file("src.bin", 200000, 3);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, h_path("src.bin"), "--min-clients", "2", "--gather-timeout", "30", NULL);
        struct h_member a;
        h_member_start(&a, port, "src.bin", "same.bin", NULL);
        ck_assert(h_member_joined(&a, 10));
        struct h_proc *b = h_fetch_args((const char *const[]){ "--quiet", h_hostport(port), "src.bin", "-o",
                                                            h_path("same.bin"), NULL }, 10);
        expect(b, 7, "same.bin.part is in use by another p2s-fetch");
        ck_assert_msg(b->t_end - b->t_start < 2.0, "refused after %.1f s", b->t_end - b->t_start);
        /* a third, elsewhere, starts the swarm; both copies are right */
        struct h_proc *c = h_fetch(port, "src.bin", "other.bin", NULL);
        ck_assert_int_eq(h_wait(a.p, 30), 0);
        ck_assert_int_eq(h_wait(c, 30), 0);
        h_assert_fetched(h_path("src.bin"), a.out);
        h_assert_fetched(h_path("src.bin"), h_path("other.bin"));
        h_member_free(&a);
        h_stop_p2sd(d, 5);
}
END_TEST

START_TEST(remote_time_and_mode)
{
        h_make_file("src.bin", 30000, 4);
        ck_assert(chmod(h_path("src.bin"), 0640) == 0);
        struct timespec ts[2] = { { .tv_sec = 1577934245, .tv_nsec = 123456789 },
                                  { .tv_sec = 1577934245, .tv_nsec = 123456789 } };
        ck_assert(utimensat(AT_FDCWD, h_path("src.bin"), ts, 0) == 0);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, h_path("src.bin"), "--min-clients", "1", NULL);
        struct h_proc *p = h_fetch(port, "src.bin", "t.bin", "-R", NULL);
        ck_assert_int_eq(h_wait(p, 30), 0);
        struct stat st;
        ck_assert(stat(h_path("t.bin"), &st) == 0);
        ck_assert_int_eq(st.st_mtim.tv_sec, 1577934245);
        ck_assert_int_eq(st.st_mtim.tv_nsec, 123456789);
        ck_assert_uint_eq(st.st_mode & 0777, 0644);    /* -R alone: the mode stays ours */
        p = h_fetch(port, "src.bin", "m.bin", "--preserve", NULL);
        ck_assert_int_eq(h_wait(p, 30), 0);
        ck_assert(stat(h_path("m.bin"), &st) == 0);
        ck_assert_uint_eq(st.st_mode & 0777, 0640);
        ck_assert_int_eq(st.st_mtim.tv_sec, 1577934245);
        h_stop_p2sd(d, 5);
}
END_TEST

/* ---- several files, URLs, pins --------------------------------------------- */

START_TEST(several_files)
{
        ck_assert(mkdir(h_path("root"), 0755) == 0 && mkdir(h_path("root/sub"), 0755) == 0);
        h_make_file("root/a.bin", 300000, 5);
        h_make_file("root/sub/b.bin", 70001, 6);
        h_make_file("root/c.bin", 1, 7);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--root", h_path("root"), "--min-clients", "1", NULL);
        struct h_proc *p = h_fetch_args((const char *const[]){ "--parallel", "2", h_hostport(port), "a.bin", "sub/b.bin",
                                                            "c.bin", "-o", h_path("out/"), NULL }, 60);
        ck_assert_msg(p->code == 0, "%s", h_tail(p));
        h_assert_fetched(h_path("root/a.bin"), h_path("out/a.bin"));
        h_assert_fetched(h_path("root/sub/b.bin"), h_path("out/b.bin"));
        h_assert_fetched(h_path("root/c.bin"), h_path("out/c.bin"));
        ck_assert_msg(h_log_has(p, "ok     sub/b.bin -> "), "%s", h_tail(p));
        ck_assert_msg(h_log_has(p, "3 of 3 files fetched"), "%s", h_tail(p));
        /* one missing: the others still fetched, exit 4, its summary line */
        p = h_fetch_args((const char *const[]){ h_hostport(port), "a.bin", "nope.bin", "-o", h_path("out2/"), NULL }, 60);
        expect(p, 4, "FAILED nope.bin -> ");
        ck_assert_msg(h_log_has(p, "1 of 2 files fetched"), "%s", h_tail(p));
        h_assert_fetched(h_path("root/a.bin"), h_path("out2/a.bin"));
        ck_assert(!h_exists(h_path("out2/nope.bin.part")));
        /* URLs, one with IPv4 and a port */
        char url[128];
        snprintf(url, sizeof(url), "p2s://127.0.0.1:%u/sub/b.bin", port);
        p = h_fetch_args((const char *const[]){ "--quiet", url, "-o", h_path("u.bin"), NULL }, 30);
        ck_assert_msg(p->code == 0, "%s", h_tail(p));
        h_assert_fetched(h_path("root/sub/b.bin"), h_path("u.bin"));
        h_stop_p2sd(d, 5);
}
END_TEST

START_TEST(pinned_hash)
{
        h_make_file("src.bin", 150000, 8);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, h_path("src.bin"), "--min-clients", "1", NULL);
        const char *const sum[] = { "sha256sum", h_path("src.bin"), NULL };
        char *cmd;
        ck_assert(asprintf(&cmd, "sha256sum '%s' > '%s'", h_path("src.bin"), h_path("sum")) > 0);
        ck_assert(system(cmd) == 0);
        free(cmd);
        (void)sum;
        char *text = h_slurp(h_path("sum"), NULL), hex[65];
        memcpy(hex, text, 64);
        hex[64] = 0;
        free(text);
        struct h_proc *p = h_fetch(port, "src.bin", "good.bin", "--sha256", hex, NULL);
        ck_assert_msg(h_wait(p, 30) == 0, "%s", h_tail(p));
        h_assert_fetched(h_path("src.bin"), h_path("good.bin"));
        hex[0] = hex[0] == '0' ? '1' : '0';
        p = h_fetch(port, "src.bin", "bad.bin", "--sha256", hex, NULL);
        h_wait(p, 30);
        expect(p, 8, "not the pinned --sha256: refused");
        ck_assert(!h_exists(h_path("bad.bin")));
        ck_assert(!h_exists(h_path("bad.bin.part")));
        ck_assert(!h_exists(h_path("bad.bin.part.p2s")));
        h_stop_p2sd(d, 5);
}
END_TEST

/* ---- exit statuses ----------------------------------------------------------- */

START_TEST(exit_codes)
{
        h_make_file("src.bin", 100000, 9);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, h_path("src.bin"), "--min-clients", "1", NULL);
        /* 2: usage */
        struct h_proc *p = h_fetch_args((const char *const[]){ "--window", "0", "h", "n", NULL }, 10);
        expect(p, 2, "p2s-fetch: --window 0: must be between 1 and 1024 (try 'p2s-fetch --help')");
        p = h_fetch_args((const char *const[]){ "::1:7720", "n", NULL }, 10);
        expect(p, 2, "write [::1]:7720 for a port");
        /* 3: nothing listens: refused at once, not after --timeout */
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sa);
        ck_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        ck_assert(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
        close(fd);
        p = h_fetch_args((const char *const[]){ "--timeout", "20", h_hostport(ntohs(sa.sin_port)), "x", NULL }, 10);
        expect(p, 3, "connection refused by 127.0.0.1");
        ck_assert_msg(p->t_end - p->t_start < 3.0, "took %.1f s", p->t_end - p->t_start);
        p = h_fetch_args((const char *const[]){ "no-such-host.invalid", "x", NULL }, 30);
        expect(p, 3, "cannot resolve 'no-such-host.invalid'");
        /* 4: not served */
        p = h_fetch_args((const char *const[]){ h_hostport(port), "missing.bin", NULL }, 10);
        expect(p, 4, "no such file is served");
        ck_assert(!h_exists("missing.bin.part"));
        /* 7: the output cannot be written */
        ck_assert(mkdir(h_path("ro"), 0500) == 0);
        if (geteuid() != 0) {
                p = h_fetch_args((const char *const[]){ h_hostport(port), "src.bin", "-o", h_path("ro/x"), NULL }, 10);
                expect(p, 7, "cannot write");
        }
        p = h_fetch_args((const char *const[]){ h_hostport(port), "src.bin", "-o", h_path("nodir/sub/x"), NULL }, 10);
        expect(p, 7, "No such file or directory");
        /* 0 */
        p = h_fetch(port, "src.bin", "ok.bin", NULL);
        ck_assert_int_eq(h_wait(p, 30), 0);
        /* 6: the server goes away mid-gather */
        struct h_proc *d2;
        unsigned port2;
        d2 = h_p2sd(&port2, h_path("src.bin"), "--min-clients", "2", "--gather-timeout", "30", NULL);
        struct h_member m;
        h_member_start(&m, port2, "src.bin", "gone.bin", NULL);
        ck_assert(h_member_joined(&m, 10));
        h_stop_p2sd(d2, 5);
        ck_assert_int_eq(h_wait(m.p, 20), 6);
        h_member_free(&m);
        h_stop_p2sd(d, 5);
}
END_TEST

START_TEST(debug_log)
{
        h_make_file("src.bin", 200000, 10);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, h_path("src.bin"), "--min-clients", "2", "--chunk-size", "16K",
                                  "--log-level", "debug", NULL);
        struct h_proc *a = h_fetch(port, "src.bin", "a.bin", "--log-level", "debug", NULL);
        struct h_proc *b = h_fetch(port, "src.bin", "b.bin", "--log-level", "debug", NULL);
        ck_assert_int_eq(h_wait(a, 30), 0);
        ck_assert_int_eq(h_wait(b, 30), 0);
        ck_assert_msg(h_log_has(a, "HELLO to 127.0.0.1"), "%s", h_tail(a));
        ck_assert_msg(h_log_has(a, "COOKIE from"), "%s", h_tail(a));
        ck_assert_msg(h_log_has(a, "WELCOME after"), "%s", h_tail(a));
        ck_assert_msg(h_log_has(a, "START: 200000 bytes"), "%s", h_tail(a));
        ck_assert_msg(h_match(h_log(a), "src.bin: chunk [0-9]+ from the (cache|peer) in [0-9.]+ ms"), "%s", h_tail(a));
        /* the second copies of HELLO, COOKIE, WELCOME, COMPLETE, DONE and
         * BYE are expected: neither side calls them unexpected or drops
         * them as unknown */
        h_stop_p2sd(d, 5);
        ck_assert_msg(h_log_has(d, "complete: "), "%s", h_tail(d));
        ck_assert_msg(!h_log_has(d, "unknown member") && !h_log_has(d, "dropped datagram"), "%s", h_log(d));
        ck_assert_msg(!h_log_has(a, "unexpected") && !h_log_has(a, "dropped a"), "%s", h_log(a));
        ck_assert_msg(!h_log_has(b, "unexpected") && !h_log_has(b, "dropped a"), "%s", h_log(b));
}
END_TEST

static Suite *cli_suite(void)
{
        Suite *s = suite_create("cli");
        TCase *tc = h_tcase("outputs", 60);
        tcase_add_test(tc, refused_outputs);
        tcase_add_test(tc, output_directory);
        tcase_add_test(tc, output_locked);
        tcase_add_test(tc, remote_time_and_mode);
        suite_add_tcase(s, tc);
        tc = h_tcase("files", 90);
        tcase_add_test(tc, several_files);
        tcase_add_test(tc, pinned_hash);
        suite_add_tcase(s, tc);
        tc = h_tcase("errors", 90);
        tcase_add_test(tc, exit_codes);
        tcase_add_test(tc, debug_log);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(cli_suite);
