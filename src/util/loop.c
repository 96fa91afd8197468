/* SPDX-License-Identifier: MIT */
/* The event loop: epoll, one timerfd over a deadline heap, a signalfd, and
 * deferred work run once after each turn. See loop.h. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "clock.h"
#include "loop.h"

#define LOOP_MAX_EVENTS 64

/* One per watched fd; epoll's data.ptr points here so a pending event can be
 * recognised as stale (dead) after a callback removed its fd. */
struct loop_io {
        int fd;
        bool dead;
        loop_io_fn fn;
        void *ud;
        struct loop_io *next_dead;
};

struct loop {
        int epfd, tfd, sigfd;
        struct loop_io **fds;           /* indexed by fd */
        size_t nfds;
        struct loop_io *dead;           /* removed during dispatch, freed after it */
        bool dispatching;
        bool quit;
        int quit_code;
        uint64_t now;
        struct heap timers;
        uint64_t tfd_deadline;          /* what the timerfd is armed to; 0 = disarmed */
        loop_signal_fn sig_fn;
        void *sig_ud;
        sigset_t sigmask;
        struct loop_defer *defer_head, **defer_tail;   /* FIFO: first queued runs first */
        uint64_t defer_gen;             /* of work queued now; older work runs this turn */
};

static struct loop_io *loop_lookup(struct loop *l, int fd)
{
        if (fd < 0 || (size_t)fd >= l->nfds)
                return NULL;
        return l->fds[fd];
}

static void loop_free_dead(struct loop *l)
{
        while (l->dead) {
                struct loop_io *io = l->dead;

                l->dead = io->next_dead;
                free(io);
        }
}

/* Points the timerfd at the heap top, only when that changed; called once
 * per turn before epoll_wait, so moving timers costs no syscall. */
static void loop_timer_sync(struct loop *l)
{
        struct heap_node *top = heap_top(&l->timers);
        uint64_t want = top ? top->key : 0;
        struct itimerspec its = { 0 };

        /* 0 would disarm an absolute timer; "as soon as possible" is 1. */
        if (top && want == 0)
                want = 1;
        if (want == l->tfd_deadline)
                return;
        its.it_value.tv_sec = (time_t)(want / USEC_PER_SEC);
        its.it_value.tv_nsec = (long)(want % USEC_PER_SEC) * 1000;
        /* Cannot fail with a valid fd and a normalised time. */
        (void)timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
        l->tfd_deadline = want;
}

static void loop_on_timerfd(struct loop *l, int fd, uint32_t events, void *ud)
{
        uint64_t expirations;
        size_t budget = l->timers.n;

        /* Drains the fd; EAGAIN is fine (the heap already says what is due). */
        if (read(fd, &expirations, sizeof(expirations)) < 0) {
                /* nothing to do */
        }
        /* The disarm-by-expiry means the timerfd needs re-arming even for the
         * same top deadline. */
        l->tfd_deadline = 0;
        /* budget: a callback re-arming its timer into the past runs next turn,
         * not in an endless loop here. */
        while (budget-- > 0 && !l->quit) {
                struct heap_node *top = heap_top(&l->timers);
                struct loop_timer *t;

                if (!top || top->key > l->now)
                        break;
                heap_pop(&l->timers);
                t = (struct loop_timer *)((char *)top - offsetof(struct loop_timer, node));
                t->fn(l, t, t->ud);
        }
}

static void loop_on_signalfd(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct signalfd_siginfo si[16];

        for (;;) {
                ssize_t n = read(fd, si, sizeof(si));

                if (n <= 0)
                        return;         /* EAGAIN: all read */
                for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++)
                        if (l->sig_fn)
                                l->sig_fn(l, (int)si[i].ssi_signo, l->sig_ud);
                if ((size_t)n < sizeof(si))
                        return;
        }
}

struct loop *loop_new(void)
{
        struct loop *l = calloc(1, sizeof(*l));
        int r;

        if (!l)
                return NULL;
        l->tfd = l->sigfd = -1;
        sigemptyset(&l->sigmask);
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epfd < 0)
                goto fail;
        l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (l->tfd < 0)
                goto fail;
        r = loop_add(l, l->tfd, EPOLLIN, loop_on_timerfd, NULL);
        if (r < 0) {
                errno = -r;
                goto fail;
        }
        l->defer_tail = &l->defer_head;
        l->now = now_usec();
        return l;
fail:
        r = errno;
        loop_free(l);
        errno = r;
        return NULL;
}

struct loop *loop_free(struct loop *l)
{
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->nfds; i++)
                free(l->fds[i]);
        free(l->fds);
        loop_free_dead(l);
        heap_fini(&l->timers);
        if (l->sigfd >= 0)
                close(l->sigfd);
        if (l->tfd >= 0)
                close(l->tfd);
        if (l->epfd >= 0)
                close(l->epfd);
        free(l);
        return NULL;
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *ud)
{
        struct epoll_event ev = { .events = events };
        struct loop_io *io;

        if (fd < 0 || !fn)
                return -EINVAL;
        if (loop_lookup(l, fd))
                return -EEXIST;
        if ((size_t)fd >= l->nfds) {
                size_t n = l->nfds ? l->nfds : 64;
                struct loop_io **v;

                while (n <= (size_t)fd)
                        n *= 2;
                v = realloc(l->fds, n * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                memset(v + l->nfds, 0, (n - l->nfds) * sizeof(*v));
                l->fds = v;
                l->nfds = n;
        }
        io = calloc(1, sizeof(*io));
        if (!io)
                return -ENOMEM;
        io->fd = fd;
        io->fn = fn;
        io->ud = ud;
        ev.data.ptr = io;
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int r = -errno;

                free(io);
                return r;
        }
        l->fds[fd] = io;
        return 0;
}

int loop_mod(struct loop *l, int fd, uint32_t events)
{
        struct loop_io *io = loop_lookup(l, fd);
        struct epoll_event ev = { .events = events };

        if (!io)
                return -ENOENT;
        ev.data.ptr = io;
        if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
                return -errno;
        return 0;
}

int loop_del(struct loop *l, int fd)
{
        struct loop_io *io = loop_lookup(l, fd);

        if (!io)
                return -ENOENT;
        /* Can only fail if fd was already closed, which epoll handled itself. */
        (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
        l->fds[fd] = NULL;
        if (l->dispatching) {
                /* An event for it may still be pending in this batch. */
                io->dead = true;
                io->next_dead = l->dead;
                l->dead = io;
        } else {
                free(io);
        }
        return 0;
}

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *ud)
{
        heap_node_init(&t->node);
        t->fn = fn;
        t->ud = ud;
}

void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t deadline)
{
        /* heap_push only fails doubling its pointer array. A timer that
         * silently never fires would hang its owner forever, and the signature
         * has no way to report it, so treat it like any failed tiny malloc. */
        if (heap_push(&l->timers, &t->node, deadline) < 0)
                abort();
}

void loop_timer_disarm(struct loop *l, struct loop_timer *t)
{
        if (!heap_node_queued(&t->node))
                return;
        heap_remove(&l->timers, &t->node);
}

void loop_defer_init(struct loop_defer *d, loop_defer_fn fn, void *ud)
{
        *d = (struct loop_defer){ .fn = fn, .ud = ud };
}

void loop_defer(struct loop *l, struct loop_defer *d)
{
        if (d->queued)
                return;
        d->queued = true;
        d->gen = l->defer_gen;
        d->next = NULL;
        *l->defer_tail = d;
        l->defer_tail = &d->next;
}

void loop_defer_cancel(struct loop *l, struct loop_defer *d)
{
        if (!d->queued)
                return;
        for (struct loop_defer **p = &l->defer_head; *p; p = &(*p)->next) {
                if (*p == d) {
                        *p = d->next;
                        if (l->defer_tail == &d->next)
                                l->defer_tail = p;
                        break;
                }
        }
        d->queued = false;
}

/* Runs what was queued before it started; what those queue (their
 * generation is newer) runs next turn. Popping one at a time from the one
 * list keeps loop_defer_cancel valid for work not run yet. */
static void loop_run_deferred(struct loop *l)
{
        uint64_t gen = l->defer_gen++;

        while (l->defer_head && l->defer_head->gen == gen && !l->quit) {
                struct loop_defer *d = l->defer_head;

                l->defer_head = d->next;
                if (!l->defer_head)
                        l->defer_tail = &l->defer_head;
                d->queued = false;
                d->fn(l, d->ud);
        }
}

int loop_signals(struct loop *l, const int *signals, int n, loop_signal_fn fn, void *ud)
{
        sigset_t mask = l->sigmask;
        int fd, r;

        for (int i = 0; i < n; i++)
                if (sigaddset(&mask, signals[i]) < 0)
                        return -errno;
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        /* A second call widens the same signalfd. */
        fd = signalfd(l->sigfd, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (l->sigfd < 0) {
                r = loop_add(l, fd, EPOLLIN, loop_on_signalfd, NULL);
                if (r < 0) {
                        close(fd);
                        return r;
                }
                l->sigfd = fd;
        }
        l->sigmask = mask;
        l->sig_fn = fn;
        l->sig_ud = ud;
        return 0;
}

int loop_run(struct loop *l)
{
        struct epoll_event ev[LOOP_MAX_EVENTS];

        l->quit = false;
        while (!l->quit) {
                /* once per turn, however often timers moved in it */
                loop_timer_sync(l);
                int n = epoll_wait(l->epfd, ev, LOOP_MAX_EVENTS, l->defer_head ? 0 : -1);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                l->now = now_usec();
                l->dispatching = true;
                /* Timers after the other fds of the turn: a loop that was
                 * busy (or not scheduled) finds answers waiting beside the
                 * timers that waited for them, and must read the answers
                 * before a timer takes them for lost. */
                bool timers_due = false;
                for (int i = 0; i < n && !l->quit; i++) {
                        struct loop_io *io = ev[i].data.ptr;

                        if (io->dead)
                                continue;
                        if (io->fd == l->tfd) {
                                timers_due = true;
                                continue;
                        }
                        io->fn(l, io->fd, ev[i].events, io->ud);
                }
                if (timers_due && !l->quit)
                        loop_on_timerfd(l, l->tfd, EPOLLIN, NULL);
                l->dispatching = false;
                loop_free_dead(l);
                loop_run_deferred(l);
        }
        return l->quit_code;
}

void loop_quit(struct loop *l, int code)
{
        l->quit = true;
        l->quit_code = code;
}

uint64_t loop_now(struct loop *l)
{
        return l->now;
}
