/* alert: operator alerts (SPEC §3) to Telegram (Bot API sendMessage) and to a generic JSON
 * alert webhook, and as `alert` events in the event log. Repeats of one kind for one
 * subject are folded within ALERT_FOLD_MS ("3 more in the last 10 min"); Telegram's 429
 * retry_after is honoured; a failing alert target never holds anything else up. The bot
 * token is used only in the request URL and never logged. */
#ifndef SB_ALERT_H
#define SB_ALERT_H

#include <stdint.h>

struct config;
struct event_base;

enum alert_kind {
    ALERT_CONNECTED,
    ALERT_DISCONNECTED,
    ALERT_PROXY_SWITCHED,
    ALERT_LOGGED_OUT,
    ALERT_SESSION_FAILED,
    ALERT_PROXY_BAD,
    ALERT_RUN_FINISHED,
    ALERT_BACKUP_FAILED,
    ALERT__COUNT
};

int alert_init(struct event_base *base, const struct config *cfg);
void alert_shutdown(void);

/* raises one alert about subject (e.g. "worker_3", "proxy 2", "run 7"); text borrowed */
void alert_raise(int64_t tenant_id, enum alert_kind kind, const char *subject, const char *text);

const char *alert_kind_name(enum alert_kind k);
/* sent, failed and folded counts, for /metrics */
void alert_counts(uint64_t *sent, uint64_t *failed, uint64_t *folded);

#endif
