/* libFuzzer target: .env text (config_parse_env in src/config.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* the parser's own limits: keys under 128 bytes, values under 4096 */
#define KEY_LIMIT 128
#define VALUE_LIMIT 4096

static int check_pair(const char *key, const char *value, void *arg)
{
    size_t *count = arg;
    size_t kl = strnlen(key, KEY_LIMIT);
    size_t vl = strnlen(value, VALUE_LIMIT);
    if (kl == 0 || kl >= KEY_LIMIT || vl >= VALUE_LIMIT)
        abort();
    /* keys are [A-Za-z0-9_] only */
    if (strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != kl)
        abort();
    (*count)++;
    /* refuse now and then so the error path runs too */
    return (kl == 3 && key[0] == 'B' && key[1] == 'A' && key[2] == 'D') ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a heap copy of exactly size bytes, so that ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    char err[256];
    err[0] = '\0';
    size_t count = 0;
    int rc = config_parse_env(buf, size, check_pair, &count, err, sizeof err);
    if (rc != 0 && rc != -1)
        abort();
    if (rc == -1 && (err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL))
        abort();
    free(buf);
    return 0;
}
