#include "calls.h"

#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "callfsm.h"
#include "callmatch.h"
#include "callpace.h"
#include "config.h"
#include "events.h"
#include "histo.h"
#include "http.h"
#include "log.h"
#include "pacing.h"
#include "store.h"
#include "twilio.h"
#include "util.h"

#define MAX_BATCH 16            /* leads of one small start */
#define FORM_PARAMS_MAX 64
#define RECONCILE_SKEW_MS 120000 /* a listed call this much older than the dial is not ours */

/* A job holding a slot. Lives from its claim to its terminal status. */
struct active {
    int64_t job_id, tenant_id;
    char phone[PHONE_MAX];
    char sid[CALL_SID_MAX];
    int attempt;          /* the job's dial attempt this call belongs to */
    int64_t dialed_at;
    int64_t check_at;     /* when the watchdog fetches it, without a final callback */
    int creating;         /* a create (or a list before a new try) is out */
    int create_tries;
    int final_check;      /* the creates are used up: only Twilio's list may still find the call */
    int final_lists;      /* lists that could not be read in that final check */
    int cancel;           /* a soft cancel came: hung up once named or answered; busy after it is final */
    int fetching;
    int waiting;          /* in the queue for a turn of TWILIO_CPS, to be created again */
    int undecided;        /* lists in a row that showed a call another claim could have made too */
    struct active *wait_next;
    struct event *retry_ev;
    struct batch *batch;  /* a small start waiting for this call */
    struct active *next;
};

struct tenant {
    int64_t id;
    int active;
    /* when slots were freed (µs, monotonic), oldest first: each claim that refills one
     * measures from the oldest */
    int64_t freed_us[8];
    int nfreed;
    struct event *wake_ev;
    struct tenant *next;
};

/* a small start (1..CALL_CONCURRENCY leads) answered once its calls are created */
struct batch {
    struct http_req *req;
    int64_t tenant_id;
    size_t n, pending;
    int64_t job_ids[MAX_BATCH], lead_ids[MAX_BATCH];
    unsigned char done[MAX_BATCH]; /* its call was created, or it failed, or it waits */
    json_t *skipped;
    struct event *timeout_ev;
    struct batch *next;
};

static struct event_base *evbase;
static const struct config *cfg;
static int enabled;
static struct pacing_profile hours;
static char *callback_url;
static struct active *actives;
static struct tenant *tenants;
static struct batch *batches;
static struct event *cps_ev, *watchdog_ev;
/* every create, first or again, takes a turn of TWILIO_CPS; creates made again wait in
 * waitq (oldest first) and go before new claims */
static struct callpace pace;
static struct active *waitq;
static int pace_blocked; /* a pump found the turn taken: cps_cb pumps once it is free */
static struct call_job *scratch;

static uint64_t status_count[CS__COUNT];
static const double refill_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 1};
static struct histo refill = {refill_bounds, sizeof refill_bounds / sizeof refill_bounds[0], {0}, 0, 0};

static void pump(struct tenant *t);
static void arm_at(struct event *ev, int64_t at_ms);

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
static void create_call(struct active *a);

int calls_enabled(void) { return enabled; }

/* ---- bookkeeping ---- */

static struct tenant *tenant_of(int64_t id)
{
    for (struct tenant *t = tenants; t; t = t->next)
        if (t->id == id)
            return t;
    return NULL;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg) { pump(arg); }

static struct tenant *tenant_get(int64_t id)
{
    struct tenant *t = tenant_of(id);
    if (t)
        return t;
    t = xcalloc(1, sizeof *t);
    t->id = id;
    t->wake_ev = evtimer_new(evbase, wake_cb, t);
    t->next = tenants;
    tenants = t;
    return t;
}

static struct active *active_of(int64_t job_id)
{
    for (struct active *a = actives; a; a = a->next)
        if (a->job_id == job_id)
            return a;
    return NULL;
}

static void create_retry_cb(evutil_socket_t fd, short what, void *arg);

static struct active *active_add(const struct call_job *j)
{
    struct active *a = xcalloc(1, sizeof *a);
    a->job_id = j->id;
    a->tenant_id = j->tenant_id;
    snprintf(a->phone, sizeof a->phone, "%s", j->phone);
    snprintf(a->sid, sizeof a->sid, "%s", j->call_sid);
    a->attempt = j->attempts;
    a->dialed_at = j->dialed_at;
    a->check_at = j->dialed_at + ((int64_t)cfg->call_ring_timeout_s + cfg->call_time_limit_s) * 1000 +
                  cfg->call_settle_margin_ms;
    a->retry_ev = evtimer_new(evbase, create_retry_cb, a);
    a->next = actives;
    actives = a;
    tenant_get(j->tenant_id)->active++;
    return a;
}

static void batch_job_done(struct batch *b, int64_t job_id);
static struct batch *batch_of(int64_t job_id);

static void wait_unlink(struct active *a)
{
    for (struct active **p = &waitq; *p; p = &(*p)->wait_next) {
        if (*p == a) {
            *p = a->wait_next;
            break;
        }
    }
    a->wait_next = NULL;
    a->waiting = 0;
}

/* the slot is free: forget the call (never from inside its own timer) */
static void active_remove(struct active *a)
{
    for (struct active **p = &actives; *p; p = &(*p)->next) {
        if (*p == a) {
            *p = a->next;
            break;
        }
    }
    if (a->waiting)
        wait_unlink(a);
    struct tenant *t = tenant_get(a->tenant_id);
    t->active--;
    if (t->nfreed == (int)(sizeof t->freed_us / sizeof t->freed_us[0])) {
        memmove(t->freed_us, t->freed_us + 1, sizeof t->freed_us - sizeof t->freed_us[0]);
        t->nfreed--;
    }
    t->freed_us[t->nfreed++] = mono_us();
    if (a->batch)
        batch_job_done(a->batch, a->job_id);
    event_free(a->retry_ev);
    free(a);
}

static void observe_refill(struct tenant *t)
{
    if (!t->nfreed)
        return;
    histo_observe(&refill, (double)(mono_us() - t->freed_us[0]) / 1e6);
    memmove(t->freed_us, t->freed_us + 1, (size_t)(--t->nfreed) * sizeof t->freed_us[0]);
}

/* ---- events ---- */

static void call_event(const struct call_job *j)
{
    json_t *d = json_pack("{s:I,s:I,s:I,s:s}", "jobId", (json_int_t)j->id, "runId", (json_int_t)j->run_id, "leadId",
                          (json_int_t)j->lead_id, "status", call_status_name(j->status));
    if (j->call_sid[0])
        json_object_set_new(d, "callSid", json_string(j->call_sid));
    if (j->error[0])
        json_object_set_new(d, "error", json_string(j->error));
    events_emit(j->tenant_id, "call.status", NULL, d);
}

static void run_event(const struct call_run *r)
{
    events_emit(r->tenant_id, "run.status", NULL,
                json_pack("{s:I,s:s,s:i}", "runId", (json_int_t)r->id, "status", r->status, "total", r->total));
}

/* ---- hours, in the lead's own zone ---- */

/* the first moment >= now inside CALL_HOURS in zone tz ("" = TIMEZONE). The process's
 * zone is switched for the computation: one thread, and nothing in between. */
static int64_t hours_open(const char *tz, int64_t now)
{
    if (!tz[0] || strcmp(tz, cfg->timezone) == 0)
        return pacing_window_open(&hours, now);
    setenv("TZ", tz, 1);
    tzset();
    int64_t t = pacing_window_open(&hours, now);
    setenv("TZ", cfg->timezone, 1);
    tzset();
    return t;
}

/* ---- runs ---- */

json_t *calls_run_json(const struct call_run *r)
{
    struct run_counts c;
    store_run_counts(r->id, &c);
    char created[40], finished[40];
    util_iso8601(r->created_at, created, sizeof created);
    util_iso8601(r->finished_at, finished, sizeof finished);
    return json_pack("{s:I,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:o}", "run_id", (json_int_t)r->id, "status",
                     r->status, "queued", c.queued, "in_progress", c.in_progress, "completed", c.completed,
                     "failed", c.failed, "canceled", c.canceled, "total_leads", r->total, "concurrency",
                     (int)cfg->call_concurrency, "created_at", created, "finished_at",
                     r->finished_at ? json_string(finished) : json_null());
}

/* a run with nothing queued or in progress is over */
static void run_check(int64_t run_id, int64_t now)
{
    struct call_run r;
    struct run_counts c;
    if (!run_id || store_run_open_jobs(run_id) || store_run_get(run_id, &r) != STORE_OK || r.finished_at)
        return;
    if (store_run_counts(run_id, &c) < 0)
        return;
    if (strcmp(r.status, "running") == 0)
        snprintf(r.status, sizeof r.status, "completed");
    r.finished_at = now;
    store_run_save(&r);
    run_event(&r);
    char subject[32], text[200];
    snprintf(subject, sizeof subject, "run %lld", (long long)run_id);
    snprintf(text, sizeof text, "call run %lld finished (%s): %d completed, %d failed, %d canceled of %d", (long long)run_id,
             r.status, c.completed, c.failed, c.canceled, r.total);
    alert_raise(r.tenant_id, ALERT_RUN_FINISHED, subject, text);
    log_info("calls", "run finished run=%lld status=%s completed=%d failed=%d canceled=%d", (long long)run_id,
             r.status, c.completed, c.failed, c.canceled);
}

/* ---- job status ---- */

static void count_status(enum call_status s) { status_count[s < CS__COUNT ? s : CS_FAILED]++; }

/* a terminal status for the job in j (saved); frees its slot and refills it */
static void finish(struct call_job *j, enum call_status st, const char *error, int duration)
{
    int64_t now = util_now_ms();
    int retry = callfsm_retryable(st) && j->attempts <= cfg->call_retry_attempts;
    const struct active *was = active_of(j->id);
    if (was && was->cancel)
        retry = 0; /* cancelled while it rang: busy or no answer does not call it again */
    struct call_run run;
    if (retry && j->run_id && store_run_get(j->run_id, &run) == STORE_OK && strcmp(run.status, "running") != 0)
        retry = 0; /* a stopped run dials nothing new, retries included */
    count_status(st);
    j->duration = duration > 0 ? duration : j->duration;
    if (retry) {
        /* busy or no answer: the lead is called again later, as a new attempt */
        j->status = CS_QUEUED;
        count_status(CS_QUEUED);
        j->not_before = now + cfg->call_retry_delay_ms;
        snprintf(j->error, sizeof j->error, "%s; retry %d of %ld", call_status_name(st), j->attempts,
                 cfg->call_retry_attempts);
        j->call_sid[0] = '\0';
    } else {
        j->status = st;
        j->finished_at = now;
        snprintf(j->error, sizeof j->error, "%s", error ? error : "");
    }
    if (store_job_save(j) != STORE_OK)
        log_error("calls", "cannot save a call job job=%lld", (long long)j->id);
    call_event(j);
    log_info("calls", "call finished job=%lld run=%lld status=%s%s", (long long)j->id, (long long)j->run_id,
             call_status_name(st), retry ? " (retry queued)" : "");
    /* j may be the module's scratch record, which what follows reuses */
    int64_t run_id = j->run_id;
    struct active *a = active_of(j->id);
    struct tenant *t = tenant_get(j->tenant_id);
    if (a)
        active_remove(a);
    pump(t); /* the slot first; the run's bookkeeping after */
    if (!retry)
        run_check(run_id, now);
}

/* ---- creating calls ---- */

/* an answer's job and attempt: an answer for an earlier attempt is not this one's */
struct create_ctx {
    int64_t job_id;
    int attempt;
};

/* the job's current call entry, if the answer is for its current attempt */
static struct active *ctx_active(const struct create_ctx *x)
{
    struct active *a = active_of(x->job_id);
    return a && a->attempt == x->attempt ? a : NULL;
}

static void hangup_done(long status, const struct twilio_call *c, const char *error, void *arg)
{
    if (error)
        log_warn("calls", "hang-up not done sid=%s error=%s", (char *)arg, error);
    free(arg);
}

static void hangup(const char *sid, const char *how)
{
    char *copy = xstrdup(sid);
    if (twilio_update(sid, how, hangup_done, copy) < 0)
        free(copy);
}

/* the call is named: a small start waiting for it hears so */
static void batch_release(struct active *a)
{
    struct batch *b = a->batch;
    a->batch = NULL;
    if (b)
        batch_job_done(b, a->job_id);
}

/* a CallSid is known for the job */
static void adopt_sid(struct active *a, const char *sid)
{
    snprintf(a->sid, sizeof a->sid, "%s", sid);
    if (store_job_get(a->job_id, scratch) == STORE_OK && !callfsm_is_terminal(scratch->status)) {
        snprintf(scratch->call_sid, sizeof scratch->call_sid, "%s", sid);
        store_job_save(scratch);
    }
    if (a->cancel)
        hangup(sid, "canceled");
}

static void create_failed(struct active *a, const char *why)
{
    if (store_job_get(a->job_id, scratch) != STORE_OK)
        return;
    finish(scratch, CS_FAILED, why, 0);
}

#define FINAL_LISTS_MAX 5
#define PUMP_MAX 10000

/* The create's outcome is unknown (no answer, 5xx, an answer that is not a call): Twilio
 * may have made the call. Its list is read before another create; once the creates are
 * used up only the list decides, as a job failed with its call live would free a slot
 * that is still taken. */
static void retry_later(struct active *a, const char *why)
{
    if (a->sid[0]) {
        batch_release(a); /* a status callback named the call meanwhile */
        return;
    }
    if (a->create_tries >= cfg->call_create_tries)
        a->final_check = 1;
    if (a->final_check && a->final_lists >= FINAL_LISTS_MAX) {
        char msg[TEXT_MAX];
        snprintf(msg, sizeof msg, "the call could not be created after %d tries, and Twilio's call list "
                 "could not be read to see whether one exists: %.300s", a->create_tries, why);
        create_failed(a, msg);
        return;
    }
    long ms = 1000L << (a->create_tries < 6 ? a->create_tries - 1 : 5);
    log_warn("calls", "call create not confirmed, checking and trying again job=%lld in_ms=%ld error=%s",
             (long long)a->job_id, ms, why);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(a->retry_ev, &tv);
}

static void on_created(long status, const struct twilio_call *c, const char *error, void *arg)
{
    struct create_ctx *x = arg;
    struct active *a = ctx_active(x);
    int64_t job_id = x->job_id;
    free(x);
    if (a && a->sid[0] && c && strcmp(a->sid, c->sid) != 0) {
        /* a second call for this attempt (its callback came first for another): not counted anywhere */
        log_warn("calls", "a second call for one attempt is hung up job=%lld sid=%s", (long long)job_id, c->sid);
        hangup(c->sid, "canceled");
        return;
    }
    if (!a) {
        /* no current attempt of the job waits for it (force-cancelled, or the answer to an
         * earlier attempt): a call it made is nobody's and would run outside the limit */
        if (c) {
            log_warn("calls", "a call no attempt waits for is hung up job=%lld sid=%s", (long long)job_id, c->sid);
            hangup(c->sid, "canceled");
        }
        return;
    }
    a->creating = 0;
    if (status >= 200 && status < 300 && c) {
        log_info("calls", "call created job=%lld sid=%s", (long long)a->job_id, c->sid);
        adopt_sid(a, c->sid);
        batch_release(a);
        return;
    }
    if (status >= 400 && status < 500) {
        create_failed(a, error ? error : "Twilio refused the call");
        return;
    }
    retry_later(a, error ? error : "no answer from Twilio");
}

static void create_call(struct active *a)
{
    struct create_ctx *x = xmalloc(sizeof *x);
    *x = (struct create_ctx){a->job_id, a->attempt};
    a->creating = 1;
    a->create_tries++;
    if (twilio_create(a->phone, a->job_id, a->attempt, on_created, x) < 0) {
        free(x);
        a->creating = 0;
        retry_later(a, "the request could not be made");
    }
}

/* a job that could not tell its listed call from another job's fails; so do the other
 * jobs to that number that wait on the same question (each saw a call the other could
 * have made): else the last of them, with no rival left, would adopt a call that a
 * failed one may have made. Failed in the same turn, so in the same commit. */
static void fail_undecided(struct active *a)
{
    static const char why[] = "a listed call to this number may have been this job's or another job's, and "
                              "nothing decided which before its time limit: not dialled again";
    char phone[PHONE_MAX];
    snprintf(phone, sizeof phone, "%s", a->phone);
    create_failed(a, why); /* a is gone */
    for (;;) {
        struct active *o = actives;
        while (o && (o->sid[0] || !o->undecided || strcmp(o->phone, phone) != 0))
            o = o->next;
        if (!o)
            return;
        log_warn("calls", "failed with the job it waited on job=%lld", (long long)o->job_id);
        o->undecided = 0; /* never picked twice, even if it cannot be failed */
        create_failed(o, why);
    }
}

/* the listed calls against the claim of `job_id` (to `phone`, at dialed_at); the other
 * open jobs to that number without a CallSid are its rivals */
static enum callmatch_result list_match(int64_t job_id, const char *phone, int64_t dialed_at,
                                        const struct twilio_call *calls, size_t n, size_t *pick)
{
    char to[24];
    snprintf(to, sizeof to, "+%s", phone);
    const struct callmatch_claim claim = {to, cfg->twilio_from, dialed_at - RECONCILE_SKEW_MS};
    unsigned char *held = xcalloc(n ? n : 1, 1);
    for (size_t i = 0; i < n; i++)
        held[i] = callmatch_candidate(&claim, &calls[i]) && store_job_sid_taken(calls[i].sid);
    size_t nrivals = 0, cap = 0;
    int64_t *rivals = NULL;
    for (const struct active *o = actives; o; o = o->next) {
        if (o->job_id == job_id || o->sid[0] || strcmp(o->phone, phone) != 0)
            continue;
        if (nrivals == cap) {
            cap = cap ? cap * 2 : 4;
            rivals = xrealloc(rivals, cap * sizeof *rivals);
        }
        rivals[nrivals++] = o->dialed_at - RECONCILE_SKEW_MS;
    }
    enum callmatch_result m = callmatch_pick(&claim, calls, n, held, rivals, nrivals, pick);
    free(rivals);
    free(held);
    return m;
}

/* the calling hours closed since the claim (a restart, tries that took long, a wait for
 * a turn of TWILIO_CPS): no call exists, so the job waits for them in the queue. 1 when
 * it went back (its entry is gone) */
static int requeue_if_closed(struct active *a, int64_t now)
{
    if (store_job_get(a->job_id, scratch) != STORE_OK)
        return 0;
    int64_t open = hours_open(scratch->timezone, now);
    if (open <= now)
        return 0;
    log_info("calls", "not dialled again outside the calling hours job=%lld", (long long)a->job_id);
    scratch->status = CS_QUEUED;
    scratch->not_before = open;
    store_job_save(scratch);
    count_status(CS_QUEUED);
    call_event(scratch);
    struct tenant *t = tenant_get(a->tenant_id);
    batch_release(a); /* a start does not wait for the morning */
    active_remove(a);
    pump(t);
    return 1;
}

/* a soft cancel came before the call was made again: none is made. 1 when so */
static int canceled_before_dial(struct active *a)
{
    if (!a->cancel)
        return 0;
    if (a->waiting)
        wait_unlink(a);
    if (store_job_get(a->job_id, scratch) == STORE_OK)
        finish(scratch, CS_CANCELED, "canceled before it was dialled again", 0);
    return 1;
}

/* cps_cb runs when the next turn is due and someone waits for it */
static void pace_arm(void)
{
    int64_t at = callpace_ready_at(&pace);
    if (cps_ev && (waitq || pace_blocked) && at != INT64_MAX)
        arm_at(cps_ev, at > 0 ? at : 0);
}

/* the creates made again, oldest first, each at its turn */
static void pace_serve(void)
{
    while (waitq) {
        struct active *a = waitq;
        int64_t now = util_now_ms();
        if (a->sid[0]) {
            /* a status callback named the call while it waited */
            wait_unlink(a);
            batch_release(a);
            continue;
        }
        if (callpace_ready_at(&pace) > now)
            break;
        if (canceled_before_dial(a) || requeue_if_closed(a, now))
            continue;
        wait_unlink(a);
        callpace_take(&pace, now);
        create_call(a);
    }
    pace_arm();
}

/* no call was found for a create with no clear outcome: it is made again at its turn */
static void create_again(struct active *a)
{
    struct active **p = &waitq;
    while (*p)
        p = &(*p)->wait_next;
    *p = a;
    a->wait_next = NULL;
    a->waiting = 1;
    pace_serve();
}

/* before another create: did the last one make a call after all? */
static void on_listed(long status, const struct twilio_call *calls, size_t n, const char *error, void *arg)
{
    struct create_ctx *x = arg;
    struct active *a = ctx_active(x);
    int64_t job_id = x->job_id;
    free(x);
    size_t pick = 0;
    if (!a && active_of(job_id))
        return; /* an earlier attempt's list: the current attempt reads its own */
    if (!a) {
        /* force-cancelled meanwhile: a call the earlier create made is hung up, unless
         * another job's claim could have made it (then its callback, which names the job,
         * hangs it up if it is this one's) */
        struct call_job j;
        if (status < 200 || status >= 300 || store_job_get(job_id, &j) != STORE_OK || j.status != CS_CANCELED)
            return;
        if (list_match(job_id, j.phone, j.dialed_at, calls, n, &pick) != CALLMATCH_ONE)
            return;
        char to[24];
        snprintf(to, sizeof to, "+%s", j.phone);
        const struct callmatch_claim claim = {to, cfg->twilio_from, j.dialed_at - RECONCILE_SKEW_MS};
        for (size_t i = 0; i < n; i++)
            if (callmatch_candidate(&claim, &calls[i]) && !store_job_sid_taken(calls[i].sid))
                hangup(calls[i].sid, "canceled");
        return;
    }
    a->creating = 0;
    if (a->sid[0])
        return; /* a status callback named the call meanwhile */
    if (status < 200 || status >= 300) {
        a->create_tries++;
        a->final_lists += a->final_check;
        retry_later(a, error ? error : "the call list could not be read");
        return;
    }
    switch (list_match(a->job_id, a->phone, a->dialed_at, calls, n, &pick)) {
    case CALLMATCH_ONE:
        log_info("calls", "the call exists after all, adopted job=%lld sid=%s", (long long)a->job_id, calls[pick].sid);
        adopt_sid(a, calls[pick].sid);
        batch_release(a);
        return;
    case CALLMATCH_AMBIGUOUS: {
        /* adopting it could take another job's call (another tenant's too), creating
         * again could make a second call, hanging it up could end another job's call:
         * look again once that job, a create's answer or a status callback decides it.
         * Two such jobs may wait on each other (a listed call nobody will ever hold): once
         * a call of this job would have ended whatever it was, it fails, not dialled again */
        if (util_now_ms() >= a->check_at) {
            fail_undecided(a);
            return;
        }
        long ms = 1000L << (a->undecided < 5 ? a->undecided : 5);
        a->undecided++;
        log_warn("calls", "a listed call could be another job's: not adopted, not dialled again, looking again "
                 "job=%lld in_ms=%ld", (long long)a->job_id, ms);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(a->retry_ev, &tv);
        return;
    }
    case CALLMATCH_NONE:
        break;
    }
    a->undecided = 0;
    if (canceled_before_dial(a))
        return;
    if (a->final_check) {
        char msg[TEXT_MAX];
        snprintf(msg, sizeof msg, "the call could not be created after %d tries, and Twilio's call list shows "
                 "no call for it", a->create_tries);
        create_failed(a, msg);
        return;
    }
    create_again(a);
}

static void check_then_create(struct active *a)
{
    struct create_ctx *x = xmalloc(sizeof *x);
    *x = (struct create_ctx){a->job_id, a->attempt};
    a->creating = 1;
    if (twilio_list(a->phone, on_listed, x) < 0) {
        free(x);
        a->creating = 0;
        a->create_tries++;
        a->final_lists += a->final_check;
        retry_later(a, "the call list request could not be made");
    }
}

static void create_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct active *a = arg;
    if (!a->sid[0]) /* else a status callback has named the call meanwhile */
        check_then_create(a);
}

static void create_after_commit(void *arg, int ok)
{
    struct create_ctx *x = arg;
    struct active *a = active_of(x->job_id);
    free(x);
    /* the claim's turn of TWILIO_CPS: its create goes out now, or never */
    callpace_release(&pace, util_now_ms(), a && ok);
    if (!a) {
        pace_arm();
        return;
    }
    if (!ok) {
        /* the claim was rolled back: the job is queued again in the store */
        log_error("calls", "a claim was not committed job=%lld", (long long)a->job_id);
        struct tenant *t = tenant_get(a->tenant_id);
        active_remove(a);
        pump(t);
        pace_arm();
        return;
    }
    observe_refill(tenant_get(a->tenant_id));
    create_call(a);
    pace_arm();
}

/* ---- the pump: claims jobs while the tenant has free slots ---- */

/* a turn of TWILIO_CPS is due: the creates made again first, then new claims */
static void cps_cb(evutil_socket_t fd, short what, void *arg)
{
    pace_blocked = 0;
    pace_serve();
    for (struct tenant *t = tenants; t; t = t->next)
        pump(t);
}

static void arm_at(struct event *ev, int64_t at_ms)
{
    int64_t ms = at_ms - util_now_ms();
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(ev, &tv);
}

static void pump(struct tenant *t)
{
    if (!enabled)
        return;
    int guard;
    for (guard = 0; guard < PUMP_MAX && t->active < cfg->call_concurrency; guard++) {
        int64_t now = util_now_ms();
        if (waitq || callpace_ready_at(&pace) > now) {
            /* the turn is taken (or a create made again waits for it) */
            pace_blocked = 1;
            pace_arm();
            return;
        }
        struct call_job *j = scratch;
        int rc = store_job_next(t->id, now, j);
        if (rc != STORE_OK) {
            int64_t wake = rc == STORE_NOTFOUND ? store_job_next_wake(t->id) : now + 1000;
            if (wake > now)
                arm_at(t->wake_ev, wake);
            return;
        }
        int64_t open = hours_open(j->timezone, now);
        if (open > now) {
            /* outside the calling hours in the lead's zone: it waits, the others go on */
            j->not_before = open;
            store_job_save(j);
            struct batch *b = batch_of(j->id);
            if (b)
                batch_job_done(b, j->id); /* a start does not wait for the morning */
            continue;
        }
        j->status = CS_DIALING;
        j->attempts++;
        j->dialed_at = now;
        j->call_sid[0] = '\0';
        j->error[0] = '\0';
        j->not_before = 0;
        if (store_job_save(j) != STORE_OK) {
            arm_at(t->wake_ev, now + 1000);
            return;
        }
        count_status(CS_DIALING);
        call_event(j);
        struct active *a = active_add(j);
        a->batch = batch_of(j->id);
        callpace_reserve(&pace, now); /* released by create_after_commit */
        log_info("calls", "dialing job=%lld run=%lld attempt=%d active=%d", (long long)j->id, (long long)j->run_id,
                 j->attempts, t->active);
        /* the claim is durable before Twilio hears of it */
        struct create_ctx *x = xmalloc(sizeof *x);
        *x = (struct create_ctx){j->id, j->attempts};
        store_after_commit(create_after_commit, x);
    }
    /* PUMP_MAX jobs looked at in one go (most put off to their calling hours, say): the
     * rest in a later turn of the loop, not never */
    if (guard == PUMP_MAX)
        arm_at(t->wake_ev, util_now_ms());
}

/* ---- starting ---- */

static json_t *call_entry(int64_t lead_id, const struct call_job *j)
{
    const char *status = "queued";
    if (j && j->call_sid[0])
        status = "initiated";
    else if (j && callfsm_is_terminal(j->status))
        status = call_status_name(j->status);
    json_t *e = json_pack("{s:I,s:I,s:o,s:s}", "lead_id", (json_int_t)lead_id, "job_id", (json_int_t)(j ? j->id : 0),
                          "call_sid", j && j->call_sid[0] ? json_string(j->call_sid) : json_null(), "status", status);
    if (j && j->error[0])
        json_object_set_new(e, "error", json_string(j->error));
    return e;
}

static void batch_answer(struct batch *b)
{
    for (struct batch **p = &batches; *p; p = &(*p)->next) {
        if (*p == b) {
            *p = b->next;
            break;
        }
    }
    for (struct active *a = actives; a; a = a->next)
        if (a->batch == b)
            a->batch = NULL;
    json_t *calls = json_array();
    int started = 0;
    struct call_job j;
    for (size_t i = 0; i < b->n; i++) {
        int ok = store_job_get(b->job_ids[i], &j) == STORE_OK;
        json_array_append_new(calls, call_entry(b->lead_ids[i], ok ? &j : NULL));
        started += ok && j.call_sid[0];
    }
    char msg[96];
    snprintf(msg, sizeof msg, "started %d of %zu calls", started, b->n);
    json_t *ans = json_pack("{s:b,s:s,s:o,s:o}", "success", started > 0 || b->n == 0, "message", msg, "calls", calls,
                            "skipped", b->skipped);
    http_reply_json(b->req, 200, ans);
    event_free(b->timeout_ev);
    free(b);
}

/* one job of the batch is decided (once per job) */
static void batch_job_done(struct batch *b, int64_t job_id)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->job_ids[i] == job_id && !b->done[i]) {
            b->done[i] = 1;
            b->pending--;
        }
    }
    if (b->pending == 0)
        batch_answer(b);
}

/* the batch waiting for this job, if any */
static struct batch *batch_of(int64_t job_id)
{
    for (struct batch *b = batches; b; b = b->next)
        for (size_t i = 0; i < b->n; i++)
            if (b->job_ids[i] == job_id)
                return b;
    return NULL;
}

static void batch_timeout(evutil_socket_t fd, short what, void *arg) { batch_answer(arg); }

static int insert_job(int64_t tenant_id, int64_t run_id, const struct lead *l, int64_t now, struct call_job *j)
{
    memset(j, 0, sizeof *j);
    j->tenant_id = tenant_id;
    j->run_id = run_id;
    j->lead_id = l->id;
    snprintf(j->phone, sizeof j->phone, "%s", l->phone);
    snprintf(j->timezone, sizeof j->timezone, "%s", l->timezone);
    j->status = CS_QUEUED;
    j->created_at = now;
    count_status(CS_QUEUED);
    return store_job_insert(j);
}

void calls_start(struct http_req *r, int64_t tenant_id, const struct lead *leads, size_t n, json_t *skipped)
{
    int64_t now = util_now_ms();
    struct call_job j;
    struct tenant *t = tenant_get(tenant_id);
    if (n <= (size_t)cfg->call_concurrency && n <= MAX_BATCH) {
        struct batch *b = xcalloc(1, sizeof *b);
        b->req = r;
        b->tenant_id = tenant_id;
        b->skipped = skipped;
        store_tx_begin();
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            ok = insert_job(tenant_id, 0, &leads[i], now, &j) == STORE_OK;
            b->job_ids[i] = j.id;
            b->lead_ids[i] = leads[i].id;
        }
        store_tx_end(ok);
        if (!ok) {
            json_decref(skipped);
            free(b);
            http_reply_error(r, 500, "STORE_ERROR", "the calls could not be stored");
            return;
        }
        b->n = b->pending = n;
        b->timeout_ev = evtimer_new(evbase, batch_timeout, b);
        b->next = batches;
        batches = b;
        struct timeval tv = {cfg->call_start_wait_ms / 1000, (cfg->call_start_wait_ms % 1000) * 1000};
        evtimer_add(b->timeout_ev, &tv);
        pump(t);
        return;
    }
    struct call_run run = {0};
    run.tenant_id = tenant_id;
    snprintf(run.status, sizeof run.status, "running");
    run.total = (int)n;
    run.created_at = now;
    store_tx_begin();
    int ok = store_run_insert(&run) == STORE_OK;
    for (size_t i = 0; i < n && ok; i++)
        ok = insert_job(tenant_id, run.id, &leads[i], now, &j) == STORE_OK;
    store_tx_end(ok);
    if (!ok) {
        json_decref(skipped);
        http_reply_error(r, 500, "STORE_ERROR", "the run could not be stored");
        return;
    }
    run_event(&run);
    log_info("calls", "run started run=%lld leads=%zu", (long long)run.id, n);
    char msg[96];
    snprintf(msg, sizeof msg, "queued %zu calls (%ld at a time)", n, cfg->call_concurrency);
    http_reply_json(r, 202, json_pack("{s:b,s:s,s:I,s:i,s:s,s:o}", "success", 1, "message", msg, "run_id",
                                      (json_int_t)run.id, "queued", (int)n, "mode", "bulk_queue", "skipped", skipped));
    pump(t);
}

/* ---- stop, cancel, cleanup ---- */

static void result(struct calls_result *out, int status, const char *code, const char *msg)
{
    out->status = status;
    out->code = code;
    snprintf(out->msg, sizeof out->msg, "%s", msg);
}

int calls_stop_run(int64_t tenant_id, int64_t run_id, json_t **answer, struct calls_result *out)
{
    struct call_run r;
    if (store_run_get(run_id, &r) != STORE_OK || r.tenant_id != tenant_id) {
        result(out, 404, "RUN_NOT_FOUND", "no such run");
        return -1;
    }
    int64_t now = util_now_ms();
    int canceled = 0;
    if (strcmp(r.status, "running") == 0) {
        canceled = store_job_cancel_queued(run_id, "the run was stopped", now);
        if (canceled > 0)
            status_count[CS_CANCELED] += (uint64_t)canceled;
        snprintf(r.status, sizeof r.status, "stopped");
        store_run_save(&r);
        run_event(&r);
        log_info("calls", "run stopped run=%lld canceled=%d", (long long)run_id, canceled);
        run_check(run_id, now);
        store_run_get(run_id, &r);
    }
    *answer = calls_run_json(&r);
    json_object_set_new(*answer, "canceled_now", json_integer(canceled < 0 ? 0 : canceled));
    return 0;
}

int calls_cancel_job(int64_t tenant_id, int64_t job_id, int force, json_t **answer, struct calls_result *out)
{
    struct call_job *j = scratch;
    if (store_job_get(job_id, j) != STORE_OK || j->tenant_id != tenant_id) {
        result(out, 404, "JOB_NOT_FOUND", "no such call job");
        return -1;
    }
    if (callfsm_is_terminal(j->status)) {
        char msg[96];
        snprintf(msg, sizeof msg, "the call is already %s", call_status_name(j->status));
        result(out, 409, "ALREADY_FINISHED", msg);
        return -1;
    }
    struct active *a = active_of(job_id);
    const char *state;
    if (j->status == CS_QUEUED) {
        finish(j, CS_CANCELED, "canceled before it was dialled", 0);
        struct batch *b = batch_of(job_id);
        if (b)
            batch_job_done(b, job_id);
        state = "canceled";
    } else if (force) {
        char sid[CALL_SID_MAX];
        snprintf(sid, sizeof sid, "%s", a ? a->sid : j->call_sid);
        finish(j, CS_CANCELED, "force-canceled; its slot was freed at once", 0);
        if (sid[0])
            hangup(sid, "completed");
        state = "canceled";
    } else {
        const char *sid = a ? a->sid : j->call_sid;
        if (a)
            a->cancel = 1; /* hung up as soon as Twilio names it, or as it is answered */
        if (sid[0])
            hangup(sid, j->status == CS_IN_PROGRESS ? "completed" : "canceled");
        state = "canceling";
    }
    *answer = json_pack("{s:I,s:s}", "job_id", (json_int_t)job_id, "status", state);
    return 0;
}

struct fetch_ctx {
    int64_t job_id;
};

static void on_fetched(long status, const struct twilio_call *c, const char *error, void *arg)
{
    struct fetch_ctx *x = arg;
    struct active *a = active_of(x->job_id);
    free(x);
    if (!a)
        return;
    a->fetching = 0;
    if (store_job_get(a->job_id, scratch) != STORE_OK)
        return;
    if (status == 404) {
        finish(scratch, CS_FAILED, "Twilio has no such call", 0);
        return;
    }
    int st = c ? callfsm_from_twilio(c->status) : -1;
    if (st >= 0 && callfsm_is_terminal((enum call_status)st)) {
        log_info("calls", "settled from Twilio without its callback job=%lld status=%s", (long long)a->job_id,
                 c->status);
        finish(scratch, (enum call_status)st, NULL, c->duration);
        return;
    }
    /* still going (or Twilio did not answer): look again later */
    a->check_at = util_now_ms() + (cfg->call_settle_margin_ms > 1000 ? cfg->call_settle_margin_ms : 1000);
    if (st >= 0) {
        int next = callfsm_step(scratch->status, (enum call_status)st);
        if (next >= 0) {
            scratch->status = (enum call_status)next;
            store_job_save(scratch);
            call_event(scratch);
        }
    }
}

static void fetch(struct active *a)
{
    struct fetch_ctx *x = xmalloc(sizeof *x);
    x->job_id = a->job_id;
    a->fetching = 1;
    if (twilio_fetch(a->sid, on_fetched, x) < 0) {
        free(x);
        a->fetching = 0;
    }
}

/* the watchdog: calls whose final callback is overdue are fetched from Twilio */
static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = util_now_ms();
    for (struct active *a = actives; a; a = a->next)
        if (a->sid[0] && !a->fetching && now >= a->check_at)
            fetch(a);
}

json_t *calls_cleanup_stuck(void)
{
    int64_t now = util_now_ms();
    json_t *list = json_array();
    struct active *a = actives, *next;
    for (; a; a = next) {
        next = a->next;
        if (now - a->dialed_at < cfg->call_stuck_ms)
            continue;
        json_array_append_new(list, json_pack("{s:I,s:s}", "job_id", (json_int_t)a->job_id, "action",
                                              a->sid[0]     ? "fetching from Twilio"
                                              : a->creating ? "left alone: its create is still in flight"
                                                            : "failed"));
        if (a->sid[0]) {
            if (!a->fetching)
                fetch(a);
        } else if (!a->creating && store_job_get(a->job_id, scratch) == STORE_OK) {
            finish(scratch, CS_FAILED, "stuck without a call: cleaned up", 0);
        }
    }
    return list;
}

/* ---- status callbacks ---- */

/* X-Twilio-Signature over the URL Twilio used: PUBLIC_URL + the request URI, tried with
 * and without an explicit port */
/* the other spelling of a URL's authority: without its port when it has one, else with
 * the scheme's default; "" when there is none */
static void other_port(const char *url, char *out, size_t outlen)
{
    const char *host = strstr(url, "://");
    out[0] = '\0';
    if (!host)
        return;
    host += 3;
    size_t hl = strcspn(host, "/?");
    const char *colon = memchr(host, ':', hl);
    if (colon)
        snprintf(out, outlen, "%.*s%s", (int)(colon - url), url, host + hl);
    else
        snprintf(out, outlen, "%.*s:%s%s", (int)(host + hl - url), url, strncmp(url, "https", 5) == 0 ? "443" : "80",
                 host + hl);
}

/* X-Twilio-Signature over the URL Twilio used: the StatusCallback given (PUBLIC_URL's
 * path included) with the query received, tried with and without an explicit port */
static int signature_ok(struct http_req *r, struct evkeyvalq *params)
{
    const char *got = http_header(r, "X-Twilio-Signature");
    if (!got)
        return 0;
    const char *keys[FORM_PARAMS_MAX], *vals[FORM_PARAMS_MAX];
    size_t n = 0;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, params, next) {
        if (n == FORM_PARAMS_MAX)
            return 0;
        keys[n] = kv->key;
        vals[n] = kv->value;
        n++;
    }
    const char *query = strchr(http_uri(r), '?');
    char *url = xasprintf("%s%s", callback_url, query ? query : "");
    char alt[4200];
    other_port(url, alt, sizeof alt);
    const char *urls[] = {url, alt};
    size_t glen = strlen(got);
    int ok = 0;
    for (int i = 0; i < 2 && !ok; i++) {
        char want[64];
        if (!urls[i][0])
            continue;
        twilio_signature(cfg->twilio_auth_token, urls[i], keys, vals, n, want);
        ok = glen == strlen(want) && CRYPTO_memcmp(got, want, glen) == 0;
    }
    free(url);
    return ok;
}

void calls_status_callback(struct http_req *r)
{
    static const char ignored[] = "{\"ok\":true,\"ignored\":true}";
    static const char applied[] = "{\"ok\":true,\"ignored\":false}";
    if (!enabled) {
        http_reply_error(r, 503, "CALLS_NOT_CONFIGURED", "calls are not configured (TWILIO_ACCOUNT_SID)");
        return;
    }
    size_t len;
    const char *body = http_body(r, &len);
    char *text = xstrndup(body ? body : "", len);
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    if (strlen(text) != len || evhttp_parse_query_str(text, &params) < 0) {
        free(text);
        evhttp_clear_headers(&params);
        http_reply_error(r, 400, "INVALID_REQUEST", "the body must be form-encoded");
        return;
    }
    free(text);
    if (!signature_ok(r, &params)) {
        evhttp_clear_headers(&params);
        log_warn("calls", "status callback with a wrong or missing X-Twilio-Signature refused");
        http_reply_error(r, 403, "BAD_SIGNATURE", "X-Twilio-Signature does not match");
        return;
    }
    const char *sid = evhttp_find_header(&params, "CallSid");
    const char *cs = evhttp_find_header(&params, "CallStatus");
    const char *dur = evhttp_find_header(&params, "CallDuration");
    int st = cs ? callfsm_from_twilio(cs) : -1;
    if (!sid || !twilio_sid_ok(sid) || st < 0) {
        evhttp_clear_headers(&params);
        http_reply_error(r, 400, "INVALID_REQUEST", "CallSid (CA and hex digits) and a known CallStatus are required");
        return;
    }
    long duration = 0;
    if (dur && util_parse_count(dur, 0, 100000000, &duration) < 0)
        log_warn("calls", "a status callback with an unreadable CallDuration sid=%s", sid);
    /* ?job= names the job even before the create answer brought the CallSid */
    const char *jq = http_query(r, "job"), *aq = http_query(r, "attempt");
    long job_id = 0, attempt = 0;
    struct call_job *j = scratch;
    int ours = 0, found = 0;
    if (jq && aq && util_parse_count(jq, 1, 999999999999L, &job_id) == 0 &&
        util_parse_count(aq, 1, 1000, &attempt) == 0 && store_job_get(job_id, j) == STORE_OK) {
        ours = j->attempts == attempt; /* a call made for the job's current attempt */
        found = ours && (!j->call_sid[0] || strcmp(j->call_sid, sid) == 0);
    }
    if (ours && !callfsm_is_terminal((enum call_status)st) &&
        (!found || (!j->call_sid[0] && callfsm_is_terminal(j->status)))) {
        /* a live call for this attempt that the job does not hold: a second one (a create
         * that was answered late), or one after the job gave up finding its call. Nobody
         * counts it against the limit: it is hung up. (A late callback of the job's own
         * call, after its end, is only ignored.) */
        log_warn("calls", "a call the job does not hold is hung up job=%lld sid=%s status=%s", (long long)job_id,
                 sid, cs);
        hangup(sid, st == CS_IN_PROGRESS ? "completed" : "canceled");
        evhttp_clear_headers(&params);
        http_reply_raw(r, 200, "application/json", ignored, sizeof ignored - 1);
        return;
    }
    if (!found)
        found = store_job_by_sid(sid, j) == STORE_OK;
    if (!found) {
        evhttp_clear_headers(&params);
        http_reply_raw(r, 200, "application/json", ignored, sizeof ignored - 1);
        return;
    }
    struct active *a = active_of(j->id);
    if (a && !a->sid[0] && !callfsm_is_terminal(j->status)) {
        snprintf(a->sid, sizeof a->sid, "%s", sid);
        snprintf(j->call_sid, sizeof j->call_sid, "%s", sid);
        store_job_save(j);
    }
    int next = callfsm_step(j->status, (enum call_status)st);
    evhttp_clear_headers(&params);
    if (next < 0) {
        http_reply_raw(r, 200, "application/json", ignored, sizeof ignored - 1);
        return;
    }
    if (callfsm_is_terminal((enum call_status)next)) {
        finish(j, (enum call_status)next, NULL, (int)duration);
    } else {
        j->status = (enum call_status)next;
        count_status(j->status);
        store_job_save(j);
        call_event(j);
        /* a cancel sent while it rang does nothing once it is answered: hang it up now */
        if (a && a->cancel && j->status == CS_IN_PROGRESS)
            hangup(a->sid, "completed");
    }
    http_reply_raw(r, 200, "application/json", applied, sizeof applied - 1);
}

/* ---- metrics ---- */

void calls_totals_json(int64_t tenant_id, json_t *j)
{
    const struct tenant *t = tenant_of(tenant_id);
    json_object_set_new(j, "active", json_integer(t ? t->active : 0));
    json_object_set_new(j, "limit", json_integer(cfg ? (json_int_t)cfg->call_concurrency : 0));
    json_object_set_new(j, "enabled", json_boolean(enabled));
}

char *calls_metrics_text(void)
{
    char *out = xappendf(NULL, "# HELP switchboard_calls_total Call jobs that entered each status since start.\n"
                               "# TYPE switchboard_calls_total counter\n");
    for (int i = 0; i < CS__COUNT; i++)
        out = xappendf(out, "switchboard_calls_total{status=\"%s\"} %llu\n", call_status_name((enum call_status)i),
                       (unsigned long long)status_count[i]);
    int active = 0;
    for (struct active *a = actives; a; a = a->next)
        active++;
    out = xappendf(out, "# HELP switchboard_calls_active Calls dialing, ringing or in progress.\n"
                        "# TYPE switchboard_calls_active gauge\nswitchboard_calls_active %d\n",
                   active);
    return histo_append(out, &refill, "switchboard_call_slot_refill_seconds",
                        "From a freed slot to the next call's create request.");
}

/* ---- start-up and shutdown ---- */

static void load_open(const struct call_job *j, void *arg)
{
    struct active *a = active_add(j);
    if (!j->call_sid[0]) {
        /* claimed, and maybe created, before a crash: ask Twilio before dialling again */
        a->create_tries = 1;
        check_then_create(a);
    } else {
        /* its callbacks may have come while the daemon was down */
        fetch(a);
    }
    (*(int *)arg)++;
}

static void pump_tenant(int64_t id, void *arg) { pump(tenant_get(id)); }

int calls_init(struct event_base *base, const struct config *c, char *err, size_t errlen)
{
    evbase = base;
    cfg = c;
    if (pacing_profile_parse_hours(c->call_hours, &hours, err, errlen) < 0)
        return -1;
    enabled = c->twilio_account_sid[0] != 0;
    scratch = xmalloc(sizeof *scratch);
    cps_ev = evtimer_new(base, cps_cb, NULL);
    /* a create may have gone out just before a restart */
    callpace_init(&pace, c->twilio_cps, util_now_ms());
    waitq = NULL;
    pace_blocked = 0;
    watchdog_ev = event_new(base, -1, EV_PERSIST, watchdog_cb, NULL);
    if (!enabled)
        return 0;
    char pub[2100];
    if (c->public_url[0])
        snprintf(pub, sizeof pub, "%s", c->public_url);
    else
        snprintf(pub, sizeof pub, "http://127.0.0.1:%ld", c->orch_port);
    size_t pl = strlen(pub);
    while (pl && pub[pl - 1] == '/')
        pub[--pl] = '\0';
    callback_url = xasprintf("%s/webhook/call_status", pub);
    struct twilio_opts o = {
        .api_base = c->twilio_api_base, .account_sid = c->twilio_account_sid, .auth_token = c->twilio_auth_token,
        .from = c->twilio_from, .twiml_url = c->twilio_twiml_url, .callback_url = callback_url,
        .timeout_ms = c->twilio_timeout_ms, .ring_timeout_s = (int)c->call_ring_timeout_s,
        .time_limit_s = (int)c->call_time_limit_s,
    };
    twilio_init(&o);
    int open = 0;
    if (store_job_open(load_open, &open) < 0 || store_job_tenants_queued(pump_tenant, NULL) < 0) {
        snprintf(err, errlen, "calls: cannot load the call jobs");
        return -1;
    }
    struct timeval tv = {c->call_watchdog_ms / 1000, (c->call_watchdog_ms % 1000) * 1000};
    event_add(watchdog_ev, &tv);
    log_info("calls", "ready active=%d concurrency=%ld cps=%ld", open, c->call_concurrency, c->twilio_cps);
    return 0;
}

void calls_shutdown(void)
{
    while (batches)
        batch_answer(batches);
    waitq = NULL;
    pace_blocked = 0;
    while (actives) {
        struct active *a = actives;
        actives = a->next;
        event_free(a->retry_ev);
        free(a);
    }
    while (tenants) {
        struct tenant *t = tenants;
        tenants = t->next;
        event_free(t->wake_ev);
        free(t);
    }
    if (cps_ev)
        event_free(cps_ev);
    if (watchdog_ev)
        event_free(watchdog_ev);
    cps_ev = watchdog_ev = NULL;
    free(scratch);
    scratch = NULL;
    free(callback_url);
    callback_url = NULL;
    if (enabled)
        twilio_free();
    enabled = 0;
}
