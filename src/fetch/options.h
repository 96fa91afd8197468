/* SPDX-License-Identifier: MIT */
/* p2s-fetch's command line (doc/cli.md is the contract): one table,
 * fetch_option_table, drives getopt, --help and the value checks. */
#pragma once
#include <stddef.h>
#include <stdio.h>
#include "fetch/client.h"
#include "util/parse.h"

#define P2S_URL_SCHEME "p2s://"

extern const struct opt fetch_option_table[];
extern const size_t fetch_option_count;

void fetch_options_defaults(struct fetch_options *o);
void fetch_options_help(FILE *f);
/* The base name of NAME, or NULL when it has none (dir/, dir/..). */
const char *fetch_base_name(const char *name);
/* 0: run; 1: --help or --version was printed, exit 0; 2: bad command line,
 * err holds the one line to print ("p2s-fetch: ... (try 'p2s-fetch --help')").
 * The host argument is cut up in place: o->host points into argv. */
int fetch_options_parse(struct fetch_options *o, int argc, char **argv, char *err, size_t errlen);
