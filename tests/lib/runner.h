/* SPDX-License-Identifier: MIT */
/* The one main of every check binary: a test file names its Suite
 * constructors with RUNNER_SUITES(...) and links tests/lib; the runner adds
 * them to one SRunner (CK_RUN_SUITE, CK_RUN_CASE, CK_VERBOSITY and CK_FORK
 * apply) and exits 0, 1 on a failure, or 77 when the binary must skip. */
#pragma once

#include <check.h>

typedef Suite *(*runner_suite_fn)(void);

/* NULL-terminated; defined once per binary by RUNNER_SUITES. */
extern const runner_suite_fn runner_suites[];
#define RUNNER_SUITES(...) const runner_suite_fn runner_suites[] = { __VA_ARGS__, NULL }

#define RUNNER_EXIT_SKIP 77

/* Skips the whole binary (exit 77, why on stderr); for a suite
 * constructor that finds the machine cannot run it. */
_Noreturn void runner_skip(const char *why);
