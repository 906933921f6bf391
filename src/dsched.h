/* dsched: the dispatcher's schedule, pure. One entry per session with its pacing state,
 * its count of queued messages and whether a message is out with the worker; a min-heap
 * of the sessions that could send, keyed by the earliest moment they may. The dispatcher
 * (dispatch.c) drives it with the wall clock; tests and the simulation drive it with a
 * fake one. Entries are owned by the schedule; pointers stay valid until dsched_remove. */
#ifndef SB_DSCHED_H
#define SB_DSCHED_H

#include <stddef.h>
#include <stdint.h>

#include "pacing.h"

struct dsched_sess {
    int64_t id;
    struct pacing_state pace;
    enum pacing_level level; /* the profile in force; the caller keeps it current */
    int queued;              /* messages waiting (status queued) */
    int inflight;            /* 1 while a message is with the worker */
    int ready;               /* 1 while the session is connected */
    int64_t hold_until;      /* the head message waits for this (a retry's back-off) */
    int64_t due;             /* when it may send next; -1 while out of the heap */
    size_t heap_idx;
    void *owner;             /* the caller's */
};

struct dsched;

/* cfg is borrowed for the schedule's life */
struct dsched *dsched_new(const struct pacing_config *cfg);
void dsched_free(struct dsched *d);

/* the entry of session id, created empty (not ready, nothing queued) when missing */
struct dsched_sess *dsched_get(struct dsched *d, int64_t id);
/* NULL when missing */
struct dsched_sess *dsched_find(struct dsched *d, int64_t id);
void dsched_remove(struct dsched *d, int64_t id);
/* calls fn for every entry */
void dsched_each(struct dsched *d, void (*fn)(struct dsched_sess *s, void *arg), void *arg);

const struct pacing_profile *dsched_profile(const struct dsched *d, const struct dsched_sess *s);

/* After any change to an entry: puts it in the heap at its due time when it could send
 * (ready, nothing in flight, something queued), else takes it out. */
void dsched_update(struct dsched *d, struct dsched_sess *s, int64_t now);
/* the earliest due time, INT64_MAX when nothing is due ever */
int64_t dsched_next_due(const struct dsched *d);
/* an entry due at or before now, taken out of the heap; NULL when none */
struct dsched_sess *dsched_pop_due(struct dsched *d, int64_t now);

/* A message of s goes to the worker at now: one fewer queued, one in flight, the send
 * counted against the limits (rnd in [0,1) draws the next gap). */
void dsched_dispatched(struct dsched *d, struct dsched_sess *s, int64_t now, double rnd);
/* The message in flight is settled (sent, failed, or back in the queue with requeued). */
void dsched_settled(struct dsched *d, struct dsched_sess *s, int requeued, int64_t now);

#endif
