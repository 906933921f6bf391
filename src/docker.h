/* docker: the pure part of the Docker backend. It builds the container-create body and
 * reads what the engine sends back (container lists, the event stream, log frames).
 * No I/O: runner-docker.c does the talking. The parsers take engine output as untrusted
 * bytes and are fuzzed (tests/fuzz/fuzz_docker.c). */
#ifndef SB_DOCKER_H
#define SB_DOCKER_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct worker_spec;

#define DOCKER_ID_MAX 65 /* 64 hex digits and the NUL */
#define DOCKER_NAME_MAX 48
#define DOCKER_AUTH_MOUNT "/auth" /* where a worker sees its auth dir */

#define DOCKER_LABEL_INSTANCE "switchboard.instance"
#define DOCKER_LABEL_SESSION "switchboard.session"
#define DOCKER_LABEL_START "switchboard.start"
#define DOCKER_LABEL_ADDRESS "switchboard.address"

struct docker_create {
    const char *image;
    const char *network;
    const char *instance_id;
    const char *user;        /* "uid:gid" */
    const char *bind_source; /* the auth dir as the engine's host sees it */
    const char *listen;      /* WORKER_LISTEN inside the container */
    const char *address;     /* where the daemon reaches it */
    const char *tz;          /* NULL = none */
    int64_t start;           /* this start's token */
    long memory_mb, cpu_millicores, log_max_bytes;
};

/* "wa_session_<id>" into out */
void docker_container_name(int64_t id, char *out, size_t outlen);

/* The JSON body of POST /containers/create (malloc'd, caller frees). */
char *docker_create_body(const struct docker_create *c, const struct worker_spec *s);

/* One container of GET /containers/json?all=1 that carries this instance's label. */
struct docker_found {
    char id[DOCKER_ID_MAX];
    char session[SESSION_NAME_MAX];
    char address[ADDR_MAX];
    int64_t start;
    int running;
    int exit_code; /* parsed from "Exited (N) ...", -1 when unknown */
};

/* Containers of instance_id in a list answer, at most max written; the count, or -1 when
 * the answer is not a JSON array. Entries that lack a label are skipped. */
int docker_parse_list(const char *json, size_t len, const char *instance_id,
                      struct docker_found *out, int max);

/* The Id of a create answer into id; 0 or -1. */
int docker_parse_id(const char *json, size_t len, char *id, size_t idlen);

/* The engine's error text of an answer ({"message": ...}) into out, or the status. */
void docker_parse_message(const char *json, size_t len, long status, char *out, size_t outlen);

/* The session and instance labels of GET /containers/{name}/json, and whether it runs. 0/-1. */
int docker_parse_inspect(const char *json, size_t len, char *instance, size_t ilen, int *running);

struct docker_event {
    char id[DOCKER_ID_MAX];
    char action[16];
    int exit_code; /* die: the exit code, else -1 */
    int64_t time;  /* unix seconds */
};

/* One line of GET /events: 0 when it is a container event with an id, else -1. */
int docker_parse_event(const char *line, size_t len, struct docker_event *ev);

/* Splits a byte stream into lines of at most max bytes; a longer line is dropped whole. */
struct docker_lines {
    char *buf;
    size_t len, max;
    int dropping;
};
void docker_lines_init(struct docker_lines *l, size_t max);
void docker_lines_feed(struct docker_lines *l, const char *data, size_t n,
                       void (*cb)(const char *line, size_t len, void *arg), void *arg);
void docker_lines_free(struct docker_lines *l);

/* The payload of a multiplexed log stream (8-byte frame headers); a stream without them
 * (a TTY container) is copied as is. Writes at most outcap bytes; returns how many. */
size_t docker_demux(const unsigned char *in, size_t len, char *out, size_t outcap);

#endif
