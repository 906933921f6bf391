#include "optout.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* bytes of a space, ASCII punctuation or an invisible direction mark (phones wrap Hebrew
 * in U+200E/U+200F and friends) at p, 0 when p holds something else */
static size_t filler_len(const unsigned char *p, const unsigned char *end)
{
    if (p >= end)
        return 0;
    if (*p < 0x80)
        return isspace(*p) || ispunct(*p) ? 1 : 0;
    if (end - p >= 2 && p[0] == 0xC2 && p[1] == 0xA0)
        return 2; /* NBSP */
    if (end - p >= 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0x8E || p[2] == 0x8F || (p[2] >= 0xAA && p[2] <= 0xAF)))
        return 3; /* LRM, RLM, embeddings and overrides, narrow NBSP */
    if (end - p >= 3 && p[0] == 0xE2 && p[1] == 0x81 && p[2] >= 0xA6 && p[2] <= 0xA9)
        return 3; /* isolates */
    if (end - p >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        return 3; /* BOM */
    return 0;
}

/* the last filler ending at end, 0 when none */
static size_t filler_before(const unsigned char *start, const unsigned char *end)
{
    for (size_t n = 1; n <= 3 && end - n >= start; n++)
        if (filler_len(end - n, end) == n)
            return n;
    return 0;
}

int optout_match(const char *text, char *const *words, int nwords)
{
    const unsigned char *a = (const unsigned char *)text, *b = a + strlen(text);
    size_t k;
    while ((k = filler_len(a, b)) > 0)
        a += k;
    while (b > a && (k = filler_before(a, b)) > 0)
        b -= k;
    size_t n = (size_t)(b - a);
    if (n == 0 || n > 64)
        return 0;
    for (int i = 0; i < nwords; i++) {
        if (strlen(words[i]) != n)
            continue;
        size_t j = 0;
        while (j < n && toupper(a[j]) == toupper((unsigned char)words[i][j]))
            j++;
        if (j == n)
            return 1;
    }
    return 0;
}

int optout_parse(const char *list, char **words, int max, int *n, char *err, size_t errlen)
{
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        if (len) {
            if (*n == max || len > 64) {
                snprintf(err, errlen, "config: OPT_OUT_WORDS holds at most %d words of at most 64 bytes", max);
                return -1;
            }
            words[(*n)++] = xstrndup(p, len);
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

