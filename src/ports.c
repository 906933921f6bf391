#include "ports.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

void ports_init(struct ports *p, int min, int max)
{
    p->min = min;
    p->max = max;
    p->next = 0;
    p->used = xcalloc((size_t)(max - min + 1), 1);
}

void ports_free(struct ports *p)
{
    free(p->used);
    p->used = NULL;
}

void ports_mark(struct ports *p, int port, int used)
{
    if (port >= p->min && port <= p->max)
        p->used[port - p->min] = (unsigned char)used;
}

static int binds(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    /* the worker's server sets SO_REUSEADDR too: a port that only has connections in
     * TIME_WAIT is usable */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* The range lies below the kernel's ephemeral ports, so that no outgoing connection
 * takes the port between this check and the worker's bind. */
int ports_take(struct ports *p)
{
    int span = p->max - p->min + 1;
    for (int i = 0; i < span; i++) {
        int off = (p->next + i) % span;
        if (p->used[off] || !binds(p->min + off))
            continue;
        p->used[off] = 1;
        p->next = (off + 1) % span;
        return p->min + off;
    }
    errno = EADDRINUSE;
    return -1;
}
