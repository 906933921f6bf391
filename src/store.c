#include "store.h"

#include <event2/event.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callfsm.h"
#include "log.h"
#include "schema.h"
#include "util.h"

#define SESSION_COLS                                                                          \
    "id, tenant_id, status, phone, proxy_id, login_method, pairing_phone, reason, last_error, " \
    "qr, qr_at, pairing_code, pairing_at, trust_level, created_at, connected_at, "             \
    "first_connected_at, last_ping_at, restarts, fail_streak, worker_backend, worker_pid, "    \
    "worker_ident, worker_address"

#define MSG_COLS                                                                             \
    "id, public_id, tenant_id, session_id, recipient, body, status, attempts, error, "       \
    "wa_message_id, created_at, expires_at, not_before, dispatched_at, finished_at"

#define JOB_COLS                                                                             \
    "id, tenant_id, run_id, lead_id, phone, timezone, status, call_sid, attempts, not_before, " \
    "error, duration, created_at, dialed_at, finished_at"
#define JOB_COLS_J                                                                           \
    "j.id, j.tenant_id, j.run_id, j.lead_id, j.phone, j.timezone, j.status, j.call_sid, "      \
    "j.attempts, j.not_before, j.error, j.duration, j.created_at, j.dialed_at, j.finished_at"

#define DLV_COLS                                                                              \
    "id, webhook_id, event_id, event_type, payload, status, attempts, next_at, last_status, last_error, " \
    "created_at, done_at, retry_from"

enum stmt_id {
    ST_TENANT_INSERT,
    ST_APIKEY_INSERT,
    ST_APIKEY_LOOKUP,
    ST_SESSION_INSERT,
    ST_SESSION_SAVE,
    ST_SESSION_DELETE,
    ST_SESSION_PING,
    ST_SESSION_LOAD,
    ST_PROXY_INSERT,
    ST_PROXY_SAVE,
    ST_PROXY_DELETE,
    ST_PROXY_LOAD,
    ST_BINDING_SET,
    ST_BINDING_LOAD,
    ST_MSG_INSERT,
    ST_MSG_SAVE,
    ST_MSG_BY_ID,
    ST_MSG_BY_PUBLIC,
    ST_MSG_HEAD,
    ST_MSG_EXPIRED,
    ST_MSG_CANCEL_SESSION,
    ST_MSG_QUEUED_COUNTS,
    ST_MSG_SENDING,
    ST_MSG_RECENT,
    ST_MSG_STATUS_COUNTS,
    ST_IDEM_GET,
    ST_IDEM_PUT,
    ST_IDEM_PRUNE,
    ST_PACING_SAVE,
    ST_PACING_LOAD,
    ST_PACING_DELETE,
    ST_INBOX_INSERT,
    ST_AFFINITY_SET,
    ST_AFFINITY_GET,
    ST_SUPP_ADD,
    ST_SUPP_DEL,
    ST_SUPP_HAS,
    ST_SUPP_LIST,
    ST_MSG_LIST,
    ST_INBOX_LIST,
    ST_LEAD_INSERT,
    ST_LEAD_GET,
    ST_LEAD_LIST,
    ST_LEAD_COUNT,
    ST_RUN_INSERT,
    ST_RUN_SAVE,
    ST_RUN_GET,
    ST_RUN_LIST,
    ST_RUN_COUNTS,
    ST_RUN_OPEN_JOBS,
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
    ST_WEB_INSERT,
    ST_WEB_GET,
    ST_WEB_DELETE,
    ST_WEB_PRUNE,
    ST_EVENT_INSERT,
    ST_EVENT_LIST,
    ST_EVENT_LAST,
    ST_EVENT_PRUNE_AGE,
    ST_EVENT_PRUNE_COUNT,
    ST_JOB_INSERT,
    ST_JOB_SAVE,
    ST_JOB_GET,
    ST_JOB_BY_SID,
    ST_JOB_NEXT,
    ST_JOB_NEXT_WAKE,
    ST_JOB_LEAD_OPEN,
    ST_JOB_OPEN,
    ST_JOB_CANCEL_QUEUED,
    ST_JOB_RECENT,
    ST_JOB_COUNT,
    ST_JOB_SID_TAKEN,
    ST_JOB_TENANTS_QUEUED,
    ST__COUNT
};

static const char *stmt_sql[ST__COUNT] = {
    [ST_TENANT_INSERT] = "INSERT INTO tenants (name, created_at) VALUES (?1, ?2)",
    [ST_APIKEY_INSERT] = "INSERT INTO api_keys (tenant_id, key_hash, created_at) VALUES (?1, ?2, ?3)",
    [ST_APIKEY_LOOKUP] = "SELECT tenant_id FROM api_keys WHERE key_hash = ?1",
    [ST_SESSION_INSERT] = "INSERT INTO sessions (" SESSION_COLS ") VALUES (NULL, ?2, ?3, ?4, ?5, "
                          "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "
                          "?21, ?22, ?23, ?24)",
    [ST_SESSION_SAVE] = "UPDATE sessions SET tenant_id=?2, status=?3, phone=?4, proxy_id=?5, "
                        "login_method=?6, pairing_phone=?7, reason=?8, last_error=?9, qr=?10, "
                        "qr_at=?11, pairing_code=?12, pairing_at=?13, trust_level=?14, "
                        "created_at=?15, connected_at=?16, first_connected_at=?17, "
                        "last_ping_at=?18, restarts=?19, fail_streak=?20, worker_backend=?21, "
                        "worker_pid=?22, worker_ident=?23, worker_address=?24 WHERE id=?1",
    [ST_SESSION_DELETE] = "DELETE FROM sessions WHERE id = ?1",
    [ST_SESSION_PING] = "UPDATE sessions SET last_ping_at = ?2 WHERE id = ?1",
    [ST_SESSION_LOAD] = "SELECT " SESSION_COLS " FROM sessions ORDER BY id",
    [ST_PROXY_INSERT] = "INSERT INTO proxies (tenant_id, url, status, source, last_error, bad_at, "
                        "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_PROXY_SAVE] = "UPDATE proxies SET status=?2, last_error=?3, bad_at=?4 WHERE id=?1",
    [ST_PROXY_DELETE] = "DELETE FROM proxies WHERE id = ?1",
    [ST_PROXY_LOAD] = "SELECT id, tenant_id, url, status, source, last_error, bad_at, created_at "
                      "FROM proxies ORDER BY id",
    [ST_BINDING_SET] = "INSERT INTO phone_proxy (tenant_id, phone, proxy_id, bound_at) "
                       "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, phone) DO UPDATE SET "
                       "proxy_id = excluded.proxy_id, bound_at = excluded.bound_at",
    [ST_BINDING_LOAD] = "SELECT tenant_id, phone, proxy_id FROM phone_proxy",
    [ST_MSG_INSERT] = "INSERT INTO messages (" MSG_COLS ") VALUES (NULL, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                      "?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [ST_MSG_SAVE] = "UPDATE messages SET status=?7, attempts=?8, error=?9, wa_message_id=?10, "
                    "not_before=?13, dispatched_at=?14, finished_at=?15 WHERE id=?1",
    [ST_MSG_BY_ID] = "SELECT " MSG_COLS " FROM messages WHERE id = ?1",
    [ST_MSG_BY_PUBLIC] = "SELECT " MSG_COLS " FROM messages WHERE public_id = ?1",
    [ST_MSG_HEAD] = "SELECT " MSG_COLS " FROM messages WHERE session_id = ?1 AND status = 'queued' "
                    "ORDER BY not_before, id LIMIT 1",
    [ST_MSG_EXPIRED] = "SELECT " MSG_COLS " FROM messages WHERE status = 'queued' AND expires_at <= ?1 "
                       "LIMIT ?2",
    [ST_MSG_CANCEL_SESSION] = "UPDATE messages SET status = 'cancelled', error = ?2, finished_at = ?3 "
                              "WHERE session_id = ?1 AND status IN ('queued', 'sending')",
    [ST_MSG_QUEUED_COUNTS] = "SELECT session_id, count(*) FROM messages WHERE status = 'queued' "
                             "GROUP BY session_id",
    [ST_MSG_SENDING] = "SELECT " MSG_COLS " FROM messages WHERE status = 'sending'",
    [ST_MSG_RECENT] = "SELECT session_id, dispatched_at FROM messages WHERE dispatched_at > ?1 "
                      "ORDER BY dispatched_at",
    [ST_MSG_STATUS_COUNTS] = "SELECT status, count(*) FROM messages GROUP BY status",
    [ST_IDEM_GET] = "SELECT message_id, created_at FROM idempotency_keys WHERE tenant_id = ?1 AND "
                    "idem_key = ?2",
    [ST_IDEM_PUT] = "INSERT INTO idempotency_keys (tenant_id, idem_key, message_id, created_at) "
                    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, idem_key) DO UPDATE SET "
                    "message_id = excluded.message_id, created_at = excluded.created_at",
    [ST_IDEM_PRUNE] = "DELETE FROM idempotency_keys WHERE created_at < ?1",
    [ST_PACING_SAVE] = "INSERT INTO send_pacing (session_id, last_send_at, gap_ms, day, sent_today, "
                       "failed_today) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (session_id) DO "
                       "UPDATE SET last_send_at = excluded.last_send_at, gap_ms = excluded.gap_ms, "
                       "day = excluded.day, sent_today = excluded.sent_today, "
                       "failed_today = excluded.failed_today",
    [ST_PACING_LOAD] = "SELECT session_id, last_send_at, gap_ms, day, sent_today, failed_today "
                       "FROM send_pacing",
    [ST_PACING_DELETE] = "DELETE FROM send_pacing WHERE session_id = ?1",
    [ST_INBOX_INSERT] = "INSERT INTO inbox (tenant_id, session_id, sender, body, wa_message_id, "
                        "sent_at, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                        "ON CONFLICT (session_id, wa_message_id) DO NOTHING",
    [ST_AFFINITY_SET] = "INSERT INTO affinity (tenant_id, recipient, session_id, at) VALUES (?1, ?2, "
                        "?3, ?4) ON CONFLICT (tenant_id, recipient) DO UPDATE SET "
                        "session_id = excluded.session_id, at = excluded.at",
    [ST_AFFINITY_GET] = "SELECT session_id FROM affinity WHERE tenant_id = ?1 AND recipient = ?2",
    [ST_SUPP_ADD] = "INSERT INTO suppressions (tenant_id, phone, reason, created_at) VALUES (?1, ?2, "
                    "?3, ?4) ON CONFLICT (tenant_id, phone) DO NOTHING",
    [ST_SUPP_DEL] = "DELETE FROM suppressions WHERE tenant_id = ?1 AND phone = ?2",
    [ST_SUPP_HAS] = "SELECT 1 FROM suppressions WHERE tenant_id = ?1 AND phone = ?2",
    [ST_MSG_LIST] = "SELECT " MSG_COLS " FROM messages WHERE tenant_id = ?1 AND (?2 = 0 OR "
                    "session_id = ?2) AND (?3 = '' OR status = ?3) AND (?4 = 0 OR id < ?4) "
                    "ORDER BY id DESC LIMIT ?5",
    [ST_INBOX_LIST] = "SELECT id, tenant_id, session_id, sender, body, wa_message_id, sent_at, "
                      "received_at FROM inbox WHERE tenant_id = ?1 AND (?2 = 0 OR session_id = ?2) "
                      "AND received_at >= ?3 AND id > ?4 ORDER BY id LIMIT ?5",
    [ST_LEAD_INSERT] = "INSERT INTO leads (tenant_id, name, phone, timezone, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_LEAD_GET] = "SELECT id, tenant_id, name, phone, timezone, created_at FROM leads WHERE id = ?1",
    [ST_LEAD_LIST] = "SELECT id, tenant_id, name, phone, timezone, created_at FROM leads WHERE tenant_id = ?1 "
                     "ORDER BY id LIMIT ?2 OFFSET ?3",
    [ST_LEAD_COUNT] = "SELECT count(*) FROM leads WHERE tenant_id = ?1",
    [ST_RUN_INSERT] = "INSERT INTO call_runs (tenant_id, status, total, created_at, finished_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_RUN_SAVE] = "UPDATE call_runs SET status = ?2, finished_at = ?3 WHERE id = ?1",
    [ST_RUN_GET] = "SELECT id, tenant_id, status, total, created_at, finished_at FROM call_runs WHERE id = ?1",
    [ST_RUN_LIST] = "SELECT id, tenant_id, status, total, created_at, finished_at FROM call_runs WHERE tenant_id = ?1 "
                    "ORDER BY id DESC LIMIT ?2",
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
    [ST_WEB_INSERT] = "INSERT INTO web_sessions (token_hash, tenant_id, admin, created_at, expires_at) VALUES (?1, ?2, "
                      "?3, ?4, ?5)",
    [ST_WEB_GET] = "SELECT tenant_id, admin FROM web_sessions WHERE token_hash = ?1 AND expires_at > ?2",
    [ST_WEB_DELETE] = "DELETE FROM web_sessions WHERE token_hash = ?1",
    [ST_WEB_PRUNE] = "DELETE FROM web_sessions WHERE expires_at <= ?1",
    [ST_EVENT_INSERT] = "INSERT INTO events (tenant_id, type, session, data, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_EVENT_LIST] = "SELECT id, tenant_id, type, session, data, at FROM events WHERE tenant_id = ?1 AND id > ?2 "
                      "AND id <= ?6 AND (?3 = '' OR instr(?3, ',' || type || ',') > 0) AND "
                      "(?4 = '' OR session = ?4) ORDER BY id LIMIT ?5",
    [ST_EVENT_LAST] = "SELECT coalesce(max(id), 0) FROM events WHERE (?1 = 0 OR tenant_id = ?1)",
    [ST_EVENT_PRUNE_AGE] = "DELETE FROM events WHERE at < ?1",
    [ST_EVENT_PRUNE_COUNT] = "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?1",
    [ST_RUN_OPEN_JOBS] = "SELECT 1 FROM call_jobs WHERE run_id = ?1 AND status IN ('queued', 'dialing', "
                         "'ringing', 'in_progress') LIMIT 1",
    [ST_RUN_COUNTS] = "SELECT status, count(*) FROM call_jobs WHERE run_id = ?1 GROUP BY status",
    [ST_JOB_INSERT] = "INSERT INTO call_jobs (" JOB_COLS ") VALUES (NULL, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                      "?11, ?12, ?13, ?14, ?15)",
    [ST_JOB_SAVE] = "UPDATE call_jobs SET status = ?7, call_sid = ?8, attempts = ?9, not_before = ?10, error = ?11, "
                    "duration = ?12, dialed_at = ?14, finished_at = ?15 WHERE id = ?1",
    [ST_JOB_GET] = "SELECT " JOB_COLS " FROM call_jobs WHERE id = ?1",
    [ST_JOB_BY_SID] = "SELECT " JOB_COLS " FROM call_jobs WHERE call_sid = ?1 LIMIT 1",
    /* the small-batch path (run 0) first, then runs in the order they were started: the
     * queue index's own order */
    [ST_JOB_NEXT] = "SELECT " JOB_COLS " FROM call_jobs WHERE tenant_id = ?1 AND status = 'queued' AND "
                    "not_before <= ?2 ORDER BY run_id, id LIMIT 1",
    [ST_JOB_NEXT_WAKE] = "SELECT min(not_before) FROM call_jobs WHERE tenant_id = ?1 AND status = 'queued'",
    [ST_JOB_LEAD_OPEN] = "SELECT run_id FROM call_jobs WHERE lead_id = ?1 AND status IN ('queued', 'dialing', "
                         "'ringing', 'in_progress') LIMIT 1",
    [ST_JOB_OPEN] = "SELECT " JOB_COLS " FROM call_jobs WHERE status IN ('dialing', 'ringing', 'in_progress') ORDER BY id",
    [ST_JOB_CANCEL_QUEUED] = "UPDATE call_jobs SET status = 'canceled', error = ?2, finished_at = ?3 "
                             "WHERE run_id = ?1 AND status = 'queued'",
    [ST_JOB_RECENT] = "SELECT " JOB_COLS_J ", coalesce(l.name, '') FROM call_jobs j LEFT JOIN leads l ON "
                      "l.id = j.lead_id WHERE j.tenant_id = ?1 ORDER BY j.id DESC LIMIT ?2 OFFSET ?3",
    [ST_JOB_COUNT] = "SELECT count(*) FROM call_jobs WHERE tenant_id = ?1",
    [ST_JOB_SID_TAKEN] = "SELECT 1 FROM call_jobs WHERE call_sid = ?1",
    [ST_JOB_TENANTS_QUEUED] = "SELECT DISTINCT tenant_id FROM call_jobs WHERE status = 'queued'",
    [ST_SUPP_LIST] = "SELECT phone, reason, created_at FROM suppressions WHERE tenant_id = ?1 AND "
                     "phone > ?2 ORDER BY phone LIMIT ?3",
};

struct deferred {
    void (*fn)(void *arg, int ok);
    void *arg;
};

static sqlite3 *db;
static sqlite3_stmt *stmts[ST__COUNT];
static struct event *commit_ev;
static int in_batch;
static int sp_depth;
static struct deferred *pending;
static size_t npending, cappending;
static struct store_stats stats;

static int exec(const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("store", "sql failed: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static void run_pending(int ok)
{
    /* callbacks may open a new batch and queue more; take the list first */
    while (npending) {
        struct deferred *list = pending;
        size_t n = npending;
        pending = NULL;
        npending = cappending = 0;
        for (size_t i = 0; i < n; i++)
            list[i].fn(list[i].arg, ok);
        free(list);
    }
}

int store_flush(void)
{
    if (!in_batch) {
        run_pending(1);
        return 0;
    }
    in_batch = 0;
    sp_depth = 0;
    int ok = exec("COMMIT") == 0;
    if (!ok) {
        stats.commit_failures++;
        exec("ROLLBACK");
        log_error("store", "commit failed: the answers of this batch report an error");
    } else {
        stats.commits++;
    }
    run_pending(ok);
    return ok ? 0 : -1;
}

static void commit_cb(evutil_socket_t fd, short what, void *arg)
{
    store_flush();
}

static void batch_open(void)
{
    if (in_batch)
        return;
    if (exec("BEGIN IMMEDIATE") < 0)
        return;
    in_batch = 1;
    event_active(commit_ev, EV_TIMEOUT, 0);
}

int store_in_batch(void) { return in_batch; }

void store_tx_begin(void)
{
    batch_open();
    exec("SAVEPOINT h");
    sp_depth++;
}

void store_tx_end(int ok)
{
    if (sp_depth <= 0)
        return;
    if (!ok)
        exec("ROLLBACK TO h");
    exec("RELEASE h");
    sp_depth--;
}

void store_after_commit(void (*fn)(void *arg, int ok), void *arg)
{
    if (!in_batch) {
        fn(arg, 1);
        return;
    }
    if (npending == cappending) {
        cappending = cappending ? cappending * 2 : 64;
        pending = xrealloc(pending, cappending * sizeof *pending);
    }
    pending[npending++] = (struct deferred){fn, arg};
}

static sqlite3_stmt *st(enum stmt_id id)
{
    sqlite3_stmt *s = stmts[id];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return STORE_OK;
    if (rc == SQLITE_CONSTRAINT)
        return STORE_CONFLICT;
    log_error("store", "write failed: %s", sqlite3_errmsg(db));
    return STORE_ERR;
}

static int write_stmt(sqlite3_stmt *s)
{
    batch_open();
    return step_done(s);
}

/* the next line that reads "-- step <digit>..." */
static const char *next_step(const char *p)
{
    while ((p = strstr(p, "\n-- step ")) != NULL) {
        if (p[9] >= '0' && p[9] <= '9')
            return p + 1;
        p++;
    }
    return NULL;
}

static int migrate(char *err, size_t errlen)
{
    sqlite3_stmt *s = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);

    /* steps are separated by "-- step N" lines */
    const char *p = schema_sql;
    int step = 0;
    while ((p = next_step(p)) != NULL) {
        step++;
        const char *body = strchr(p, '\n');
        if (!body)
            break;
        const char *next = next_step(body);
        size_t len = next ? (size_t)(next - body) : strlen(body);
        p = next ? next - 1 : body + len; /* next_step looks for the newline before a step */
        if (step <= version)
            continue;
        char *sql = xasprintf("BEGIN; %.*s; PRAGMA user_version = %d; COMMIT;", (int)len, body, step);
        int rc = exec(sql);
        free(sql);
        if (rc < 0) {
            exec("ROLLBACK");
            snprintf(err, errlen, "store: schema step %d failed", step);
            return -1;
        }
        log_info("store", "schema upgraded version=%d", step);
    }
    if (version > step) {
        snprintf(err, errlen, "store: database schema version %d is newer than this build (%d)",
                 version, step);
        return -1;
    }
    return 0;
fail:
    snprintf(err, errlen, "store: %s", sqlite3_errmsg(db));
    return -1;
}

int store_open(struct event_base *base, const char *path, int sync_full, char *err, size_t errlen)
{
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "store: cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "?");
        goto fail;
    }
    sqlite3_busy_timeout(db, 5000);
    /* WAL + FULL: every batch's commit is fsync'd, so an accepted request survives a power
     * loss too; group commit pays that once per batch. NORMAL survives a crash of the
     * process only (the WAL is synced at checkpoints). */
    if (exec("PRAGMA journal_mode=WAL") < 0 ||
        exec(sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") < 0 ||
        exec("PRAGMA foreign_keys=ON") < 0) {
        snprintf(err, errlen, "store: cannot configure %s", path);
        goto fail;
    }
    if (migrate(err, errlen) < 0)
        goto fail;
    for (int i = 0; i < ST__COUNT; i++) {
        if (sqlite3_prepare_v3(db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &stmts[i], NULL) !=
            SQLITE_OK) {
            snprintf(err, errlen, "store: prepare %d: %s", i, sqlite3_errmsg(db));
            goto fail;
        }
    }
    commit_ev = event_new(base, -1, 0, commit_cb, NULL);
    /* lowest priority: runs after every ready I/O event of the turn */
    event_priority_set(commit_ev, 2);
    return 0;
fail:
    store_close();
    return -1;
}

void store_close(void)
{
    if (in_batch)
        store_flush();
    for (int i = 0; i < ST__COUNT; i++) {
        sqlite3_finalize(stmts[i]);
        stmts[i] = NULL;
    }
    if (commit_ev)
        event_free(commit_ev);
    commit_ev = NULL;
    if (db)
        sqlite3_close(db);
    db = NULL;
    free(pending);
    pending = NULL;
    npending = cappending = 0;
}

int store_ping(void)
{
    sqlite3_stmt *s = NULL;
    int ok = sqlite3_prepare_v2(db, "SELECT count(*) FROM tenants", -1, &s, NULL) == SQLITE_OK &&
             sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return ok ? 0 : -1;
}

void store_get_stats(struct store_stats *out) { *out = stats; }

/* ---- tenants and keys ---- */

int store_tenant_insert(const char *name, int64_t *id)
{
    sqlite3_stmt *s = st(ST_TENANT_INSERT);
    sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, util_now_ms());
    int rc = write_stmt(s);
    if (rc == STORE_OK)
        *id = sqlite3_last_insert_rowid(db);
    return rc;
}

int store_apikey_insert(int64_t tenant_id, const char *key_hash)
{
    sqlite3_stmt *s = st(ST_APIKEY_INSERT);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, key_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, util_now_ms());
    return write_stmt(s);
}

int store_apikey_lookup(const char *key_hash, int64_t *tenant_id)
{
    sqlite3_stmt *s = st(ST_APIKEY_LOOKUP);
    sqlite3_bind_text(s, 1, key_hash, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *tenant_id = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return STORE_OK;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERR;
}

/* ---- sessions ---- */

static const char *login_name(enum login_method m) { return m == LOGIN_PAIRING ? "pairing_code" : "qr"; }

static void bind_session(sqlite3_stmt *s, const struct session *x)
{
    sqlite3_bind_int64(s, 1, x->id);
    sqlite3_bind_int64(s, 2, x->tenant_id);
    sqlite3_bind_text(s, 3, sess_status_name(x->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, x->phone, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 5, x->proxy_id);
    sqlite3_bind_text(s, 6, login_name(x->login), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, x->pairing_phone, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 8, x->reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 9, x->last_error, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 10, x->qr, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 11, x->qr_at);
    sqlite3_bind_text(s, 12, x->pairing_code, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 13, x->pairing_at);
    sqlite3_bind_text(s, 14, x->trust_level, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 15, x->created_at);
    sqlite3_bind_int64(s, 16, x->connected_at);
    sqlite3_bind_int64(s, 17, x->first_connected_at);
    sqlite3_bind_int64(s, 18, x->last_ping_at);
    sqlite3_bind_int(s, 19, x->restarts);
    sqlite3_bind_int(s, 20, x->fail_streak);
    sqlite3_bind_text(s, 21, x->worker.backend, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 22, x->worker.pid);
    sqlite3_bind_int64(s, 23, x->worker.ident);
    sqlite3_bind_text(s, 24, x->worker.address, -1, SQLITE_TRANSIENT);
}

int store_session_insert(struct session *x)
{
    sqlite3_stmt *s = st(ST_SESSION_INSERT);
    bind_session(s, x);
    int rc = write_stmt(s);
    if (rc == STORE_OK)
        x->id = sqlite3_last_insert_rowid(db);
    return rc;
}

int store_session_save(const struct session *x)
{
    sqlite3_stmt *s = st(ST_SESSION_SAVE);
    bind_session(s, x);
    return write_stmt(s);
}

int store_session_ping(int64_t id, int64_t at_ms)
{
    sqlite3_stmt *s = st(ST_SESSION_PING);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, at_ms);
    return write_stmt(s);
}

int store_session_delete(int64_t id)
{
    sqlite3_stmt *s = st(ST_SESSION_DELETE);
    sqlite3_bind_int64(s, 1, id);
    return write_stmt(s);
}

static void col_text(sqlite3_stmt *s, int col, char *out, size_t outlen)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(out, outlen, "%s", t ? (const char *)t : "");
}

int store_session_load(void (*cb)(const struct session *s, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_SESSION_LOAD);
    struct session *x = xcalloc(1, sizeof *x);
    char buf[32];
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        memset(x, 0, sizeof *x);
        x->id = sqlite3_column_int64(s, 0);
        snprintf(x->name, sizeof x->name, "worker_%lld", (long long)x->id);
        x->tenant_id = sqlite3_column_int64(s, 1);
        col_text(s, 2, buf, sizeof buf);
        int st_ = sess_status_parse(buf);
        x->status = st_ < 0 ? SS_FAILED : (enum sess_status)st_;
        col_text(s, 3, x->phone, sizeof x->phone);
        x->proxy_id = sqlite3_column_int64(s, 4);
        col_text(s, 5, buf, sizeof buf);
        x->login = strcmp(buf, "pairing_code") == 0 ? LOGIN_PAIRING : LOGIN_QR;
        col_text(s, 6, x->pairing_phone, sizeof x->pairing_phone);
        col_text(s, 7, x->reason, sizeof x->reason);
        col_text(s, 8, x->last_error, sizeof x->last_error);
        col_text(s, 9, x->qr, sizeof x->qr);
        x->qr_at = sqlite3_column_int64(s, 10);
        col_text(s, 11, x->pairing_code, sizeof x->pairing_code);
        x->pairing_at = sqlite3_column_int64(s, 12);
        col_text(s, 13, x->trust_level, sizeof x->trust_level);
        x->created_at = sqlite3_column_int64(s, 14);
        x->connected_at = sqlite3_column_int64(s, 15);
        x->first_connected_at = sqlite3_column_int64(s, 16);
        x->last_ping_at = sqlite3_column_int64(s, 17);
        x->restarts = sqlite3_column_int(s, 18);
        x->fail_streak = sqlite3_column_int(s, 19);
        col_text(s, 20, x->worker.backend, sizeof x->worker.backend);
        x->worker.pid = sqlite3_column_int(s, 21);
        x->worker.ident = sqlite3_column_int64(s, 22);
        col_text(s, 23, x->worker.address, sizeof x->worker.address);
        cb(x, arg);
    }
    free(x);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- proxies ---- */

static const char *proxy_status_name(enum proxy_status p) { return p == PROXY_BAD ? "bad" : "ok"; }

int store_proxy_insert(struct proxy *p)
{
    sqlite3_stmt *s = st(ST_PROXY_INSERT);
    sqlite3_bind_int64(s, 1, p->tenant_id);
    sqlite3_bind_text(s, 2, p->url, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, proxy_status_name(p->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, p->source, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 5, p->last_error, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 6, p->bad_at);
    sqlite3_bind_int64(s, 7, p->created_at);
    int rc = write_stmt(s);
    if (rc == STORE_OK)
        p->id = sqlite3_last_insert_rowid(db);
    return rc;
}

int store_proxy_save(const struct proxy *p)
{
    sqlite3_stmt *s = st(ST_PROXY_SAVE);
    sqlite3_bind_int64(s, 1, p->id);
    sqlite3_bind_text(s, 2, proxy_status_name(p->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, p->last_error, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, p->bad_at);
    return write_stmt(s);
}

int store_proxy_delete(int64_t id)
{
    sqlite3_stmt *s = st(ST_PROXY_DELETE);
    sqlite3_bind_int64(s, 1, id);
    return write_stmt(s);
}

int store_proxy_load(void (*cb)(const struct proxy *p, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_PROXY_LOAD);
    int rc;
    char buf[16], url[4096];
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct proxy p;
        memset(&p, 0, sizeof p);
        p.id = sqlite3_column_int64(s, 0);
        p.tenant_id = sqlite3_column_int64(s, 1);
        col_text(s, 2, url, sizeof url);
        p.url = url;
        col_text(s, 3, buf, sizeof buf);
        p.status = strcmp(buf, "bad") == 0 ? PROXY_BAD : PROXY_OK;
        col_text(s, 4, p.source, sizeof p.source);
        col_text(s, 5, p.last_error, sizeof p.last_error);
        p.bad_at = sqlite3_column_int64(s, 6);
        p.created_at = sqlite3_column_int64(s, 7);
        cb(&p, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_binding_set(int64_t tenant_id, const char *phone, int64_t proxy_id)
{
    sqlite3_stmt *s = st(ST_BINDING_SET);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, phone, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, proxy_id);
    sqlite3_bind_int64(s, 4, util_now_ms());
    return write_stmt(s);
}

int store_binding_load(void (*cb)(const struct binding *b, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_BINDING_LOAD);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct binding b;
        memset(&b, 0, sizeof b);
        b.tenant_id = sqlite3_column_int64(s, 0);
        col_text(s, 1, b.phone, sizeof b.phone);
        b.proxy_id = sqlite3_column_int64(s, 2);
        cb(&b, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- messages ---- */

static void bind_message(sqlite3_stmt *s, const struct message *m)
{
    sqlite3_bind_int64(s, 1, m->id);
    sqlite3_bind_text(s, 2, m->public_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, m->tenant_id);
    sqlite3_bind_int64(s, 4, m->session_id);
    sqlite3_bind_text(s, 5, m->to, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 6, m->text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 7, msg_status_name(m->status), -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 8, m->attempts);
    sqlite3_bind_text(s, 9, m->error, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 10, m->wa_message_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 11, m->created_at);
    sqlite3_bind_int64(s, 12, m->expires_at);
    sqlite3_bind_int64(s, 13, m->not_before);
    sqlite3_bind_int64(s, 14, m->dispatched_at);
    sqlite3_bind_int64(s, 15, m->finished_at);
}

static void read_message(sqlite3_stmt *s, struct message *m)
{
    char buf[16];
    m->id = sqlite3_column_int64(s, 0);
    col_text(s, 1, m->public_id, sizeof m->public_id);
    m->tenant_id = sqlite3_column_int64(s, 2);
    m->session_id = sqlite3_column_int64(s, 3);
    col_text(s, 4, m->to, sizeof m->to);
    col_text(s, 5, m->text, sizeof m->text);
    col_text(s, 6, buf, sizeof buf);
    int st_ = msg_status_parse(buf);
    m->status = st_ < 0 ? MS_FAILED : (enum msg_status)st_;
    m->attempts = sqlite3_column_int(s, 7);
    col_text(s, 8, m->error, sizeof m->error);
    col_text(s, 9, m->wa_message_id, sizeof m->wa_message_id);
    m->created_at = sqlite3_column_int64(s, 10);
    m->expires_at = sqlite3_column_int64(s, 11);
    m->not_before = sqlite3_column_int64(s, 12);
    m->dispatched_at = sqlite3_column_int64(s, 13);
    m->finished_at = sqlite3_column_int64(s, 14);
}

/* one row into out: STORE_OK, STORE_NOTFOUND or STORE_ERR */
static int read_one_message(sqlite3_stmt *s, struct message *out)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        read_message(s, out);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERR;
}

/* every row to cb with one reused record */
static int each_message(sqlite3_stmt *s, void (*cb)(const struct message *m, void *arg), void *arg)
{
    struct message *m = xmalloc(sizeof *m);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        read_message(s, m);
        cb(m, arg);
    }
    free(m);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_message_insert(struct message *m)
{
    sqlite3_stmt *s = st(ST_MSG_INSERT);
    bind_message(s, m);
    int rc = write_stmt(s);
    if (rc == STORE_OK)
        m->id = sqlite3_last_insert_rowid(db);
    return rc;
}

int store_message_save(const struct message *m)
{
    sqlite3_stmt *s = st(ST_MSG_SAVE);
    bind_message(s, m);
    return write_stmt(s);
}

int store_message_get(int64_t id, struct message *out)
{
    sqlite3_stmt *s = st(ST_MSG_BY_ID);
    sqlite3_bind_int64(s, 1, id);
    return read_one_message(s, out);
}

int store_message_find(const char *public_id, struct message *out)
{
    sqlite3_stmt *s = st(ST_MSG_BY_PUBLIC);
    sqlite3_bind_text(s, 1, public_id, -1, SQLITE_TRANSIENT);
    return read_one_message(s, out);
}

int store_message_head(int64_t session_id, struct message *out)
{
    sqlite3_stmt *s = st(ST_MSG_HEAD);
    sqlite3_bind_int64(s, 1, session_id);
    return read_one_message(s, out);
}

int store_message_expired(int64_t now, int limit, void (*cb)(const struct message *m, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_MSG_EXPIRED);
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_int(s, 2, limit);
    return each_message(s, cb, arg);
}

int store_message_sending(void (*cb)(const struct message *m, void *arg), void *arg)
{
    return each_message(st(ST_MSG_SENDING), cb, arg);
}

int store_message_list(int64_t tenant_id, int64_t session_id, const char *status, int64_t before_id,
                       int limit, void (*cb)(const struct message *m, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_MSG_LIST);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_int64(s, 2, session_id);
    sqlite3_bind_text(s, 3, status ? status : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, before_id);
    sqlite3_bind_int(s, 5, limit);
    return each_message(s, cb, arg);
}

int store_message_cancel_session(int64_t session_id, const char *why)
{
    sqlite3_stmt *s = st(ST_MSG_CANCEL_SESSION);
    sqlite3_bind_int64(s, 1, session_id);
    sqlite3_bind_text(s, 2, why, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, util_now_ms());
    return write_stmt(s);
}

/* rows of two integers to cb */
static int each_pair(sqlite3_stmt *s, void (*cb)(int64_t a, int64_t b, void *arg), void *arg)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        cb(sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), arg);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_message_queued_counts(void (*cb)(int64_t session_id, int64_t n, void *arg), void *arg)
{
    return each_pair(st(ST_MSG_QUEUED_COUNTS), cb, arg);
}

int store_message_recent(int64_t since, void (*cb)(int64_t session_id, int64_t at, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_MSG_RECENT);
    sqlite3_bind_int64(s, 1, since);
    return each_pair(s, cb, arg);
}

int store_message_status_counts(int64_t counts[MS__COUNT])
{
    sqlite3_stmt *s = st(ST_MSG_STATUS_COUNTS);
    int rc;
    for (int i = 0; i < MS__COUNT; i++)
        counts[i] = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(s, 0);
        int i = name ? msg_status_parse((const char *)name) : -1;
        if (i >= 0)
            counts[i] = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_idem_get(int64_t tenant_id, const char *key, int64_t *message_id, int64_t *created_at)
{
    sqlite3_stmt *s = st(ST_IDEM_GET);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *message_id = sqlite3_column_int64(s, 0);
        *created_at = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERR;
}

int store_idem_put(int64_t tenant_id, const char *key, int64_t message_id, int64_t at)
{
    sqlite3_stmt *s = st(ST_IDEM_PUT);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, message_id);
    sqlite3_bind_int64(s, 4, at);
    return write_stmt(s);
}

int store_idem_prune(int64_t before)
{
    sqlite3_stmt *s = st(ST_IDEM_PRUNE);
    sqlite3_bind_int64(s, 1, before);
    return write_stmt(s);
}

/* ---- pacing state ---- */

int store_pacing_save(int64_t session_id, const struct store_pacing *p)
{
    sqlite3_stmt *s = st(ST_PACING_SAVE);
    sqlite3_bind_int64(s, 1, session_id);
    sqlite3_bind_int64(s, 2, p->last_send_at);
    sqlite3_bind_int64(s, 3, p->gap_ms);
    sqlite3_bind_int64(s, 4, p->day);
    sqlite3_bind_int(s, 5, p->sent_today);
    sqlite3_bind_int(s, 6, p->failed_today);
    return write_stmt(s);
}

int store_pacing_delete(int64_t session_id)
{
    sqlite3_stmt *s = st(ST_PACING_DELETE);
    sqlite3_bind_int64(s, 1, session_id);
    return write_stmt(s);
}

int store_pacing_load(void (*cb)(int64_t session_id, const struct store_pacing *p, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_PACING_LOAD);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_pacing p = {
            .last_send_at = sqlite3_column_int64(s, 1), .gap_ms = sqlite3_column_int64(s, 2),
            .day = sqlite3_column_int64(s, 3), .sent_today = sqlite3_column_int(s, 4),
            .failed_today = sqlite3_column_int(s, 5),
        };
        cb(sqlite3_column_int64(s, 0), &p, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- inbox, affinity, suppressions ---- */

int store_inbox_insert(struct inbound *in)
{
    sqlite3_stmt *s = st(ST_INBOX_INSERT);
    sqlite3_bind_int64(s, 1, in->tenant_id);
    sqlite3_bind_int64(s, 2, in->session_id);
    sqlite3_bind_text(s, 3, in->from, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, in->text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 5, in->wa_message_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 6, in->sent_at);
    sqlite3_bind_int64(s, 7, in->received_at);
    int rc = write_stmt(s);
    if (rc == STORE_OK && sqlite3_changes(db) == 0)
        return STORE_CONFLICT; /* the same incoming message again */
    if (rc == STORE_OK)
        in->id = sqlite3_last_insert_rowid(db);
    return rc;
}

int store_inbox_list(int64_t tenant_id, int64_t session_id, int64_t since, int64_t after_id, int limit,
                     void (*cb)(const struct inbound *in, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_INBOX_LIST);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_int64(s, 2, session_id);
    sqlite3_bind_int64(s, 3, since);
    sqlite3_bind_int64(s, 4, after_id);
    sqlite3_bind_int(s, 5, limit);
    struct inbound *in = xmalloc(sizeof *in);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        in->id = sqlite3_column_int64(s, 0);
        in->tenant_id = sqlite3_column_int64(s, 1);
        in->session_id = sqlite3_column_int64(s, 2);
        col_text(s, 3, in->from, sizeof in->from);
        col_text(s, 4, in->text, sizeof in->text);
        col_text(s, 5, in->wa_message_id, sizeof in->wa_message_id);
        in->sent_at = sqlite3_column_int64(s, 6);
        in->received_at = sqlite3_column_int64(s, 7);
        cb(in, arg);
    }
    free(in);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_affinity_set(int64_t tenant_id, const char *recipient, int64_t session_id, int64_t at)
{
    sqlite3_stmt *s = st(ST_AFFINITY_SET);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, recipient, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, session_id);
    sqlite3_bind_int64(s, 4, at);
    return write_stmt(s);
}

int store_affinity_get(int64_t tenant_id, const char *recipient, int64_t *session_id)
{
    sqlite3_stmt *s = st(ST_AFFINITY_GET);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, recipient, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *session_id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERR;
}

int store_suppression_add(int64_t tenant_id, const char *phone, const char *reason)
{
    sqlite3_stmt *s = st(ST_SUPP_ADD);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, phone, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, util_now_ms());
    int rc = write_stmt(s);
    return rc == STORE_OK && sqlite3_changes(db) == 0 ? STORE_CONFLICT : rc;
}

int store_suppression_delete(int64_t tenant_id, const char *phone)
{
    sqlite3_stmt *s = st(ST_SUPP_DEL);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, phone, -1, SQLITE_TRANSIENT);
    int rc = write_stmt(s);
    return rc == STORE_OK && sqlite3_changes(db) == 0 ? STORE_NOTFOUND : rc;
}

int store_suppression_has(int64_t tenant_id, const char *phone)
{
    sqlite3_stmt *s = st(ST_SUPP_HAS);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, phone, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_ROW;
}

int store_suppression_list(int64_t tenant_id, const char *after, int limit,
                           void (*cb)(const char *phone, const char *reason, int64_t at, void *arg),
                           void *arg)
{
    sqlite3_stmt *s = st(ST_SUPP_LIST);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, after ? after : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 3, limit);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
           sqlite3_column_int64(s, 2), arg);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- leads, runs and call jobs ---- */

static void read_lead(sqlite3_stmt *s, struct lead *l)
{
    l->id = sqlite3_column_int64(s, 0);
    l->tenant_id = sqlite3_column_int64(s, 1);
    col_text(s, 2, l->name, sizeof l->name);
    col_text(s, 3, l->phone, sizeof l->phone);
    col_text(s, 4, l->timezone, sizeof l->timezone);
    l->created_at = sqlite3_column_int64(s, 5);
}

int store_lead_insert(struct lead *l)
{
    sqlite3_stmt *s = st(ST_LEAD_INSERT);
    sqlite3_bind_int64(s, 1, l->tenant_id);
    sqlite3_bind_text(s, 2, l->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, l->phone, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, l->timezone, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 5, l->created_at);
    int rc = write_stmt(s);
    if (rc == STORE_OK)
        l->id = sqlite3_last_insert_rowid(db);
    return rc;
}

int store_lead_get(int64_t id, struct lead *out)
{
    sqlite3_stmt *s = st(ST_LEAD_GET);
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        read_lead(s, out);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERR;
}

int store_lead_list(int64_t tenant_id, int offset, int limit, void (*cb)(const struct lead *l, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_LEAD_LIST);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_int(s, 2, limit);
    sqlite3_bind_int(s, 3, offset);
    struct lead l;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        read_lead(s, &l);
        cb(&l, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int64_t count_of(enum stmt_id id, int64_t key)
{
    sqlite3_stmt *s = st(id);
    sqlite3_bind_int64(s, 1, key);
    int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_reset(s);
    return n;
}

int64_t store_lead_count(int64_t tenant_id) { return count_of(ST_LEAD_COUNT, tenant_id); }

static void read_run(sqlite3_stmt *s, struct call_run *r)
{
    r->id = sqlite3_column_int64(s, 0);
    r->tenant_id = sqlite3_column_int64(s, 1);
    col_text(s, 2, r->status, sizeof r->status);
    r->total = sqlite3_column_int(s, 3);
    r->created_at = sqlite3_column_int64(s, 4);
    r->finished_at = sqlite3_column_int64(s, 5);
}

int store_run_insert(struct call_run *r)
{
    sqlite3_stmt *s = st(ST_RUN_INSERT);
    sqlite3_bind_int64(s, 1, r->tenant_id);
    sqlite3_bind_text(s, 2, r->status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 3, r->total);
    sqlite3_bind_int64(s, 4, r->created_at);
    sqlite3_bind_int64(s, 5, r->finished_at);
    int rc = write_stmt(s);
    if (rc == STORE_OK)
        r->id = sqlite3_last_insert_rowid(db);
    return rc;
}

int store_run_save(const struct call_run *r)
{
    sqlite3_stmt *s = st(ST_RUN_SAVE);
    sqlite3_bind_int64(s, 1, r->id);
    sqlite3_bind_text(s, 2, r->status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, r->finished_at);
    return write_stmt(s);
}

int store_run_get(int64_t id, struct call_run *out)
{
    sqlite3_stmt *s = st(ST_RUN_GET);
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        read_run(s, out);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERR;
}

int store_run_list(int64_t tenant_id, int limit, void (*cb)(const struct call_run *r, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_RUN_LIST);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_int(s, 2, limit);
    struct call_run r;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        read_run(s, &r);
        cb(&r, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_run_counts(int64_t run_id, struct run_counts *c)
{
    sqlite3_stmt *s = st(ST_RUN_COUNTS);
    sqlite3_bind_int64(s, 1, run_id);
    memset(c, 0, sizeof *c);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        int n = sqlite3_column_int(s, 1);
        if (!name)
            continue;
        if (strcmp(name, "queued") == 0)
            c->queued += n;
        else if (strcmp(name, "dialing") == 0 || strcmp(name, "ringing") == 0 || strcmp(name, "in_progress") == 0)
            c->in_progress += n;
        else if (strcmp(name, "completed") == 0)
            c->completed += n;
        else if (strcmp(name, "canceled") == 0)
            c->canceled += n;
        else
            c->failed += n; /* busy, no_answer, failed */
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_run_open_jobs(int64_t run_id)
{
    sqlite3_stmt *s = st(ST_RUN_OPEN_JOBS);
    sqlite3_bind_int64(s, 1, run_id);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_ROW;
}

static void bind_job(sqlite3_stmt *s, const struct call_job *j)
{
    sqlite3_bind_int64(s, 1, j->id);
    sqlite3_bind_int64(s, 2, j->tenant_id);
    sqlite3_bind_int64(s, 3, j->run_id);
    sqlite3_bind_int64(s, 4, j->lead_id);
    sqlite3_bind_text(s, 5, j->phone, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 6, j->timezone, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 7, call_status_name(j->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, j->call_sid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 9, j->attempts);
    sqlite3_bind_int64(s, 10, j->not_before);
    sqlite3_bind_text(s, 11, j->error, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 12, j->duration);
    sqlite3_bind_int64(s, 13, j->created_at);
    sqlite3_bind_int64(s, 14, j->dialed_at);
    sqlite3_bind_int64(s, 15, j->finished_at);
}

static void read_job(sqlite3_stmt *s, struct call_job *j)
{
    char buf[24];
    j->id = sqlite3_column_int64(s, 0);
    j->tenant_id = sqlite3_column_int64(s, 1);
    j->run_id = sqlite3_column_int64(s, 2);
    j->lead_id = sqlite3_column_int64(s, 3);
    col_text(s, 4, j->phone, sizeof j->phone);
    col_text(s, 5, j->timezone, sizeof j->timezone);
    col_text(s, 6, buf, sizeof buf);
    int st_ = call_status_parse(buf);
    j->status = st_ < 0 ? CS_FAILED : (enum call_status)st_;
    col_text(s, 7, j->call_sid, sizeof j->call_sid);
    j->attempts = sqlite3_column_int(s, 8);
    j->not_before = sqlite3_column_int64(s, 9);
    col_text(s, 10, j->error, sizeof j->error);
    j->duration = sqlite3_column_int(s, 11);
    j->created_at = sqlite3_column_int64(s, 12);
    j->dialed_at = sqlite3_column_int64(s, 13);
    j->finished_at = sqlite3_column_int64(s, 14);
}

static int one_job(sqlite3_stmt *s, struct call_job *out)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        read_job(s, out);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : STORE_ERR;
}

int store_job_insert(struct call_job *j)
{
    sqlite3_stmt *s = st(ST_JOB_INSERT);
    bind_job(s, j);
    int rc = write_stmt(s);
    if (rc == STORE_OK)
        j->id = sqlite3_last_insert_rowid(db);
    return rc;
}

int store_job_save(const struct call_job *j)
{
    sqlite3_stmt *s = st(ST_JOB_SAVE);
    bind_job(s, j);
    return write_stmt(s);
}

int store_job_get(int64_t id, struct call_job *out)
{
    sqlite3_stmt *s = st(ST_JOB_GET);
    sqlite3_bind_int64(s, 1, id);
    return one_job(s, out);
}

int store_job_by_sid(const char *sid, struct call_job *out)
{
    sqlite3_stmt *s = st(ST_JOB_BY_SID);
    sqlite3_bind_text(s, 1, sid, -1, SQLITE_TRANSIENT);
    return one_job(s, out);
}

int store_job_next(int64_t tenant_id, int64_t now, struct call_job *out)
{
    sqlite3_stmt *s = st(ST_JOB_NEXT);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_int64(s, 2, now);
    return one_job(s, out);
}

int64_t store_job_next_wake(int64_t tenant_id)
{
    sqlite3_stmt *s = st(ST_JOB_NEXT_WAKE);
    sqlite3_bind_int64(s, 1, tenant_id);
    int64_t t = 0;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        t = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return t;
}

int store_job_lead_open(int64_t lead_id, int64_t *run_id)
{
    sqlite3_stmt *s = st(ST_JOB_LEAD_OPEN);
    sqlite3_bind_int64(s, 1, lead_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *run_id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW;
}

static int each_job(sqlite3_stmt *s, void (*cb)(const struct call_job *j, void *arg), void *arg)
{
    struct call_job *j = xmalloc(sizeof *j);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        read_job(s, j);
        cb(j, arg);
    }
    free(j);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int store_job_open(void (*cb)(const struct call_job *j, void *arg), void *arg)
{
    return each_job(st(ST_JOB_OPEN), cb, arg);
}

int store_job_cancel_queued(int64_t run_id, const char *why, int64_t now)
{
    sqlite3_stmt *s = st(ST_JOB_CANCEL_QUEUED);
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, why, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, now);
    int rc = write_stmt(s);
    return rc == STORE_OK ? sqlite3_changes(db) : -1;
}

int store_job_recent(int64_t tenant_id, int offset, int limit,
                     void (*cb)(const struct call_job *j, const char *lead_name, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_JOB_RECENT);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_int(s, 2, limit);
    sqlite3_bind_int(s, 3, offset);
    struct call_job j;
    char name[LEAD_NAME_MAX];
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        read_job(s, &j);
        col_text(s, 15, name, sizeof name);
        cb(&j, name, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int64_t store_job_count(int64_t tenant_id) { return count_of(ST_JOB_COUNT, tenant_id); }

int store_job_sid_taken(const char *sid)
{
    sqlite3_stmt *s = st(ST_JOB_SID_TAKEN);
    sqlite3_bind_text(s, 1, sid, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_ROW;
}

int store_job_tenants_queued(void (*cb)(int64_t tenant_id, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_JOB_TENANTS_QUEUED);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        cb(sqlite3_column_int64(s, 0), arg);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

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
    int rc = write_stmt(s);
    if (rc == STORE_OK && id)
        *id = sqlite3_last_insert_rowid(db);
    return rc;
}

int64_t store_event_last(int64_t tenant_id) { return count_of(ST_EVENT_LAST, tenant_id); }

int store_event_list(int64_t tenant_id, int64_t after_id, int64_t upto_id, const char *types, const char *session,
                     int limit, void (*cb)(const struct store_event *e, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_EVENT_LIST);
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
    int rc = write_stmt(s);
    int n = rc == STORE_OK ? sqlite3_changes(db) : 0;
    s = st(ST_EVENT_PRUNE_COUNT);
    sqlite3_bind_int64(s, 1, keep);
    if (write_stmt(s) == STORE_OK)
        n += sqlite3_changes(db);
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
    int rc = write_stmt(s);
    if (rc == STORE_OK)
        h->id = sqlite3_last_insert_rowid(db);
    return rc;
}

int store_hook_set_status(int64_t id, const char *status)
{
    sqlite3_stmt *s = st(ST_HOOK_SAVE);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_text(s, 2, status, -1, SQLITE_TRANSIENT);
    return write_stmt(s);
}

int store_hook_delete(int64_t id)
{
    sqlite3_stmt *s = st(ST_DLV_DELETE_HOOK);
    sqlite3_bind_int64(s, 1, id);
    int rc = write_stmt(s);
    if (rc != STORE_OK)
        return rc;
    s = st(ST_HOOK_DELETE);
    sqlite3_bind_int64(s, 1, id);
    return write_stmt(s);
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
    return write_stmt(s);
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
    return write_stmt(s);
}

static void read_delivery(sqlite3_stmt *s, struct delivery *d)
{
    d->id = sqlite3_column_int64(s, 0);
    d->webhook_id = sqlite3_column_int64(s, 1);
    d->event_id = sqlite3_column_int64(s, 2);
    col_text(s, 3, d->event_type, sizeof d->event_type);
    free(d->payload);
    d->payload = xstrdup(sqlite3_column_text(s, 4) ? (const char *)sqlite3_column_text(s, 4) : "");
    col_text(s, 5, d->status, sizeof d->status);
    d->attempts = sqlite3_column_int(s, 6);
    d->next_at = sqlite3_column_int64(s, 7);
    d->last_status = sqlite3_column_int(s, 8);
    col_text(s, 9, d->last_error, sizeof d->last_error);
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
    int rc = write_stmt(s);
    return rc == STORE_OK ? sqlite3_changes(db) : -1;
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
    return write_stmt(s);
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
    return write_stmt(s);
}

int store_web_prune(int64_t now)
{
    sqlite3_stmt *s = st(ST_WEB_PRUNE);
    sqlite3_bind_int64(s, 1, now);
    return write_stmt(s);
}
