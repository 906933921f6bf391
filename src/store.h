/* store: all SQL of the daemon. SQLite in WAL mode, schema versioned with
 * PRAGMA user_version.
 *
 * Group commit: the first write in a turn of the event loop opens a transaction;
 * a lowest-priority event commits it once the ready events of that turn are handled,
 * then runs the callbacks queued with store_after_commit (HTTP answers, side effects).
 * store_flush() commits at once; call it before any side effect that must follow
 * its state change. Records passed in are borrowed. */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct event_base;

enum store_rc { STORE_OK = 0, STORE_ERR = -1, STORE_CONFLICT = -2, STORE_NOTFOUND = -3 };

/* sync_full: fsync every commit (synchronous=FULL), else only at checkpoints (NORMAL) */
int store_open(struct event_base *base, const char *path, int sync_full, char *err, size_t errlen);
void store_close(void);
/* 0 when the database answers a trivial query. */
int store_ping(void);

/* A savepoint inside the batch: a handler that writes several rows wraps them so that a
 * failure rolls back only its own writes. */
void store_tx_begin(void);
void store_tx_end(int ok);
/* Runs fn(arg) after the current batch commits with ok=1, or ok=0 when the commit failed;
 * at once (ok=1) when no batch is open. */
void store_after_commit(void (*fn)(void *arg, int ok), void *arg);
/* 1 while a batch is open: rows written now are not committed yet */
int store_in_batch(void);
/* Commits the open batch now. 0 or -1. */
int store_flush(void);

/* tenants and keys */
int store_tenant_insert(const char *name, int64_t *id);
int store_apikey_insert(int64_t tenant_id, const char *key_hash);
/* STORE_OK with *tenant_id, or STORE_NOTFOUND */
int store_apikey_lookup(const char *key_hash, int64_t *tenant_id);

/* sessions */
int store_session_insert(struct session *s); /* sets s->id */
int store_session_save(const struct session *s);
int store_session_delete(int64_t id);
/* only last_ping_at: the hot path of PING events */
int store_session_ping(int64_t id, int64_t at_ms);
/* calls cb for every stored session (a temporary the callback copies) */
int store_session_load(void (*cb)(const struct session *s, void *arg), void *arg);

/* proxies */
int store_proxy_insert(struct proxy *p); /* sets p->id; STORE_CONFLICT when (tenant,url) exists */
int store_proxy_save(const struct proxy *p);
int store_proxy_delete(int64_t id);
int store_proxy_load(void (*cb)(const struct proxy *p, void *arg), void *arg);

/* phone -> proxy bindings */
int store_binding_set(int64_t tenant_id, const char *phone, int64_t proxy_id);
int store_binding_load(void (*cb)(const struct binding *b, void *arg), void *arg);

/* messages. Records are the caller's; list callbacks get a temporary they copy. */
int store_message_insert(struct message *m); /* sets m->id; STORE_CONFLICT on a public_id clash */
/* status, attempts, error, wa_message_id, not_before, dispatched_at, finished_at */
int store_message_save(const struct message *m);
int store_message_get(int64_t id, struct message *out);         /* STORE_OK / NOTFOUND / ERR */
int store_message_find(const char *public_id, struct message *out);
/* the session's next queued message at now: the oldest that may go (a retry whose
 * back-off is over keeps its place among the others); when none may, the retry that may
 * go first (its not_before is after now) */
int store_message_head(int64_t session_id, int64_t now, struct message *out);
/* queued messages whose TTL ran out by now, at most limit */
int store_message_expired(int64_t now, int limit, void (*cb)(const struct message *m, void *arg), void *arg);
int store_message_sending(void (*cb)(const struct message *m, void *arg), void *arg);
/* newest first; session_id 0 and status NULL match all; before_id 0 starts at the newest */
int store_message_list(int64_t tenant_id, int64_t session_id, const char *status, int64_t before_id,
                       int limit, void (*cb)(const struct message *m, void *arg), void *arg);
/* every queued or sending message of the session becomes cancelled with why */
int store_message_cancel_session(int64_t session_id, const char *why);
int store_message_queued_counts(void (*cb)(int64_t session_id, int64_t n, void *arg), void *arg);
/* (session, dispatched_at) of the sends after since, oldest first */
int store_message_recent(int64_t since, void (*cb)(int64_t session_id, int64_t at, void *arg), void *arg);
int store_message_status_counts(int64_t counts[MS__COUNT]);

/* idempotency keys: tenant + key -> message row id */
int store_idem_get(int64_t tenant_id, const char *key, int64_t *message_id, int64_t *created_at);
int store_idem_put(int64_t tenant_id, const char *key, int64_t message_id, int64_t at);
int store_idem_prune(int64_t before);

/* a session's pacing counters (pacing_state less the per-minute ring, which is rebuilt
 * from the messages' dispatch times) */
struct store_pacing {
    int64_t last_send_at, gap_ms, day;
    int sent_today, failed_today;
};
int store_pacing_save(int64_t session_id, const struct store_pacing *p);
int store_pacing_delete(int64_t session_id);
int store_pacing_load(void (*cb)(int64_t session_id, const struct store_pacing *p, void *arg), void *arg);

/* incoming messages; STORE_CONFLICT when (session, waMessageId) was stored before */
int store_inbox_insert(struct inbound *in);
/* oldest first, received_at >= since and id > after_id */
int store_inbox_list(int64_t tenant_id, int64_t session_id, int64_t since, int64_t after_id, int limit,
                     void (*cb)(const struct inbound *in, void *arg), void *arg);

/* the session that last exchanged messages with a recipient */
int store_affinity_set(int64_t tenant_id, const char *recipient, int64_t session_id, int64_t at);
int store_affinity_get(int64_t tenant_id, const char *recipient, int64_t *session_id);

/* the tenant's suppression list (opted-out phones) */
int store_suppression_add(int64_t tenant_id, const char *phone, const char *reason); /* CONFLICT: already */
int store_suppression_delete(int64_t tenant_id, const char *phone);                 /* NOTFOUND */
int store_suppression_has(int64_t tenant_id, const char *phone);                    /* 1 or 0 */
/* in phone order after `after` ("" = from the start) */
int store_suppression_list(int64_t tenant_id, const char *after, int limit,
                           void (*cb)(const char *phone, const char *reason, int64_t at, void *arg),
                           void *arg);

/* leads; STORE_CONFLICT when the tenant has the phone already */
int store_lead_insert(struct lead *l); /* sets l->id */
int store_lead_get(int64_t id, struct lead *out);
int store_lead_list(int64_t tenant_id, int offset, int limit, void (*cb)(const struct lead *l, void *arg), void *arg);
int64_t store_lead_count(int64_t tenant_id);

/* call runs */
int store_run_insert(struct call_run *r); /* sets r->id */
int store_run_save(const struct call_run *r); /* status, finished_at */
int store_run_get(int64_t id, struct call_run *out);
int store_run_list(int64_t tenant_id, int limit, void (*cb)(const struct call_run *r, void *arg), void *arg);
int store_run_counts(int64_t run_id, struct run_counts *c);
/* 1 while the run has a job queued or holding a slot */
int store_run_open_jobs(int64_t run_id);

/* call jobs */
int store_job_insert(struct call_job *j); /* sets j->id */
int store_job_save(const struct call_job *j);
int store_job_get(int64_t id, struct call_job *out);
int store_job_by_sid(const char *sid, struct call_job *out);
/* the tenant's next queued job due by now: small-batch jobs first, then by id */
int store_job_next(int64_t tenant_id, int64_t now, struct call_job *out);
/* the earliest not_before of the tenant's queued jobs, 0 when none */
int64_t store_job_next_wake(int64_t tenant_id);
/* 1 (and its run) when the lead has a job that is not finished */
int store_job_lead_open(int64_t lead_id, int64_t *run_id);
/* jobs holding a slot (dialing, ringing, in progress) */
int store_job_open(void (*cb)(const struct call_job *j, void *arg), void *arg);
/* the run's queued jobs become canceled; the count, or -1 */
int store_job_cancel_queued(int64_t run_id, const char *why, int64_t now);
/* newest first, with the lead's name */
int store_job_recent(int64_t tenant_id, int offset, int limit,
                     void (*cb)(const struct call_job *j, const char *lead_name, void *arg), void *arg);
int64_t store_job_count(int64_t tenant_id);
/* 1 when a job holds this CallSid */
int store_job_sid_taken(const char *sid);
int store_job_tenants_queued(void (*cb)(int64_t tenant_id, void *arg), void *arg);

/* the event log; ids only grow (never reused after pruning) */
struct store_event {
    int64_t id, tenant_id;
    const char *type, *session, *data; /* borrowed for the callback */
    int64_t at;
};
int store_event_insert(int64_t tenant_id, const char *type, const char *session, const char *data, int64_t at,
                       int64_t *id);
/* after after_id and up to upto_id, oldest first: the first `limit` of them, or with
 * `newest` the last `limit`; types ",a,b," (or "" for all), session "" for all */
int store_event_list(int64_t tenant_id, int64_t after_id, int64_t upto_id, const char *types, const char *session,
                     int limit, int newest, void (*cb)(const struct store_event *e, void *arg), void *arg);
/* the newest event id of the tenant (0: of all), 0 when none */
int64_t store_event_last(int64_t tenant_id);
/* deletes events older than before_at and all but the newest keep; the count, or -1 */
int store_event_prune(int64_t before_at, int64_t keep);

/* customer webhooks; strings borrowed for the callback (secret is a secret) */
struct store_hook {
    int64_t id, tenant_id;
    const char *url, *events, *secret, *status;
    int64_t created_at;
};
int store_hook_insert(struct store_hook *h); /* sets h->id */
int store_hook_set_status(int64_t id, const char *status);
/* the webhook and all its deliveries */
int store_hook_delete(int64_t id);
int store_hook_load(void (*cb)(const struct store_hook *h, void *arg), void *arg);

/* one event for one webhook: the outbox row, committed with the event */
struct delivery {
    int64_t id, webhook_id, event_id;
    char event_type[24];
    char *payload;        /* owned; store_delivery_get/next replace it (free it when done) */
    char status[12];      /* pending | delivered | dead */
    int attempts;
    int64_t next_at;
    int last_status;
    char last_error[TEXT_MAX];
    int64_t created_at, done_at;
    int64_t retry_from;   /* the retry window runs from here (the event, or the last replay) */
};
int store_delivery_insert(int64_t webhook_id, int64_t event_id, const char *type, const char *payload, int64_t at);
/* status, attempts, next_at, last_status, last_error, done_at */
int store_delivery_save(const struct delivery *d);
int store_delivery_get(int64_t id, struct delivery *out);
/* the webhook's pending deliveries whose retry window began at or before
 * retry_from_before are dead, with why as their last error; the count or -1 */
int store_delivery_expire(int64_t webhook_id, int64_t retry_from_before, int64_t now, const char *why);
/* the webhook's oldest pending delivery */
int store_delivery_next(int64_t webhook_id, struct delivery *out);
/* newest first */
int store_delivery_list(int64_t webhook_id, const char *status, int64_t before_id, int limit,
                        void (*cb)(const struct delivery *d, void *arg), void *arg);
/* delivered ones done before before_at, dead ones before dead_before_at; the count or -1 */
int store_delivery_prune(int64_t before_at, int64_t dead_before_at);

/* dashboard logins: the hash of each session cookie (never the cookie itself) */
int store_web_insert(const char *token_hash, int64_t tenant_id, int admin, int64_t now, int64_t expires_at);
/* STORE_OK with the login's tenant while it has not expired, else STORE_NOTFOUND */
int store_web_get(const char *token_hash, int64_t now, int64_t *tenant_id, int *admin);
int store_web_delete(const char *token_hash);
int store_web_prune(int64_t now);

/* counters of the batch machinery, for /metrics */
struct store_stats {
    uint64_t commits;
    uint64_t commit_failures;
};
void store_get_stats(struct store_stats *st);

#endif
