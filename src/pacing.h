/* pacing: anti-ban pacing decisions (SPEC §4.2). Pure: every function takes the time
 * it decides for; nothing reads a clock. "Local" means the process's time zone (TZ,
 * set from TIMEZONE at start-up): days and active hours follow it.
 * Times are ms since the epoch. */
#ifndef SB_PACING_H
#define SB_PACING_H

#include <stddef.h>
#include <stdint.h>

enum pacing_level { PACING_COLD, PACING_WARM, PACING_HOT, PACING__LEVELS };

/* the most sends a per-minute cap may allow (the state keeps this many send times) */
#define PACING_MINUTE_MAX 64
#define MIN_PER_DAY 1440

struct pacing_profile {
    int per_day;       /* 0 = no daily cap */
    int per_minute;    /* 0 = no per-minute cap; else 1..PACING_MINUTE_MAX */
    int gap_base_ms;   /* gap = base + random * jitter, drawn at each send */
    int gap_jitter_ms;
    int open_min;      /* active hours: [open, close) in minutes after local midnight; */
    int close_min;     /* close < open crosses midnight; open == close: always open */
};

struct pacing_config {
    struct pacing_profile level[PACING__LEVELS];
    int warm_after_days; /* account age that makes an account warm, then hot */
    int hot_after_days;
    int typing_min_ms;   /* typingMs = min(max, min + chars * per_char) */
    int typing_per_char_ms;
    int typing_max_ms;
};

/* What a session has sent: enough to decide the next send. */
struct pacing_state {
    int64_t last_send;   /* 0 = never */
    int64_t gap_ms;      /* drawn at last_send; the next send waits for it */
    int64_t day;         /* local day (pacing_local_day) that sent_today counts */
    int sent_today;
    int failed_today;
    int64_t recent[PACING_MINUTE_MAX]; /* the latest send times, a ring */
    int nrecent, head;                 /* head: where the next time goes */
};

/* the SPEC §4.2 table */
void pacing_config_default(struct pacing_config *c);
/* "per_day,per_minute,gap_base_ms,gap_jitter_ms,HH:MM-HH:MM" (0 = no cap; 24:00 allowed
 * as a closing time). 0, or -1 with err naming the part that is wrong. */
int pacing_profile_parse(const char *text, struct pacing_profile *out, char *err, size_t errlen);
/* only the active hours, "HH:MM-HH:MM", into a profile with no caps */
int pacing_profile_parse_hours(const char *text, struct pacing_profile *out, char *err, size_t errlen);
/* the same text back; out holds 64 bytes */
void pacing_profile_format(const struct pacing_profile *p, char *out, size_t outlen);

const char *pacing_level_name(enum pacing_level l);
/* -1 when name is not a level */
int pacing_level_parse(const char *name);
/* by account age since the first connection; a session that never connected is cold */
enum pacing_level pacing_level_for(const struct pacing_config *c, int64_t first_connected_ms,
                                   int64_t now_ms);

/* the local calendar day of t, as days since 1970-01-01 */
int64_t pacing_local_day(int64_t t);
/* the first local midnight after t */
int64_t pacing_next_midnight(int64_t t);
/* the first moment >= t inside the profile's active hours */
int64_t pacing_window_open(const struct pacing_profile *p, int64_t t);
/* sends counted for the local day of t */
int pacing_sent_on(const struct pacing_state *st, int64_t t);
int pacing_failed_on(const struct pacing_state *st, int64_t t);

/* The earliest moment >= now at which one more send keeps every rule: the gap after the
 * last send, the per-minute cap over any 60 s, the active hours and the daily cap. */
int64_t pacing_next_send(const struct pacing_profile *p, const struct pacing_state *st, int64_t now);
/* Records a send at t; rnd in [0,1) draws the gap that the next send waits for. */
void pacing_record_send(const struct pacing_profile *p, struct pacing_state *st, int64_t t, double rnd);
/* Records a final failure at t (failedToday). */
void pacing_record_failure(struct pacing_state *st, int64_t t);
/* Takes back the failure recorded at failed_at (a message given up on that the worker
 * had sent after all), if it still counts today. 1 when it did, else 0. */
int pacing_forget_failure(struct pacing_state *st, int64_t failed_at);
/* Sends the profile still allows on the local day of now, less `queued` waiting ones;
 * INT32_MAX without a daily cap. May be negative. */
int64_t pacing_room_today(const struct pacing_profile *p, const struct pacing_state *st, int queued,
                          int64_t now);

/* how long the worker shows "typing…" for a text of `chars` characters */
int pacing_typing_ms(const struct pacing_config *c, size_t chars);

#endif
