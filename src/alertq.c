#include "alertq.h"

#include <stdlib.h>

#include "util.h"

static void item_free(struct alertq_item *it)
{
    free(it->body);
    free(it);
}

int alertq_push(struct alertq *q, int to, char *body)
{
    int dropped = 0;
    if (q->n >= q->max) {
        /* the oldest waiting one: the head stays while it is on the wire */
        struct alertq_item **pp = q->in_flight ? &q->head->next : &q->head;
        struct alertq_item *old = *pp;
        if (old) {
            *pp = old->next;
            if (q->tail == old)
                q->tail = pp == &q->head ? NULL : q->head;
            item_free(old);
            q->n--;
            dropped = 1;
        }
    }
    struct alertq_item *it = xcalloc(1, sizeof *it);
    it->to = to;
    it->body = body;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->n++;
    return dropped;
}

void alertq_pop(struct alertq *q)
{
    struct alertq_item *it = q->head;
    q->in_flight = 0;
    if (!it)
        return;
    q->head = it->next;
    if (!q->head)
        q->tail = NULL;
    item_free(it);
    q->n--;
}

void alertq_clear(struct alertq *q)
{
    while (q->head)
        alertq_pop(q);
}
