/* libFuzzer target: worker event bodies (src/wevent.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wevent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wevent ev;
    char err[256];
    if (wevent_parse((const char *)data, size, &ev, err, sizeof err) == 0) {
        /* a parsed event is internally consistent */
        if (!ev.root || !ev.session || ev.session_num < 1 || ev.type >= WE__COUNT ||
            ev.timestamp < 0 || strncmp(ev.session, "worker_", 7) != 0)
            abort();
        int64_t n;
        if (wevent_session_num(ev.session, &n) < 0 || n != ev.session_num)
            abort();
        if (!wevent_session_of(ev.root))
            abort();
        /* strings are NUL-terminated: touch their ends */
        const char *s[] = {ev.qr, ev.code, ev.phone, ev.name, ev.reason, ev.error,
                           ev.message_id, ev.wa_message_id, ev.from, ev.text};
        size_t total = 0;
        for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
            total += s[i] ? strlen(s[i]) : 0;
        (void)total;
        wevent_free(&ev);
    } else {
        if (ev.root)
            abort(); /* on -1 nothing needs freeing */
        if (memchr(err, '\0', sizeof err) == NULL)
            abort();
    }
    return 0;
}
