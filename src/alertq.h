#ifndef SB_ALERTQ_H
#define SB_ALERTQ_H

#include <stddef.h>

/* The alerts waiting to go out: a bounded FIFO whose head may be on the wire. Pure: no
 * I/O, no clock. When it is full, a push drops the oldest item that is not on the wire,
 * never the one whose answer is awaited (that answer must apply to it). */

struct alertq_item {
    int to;          /* the caller's target id */
    char *body;      /* owned by the queue */
    int tries;
    struct alertq_item *next;
};

struct alertq {
    struct alertq_item *head, *tail;
    size_t n, max;   /* max >= 2 */
    int in_flight;   /* the head has been sent and its answer is awaited */
};

/* appends (the queue takes ownership of body); returns 1 when the queue was full and an
 * older waiting item was dropped to make room, else 0 */
int alertq_push(struct alertq *q, int to, char *body);
/* removes and frees the head (its answer came, or it is given up); clears in_flight */
void alertq_pop(struct alertq *q);
/* frees everything */
void alertq_clear(struct alertq *q);

#endif
