/* pool: the proxy pool's state (proxies, sticky phone->proxy bindings, load counts),
 * loaded from and written through the store. The choice rules are in proxy.c.
 * Proxies are owned by the pool; pointers stay valid until pool_delete. */
#ifndef SB_POOL_H
#define SB_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct config;

/* loads the pool and adds PROXY_URL_<n> values not yet known. 0 or -1 with err */
int pool_init(const struct config *c, char *err, size_t errlen);
void pool_free(void);

struct proxy *pool_get(int64_t id);
/* all proxies, by id; borrowed */
struct proxy *const *pool_all(size_t *n);
/* 1 when the tenant can see and use p (its own or the shared pool) */
int pool_visible(const struct proxy *p, int64_t tenant_id);
/* proxies the tenant can use at all (ok or bad); 0 means direct connections */
int pool_usable_count(int64_t tenant_id);

enum pool_add_rc { POOL_ADDED = 0, POOL_INVALID = -1, POOL_EXISTS = -2, POOL_ERROR = -3 };
/* validates and adds; *out is the new proxy, or the existing one with POOL_EXISTS */
int pool_add(int64_t tenant_id, const char *url, const char *source, struct proxy **out,
             char *err, size_t errlen);
int pool_delete(struct proxy *p);
/* drops p from memory only (its row was rolled back) */
void pool_forget(struct proxy *p);
/* the tenant's proxy with exactly this URL, or NULL */
struct proxy *pool_find(int64_t tenant_id, const char *url);
int pool_mark_bad(struct proxy *p, const char *error, int64_t now_ms);
int pool_reset(struct proxy *p);

/* least-loaded ok proxy with room for the tenant, or NULL */
struct proxy *pool_pick(int64_t tenant_id, int64_t exclude_id);
/* 1 when p is ok and has room for one more session */
int pool_has_room(const struct proxy *p);
void pool_adjust(int64_t proxy_id, int delta);

/* the proxy a phone is bound to, or 0 */
int64_t pool_binding(int64_t tenant_id, const char *phone);
int pool_bind(int64_t tenant_id, const char *phone, int64_t proxy_id);

int pool_max_per_proxy(void);

#endif
