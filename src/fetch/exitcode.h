/* SPDX-License-Identifier: MIT */
/* p2s-fetch's exit statuses, curl-style: one number per thing a user can
 * act on. The one table from how a session ended (member_exit, and the
 * server's ERR code) to the status lives in exitcode.c; p2s-fetch(1)
 * lists the same numbers. */
#pragma once
#include <stdint.h>

enum fetch_exit {
        FETCH_EXIT_OK          = 0,
        FETCH_EXIT_FAIL        = 1,     /* anything else: interrupted, out of memory */
        FETCH_EXIT_USAGE       = 2,     /* bad command line, unusable output */
        FETCH_EXIT_UNREACHABLE = 3,     /* cannot resolve or reach the server */
        FETCH_EXIT_REFUSED     = 4,     /* name not served, or the join refused */
        FETCH_EXIT_SWARM       = 5,     /* the swarm failed */
        FETCH_EXIT_GONE        = 6,     /* the server went away (closed, silent) */
        FETCH_EXIT_LOCAL       = 7,     /* local I/O error: disk full, unwritable */
        FETCH_EXIT_VERIFY      = 8,     /* verification failed, pinned hash mismatch */
};

/* How a member ended (enum member_exit) and, for MEMBER_EXIT_SERVER, the
 * server's P2S_ERR_* code, as an exit status. */
int fetch_exit_for(int member_exit, uint16_t err);
/* A fatal ERR answering our HELLO (P2S_ERR_*), as an exit status. */
int fetch_exit_for_join_err(uint16_t err);
/* "success", "usage error", ... for the summary lines. */
const char *fetch_exit_name(int code);
