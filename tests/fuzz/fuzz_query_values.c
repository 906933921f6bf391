/* libFuzzer target: the parsers of query values (util_parse_count, util_parse_iso8601 in
 * src/util/util.h), which read ?limit=, ?cursor=, ?since= and path ids. A number is
 * accepted only in its one canonical spelling, within its bounds; a time only when it
 * is a real date, and the time read back from util_iso8601 is the same millisecond. */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define INPUT_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[INPUT_MAX + 1];
    if (size > INPUT_MAX)
        size = INPUT_MAX;
    memcpy(s, data, size);
    s[size] = '\0';

    long v;
    if (util_parse_count(s, 1, 999999999999L, &v) == 0) {
        char back[32];
        snprintf(back, sizeof back, "%ld", v);
        if (v < 1 || v > 999999999999L || strcmp(back, s) != 0)
            abort();
    }
    if (util_parse_count(s, 0, LONG_MAX, &v) == 0 && v < 0)
        abort();

    int64_t ms;
    if (util_parse_iso8601(s, &ms) == 0) {
        /* 1970-01-01 to 9999-12-31T23:59:59.999 */
        if (ms < 0 || ms > 253402300799999LL)
            abort();
        char iso[40];
        int64_t again;
        util_iso8601(ms, iso, sizeof iso);
        if (util_parse_iso8601(iso, &again) != 0 || again != ms || strncmp(iso, s, 19) != 0)
            abort();
    }
    return 0;
}
