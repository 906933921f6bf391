/* apiparse: validation of API request bodies. Pure (jansson only); the fuzz target
 * drives it. Strings in the outputs are borrowed from the JSON object or copied into
 * the caller's buffers as documented. */
#ifndef SB_APIPARSE_H
#define SB_APIPARSE_H

#include <jansson.h>
#include <stddef.h>

#include "model.h"
#include "session.h"

/* Every parser returns 0, or one of these with a reason in err. */
enum apiparse_rc {
    APIPARSE_INVALID = -1,   /* INVALID_REQUEST: shape, unknown field, other values */
    APIPARSE_BAD_PHONE = -2, /* INVALID_PHONE */
    APIPARSE_BAD_PROXY = -3, /* INVALID_PROXY */
    APIPARSE_BAD_MESSAGE = -4, /* INVALID_MESSAGE */
};
/* the API error code of a parser's return */
const char *apiparse_code(int rc);

/* {phone?, proxy?, loginMethod?}. phone_buf (PHONE_MAX) receives the digits. 0 or -1 with err. */
int apiparse_provision(json_t *body, struct provision_req *out, char *phone_buf, char *err, size_t errlen);
/* {phone} */
int apiparse_pair(json_t *body, char *phone_buf, char *err, size_t errlen);
/* {name}: 1–64 of [A-Za-z0-9._-] */
int apiparse_tenant(json_t *body, const char **name, char *err, size_t errlen);
/* {url} */
int apiparse_proxy(json_t *body, const char **url, char *err, size_t errlen);

/* POST /api/v1/send: {to, message, sessionId?, idempotencyKey?, ttlSeconds?}. to_buf
 * (PHONE_MAX) receives the digits; the other strings are borrowed from body. */
struct send_req {
    const char *to;
    const char *text;     /* 1..MSG_CHARS_MAX characters */
    const char *session;  /* "worker_<n>" or NULL */
    const char *idem_key; /* or NULL */
    long ttl_s;           /* 0 = the default */
};
int apiparse_send(json_t *body, struct send_req *out, char *to_buf, char *err, size_t errlen);

/* 1 when every key of body is in the NULL-terminated list; else 0 and err names the first other */
int apiparse_only_keys(json_t *body, const char *const *keys, char *err, size_t errlen);

#endif
