/* SPDX-License-Identifier: MIT */
/* A main for a libFuzzer target without libFuzzer: runs LLVMFuzzerTestOneInput
 * once on every file named on the command line, or found (one level deep) in
 * a directory named there, so a corpus is an ordinary test in any build.
 * A crash is the target's abort() or a sanitizer report; an empty corpus or
 * an unreadable file fails too, so a wrong path is not a silent pass. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        uint8_t *data = NULL;
        size_t len = 0, cap = 0;

        if (!f) {
                fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
                return -1;
        }
        for (;;) {
                if (len == cap) {
                        uint8_t *n = realloc(data, cap ? cap * 2 : 4096);
                        if (!n) {
                                fprintf(stderr, "replay: %s: out of memory\n", path);
                                free(data);
                                fclose(f);
                                return -1;
                        }
                        data = n;
                        cap = cap ? cap * 2 : 4096;
                }
                size_t n = fread(data + len, 1, cap - len, f);
                len += n;
                if (n == 0)
                        break;
        }
        if (ferror(f)) {
                fprintf(stderr, "replay: %s: read error\n", path);
                free(data);
                fclose(f);
                return -1;
        }
        fclose(f);
        /* an exact-size copy, so ASan sees a read past the input */
        uint8_t *exact = malloc(len ? len : 1);
        if (!exact) {
                free(data);
                return -1;
        }
        memcpy(exact, data, len);
        free(data);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
        return 0;
}

int main(int argc, char **argv)
{
        unsigned ran = 0, failed = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
                        failed++;
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        failed += replay_file(argv[i]) < 0;
                        ran++;
                        continue;
                }
                DIR *d = opendir(argv[i]);
                if (!d) {
                        fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
                        failed++;
                        continue;
                }
                struct dirent *e;
                while ((e = readdir(d))) {
                        char path[4096];
                        if (e->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
                        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                                continue;
                        failed += replay_file(path) < 0;
                        ran++;
                }
                closedir(d);
        }
        printf("replay: %u inputs, %u unreadable\n", ran, failed);
        return ran == 0 || failed ? 1 : 0;
}
