/* libFuzzer target: opt-out matching of incoming texts (src/optout.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "optout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *words[OPTOUT_MAX];
    static int n = -1;
    if (n < 0) {
        char err[128];
        n = 0;
        if (optout_parse("STOP,UNSUBSCRIBE,הסר,עצור", words, OPTOUT_MAX, &n, err, sizeof err) < 0)
            abort();
    }
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    int m = optout_match(text, words, n);
    /* a match is never longer than a word plus what trimming removes, and trimming
     * never touches an inner letter */
    if (m && strlen(text) > 0 && !strstr(text, "STOP") && !strstr(text, "stop") && !strcasestr(text, "stop") &&
        !strcasestr(text, "unsubscribe") && !strstr(text, "הסר") && !strstr(text, "עצור"))
        abort();
    free(text);
    return 0;
}
