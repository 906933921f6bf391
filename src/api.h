/* api: route groups of the HTTP API. Each registers its static route table. */
#ifndef SB_API_H
#define SB_API_H

#include <jansson.h>

struct config;
struct session;

void api_sessions_register(const struct config *cfg);
void api_proxies_register(void);
void api_messages_register(void);
void api_calls_register(void);
/* last: its /{file} route takes what no other route does */
void api_web_register(const struct config *cfg);
void api_ops_register(const struct config *cfg);
void webhook_register(const struct config *cfg, const char *master_secret);

/* the public view of a session (no secrets) */
json_t *api_session_json(const struct session *s);
/* ISO-8601 string or JSON null for 0 */
json_t *api_time(long long ms);

/* counters from the worker webhook, for /metrics */
void webhook_metrics_each(void (*fn)(const char *type, unsigned long long n, void *arg), void *arg);
void api_ops_set_start_time(void);

#endif
