/* session: the session service. Owns every struct session (in memory, written
 * through the store), drives the state machine (sessfsm.c) from worker events,
 * runner exits, the watchdog and the API, and paces worker starts.
 * Pointers returned stay valid until session_delete (after which lookups miss). */
#ifndef SB_SESSION_H
#define SB_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct config;
struct event_base;
struct runner;
struct wevent;
struct proxy;

int session_init(struct event_base *base, const struct config *cfg, struct runner *runner,
                 const char *master_secret, const char *webhook_url, char *err, size_t errlen);
/* the runner's exit callback (runner_exit_cb) */
void session_on_worker_exit(const char *session, int code, int signo, const char *why, void *arg);
/* stops every worker, waiting at most the stop grace; frees everything */
void session_shutdown(void);

struct session *session_get(int64_t id);
/* lookup by "worker_<n>" */
struct session *session_find(const char *name);
/* live sessions in id order */
void session_each(void (*fn)(struct session *s, void *arg), void *arg);

struct provision_req {
    const char *phone;  /* digits or NULL */
    const char *proxy;  /* socks5h URL or NULL */
    enum login_method login;
};

/* 0 and *out, or -1 with an HTTP status, an error code and a message. Commits through
 * the store's batch; the worker starts later, paced. */
int session_provision(int64_t tenant_id, const struct provision_req *req, struct session **out,
                      int *status, const char **code, char *msg, size_t msglen);
/* stops the worker if any and starts a new one (failed, logged-out and stopped sessions
 * too): 0; -1 when one that does not run would be one worker more than MAX_WORKERS */
int session_restart(struct session *s, const char *why);
/* stops the worker and keeps the session (its auth, its queued messages) until it is
 * restarted; 0, or -1 when it is stopped or logged out already */
int session_stop(struct session *s, const char *why);
/* asks the worker to log out, then stops it and removes its auth dir; done(s, arg) is
 * called once the session is logged_out (s is NULL when it was deleted meanwhile) */
void session_logout(struct session *s, void (*done)(struct session *s, void *arg), void *arg);
/* removes the session now (row and slot); the worker is stopped and, with purge, the
 * auth dir removed once it is gone */
int session_delete(struct session *s, int purge);

/* asks the running worker for a new pairing code (POST /pairing-code); done(s, code,
 * error, arg) once: code on success, else error (s NULL when deleted meanwhile) */
int session_request_pairing(struct session *s, const char *phone,
                            void (*done)(struct session *s, const char *code, const char *error, void *arg),
                            void *arg);

enum session_restore {
    SESSION_RESTORE_FAILED = -1,   /* not replaced (err says why); the old files stay */
    SESSION_RESTORE_STOPPED = 0,   /* replaced; the session is stopped and stays so */
    SESSION_RESTORE_RESTARTED = 1, /* replaced; its worker starts again on them */
};
/* replaces the session's auth dir with src_dir (a directory under SESSIONS_DIR, taken
 * over: renamed to SESSIONS_DIR/<name>.restore, replacing an earlier restore that still
 * waits, then into place). With no worker running the swap is done now; a running worker
 * is stopped first and the swap done once it has gone (a failure then is logged and
 * alerted). The waiting <name>.restore outlives a crash or a stop: the next start
 * finishes the swap. err gets the reason of SESSION_RESTORE_FAILED. */
enum session_restore session_restore_auth(struct session *s, const char *src_dir, char *err, size_t errlen);
/* SESSIONS_DIR as the daemon uses it; borrowed */
const char *session_sessions_dir(void);

/* fixes the trust level ("" = by account age) */
void session_set_trust_level(struct session *s, const char *level);

/* applies a verified worker event; returns 1 when it changed nothing (stale) */
int session_on_event(struct session *s, const struct wevent *ev);

/* waits for a pairing code: cb(s, code_or_NULL, arg) exactly once, with NULL after
 * wait_ms or when the session ends first (s NULL when deleted) */
void session_wait_pairing(struct session *s, long wait_ms,
                          void (*cb)(struct session *s, const char *code, void *arg), void *arg);

/* proxy pool changes: moves sessions off p (delete with force). 0 or -1 */
int session_move_off_proxy(struct proxy *p, const char *why);
/* sessions on p (any status) */
int session_count_on_proxy(int64_t proxy_id);
/* a proxy became available: sessions waiting for one get it */
void session_retry_waiting(void);

/* the worker's signing key; out holds 65 bytes */
void session_worker_key(const struct session *s, char *out);
/* the same key prepared for verifying its events; borrowed */
const struct hmac_key *session_worker_mac(const struct session *s);

struct session_counts {
    int by_status[SS__COUNT];
    int workers_running;  /* includes stopping */
    int workers_stopping;
    int restart_pending;  /* waiting out a back-off delay */
    int start_queue;
    int waiting_proxy;
    int should_run;
};
void session_counts(struct session_counts *c);

struct session_stats {
    uint64_t worker_starts;
    uint64_t worker_restarts;
    uint64_t worker_start_failures;
    uint64_t watchdog_restarts;
    uint64_t proxy_failovers;
};
void session_get_stats(struct session_stats *st);

/* JSON-ready view helpers */
int session_is_waiting_proxy(const struct session *s);

#endif
