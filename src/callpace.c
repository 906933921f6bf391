#include "callpace.h"

void callpace_init(struct callpace *p, long cps, int64_t now)
{
    p->interval_ms = cps > 0 ? (1000 + cps - 1) / cps : 0;
    p->next_at = now + p->interval_ms;
    p->reserved = 0;
}

int64_t callpace_ready_at(const struct callpace *p)
{
    if (!p->interval_ms)
        return INT64_MIN;
    return p->reserved ? INT64_MAX : p->next_at;
}

int callpace_take(struct callpace *p, int64_t now)
{
    if (callpace_ready_at(p) > now)
        return -1;
    p->next_at = now + p->interval_ms;
    return 0;
}

int callpace_reserve(struct callpace *p, int64_t now)
{
    if (callpace_take(p, now) < 0)
        return -1;
    p->reserved++;
    return 0;
}

void callpace_release(struct callpace *p, int64_t now, int sent)
{
    if (p->reserved > 0)
        p->reserved--;
    /* the interval runs from the create itself: a slow commit does not shorten it */
    if (sent && now + p->interval_ms > p->next_at)
        p->next_at = now + p->interval_ms;
}
