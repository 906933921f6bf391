#include "alert.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alertq.h"
#include "config.h"
#include "events.h"
#include "httpc.h"
#include "log.h"
#include "util.h"

#define QUEUE_MAX 1000        /* alerts waiting to be sent; the oldest goes when it is full */
#define TRIES_MAX 3
#define TEXT_MAX_BYTES 1024
#define RETRY_AFTER_MAX_S 3600

static const char *const kind_names[ALERT__COUNT] = {
    [ALERT_CONNECTED] = "connected",         [ALERT_DISCONNECTED] = "disconnected",
    [ALERT_PROXY_SWITCHED] = "proxy_switched", [ALERT_LOGGED_OUT] = "logged_out",
    [ALERT_SESSION_FAILED] = "session_failed", [ALERT_PROXY_BAD] = "proxy_bad",
    [ALERT_RUN_FINISHED] = "run_finished",   [ALERT_BACKUP_FAILED] = "backup_failed",
};
static const char *const kind_marks[ALERT__COUNT] = {
    [ALERT_CONNECTED] = "✅",      [ALERT_DISCONNECTED] = "⚠️",  [ALERT_PROXY_SWITCHED] = "🔄",
    [ALERT_LOGGED_OUT] = "🚪",     [ALERT_SESSION_FAILED] = "❌", [ALERT_PROXY_BAD] = "🛑",
    [ALERT_RUN_FINISHED] = "📞",   [ALERT_BACKUP_FAILED] = "💾",
};

enum target { TO_TELEGRAM, TO_WEBHOOK };

/* a (kind, subject) whose repeats are being counted */
struct fold {
    enum alert_kind kind;
    int64_t tenant_id;
    char subject[64];
    char last_text[TEXT_MAX_BYTES];
    int repeats;
    int done;          /* the window is over; freed by the next raise or at shutdown */
    struct event *ev;  /* the window's end */
    struct fold *next;
};

static struct event_base *evbase;
static const struct config *cfg;
static char *tg_url;               /* holds the token: never logged */
static struct alertq queue = {.max = QUEUE_MAX}; /* bodies are JSON; `to` an enum target */
static struct event *resume_ev;
static struct fold *folds;
static uint64_t n_sent, n_failed, n_folded;

static void pump(void);

const char *alert_kind_name(enum alert_kind k) { return k < ALERT__COUNT ? kind_names[k] : "alert"; }

void alert_counts(uint64_t *sent, uint64_t *failed, uint64_t *folded)
{
    *sent = n_sent;
    *failed = n_failed;
    *folded = n_folded;
}

/* ---- the send queue ---- */

static void enqueue(enum target to, char *body)
{
    if (alertq_push(&queue, to, body)) {
        n_failed++;
        log_warn("alert", "alert queue full: the oldest waiting alert was dropped");
    }
    pump();
}

static void resume_cb(evutil_socket_t fd, short what, void *arg) { pump(); }

static void later(long seconds)
{
    struct timeval tv = {seconds, 0};
    evtimer_add(resume_ev, &tv);
}

static void on_sent(const struct httpc_response *res, void *arg)
{
    queue.in_flight = 0;
    struct alertq_item *o = queue.head;
    if (!o)
        return;
    const char *target = o->to == TO_TELEGRAM ? "telegram" : "webhook";
    if (res->status >= 200 && res->status < 300) {
        n_sent++;
        alertq_pop(&queue);
        pump();
        return;
    }
    if (res->status == 429 && o->to == TO_TELEGRAM) {
        /* {"ok":false,"error_code":429,"parameters":{"retry_after":N}}: wait, then the same again */
        long wait = 5;
        json_error_t je;
        json_t *j = res->body ? json_loadb(res->body, res->len, 0, &je) : NULL;
        json_t *ra = json_object_get(json_object_get(j, "parameters"), "retry_after");
        if (json_is_integer(ra) && json_integer_value(ra) >= 0 && json_integer_value(ra) <= RETRY_AFTER_MAX_S)
            wait = (long)json_integer_value(ra);
        json_decref(j);
        log_warn("alert", "telegram asks to slow down retry_after_s=%ld", wait);
        later(wait > 0 ? wait : 1);
        return;
    }
    if (++o->tries >= TRIES_MAX) {
        n_failed++;
        log_warn("alert", "alert not delivered, dropped target=%s status=%ld error=%s", target, res->status,
                 res->status ? "-" : (res->error ? res->error : "no answer"));
        alertq_pop(&queue);
        pump();
        return;
    }
    later(o->tries * 2L);
}

static void pump(void)
{
    if (queue.in_flight || !queue.head || evtimer_pending(resume_ev, NULL))
        return;
    struct alertq_item *o = queue.head;
    const char *url = o->to == TO_TELEGRAM ? tg_url : cfg->alert_webhook_url;
    const char *headers[] = {"Content-Type: application/json", NULL};
    queue.in_flight = 1;
    if (httpc_request("POST", url, headers, o->body, strlen(o->body), 10000, 64 * 1024, NULL, on_sent, NULL) < 0) {
        queue.in_flight = 0;
        later(5);
    }
}

/* ---- raising and folding ---- */

static void deliver(int64_t tenant_id, enum alert_kind kind, const char *subject, const char *text)
{
    char line[TEXT_MAX_BYTES + 64];
    snprintf(line, sizeof line, "%s %s", kind_marks[kind], text);
    util_utf8_fix(line);
    if (tg_url) {
        json_t *j = json_pack("{s:s,s:s}", "chat_id", cfg->telegram_chat_id, "text", line);
        enqueue(TO_TELEGRAM, json_dumps(j, JSON_COMPACT));
        json_decref(j);
    }
    if (cfg->alert_webhook_url[0]) {
        char at[40];
        util_iso8601(util_now_ms(), at, sizeof at);
        json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:s}", "kind", kind_names[kind], "subject", subject, "text", line,
                              "tenant", (json_int_t)tenant_id, "at", at);
        enqueue(TO_WEBHOOK, json_dumps(j, JSON_COMPACT));
        json_decref(j);
    }
}

static void fold_end(evutil_socket_t fd, short what, void *arg)
{
    struct fold *f = arg;
    if (f->repeats > 0) {
        char text[TEXT_MAX_BYTES + 96];
        long min = cfg->alert_fold_ms / 60000;
        if (min > 0)
            snprintf(text, sizeof text, "%s (%d more in the last %ld min)", f->last_text, f->repeats, min);
        else
            snprintf(text, sizeof text, "%s (%d more in the last %ld s)", f->last_text, f->repeats,
                     cfg->alert_fold_ms / 1000);
        deliver(f->tenant_id, f->kind, f->subject, text);
    }
    f->done = 1;
}

static void reap_folds(void)
{
    for (struct fold **p = &folds; *p;) {
        struct fold *f = *p;
        if (f->done) {
            *p = f->next;
            event_free(f->ev);
            free(f);
        } else {
            p = &f->next;
        }
    }
}

void alert_raise(int64_t tenant_id, enum alert_kind kind, const char *subject, const char *text)
{
    if (kind >= ALERT__COUNT)
        return;
    events_emit(tenant_id, "alert", strncmp(subject, "worker_", 7) == 0 ? subject : NULL,
                json_pack("{s:s,s:s,s:s}", "kind", kind_names[kind], "subject", subject, "text", text));
    if (!evbase || (!tg_url && !cfg->alert_webhook_url[0]))
        return;
    reap_folds();
    for (struct fold *f = folds; f; f = f->next) {
        if (f->kind == kind && f->tenant_id == tenant_id && strcmp(f->subject, subject) == 0) {
            f->repeats++;
            n_folded++;
            snprintf(f->last_text, sizeof f->last_text, "%s", text);
            return;
        }
    }
    deliver(tenant_id, kind, subject, text);
    struct fold *f = xcalloc(1, sizeof *f);
    f->kind = kind;
    f->tenant_id = tenant_id;
    snprintf(f->subject, sizeof f->subject, "%s", subject);
    snprintf(f->last_text, sizeof f->last_text, "%s", text);
    f->ev = evtimer_new(evbase, fold_end, f);
    struct timeval tv = {cfg->alert_fold_ms / 1000, (cfg->alert_fold_ms % 1000) * 1000};
    evtimer_add(f->ev, &tv);
    f->next = folds;
    folds = f;
}

int alert_init(struct event_base *base, const struct config *c)
{
    evbase = base;
    cfg = c;
    resume_ev = evtimer_new(base, resume_cb, NULL);
    if (c->telegram_bot_token[0] && c->telegram_chat_id[0])
        tg_url = xasprintf("%s/bot%s/sendMessage", c->telegram_api_base, c->telegram_bot_token);
    log_info("alert", "ready telegram=%s webhook=%s", tg_url ? "on" : "off", c->alert_webhook_url[0] ? "on" : "off");
    return 0;
}

void alert_shutdown(void)
{
    alertq_clear(&queue);
    while (folds) {
        struct fold *f = folds;
        folds = f->next;
        event_free(f->ev);
        free(f);
    }
    if (resume_ev)
        event_free(resume_ev);
    resume_ev = NULL;
    if (tg_url) {
        memset(tg_url, 0, strlen(tg_url));
        free(tg_url);
    }
    tg_url = NULL;
    evbase = NULL;
}
