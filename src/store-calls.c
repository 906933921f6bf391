/* store-calls: the SQL of leads, call runs and call jobs; see store.h. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-int.h"
#include "callfsm.h"
#include "util.h"

#define JOB_COLS                                                                             \
    "id, tenant_id, run_id, lead_id, phone, timezone, status, call_sid, attempts, not_before, " \
    "error, duration, created_at, dialed_at, finished_at"
#define JOB_COLS_J                                                                           \
    "j.id, j.tenant_id, j.run_id, j.lead_id, j.phone, j.timezone, j.status, j.call_sid, "      \
    "j.attempts, j.not_before, j.error, j.duration, j.created_at, j.dialed_at, j.finished_at"
#define JOB_COLS_J                                                                           \
    "j.id, j.tenant_id, j.run_id, j.lead_id, j.phone, j.timezone, j.status, j.call_sid, "      \
    "j.attempts, j.not_before, j.error, j.duration, j.created_at, j.dialed_at, j.finished_at"

enum stmt_id {
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

static const char *const stmt_sql[ST__COUNT] = {
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
    [ST_RUN_COUNTS] = "SELECT status, count(*) FROM call_jobs WHERE run_id = ?1 GROUP BY status",
    [ST_RUN_OPEN_JOBS] = "SELECT 1 FROM call_jobs WHERE run_id = ?1 AND status IN ('queued', 'dialing', "
                         "'ringing', 'in_progress') LIMIT 1",
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
};

static sqlite3_stmt *stmts[ST__COUNT];

static sqlite3_stmt *st(enum stmt_id id) { return store_reset(stmts[id]); }

int store_calls_prepare(char *err, size_t errlen) { return store_prepare_all(stmt_sql, stmts, ST__COUNT, err, errlen); }

void store_calls_finalize(void) { store_finalize_all(stmts, ST__COUNT); }

/* ---- leads, runs and call jobs ---- */

static void read_lead(sqlite3_stmt *s, struct lead *l)
{
    l->id = sqlite3_column_int64(s, 0);
    l->tenant_id = sqlite3_column_int64(s, 1);
    store_col_text(s, 2, l->name, sizeof l->name);
    store_col_text(s, 3, l->phone, sizeof l->phone);
    store_col_text(s, 4, l->timezone, sizeof l->timezone);
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
    int rc = store_write(s);
    if (rc == STORE_OK)
        l->id = sqlite3_last_insert_rowid(store_db);
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

int64_t store_lead_count(int64_t tenant_id) { return store_count_of(st(ST_LEAD_COUNT), tenant_id); }

static void read_run(sqlite3_stmt *s, struct call_run *r)
{
    r->id = sqlite3_column_int64(s, 0);
    r->tenant_id = sqlite3_column_int64(s, 1);
    store_col_text(s, 2, r->status, sizeof r->status);
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
    int rc = store_write(s);
    if (rc == STORE_OK)
        r->id = sqlite3_last_insert_rowid(store_db);
    return rc;
}

int store_run_save(const struct call_run *r)
{
    sqlite3_stmt *s = st(ST_RUN_SAVE);
    sqlite3_bind_int64(s, 1, r->id);
    sqlite3_bind_text(s, 2, r->status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, r->finished_at);
    return store_write(s);
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
    store_col_text(s, 4, j->phone, sizeof j->phone);
    store_col_text(s, 5, j->timezone, sizeof j->timezone);
    store_col_text(s, 6, buf, sizeof buf);
    int st_ = call_status_parse(buf);
    j->status = st_ < 0 ? CS_FAILED : (enum call_status)st_;
    store_col_text(s, 7, j->call_sid, sizeof j->call_sid);
    j->attempts = sqlite3_column_int(s, 8);
    j->not_before = sqlite3_column_int64(s, 9);
    store_col_text(s, 10, j->error, sizeof j->error);
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
    int rc = store_write(s);
    if (rc == STORE_OK)
        j->id = sqlite3_last_insert_rowid(store_db);
    return rc;
}

int store_job_save(const struct call_job *j)
{
    sqlite3_stmt *s = st(ST_JOB_SAVE);
    bind_job(s, j);
    return store_write(s);
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
    int rc = store_write(s);
    return rc == STORE_OK ? sqlite3_changes(store_db) : -1;
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
        store_col_text(s, 15, name, sizeof name);
        cb(&j, name, arg);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int64_t store_job_count(int64_t tenant_id) { return store_count_of(st(ST_JOB_COUNT), tenant_id); }

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
