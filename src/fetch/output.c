/* SPDX-License-Identifier: MIT */
/* p2s-fetch's output paths: -o FILE, -o DIR, the default, and the refusals. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fetch/exitcode.h"
#include "fetch/options.h"
#include "fetch/output.h"

#define HINT " (try 'p2s-fetch --help')"

int output_resolve(const char *arg, size_t njobs, const char *name, char **out, char *err, size_t errlen)
{
        struct stat st;
        *out = NULL;
        if (arg && !strcmp(arg, "-")) {
                /* chunks arrive in any order and the copy is only good once its
                 * whole-file hash matched: a pipe could only get unverified bytes */
                snprintf(err, errlen, "-o -: writing to standard output is not supported, "
                         "give a file or directory" HINT);
                return FETCH_EXIT_USAGE;
        }
        const char *base = fetch_base_name(name);
        size_t al = arg ? strlen(arg) : 0;
        bool dir = arg && (arg[al - 1] == '/' || (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)));
        if (arg && !dir && njobs > 1) {
                snprintf(err, errlen, "-o %s: several files need a directory (an existing one, or end it with '/')"
                         HINT, arg);
                return FETCH_EXIT_USAGE;
        }
        if (dir) {
                if (!base) {
                        snprintf(err, errlen, "cannot derive an output name from '%.255s': use -o FILE" HINT, name);
                        return FETCH_EXIT_USAGE;
                }
                if (mkdir(arg, 0755) < 0 && errno != EEXIST) {
                        snprintf(err, errlen, "cannot create the directory %s: %s", arg, strerror(errno));
                        return FETCH_EXIT_LOCAL;
                }
                if (asprintf(out, "%s%s%s", arg, arg[al - 1] == '/' ? "" : "/", base) < 0)
                        *out = NULL;
        } else {
                *out = strdup(arg ? arg : base);
        }
        if (!*out) {
                snprintf(err, errlen, "out of memory");
                return FETCH_EXIT_FAIL;
        }
        if (stat(*out, &st) == 0 && !S_ISREG(st.st_mode)) {
                const char *what = S_ISDIR(st.st_mode) ? "a directory" : S_ISCHR(st.st_mode) ? "a character device"
                                   : S_ISBLK(st.st_mode) ? "a block device" : S_ISFIFO(st.st_mode) ? "a FIFO"
                                   : S_ISSOCK(st.st_mode) ? "a socket"
                                   : "not a regular file";
                snprintf(err, errlen, "%s is %s: the verified copy is renamed into place and would replace it; "
                         "give another -o" HINT, *out, what);
                free(*out);
                *out = NULL;
                return FETCH_EXIT_USAGE;
        }
        return 0;
}
