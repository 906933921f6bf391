#include "store.h"
#include "store-int.h"

#include <event2/event.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "schema.h"
#include "util.h"

#define SESSION_COLS                                                                          \
    "id, tenant_id, status, phone, proxy_id, login_method, pairing_phone, reason, last_error, " \
    "qr, qr_at, pairing_code, pairing_at, trust_level, created_at, connected_at, "             \
    "first_connected_at, last_ping_at, restarts, fail_streak, worker_backend, worker_pid, "    \
    "worker_ident, worker_address, needs_proxy"

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
    ST_BINDING_DROP_PROXY,
    ST_BINDING_LOAD,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST__COUNT,
};

static const char *const stmt_sql[ST__COUNT] = {
    [ST_TENANT_INSERT] = "INSERT INTO tenants (name, created_at) VALUES (?1, ?2)",
    [ST_APIKEY_INSERT] = "INSERT INTO api_keys (tenant_id, key_hash, created_at) VALUES (?1, ?2, ?3)",
    [ST_APIKEY_LOOKUP] = "SELECT tenant_id FROM api_keys WHERE key_hash = ?1",
    [ST_SESSION_INSERT] = "INSERT INTO sessions (" SESSION_COLS ") VALUES (NULL, ?2, ?3, ?4, ?5, "
                          "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "
                          "?21, ?22, ?23, ?24, ?25)",
    [ST_SESSION_SAVE] = "UPDATE sessions SET tenant_id=?2, status=?3, phone=?4, proxy_id=?5, "
                        "login_method=?6, pairing_phone=?7, reason=?8, last_error=?9, qr=?10, "
                        "qr_at=?11, pairing_code=?12, pairing_at=?13, trust_level=?14, "
                        "created_at=?15, connected_at=?16, first_connected_at=?17, "
                        "last_ping_at=?18, restarts=?19, fail_streak=?20, worker_backend=?21, "
                        "worker_pid=?22, worker_ident=?23, worker_address=?24, needs_proxy=?25 "
                        "WHERE id=?1",
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
    [ST_BINDING_DROP_PROXY] = "DELETE FROM phone_proxy WHERE proxy_id = ?1",
    /* the batch and its savepoints: prepared once, as they run for nearly every write */
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT h",
    [ST_RELEASE] = "RELEASE h",
    [ST_ROLLBACK_TO] = "ROLLBACK TO h",
};

struct deferred {
    void (*fn)(void *arg, int ok);
    void *arg;
};

sqlite3 *store_db;
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
    if (sqlite3_exec(store_db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("store", "sql failed: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static sqlite3_stmt *st(enum stmt_id id);
static int step_done(sqlite3_stmt *s);

/* one of the prepared transaction statements; 0 or -1 (logged) */
static int run(enum stmt_id id) { return step_done(st(id)) == STORE_OK ? 0 : -1; }

static void run_pending(int ok)
{
    /* the callbacks of the batch that just ended. One may write, which opens the next
     * batch: what it queues then waits for that batch's own commit (it used to run in
     * this loop, before its writes were durable) */
    struct deferred *list = pending;
    size_t n = npending;
    pending = NULL;
    npending = cappending = 0;
    for (size_t i = 0; i < n; i++)
        list[i].fn(list[i].arg, ok);
    free(list);
}

int store_flush(void)
{
    if (!in_batch) {
        run_pending(1);
        return 0;
    }
    in_batch = 0;
    sp_depth = 0;
    int ok = run(ST_COMMIT) == 0;
    if (!ok) {
        stats.commit_failures++;
        run(ST_ROLLBACK);
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
    if (run(ST_BEGIN) < 0)
        return;
    in_batch = 1;
    event_active(commit_ev, EV_TIMEOUT, 0);
}

int store_in_batch(void) { return in_batch; }

void store_tx_begin(void)
{
    batch_open();
    run(ST_SAVEPOINT);
    sp_depth++;
}

void store_tx_end(int ok)
{
    if (sp_depth <= 0)
        return;
    if (!ok)
        run(ST_ROLLBACK_TO);
    run(ST_RELEASE);
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

sqlite3_stmt *store_reset(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static sqlite3_stmt *st(enum stmt_id id) { return store_reset(stmts[id]); }

static int step_done(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return STORE_OK;
    if (rc == SQLITE_CONSTRAINT)
        return STORE_CONFLICT;
    log_error("store", "write failed: %s", sqlite3_errmsg(store_db));
    return STORE_ERR;
}

int store_write(sqlite3_stmt *s)
{
    batch_open();
    return step_done(s);
}

int64_t store_count_of(sqlite3_stmt *s, int64_t key)
{
    sqlite3_bind_int64(s, 1, key);
    int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_reset(s);
    return n;
}

int store_prepare_all(const char *const *sql, sqlite3_stmt **out, int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        if (sqlite3_prepare_v3(store_db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &out[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "store: cannot prepare \"%.60s…\": %s", sql[i], sqlite3_errmsg(store_db));
            return -1;
        }
    }
    return 0;
}

void store_finalize_all(sqlite3_stmt **s, int n)
{
    for (int i = 0; i < n; i++) {
        sqlite3_finalize(s[i]);
        s[i] = NULL;
    }
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
    if (sqlite3_prepare_v2(store_db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
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
    snprintf(err, errlen, "store: %s", sqlite3_errmsg(store_db));
    return -1;
}

int store_open(struct event_base *base, const char *path, int sync_full, char *err, size_t errlen)
{
    /* only the main loop uses SQLite: no mutexes, no memory statistics (each took a lock
     * per allocation). Takes effect before the library's first use; later calls fail
     * harmlessly. */
    sqlite3_config(SQLITE_CONFIG_SINGLETHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (sqlite3_open_v2(path, &store_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "store: cannot open %s: %s", path, store_db ? sqlite3_errmsg(store_db) : "?");
        goto fail;
    }
    sqlite3_busy_timeout(store_db, 5000);
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
    if (store_prepare_all(stmt_sql, stmts, ST__COUNT, err, errlen) < 0 || store_messages_prepare(err, errlen) < 0 ||
        store_calls_prepare(err, errlen) < 0 || store_events_prepare(err, errlen) < 0)
        goto fail;
    commit_ev = event_new(base, -1, 0, commit_cb, NULL);
    /* lowest priority: runs in the first pass of the loop with no other event ready
     * (libevent skips lower priorities in a pass that ran a higher one), so one commit
     * takes everything that arrived meanwhile */
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
    store_finalize_all(stmts, ST__COUNT);
    store_messages_finalize();
    store_calls_finalize();
    store_events_finalize();
    if (commit_ev)
        event_free(commit_ev);
    commit_ev = NULL;
    if (store_db)
        sqlite3_close(store_db);
    store_db = NULL;
    free(pending);
    pending = NULL;
    npending = cappending = 0;
}

int store_ping(void)
{
    sqlite3_stmt *s = NULL;
    int ok = sqlite3_prepare_v2(store_db, "SELECT count(*) FROM tenants", -1, &s, NULL) == SQLITE_OK &&
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
    int rc = store_write(s);
    if (rc == STORE_OK)
        *id = sqlite3_last_insert_rowid(store_db);
    return rc;
}

int store_apikey_insert(int64_t tenant_id, const char *key_hash)
{
    sqlite3_stmt *s = st(ST_APIKEY_INSERT);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, key_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, util_now_ms());
    return store_write(s);
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
    sqlite3_bind_int(s, 25, x->needs_proxy);
}

int store_session_insert(struct session *x)
{
    sqlite3_stmt *s = st(ST_SESSION_INSERT);
    bind_session(s, x);
    int rc = store_write(s);
    if (rc == STORE_OK)
        x->id = sqlite3_last_insert_rowid(store_db);
    return rc;
}

int store_session_save(const struct session *x)
{
    sqlite3_stmt *s = st(ST_SESSION_SAVE);
    bind_session(s, x);
    return store_write(s);
}

int store_session_ping(int64_t id, int64_t at_ms)
{
    sqlite3_stmt *s = st(ST_SESSION_PING);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, at_ms);
    return store_write(s);
}

int store_session_delete(int64_t id)
{
    sqlite3_stmt *s = st(ST_SESSION_DELETE);
    sqlite3_bind_int64(s, 1, id);
    return store_write(s);
}

void store_col_text(sqlite3_stmt *s, int col, char *out, size_t outlen)
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
        store_col_text(s, 2, buf, sizeof buf);
        int st_ = sess_status_parse(buf);
        x->status = st_ < 0 ? SS_FAILED : (enum sess_status)st_;
        store_col_text(s, 3, x->phone, sizeof x->phone);
        x->proxy_id = sqlite3_column_int64(s, 4);
        store_col_text(s, 5, buf, sizeof buf);
        x->login = strcmp(buf, "pairing_code") == 0 ? LOGIN_PAIRING : LOGIN_QR;
        store_col_text(s, 6, x->pairing_phone, sizeof x->pairing_phone);
        store_col_text(s, 7, x->reason, sizeof x->reason);
        store_col_text(s, 8, x->last_error, sizeof x->last_error);
        store_col_text(s, 9, x->qr, sizeof x->qr);
        x->qr_at = sqlite3_column_int64(s, 10);
        store_col_text(s, 11, x->pairing_code, sizeof x->pairing_code);
        x->pairing_at = sqlite3_column_int64(s, 12);
        store_col_text(s, 13, x->trust_level, sizeof x->trust_level);
        x->created_at = sqlite3_column_int64(s, 14);
        x->connected_at = sqlite3_column_int64(s, 15);
        x->first_connected_at = sqlite3_column_int64(s, 16);
        x->last_ping_at = sqlite3_column_int64(s, 17);
        x->restarts = sqlite3_column_int(s, 18);
        x->fail_streak = sqlite3_column_int(s, 19);
        store_col_text(s, 20, x->worker.backend, sizeof x->worker.backend);
        x->worker.pid = sqlite3_column_int(s, 21);
        x->worker.ident = sqlite3_column_int64(s, 22);
        store_col_text(s, 23, x->worker.address, sizeof x->worker.address);
        x->needs_proxy = sqlite3_column_int(s, 24) != 0;
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
    int rc = store_write(s);
    if (rc == STORE_OK)
        p->id = sqlite3_last_insert_rowid(store_db);
    return rc;
}

int store_proxy_save(const struct proxy *p)
{
    sqlite3_stmt *s = st(ST_PROXY_SAVE);
    sqlite3_bind_int64(s, 1, p->id);
    sqlite3_bind_text(s, 2, proxy_status_name(p->status), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, p->last_error, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 4, p->bad_at);
    return store_write(s);
}

int store_proxy_delete(int64_t id)
{
    /* its phones' bindings go with it: a later proxy may get the same id */
    sqlite3_stmt *s = st(ST_BINDING_DROP_PROXY);
    sqlite3_bind_int64(s, 1, id);
    int rc = store_write(s);
    if (rc != STORE_OK)
        return rc;
    s = st(ST_PROXY_DELETE);
    sqlite3_bind_int64(s, 1, id);
    return store_write(s);
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
        store_col_text(s, 2, url, sizeof url);
        p.url = url;
        store_col_text(s, 3, buf, sizeof buf);
        p.status = strcmp(buf, "bad") == 0 ? PROXY_BAD : PROXY_OK;
        store_col_text(s, 4, p.source, sizeof p.source);
        store_col_text(s, 5, p.last_error, sizeof p.last_error);
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
    return store_write(s);
}

int store_binding_load(void (*cb)(const struct binding *b, void *arg), void *arg)
{
    sqlite3_stmt *s = st(ST_BINDING_LOAD);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct binding b;
        memset(&b, 0, sizeof b);
        b.tenant_id = sqlite3_column_int64(s, 0);
        store_col_text(s, 1, b.phone, sizeof b.phone);
        b.proxy_id = sqlite3_column_int64(s, 2);
        cb(&b, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}
