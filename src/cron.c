#include "cron.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "pacing.h"
#include "util.h"

#define JOBS_MAX 32

struct job {
    const char *name;
    long period_ms; /* 0: daily */
    int minute;     /* daily: minutes after local midnight */
    void (*fn)(void);
    int64_t next;
    uint64_t runs;
};

static struct job jobs[JOBS_MAX];
static int njobs;
static struct event *tick_ev;

static int64_t next_daily(int minute, int64_t after)
{
    struct pacing_profile at = {0, 0, 0, 0, minute, minute + 1};
    return pacing_window_open(&at, after + 61000);
}

static void arm(void)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < njobs; i++)
        if (jobs[i].next < next)
            next = jobs[i].next;
    if (next == INT64_MAX)
        return;
    int64_t ms = next - util_now_ms();
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(tick_ev, &tv);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = util_now_ms();
    for (int i = 0; i < njobs; i++) {
        struct job *j = &jobs[i];
        if (j->next > now)
            continue;
        j->runs++;
        j->fn();
        j->next = j->period_ms ? now + j->period_ms : next_daily(j->minute, now);
    }
    arm();
}

static void add(const char *name, long period_ms, int minute, int64_t first, void (*fn)(void))
{
    if (njobs == JOBS_MAX) {
        log_error("cron", "too many jobs; not scheduled job=%s", name);
        return;
    }
    jobs[njobs++] = (struct job){name, period_ms, minute, fn, first, 0};
    arm();
}

void cron_every(const char *name, long period_ms, int now, void (*fn)(void))
{
    if (period_ms < 1)
        period_ms = 1;
    add(name, period_ms, 0, util_now_ms() + (now ? 0 : period_ms), fn);
}

void cron_daily(const char *name, int minute, void (*fn)(void))
{
    add(name, 0, minute, next_daily(minute, util_now_ms()), fn);
}

void cron_each(void (*fn)(const char *name, uint64_t runs, void *arg), void *arg)
{
    for (int i = 0; i < njobs; i++)
        fn(jobs[i].name, jobs[i].runs, arg);
}

void cron_init(struct event_base *base)
{
    njobs = 0;
    tick_ev = evtimer_new(base, tick_cb, NULL);
}

void cron_shutdown(void)
{
    if (tick_ev)
        event_free(tick_ev);
    tick_ev = NULL;
    njobs = 0;
}
