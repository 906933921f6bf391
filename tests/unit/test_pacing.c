/* Unit tests for src/pacing.h with a fake clock: trust levels by account age, profiles
 * as text, every limit (gap, per minute, per day, active hours), windows that cross
 * midnight, zones far from UTC and DST changes, jitter bounds, day rollover, capacity at
 * enqueue and typing time. Expected instants are built with timegm and a known UTC offset,
 * never with the module's own calendar code. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pacing.h"
#include "tap.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define T0 1700000000000LL /* a first connection, ms */

static void zone(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

/* y-m-d h:mi UTC, in ms */
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

/* y-m-d h:mi local wall time at a known offset from UTC (minutes east) */
static int64_t L(int y, int mo, int d, int h, int mi, int off_min)
{
    return U(y, mo, d, h, mi) - (int64_t)off_min * MIN;
}

/* days since 1970-01-01 of a civil date */
static int64_t civil_day(int y, int mo, int d)
{
    return U(y, mo, d, 0, 0) / DAY;
}

static struct pacing_profile prof(int per_day, int per_minute, int base, int jitter, int open,
                                  int close)
{
    struct pacing_profile p = {per_day, per_minute, base, jitter, open, close};
    return p;
}

/* ---- an independent model of the rules, for property checks ---- */

static int local_minute(int64_t t)
{
    time_t s = (time_t)(t / 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    return tm.tm_hour * 60 + tm.tm_min;
}

static int64_t local_day(int64_t t)
{
    time_t s = (time_t)(t / 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    return civil_day(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static int in_hours(const struct pacing_profile *p, int64_t t)
{
    if (p->open_min == p->close_min)
        return 1;
    int m = local_minute(t);
    if (p->open_min < p->close_min)
        return m >= p->open_min && m < p->close_min;
    return m >= p->open_min || m < p->close_min;
}

#define HIST_MAX 4096
struct hist {
    int64_t t[HIST_MAX];
    int64_t gap[HIST_MAX]; /* the gap drawn at each send */
    int64_t day[HIST_MAX]; /* its local day */
    int n;
};

static void hist_add(struct hist *h, int64_t t, int64_t gap)
{
    h->t[h->n] = t;
    h->gap[h->n] = gap;
    h->day[h->n] = local_day(t);
    h->n++;
}

/* 1 when one more send at x (not before the latest in h) keeps every rule */
static int allowed(const struct pacing_profile *p, const struct hist *h, int64_t x)
{
    if (h->n > 0 && x < h->t[h->n - 1] + h->gap[h->n - 1])
        return 0;
    if (!in_hours(p, x))
        return 0;
    int in_minute = 0, on_day = 0;
    int64_t day = local_day(x);
    for (int i = h->n - 1; i >= 0; i--) {
        if (h->t[i] > x - MIN)
            in_minute++;
        if (h->day[i] == day)
            on_day++;
        else if (h->t[i] <= x - MIN)
            break; /* older sends are on earlier days and out of the minute */
    }
    if (p->per_minute > 0 && in_minute + 1 > p->per_minute)
        return 0;
    if (p->per_day > 0 && on_day + 1 > p->per_day)
        return 0;
    return 1;
}

/* ---- trust levels ---- */

static void test_default_config(void)
{
    struct pacing_config c;
    memset(&c, 0x5a, sizeof c);
    pacing_config_default(&c);
    static const int want[PACING__LEVELS][6] = {
        {20, 5, 5000, 3000, 9 * 60, 21 * 60},   /* cold: 5-8 s, 09:00-21:00 */
        {100, 15, 3000, 2000, 8 * 60, 22 * 60}, /* warm: 3-5 s, 08:00-22:00 */
        {500, 30, 2000, 2000, 7 * 60, 23 * 60}, /* hot: 2-4 s, 07:00-23:00 */
    };
    for (int l = 0; l < PACING__LEVELS; l++) {
        const struct pacing_profile *p = &c.level[l];
        int got[6] = {p->per_day,       p->per_minute, p->gap_base_ms,
                      p->gap_jitter_ms, p->open_min,   p->close_min};
        int same = memcmp(got, want[l], sizeof got) == 0;
        CHECK(same, "default %s profile is the SPEC 4.2 row", pacing_level_name(l));
    }
    CHECK_EQ_INT(c.warm_after_days, 3, "warm after day 3");
    CHECK_EQ_INT(c.hot_after_days, 14, "hot after day 14");
    CHECK(c.typing_min_ms > 0 && c.typing_per_char_ms > 0 && c.typing_max_ms > c.typing_min_ms,
          "typing defaults grow and are capped (min %d, per char %d, max %d)", c.typing_min_ms,
          c.typing_per_char_ms, c.typing_max_ms);
}

static void test_levels(void)
{
    struct pacing_config c;
    pacing_config_default(&c);
    static const struct {
        int64_t first, now;
        enum pacing_level want;
        const char *desc;
    } t[] = {
        {0, T0, PACING_COLD, "never connected (0)"},
        {-1, T0, PACING_COLD, "never connected (negative)"},
        {0, 0, PACING_COLD, "never connected, clock at 0"},
        {T0, T0, PACING_COLD, "just connected"},
        {T0, T0 - 1, PACING_COLD, "clock 1 ms before the first connection"},
        {T0, T0 - 30 * DAY, PACING_COLD, "clock a month before the first connection"},
        {T0, T0 + DAY, PACING_COLD, "day 1"},
        {T0, T0 + 3 * DAY - 1, PACING_COLD, "1 ms before day 3"},
        {T0, T0 + 3 * DAY, PACING_WARM, "exactly day 3"},
        {T0, T0 + 3 * DAY + 1, PACING_WARM, "just after day 3"},
        {T0, T0 + 10 * DAY, PACING_WARM, "day 10"},
        {T0, T0 + 14 * DAY - 1, PACING_WARM, "1 ms before day 14"},
        {T0, T0 + 14 * DAY, PACING_HOT, "exactly day 14"},
        {T0, T0 + 14 * DAY + 1, PACING_HOT, "just after day 14"},
        {T0, T0 + 3650 * DAY, PACING_HOT, "ten years on"},
        {1, 1 + 3 * DAY, PACING_WARM, "first connection at ms 1, day 3"},
        {1, INT64_MAX, PACING_HOT, "clock at INT64_MAX"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECK_EQ_STR(pacing_level_name(pacing_level_for(&c, t[i].first, t[i].now)),
                     pacing_level_name(t[i].want), "%s is %s", t[i].desc,
                     pacing_level_name(t[i].want));

    /* account age, not local calendar days: the same ages in a zone far from UTC */
    zone("Pacific/Kiritimati");
    CHECK_EQ_INT(pacing_level_for(&c, T0, T0 + 3 * DAY - 1), PACING_COLD,
                 "+14: cold at 3 d - 1 ms");
    CHECK_EQ_INT(pacing_level_for(&c, T0, T0 + 3 * DAY), PACING_WARM, "+14: warm at 3 d");
    zone("UTC");

    /* the thresholds come from the config */
    c.warm_after_days = 1;
    c.hot_after_days = 2;
    CHECK_EQ_INT(pacing_level_for(&c, T0, T0 + DAY - 1), PACING_COLD, "custom: cold before day 1");
    CHECK_EQ_INT(pacing_level_for(&c, T0, T0 + DAY), PACING_WARM, "custom: warm at day 1");
    CHECK_EQ_INT(pacing_level_for(&c, T0, T0 + 2 * DAY - 1), PACING_WARM,
                 "custom: warm before day 2");
    CHECK_EQ_INT(pacing_level_for(&c, T0, T0 + 2 * DAY), PACING_HOT, "custom: hot at day 2");
    c.warm_after_days = 0;
    CHECK_EQ_INT(pacing_level_for(&c, T0, T0), PACING_WARM,
                 "custom: warm from the start at 0 days");
    CHECK_EQ_INT(pacing_level_for(&c, 0, T0), PACING_COLD, "custom: never connected is still cold");

    /* the level never goes down as the account ages */
    pacing_config_default(&c);
    int mono = 1, prev = PACING_COLD, changes = 0;
    for (int64_t age = 0; age <= 20 * DAY; age += HOUR) {
        int l = pacing_level_for(&c, T0, T0 + age);
        if (l < prev)
            mono = 0;
        changes += l != prev;
        prev = l;
    }
    CHECK(mono && changes == 2, "hour by hour over 20 days: never down, changes twice (%d)",
          changes);
}

static void test_level_names(void)
{
    static const char *const names[] = {"cold", "warm", "hot"};
    for (int l = 0; l < PACING__LEVELS; l++) {
        CHECK_EQ_STR(pacing_level_name(l), names[l], "level %d is named %s", l, names[l]);
        CHECK_EQ_INT(pacing_level_parse(names[l]), l, "'%s' parses to %d", names[l], l);
    }
    static const char *const bad[] = {"", "Hot", "hot ", " cold", "tepid", "cool", "warmer", "c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(pacing_level_parse(bad[i]), -1, "'%s' is not a level", bad[i]);
    CHECK(pacing_level_name(PACING__LEVELS) != NULL, "an out-of-range level still has a name");
}

/* ---- profiles as text ---- */

static void test_profile_parse_good(void)
{
    static const struct {
        const char *text;
        struct pacing_profile want;
    } t[] = {
        {"20,5,5000,3000,09:00-21:00", {20, 5, 5000, 3000, 540, 1260}},
        {"100,15,3000,2000,08:00-22:00", {100, 15, 3000, 2000, 480, 1320}},
        {"500,30,2000,2000,07:00-23:00", {500, 30, 2000, 2000, 420, 1380}},
        {"0,0,0,0,00:00-24:00", {0, 0, 0, 0, 0, 0}},
        {"0,0,0,0,00:00-00:00", {0, 0, 0, 0, 0, 0}},
        {"0,0,0,0,24:00-24:00", {0, 0, 0, 0, 0, 0}},
        {"10,3,1000,500,22:00-06:00", {10, 3, 1000, 500, 1320, 360}},
        {"1,64,3600000,3600000,09:30-17:45", {1, 64, 3600000, 3600000, 570, 1065}},
        {"1000000,1,0,0,9:05-21:59", {1000000, 1, 0, 0, 545, 1319}},
        {"5,5,5,5,09:00-24:00", {5, 5, 5, 5, 540, 1440}},
        {"5,5,5,5,23:59-00:01", {5, 5, 5, 5, 1439, 1}},
        {"007,05,0100,02,08:00-20:00", {7, 5, 100, 2, 480, 1200}},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct pacing_profile p;
        memset(&p, 0x77, sizeof p);
        char err[256] = "";
        int rc = pacing_profile_parse(t[i].text, &p, err, sizeof err);
        CHECK_EQ_INT(rc, 0, "parses '%s'%s%s", t[i].text, rc ? ": " : "", err);
        int same = rc == 0 && p.per_day == t[i].want.per_day &&
                   p.per_minute == t[i].want.per_minute && p.gap_base_ms == t[i].want.gap_base_ms &&
                   p.gap_jitter_ms == t[i].want.gap_jitter_ms && p.open_min == t[i].want.open_min &&
                   p.close_min == t[i].want.close_min;
        CHECK(same, "'%s' -> %d,%d,%d,%d open %d close %d (got %d,%d,%d,%d open %d close %d)",
              t[i].text, t[i].want.per_day, t[i].want.per_minute, t[i].want.gap_base_ms,
              t[i].want.gap_jitter_ms, t[i].want.open_min, t[i].want.close_min, p.per_day,
              p.per_minute, p.gap_base_ms, p.gap_jitter_ms, p.open_min, p.close_min);
    }
}

static void test_profile_parse_bad(void)
{
    static const struct {
        const char *text, *names; /* names: a word the error must contain */
    } t[] = {
        {"", "per_day"},
        {"x,5,5000,3000,09:00-21:00", "per_day"},
        {"-1,5,5000,3000,09:00-21:00", "per_day"},
        {" 20,5,5000,3000,09:00-21:00", "per_day"},
        {"1000001,5,5000,3000,09:00-21:00", "per_day"},
        {"9999999999,5,5000,3000,09:00-21:00", "per_day"},
        {"20;5;5000;3000;09:00-21:00", "per_day"},
        {"20", "per_day"},
        {"20,,5000,3000,09:00-21:00", "per_minute"},
        {"20,65,5000,3000,09:00-21:00", "per_minute"},
        {"20,5 ,5000,3000,09:00-21:00", "per_minute"},
        {"20,5", "per_minute"},
        {"20,5,3600001,3000,09:00-21:00", "gap_base_ms"},
        {"20,5,5e3,3000,09:00-21:00", "gap_base_ms"},
        {"20,5,5000,-3,09:00-21:00", "gap_jitter_ms"},
        {"20,5,5000,3000", "gap_jitter_ms"},
        {"20,5,5000,3000,", "active hours"},
        {"20,5,5000,3000,09:00", "active hours"},
        {"20,5,5000,3000,09:00-", "active hours"},
        {"20,5,5000,3000,9-21", "active hours"},
        {"20,5,5000,3000,09:00-21:00x", "active hours"},
        {"20,5,5000,3000,09:00-21:00,", "active hours"},
        {"20,5,5000,3000,09:00 - 21:00", "active hours"},
        {"20,5,5000,3000,09:60-21:00", "active hours"},
        {"20,5,5000,3000,09:00-21:7", "active hours"},
        {"20,5,5000,3000,25:00-21:00", "active hours"},
        {"20,5,5000,3000,24:30-21:00", "active hours"},
        {"20,5,5000,3000,09:00-24:01", "active hours"},
        {"20,5,5000,3000,09:00:00-21:00", "active hours"},
        {"20,5,5000,3000,09.00-21.00", "active hours"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct pacing_profile p;
        char err[256] = "";
        int rc = pacing_profile_parse(t[i].text, &p, err, sizeof err);
        CHECK_EQ_INT(rc, -1, "'%s' is refused", t[i].text);
        CHECK(strstr(err, t[i].names) != NULL, "the error for '%s' names %s: %s", t[i].text,
              t[i].names, err);
    }
    /* a short error buffer is filled, never overrun */
    char small[9];
    memset(small, 'Z', sizeof small);
    struct pacing_profile p;
    int rc = pacing_profile_parse("20,99,1,1,09:00-21:00", &p, small, 8);
    CHECK(rc == -1 && strlen(small) == 7 && small[8] == 'Z',
          "a short error buffer holds a cut message and nothing past errlen");
}

static void test_profile_roundtrip(void)
{
    static const char *const canon[] = {
        "20,5,5000,3000,09:00-21:00", "0,0,0,0,00:00-24:00",
        "10,3,1000,500,22:00-06:00",  "1,64,3600000,0,09:30-17:45",
        "5,5,5,5,09:00-24:00",        "5,5,5,5,23:59-00:01",
        "5,5,5,5,00:00-09:00",        "1000000,0,0,3600000,12:00-12:00",
    };
    for (size_t i = 0; i < sizeof canon / sizeof canon[0]; i++) {
        struct pacing_profile p;
        char err[256] = "", out[64] = "";
        int rc = pacing_profile_parse(canon[i], &p, err, sizeof err);
        pacing_profile_format(&p, out, sizeof out);
        CHECK(rc == 0 && strcmp(out, canon[i]) == 0, "'%s' formats back the same (got '%s')",
              canon[i], out);
    }

    /* every profile parse can produce: format, parse, and the same profile again */
    srand(1234);
    int ok = 0, n = 2000;
    char first_bad[128] = "";
    for (int i = 0; i < n; i++) {
        struct pacing_profile p;
        p.per_day = rand() % 1000001;
        p.per_minute = rand() % 65;
        p.gap_base_ms = rand() % 3600001;
        p.gap_jitter_ms = rand() % 3600001;
        p.open_min = rand() % MIN_PER_DAY;
        p.close_min = rand() % MIN_PER_DAY;
        if (i % 13 == 0)
            p.open_min = 0;
        if (i % 7 == 0)
            p.close_min = p.open_min; /* always open, written from any hour */
        if (i % 11 == 0)
            p.close_min = MIN_PER_DAY; /* 24:00 */
        char out[64] = "", err[256] = "";
        pacing_profile_format(&p, out, sizeof out);
        struct pacing_profile q;
        memset(&q, 0, sizeof q);
        int rc = pacing_profile_parse(out, &q, err, sizeof err);
        /* 00:00-24:00 and open == close both mean always open */
        int p_always = p.open_min == p.close_min || (p.open_min == 0 && p.close_min == MIN_PER_DAY);
        int q_always = q.open_min == q.close_min || (q.open_min == 0 && q.close_min == MIN_PER_DAY);
        int same = rc == 0 && q.per_day == p.per_day && q.per_minute == p.per_minute &&
                   q.gap_base_ms == p.gap_base_ms && q.gap_jitter_ms == p.gap_jitter_ms &&
                   q_always == p_always &&
                   (p_always || (q.open_min == p.open_min && q.close_min == p.close_min));
        if (same)
            ok++;
        else if (!first_bad[0])
            snprintf(first_bad, sizeof first_bad, "open %d close %d -> '%s'", p.open_min,
                     p.close_min, out);
    }
    CHECK_EQ_INT(ok, n, "format then parse gives the profile back (%d random)%s%s", n,
                 first_bad[0] ? "; first failure: " : "", first_bad);
    /* the longest text fits the documented 64 bytes */
    struct pacing_profile big = prof(1000000, 64, 3600000, 3600000, 1439, 1438);
    char out[64];
    pacing_profile_format(&big, out, sizeof out);
    CHECK_EQ_STR(out, "1000000,64,3600000,3600000,23:59-23:58", "the widest profile fits 64 bytes");
}

/* ---- active hours and the local calendar ---- */

static void test_window_utc(void)
{
    zone("UTC");
    struct pacing_profile day = prof(0, 0, 0, 0, 9 * 60, 21 * 60);
    int64_t d = U(2024, 6, 5, 0, 0);
    CHECK_EQ_INT(pacing_window_open(&day, d + 8 * HOUR), d + 9 * HOUR,
                 "09-21: 08:00 waits for 09:00");
    CHECK_EQ_INT(pacing_window_open(&day, d + 9 * HOUR - 1), d + 9 * HOUR,
                 "09-21: 08:59:59.999 waits");
    CHECK_EQ_INT(pacing_window_open(&day, d + 9 * HOUR), d + 9 * HOUR, "09-21: 09:00 is open");
    CHECK_EQ_INT(pacing_window_open(&day, d + 21 * HOUR - 1), d + 21 * HOUR - 1,
                 "09-21: 20:59:59.999 is open");
    CHECK_EQ_INT(pacing_window_open(&day, d + 21 * HOUR), d + DAY + 9 * HOUR,
                 "09-21: 21:00 waits for tomorrow 09:00");
    CHECK_EQ_INT(pacing_window_open(&day, d + 23 * HOUR + 59 * MIN), d + DAY + 9 * HOUR,
                 "09-21: 23:59 waits for tomorrow");
    CHECK_EQ_INT(pacing_window_open(&day, d), d + 9 * HOUR, "09-21: midnight waits for 09:00");

    /* 22:00-06:00 crosses midnight */
    struct pacing_profile night;
    char err[256];
    CHECK_EQ_INT(pacing_profile_parse("0,0,0,0,22:00-06:00", &night, err, sizeof err), 0,
                 "parse 22:00-06:00");
    CHECK_EQ_INT(pacing_window_open(&night, d + 21 * HOUR + 59 * MIN), d + 22 * HOUR,
                 "22-06: 21:59 waits for 22:00");
    CHECK_EQ_INT(pacing_window_open(&night, d + 22 * HOUR), d + 22 * HOUR, "22-06: 22:00 is open");
    CHECK_EQ_INT(pacing_window_open(&night, d + 23 * HOUR + 59 * MIN + 59 * SEC),
                 d + 23 * HOUR + 59 * MIN + 59 * SEC, "22-06: 23:59:59 is open");
    CHECK_EQ_INT(pacing_window_open(&night, d), d, "22-06: midnight is open");
    CHECK_EQ_INT(pacing_window_open(&night, d + 3 * HOUR), d + 3 * HOUR, "22-06: 03:00 is open");
    CHECK_EQ_INT(pacing_window_open(&night, d + 6 * HOUR - 1), d + 6 * HOUR - 1,
                 "22-06: 05:59:59.999 is open");
    CHECK_EQ_INT(pacing_window_open(&night, d + 6 * HOUR), d + 22 * HOUR,
                 "22-06: 06:00 waits for 22:00 the same day");
    CHECK_EQ_INT(pacing_window_open(&night, d + 12 * HOUR), d + 22 * HOUR,
                 "22-06: noon waits for 22:00");

    /* 00:00-24:00 is always open */
    struct pacing_profile always;
    CHECK_EQ_INT(pacing_profile_parse("0,0,0,0,00:00-24:00", &always, err, sizeof err), 0,
                 "parse 00:00-24:00");
    int open_all = 1;
    for (int64_t t = d; t < d + 2 * DAY; t += 7 * MIN + 13 * SEC)
        open_all &= pacing_window_open(&always, t) == t;
    CHECK(open_all, "00:00-24:00 is open at every moment of two days");

    /* 09:00-24:00: open to the end of the day */
    struct pacing_profile late = prof(0, 0, 0, 0, 9 * 60, MIN_PER_DAY);
    CHECK_EQ_INT(pacing_window_open(&late, d + 23 * HOUR + 59 * MIN), d + 23 * HOUR + 59 * MIN,
                 "09-24: 23:59 is open");
    CHECK_EQ_INT(pacing_window_open(&late, d + DAY), d + DAY + 9 * HOUR,
                 "09-24: midnight waits for 09:00");

    /* property: the answer is >= t, inside, and nothing between t and it is inside */
    srand(77);
    int ok = 1;
    for (int i = 0; i < 3000 && ok; i++) {
        struct pacing_profile p = prof(0, 0, 0, 0, 0, 0);
        p.open_min = rand() % MIN_PER_DAY;
        p.close_min = rand() % MIN_PER_DAY;
        int64_t t = d + (int64_t)(rand() % (3 * 24 * 60)) * MIN;
        t += rand() % MIN;
        int64_t w = pacing_window_open(&p, t);
        ok &= w >= t && in_hours(&p, w);
        for (int64_t x = w - MIN; x >= t && ok; x -= MIN)
            ok &= !in_hours(&p, x);
        if (w > t)
            ok &= !in_hours(&p, w - 1);
    }
    CHECK(ok, "window_open is the first inside moment for 3000 random windows and times");
}

static void test_far_zones(void)
{
    struct pacing_profile cold = prof(20, 5, 5000, 3000, 9 * 60, 21 * 60);

    zone("Pacific/Kiritimati"); /* UTC+14 all year */
    CHECK_EQ_INT(pacing_local_day(U(2024, 6, 1, 9, 59)), civil_day(2024, 6, 1),
                 "+14: UTC 09:59 is still June 1");
    CHECK_EQ_INT(pacing_local_day(U(2024, 6, 1, 10, 0)), civil_day(2024, 6, 2),
                 "+14: UTC 10:00 is June 2");
    CHECK_EQ_INT(pacing_local_day(U(2024, 5, 31, 23, 0)), civil_day(2024, 6, 1),
                 "+14: UTC May 31 23:00 is June 1");
    CHECK_EQ_INT(pacing_next_midnight(U(2024, 6, 1, 0, 0)), U(2024, 6, 1, 10, 0),
                 "+14: next midnight is UTC 10:00");
    CHECK_EQ_INT(pacing_next_midnight(U(2024, 6, 1, 10, 0)), U(2024, 6, 2, 10, 0),
                 "+14: at midnight, the next one a day on");
    CHECK_EQ_INT(pacing_window_open(&cold, L(2024, 6, 1, 21, 30, 14 * 60)),
                 L(2024, 6, 2, 9, 0, 14 * 60), "+14: 21:30 local waits for 09:00 local");
    CHECK_EQ_INT(pacing_window_open(&cold, U(2024, 6, 1, 7, 30)), U(2024, 6, 1, 19, 0),
                 "+14: in UTC terms, 07:30 waits for 19:00 the same UTC day");
    CHECK_EQ_INT(pacing_window_open(&cold, U(2024, 5, 31, 19, 0)), U(2024, 5, 31, 19, 0),
                 "+14: UTC 19:00 (09:00 local) is open");
    CHECK_EQ_INT(pacing_window_open(&cold, U(2024, 5, 31, 18, 59)), U(2024, 5, 31, 19, 0),
                 "+14: UTC 18:59 waits a minute");

    /* the daily cap rolls over at local midnight, not UTC midnight */
    struct pacing_state st;
    memset(&st, 0, sizeof st);
    int64_t t = L(2024, 6, 1, 9, 0, 14 * 60);
    for (int i = 0; i < 20; i++) {
        t = pacing_next_send(&cold, &st, t);
        pacing_record_send(&cold, &st, t, 0.5);
    }
    int64_t last = t;
    CHECK_EQ_INT(pacing_sent_on(&st, last), 20, "+14: 20 sent today");
    CHECK_EQ_INT(pacing_sent_on(&st, U(2024, 6, 1, 9, 59)), 20,
                 "+14: still 20 at UTC 09:59 (23:59 local)");
    CHECK_EQ_INT(pacing_sent_on(&st, U(2024, 6, 1, 10, 0)), 0,
                 "+14: 0 at UTC 10:00 (local midnight)");
    CHECK_EQ_INT(pacing_room_today(&cold, &st, 0, U(2024, 6, 1, 9, 59)), 0,
                 "+14: no room before local midnight");
    CHECK_EQ_INT(pacing_room_today(&cold, &st, 0, U(2024, 6, 1, 10, 0)), 20,
                 "+14: full room after local midnight");
    CHECK_EQ_INT(pacing_next_send(&cold, &st, last), L(2024, 6, 2, 9, 0, 14 * 60),
                 "+14: capped, next send is 09:00 local tomorrow");

    zone("Pacific/Pago_Pago"); /* UTC-11 all year */
    CHECK_EQ_INT(pacing_local_day(U(2024, 6, 1, 10, 59)), civil_day(2024, 5, 31),
                 "-11: UTC 10:59 is still May 31");
    CHECK_EQ_INT(pacing_local_day(U(2024, 6, 1, 11, 0)), civil_day(2024, 6, 1),
                 "-11: UTC 11:00 is June 1");
    CHECK_EQ_INT(pacing_next_midnight(U(2024, 6, 1, 0, 0)), U(2024, 6, 1, 11, 0),
                 "-11: next midnight is UTC 11:00");
    CHECK_EQ_INT(pacing_window_open(&cold, U(2024, 6, 1, 12, 0)), U(2024, 6, 1, 20, 0),
                 "-11: UTC 12:00 (01:00 local) waits for UTC 20:00 (09:00 local)");
    CHECK_EQ_INT(pacing_window_open(&cold, U(2024, 6, 2, 8, 0)), U(2024, 6, 2, 20, 0),
                 "-11: UTC 08:00 (21:00 local) waits for the next local 09:00");
    struct pacing_profile night = prof(3, 0, 0, 0, 22 * 60, 6 * 60);
    CHECK_EQ_INT(pacing_window_open(&night, L(2024, 6, 1, 21, 0, -11 * 60)),
                 L(2024, 6, 1, 22, 0, -11 * 60), "-11: 22-06 opens at 22:00 local");
    CHECK_EQ_INT(pacing_window_open(&night, L(2024, 6, 2, 5, 0, -11 * 60)),
                 L(2024, 6, 2, 5, 0, -11 * 60), "-11: 22-06 is open at 05:00 local");
    /* a night window spans two local days: the cap of each day is its own */
    memset(&st, 0, sizeof st);
    t = L(2024, 6, 1, 22, 0, -11 * 60);
    for (int i = 0; i < 3; i++) {
        t = pacing_next_send(&night, &st, t);
        pacing_record_send(&night, &st, t, 0);
    }
    CHECK_EQ_INT(t, L(2024, 6, 1, 22, 0, -11 * 60), "-11: three sends at 22:00 with no gap");
    CHECK_EQ_INT(pacing_next_send(&night, &st, t), L(2024, 6, 2, 0, 0, -11 * 60),
                 "-11: capped at 22:00, the next send is at local midnight, still in the window");
    t = L(2024, 6, 2, 0, 0, -11 * 60);
    for (int i = 0; i < 3; i++) {
        t = pacing_next_send(&night, &st, t);
        pacing_record_send(&night, &st, t, 0);
    }
    CHECK_EQ_INT(pacing_next_send(&night, &st, t), L(2024, 6, 3, 0, 0, -11 * 60),
                 "-11: capped again after midnight, that day's 22:00 is capped too: next midnight");

    /* the same instant is on days two apart in +14 and -11 */
    int64_t x = U(2024, 6, 1, 10, 30);
    zone("Pacific/Kiritimati");
    int64_t dk = pacing_local_day(x);
    zone("Pacific/Pago_Pago");
    int64_t dp = pacing_local_day(x);
    CHECK_EQ_INT(dk - dp, 2, "UTC 10:30: June 2 in Kiritimati, May 31 in Pago Pago");

    zone("Asia/Kolkata"); /* +05:30: half-hour offset */
    CHECK_EQ_INT(pacing_window_open(&cold, U(2024, 6, 1, 3, 0)), U(2024, 6, 1, 3, 30),
                 "+05:30: UTC 03:00 (08:30 local) waits for UTC 03:30");
    CHECK_EQ_INT(pacing_next_midnight(U(2024, 6, 1, 12, 0)), U(2024, 6, 1, 18, 30),
                 "+05:30: midnight is UTC 18:30");
    zone("UTC");
}

static void test_dst(void)
{
    struct pacing_profile cold = prof(20, 5, 5000, 3000, 9 * 60, 21 * 60);
    struct pacing_profile night = prof(0, 0, 0, 0, 22 * 60, 6 * 60);

    /* Asia/Jerusalem 2024: IST +2 -> IDT +3 on Fri Mar 29 at 02:00; back on Sun Oct 27 at 02:00 */
    zone("Asia/Jerusalem");
    int64_t m29 = pacing_next_midnight(L(2024, 3, 28, 12, 0, 120));
    int64_t m30 = pacing_next_midnight(m29);
    CHECK_EQ_INT(m29, L(2024, 3, 29, 0, 0, 120), "Jerusalem: midnight starting Mar 29 (IST)");
    CHECK_EQ_INT(m30, L(2024, 3, 30, 0, 0, 180), "Jerusalem: midnight starting Mar 30 (IDT)");
    CHECK_EQ_INT(m30 - m29, 23 * HOUR, "Jerusalem: Mar 29 is 23 h long");
    CHECK_EQ_INT(pacing_next_midnight(L(2024, 10, 27, 12, 0, 120)) -
                     pacing_next_midnight(L(2024, 10, 26, 12, 0, 180)),
                 25 * HOUR, "Jerusalem: Oct 27 is 25 h long");
    CHECK_EQ_INT(pacing_local_day(L(2024, 3, 29, 1, 59, 120)), civil_day(2024, 3, 29),
                 "Jerusalem: 01:59 IST is Mar 29");
    CHECK_EQ_INT(pacing_local_day(L(2024, 3, 29, 23, 59, 180)), civil_day(2024, 3, 29),
                 "Jerusalem: 23:59 IDT is Mar 29");
    CHECK_EQ_INT(pacing_local_day(L(2024, 3, 30, 0, 0, 180)), civil_day(2024, 3, 30),
                 "Jerusalem: 00:00 IDT is Mar 30");
    CHECK_EQ_INT(pacing_window_open(&cold, L(2024, 3, 28, 21, 30, 120)), L(2024, 3, 29, 9, 0, 180),
                 "Jerusalem: Thu 21:30 IST waits for Fri 09:00 IDT (UTC 06:00, not 07:00)");
    CHECK_EQ_INT(pacing_window_open(&cold, L(2024, 10, 26, 22, 0, 180)), L(2024, 10, 27, 9, 0, 120),
                 "Jerusalem: Sat 22:00 IDT waits for Sun 09:00 IST (UTC 07:00)");
    CHECK_EQ_INT(pacing_window_open(&cold, L(2024, 3, 29, 8, 59, 180)), L(2024, 3, 29, 9, 0, 180),
                 "Jerusalem: 08:59 IDT on the change day waits a minute");
    CHECK_EQ_INT(pacing_window_open(&cold, L(2024, 3, 29, 20, 59, 180)),
                 L(2024, 3, 29, 20, 59, 180), "Jerusalem: 20:59 IDT on the change day is open");
    /* the night window over the change: open through 01:59 IST, then 03:00 IDT .. 05:59 IDT */
    CHECK_EQ_INT(pacing_window_open(&night, L(2024, 3, 29, 1, 59, 120)), L(2024, 3, 29, 1, 59, 120),
                 "Jerusalem: 22-06 open at 01:59 IST");
    CHECK_EQ_INT(pacing_window_open(&night, L(2024, 3, 29, 3, 0, 180)), L(2024, 3, 29, 3, 0, 180),
                 "Jerusalem: 22-06 open at 03:00 IDT");
    CHECK_EQ_INT(pacing_window_open(&night, L(2024, 3, 29, 6, 0, 180)), L(2024, 3, 29, 22, 0, 180),
                 "Jerusalem: 22-06 closes at 06:00 IDT, opens 22:00 IDT");
    /* the daily cap over the change */
    struct pacing_state st;
    memset(&st, 0, sizeof st);
    int64_t t = L(2024, 3, 28, 9, 0, 120);
    for (int i = 0; i < 20; i++) {
        t = pacing_next_send(&cold, &st, t);
        pacing_record_send(&cold, &st, t, 0.25);
    }
    CHECK_EQ_INT(pacing_next_send(&cold, &st, t), L(2024, 3, 29, 9, 0, 180),
                 "Jerusalem: capped on Thu, next send Fri 09:00 IDT");
    CHECK_EQ_INT(pacing_sent_on(&st, L(2024, 3, 28, 23, 59, 120)), 20,
                 "Jerusalem: 20 sent through Thu 23:59 IST");
    CHECK_EQ_INT(pacing_sent_on(&st, L(2024, 3, 29, 0, 0, 120)), 0,
                 "Jerusalem: 0 from Fri 00:00 IST");

    /* a window that exists only inside the skipped hour is not open that day */
    struct pacing_profile gap = prof(0, 0, 0, 0, 2 * 60, 3 * 60);
    int64_t w = pacing_window_open(&gap, L(2024, 3, 28, 12, 0, 120));
    CHECK(in_hours(&gap, w),
          "Jerusalem: 02:00-03:00 over the skipped hour gives an open moment (got local minute %d)",
          local_minute(w));
    CHECK_EQ_INT(w, L(2024, 3, 30, 2, 0, 180),
                 "Jerusalem: 02:00-03:00 opens Sat 02:00 IDT, Fri has no such hour");

    /* America/New_York 2024: EST -5 -> EDT -4 on Sun Mar 10 at 02:00; back on Sun Nov 3 at 02:00 */
    zone("America/New_York");
    CHECK_EQ_INT(pacing_window_open(&cold, L(2024, 3, 9, 22, 0, -300)), L(2024, 3, 10, 9, 0, -240),
                 "New York: Sat 22:00 EST waits for Sun 09:00 EDT (UTC 13:00)");
    CHECK_EQ_INT(pacing_window_open(&cold, L(2024, 11, 2, 22, 0, -240)), L(2024, 11, 3, 9, 0, -300),
                 "New York: Sat 22:00 EDT waits for Sun 09:00 EST (UTC 14:00)");
    CHECK_EQ_INT(pacing_next_midnight(L(2024, 3, 10, 12, 0, -240)) -
                     pacing_next_midnight(L(2024, 3, 9, 12, 0, -300)),
                 23 * HOUR, "New York: Mar 10 is 23 h long");
    CHECK_EQ_INT(pacing_next_midnight(L(2024, 11, 3, 12, 0, -300)) -
                     pacing_next_midnight(L(2024, 11, 2, 12, 0, -240)),
                 25 * HOUR, "New York: Nov 3 is 25 h long");
    CHECK_EQ_INT(pacing_window_open(&night, L(2024, 3, 10, 6, 0, -240)),
                 L(2024, 3, 10, 22, 0, -240),
                 "New York: 22-06 after the change closes at 06:00 EDT");
    CHECK_EQ_INT(pacing_window_open(&night, L(2024, 3, 9, 21, 0, -300)), L(2024, 3, 9, 22, 0, -300),
                 "New York: 22-06 opens at 22:00 EST the evening before");
    /* an opening inside the skipped hour: the first open moment is at or after 03:00 EDT */
    struct pacing_profile half = prof(0, 0, 0, 0, 2 * 60 + 30, 5 * 60);
    w = pacing_window_open(&half, L(2024, 3, 10, 0, 0, -300));
    CHECK(w >= L(2024, 3, 10, 3, 0, -240) && w <= L(2024, 3, 10, 3, 30, -240) && in_hours(&half, w),
          "New York: 02:30-05:00 on Mar 10 opens between 03:00 and 03:30 EDT, inside");

    /* a zone whose midnight is skipped: Asia/Beirut, Mar 31 2024 starts at 01:00 EEST */
    zone("Asia/Beirut");
    int64_t bm = pacing_next_midnight(L(2024, 3, 30, 12, 0, 120));
    CHECK_EQ_INT(bm, L(2024, 3, 31, 1, 0, 180),
                 "Beirut: the day without a midnight starts at 01:00 EEST");
    CHECK_EQ_INT(pacing_local_day(bm), civil_day(2024, 3, 31), "Beirut: that moment is Mar 31");
    CHECK_EQ_INT(pacing_local_day(bm - 1), civil_day(2024, 3, 30), "Beirut: 1 ms before is Mar 30");
    zone("UTC");
}

/* ---- the limits ---- */

static void test_gap_jitter(void)
{
    zone("UTC");
    struct pacing_profile p = prof(0, 0, 3000, 2000, 0, 0);
    struct pacing_state st;
    memset(&st, 0, sizeof st);
    int64_t t = U(2024, 1, 1, 12, 0);
    CHECK_EQ_INT(pacing_next_send(&p, &st, t), t, "a session that never sent may send now");

    static const struct {
        double rnd;
        int64_t gap;
    } g[] = {{0.0, 3000},  {0.5, 4000}, {0.25, 3500}, {0.9995, 4999},
             {-0.5, 3000}, {1.0, 4999}, {7.0, 4999}};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        memset(&st, 0, sizeof st);
        pacing_record_send(&p, &st, t, g[i].rnd);
        CHECK_EQ_INT(st.gap_ms, g[i].gap, "rnd %.4f draws a gap of %lld ms", g[i].rnd,
                     (long long)g[i].gap);
        CHECK_EQ_INT(pacing_next_send(&p, &st, t), t + g[i].gap,
                     "rnd %.4f: the next send waits that gap", g[i].rnd);
        CHECK_EQ_INT(pacing_next_send(&p, &st, t + g[i].gap + 10), t + g[i].gap + 10,
                     "rnd %.4f: later is fine", g[i].rnd);
    }

    /* bounds over many draws, and the draws spread over the range */
    srand(99);
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    int inside = 1, buckets[4] = {0};
    memset(&st, 0, sizeof st);
    for (int i = 0; i < 20000; i++) {
        double rnd = rand() / ((double)RAND_MAX + 1);
        pacing_record_send(&p, &st, t, rnd);
        int64_t gap = pacing_next_send(&p, &st, t) - t;
        inside &= gap >= 3000 && gap < 5000 && gap == st.gap_ms;
        lo = gap < lo ? gap : lo;
        hi = gap > hi ? gap : hi;
        buckets[(gap - 3000) / 500]++;
        t += 1;
    }
    CHECK(inside, "20000 gaps are all in [base, base+jitter) = [3000, 5000)");
    CHECK(lo < 3010 && hi > 4990, "the gaps reach both ends (min %lld, max %lld)", (long long)lo,
          (long long)hi);
    CHECK(buckets[0] > 4000 && buckets[1] > 4000 && buckets[2] > 4000 && buckets[3] > 4000,
          "each quarter of the jitter gets its share (%d %d %d %d)", buckets[0], buckets[1],
          buckets[2], buckets[3]);

    /* the cold default: 5-8 s */
    struct pacing_config c;
    pacing_config_default(&c);
    memset(&st, 0, sizeof st);
    pacing_record_send(&c.level[PACING_COLD], &st, t, 0.999999);
    CHECK(st.gap_ms >= 5000 && st.gap_ms < 8000, "cold gap at rnd 0.999999 is under 8 s (%lld)",
          (long long)st.gap_ms);
    /* no jitter: exactly the base */
    struct pacing_profile flat = prof(0, 0, 1234, 0, 0, 0);
    pacing_record_send(&flat, &st, t, 0.7);
    CHECK_EQ_INT(st.gap_ms, 1234, "no jitter: the gap is the base");
}

static void test_per_minute(void)
{
    zone("UTC");
    struct pacing_profile p = prof(0, 5, 0, 0, 0, 0);
    struct pacing_state st;
    memset(&st, 0, sizeof st);
    int64_t t0 = U(2024, 1, 1, 12, 0);
    for (int i = 0; i < 5; i++) {
        int64_t want = t0 + i * SEC;
        CHECK_EQ_INT(pacing_next_send(&p, &st, want), want, "per minute 5: send %d at +%d s", i + 1,
                     i);
        pacing_record_send(&p, &st, want, 0);
    }
    CHECK_EQ_INT(pacing_next_send(&p, &st, t0 + 5 * SEC), t0 + MIN,
                 "the 6th waits until the 1st is 60 s old");
    pacing_record_send(&p, &st, t0 + MIN, 0);
    CHECK_EQ_INT(pacing_next_send(&p, &st, t0 + MIN), t0 + SEC + MIN,
                 "the 7th waits until the 2nd is 60 s old");
    CHECK_EQ_INT(pacing_next_send(&p, &st, t0 + 2 * MIN), t0 + 2 * MIN,
                 "much later there is no wait");

    /* no cap: nothing waits */
    struct pacing_profile free_ = prof(0, 0, 0, 0, 0, 0);
    memset(&st, 0, sizeof st);
    for (int i = 0; i < 200; i++)
        pacing_record_send(&free_, &st, t0, 0);
    CHECK_EQ_INT(pacing_next_send(&free_, &st, t0), t0,
                 "per minute 0: 200 sends in one ms and no wait");

    /* every cap from 1 to the maximum over a long run: never more than cap in any 60 s */
    int all_ok = 1;
    char first_bad[120] = "";
    for (int cap = 1; cap <= PACING_MINUTE_MAX; cap += cap < 8 ? 1 : 7) {
        struct pacing_profile q = prof(0, cap, 100, 900, 0, 0);
        static struct hist h;
        h.n = 0;
        memset(&st, 0, sizeof st);
        srand((unsigned)cap);
        int64_t t = t0;
        for (int i = 0; i < 600; i++) {
            int64_t now = t + rand() % 3000;
            t = pacing_next_send(&q, &st, now);
            if (!allowed(&q, &h, t) || (t > now && allowed(&q, &h, t - 1))) {
                if (all_ok)
                    snprintf(first_bad, sizeof first_bad, "cap %d send %d at +%lld ms", cap, i,
                             (long long)(t - t0));
                all_ok = 0;
                break;
            }
            double rnd = rand() / ((double)RAND_MAX + 1);
            pacing_record_send(&q, &st, t, rnd);
            hist_add(&h, t, 100 + (int64_t)(rnd * 900));
        }
    }
    CHECK(all_ok, "caps 1..%d: each send is allowed and the earliest allowed%s%s",
          PACING_MINUTE_MAX, first_bad[0] ? ": " : "", first_bad);

    /* the ring holds the maximum: 64 per minute, the 65th waits for the 1st */
    struct pacing_profile max = prof(0, PACING_MINUTE_MAX, 0, 0, 0, 0);
    memset(&st, 0, sizeof st);
    for (int i = 0; i < 3 * PACING_MINUTE_MAX + 5; i++)
        pacing_record_send(&max, &st, t0 - 10 * MIN + i, 0); /* old history wraps the ring */
    for (int i = 0; i < PACING_MINUTE_MAX; i++)
        pacing_record_send(&max, &st, t0 + i * 100, 0);
    CHECK_EQ_INT(pacing_next_send(&max, &st, t0 + PACING_MINUTE_MAX * 100), t0 + MIN,
                 "per minute 64 over a wrapped ring: the 65th waits for the 1st to be 60 s old");
}

static void test_per_day(void)
{
    zone("UTC");
    struct pacing_profile p = prof(3, 0, 1000, 0, 0, 0);
    struct pacing_state st;
    memset(&st, 0, sizeof st);
    int64_t d = U(2024, 2, 28, 0, 0);
    int64_t t = d + 10 * HOUR;
    for (int i = 0; i < 3; i++) {
        t = pacing_next_send(&p, &st, t);
        CHECK_EQ_INT(t, d + 10 * HOUR + i * SEC, "per day 3: send %d one gap after the last",
                     i + 1);
        pacing_record_send(&p, &st, t, 0);
    }
    CHECK_EQ_INT(pacing_sent_on(&st, t), 3, "3 sent today");
    CHECK_EQ_INT(pacing_next_send(&p, &st, t), d + DAY, "the 4th waits for midnight (always open)");
    CHECK_EQ_INT(pacing_next_send(&p, &st, d + DAY - 1), d + DAY,
                 "1 ms before midnight still waits");
    CHECK_EQ_INT(pacing_next_send(&p, &st, d + DAY + 5), d + DAY + 5,
                 "after midnight there is room");

    /* with active hours: the next day's opening */
    struct pacing_profile cold = prof(3, 0, 1000, 0, 9 * 60, 21 * 60);
    CHECK_EQ_INT(pacing_next_send(&cold, &st, t), d + DAY + 9 * HOUR,
                 "capped at 10:00, next at 09:00 tomorrow");
    /* Feb 28 -> Feb 29 (leap year) -> Mar 1 */
    CHECK_EQ_INT(pacing_local_day(d + DAY), civil_day(2024, 2, 29), "2024-02-29 exists");

    /* rollover: the first send of a new day starts the count again, failures too */
    pacing_record_failure(&st, t);
    pacing_record_failure(&st, t);
    CHECK_EQ_INT(pacing_failed_on(&st, t), 2, "2 failures today");
    CHECK_EQ_INT(pacing_failed_on(&st, d + DAY), 0, "no failures counted for tomorrow");
    pacing_record_send(&p, &st, d + DAY + 9 * HOUR, 0);
    CHECK_EQ_INT(pacing_sent_on(&st, d + DAY + 9 * HOUR), 1, "tomorrow's first send counts 1");
    CHECK_EQ_INT(pacing_failed_on(&st, d + DAY + 9 * HOUR), 0, "and the failures start again");
    CHECK_EQ_INT(pacing_sent_on(&st, t), 0, "the state keeps only its latest day");
    pacing_record_failure(&st, d + 2 * DAY + HOUR);
    CHECK_EQ_INT(pacing_failed_on(&st, d + 2 * DAY + HOUR), 1,
                 "a failure on a new day rolls the day over");
    CHECK_EQ_INT(pacing_sent_on(&st, d + 2 * DAY + HOUR), 0, "and resets the sent count");
    CHECK_EQ_INT(pacing_next_send(&p, &st, d + 2 * DAY + HOUR), d + 2 * DAY + HOUR,
                 "failures do not hold back sends");

    /* no daily cap */
    struct pacing_profile nocap = prof(0, 0, 0, 0, 0, 0);
    memset(&st, 0, sizeof st);
    for (int i = 0; i < 5000; i++)
        pacing_record_send(&nocap, &st, d + i, 0);
    CHECK_EQ_INT(pacing_next_send(&nocap, &st, d + 5000), d + 5000,
                 "per day 0: 5000 sent and no wait");
    CHECK_EQ_INT(pacing_sent_on(&st, d + 5000), 5000, "the count still runs without a cap");
}

static void test_combined(void)
{
    zone("UTC");
    int64_t d = U(2024, 7, 15, 0, 0);
    struct pacing_state st;

    /* the gap pushes past the close: the next opening */
    struct pacing_profile p = prof(0, 0, 20 * MIN, 0, 9 * 60, 21 * 60);
    memset(&st, 0, sizeof st);
    pacing_record_send(&p, &st, d + 20 * HOUR + 50 * MIN, 0);
    CHECK_EQ_INT(pacing_next_send(&p, &st, d + 20 * HOUR + 51 * MIN), d + DAY + 9 * HOUR,
                 "a 20 min gap from 20:50 runs past 21:00: tomorrow 09:00");

    /* the per-minute edge pushes past the close */
    struct pacing_profile q = prof(0, 2, 0, 0, 9 * 60, 21 * 60);
    memset(&st, 0, sizeof st);
    pacing_record_send(&q, &st, d + 20 * HOUR + 59 * MIN + 30 * SEC, 0);
    pacing_record_send(&q, &st, d + 20 * HOUR + 59 * MIN + 31 * SEC, 0);
    CHECK_EQ_INT(pacing_next_send(&q, &st, d + 20 * HOUR + 59 * MIN + 32 * SEC), d + DAY + 9 * HOUR,
                 "2 per minute at 20:59:30: the edge 21:00:30 is closed, tomorrow 09:00");

    /* gap inside the window */
    memset(&st, 0, sizeof st);
    pacing_record_send(&p, &st, d + 10 * HOUR, 0);
    CHECK_EQ_INT(pacing_next_send(&p, &st, d + 10 * HOUR), d + 10 * HOUR + 20 * MIN,
                 "gap inside the window");

    /* the night window with a daily cap: capped at 23:00, open again at midnight */
    struct pacing_profile n = prof(2, 0, 0, 0, 22 * 60, 6 * 60);
    memset(&st, 0, sizeof st);
    pacing_record_send(&n, &st, d + 23 * HOUR, 0);
    pacing_record_send(&n, &st, d + 23 * HOUR, 0);
    CHECK_EQ_INT(pacing_next_send(&n, &st, d + 23 * HOUR), d + DAY,
                 "22-06 capped at 23:00: midnight");
    pacing_record_send(&n, &st, d + DAY + HOUR, 0);
    pacing_record_send(&n, &st, d + DAY + HOUR, 0);
    CHECK_EQ_INT(pacing_next_send(&n, &st, d + DAY + HOUR), d + 2 * DAY,
                 "22-06 capped at 01:00: the same day's 22:00 is capped too, midnight");

    /* property: random profiles and histories, in a zone with a half-hour offset; the answer
     * keeps every rule (checked by an independent model) and is the earliest that does */
    zone("Asia/Kolkata");
    srand(4242);
    int ok = 1, runs = 0;
    char first_bad[160] = "";
    static struct hist h;
    for (int r = 0; r < 60 && ok; r++) {
        struct pacing_profile pr;
        pr.per_day = 1 + rand() % 40;
        pr.per_minute = rand() % 8;
        pr.gap_base_ms = rand() % 20000;
        pr.gap_jitter_ms = rand() % 10000;
        pr.open_min = rand() % MIN_PER_DAY;
        pr.close_min = rand() % MIN_PER_DAY;
        if (r % 5 == 0)
            pr.close_min = pr.open_min;
        memset(&st, 0, sizeof st);
        h.n = 0;
        int64_t now = U(2024, 1, 1, 0, 0) + (int64_t)(rand() % 365) * DAY;
        for (int i = 0; i < 300 && ok; i++) {
            now += rand() % 4 == 0 ? rand() % (6 * HOUR) : rand() % 20000;
            int64_t t = pacing_next_send(&pr, &st, now);
            int good = t >= now && allowed(&pr, &h, t);
            /* every earlier moment breaks a rule: probe the one just before and a few more */
            if (good && t > now) {
                good = !allowed(&pr, &h, t - 1) && !allowed(&pr, &h, now);
                for (int k = 0; k < 8 && good; k++)
                    good = !allowed(
                        &pr, &h,
                        now + (int64_t)((double)rand() / RAND_MAX * (double)(t - now - 1)));
            }
            if (!good) {
                snprintf(first_bad, sizeof first_bad,
                         "profile %d,%d,%d,%d,%d-%d, send %d, now %lld -> %lld", pr.per_day,
                         pr.per_minute, pr.gap_base_ms, pr.gap_jitter_ms, pr.open_min, pr.close_min,
                         i, (long long)now, (long long)t);
                ok = 0;
                break;
            }
            double rnd = (double)rand() / ((double)RAND_MAX + 1);
            pacing_record_send(&pr, &st, t, rnd);
            hist_add(&h, t, pr.gap_base_ms + (int64_t)(rnd * pr.gap_jitter_ms));
            now = t;
            runs++;
        }
    }
    CHECK(ok, "%d random sends: each keeps every rule and is the earliest allowed%s%s", runs,
          first_bad[0] ? ": " : "", first_bad);
    zone("UTC");
}

static void test_room_today(void)
{
    zone("Asia/Jerusalem");
    struct pacing_config c;
    pacing_config_default(&c);
    const struct pacing_profile *cold = &c.level[PACING_COLD];
    struct pacing_state st;
    memset(&st, 0, sizeof st);
    int64_t t = L(2024, 5, 5, 10, 0, 180);
    CHECK_EQ_INT(pacing_room_today(cold, &st, 0, t), 20, "a fresh cold session has room for 20");
    CHECK_EQ_INT(pacing_room_today(cold, &st, 7, t), 13, "7 queued leave 13");
    CHECK_EQ_INT(pacing_room_today(cold, &st, 25, t), -5, "25 queued: room is negative (-5)");

    /* enqueue until refused: sent today + queued reach the cap exactly */
    for (int i = 0; i < 6; i++) {
        t = pacing_next_send(cold, &st, t);
        pacing_record_send(cold, &st, t, 0.5);
    }
    int queued = 0, refused = 0;
    for (int i = 0; i < 40; i++) {
        if (pacing_room_today(cold, &st, queued, t) > 0)
            queued++;
        else
            refused++;
    }
    CHECK_EQ_INT(queued, 14, "6 sent: 14 more accepted");
    CHECK_EQ_INT(refused, 26, "and the other 26 refused");
    CHECK_EQ_INT(pacing_room_today(cold, &st, queued, t), 0, "room is 0 at the cap");
    /* tomorrow the queued ones still count, the sent ones no longer do */
    int64_t tomorrow = L(2024, 5, 6, 0, 0, 180);
    CHECK_EQ_INT(pacing_room_today(cold, &st, queued, tomorrow - 1), 0, "23:59:59.999: still 0");
    CHECK_EQ_INT(pacing_room_today(cold, &st, queued, tomorrow), 6,
                 "local midnight: 20 - 14 queued = 6");
    CHECK_EQ_INT(pacing_room_today(&c.level[PACING_WARM], &st, queued, t), 80,
                 "warm today: 100 - 6 - 14 = 80");
    CHECK_EQ_INT(pacing_room_today(&c.level[PACING_HOT], &st, 0, t), 494,
                 "hot today: 500 - 6 = 494");
    struct pacing_profile nocap = prof(0, 5, 0, 0, 0, 0);
    CHECK_EQ_INT(pacing_room_today(&nocap, &st, 1000000, t), INT32_MAX,
                 "no daily cap: INT32_MAX, whatever is queued");
    zone("UTC");
}

static void test_typing(void)
{
    struct pacing_config c;
    pacing_config_default(&c);
    CHECK_EQ_INT(pacing_typing_ms(&c, 0), c.typing_min_ms, "an empty text types for the minimum");
    CHECK_EQ_INT(pacing_typing_ms(&c, 10), c.typing_min_ms + 10 * c.typing_per_char_ms,
                 "10 chars: min + 10 per char");
    CHECK(pacing_typing_ms(&c, 40) > pacing_typing_ms(&c, 20), "40 chars type longer than 20");
    CHECK_EQ_INT(pacing_typing_ms(&c, 100000), c.typing_max_ms, "a long text is capped");
    CHECK_EQ_INT(pacing_typing_ms(&c, (size_t)1 << 40), c.typing_max_ms, "a huge length is capped");
    int mono = 1, capped_from = -1;
    for (size_t n = 1; n <= 5000; n++) {
        int a = pacing_typing_ms(&c, n - 1), b = pacing_typing_ms(&c, n);
        mono &= b >= a && b <= c.typing_max_ms;
        if (capped_from < 0 && b == c.typing_max_ms)
            capped_from = (int)n;
    }
    CHECK(mono, "typing time never shrinks as the text grows and never passes the cap");
    int want_cap =
        (c.typing_max_ms - c.typing_min_ms + c.typing_per_char_ms - 1) / c.typing_per_char_ms;
    CHECK_EQ_INT(capped_from, want_cap, "the cap is reached at %d chars", want_cap);

    struct pacing_config k = c;
    k.typing_min_ms = 300;
    k.typing_per_char_ms = 7;
    k.typing_max_ms = 1000;
    CHECK_EQ_INT(pacing_typing_ms(&k, 50), 650, "custom: 300 + 50 * 7");
    CHECK_EQ_INT(pacing_typing_ms(&k, 101), 1000, "custom: capped at 1000");
    k.typing_min_ms = 0;
    k.typing_per_char_ms = 1;
    k.typing_max_ms = 10;
    CHECK_EQ_INT(pacing_typing_ms(&k, 10), 10,
                 "custom: 1 ms a char reaches the cap of 10 at 10 chars");
    CHECK_EQ_INT(pacing_typing_ms(&k, 11), 10, "custom: 11 chars stay at the cap");
    k.typing_min_ms = 300;
    k.typing_max_ms = 1000;
    k.typing_per_char_ms = 0;
    CHECK_EQ_INT(pacing_typing_ms(&k, 5000), 300, "custom: 0 per char keeps the minimum");
}

int main(void)
{
    test_default_config();
    test_levels();
    test_level_names();
    test_profile_parse_good();
    test_profile_parse_bad();
    test_profile_roundtrip();
    test_window_utc();
    test_far_zones();
    test_dst();
    test_gap_jitter();
    test_per_minute();
    test_per_day();
    test_combined();
    test_room_today();
    test_typing();
    return TAP_DONE();
}
