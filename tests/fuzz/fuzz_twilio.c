/* libFuzzer target: Twilio answers and dates (src/twilio.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "twilio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct twilio_call c, list[8];
    char err[256], text[400];
    if (twilio_parse_call((const char *)data, size, &c, err, sizeof err) == 0) {
        if (strncmp(c.sid, "CA", 2) != 0 || strnlen(c.sid, sizeof c.sid) >= sizeof c.sid || c.duration < 0)
            abort();
    }
    int n = twilio_parse_list((const char *)data, size, list, 8, err, sizeof err);
    if (n > 8)
        abort();
    twilio_error_text(400, (const char *)data, size, text, sizeof text);
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t ms;
    twilio_parse_date(s, &ms);
    free(s);
    return 0;
}
