/* SPDX-License-Identifier: MIT */
/* p2sd's options through its one table: the command line and the
 * configuration file set the same struct from the same text, every range
 * bound is accepted and every value past it refused with the range in the
 * message, --help lists every option, and the merged options are checked
 * by one function whichever way they came. */
#include <check.h>
#include "helptext.h"
#include "runner.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/conffile.h"
#include "daemon/options.h"

static char tmpdir[256];
static char conf_path[300];

static void tmp_setup(void)
{
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof(tmpdir), "%s/p2s-options-XXXXXX", base && *base ? base : "/tmp");
        ck_assert(mkdtemp(tmpdir));
        snprintf(conf_path, sizeof(conf_path), "%s/p2sd.conf", tmpdir);
}

static void tmp_teardown(void)
{
        unlink(conf_path);
        rmdir(tmpdir);
}

/* argv for p2sd_options_parse: "p2sd" then args, NULL-terminated; getopt
 * permutes the pointers, so each call gets a fresh copy. */
struct args {
        char *v[64];
        int n;
};

/* getopt takes char **: writable copies, kept in a ring (reachable, not leaked) */
static char *own(const char *s)
{
        static char *ring[64];
        static unsigned n;
        char **slot = &ring[n++ % 64];
        free(*slot);
        *slot = strdup(s);
        ck_assert_ptr_nonnull(*slot);
        return *slot;
}

static void args_init(struct args *a, const char *const *args)
{
        a->n = 0;
        a->v[a->n++] = own("p2sd");
        for (; args && *args; args++) {
                ck_assert(a->n < 63);
                a->v[a->n++] = own(*args);
        }
        a->v[a->n] = NULL;
}

/* o->files points into the argv: a few stay valid at once */
static int parse(struct p2sd_options *o, const char *const *args, char *err, size_t errlen)
{
        static struct args pool[4];
        static unsigned next;
        struct args *a = &pool[next++ % 4];
        args_init(a, args);
        err[0] = 0;
        return p2sd_options_parse(o, a->n, a->v, err, errlen);
}

static void write_conf(const char *text)
{
        FILE *f = fopen(conf_path, "we");
        ck_assert(f);
        ck_assert(fputs(text, f) >= 0);
        ck_assert(fclose(f) == 0);
}

/* p2sd --config FILE [args], FILE holding text: the merged options, or
 * NULL with the message in err. */
static struct p2sd_conf *load(const char *text, const char *const *args, struct p2sd_options *cmd, char *err,
                              size_t errlen)
{
        write_conf(text);
        const char *argv[32] = { "--config", conf_path };
        int n = 2;
        for (; args && *args; args++)
                argv[n++] = *args;
        argv[n] = NULL;
        char perr[512];
        ck_assert_msg(parse(cmd, argv, perr, sizeof(perr)) == 0, "%s", perr);
        return p2sd_conf_load(cmd, err, errlen);
}

/* A value other than the default for every key: the test fails when an
 * option is added to the table without one. */
static const struct sample {
        const char *key, *val;
} samples[] = {
        { "root", "/srv/x" }, { "listen", "127.0.0.1" }, { "port", "1234" }, { "control", "tcp" },
        { "secret-file", "/etc/p2s/secret" },
        { "max-datagram", "9000" }, { "min-clients", "5" }, { "gather-timeout", "1.5" }, { "replicas", "3" },
        { "cache", "3M" }, { "chunk-size", "128K" }, { "query", "broadcast" }, { "log-level", "debug" },
        { "max-members", "50" }, { "max-connections", "2000" }, { "frame-timeout", "5" },
};
#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static const char *sample_of(const char *key)
{
        for (size_t i = 0; i < NSAMPLES; i++)
                if (!strcmp(samples[i].key, key))
                        return samples[i].val;
        return NULL;
}

static bool is_value_key(const struct opt *d)
{
        return !(d->flags & P2SD_OPT_NO_FILE) && d->kind != OPT_ACTION;
}

static void assert_same(const struct p2sd_options *a, const struct p2sd_options *b, const char *what)
{
        for (size_t i = 0; i < p2sd_option_count; i++) {
                const struct opt *d = &p2sd_option_table[i];
                if (!is_value_key(d))
                        continue;
                char va[128], vb[128];
                opt_format(d, a, va, sizeof(va));
                opt_format(d, b, vb, sizeof(vb));
                ck_assert_msg(!strcmp(va, vb), "%s: %s is %s on the command line, %s from the file", what,
                              d->name, va, vb);
                if (d->kind == OPT_STRING || d->kind == OPT_ADDRESS)
                        continue;       /* pointers into different buffers */
                ck_assert_msg(!memcmp((const char *)a + d->offset, (const char *)b + d->offset, d->size),
                              "%s: %s differs in its bytes", what, d->name);
        }
}

START_TEST(every_key_has_a_sample)
{
        struct p2sd_options def, o;
        p2sd_options_defaults(&def);
        for (size_t i = 0; i < p2sd_option_count; i++) {
                const struct opt *d = &p2sd_option_table[i];
                if (!is_value_key(d))
                        continue;
                const char *v = sample_of(d->name);
                ck_assert_msg(v, "no sample value for '%s'", d->name);
                o = def;
                char err[256], a[128], b[128];
                ck_assert_msg(opt_set(d, &o, v, err, sizeof(err)) == 0, "%s = %s: %s", d->name, v, err);
                opt_format(d, &def, a, sizeof(a));
                opt_format(d, &o, b, sizeof(b));
                ck_assert_msg(strcmp(a, b), "the sample of '%s' is its default %s", d->name, a);
                ck_assert_msg(!strcmp(b, v), "'%s' formats %s as %s, which opt_set would not give back",
                              d->name, v, b);
        }
}
END_TEST

/* Each key alone, then all together: the command line and the file agree. */
START_TEST(command_line_and_file_agree)
{
        char err[512], text[2048] = "";
        const char *all[64];
        char *owned[32];
        size_t nowned = 0;
        size_t na = 0;
        for (size_t i = 0; i < NSAMPLES; i++) {
                const struct sample *s = &samples[i];
                char opt[64], one[256];
                snprintf(opt, sizeof(opt), "--%s", s->key);
                const char *argv[] = { opt, s->val, strcmp(s->key, "root") ? "--root" : NULL, "/r", NULL };
                struct p2sd_options a, cmd;
                ck_assert_msg(parse(&a, argv, err, sizeof(err)) == 0, "%s", err);
                snprintf(one, sizeof(one), "%s = %s\n%s", s->key, s->val, strcmp(s->key, "root") ? "root = /r\n" : "");
                struct p2sd_conf *c = load(one, NULL, &cmd, err, sizeof(err));
                ck_assert_msg(c, "%s", err);
                assert_same(&a, &c->opt, s->key);
                p2sd_conf_free(c);
                all[na++] = owned[nowned++] = strdup(opt);
                all[na++] = s->val;
                snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s = %s\n", s->key, s->val);
        }
        all[na] = NULL;
        struct p2sd_options a, cmd;
        ck_assert_msg(parse(&a, all, err, sizeof(err)) == 0, "%s", err);
        struct p2sd_conf *c = load(text, NULL, &cmd, err, sizeof(err));
        ck_assert_msg(c, "%s", err);
        assert_same(&a, &c->opt, "all keys");
        p2sd_conf_free(c);
        for (size_t i = 0; i < nowned; i++)
                free(owned[i]);
}
END_TEST

struct change {
        char log[1024];
};

static void on_change(const char *key, const char *old, const char *new, void *ud)
{
        struct change *c = ud;
        snprintf(c->log + strlen(c->log), sizeof(c->log) - strlen(c->log), "%s:%s>%s;", key, old ? old : "-",
                 new ? new : "-");
}

/* FILE arguments and "file" keys serve the same list. */
START_TEST(files_from_either)
{
        char err[512];
        struct p2sd_options a, cmd;
        const char *argv[] = { "a.bin", "sub/b.bin", NULL };
        ck_assert_msg(parse(&a, argv, err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(a.nfiles, 2);
        ck_assert(a.set & P2SD_SET_ROOT);
        struct p2sd_conf *c = load("file = a.bin\nfile = sub/b.bin\n", NULL, &cmd, err, sizeof(err));
        ck_assert_msg(c, "%s", err);
        ck_assert_int_eq(c->opt.nfiles, 2);
        ck_assert_str_eq(c->opt.files[0], "a.bin");
        ck_assert_str_eq(c->opt.files[1], "sub/b.bin");
        struct change ch = { "" };
        ck_assert_msg(p2sd_conf_diff(&a, &c->opt, on_change, &ch) == 0, "%s", ch.log);
        p2sd_conf_free(c);
}
END_TEST

/* Every key set in the file and again, differently, on the command line:
 * the command line wins each one; FILE arguments replace the file's root. */
static const struct sample others[] = {
        { "listen", "::1" }, { "port", "0" }, { "control", "udp" }, { "max-datagram", "1500" },
        { "min-clients", "7" }, { "gather-timeout", "0.25" }, { "replicas", "2" }, { "cache", "5K" },
        { "chunk-size", "1M" }, { "query", "directed" }, { "log-level", "err" },
};

START_TEST(command_line_wins_key_by_key)
{
        char err[512], text[2048] = "";
        for (size_t i = 0; i < NSAMPLES; i++)
                snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s = %s\n", samples[i].key,
                         samples[i].val);
        const char *args[64];
        size_t n = 0;
        char opts[16][64];
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
                snprintf(opts[i], sizeof(opts[i]), "--%s", others[i].key);
                args[n++] = opts[i];
                args[n++] = others[i].val;
        }
        args[n++] = "x.bin";
        args[n] = NULL;
        struct p2sd_options cmd;
        struct p2sd_conf *c = load(text, args, &cmd, err, sizeof(err));
        ck_assert_msg(c, "%s", err);
        ck_assert_ptr_null(c->opt.root);
        ck_assert_int_eq(c->opt.nfiles, 1);
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
                char v[128];
                opt_format(p2sd_option_key(others[i].key), &c->opt, v, sizeof(v));
                ck_assert_msg(!strcmp(v, others[i].val), "%s is %s, the command line said %s", others[i].key, v,
                              others[i].val);
        }
        p2sd_conf_free(c);
        /* and what the command line leaves alone comes from the file */
        const char *none[] = { NULL };
        c = load(text, none, &cmd, err, sizeof(err));
        ck_assert_msg(c, "%s", err);
        for (size_t i = 0; i < NSAMPLES; i++) {
                char v[128];
                opt_format(p2sd_option_key(samples[i].key), &c->opt, v, sizeof(v));
                ck_assert_msg(!strcmp(v, samples[i].val), "%s is %s, the file said %s", samples[i].key, v,
                              samples[i].val);
        }
        p2sd_conf_free(c);
}
END_TEST

/* ---- ranges --------------------------------------------------------------- */

static void value_text(const struct opt *d, uint64_t v, char *buf, size_t len)
{
        if (d->kind == OPT_SECONDS)
                snprintf(buf, len, "%llu.%06llu", (unsigned long long)(v / 1000000),
                         (unsigned long long)(v % 1000000));
        else
                snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void expect_accepted(const struct opt *d, const char *val)
{
        char opt[64], err[512], text[256];
        snprintf(opt, sizeof(opt), "--%s", d->name);
        const char *argv[] = { opt, val, "f", NULL };
        struct p2sd_options o, cmd;
        ck_assert_msg(parse(&o, argv, err, sizeof(err)) == 0, "--%s %s refused: %s", d->name, val, err);
        snprintf(text, sizeof(text), "file = f\n%s = %s\n", d->name, val);
        struct p2sd_conf *c = load(text, NULL, &cmd, err, sizeof(err));
        ck_assert_msg(c, "%s = %s refused: %s", d->name, val, err);
        p2sd_conf_free(c);
}

/* The command line and the file refuse val with the same reason. */
static void expect_refused(const char *key, const char *val, const char *why)
{
        char opt[64], err[512], want[512], text[256];
        snprintf(opt, sizeof(opt), "--%s", key);
        const char *argv[] = { opt, val, "f", NULL };
        struct p2sd_options o, cmd;
        ck_assert_int_eq(parse(&o, argv, err, sizeof(err)), 2);
        snprintf(want, sizeof(want), "p2sd: --%s %s: %s (try 'p2sd --help')", key, val, why);
        ck_assert_str_eq(err, want);
        snprintf(text, sizeof(text), "file = f\n%s = %s\n", key, val);
        ck_assert_ptr_null(load(text, NULL, &cmd, err, sizeof(err)));
        snprintf(want, sizeof(want), "%s:2: %s = %s: %s", conf_path, key, val, why);
        ck_assert_str_eq(err, want);
}

START_TEST(range_bounds)
{
        size_t ranged = 0;
        for (size_t i = 0; i < p2sd_option_count; i++) {
                const struct opt *d = &p2sd_option_table[i];
                if (d->kind != OPT_UINT && d->kind != OPT_SIZE && d->kind != OPT_SECONDS)
                        continue;
                ranged++;
                char lo[32], hi[32], v[64], why[128];
                opt_format_value(d, d->min, lo, sizeof(lo));
                opt_format_value(d, d->max, hi, sizeof(hi));
                snprintf(why, sizeof(why), "must be between %s and %s%s", lo, hi,
                         d->kind == OPT_SECONDS ? " seconds" : "");
                value_text(d, d->min, v, sizeof(v));
                expect_accepted(d, v);
                expect_accepted(d, lo);
                value_text(d, d->max, v, sizeof(v));
                expect_accepted(d, v);
                expect_accepted(d, hi);
                if (d->min > 0) {
                        value_text(d, d->min - 1, v, sizeof(v));
                        expect_refused(d->name, v, why);
                }
                value_text(d, d->max + 1, v, sizeof(v));
                expect_refused(d->name, v, why);
        }
        ck_assert_uint_eq(ranged, 10);
}
END_TEST

/* The documented ranges, written out: a change to the table must change
 * the man pages and doc/cli.md too. */
START_TEST(documented_messages)
{
        expect_refused("cache", "0", "must be between 1 and 1T");
        expect_refused("cache", "99999999G", "must be between 1 and 1T");
        expect_refused("cache", "12Q", "must be a size between 1 and 1T (bytes, or with a K, M, G or T suffix)");
        expect_refused("chunk-size", "100", "must be between 256 and 16M");
        expect_refused("chunk-size", "32M", "must be between 256 and 16M");
        expect_refused("max-datagram", "107", "must be between 108 and 65507");
        expect_refused("port", "70000", "must be between 0 and 65535");
        expect_refused("port", "x", "must be a number between 0 and 65535");
        expect_refused("min-clients", "-1", "must be a number between 0 and 100000");
        expect_refused("min-clients", "100001", "must be between 0 and 100000");
        expect_refused("replicas", "0", "must be between 1 and 64");
        expect_refused("replicas", "65", "must be between 1 and 64");
        expect_refused("gather-timeout", "86401", "must be between 0 and 86400 seconds");
        expect_refused("gather-timeout", "soon", "must be a number of seconds between 0 and 86400");
        expect_refused("listen", "localhost", "must be an IPv4 or IPv6 address");
        expect_refused("control", "sctp", "must be udp or tcp");
        expect_refused("query", "all", "must be directed or broadcast");
        expect_refused("log-level", "loud", "must be err, warning, notice, info or debug");
}
END_TEST

/* ---- the command line's own errors ------------------------------------------- */

static void expect_usage(const char *const *args, const char *why)
{
        char err[512], want[512];
        struct p2sd_options o;
        ck_assert_int_eq(parse(&o, args, err, sizeof(err)), 2);
        snprintf(want, sizeof(want), "p2sd: %s (try 'p2sd --help')", why);
        ck_assert_str_eq(err, want);
}

START_TEST(command_line_errors)
{
        expect_usage((const char *[]){ "--bogus", "f", NULL }, "unknown option '--bogus'");
        expect_usage((const char *[]){ "--bogus=1", "f", NULL }, "unknown option '--bogus'");
        expect_usage((const char *[]){ "--window", "1", "f", NULL }, "unknown option '--window'");
        /* "file" is a key of the file only */
        expect_usage((const char *[]){ "--file", "x", NULL }, "unknown option '--file'");
        expect_usage((const char *[]){ "-x", "f", NULL }, "unknown option '-x'");
        expect_usage((const char *[]){ "--c", "1", "f", NULL }, "ambiguous option '--c'");
        expect_usage((const char *[]){ "--port", NULL }, "option '--port' needs an argument");
        expect_usage((const char *[]){ "f", "-p", NULL }, "option '-p' needs an argument");
        expect_usage((const char *[]){ "--help=1", NULL }, "option '--help' takes no argument");
        expect_usage((const char *[]){ "--root", "", "f", NULL }, "--root '': must not be empty");
        expect_usage((const char *[]){ "--root", ".", "f", NULL }, "give either --root DIR or FILE arguments, not both");
        expect_usage((const char *[]){ "--port", "0", NULL },
                     "nothing to serve: give FILE arguments, --root DIR or --config FILE");
        /* short options and unique prefixes reach the same entries */
        struct p2sd_options o;
        char err[512];
        const char *const short_and_prefix[] = { "-k", "1K", "--cach", "2K", "-r", "/x", NULL };
        ck_assert_int_eq(parse(&o, short_and_prefix, err, sizeof(err)), 0);
        ck_assert_uint_eq(o.swarm.chunk_size, 1024);
        ck_assert_uint_eq(o.cache_bytes, 2048);
        ck_assert_str_eq(o.root, "/x");
        ck_assert_uint_eq(o.set, P2SD_SET_CHUNK | P2SD_SET_CACHE | P2SD_SET_ROOT);
}
END_TEST

/* The same options, on the command line or in the file, give the same
 * reason: a FRAG numbers 16 MiB of chunk in 108-byte datagrams past 65535. */
START_TEST(one_check_for_both)
{
        static const char why[] = "chunk-size 16M needs more than 65535 fragments of max-datagram 108 bytes: "
                                  "raise max-datagram or lower chunk-size";
        char want[512], err[512];
        snprintf(want, sizeof(want), "p2sd: %s (try 'p2sd --help')", why);
        struct p2sd_options o, cmd;
        const char *argv[] = { "--root", "/tmp", "--control", "tcp", "--chunk-size", "16M", "--max-datagram", "108",
                               NULL };
        ck_assert_int_eq(parse(&o, argv, err, sizeof(err)), 2);
        ck_assert_str_eq(err, want);
        ck_assert_ptr_null(load("root=/tmp\ncontrol=tcp\nchunk-size=16M\nmax-datagram=108\n", NULL, &cmd, err,
                                sizeof(err)));
        snprintf(want, sizeof(want), "%s: %s", conf_path, why);
        ck_assert_str_eq(err, want);
        /* half from the file, half from the command line */
        const char *half[] = { "--chunk-size", "16M", "--max-datagram", "108", NULL };
        ck_assert_ptr_null(load("root=/tmp\ncontrol=tcp\n", half, &cmd, err, sizeof(err)));
        ck_assert_str_eq(err, want);
        /* with 400-byte datagrams 16M takes fewer than 65536 fragments */
        struct p2sd_conf *c = load("root=/tmp\ncontrol=tcp\nchunk-size=16M\nmax-datagram=400\n", NULL, &cmd, err,
                                   sizeof(err));
        ck_assert_msg(c, "%s", err);
        p2sd_conf_free(c);
        /* what to serve: the file's own words */
        ck_assert_ptr_null(load("port = 0\n", NULL, &cmd, err, sizeof(err)));
        snprintf(want, sizeof(want), "%s: nothing to serve: set 'root' or 'file' (or give --root or FILE arguments)",
                 conf_path);
        ck_assert_str_eq(err, want);
}
END_TEST

/* ---- the file's layout ---------------------------------------------------------- */

START_TEST(trailing_comments)
{
        char err[512];
        struct p2sd_options cmd;
        struct p2sd_conf *c = load("# p2sd\nroot = /tmp/a#b   # where\ncache = 64M  # comment\n"
                                   "chunk-size = 1K\t# tab\nport = 0#\n",
                                   (const char *[]){ NULL }, &cmd, err, sizeof(err));
        ck_assert_ptr_null(c);
        /* '#' not after a blank is part of the value */
        char want[512];
        snprintf(want, sizeof(want), "%s:5: port = 0#: must be a number between 0 and 65535", conf_path);
        ck_assert_str_eq(err, want);
        c = load("# p2sd\nroot = /tmp/a#b   # where\ncache = 64M  # comment\nchunk-size = 1K\t# tab\n"
                 "#port = 1\n  # indented\nlisten = 127.0.0.1 #\n", NULL, &cmd, err, sizeof(err));
        ck_assert_msg(c, "%s", err);
        ck_assert_str_eq(c->opt.root, "/tmp/a#b");
        ck_assert_uint_eq(c->opt.cache_bytes, 64u << 20);
        ck_assert_uint_eq(c->opt.swarm.chunk_size, 1024);
        ck_assert_uint_eq(c->opt.port, 7700);
        ck_assert_str_eq(c->opt.listen, "127.0.0.1");
        p2sd_conf_free(c);
        /* a value that is all comment is no value */
        ck_assert_ptr_null(load("root = /tmp\ncache = # none\n", NULL, &cmd, err, sizeof(err)));
        snprintf(want, sizeof(want), "%s:2: 'cache' needs a value", conf_path);
        ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(file_errors)
{
        char err[512], want[512];
        struct p2sd_options cmd;
        static const struct { const char *text, *want; } cases[] = {
                { "root = /tmp\nbogus = 1\n", ":2: unknown key 'bogus'" },
                /* command-line-only options are no keys */
                { "root = /tmp\nconfig = /x\n", ":2: unknown key 'config'" },
                { "root = /tmp\nhelp = 1\n", ":2: unknown key 'help'" },
                { "root = /tmp\nport 7700\n", ":2: expected 'key = value', got 'port 7700'" },
                { "cache = 1M\nroot = /tmp\ncache = 2M\n", ":3: 'cache' was already set on line 1" },
                { "root = /tmp\nroot = /srv\n", ":2: 'root' was already set on line 1" },
                { "root = /tmp\nfile = /etc/hostname\n", ": 'root' and 'file' cannot both be set" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                ck_assert_ptr_null(load(cases[i].text, NULL, &cmd, err, sizeof(err)));
                snprintf(want, sizeof(want), "%s%s", conf_path, cases[i].want);
                ck_assert_str_eq(err, want);
        }
}
END_TEST

/* ---- --help and reloads ------------------------------------------------------------ */

START_TEST(help_lists_every_option)
{
        char *text = help_text(p2sd_options_help);
        ck_assert(strstr(text, "Usage: p2sd "));
        for (size_t i = 0; i < p2sd_option_count; i++) {
                const struct opt *d = &p2sd_option_table[i];
                char want[128];
                if (d->flags & OPT_NO_COMMAND_LINE) {
                        snprintf(want, sizeof(want), "--%s ", d->name);
                        ck_assert_msg(!strstr(text, want), "--help lists '%s', which is no option:\n%s", want,
                                      text);
                        continue;
                }
                help_option_line(d, want, sizeof(want));
                ck_assert_msg(strstr(text, want), "--help lacks '%s':\n%s", want, text);
                if (d->kind == OPT_UINT || d->kind == OPT_SIZE || d->kind == OPT_SECONDS) {
                        char lo[32], hi[32];
                        opt_format_value(d, d->min, lo, sizeof(lo));
                        opt_format_value(d, d->max, hi, sizeof(hi));
                        snprintf(want, sizeof(want), "(%s to %s", lo, hi);
                        ck_assert_msg(strstr(text, want), "--help lacks the range of --%s, '%s'", d->name, want);
                }
        }
        help_assert_width(text);
        free(text);
}
END_TEST

START_TEST(reload_diff_names_keys)
{
        char err[512];
        struct p2sd_options cmd;
        struct p2sd_conf *a = load("file = a\nfile = b\ncache = 64M\n", NULL, &cmd, err, sizeof(err));
        ck_assert_msg(a, "%s", err);
        struct p2sd_conf *b = load("file = b\nfile = c\ncache = 3M\ngather-timeout = 0.5\n", NULL, &cmd, err,
                                   sizeof(err));
        ck_assert_msg(b, "%s", err);
        struct change ch = { "" };
        ck_assert_uint_eq(p2sd_conf_diff(&a->opt, &b->opt, on_change, &ch), 4);
        ck_assert_str_eq(ch.log, "gather-timeout:3>0.5;cache:64M>3M;file:->c;file:a>-;");
        p2sd_conf_free(a);
        p2sd_conf_free(b);
}
END_TEST

static Suite *options_suite(void)
{
        Suite *s = suite_create("options");
        TCase *tc = tcase_create("table");
        tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
        tcase_add_test(tc, every_key_has_a_sample);
        tcase_add_test(tc, command_line_and_file_agree);
        tcase_add_test(tc, files_from_either);
        tcase_add_test(tc, command_line_wins_key_by_key);
        tcase_add_test(tc, help_lists_every_option);
        tcase_add_test(tc, reload_diff_names_keys);
        suite_add_tcase(s, tc);
        tc = tcase_create("errors");
        tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
        tcase_add_test(tc, range_bounds);
        tcase_add_test(tc, documented_messages);
        tcase_add_test(tc, command_line_errors);
        tcase_add_test(tc, one_check_for_both);
        tcase_add_test(tc, trailing_comments);
        tcase_add_test(tc, file_errors);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(options_suite);
