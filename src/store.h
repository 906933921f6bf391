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

int store_open(struct event_base *base, const char *path, char *err, size_t errlen);
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

/* counters of the batch machinery, for /metrics */
struct store_stats {
    uint64_t commits;
    uint64_t commit_failures;
};
void store_get_stats(struct store_stats *st);

#endif
