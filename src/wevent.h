/* wevent: parses and validates one worker event (SPEC §5) from its raw JSON body.
 * Pure; the fuzz target drives it. The parsed event borrows strings from ev->root,
 * which the caller releases with wevent_free. */
#ifndef SB_WEVENT_H
#define SB_WEVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum wevent_type {
    WE_QR_CODE,
    WE_PAIRING_CODE,
    WE_CONNECTED,
    WE_DISCONNECTED,
    WE_MESSAGE_SENT,
    WE_MESSAGE_FAILED,
    WE_MESSAGE_RECEIVED,
    WE_PING,
    WE_PROXY_ERROR,
    WE_AUTH_FAILURE,
    WE__COUNT
};

struct wevent {
    json_t *root;
    const char *session;   /* "worker_<n>" */
    int64_t session_num;   /* n */
    enum wevent_type type;
    int64_t timestamp;     /* the worker's, ms */
    /* fields by type; NULL / 0 when absent */
    const char *qr, *code, *phone, *name, *reason, *error, *message_id, *wa_message_id, *from, *text;
    int64_t status_code, uptime_ms, rss_bytes;
    int logged_out, retryable;
};

const char *wevent_type_name(enum wevent_type t);

/* 0 and ev filled, or -1 with err; on -1 nothing needs freeing. */
int wevent_parse(const char *body, size_t len, struct wevent *ev, char *err, size_t errlen);
/* Validates an already parsed body; takes its own reference to root. Same returns. */
int wevent_from_json(json_t *root, struct wevent *ev, char *err, size_t errlen);
/* The sessionId of a parsed body when it is well formed, else NULL; borrowed from root. */
const char *wevent_session_of(json_t *root);
/* Only the sessionId, for choosing the key before the signature is checked.
 * 0 with *num, or -1 with err. */
int wevent_session_num(const char *name, int64_t *num);
void wevent_free(struct wevent *ev);

#endif
