/* SPDX-License-Identifier: MIT */
/* The copy being fetched, on disk: OUTPUT.part created, sized, locked,
 * written in place, read back, hashed a slice at a time and renamed. See
 * store.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fetch/store.h"
#include "proto/hash.h"

#define HASH_READ (1u << 20)

int store_check(const char *output)
{
        char *dir = strdup(output);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
        int r = access(d, W_OK | X_OK) < 0 ? -errno : 0;
        free(dir);
        return r;
}

static int store_names(struct store *s, const char *output)
{
        s->path = strdup(output);
        if (!s->path || asprintf(&s->part_path, "%s.part", output) < 0) {
                s->part_path = NULL;
                store_close(s);
                return -ENOMEM;
        }
        return 0;
}

int store_lock(struct store *s, const char *output)
{
        *s = (struct store){ .fd = -1 };
        int r = store_names(s, output);
        if (r < 0)
                return r;
        /* a few rounds at most: each lost one means another run removed
         * the file between our open and our lock */
        for (int tries = 0; tries < 8; tries++) {
                bool created = true;
                int fd = open(s->part_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0 && errno == EEXIST) {
                        created = false;
                        fd = open(s->part_path, O_RDWR | O_CLOEXEC);
                }
                if (fd < 0) {
                        if (errno == ENOENT && !created)
                                continue;       /* removed after our EEXIST */
                        r = -errno;
                        break;
                }
                /* an OFD lock: tied to this open file, released when it is
                 * closed, whoever else in the process opens the same file */
                struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
                if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
                        r = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
                        close(fd);
                        break;
                }
                struct stat a, b;
                if (fstat(fd, &a) < 0 || stat(s->part_path, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
                        close(fd);
                        continue;
                }
                s->fd = fd;
                s->created = created;
                return 0;
        }
        store_close(s);
        return r < 0 ? r : -EBUSY;
}

void store_abandon(struct store *s)
{
        if (s->fd >= 0 && s->created && !s->prepared)
                unlink(s->part_path);
}

int store_open_locked(struct store *s, bool keep)
{
        if (s->fd < 0)
                return -EBADF;
        /* the same file store_lock opened, emptied unless kept */
        if (!keep && ftruncate(s->fd, 0) < 0)
                return -errno;
        s->prepared = true;
        return 0;
}

int store_open(struct store *s, const char *output, bool keep)
{
        *s = (struct store){ .fd = -1 };
        int r = store_names(s, output);
        if (r < 0)
                return r;
        s->prepared = true;
        s->fd = open(s->part_path, O_RDWR | O_CREAT | (keep ? 0 : O_TRUNC) | O_CLOEXEC, 0644);
        if (s->fd < 0) {
                r = -errno;
                store_close(s);
                return r;
        }
        return 0;
}

void store_close(struct store *s)
{
        if (s->fd >= 0)
                close(s->fd);
        free(s->path);
        free(s->part_path);
        *s = (struct store){ .fd = -1 };
}

int store_prepare(struct store *s, uint64_t size)
{
        s->size = size;
        if (ftruncate(s->fd, (off_t)size) < 0)
                return -errno;
        if (size) {
                int r = posix_fallocate(s->fd, 0, (off_t)size);
                /* file systems without fallocate still work, just without the early check */
                if (r && r != EOPNOTSUPP && r != ENOSYS && r != EINVAL)
                        return -r;
        }
        return 0;
}

int store_write(struct store *s, uint64_t off, const void *data, size_t len)
{
        const uint8_t *p = data;
        while (len) {
                ssize_t n = pwrite(s->fd, p, len, (off_t)off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                off += (uint64_t)n;
                len -= (size_t)n;
        }
        return 0;
}

int store_sync(struct store *s)
{
        if (s->fd < 0)
                return -EBADF;
        while (fdatasync(s->fd) < 0)
                if (errno != EINTR)
                        return -errno;
        return 0;
}

int store_read(struct store *s, uint64_t off, void *data, size_t len)
{
        uint8_t *p = data;
        while (len) {
                ssize_t n = pread(s->fd, p, len, (off_t)off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                p += n;
                off += (uint64_t)n;
                len -= (size_t)n;
        }
        return 0;
}

struct store_verify {
        struct hasher *h;
        uint8_t *buf;
        uint64_t off;
};

struct store_verify *store_verify_new(struct store *s)
{
        struct store_verify *v = calloc(1, sizeof(*v));
        if (!v)
                return NULL;
        v->h = hasher_new();
        v->buf = malloc(HASH_READ);
        if (!v->h || !v->buf)
                return store_verify_free(v);
        posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        return v;
}

struct store_verify *store_verify_free(struct store_verify *v)
{
        if (!v)
                return NULL;
        hasher_free(v->h);
        free(v->buf);
        free(v);
        return NULL;
}

int store_verify_step(struct store *s, struct store_verify *v, size_t budget, uint8_t out[P2S_HASH_SIZE])
{
        while (v->off < s->size) {
                if (budget == 0)
                        return 0;
                size_t want = budget < HASH_READ ? budget : HASH_READ;
                ssize_t n = pread(s->fd, v->buf, want, (off_t)v->off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                hasher_update(v->h, v->buf, (size_t)n);
                v->off += (uint64_t)n;
                budget -= (size_t)n;
        }
        hasher_final(v->h, out);
        return 1;
}

int store_finalize(struct store *s)
{
        if (rename(s->part_path, s->path) < 0)
                return -errno;
        return 0;
}
