/* SPDX-License-Identifier: MIT */
/* Logging to stderr. Under journald (JOURNAL_STREAM set, or forced with
 * log_set_prefix) each line gets a "<N>" syslog priority prefix so journald
 * records the right priority; otherwise "PROG: LEVEL: message". Only the main
 * programs log; library code returns errors. */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

void log_init(const char *prog);              /* reads JOURNAL_STREAM */
void log_set_level(int prio);                 /* LOG_ERR .. LOG_DEBUG; default LOG_INFO */
int log_get_level(void);
/* Parses "err", "warning", "notice", "info", "debug" (or 3..7); -1 if unknown. */
int log_level_from_string(const char *s);
void log_set_prefix(bool on);
/* Called before each record is written (NULL: none): p2s-fetch ends a
 * progress bar drawn in place so the record starts on a line of its own. */
void log_set_before_write(void (*fn)(void));
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Renders inlen bytes from a peer (a file name, an ERR reason) for a log
 * line: printable ASCII as it is; control bytes, backslash and bytes >= 0x7f
 * as \xNN, so a peer can neither forge a second record nor drive a terminal,
 * and two different inputs never render alike. Always NUL-terminates
 * (outlen >= 1); when out is too small the rendering is cut at a whole
 * escape and ends in "...". Returns out, for use as a %s argument; "" when
 * outlen is 0. LOG_ESCAPE_SIZE(n) bytes always hold n bytes in full. */
#define LOG_ESCAPE_SIZE(n) (4 * (size_t)(n) + 1)
const char *log_escape(char *out, size_t outlen, const void *in, size_t inlen);

/* Every record is one line: log_msg itself renders a newline or carriage
 * return inside a message as \n or \r, and other control bytes as \xNN
 * (defence in depth: peer strings should be log_escape()d anyway). */

/* Rate limit for floods (bad packets): at most burst lines per interval per
 * call site; the first line after a suppressed run says how many were dropped. */
struct log_ratelimit {
        unsigned long long window_start_us;
        unsigned emitted, suppressed;
};
void log_msg_rl(struct log_ratelimit *rl, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define log_rl(prio, ...) do { static struct log_ratelimit _rl; log_msg_rl(&_rl, prio, __VA_ARGS__); } while (0)

#define log_err(...)     log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)
