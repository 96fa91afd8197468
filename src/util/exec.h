/* SPDX-License-Identifier: MIT */
/* Replacing the process image with a program whose argv is const, as the
 * callers keep it. */
#pragma once

/* execv(argv[0], argv) through a writable copy of argv (execv takes
 * char *const *); meant for a child just after fork. Returns only on
 * failure, with errno set. */
void exec_argv(const char *const *argv);
