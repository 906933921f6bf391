/* A simulation of the dispatcher's schedule: 1,000 sessions of mixed trust, 30 days of
 * random traffic in Asia/Jerusalem (across the March DST change), through the real pacing
 * and dsched code with a fake clock. Messages are enqueued at random times (refused when
 * pacing_room_today says the day is full), sessions drop and come back, the worker answers
 * after a random latency and sometimes asks for a retry. An independent checker, written
 * here from SPEC 4.2 and not from pacing.c, sees every send and verifies every rule, that no
 * send came later than the rules required, and that every message is accounted for.
 * SIM_SEED overrides the fixed seed. */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsched.h"
#include "pacing.h"
#include "tap.h"

#define NSESS 1000
#define DAYS 30
#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define RING 64

/* ---- a seeded PRNG (splitmix64) ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* [0,1) */
static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static int64_t rng_range(int64_t lo, int64_t hi) /* [lo,hi] */
{
    return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

static int64_t rng_exp(double mean)
{
    return (int64_t)(-log(1.0 - rng_unit()) * mean) + 1;
}

/* ---- the independent checker ---- */

/* SPEC 4.2, written out again: per day, per minute, gap base, gap jitter, open, close */
static const struct {
    int per_day, per_minute, base, jitter, open, close;
} spec[3] = {
    {20, 5, 5000, 3000, 9 * 60, 21 * 60},
    {100, 15, 3000, 2000, 8 * 60, 22 * 60},
    {500, 30, 2000, 2000, 7 * 60, 23 * 60},
};

/* what the checker knows about a session, from the simulation's events only */
struct chk {
    int64_t first; /* first connection, 0 = never */
    int ready, inflight, queued;
    int64_t hold_until;
    int64_t last_send, min_gap; /* the gap the last send drew */
    int64_t ring[RING];
    int nring, head;
    int64_t day; /* local day that day_count counts */
    int day_count;
    int64_t since; /* the last time the simulation rescheduled this session */
};

enum {
    V_NOT_READY = 1 << 0,
    V_INFLIGHT = 1 << 1,
    V_EMPTY = 1 << 2,
    V_HOLD = 1 << 3,
    V_GAP = 1 << 4,
    V_MINUTE = 1 << 5,
    V_HOURS = 1 << 6,
    V_DAY = 1 << 7,
    V_NBITS = 8
};
static const char *const v_names[V_NBITS] = {
    "while not ready",     "two in flight",           "with nothing queued",  "before hold_until",
    "closer than the gap", "over the per-minute cap", "outside active hours", "over the daily cap"};

struct local {
    int64_t day; /* days since 1970-01-01 of the local date */
    int minute;  /* minutes after local midnight */
};

/* The local date and minute of t. Zones change their offset only on whole minutes, so one
 * UTC minute is one local minute: a one-entry cache keyed by the UTC minute is exact, and the
 * simulation's clock mostly moves forward in small steps. */
static struct local local_of(int64_t t)
{
    static int64_t key = INT64_MIN;
    static struct local val;
    int64_t minute = t >= 0 ? t / MIN : (t - MIN + 1) / MIN;
    if (minute == key)
        return val;
    time_t s = (time_t)(minute * 60);
    struct tm tm, d = {0};
    localtime_r(&s, &tm);
    d.tm_year = tm.tm_year;
    d.tm_mon = tm.tm_mon;
    d.tm_mday = tm.tm_mday;
    val.day = (int64_t)timegm(&d) / 86400;
    val.minute = tm.tm_hour * 60 + tm.tm_min;
    key = minute;
    return val;
}

static int level_by_age(int64_t first, int64_t t)
{
    if (first <= 0 || t < first)
        return 0;
    if (t - first >= 14 * DAY)
        return 2;
    if (t - first >= 3 * DAY)
        return 1;
    return 0;
}

/* the rules a send at x would break, for the level in force */
static unsigned violations(const struct chk *c, int lvl, int64_t x)
{
    unsigned v = 0;
    if (!c->ready)
        v |= V_NOT_READY;
    if (c->inflight)
        v |= V_INFLIGHT;
    if (c->queued <= 0)
        v |= V_EMPTY;
    if (x < c->hold_until)
        v |= V_HOLD;
    if (c->nring > 0 && x < c->last_send + c->min_gap)
        v |= V_GAP;
    int in_minute = 0;
    for (int i = 0; i < c->nring; i++)
        in_minute += c->ring[i] > x - MIN;
    if (in_minute + 1 > spec[lvl].per_minute)
        v |= V_MINUTE;
    struct local l = local_of(x);
    int open = spec[lvl].open, close = spec[lvl].close;
    if (!(l.minute >= open && l.minute < close))
        v |= V_HOURS;
    if ((l.day == c->day ? c->day_count : 0) + 1 > spec[lvl].per_day)
        v |= V_DAY;
    return v;
}

/* ---- the simulation ---- */

enum { EV_ENQ, EV_CONN, EV_SETTLE };

struct ev {
    int64_t t;
    int kind, sess;
};

static struct ev *evh;
static int nev, capev;

static int ev_less(const struct ev *a, const struct ev *b)
{
    return a->t < b->t || (a->t == b->t && a->kind > b->kind); /* settles first, then links */
}

static void ev_push(int64_t t, int kind, int sess)
{
    if (nev == capev) {
        capev = capev ? capev * 2 : 4096;
        evh = realloc(evh, (size_t)capev * sizeof *evh);
        if (!evh)
            abort();
    }
    int i = nev++;
    struct ev e = {t, kind, sess};
    while (i > 0 && ev_less(&e, &evh[(i - 1) / 2])) {
        evh[i] = evh[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    evh[i] = e;
}

static struct ev ev_pop(void)
{
    struct ev top = evh[0], last = evh[--nev];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= nev)
            break;
        if (c + 1 < nev && ev_less(&evh[c + 1], &evh[c]))
            c++;
        if (!ev_less(&evh[c], &last))
            break;
        evh[i] = evh[c];
        i = c;
    }
    if (nev > 0)
        evh[i] = last;
    return top;
}

struct sim_sess {
    int64_t first;          /* the simulation's record of the first connection */
    double per_day_traffic; /* mean messages offered a day */
    double up_mean, down_mean;
    int leveled;        /* the level was set once */
    int settle_requeue; /* what the pending settle will do */
    int64_t settle_hold;
};

static struct pacing_config cfg;
static struct dsched *d;
static struct sim_sess ss[NSESS];
static struct chk ck[NSESS];

static struct {
    long long offered, accepted, refused, refused_wrong, accepted_wrong;
    long long sent, requeued_down, requeued_retry, failed;
    long long dispatches, by_level[3], viol[V_NBITS], late, level_wrong, level_looser;
    long long minute_tight, day_full_days, at_opening, on_dst_day, bursts;
    long long connects, disconnects;
    long long level_moves[3][3]; /* [from][to] seen when rescheduling */
    int64_t min_gap_over_base, max_realised_gap_min;
} st;

static int64_t dst_day; /* the local day of the March change */

/* set the level from the account age, as the dispatcher does each time it schedules */
static void relevel(struct dsched_sess *s, int i, int64_t now)
{
    enum pacing_level was = s->level;
    s->level = pacing_level_for(&cfg, ss[i].first, now);
    if (ss[i].leveled && s->level != was)
        st.level_moves[was][s->level]++;
    ss[i].leveled = 1;
    if ((int)s->level != level_by_age(ck[i].first, now))
        st.level_wrong++;
    ck[i].since = now;
}

static void schedule(struct dsched_sess *s, int i, int64_t now)
{
    relevel(s, i, now);
    dsched_update(d, s, now);
}

static void on_dispatch(struct dsched_sess *s, int64_t t)
{
    int i = (int)(s->id - 1);
    struct chk *c = &ck[i];
    int lvl = (int)s->level;
    st.dispatches++;
    st.by_level[lvl]++;
    if (lvl > level_by_age(c->first, t))
        st.level_looser++;
    unsigned v = violations(c, lvl, t);
    for (int b = 0; b < V_NBITS; b++)
        if (v & (1u << b))
            st.viol[b]++;
    /* not late either: one ms earlier, with nothing changed since the schedule, a rule held it */
    int late = c->since < t && violations(c, lvl, t - 1) == 0;
    st.late += late;
    static int shown;
    if ((v || late) && shown++ < 5) { /* the first few, to debug from */
        time_t sec = (time_t)(t / 1000);
        struct tm lt;
        localtime_r(&sec, &lt);
        char buf[64];
        strftime(buf, sizeof buf, "%F %T %Z", &lt);
        TAP_DIAG("%s %#x: session %d level %d at %s (t=%lld since=%lld last=%lld)",
                 v ? "violation" : "late", v, i, lvl, buf, (long long)t, (long long)c->since,
                 (long long)c->last_send);
    }

    /* statistics that show the limits were reached */
    int in_minute = 0;
    for (int k = 0; k < c->nring; k++)
        in_minute += c->ring[k] > t - MIN;
    if (in_minute + 1 == spec[lvl].per_minute)
        st.minute_tight++;
    struct local l = local_of(t);
    if (l.minute == spec[lvl].open)
        st.at_opening++;
    if (l.day == dst_day)
        st.on_dst_day++;
    if (c->nring > 0) {
        int64_t over = (t - c->last_send) - spec[lvl].base;
        if (over < st.min_gap_over_base)
            st.min_gap_over_base = over;
    }

    double rnd = rng_unit();
    dsched_dispatched(d, s, t, rnd);

    /* the checker's own bookkeeping */
    if (l.day != c->day) {
        c->day = l.day;
        c->day_count = 0;
    }
    c->day_count++;
    if (c->day_count == spec[lvl].per_day)
        st.day_full_days++;
    c->last_send = t;
    c->min_gap = spec[lvl].base + (int64_t)(rnd * spec[lvl].jitter);
    c->ring[c->head] = t;
    c->head = (c->head + 1) % RING;
    if (c->nring < RING)
        c->nring++;
    c->inflight = 1;
    c->queued--;
    c->hold_until = 0;
    c->since = t;

    /* the worker answers after a latency; 2% ask for a retry after a back-off; 0.5% fail */
    int64_t lat = rng_unit() < 0.05 ? rng_range(5 * SEC, 40 * SEC) : rng_range(50, 2500);
    double r = rng_unit();
    ss[i].settle_requeue = r < 0.02 ? 1 : r < 0.025 ? -1 : 0;
    ss[i].settle_hold = ss[i].settle_requeue == 1 ? rng_range(10 * SEC, 5 * MIN) : 0;
    ev_push(t + lat, EV_SETTLE, i);
}

static void on_settle(int i, int64_t t)
{
    struct dsched_sess *s = dsched_find(d, i + 1);
    struct chk *c = &ck[i];
    int requeue = 0;
    if (!c->ready) {
        requeue = 1; /* the connection dropped under it: back in the queue */
        st.requeued_down++;
    } else if (ss[i].settle_requeue == 1) {
        requeue = 1;
        s->hold_until = t + ss[i].settle_hold;
        c->hold_until = s->hold_until;
        st.requeued_retry++;
    } else if (ss[i].settle_requeue == -1) {
        pacing_record_failure(&s->pace, t);
        st.failed++;
    } else {
        st.sent++;
    }
    c->inflight = 0;
    if (requeue)
        c->queued++;
    relevel(s, i, t);
    dsched_settled(d, s, requeue, t);
}

static void on_enqueue(int i, int64_t t)
{
    struct dsched_sess *s = dsched_find(d, i + 1);
    struct chk *c = &ck[i];
    int n = 1;
    if (rng_unit() < 0.01) {
        n = (int)rng_range(10, 60); /* a campaign: many at once */
        st.bursts++;
    }
    relevel(s, i, t);
    const struct pacing_profile *p = dsched_profile(d, s);
    /* the checker's view: today's sends plus the queue against the day's cap */
    int lvl = level_by_age(c->first, t);
    int today = local_of(t).day == c->day ? c->day_count : 0;
    for (int k = 0; k < n; k++) {
        st.offered++;
        int room = today + c->queued < spec[lvl].per_day;
        if (pacing_room_today(p, &s->pace, s->queued, t) > 0) {
            s->queued++;
            c->queued++;
            st.accepted++;
            st.accepted_wrong += !room;
        } else {
            st.refused++;
            st.refused_wrong += room;
        }
    }
    dsched_update(d, s, t);
    ev_push(t + rng_exp((double)DAY / ss[i].per_day_traffic), EV_ENQ, i);
}

static void on_conn(int i, int64_t t)
{
    struct dsched_sess *s = dsched_find(d, i + 1);
    struct chk *c = &ck[i];
    if (c->ready) {
        s->ready = c->ready = 0;
        st.disconnects++;
        ev_push(t + rng_exp(ss[i].down_mean), EV_CONN, i);
    } else {
        if (ss[i].first == 0)
            ss[i].first = c->first = t;
        s->ready = c->ready = 1;
        st.connects++;
        ev_push(t + rng_exp(ss[i].up_mean), EV_CONN, i);
    }
    schedule(s, i, t);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    uint64_t seed = 0x5eed2024ULL;
    const char *env = getenv("SIM_SEED");
    if (env && *env)
        seed = strtoull(env, NULL, 0);
    rng_state = seed;
    setenv("TZ", "Asia/Jerusalem", 1);
    tzset();
    TAP_DIAG("seed %" PRIu64 " (set SIM_SEED to change it), TZ=Asia/Jerusalem", seed);

    double t_begin = now_s();
    pacing_config_default(&cfg);
    d = dsched_new(&cfg);

    /* local midnight starting 2024-03-15 (IST, +2); the run crosses Fri Mar 29 (23 h long) */
    struct tm tm0 = {.tm_year = 124, .tm_mon = 2, .tm_mday = 15, .tm_isdst = -1};
    const int64_t start = (int64_t)mktime(&tm0) * 1000;
    const int64_t end = start + DAYS * DAY;
    {
        struct tm dst = {.tm_year = 124, .tm_mon = 2, .tm_mday = 29};
        dst_day = (int64_t)timegm(&dst) / 86400;
    }
    CHECK_EQ_INT(local_of(start).minute, 0, "the run starts at local midnight");

    /* mixed trust: never connected, cold (crosses day 3 and day 14), warm (crosses 14), hot */
    static const double traffic[] = {2, 8, 25, 60, 150, 600};
    for (int i = 0; i < NSESS; i++) {
        struct dsched_sess *s = dsched_get(d, i + 1);
        s->owner = &ss[i];
        int kind = i % 4;
        ss[i].first = kind == 0   ? 0
                      : kind == 1 ? start - rng_range(0, 3 * DAY - 1)
                      : kind == 2 ? start - rng_range(3 * DAY, 14 * DAY - 1)
                                  : start - rng_range(14 * DAY, 200 * DAY);
        ck[i].first = ss[i].first;
        ck[i].day = -1;
        ss[i].per_day_traffic = traffic[rng_range(0, 5)];
        int flaky = rng_unit() < 0.2;
        ss[i].up_mean = flaky ? 2.0 * HOUR : 30.0 * HOUR;
        ss[i].down_mean = flaky ? 20.0 * MIN : 1.5 * HOUR;
        ev_push(start + rng_exp((double)DAY / ss[i].per_day_traffic), EV_ENQ, i);
        /* the never-connected connect for the first time in the first days */
        ev_push(kind == 0 ? start + rng_range(0, 5 * DAY) : start + rng_range(0, 10 * MIN), EV_CONN,
                i);
    }

    st.min_gap_over_base = INT64_MAX;
    long long steps = 0;
    for (;;) {
        int64_t t_ev = nev ? evh[0].t : INT64_MAX;
        int64_t t_due = dsched_next_due(d);
        int64_t t = t_ev < t_due ? t_ev : t_due;
        if (t >= end)
            break;
        steps++;
        if (t_ev <= t_due) {
            struct ev e = ev_pop();
            if (e.kind == EV_ENQ)
                on_enqueue(e.sess, e.t);
            else if (e.kind == EV_CONN)
                on_conn(e.sess, e.t);
            else
                on_settle(e.sess, e.t);
            continue;
        }
        struct dsched_sess *s;
        while ((s = dsched_pop_due(d, t)) != NULL)
            on_dispatch(s, t);
    }

    /* ---- the totals ---- */
    long long queued_end = 0, queued_chk = 0, inflight_end = 0, stuck = 0;
    for (int i = 0; i < NSESS; i++) {
        struct dsched_sess *s = dsched_find(d, i + 1);
        queued_end += s->queued;
        queued_chk += ck[i].queued;
        inflight_end += s->inflight;
        if (s->ready && !s->inflight && s->queued > 0 && (s->due < 0 || s->due > end + 2 * DAY))
            stuck++;
    }
    double elapsed = now_s() - t_begin;

    TAP_DIAG("%d sessions, %d days, %lld loop steps, %.2f s", NSESS, DAYS, steps, elapsed);
    TAP_DIAG("offered %lld: accepted %lld, refused %lld (daily cap incl. queued); bursts %lld",
             st.offered, st.accepted, st.refused, st.bursts);
    TAP_DIAG("dispatched %lld (cold %lld, warm %lld, hot %lld): sent %lld, failed %lld, "
             "requeued %lld on disconnect + %lld retries",
             st.dispatches, st.by_level[0], st.by_level[1], st.by_level[2], st.sent, st.failed,
             st.requeued_down, st.requeued_retry);
    TAP_DIAG("at the end: %lld queued, %lld in flight; connects %lld, disconnects %lld", queued_end,
             inflight_end, st.connects, st.disconnects);
    TAP_DIAG(
        "limits reached: %lld sends at the per-minute cap, %lld session-days at the daily cap, "
        "%lld sends at the opening minute, %lld sends on the DST day; least gap over base %lld ms",
        st.minute_tight, st.day_full_days, st.at_opening, st.on_dst_day,
        (long long)st.min_gap_over_base);

    TAP_DIAG("trust moves seen when rescheduling: cold->warm %lld, warm->hot %lld, cold->hot %lld",
             st.level_moves[0][1], st.level_moves[1][2], st.level_moves[0][2]);

    for (int b = 0; b < V_NBITS; b++)
        CHECK_EQ_INT(st.viol[b], 0, "no send %s", v_names[b]);
    CHECK_EQ_INT(st.late, 0, "no send later than the rules required");
    CHECK_EQ_INT(st.level_wrong, 0, "pacing_level_for agrees with the account age every time");
    CHECK_EQ_INT(st.level_looser, 0, "no send under a level above the account's age");
    CHECK_EQ_INT(st.accepted_wrong + st.refused_wrong, 0,
                 "pacing_room_today accepts exactly while today's sends + queued < the daily cap");
    CHECK_EQ_INT(st.accepted, st.sent + st.failed + queued_end + inflight_end,
                 "every message accounted for: enqueued == sent + failed + queued + in flight");
    CHECK_EQ_INT(st.dispatches,
                 st.sent + st.failed + st.requeued_down + st.requeued_retry + inflight_end,
                 "every dispatch settled once or still in flight");
    CHECK_EQ_INT(queued_end, queued_chk, "the schedule's queue counts match the checker's");
    CHECK_EQ_INT(stuck, 0, "no ready idle session with work is left out of the schedule");
    CHECK(st.offered == st.accepted + st.refused && st.refused > 0,
          "some messages were refused (%lld)", st.refused);
    CHECK(st.by_level[0] > 0 && st.by_level[1] > 0 && st.by_level[2] > 0, "sends at every level");
    CHECK(st.level_moves[0][1] > 0 && st.level_moves[1][2] > 0 && st.level_moves[1][0] == 0 &&
              st.level_moves[2][1] == 0 && st.level_moves[2][0] == 0,
          "sessions crossed day 3 and day 14 during the run, and no level ever went down");
    CHECK(st.minute_tight > 0 && st.day_full_days > 0 && st.at_opening > 0 && st.on_dst_day > 0,
          "the run reached the per-minute and daily caps, the opening minute and the DST day");
    CHECK(st.requeued_down > 0 && st.requeued_retry > 0 && st.failed > 0,
          "disconnects under a send, retries with a hold and failures all happened");
    CHECK(st.min_gap_over_base >= 0, "no realised gap under the base (least over: %lld ms)",
          (long long)st.min_gap_over_base);
    CHECK(elapsed < 10.0, "the simulation took %.2f s (< 10 s)", elapsed);

    dsched_free(d);
    free(evh);
    return TAP_DONE();
}
