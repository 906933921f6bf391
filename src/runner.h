/* runner: starts, stops and inspects workers. The rest of the daemon talks only to
 * this interface; runner-process.c is the default backend, runner-docker.c runs each
 * worker in its own container. Exits are reported through the callback given at
 * creation, from the event loop. */
#ifndef SB_RUNNER_H
#define SB_RUNNER_H

#include <stddef.h>

#include "model.h"

struct event_base;

/* What a worker is started with (SPEC §5). All strings borrowed for the call. */
struct worker_spec {
    const char *session;        /* "worker_7" */
    int64_t id;                 /* 7 */
    const char *proxy_url;      /* "" for a direct connection */
    const char *webhook_url;
    const char *worker_key;     /* this worker's own signing key (hex) */
    const char *auth_dir;
    const char *login_method;   /* "qr" | "pairing_code" */
    const char *pairing_phone;  /* "" unless pairing */
    const char *log_path;
};

/* A worker found running at start-up that this daemon instance started earlier. */
struct runner_found {
    char session[SESSION_NAME_MAX];
    struct worker_state w;
};

/* code: exit status, or -1 when killed by signal signo, or -1/0 when unknown; why: what
 * went wrong when the worker never ran (e.g. the engine refused the container), else NULL */
typedef void (*runner_exit_cb)(const char *session, int code, int signo, const char *why, void *arg);

struct runner {
    const char *name;
    /* 0 and *out filled, or -1 with err. A backend that starts asynchronously returns 0
     * at once and reports a start that fails later as an exit with why set. */
    int (*start)(struct runner *rn, const struct worker_spec *spec, struct worker_state *out,
                 char *err, size_t errlen);
    /* asks the worker to end (SIGTERM / container stop), forcing after grace_ms; the exit
     * callback follows. 0, or -1 when it was not running. */
    int (*stop)(struct runner *rn, const char *session, const struct worker_state *w, long grace_ms);
    /* 1 when the worker w is alive, 0 when not */
    int (*inspect)(struct runner *rn, const struct worker_state *w);
    /* lists workers of this instance that are running now (e.g. left by a killed daemon);
     * returns how many were written to out (at most max) */
    int (*scan)(struct runner *rn, struct runner_found *out, int max);
    /* takes over a found worker: its exit is reported like any other. log_path (borrowed)
     * is its log file, as worker_spec.log_path was at its start. 0 or -1. */
    int (*adopt)(struct runner *rn, const char *session, const struct worker_state *w,
                 const char *log_path);
    /* ends a found worker that is not adopted, waiting at most grace_ms. */
    void (*kill_found)(struct runner *rn, const struct worker_state *w, long grace_ms);
    /* housekeeping: caps worker logs */
    void (*tick)(struct runner *rn);
    /* number of workers it watches */
    int (*count)(struct runner *rn);
    void (*destroy)(struct runner *rn);
    void *impl;
};

/* Holds a worker log file to max bytes: when it is longer, its newest max bytes are kept
 * as <path>.1 and the file is emptied (a writer with O_APPEND goes on at the new end). */
void runner_log_cap(const char *path, long max);

struct runner_process_opts {
    const char *command;     /* worker program and arguments, split on spaces */
    const char *instance_id; /* marks this daemon's workers (SWITCHBOARD_INSTANCE) */
    long log_max_bytes;
    int port_min, port_max;  /* the range worker listen ports come from */
};

struct runner *runner_process_new(struct event_base *base, const struct runner_process_opts *o,
                                  runner_exit_cb cb, void *arg, char *err, size_t errlen);

struct runner_docker_opts {
    const char *socket;        /* the engine's unix socket */
    const char *image;
    const char *network;       /* "host", or a network the daemon reaches workers on by name */
    const char *instance_id;   /* label switchboard.instance */
    const char *sessions_host_dir; /* the auth dirs' path as the engine's host sees it; "" = as here */
    long memory_mb;            /* 0 = no limit */
    long cpu_millicores;       /* 0 = no limit */
    long log_max_bytes;
    int port_min, port_max;    /* host network: the range worker listen ports come from */
};

/* Checks that the engine answers and has the image; NULL with err when not. */
struct runner *runner_docker_new(struct event_base *base, const struct runner_docker_opts *o,
                                 runner_exit_cb cb, void *arg, char *err, size_t errlen);

#endif
