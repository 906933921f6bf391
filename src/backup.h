/* backup: archives of every session's auth directory (one .tar.gz under BACKUPS_DIR, with
 * a manifest of sessions, sizes and SHA-256 checksums), written under a temporary name
 * and renamed when complete; the newest MAX_BACKUPS are kept. Restore validates every
 * path (nothing escapes SESSIONS_DIR), stops each session's worker, swaps the files in and
 * starts it again. Archiving and extracting run on a helper thread, one job at a time; the
 * loop hears of the end through a pipe. The daily backup runs at BACKUP_AT (local time). */
#ifndef SB_BACKUP_H
#define SB_BACKUP_H

#include <stddef.h>

struct config;
struct event_base;

int backup_init(struct event_base *base, const struct config *cfg, char *err, size_t errlen);
/* waits for a job in progress, then frees everything */
void backup_shutdown(void);
void backup_register(void);

/* 1 when name is "switchboard-backup-YYYYMMDD-HHMMSS.tar.gz". Pure. */
int backup_name_ok(const char *name);
/* 1 when an archive path may be restored: "sessions/worker_<n>/<rel>" where rel is a
 * relative path without "." or ".." parts. Pure; the fuzz target drives it. */
int backup_path_ok(const char *path);

#endif
