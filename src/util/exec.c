/* SPDX-License-Identifier: MIT */
/* exec_argv: execv through a writable copy of a const argv. See exec.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util/exec.h"

void exec_argv(const char *const *argv)
{
        size_t n = 0;
        while (argv[n])
                n++;
        /* the copy is never freed: the image it lives in is replaced, or
         * the caller exits on failure */
        char **av = calloc(n + 1, sizeof(*av));
        if (!av)
                return;
        for (size_t i = 0; i < n; i++)
                if (!(av[i] = strdup(argv[i])))
                        return;
        execv(av[0], av);
}
