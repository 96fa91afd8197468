/* SPDX-License-Identifier: MIT */
/* The one event loop: a single epoll instance, every timer on one timerfd
 * (a min-heap of CLOCK_MONOTONIC deadlines underneath, the timerfd re-armed to
 * the heap top), signals through a signalfd. Nothing in it blocks but
 * epoll_wait. Callbacks may add or remove any fd or timer, including their
 * own, at any time: removed registrations are freed only after the turn. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include "heap.h"

struct loop;
struct loop_timer;

typedef void (*loop_io_fn)(struct loop *l, int fd, uint32_t events, void *ud);
typedef void (*loop_timer_fn)(struct loop *l, struct loop_timer *t, void *ud);
typedef void (*loop_signal_fn)(struct loop *l, int signo, void *ud);
typedef void (*loop_defer_fn)(struct loop *l, void *ud);

struct loop_timer {
        struct heap_node node;  /* key = deadline, usec CLOCK_MONOTONIC */
        loop_timer_fn fn;
        void *ud;
};

struct loop_defer {
        loop_defer_fn fn;
        void *ud;
        bool queued;
        uint64_t gen;
        struct loop_defer *next;
};

struct loop *loop_new(void);                       /* NULL on error (errno set) */
struct loop *loop_free(struct loop *l);            /* NULL-safe; does not close fds */

/* Watches fd for events (EPOLLIN/EPOLLOUT/...; level-triggered). 0 or -errno. */
int loop_add(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *ud);
int loop_mod(struct loop *l, int fd, uint32_t events);
int loop_del(struct loop *l, int fd);              /* before close(fd) */

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *ud);
/* (Re)arms t to fire once at deadline (usec, CLOCK_MONOTONIC). */
void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t deadline);
void loop_timer_disarm(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t) { return heap_node_queued(&t->node); }

void loop_defer_init(struct loop_defer *d, loop_defer_fn fn, void *ud);
/* Queues d to run once after this turn's callbacks; a no-op while queued. */
void loop_defer(struct loop *l, struct loop_defer *d);
/* Takes d off the queue (before freeing its owner). */
void loop_defer_cancel(struct loop *l, struct loop_defer *d);

/* Blocks the given signals and delivers them through a signalfd. 0 or -errno. */
int loop_signals(struct loop *l, const int *signals, int n, loop_signal_fn fn, void *ud);

/* Runs until loop_quit; returns the code given to loop_quit. */
int loop_run(struct loop *l);
void loop_quit(struct loop *l, int code);
/* Monotonic time in usec, sampled once per turn (cheap). */
uint64_t loop_now(struct loop *l);
