/* Unit tests for src/dsched.h: the dispatcher's schedule with a fake clock. Entries,
 * the min-heap against a brute-force model, what keeps an entry out of the heap, hold_until,
 * and the dispatched / settled bookkeeping with the real pacing rules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsched.h"
#include "tap.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

static int64_t U(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (int64_t)timegm(&tm) * 1000;
}

/* every level always open, no caps, no gap: an entry's due time is max(now, hold_until) */
static void config_free(struct pacing_config *c)
{
    pacing_config_default(c);
    for (int l = 0; l < PACING__LEVELS; l++)
        c->level[l] = (struct pacing_profile){0, 0, 0, 0, 0, 0};
}

static void count_cb(struct dsched_sess *s, void *arg)
{
    int64_t *a = arg;
    a[0]++;
    a[1] += s->id;
}

static void test_entries(void)
{
    struct pacing_config c;
    config_free(&c);
    struct dsched *d = dsched_new(&c);
    CHECK(dsched_find(d, 7) == NULL, "an empty schedule finds nothing");
    struct dsched_sess *s = dsched_get(d, 7);
    CHECK(s != NULL && s->id == 7, "get creates entry 7");
    CHECK(s->ready == 0 && s->queued == 0 && s->inflight == 0 && s->due == -1 &&
              s->hold_until == 0 && s->pace.last_send == 0 && s->pace.sent_today == 0 &&
              s->level == PACING_COLD && s->owner == NULL,
          "a new entry is empty: not ready, nothing queued, cold, out of the heap");
    CHECK(dsched_get(d, 7) == s, "get again returns the same entry");
    CHECK(dsched_find(d, 7) == s, "find returns it");
    CHECK(dsched_find(d, 8) == NULL, "find does not create");

    /* pointers stay valid while the schedule grows; ids in any order, negative too */
    srand(5);
    int64_t sum = 7;
    for (int i = 0; i < 3000; i++) {
        int64_t id = (int64_t)(rand() % 100000) * 7919 - 300000000;
        if (dsched_find(d, id) == NULL) {
            sum += id;
            dsched_get(d, id)->owner = d;
        }
    }
    CHECK(dsched_find(d, 7) == s && s->id == 7 && s->owner == NULL,
          "the first entry is intact after 3000 more");
    int64_t acc[2] = {0, 0};
    dsched_each(d, count_cb, acc);
    int64_t n = acc[0];
    CHECK(acc[1] == sum, "each visits every entry once (%lld entries, id sum matches)",
          (long long)n);
    dsched_remove(d, 7);
    CHECK(dsched_find(d, 7) == NULL, "removed entry 7 is gone");
    dsched_remove(d, 7);
    dsched_remove(d, 123456789);
    acc[0] = acc[1] = 0;
    dsched_each(d, count_cb, acc);
    CHECK(acc[0] == n - 1 && acc[1] == sum - 7, "removing a missing id changes nothing");
    CHECK(dsched_next_due(d) == INT64_MAX, "nothing ready: nothing is ever due");
    dsched_free(d);
    dsched_free(NULL);
    CHECK(1, "dsched_free(NULL) is harmless");
}

static void test_never_due(void)
{
    struct pacing_config c;
    config_free(&c);
    struct dsched *d = dsched_new(&c);
    int64_t now = U(2024, 1, 1, 12, 0);
    struct dsched_sess *s = dsched_get(d, 1);

    static const struct {
        int ready, inflight, queued;
        const char *desc;
    } t[] = {
        {0, 0, 5, "not ready"},
        {1, 1, 5, "a message in flight"},
        {1, 0, 0, "nothing queued"},
        {0, 1, 0, "none of the three"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        s->ready = t[i].ready;
        s->inflight = t[i].inflight;
        s->queued = t[i].queued;
        dsched_update(d, s, now);
        CHECK(s->due == -1 && dsched_next_due(d) == INT64_MAX &&
                  dsched_pop_due(d, INT64_MAX - 1) == NULL,
              "%s: never due, even at the end of time", t[i].desc);
    }
    s->ready = 1;
    s->inflight = 0;
    s->queued = 1;
    dsched_update(d, s, now);
    CHECK_EQ_INT(dsched_next_due(d), now, "ready, idle, one queued: due now");
    /* dropping any one of the three takes it out of the heap again */
    s->ready = 0;
    dsched_update(d, s, now);
    CHECK(s->due == -1 && dsched_next_due(d) == INT64_MAX, "disconnected: out of the heap");
    s->ready = 1;
    dsched_update(d, s, now);
    s->queued = 0;
    dsched_update(d, s, now);
    CHECK(s->due == -1 && dsched_next_due(d) == INT64_MAX, "queue emptied: out of the heap");
    s->queued = 2;
    dsched_update(d, s, now);
    s->inflight = 1;
    dsched_update(d, s, now);
    CHECK(s->due == -1 && dsched_next_due(d) == INT64_MAX, "in flight: out of the heap");
    dsched_free(d);
}

/* a brute-force model of the heap: which entries are in it and at what due time */
#define NSESS 1000
struct model {
    int64_t id;
    int present, in_heap;
    int64_t due;
};

static int64_t model_min(const struct model *m, int n)
{
    int64_t best = INT64_MAX;
    for (int i = 0; i < n; i++)
        if (m[i].present && m[i].in_heap && m[i].due < best)
            best = m[i].due;
    return best;
}

static void test_heap_order(void)
{
    struct pacing_config c;
    config_free(&c);
    struct dsched *d = dsched_new(&c);
    int64_t base = U(2024, 1, 1, 0, 0);
    srand(2024);

    /* many sessions, due times in random order (with ties): they pop in due order */
    static int64_t dues[NSESS];
    for (int i = 0; i < NSESS; i++) {
        struct dsched_sess *s = dsched_get(d, (int64_t)((i * 7919) % NSESS) + 1);
        s->ready = 1;
        s->queued = 1 + rand() % 3;
        s->hold_until = base + (int64_t)(rand() % 5000) * SEC; /* ties likely */
        dues[s->id - 1] = s->hold_until;
        dsched_update(d, s, base);
    }
    int64_t min = INT64_MAX;
    for (int i = 0; i < NSESS; i++)
        min = dues[i] < min ? dues[i] : min;
    CHECK_EQ_INT(dsched_next_due(d), min, "next_due is the smallest hold_until of %d", NSESS);
    CHECK(dsched_pop_due(d, min - 1) == NULL, "nothing pops 1 ms before the first due");
    int64_t prev = INT64_MIN;
    int n = 0, ordered = 1, exact = 1;
    static char seen[NSESS + 1];
    memset(seen, 0, sizeof seen);
    struct dsched_sess *s;
    while ((s = dsched_pop_due(d, base + 10000 * SEC)) != NULL) {
        ordered &= dues[s->id - 1] >= prev;
        exact &= s->due == -1 && !seen[s->id];
        seen[s->id] = 1;
        prev = dues[s->id - 1];
        n++;
    }
    CHECK_EQ_INT(n, NSESS, "all %d pop", NSESS);
    CHECK(ordered, "they pop in due order");
    CHECK(exact, "each pops once and leaves the heap");
    CHECK(dsched_next_due(d) == INT64_MAX, "the heap is empty after");
    dsched_free(d);

    /* random operations against the model: update (up, down, out), remove, re-create, pop */
    d = dsched_new(&c);
    static struct model m[NSESS];
    memset(m, 0, sizeof m);
    for (int i = 0; i < NSESS; i++)
        m[i].id = 1000 + (int64_t)i * 3;
    int64_t now = base;
    int agree = 1, pops_ok = 1, pops = 0, sizes_max = 0;
    char first_bad[120] = "";
    for (int op = 0; op < 60000; op++) {
        int i = rand() % NSESS;
        struct model *e = &m[i];
        int r = rand() % 100;
        if (r < 3 && e->present) {
            dsched_remove(d, e->id);
            e->present = e->in_heap = 0;
        } else if (r < 8) {
            /* pop what is due at a random moment near now */
            int64_t at = now + (rand() % 600) * SEC;
            struct dsched_sess *p = dsched_pop_due(d, at);
            int64_t want = model_min(m, NSESS);
            if (want <= at) {
                int k = p ? (int)((p->id - 1000) / 3) : -1;
                if (!p || k < 0 || k >= NSESS || !m[k].in_heap || m[k].due != want) {
                    pops_ok = 0;
                } else {
                    m[k].in_heap = 0;
                    pops++;
                }
            } else if (p) {
                pops_ok = 0;
            }
        } else {
            struct dsched_sess *p = dsched_get(d, e->id);
            e->present = 1;
            switch (rand() % 6) {
            case 0: p->ready = !p->ready; break;
            case 1: p->inflight = rand() % 4 == 0; break;
            case 2: p->queued = rand() % 3; break;
            default: p->hold_until = now + (rand() % 20000 - 5000) * SEC; break;
            }
            if (rand() % 10 == 0)
                now += rand() % 100 * SEC;
            dsched_update(d, p, now);
            e->in_heap = p->ready && !p->inflight && p->queued > 0;
            e->due = p->hold_until > now ? p->hold_until : now;
            if (e->in_heap != (p->due >= 0) || (e->in_heap && p->due != e->due)) {
                agree = 0;
                if (!first_bad[0])
                    snprintf(first_bad, sizeof first_bad, "op %d: entry %lld due %lld, model %lld",
                             op, (long long)e->id, (long long)p->due,
                             (long long)(e->in_heap ? e->due : -1));
            }
        }
        int64_t want = model_min(m, NSESS);
        if (dsched_next_due(d) != want) {
            agree = 0;
            if (!first_bad[0])
                snprintf(first_bad, sizeof first_bad, "op %d: next_due %lld, model %lld", op,
                         (long long)dsched_next_due(d), (long long)want);
        }
        int sz = 0;
        for (int k = 0; k < NSESS; k++)
            sz += m[k].present && m[k].in_heap;
        sizes_max = sz > sizes_max ? sz : sizes_max;
    }
    CHECK(agree, "60000 random updates/removes: entry due times and next_due match the model%s%s",
          first_bad[0] ? "; " : "", first_bad);
    CHECK(pops_ok && pops > 1000, "random pops give the model's earliest each time (%d pops)",
          pops);
    CHECK(sizes_max > 200, "the heap held many entries at once (up to %d)", sizes_max);
    /* drain: the rest come out in order and match the model's count */
    int left = 0;
    for (int k = 0; k < NSESS; k++)
        left += m[k].present && m[k].in_heap;
    prev = INT64_MIN;
    n = 0;
    ordered = 1;
    while ((s = dsched_pop_due(d, INT64_MAX - 1)) != NULL) {
        int k = (int)((s->id - 1000) / 3);
        ordered &= m[k].due >= prev && m[k].in_heap;
        prev = m[k].due;
        m[k].in_heap = 0;
        n++;
    }
    CHECK(ordered && n == left, "draining pops the %d left in order (%d)", left, n);
    dsched_free(d);
}

static void test_remove_in_heap(void)
{
    struct pacing_config c;
    config_free(&c);
    struct dsched *d = dsched_new(&c);
    int64_t now = U(2024, 1, 1, 0, 0);
    for (int i = 1; i <= 50; i++) {
        struct dsched_sess *s = dsched_get(d, i);
        s->ready = 1;
        s->queued = 1;
        s->hold_until = now + (int64_t)(51 - i) * SEC; /* id 50 first */
        dsched_update(d, s, now);
    }
    CHECK_EQ_INT(dsched_next_due(d), now + SEC, "id 50 is first");
    dsched_remove(d, 50);
    CHECK_EQ_INT(dsched_next_due(d), now + 2 * SEC, "removing the top: id 49 is first");
    dsched_remove(d, 10);
    dsched_remove(d, 25);
    int n = 0, ok = 1;
    int64_t want = now + 2 * SEC;
    struct dsched_sess *s;
    while ((s = dsched_pop_due(d, now + HOUR)) != NULL) {
        if (want == now + 26 * SEC || want == now + 41 * SEC) /* ids 25 and 10 */
            want += SEC;
        ok &= s->due == -1 && s->hold_until == want;
        want += SEC;
        n++;
    }
    CHECK(ok && n == 47, "removals from the middle keep the order (%d popped)", n);

    /* equal due times all pop at that moment */
    for (int i = 1; i <= 5; i++) {
        s = dsched_get(d, 100 + i);
        s->ready = 1;
        s->queued = 1;
        s->hold_until = now + MIN;
        dsched_update(d, s, now);
    }
    CHECK(dsched_pop_due(d, now + MIN - 1) == NULL, "5 due at +60 s: none at +59.999 s");
    n = 0;
    while (dsched_pop_due(d, now + MIN) != NULL)
        n++;
    CHECK_EQ_INT(n, 5, "all 5 pop at +60 s");

    /* moving a due time later and earlier while in the heap */
    struct dsched_sess *a = dsched_get(d, 201), *b = dsched_get(d, 202);
    a->ready = b->ready = 1;
    a->queued = b->queued = 1;
    a->hold_until = now + 10 * SEC;
    b->hold_until = now + 20 * SEC;
    dsched_update(d, a, now);
    dsched_update(d, b, now);
    a->hold_until = now + 30 * SEC;
    dsched_update(d, a, now);
    CHECK(dsched_next_due(d) == now + 20 * SEC && dsched_pop_due(d, now + 25 * SEC) == b,
          "a moved later: b pops first");
    b->hold_until = 0;
    dsched_update(d, b, now + 26 * SEC);
    CHECK(dsched_pop_due(d, now + 26 * SEC) == b, "b back at +26 s, ahead of a");
    CHECK(dsched_pop_due(d, now + 30 * SEC) == a, "then a at +30 s");
    dsched_free(d);
}

static void test_dispatch_settle(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    struct pacing_config c;
    pacing_config_default(&c);
    struct dsched *d = dsched_new(&c);
    int64_t day = U(2024, 4, 10, 0, 0);
    int64_t now = day + 10 * HOUR;

    struct dsched_sess *s = dsched_get(d, 42);
    for (int l = 0; l < PACING__LEVELS; l++) {
        s->level = l;
        CHECK(dsched_profile(d, s) == &c.level[l], "the %s entry uses the %s profile",
              pacing_level_name(l), pacing_level_name(l));
    }
    s->level = PACING_WARM; /* 3000 + rnd * 2000, 15 a minute, 100 a day, 08-22 */
    s->ready = 1;
    s->queued = 3;
    dsched_update(d, s, now);
    CHECK_EQ_INT(s->due, now, "warm, fresh, inside hours: due now");
    CHECK(dsched_pop_due(d, now) == s && s->due == -1, "pops at now and leaves the heap");
    dsched_dispatched(d, s, now, 0.5);
    CHECK(s->queued == 2 && s->inflight == 1, "dispatched: 2 queued, 1 in flight");
    CHECK(s->pace.last_send == now && s->pace.sent_today == 1 && s->pace.gap_ms == 4000,
          "the send is counted: last_send now, 1 today, gap 3000 + 0.5 * 2000");
    dsched_update(d, s, now + 100);
    CHECK(s->due == -1 && dsched_next_due(d) == INT64_MAX,
          "in flight: not in the heap even after update");
    dsched_settled(d, s, 0, now + 700);
    CHECK(s->inflight == 0 && s->queued == 2, "settled as sent: nothing in flight, still 2 queued");
    CHECK_EQ_INT(s->due, now + 4000, "due one gap after the send, not after the settle");

    /* a slow worker: settled after the gap has passed, due at the settle time */
    int64_t t2 = s->due;
    CHECK(dsched_pop_due(d, t2) == s, "pops at the gap");
    dsched_dispatched(d, s, t2, 0.0);
    dsched_settled(d, s, 0, t2 + 9000);
    CHECK_EQ_INT(s->due, t2 + 9000, "settled 9 s later: due at once");

    /* a retry: back in the queue with a hold; the hold wins when later than the gap */
    int64_t t3 = s->due;
    CHECK(dsched_pop_due(d, t3) == s, "pops again");
    dsched_dispatched(d, s, t3, 0.0); /* gap 3000 */
    CHECK_EQ_INT(s->queued, 0, "the last one is out");
    s->hold_until = t3 + 30 * SEC;
    dsched_settled(d, s, 1, t3 + 200);
    CHECK_EQ_INT(s->queued, 1, "requeued: 1 queued again");
    CHECK_EQ_INT(s->due, t3 + 30 * SEC, "the 30 s hold wins over the 3 s gap");
    CHECK(dsched_pop_due(d, t3 + 30 * SEC - 1) == NULL, "not before the hold");
    CHECK(dsched_pop_due(d, t3 + 30 * SEC) == s, "at the hold");
    dsched_dispatched(d, s, t3 + 30 * SEC, 0.9);
    CHECK_EQ_INT(s->hold_until, 0, "dispatching clears the hold");
    CHECK_EQ_INT(s->pace.sent_today, 4, "4 sends counted today (the requeued one too)");
    s->hold_until = t3 + 30 * SEC + 1000; /* earlier than the gap: the gap wins */
    dsched_settled(d, s, 1, t3 + 30 * SEC + 10);
    CHECK_EQ_INT(s->due, t3 + 30 * SEC + 3000 + (int64_t)(0.9 * 2000),
                 "a hold shorter than the gap: the gap wins");

    /* a hold that ends after the close waits for the next opening, not just the hold */
    int64_t late = day + 21 * HOUR + 58 * MIN;
    CHECK(dsched_pop_due(d, INT64_MAX - 1) == s, "pops for the late retry");
    dsched_dispatched(d, s, late, 0.0);
    s->hold_until = late + 5 * MIN;
    dsched_settled(d, s, 1, late + 100);
    CHECK_EQ_INT(s->due, day + DAY + 8 * HOUR,
                 "warm, retry held from 21:58 to 22:03: due at 08:00 tomorrow");
    s->hold_until = day + DAY + 8 * HOUR + 30 * MIN;
    dsched_update(d, s, late + 200);
    CHECK_EQ_INT(s->due, day + DAY + 8 * HOUR + 30 * MIN,
                 "a hold ending inside tomorrow's hours is kept");

    /* settled with nothing left: out of the heap */
    CHECK(dsched_pop_due(d, INT64_MAX - 1) == s, "pops");
    dsched_dispatched(d, s, s->pace.last_send + HOUR, 0.1);
    dsched_settled(d, s, 0, s->pace.last_send + 100);
    CHECK(s->queued == 0 && s->due == -1 && dsched_next_due(d) == INT64_MAX,
          "queue empty after settle: not due");

    /* dispatching an entry still in the heap takes it out */
    s->queued = 2;
    dsched_update(d, s, s->pace.last_send + HOUR);
    CHECK(s->due >= 0, "in the heap with 2 queued");
    dsched_dispatched(d, s, s->due, 0.3);
    CHECK(s->due == -1 && dsched_next_due(d) == INT64_MAX && s->queued == 1,
          "dispatched: out of the heap");
    dsched_settled(d, s, 0, s->pace.last_send + 10);

    /* the level decides the active hours: at 07:30 hot may send, warm waits for 08:00, cold 09:00
     */
    struct dsched_sess *h = dsched_get(d, 43);
    h->ready = 1;
    h->queued = 1;
    int64_t early = day + DAY + 7 * HOUR + 30 * MIN;
    static const int64_t want_at[PACING__LEVELS] = {9 * HOUR, 8 * HOUR, 7 * HOUR + 30 * MIN};
    for (int l = 0; l < PACING__LEVELS; l++) {
        h->level = l;
        dsched_update(d, h, early);
        CHECK_EQ_INT(h->due, day + DAY + want_at[l], "07:30, %s: due at the %s opening",
                     pacing_level_name(l), pacing_level_name(l));
    }
    dsched_remove(d, 42);
    dsched_remove(d, 43);
    CHECK(dsched_next_due(d) == INT64_MAX, "removing entries in the heap empties it");

    /* a cold session works through its daily cap, then waits for tomorrow's opening */
    struct dsched_sess *k = dsched_get(d, 44);
    k->ready = 1;
    k->queued = 25;
    int64_t t = day + 2 * DAY + 9 * HOUR;
    dsched_update(d, k, t);
    int sent = 0, ok = 1;
    struct dsched_sess *p;
    while ((p = dsched_pop_due(d, day + 2 * DAY + 23 * HOUR)) != NULL) {
        ok &= p == k && p->due == -1;
        dsched_dispatched(d, k, t, 0.5);
        sent++;
        /* the worker answers 1 s later; the next pop is at the entry's due time */
        dsched_settled(d, k, 0, t + SEC);
        if (k->due >= 0)
            t = k->due;
    }
    CHECK(ok && sent == 20, "cold: 20 sent on the day (%d)", sent);
    CHECK_EQ_INT(k->queued, 5, "5 wait");
    CHECK_EQ_INT(k->due, day + 3 * DAY + 9 * HOUR, "due at tomorrow's 09:00");
    dsched_free(d);
}

int main(void)
{
    test_entries();
    test_never_due();
    test_heap_order();
    test_remove_in_heap();
    test_dispatch_settle();
    return TAP_DONE();
}
