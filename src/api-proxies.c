/* api-proxies: /api/proxies. The admin manages the shared pool; a tenant sees the shared
 * pool (masked) and manages its own proxies. URLs are always masked. */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "apiparse.h"
#include "http.h"
#include "pool.h"
#include "proxy.h"
#include "session.h"
#include "util.h"

static json_t *proxy_json(const struct proxy *p)
{
    char m[300];
    proxy_mask(p->url, m, sizeof m);
    return json_pack("{s:I,s:s,s:s,s:i,s:i,s:b,s:s,s:o,s:o,s:o}", "id", (json_int_t)p->id, "url", m,
                     "status", p->status == PROXY_OK ? "ok" : "bad", "sessions", p->nsessions, "max",
                     pool_max_per_proxy(), "shared", p->tenant_id == 0, "source", p->source,
                     "lastError", p->last_error[0] ? json_string(p->last_error) : json_null(), "badAt",
                     api_time(p->bad_at), "createdAt", api_time(p->created_at));
}

static void list_proxies(struct http_req *r)
{
    size_t n;
    struct proxy *const *all = pool_all(&n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        if (http_is_admin(r) || pool_visible(all[i], http_tenant(r)))
            json_array_append_new(arr, proxy_json(all[i]));
    int usable = pool_usable_count(http_tenant(r));
    http_reply_json(r, 200, json_pack("{s:o,s:s}", "proxies", arr, "mode", usable ? "pool" : "direct"));
}

/* the proxy named in the path if the caller may change it; else answers 404 */
static struct proxy *owned_proxy(struct http_req *r)
{
    long id;
    struct proxy *p = NULL;
    if (util_parse_count(http_param(r, 0), 1, 1L << 53, &id) == 0)
        p = pool_get(id);
    if (!p || (!http_is_admin(r) && p->tenant_id != http_tenant(r))) {
        http_reply_error(r, 404, "PROXY_NOT_FOUND", "no proxy %.20s that you manage", http_param(r, 0));
        return NULL;
    }
    return p;
}

static void add_proxy(struct http_req *r)
{
    json_t *body = http_json_object(r);
    if (!body)
        return;
    const char *url;
    char err[256];
    int prc = apiparse_proxy(body, &url, err, sizeof err);
    if (prc < 0) {
        json_decref(body);
        http_reply_error(r, 400, apiparse_code(prc), "%s", err);
        return;
    }
    struct proxy *p;
    /* the admin adds to the shared pool; a tenant adds a proxy only it uses */
    int rc = pool_add(http_is_admin(r) ? 0 : http_tenant(r), url, "api", &p, err, sizeof err);
    json_decref(body);
    if (rc == POOL_EXISTS) {
        http_reply_error(r, 409, "PROXY_EXISTS", "this proxy is already in the pool as id %lld", (long long)p->id);
        return;
    }
    if (rc != POOL_ADDED) {
        http_reply_error(r, rc == POOL_INVALID ? 400 : 500, rc == POOL_INVALID ? "INVALID_PROXY" : "STORE_ERROR",
                         "%s", err);
        return;
    }
    session_retry_waiting();
    http_reply_json(r, 201, proxy_json(p));
}

static void delete_proxy(struct http_req *r)
{
    struct proxy *p = owned_proxy(r);
    if (!p)
        return;
    const char *force = http_query(r, "force");
    if (force && strcmp(force, "true") != 0 && strcmp(force, "false") != 0) {
        http_reply_error(r, 400, "INVALID_REQUEST", "force must be true or false");
        return;
    }
    int n = session_count_on_proxy(p->id);
    if (n > 0 && !(force && strcmp(force, "true") == 0)) {
        http_reply_error(r, 409, "PROXY_IN_USE",
                         "proxy %lld carries %d sessions; delete with ?force=true to move them", (long long)p->id, n);
        return;
    }
    long long id = (long long)p->id;
    session_move_off_proxy(p, "proxy deleted");
    if (pool_delete(p) < 0) {
        http_reply_error(r, 500, "STORE_ERROR", "the proxy could not be deleted");
        return;
    }
    session_retry_waiting();
    http_reply_json(r, 200, json_pack("{s:I,s:b,s:i}", "id", (json_int_t)id, "deleted", 1, "movedSessions", n));
}

static void reset_proxy(struct http_req *r)
{
    struct proxy *p = owned_proxy(r);
    if (!p)
        return;
    if (pool_reset(p) < 0) {
        http_reply_error(r, 500, "STORE_ERROR", "the proxy could not be reset");
        return;
    }
    session_retry_waiting();
    http_reply_json(r, 200, proxy_json(p));
}

static const struct http_route routes[] = {
    {"GET", "/api/proxies", AUTH_TENANT, list_proxies},
    {"POST", "/api/proxies", AUTH_TENANT, add_proxy},
    {"DELETE", "/api/proxies/{id}", AUTH_TENANT, delete_proxy},
    {"POST", "/api/proxies/{id}/reset", AUTH_TENANT, reset_proxy},
    {NULL, NULL, 0, NULL},
};

void api_proxies_register(void) { http_add_routes(routes); }
