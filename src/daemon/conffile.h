/* SPDX-License-Identifier: MIT */
/* p2sd's configuration file (p2sd.conf(5)): "key = value" lines, "#"
 * comments (at the start of a line or after a blank), the keys and values
 * being those of p2sd_option_table. What p2sd runs with is built in layers:
 * defaults < the file < the command line, checked by p2sd_options_check. */
#pragma once
#include <stddef.h>
#include "daemon/options.h"

struct p2sd_conf {
        struct p2sd_options opt;        /* the merged options */
        char *text;                     /* the file's bytes; option strings point into it */
        char **files;                   /* "file" entries, when opt.files comes from the file */
};

/* Reads cmd->config (when set) and lays cmd's command-line options over
 * it. NULL with a message naming "FILE:LINE" (or "FILE") in err. */
struct p2sd_conf *p2sd_conf_load(const struct p2sd_options *cmd, char *err, size_t errlen);
struct p2sd_conf *p2sd_conf_free(struct p2sd_conf *c);

/* Calls fn once per key whose value differs between a and b; for "file"
 * once per name added (old NULL) or removed (new NULL). Returns the count. */
typedef void p2sd_conf_diff_fn(const char *key, const char *old, const char *new, void *ud);
unsigned p2sd_conf_diff(const struct p2sd_options *a, const struct p2sd_options *b,
                        p2sd_conf_diff_fn *fn, void *ud);
