/* SPDX-License-Identifier: MIT */
/* p2s-fetch --list and -r against a real p2sd on 127.0.0.1: FILE and
 * --root mode with prefixes, more files than one page, a swarm secret, a
 * LIST datagram from an unproven address (it gets nothing), -r mirroring a
 * tree, and -r where one file cannot be read by the server. */
#include <errno.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "harness.h"
#include "proto/hash.h"
#include "proto/wire.h"
#include "runner.h"



/* A listing's output: the log of a p2s-fetch that printed only it. */
static const char *listing(unsigned port, const char *prefix, int want_code)
{
        struct h_proc *p = h_fetch_args((const char *const[]){ "--list", h_hostport(port), prefix, NULL }, 30);
        ck_assert_msg(p->code == want_code, "exit %d, want %d: %s", p->code, want_code, h_tail(p));
        return h_log(p);
}

/* FILE mode: base names, sizes, "-" for a hash not known yet, sorted;
 * a prefix keeps the names that start with it. */
START_TEST(list_files)
{
        h_make_file("src/zeta.bin", 3000, 1);
        h_make_file("src/alpha.bin", 1000, 2);
        h_make_file("src/beta.img", 2000, 3);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, h_path("src/zeta.bin"), h_path("src/alpha.bin"), h_path("src/beta.img"),
                                  NULL);
        const char *out = listing(port, NULL, 0);
        ck_assert_str_eq(out, "1000  -  alpha.bin\n2000  -  beta.img\n3000  -  zeta.bin\n");
        out = listing(port, "b", 0);
        ck_assert_str_eq(out, "2000  -  beta.img\n");
        out = listing(port, "nothing", 0);
        ck_assert_str_eq(out, "");
        /* once served, p2sd knows the hash: the listing shows it */
        ck_assert_int_eq(h_fetch_once(port, "alpha.bin", "alpha.copy", NULL), 0);
        size_t len;
        char *bytes = h_slurp(h_path("src/alpha.bin"), &len);
        uint8_t hash[P2S_HASH_SIZE];
        char hex[2 * P2S_HASH_SIZE + 1], want[200];
        hash_sha256(bytes, len, hash);
        hash_hex(hash, hex);
        free(bytes);
        snprintf(want, sizeof(want), "1000  %s  alpha.bin\n", hex);
        out = listing(port, "alpha", 0);
        ck_assert_str_eq(out, want);
        h_stop_p2sd(d, 5);
}
END_TEST

/* --root: relative names beneath the root, symlinks neither followed nor
 * listed; a URL carries the prefix too. */
START_TEST(list_root)
{
        h_make_file("root/img/a.bin", 10, 1);
        h_make_file("root/img/sub/b.bin", 20, 2);
        h_make_file("root/imgx.bin", 30, 3);
        h_make_file("root/other/c.bin", 40, 4);
        h_make_file("outside.bin", 50, 5);
        ck_assert_int_eq(symlink(h_path("outside.bin"), h_path("root/img/out-link")), 0);
        ck_assert_int_eq(symlink("a.bin", h_path("root/img/in-link")), 0);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--root", h_path("root"), NULL);
        ck_assert_str_eq(listing(port, NULL, 0),
                         "10  -  img/a.bin\n20  -  img/sub/b.bin\n30  -  imgx.bin\n40  -  other/c.bin\n");
        ck_assert_str_eq(listing(port, "img/", 0), "10  -  img/a.bin\n20  -  img/sub/b.bin\n");
        ck_assert_str_eq(listing(port, "img", 0), "10  -  img/a.bin\n20  -  img/sub/b.bin\n30  -  imgx.bin\n");
        char url[64];
        snprintf(url, sizeof(url), "p2s://127.0.0.1:%u/other/", port);
        struct h_proc *p = h_fetch_args((const char *const[]){ "--list", url, NULL }, 30);
        ck_assert_int_eq(p->code, 0);
        ck_assert_str_eq(h_log(p), "40  -  other/c.bin\n");
        h_stop_p2sd(d, 5);
}
END_TEST

/* More names than one LIST is answered with (P2S_LIST_PAGE): every one
 * comes, once, in order, over several pages. */
START_TEST(list_many_pages)
{
        const unsigned n = P2S_LIST_PAGE + 300;
        ck_assert_int_eq(mkdir(h_path("root"), 0755), 0);
        ck_assert_int_eq(mkdir(h_path("root/many"), 0755), 0);
        for (unsigned i = 0; i < n; i++)
                h_write_text(h_path("root/many/f%05u", i), "x");
        h_write_text(h_path("root/zz"), "yy");
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--root", h_path("root"), "--log-level", "debug", NULL);
        const char *out = listing(port, "many/", 0);
        unsigned lines = 0;
        for (const char *s = out; (s = strchr(s, '\n')); s++)
                lines++;
        ck_assert_uint_eq(lines, n);
        char line[64];
        for (unsigned i = 0; i < n; i += 97) {
                snprintf(line, sizeof(line), "1  -  many/f%05u\n", i);
                ck_assert_msg(strstr(out, line), "missing %s", line);
        }
        snprintf(line, sizeof(line), "many/f%05u\n", n - 1);
        ck_assert(strlen(out) > strlen(line) && !strcmp(out + strlen(out) - strlen(line), line));
        ck_assert_msg(h_log_wait_for(d, "more to come", 5), "%s", h_tail(d));
        h_stop_p2sd(d, 5);
}
END_TEST

/* With a swarm secret, no listing without the proof, nor with a wrong one. */
START_TEST(list_secret)
{
        h_make_file("src.bin", 100, 1);
        h_write_text("swarm.key", "correct horse battery staple\n");
        h_write_text("other.key", "correct horse battery stapler\n");
        ck_assert_int_eq(chmod("swarm.key", 0600), 0);
        ck_assert_int_eq(chmod("other.key", 0600), 0);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--secret-file", "swarm.key", h_path("src.bin"), NULL);
        struct h_proc *p = h_fetch_args((const char *const[]){ "--list", h_hostport(port), NULL }, 30);
        ck_assert_int_eq(p->code, 4);
        ck_assert_msg(h_log_has(p, "requires a swarm secret") && !h_log_has(p, "src.bin  "), "%s", h_tail(p));
        p = h_fetch_args((const char *const[]){ "--list", "--secret-file", "other.key", h_hostport(port), NULL }, 30);
        ck_assert_int_eq(p->code, 4);
        ck_assert_msg(h_log_has(p, "wrong swarm secret"), "%s", h_tail(p));
        p = h_fetch_args((const char *const[]){ "--list", "--secret-file", "swarm.key", h_hostport(port), NULL }, 30);
        ck_assert_msg(p->code == 0, "%s", h_tail(p));
        ck_assert_str_eq(h_log(p), "100  -  src.bin\n");
        h_stop_p2sd(d, 5);
}
END_TEST

/* A LIST datagram, from an address that never proved itself, gets nothing
 * at all: p2sd answers datagrams in order, so when the COOKIE for a HELLO
 * sent after it is the first thing back, nothing came for the LIST. */
START_TEST(list_no_amplification)
{
        h_make_file("src.bin", 100, 1);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, h_path("src.bin"), NULL);
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        ck_assert_int_ge(fd, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        uint8_t pkt[P2S_HDR_SIZE + P2S_LIST_MAX], nonce[P2S_NONCE_SIZE] = { 1, 2, 3 };
        for (uint64_t token = 0; token < 3; token++) {
                size_t bl = wire_put_list(pkt + P2S_HDR_SIZE, P2S_LIST_MAX, nonce, NULL, "", 0, "", 0);
                struct p2s_hdr h = { .type = P2S_LIST, .token = token * 0x1234567, .chunk = P2S_NO_CHUNK };
                size_t n = wire_encode(pkt, sizeof(pkt), &h, pkt + P2S_HDR_SIZE, (uint32_t)bl);
                ck_assert_int_eq(send(fd, pkt, n, 0), (ssize_t)n);
        }
        size_t hn = h_hello(pkt, sizeof(pkt), "src.bin", 0);
        ck_assert_int_eq(send(fd, pkt, hn, 0), (ssize_t)hn);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ck_assert_int_eq(poll(&p, 1, 5000), 1);
        ssize_t got = recv(fd, pkt, sizeof(pkt), 0);
        ck_assert_int_eq(got, P2S_HDR_SIZE + P2S_COOKIE_SIZE);
        ck_assert_uint_eq(pkt[5], P2S_COOKIE);
        ck_assert_mem_eq(pkt + P2S_HDR_SIZE, h_test_nonce, P2S_NONCE_SIZE);
        close(fd);
        h_stop_p2sd(d, 5);
}
END_TEST

/* -r mirrors the tree under PREFIX into -o DIR, subdirectories made;
 * nothing outside the prefix is fetched; a summary line per file. */
START_TEST(recursive_mirror)
{
        h_make_file("root/set/x.bin", 70000, 1);
        h_make_file("root/set/sub/y.bin", 150000, 2);
        h_make_file("root/set/sub/deeper/z.bin", 1, 3);
        h_make_file("root/setx.bin", 100, 4);
        h_make_file("root/else.bin", 100, 5);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--root", h_path("root"), NULL);
        struct h_proc *p = h_fetch_args((const char *const[]){ "-r", h_hostport(port), "set/", "-o", h_path("copy"),
                                                             "--timeout", "10", NULL }, 60);
        ck_assert_msg(p->code == 0, "%s", h_tail(p));
        h_assert_fetched(h_path("root/set/x.bin"), h_path("copy/x.bin"));
        h_assert_fetched(h_path("root/set/sub/y.bin"), h_path("copy/sub/y.bin"));
        h_assert_fetched(h_path("root/set/sub/deeper/z.bin"), h_path("copy/sub/deeper/z.bin"));
        ck_assert(!h_exists("copy/setx.bin") && !h_exists("copy/else.bin"));
        ck_assert_msg(h_log_has(p, "ok     set/sub/y.bin -> ") && h_log_has(p, "3 of 3 files fetched"), "%s",
                      h_tail(p));
        /* nothing under a prefix: status 4 */
        p = h_fetch_args((const char *const[]){ "-r", h_hostport(port), "none/", "-o", h_path("copy2"), NULL }, 30);
        ck_assert_int_eq(p->code, 4);
        ck_assert_msg(h_log_has(p, "nothing is served under 'none/'"), "%s", h_tail(p));
        /* -o naming a file is a usage error */
        p = h_fetch_args((const char *const[]){ "-r", h_hostport(port), "set/", "-o", h_path("root/else.bin"), NULL }, 30);
        ck_assert_int_eq(p->code, 2);
        h_stop_p2sd(d, 5);
}
END_TEST

/* Root reads anything: without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
 * in the bounding set (this forked test and what it starts only), a mode
 * 000 file is unreadable to p2sd even as uid 0. False if that cannot be. */
static bool drop_dac_caps(void)
{
        if (geteuid() != 0)
                return true;
        return prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) == 0 &&
               prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0) == 0;
}

/* -r with one file p2sd cannot read: the others are fetched, that one
 * fails with the server's reason, and the exit status is not 0. */
START_TEST(recursive_unreadable)
{
        if (!drop_dac_caps())
                return;         /* cannot make a file unreadable to root here */
        h_make_file("root/t/a.bin", 5000, 1);
        h_make_file("root/t/b.bin", 6000, 2);
        h_make_file("root/t/c.bin", 7000, 3);
        ck_assert_int_eq(chmod(h_path("root/t/b.bin"), 0), 0);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--root", h_path("root"), NULL);
        struct h_proc *p = h_fetch_args((const char *const[]){ "-r", h_hostport(port), "t/", "-o", h_path("copy"),
                                                             "--timeout", "10", NULL }, 60);
        ck_assert_msg(p->code == 4, "exit %d: %s", p->code, h_tail(p));
        h_assert_fetched(h_path("root/t/a.bin"), h_path("copy/a.bin"));
        h_assert_fetched(h_path("root/t/c.bin"), h_path("copy/c.bin"));
        ck_assert(!h_exists("copy/b.bin"));
        ck_assert_msg(h_log_has(p, "permission denied on the server") && h_log_has(p, "FAILED t/b.bin") &&
                      h_log_has(p, "2 of 3 files fetched"), "%s", h_tail(p));
        h_stop_p2sd(d, 5);
}
END_TEST

static Suite *list_suite(void)
{
        Suite *s = suite_create("list");
        TCase *tc = h_tcase("list", 120);
        tcase_add_test(tc, list_files);
        tcase_add_test(tc, list_root);
        tcase_add_test(tc, list_many_pages);
        tcase_add_test(tc, list_secret);
        tcase_add_test(tc, list_no_amplification);
        suite_add_tcase(s, tc);
        tc = h_tcase("recursive", 120);
        tcase_add_test(tc, recursive_mirror);
        tcase_add_test(tc, recursive_unreadable);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(list_suite);
