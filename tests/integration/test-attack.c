/* SPDX-License-Identifier: MIT */
/* Attacks found on an earlier build, each a test that failed there: a
 * member that points chunk data at an address that never proved itself
 * (--control tcp, its valid token sent from a victim's socket), and p2sd
 * started under a soft descriptor limit of 128 serving 200 fetches at
 * once (it raises the soft limit to the hard one). Real p2sd, p2s-fetch and
 * evil-peer (tests/tools/evil-peer.c) processes on 127.0.0.1. */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "harness.h"
#include "runner.h"

/* Bytes waiting on fd, read and counted. */
static unsigned long long drain(int fd)
{
        unsigned long long n = 0;
        uint8_t buf[65536];
        ssize_t r;
        while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                n += (unsigned long long)r;
        return n;
}

/* --control tcp: evil-peer, an attached member, sends from the victim's
 * socket (127.0.0.2, another address and port) PINGs, REQs and a
 * FRAG_NACK for every fragment it gets, with its valid ids and token.
 * The victim receives nothing at all, p2sd drops them, and the swarm
 * (evil-peer included: its own address never moved) completes. */
START_TEST(token_from_elsewhere)
{
        h_make_file("src.bin", (1u << 20) + 777, 91);
        unsigned port;
        struct h_proc *d = h_p2sd(&port, "--min-clients", "4", "--gather-timeout", "20", "--cache", "1",
                                  "--chunk-size", "16K", "--replicas", "1", "--control", "tcp",
                                  "--log-level", "debug", "src.bin", NULL);
        int victim = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(victim, 0);
        struct sockaddr_in va = { .sin_family = AF_INET };
        va.sin_addr.s_addr = htonl(0x7f000002);
        ck_assert_int_eq(bind(victim, (struct sockaddr *)&va, sizeof(va)), 0);
        int big = 8 << 20;
        setsockopt(victim, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));

        const char *bin = getenv("P2S_EVIL_PEER");
        ck_assert_msg(bin, "P2S_EVIL_PEER is not set");
        char ps[16];
        snprintf(ps, sizeof(ps), "%u", port);
        const char *const argv[] = { bin, "--spoof-fd", "3", ps, "src.bin", NULL };
        struct h_spawn s = { .name = "evil", .argv = argv, .fds = &victim, .nfds = 1 };
        struct h_proc *e = h_start(&s);
        h_log_wait(e, "evil: member ", 10);
        h_log_wait(d, "(1 members)", 10);
        struct h_proc *cl[3];
        h_start_clients(cl, 3, port, "src.bin", "out", NULL);

        unsigned long long to_victim = 0;
        double end = h_now() + 45;
        for (;;) {
                to_victim += drain(victim);
                bool all = h_wait_for(e, 0);
                for (int i = 0; i < 3; i++)
                        all = h_wait_for(cl[i], 0) && all;
                if (all || h_now() > end)
                        break;
                struct pollfd p = { .fd = victim, .events = POLLIN };
                poll(&p, 1, 100);
        }
        to_victim += drain(victim);
        bool evil_done = h_wait_for(e, 0);
        if (!evil_done) {
                /* its report first: the numbers say what went wrong */
                h_signal(e, SIGTERM);
                h_wait(e, 5);
        }
        unsigned long long spoofed = 0, dgrams = 0;
        const char *l = strstr(h_log(e), "evil: spoofed ");
        ck_assert_msg(l && sscanf(l, "evil: spoofed %llu bytes in %llu datagrams", &spoofed, &dgrams) == 2,
                      "%s", h_tail(e));
        printf("token_from_elsewhere: %llu bytes to the victim for %llu bytes (%llu datagrams) sent from it\n",
               to_victim, spoofed, dgrams);
        ck_assert_msg(dgrams >= 20, "the attack hardly ran: %llu datagrams", dgrams);
        ck_assert_msg(to_victim == 0, "%llu bytes sent to an address that never proved itself (%llu spoofed)",
                      to_victim, spoofed);
        ck_assert_msg(evil_done && e->code == 0, "evil-peer did not finish:\n%s", h_tail(e));
        h_expect_copies(cl, 3, "src.bin", "out", 1);
        ck_assert_msg(h_log_has(d, "wrong token or address"), "the spoofed datagrams were not dropped:\n%s",
                      h_tail(d));
        close(victim);
        h_stop_p2sd(d, 5);
}
END_TEST

static unsigned long soft_nofile(pid_t pid)
{
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        unsigned long soft = 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Max open files %lu", &soft) == 1)
                        break;
        fclose(f);
        return soft;
}

/* p2sd started with a soft RLIMIT_NOFILE of 128 (hard 4096) and 200
 * fetches of one file at once: it raised its soft limit, and all 200 copies
 * are identical (before, the descriptors ran out and fetches were refused
 * with "No such file or directory"). */
START_TEST(fetches_past_soft_limit)
{
        enum { N = 200 };
        h_make_file("src.bin", 1u << 20, 92);
        struct rlimit low = { 128, 4096 }, after = { 4096, 4096 };
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
        unsigned port;
        /* inherited across exec: p2sd starts under the low soft limit */
        struct h_proc *d = h_p2sd(&port, "--min-clients", "200", "--gather-timeout", "30", "src.bin", NULL);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &after), 0);
        ck_assert_uint_eq(soft_nofile(d->pid), 4096);
        struct h_proc *cl[N];
        double t0 = h_now();
        h_start_clients(cl, N, port, "src.bin", "out", NULL);
        h_expect_copies(cl, N, "src.bin", "out", 40);
        printf("fetches_past_soft_limit: %d copies in %.1f s\n", N, h_now() - t0);
        h_stop_p2sd(d, 5);
}
END_TEST

static Suite *attack_suite(void)
{
        Suite *s = suite_create("attack");
        TCase *tc = h_tcase("attack", 60);
        tcase_add_test(tc, token_from_elsewhere);
        tcase_add_test(tc, fetches_past_soft_limit);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(attack_suite);
