#include "outbox.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "api.h"
#include "apiparse.h"
#include "config.h"
#include "cron.h"
#include "events.h"
#include "hmac.h"
#include "http.h"
#include "httpc.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define HOOKS_PER_TENANT 50
#define EVENTS_FIELD_MAX 256
#define RESPONSE_MAX (64 * 1024)
#define BACKOFF_MAX_MS 3600000L
#define URL_MAX 2048
#define PRUNE_MS 3600000L
#define DELIVERED_KEEP_MS (7 * 86400000LL)
#define DEAD_KEEP_MS (30 * 86400000LL)

struct hook {
    int64_t id, tenant_id;
    char *url;
    char events[EVENTS_FIELD_MAX]; /* ",a,b," or "*" */
    char *secret;                  /* a secret: only in the signature */
    int64_t created_at;
    int disabled;
    int inflight;
    int dirty;                     /* a delivery was queued in the open batch */
    struct event *timer;
    struct hook *next;
};

struct send_ctx {
    int64_t hook_id, delivery_id;
};

static struct event_base *evbase;
static const struct config *cfg;
static struct hook *hooks;
static int kick_queued;
static uint64_t delivered, failed_tries, dead;

static void kick(struct hook *h);

void outbox_counts(uint64_t *ok, uint64_t *failed, uint64_t *dead_out)
{
    *ok = delivered;
    *failed = failed_tries;
    *dead_out = dead;
}

/* ---- pure parts ---- */

void outbox_signature(const char *secret, long t, const char *body, size_t len, char *out, size_t outlen)
{
    char ts[24], hex[HMAC_HEX_LEN + 1];
    snprintf(ts, sizeof ts, "%ld", t);
    hmac_sign_ts_body(secret, ts, body, len, hex);
    snprintf(out, outlen, "t=%s,v1=%s", ts, hex);
}

static int host_private(const char *host)
{
    size_t l = strlen(host);
    if (strcasecmp(host, "localhost") == 0 || (l > 10 && strcasecmp(host + l - 10, ".localhost") == 0))
        return 1;
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    char bare[256];
    snprintf(bare, sizeof bare, "%s", host);
    if (bare[0] == '[') { /* curl gives IPv6 hosts in brackets */
        memmove(bare, bare + 1, strlen(bare));
        bare[strcspn(bare, "]")] = '\0';
    }
    if (inet_pton(AF_INET, bare, &v4.sin_addr) == 1)
        return util_addr_is_private((struct sockaddr *)&v4);
    if (inet_pton(AF_INET6, bare, &v6.sin6_addr) == 1)
        return util_addr_is_private((struct sockaddr *)&v6);
    return 0; /* a name: checked where it resolves, at connect time */
}

int outbox_url_ok(const char *url, int allow_private, char *err, size_t errlen)
{
    if (!url || strlen(url) > URL_MAX) {
        snprintf(err, errlen, "url must be an http or https URL of at most %d characters", URL_MAX);
        return -1;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(err, errlen, "url is not a valid absolute URL");
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        snprintf(err, errlen, "url must use http or https");
        goto out;
    }
    if (!allow_private && host_private(host)) {
        snprintf(err, errlen, "url points at a loopback or private address; set WEBHOOK_ALLOW_PRIVATE=1 to allow it");
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* ---- hooks in memory ---- */

static struct hook *hook_of(int64_t id)
{
    for (struct hook *h = hooks; h; h = h->next)
        if (h->id == id)
            return h;
    return NULL;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) { kick(arg); }

static struct hook *hook_add(const struct store_hook *sh)
{
    struct hook *h = xcalloc(1, sizeof *h);
    h->id = sh->id;
    h->tenant_id = sh->tenant_id;
    h->url = xstrdup(sh->url);
    snprintf(h->events, sizeof h->events, "%s", sh->events);
    h->secret = xstrdup(sh->secret);
    h->disabled = strcmp(sh->status, "active") != 0;
    h->created_at = sh->created_at;
    h->timer = evtimer_new(evbase, timer_cb, h);
    h->next = hooks;
    hooks = h;
    return h;
}

static void hook_free(struct hook *h)
{
    event_free(h->timer);
    free(h->url);
    if (h->secret)
        memset(h->secret, 0, strlen(h->secret));
    free(h->secret);
    free(h);
}

static int wants(const struct hook *h, const char *type)
{
    if (h->disabled)
        return 0;
    if (strcmp(h->events, "*") == 0)
        return 1;
    char needle[40];
    snprintf(needle, sizeof needle, ",%s,", type);
    return strstr(h->events, needle) != NULL;
}

int outbox_wants(int64_t tenant_id, const char *type)
{
    for (struct hook *h = hooks; h; h = h->next)
        if (h->tenant_id == tenant_id && wants(h, type))
            return 1;
    return 0;
}

static void kick_dirty(void *arg, int ok)
{
    if (store_in_batch()) {
        /* an earlier after-commit step opened the next batch already, and a delivery
         * flagged here may be in it, not durable yet: all wait for that commit */
        store_after_commit(kick_dirty, NULL);
        return;
    }
    kick_queued = 0;
    for (struct hook *h = hooks; h; h = h->next) {
        if (h->dirty) {
            h->dirty = 0;
            kick(h);
        }
    }
}

void outbox_on_event(int64_t tenant_id, int64_t event_id, const char *type, const char *payload)
{
    int64_t now = util_now_ms();
    for (struct hook *h = hooks; h; h = h->next) {
        if (h->tenant_id != tenant_id || !wants(h, type))
            continue;
        if (store_delivery_insert(h->id, event_id, type, payload, now) != STORE_OK) {
            log_error("outbox", "cannot queue a delivery webhook=%lld event=%lld", (long long)h->id, (long long)event_id);
            continue;
        }
        h->dirty = 1;
    }
    if (!kick_queued) {
        kick_queued = 1;
        store_after_commit(kick_dirty, NULL); /* sent once the delivery is durable */
    }
}

/* ---- sending ---- */

static long backoff_ms(int attempts)
{
    long ms = cfg->webhook_retry_base_ms;
    for (int i = 1; i < attempts && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    /* jitter: 80-120 % */
    return (long)((double)ms * (0.8 + 0.4 * hmac_random01()));
}

static void on_reply(const struct httpc_response *res, void *arg)
{
    struct send_ctx *c = arg;
    struct hook *h = hook_of(c->hook_id);
    int64_t delivery_id = c->delivery_id;
    free(c);
    if (!h)
        return; /* deleted meanwhile */
    h->inflight = 0;
    struct delivery d = {0};
    if (store_delivery_get(delivery_id, &d) != STORE_OK || strcmp(d.status, "pending") != 0) {
        free(d.payload);
        kick(h);
        return;
    }
    int64_t now = util_now_ms();
    d.attempts++;
    d.last_status = (int)res->status;
    if (res->status >= 200 && res->status < 300) {
        snprintf(d.status, sizeof d.status, "delivered");
        d.last_error[0] = '\0';
        d.done_at = now;
        delivered++;
    } else if (res->status == 410) {
        /* the receiver says the subscription is gone: stop, keep the delivery for a replay */
        snprintf(d.last_error, sizeof d.last_error, "410 Gone: the subscription was disabled");
        h->disabled = 1;
        store_hook_set_status(h->id, "disabled");
        log_warn("outbox", "webhook answered 410, disabled webhook=%lld", (long long)h->id);
    } else {
        failed_tries++;
        if (res->status == 0)
            snprintf(d.last_error, sizeof d.last_error, "%.300s", res->error ? res->error : "no answer");
        else
            snprintf(d.last_error, sizeof d.last_error, "HTTP %ld", res->status);
        util_utf8_fix(d.last_error);
        if (now - d.retry_from >= cfg->webhook_retry_for_ms) {
            snprintf(d.status, sizeof d.status, "dead");
            d.done_at = now;
            dead++;
            log_warn("outbox", "delivery dead after %d tries webhook=%lld delivery=%lld error=\"%s\"", d.attempts,
                     (long long)h->id, (long long)d.id, d.last_error);
            /* those queued behind it whose window is over too die with it, untried: else an
             * endpoint that takes nothing would be tried once per event, one at a time,
             * and its backlog would only grow */
            char why[TEXT_MAX];
            snprintf(why, sizeof why, "not tried: the endpoint took nothing for longer than the retry window "
                     "(delivery %lld died with: %.200s)", (long long)d.id, d.last_error);
            util_utf8_fix(why);
            int n = store_delivery_expire(h->id, now - cfg->webhook_retry_for_ms, now, why);
            if (n > 0) {
                dead += (uint64_t)n;
                log_warn("outbox", "deliveries dead with it webhook=%lld count=%d", (long long)h->id, n);
            }
        } else {
            d.next_at = now + backoff_ms(d.attempts);
        }
    }
    if (store_delivery_save(&d) != STORE_OK)
        log_error("outbox", "cannot save a delivery delivery=%lld", (long long)d.id);
    free(d.payload);
    kick(h);
}

static void send_delivery(struct hook *h, const struct delivery *d)
{
    char sig[120], h_sig[160], h_event[64], h_dlv[64];
    size_t len = strlen(d->payload);
    outbox_signature(h->secret, (long)time(NULL), d->payload, len, sig, sizeof sig);
    snprintf(h_sig, sizeof h_sig, "X-Switchboard-Signature: %s", sig);
    snprintf(h_event, sizeof h_event, "X-Switchboard-Event: %s", d->event_type);
    snprintf(h_dlv, sizeof h_dlv, "X-Switchboard-Delivery: %lld", (long long)d->id);
    const char *headers[] = {"Content-Type: application/json", "User-Agent: Switchboard-Webhooks/1", h_sig, h_event,
                             h_dlv, NULL};
    struct send_ctx *c = xmalloc(sizeof *c);
    *c = (struct send_ctx){h->id, d->id};
    h->inflight = 1;
    int rc = cfg->webhook_allow_private
                 ? httpc_request("POST", h->url, headers, d->payload, len, cfg->webhook_timeout_ms, RESPONSE_MAX,
                                 NULL, on_reply, c)
                 : httpc_request_public("POST", h->url, headers, d->payload, len, cfg->webhook_timeout_ms,
                                        RESPONSE_MAX, on_reply, c);
    if (rc < 0) {
        free(c);
        h->inflight = 0;
        struct timeval tv = {1, 0};
        evtimer_add(h->timer, &tv);
    }
}

/* the endpoint's next delivery, in event order: one at a time, so that a failing head
 * holds the ones after it back and order is kept */
static void kick(struct hook *h)
{
    if (h->inflight || h->disabled)
        return;
    if (h->dirty && store_in_batch()) {
        /* a delivery of this webhook was written in the open batch and is not durable yet:
         * look after the commit (older ones were committed before and go now) */
        h->dirty = 1;
        if (!kick_queued) {
            kick_queued = 1;
            store_after_commit(kick_dirty, NULL);
        }
        return;
    }
    struct delivery d = {0};
    if (store_delivery_next(h->id, &d) != STORE_OK) {
        free(d.payload);
        return;
    }
    int64_t now = util_now_ms();
    if (d.next_at > now) {
        int64_t ms = d.next_at - now;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
        evtimer_add(h->timer, &tv);
    } else {
        send_delivery(h, &d);
    }
    free(d.payload);
}

/* ---- API ---- */

static json_t *hook_json(const struct hook *h, int64_t created_at)
{
    json_t *ev = json_array();
    if (strcmp(h->events, "*") == 0) {
        json_array_append_new(ev, json_string("*"));
    } else {
        const char *p = h->events + 1;
        while (*p) {
            size_t l = strcspn(p, ",");
            if (l)
                json_array_append_new(ev, json_stringn(p, l));
            p += l + (p[l] == ',');
        }
    }
    json_t *j = json_pack("{s:I,s:s,s:o,s:s}", "id", (json_int_t)h->id, "url", h->url, "events", ev, "status",
                          h->disabled ? "disabled" : "active");
    if (created_at)
        json_object_set_new(j, "createdAt", api_time(created_at));
    return j;
}

/* events[] as ",a,b," or "*"; -1 with err */
static int parse_events(json_t *v, char *out, size_t outlen, char *err, size_t errlen)
{
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 8) {
        snprintf(err, errlen, "events must be a list of 1 to 8 event types, or [\"*\"]");
        return -1;
    }
    size_t i, used = 0;
    json_t *e;
    out[0] = '\0';
    json_array_foreach(v, i, e) {
        const char *t = json_is_string(e) ? json_string_value(e) : NULL;
        if (t && strcmp(t, "*") == 0) {
            if (json_array_size(v) != 1) {
                snprintf(err, errlen, "events: \"*\" stands alone");
                return -1;
            }
            snprintf(out, outlen, "*");
            return 0;
        }
        if (!t || !events_type_known(t, strlen(t))) {
            snprintf(err, errlen, "events[%zu] must be one of session.status, session.qr, message.status, "
                     "message.received, call.status, run.status, proxy.status, alert or *", i);
            return -1;
        }
        used += (size_t)snprintf(out + used, outlen - used, "%s%s,", used ? "" : ",", t);
    }
    return 0;
}

/* the webhook leaves memory (a reply still in flight finds no hook and stops) */
static void forget(int64_t id)
{
    for (struct hook **p = &hooks; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            struct hook *h = *p;
            *p = h->next;
            hook_free(h);
            return;
        }
    }
}

/* memory follows the row: a webhook added is taken back when its batch fails to
 * commit, one deleted goes once the delete is committed */
static void added_cb(void *arg, int ok)
{
    if (!ok)
        forget(*(int64_t *)arg);
    free(arg);
}

static void deleted_cb(void *arg, int ok)
{
    if (ok)
        forget(*(int64_t *)arg);
    free(arg);
}

static void after_commit_id(void (*fn)(void *arg, int ok), int64_t id)
{
    int64_t *p = xmalloc(sizeof *p);
    *p = id;
    store_after_commit(fn, p);
}

static void create_hook(struct http_req *r)
{
    json_t *body = http_json_object(r);
    if (!body)
        return;
    static const char *const keys[] = {"url", "events", "secret", NULL};
    char err[256], events[EVENTS_FIELD_MAX], secret[140];
    json_t *u = json_object_get(body, "url"), *sec = json_object_get(body, "secret");
    int64_t tenant = http_tenant(r);
    int n = 0;
    for (struct hook *h = hooks; h; h = h->next)
        n += h->tenant_id == tenant;
    if (!apiparse_only_keys(body, keys, err, sizeof err) ||
        outbox_url_ok(json_string_value(u), (int)cfg->webhook_allow_private, err, sizeof err) < 0 ||
        parse_events(json_object_get(body, "events"), events, sizeof events, err, sizeof err) < 0) {
        json_decref(body);
        http_reply_error(r, 400, "INVALID_REQUEST", "%s", err);
        return;
    }
    if (sec && !json_is_null(sec)) {
        const char *v = json_is_string(sec) ? json_string_value(sec) : "";
        size_t l = strlen(v);
        if (l < 16 || l > 128 || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != l) {
            json_decref(body);
            http_reply_error(r, 400, "INVALID_REQUEST", "secret must be 16 to 128 letters, digits, '_', '-' or '.'");
            return;
        }
        snprintf(secret, sizeof secret, "%s", v);
    } else {
        char hex[65];
        if (hmac_random_hex(hex, 24) < 0) {
            json_decref(body);
            http_reply_error(r, 500, "INTERNAL", "no randomness for a secret");
            return;
        }
        snprintf(secret, sizeof secret, "whsec_%s", hex);
    }
    if (n >= HOOKS_PER_TENANT) {
        json_decref(body);
        http_reply_error(r, 409, "TOO_MANY_WEBHOOKS", "a tenant may have at most %d webhooks", HOOKS_PER_TENANT);
        return;
    }
    struct store_hook sh = {0, tenant, json_string_value(u), events, secret, "active", util_now_ms()};
    if (store_hook_insert(&sh) != STORE_OK) {
        json_decref(body);
        http_reply_error(r, 500, "STORE_ERROR", "the webhook could not be stored");
        return;
    }
    struct hook *h = hook_add(&sh); /* before the body goes: sh borrows its url */
    json_decref(body);
    after_commit_id(added_cb, h->id);
    json_t *j = hook_json(h, sh.created_at);
    json_object_set_new(j, "secret", json_string(secret)); /* once: it is never shown again */
    memset(secret, 0, sizeof secret);
    http_reply_json(r, 201, j);
}

/* the caller's webhook {id}, or NULL after a 404 */
static struct hook *tenant_hook(struct http_req *r)
{
    long id;
    struct hook *h = NULL;
    if (util_parse_count(http_param(r, 0), 1, 999999999999L, &id) == 0)
        h = hook_of(id);
    if (!h || h->tenant_id != http_tenant(r)) {
        http_reply_error(r, 404, "WEBHOOK_NOT_FOUND", "no webhook %.40s", http_param(r, 0));
        return NULL;
    }
    return h;
}

static void list_hooks(struct http_req *r)
{
    json_t *list = json_array();
    for (struct hook *h = hooks; h; h = h->next)
        if (h->tenant_id == http_tenant(r))
            json_array_insert_new(list, 0, hook_json(h, h->created_at));
    http_reply_json(r, 200, json_pack("{s:o}", "webhooks", list));
}

static void delete_hook(struct http_req *r)
{
    struct hook *h = tenant_hook(r);
    if (!h)
        return;
    if (store_hook_delete(h->id) != STORE_OK) {
        http_reply_error(r, 500, "STORE_ERROR", "the webhook could not be deleted");
        return;
    }
    after_commit_id(deleted_cb, h->id);
    http_reply_json(r, 200, json_pack("{s:I,s:b}", "id", (json_int_t)h->id, "deleted", 1));
}

static json_t *delivery_json(const struct delivery *d)
{
    return json_pack("{s:I,s:I,s:s,s:s,s:i,s:i,s:o,s:o,s:o,s:o}", "id", (json_int_t)d->id, "eventId",
                     (json_int_t)d->event_id, "eventType", d->event_type, "status", d->status, "attempts", d->attempts,
                     "lastStatus", d->last_status, "lastError", d->last_error[0] ? json_string(d->last_error) : json_null(),
                     "nextAt", strcmp(d->status, "pending") == 0 ? api_time(d->next_at) : json_null(), "createdAt",
                     api_time(d->created_at), "doneAt", api_time(d->done_at));
}

struct dpage {
    json_t *items;
    int64_t last;
    int n;
};

static void delivery_row(const struct delivery *d, void *arg)
{
    struct dpage *p = arg;
    json_array_append_new(p->items, delivery_json(d));
    p->last = d->id;
    p->n++;
}

static void list_deliveries(struct http_req *r)
{
    struct hook *h = tenant_hook(r);
    if (!h)
        return;
    const char *st = http_query(r, "status"), *l = http_query(r, "limit"), *c = http_query(r, "cursor");
    long limit = 100, cursor = 0;
    if ((st && strcmp(st, "pending") != 0 && strcmp(st, "delivered") != 0 && strcmp(st, "dead") != 0) ||
        (l && util_parse_count(l, 1, 1000, &limit) < 0) || (c && util_parse_count(c, 1, 999999999999L, &cursor) < 0)) {
        http_reply_error(r, 400, "INVALID_REQUEST",
                         "status must be pending, delivered or dead; limit 1 to 1000; cursor a nextCursor");
        return;
    }
    struct dpage p = {json_array(), 0, 0};
    store_delivery_list(h->id, st, cursor, (int)limit, delivery_row, &p);
    char next[24];
    snprintf(next, sizeof next, "%lld", (long long)p.last);
    http_reply_json(r, 200, json_pack("{s:o,s:o}", "deliveries", p.items, "nextCursor",
                                      p.n == limit ? json_string(next) : json_null()));
}

static void replay(struct http_req *r)
{
    struct hook *h = tenant_hook(r);
    if (!h)
        return;
    long id;
    struct delivery d = {0};
    if (util_parse_count(http_param(r, 1), 1, 999999999999L, &id) < 0 || store_delivery_get(id, &d) != STORE_OK ||
        d.webhook_id != h->id) {
        free(d.payload);
        http_reply_error(r, 404, "DELIVERY_NOT_FOUND", "no delivery %.40s for this webhook", http_param(r, 1));
        return;
    }
    if (strcmp(d.status, "pending") == 0 && !h->disabled) {
        free(d.payload);
        http_reply_error(r, 409, "ALREADY_PENDING", "the delivery is pending already");
        return;
    }
    /* the same delivery id again, so that a receiver that got it before recognises it; a
     * fresh retry window from now */
    snprintf(d.status, sizeof d.status, "pending");
    d.next_at = util_now_ms();
    d.retry_from = d.next_at;
    d.attempts = 0; /* the back-off starts again too */
    d.done_at = 0;
    store_delivery_save(&d);
    json_t *j = delivery_json(&d);
    free(d.payload);
    if (h->disabled) {
        h->disabled = 0; /* a replay is the operator's word that the endpoint is back */
        store_hook_set_status(h->id, "active");
    }
    h->dirty = 1;
    if (!kick_queued) {
        kick_queued = 1;
        store_after_commit(kick_dirty, NULL);
    }
    http_reply_json(r, 202, j);
}

static const struct http_route routes[] = {
    {"POST", "/api/webhooks", AUTH_TENANT, create_hook},
    {"GET", "/api/webhooks", AUTH_TENANT, list_hooks},
    {"DELETE", "/api/webhooks/{id}", AUTH_TENANT, delete_hook},
    {"GET", "/api/webhooks/{id}/deliveries", AUTH_TENANT, list_deliveries},
    {"POST", "/api/webhooks/{id}/deliveries/{d}/replay", AUTH_TENANT, replay},
    {NULL, NULL, 0, NULL},
};

void outbox_register(void) { http_add_routes(routes); }

/* ---- start-up, pruning, shutdown ---- */

static void load_hook(const struct store_hook *sh, void *arg) { hook_add(sh); }

static void prune_job(void)
{
    int64_t now = util_now_ms();
    int n = store_delivery_prune(now - DELIVERED_KEEP_MS, now - DEAD_KEEP_MS);
    if (n > 0)
        log_info("outbox", "pruned delivered deliveries count=%d", n);
}

int outbox_init(struct event_base *base, const struct config *c, char *err, size_t errlen)
{
    evbase = base;
    cfg = c;
    if (store_hook_load(load_hook, NULL) < 0) {
        snprintf(err, errlen, "outbox: cannot load the webhooks");
        return -1;
    }
    /* deliveries left pending by the last run go out now, under their own ids */
    for (struct hook *h = hooks; h; h = h->next)
        kick(h);
    cron_every("deliveries.prune", PRUNE_MS, 0, prune_job);
    return 0;
}

void outbox_shutdown(void)
{
    while (hooks) {
        struct hook *h = hooks;
        hooks = h->next;
        hook_free(h);
    }
}
