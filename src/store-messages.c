/* store-messages: the SQL of messages, idempotency keys, pacing counters, the inbox, affinity and suppressions; see store.h. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-int.h"
#include "util.h"

#define MSG_COLS                                                                             \
    "id, public_id, tenant_id, session_id, recipient, body, status, attempts, error, "       \
    "wa_message_id, created_at, expires_at, not_before, dispatched_at, finished_at"

enum stmt_id {
    ST_MSG_INSERT,
    ST_MSG_SAVE,
    ST_MSG_BY_ID,
    ST_MSG_BY_PUBLIC,
    ST_MSG_HEAD,
    ST_MSG_HEAD_DUE,
    ST_MSG_HEAD_HELD,
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
    ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
    [ST_MSG_INSERT] = "INSERT INTO messages (" MSG_COLS ") VALUES (NULL, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                      "?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [ST_MSG_SAVE] = "UPDATE messages SET status=?7, attempts=?8, error=?9, wa_message_id=?10, "
                    "not_before=?13, dispatched_at=?14, finished_at=?15 WHERE id=?1",
    [ST_MSG_BY_ID] = "SELECT " MSG_COLS " FROM messages WHERE id = ?1",
    [ST_MSG_BY_PUBLIC] = "SELECT " MSG_COLS " FROM messages WHERE public_id = ?1",
    [ST_MSG_HEAD] = "SELECT " MSG_COLS " FROM messages WHERE session_id = ?1 AND status = 'queued' "
                    "AND not_before = 0 ORDER BY id LIMIT 1",
    [ST_MSG_HEAD_DUE] = "SELECT id FROM messages WHERE session_id = ?1 AND status = 'queued' "
                        "AND not_before BETWEEN 1 AND ?2 ORDER BY id LIMIT 1",
    [ST_MSG_HEAD_HELD] = "SELECT " MSG_COLS " FROM messages WHERE session_id = ?1 AND status = 'queued' "
                         "AND not_before > ?2 ORDER BY not_before, id LIMIT 1",
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
    [ST_SUPP_LIST] = "SELECT phone, reason, created_at FROM suppressions WHERE tenant_id = ?1 AND "
                     "phone > ?2 ORDER BY phone LIMIT ?3",
    [ST_MSG_LIST] = "SELECT " MSG_COLS " FROM messages WHERE tenant_id = ?1 AND (?2 = 0 OR "
                    "session_id = ?2) AND (?3 = '' OR status = ?3) AND (?4 = 0 OR id < ?4) "
                    "ORDER BY id DESC LIMIT ?5",
    [ST_INBOX_LIST] = "SELECT id, tenant_id, session_id, sender, body, wa_message_id, sent_at, "
                      "received_at FROM inbox WHERE tenant_id = ?1 AND (?2 = 0 OR session_id = ?2) "
                      "AND received_at >= ?3 AND id > ?4 ORDER BY id LIMIT ?5",
};

static sqlite3_stmt *stmts[ST__COUNT];

static sqlite3_stmt *st(enum stmt_id id) { return store_reset(stmts[id]); }

int store_messages_prepare(char *err, size_t errlen) { return store_prepare_all(stmt_sql, stmts, ST__COUNT, err, errlen); }

void store_messages_finalize(void) { store_finalize_all(stmts, ST__COUNT); }

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
    store_col_text(s, 1, m->public_id, sizeof m->public_id);
    m->tenant_id = sqlite3_column_int64(s, 2);
    m->session_id = sqlite3_column_int64(s, 3);
    store_col_text(s, 4, m->to, sizeof m->to);
    store_col_text(s, 5, m->text, sizeof m->text);
    store_col_text(s, 6, buf, sizeof buf);
    int st_ = msg_status_parse(buf);
    m->status = st_ < 0 ? MS_FAILED : (enum msg_status)st_;
    m->attempts = sqlite3_column_int(s, 7);
    store_col_text(s, 8, m->error, sizeof m->error);
    store_col_text(s, 9, m->wa_message_id, sizeof m->wa_message_id);
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
    int rc = store_write(s);
    if (rc == STORE_OK)
        m->id = sqlite3_last_insert_rowid(store_db);
    return rc;
}

int store_message_save(const struct message *m)
{
    sqlite3_stmt *s = st(ST_MSG_SAVE);
    bind_message(s, m);
    return store_write(s);
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

int store_message_head(int64_t session_id, int64_t now, struct message *out)
{
    /* the oldest never-tried message (messages_queue serves each of these three) */
    sqlite3_stmt *s = st(ST_MSG_HEAD);
    sqlite3_bind_int64(s, 1, session_id);
    int rc = read_one_message(s, out);
    if (rc == STORE_ERR)
        return rc;
    /* a retry whose back-off is over goes in its place in the order of acceptance */
    s = st(ST_MSG_HEAD_DUE);
    sqlite3_bind_int64(s, 1, session_id);
    sqlite3_bind_int64(s, 2, now);
    int step = sqlite3_step(s);
    int64_t due = step == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return STORE_ERR;
    if (due && (rc == STORE_NOTFOUND || due < out->id))
        return store_message_get(due, out);
    if (rc == STORE_OK)
        return rc;
    /* nothing may go now: the retry that may go first */
    s = st(ST_MSG_HEAD_HELD);
    sqlite3_bind_int64(s, 1, session_id);
    sqlite3_bind_int64(s, 2, now);
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
    return store_write(s);
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
    return store_write(s);
}

int store_idem_prune(int64_t before)
{
    sqlite3_stmt *s = st(ST_IDEM_PRUNE);
    sqlite3_bind_int64(s, 1, before);
    return store_write(s);
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
    return store_write(s);
}

int store_pacing_delete(int64_t session_id)
{
    sqlite3_stmt *s = st(ST_PACING_DELETE);
    sqlite3_bind_int64(s, 1, session_id);
    return store_write(s);
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
    int rc = store_write(s);
    if (rc == STORE_OK && sqlite3_changes(store_db) == 0)
        return STORE_CONFLICT; /* the same incoming message again */
    if (rc == STORE_OK)
        in->id = sqlite3_last_insert_rowid(store_db);
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
        store_col_text(s, 3, in->from, sizeof in->from);
        store_col_text(s, 4, in->text, sizeof in->text);
        store_col_text(s, 5, in->wa_message_id, sizeof in->wa_message_id);
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
    return store_write(s);
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
    int rc = store_write(s);
    return rc == STORE_OK && sqlite3_changes(store_db) == 0 ? STORE_CONFLICT : rc;
}

int store_suppression_delete(int64_t tenant_id, const char *phone)
{
    sqlite3_stmt *s = st(ST_SUPP_DEL);
    sqlite3_bind_int64(s, 1, tenant_id);
    sqlite3_bind_text(s, 2, phone, -1, SQLITE_TRANSIENT);
    int rc = store_write(s);
    return rc == STORE_OK && sqlite3_changes(store_db) == 0 ? STORE_NOTFOUND : rc;
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
