/* SPDX-License-Identifier: MIT */
/* Checks on a program's --help text shared by the option suites of p2sd
 * and p2s-fetch, which print it the same way from their option tables
 * (util/parse.h). */
#pragma once

#include <stddef.h>
#include <stdio.h>
#include "util/parse.h"

/* What help(f) prints, NUL-terminated and malloc'ed (the caller frees). */
char *help_text(void (*help)(FILE *f));
/* The start of option d's --help line, "  -s, --name METAVAR" or
 * "      --name METAVAR", into want. */
void help_option_line(const struct opt *d, char *want, size_t cap);
/* Every line of text is under 80 columns (the message shows the first that is not). */
void help_assert_width(const char *text);
