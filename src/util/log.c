/* SPDX-License-Identifier: MIT */
/* Log records to stderr, one line each; escaping of peer-supplied text. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "clock.h"
#include "log.h"

#define LOG_RL_INTERVAL_US (5 * USEC_PER_SEC)
#define LOG_RL_BURST 10u

static const char *log_prog = "p2s";
static int log_level = LOG_INFO;
static bool log_prefix;
static void (*log_before_write)(void);

static const char *const log_words[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
        [LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/* JOURNAL_STREAM is inherited by children whose stderr may point elsewhere,
 * so only trust it when its "dev:ino" is our stderr (as systemd does). */
static bool log_stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *prog)
{
        if (prog) {
                const char *slash = strrchr(prog, '/');

                log_prog = slash ? slash + 1 : prog;
        }
        log_prefix = log_stderr_is_journal();
}

void log_set_level(int prio)
{
        if (prio < LOG_EMERG)
                prio = LOG_EMERG;
        if (prio > LOG_DEBUG)
                prio = LOG_DEBUG;
        log_level = prio;
}

int log_get_level(void)
{
        return log_level;
}

int log_level_from_string(const char *s)
{
        static const struct { const char *name; int prio; } names[] = {
                { "err", LOG_ERR }, { "error", LOG_ERR },
                { "warning", LOG_WARNING }, { "warn", LOG_WARNING },
                { "notice", LOG_NOTICE }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
        };

        if (!s)
                return -1;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(s, names[i].name) == 0)
                        return names[i].prio;
        if (s[0] >= '0' + LOG_ERR && s[0] <= '0' + LOG_DEBUG && s[1] == '\0')
                return s[0] - '0';
        return -1;
}

void log_set_prefix(bool on)
{
        log_prefix = on;
}

void log_set_before_write(void (*fn)(void))
{
        log_before_write = fn;
}

const char *log_escape(char *out, size_t outlen, const void *in, size_t inlen)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = in;
        size_t need = 0, used = 0;

        if (outlen == 0)
                return "";
        for (size_t i = 0; i < inlen; i++)
                need += (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') ? 1 : 4;
        /* cut short: leave room for the "..." that says so */
        size_t room = need < outlen ? outlen - 1 : (outlen > 4 ? outlen - 4 : 0);
        for (size_t i = 0; i < inlen; i++) {
                unsigned char c = p[i];
                bool plain = c >= 0x20 && c < 0x7f && c != '\\';
                size_t w = plain ? 1 : 4;
                if (used + w > room)
                        break;
                if (plain) {
                        out[used++] = (char)c;
                } else {
                        out[used++] = '\\';
                        out[used++] = 'x';
                        out[used++] = hex[c >> 4];
                        out[used++] = hex[c & 15];
                }
        }
        if (need >= outlen)
                for (int k = 0; k < 3 && used < outlen - 1; k++)
                        out[used++] = '.';
        out[used] = '\0';
        return out;
}

/* A record is one line whatever the message holds: a newline from a peer
 * string nobody escaped must not start a forged record. Bytes >= 0x80 stay:
 * a file name may be UTF-8. */
static void log_one_line(char *out, size_t cap, const char *msg)
{
        static const char hex[] = "0123456789abcdef";
        size_t used = 0;

        for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
                char esc[4];
                size_t w = 0;

                if (*p == '\n' || *p == '\r') {
                        esc[w++] = '\\';
                        esc[w++] = *p == '\n' ? 'n' : 'r';
                } else if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
                        esc[w++] = '\\';
                        esc[w++] = 'x';
                        esc[w++] = hex[*p >> 4];
                        esc[w++] = hex[*p & 15];
                } else {
                        esc[w++] = (char)*p;
                }
                if (used + w >= cap)
                        break;
                memcpy(out + used, esc, w);
                used += w;
        }
        out[used] = '\0';
}

static void log_emit(int prio, const char *raw)
{
        char msg[2048];
        char line[2048];
        int n;

        log_one_line(msg, sizeof(msg), raw);

        if (prio < LOG_EMERG || prio > LOG_DEBUG)
                prio = LOG_ERR;
        if (log_prefix)
                n = snprintf(line, sizeof(line), "<%d>%s\n", prio, msg);
        else
                n = snprintf(line, sizeof(line), "%s: %s: %s\n", log_prog, log_words[prio], msg);
        if (n < 0)
                return;
        if ((size_t)n >= sizeof(line)) {
                /* Truncated: keep the line a line. */
                n = sizeof(line) - 1;
                line[n - 1] = '\n';
        }
        if (log_before_write)
                log_before_write();
        /* One write per line so lines from several processes do not interleave. */
        if (write(STDERR_FILENO, line, (size_t)n) < 0) {
                /* Nowhere left to report it. */
        }
}

static void log_vmsg(int prio, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void log_vmsg(int prio, const char *fmt, va_list ap)
{
        char msg[1536];
        int saved = errno;      /* callers log with %m and then return -errno */

        vsnprintf(msg, sizeof(msg), fmt, ap);
        log_emit(prio, msg);
        errno = saved;
}

void log_msg(int prio, const char *fmt, ...)
{
        va_list ap;

        if (prio > log_level)
                return;
        va_start(ap, fmt);
        log_vmsg(prio, fmt, ap);
        va_end(ap);
}

void log_msg_rl(struct log_ratelimit *rl, int prio, const char *fmt, ...)
{
        uint64_t now;
        va_list ap;

        if (prio > log_level)
                return;
        now = now_usec();
        if (rl->window_start_us == 0 || now - rl->window_start_us >= LOG_RL_INTERVAL_US) {
                if (rl->suppressed) {
                        char msg[64];

                        snprintf(msg, sizeof(msg), "(%u similar messages suppressed)", rl->suppressed);
                        log_emit(prio, msg);
                }
                /* 0 marks "never used"; the monotonic clock is never 0 after boot. */
                rl->window_start_us = now ? now : 1;
                rl->emitted = 0;
                rl->suppressed = 0;
        }
        if (rl->emitted >= LOG_RL_BURST) {
                rl->suppressed++;
                return;
        }
        rl->emitted++;
        va_start(ap, fmt);
        log_vmsg(prio, fmt, ap);
        va_end(ap);
}
