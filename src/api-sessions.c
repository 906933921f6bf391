/* api-sessions: /api/sessions/... and /api/accounts/... */
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "apiparse.h"
#include "config.h"
#include "dispatch.h"
#include "docker.h"
#include "http.h"
#include "pacing.h"
#include "pool.h"
#include "proxy.h"
#include "sessfsm.h"
#include "session.h"
#include "util.h"

static const struct config *cfg;

json_t *api_time(long long ms)
{
    if (ms <= 0)
        return json_null();
    char buf[40];
    util_iso8601(ms, buf, sizeof buf);
    return json_string(buf);
}

static json_t *masked_proxy(int64_t id)
{
    struct proxy *p = id ? pool_get(id) : NULL;
    if (!p)
        return json_null();
    char m[300];
    proxy_mask(p->url, m, sizeof m);
    return json_string(m);
}

static json_t *opt_str(const char *s) { return s && *s ? json_string(s) : json_null(); }

json_t *api_session_json(const struct session *s)
{
    char phone[PHONE_MAX + 1];
    snprintf(phone, sizeof phone, "+%s", s->phone);
    json_t *worker = json_null();
    if (strcmp(s->worker.backend, "docker") == 0) {
        char name[DOCKER_NAME_MAX];
        docker_container_name(s->id, name, sizeof name);
        worker = json_pack("{s:s,s:s,s:s}", "backend", "docker", "container", name, "address",
                           s->worker.address);
    } else if (s->worker.backend[0]) {
        worker = json_pack("{s:s,s:i,s:s}", "backend", s->worker.backend, "pid", s->worker.pid,
                           "address", s->worker.address);
    }
    json_t *j = json_pack(
        "{s:s,s:s,s:o,s:o,s:I,s:s,s:b,s:o,s:o,s:o,s:o,s:i,s:o,s:o,s:b,s:o}", "sessionId", s->name,
        "status", sess_status_name(s->status), "phone", s->phone[0] ? json_string(phone) : json_null(),
        "proxy", masked_proxy(s->proxy_id), "proxyId", (json_int_t)s->proxy_id, "loginMethod",
        s->login == LOGIN_PAIRING ? "pairing_code" : "qr", "trustLevelFixed",
        s->trust_level[0] != 0, "createdAt", api_time(s->created_at), "connectedAt",
        api_time(s->connected_at), "firstConnectedAt", api_time(s->first_connected_at), "lastPingAt",
        api_time(s->last_ping_at), "restarts", s->restarts, "lastError", opt_str(s->last_error),
        "reason", opt_str(s->reason), "waitingForProxy", session_is_waiting_proxy(s), "worker", worker);
    if (s->pairing_code[0])
        json_object_set_new(j, "pairingCode", json_string(s->pairing_code));
    dispatch_session_json(s, j);
    return j;
}

/* the caller's session, or NULL after answering 404: another tenant's is not found either */
static struct session *tenant_session(struct http_req *r)
{
    struct session *s = session_find(http_param(r, 0));
    if (!s || s->tenant_id != http_tenant(r)) {
        http_reply_error(r, 404, "SESSION_NOT_FOUND", "no session %.40s", http_param(r, 0));
        return NULL;
    }
    return s;
}

static void provision(struct http_req *r)
{
    json_t *body = http_json_object(r);
    if (!body)
        return;
    struct provision_req req;
    char phone[PHONE_MAX], err[256];
    int rc = apiparse_provision(body, &req, phone, err, sizeof err);
    if (rc < 0) {
        json_decref(body);
        http_reply_error(r, 400, apiparse_code(rc), "%s", err);
        return;
    }
    struct session *s;
    int status;
    const char *code;
    if (session_provision(http_tenant(r), &req, &s, &status, &code, err, sizeof err) < 0) {
        json_decref(body);
        http_reply_error(r, status, code, "%s", err);
        return;
    }
    json_decref(body);
    http_reply_json(r, 201, json_pack("{s:s,s:s,s:o}", "sessionId", s->name, "status",
                                      sess_status_name(s->status), "proxy", masked_proxy(s->proxy_id)));
}

struct list_ctx {
    json_t *arr;
    int64_t tenant;
    const char *status;
};

static void list_one(struct session *s, void *arg)
{
    struct list_ctx *x = arg;
    if (s->tenant_id != x->tenant)
        return;
    if (x->status && strcmp(x->status, sess_status_name(s->status)) != 0)
        return;
    json_array_append_new(x->arr, api_session_json(s));
}

static void list_sessions(struct http_req *r)
{
    const char *st = http_query(r, "status");
    if (st && sess_status_parse(st) < 0) {
        http_reply_error(r, 400, "INVALID_REQUEST",
                         "status must be one of provisioning, starting, qr_ready, connected, "
                         "disconnected, logged_out, failed, stopped");
        return;
    }
    struct list_ctx x = {json_array(), http_tenant(r), st};
    session_each(list_one, &x);
    http_reply_json(r, 200, json_pack("{s:o,s:I}", "sessions", x.arr, "count",
                                      (json_int_t)json_array_size(x.arr)));
}

static void get_session(struct http_req *r)
{
    struct session *s = tenant_session(r);
    if (s)
        http_reply_json(r, 200, api_session_json(s));
}

static void get_qr(struct http_req *r)
{
    struct session *s = tenant_session(r);
    if (!s)
        return;
    if (!s->qr[0]) {
        http_reply_error(r, 404, "NO_QR", "session %s has no QR code now (status %s)", s->name,
                         sess_status_name(s->status));
        return;
    }
    http_reply_json(r, 200, json_pack("{s:s,s:o}", "qr", s->qr, "updatedAt", api_time(s->qr_at)));
}

static void get_qr_svg(struct http_req *r)
{
    struct session *s = tenant_session(r);
    if (!s)
        return;
    if (!s->qr[0]) {
        http_reply_error(r, 404, "NO_QR", "session %s has no QR code now (status %s)", s->name,
                         sess_status_name(s->status));
        return;
    }
    QRcode *q = QRcode_encodeString(s->qr, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
    if (!q) {
        http_reply_error(r, 500, "QR_ERROR", "the QR code could not be drawn");
        return;
    }
    int w = q->width, margin = 4, scale = 8, size = (w + 2 * margin) * scale;
    size_t cap = 512 + (size_t)w * (size_t)w * 48;
    char *svg = xmalloc(cap);
    size_t n = (size_t)snprintf(svg, cap,
                                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                                "viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">"
                                "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
                                size, size, w + 2 * margin, w + 2 * margin);
    for (int y = 0; y < w; y++)
        for (int x = 0; x < w; x++)
            if (q->data[y * w + x] & 1)
                n += (size_t)snprintf(svg + n, cap - n, "M%d %dh1v1h-1z", x + margin, y + margin);
    n += (size_t)snprintf(svg + n, cap - n, "\"/></svg>");
    QRcode_free(q);
    http_reply_raw(r, 200, "image/svg+xml", svg, n);
    free(svg);
}

static void restart(struct http_req *r)
{
    struct session *s = tenant_session(r);
    if (!s)
        return;
    if (session_restart(s, "restart requested by API") < 0) {
        http_reply_error(r, 503, "WORKER_LIMIT", "MAX_WORKERS workers are running or starting: %s cannot start",
                         s->name);
        return;
    }
    http_reply_json(r, 200, api_session_json(s));
}

static void stop(struct http_req *r)
{
    struct session *s = tenant_session(r);
    if (!s)
        return;
    /* stopping a stopped session changes nothing and is no error */
    if (s->status != SS_STOPPED && session_stop(s, "stopped by API") < 0) {
        http_reply_error(r, 409, "INVALID_STATE", "session %s is logged out: it has no link to keep", s->name);
        return;
    }
    http_reply_json(r, 200, api_session_json(s));
}

static void logout_done(struct session *s, void *arg)
{
    struct http_req *r = arg;
    if (!s) {
        http_reply_error(r, 404, "SESSION_NOT_FOUND", "the session is gone (deleted, or the daemon is stopping)");
        return;
    }
    http_reply_json(r, 200, api_session_json(s));
}

static void logout(struct http_req *r)
{
    struct session *s = tenant_session(r);
    if (!s)
        return;
    if (s->status == SS_STOPPED) {
        http_reply_error(r, 409, "INVALID_STATE", "session %s is stopped", s->name);
        return;
    }
    session_logout(s, logout_done, r);
}

static void delete_session(struct http_req *r)
{
    struct session *s = tenant_session(r);
    if (!s)
        return;
    const char *purge = http_query(r, "purge");
    if (purge && strcmp(purge, "true") != 0 && strcmp(purge, "false") != 0) {
        http_reply_error(r, 400, "INVALID_REQUEST", "purge must be true or false");
        return;
    }
    int p = purge && strcmp(purge, "true") == 0;
    char name[SESSION_NAME_MAX];
    snprintf(name, sizeof name, "%s", s->name);
    if (session_delete(s, p) < 0) {
        http_reply_error(r, 500, "STORE_ERROR", "the session could not be deleted");
        return;
    }
    http_reply_json(r, 200, json_pack("{s:s,s:b,s:b}", "sessionId", name, "deleted", 1, "purged", p));
}

static void set_trust(struct http_req *r)
{
    struct session *s = tenant_session(r);
    if (!s)
        return;
    json_t *body = http_json_object(r);
    if (!body)
        return;
    static const char *const keys[] = {"trustLevel", NULL};
    char err[128];
    json_t *v = json_object_get(body, "trustLevel");
    if (!apiparse_only_keys(body, keys, err, sizeof err) || !v ||
        !(json_is_null(v) || (json_is_string(v) && pacing_level_parse(json_string_value(v)) >= 0))) {
        json_decref(body);
        http_reply_error(r, 400, "INVALID_REQUEST",
                         "trustLevel must be cold, warm, hot, or null to follow the account's age");
        return;
    }
    session_set_trust_level(s, json_is_null(v) ? "" : json_string_value(v));
    json_decref(body);
    http_reply_json(r, 200, api_session_json(s));
}

static void pairing_done(struct session *s, const char *code, const char *error, void *arg)
{
    struct http_req *r = arg;
    if (!s)
        http_reply_error(r, 404, "SESSION_NOT_FOUND", "%s", error);
    else if (!code)
        http_reply_error(r, 502, "WORKER_ERROR", "%s", error);
    else
        http_reply_json(r, 200, json_pack("{s:s,s:s}", "sessionId", s->name, "code", code));
}

/* the {phone} body of the pairing routes into phone (PHONE_MAX); 0, or -1 once answered */
static int phone_body(struct http_req *r, char *phone)
{
    json_t *body = http_json_object(r);
    if (!body)
        return -1;
    char err[256];
    int rc = apiparse_pair(body, phone, err, sizeof err);
    json_decref(body);
    if (rc < 0) {
        http_reply_error(r, 400, apiparse_code(rc), "%s", err);
        return -1;
    }
    return 0;
}

static void pairing_code(struct http_req *r)
{
    struct session *s = tenant_session(r);
    char phone[PHONE_MAX];
    if (!s || phone_body(r, phone) < 0)
        return;
    if (s->status == SS_CONNECTED || sessfsm_is_terminal(s->status)) {
        http_reply_error(r, 409, "INVALID_STATE", "session %s is %s: a pairing code is only for linking",
                         s->name, sess_status_name(s->status));
        return;
    }
    if (session_request_pairing(s, phone, pairing_done, r) < 0)
        http_reply_error(r, 409, "INVALID_STATE", "session %s has no running worker yet", s->name);
}

/* ---- accounts ---- */

static void pair_done(struct session *s, const char *code, void *arg)
{
    struct http_req *r = arg;
    if (!s) {
        http_reply_error(r, 404, "SESSION_NOT_FOUND", "the session is gone (deleted, or the daemon is stopping)");
        return;
    }
    char phone[PHONE_MAX + 1];
    snprintf(phone, sizeof phone, "+%s", s->phone);
    if (code) {
        http_reply_json(r, 200, json_pack("{s:b,s:s,s:s,s:s,s:s}", "success", 1, "sessionId", s->name,
                                          "phone", phone, "code", code, "status",
                                          sess_status_name(s->status)));
        return;
    }
    char msg[TEXT_MAX + 128];
    if (sessfsm_is_terminal(s->status))
        snprintf(msg, sizeof msg, "no pairing code: the session was %s before one came (%s); restart it, then "
                 "poll GET /api/sessions/{id} for pairingCode", sess_status_name(s->status), s->reason);
    else
        snprintf(msg, sizeof msg, "the pairing code is not ready yet; poll GET /api/sessions/{id} for pairingCode");
    http_reply_json(r, 202, json_pack("{s:b,s:s,s:s,s:s,s:s}", "success", 1, "sessionId", s->name, "phone", phone,
                                      "status", sess_status_name(s->status), "message", msg));
}

static void pair(struct http_req *r)
{
    char phone[PHONE_MAX], err[256];
    if (phone_body(r, phone) < 0)
        return;
    struct provision_req req = {.phone = phone, .proxy = NULL, .login = LOGIN_PAIRING};
    struct session *s;
    int status;
    const char *code;
    if (session_provision(http_tenant(r), &req, &s, &status, &code, err, sizeof err) < 0) {
        http_reply_error(r, status, code, "%s", err);
        return;
    }
    session_wait_pairing(s, cfg->pair_wait_ms, pair_done, r);
}

struct acct_ctx {
    json_t *by_phone;
    int64_t tenant;
};

static void acct_one(struct session *s, void *arg)
{
    struct acct_ctx *x = arg;
    if (s->tenant_id != x->tenant || !s->phone[0])
        return;
    json_t *a = json_object_get(x->by_phone, s->phone);
    if (!a) {
        char phone[PHONE_MAX + 1];
        snprintf(phone, sizeof phone, "+%s", s->phone);
        a = json_pack("{s:s,s:o,s:[]}", "phone", phone, "proxy",
                      masked_proxy(pool_binding(s->tenant_id, s->phone)), "sessions");
        json_object_set_new(x->by_phone, s->phone, a);
    }
    json_array_append_new(json_object_get(a, "sessions"),
                          json_pack("{s:s,s:s}", "sessionId", s->name, "status", sess_status_name(s->status)));
}

static void accounts(struct http_req *r)
{
    struct acct_ctx x = {json_object(), http_tenant(r)};
    session_each(acct_one, &x);
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(x.by_phone, k, v) json_array_append(arr, v);
    json_decref(x.by_phone);
    http_reply_json(r, 200, json_pack("{s:o,s:i}", "accounts", arr, "maxSessionsPerPhone",
                                      (int)cfg->max_sessions_per_phone));
}

static const struct http_route routes[] = {
    {"POST", "/api/sessions/provision", AUTH_TENANT, provision},
    {"GET", "/api/sessions", AUTH_TENANT, list_sessions},
    {"GET", "/api/sessions/{id}", AUTH_TENANT, get_session},
    {"DELETE", "/api/sessions/{id}", AUTH_TENANT, delete_session},
    {"GET", "/api/sessions/{id}/qr", AUTH_TENANT, get_qr},
    {"GET", "/api/sessions/{id}/qr.svg", AUTH_TENANT, get_qr_svg},
    {"POST", "/api/sessions/{id}/restart", AUTH_TENANT, restart},
    {"POST", "/api/sessions/{id}/stop", AUTH_TENANT, stop},
    {"POST", "/api/sessions/{id}/logout", AUTH_TENANT, logout},
    {"POST", "/api/sessions/{id}/trust-level", AUTH_TENANT, set_trust},
    {"POST", "/api/sessions/{id}/pairing-code", AUTH_TENANT, pairing_code},
    {"POST", "/api/accounts/pair", AUTH_TENANT, pair},
    {"GET", "/api/accounts", AUTH_TENANT, accounts},
    {NULL, NULL, 0, NULL},
};

void api_sessions_register(const struct config *c)
{
    cfg = c;
    http_add_routes(routes);
}
