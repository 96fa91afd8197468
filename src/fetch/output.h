/* SPDX-License-Identifier: MIT */
/* Where each copy goes, decided before anything is joined: -o FILE, -o DIR
 * (an existing directory or a name ending in '/': DIR/NAME's base name),
 * or the base name of NAME; and what is refused (standard output, a
 * device, FIFO or socket, which a rename would replace). */
#pragma once
#include <stddef.h>

/* The output path of name in *out (malloc'd). arg: -o as given, NULL when
 * none; njobs: how many files the command fetches (more than one needs a
 * directory). 0, or an exit status (enum fetch_exit) with the message
 * (without the program's name) in err. */
int output_resolve(const char *arg, size_t njobs, const char *name, char **out, char *err, size_t errlen);
