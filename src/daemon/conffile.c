/* SPDX-License-Identifier: MIT */
/* p2sd.conf(5): reading, the layers, and what changed on a reload; the keys
 * and their values are p2sd_option_table's. */
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

/* There is no quoting: a '#' at the start or after a blank starts a comment. */
static void strip_comment(char *s)
{
        for (char *p = s; *p; p++)
                if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
                        *p = 0;
                        return;
                }
}

/* Parses c->text into c->opt (which holds the defaults). */
static int parse(struct p2sd_conf *c, const char *path, char *err, size_t errlen)
{
        unsigned first_line[OPT_MAX] = { 0 };   /* by table index */
        size_t nfiles = 0, cap = 0;
        char *line = c->text;
        for (unsigned lineno = 1; line; lineno++) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = 0;
                strip_comment(line);
                char *s = trim(line);
                line = nl ? nl + 1 : NULL;
                if (!*s)
                        continue;
                char *eq = strchr(s, '=');
                if (!eq) {
                        snprintf(err, errlen, "%s:%u: expected 'key = value', got '%.64s'", path, lineno, s);
                        return -EINVAL;
                }
                *eq = 0;
                char *key = trim(s), *val = trim(eq + 1);
                const struct opt *d = p2sd_option_key(key);
                if (!d) {
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
                size_t idx = (size_t)(d - p2sd_option_table);
                if (first_line[idx]) {
                        snprintf(err, errlen, "%s:%u: '%s' was already set on line %u", path, lineno, key,
                                 first_line[idx]);
                        return -EINVAL;
                }
                char why[160];
                if (opt_set(d, &c->opt, val, why, sizeof(why)) < 0) {
                        snprintf(err, errlen, "%s:%u: %s = %s: %s", path, lineno, key, val, why);
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

/* The command line wins over the file, key by key; --root or FILE
 * arguments replace both root and file. */
static void overlay(struct p2sd_options *o, const struct p2sd_options *cmd)
{
        for (size_t i = 0; i < p2sd_option_count; i++) {
                const struct opt *d = &p2sd_option_table[i];
                if (cmd->set & d->set_bit)
                        opt_copy(d, o, cmd);
        }
        if (cmd->set & P2SD_SET_ROOT) {
                o->files = cmd->files;
                o->nfiles = cmd->nfiles;
        }
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
        char why[256];
        if (p2sd_options_check(&c->opt, true, why, sizeof(why)) < 0) {
                if (cmd->config)
                        snprintf(err, errlen, "%s: %s", cmd->config, why);
                else
                        snprintf(err, errlen, "%s", why);
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
        for (size_t i = 0; i < p2sd_option_count; i++) {
                const struct opt *d = &p2sd_option_table[i];
                if (d->kind == OPT_ACTION || (d->flags & P2SD_OPT_NO_FILE))
                        continue;       /* "file" below */
                char va[256], vb[256];
                opt_format(d, a, va, sizeof(va));
                opt_format(d, b, vb, sizeof(vb));
                if (strcmp(va, vb)) {
                        fn(d->name, va, vb, ud);
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
