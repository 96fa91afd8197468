/* SPDX-License-Identifier: MIT */
/* p2sd: serve files to swarms of p2s-fetch clients. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include "daemon/catalog.h"
#include "daemon/options.h"
#include "daemon/server.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop.h"

#define STATUS_US (2 * USEC_PER_SEC)

struct daemon {
        struct loop *loop;
        struct server *srv;
        struct loop_timer status, watchdog;
        uint64_t watchdog_us;
};

static void status_line(struct daemon *d, char *buf, size_t len)
{
        struct server_status st;
        server_get_status(d->srv, &st);
        uint64_t lookups = st.cache_hits + st.cache_misses;
        snprintf(buf, len, "%u swarms, %u members, %llu MiB in, %llu MiB out, cache hits %llu%%",
                 st.swarms, st.members, (unsigned long long)(st.bytes_in >> 20),
                 (unsigned long long)(st.bytes_out >> 20),
                 (unsigned long long)(lookups ? st.cache_hits * 100 / lookups : 0));
}

static void on_status(struct loop *l, struct loop_timer *t, void *ud)
{
        struct daemon *d = ud;
        char s[256];
        status_line(d, s, sizeof(s));
        sd_notifyf(0, "STATUS=%s", s);
        loop_timer_arm(l, t, loop_now(l) + STATUS_US);
}

static void on_watchdog(struct loop *l, struct loop_timer *t, void *ud)
{
        struct daemon *d = ud;
        sd_notify(0, "WATCHDOG=1");
        loop_timer_arm(l, t, loop_now(l) + d->watchdog_us / 2);
}

static void on_signal(struct loop *l, int signo, void *ud)
{
        struct daemon *d = ud;
        if (signo == SIGHUP) {
                log_info("SIGHUP: nothing to reload (files are given on the command line)");
                return;
        }
        log_notice("got %s, telling members and stopping", strsignal(signo));
        sd_notify(0, "STOPPING=1\nSTATUS=stopping");
        server_shutdown(d->srv);
}

int main(int argc, char **argv)
{
        struct p2sd_options opt;
        int r = p2sd_options_parse(&opt, argc, argv);
        if (r)
                return r == 1 ? 0 : 2;
        log_init("p2sd");
        log_set_level(opt.log_level);
        signal(SIGPIPE, SIG_IGN);

        char err[256];
        struct catalog *cat = catalog_new(opt.root, opt.files, opt.nfiles, err, sizeof(err));
        if (!cat) {
                log_err("%s", err);
                return 1;
        }
        struct daemon d = { 0 };
        d.loop = loop_new();
        if (!d.loop) {
                log_err("cannot create the event loop: %m");
                return 1;
        }
        d.srv = server_new(&opt, cat, d.loop);
        if (!d.srv) {
                log_err("out of memory");
                return 1;
        }
        if (server_listen(d.srv, err, sizeof(err)) < 0) {
                log_err("%s", err);
                return 1;
        }
        static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
        if (loop_signals(d.loop, sigs, 3, on_signal, &d) < 0) {
                log_err("cannot set up signal handling");
                return 1;
        }
        log_notice("listening on %s port %u (tcp+udp, control over %s, cache %llu bytes, chunk %u bytes)",
                   server_listen_desc(d.srv), server_port(d.srv), opt.control == 1 ? "udp" : "tcp",
                   (unsigned long long)opt.cache_bytes, opt.swarm.chunk_size);
        char s[256];
        status_line(&d, s, sizeof(s));
        sd_notifyf(0, "READY=1\nX_P2S_PORT=%u\nSTATUS=%s", server_port(d.srv), s);
        loop_timer_init(&d.status, on_status, &d);
        loop_timer_arm(d.loop, &d.status, loop_now(d.loop) + STATUS_US);
        if (sd_watchdog_enabled(0, &d.watchdog_us) > 0 && d.watchdog_us) {
                loop_timer_init(&d.watchdog, on_watchdog, &d);
                loop_timer_arm(d.loop, &d.watchdog, loop_now(d.loop) + d.watchdog_us / 2);
        }
        r = loop_run(d.loop);
        loop_timer_disarm(d.loop, &d.status);
        if (d.watchdog_us)
                loop_timer_disarm(d.loop, &d.watchdog);
        server_free(d.srv);
        catalog_free(cat);
        loop_free(d.loop);
        log_info("stopped");
        return r;
}
