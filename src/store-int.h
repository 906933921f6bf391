/* store-int: what the store's files share (store.c owns the connection and the batch;
 * store-messages.c, store-calls.c and store-events.c each prepare their own statements).
 * Not for use outside the store. */
#ifndef SB_STORE_INT_H
#define SB_STORE_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

extern sqlite3 *store_db;

/* a prepared statement, reset and unbound, ready for new bindings */
sqlite3_stmt *store_reset(sqlite3_stmt *s);
/* steps a write inside the current batch: STORE_OK, STORE_CONFLICT or STORE_ERR */
int store_write(sqlite3_stmt *s);
/* a text column into out ("" for NULL) */
void store_col_text(sqlite3_stmt *s, int col, char *out, size_t outlen);
/* the one integer of a statement bound with key, -1 on failure */
int64_t store_count_of(sqlite3_stmt *s, int64_t key);
/* prepares n persistent statements; 0 or -1 with err */
int store_prepare_all(const char *const *sql, sqlite3_stmt **out, int n, char *err, size_t errlen);
void store_finalize_all(sqlite3_stmt **s, int n);

int store_messages_prepare(char *err, size_t errlen);
void store_messages_finalize(void);
int store_calls_prepare(char *err, size_t errlen);
void store_calls_finalize(void);
int store_events_prepare(char *err, size_t errlen);
void store_events_finalize(void);

#endif
