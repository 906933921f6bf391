/* cron: the one place for periodic housekeeping (DESIGN.md): each job has a period or a
 * local time of day, one timer wakes the loop for the earliest. Jobs: pruning of events,
 * deliveries and idempotency keys, message expiry, re-checks of bad proxies, trust-level
 * changes, the daily backup. */
#ifndef SB_CRON_H
#define SB_CRON_H

#include <stdint.h>

struct event_base;

void cron_init(struct event_base *base);
void cron_shutdown(void);

/* fn every period_ms (the first run after one period, or at once with now) */
void cron_every(const char *name, long period_ms, int now, void (*fn)(void));
/* fn every day at minute (0..1439) after local midnight (TIMEZONE) */
void cron_daily(const char *name, int minute, void (*fn)(void));

/* runs per job, for /metrics: fn(name, runs, arg) */
void cron_each(void (*fn)(const char *name, uint64_t runs, void *arg), void *arg);

#endif
