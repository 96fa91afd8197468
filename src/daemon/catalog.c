/* SPDX-License-Identifier: MIT */
/* What p2sd serves: the name rules, opening a name beneath the root, the
 * walk that lists every served file, and the hashes remembered for it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "daemon/catalog.h"

struct catalog_hash {
        char *name;
        uint64_t size;
        int64_t sec;
        uint32_t nsec;
        uint8_t sha256[32];
};

struct catalog {
        int root_fd;            /* -1 when serving FILE arguments */
        char **names, **paths;
        int n;
        struct catalog_hash hashes[CATALOG_HASHES];     /* a ring: next is the oldest */
        unsigned next_hash;
};

struct catalog *catalog_free(struct catalog *c)
{
        if (!c)
                return NULL;
        if (c->root_fd >= 0)
                close(c->root_fd);
        for (int i = 0; i < c->n; i++) {
                free(c->names[i]);
                free(c->paths[i]);
        }
        free(c->names);
        free(c->paths);
        for (unsigned i = 0; i < CATALOG_HASHES; i++)
                free(c->hashes[i].name);
        free(c);
        return NULL;
}

bool catalog_name_ok(const char *name)
{
        size_t len = strlen(name);
        if (len == 0 || len > 255 || name[0] == '/')
                return false;
        for (const char *p = name; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return false;
        /* every component non-empty and neither "." nor ".." */
        const char *comp = name;
        for (;;) {
                const char *slash = strchr(comp, '/');
                size_t n = slash ? (size_t)(slash - comp) : strlen(comp);
                if (n == 0 || (n == 1 && comp[0] == '.') || (n == 2 && comp[0] == '.' && comp[1] == '.'))
                        return false;
                if (!slash)
                        return true;
                comp = slash + 1;
        }
}

static int check_regular(int fd)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        return S_ISREG(st.st_mode) ? 0 : -ENOENT;
}

struct catalog *catalog_new(const char *root, char **files, int nfiles, char *err, size_t errlen)
{
        struct catalog *c = calloc(1, sizeof(*c));
        if (!c) {
                snprintf(err, errlen, "out of memory");
                return NULL;
        }
        c->root_fd = -1;
        if (root) {
                c->root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (c->root_fd < 0) {
                        snprintf(err, errlen, "--root %s: %s", root, strerror(errno));
                        return catalog_free(c);
                }
                return c;
        }
        c->names = calloc(nfiles, sizeof(char *));
        c->paths = calloc(nfiles, sizeof(char *));
        if (!c->names || !c->paths) {
                snprintf(err, errlen, "out of memory");
                return catalog_free(c);
        }
        for (int i = 0; i < nfiles; i++) {
                int fd = open(files[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                int r = fd < 0 ? -errno : check_regular(fd);
                if (fd >= 0)
                        close(fd);
                if (r < 0) {
                        snprintf(err, errlen, "%s: %s", files[i],
                                 r == -ENOENT && fd >= 0 ? "not a regular file" : strerror(-r));
                        return catalog_free(c);
                }
                const char *base = strrchr(files[i], '/');
                base = base ? base + 1 : files[i];
                if (!catalog_name_ok(base)) {
                        snprintf(err, errlen, "%s: cannot be served under that name", files[i]);
                        return catalog_free(c);
                }
                for (int j = 0; j < c->n; j++) {
                        if (!strcmp(c->names[j], base)) {
                                snprintf(err, errlen, "%s and %s share the name '%s'", c->paths[j], files[i], base);
                                return catalog_free(c);
                        }
                }
                c->names[c->n] = strdup(base);
                c->paths[c->n] = strdup(files[i]);
                c->n++;
                if (!c->names[c->n - 1] || !c->paths[c->n - 1]) {
                        snprintf(err, errlen, "out of memory");
                        return catalog_free(c);
                }
        }
        return c;
}

/* Without openat2 (old kernels, or systemd's seccomp filter, which answers
 * ENOSYS for it under RestrictSUIDSGID=, implied by DynamicUser=): one
 * component at a time, following no symlink at all. catalog_name_ok has
 * already refused "..", "." and empty components. Stricter than
 * RESOLVE_BENEATH: even a symlink that stays inside the root is refused. */
static int open_beneath(int root_fd, const char *name)
{
        char comp[256];
        int dir = root_fd;
        for (;;) {
                const char *slash = strchr(name, '/');
                if (!slash)
                        break;
                size_t n = (size_t)(slash - name);
                memcpy(comp, name, n);
                comp[n] = 0;
                int next = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                int e = errno;
                if (dir != root_fd)
                        close(dir);
                if (next < 0) {
                        errno = e;
                        return -1;
                }
                dir = next;
                name = slash + 1;
        }
        int fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
        int e = errno;
        if (dir != root_fd)
                close(dir);
        errno = e;
        return fd;
}

static int catalog_open_via(const struct catalog *c, const char *name, bool openat2)
{
        if (!catalog_name_ok(name))
                return -ENOENT;
        int fd = -1;
        if (c->root_fd >= 0) {
                /* The kernel resolves the whole path beneath the root: ".."
                 * and symlinks that would leave it fail with EXDEV. */
                struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
                if (openat2)
                        fd = (int)syscall(SYS_openat2, c->root_fd, name, &how, sizeof(how));
                else
                        errno = ENOSYS;
                if (fd < 0 && errno == ENOSYS)
                        fd = open_beneath(c->root_fd, name);
                if (fd < 0)
                        return errno == EXDEV || errno == ELOOP || errno == ENOTDIR ? -ENOENT : -errno;
        } else {
                int e = ENOENT;
                for (int i = 0; i < c->n && fd < 0; i++)
                        if (!strcmp(c->names[i], name)) {
                                fd = open(c->paths[i], O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                                e = errno;
                        }
                /* out of descriptors is not "not served": callers tell them apart */
                if (fd < 0)
                        return e == EMFILE || e == ENFILE || e == EACCES || e == ENOMEM ? -e : -ENOENT;
        }
        int r = check_regular(fd);
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

int catalog_open(const struct catalog *c, const char *name)
{
        return catalog_open_via(c, name, true);
}

int catalog_open_components(const struct catalog *c, const char *name)
{
        return catalog_open_via(c, name, false);
}

/* ---- the listing ---------------------------------------------------------- */

void catalog_remember_hash(struct catalog *c, const char *name, uint64_t size, int64_t mtime_sec,
                           uint32_t mtime_nsec, const uint8_t sha256[32])
{
        struct catalog_hash *slot = NULL;
        for (unsigned i = 0; i < CATALOG_HASHES && !slot; i++)
                if (c->hashes[i].name && !strcmp(c->hashes[i].name, name))
                        slot = &c->hashes[i];
        if (!slot) {
                char *copy = strdup(name);
                if (!copy)
                        return;         /* a hash not shown: the listing says "-" */
                slot = &c->hashes[c->next_hash];
                c->next_hash = (c->next_hash + 1) % CATALOG_HASHES;
                free(slot->name);
                slot->name = copy;
        }
        slot->size = size;
        slot->sec = mtime_sec;
        slot->nsec = mtime_nsec;
        memcpy(slot->sha256, sha256, 32);
}

/* A remembered hash counts only for the file as it was hashed. */
static void fill_hash(const struct catalog *c, struct catalog_entry *e)
{
        e->has_hash = false;
        for (unsigned i = 0; i < CATALOG_HASHES; i++) {
                const struct catalog_hash *h = &c->hashes[i];
                if (h->name && h->size == e->size && h->sec == e->mtime_sec && h->nsec == e->mtime_nsec &&
                    !strcmp(h->name, e->name)) {
                        memcpy(e->sha256, h->sha256, 32);
                        e->has_hash = true;
                        return;
                }
        }
}

static int emit(const struct catalog *c, const char *name, const struct stat *st, catalog_each_fn fn, void *ud)
{
        struct catalog_entry e = { .name = name, .size = (uint64_t)st->st_size, .mtime_sec = st->st_mtim.tv_sec,
                                   .mtime_nsec = (uint32_t)st->st_mtim.tv_nsec };
        fill_hash(c, &e);
        return fn(&e, ud);
}

/* path holds the directory's relative name (len bytes, "" at the root);
 * dfd is consumed. */
static int walk(const struct catalog *c, int dfd, char *path, size_t len, unsigned depth, catalog_each_fn fn,
                void *ud)
{
        DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return 0;
        }
        int r = 0;
        struct dirent *de;
        while (r == 0 && (de = readdir(d))) {
                const char *n = de->d_name;
                if (!strcmp(n, ".") || !strcmp(n, ".."))
                        continue;
                size_t nl = strlen(n);
                if (len + nl > 255)
                        continue;       /* no name that long is served */
                struct stat st;
                if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                memcpy(path + len, n, nl + 1);
                if (S_ISREG(st.st_mode)) {
                        if (catalog_name_ok(path))
                                r = emit(c, path, &st, fn, ud);
                } else if (S_ISDIR(st.st_mode) && depth < CATALOG_MAX_DEPTH && len + nl < 255) {
                        int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
                        if (sub >= 0) {
                                path[len + nl] = '/';
                                path[len + nl + 1] = 0;
                                r = walk(c, sub, path, len + nl + 1, depth + 1, fn, ud);
                        }
                }
                path[len] = 0;
        }
        closedir(d);
        return r;
}

int catalog_each(const struct catalog *c, catalog_each_fn fn, void *ud)
{
        if (c->root_fd < 0) {
                for (int i = 0; i < c->n; i++) {
                        struct stat st;
                        /* served as open() finds it: symlinks given as FILE are followed */
                        if (stat(c->paths[i], &st) < 0 || !S_ISREG(st.st_mode))
                                continue;
                        int r = emit(c, c->names[i], &st, fn, ud);
                        if (r)
                                return r;
                }
                return 0;
        }
        int dfd = openat(c->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
        if (dfd < 0)
                return -errno;
        char path[256 + 2] = "";
        return walk(c, dfd, path, 0, 0, fn, ud);
}
