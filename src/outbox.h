/* outbox: customer webhooks. Each event a subscription wants becomes a delivery row in the
 * same store batch as the event (nothing is lost between commit and send); deliveries go
 * out signed (X-Switchboard-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>),
 * one at a time per endpoint in event order (so one slow endpoint delays only itself),
 * retried with exponential back-off and jitter for WEBHOOK_RETRY_FOR_MS, then kept as dead
 * letters that can be replayed. 2xx delivers; 410 disables the subscription. */
#ifndef SB_OUTBOX_H
#define SB_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct event_base;

int outbox_init(struct event_base *base, const struct config *cfg, char *err, size_t errlen);
void outbox_shutdown(void);
void outbox_register(void);

/* 1 when a subscription of the tenant wants events of this type */
int outbox_wants(int64_t tenant_id, const char *type);
/* an event was recorded (in the current batch): queues its deliveries; payload borrowed */
void outbox_on_event(int64_t tenant_id, int64_t event_id, const char *type, const char *payload);

/* deliveries delivered, tries that failed, deliveries dead since start */
void outbox_counts(uint64_t *delivered, uint64_t *failed_tries, uint64_t *dead);

/* "t=<unix>,v1=<hex>" of body signed with secret at time t; out holds 100 bytes. Pure. */
void outbox_signature(const char *secret, long t, const char *body, size_t len, char *out, size_t outlen);
/* 0 when url is an http(s) URL a webhook may use (no loopback or private address unless
 * allow_private), -1 with err. Pure except for the host's literal address. */
int outbox_url_ok(const char *url, int allow_private, char *err, size_t errlen);

#endif
