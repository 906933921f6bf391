#include "dsched.h"

#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "util.h"

static const char *const msg_names[MS__COUNT] = {
    [MS_QUEUED] = "queued", [MS_SENDING] = "sending",     [MS_SENT] = "sent",
    [MS_FAILED] = "failed", [MS_EXPIRED] = "expired",     [MS_CANCELLED] = "cancelled",
};

const char *msg_status_name(enum msg_status s) { return s < MS__COUNT ? msg_names[s] : "unknown"; }

int msg_status_parse(const char *name)
{
    for (int i = 0; i < MS__COUNT; i++)
        if (strcmp(name, msg_names[i]) == 0)
            return i;
    return -1;
}

struct dsched {
    const struct pacing_config *cfg;
    struct dsched_sess **all; /* sorted by id */
    size_t nall, capall;
    struct dsched_sess **heap;
    size_t nheap, capheap;
};

struct dsched *dsched_new(const struct pacing_config *cfg)
{
    struct dsched *d = xcalloc(1, sizeof *d);
    d->cfg = cfg;
    return d;
}

void dsched_free(struct dsched *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nall; i++)
        free(d->all[i]);
    free(d->all);
    free(d->heap);
    free(d);
}

/* index of id in all, or where it would go */
static size_t find_pos(const struct dsched *d, int64_t id, int *found)
{
    size_t lo = 0, hi = d->nall;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->all[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < d->nall && d->all[lo]->id == id;
    return lo;
}

struct dsched_sess *dsched_find(struct dsched *d, int64_t id)
{
    int found;
    size_t i = find_pos(d, id, &found);
    return found ? d->all[i] : NULL;
}

struct dsched_sess *dsched_get(struct dsched *d, int64_t id)
{
    int found;
    size_t i = find_pos(d, id, &found);
    if (found)
        return d->all[i];
    if (d->nall == d->capall) {
        d->capall = d->capall ? d->capall * 2 : 64;
        d->all = xrealloc(d->all, d->capall * sizeof *d->all);
    }
    memmove(d->all + i + 1, d->all + i, (d->nall - i) * sizeof *d->all);
    struct dsched_sess *s = xcalloc(1, sizeof *s);
    s->id = id;
    s->due = -1;
    d->all[i] = s;
    d->nall++;
    return s;
}

void dsched_each(struct dsched *d, void (*fn)(struct dsched_sess *s, void *arg), void *arg)
{
    for (size_t i = 0; i < d->nall; i++)
        fn(d->all[i], arg);
}

const struct pacing_profile *dsched_profile(const struct dsched *d, const struct dsched_sess *s)
{
    return &d->cfg->level[s->level < PACING__LEVELS ? s->level : PACING_COLD];
}

/* ---- the heap ---- */

static void heap_set(struct dsched *d, size_t i, struct dsched_sess *s)
{
    d->heap[i] = s;
    s->heap_idx = i;
}

static void sift_up(struct dsched *d, size_t i)
{
    struct dsched_sess *s = d->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (d->heap[parent]->due <= s->due)
            break;
        heap_set(d, i, d->heap[parent]);
        i = parent;
    }
    heap_set(d, i, s);
}

static void sift_down(struct dsched *d, size_t i)
{
    struct dsched_sess *s = d->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= d->nheap)
            break;
        if (c + 1 < d->nheap && d->heap[c + 1]->due < d->heap[c]->due)
            c++;
        if (s->due <= d->heap[c]->due)
            break;
        heap_set(d, i, d->heap[c]);
        i = c;
    }
    heap_set(d, i, s);
}

static void heap_remove(struct dsched *d, struct dsched_sess *s)
{
    if (s->due < 0)
        return;
    size_t i = s->heap_idx;
    s->due = -1;
    d->nheap--;
    if (i == d->nheap)
        return;
    heap_set(d, i, d->heap[d->nheap]);
    sift_down(d, i);
    sift_up(d, i);
}

static void heap_put(struct dsched *d, struct dsched_sess *s, int64_t due)
{
    if (s->due >= 0) {
        int64_t old = s->due;
        s->due = due;
        if (due < old)
            sift_up(d, s->heap_idx);
        else
            sift_down(d, s->heap_idx);
        return;
    }
    if (d->nheap == d->capheap) {
        d->capheap = d->capheap ? d->capheap * 2 : 64;
        d->heap = xrealloc(d->heap, d->capheap * sizeof *d->heap);
    }
    s->due = due;
    heap_set(d, d->nheap++, s);
    sift_up(d, s->heap_idx);
}

void dsched_remove(struct dsched *d, int64_t id)
{
    int found;
    size_t i = find_pos(d, id, &found);
    if (!found)
        return;
    struct dsched_sess *s = d->all[i];
    heap_remove(d, s);
    memmove(d->all + i, d->all + i + 1, (d->nall - i - 1) * sizeof *d->all);
    d->nall--;
    free(s);
}

void dsched_update(struct dsched *d, struct dsched_sess *s, int64_t now)
{
    if (!s->ready || s->inflight || s->queued <= 0) {
        heap_remove(d, s);
        return;
    }
    /* the rules are asked from the end of the hold: a hold can end outside active hours */
    int64_t from = s->hold_until > now ? s->hold_until : now;
    heap_put(d, s, pacing_next_send(dsched_profile(d, s), &s->pace, from));
}

int64_t dsched_next_due(const struct dsched *d)
{
    return d->nheap ? d->heap[0]->due : INT64_MAX;
}

struct dsched_sess *dsched_pop_due(struct dsched *d, int64_t now)
{
    if (!d->nheap || d->heap[0]->due > now)
        return NULL;
    struct dsched_sess *s = d->heap[0];
    heap_remove(d, s);
    return s;
}

void dsched_dispatched(struct dsched *d, struct dsched_sess *s, int64_t now, double rnd)
{
    heap_remove(d, s);
    if (s->queued > 0)
        s->queued--;
    s->inflight = 1;
    s->hold_until = 0;
    pacing_record_send(dsched_profile(d, s), &s->pace, now, rnd);
}

void dsched_settled(struct dsched *d, struct dsched_sess *s, int requeued, int64_t now)
{
    s->inflight = 0;
    if (requeued)
        s->queued++;
    dsched_update(d, s, now);
}
