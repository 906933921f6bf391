/* dispatch: durable outbound messages and their anti-ban pacing (SPEC §4.2, §4.4).
 * Accepts messages (committed before the answer), keeps one schedule entry per session
 * (dsched.c, decisions in pacing.c), and hands each due message to its worker: the row
 * is committed as `sending` before POST /send, with the message's stable messageId, so
 * a retry after any crash is recognised by the worker and never sent twice. Worker
 * events settle the messages; incoming texts land in the inbox and may opt the sender
 * out. Owns its state; the session service tells it of status changes. */
#ifndef SB_DISPATCH_H
#define SB_DISPATCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct config;
struct event_base;
struct send_req;
struct session;
struct wevent;

/* after session_init: loads queues, pacing and messages left `sending` */
int dispatch_init(struct event_base *base, const struct config *cfg, char *err, size_t errlen);
void dispatch_shutdown(void);

/* the session's status or fixed trust level changed */
void dispatch_session_changed(const struct session *s);
/* the session is gone: its open messages are cancelled */
void dispatch_session_deleted(int64_t id);
/* MESSAGE_SENT / MESSAGE_FAILED / MESSAGE_RECEIVED; returns 1 when it changed nothing */
int dispatch_on_event(struct session *s, const struct wevent *ev);

struct send_result {
    int status;                /* HTTP status */
    const char *code;          /* error code, NULL on success */
    char msg[256];
    long retry_after_s;        /* DAILY_LIMIT */
    char message_id[MSG_ID_MAX];
};
/* accepts one message for the tenant: 0 (queued, or the first answer of the same
 * idempotency key) or -1; out says which. Commits through the store's batch. */
int dispatch_enqueue(int64_t tenant_id, const struct send_req *req, struct send_result *out);
/* cancels a queued message: 0, or -1 with out->status 404 / 409 */
int dispatch_cancel(int64_t tenant_id, const char *public_id, struct message *msg, struct send_result *out);

/* sentToday, failedToday, queued, dailyLimit, trustLevel, nextSendAt into j */
void dispatch_session_json(const struct session *s, json_t *j);
/* totals over the tenant's sessions (tenant 0: all) into j */
void dispatch_totals_json(int64_t tenant_id, json_t *j);
/* Prometheus lines of the dispatcher, appended by the caller; caller frees */
char *dispatch_metrics_text(void);

#endif
