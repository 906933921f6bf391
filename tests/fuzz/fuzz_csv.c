/* libFuzzer target: lead imports (src/csv.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct csv c;
    char f[CSV_FIELDS_MAX][CSV_FIELD_BYTES], err[128];
    int line, last = 0, n;
    csv_init(&c, (const char *)data, size);
    for (int i = 0; i < 100000 && (n = csv_next(&c, f, &line, err, sizeof err)) != 0; i++) {
        /* records come in order and every field is terminated within its buffer */
        if (n > CSV_FIELDS_MAX || line < last || line < 1)
            abort();
        for (int k = 0; n > 0 && k < n; k++)
            if (strnlen(f[k], CSV_FIELD_BYTES) >= CSV_FIELD_BYTES)
                abort();
        last = line;
    }
    return 0;
}
