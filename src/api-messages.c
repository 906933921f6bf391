/* api-messages: /api/v1/send, /api/v1/messages, /api/v1/inbox, /api/v1/suppressions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "apiparse.h"
#include "dispatch.h"
#include "http.h"
#include "store.h"
#include "util.h"
#include "wevent.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000

static json_t *plus_phone(const char *digits)
{
    char buf[PHONE_MAX + 2];
    snprintf(buf, sizeof buf, "+%s", digits);
    return json_string(buf);
}

static json_t *session_name(int64_t id)
{
    char buf[SESSION_NAME_MAX];
    snprintf(buf, sizeof buf, "worker_%lld", (long long)id);
    return json_string(buf);
}

static json_t *message_json(const struct message *m, int with_text)
{
    json_t *j = json_pack("{s:s,s:s,s:o,s:o,s:i,s:o,s:o,s:o,s:o,s:o}", "messageId", m->public_id, "status",
                          msg_status_name(m->status), "sessionId", session_name(m->session_id), "to",
                          plus_phone(m->to), "attempts", m->attempts, "error",
                          m->error[0] ? json_string(m->error) : json_null(), "createdAt", api_time(m->created_at),
                          "sentAt", api_time(m->status == MS_SENT ? m->finished_at : 0), "expiresAt",
                          api_time(m->expires_at), "dispatchedAt", api_time(m->dispatched_at));
    if (m->status != MS_QUEUED && m->status != MS_SENDING && m->status != MS_SENT)
        json_object_set_new(j, "finishedAt", api_time(m->finished_at));
    if (m->wa_message_id[0])
        json_object_set_new(j, "waMessageId", json_string(m->wa_message_id));
    if (with_text)
        json_object_set_new(j, "message", json_string(m->text));
    return j;
}

/* ?limit= in 1..LIST_MAX; -1 after answering 400 */
static int list_limit(struct http_req *r)
{
    const char *v = http_query(r, "limit");
    long n = LIST_DEFAULT;
    if (v && util_parse_count(v, 1, LIST_MAX, &n) < 0) {
        http_reply_error(r, 400, "INVALID_REQUEST", "limit must be a whole number from 1 to %d", LIST_MAX);
        return -1;
    }
    return (int)n;
}

/* ?cursor= (an id from nextCursor), 0 when absent; -1 after answering 400 */
static int64_t list_cursor(struct http_req *r)
{
    const char *v = http_query(r, "cursor");
    long n = 0;
    if (v && util_parse_count(v, 1, 999999999999L, &n) < 0) {
        http_reply_error(r, 400, "INVALID_REQUEST", "cursor must be a nextCursor value from an earlier page");
        return -1;
    }
    return n;
}

/* ?sessionId=worker_<n> as n, 0 when absent; -1 after answering 400 */
static int64_t session_filter(struct http_req *r)
{
    const char *v = http_query(r, "sessionId");
    int64_t n = 0;
    if (v && wevent_session_num(v, &n) < 0) {
        http_reply_error(r, 400, "INVALID_REQUEST", "sessionId must look like worker_7");
        return -1;
    }
    return n;
}

/* ---- send ---- */

static void send_message(struct http_req *r)
{
    json_t *body = http_json_object(r);
    if (!body)
        return;
    struct send_req rq;
    char to[PHONE_MAX], err[256];
    int rc = apiparse_send(body, &rq, to, err, sizeof err);
    if (rc < 0) {
        json_decref(body);
        http_reply_error(r, 400, apiparse_code(rc), "%s", err);
        return;
    }
    struct send_result res;
    rc = dispatch_enqueue(http_tenant(r), &rq, &res);
    json_decref(body);
    if (rc < 0) {
        if (res.retry_after_s > 0) {
            char ra[24];
            snprintf(ra, sizeof ra, "%ld", res.retry_after_s);
            http_set_header(r, "Retry-After", ra);
            http_reply_json(r, res.status,
                            json_pack("{s:{s:s,s:s,s:I},s:I}", "error", "code", res.code, "message", res.msg,
                                      "retryAfter", (json_int_t)res.retry_after_s, "retryAfter",
                                      (json_int_t)res.retry_after_s));
            return;
        }
        http_reply_error(r, res.status, res.code, "%s", res.msg);
        return;
    }
    /* the hot path's answer, written directly: a message id is msg_ and hex digits */
    char out[96];
    int n = snprintf(out, sizeof out, "{\"queued\":true,\"messageId\":\"%s\"}", res.message_id);
    http_reply_raw(r, 202, "application/json", out, (size_t)n);
}

/* ---- messages ---- */

static struct message *scratch(void)
{
    static struct message *m;
    if (!m)
        m = xmalloc(sizeof *m);
    return m;
}

static void get_message(struct http_req *r)
{
    struct message *m = scratch();
    if (store_message_find(http_param(r, 0), m) != STORE_OK || m->tenant_id != http_tenant(r)) {
        http_reply_error(r, 404, "MESSAGE_NOT_FOUND", "no message %.40s", http_param(r, 0));
        return;
    }
    http_reply_json(r, 200, message_json(m, 1));
}

static void cancel_message(struct http_req *r)
{
    struct message *m = scratch();
    struct send_result res;
    if (dispatch_cancel(http_tenant(r), http_param(r, 0), m, &res) < 0) {
        http_reply_error(r, res.status, res.code, "%s", res.msg);
        return;
    }
    http_reply_json(r, 200, message_json(m, 0));
}

struct page {
    json_t *items;
    int64_t last_id;
    int n;
};

/* {messages, nextCursor} of a page read with rc (< 0: failed); a full page has a next one */
static void reply_page(struct http_req *r, struct page *p, int rc, int limit, const char *what)
{
    if (rc < 0) {
        json_decref(p->items);
        http_reply_error(r, 500, "STORE_ERROR", "%s", what);
        return;
    }
    char next[24];
    snprintf(next, sizeof next, "%lld", (long long)p->last_id);
    http_reply_json(r, 200, json_pack("{s:o,s:o}", "messages", p->items, "nextCursor",
                                      p->n == limit ? json_string(next) : json_null()));
}

static void list_row(const struct message *m, void *arg)
{
    struct page *p = arg;
    json_array_append_new(p->items, message_json(m, 0));
    p->last_id = m->id;
    p->n++;
}

static void list_messages(struct http_req *r)
{
    int limit = list_limit(r);
    int64_t cursor = limit < 0 ? -1 : list_cursor(r);
    int64_t sid = cursor < 0 ? -1 : session_filter(r);
    if (sid < 0)
        return;
    const char *status = http_query(r, "status");
    if (status && msg_status_parse(status) < 0) {
        http_reply_error(r, 400, "INVALID_REQUEST",
                         "status must be one of queued, sending, sent, failed, expired, cancelled");
        return;
    }
    struct page p = {json_array(), 0, 0};
    reply_page(r, &p, store_message_list(http_tenant(r), sid, status, cursor, limit, list_row, &p), limit,
               "the messages could not be read");
}

/* ---- inbox ---- */

static void inbox_row(const struct inbound *in, void *arg)
{
    struct page *p = arg;
    json_array_append_new(p->items,
                          json_pack("{s:I,s:o,s:o,s:s,s:o,s:o,s:s}", "id", (json_int_t)in->id, "sessionId",
                                    session_name(in->session_id), "from", plus_phone(in->from), "text", in->text,
                                    "timestamp", api_time(in->sent_at), "receivedAt", api_time(in->received_at),
                                    "waMessageId", in->wa_message_id));
    p->last_id = in->id;
    p->n++;
}

/* ?since= as ms: an ISO-8601 UTC time (2026-11-30T10:00:00Z, optional fraction) or ms
 * since the epoch; -1 when it is neither */
static int64_t parse_since(const char *v)
{
    long ms;
    int64_t t;
    if (util_parse_count(v, 0, 99999999999999L, &ms) == 0)
        return ms;
    return util_parse_iso8601(v, &t) == 0 ? t : -1;
}

static void inbox(struct http_req *r)
{
    int limit = list_limit(r);
    int64_t cursor = limit < 0 ? -1 : list_cursor(r);
    int64_t sid = cursor < 0 ? -1 : session_filter(r);
    if (sid < 0)
        return;
    const char *v = http_query(r, "since");
    int64_t since = v ? parse_since(v) : 0;
    if (since < 0) {
        http_reply_error(r, 400, "INVALID_REQUEST", "since must be an ISO-8601 UTC time such as "
                         "2026-11-30T10:00:00Z, or ms since the epoch");
        return;
    }
    struct page p = {json_array(), 0, 0};
    reply_page(r, &p, store_inbox_list(http_tenant(r), sid, since, cursor, limit, inbox_row, &p), limit,
               "the inbox could not be read");
}

/* ---- suppressions ---- */

struct supp_page {
    json_t *items;
    char last[PHONE_MAX];
    int n;
};

static void supp_row(const char *phone, const char *reason, int64_t at, void *arg)
{
    struct supp_page *p = arg;
    json_array_append_new(p->items, json_pack("{s:o,s:s,s:o}", "phone", plus_phone(phone), "reason",
                                              reason ? reason : "", "createdAt", api_time(at)));
    snprintf(p->last, sizeof p->last, "%s", phone);
    p->n++;
}

static void list_suppressions(struct http_req *r)
{
    int limit = list_limit(r);
    if (limit < 0)
        return;
    char after[PHONE_MAX] = "";
    const char *c = http_query(r, "cursor");
    if (c && util_phone_normalize(c, after, sizeof after) < 0) {
        http_reply_error(r, 400, "INVALID_REQUEST", "cursor must be a nextCursor value from an earlier page");
        return;
    }
    struct supp_page p = {json_array(), "", 0};
    if (store_suppression_list(http_tenant(r), after, limit, supp_row, &p) < 0) {
        json_decref(p.items);
        http_reply_error(r, 500, "STORE_ERROR", "the suppression list could not be read");
        return;
    }
    http_reply_json(r, 200, json_pack("{s:o,s:o}", "suppressions", p.items, "nextCursor",
                                      p.n == limit ? json_string(p.last) : json_null()));
}

static void add_suppression(struct http_req *r)
{
    json_t *body = http_json_object(r);
    if (!body)
        return;
    static const char *const keys[] = {"phone", "reason", NULL};
    char err[200], phone[PHONE_MAX];
    json_t *jp = json_object_get(body, "phone"), *jr = json_object_get(body, "reason");
    const char *reason = "added by API";
    if (!apiparse_only_keys(body, keys, err, sizeof err)) {
        json_decref(body);
        http_reply_error(r, 400, "INVALID_REQUEST", "%s", err);
        return;
    }
    if (!json_is_string(jp) || util_phone_normalize(json_string_value(jp), phone, sizeof phone) < 0) {
        json_decref(body);
        http_reply_error(r, 400, "INVALID_PHONE", "phone must be 8 to 15 digits with an optional leading +");
        return;
    }
    if (jr && !json_is_null(jr)) {
        if (!json_is_string(jr) || json_string_length(jr) > 200 ||
            strlen(json_string_value(jr)) != json_string_length(jr)) {
            json_decref(body);
            http_reply_error(r, 400, "INVALID_REQUEST", "reason must be a string of at most 200 characters");
            return;
        }
        reason = json_string_value(jr);
    }
    int rc = store_suppression_add(http_tenant(r), phone, reason);
    json_decref(body);
    if (rc == STORE_ERR) {
        http_reply_error(r, 500, "STORE_ERROR", "the suppression could not be stored");
        return;
    }
    http_reply_json(r, rc == STORE_CONFLICT ? 200 : 201,
                    json_pack("{s:o,s:b}", "phone", plus_phone(phone), "created", rc == STORE_OK));
}

static void delete_suppression(struct http_req *r)
{
    char phone[PHONE_MAX], raw[40];
    const char *p = http_param(r, 0);
    /* a client that encodes the '+' sends %2B */
    if (strncasecmp(p, "%2B", 3) == 0) {
        snprintf(raw, sizeof raw, "+%.30s", p + 3);
        p = raw;
    }
    if (util_phone_normalize(p, phone, sizeof phone) < 0) {
        http_reply_error(r, 400, "INVALID_PHONE", "phone must be 8 to 15 digits with an optional leading +");
        return;
    }
    int rc = store_suppression_delete(http_tenant(r), phone);
    if (rc == STORE_NOTFOUND) {
        http_reply_error(r, 404, "NOT_SUPPRESSED", "+%s is not on the suppression list", phone);
        return;
    }
    if (rc != STORE_OK) {
        http_reply_error(r, 500, "STORE_ERROR", "the suppression could not be removed");
        return;
    }
    http_reply_json(r, 200, json_pack("{s:o,s:b}", "phone", plus_phone(phone), "deleted", 1));
}

static const struct http_route routes[] = {
    {"POST", "/api/v1/send", AUTH_TENANT, send_message},
    {"GET", "/api/v1/messages", AUTH_TENANT, list_messages},
    {"GET", "/api/v1/messages/{id}", AUTH_TENANT, get_message},
    {"DELETE", "/api/v1/messages/{id}", AUTH_TENANT, cancel_message},
    {"GET", "/api/v1/inbox", AUTH_TENANT, inbox},
    {"GET", "/api/v1/suppressions", AUTH_TENANT, list_suppressions},
    {"POST", "/api/v1/suppressions", AUTH_TENANT, add_suppression},
    {"DELETE", "/api/v1/suppressions/{phone}", AUTH_TENANT, delete_suppression},
    {NULL, NULL, 0, NULL},
};

void api_messages_register(void) { http_add_routes(routes); }
