/* libFuzzer target: archive paths a restore accepts (src/backup.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size + 1);
    memcpy(p, data, size);
    p[size] = '\0';
    if (backup_path_ok(p)) {
        /* what may pass: under sessions/worker_<n>/, no way up, nothing absolute or empty */
        size_t l = strlen(p);
        if (strncmp(p, "sessions/worker_", 16) != 0 || strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//") ||
            p[l - 1] == '/' || (l >= 3 && strcmp(p + l - 3, "/..") == 0) || (l >= 2 && strcmp(p + l - 2, "/.") == 0) ||
            strchr(p, '\\'))
            abort();
    }
    backup_name_ok(p);
    free(p);
    return 0;
}
