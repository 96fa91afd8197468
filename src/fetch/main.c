/* SPDX-License-Identifier: MIT */
/* p2s-fetch: join the p2s swarm of each file named and leave a verified
 * copy of each. Several files run as several clients on the one loop,
 * --parallel at a time; a summary line per file when there are several.
 * --list prints what the server serves; -r lists, then fetches each name
 * as if it had been given, into the mirrored tree. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fetch/client.h"
#include "fetch/exitcode.h"
#include "fetch/listing.h"
#include "fetch/options.h"
#include "fetch/output.h"
#include "fetch/progress.h"
#include "proto/cookie.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop.h"

struct job {
        struct fetch_options opt;       /* the command line's, with this file's host, name, output */
        char *output;
        struct client *c;
        int code;                       /* enum fetch_exit; -1 while not run */
        char reason[P2S_MAX_REASON + 600];
        uint64_t started, ended;
};

struct run {
        struct loop *loop;
        struct job *jobs;
        size_t njobs, next, running, done;
        unsigned parallel;
        bool summary;
};

static void start_next(struct run *r);

static struct run *the_run;

static void finish_job(struct job *j)
{
        struct run *r = the_run;
        if (j->code != 0)
                log_err("%s: %s", j->opt.name, j->reason);
        else
                log_debug("%s: %s", j->opt.name, j->reason);
        client_log_stats(j->c);
        r->running--;
        r->done++;
        if (r->done == r->njobs) {
                loop_quit(r->loop, 0);
                return;
        }
        start_next(r);
}

/* Deferred: a finished client is freed and the next started outside its
 * own call stack. */
static void reap(struct loop *l, void *ud)
{
        struct run *r = ud;
        for (size_t i = 0; i < r->next; i++) {
                struct job *j = &r->jobs[i];
                if (j->c && j->code >= 0) {
                        finish_job(j);
                        j->c = client_free(j->c);
                }
        }
}

static struct loop_defer reaper;

static void job_done(struct client *c, void *ud)
{
        struct job *j = ud;
        j->code = client_exit_code(c);
        snprintf(j->reason, sizeof(j->reason), "%s", client_reason(c));
        j->ended = now_usec();
        loop_defer(the_run->loop, &reaper);
}

static void start_next(struct run *r)
{
        while (r->running < r->parallel && r->next < r->njobs) {
                struct job *j = &r->jobs[r->next++];
                char err[512];
                int code;
                if (j->code >= 0) {
                        /* refused before it could start (-r: a name that may not be saved) */
                        log_err("%s: %s", j->opt.name, j->reason);
                        r->done++;
                        continue;
                }
                j->started = now_usec();
                j->c = client_new(&j->opt, r->loop, job_done, j, &code, err, sizeof(err));
                if (!j->c) {
                        j->code = code;
                        snprintf(j->reason, sizeof(j->reason), "%s", err);
                        log_err("%s: %s", j->opt.name, err);
                        r->done++;
                        continue;
                }
                if (client_start(j->c) < 0) {
                        j->code = FETCH_EXIT_FAIL;
                        snprintf(j->reason, sizeof(j->reason), "cannot start: %s", strerror(errno));
                        log_err("%s: %s", j->opt.name, j->reason);
                        j->c = client_free(j->c);
                        r->done++;
                        continue;
                }
                r->running++;
        }
        if (r->done == r->njobs)
                loop_quit(r->loop, 0);
}

static void on_signal(struct loop *l, int signo, void *ud)
{
        struct run *r = ud;
        if (signo == SIGWINCH) {
                /* the bar fits the terminal: measured again after each resize */
                progress_resize();
                return;
        }
        /* nothing new starts; the running ones end as failures */
        for (size_t i = r->next; i < r->njobs; i++) {
                r->jobs[i].code = FETCH_EXIT_FAIL;
                snprintf(r->jobs[i].reason, sizeof(r->jobs[i].reason), "not started: interrupted");
                r->done++;
        }
        r->next = r->njobs;
        for (size_t i = 0; i < r->njobs; i++)
                if (r->jobs[i].c && r->jobs[i].code < 0)
                        client_interrupt(r->jobs[i].c, signo);
        if (r->done == r->njobs)
                loop_quit(l, 0);
}

/* Leaves before the loop ran: what main allocated for the jobs goes too. */
static int bail(struct job *jobs, size_t n, struct fetch_listing *listing, int code)
{
        for (size_t i = 0; jobs && i < n; i++)
                free(jobs[i].output);
        free(jobs);
        fetch_listing_free(listing);
        return code;
}

int main(int argc, char **argv)
{
        struct fetch_options opt;
        char err[512];
        int r = fetch_options_parse(&opt, argc, argv, err, sizeof(err));
        if (r == 2)
                fprintf(stderr, "%s\n", err);
        if (r)
                return r == 1 ? 0 : FETCH_EXIT_USAGE;
        static struct swarm_secret secret;
        if (opt.secret_file) {
                /* refused at once, as a bad option is: nothing joined yet */
                if (swarm_secret_load(opt.secret_file, &secret, err, sizeof(err)) < 0) {
                        fprintf(stderr, "p2s-fetch: %s\n", err);
                        return FETCH_EXIT_USAGE;
                }
                opt.secret = &secret;
        }
        static struct fetch_listing listing;
        bool mirror = false;
        if (opt.list || opt.recursive) {
                const char *dir = opt.output_arg ? opt.output_arg : ".";
                struct stat dst;
                if (opt.recursive && (!*dir || (stat(dir, &dst) == 0 && !S_ISDIR(dst.st_mode)))) {
                        fprintf(stderr, "p2s-fetch: -o %s: -r needs a directory (try 'p2s-fetch --help')\n", dir);
                        return FETCH_EXIT_USAGE;
                }
                r = fetch_list(opt.host, opt.port, opt.prefix, opt.secret, opt.timeout_us, &listing, err,
                               sizeof(err));
                if (r) {
                        fprintf(stderr, "p2s-fetch: %s\n", err);
                        return r;
                }
                if (opt.list) {
                        fetch_listing_print(&listing, stdout);
                        fflush(stdout);
                        return ferror(stdout) ? FETCH_EXIT_LOCAL : 0;
                }
                if (!listing.n) {
                        fprintf(stderr, "p2s-fetch: nothing is served under '%s'\n", opt.prefix);
                        return FETCH_EXIT_REFUSED;
                }
                static struct fetch_job *rjobs;
                rjobs = calloc(listing.n, sizeof(*rjobs));
                mirror = true;
                if (!rjobs) {
                        fprintf(stderr, "p2s-fetch: out of memory\n");
                        return FETCH_EXIT_FAIL;
                }
                for (size_t i = 0; i < listing.n; i++)
                        rjobs[i] = (struct fetch_job){ .host = opt.host, .port = opt.port, .name = listing.e[i].name };
                opt.jobs = rjobs;
                opt.njobs = listing.n;
        }
        /* every output decided before anything is joined: a bad one is a
         * usage error now, not a rename failure after the download */
        struct job *jobs = calloc(opt.njobs, sizeof(*jobs));
        if (!jobs) {
                fprintf(stderr, "p2s-fetch: out of memory\n");
                return FETCH_EXIT_FAIL;
        }
        for (size_t i = 0; i < opt.njobs; i++) {
                struct job *j = &jobs[i];
                j->opt = opt;
                j->opt.host = opt.jobs[i].host;
                j->opt.port = opt.jobs[i].port;
                j->opt.name = opt.jobs[i].name;
                j->code = -1;
                if (mirror) {
                        /* a name that would leave DIR, or a path in the way, fails
                         * that file alone: the others are fetched */
                        const char *dir = opt.output_arg ? opt.output_arg : ".";
                        j->output = fetch_mirror_path(dir, opt.prefix, j->opt.name, j->reason, sizeof(j->reason));
                        struct stat ost;
                        int e = j->output ? fetch_mirror_dirs(dir, j->output) : 0;
                        if (!j->output) {
                                j->code = FETCH_EXIT_REFUSED;
                                j->output = strdup("-");
                        } else if (e < 0) {
                                j->code = FETCH_EXIT_LOCAL;
                                snprintf(j->reason, sizeof(j->reason), "cannot create the directories of %s: %s",
                                         j->output, strerror(-e));
                        } else if (lstat(j->output, &ost) == 0 && !S_ISREG(ost.st_mode)) {
                                j->code = FETCH_EXIT_USAGE;
                                snprintf(j->reason, sizeof(j->reason), "%s exists and is not a regular file",
                                         j->output);
                        }
                        if (!j->output) {
                                fprintf(stderr, "p2s-fetch: out of memory\n");
                                return bail(jobs, opt.njobs, &listing, FETCH_EXIT_FAIL);
                        }
                        goto resolved;
                }
                int code = output_resolve(opt.output_arg, opt.njobs, j->opt.name, &j->output, err, sizeof(err));
                if (code) {
                        fprintf(stderr, "p2s-fetch: %s\n", err);
                        return bail(jobs, opt.njobs, &listing, code);
                }
                for (size_t k = 0; k < i; k++) {
                        if (!strcmp(jobs[k].output, j->output)) {
                                fprintf(stderr, "p2s-fetch: '%s' and '%s' would both be saved as %s "
                                        "(try 'p2s-fetch --help')\n", jobs[k].opt.name, j->opt.name, j->output);
                                return bail(jobs, opt.njobs, &listing, FETCH_EXIT_USAGE);
                        }
                }
resolved:
                j->opt.output = j->output;
                j->opt.member.seed = now_usec() ^ ((uint64_t)getpid() << 32) ^ (i * 0x9e3779b97f4a7c15ull);
                /* several bars would overwrite each other's line */
                if (opt.njobs > 1 && (opt.progress == PROGRESS_AUTO || opt.progress == PROGRESS_BAR))
                        j->opt.progress = PROGRESS_PLAIN;
        }
        log_init("p2s-fetch");
        log_set_level(opt.log_level);
        /* a record never continues a progress bar's line */
        log_set_before_write(progress_interrupt);
        /* uploads use sendfile, which has no MSG_NOSIGNAL */
        signal(SIGPIPE, SIG_IGN);

        struct run run = { .jobs = jobs, .njobs = opt.njobs, .parallel = opt.parallel,
                           .summary = opt.njobs > 1 || opt.recursive };
        the_run = &run;
        run.loop = loop_new();
        if (!run.loop) {
                log_err("cannot create the event loop: %m");
                return bail(jobs, opt.njobs, &listing, FETCH_EXIT_FAIL);
        }
        loop_defer_init(&reaper, reap, &run);
        static const int sigs[] = { SIGINT, SIGTERM, SIGWINCH };
        if (loop_signals(run.loop, sigs, 3, on_signal, &run) < 0) {
                log_err("cannot handle signals: %m");
                loop_free(run.loop);
                return bail(jobs, opt.njobs, &listing, FETCH_EXIT_FAIL);
        }
        start_next(&run);
        if (run.done < run.njobs)
                loop_run(run.loop);
        int worst = 0;
        size_t ok = 0;
        for (size_t i = 0; i < run.njobs; i++) {
                struct job *j = &jobs[i];
                j->c = client_free(j->c);
                if (j->code == 0)
                        ok++;
                else if (!worst)
                        worst = j->code > 0 ? j->code : FETCH_EXIT_FAIL;
                if (run.summary)
                        fprintf(stderr, "p2s-fetch: %s %s -> %s%s%s\n", j->code == 0 ? "ok    " : "FAILED",
                                j->opt.name, j->output, j->code == 0 ? "" : ": ",
                                j->code == 0 ? "" : fetch_exit_name(j->code));
                free(j->output);
        }
        if (run.summary)
                fprintf(stderr, "p2s-fetch: %zu of %zu files fetched\n", ok, run.njobs);
        loop_free(run.loop);
        free(jobs);
        fetch_listing_free(&listing);
        return worst;
}
