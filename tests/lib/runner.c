/* SPDX-License-Identifier: MIT */
/* main() for every check binary: runs the suites the binary's test file
 * lists in runner_suites. */
#include <stdio.h>
#include <stdlib.h>
#include "runner.h"

void runner_skip(const char *why)
{
        fprintf(stderr, "SKIP: %s\n", why);
        exit(RUNNER_EXIT_SKIP);
}

int main(void)
{
        SRunner *sr = NULL;
        for (const runner_suite_fn *f = runner_suites; *f; f++) {
                Suite *s = (*f)();
                if (!sr)
                        sr = srunner_create(s);
                else
                        srunner_add_suite(sr, s);
        }
        if (!sr) {
                fprintf(stderr, "no suites\n");
                return 1;
        }
        /* CK_ENV: CK_VERBOSITY chooses, CK_NORMAL when it is unset */
        srunner_run_all(sr, CK_ENV);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
