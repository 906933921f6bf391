/* api-ops: /health, /metrics and tenants. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "api.h"
#include "apiparse.h"
#include "config.h"
#include "calls.h"
#include "cron.h"
#include "dispatch.h"
#include "events.h"
#include "hmac.h"
#include "http.h"
#include "httpc.h"
#include "outbox.h"
#include "pool.h"
#include "session.h"
#include "store.h"
#include "util.h"

#define SB_VERSION "0.1.0"

static const struct config *cfg;
static int64_t started_mono;

void api_ops_set_start_time(void) { started_mono = util_mono_ms(); }

static void health(struct http_req *r)
{
    int store_ok = store_ping() == 0;
    struct session_counts c;
    session_counts(&c);
    json_t *by = json_object();
    for (int i = 0; i < SS__COUNT; i++)
        json_object_set_new(by, sess_status_name((enum sess_status)i), json_integer(c.by_status[i]));
    size_t n;
    struct proxy *const *all = pool_all(&n);
    int ok = 0, shared = 0;
    for (size_t i = 0; i < n; i++) {
        ok += all[i]->status == PROXY_OK;
        shared += all[i]->tenant_id == 0;
    }
    const char *mode = n == 0 ? "direct" : "pool";
    json_t *j = json_pack(
        "{s:s,s:s,s:s,s:I,s:s,s:{s:i,s:i,s:i,s:i,s:i},s:o,s:{s:s,s:i,s:i,s:i,s:i},s:i}", "status",
        store_ok ? "ok" : "error", "version", SB_VERSION, "store", store_ok ? "ok" : "unreachable",
        "uptimeSeconds", (json_int_t)((util_mono_ms() - started_mono) / 1000), "runner", cfg->runner,
        "workers", "running", c.workers_running - c.workers_stopping, "stopping", c.workers_stopping,
        "queued", c.start_queue, "backoff", c.restart_pending, "max", (int)cfg->max_workers,
        "sessions", by, "proxies", "mode", mode, "total", (int)n, "ok", ok, "bad", (int)n - ok,
        "shared", shared, "waitingForProxy", c.waiting_proxy);
    if (n == 0)
        json_object_set_new(j, "note", json_string("no proxies configured: workers connect directly"));
    else if (c.waiting_proxy)
        json_object_set_new(j, "note", json_string("some sessions wait for a proxy with room (reason no_proxy)"));
    http_reply_json(r, store_ok ? 200 : 503, j);
}

/* ---- /metrics: Prometheus text format ---- */

struct buf {
    char *p;
    size_t len, cap;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
        b->p = xrealloc(b->p, b->cap);
    }
}

static void head(struct buf *b, const char *name, const char *type, const char *help)
{
    bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void http_row(const char *route, int status, uint64_t count, void *arg)
{
    bprintf(arg, "switchboard_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", route, status,
            (unsigned long long)count);
}

static void event_row(const char *type, unsigned long long n, void *arg)
{
    bprintf(arg, "switchboard_worker_events_total{type=\"%s\"} %llu\n", type, n);
}

static void cron_row(const char *name, uint64_t runs, void *arg)
{
    bprintf(arg, "switchboard_cron_runs_total{job=\"%s\"} %llu\n", name, (unsigned long long)runs);
}

static void metrics(struct http_req *r)
{
    struct buf b = {xmalloc(4096), 0, 4096};
    struct session_counts c;
    struct session_stats st;
    struct store_stats ss;
    session_counts(&c);
    session_get_stats(&st);
    store_get_stats(&ss);
    head(&b, "switchboard_sessions", "gauge", "Sessions by status.");
    for (int i = 0; i < SS__COUNT; i++)
        bprintf(&b, "switchboard_sessions{status=\"%s\"} %d\n", sess_status_name((enum sess_status)i),
                c.by_status[i]);
    head(&b, "switchboard_sessions_waiting_for_proxy", "gauge", "Sessions waiting for a proxy with room.");
    bprintf(&b, "switchboard_sessions_waiting_for_proxy %d\n", c.waiting_proxy);
    head(&b, "switchboard_workers_running", "gauge", "Workers running now.");
    bprintf(&b, "switchboard_workers_running %d\n", c.workers_running);
    head(&b, "switchboard_worker_start_queue", "gauge", "Worker starts waiting for their turn.");
    bprintf(&b, "switchboard_worker_start_queue %d\n", c.start_queue);
    head(&b, "switchboard_worker_starts_total", "counter", "Worker starts, first starts and restarts.");
    bprintf(&b, "switchboard_worker_starts_total %llu\n", (unsigned long long)st.worker_starts);
    head(&b, "switchboard_worker_restarts_total", "counter", "Worker starts after the first one of a session.");
    bprintf(&b, "switchboard_worker_restarts_total %llu\n", (unsigned long long)st.worker_restarts);
    head(&b, "switchboard_worker_start_failures_total", "counter", "Worker starts the runner could not do.");
    bprintf(&b, "switchboard_worker_start_failures_total %llu\n", (unsigned long long)st.worker_start_failures);
    head(&b, "switchboard_watchdog_restarts_total", "counter", "Restarts of silent or unresponsive workers.");
    bprintf(&b, "switchboard_watchdog_restarts_total %llu\n", (unsigned long long)st.watchdog_restarts);
    head(&b, "switchboard_proxy_failovers_total", "counter", "Sessions moved to another proxy.");
    bprintf(&b, "switchboard_proxy_failovers_total %llu\n", (unsigned long long)st.proxy_failovers);
    head(&b, "switchboard_worker_events_total", "counter", "Worker events received, by type.");
    webhook_metrics_each(event_row, &b);
    size_t n;
    struct proxy *const *all = pool_all(&n);
    int ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += all[i]->status == PROXY_OK;
    head(&b, "switchboard_proxies", "gauge", "Proxies by status.");
    bprintf(&b, "switchboard_proxies{status=\"ok\"} %d\nswitchboard_proxies{status=\"bad\"} %d\n", ok, (int)n - ok);
    head(&b, "switchboard_store_commits_total", "counter", "Store batches committed.");
    bprintf(&b, "switchboard_store_commits_total %llu\n", (unsigned long long)ss.commits);
    head(&b, "switchboard_store_commit_failures_total", "counter", "Store batches that failed to commit.");
    bprintf(&b, "switchboard_store_commit_failures_total %llu\n", (unsigned long long)ss.commit_failures);
    head(&b, "switchboard_outbound_http_inflight", "gauge", "Outbound HTTP requests in flight.");
    bprintf(&b, "switchboard_outbound_http_inflight %d\n", httpc_inflight());
    head(&b, "switchboard_uptime_seconds", "gauge", "Seconds since the daemon started.");
    bprintf(&b, "switchboard_uptime_seconds %lld\n", (long long)((util_mono_ms() - started_mono) / 1000));
    head(&b, "switchboard_http_requests_total", "counter", "HTTP requests answered, by route and status.");
    http_metrics_each(http_row, &b);
    char *dm = dispatch_metrics_text();
    bprintf(&b, "%s", dm);
    free(dm);
    dm = calls_metrics_text();
    bprintf(&b, "%s", dm);
    free(dm);
    uint64_t c1, c2, c3;
    outbox_counts(&c1, &c2, &c3);
    head(&b, "switchboard_webhook_deliveries_total", "counter", "Customer webhook deliveries by outcome.");
    bprintf(&b, "switchboard_webhook_deliveries_total{outcome=\"delivered\"} %llu\n"
                "switchboard_webhook_deliveries_total{outcome=\"failed_try\"} %llu\n"
                "switchboard_webhook_deliveries_total{outcome=\"dead\"} %llu\n",
            (unsigned long long)c1, (unsigned long long)c2, (unsigned long long)c3);
    alert_counts(&c1, &c2, &c3);
    head(&b, "switchboard_alerts_total", "counter", "Operator alerts by outcome.");
    bprintf(&b, "switchboard_alerts_total{outcome=\"sent\"} %llu\nswitchboard_alerts_total{outcome=\"failed\"} %llu\n"
                "switchboard_alerts_total{outcome=\"folded\"} %llu\n",
            (unsigned long long)c1, (unsigned long long)c2, (unsigned long long)c3);
    head(&b, "switchboard_cron_runs_total", "counter", "Runs of each periodic job.");
    cron_each(cron_row, &b);
    head(&b, "switchboard_event_streams", "gauge", "Open event streams (Server-Sent Events).");
    bprintf(&b, "switchboard_event_streams %d\n", events_streams());
    http_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    free(b.p);
}

static void create_tenant(struct http_req *r)
{
    json_t *body = http_json_object(r);
    if (!body)
        return;
    const char *name;
    char err[200];
    int rc = apiparse_tenant(body, &name, err, sizeof err);
    if (rc < 0) {
        json_decref(body);
        http_reply_error(r, 400, apiparse_code(rc), "%s", err);
        return;
    }
    char key[64], hash[HMAC_HEX_LEN + 1];
    memcpy(key, "sb_", 3);
    if (hmac_random_hex(key + 3, 24) < 0) {
        json_decref(body);
        http_reply_error(r, 500, "RANDOM_ERROR", "no randomness for a key");
        return;
    }
    http_key_hash(key, hash);
    int64_t id;
    store_tx_begin();
    rc = store_tenant_insert(name, &id);
    if (rc == STORE_OK)
        rc = store_apikey_insert(id, hash);
    store_tx_end(rc == STORE_OK);
    if (rc != STORE_OK) {
        if (rc == STORE_CONFLICT)
            http_reply_error(r, 409, "TENANT_EXISTS", "a tenant named %s exists", name);
        else
            http_reply_error(r, 500, "STORE_ERROR", "the tenant could not be saved");
        json_decref(body);
        return;
    }
    json_t *out = json_pack("{s:I,s:s,s:s,s:s}", "tenantId", (json_int_t)id, "name", name, "apiKey", key,
                            "note", "the key is shown only now; it is stored as a hash");
    json_decref(body);
    http_reply_json(r, 201, out);
}

struct stats_ctx {
    int64_t tenant_id;
    json_t *sessions;
    int by_status[SS__COUNT];
};

static void stats_session(struct session *s, void *arg)
{
    struct stats_ctx *c = arg;
    if (s->tenant_id != c->tenant_id)
        return;
    c->by_status[s->status]++;
    if (!c->sessions)
        return;
    json_t *j = json_pack("{s:s,s:s}", "sessionId", s->name, "status", sess_status_name(s->status));
    dispatch_session_json(s, j);
    json_array_append_new(c->sessions, j);
}

/* the caller's tenant at a glance: sessions by status, today's messaging, per session */
static void stats(struct http_req *r)
{
    const char *per = http_query(r, "sessions");
    if (per && strcmp(per, "true") != 0 && strcmp(per, "false") != 0) {
        http_reply_error(r, 400, "INVALID_REQUEST", "sessions must be true or false");
        return;
    }
    struct stats_ctx c = {http_tenant(r), per && strcmp(per, "false") == 0 ? NULL : json_array(), {0}};
    session_each(stats_session, &c);
    json_t *by = json_object();
    for (int i = 0; i < SS__COUNT; i++)
        json_object_set_new(by, sess_status_name((enum sess_status)i), json_integer(c.by_status[i]));
    json_t *msgs = json_object();
    dispatch_totals_json(c.tenant_id, msgs);
    json_t *calls = json_object();
    calls_totals_json(c.tenant_id, calls);
    json_t *answer = json_pack("{s:o,s:o,s:o}", "sessionsByStatus", by, "messages", msgs, "calls", calls);
    if (c.sessions)
        json_object_set_new(answer, "sessions", c.sessions);
    http_reply_json(r, 200, answer);
}

static const struct http_route routes[] = {
    {"GET", "/health", AUTH_NONE, health},
    {"GET", "/api/stats", AUTH_TENANT, stats},
    {"GET", "/metrics", AUTH_ADMIN, metrics},
    {"POST", "/api/tenants", AUTH_ADMIN, create_tenant},
    {NULL, NULL, 0, NULL},
};

void api_ops_register(const struct config *c)
{
    cfg = c;
    http_add_routes(routes);
}
