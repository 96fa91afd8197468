/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "helptext.h"

char *help_text(void (*help)(FILE *f))
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        ck_assert(f);
        help(f);
        ck_assert(fclose(f) == 0);
        return text;
}

void help_option_line(const struct opt *d, char *want, size_t cap)
{
        if (d->short_name)
                snprintf(want, cap, "  -%c, --%s%s%s", d->short_name, d->name, d->metavar ? " " : "",
                         d->metavar ? d->metavar : "");
        else
                snprintf(want, cap, "      --%s%s%s", d->name, d->metavar ? " " : "", d->metavar ? d->metavar : "");
}

void help_assert_width(const char *text)
{
        for (const char *l = text; *l; l = strchr(l, '\n') + 1)
                ck_assert_msg(strchr(l, '\n') - l < 80, "a --help line is 80 columns or more: %.*s",
                              (int)(strchr(l, '\n') - l), l);
}
