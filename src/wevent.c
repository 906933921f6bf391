#include "wevent.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static const char *type_names[WE__COUNT] = {
    "QR_CODE", "PAIRING_CODE", "CONNECTED", "DISCONNECTED", "MESSAGE_SENT", "MESSAGE_FAILED",
    "MESSAGE_RECEIVED", "PING", "PROXY_ERROR", "AUTH_FAILURE",
};

const char *wevent_type_name(enum wevent_type t) { return t < WE__COUNT ? type_names[t] : "?"; }

int wevent_session_num(const char *name, int64_t *num)
{
    long n;
    if (!name || strncmp(name, "worker_", 7) != 0 || strlen(name) > 20 || name[7] == '0' ||
        name[7] == '+' || name[7] == '-' || util_parse_long(name + 7, 1, 1000000000000L, &n) < 0)
        return -1;
    *num = n;
    return 0;
}

/* a string field: required or not, 1..max characters, no NUL inside */
/* bytes of a waMessageId: what the daemon stores (char[128]) */
#define WA_ID_MAX 127

static int str_field(json_t *data, const char *key, int required, size_t max, const char **out,
                     char *err, size_t errlen)
{
    json_t *v = json_object_get(data, key);
    if (!v || json_is_null(v)) {
        if (required) {
            snprintf(err, errlen, "data.%s is required", key);
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        snprintf(err, errlen, "data.%s must be a string", key);
        return -1;
    }
    size_t l = json_string_length(v);
    if (l == 0 && required) {
        snprintf(err, errlen, "data.%s must not be empty", key);
        return -1;
    }
    if (l > max || strlen(json_string_value(v)) != l) {
        snprintf(err, errlen, "data.%s must be at most %zu characters of text", key, max);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int int_field(json_t *data, const char *key, int required, int64_t min, int64_t max,
                     int64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(data, key);
    if (!v || json_is_null(v)) {
        if (required) {
            snprintf(err, errlen, "data.%s is required", key);
            return -1;
        }
        return 0;
    }
    if (json_is_real(v) && json_real_value(v) >= (double)min && json_real_value(v) <= (double)max) {
        *out = (int64_t)json_real_value(v);
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(err, errlen, "data.%s must be a number from %lld to %lld", key, (long long)min,
                 (long long)max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int bool_field(json_t *data, const char *key, int required, int *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(data, key);
    if (!v || json_is_null(v)) {
        if (required) {
            snprintf(err, errlen, "data.%s is required", key);
            return -1;
        }
        return 0;
    }
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "data.%s must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

#define TS_MAX 4102444800000LL /* year 2100, ms */

const char *wevent_session_of(json_t *root)
{
    json_t *sid = json_is_object(root) ? json_object_get(root, "sessionId") : NULL;
    int64_t n;
    if (!json_is_string(sid) || wevent_session_num(json_string_value(sid), &n) < 0)
        return NULL;
    return json_string_value(sid);
}

int wevent_parse(const char *body, size_t len, struct wevent *ev, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        memset(ev, 0, sizeof *ev);
        snprintf(err, errlen, "body is not valid JSON: %s", je.text);
        return -1;
    }
    int rc = wevent_from_json(root, ev, err, errlen);
    json_decref(root);
    return rc;
}

int wevent_from_json(json_t *root, struct wevent *ev, char *err, size_t errlen)
{
    memset(ev, 0, sizeof *ev);
    ev->root = json_incref(root);
    if (!json_is_object(root)) {
        snprintf(err, errlen, "body must be a JSON object");
        goto fail;
    }
    json_t *sid = json_object_get(root, "sessionId");
    if (!json_is_string(sid) || wevent_session_num(json_string_value(sid), &ev->session_num) < 0) {
        snprintf(err, errlen, "sessionId must be a string like worker_7");
        goto fail;
    }
    ev->session = json_string_value(sid);
    json_t *type = json_object_get(root, "type");
    if (!json_is_string(type)) {
        snprintf(err, errlen, "type must be a string");
        goto fail;
    }
    int t = -1;
    for (int i = 0; i < WE__COUNT; i++)
        if (strcmp(json_string_value(type), type_names[i]) == 0)
            t = i;
    if (t < 0) {
        snprintf(err, errlen, "unknown event type '%.40s'", json_string_value(type));
        goto fail;
    }
    ev->type = (enum wevent_type)t;
    json_t *ts = json_object_get(root, "timestamp");
    if (!json_is_integer(ts) || json_integer_value(ts) < 0 || json_integer_value(ts) > TS_MAX) {
        snprintf(err, errlen, "timestamp must be the event time in unix milliseconds");
        goto fail;
    }
    ev->timestamp = json_integer_value(ts);
    json_t *data = json_object_get(root, "data");
    if (!json_is_object(data)) {
        snprintf(err, errlen, "data must be a JSON object");
        goto fail;
    }
    int rc = 0;
    switch (ev->type) {
    case WE_QR_CODE:
        rc = str_field(data, "qr", 1, 1000, &ev->qr, err, errlen);
        break;
    case WE_PAIRING_CODE:
        rc = str_field(data, "code", 1, 15, &ev->code, err, errlen);
        break;
    case WE_CONNECTED:
        rc = str_field(data, "phoneNumber", 1, 32, &ev->phone, err, errlen);
        if (rc == 0) {
            char digits[PHONE_MAX_DIGITS];
            if (util_phone_normalize(ev->phone, digits, sizeof digits) < 0) {
                snprintf(err, errlen, "data.phoneNumber must be 8 to 15 digits");
                rc = -1;
            }
        }
        if (rc == 0)
            rc = str_field(data, "name", 0, 256, &ev->name, err, errlen);
        break;
    case WE_DISCONNECTED:
        rc = bool_field(data, "loggedOut", 1, &ev->logged_out, err, errlen);
        if (rc == 0)
            rc = int_field(data, "statusCode", 1, 0, 9999, &ev->status_code, err, errlen);
        if (rc == 0)
            rc = str_field(data, "reason", 0, 400, &ev->reason, err, errlen);
        break;
    case WE_MESSAGE_SENT:
        rc = str_field(data, "messageId", 1, 128, &ev->message_id, err, errlen);
        if (rc == 0)
            rc = str_field(data, "waMessageId", 0, WA_ID_MAX, &ev->wa_message_id, err, errlen);
        break;
    case WE_MESSAGE_FAILED:
        rc = str_field(data, "messageId", 1, 128, &ev->message_id, err, errlen);
        if (rc == 0)
            rc = str_field(data, "error", 1, 400, &ev->error, err, errlen);
        if (rc == 0)
            rc = bool_field(data, "retryable", 0, &ev->retryable, err, errlen);
        break;
    case WE_MESSAGE_RECEIVED:
        rc = str_field(data, "from", 1, 64, &ev->from, err, errlen);
        if (rc == 0)
            rc = str_field(data, "text", 0, 65536, &ev->text, err, errlen);
        if (rc == 0)
            rc = str_field(data, "waMessageId", 0, WA_ID_MAX, &ev->wa_message_id, err, errlen);
        break;
    case WE_PING:
        rc = int_field(data, "uptimeMs", 0, 0, INT64_MAX / 2, &ev->uptime_ms, err, errlen);
        if (rc == 0)
            rc = int_field(data, "rssBytes", 0, 0, INT64_MAX / 2, &ev->rss_bytes, err, errlen);
        break;
    case WE_PROXY_ERROR:
    case WE_AUTH_FAILURE:
        rc = str_field(data, "error", 1, 400, &ev->error, err, errlen);
        break;
    case WE__COUNT:
        break;
    }
    if (rc < 0)
        goto fail;
    return 0;
fail:
    json_decref(root);
    memset(ev, 0, sizeof *ev);
    return -1;
}

void wevent_free(struct wevent *ev)
{
    if (ev->root)
        json_decref(ev->root);
    ev->root = NULL;
}
