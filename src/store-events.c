/* store-events: the SQL of the event log, customer webhooks and their deliveries, dashboard logins; see store.h. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-int.h"
#include "util.h"

#define DLV_COLS                                                                              \
    "id, webhook_id, event_id, event_type, payload, status, attempts, next_at, last_status, last_error, " \
    "created_at, done_at, retry_from"

enum stmt_id {
    ST_HOOK_INSERT,
    ST_HOOK_SAVE,
    ST_HOOK_DELETE,
    ST_HOOK_LOAD,
    ST_DLV_INSERT,
    ST_DLV_SAVE,
    ST_DLV_GET,
    ST_DLV_NEXT,
    ST_DLV_LIST,
    ST_DLV_DELETE_HOOK,
    ST_DLV_PRUNE,
    ST_DLV_EXPIRE,
    ST_WEB_INSERT,
    ST_WEB_GET,
    ST_WEB_DELETE,
    ST_WEB_PRUNE,
    ST_EVENT_INSERT,
    ST_EVENT_LIST,
    ST_EVENT_LIST_NEWEST,
    ST_EVENT_LAST,
    ST_EVENT_PRUNE_AGE,
    ST_EVENT_PRUNE_COUNT,
    ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
    [ST_HOOK_INSERT] = "INSERT INTO webhooks (tenant_id, url, events, secret, status, created_at) VALUES (?1, ?2, ?3, "
                       "?4, ?5, ?6)",
    [ST_HOOK_SAVE] = "UPDATE webhooks SET status = ?2 WHERE id = ?1",
    [ST_HOOK_DELETE] = "DELETE FROM webhooks WHERE id = ?1",
    [ST_HOOK_LOAD] = "SELECT id, tenant_id, url, events, secret, status, created_at FROM webhooks ORDER BY id",
    [ST_DLV_INSERT] = "INSERT INTO deliveries (webhook_id, event_id, event_type, payload, status, next_at, created_at, "
                      "retry_from) "
                      "VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?5)",
    [ST_DLV_SAVE] = "UPDATE deliveries SET status = ?2, attempts = ?3, next_at = ?4, last_status = ?5, last_error = ?6, "
                    "done_at = ?7, retry_from = ?8 WHERE id = ?1",
    [ST_DLV_GET] = "SELECT " DLV_COLS " FROM deliveries WHERE id = ?1",
    [ST_DLV_NEXT] = "SELECT " DLV_COLS " FROM deliveries WHERE webhook_id = ?1 AND status = 'pending' ORDER BY id LIMIT 1",
    [ST_DLV_LIST] = "SELECT " DLV_COLS " FROM deliveries WHERE webhook_id = ?1 AND (?2 = '' OR status = ?2) AND "
                    "(?3 = 0 OR id < ?3) ORDER BY id DESC LIMIT ?4",
    [ST_DLV_DELETE_HOOK] = "DELETE FROM deliveries WHERE webhook_id = ?1",
    [ST_DLV_PRUNE] = "DELETE FROM deliveries WHERE (status = 'delivered' AND done_at < ?1) OR "
                     "(status = 'dead' AND done_at < ?2)",
    [ST_DLV_EXPIRE] = "UPDATE deliveries SET status = 'dead', done_at = ?3, last_error = ?4 WHERE webhook_id = ?1 "
                      "AND status = 'pending' AND retry_from <= ?2",
    [ST_WEB_INSERT] = "INSERT INTO web_sessions (token_hash, tenant_id, admin, created_at, expires_at) VALUES (?1, ?2, "
                      "?3, ?4, ?5)",
    [ST_WEB_GET] = "SELECT tenant_id, admin FROM web_sessions WHERE token_hash = ?1 AND expires_at > ?2",
    [ST_WEB_DELETE] = "DELETE FROM web_sessions WHERE token_hash = ?1",
    [ST_WEB_PRUNE] = "DELETE FROM web_sessions WHERE expires_at <= ?1",
    [ST_EVENT_INSERT] = "INSERT INTO events (tenant_id, type, session, data, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_EVENT_LIST] = "SELECT id, tenant_id, type, session, data, at FROM events WHERE tenant_id = ?1 AND id > ?2 "
                      "AND id <= ?6 AND (?3 = '' OR instr(?3, ',' || type || ',') > 0) AND "
                      "(?4 = '' OR session = ?4) ORDER BY id LIMIT ?5",
    [ST_EVENT_LIST_NEWEST] = "SELECT * FROM (SELECT id, tenant_id, type, session, data, at FROM events WHERE "
                             "tenant_id = ?1 AND id > ?2 AND id <= ?6 AND (?3 = '' OR instr(?3, ',' || type || ',') > 0) "
                             "AND (?4 = '' OR session = ?4) ORDER BY id DESC LIMIT ?5) ORDER BY id",
    [ST_EVENT_LAST] = "SELECT coalesce(max(id), 0) FROM events WHERE (?1 = 0 OR tenant_id = ?1)",
    [ST_EVENT_PRUNE_AGE] = "DELETE FROM events WHERE at < ?1",
    [ST_EVENT_PRUNE_COUNT] = "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?1",
};

static sqlite3_stmt *stmts[ST__COUNT];

static sqlite3_stmt *st(enum stmt_id id) { return store_reset(stmts[id]); }

int store_events_prepare(char *err, size_t errlen) { return store_prepare_all(stmt_sql, stmts, ST__COUNT, err, errlen); }

void store_events_finalize(void) { store_finalize_all(stmts, ST__COUNT); }

/* ---- events ---- */

int store_event_insert(int64_t tenant_id, const char *type, const char *session, const char *data, int64_t at,
                       int64_t *id)
{
    sqlite3_stmt *s = st(ST_EVENT_INSERT);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, session ? session : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, data, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 5, at);
    int rc = store_write(s);
    if (rc == STORE_OK && id)
        *id = sqlite3_last_insert_rowid(store_db);
    return rc;
}

int64_t store_event_last(int64_t tenant_id) { return store_count_of(st(ST_EVENT_LAST), tenant_id); }

int store_event_list(int64_t tenant_id, int64_t after_id, int64_t upto_id, const char *types, const char *session,
                     int limit, int newest, void (*cb)(const struct store_event *e, void *arg), void *arg)
{
    sqlite3_stmt *s = st(newest ? ST_EVENT_LIST_NEWEST : ST_EVENT_LIST);
    sqlite3_bind_int64(s, 6, upto_id);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_int64(s, 2, after_id);
    sqlite3_bind_text(s, 3, types ? types : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, session ? session : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 5, limit);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_event e = {
            .id = sqlite3_column_int64(s, 0),
            .tenant_id = sqlite3_column_int64(s, 1),
            .type = (const char *)sqlite3_column_text(s, 2),
            .session = (const char *)sqlite3_column_text(s, 3),
            .data = (const char *)sqlite3_column_text(s, 4),
            .at = sqlite3_column_int64(s, 5),
        };
        cb(&e, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_event_prune(int64_t before_at, int64_t keep)
{
    sqlite3_stmt *s = st(ST_EVENT_PRUNE_AGE);
    sqlite3_bind_int64(s, 1, before_at);
    int rc = store_write(s);
    int n = rc == STORE_OK ? sqlite3_changes(store_db) : 0;
    s = st(ST_EVENT_PRUNE_COUNT);
    sqlite3_bind_int64(s, 1, keep);
    if (store_write(s) == STORE_OK)
        n += sqlite3_changes(store_db);
    return rc == STORE_OK ? n : -1;
}

/* ---- customer webhooks and their deliveries ---- */

int store_hook_insert(struct store_hook *h)
{
    sqlite3_stmt *s = st(ST_HOOK_INSERT);
    sqlite3_bind_int64(s, 1, h->tenant_id);
    sqlite3_bind_text(s, 2, h->url, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, h->events, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, h->secret, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 5, h->status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 6, h->created_at);
    int rc = store_write(s);
    if (rc == STORE_OK)
        h->id = sqlite3_last_insert_rowid(store_db);
    return rc;
}

int store_hook_set_status(int64_t id, const char *status)
{
    sqlite3_stmt *s = st(ST_HOOK_SAVE);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, status, -1, SQLITE_TRANSIENT);
    return store_write(s);
}

int store_hook_delete(int64_t id)
{
    sqlite3_stmt *s = st(ST_DLV_DELETE_HOOK);
    sqlite3_bind_int64(s, 1, id);
    int rc = store_write(s);
    if (rc != STORE_OK)
        return rc;
    s = st(ST_HOOK_DELETE);
    sqlite3_bind_int64(s, 1, id);
    return store_write(s);
}

int store_hook_load(void (*cb)(const struct store_hook *h, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_HOOK_LOAD);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_hook h = {
            .id = sqlite3_column_int64(s, 0),
            .tenant_id = sqlite3_column_int64(s, 1),
            .url = (const char *)sqlite3_column_text(s, 2),
            .events = (const char *)sqlite3_column_text(s, 3),
            .secret = (const char *)sqlite3_column_text(s, 4),
            .status = (const char *)sqlite3_column_text(s, 5),
            .created_at = sqlite3_column_int64(s, 6),
        };
        cb(&h, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_delivery_insert(int64_t webhook_id, int64_t event_id, const char *type, const char *payload, int64_t at)
{
    sqlite3_stmt *s = st(ST_DLV_INSERT);
    sqlite3_bind_int64(s, 1, webhook_id);
    sqlite3_bind_int64(s, 2, event_id);
    sqlite3_bind_text(s, 3, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, payload, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 5, at);
    return store_write(s);
}

int store_delivery_save(const struct delivery *d)
{
    sqlite3_stmt *s = st(ST_DLV_SAVE);
    sqlite3_bind_int64(s, 1, d->id);
    sqlite3_bind_text(s, 2, d->status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 3, d->attempts);
    sqlite3_bind_int64(s, 4, d->next_at);
    sqlite3_bind_int(s, 5, d->last_status);
    sqlite3_bind_text(s, 6, d->last_error, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 7, d->done_at);
    sqlite3_bind_int64(s, 8, d->retry_from);
    return store_write(s);
}

static void read_delivery(sqlite3_stmt *s, struct delivery *d)
{
    d->id = sqlite3_column_int64(s, 0);
    d->webhook_id = sqlite3_column_int64(s, 1);
    d->event_id = sqlite3_column_int64(s, 2);
    store_col_text(s, 3, d->event_type, sizeof d->event_type);
    free(d->payload);
    d->payload = xstrdup(sqlite3_column_text(s, 4) ? (const char *)sqlite3_column_text(s, 4) : "");
    store_col_text(s, 5, d->status, sizeof d->status);
    d->attempts = sqlite3_column_int(s, 6);
    d->next_at = sqlite3_column_int64(s, 7);
    d->last_status = sqlite3_column_int(s, 8);
    store_col_text(s, 9, d->last_error, sizeof d->last_error);
    d->created_at = sqlite3_column_int64(s, 10);
    d->done_at = sqlite3_column_int64(s, 11);
    d->retry_from = sqlite3_column_int64(s, 12);
}

static int one_delivery(sqlite3_stmt *s, struct delivery *out)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        read_delivery(s, out);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERR;
}

int store_delivery_get(int64_t id, struct delivery *out)
{
    sqlite3_stmt *s = st(ST_DLV_GET);
    sqlite3_bind_int64(s, 1, id);
    return one_delivery(s, out);
}

int store_delivery_next(int64_t webhook_id, struct delivery *out)
{
    sqlite3_stmt *s = st(ST_DLV_NEXT);
    sqlite3_bind_int64(s, 1, webhook_id);
    return one_delivery(s, out);
}

int store_delivery_list(int64_t webhook_id, const char *status, int64_t before_id, int limit,
                        void (*cb)(const struct delivery *d, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_DLV_LIST);
    sqlite3_bind_int64(s, 1, webhook_id);
    sqlite3_bind_text(s, 2, status ? status : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, before_id);
    sqlite3_bind_int(s, 4, limit);
    struct delivery d = {0};
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        read_delivery(s, &d);
        cb(&d, arg);
    }
    free(d.payload);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_delivery_prune(int64_t before_at, int64_t dead_before_at)
{
    sqlite3_stmt *s = st(ST_DLV_PRUNE);
    sqlite3_bind_int64(s, 1, before_at);
    sqlite3_bind_int64(s, 2, dead_before_at);
    int rc = store_write(s);
    return rc == STORE_OK ? sqlite3_changes(store_db) : -1;
}

int store_delivery_expire(int64_t webhook_id, int64_t retry_from_before, int64_t now, const char *why)
{
    sqlite3_stmt *s = st(ST_DLV_EXPIRE);
    sqlite3_bind_int64(s, 1, webhook_id);
    sqlite3_bind_int64(s, 2, retry_from_before);
    sqlite3_bind_int64(s, 3, now);
    sqlite3_bind_text(s, 4, why, -1, SQLITE_TRANSIENT);
    int rc = store_write(s);
    return rc == STORE_OK ? sqlite3_changes(store_db) : -1;
}

/* ---- dashboard logins ---- */

int store_web_insert(const char *token_hash, int64_t tenant_id, int admin, int64_t now, int64_t expires_at)
{
    sqlite3_stmt *s = st(ST_WEB_INSERT);
    sqlite3_bind_text(s, 1, token_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, tenant_id);
    sqlite3_bind_int(s, 3, admin);
    sqlite3_bind_int64(s, 4, now);
    sqlite3_bind_int64(s, 5, expires_at);
    return store_write(s);
}

int store_web_get(const char *token_hash, int64_t now, int64_t *tenant_id, int *admin)
{
    sqlite3_stmt *s = st(ST_WEB_GET);
    sqlite3_bind_text(s, 1, token_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, now);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *tenant_id = sqlite3_column_int64(s, 0);
        *admin = sqlite3_column_int(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERR;
}

int store_web_delete(const char *token_hash)
{
    sqlite3_stmt *s = st(ST_WEB_DELETE);
    sqlite3_bind_text(s, 1, token_hash, -1, SQLITE_TRANSIENT);
    return store_write(s);
}

int store_web_prune(int64_t now)
{
    sqlite3_stmt *s = st(ST_WEB_PRUNE);
    sqlite3_bind_int64(s, 1, now);
    return store_write(s);
}
