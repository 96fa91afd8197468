/* SPDX-License-Identifier: MIT */
/* Child processes: fork+exec, pidfd in the loop, wait4 for the rusage. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bench/proc.h"
#include "util/exec.h"

struct proc {
        struct loop *loop;
        pid_t pid;
        int pidfd;
        int code;
        bool exited;
        struct rusage ru;
        proc_exit_fn fn;
        void *ud;
};


static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
        return (int)syscall(SYS_pidfd_open, pid, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

static void proc_reaped(struct proc *p, int status)
{
        p->exited = true;
        p->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (p->pidfd >= 0) {
                loop_del(p->loop, p->pidfd);
                close(p->pidfd);
                p->pidfd = -1;
        }
}

static void proc_on_pidfd(struct loop *l, int fd, uint32_t events, void *ud)
{
        struct proc *p = ud;
        int status;
        /* The leader is a zombie: its pid still names the group, so stray
         * members (nginx workers whose master died) can be killed safely. */
        kill(-p->pid, SIGKILL);
        pid_t r = wait4(p->pid, &status, WNOHANG, &p->ru);
        if (r == 0 || (r < 0 && errno == EINTR))
                return;
        if (r < 0)
                status = W_EXITCODE(127, 0);
        proc_reaped(p, status);
        if (p->fn)
                p->fn(p, p->ud);
}

/* The bench is single-threaded, so setenv is safe between fork and exec. */
static void child(const struct proc_spec *s, pid_t parent, int errpipe)
{
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
                _exit(127);
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);  /* the bench blocks signals for its signalfd */
        signal(SIGPIPE, SIG_DFL);
        if (null >= 0)
                dup2(null, STDIN_FILENO);
        dup2(s->out_fd >= 0 ? s->out_fd : null, STDOUT_FILENO);
        dup2(s->err_fd >= 0 ? s->err_fd : null, STDERR_FILENO);
        if (s->notify)
                setenv("NOTIFY_SOCKET", s->notify, 1);
        else
                unsetenv("NOTIFY_SOCKET");
        exec_argv(s->argv);
        int e = errno;
        (void)!write(errpipe, &e, sizeof(e));
        _exit(127);
}

struct proc *proc_spawn(struct loop *l, const struct proc_spec *s, proc_exit_fn fn, void *ud)
{
        struct proc *p = calloc(1, sizeof(*p));
        int pfd[2];
        if (!p)
                return NULL;
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                free(p);
                return NULL;
        }
        *p = (struct proc){ .loop = l, .pidfd = -1, .code = -1, .fn = fn, .ud = ud };
        pid_t parent = getpid();
        p->pid = fork();
        if (p->pid < 0) {
                int e = errno;
                close(pfd[0]);
                close(pfd[1]);
                free(p);
                errno = e;
                return NULL;
        }
        if (p->pid == 0)
                child(s, parent, pfd[1]);
        close(pfd[1]);
        /* EOF once exec closed the pipe; an errno if exec failed */
        int e = 0;
        ssize_t n;
        do
                n = read(pfd[0], &e, sizeof(e));
        while (n < 0 && errno == EINTR);
        close(pfd[0]);
        if (n == (ssize_t)sizeof(e)) {
                waitpid(p->pid, NULL, 0);
                free(p);
                errno = e;
                return NULL;
        }
        p->pidfd = pidfd_open_(p->pid);
        /* ENOSYS before Linux 5.3, and under valgrind versions that lack it */
        if (p->pidfd < 0 || loop_add(l, p->pidfd, EPOLLIN, proc_on_pidfd, p) < 0) {
                e = p->pidfd < 0 ? errno : ENOMEM;
                if (p->pidfd >= 0)
                        close(p->pidfd);
                p->pidfd = -1;
                proc_free(p);
                errno = e;
                return NULL;
        }
        return p;
}

void proc_kill(struct proc *p)
{
        if (!p->exited) {
                kill(-p->pid, SIGKILL);
                kill(p->pid, SIGKILL);
                int status = 0;
                while (wait4(p->pid, &status, 0, &p->ru) < 0 && errno == EINTR)
                        ;
                proc_reaped(p, status);
        }
}

struct proc *proc_free(struct proc *p)
{
        if (!p)
                return NULL;
        proc_kill(p);
        free(p);
        return NULL;
}

pid_t proc_pid(const struct proc *p)
{
        return p->pid;
}

bool proc_exited(const struct proc *p)
{
        return p->exited;
}

int proc_code(const struct proc *p)
{
        return p->exited ? p->code : -1;
}

const struct rusage *proc_rusage(const struct proc *p)
{
        return &p->ru;
}

int proc_signal(struct proc *p, int sig)
{
        if (p->exited)
                return -ESRCH;
        return kill(p->pid, sig) < 0 ? -errno : 0;
}
