/* libFuzzer target: what the Docker engine sends back (src/docker.h) — container
 * listings, event-stream bytes split into lines, create answers, log frames. None may
 * crash, overrun or leak, and what they return must hold the documented bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"

static void on_line(const char *line, size_t len, void *arg)
{
    struct docker_event ev;
    if (len > 4096)
        abort();
    if (docker_parse_event(line, len, &ev) == 0 &&
        (strlen(ev.id) == 0 || strlen(ev.id) >= DOCKER_ID_MAX || ev.exit_code < -1 || ev.exit_code > 255))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct docker_found f[4];
    int n = docker_parse_list(s, size, "me", f, 4);
    if (n > 4)
        abort();
    for (int i = 0; i < n; i++)
        if (!f[i].id[0] || !f[i].session[0] || f[i].start < 0)
            abort();

    struct docker_lines l;
    docker_lines_init(&l, 4096);
    /* fed in two pieces, as a stream arrives */
    docker_lines_feed(&l, s, size / 2, on_line, NULL);
    docker_lines_feed(&l, s + size / 2, size - size / 2, on_line, NULL);
    docker_lines_free(&l);

    char id[DOCKER_ID_MAX], msg[64], inst[16];
    if (docker_parse_id(s, size, id, sizeof id) == 0 && strspn(id, "0123456789abcdef") != strlen(id))
        abort();
    docker_parse_message(s, size, 500, msg, sizeof msg);
    int running;
    docker_parse_inspect(s, size, inst, sizeof inst, &running);

    char out[256];
    if (docker_demux(data, size, out, sizeof out) > sizeof out)
        abort();
    return 0;
}
