/* twilio: the Twilio Programmable Voice REST API over httpc (create, fetch, list and
 * update calls), and the check of X-Twilio-Signature on status callbacks. Every request
 * has a timeout and a response cap; the auth token never leaves this module except in
 * the Authorization header. */
#ifndef SB_TWILIO_H
#define SB_TWILIO_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct twilio_opts {
    const char *api_base;    /* https://api.twilio.com, or a fake's URL in tests */
    const char *account_sid;
    const char *auth_token;  /* a secret */
    const char *from;        /* caller id, E.164 */
    const char *twiml_url;   /* Url of a created call */
    const char *callback_url; /* StatusCallback, without a query */
    long timeout_ms;
    int ring_timeout_s;      /* Timeout of a created call */
    int time_limit_s;        /* TimeLimit of a created call */
};

/* what the daemon reads of a call resource */
struct twilio_call {
    char sid[CALL_SID_MAX];
    char status[24];  /* Twilio's CallStatus */
    char to[24];
    char from[24];
    char direction[24]; /* "outbound-api" for a call the REST API created */
    int child;          /* a leg of another call (parent_call_sid) */
    int64_t created_ms;
    int duration;     /* seconds; 0 when unknown */
};

/* borrowed strings, copied */
void twilio_init(const struct twilio_opts *o);
void twilio_free(void);

/* http_status 0 on a transport error or timeout (error says which); call is NULL unless
 * the answer was a call resource */
typedef void (*twilio_cb)(long http_status, const struct twilio_call *call, const char *error, void *arg);
typedef void (*twilio_list_cb)(long http_status, const struct twilio_call *calls, size_t n, const char *error,
                               void *arg);

/* POST Calls.json: To, From, Url, StatusCallback (?job=<job_id>&attempt=<n>, so that a late
 * callback of an earlier attempt is told apart), its events, Timeout, TimeLimit */
int twilio_create(const char *to_digits, int64_t job_id, int attempt, twilio_cb cb, void *arg);
int twilio_fetch(const char *sid, twilio_cb cb, void *arg);
/* 1 when s is a call's sid: CA and hex digits, shorter than CALL_SID_MAX (it goes into
 * request paths) */
int twilio_sid_ok(const char *s);
/* POST Calls/{sid}.json Status=completed (hang up) or canceled (not yet answered) */
int twilio_update(const char *sid, const char *status, twilio_cb cb, void *arg);
/* GET Calls.json?To=: the latest calls to a number, newest first */
int twilio_list(const char *to_digits, twilio_list_cb cb, void *arg);

/* ---- pure parts (unit tests, fuzz targets) ---- */

/* base64 HMAC-SHA1(token, url + each key and value, keys sorted, values of one key sorted);
 * out holds 29 bytes */
void twilio_signature(const char *token, const char *url, const char *const *keys, const char *const *vals,
                      size_t n, char *out);
/* "Mon, 30 Nov 2026 10:00:00 +0000" -> ms; 0 or -1 */
int twilio_parse_date(const char *s, int64_t *ms);
/* one call resource (JSON); 0, or -1 with err */
int twilio_parse_call(const char *json, size_t len, struct twilio_call *out, char *err, size_t errlen);
/* a list page {calls:[...]}: up to max calls into out; the count, or -1 with err */
int twilio_parse_list(const char *json, size_t len, struct twilio_call *out, size_t max, char *err, size_t errlen);
/* Twilio's error message from an error answer ({code, message}) into out */
void twilio_error_text(long status, const char *json, size_t len, char *out, size_t outlen);

#endif
