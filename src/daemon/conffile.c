/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/conffile.h"

#define CONF_MAX_BYTES (1u << 20)       /* a configuration, not a data file */

struct p2sd_conf *p2sd_conf_free(struct p2sd_conf *c)
{
        if (!c)
                return NULL;
        free(c->files);
        free(c->text);
        free(c);
        return NULL;
}

static int read_all(const char *path, char **out, char *err, size_t errlen)
{
        FILE *f = fopen(path, "re");
        if (!f) {
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                return -errno;
        }
        size_t cap = 4096, n = 0;
        char *buf = malloc(cap);
        int r = 0;
        while (buf) {
                if (n + 1 >= cap) {
                        char *nb = cap < CONF_MAX_BYTES ? realloc(buf, cap * 2) : NULL;
                        if (!nb) {
                                snprintf(err, errlen, "%s: %s", path,
                                         cap < CONF_MAX_BYTES ? "out of memory" : "larger than 1 MiB");
                                r = cap < CONF_MAX_BYTES ? -ENOMEM : -EFBIG;
                                break;
                        }
                        buf = nb;
                        cap *= 2;
                }
                size_t got = fread(buf + n, 1, cap - n - 1, f);
                n += got;
                if (got == 0) {
                        if (ferror(f)) {
                                snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
                                r = -EIO;
                        }
                        break;
                }
        }
        fclose(f);
        if (!buf) {
                snprintf(err, errlen, "%s: out of memory", path);
                return -ENOMEM;
        }
        if (r < 0) {
                free(buf);
                return r;
        }
        buf[n] = 0;
        if (strlen(buf) != n) {
                snprintf(err, errlen, "%s: contains a NUL byte: not a text file", path);
                free(buf);
                return -EINVAL;
        }
        *out = buf;
        return 0;
}

static char *trim(char *s)
{
        while (*s == ' ' || *s == '\t')
                s++;
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                s[--n] = 0;
        return s;
}

static bool known_key(const char *key)
{
        for (const char *const *k = p2sd_option_keys; *k; k++)
                if (!strcmp(*k, key))
                        return true;
        return false;
}

/* Parses c->text into c->opt (which holds the defaults). */
static int parse(struct p2sd_conf *c, const char *path, char *err, size_t errlen)
{
        unsigned first_line[32] = { 0 };        /* by P2SD_SET_* bit index */
        size_t nfiles = 0, cap = 0;
        char *line = c->text;
        for (unsigned lineno = 1; line; lineno++) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = 0;
                char *s = trim(line);
                line = nl ? nl + 1 : NULL;
                if (!*s || *s == '#')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq) {
                        snprintf(err, errlen, "%s:%u: expected 'key = value', got '%.64s'", path, lineno, s);
                        return -EINVAL;
                }
                *eq = 0;
                char *key = trim(s), *val = trim(eq + 1);
                if (!known_key(key)) {
                        snprintf(err, errlen, "%s:%u: unknown key '%.64s'", path, lineno, key);
                        return -EINVAL;
                }
                if (!*val) {
                        snprintf(err, errlen, "%s:%u: '%s' needs a value", path, lineno, key);
                        return -EINVAL;
                }
                if (!strcmp(key, "file")) {
                        if (nfiles + 1 >= cap) {
                                cap = cap ? cap * 2 : 8;
                                char **nf = realloc(c->files, cap * sizeof(*nf));
                                if (!nf) {
                                        snprintf(err, errlen, "%s: out of memory", path);
                                        return -ENOMEM;
                                }
                                c->files = nf;
                        }
                        c->files[nfiles++] = val;
                        c->files[nfiles] = NULL;
                        continue;
                }
                char why[160];
                unsigned bit;
                if (p2sd_option_set(&c->opt, key, val, &bit, why, sizeof(why)) < 0) {
                        snprintf(err, errlen, "%s:%u: %s: %s", path, lineno, key, why);
                        return -EINVAL;
                }
                unsigned idx = (unsigned)__builtin_ctz(bit);
                if (first_line[idx]) {
                        snprintf(err, errlen, "%s:%u: '%s' was already set on line %u", path, lineno, key,
                                 first_line[idx]);
                        return -EINVAL;
                }
                first_line[idx] = lineno;
        }
        c->opt.files = c->files;
        c->opt.nfiles = (int)nfiles;
        if (c->opt.root && nfiles) {
                snprintf(err, errlen, "%s: 'root' and 'file' cannot both be set", path);
                return -EINVAL;
        }
        return 0;
}

/* The command line wins over the file, key by key. */
static void overlay(struct p2sd_options *o, const struct p2sd_options *cmd)
{
        unsigned s = cmd->set;
        if (s & P2SD_SET_ROOT) {
                o->root = cmd->root;
                o->files = cmd->files;
                o->nfiles = cmd->nfiles;
        }
        if (s & P2SD_SET_LISTEN)
                o->listen = cmd->listen;
        if (s & P2SD_SET_PORT)
                o->port = cmd->port;
        if (s & P2SD_SET_CONTROL)
                o->control = cmd->control;
        if (s & P2SD_SET_MAX_DGRAM)
                o->max_datagram = cmd->max_datagram;
        if (s & P2SD_SET_MIN_CLIENTS)
                o->swarm.min_clients = cmd->swarm.min_clients;
        if (s & P2SD_SET_GATHER)
                o->swarm.gather_timeout_us = cmd->swarm.gather_timeout_us;
        if (s & P2SD_SET_REPLICAS)
                o->swarm.replicas = cmd->swarm.replicas;
        if (s & P2SD_SET_CACHE)
                o->cache_bytes = cmd->cache_bytes;
        if (s & P2SD_SET_CHUNK)
                o->swarm.chunk_size = cmd->swarm.chunk_size;
        if (s & P2SD_SET_QUERY)
                o->swarm.query = cmd->swarm.query;
        if (s & P2SD_SET_LOG_LEVEL)
                o->log_level = cmd->log_level;
        o->config = cmd->config;
        o->set = cmd->set;
}

struct p2sd_conf *p2sd_conf_load(const struct p2sd_options *cmd, char *err, size_t errlen)
{
        struct p2sd_conf *c = calloc(1, sizeof(*c));
        if (!c) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        p2sd_options_defaults(&c->opt);
        if (cmd->config) {
                if (read_all(cmd->config, &c->text, err, errlen) < 0 ||
                    parse(c, cmd->config, err, errlen) < 0)
                        return p2sd_conf_free(c);
        }
        overlay(&c->opt, cmd);
        if (p2sd_options_check(&c->opt, err, errlen) < 0) {
                if (cmd->config)
                        snprintf(err, errlen, "%s: nothing to serve: set 'root' or 'file' "
                                 "(or give --root or FILE arguments)", cmd->config);
                return p2sd_conf_free(c);
        }
        return c;
}

static bool has_file(const struct p2sd_options *o, const char *f)
{
        for (int i = 0; i < o->nfiles; i++)
                if (!strcmp(o->files[i], f))
                        return true;
        return false;
}

unsigned p2sd_conf_diff(const struct p2sd_options *a, const struct p2sd_options *b,
                        p2sd_conf_diff_fn *fn, void *ud)
{
        unsigned n = 0;
        for (const char *const *k = p2sd_option_keys; *k; k++) {
                if (!strcmp(*k, "file"))
                        continue;
                char va[256], vb[256];
                p2sd_option_format(a, *k, va, sizeof(va));
                p2sd_option_format(b, *k, vb, sizeof(vb));
                if (strcmp(va, vb)) {
                        fn(*k, va, vb, ud);
                        n++;
                }
        }
        for (int i = 0; i < b->nfiles; i++)
                if (!has_file(a, b->files[i])) {
                        fn("file", NULL, b->files[i], ud);
                        n++;
                }
        for (int i = 0; i < a->nfiles; i++)
                if (!has_file(b, a->files[i])) {
                        fn("file", a->files[i], NULL, ud);
                        n++;
                }
        return n;
}
