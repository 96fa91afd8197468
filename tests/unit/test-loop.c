/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#include "util/clock.h"
#include "util/loop.h"
#include "runner.h"

struct order {
        int seen[16];
        int n;
        int quit_after;
};

static struct order order;

static void on_order_timer(struct loop *l, struct loop_timer *t, void *ud)
{
        order.seen[order.n++] = (int)(intptr_t)ud;
        ck_assert(loop_now(l) >= t->node.key);
        if (order.n == order.quit_after)
                loop_quit(l, 5);
}

START_TEST(timers_in_deadline_order)
{
        struct loop *l = loop_new();
        struct loop_timer t[5];
        static const int ms[5] = { 30, 10, 50, 20, 40 };
        uint64_t start = now_usec();

        ck_assert_ptr_nonnull(l);
        order = (struct order){ .quit_after = 5 };
        for (int i = 0; i < 5; i++) {
                loop_timer_init(&t[i], on_order_timer, (void *)(intptr_t)i);
                ck_assert(!loop_timer_armed(&t[i]));
                loop_timer_arm(l, &t[i], start + (uint64_t)ms[i] * USEC_PER_MSEC);
                ck_assert(loop_timer_armed(&t[i]));
        }
        ck_assert_int_eq(loop_run(l), 5);
        ck_assert_int_eq(order.n, 5);
        ck_assert_int_eq(order.seen[0], 1);
        ck_assert_int_eq(order.seen[1], 3);
        ck_assert_int_eq(order.seen[2], 0);
        ck_assert_int_eq(order.seen[3], 4);
        ck_assert_int_eq(order.seen[4], 2);
        for (int i = 0; i < 5; i++)
                ck_assert(!loop_timer_armed(&t[i]));
        ck_assert_uint_ge(now_usec() - start, 50 * USEC_PER_MSEC);
        loop_free(l);
}
END_TEST

START_TEST(timer_update_and_disarm)
{
        struct loop *l = loop_new();
        struct loop_timer a, b, c;
        uint64_t start = now_usec();

        order = (struct order){ .quit_after = 2 };
        loop_timer_init(&a, on_order_timer, (void *)0);
        loop_timer_init(&b, on_order_timer, (void *)1);
        loop_timer_init(&c, on_order_timer, (void *)2);
        /* a is the top and moves behind b: the timerfd must follow. */
        loop_timer_arm(l, &a, start + 5 * USEC_PER_MSEC);
        loop_timer_arm(l, &b, start + 30 * USEC_PER_MSEC);
        loop_timer_arm(l, &a, start + 60 * USEC_PER_MSEC);
        /* c is the new top, then disarmed: it must never fire. */
        loop_timer_arm(l, &c, start + 1 * USEC_PER_MSEC);
        loop_timer_disarm(l, &c);
        loop_timer_disarm(l, &c);
        ck_assert(!loop_timer_armed(&c));
        ck_assert_int_eq(loop_run(l), 5);
        ck_assert_int_eq(order.seen[0], 1);
        ck_assert_int_eq(order.seen[1], 0);
        ck_assert_uint_ge(now_usec() - start, 60 * USEC_PER_MSEC);
        loop_free(l);
}
END_TEST

static uint64_t fired_at;

static void on_record(struct loop *l, struct loop_timer *t, void *ud)
{
        fired_at = loop_now(l);
        loop_quit(l, 1);
}

/* The timerfd must be re-armed when a new timer becomes the earliest; a
 * missed re-arm would fire only at the later deadline (ordering tests can
 * not see that, since both would then run in deadline order). */
START_TEST(timer_new_top_not_late)
{
        struct loop *l = loop_new();
        struct loop_timer late, early;
        uint64_t start = now_usec();

        loop_timer_init(&late, on_record, NULL);
        loop_timer_init(&early, on_record, NULL);
        loop_timer_arm(l, &late, start + 2 * USEC_PER_SEC);
        loop_timer_arm(l, &early, start + 20 * USEC_PER_MSEC);
        ck_assert_int_eq(loop_run(l), 1);
        ck_assert(!loop_timer_armed(&early));
        ck_assert(loop_timer_armed(&late));
        ck_assert_uint_ge(fired_at, start + 20 * USEC_PER_MSEC);
        ck_assert_uint_lt(fired_at, start + USEC_PER_SEC);
        loop_free(l);
}
END_TEST

static int rearm_count;

static void on_rearm(struct loop *l, struct loop_timer *t, void *ud)
{
        /* Popped before the call, so arming again works from inside. */
        ck_assert(!loop_timer_armed(t));
        if (++rearm_count == 3) {
                loop_quit(l, 42);
                return;
        }
        loop_timer_arm(l, t, loop_now(l) + USEC_PER_MSEC);
}

START_TEST(timer_rearm_from_callback)
{
        struct loop *l = loop_new();
        struct loop_timer t;

        rearm_count = 0;
        loop_timer_init(&t, on_rearm, NULL);
        loop_timer_arm(l, &t, 0);       /* already past: fires at once */
        ck_assert_int_eq(loop_run(l), 42);
        ck_assert_int_eq(rearm_count, 3);
        loop_free(l);
}
END_TEST

/* Two pipes, both readable before the loop runs, so both events arrive in
 * one epoll batch. Whichever callback runs first removes and closes the
 * other, and opens a new pipe that likely reuses the closed fd number: the
 * stale event must be dropped, not dispatched to the old or new handler. */
struct pair {
        struct loop *l;
        int rd[2], wr[2];
        int calls[2];
        int newfd[2];
        int stale_calls;
};

static void on_stale(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct pair *p = ud;

        p->stale_calls++;
}

static void on_pipe(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct pair *p = ud;
        int me = fd == p->rd[0] ? 0 : 1, other = 1 - me;
        char c;

        ck_assert_int_eq(read(fd, &c, 1), 1);
        p->calls[me]++;
        ck_assert_int_eq(loop_del(l, fd), 0);
        if (p->rd[other] >= 0) {
                ck_assert_int_eq(loop_del(l, p->rd[other]), 0);
                ck_assert_int_eq(loop_del(l, p->rd[other]), -ENOENT);
                close(p->rd[other]);
                p->rd[other] = -1;
                ck_assert_int_eq(pipe2(p->newfd, O_CLOEXEC | O_NONBLOCK), 0);
                ck_assert_int_eq(loop_add(l, p->newfd[0], EPOLLIN, on_stale, p), 0);
        }
}

static void on_quit_timer(struct loop *l, struct loop_timer *t, void *ud)
{
        loop_quit(l, 0);
}

START_TEST(del_pending_in_batch)
{
        struct pair p = { .l = loop_new(), .newfd = { -1, -1 } };
        struct loop_timer q;

        for (int i = 0; i < 2; i++) {
                int fds[2];

                ck_assert_int_eq(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
                p.rd[i] = fds[0];
                p.wr[i] = fds[1];
                ck_assert_int_eq(write(p.wr[i], "x", 1), 1);
                ck_assert_int_eq(loop_add(p.l, p.rd[i], EPOLLIN, on_pipe, &p), 0);
        }
        ck_assert_int_eq(loop_add(p.l, p.rd[0], EPOLLIN, on_pipe, &p), -EEXIST);
        loop_timer_init(&q, on_quit_timer, NULL);
        loop_timer_arm(p.l, &q, now_usec() + 50 * USEC_PER_MSEC);
        ck_assert_int_eq(loop_run(p.l), 0);
        ck_assert_int_eq(p.calls[0] + p.calls[1], 1);
        ck_assert_int_eq(p.stale_calls, 0);
        for (int i = 0; i < 2; i++) {
                if (p.rd[i] >= 0)
                        close(p.rd[i]);
                close(p.wr[i]);
                if (p.newfd[i] >= 0)
                        close(p.newfd[i]);
        }
        loop_free(p.l);
}
END_TEST

static void on_mod(struct loop *l, int fd, uint32_t events, void *ud)
{
        int *hits = ud;

        ck_assert(events & EPOLLOUT);
        if (++*hits == 3)
                loop_quit(l, 3);
}

START_TEST(mod_events)
{
        struct loop *l = loop_new();
        int fds[2], hits = 0;

        ck_assert_int_eq(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
        /* Write end with EPOLLIN never fires; switching to EPOLLOUT does. */
        ck_assert_int_eq(loop_add(l, fds[1], EPOLLIN, on_mod, &hits), 0);
        ck_assert_int_eq(loop_mod(l, fds[1], EPOLLOUT), 0);
        ck_assert_int_eq(loop_mod(l, fds[0] + 100, EPOLLOUT), -ENOENT);
        ck_assert_int_eq(loop_run(l), 3);       /* level-triggered: fires every turn */
        ck_assert_int_eq(loop_del(l, fds[1]), 0);
        close(fds[0]);
        close(fds[1]);
        loop_free(l);
}
END_TEST

static void on_signal(struct loop *l, int signo, void *ud)
{
        int *got = ud;

        *got = signo;
        loop_quit(l, 7);
}

START_TEST(signalfd_delivery)
{
        struct loop *l = loop_new();
        int sigs[] = { SIGUSR1, SIGUSR2 }, got = 0;

        ck_assert_int_eq(loop_signals(l, sigs, 2, on_signal, &got), 0);
        /* Blocked now, so it stays pending until the signalfd reads it. */
        ck_assert_int_eq(raise(SIGUSR1), 0);
        ck_assert_int_eq(loop_run(l), 7);
        ck_assert_int_eq(got, SIGUSR1);
        got = 0;
        ck_assert_int_eq(raise(SIGUSR2), 0);
        ck_assert_int_eq(loop_run(l), 7);
        ck_assert_int_eq(got, SIGUSR2);
        loop_free(l);
}
END_TEST

START_TEST(now_and_free)
{
        struct loop *l = loop_new();
        uint64_t t0 = loop_now(l);

        ck_assert_uint_gt(t0, 0);
        ck_assert_uint_le(t0, now_usec());
        ck_assert_ptr_null(loop_free(l));
        ck_assert_ptr_null(loop_free(NULL));
}
END_TEST


/* ---- deferred work ------------------------------------------------------ */

struct defer_log {
        struct loop_defer a, b, c;
        char seen[32];
        int n;
        int a_runs;
        bool in_io;
};

static struct defer_log dl;

static void defer_c(struct loop *l, void *ud)
{
        dl.seen[dl.n++] = 'c';
        loop_quit(l, 7);
}

/* a re-queues itself once, and queues c: both wait for the next turn */
static void defer_a(struct loop *l, void *ud)
{
        ck_assert(!dl.in_io);
        dl.seen[dl.n++] = 'a';
        if (++dl.a_runs == 1) {
                loop_defer(l, &dl.a);
                loop_defer(l, &dl.c);
        }
}

/* b was cancelled before it could run */
static void defer_b(struct loop *l, void *ud)
{
        dl.seen[dl.n++] = 'b';
}

static void defer_io(struct loop *l, int fd, uint32_t events, void *ud)
{
        char x;
        dl.in_io = true;
        ck_assert_int_eq(read(fd, &x, 1), 1);
        dl.seen[dl.n++] = 'i';
        /* queued twice in one turn, run once, after the callback returned */
        loop_defer(l, &dl.a);
        loop_defer(l, &dl.a);
        loop_defer(l, &dl.b);
        loop_defer_cancel(l, &dl.b);
        dl.in_io = false;
}

START_TEST(defer_runs_after_turn_once)
{
        struct loop *l = loop_new();
        int p[2];

        ck_assert_ptr_nonnull(l);
        ck_assert_int_eq(pipe(p), 0);
        dl = (struct defer_log){ 0 };
        loop_defer_init(&dl.a, defer_a, NULL);
        loop_defer_init(&dl.b, defer_b, NULL);
        loop_defer_init(&dl.c, defer_c, NULL);
        ck_assert_int_eq(loop_add(l, p[0], EPOLLIN, defer_io, NULL), 0);
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        /* no other event ever comes: the second turn must not block */
        ck_assert_int_eq(loop_run(l), 7);
        dl.seen[dl.n] = 0;
        ck_assert_str_eq(dl.seen, "iaac");
        loop_del(l, p[0]);
        close(p[0]);
        close(p[1]);
        loop_free(l);
}
END_TEST

static int chain_left;
static struct loop_defer chain;

/* a job that re-queues itself every turn: each run is one turn, no recursion */
static void defer_chain(struct loop *l, void *ud)
{
        if (--chain_left == 0)
                loop_quit(l, 3);
        else
                loop_defer(l, &chain);
}

START_TEST(defer_chain_is_iterative)
{
        struct loop *l = loop_new();

        ck_assert_ptr_nonnull(l);
        chain_left = 200000;
        loop_defer_init(&chain, defer_chain, NULL);
        loop_defer(l, &chain);
        ck_assert_int_eq(loop_run(l), 3);
        ck_assert_int_eq(chain_left, 0);
        loop_free(l);
}
END_TEST

/* A turn that finds a timer due and an answer waiting reads the answer
 * first, whichever became ready first: a loop kept busy must not let the
 * timer take for lost what already came. */
static struct {
        int a[2], b[2];
        uint64_t start;
        char seen[8];
        int n;
} busy;

static void busy_io_a(struct loop *l, int fd, uint32_t events, void *ud)
{
        char x;
        ck_assert_int_eq(read(fd, &x, 1), 1);
        busy.seen[busy.n++] = 'a';
        /* busy past the timer's deadline, then the answer comes */
        while (now_usec() < busy.start + 30 * USEC_PER_MSEC)
                ;
        ck_assert_int_eq(write(busy.b[1], "y", 1), 1);
}

static void busy_io_b(struct loop *l, int fd, uint32_t events, void *ud)
{
        char x;
        ck_assert_int_eq(read(fd, &x, 1), 1);
        busy.seen[busy.n++] = 'b';
}

static void busy_timer(struct loop *l, struct loop_timer *t, void *ud)
{
        busy.seen[busy.n++] = 't';
        loop_quit(l, 4);
}

START_TEST(timers_after_io_of_the_turn)
{
        struct loop *l = loop_new();
        struct loop_timer t;

        ck_assert_ptr_nonnull(l);
        busy.n = 0;
        ck_assert_int_eq(pipe(busy.a), 0);
        ck_assert_int_eq(pipe(busy.b), 0);
        ck_assert_int_eq(loop_add(l, busy.a[0], EPOLLIN, busy_io_a, NULL), 0);
        ck_assert_int_eq(loop_add(l, busy.b[0], EPOLLIN, busy_io_b, NULL), 0);
        busy.start = now_usec();
        loop_timer_init(&t, busy_timer, NULL);
        loop_timer_arm(l, &t, busy.start + 10 * USEC_PER_MSEC);
        ck_assert_int_eq(write(busy.a[1], "x", 1), 1);
        ck_assert_int_eq(loop_run(l), 4);
        busy.seen[busy.n] = 0;
        ck_assert_str_eq(busy.seen, "abt");
        for (int i = 0; i < 2; i++) {
                loop_del(l, i ? busy.b[0] : busy.a[0]);
                close(busy.a[i]);
                close(busy.b[i]);
        }
        loop_free(l);
}
END_TEST

static Suite *loop_suite(void)
{
        Suite *s = suite_create("loop");
        TCase *tc;

        tc = tcase_create("timers");
        tcase_set_timeout(tc, 10);
        tcase_add_test(tc, timers_in_deadline_order);
        tcase_add_test(tc, timer_update_and_disarm);
        tcase_add_test(tc, timer_rearm_from_callback);
        tcase_add_test(tc, timer_new_top_not_late);
        tcase_add_test(tc, now_and_free);
        tcase_add_test(tc, timers_after_io_of_the_turn);
        suite_add_tcase(s, tc);
        tc = tcase_create("io");
        tcase_set_timeout(tc, 10);
        tcase_add_test(tc, del_pending_in_batch);
        tcase_add_test(tc, mod_events);
        suite_add_tcase(s, tc);
        tc = tcase_create("defer");
        tcase_set_timeout(tc, 10);
        tcase_add_test(tc, defer_runs_after_turn_once);
        tcase_add_test(tc, defer_chain_is_iterative);
        suite_add_tcase(s, tc);
        tc = tcase_create("signals");
        tcase_set_timeout(tc, 10);
        tcase_add_test(tc, signalfd_delivery);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(loop_suite);
