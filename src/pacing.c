#include "pacing.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define DAY_MS (24LL * 3600 * 1000)
#define MINUTE_MS 60000LL

static const char *const level_names[PACING__LEVELS] = {"cold", "warm", "hot"};

void pacing_config_default(struct pacing_config *c)
{
    memset(c, 0, sizeof *c);
    c->level[PACING_COLD] = (struct pacing_profile){20, 5, 5000, 3000, 9 * 60, 21 * 60};
    c->level[PACING_WARM] = (struct pacing_profile){100, 15, 3000, 2000, 8 * 60, 22 * 60};
    c->level[PACING_HOT] = (struct pacing_profile){500, 30, 2000, 2000, 7 * 60, 23 * 60};
    c->warm_after_days = 3;
    c->hot_after_days = 14;
    c->typing_min_ms = 1000;
    c->typing_per_char_ms = 50;
    c->typing_max_ms = 8000;
}

const char *pacing_level_name(enum pacing_level l)
{
    return l >= 0 && l < PACING__LEVELS ? level_names[l] : "cold";
}

int pacing_level_parse(const char *name)
{
    for (int i = 0; i < PACING__LEVELS; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

enum pacing_level pacing_level_for(const struct pacing_config *c, int64_t first, int64_t now)
{
    if (first <= 0 || now < first)
        return PACING_COLD;
    int64_t age = now - first;
    if (age >= (int64_t)c->hot_after_days * DAY_MS)
        return PACING_HOT;
    if (age >= (int64_t)c->warm_after_days * DAY_MS)
        return PACING_WARM;
    return PACING_COLD;
}

/* ---- profiles as text ---- */

/* a whole number in [min,max] ending at one of the stop characters; advances *p */
static int number(const char **p, long min, long max, const char *stops, long *out)
{
    const char *s = *p;
    long v = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9') {
        if (++digits > 9)
            return -1;
        v = v * 10 + (*s - '0');
        s++;
    }
    if (!digits || v < min || v > max || !*s || !strchr(stops, *s))
        return -1;
    *out = v;
    *p = s + 1;
    return 0;
}

static int clock_time(const char **p, const char *stops, int *minutes)
{
    long h, m;
    if (number(p, 0, 24, ":", &h) < 0)
        return -1;
    const char *s = *p;
    if (!(s[0] >= '0' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9'))
        return -1;
    m = (s[0] - '0') * 10 + (s[1] - '0');
    if (!strchr(stops, s[2]) || (h == 24 && m != 0))
        return -1;
    *p = s + (s[2] ? 3 : 2);
    *minutes = (int)(h * 60 + m);
    return 0;
}

int pacing_profile_parse(const char *text, struct pacing_profile *out, char *err, size_t errlen)
{
    static const char *const parts[] = {"per_day (0-1000000)", "per_minute (0-64)",
                                        "gap_base_ms (0-3600000)", "gap_jitter_ms (0-3600000)"};
    static const long max[] = {1000000, PACING_MINUTE_MAX, 3600000, 3600000};
    const char *p = text;
    long v[4];
    struct pacing_profile r;
    for (int i = 0; i < 4; i++) {
        if (number(&p, 0, max[i], ",", &v[i]) < 0) {
            snprintf(err, errlen, "part %d must be %s followed by a comma; the form is "
                     "per_day,per_minute,gap_base_ms,gap_jitter_ms,HH:MM-HH:MM", i + 1, parts[i]);
            return -1;
        }
    }
    if (clock_time(&p, "-", &r.open_min) < 0 || clock_time(&p, "", &r.close_min) < 0 || *p) {
        snprintf(err, errlen, "the active hours must be HH:MM-HH:MM (00:00-24:00 for always)");
        return -1;
    }
    if (r.open_min == MIN_PER_DAY)
        r.open_min = 0;
    if (r.close_min == MIN_PER_DAY && r.open_min == 0)
        r.close_min = 0;
    r.per_day = (int)v[0];
    r.per_minute = (int)v[1];
    r.gap_base_ms = (int)v[2];
    r.gap_jitter_ms = (int)v[3];
    *out = r;
    return 0;
}

int pacing_profile_parse_hours(const char *text, struct pacing_profile *out, char *err, size_t errlen)
{
    char full[64];
    snprintf(full, sizeof full, "0,0,0,0,%.20s", text);
    if (pacing_profile_parse(full, out, err, errlen) < 0) {
        snprintf(err, errlen, "must be HH:MM-HH:MM (00:00-24:00 for always)");
        return -1;
    }
    return 0;
}

void pacing_profile_format(const struct pacing_profile *p, char *out, size_t outlen)
{
    /* always open reads 00:00-24:00; open == close at another hour is written as it is */
    int close = p->close_min == 0 && p->open_min == 0 ? MIN_PER_DAY : p->close_min;
    snprintf(out, outlen, "%d,%d,%d,%d,%02d:%02d-%02d:%02d", p->per_day, p->per_minute,
             p->gap_base_ms, p->gap_jitter_ms, p->open_min / 60, p->open_min % 60, close / 60,
             close % 60);
}

/* ---- local calendar ---- */

static void local_tm(int64_t t, struct tm *tm)
{
    time_t s = (time_t)(t >= 0 ? t / 1000 : (t - 999) / 1000);
    localtime_r(&s, tm);
}

/* days from 1970-01-01 to y-m-d (proleptic Gregorian) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t pacing_local_day(int64_t t)
{
    struct tm tm;
    local_tm(t, &tm);
    return days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* the local time `minute` minutes after midnight of the day `days_ahead` after t's day;
 * with a DST gap, mktime moves it to the first valid moment */
static int64_t local_at(int64_t t, int days_ahead, int minute)
{
    struct tm tm;
    local_tm(t, &tm);
    tm.tm_mday += days_ahead;
    tm.tm_hour = minute / 60;
    tm.tm_min = minute % 60;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * 1000;
}

int64_t pacing_next_midnight(int64_t t)
{
    int64_t m = local_at(t, 1, 0);
    /* a day is never shorter than 23 h; guard against a zone whose midnight is skipped */
    return m > t ? m : t + DAY_MS;
}

static int minute_of_day(int64_t t)
{
    struct tm tm;
    local_tm(t, &tm);
    return tm.tm_hour * 60 + tm.tm_min;
}

static int inside(const struct pacing_profile *p, int64_t t)
{
    int m = minute_of_day(t);
    return p->open_min < p->close_min ? m >= p->open_min && m < p->close_min
                                      : m >= p->open_min || m < p->close_min;
}

int64_t pacing_window_open(const struct pacing_profile *p, int64_t t)
{
    if (p->open_min == p->close_min)
        return t;
    if (inside(p, t))
        return t;
    /* the opening of today or a later day; one that falls in a skipped DST hour moves to the
     * first valid moment, which can be past the close: then that day has no window */
    for (int days = 0; days < 4; days++) {
        int64_t open = local_at(t, days, p->open_min);
        if (open > t && inside(p, open))
            return open;
    }
    return t;
}

int pacing_sent_on(const struct pacing_state *st, int64_t t)
{
    return st->day == pacing_local_day(t) ? st->sent_today : 0;
}

int pacing_failed_on(const struct pacing_state *st, int64_t t)
{
    return st->day == pacing_local_day(t) ? st->failed_today : 0;
}

/* ---- the decision ---- */

/* the send time n sends back (1 = the latest); needs n <= nrecent */
static int64_t recent_back(const struct pacing_state *st, int n)
{
    int i = (st->head - n + PACING_MINUTE_MAX * 2) % PACING_MINUTE_MAX;
    return st->recent[i];
}

int64_t pacing_next_send(const struct pacing_profile *p, const struct pacing_state *st, int64_t now)
{
    int64_t t = now;
    if (st->last_send > 0 && st->last_send + st->gap_ms > t)
        t = st->last_send + st->gap_ms;
    /* at most per_minute sends in any 60 s: the per_minute-th latest must be 60 s old */
    if (p->per_minute > 0 && st->nrecent >= p->per_minute) {
        int64_t edge = recent_back(st, p->per_minute) + MINUTE_MS;
        if (edge > t)
            t = edge;
    }
    /* each step moves t to a later day or into the window, so this settles quickly; the
     * bound only guards a profile whose cap can never be met */
    for (int i = 0; i < 8; i++) {
        t = pacing_window_open(p, t);
        if (p->per_day <= 0 || pacing_sent_on(st, t) < p->per_day)
            return t;
        t = pacing_next_midnight(t);
    }
    return t;
}

void pacing_record_send(const struct pacing_profile *p, struct pacing_state *st, int64_t t, double rnd)
{
    int64_t day = pacing_local_day(t);
    if (st->day != day) {
        st->day = day;
        st->sent_today = 0;
        st->failed_today = 0;
    }
    st->sent_today++;
    st->last_send = t;
    if (rnd < 0)
        rnd = 0;
    if (rnd >= 1)
        rnd = 0.999999;
    st->gap_ms = p->gap_base_ms + (int64_t)(rnd * p->gap_jitter_ms);
    st->recent[st->head] = t;
    st->head = (st->head + 1) % PACING_MINUTE_MAX;
    if (st->nrecent < PACING_MINUTE_MAX)
        st->nrecent++;
}

void pacing_record_failure(struct pacing_state *st, int64_t t)
{
    int64_t day = pacing_local_day(t);
    if (st->day != day) {
        st->day = day;
        st->sent_today = 0;
        st->failed_today = 0;
    }
    st->failed_today++;
}

int pacing_forget_failure(struct pacing_state *st, int64_t failed_at)
{
    if (st->day != pacing_local_day(failed_at) || st->failed_today <= 0)
        return 0;
    st->failed_today--;
    return 1;
}

int64_t pacing_room_today(const struct pacing_profile *p, const struct pacing_state *st, int queued,
                          int64_t now)
{
    if (p->per_day <= 0)
        return INT32_MAX;
    return (int64_t)p->per_day - pacing_sent_on(st, now) - queued;
}

int pacing_typing_ms(const struct pacing_config *c, size_t chars)
{
    int64_t ms = c->typing_min_ms + (int64_t)chars * c->typing_per_char_ms;
    if (ms > c->typing_max_ms)
        ms = c->typing_max_ms;
    return ms < 0 ? 0 : (int)ms;
}
