/* Unit test of the store's schema upgrades: a database made by the first release (schema
 * step 1) is brought to the current version on open, keeping its rows. */
#include <event2/event.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "schema.h"
#include "store.h"
#include "tap.h"

static int count_steps(void)
{
    int n = 0;
    for (const char *p = schema_sql; (p = strstr(p, "\n-- step ")) != NULL; p++)
        n += p[9] >= '0' && p[9] <= '9';
    return n;
}

static int query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

int main(void)
{
    char path[] = "/tmp/sb-migrate-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file");
    close(fd);
    unlink(path);

    /* a version-1 database with one session in it */
    const char *step2 = strstr(schema_sql, "\n-- step 2");
    CHECK(step2 != NULL, "the schema has a step 2");
    char *v1 = strndup(schema_sql, (size_t)(step2 - schema_sql));
    sqlite3 *db;
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK, "open");
    CHECK_EQ_INT(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK, "step 1 applies");
    CHECK_EQ_INT(sqlite3_exec(db,
                              "INSERT INTO sessions (tenant_id, status, login_method, created_at) "
                              "VALUES (1, 'connected', 'qr', 1); PRAGMA user_version = 1;",
                              NULL, NULL, NULL),
                 SQLITE_OK, "a session row at version 1");
    sqlite3_close(db);
    free(v1);

    struct event_base *base = event_base_new();
    event_base_priority_init(base, 3);
    char err[256] = "";
    CHECK_EQ_INT(store_open(base, path, 0, err, sizeof err), 0, "the store opens an old database: %s", err);
    store_close();
    CHECK_EQ_INT(store_open(base, path, 1, err, sizeof err), 0, "and opens it again, nothing left to do");
    store_close();

    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK, "reopen");
    CHECK_EQ_INT(query_int(db, "PRAGMA user_version"), count_steps(), "upgraded to the last step (%d)", count_steps());
    CHECK_EQ_INT(query_int(db, "SELECT count(*) FROM sessions"), 1, "the session row is kept");
    CHECK_EQ_INT(query_int(db, "SELECT count(*) FROM messages"), 0, "the messages table exists");
    CHECK_EQ_INT(query_int(db, "SELECT count(*) FROM suppressions"), 0, "the suppressions table exists");
    sqlite3_close(db);
    event_base_free(base);
    unlink(path);
    char side[64];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    return TAP_DONE();
}
