/* SPDX-License-Identifier: MIT */
/* daemon/catalog: which names p2sd serves (FILE arguments by base name, a
 * tree under --root by relative name) and which it refuses, through
 * openat2 and through the component-by-component fallback. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/catalog.h"
#include "harness.h"
#include "runner.h"

typedef int (*open_fn)(const struct catalog *c, const char *name);

/* _i of the loop tests: 0 catalog_open (openat2 where the kernel has it), 1 the fallback */
static const open_fn openers[] = { catalog_open, catalog_open_components };
static const char *const opener_names[] = { "catalog_open", "catalog_open_components" };

/* The content of fd must be text (each file holds its own name). */
static void assert_content(int fd, const char *text)
{
        char buf[256];
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        ck_assert_int_ge(n, 0);
        buf[n] = 0;
        ck_assert_str_eq(buf, text);
}

static void put(const char *rel, const char *text)
{
        h_write_text(h_path("%s", rel), text);
}

/* root/ with files, a directory, a fifo and symlinks in and out of it;
 * outside.bin next to root/. */
static void make_tree(void)
{
        ck_assert_int_eq(mkdir(h_path("root"), 0755), 0);
        ck_assert_int_eq(mkdir(h_path("root/sub"), 0755), 0);
        ck_assert_int_eq(mkdir(h_path("root/sub/deeper"), 0755), 0);
        ck_assert_int_eq(mkdir(h_path("root/dir"), 0755), 0);
        put("root/a.bin", "a.bin");
        put("root/sub/b.bin", "sub/b.bin");
        put("root/sub/deeper/c.bin", "sub/deeper/c.bin");
        put("outside.bin", "outside.bin");
        ck_assert_int_eq(mkfifo(h_path("root/fifo"), 0644), 0);
        ck_assert_int_eq(symlink("../outside.bin", h_path("root/out-rel")), 0);
        ck_assert_int_eq(symlink(h_path("outside.bin"), h_path("root/out-abs")), 0);
        ck_assert_int_eq(symlink("..", h_path("root/up")), 0);
        ck_assert_int_eq(symlink("a.bin", h_path("root/in")), 0);
        ck_assert_int_eq(symlink("sub", h_path("root/subl")), 0);
}

static struct catalog *root_catalog(void)
{
        char err[256] = "";
        struct catalog *c = catalog_new(h_path("root"), NULL, 0, err, sizeof(err));
        ck_assert_msg(c, "catalog_new: %s", err);
        return c;
}

/* catalog_new takes char **: a writable copy, kept in a ring (reachable, not leaked) */
static char *own(const char *s)
{
        static char *ring[32];
        static unsigned n;
        char **slot = &ring[n++ % 32];
        free(*slot);
        *slot = strdup(s);
        ck_assert_ptr_nonnull(*slot);
        return *slot;
}

START_TEST(root_serves_relative_names)
{
        make_tree();
        struct catalog *c = root_catalog();
        static const char *const names[] = { "a.bin", "sub/b.bin", "sub/deeper/c.bin" };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                int fd = openers[_i](c, names[i]);
                ck_assert_msg(fd >= 0, "%s(%s): %s", opener_names[_i], names[i], strerror(-fd));
                assert_content(fd, names[i]);
                /* read-only: the served file is never written through it */
                ck_assert_int_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
                close(fd);
        }
        catalog_free(c);
}
END_TEST

/* Everything not served is -ENOENT, whatever the reason, so a client
 * cannot tell a missing file from a refused one. */
START_TEST(root_refuses)
{
        make_tree();
        struct catalog *c = root_catalog();
        const char *const names[] = {
                "missing.bin", "sub/missing.bin", "nodir/a.bin",       /* not there */
                "dir", "sub", "sub/deeper", "fifo",                     /* not regular files */
                "../outside.bin", "sub/../a.bin", "sub/../../outside.bin", "..", ".", "./a.bin",
                "/etc/passwd", h_path("root/a.bin"),                    /* absolute */
                "out-rel", "out-abs", "up/outside.bin",                 /* symlinks leaving the root */
                "", "a.bin/", "sub//b.bin", "/",                        /* empty components */
                "a.bin\n", "sub/b.bin\r", "a\tb", "a\x7f",              /* control characters */
                "a.bin/x",                                              /* a file used as a directory */
        };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                int fd = openers[_i](c, names[i]);
                if (fd >= 0)
                        close(fd);
                ck_assert_msg(fd == -ENOENT, "%s('%s') = %d, want -ENOENT", opener_names[_i], names[i], fd);
        }
        /* 256 bytes is one too many (a valid file of that name could not exist anyway) */
        char longname[300];
        memset(longname, 'x', 256);
        longname[256] = 0;
        ck_assert_int_eq(openers[_i](c, longname), -ENOENT);
        catalog_free(c);
}
END_TEST

/* A symlink that stays inside the root: openat2 with RESOLVE_BENEATH
 * follows it, the fallback follows no symlink at all (stricter, never
 * looser). Both refuse the ones leaving the root (root_refuses). */
START_TEST(symlinks_inside_the_root)
{
        make_tree();
        struct catalog *c = root_catalog();
        int in = catalog_open_components(c, "in"), dir = catalog_open_components(c, "subl/b.bin");
        ck_assert_int_eq(in, -ENOENT);
        ck_assert_int_eq(dir, -ENOENT);
        in = catalog_open(c, "in");
        if (in == -ENOENT) {
                /* no openat2 here: catalog_open is the fallback */
                ck_assert_int_eq(catalog_open(c, "subl/b.bin"), -ENOENT);
        } else {
                ck_assert_int_ge(in, 0);
                assert_content(in, "a.bin");
                close(in);
                dir = catalog_open(c, "subl/b.bin");
                ck_assert_int_ge(dir, 0);
                assert_content(dir, "sub/b.bin");
                close(dir);
        }
        catalog_free(c);
}
END_TEST

START_TEST(name_ok)
{
        ck_assert(catalog_name_ok("a"));
        ck_assert(catalog_name_ok("a/b/c.bin"));
        ck_assert(catalog_name_ok("..a"));
        ck_assert(catalog_name_ok("a.."));
        ck_assert(catalog_name_ok(".hidden"));
        ck_assert(catalog_name_ok("with space"));
        ck_assert(!catalog_name_ok(""));
        ck_assert(!catalog_name_ok("/a"));
        ck_assert(!catalog_name_ok("a/"));
        ck_assert(!catalog_name_ok("a//b"));
        ck_assert(!catalog_name_ok("a/./b"));
        ck_assert(!catalog_name_ok("a/../b"));
        ck_assert(!catalog_name_ok("a\nb"));
        ck_assert(!catalog_name_ok("\x01"));
        /* a NUL ends the C string: what follows it is never looked at, so
         * the wire decoder must refuse names with a NUL (it hands over C
         * strings); here "a\0/../b" is just "a" */
        ck_assert(catalog_name_ok("a\0/../b"));
        char n255[256], n256[257];
        memset(n255, 'y', 255);
        n255[255] = 0;
        memset(n256, 'y', 256);
        n256[256] = 0;
        ck_assert(catalog_name_ok(n255));
        ck_assert(!catalog_name_ok(n256));
}
END_TEST

START_TEST(root_must_be_a_directory)
{
        char err[256] = "";
        ck_assert_ptr_null(catalog_new(h_path("nonexistent"), NULL, 0, err, sizeof(err)));
        ck_assert_msg(strstr(err, "No such file or directory"), "%s", err);
        put("plain", "x");
        err[0] = 0;
        ck_assert_ptr_null(catalog_new(h_path("plain"), NULL, 0, err, sizeof(err)));
        ck_assert_msg(strstr(err, "Not a directory"), "%s", err);
}
END_TEST

/* FILE arguments: served by base name only, opened at each request. */
START_TEST(files_by_base_name)
{
        make_tree();
        char *files[] = { own(h_path("root/a.bin")), own(h_path("root/sub/b.bin")) };
        char err[256] = "";
        struct catalog *c = catalog_new(NULL, files, 2, err, sizeof(err));
        ck_assert_msg(c, "catalog_new: %s", err);
        int fd = openers[_i](c, "a.bin");
        ck_assert_int_ge(fd, 0);
        assert_content(fd, "a.bin");
        close(fd);
        fd = openers[_i](c, "b.bin");
        ck_assert_int_ge(fd, 0);
        assert_content(fd, "sub/b.bin");
        close(fd);
        const char *const refused[] = { "sub/b.bin", "root/a.bin", "c.bin", "../a.bin", "a.bin\n",
                                               "outside.bin", "", h_path("root/a.bin") };
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
                ck_assert_msg(openers[_i](c, refused[i]) == -ENOENT, "'%s' served", refused[i]);
        /* gone since p2sd started: no longer served */
        ck_assert_int_eq(unlink(h_path("root/a.bin")), 0);
        ck_assert_int_eq(openers[_i](c, "a.bin"), -ENOENT);
        /* replaced by a directory: not a regular file */
        ck_assert_int_eq(mkdir(h_path("root/a.bin"), 0755), 0);
        ck_assert_int_eq(openers[_i](c, "a.bin"), -ENOENT);
        catalog_free(c);
}
END_TEST

static void files_refused(char **files, int n, const char *want)
{
        char err[512] = "";
        struct catalog *c = catalog_new(NULL, files, n, err, sizeof(err));
        ck_assert_msg(!c, "catalog_new accepted what it must refuse (%s)", want);
        ck_assert_msg(strstr(err, want), "want '%s', got '%s'", want, err);
}

START_TEST(files_refused_at_start)
{
        make_tree();
        char *missing[] = { own(h_path("root/missing.bin")) };
        files_refused(missing, 1, "No such file or directory");
        char *dir[] = { own(h_path("root/dir")) };
        files_refused(dir, 1, "not a regular file");
        char *fifo[] = { own(h_path("root/fifo")) };
        files_refused(fifo, 1, "not a regular file");
        put("root/dir/a.bin", "dir/a.bin");
        char *twice[] = { own(h_path("root/a.bin")), own(h_path("root/dir/a.bin")) };
        files_refused(twice, 2, "share the name 'a.bin'");
        put("root/bad\nname", "x");
        char *bad[] = { own(h_path("root/bad\nname")) };
        files_refused(bad, 1, "cannot be served under that name");
}
END_TEST

/* What catalog_each saw: names joined by ' ' in sorted order, and sizes. */
struct seen {
        char *names[32];
        uint64_t sizes[32];
        bool hashed[32];
        int n, stop_after;
};

static int collect(const struct catalog_entry *e, void *ud)
{
        struct seen *s = ud;
        ck_assert_int_lt(s->n, 32);
        ck_assert(catalog_name_ok(e->name));
        s->names[s->n] = strdup(e->name);
        s->sizes[s->n] = e->size;
        s->hashed[s->n] = e->has_hash;
        s->n++;
        return s->stop_after && s->n == s->stop_after ? 42 : 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *joined(struct seen *s)
{
        static char buf[1024];
        qsort(s->names, (size_t)s->n, sizeof(char *), cmp_str);
        buf[0] = 0;
        for (int i = 0; i < s->n; i++) {
                strcat(buf, i ? " " : "");
                strcat(buf, s->names[i]);
        }
        return buf;
}

static void seen_free(struct seen *s)
{
        for (int i = 0; i < s->n; i++)
                free(s->names[i]);
        s->n = 0;
}

/* --root: every regular file beneath the root, by relative name; no
 * symlink followed or listed (in, out, up, a directory's), no fifo, no
 * directory, nothing named outside the rules. */
START_TEST(each_root)
{
        make_tree();
        put("root/bad\nname", "x");
        put("root/.hidden", "h");
        struct catalog *c = root_catalog();
        struct seen s = { 0 };
        ck_assert_int_eq(catalog_each(c, collect, &s), 0);
        ck_assert_str_eq(joined(&s), ".hidden a.bin sub/b.bin sub/deeper/c.bin");
        seen_free(&s);
        /* fn stops the walk, and its value comes back */
        s.stop_after = 2;
        ck_assert_int_eq(catalog_each(c, collect, &s), 42);
        ck_assert_int_eq(s.n, 2);
        seen_free(&s);
        /* an unreadable directory is skipped, the rest listed (root reads anything) */
        if (geteuid() != 0) {
                ck_assert_int_eq(chmod(h_path("root/sub/deeper"), 0), 0);
                s.stop_after = 0;
                ck_assert_int_eq(catalog_each(c, collect, &s), 0);
                ck_assert_str_eq(joined(&s), ".hidden a.bin sub/b.bin");
                seen_free(&s);
                ck_assert_int_eq(chmod(h_path("root/sub/deeper"), 0755), 0);
        }
        catalog_free(c);
}
END_TEST

/* Directories nested deeper than CATALOG_MAX_DEPTH are not walked. */
START_TEST(each_root_depth)
{
        ck_assert_int_eq(mkdir(h_path("root"), 0755), 0);
        char rel[256] = "root";
        for (int i = 0; i < CATALOG_MAX_DEPTH + 2; i++) {
                strcat(rel, "/d");
                ck_assert_int_eq(mkdir(h_path("%s", rel), 0755), 0);
                if (i == CATALOG_MAX_DEPTH - 1 || i == CATALOG_MAX_DEPTH) {
                        char f[300];
                        snprintf(f, sizeof(f), "%s/f", rel);
                        put(f, "f");
                }
        }
        struct catalog *c = root_catalog();
        struct seen s = { 0 };
        ck_assert_int_eq(catalog_each(c, collect, &s), 0);
        ck_assert_int_eq(s.n, 1);
        /* CATALOG_MAX_DEPTH directories down, then its file */
        ck_assert_uint_eq(strlen(s.names[0]), 2 * CATALOG_MAX_DEPTH + 1);
        seen_free(&s);
        catalog_free(c);
}
END_TEST

static int check_hash(const struct catalog_entry *e, void *ud)
{
        bool *flags = ud;
        if (!strcmp(e->name, "a.bin")) {
                flags[0] = e->has_hash;
                if (e->has_hash)
                        ck_assert_uint_eq(e->sha256[31], 7);
        } else if (!strcmp(e->name, "b.bin")) {
                flags[1] = e->has_hash;
        }
        return 0;
}

/* FILE mode: each name with its size; one gone since is skipped; a
 * remembered hash shows while size and mtime are those it was taken at. */
START_TEST(each_files_and_hashes)
{
        make_tree();
        char *files[] = { own(h_path("root/a.bin")), own(h_path("root/sub/b.bin")),
                          own(h_path("root/sub/deeper/c.bin")) };
        char err[256] = "";
        struct catalog *c = catalog_new(NULL, files, 3, err, sizeof(err));
        ck_assert_msg(c, "catalog_new: %s", err);
        struct seen s = { 0 };
        ck_assert_int_eq(catalog_each(c, collect, &s), 0);
        ck_assert_str_eq(joined(&s), "a.bin b.bin c.bin");
        seen_free(&s);
        ck_assert_int_eq(unlink(h_path("root/sub/deeper/c.bin")), 0);
        struct stat st;
        ck_assert_int_eq(stat(h_path("root/a.bin"), &st), 0);
        uint8_t hash[32];
        memset(hash, 7, sizeof(hash));
        catalog_remember_hash(c, "a.bin", (uint64_t)st.st_size, st.st_mtim.tv_sec, (uint32_t)st.st_mtim.tv_nsec,
                              hash);
        catalog_remember_hash(c, "b.bin", 999, 0, 0, hash);   /* not as it is now */
        ck_assert_int_eq(catalog_each(c, collect, &s), 0);
        ck_assert_str_eq(joined(&s), "a.bin b.bin");
        ck_assert_uint_eq(s.sizes[0] + s.sizes[1], strlen("a.bin") + strlen("sub/b.bin"));
        seen_free(&s);
        bool hc[2] = { false, false };
        ck_assert_int_eq(catalog_each(c, check_hash, hc), 0);
        ck_assert(hc[0]);
        ck_assert(!hc[1]);
        /* the file changed: the hash no longer counts */
        put("root/a.bin", "a.bin, edited");
        hc[0] = true;
        ck_assert_int_eq(catalog_each(c, check_hash, hc), 0);
        ck_assert(!hc[0]);
        catalog_free(c);
}
END_TEST

/* Destructors accept NULL. */
START_TEST(free_null)
{
        ck_assert_ptr_null(catalog_free(NULL));
}
END_TEST

static Suite *catalog_suite(void)
{
        Suite *s = suite_create("catalog");
        TCase *tc = h_tcase("root", 30);
        tcase_add_loop_test(tc, root_serves_relative_names, 0, 2);
        tcase_add_loop_test(tc, root_refuses, 0, 2);
        tcase_add_test(tc, symlinks_inside_the_root);
        tcase_add_test(tc, root_must_be_a_directory);
        tcase_add_test(tc, each_root);
        tcase_add_test(tc, each_root_depth);
        suite_add_tcase(s, tc);
        tc = h_tcase("files", 30);
        tcase_add_loop_test(tc, files_by_base_name, 0, 2);
        tcase_add_test(tc, files_refused_at_start);
        tcase_add_test(tc, each_files_and_hashes);
        suite_add_tcase(s, tc);
        tc = tcase_create("names");
        tcase_add_test(tc, name_ok);
        tcase_add_test(tc, free_null);
        suite_add_tcase(s, tc);
        return s;
}

RUNNER_SUITES(catalog_suite);
