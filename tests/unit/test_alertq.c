/* Unit tests for src/alertq.h: the bounded alert queue whose head may be on the wire. */
#include <stdio.h>
#include <string.h>

#include "alertq.h"
#include "tap.h"
#include "util.h"

static char *body(int i)
{
    char b[16];
    snprintf(b, sizeof b, "a%d", i);
    return xstrdup(b);
}

/* the bodies from head to tail, joined by ',' */
static const char *order(const struct alertq *q)
{
    static char out[256];
    out[0] = '\0';
    size_t n = 0;
    for (const struct alertq_item *it = q->head; it; it = it->next) {
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", n ? "," : "", it->body);
        if (!it->next)
            CHECK(q->tail == it, "the tail is the last item (%s)", it->body);
    }
    return out;
}

int main(void)
{
    struct alertq q = {.max = 3};
    CHECK(q.head == NULL && q.tail == NULL && q.n == 0, "empty at first");
    for (int i = 1; i <= 3; i++)
        CHECK_EQ_INT(alertq_push(&q, i % 2, body(i)), 0, "push %d: room", i);
    CHECK(strcmp(order(&q), "a1,a2,a3") == 0, "FIFO order (%s)", order(&q));
    CHECK_EQ_INT(q.head->to, 1, "the target is kept");

    /* full, nothing on the wire: the head (the oldest) goes */
    CHECK_EQ_INT(alertq_push(&q, 0, body(4)), 1, "full: one dropped");
    CHECK(strcmp(order(&q), "a2,a3,a4") == 0, "the oldest went (%s)", order(&q));
    CHECK_EQ_INT((int)q.n, 3, "still at most max");

    /* full with the head on the wire: the head stays, the oldest waiting one goes */
    q.in_flight = 1;
    CHECK_EQ_INT(alertq_push(&q, 0, body(5)), 1, "full while sending: one dropped");
    CHECK(strcmp(order(&q), "a2,a4,a5") == 0, "the head on the wire stayed (%s)", order(&q));
    CHECK_EQ_INT(q.in_flight, 1, "still on the wire");
    /* its answer applies to it, then the next goes out */
    alertq_pop(&q);
    CHECK_EQ_INT(q.in_flight, 0, "the answer ends the flight");
    CHECK(strcmp(order(&q), "a4,a5") == 0, "the answered one is gone (%s)", order(&q));

    /* a queue of max 2 with the head on the wire and one waiting: the tail is replaced */
    struct alertq two = {.max = 2};
    alertq_push(&two, 0, body(1));
    alertq_push(&two, 0, body(2));
    two.in_flight = 1;
    CHECK_EQ_INT(alertq_push(&two, 0, body(3)), 1, "max 2: one dropped");
    CHECK(strcmp(order(&two), "a1,a3") == 0, "the waiting one went, the tail follows (%s)", order(&two));
    alertq_pop(&two);
    alertq_pop(&two);
    CHECK(two.head == NULL && two.tail == NULL && two.n == 0, "empty again");
    alertq_pop(&two);
    CHECK(two.n == 0, "popping an empty queue changes nothing");
    alertq_push(&two, 0, body(6));
    CHECK(strcmp(order(&two), "a6") == 0, "usable after emptying (%s)", order(&two));

    alertq_clear(&q);
    alertq_clear(&two);
    CHECK(q.head == NULL && q.n == 0 && two.head == NULL, "cleared");
    return TAP_DONE();
}
