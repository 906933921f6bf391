#include "csv.h"

#include <stdio.h>
#include <string.h>

void csv_init(struct csv *c, const char *buf, size_t len)
{
    c->p = buf;
    c->end = buf + len;
    c->line = 1;
    /* a UTF-8 byte order mark, as spreadsheets write it */
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        c->p += 3;
}

/* Skips the rest of a bad record: to the end of its line, but not inside a quoted field
 * (in_quote: the error came inside one), whose line ends belong to the record. No part
 * of a rejected record may be read as a record of its own. field_start: the next byte
 * starts a field, so a quote there opens one. */
static void skip_record(struct csv *c, int in_quote, int field_start)
{
    while (c->p < c->end) {
        char ch = *c->p++;
        if (in_quote) {
            if (ch == '"' && c->p < c->end && *c->p == '"')
                c->p++;
            else if (ch == '"')
                in_quote = 0;
            else if (ch == '\n')
                c->line++;
            continue;
        }
        if (ch == '\n') {
            c->line++;
            return;
        }
        in_quote = ch == '"' && field_start;
        field_start = ch == ',';
    }
}

int csv_next(struct csv *c, char out[CSV_FIELDS_MAX][CSV_FIELD_BYTES], int *line, char *err, size_t errlen)
{
    /* empty lines */
    while (c->p < c->end && (*c->p == '\n' || (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n'))) {
        c->p += *c->p == '\r' ? 2 : 1;
        c->line++;
    }
    if (c->p >= c->end)
        return 0;
    *line = c->line;
    int n = 0;
    for (;;) {
        if (n == CSV_FIELDS_MAX) {
            snprintf(err, errlen, "more than %d fields", CSV_FIELDS_MAX);
            skip_record(c, 0, 1);
            return -1;
        }
        size_t len = 0;
        char *f = out[n];
        if (c->p < c->end && *c->p == '"') {
            c->p++;
            for (;;) {
                if (c->p >= c->end) {
                    snprintf(err, errlen, "a quoted field is not closed");
                    return -1;
                }
                char ch = *c->p++;
                if (ch == '"') {
                    if (c->p < c->end && *c->p == '"') {
                        c->p++;
                    } else {
                        break;
                    }
                } else if (ch == '\n') {
                    c->line++;
                } else if (ch == '\0') {
                    snprintf(err, errlen, "a NUL byte");
                    skip_record(c, 1, 0);
                    return -1;
                }
                if (len + 1 >= CSV_FIELD_BYTES) {
                    snprintf(err, errlen, "a field is longer than %d bytes", CSV_FIELD_BYTES - 1);
                    skip_record(c, 1, 0);
                    return -1;
                }
                f[len++] = ch;
            }
            if (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r') {
                snprintf(err, errlen, "text after a closing quote");
                skip_record(c, 0, 0);
                return -1;
            }
        } else {
            while (c->p < c->end && *c->p != ',' && *c->p != '\n' &&
                   !(*c->p == '\r' && (c->p + 1 >= c->end || c->p[1] == '\n'))) {
                if (*c->p == '\0' || *c->p == '"') {
                    /* RFC 4180: a quote belongs only in a field that starts with one */
                    snprintf(err, errlen, *c->p ? "a quote inside a field that does not start with one" : "a NUL byte");
                    skip_record(c, 0, 0);
                    return -1;
                }
                if (len + 1 >= CSV_FIELD_BYTES) {
                    snprintf(err, errlen, "a field is longer than %d bytes", CSV_FIELD_BYTES - 1);
                    skip_record(c, 0, 0);
                    return -1;
                }
                f[len++] = *c->p++;
            }
        }
        f[len] = '\0';
        n++;
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '\r')
            c->p++;
        if (c->p < c->end && *c->p == '\n') {
            c->p++;
            c->line++;
        }
        return n;
    }
}
