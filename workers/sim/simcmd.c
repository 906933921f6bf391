#include "simcmd.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmac.h"
#include "sim.h"
#include "simq.h"
#include "simstore.h"
#include "util.h"

#define SIMCMD_BODY_MAX (64 * 1024)
#define SIMCMD_HEADERS_MAX (16 * 1024)
#define SIMCMD_TIMEOUT_S 30
#define SIMCMD_SKEW_S 300        /* largest accepted |now - X-Timestamp| */
#define SIMCMD_TYPING_MAX 60000  /* ms */
#define SIMCMD_SENDS_MAX 4096    /* accepted sends waiting for their typing delay */
#define SIMCMD_WAID_HEX 16
#define SIMCMD_CRASH_DELAY_MS 20 /* long enough for the 200 to leave */
#define SIMCMD_EXIT_CRASH 3
#define SIMCMD_HOLDS_MAX 1024    /* /send requests the "hang" mode keeps unanswered */
#define SIMCMD_MODE_COUNT_MAX 100000
#define SIMCMD_STOP_DELAY_MAX 600000 /* ms */
#define SIMCMD_RECV_TEXT_MAX 4096 /* bytes of UTF-8 in a /sim/receive text */
#define SIMCMD_PHONE_MIN 8
#define SIMCMD_PHONE_MAX 15

/* A message accepted by /send whose MESSAGE_SENT waits for typingMs. */
struct simcmd_send {
    struct simcmd_send *prev, *next;
    struct sim *s;     /* borrowed */
    struct event *ev;  /* owned */
    char *message_id;  /* owned */
    char wa_id[3 + SIMCMD_WAID_HEX + 1];
};

/* A /send the "hang" mode never answers. While its connection lives, libevent
 * owns req; the connection's close callback tells us when that ends. */
struct simcmd_hold {
    struct simcmd_hold *prev, *next;
    struct sim *s;               /* borrowed */
    struct evhttp_request *req;  /* see above */
};

static const char *const simcmd_mode_names[SIM_SEND__COUNT] = {
    "ok", "fail", "fail-retryable", "silent", "error500", "hang",
};

typedef void simcmd_handler(struct sim *s, struct evhttp_request *req, const char *body, size_t len);

struct simcmd_route {
    const char *path;
    enum evhttp_cmd_type method;
    simcmd_handler *fn;
};

/* ---- answers ------------------------------------------------------------ */

/* Sends obj as the JSON answer; takes ownership of obj. */
static void simcmd_reply(struct evhttp_request *req, int status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text)
        abort();
    struct evbuffer *buf = evbuffer_new();
    if (!buf)
        abort();
    evbuffer_add(buf, text, strlen(text));
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, status, NULL, buf);
    evbuffer_free(buf);
    free(text);
}

static void simcmd_error(struct evhttp_request *req, int status, const char *code, const char *message)
{
    simcmd_reply(req, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message));
}

static void simcmd_ok(struct evhttp_request *req)
{
    simcmd_reply(req, 200, json_pack("{s:b}", "ok", 1));
}

/* A bounded, printable copy of untrusted text for one log line. */
static void simcmd_safe(const char *in, char *out, size_t outlen)
{
    size_t i = 0;
    for (; in[i] && i + 1 < outlen; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = c < 0x21 || c > 0x7e ? '?' : (char)c;
    }
    out[i] = '\0';
}

/* ---- request checks ----------------------------------------------------- */

static int simcmd_all_digits(const char *p)
{
    if (!*p)
        return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

/* 0 when the request is signed with our key over "X-Timestamp.body" and the
 * timestamp is within SIMCMD_SKEW_S of our clock; else -1 with *why set. */
static int simcmd_verify(const struct sim *s, struct evhttp_request *req, const char *body, size_t len,
                         const char **why)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *ts = evhttp_find_header(h, "X-Timestamp");
    const char *sig = evhttp_find_header(h, "X-Signature");
    long tsv = 0;
    if (!ts || !sig) {
        *why = "X-Timestamp and X-Signature headers are required";
        return -1;
    }
    if (strlen(ts) > 12 || !simcmd_all_digits(ts) || util_parse_long(ts, 0, LONG_MAX, &tsv) < 0) {
        *why = "X-Timestamp must be unix seconds";
        return -1;
    }
    long long skew = (long long)(util_now_ms() / 1000) - tsv;
    if (skew > SIMCMD_SKEW_S || skew < -SIMCMD_SKEW_S) {
        *why = "X-Timestamp is more than 300 s away from the worker's clock";
        return -1;
    }
    if (strncmp(sig, "sha256=", 7) != 0 || strlen(sig + 7) != HMAC_HEX_LEN) {
        *why = "X-Signature must be sha256=<64 hex digits>";
        return -1;
    }
    char got[HMAC_HEX_LEN + 1], want[HMAC_HEX_LEN + 1];
    for (size_t i = 0; i < HMAC_HEX_LEN; i++) {
        char c = sig[7 + i];
        got[i] = c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c;
    }
    got[HMAC_HEX_LEN] = '\0';
    hmac_sign_ts_body(s->secret, ts, body, len, want);
    if (!hmac_equal(want, HMAC_HEX_LEN, got, HMAC_HEX_LEN)) {
        *why = "X-Signature does not match";
        return -1;
    }
    return 0;
}

/* The body as a JSON object; an empty body is {} when allow_empty. NULL after
 * answering 400. Caller decrefs. */
static json_t *simcmd_body_object(struct evhttp_request *req, const char *body, size_t len, int allow_empty)
{
    if (len == 0 && allow_empty)
        return json_object();
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        simcmd_error(req, 400, "BAD_JSON", "the body must be one JSON object");
        return NULL;
    }
    return o;
}

/* A JSON string without embedded NULs, or NULL. */
static const char *simcmd_str(const json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    const char *p = json_string_value(v);
    return strlen(p) == json_string_length(v) ? p : NULL;
}

/* 1 when p is lo..hi ASCII digits. */
static int simcmd_digits_between(const char *p, size_t lo, size_t hi)
{
    size_t n = strlen(p);
    return n >= lo && n <= hi && simcmd_all_digits(p);
}

/* 0 when every key of o is in allowed (NULL-terminated); else -1 after
 * answering 400 with the first unknown one, so a misspelt field is not
 * silently ignored. */
static int simcmd_only_fields(struct evhttp_request *req, json_t *o, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (allowed[i])
            continue;
        char safe[41], msg[96];
        simcmd_safe(key, safe, sizeof safe);
        snprintf(msg, sizeof msg, "unknown field '%s'", safe);
        simcmd_error(req, 400, "INVALID_REQUEST", msg);
        return -1;
    }
    return 0;
}

/* ---- /send -------------------------------------------------------------- */

/* Stable across restarts and repeats, so a retried /send gets the same answer. */
static void simcmd_wa_id(const struct sim *s, const char *message_id, char *out, size_t outlen)
{
    char hex[HMAC_HEX_LEN + 1];
    char *seed = xasprintf("%s:%s", s->session_id, message_id);
    hmac_sha256_plain_hex(seed, strlen(seed), hex);
    free(seed);
    for (size_t i = 0; i < SIMCMD_WAID_HEX; i++)
        if (hex[i] >= 'a' && hex[i] <= 'f')
            hex[i] = (char)(hex[i] - 'a' + 'A');
    snprintf(out, outlen, "SIM%.*s", SIMCMD_WAID_HEX, hex);
}

static void simcmd_post_sent(struct sim *s, const char *message_id, const char *wa_id)
{
    simq_post(s->q, "MESSAGE_SENT", json_pack("{s:s, s:s}", "messageId", message_id, "waMessageId", wa_id));
}

static int simcmd_send_pending(const struct sim *s, const char *message_id)
{
    for (const struct simcmd_send *p = s->sends; p; p = p->next)
        if (strcmp(p->message_id, message_id) == 0)
            return 1;
    return 0;
}

static void simcmd_send_free(struct sim *s, struct simcmd_send *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        s->sends = p->next;
    if (p->next)
        p->next->prev = p->prev;
    s->nsends--;
    event_free(p->ev);
    free(p->message_id);
    free(p);
}

/* The typing delay is over. libevent allows freeing a non-persistent event
 * from its own callback: it is no longer pending once the callback runs. */
static void simcmd_sent_cb(evutil_socket_t fd, short what, void *arg)
{
    struct simcmd_send *p = arg;
    struct sim *s = p->s;
    simcmd_post_sent(s, p->message_id, p->wa_id);
    sim_log("info", "message sent messageId=%s waMessageId=%s", p->message_id, p->wa_id);
    simcmd_send_free(s, p);
}

static void simcmd_post_failed(struct sim *s, const char *message_id, int retryable)
{
    simq_post(s->q, "MESSAGE_FAILED",
              json_pack("{s:s, s:s, s:b}", "messageId", message_id, "error",
                        retryable ? "simulated temporary failure" : "simulated permanent failure", "retryable",
                        retryable));
}

static void simcmd_hold_unlink(struct sim *s, struct simcmd_hold *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        s->holds = h->next;
    if (h->next)
        h->next->prev = h->prev;
    s->nholds--;
}

/* The connection of a held request goes down: the client gave up, or the
 * server is being freed at exit. On EOF or timeout libevent detaches an
 * unanswered request from the dying connection and leaves it to us; one still
 * attached is freed by the connection right after this returns. */
static void simcmd_hold_closed_cb(struct evhttp_connection *evcon, void *arg)
{
    struct simcmd_hold *h = arg;
    struct sim *s = h->s;
    if (!evhttp_request_get_connection(h->req))
        evhttp_request_free(h->req);
    simcmd_hold_unlink(s, h);
    free(h);
}

/* 0 when held; -1 after answering 503 (too many held already). */
static int simcmd_hold(struct sim *s, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (s->nholds >= SIMCMD_HOLDS_MAX || !evcon) {
        simcmd_error(req, 503, "BUSY", "too many /send requests held unanswered by send mode hang");
        return -1;
    }
    struct simcmd_hold *h = xcalloc(1, sizeof *h);
    h->s = s;
    h->req = req;
    h->next = s->holds;
    if (s->holds)
        s->holds->prev = h;
    s->holds = h;
    s->nholds++;
    /* one request at a time per connection: libevent reads no more from it until answered */
    evhttp_connection_set_closecb(evcon, simcmd_hold_closed_cb, h);
    return 0;
}

/* A /send behaved as send_mode: counts it against /sim/send-mode's count. */
static void simcmd_mode_used(struct sim *s)
{
    if (s->send_mode_left == 0 || --s->send_mode_left > 0)
        return;
    if (s->send_mode != SIM_SEND_OK)
        sim_log("info", "send mode back to ok, count used up previous=%s", simcmd_mode_names[s->send_mode]);
    s->send_mode = SIM_SEND_OK;
}

/* The normal path: recorded, answered, MESSAGE_SENT after the typing delay
 * (none with silent). 0, or -1 after answering an error. */
static int simcmd_send_accept(struct sim *s, struct evhttp_request *req, const char *id, const char *wa_id,
                              json_int_t typing, int silent)
{
    if (!silent && s->nsends >= SIMCMD_SENDS_MAX) {
        simcmd_error(req, 503, "BUSY", "too many messages waiting for their typing delay");
        return -1;
    }
    /* durable before the answer: a crash after this still counts it as sent */
    if (simstore_sent_add(&s->store, id) < 0) {
        simcmd_error(req, 500, "STORAGE_ERROR", "cannot record the message id");
        return -1;
    }
    if (silent) {
        /* recorded with no event: a repeat takes the duplicate path, which posts it */
        simcmd_reply(req, 200, json_pack("{s:b, s:s}", "ok", 1, "waMessageId", wa_id));
        sim_log("info", "message accepted, MESSAGE_SENT withheld (send mode silent) messageId=%s", id);
        return 0;
    }
    struct simcmd_send *p = xcalloc(1, sizeof *p);
    p->s = s;
    p->message_id = xstrdup(id);
    memcpy(p->wa_id, wa_id, sizeof p->wa_id);
    p->ev = evtimer_new(s->base, simcmd_sent_cb, p);
    if (!p->ev)
        abort();
    p->next = s->sends;
    if (s->sends)
        s->sends->prev = p;
    s->sends = p;
    s->nsends++;
    struct timeval tv = {(time_t)(typing / 1000), (suseconds_t)((typing % 1000) * 1000)};
    evtimer_add(p->ev, &tv);

    simcmd_reply(req, 200, json_pack("{s:b, s:s}", "ok", 1, "waMessageId", wa_id));
    sim_log("info", "message accepted messageId=%s typing_ms=%lld", id, (long long)typing);
    return 0;
}

/* A new messageId under the current send mode. 0 when the mode applied. */
static int simcmd_send_by_mode(struct sim *s, struct evhttp_request *req, const char *id, const char *wa_id,
                               json_int_t typing)
{
    switch (s->send_mode) {
    case SIM_SEND_OK:
    case SIM_SEND__COUNT:
        return simcmd_send_accept(s, req, id, wa_id, typing, 0);
    case SIM_SEND_SILENT:
        return simcmd_send_accept(s, req, id, wa_id, typing, 1);
    case SIM_SEND_FAIL:
    case SIM_SEND_FAIL_RETRYABLE: {
        int retryable = s->send_mode == SIM_SEND_FAIL_RETRYABLE;
        /* not recorded: the daemon's retry of this id is a new send */
        simcmd_reply(req, 200, json_pack("{s:b, s:s}", "ok", 1, "waMessageId", wa_id));
        simcmd_post_failed(s, id, retryable);
        sim_log("info", "message failed (send mode %s) messageId=%s retryable=%s",
                simcmd_mode_names[s->send_mode], id, retryable ? "true" : "false");
        return 0;
    }
    case SIM_SEND_ERROR500:
        simcmd_error(req, 500, "SIMULATED_ERROR",
                     "simulated worker error (send mode error500), nothing was sent");
        sim_log("info", "message refused with 500 (send mode error500) messageId=%s", id);
        return 0;
    case SIM_SEND_HANG:
        if (simcmd_hold(s, req) < 0) {
            sim_log("warn", "message refused, held requests at the limit messageId=%s held=%zu", id, s->nholds);
            return -1;
        }
        sim_log("info", "message held without an answer (send mode hang) messageId=%s held=%zu", id, s->nholds);
        return 0;
    }
    return -1;
}

static void simcmd_send(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    json_t *o = simcmd_body_object(req, body, len, 0);
    if (!o)
        return;
    const char *id = simcmd_str(json_object_get(o, "messageId"));
    const char *to = simcmd_str(json_object_get(o, "to"));
    const char *text = simcmd_str(json_object_get(o, "text"));
    json_t *jtyping = json_object_get(o, "typingMs");
    json_int_t typing = 0;
    char wa_id[3 + SIMCMD_WAID_HEX + 1];

    if (!id || !simstore_id_valid(id, strlen(id))) {
        simcmd_error(req, 400, "INVALID_REQUEST",
                     "messageId must be a string of 1-128 bytes without control characters");
        goto out;
    }
    if (!to || strlen(to) < 8 || strlen(to) > 15 || !simcmd_all_digits(to)) {
        simcmd_error(req, 400, "INVALID_PHONE", "to must be 8-15 digits");
        goto out;
    }
    if (!text || !*text) {
        simcmd_error(req, 400, "INVALID_REQUEST", "text must be a non-empty string");
        goto out;
    }
    if (jtyping) {
        if (!json_is_integer(jtyping) || json_integer_value(jtyping) < 0 ||
            json_integer_value(jtyping) > SIMCMD_TYPING_MAX) {
            simcmd_error(req, 400, "INVALID_REQUEST", "typingMs must be an integer in 0..60000");
            goto out;
        }
        typing = json_integer_value(jtyping);
    }
    if (!s->connected) {
        simcmd_error(req, 409, "NOT_CONNECTED", "the simulated session is not connected");
        goto out;
    }
    simcmd_wa_id(s, id, wa_id, sizeof wa_id);

    if (simstore_sent_has(&s->store, id)) {
        /* acknowledged, never sent twice; MESSAGE_SENT again in case the
         * first one was lost, unless it is still waiting to go out */
        if (!simcmd_send_pending(s, id))
            simcmd_post_sent(s, id, wa_id);
        simcmd_reply(req, 200, json_pack("{s:b, s:b, s:s}", "ok", 1, "duplicate", 1, "waMessageId", wa_id));
        sim_log("info", "message repeated, not sent again messageId=%s", id);
        goto out;
    }
    /* a repeat never reaches this: it is acknowledged above whatever the mode */
    if (simcmd_send_by_mode(s, req, id, wa_id, typing) == 0)
        simcmd_mode_used(s);
out:
    json_decref(o);
}

/* ---- session commands --------------------------------------------------- */

static void simcmd_logout(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    if (sim_unlink(s) < 0) {
        simcmd_error(req, 500, "STORAGE_ERROR", "cannot remove the link");
        return;
    }
    sim_post_disconnected(s, 1);
    simcmd_ok(req);
}

/* A phone field: 8-15 digits with an optional +, digits into out. -1 when
 * the field is present but bad; 0 with out="" when absent. */
static int simcmd_phone_field(json_t *o, const char *key, char *out, size_t outlen)
{
    json_t *v = json_object_get(o, key);
    out[0] = '\0';
    if (!v)
        return 0;
    const char *p = simcmd_str(v);
    if (!p || util_phone_normalize(p, out, outlen) < 0) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

static void simcmd_pairing_code(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    char phone[SIM_PHONE_MAX];
    char code[SIM_CODE_LEN + 1];
    json_t *o = simcmd_body_object(req, body, len, 0);
    if (!o)
        return;
    if (simcmd_phone_field(o, "phone", phone, sizeof phone) < 0 || !phone[0]) {
        simcmd_error(req, 400, "INVALID_PHONE", "phone must be 8-15 digits with an optional +");
        goto out;
    }
    if (s->linked) {
        simcmd_error(req, 409, "ALREADY_LINKED", "the simulated session is already linked");
        goto out;
    }
    /* /sim/scan without a phoneNumber links the phone the code was asked for */
    memcpy(s->pairing_phone, phone, sizeof s->pairing_phone);
    sim_post_pairing_code(s, code);
    simcmd_reply(req, 200, json_pack("{s:b, s:s}", "ok", 1, "code", code));
out:
    json_decref(o);
}

static void simcmd_health(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    simcmd_reply(req, 200,
                 json_pack("{s:b, s:b, s:s, s:b, s:b, s:I, s:b, s:s, s:I, s:s, s:I, s:I}", "ok", 1,
                           "simulator", 1, "sessionId", s->session_id, "linked", s->linked, "connected",
                           s->connected, "uptimeMs", (json_int_t)sim_uptime_ms(s), "pinging", !s->silenced,
                           "loginMethod", s->login_pairing ? "pairing_code" : "qr", "queuedEvents",
                           (json_int_t)simq_length(s->q), "sendMode", simcmd_mode_names[s->send_mode],
                           "sendModeLeft", (json_int_t)s->send_mode_left, "heldSends", (json_int_t)s->nholds));
}

/* ---- simulator knobs ---------------------------------------------------- */

static void simcmd_scan(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    char phone[SIM_PHONE_MAX];
    json_t *o = simcmd_body_object(req, body, len, 1);
    if (!o)
        return;
    if (simcmd_phone_field(o, "phoneNumber", phone, sizeof phone) < 0) {
        simcmd_error(req, 400, "INVALID_PHONE", "phoneNumber must be 8-15 digits with an optional +");
        goto out;
    }
    if (!phone[0]) {
        if (!s->pairing_phone[0]) {
            simcmd_error(req, 400, "INVALID_PHONE",
                         "phoneNumber is required (no pairing phone is known)");
            goto out;
        }
        memcpy(phone, s->pairing_phone, sizeof phone);
    }
    if (s->linked) {
        simcmd_error(req, 409, "ALREADY_LINKED", "the simulated session is already linked");
        goto out;
    }
    if (sim_link(s, phone) < 0) {
        simcmd_error(req, 500, "STORAGE_ERROR", "cannot store the link");
        goto out;
    }
    simcmd_reply(req, 200, json_pack("{s:b, s:s}", "ok", 1, "phoneNumber", phone));
out:
    json_decref(o);
}

static void simcmd_silence(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    s->silenced = 1;
    sim_log("info", "pings silenced");
    simcmd_ok(req);
}

static void simcmd_proxy_error(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    simq_post(s->q, "PROXY_ERROR", json_pack("{s:s}", "error", "simulated proxy failure"));
    sim_log("info", "proxy error posted");
    simcmd_ok(req);
}

static void simcmd_disconnect(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    json_t *o = simcmd_body_object(req, body, len, 1);
    if (!o)
        return;
    json_t *jl = json_object_get(o, "loggedOut");
    if (jl && !json_is_boolean(jl)) {
        simcmd_error(req, 400, "INVALID_REQUEST", "loggedOut must be a boolean");
        goto out;
    }
    int logged_out = json_is_true(jl);
    if (logged_out) {
        if (sim_unlink(s) < 0) {
            simcmd_error(req, 500, "STORAGE_ERROR", "cannot remove the link");
            goto out;
        }
    } else {
        s->connected = 0;
    }
    sim_post_disconnected(s, logged_out);
    simcmd_ok(req);
out:
    json_decref(o);
}

/* Not in the brief's list: ends a "connection lost" without a restart. */
static void simcmd_reconnect(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    if (!s->linked) {
        simcmd_error(req, 409, "NOT_LINKED", "the simulated session is not linked");
        return;
    }
    if (s->connected) {
        simcmd_reply(req, 200, json_pack("{s:b, s:b}", "ok", 1, "alreadyConnected", 1));
        return;
    }
    s->connected = 1;
    sim_post_connected(s);
    simcmd_ok(req);
}

/* "a contact wrote": MESSAGE_RECEIVED, shaped as the real worker posts it. */
static void simcmd_receive(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    static const char *const fields[] = {"from", "text", "waMessageId", NULL};
    char wa_gen[4 + 16 + 1];
    json_t *o = simcmd_body_object(req, body, len, 0);
    if (!o)
        return;
    if (simcmd_only_fields(req, o, fields) < 0)
        goto out;
    const char *from = simcmd_str(json_object_get(o, "from"));
    json_t *jtext = json_object_get(o, "text");
    const char *text = simcmd_str(jtext);
    json_t *jwa = json_object_get(o, "waMessageId");
    const char *wa_id = simcmd_str(jwa);

    if (!from || !simcmd_digits_between(from, SIMCMD_PHONE_MIN, SIMCMD_PHONE_MAX)) {
        simcmd_error(req, 400, "INVALID_PHONE", "from must be a string of 8-15 digits");
        goto out;
    }
    /* jansson has already refused bytes that are not UTF-8 (400 BAD_JSON) */
    if (!text || !*text || json_string_length(jtext) > SIMCMD_RECV_TEXT_MAX) {
        simcmd_error(req, 400, "INVALID_REQUEST",
                     "text must be a non-empty string of at most 4096 bytes of UTF-8");
        goto out;
    }
    if (jwa && (!wa_id || !simstore_id_valid(wa_id, strlen(wa_id)))) {
        simcmd_error(req, 400, "INVALID_REQUEST",
                     "waMessageId must be a string of 1-128 bytes without control characters");
        goto out;
    }
    if (!s->connected) {
        simcmd_error(req, 409, "NOT_CONNECTED", "the simulated session is not connected");
        goto out;
    }
    if (!wa_id) {
        char hex[16 + 1];
        if (hmac_random_hex(hex, 8) < 0)
            abort(); /* no CSPRNG: nothing sensible to do */
        for (char *p = hex; *p; p++)
            if (*p >= 'a' && *p <= 'f')
                *p = (char)(*p - 'a' + 'A');
        snprintf(wa_gen, sizeof wa_gen, "SIMR%s", hex);
        wa_id = wa_gen;
    }
    /* the message time in unix ms, as the real worker reports it */
    json_int_t ts = (json_int_t)util_now_ms();
    simq_post(s->q, "MESSAGE_RECEIVED",
              json_pack("{s:s, s:s, s:s, s:I}", "from", from, "text", text, "waMessageId", wa_id, "timestamp",
                        ts));
    simcmd_reply(req, 200, json_pack("{s:b, s:s, s:I}", "ok", 1, "waMessageId", wa_id, "timestamp", ts));
    char safe_id[SIMSTORE_ID_MAX + 1];
    simcmd_safe(wa_id, safe_id, sizeof safe_id);
    sim_log("info", "message received posted from=%s waMessageId=%s bytes=%zu", from, safe_id,
            json_string_length(jtext));
out:
    json_decref(o);
}

/* How the next /send calls that would really send behave (see enum sim_send_mode). */
static void simcmd_send_mode(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    static const char *const fields[] = {"mode", "count", NULL};
    json_t *o = simcmd_body_object(req, body, len, 0);
    if (!o)
        return;
    if (simcmd_only_fields(req, o, fields) < 0)
        goto out;
    const char *mode = simcmd_str(json_object_get(o, "mode"));
    json_t *jcount = json_object_get(o, "count");
    int m = 0;
    while (m < SIM_SEND__COUNT && (!mode || strcmp(mode, simcmd_mode_names[m]) != 0))
        m++;
    if (m == SIM_SEND__COUNT) {
        simcmd_error(req, 400, "INVALID_REQUEST",
                     "mode must be one of ok, fail, fail-retryable, silent, error500, hang");
        goto out;
    }
    if (jcount && (!json_is_integer(jcount) || json_integer_value(jcount) < 1 ||
                   json_integer_value(jcount) > SIMCMD_MODE_COUNT_MAX)) {
        simcmd_error(req, 400, "INVALID_REQUEST",
                     "count must be an integer in 1..100000 (omit it for until changed)");
        goto out;
    }
    s->send_mode = (enum sim_send_mode)m;
    s->send_mode_left = jcount ? (long)json_integer_value(jcount) : 0;
    if (jcount)
        sim_log("info", "send mode set mode=%s count=%ld", simcmd_mode_names[m], s->send_mode_left);
    else
        sim_log("info", "send mode set mode=%s count=until-changed", simcmd_mode_names[m]);
    /* count null: until changed */
    json_t *jleft = jcount ? json_integer(s->send_mode_left) : json_null();
    simcmd_reply(req, 200, json_pack("{s:b, s:s, s:o}", "ok", 1, "mode", simcmd_mode_names[m], "count", jleft));
out:
    json_decref(o);
}

static void simcmd_crash(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    simcmd_ok(req);
    sim_log("warn", "simulated crash, exiting code=%d", SIMCMD_EXIT_CRASH);
    sim_exit_later(s, SIMCMD_EXIT_CRASH, SIMCMD_CRASH_DELAY_MS);
}

/* How long the worker takes to exit once told to stop: a slow worker for the tests. */
static void simcmd_stop_delay(struct sim *s, struct evhttp_request *req, const char *body, size_t len)
{
    static const char *const fields[] = {"ms", NULL};
    json_t *o = simcmd_body_object(req, body, len, 0);
    if (!o)
        return;
    if (simcmd_only_fields(req, o, fields) < 0)
        goto out;
    json_t *jms = json_object_get(o, "ms");
    if (!json_is_integer(jms) || json_integer_value(jms) < 0 || json_integer_value(jms) > SIMCMD_STOP_DELAY_MAX) {
        simcmd_error(req, 400, "INVALID_REQUEST", "ms must be an integer in 0..600000");
        goto out;
    }
    s->stop_delay_ms = (long)json_integer_value(jms);
    sim_log("info", "stop delay set ms=%ld", s->stop_delay_ms);
    simcmd_reply(req, 200, json_pack("{s:b, s:I}", "ok", 1, "ms", (json_int_t)s->stop_delay_ms));
out:
    json_decref(o);
}

/* ---- routing ------------------------------------------------------------ */

static const struct simcmd_route simcmd_routes[] = {
    {"/send", EVHTTP_REQ_POST, simcmd_send},
    {"/logout", EVHTTP_REQ_POST, simcmd_logout},
    {"/pairing-code", EVHTTP_REQ_POST, simcmd_pairing_code},
    {"/health", EVHTTP_REQ_GET, simcmd_health},
    {"/sim/scan", EVHTTP_REQ_POST, simcmd_scan},
    {"/sim/silence", EVHTTP_REQ_POST, simcmd_silence},
    {"/sim/proxy-error", EVHTTP_REQ_POST, simcmd_proxy_error},
    {"/sim/disconnect", EVHTTP_REQ_POST, simcmd_disconnect},
    {"/sim/reconnect", EVHTTP_REQ_POST, simcmd_reconnect},
    {"/sim/crash", EVHTTP_REQ_POST, simcmd_crash},
    {"/sim/receive", EVHTTP_REQ_POST, simcmd_receive},
    {"/sim/send-mode", EVHTTP_REQ_POST, simcmd_send_mode},
    {"/sim/stop-delay", EVHTTP_REQ_POST, simcmd_stop_delay},
};

static void simcmd_dispatch(struct evhttp_request *req, void *arg)
{
    struct sim *s = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    char safe_path[80];
    simcmd_safe(path ? path : "", safe_path, sizeof safe_path);

    /* evhttp already refused anything above SIMCMD_BODY_MAX */
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    if (!body)
        abort();

    /* checked before routing: an unsigned caller learns nothing, not even which paths exist */
    const char *why = NULL;
    if (simcmd_verify(s, req, body, len, &why) < 0) {
        sim_log("warn", "command refused path=%s status=401 reason=\"%s\"", safe_path, why);
        simcmd_error(req, 401, "BAD_SIGNATURE", why);
        return;
    }
    for (size_t i = 0; i < sizeof simcmd_routes / sizeof simcmd_routes[0]; i++) {
        const struct simcmd_route *r = &simcmd_routes[i];
        if (!path || strcmp(path, r->path) != 0)
            continue;
        if (evhttp_request_get_command(req) != r->method) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                              r->method == EVHTTP_REQ_GET ? "GET" : "POST");
            simcmd_error(req, 405, "METHOD_NOT_ALLOWED",
                         r->method == EVHTTP_REQ_GET ? "use GET" : "use POST");
            return;
        }
        r->fn(s, req, body, len);
        return;
    }
    simcmd_error(req, 404, "NOT_FOUND", "no such command");
}

int simcmd_start(struct sim *s)
{
    s->http = evhttp_new(s->base);
    if (!s->http) {
        sim_log("error", "cannot create the command server");
        return -1;
    }
    evhttp_set_max_body_size(s->http, SIMCMD_BODY_MAX);
    evhttp_set_max_headers_size(s->http, SIMCMD_HEADERS_MAX);
    evhttp_set_timeout(s->http, SIMCMD_TIMEOUT_S);
    /* let the common methods reach the router so a wrong one gets a JSON 405 */
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(s->http, simcmd_dispatch, s);
    if (!evhttp_bind_socket_with_handle(s->http, s->listen_host, (unsigned short)s->listen_port)) {
        sim_log("error", "cannot listen on WORKER_LISTEN addr=%s:%d errno=%d", s->listen_host, s->listen_port,
                errno);
        return -1;
    }
    sim_log("info", "listening addr=%s:%d", s->listen_host, s->listen_port);
    return 0;
}

void simcmd_stop(struct sim *s)
{
    while (s->sends)
        simcmd_send_free(s, s->sends);
    if (s->nholds)
        sim_log("info", "held /send requests dropped unanswered at exit count=%zu", s->nholds);
    /* closes every connection: each held request's close callback forgets it */
    if (s->http)
        evhttp_free(s->http);
    s->http = NULL;
    /* a hold whose callback did not run lost its request with its connection */
    while (s->holds) {
        struct simcmd_hold *h = s->holds;
        simcmd_hold_unlink(s, h);
        free(h);
    }
}
