/* SPDX-License-Identifier: MIT */
/* Value parsers and the option-table engine behind p2sd's and p2s-fetch's
 * command lines and p2sd's configuration file. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include "net.h"
#include "parse.h"

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
        if (!s || !isdigit((unsigned char)s[0]))
                return -EINVAL;
        errno = 0;
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (*end)
                return -EINVAL;
        if (errno == ERANGE || v < min || v > max)
                return -ERANGE;
        *out = v;
        return 0;
}

int parse_size(const char *s, uint64_t *out)
{
        if (!s || !isdigit((unsigned char)s[0]))
                return -EINVAL;
        errno = 0;
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        unsigned shift = 0;
        switch (toupper((unsigned char)*end)) {
        case 'K': shift = 10; end++; break;
        case 'M': shift = 20; end++; break;
        case 'G': shift = 30; end++; break;
        case 'T': shift = 40; end++; break;
        default: break;
        }
        if (shift && (!strcasecmp(end, "iB") || !strcasecmp(end, "B")))
                end += strlen(end);
        else if (!shift && !strcasecmp(end, "B"))
                end++;
        if (*end)
                return -EINVAL;
        if (shift && v > (UINT64_MAX >> shift))
                return -ERANGE;
        *out = (uint64_t)v << shift;
        return 0;
}

int parse_seconds(const char *s, uint64_t *out_us)
{
        if (!s || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
                return -EINVAL;
        /* plain decimal only: strtod would also take hex, exponents, "inf" */
        if (strspn(s, "0123456789.") != strlen(s) || strchr(s, '.') != strrchr(s, '.'))
                return -EINVAL;
        errno = 0;
        char *end;
        double v = strtod(s, &end);
        if (*end || errno == ERANGE || !isfinite(v))
                return -EINVAL;
        if (v < 0 || v > 1e6)
                return -ERANGE;
        *out_us = (uint64_t)llround(v * 1e6);
        return 0;
}

/* ---- option tables ------------------------------------------------------- */

const struct opt_choice opt_log_levels[] = {
        { "err", LOG_ERR, false }, { "warning", LOG_WARNING, false }, { "notice", LOG_NOTICE, false },
        { "info", LOG_INFO, false }, { "debug", LOG_DEBUG, false },
        { "error", LOG_ERR, true }, { "warn", LOG_WARNING, true },
        { "3", LOG_ERR, true }, { "4", LOG_WARNING, true }, { "5", LOG_NOTICE, true },
        { "6", LOG_INFO, true }, { "7", LOG_DEBUG, true }, { 0 },
};

static uint64_t load_uint(const void *p, size_t size)
{
        switch (size) {
        case 1: { uint8_t v; memcpy(&v, p, 1); return v; }
        case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
        case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
        default: { uint64_t v; memcpy(&v, p, 8); return v; }
        }
}

static void store_uint(void *p, size_t size, uint64_t v)
{
        switch (size) {
        case 1: { uint8_t x = (uint8_t)v; memcpy(p, &x, 1); break; }
        case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
        case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
        default: memcpy(p, &v, 8); break;
        }
}

/* OPT_CHOICE fields are int or an enum, which gcc and clang make int-sized. */
static int load_int(const void *p)
{
        int v;
        memcpy(&v, p, sizeof(v));
        return v;
}

static void format_size(uint64_t v, char *buf, size_t len)
{
        static const char units[] = "KMGT";
        int u = -1;
        while (u < 3 && v && v % 1024 == 0) {
                v /= 1024;
                u++;
        }
        if (u < 0)
                snprintf(buf, len, "%llu", (unsigned long long)v);
        else
                snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u]);
}

void opt_format_value(const struct opt *d, uint64_t v, char *buf, size_t len)
{
        if (d->kind == OPT_SIZE) {
                format_size(v, buf, len);
        } else if (d->kind == OPT_SECONDS) {
                int n = snprintf(buf, len, "%llu.%06llu", (unsigned long long)(v / 1000000),
                                 (unsigned long long)(v % 1000000));
                /* "3.000000" -> "3", "0.500000" -> "0.5" */
                while (n > 0 && (size_t)n < len && buf[n - 1] == '0')
                        buf[--n] = 0;
                if (n > 0 && (size_t)n < len && buf[n - 1] == '.')
                        buf[--n] = 0;
        } else {
                snprintf(buf, len, "%llu", (unsigned long long)v);
        }
}

/* "a, b or c" */
static void format_choices(const struct opt *d, char *buf, size_t len)
{
        const char *names[16];
        size_t k = 0, n = 0;
        for (const struct opt_choice *c = d->choices; c->name && k < 16; c++)
                if (!c->alias)
                        names[k++] = c->name;
        buf[0] = 0;
        for (size_t i = 0; i < k && n < len; i++)
                n += (size_t)snprintf(buf + n, len - n, "%s%s", i == 0 ? "" : i + 1 == k ? " or " : ", ",
                                      names[i]);
}

static int range_err(const struct opt *d, const char *what, char *err, size_t errlen)
{
        char lo[32], hi[32];
        opt_format_value(d, d->min, lo, sizeof(lo));
        opt_format_value(d, d->max, hi, sizeof(hi));
        snprintf(err, errlen, "must be %s%s%sbetween %s and %s%s", what ? "a " : "", what ? what : "",
                 what ? " " : "", lo, hi, d->kind == OPT_SECONDS && !what ? " seconds" : "");
        if (d->kind == OPT_SIZE && what)
                snprintf(err + strlen(err), errlen - strlen(err), " (bytes, or with a K, M, G or T suffix)");
        return -EINVAL;
}

int opt_set(const struct opt *d, void *obj, const char *val, char *err, size_t errlen)
{
        char *field = (char *)obj + d->offset;
        uint64_t v = 0;
        int r;
        switch (d->kind) {
        case OPT_ACTION:
                return 0;
        case OPT_FLAG:
                assert(d->size == sizeof(bool));
                *(bool *)field = true;
                return 0;
        case OPT_STRING:
        case OPT_ADDRESS:
                assert(d->size == sizeof(const char *));
                if (d->kind == OPT_ADDRESS) {
                        struct sockaddr_storage ss;
                        socklen_t sl;
                        if (net_parse_addr(val, 0, &ss, &sl) < 0) {
                                snprintf(err, errlen, "must be an IPv4 or IPv6 address");
                                return -EINVAL;
                        }
                } else if (!*val) {
                        snprintf(err, errlen, "must not be empty");
                        return -EINVAL;
                }
                memcpy(field, &val, sizeof(val));
                return 0;
        case OPT_UINT:
                r = parse_uint(val, 0, UINT64_MAX, &v);
                if (r == -EINVAL)
                        return range_err(d, "number", err, errlen);
                break;
        case OPT_SIZE:
                r = parse_size(val, &v);
                if (r == -EINVAL)
                        return range_err(d, "size", err, errlen);
                break;
        case OPT_SECONDS:
                r = parse_seconds(val, &v);
                if (r == -EINVAL)
                        return range_err(d, "number of seconds", err, errlen);
                break;
        case OPT_CHOICE:
                assert(d->size == sizeof(int));
                for (const struct opt_choice *c = d->choices; c->name; c++)
                        if (!strcmp(c->name, val)) {
                                memcpy(field, &c->value, sizeof(int));
                                return 0;
                        }
                char names[256];
                format_choices(d, names, sizeof(names));
                snprintf(err, errlen, "must be %s", names);
                return -EINVAL;
        default:
                return -EINVAL;
        }
        if (r < 0 || v < d->min || v > d->max)
                return range_err(d, NULL, err, errlen);
        store_uint(field, d->size, v);
        return 0;
}

void opt_format(const struct opt *d, const void *obj, char *buf, size_t len)
{
        const char *field = (const char *)obj + d->offset;
        const char *s;
        switch (d->kind) {
        case OPT_ACTION:
                snprintf(buf, len, "%s", "");
                break;
        case OPT_FLAG:
                snprintf(buf, len, "%s", *(const bool *)field ? "yes" : "no");
                break;
        case OPT_STRING:
        case OPT_ADDRESS:
                memcpy(&s, field, sizeof(s));
                snprintf(buf, len, "%s", s ? s : d->unset_text ? d->unset_text : "");
                break;
        case OPT_CHOICE:
                for (const struct opt_choice *c = d->choices; c->name; c++)
                        if (!c->alias && c->value == load_int(field)) {
                                snprintf(buf, len, "%s", c->name);
                                return;
                        }
                snprintf(buf, len, "?");
                break;
        default:
                opt_format_value(d, load_uint(field, d->size), buf, len);
                break;
        }
}

void opt_copy(const struct opt *d, void *dst, const void *src)
{
        if (d->kind != OPT_ACTION)
                memcpy((char *)dst + d->offset, (const char *)src + d->offset, d->size);
}

const struct opt *opt_find(const struct opt *table, size_t n, const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (!strcmp(table[i].name, name))
                        return &table[i];
        return NULL;
}

#define HELP_COLUMN 30
#define HELP_WIDTH 79

void opt_help(FILE *f, const struct opt *table, size_t n, const void *defaults)
{
        for (size_t i = 0; i < n; i++) {
                const struct opt *d = &table[i];
                if (d->flags & OPT_NO_COMMAND_LINE)
                        continue;
                char left[128], suffix[160] = "", def[64] = "";
                int l = snprintf(left, sizeof(left), "  %c%c%s--%s%s%s", d->short_name ? '-' : ' ',
                                 d->short_name ? d->short_name : ' ', d->short_name ? ", " : "  ", d->name,
                                 d->metavar ? " " : "", d->metavar ? d->metavar : "");
                if (d->default_text)
                        snprintf(def, sizeof(def), "%s", d->default_text);
                else if (d->kind >= OPT_UINT)
                        opt_format(d, defaults, def, sizeof(def));
                if (d->kind == OPT_UINT || d->kind == OPT_SIZE || d->kind == OPT_SECONDS) {
                        char lo[32], hi[32];
                        opt_format_value(d, d->min, lo, sizeof(lo));
                        opt_format_value(d, d->max, hi, sizeof(hi));
                        snprintf(suffix, sizeof(suffix), " (%s to %s%s%s%s)", lo, hi,
                                 d->kind == OPT_SECONDS ? " s" : "", *def ? ", default " : "", def);
                } else if (*def) {
                        snprintf(suffix, sizeof(suffix), " (default %s)", def);
                }
                fputs(left, f);
                int col = l;
                if (col + 2 > HELP_COLUMN) {
                        fputs("  ", f);
                        col += 2;
                }
                const char *h = d->help;
                for (;;) {
                        const char *nl = strchr(h, '\n');
                        int hl = nl ? (int)(nl - h) : (int)strlen(h);
                        fprintf(f, "%*s%.*s", col < HELP_COLUMN ? HELP_COLUMN - col : 0, "", hl, h);
                        col = (col < HELP_COLUMN ? HELP_COLUMN : col) + hl;
                        if (!nl)
                                break;
                        fputc('\n', f);
                        col = 0;
                        h = nl + 1;
                }
                if (*suffix && col + (int)strlen(suffix) > HELP_WIDTH)
                        fprintf(f, "\n%*s%s\n", HELP_COLUMN, "", suffix + 1);
                else
                        fprintf(f, "%s\n", suffix);
        }
}

static bool takes_argument(const struct opt *d)
{
        return d->kind != OPT_ACTION && d->kind != OPT_FLAG;
}

void opt_parser_init(struct opt_parser *p, const struct opt *table, size_t n)
{
        assert(n <= OPT_MAX);
        p->table = table;
        p->n = n;
        size_t s = 0, l = 0;
        p->optstring[s++] = ':';        /* ':' for a missing argument, '?' for an unknown option */
        for (size_t i = 0; i < n; i++) {
                const struct opt *d = &table[i];
                if (d->flags & OPT_NO_COMMAND_LINE)
                        continue;
                if (d->short_name) {
                        p->optstring[s++] = d->short_name;
                        if (takes_argument(d))
                                p->optstring[s++] = ':';
                }
                p->longopts[l++] = (struct option){ d->name, takes_argument(d) ? required_argument : no_argument,
                                                    NULL, d->short_name ? d->short_name : 0x100 + (int)i };
        }
        p->optstring[s] = 0;
        p->longopts[l] = (struct option){ 0 };
        optind = 0;     /* glibc: start over, as for a new program */
        opterr = 0;     /* the caller words the one line */
}

static const struct opt *by_val(const struct opt_parser *p, int c)
{
        if (c >= 0x100)
                return (size_t)(c - 0x100) < p->n ? &p->table[c - 0x100] : NULL;
        for (size_t i = 0; i < p->n; i++)
                if (p->table[i].short_name == c && !(p->table[i].flags & OPT_NO_COMMAND_LINE))
                        return &p->table[i];
        return NULL;
}

int opt_parser_next(struct opt_parser *p, int argc, char **argv, const struct opt **d, const char **arg,
                    char *err, size_t errlen)
{
        int c = getopt_long(argc, argv, p->optstring, p->longopts, NULL);
        if (c == -1)
                return 0;
        const char *tok = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        if (c == ':') {
                snprintf(err, errlen, "option '%s' needs an argument", tok);
                return -EINVAL;
        }
        if (c == '?') {
                const struct opt *known = optopt ? by_val(p, optopt) : NULL;
                if (known && !strncmp(tok, "--", 2)) {
                        snprintf(err, errlen, "option '--%s' takes no argument", known->name);
                } else if (optopt) {
                        snprintf(err, errlen, "unknown option '-%c'", optopt);
                } else {
                        size_t tl = strcspn(tok, "="), matches = 0;
                        for (size_t i = 0; tl > 2 && i < p->n; i++)
                                matches += !strncmp(p->table[i].name, tok + 2, tl - 2) &&
                                           !(p->table[i].flags & OPT_NO_COMMAND_LINE);
                        snprintf(err, errlen, "%s option '%.*s'", matches > 1 ? "ambiguous" : "unknown",
                                 (int)tl, tok);
                }
                return -EINVAL;
        }
        *d = by_val(p, c);
        *arg = optarg;
        if (!*d) {
                snprintf(err, errlen, "unknown option '%s'", tok);
                return -EINVAL;
        }
        return 1;
}
