/* SPDX-License-Identifier: MIT */
/* Child processes of p2s-bench: spawned with fork+exec in a process group of
 * their own (so a terminal's ^C reaches only the bench, which then stops them
 * itself), watched through a pidfd registered in the loop, reaped with wait4
 * for their rusage. A dying bench takes them along (PR_SET_PDEATHSIG). */
#pragma once
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>
#include "util/loop.h"

struct proc;
typedef void (*proc_exit_fn)(struct proc *p, void *ud);

struct proc_spec {
        const char *const *argv;        /* argv[0] is the program's path */
        const char *notify;             /* NOTIFY_SOCKET for the child, or NULL to unset it */
        int out_fd, err_fd;             /* stdout and stderr; -1: /dev/null */
};

/* Starts the child and reports exec failures synchronously: NULL with errno
 * (ENOENT, EACCES, ...) when argv[0] could not be executed. fn runs once,
 * from the loop, after the child was reaped. */
struct proc *proc_spawn(struct loop *l, const struct proc_spec *s, proc_exit_fn fn, void *ud);
/* A child not yet reaped is killed (its whole process group) and reaped;
 * its exit callback does not run. */
void proc_kill(struct proc *p);
struct proc *proc_free(struct proc *p);    /* proc_kill, then free */

pid_t proc_pid(const struct proc *p);
bool proc_exited(const struct proc *p);
/* Exit code, or 128 + signal number; -1 while running. */
int proc_code(const struct proc *p);
const struct rusage *proc_rusage(const struct proc *p);
/* Sends sig to the child alone; 0, or -errno (-ESRCH once it exited). */
int proc_signal(struct proc *p, int sig);
