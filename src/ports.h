/* ports: the listen ports handed to workers that share the host's network, from the
 * WORKER_PORT_MIN..MAX range. A bitmap of the ports in use by this daemon's workers, plus
 * a bind check for anything else on the host. Owned by one runner. */
#ifndef SB_PORTS_H
#define SB_PORTS_H

struct ports {
    int min, max, next;
    unsigned char *used; /* one byte per port of the range */
};

void ports_init(struct ports *p, int min, int max);
void ports_free(struct ports *p);
/* a port of the range that none of ours holds and that binds on 127.0.0.1 now, marked
 * used; -1 with errno EADDRINUSE when the range is full */
int ports_take(struct ports *p);
/* marks a port (an adopted worker's) used or free again; ports outside the range are ignored */
void ports_mark(struct ports *p, int port, int used);

#endif
