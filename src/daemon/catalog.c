/* SPDX-License-Identifier: MIT */
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

struct catalog {
        int root_fd;            /* -1 when serving FILE arguments */
        char **names, **paths;
        int n;
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
