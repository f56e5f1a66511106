/* cli_common.c: helpers shared by the subcommands' argument handling. */
#include "cli_common.h"

#include <stdio.h>
#include <string.h>

const char *cli_none_to_null(const char *text)
{
    return text && strcmp(text, "none") != 0 ? text : NULL;
}

int cli_parse_format(const char *text, enum wm_format *out)
{
    if (text && strcmp(text, "v03") == 0) *out = WM_FORMAT_V03;
    else if (text && strcmp(text, "array") == 0) *out = WM_FORMAT_ARRAY;
    else {
        fprintf(stderr, "wmesh: unknown message format \"%s\" (v03 or array)\n",
                text ? text : "");
        return -1;
    }
    return 0;
}
