/* simstore: the simulator's persistent state in AUTH_DIR.
 *   sim-creds.json  {"phoneNumber":"<digits>","linkedAt":<ms>}: present = linked
 *   sent.log        one accepted messageId per line, append-only, fsync'd
 * The sent ids are also kept in memory (a hash set) so /send can answer a
 * repeat without touching the disk. */
#ifndef SB_SIMSTORE_H
#define SB_SIMSTORE_H

#include <stddef.h>
#include <stdint.h>

#define SIMSTORE_ID_MAX 128 /* longest messageId, in bytes */

struct simstore {
    char *dir;          /* owned copy of AUTH_DIR */
    char *creds_path;   /* owned */
    char *sentlog_path; /* owned */
    int sent_fd;        /* sent.log opened O_APPEND, -1 when closed */
    char **slots;       /* open-addressing hash set of owned strings */
    size_t cap;         /* power of two */
    size_t count;
};

/* Creates dir if missing, loads sent.log (repairing a torn last line) and
 * opens it for appending. 0 or -1 (logged). st is zeroed first. */
int simstore_open(struct simstore *st, const char *dir);

/* Frees everything; safe on a zeroed or half-opened store. */
void simstore_close(struct simstore *st);

/* Reads sim-creds.json. 1 when linked (phone gets the digits, outlen >= 16),
 * 0 when there is no file, -1 when it exists but is not valid (logged). */
int simstore_creds_load(struct simstore *st, char *phone, size_t outlen, int64_t *linked_at_ms);

/* Writes sim-creds.json atomically and durably. 0 or -1. */
int simstore_creds_save(struct simstore *st, const char *phone, int64_t linked_at_ms);

/* Removes sim-creds.json; a missing file is fine. 0 or -1. */
int simstore_creds_remove(struct simstore *st);

/* 1 when id is a messageId the log can hold: 1..SIMSTORE_ID_MAX bytes, no
 * control characters (a newline would split the line). */
int simstore_id_valid(const char *id, size_t len);

/* 1 when id was accepted before. */
int simstore_sent_has(const struct simstore *st, const char *id);

/* Appends id to sent.log, fsyncs, then remembers it. 0 or -1. */
int simstore_sent_add(struct simstore *st, const char *id);

#endif
