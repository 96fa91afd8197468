/* SPDX-License-Identifier: MIT */
/* The resume state file: its encoding, its checks, its atomic replacement.
 * See resume.h for the layout. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fetch/resume.h"
#include "proto/hash.h"

#define MAGIC   "P2SR"
#define VERSION 1u
#define HEAD    56u
/* Well above any valid state (P2S_MAX_CHUNKS bits), far below harm. */
#define MAX_FILE (HEAD + P2S_MAX_CHUNKS / 8 + P2S_HASH_SIZE)

static void put_u32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static size_t map_bytes(uint32_t count)
{
        return (count + 7u) / 8u;
}

char *resume_path(const char *output)
{
        char *p;
        if (asprintf(&p, "%s.part" RESUME_SUFFIX, output) < 0)
                return NULL;
        return p;
}

void resume_fini(struct resume_state *st)
{
        bitmap_fini(&st->done);
        memset(st, 0, sizeof(*st));
}

static int read_all(int fd, uint8_t *buf, size_t cap, size_t *len)
{
        size_t n = 0;
        while (n < cap) {
                ssize_t r = read(fd, buf + n, cap - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        break;
                n += (size_t)r;
        }
        *len = n;
        return 0;
}

/* The state from its bytes, every field checked before use. */
static int decode(const uint8_t *b, size_t len, struct resume_state *st)
{
        if (len < HEAD + P2S_HASH_SIZE || memcmp(b, MAGIC, 4) || get_u32(b + 4) != VERSION)
                return -EBADMSG;
        uint8_t sum[P2S_HASH_SIZE];
        hash_sha256(b, len - P2S_HASH_SIZE, sum);
        if (memcmp(sum, b + len - P2S_HASH_SIZE, P2S_HASH_SIZE))
                return -EBADMSG;
        uint64_t size = (uint64_t)get_u32(b + 8) << 32 | get_u32(b + 12);
        uint32_t cs = get_u32(b + 16), count = get_u32(b + 20);
        if (cs < P2S_MIN_CHUNK || cs > P2S_MAX_CHUNK || count > P2S_MAX_CHUNKS ||
            size / cs + (size % cs != 0) != count || len != HEAD + map_bytes(count) + P2S_HASH_SIZE)
                return -EBADMSG;
        const uint8_t *map = b + HEAD;
        /* padding bits are 0: anything else was not written by resume_save */
        if (count % 8 && (map[count / 8] >> (count % 8)))
                return -EBADMSG;
        *st = (struct resume_state){ .file_size = size, .chunk_size = cs, .chunk_count = count };
        memcpy(st->file_hash, b + 24, P2S_HASH_SIZE);
        if (bitmap_init(&st->done, count) < 0)
                return -ENOMEM;
        for (uint32_t i = 0; i < count; i++)
                if (map[i / 8] & (1u << (i % 8)))
                        bitmap_set(&st->done, i);
        return 0;
}

int resume_load(const char *path, struct resume_state *st)
{
        memset(st, 0, sizeof(*st));
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ELOOP ? -EBADMSG : -errno;
        struct stat sb;
        if (fstat(fd, &sb) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (!S_ISREG(sb.st_mode) || sb.st_size > (off_t)MAX_FILE) {
                close(fd);
                return -EBADMSG;
        }
        size_t cap = (size_t)sb.st_size, len = 0;
        uint8_t *b = malloc(cap ? cap : 1);
        if (!b) {
                close(fd);
                return -ENOMEM;
        }
        int r = read_all(fd, b, cap, &len);
        close(fd);
        if (r == 0)
                r = decode(b, len, st);
        free(b);
        return r;
}

static int write_all(int fd, const uint8_t *b, size_t len)
{
        while (len) {
                ssize_t n = write(fd, b, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                b += n;
                len -= (size_t)n;
        }
        return 0;
}

/* The rename must survive a crash too: the directory entry is data of the directory. */
static void sync_dir(const char *path)
{
        char *dir = strdup(path);
        if (!dir)
                return;
        char *slash = strrchr(dir, '/');
        const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
        int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                fsync(fd);
                close(fd);
        }
        free(dir);
}

int resume_save(const char *path, const struct resume_state *st, bool durable)
{
        if (st->done.nbits != st->chunk_count)
                return -EINVAL;
        size_t nmap = map_bytes(st->chunk_count), len = HEAD + nmap + P2S_HASH_SIZE;
        uint8_t *b = calloc(1, len);
        char *tmp = NULL;
        if (!b || asprintf(&tmp, "%s.tmp", path) < 0) {
                free(b);
                return -ENOMEM;
        }
        memcpy(b, MAGIC, 4);
        put_u32(b + 4, VERSION);
        put_u32(b + 8, (uint32_t)(st->file_size >> 32));
        put_u32(b + 12, (uint32_t)st->file_size);
        put_u32(b + 16, st->chunk_size);
        put_u32(b + 20, st->chunk_count);
        memcpy(b + 24, st->file_hash, P2S_HASH_SIZE);
        for (size_t i = bitmap_next_set(&st->done, 0); i < st->chunk_count; i = bitmap_next_set(&st->done, i + 1))
                b[HEAD + i / 8] |= (uint8_t)(1u << (i % 8));
        hash_sha256(b, len - P2S_HASH_SIZE, b + len - P2S_HASH_SIZE);

        int r = 0;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                r = -errno;
        if (r == 0)
                r = write_all(fd, b, len);
        if (r == 0 && durable && fsync(fd) < 0)
                r = -errno;
        if (fd >= 0 && close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        else if (durable)
                sync_dir(path);
        free(tmp);
        free(b);
        return r;
}
