/* SPDX-License-Identifier: MIT */
/* p2s-fetch: join a p2s swarm and leave a verified copy of one file. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "fetch/client.h"
#include "fetch/options.h"
#include "fetch/progress.h"
#include "proto/cookie.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop.h"

int main(int argc, char **argv)
{
        struct fetch_options opt;
        char err[512];
        int r = fetch_options_parse(&opt, argc, argv, err, sizeof(err));
        if (r == 2)
                fprintf(stderr, "%s\n", err);
        if (r)
                return r == 1 ? 0 : 2;
        static struct swarm_secret secret;
        if (opt.secret_file) {
                /* refused at once, as a bad option is: nothing joined yet */
                if (swarm_secret_load(opt.secret_file, &secret, err, sizeof(err)) < 0) {
                        fprintf(stderr, "p2s-fetch: %s\n", err);
                        return 2;
                }
                opt.secret = &secret;
        }
        opt.member.seed = now_usec() ^ ((uint64_t)getpid() << 32);
        log_init("p2s-fetch");
        log_set_level(opt.log_level);
        /* a record never continues a progress bar's line */
        log_set_before_write(progress_interrupt);
        /* uploads use sendfile, which has no MSG_NOSIGNAL */
        signal(SIGPIPE, SIG_IGN);

        struct loop *loop = loop_new();
        if (!loop) {
                log_err("cannot create the event loop: %m");
                return 1;
        }
        struct client *c = client_new(&opt, loop, err, sizeof(err));
        if (!c) {
                log_err("%s", err);
                loop_free(loop);
                return 1;
        }
        if (client_start(c) < 0) {
                log_err("cannot start: %m");
                return 1;
        }
        r = loop_run(loop);
        if (r != 0)
                log_err("%s: %s", opt.name, client_reason(c));
        else
                log_debug("%s: %s", opt.name, client_reason(c));
        client_log_stats(c);
        client_free(c);
        loop_free(loop);
        return r == 0 ? 0 : 1;
}
