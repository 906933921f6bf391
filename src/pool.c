#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "alert.h"
#include "events.h"
#include "log.h"
#include "proxy.h"
#include "store.h"
#include "util.h"

static struct proxy **proxies;
static size_t nproxies, capproxies;
static struct binding *bindings;
static size_t nbindings, capbindings;
static int max_per_proxy = 4;

static struct proxy *push_proxy(const struct proxy *src)
{
    struct proxy *p = xcalloc(1, sizeof *p);
    *p = *src;
    p->url = xstrdup(src->url);
    p->nsessions = 0;
    if (nproxies == capproxies) {
        capproxies = capproxies ? capproxies * 2 : 16;
        proxies = xrealloc(proxies, capproxies * sizeof *proxies);
    }
    proxies[nproxies++] = p;
    return p;
}

static void load_proxy(const struct proxy *p, void *arg) { push_proxy(p); }

static void set_binding(int64_t tenant_id, const char *phone, int64_t proxy_id)
{
    for (size_t i = 0; i < nbindings; i++) {
        if (bindings[i].tenant_id == tenant_id && strcmp(bindings[i].phone, phone) == 0) {
            bindings[i].proxy_id = proxy_id;
            return;
        }
    }
    if (nbindings == capbindings) {
        capbindings = capbindings ? capbindings * 2 : 64;
        bindings = xrealloc(bindings, capbindings * sizeof *bindings);
    }
    struct binding *b = &bindings[nbindings++];
    memset(b, 0, sizeof *b);
    b->tenant_id = tenant_id;
    snprintf(b->phone, sizeof b->phone, "%s", phone);
    b->proxy_id = proxy_id;
}

static void load_binding(const struct binding *b, void *arg)
{
    set_binding(b->tenant_id, b->phone, b->proxy_id);
}

int pool_init(const struct config *c, char *err, size_t errlen)
{
    max_per_proxy = (int)c->max_sessions_per_proxy;
    if (store_proxy_load(load_proxy, NULL) < 0 || store_binding_load(load_binding, NULL) < 0) {
        snprintf(err, errlen, "pool: cannot load proxies from the store");
        return -1;
    }
    for (int i = 0; i < c->nproxy_urls; i++) {
        char why[160];
        struct proxy *p;
        int rc = pool_add(0, c->proxy_urls[i], "env", &p, why, sizeof why);
        if (rc == POOL_INVALID || rc == POOL_ERROR) {
            snprintf(err, errlen, "config: PROXY_URL_%d: %s", c->proxy_url_index[i], why);
            return -1;
        }
    }
    return 0;
}

void pool_free(void)
{
    for (size_t i = 0; i < nproxies; i++) {
        free(proxies[i]->url);
        free(proxies[i]);
    }
    free(proxies);
    free(bindings);
    proxies = NULL;
    bindings = NULL;
    nproxies = capproxies = nbindings = capbindings = 0;
}

struct proxy *pool_get(int64_t id)
{
    for (size_t i = 0; i < nproxies; i++)
        if (proxies[i]->id == id)
            return proxies[i];
    return NULL;
}

struct proxy *const *pool_all(size_t *n)
{
    *n = nproxies;
    return proxies;
}

int pool_visible(const struct proxy *p, int64_t tenant_id)
{
    return p->tenant_id == 0 || p->tenant_id == tenant_id;
}

int pool_usable_count(int64_t tenant_id)
{
    int n = 0;
    for (size_t i = 0; i < nproxies; i++)
        n += pool_visible(proxies[i], tenant_id);
    return n;
}

int pool_add(int64_t tenant_id, const char *url, const char *source, struct proxy **out,
             char *err, size_t errlen)
{
    struct proxy_url u;
    if (proxy_url_parse(url, &u, err, errlen) < 0)
        return POOL_INVALID;
    struct proxy *existing = pool_find(tenant_id, url);
    if (existing) {
        *out = existing;
        return POOL_EXISTS;
    }
    struct proxy p;
    memset(&p, 0, sizeof p);
    p.tenant_id = tenant_id;
    p.url = (char *)url;
    p.status = PROXY_OK;
    snprintf(p.source, sizeof p.source, "%s", source);
    p.created_at = util_now_ms();
    if (store_proxy_insert(&p) != STORE_OK) {
        snprintf(err, errlen, "the proxy could not be saved");
        return POOL_ERROR;
    }
    *out = push_proxy(&p);
    char masked[300];
    proxy_mask(url, masked, sizeof masked);
    log_info("pool", "proxy added id=%lld url=%s source=%s", (long long)p.id, masked, source);
    return POOL_ADDED;
}

struct proxy *pool_find(int64_t tenant_id, const char *url)
{
    for (size_t i = 0; i < nproxies; i++)
        if (proxies[i]->tenant_id == tenant_id && strcmp(proxies[i]->url, url) == 0)
            return proxies[i];
    return NULL;
}

int pool_delete(struct proxy *p)
{
    if (store_proxy_delete(p->id) != STORE_OK)
        return -1;
    log_info("pool", "proxy deleted id=%lld", (long long)p->id);
    pool_forget(p);
    return 0;
}

void pool_forget(struct proxy *p)
{
    /* the phones bound to it are unbound: its id may come back as another proxy */
    for (size_t i = 0; i < nbindings;) {
        if (bindings[i].proxy_id == p->id)
            bindings[i] = bindings[--nbindings];
        else
            i++;
    }
    for (size_t i = 0; i < nproxies; i++) {
        if (proxies[i] == p) {
            memmove(&proxies[i], &proxies[i + 1], (nproxies - i - 1) * sizeof *proxies);
            nproxies--;
            break;
        }
    }
    free(p->url);
    free(p);
}

/* proxy.status for its tenant (the shared pool's go to tenant default); masked, so that
 * the credentials never reach the event log */
static void proxy_event(const struct proxy *p)
{
    char masked[300];
    proxy_mask(p->url, masked, sizeof masked);
    events_emit(p->tenant_id ? p->tenant_id : 1, "proxy.status", NULL,
                json_pack("{s:I,s:s,s:s}", "proxyId", (json_int_t)p->id, "status",
                          p->status == PROXY_BAD ? "bad" : "ok", "proxy", masked));
}

int pool_mark_bad(struct proxy *p, const char *error, int64_t now_ms)
{
    int was_ok = p->status == PROXY_OK;
    p->status = PROXY_BAD;
    p->bad_at = now_ms;
    snprintf(p->last_error, sizeof p->last_error, "%s", error);
    util_utf8_fix(p->last_error);
    log_warn("pool", "proxy marked bad id=%lld error=\"%s\"", (long long)p->id, p->last_error);
    if (was_ok) {
        /* a failed re-check of a proxy already bad is no news */
        proxy_event(p);
        char masked[300], subject[32], text[400];
        proxy_mask(p->url, masked, sizeof masked);
        snprintf(subject, sizeof subject, "proxy %lld", (long long)p->id);
        snprintf(text, sizeof text, "proxy %lld (%.300s) marked bad", (long long)p->id, masked);
        alert_raise(p->tenant_id ? p->tenant_id : 1, ALERT_PROXY_BAD, subject, text);
    }
    return store_proxy_save(p) == STORE_OK ? 0 : -1;
}

int pool_reset(struct proxy *p)
{
    p->status = PROXY_OK;
    p->bad_at = 0;
    p->last_error[0] = '\0';
    log_info("pool", "proxy reset to ok id=%lld", (long long)p->id);
    proxy_event(p);
    return store_proxy_save(p) == STORE_OK ? 0 : -1;
}

struct proxy *pool_pick(int64_t tenant_id, int64_t exclude_id)
{
    int i = proxy_pick(proxies, nproxies, tenant_id, max_per_proxy, exclude_id);
    return i < 0 ? NULL : proxies[i];
}

int pool_has_room(const struct proxy *p)
{
    return p->status == PROXY_OK && p->nsessions < max_per_proxy;
}

void pool_adjust(int64_t proxy_id, int delta)
{
    struct proxy *p = proxy_id ? pool_get(proxy_id) : NULL;
    if (p)
        p->nsessions += delta;
}

int64_t pool_binding(int64_t tenant_id, const char *phone)
{
    for (size_t i = 0; i < nbindings; i++) {
        if (bindings[i].tenant_id == tenant_id && strcmp(bindings[i].phone, phone) == 0) {
            /* only a proxy that is still there and the tenant may use (a binding
             * stored before deletes took bindings along may name neither) */
            const struct proxy *p = pool_get(bindings[i].proxy_id);
            return p && pool_visible(p, tenant_id) ? p->id : 0;
        }
    }
    return 0;
}

int pool_bind(int64_t tenant_id, const char *phone, int64_t proxy_id)
{
    if (store_binding_set(tenant_id, phone, proxy_id) != STORE_OK)
        return -1;
    set_binding(tenant_id, phone, proxy_id);
    log_info("pool", "phone bound to proxy phone=%s proxy=%lld", phone, (long long)proxy_id);
    return 0;
}

int pool_max_per_proxy(void) { return max_per_proxy; }
