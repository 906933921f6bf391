/* csv: records of RFC 4180 text (quoted fields with "" escapes, CRLF or LF line ends).
 * Pure; the fuzz target drives it. */
#ifndef SB_CSV_H
#define SB_CSV_H

#include <stddef.h>

#define CSV_FIELDS_MAX 8
#define CSV_FIELD_BYTES 256

struct csv {
    const char *p, *end;
    int line; /* the line the next record starts on, from 1 */
};

void csv_init(struct csv *c, const char *buf, size_t len);
/* The next record's fields, copied (NUL-terminated) into out. Returns the number of
 * fields (> 0), 0 at the end of the text, or -1 for a record that is malformed (an
 * unclosed quote, a quote inside a field that does not start with one, a field over
 * CSV_FIELD_BYTES - 1 bytes, more than CSV_FIELDS_MAX fields, a NUL byte) with err;
 * parsing goes on after the whole record (a quoted field's line ends are part of it).
 * *line gets the record's first line. Empty lines are skipped. */
int csv_next(struct csv *c, char out[CSV_FIELDS_MAX][CSV_FIELD_BYTES], int *line, char *err, size_t errlen);

#endif
