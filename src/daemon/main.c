/* SPDX-License-Identifier: MIT */
/* p2sd: serve files to swarms of p2s-fetch clients. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include "daemon/catalog.h"
#include "daemon/conffile.h"
#include "daemon/options.h"
#include "daemon/server.h"
#include "proto/cookie.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop.h"

#define STATUS_US (2 * USEC_PER_SEC)

struct daemon {
        struct loop *loop;
        struct server *srv;
        struct p2sd_options cmd;        /* the command line, laid over every reload */
        struct p2sd_conf *boot;         /* as started: listen, port and control stay */
        struct p2sd_conf *conf;         /* in force (== boot until the first reload) */
        struct catalog *cat;
        struct loop_timer status, watchdog;
        uint64_t watchdog_us;
        bool stopping;
        struct swarm_secret secret;     /* --secret-file; len 0: none */
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

/* Pinged from the loop, so a stuck loop starves the watchdog as it should. */
static void on_watchdog(struct loop *l, struct loop_timer *t, void *ud)
{
        struct daemon *d = ud;
        sd_notify(0, "WATCHDOG=1");
        loop_timer_arm(l, t, loop_now(l) + d->watchdog_us / 2);
}

/* ---- SIGHUP: re-read the configuration --------------------------------- */

static void log_change(const char *key, const char *old, const char *new, void *ud)
{
        if (!strcmp(key, "file")) {
                if (new)
                        log_notice("reload: now serving file %s", new);
                else
                        log_notice("reload: no longer serving file %s", old);
        } else {
                log_notice("reload: %s changed from %s to %s", key, old, new);
        }
}

/* Listen address, port, control mode and datagram size (P2SD_OPT_RESTART)
 * belong to the running sockets and to members that learned them at
 * WELCOME: keep the values p2sd started with. */
static void keep_restart_only(struct daemon *d, struct p2sd_options *o)
{
        const struct p2sd_options *b = &d->boot->opt;
        for (size_t i = 0; i < p2sd_option_count; i++) {
                const struct opt *k = &p2sd_option_table[i];
                if (!(k->flags & P2SD_OPT_RESTART))
                        continue;
                char vb[128], vn[128];
                opt_format(k, b, vb, sizeof(vb));
                opt_format(k, o, vn, sizeof(vn));
                if (strcmp(vb, vn))
                        log_warning("reload: %s = %s in the configuration, but %s stays %s until p2sd is restarted",
                                    k->name, vn, k->name, vb);
                opt_copy(k, o, b);
        }
}

static void reload(struct daemon *d)
{
        char err[512], s[256];
        const char *what = d->cmd.config ? d->cmd.config : "the command line";
        /* systemd >= 253 wants MONOTONIC_USEC with RELOADING=1; older ones ignore it */
        sd_notifyf(0, "RELOADING=1\nSTATUS=reloading %s\nMONOTONIC_USEC=%llu", what,
                   (unsigned long long)now_usec());
        log_info("SIGHUP: reloading %s", what);
        struct p2sd_conf *nc = p2sd_conf_load(&d->cmd, err, sizeof(err));
        struct catalog *cat = NULL;
        if (nc)
                cat = catalog_new(nc->opt.root, nc->opt.files, nc->opt.nfiles, err, sizeof(err));
        if (!cat) {
                log_err("reload failed, keeping the previous configuration: %s", err);
                p2sd_conf_free(nc);
        } else {
                keep_restart_only(d, &nc->opt);
                unsigned n = p2sd_conf_diff(&d->conf->opt, &nc->opt, log_change, d);
                catalog_free(server_reconfigure(d->srv, &nc->opt, cat));
                d->cat = cat;
                if (d->conf != d->boot)
                        p2sd_conf_free(d->conf);
                d->conf = nc;
                log_set_level(nc->opt.log_level);
                log_notice("reloaded %s: %u change%s, applied to swarms that start from now on", what, n,
                           n == 1 ? "" : "s");
        }
        status_line(d, s, sizeof(s));
        sd_notifyf(0, "READY=1\nSTATUS=%s", s);
}

static void on_signal(struct loop *l, int signo, void *ud)
{
        struct daemon *d = ud;
        if (d->stopping)
                return;
        if (signo == SIGHUP) {
                reload(d);
                return;
        }
        d->stopping = true;
        log_notice("got %s, telling members and stopping", strsignal(signo));
        sd_notify(0, "STOPPING=1\nSTATUS=stopping");
        server_shutdown(d->srv);
}

/* ---- startup ------------------------------------------------------------ */

/* Every member costs a descriptor: the soft limit (often 1024) is raised to
 * the hard one, which the unit sets with LimitNOFILE=. */
static void raise_nofile(void)
{
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_debug("cannot raise the open files limit from %llu: %m", (unsigned long long)was);
        else
                log_debug("open files limit raised from %llu to %llu", (unsigned long long)was,
                          (unsigned long long)rl.rlim_cur);
}

static int run(struct daemon *d)
{
        char err[512], s[256];
        d->cat = catalog_new(d->conf->opt.root, d->conf->opt.files, d->conf->opt.nfiles, err, sizeof(err));
        if (!d->cat) {
                log_err("%s", err);
                return 1;
        }
        d->loop = loop_new();
        if (!d->loop) {
                log_err("cannot create the event loop: %m");
                return 1;
        }
        d->srv = server_new(&d->conf->opt, d->cat, d->loop);
        if (!d->srv) {
                log_err("out of memory");
                return 1;
        }
        server_set_swarm_secret(d->srv, &d->secret);
        if (server_listen(d->srv, err, sizeof(err)) < 0) {
                log_err("%s", err);
                return 1;
        }
        static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
        if (loop_signals(d->loop, sigs, 3, on_signal, d) < 0) {
                log_err("cannot set up signal handling");
                return 1;
        }
        const struct p2sd_options *o = &d->conf->opt;
        log_notice("listening on %s port %u (tcp+udp, control over %s, cache %llu bytes, chunk %u bytes)",
                   server_listen_desc(d->srv), server_port(d->srv), o->control == P2S_CONTROL_UDP ? "udp" : "tcp",
                   (unsigned long long)o->cache_bytes, o->swarm.chunk_size);
        status_line(d, s, sizeof(s));
        sd_notifyf(0, "READY=1\nX_P2S_PORT=%u\nSTATUS=%s", server_port(d->srv), s);
        loop_timer_init(&d->status, on_status, d);
        loop_timer_arm(d->loop, &d->status, loop_now(d->loop) + STATUS_US);
        if (sd_watchdog_enabled(0, &d->watchdog_us) > 0 && d->watchdog_us) {
                log_debug("watchdog: pinging every %llu ms", (unsigned long long)(d->watchdog_us / 2000));
                loop_timer_init(&d->watchdog, on_watchdog, d);
                loop_timer_arm(d->loop, &d->watchdog, loop_now(d->loop) + d->watchdog_us / 2);
        } else {
                d->watchdog_us = 0;
        }
        int r = loop_run(d->loop);
        loop_timer_disarm(d->loop, &d->status);
        if (d->watchdog_us)
                loop_timer_disarm(d->loop, &d->watchdog);
        log_info("stopped");
        return r;
}

int main(int argc, char **argv)
{
        struct daemon d = { 0 };
        char err[512];
        int r = p2sd_options_parse(&d.cmd, argc, argv, err, sizeof(err));
        if (r == 2)
                fprintf(stderr, "%s\n", err);
        if (r)
                return r == 1 ? 0 : 2;
        log_init("p2sd");
        log_set_level(d.cmd.log_level);
        signal(SIGPIPE, SIG_IGN);

        d.boot = d.conf = p2sd_conf_load(&d.cmd, err, sizeof(err));
        if (!d.conf) {
                log_err("%s", err);
                return 2;
        }
        log_set_level(d.conf->opt.log_level);
        raise_nofile();
        /* a restart-only option: a reload keeps the key p2sd started with */
        if (d.conf->opt.secret_file && swarm_secret_load(d.conf->opt.secret_file, &d.secret, err, sizeof(err)) < 0) {
                log_err("%s", err);
                p2sd_conf_free(d.boot);
                return 2;
        }
        r = run(&d);
        explicit_bzero(&d.secret, sizeof(d.secret));
        server_free(d.srv);
        catalog_free(d.cat);
        loop_free(d.loop);
        if (d.conf != d.boot)
                p2sd_conf_free(d.conf);
        p2sd_conf_free(d.boot);
        return r;
}
