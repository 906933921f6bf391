#include "dispatch.h"

#include <ctype.h>
#include <stdarg.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "apiparse.h"
#include "config.h"
#include "cron.h"
#include "dsched.h"
#include "events.h"
#include "histo.h"
#include "hmac.h"
#include "log.h"
#include "optout.h"
#include "pacing.h"
#include "session.h"
#include "store.h"
#include "util.h"
#include "wclient.h"
#include "wevent.h"

#define DAY_MS (24LL * 3600 * 1000)
#define IDEM_WINDOW_MS DAY_MS
#define TICK_MAX 512          /* dispatches per turn of the loop, so that nothing starves */
#define SWEEP_MS 30000        /* expiry of queued messages, pruning of idempotency keys */
#define SWEEP_MAX 1000
#define TRUST_CHECK_MS 60000
#define ASKS_MAX 10           /* POST /send tries of one dispatch that got no verdict */
#define ASK_BACKOFF_MAX_MS 300000

/* A message handed to its worker and not yet settled. One per session at most. */
struct inflight {
    int64_t session_id;
    int64_t msg_id;
    char public_id[MSG_ID_MAX];
    char to[PHONE_MAX];
    char *text;
    int typing_ms;
    int64_t expires_at;   /* the message's TTL: never asked again after it */
    int asks;             /* POST /send tries of this dispatch */
    int waiting;          /* a POST /send is on the wire */
    unsigned gen;         /* tells a stale reply from the current one */
    struct event *timer;  /* the next ask */
};

/* what an answer of the worker needs to find its dispatch again */
struct ask_ctx {
    int64_t session_id, msg_id;
    unsigned gen;
};

static struct event_base *evbase;
static const struct config *cfg;
static struct pacing_config pcfg;
static struct dsched *sched;
static struct event *tick_ev;
static struct message *scratch; /* one record for the loop's reads; never held across calls */
static char *opt_words[OPTOUT_MAX];
static int nopt_words;
static unsigned next_gen;

static uint64_t status_count[MS__COUNT]; /* transitions into each status since start */
static const double lag_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60};
static struct histo lag = {lag_bounds, sizeof lag_bounds / sizeof lag_bounds[0], {0}, 0, 0};

static void arm(void);
static void ask(struct inflight *f);

/* ---- sessions and levels ---- */

static enum pacing_level level_of(const struct session *s, int64_t now)
{
    int fixed = s->trust_level[0] ? pacing_level_parse(s->trust_level) : -1;
    return fixed >= 0 ? (enum pacing_level)fixed : pacing_level_for(&pcfg, s->first_connected_at, now);
}

/* the schedule entry of s, made current */
static struct dsched_sess *entry(const struct session *s, int64_t now)
{
    struct dsched_sess *e = dsched_get(sched, s->id);
    e->ready = s->status == SS_CONNECTED;
    e->level = level_of(s, now);
    return e;
}

static int64_t room_today(struct dsched_sess *e, int64_t now)
{
    return pacing_room_today(dsched_profile(sched, e), &e->pace, e->queued, now);
}

static void save_pacing(int64_t session_id, const struct pacing_state *p)
{
    struct store_pacing sp = {p->last_send, p->gap_ms, p->day, p->sent_today, p->failed_today};
    if (store_pacing_save(session_id, &sp) != STORE_OK)
        log_error("dispatch", "cannot save the pacing state session=worker_%lld", (long long)session_id);
}

/* ---- message status ---- */

static void observe_lag(int64_t ms) { histo_observe(&lag, ms < 0 ? 0 : (double)ms / 1000.0); }

/* a final or intermediate status, saved in the current batch */
static void set_status(struct message *m, enum msg_status st, const char *error, int64_t now)
{
    m->status = st;
    snprintf(m->error, sizeof m->error, "%s", error ? error : "");
    if (st == MS_SENT || st == MS_FAILED || st == MS_EXPIRED || st == MS_CANCELLED)
        m->finished_at = now;
    status_count[st]++;
    char sname[SESSION_NAME_MAX];
    snprintf(sname, sizeof sname, "worker_%lld", (long long)m->session_id);
    json_t *data = json_pack("{s:s,s:s}", "messageId", m->public_id, "status", msg_status_name(st));
    if (error)
        json_object_set_new(data, "error", json_string(m->error));
    events_emit(m->tenant_id, "message.status", sname, data);
    if (store_message_save(m) != STORE_OK)
        log_error("dispatch", "cannot save a message id=%s status=%s", m->public_id, msg_status_name(st));
    if (st != MS_SENDING)
        log_info("dispatch", "message id=%s session=worker_%lld status=%s%s%s", m->public_id,
                 (long long)m->session_id, msg_status_name(st), error ? " error=" : "", error ? error : "");
}

/* ---- in-flight messages ---- */

static void inflight_free(struct inflight *f)
{
    if (!f)
        return;
    if (f->timer)
        event_free(f->timer);
    free(f->text);
    free(f);
}

static struct inflight *inflight_of(int64_t session_id)
{
    struct dsched_sess *e = sched ? dsched_find(sched, session_id) : NULL;
    return e ? e->owner : NULL;
}

/* the message in flight is settled; requeued: it went back to the queue */
static void settle(int64_t session_id, int requeued, int64_t now)
{
    struct dsched_sess *e = dsched_find(sched, session_id);
    if (!e)
        return;
    inflight_free(e->owner);
    e->owner = NULL;
    dsched_settled(sched, e, requeued, now);
    arm();
}

static void ask_timer_cb(evutil_socket_t fd, short what, void *arg) { ask(arg); }

static void ask_later(struct inflight *f, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(f->timer, &tv);
}

/* gives up on a dispatch that never got a verdict from its worker */
static void give_up(struct inflight *f, const char *why)
{
    int64_t now = util_now_ms();
    if (store_message_get(f->msg_id, scratch) == STORE_OK && scratch->status == MS_SENDING) {
        set_status(scratch, MS_FAILED, why, now);
        struct dsched_sess *e = dsched_find(sched, f->session_id);
        if (e) {
            pacing_record_failure(&e->pace, now);
            save_pacing(f->session_id, &e->pace);
        }
    }
    settle(f->session_id, 0, now);
}

static void send_reply(const struct httpc_response *res, void *arg)
{
    struct ask_ctx *c = arg;
    struct inflight *f = inflight_of(c->session_id);
    if (!f || f->msg_id != c->msg_id || f->gen != c->gen) {
        free(c); /* settled meanwhile (the event came first) */
        return;
    }
    free(c);
    f->waiting = 0;
    if (res->status >= 200 && res->status < 300) {
        /* taken: MESSAGE_SENT or MESSAGE_FAILED follows; if neither does, ask again (a
         * worker that has sent it answers with MESSAGE_SENT, never a second send) */
        if (f->asks >= ASKS_MAX) {
            give_up(f, "the worker took the message but never reported whether it was sent");
            return;
        }
        ask_later(f, cfg->send_confirm_ms + f->typing_ms);
        return;
    }
    if (res->status == 400 || res->status == 413 || res->status == 422) {
        char why[TEXT_MAX];
        snprintf(why, sizeof why, "the worker refused the message (HTTP %ld): %.300s", res->status,
                 res->body ? res->body : "");
        util_utf8_fix(why);
        give_up(f, why);
        return;
    }
    if (f->asks >= ASKS_MAX) {
        give_up(f, "the worker neither took nor refused the message after repeated tries");
        return;
    }
    /* not connected, busy, down or unreachable: the same messageId again, later */
    long ms = cfg->message_retry_ms << (f->asks < 8 ? f->asks - 1 : 7);
    if (ms > ASK_BACKOFF_MAX_MS)
        ms = ASK_BACKOFF_MAX_MS;
    log_warn("dispatch", "send not taken, asking again id=%s session=worker_%lld status=%ld error=%s in_ms=%ld",
             f->public_id, (long long)f->session_id, res->status, res->error ? res->error : "-", ms);
    ask_later(f, ms);
}

#define UNCONFIRMED_TTL "not confirmed within its time to live: the worker may or may not have sent it, " \
                        "and it is not asked again"

/* POST /send to the session's worker, when it is connected; else the session's next
 * connection asks. Past the message's TTL nobody asks again: a worker that never had it
 * would send it late (a worker that had it can still report MESSAGE_SENT). f may be
 * freed. */
static void ask(struct inflight *f)
{
    struct session *s = session_get(f->session_id);
    evtimer_del(f->timer);
    if (f->waiting)
        return;
    if (util_now_ms() >= f->expires_at) {
        give_up(f, UNCONFIRMED_TTL);
        return;
    }
    if (!s || s->status != SS_CONNECTED || !s->worker.address[0])
        return;
    json_t *j = json_pack("{s:s,s:s,s:s,s:i}", "messageId", f->public_id, "to", f->to, "text", f->text,
                          "typingMs", f->typing_ms);
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    char key[HMAC_HEX_LEN + 1];
    session_worker_key(s, key);
    struct ask_ctx *c = xmalloc(sizeof *c);
    *c = (struct ask_ctx){f->session_id, f->msg_id, f->gen};
    f->asks++;
    f->waiting = 1;
    if (wclient_call(s->worker.address, key, "POST", "/send", body, cfg->send_timeout_ms + f->typing_ms,
                     send_reply, c) < 0) {
        free(c);
        f->waiting = 0;
        ask_later(f, cfg->message_retry_ms);
    }
    free(body);
}

static struct inflight *inflight_new(const struct message *m)
{
    struct inflight *f = xcalloc(1, sizeof *f);
    f->session_id = m->session_id;
    f->msg_id = m->id;
    snprintf(f->public_id, sizeof f->public_id, "%s", m->public_id);
    snprintf(f->to, sizeof f->to, "%s", m->to);
    f->text = xstrdup(m->text);
    size_t chars = 0;
    for (const char *p = m->text; *p; p++)
        chars += ((unsigned char)*p & 0xC0) != 0x80;
    f->typing_ms = pacing_typing_ms(&pcfg, chars);
    f->expires_at = m->expires_at;
    f->gen = ++next_gen;
    f->timer = evtimer_new(evbase, ask_timer_cb, f);
    return f;
}

static void ask_after_commit(void *arg, int ok)
{
    struct ask_ctx *c = arg;
    struct inflight *f = inflight_of(c->session_id);
    int current = f && f->msg_id == c->msg_id && f->gen == c->gen;
    free(c);
    if (!current)
        return;
    if (!ok) {
        /* the dispatch was rolled back: the message is queued again in the store */
        log_error("dispatch", "a dispatch was not committed; it is retried id=%s", f->public_id);
        settle(f->session_id, 1, util_now_ms());
        return;
    }
    ask(f);
}

/* ---- the loop ---- */

static int suppressed(int64_t tenant_id, const char *phone) { return store_suppression_has(tenant_id, phone); }

/* one due session: send its next message, or find out why not */
static void dispatch_one(struct dsched_sess *e, int64_t now)
{
    struct session *s = session_get(e->id);
    if (!s) {
        dsched_remove(sched, e->id);
        return;
    }
    e->ready = s->status == SS_CONNECTED;
    enum pacing_level lvl = level_of(s, now);
    if (lvl != e->level) {
        e->level = lvl; /* the account aged: decide again under its new profile */
        if (pacing_next_send(dsched_profile(sched, e), &e->pace, now) > now) {
            dsched_update(sched, e, now);
            return;
        }
    }
    struct message *m = scratch;
    int rc = store_message_head(e->id, now, m);
    if (rc == STORE_NOTFOUND) {
        e->queued = 0;
        dsched_update(sched, e, now);
        return;
    }
    if (rc != STORE_OK) {
        e->hold_until = now + 1000;
        dsched_update(sched, e, now);
        return;
    }
    if (m->not_before > now) {
        e->hold_until = m->not_before;
        dsched_update(sched, e, now);
        return;
    }
    if (m->expires_at <= now || suppressed(m->tenant_id, m->to)) {
        if (m->expires_at <= now)
            set_status(m, MS_EXPIRED, "not sent within its time to live", now);
        else
            set_status(m, MS_CANCELLED, "OPTED_OUT: the recipient opted out", now);
        e->queued--;
        dsched_update(sched, e, now);
        return;
    }
    m->attempts++;
    m->dispatched_at = now;
    m->not_before = 0;
    set_status(m, MS_SENDING, NULL, now);
    dsched_dispatched(sched, e, now, hmac_random01());
    save_pacing(e->id, &e->pace);
    struct inflight *f = inflight_new(m);
    e->owner = f;
    /* the worker hears of it only once `sending` is durable */
    struct ask_ctx *c = xmalloc(sizeof *c);
    *c = (struct ask_ctx){f->session_id, f->msg_id, f->gen};
    store_after_commit(ask_after_commit, c);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = util_now_ms();
    for (int n = 0; n < TICK_MAX; n++) {
        int64_t due = dsched_next_due(sched);
        struct dsched_sess *e = dsched_pop_due(sched, now);
        if (!e)
            break;
        observe_lag(now - due);
        dispatch_one(e, now);
    }
    arm();
}

/* the timer at the earliest due time; nothing polls */
static void arm(void)
{
    int64_t next = dsched_next_due(sched);
    if (next == INT64_MAX) {
        evtimer_del(tick_ev);
        return;
    }
    int64_t ms = next - util_now_ms();
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(tick_ev, &tv);
}

/* ---- housekeeping: TTLs and idempotency keys ---- */

struct expired {
    int64_t id, session_id;
};
struct expired_list {
    struct expired *v;
    size_t n;
};

static void collect_expired(const struct message *m, void *arg)
{
    struct expired_list *l = arg;
    l->v[l->n++] = (struct expired){m->id, m->session_id};
}

/* a message in flight that nobody will ask for again before its TTL (its session is not
 * connected, or the next ask is not due): given up now rather than left `sending` */
static void sweep_inflight(struct session *s, void *arg)
{
    struct inflight *f = inflight_of(s->id);
    if (f && !f->waiting && *(int64_t *)arg >= f->expires_at)
        give_up(f, UNCONFIRMED_TTL);
}

static void sweep_job(void)
{
    int64_t now = util_now_ms();
    session_each(sweep_inflight, &now);
    struct expired_list l = {xmalloc(SWEEP_MAX * sizeof *l.v), 0};
    store_message_expired(now, SWEEP_MAX, collect_expired, &l);
    for (size_t i = 0; i < l.n; i++) {
        if (store_message_get(l.v[i].id, scratch) != STORE_OK || scratch->status != MS_QUEUED)
            continue;
        set_status(scratch, MS_EXPIRED, "not sent within its time to live", now);
        struct dsched_sess *e = dsched_find(sched, l.v[i].session_id);
        if (e && e->queued > 0) {
            e->queued--;
            dsched_update(sched, e, now);
        }
    }
    free(l.v);
    store_idem_prune(now - IDEM_WINDOW_MS);
    arm();
}

/* ---- trust levels as the accounts age ---- */

static void trust_session(struct session *s, void *arg)
{
    struct dsched_sess *e = dsched_find(sched, s->id);
    int64_t now = *(int64_t *)arg;
    if (!e || s->trust_level[0] || !s->first_connected_at)
        return;
    enum pacing_level lvl = level_of(s, now);
    if (lvl == e->level)
        return;
    char why[96];
    snprintf(why, sizeof why, "trust level %s (was %s): the account is older", pacing_level_name(lvl),
             pacing_level_name(e->level));
    events_emit(s->tenant_id, "session.status", s->name,
                json_pack("{s:s,s:s,s:s,s:s,s:s}", "status", sess_status_name(s->status), "previous",
                          sess_status_name(s->status), "reason", why, "trustLevel", pacing_level_name(lvl),
                          "previousTrustLevel", pacing_level_name(e->level)));
    log_info("dispatch", "trust level changed session=%s level=%s", s->name, pacing_level_name(lvl));
    e->level = lvl;
    dsched_update(sched, e, now);
}

static void trust_job(void)
{
    int64_t now = util_now_ms();
    session_each(trust_session, &now);
    arm();
}

/* ---- session changes ---- */

void dispatch_session_changed(const struct session *s)
{
    if (!sched)
        return;
    int64_t now = util_now_ms();
    struct dsched_sess *e = entry(s, now);
    struct inflight *f = e->owner;
    if (e->ready && f && !f->waiting)
        ask(f); /* connected again: the message in flight is asked for at once */
    dsched_update(sched, e, now);
    arm();
}

void dispatch_session_deleted(int64_t id)
{
    if (!sched)
        return;
    if (store_message_cancel_session(id, "the session was deleted") != STORE_OK ||
        store_pacing_delete(id) != STORE_OK)
        log_error("dispatch", "cannot cancel the messages of a deleted session session=worker_%lld", (long long)id);
    struct dsched_sess *e = dsched_find(sched, id);
    if (e) {
        inflight_free(e->owner);
        dsched_remove(sched, id);
    }
    arm();
}

/* ---- worker events ---- */

/* the caller's message of this session, loaded into scratch; NULL when it is not */
static struct message *event_message(struct session *s, const char *public_id)
{
    if (store_message_find(public_id, scratch) != STORE_OK)
        return NULL;
    if (scratch->session_id != s->id) {
        log_warn("dispatch", "a worker reported another session's message session=%s id=%s", s->name, public_id);
        return NULL;
    }
    return scratch;
}

static int on_sent(struct session *s, const struct wevent *ev, int64_t now)
{
    struct message *m = event_message(s, ev->message_id);
    if (!m || m->status == MS_SENT || m->status == MS_EXPIRED || m->status == MS_CANCELLED)
        return 1;
    enum msg_status was = m->status;
    int64_t failed_at = m->finished_at;
    snprintf(m->wa_message_id, sizeof m->wa_message_id, "%s", ev->wa_message_id ? ev->wa_message_id : "");
    set_status(m, MS_SENT, NULL, now);
    if (was == MS_FAILED) {
        /* given up on, but the worker had sent it: its failure no longer counts */
        struct dsched_sess *fe = dsched_find(sched, s->id);
        if (fe && pacing_forget_failure(&fe->pace, failed_at))
            save_pacing(s->id, &fe->pace);
    }
    if (store_affinity_set(s->tenant_id, m->to, s->id, now) != STORE_OK)
        log_error("dispatch", "cannot save the recipient's session");
    struct inflight *f = inflight_of(s->id);
    if (f && f->msg_id == m->id) {
        settle(s->id, 0, now);
    } else if (was == MS_QUEUED) {
        /* waiting for a retry when the worker found it had sent it after all */
        struct dsched_sess *e = dsched_find(sched, s->id);
        if (e && e->queued > 0) {
            e->queued--;
            dsched_update(sched, e, now);
            arm();
        }
    }
    return 0;
}

static int on_failed(struct session *s, const struct wevent *ev, int64_t now)
{
    struct message *m = event_message(s, ev->message_id);
    if (!m || m->status != MS_SENDING)
        return 1;
    struct dsched_sess *e = entry(s, now);
    char why[TEXT_MAX];
    snprintf(why, sizeof why, "%.400s", ev->error ? ev->error : "the worker reported a failure");
    int requeue = ev->retryable && m->attempts < cfg->message_max_attempts && m->expires_at > now;
    if (requeue) {
        long delay = cfg->message_retry_ms << (m->attempts < 10 ? m->attempts - 1 : 9);
        delay += (long)(hmac_random01() * (double)delay / 4);
        m->not_before = now + delay;
        set_status(m, MS_QUEUED, why, now);
    } else {
        set_status(m, MS_FAILED, why, now);
        pacing_record_failure(&e->pace, now);
        save_pacing(s->id, &e->pace);
    }
    struct inflight *f = e->owner;
    if (f && f->msg_id == m->id) {
        settle(s->id, requeue, now);
    } else if (requeue) {
        e->queued++;
        dsched_update(sched, e, now);
        arm();
    }
    return 0;
}

static int on_received(struct session *s, const struct wevent *ev, int64_t now)
{
    struct inbound *in = xcalloc(1, sizeof *in);
    int rc = 1;
    if (util_phone_normalize(ev->from, in->from, sizeof in->from) < 0) {
        log_warn("dispatch", "an incoming message without a usable phone number session=%s", s->name);
        goto out;
    }
    in->tenant_id = s->tenant_id;
    in->session_id = s->id;
    snprintf(in->text, sizeof in->text, "%s", ev->text ? ev->text : "");
    util_utf8_fix(in->text);
    if (ev->wa_message_id && *ev->wa_message_id)
        snprintf(in->wa_message_id, sizeof in->wa_message_id, "%s", ev->wa_message_id);
    else
        hmac_random_hex(in->wa_message_id, 16);
    in->sent_at = ev->timestamp > 0 ? ev->timestamp : now;
    in->received_at = now;
    int st = store_inbox_insert(in);
    if (st == STORE_CONFLICT)
        goto out; /* the same message reported again */
    if (st != STORE_OK) {
        log_error("dispatch", "cannot store an incoming message session=%s", s->name);
        goto out;
    }
    store_affinity_set(s->tenant_id, in->from, s->id, now);
    char from[PHONE_MAX + 1];
    snprintf(from, sizeof from, "+%s", in->from);
    events_emit(s->tenant_id, "message.received", s->name,
                json_pack("{s:s,s:s,s:s}", "from", from, "text", in->text, "waMessageId", in->wa_message_id));
    if (optout_match(in->text, opt_words, nopt_words)) {
        char why[128];
        snprintf(why, sizeof why, "opt-out word received by %s", s->name);
        if (store_suppression_add(s->tenant_id, in->from, why) == STORE_OK)
            log_info("dispatch", "recipient opted out session=%s", s->name);
    }
    rc = 0;
out:
    free(in);
    return rc;
}

int dispatch_on_event(struct session *s, const struct wevent *ev)
{
    int64_t now = util_now_ms();
    switch (ev->type) {
    case WE_MESSAGE_SENT:
        return on_sent(s, ev, now);
    case WE_MESSAGE_FAILED:
        return on_failed(s, ev, now);
    case WE_MESSAGE_RECEIVED:
        return on_received(s, ev, now);
    default:
        return 1;
    }
}

/* ---- the API's side ---- */

static void result_error(struct send_result *out, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void result_error(struct send_result *out, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out->status = status;
    out->code = code;
    vsnprintf(out->msg, sizeof out->msg, fmt, ap);
    va_end(ap);
}

struct pick {
    int64_t tenant_id, now;
    struct session *best;
    int64_t best_room;
    int best_load;
    int connected;
};

static void pick_cb(struct session *s, void *arg)
{
    struct pick *p = arg;
    if (s->tenant_id != p->tenant_id || s->status != SS_CONNECTED)
        return;
    p->connected++;
    struct dsched_sess *e = entry(s, p->now);
    int64_t room = room_today(e, p->now);
    int load = e->queued + e->inflight;
    /* the most room left today; among equals (no daily cap) the shortest queue */
    if (!p->best || room > p->best_room || (room == p->best_room && load < p->best_load)) {
        p->best = s;
        p->best_room = room;
        p->best_load = load;
    }
}

static long seconds_to_midnight(int64_t now) { return (long)((pacing_next_midnight(now) - now + 999) / 1000); }

/* the session a message goes to, or NULL with out filled */
static struct session *choose(int64_t tenant_id, const struct send_req *rq, int64_t now, struct send_result *out)
{
    if (rq->session) {
        struct session *s = session_find(rq->session);
        if (!s || s->tenant_id != tenant_id) {
            result_error(out, 404, "SESSION_NOT_FOUND", "no session %s", rq->session);
            return NULL;
        }
        struct dsched_sess *e = entry(s, now);
        if (room_today(e, now) <= 0) {
            const struct pacing_profile *p = dsched_profile(sched, e);
            out->retry_after_s = seconds_to_midnight(now);
            result_error(out, 429, "DAILY_LIMIT", "%s has reached its daily limit of %d (sent today plus queued)",
                         s->name, p->per_day);
            return NULL;
        }
        return s;
    }
    int64_t sid;
    if (store_affinity_get(tenant_id, rq->to, &sid) == STORE_OK) {
        struct session *s = session_get(sid);
        /* SPEC §4.2: the connected session that last talked to them; one that is down
         * would hold the message while another could send it */
        if (s && s->tenant_id == tenant_id && s->status == SS_CONNECTED && room_today(entry(s, now), now) > 0)
            return s;
    }
    struct pick p = {tenant_id, now, NULL, 0, 0, 0};
    session_each(pick_cb, &p);
    if (!p.best) {
        result_error(out, 503, "NO_SESSION_AVAILABLE", "no connected session can take the message; "
                     "link a session or name one with sessionId");
        return NULL;
    }
    if (p.best_room <= 0) {
        out->retry_after_s = seconds_to_midnight(now);
        result_error(out, 429, "DAILY_LIMIT", "every connected session (%d) has reached its daily limit",
                     p.connected);
        return NULL;
    }
    return p.best;
}

int dispatch_enqueue(int64_t tenant_id, const struct send_req *rq, struct send_result *out)
{
    int64_t now = util_now_ms();
    memset(out, 0, sizeof *out);
    if (rq->idem_key) {
        int64_t mid, at;
        if (store_idem_get(tenant_id, rq->idem_key, &mid, &at) == STORE_OK && at > now - IDEM_WINDOW_MS &&
            store_message_get(mid, scratch) == STORE_OK) {
            out->status = 202;
            snprintf(out->message_id, sizeof out->message_id, "%s", scratch->public_id);
            return 0;
        }
    }
    if (suppressed(tenant_id, rq->to)) {
        result_error(out, 403, "OPTED_OUT", "the recipient opted out; remove them from the suppression list "
                     "to send again");
        return -1;
    }
    struct session *s = choose(tenant_id, rq, now, out);
    if (!s)
        return -1;
    struct message *m = scratch;
    memset(m, 0, sizeof *m);
    /* msg_ + the time in ms (11 hex digits) + 13 random ones: ids in creation order keep the
     * unique index's inserts on its last page instead of a random page each */
    char hex[15];
    if (hmac_random_hex(hex, 7) < 0) {
        result_error(out, 500, "INTERNAL", "no randomness for a message id");
        return -1;
    }
    snprintf(m->public_id, sizeof m->public_id, "msg_%011llx%.13s", (unsigned long long)now & 0xfffffffffffULL, hex);
    m->tenant_id = tenant_id;
    m->session_id = s->id;
    snprintf(m->to, sizeof m->to, "%s", rq->to);
    snprintf(m->text, sizeof m->text, "%s", rq->text);
    m->status = MS_QUEUED;
    m->created_at = now;
    m->expires_at = now + (rq->ttl_s > 0 ? (int64_t)rq->ttl_s * 1000 : cfg->message_ttl_ms);
    store_tx_begin();
    int ok = store_message_insert(m) == STORE_OK &&
             (!rq->idem_key || store_idem_put(tenant_id, rq->idem_key, m->id, now) == STORE_OK);
    store_tx_end(ok);
    if (!ok) {
        result_error(out, 500, "STORE_ERROR", "the message could not be stored");
        return -1;
    }
    status_count[MS_QUEUED]++;
    events_emit(tenant_id, "message.status", s->name,
                json_pack("{s:s,s:s}", "messageId", m->public_id, "status", "queued"));
    struct dsched_sess *e = entry(s, now);
    e->queued++;
    e->hold_until = 0; /* a retry's back-off holds back only itself: this one may go */
    dsched_update(sched, e, now);
    arm();
    out->status = 202;
    snprintf(out->message_id, sizeof out->message_id, "%s", m->public_id);
    return 0;
}

int dispatch_cancel(int64_t tenant_id, const char *public_id, struct message *m, struct send_result *out)
{
    int64_t now = util_now_ms();
    memset(out, 0, sizeof *out);
    if (store_message_find(public_id, m) != STORE_OK || m->tenant_id != tenant_id) {
        result_error(out, 404, "MESSAGE_NOT_FOUND", "no message %.40s", public_id);
        return -1;
    }
    if (m->status != MS_QUEUED) {
        result_error(out, 409, "NOT_CANCELLABLE", "the message is %s; only a queued message can be cancelled",
                     msg_status_name(m->status));
        return -1;
    }
    set_status(m, MS_CANCELLED, "cancelled by API", now);
    struct dsched_sess *e = dsched_find(sched, m->session_id);
    if (e && e->queued > 0) {
        e->queued--;
        e->hold_until = 0; /* it may have been the retry that held the queue */
        dsched_update(sched, e, now);
        arm();
    }
    out->status = 200;
    return 0;
}

void dispatch_session_json(const struct session *s, json_t *j)
{
    int64_t now = util_now_ms();
    struct dsched_sess *e = sched ? dsched_find(sched, s->id) : NULL;
    const struct pacing_profile *p = &pcfg.level[level_of(s, now)];
    json_object_set_new(j, "sentToday", json_integer(e ? pacing_sent_on(&e->pace, now) : 0));
    json_object_set_new(j, "failedToday", json_integer(e ? pacing_failed_on(&e->pace, now) : 0));
    json_object_set_new(j, "queued", json_integer(e ? e->queued : 0));
    json_object_set_new(j, "inFlight", json_boolean(e && e->inflight));
    json_object_set_new(j, "dailyLimit", p->per_day > 0 ? json_integer(p->per_day) : json_null());
    json_object_set_new(j, "trustLevel", json_string(pacing_level_name(level_of(s, now))));
    int64_t next = e && e->due >= 0 ? e->due : 0;
    if (next && next < now)
        next = now;
    json_object_set_new(j, "nextSendAt", api_time(next));
}

struct totals {
    int64_t tenant_id, now;
    json_int_t sent, failed, queued, inflight;
};

static void totals_cb(struct session *s, void *arg)
{
    struct totals *t = arg;
    if (t->tenant_id && s->tenant_id != t->tenant_id)
        return;
    struct dsched_sess *e = dsched_find(sched, s->id);
    if (!e)
        return;
    t->sent += pacing_sent_on(&e->pace, t->now);
    t->failed += pacing_failed_on(&e->pace, t->now);
    t->queued += e->queued;
    t->inflight += e->inflight;
}

void dispatch_totals_json(int64_t tenant_id, json_t *j)
{
    struct totals t = {tenant_id, util_now_ms(), 0, 0, 0, 0};
    if (sched)
        session_each(totals_cb, &t);
    json_object_set_new(j, "sentToday", json_integer(t.sent));
    json_object_set_new(j, "failedToday", json_integer(t.failed));
    json_object_set_new(j, "queued", json_integer(t.queued));
    json_object_set_new(j, "sending", json_integer(t.inflight));
}

static void add_queued(struct dsched_sess *e, void *arg) { *(int64_t *)arg += e->queued; }

char *dispatch_metrics_text(void)
{
    char *out = xappendf(NULL, "# HELP switchboard_messages_total Messages that entered each status since start.\n"
                               "# TYPE switchboard_messages_total counter\n");
    for (int i = 0; i < MS__COUNT; i++)
        out = xappendf(out, "switchboard_messages_total{status=\"%s\"} %llu\n", msg_status_name((enum msg_status)i),
                       (unsigned long long)status_count[i]);
    int64_t depth = 0;
    if (sched)
        dsched_each(sched, add_queued, &depth);
    out = xappendf(out, "# HELP switchboard_message_queue_depth Messages waiting to be dispatched.\n"
                        "# TYPE switchboard_message_queue_depth gauge\nswitchboard_message_queue_depth %lld\n",
                   (long long)depth);
    return histo_append(out, &lag, "switchboard_dispatch_lag_seconds", "How late a dispatch ran after its due time.");
}

/* ---- start-up and shutdown ---- */

static void load_pacing(int64_t id, const struct store_pacing *p, void *arg)
{
    struct dsched_sess *e = dsched_get(sched, id);
    e->pace.last_send = p->last_send_at;
    e->pace.gap_ms = p->gap_ms;
    e->pace.day = p->day;
    e->pace.sent_today = p->sent_today;
    e->pace.failed_today = p->failed_today;
}

static void load_recent(int64_t id, int64_t at, void *arg)
{
    struct pacing_state *p = &dsched_get(sched, id)->pace;
    p->recent[p->head] = at;
    p->head = (p->head + 1) % PACING_MINUTE_MAX;
    if (p->nrecent < PACING_MINUTE_MAX)
        p->nrecent++;
}

static void load_queued(int64_t id, int64_t n, void *arg) { dsched_get(sched, id)->queued = (int)n; }

static void load_sending(const struct message *m, void *arg)
{
    struct dsched_sess *e = dsched_get(sched, m->session_id);
    if (e->owner) {
        /* one in flight per session; any other goes back to the queue under its own
         * messageId, which the worker recognises should it have sent it */
        struct message *copy = xmalloc(sizeof *copy);
        *copy = *m;
        copy->status = MS_QUEUED;
        store_message_save(copy);
        free(copy);
        e->queued++;
        return;
    }
    e->owner = inflight_new(m);
    e->inflight = 1;
    (*(int *)arg)++;
}

static void load_session(struct session *s, void *arg)
{
    struct dsched_sess *e = entry(s, *(int64_t *)arg);
    dsched_update(sched, e, *(int64_t *)arg);
    struct inflight *f = e->owner;
    if (f && e->ready)
        ask(f); /* a message left `sending` by the last run: the same messageId again */
}

int dispatch_init(struct event_base *base, const struct config *c, char *err, size_t errlen)
{
    evbase = base;
    cfg = c;
    if (config_pacing(c, &pcfg, err, errlen) < 0 || optout_parse(c->opt_out_words, opt_words, OPTOUT_MAX, &nopt_words, err, errlen) < 0)
        return -1;
    sched = dsched_new(&pcfg);
    scratch = xmalloc(sizeof *scratch);
    tick_ev = evtimer_new(base, tick_cb, NULL);
    int64_t now = util_now_ms();
    int resumed = 0;
    if (store_pacing_load(load_pacing, NULL) < 0 || store_message_recent(now - 60000, load_recent, NULL) < 0 ||
        store_message_queued_counts(load_queued, NULL) < 0 || store_message_sending(load_sending, &resumed) < 0) {
        snprintf(err, errlen, "dispatch: cannot load the message queues");
        return -1;
    }
    session_each(load_session, &now);
    cron_every("messages.expire", c->monitor_interval_ms < SWEEP_MS ? c->monitor_interval_ms : SWEEP_MS, 1, sweep_job);
    cron_every("trust.levels", TRUST_CHECK_MS, 0, trust_job);
    arm();
    log_info("dispatch", "ready resumed_sending=%d", resumed);
    return 0;
}

static void free_entry(struct dsched_sess *e, void *arg)
{
    inflight_free(e->owner);
    e->owner = NULL;
}

void dispatch_shutdown(void)
{
    if (sched)
        dsched_each(sched, free_entry, NULL);
    dsched_free(sched);
    sched = NULL;
    if (tick_ev)
        event_free(tick_ev);
    tick_ev = NULL;
    free(scratch);
    scratch = NULL;
    for (int i = 0; i < nopt_words; i++)
        free(opt_words[i]);
    nopt_words = 0;
}
