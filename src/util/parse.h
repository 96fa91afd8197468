/* SPDX-License-Identifier: MIT */
/* Command-line values and option tables shared by the programs. The value
 * parsers return 0 or -EINVAL / -ERANGE and never accept trailing garbage.
 * An option table (struct opt) describes each option once: its names, the
 * field it sets, its kind and range, and its help text; getopt_long's
 * arguments, --help, value checks with their messages and the value as
 * text all come from it. */
#pragma once
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "65536", "64K", "1M", "2G" (powers of 1024), optional "B"/"iB" after the letter. */
int parse_size(const char *s, uint64_t *out);
/* Decimal seconds ("3", "0.5") to microseconds; 0 .. 1e6 s. */
int parse_seconds(const char *s, uint64_t *out_us);
/* Unsigned integer in [min, max]. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

enum opt_kind {
        OPT_ACTION,     /* no argument, no field: the program acts on it (--help) */
        OPT_FLAG,       /* no argument; sets a bool field */
        OPT_STRING,     /* a non-empty string, kept by pointer in a const char * field */
        OPT_ADDRESS,    /* an IPv4 or IPv6 address (net_parse_addr), kept by pointer */
        OPT_UINT,       /* decimal integer in [min, max] */
        OPT_SIZE,       /* parse_size in [min, max] */
        OPT_SECONDS,    /* parse_seconds, microseconds in [min, max] */
        OPT_CHOICE,     /* one of choices, stored as its int value */
};

struct opt_choice {
        const char *name;
        int value;
        bool alias;     /* accepted, but not listed in messages nor used as the value's name */
};

/* err, warning, notice, info, debug, and the aliases log_level_from_string takes */
extern const struct opt_choice opt_log_levels[];

/* Flags of struct opt below 1u << 8; the programs use the bits above. */
enum {
        OPT_NO_COMMAND_LINE = 1u << 0,  /* not an option on the command line */
};

struct opt {
        const char *name;               /* long option name */
        char short_name;                /* 0: none */
        const char *metavar;            /* the argument in --help; NULL with OPT_ACTION and OPT_FLAG */
        enum opt_kind kind;
        size_t offset, size;            /* the field in the options struct (OPT_FIELD) */
        uint64_t min, max;              /* OPT_UINT, OPT_SIZE, OPT_SECONDS (microseconds) */
        const struct opt_choice *choices;       /* OPT_CHOICE; ends with a NULL name */
        const char *help;               /* may hold '\n' for more lines */
        const char *default_text;       /* --help's "(default ...)" when the value's text is not it */
        const char *unset_text;         /* text of a NULL string value ("(none)") */
        unsigned flags;                 /* OPT_* and the program's own bits */
        unsigned set_bit;               /* the program's: which bit records that it was given */
};

#define OPT_FIELD(type, field) offsetof(type, field), sizeof(((type *)0)->field)

/* Sets d's field in obj from val. 0, or -EINVAL with the reason in err in
 * the form "must be between 1 and 64" (the caller names the option). */
int opt_set(const struct opt *d, void *obj, const char *val, char *err, size_t errlen);
/* d's value in obj as text that opt_set takes back ("64K", "0.5", "tcp"). */
void opt_format(const struct opt *d, const void *obj, char *buf, size_t len);
/* One value of d's kind as text: a range bound ("16M", "0.1"). */
void opt_format_value(const struct opt *d, uint64_t v, char *buf, size_t len);
/* Copies d's field from src to dst. */
void opt_copy(const struct opt *d, void *dst, const void *src);
/* Prints the option list for --help: one entry per option of the command
 * line, its help text, its range and its value in defaults. */
void opt_help(FILE *f, const struct opt *table, size_t n, const void *defaults);
const struct opt *opt_find(const struct opt *table, size_t n, const char *name);

/* getopt_long over a table. */
#define OPT_MAX 32
struct opt_parser {
        const struct opt *table;
        size_t n;
        char optstring[2 * OPT_MAX + 2];
        struct option longopts[OPT_MAX + 1];
};
/* Resets getopt, so a program (or a test) may parse more than once. */
void opt_parser_init(struct opt_parser *p, const struct opt *table, size_t n);
/* Reads the next option: 1 with its table entry in *d and its argument (or
 * NULL) in *arg; 0 at the end, optind then indexing the first operand;
 * -EINVAL on an unknown option or a missing argument, the reason in err. */
int opt_parser_next(struct opt_parser *p, int argc, char **argv, const struct opt **d, const char **arg,
                    char *err, size_t errlen);
