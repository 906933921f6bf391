#include "config.h"
#include "httpio.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpio.h"
#include "optout.h"
#include "pacing.h"
#include "util.h"

extern char **environ;

#define O(f) offsetof(struct config, f)
#define KIB 1024L
#define MIB (1024L * 1024L)

const struct config_entry config_table[] = {
    {"API_KEY", CONFIG_STR, O(api_key), 0, 256, "", NULL, 1,
     "admin API key (tenant 'default'); generated and kept in DATA_DIR/api_key when empty"},
    {"WEBHOOK_SECRET", CONFIG_STR, O(webhook_secret), 0, 256, "", NULL, 1,
     "master secret the workers' signing keys derive from; generated when empty"},
    {"ORCH_HOST", CONFIG_STR, O(orch_host), 0, 255, "127.0.0.1", NULL, 0,
     "address the HTTP server binds to"},
    {"ORCH_PORT", CONFIG_INT, O(orch_port), 1, 65535, "3000", NULL, 0, "HTTP port"},
    {"DATA_DIR", CONFIG_STR, O(data_dir), 1, 4096, "./data", NULL, 0,
     "where the database, generated secrets and sessions live"},
    {"DATABASE_URL", CONFIG_STR, O(database_url), 0, 4096, "", NULL, 1,
     "sqlite:PATH (default DATA_DIR/switchboard.db)"},
    {"SESSIONS_DIR", CONFIG_STR, O(sessions_dir), 0, 4096, "", NULL, 0,
     "one auth directory per session (default DATA_DIR/sessions)"},
    {"RUNNER", CONFIG_ENUM, O(runner), 0, 0, "process", "process|docker", 0,
     "worker backend"},
    {"WORKER_COMMAND", CONFIG_STR, O(worker_command), 0, 4096, "", NULL, 0,
     "RUNNER=process: worker program and arguments, split on spaces (default: node "
     "workers/baileys/src/main.js of the source tree the daemon was built in)"},
    {"DOCKER_SOCKET", CONFIG_STR, O(docker_socket), 1, 107, "/var/run/docker.sock", NULL, 0,
     "RUNNER=docker: the engine's unix socket"},
    {"WORKER_IMAGE", CONFIG_STR, O(worker_image), 1, 255, "switchboard-baileys-worker:dev", NULL, 0,
     "RUNNER=docker: the worker image"},
    {"WORKER_NETWORK", CONFIG_STR, O(worker_network), 1, 128, "host", NULL, 0,
     "RUNNER=docker: 'host', or a network where the daemon reaches wa_session_<id>:8080"},
    {"WORKER_MEMORY_MB", CONFIG_INT, O(worker_memory_mb), 0, 1048576, "512", NULL, 0,
     "RUNNER=docker: memory limit of one worker (0 = none)"},
    {"WORKER_CPU_MILLICORES", CONFIG_INT, O(worker_cpu_millicores), 0, 1024000, "1000", NULL, 0,
     "RUNNER=docker: CPU limit of one worker, 1000 = one CPU (0 = none)"},
    {"DOCKER_SESSIONS_HOST_DIR", CONFIG_STR, O(docker_sessions_host_dir), 0, 4096, "", NULL, 0,
     "RUNNER=docker: SESSIONS_DIR as the engine's host sees it, when the daemon runs in a "
     "container with other paths (default: the same path)"},
    {"WORKER_WEBHOOK_URL", CONFIG_STR, O(worker_webhook_url), 0, 2048, "", NULL, 0,
     "URL workers post events to (default http://127.0.0.1:ORCH_PORT/webhook)"},
    {"MAX_WORKERS", CONFIG_INT, O(max_workers), 1, 100000, "100", NULL, 0,
     "most workers running or waiting to start"},
    {"MAX_SESSIONS_PER_PROXY", CONFIG_INT, O(max_sessions_per_proxy), 1, 1000, "4", NULL, 0,
     "sessions one proxy may carry"},
    {"MAX_SESSIONS_PER_PHONE", CONFIG_INT, O(max_sessions_per_phone), 1, 100, "4", NULL, 0,
     "sessions (linked devices) per phone number"},
    {"PROVISIONING_INTERVAL_MS", CONFIG_INT, O(provisioning_interval_ms), 0, 3600000, "2000",
     NULL, 0, "at most one worker start per this interval"},
    {"MONITOR_INTERVAL_MS", CONFIG_INT, O(monitor_interval_ms), 100, 3600000, "30000", NULL, 0,
     "housekeeping period (worker log caps, gauges)"},
    {"WATCHDOG_INTERVAL_MS", CONFIG_INT, O(watchdog_interval_ms), 100, 3600000, "60000", NULL,
     0, "how often running workers are checked"},
    {"PING_TIMEOUT_MS", CONFIG_INT, O(ping_timeout_ms), 1000, 86400000, "180000", NULL, 0,
     "a running worker silent for this long is restarted"},
    {"WORKER_HEALTH_TIMEOUT_MS", CONFIG_INT, O(worker_health_timeout_ms), 100, 60000, "5000",
     NULL, 0, "timeout of the watchdog's GET /health to a worker"},
    {"WORKER_START_GRACE_MS", CONFIG_INT, O(worker_start_grace_ms), 0, 600000, "10000", NULL, 0,
     "a worker younger than this is not health-checked yet"},
    {"WORKER_STOP_GRACE_MS", CONFIG_INT, O(worker_stop_grace_ms), 0, 60000, "5000", NULL, 0,
     "SIGTERM, then SIGKILL after this"},
    {"WORKER_LOG_MAX_BYTES", CONFIG_INT, O(worker_log_max_bytes), 4 * KIB, 1024 * MIB, "1048576",
     NULL, 0, "cap of each worker's log file (one older copy is kept)"},
    {"WORKER_PORT_MIN", CONFIG_INT, O(worker_port_min), 1024, 65535, "20000", NULL, 0,
     "first port of the range workers listen on (keep it below the kernel's ephemeral range)"},
    {"WORKER_PORT_MAX", CONFIG_INT, O(worker_port_max), 1024, 65535, "29999", NULL, 0,
     "last port of the workers' range; it must hold MAX_WORKERS ports"},
    {"RESTART_BACKOFF_MIN_MS", CONFIG_INT, O(restart_backoff_min_ms), 10, 600000, "1000", NULL,
     0, "first restart delay; doubles each time"},
    {"RESTART_BACKOFF_MAX_MS", CONFIG_INT, O(restart_backoff_max_ms), 10, 86400000, "300000",
     NULL, 0, "longest restart delay"},
    {"MAX_FAILED_STARTS", CONFIG_INT, O(max_failed_starts), 1, 1000, "10", NULL, 0,
     "starts in a row that never stay connected before the session is failed"},
    {"RESTART_STABLE_MS", CONFIG_INT, O(restart_stable_ms), 0, 86400000, "60000", NULL, 0,
     "a connection that lasts this long ends the failed-start streak; a shorter one counts as failed"},
    {"PROXY_RECHECK_MS", CONFIG_INT, O(proxy_recheck_ms), 0, 86400000, "300000", NULL, 0,
     "a bad proxy is tried again (a SOCKS5 handshake) this long after it failed; 0 = only by API"},
    {"PAIR_WAIT_MS", CONFIG_INT, O(pair_wait_ms), 0, 120000, "20000", NULL, 0,
     "how long POST /api/accounts/pair waits for the pairing code"},
    {"HTTP_THREADS", CONFIG_INT, O(http_threads), 1, HTTPIO_THREADS_MAX, "2", NULL, 0,
     "threads that accept HTTP connections, parse requests and write answers; routing, the handlers and the "
     "store stay on the main loop"},
    {"HTTP_MAX_BODY", CONFIG_INT, O(http_max_body), 1 * KIB, 16 * MIB, "1048576", NULL, 0,
     "largest request body accepted"},
    {"WORKER_MAX_EVENT_BYTES", CONFIG_INT, O(worker_max_event_bytes), 1 * KIB, 1 * MIB, "65536",
     NULL, 0, "largest worker event accepted"},
    {"LOG_LEVEL", CONFIG_ENUM, O(log_level), 0, 0, "info", "debug|info|warn|error", 0,
     "log verbosity"},
    {"TIMEZONE", CONFIG_STR, O(timezone), 1, 64, "UTC", NULL, 0,
     "IANA zone (e.g. Asia/Jerusalem) that defines 'today' for daily limits and the active hours"},
    {"SQLITE_SYNCHRONOUS", CONFIG_ENUM, O(sqlite_synchronous), 0, 0, "FULL", "FULL|NORMAL", 0,
     "FULL: every commit is fsync'd (survives power loss); NORMAL: survives a crash of the daemon only"},
    {"PACING_COLD", CONFIG_STR, O(pacing_cold), 1, 64, "20,5,5000,3000,09:00-21:00", NULL, 0,
     "cold accounts: per_day,per_minute,gap_base_ms,gap_jitter_ms,HH:MM-HH:MM (0 = no cap, "
     "00:00-24:00 = always)"},
    {"PACING_WARM", CONFIG_STR, O(pacing_warm), 1, 64, "100,15,3000,2000,08:00-22:00", NULL, 0,
     "warm accounts, the same form"},
    {"PACING_HOT", CONFIG_STR, O(pacing_hot), 1, 64, "500,30,2000,2000,07:00-23:00", NULL, 0,
     "hot accounts, the same form"},
    {"TRUST_WARM_DAYS", CONFIG_INT, O(trust_warm_days), 0, 3650, "3", NULL, 0,
     "account age (days since the first connection) that makes it warm"},
    {"TRUST_HOT_DAYS", CONFIG_INT, O(trust_hot_days), 0, 3650, "14", NULL, 0,
     "account age that makes it hot (at least TRUST_WARM_DAYS)"},
    {"TYPING_MIN_MS", CONFIG_INT, O(typing_min_ms), 0, 60000, "1000", NULL, 0,
     "shortest 'typing…' before a send"},
    {"TYPING_PER_CHAR_MS", CONFIG_INT, O(typing_per_char_ms), 0, 1000, "50", NULL, 0,
     "'typing…' added per character of the message"},
    {"TYPING_MAX_MS", CONFIG_INT, O(typing_max_ms), 0, 60000, "8000", NULL, 0,
     "longest 'typing…' (0 = none)"},
    {"MESSAGE_TTL_MS", CONFIG_INT, O(message_ttl_ms), 1000, 604800000, "86400000", NULL, 0,
     "a message not sent within this long is expired (a send may set its own ttlSeconds)"},
    {"MESSAGE_MAX_ATTEMPTS", CONFIG_INT, O(message_max_attempts), 1, 100, "5", NULL, 0,
     "dispatches of one message (retryable failures) before it is failed"},
    {"MESSAGE_RETRY_MS", CONFIG_INT, O(message_retry_ms), 100, 3600000, "30000", NULL, 0,
     "first retry delay after a retryable failure; doubles each time"},
    {"SEND_CONFIRM_MS", CONFIG_INT, O(send_confirm_ms), 100, 3600000, "60000", NULL, 0,
     "a worker that took a send but reported neither MESSAGE_SENT nor MESSAGE_FAILED is asked "
     "again (same messageId) after this"},
    {"SEND_TIMEOUT_MS", CONFIG_INT, O(send_timeout_ms), 100, 120000, "15000", NULL, 0,
     "timeout of the POST /send to a worker (typing time is added)"},
    {"TWILIO_ACCOUNT_SID", CONFIG_STR, O(twilio_account_sid), 0, 64, "", NULL, 0,
     "Twilio account SID (AC...); calls are off while it is empty"},
    {"TWILIO_AUTH_TOKEN", CONFIG_STR, O(twilio_auth_token), 0, 128, "", NULL, 1,
     "Twilio auth token: API calls and the X-Twilio-Signature check of status callbacks"},
    {"TWILIO_FROM", CONFIG_STR, O(twilio_from), 0, 32, "", NULL, 0, "caller id of outbound calls (+E.164)"},
    {"TWILIO_API_BASE", CONFIG_STR, O(twilio_api_base), 1, 512, "https://api.twilio.com", NULL, 0,
     "Twilio REST API base URL (a fake's URL in tests)"},
    {"TWILIO_TWIML_URL", CONFIG_STR, O(twilio_twiml_url), 0, 2048, "", NULL, 0,
     "Url of every created call: where Twilio fetches the call's TwiML"},
    {"PUBLIC_URL", CONFIG_STR, O(public_url), 0, 2048, "", NULL, 0,
     "the daemon's address as Twilio reaches it; status callbacks go to PUBLIC_URL/webhook/call_status "
     "(default http://127.0.0.1:ORCH_PORT)"},
    {"CALL_CONCURRENCY", CONFIG_INT, O(call_concurrency), 1, 1000, "3", NULL, 0,
     "most calls of one tenant that are dialing, ringing or in progress at once"},
    {"TWILIO_CPS", CONFIG_INT, O(twilio_cps), 0, 1000, "1", NULL, 0,
     "new calls per second Twilio allows the account (0 = no spacing)"},
    {"TWILIO_TIMEOUT_MS", CONFIG_INT, O(twilio_timeout_ms), 100, 120000, "10000", NULL, 0,
     "timeout of one request to Twilio"},
    {"CALL_RING_TIMEOUT_S", CONFIG_INT, O(call_ring_timeout_s), 5, 600, "30", NULL, 0,
     "seconds a call rings before no-answer (Twilio's Timeout)"},
    {"CALL_TIME_LIMIT_S", CONFIG_INT, O(call_time_limit_s), 1, 86400, "14400", NULL, 0,
     "longest call (Twilio's TimeLimit)"},
    {"CALL_SETTLE_MARGIN_MS", CONFIG_INT, O(call_settle_margin_ms), 0, 86400000, "60000", NULL, 0,
     "a call without its final callback this long after ring timeout + time limit is fetched from Twilio"},
    {"CALL_WATCHDOG_MS", CONFIG_INT, O(call_watchdog_ms), 100, 3600000, "30000", NULL, 0,
     "how often calls waiting for their final callback are checked"},
    {"CALL_RETRY_ATTEMPTS", CONFIG_INT, O(call_retry_attempts), 0, 10, "0", NULL, 0,
     "calls again after busy or no-answer (0 = no retry)"},
    {"CALL_RETRY_DELAY_MS", CONFIG_INT, O(call_retry_delay_ms), 0, 86400000, "600000", NULL, 0,
     "wait before such a retry"},
    {"CALL_HOURS", CONFIG_STR, O(call_hours), 1, 16, "08:00-21:00", NULL, 0,
     "calling hours HH:MM-HH:MM in the lead's timezone (else TIMEZONE); 00:00-24:00 = always"},
    {"CALL_CREATE_TRIES", CONFIG_INT, O(call_create_tries), 1, 10, "3", NULL, 0,
     "tries to create one call when Twilio answers 5xx or not at all (the call list is checked "
     "before each new try)"},
    {"CALL_STUCK_MS", CONFIG_INT, O(call_stuck_ms), 1000, 604800000, "7200000", NULL, 0,
     "POST /api/outbound/cleanup-stuck-jobs settles calls older than this"},
    {"CALL_START_WAIT_MS", CONFIG_INT, O(call_start_wait_ms), 0, 120000, "15000", NULL, 0,
     "how long a start of 1-CALL_CONCURRENCY leads waits for their calls to be created"},
    {"EVENTS_MAX_AGE_MS", CONFIG_INT, O(events_max_age_ms), 60000, 31536000000L, "604800000", NULL, 0,
     "events older than this are pruned from the event log"},
    {"EVENTS_MAX", CONFIG_INT, O(events_max), 1000, 100000000, "1000000", NULL, 0,
     "the event log keeps at most this many of the newest events"},
    {"WEBHOOK_ALLOW_PRIVATE", CONFIG_INT, O(webhook_allow_private), 0, 1, "0", NULL, 0,
     "1 lets customer webhooks point at loopback and private addresses"},
    {"WEBHOOK_TIMEOUT_MS", CONFIG_INT, O(webhook_timeout_ms), 100, 120000, "10000", NULL, 0,
     "timeout of one customer webhook delivery"},
    {"WEBHOOK_RETRY_BASE_MS", CONFIG_INT, O(webhook_retry_base_ms), 10, 3600000, "5000", NULL, 0,
     "first retry delay of a failed delivery; doubles each try (at most 1 h apart, 80-120 % jitter)"},
    {"WEBHOOK_RETRY_FOR_MS", CONFIG_INT, O(webhook_retry_for_ms), 100, 604800000, "86400000", NULL, 0,
     "a delivery still failing this long after its event (or its last replay) becomes a dead letter"},
    {"TELEGRAM_BOT_TOKEN", CONFIG_STR, O(telegram_bot_token), 0, 128, "", NULL, 1,
     "Telegram bot token for alerts (with TELEGRAM_CHAT_ID); never logged"},
    {"TELEGRAM_CHAT_ID", CONFIG_STR, O(telegram_chat_id), 0, 64, "", NULL, 0, "the chat alerts go to"},
    {"TELEGRAM_API_BASE", CONFIG_STR, O(telegram_api_base), 1, 512, "https://api.telegram.org", NULL, 0,
     "Telegram Bot API base URL (a fake's URL in tests)"},
    {"ALERT_WEBHOOK_URL", CONFIG_STR, O(alert_webhook_url), 0, 2048, "", NULL, 0,
     "a URL that gets every alert as JSON {kind, subject, text, tenant, at}"},
    {"ALERT_FOLD_MS", CONFIG_INT, O(alert_fold_ms), 1000, 86400000, "600000", NULL, 0,
     "repeats of one alert for one subject within this window are folded into one line"},
    {"BACKUPS_DIR", CONFIG_STR, O(backups_dir), 0, 4096, "", NULL, 0,
     "where backups of the sessions' auth state go (default DATA_DIR/backups)"},
    {"MAX_BACKUPS", CONFIG_INT, O(max_backups), 1, 1000, "7", NULL, 0, "backups kept; the oldest go first"},
    {"BACKUP_AT", CONFIG_STR, O(backup_at), 0, 5, "03:00", NULL, 0,
     "local time (HH:MM, TIMEZONE) of the daily backup; empty for none"},
    {"WEB_DIR", CONFIG_STR, O(web_dir), 0, 4096, "", NULL, 0,
     "the dashboard's pages (default: web/ of the source tree the daemon was built in)"},
    {"DASHBOARD_SESSION_MS", CONFIG_INT, O(dashboard_session_ms), 60000, 2592000000L, "43200000", NULL, 0,
     "how long a dashboard login lasts"},
    {"OPT_OUT_WORDS", CONFIG_STR, O(opt_out_words), 0, 1024, "STOP,UNSUBSCRIBE,הסר,עצור", NULL, 0,
     "comma-separated words that, as a whole incoming message, suppress the sender"},
    {NULL, 0, 0, 0, 0, NULL, NULL, 0, NULL},
};

static char **str_field(struct config *c, const struct config_entry *e)
{
    return (char **)((char *)c + e->offset);
}

static long *int_field(struct config *c, const struct config_entry *e)
{
    return (long *)((char *)c + e->offset);
}

static int choice_ok(const char *choices, const char *v)
{
    size_t vl = strlen(v);
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == vl && strncmp(p, v, l) == 0)
            return 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    return 0;
}

static int set_entry(struct config *c, const struct config_entry *e, const char *value, char *err,
                     size_t errlen)
{
    switch (e->type) {
    case CONFIG_INT: {
        long v;
        if (util_parse_long(value, e->min, e->max, &v) < 0) {
            snprintf(err, errlen, "config: %s must be a whole number from %ld to %ld (got '%.40s')",
                     e->name, e->min, e->max, value);
            return -1;
        }
        *int_field(c, e) = v;
        return 0;
    }
    case CONFIG_ENUM:
        if (!choice_ok(e->choices, value)) {
            snprintf(err, errlen, "config: %s must be one of %s (got '%.40s')", e->name,
                     e->choices, value);
            return -1;
        }
        break;
    case CONFIG_STR:
        if ((long)strlen(value) > e->max || (long)strlen(value) < e->min) {
            snprintf(err, errlen, "config: %s must be %ld to %ld characters long", e->name,
                     e->min, e->max);
            return -1;
        }
        for (const char *p = value; *p; p++) {
            if ((unsigned char)*p < 0x20) {
                snprintf(err, errlen, "config: %s contains a control character", e->name);
                return -1;
            }
        }
        break;
    }
    char **f = str_field(c, e);
    free(*f);
    *f = xstrdup(value);
    return 0;
}

static int proxy_slot(struct config *c, const char *name, const char *value, char *err,
                      size_t errlen)
{
    long n;
    if (util_parse_long(name + 10, 1, 1000000, &n) < 0) {
        snprintf(err, errlen, "config: %s: the suffix must be a number from 1", name);
        return -1;
    }
    for (int i = 0; i < c->nproxy_urls; i++) {
        if (c->proxy_url_index[i] == n) {
            free(c->proxy_urls[i]);
            c->proxy_urls[i] = xstrdup(value);
            return 0;
        }
    }
    if (c->nproxy_urls >= CONFIG_MAX_PROXIES) {
        snprintf(err, errlen, "config: more than %d PROXY_URL_<n> values", CONFIG_MAX_PROXIES);
        return -1;
    }
    /* keep them sorted by n so that PROXY_URL_2 comes before PROXY_URL_10 */
    int i = c->nproxy_urls++;
    while (i > 0 && c->proxy_url_index[i - 1] > n) {
        c->proxy_url_index[i] = c->proxy_url_index[i - 1];
        c->proxy_urls[i] = c->proxy_urls[i - 1];
        i--;
    }
    c->proxy_url_index[i] = (int)n;
    c->proxy_urls[i] = xstrdup(value);
    return 0;
}

int config_set(struct config *c, const char *name, const char *value, char *err, size_t errlen)
{
    if (strncmp(name, "PROXY_URL_", 10) == 0)
        return proxy_slot(c, name, value, err, errlen);
    for (const struct config_entry *e = config_table; e->name; e++)
        if (strcmp(e->name, name) == 0)
            return set_entry(c, e, value, err, errlen);
    return 1;
}

int config_parse_env(const char *buf, size_t len,
                     int (*cb)(const char *key, const char *value, void *arg), void *arg,
                     char *err, size_t errlen)
{
    size_t pos = 0;
    int lineno = 0;
    char key[128], value[4096];
    err[0] = '\0';
    while (pos < len) {
        lineno++;
        size_t end = pos;
        while (end < len && buf[end] != '\n')
            end++;
        const char *p = buf + pos, *e = buf + end;
        pos = end + 1;
        while (p < e && isspace((unsigned char)*p))
            p++;
        while (e > p && isspace((unsigned char)e[-1]))
            e--;
        if (p == e || *p == '#')
            continue;
        if ((size_t)(e - p) > 7 && strncmp(p, "export", 6) == 0 && isspace((unsigned char)p[6])) {
            p += 6;
            while (p < e && isspace((unsigned char)*p))
                p++;
        }
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (!eq) {
            snprintf(err, errlen, "config: .env line %d: expected KEY=VALUE", lineno);
            return -1;
        }
        const char *ke = eq;
        while (ke > p && isspace((unsigned char)ke[-1]))
            ke--;
        size_t kl = (size_t)(ke - p);
        if (kl == 0 || kl >= sizeof key) {
            snprintf(err, errlen, "config: .env line %d: bad key", lineno);
            return -1;
        }
        for (size_t i = 0; i < kl; i++) {
            if (!(isalnum((unsigned char)p[i]) || p[i] == '_')) {
                snprintf(err, errlen, "config: .env line %d: bad key", lineno);
                return -1;
            }
        }
        memcpy(key, p, kl);
        key[kl] = '\0';
        const char *v = eq + 1;
        while (v < e && isspace((unsigned char)*v))
            v++;
        size_t vl = (size_t)(e - v);
        if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
            v++;
            vl -= 2;
        }
        if (vl >= sizeof value || memchr(v, '\0', vl)) {
            snprintf(err, errlen, "config: .env line %d: value too long or not text", lineno);
            return -1;
        }
        memcpy(value, v, vl);
        value[vl] = '\0';
        if (cb(key, value, arg) < 0) {
            size_t l = strlen(err);
            if (l == 0)
                snprintf(err, errlen, "config: .env line %d: rejected", lineno);
            return -1;
        }
    }
    return 0;
}

struct env_ctx {
    struct config *c;
    char *err;
    size_t errlen;
};

static int env_cb(const char *key, const char *value, void *arg)
{
    struct env_ctx *x = arg;
    /* the environment wins over .env */
    if (getenv(key))
        return 0;
    return config_set(x->c, key, value, x->err, x->errlen) < 0 ? -1 : 0;
}

static int load_envfile(struct config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "config: cannot read %s: %s", path,
                                               strerror(errno)),
                                      -1);
    char *buf = xmalloc(1024 * 1024);
    size_t n = fread(buf, 1, 1024 * 1024, f);
    int toolong = !feof(f);
    fclose(f);
    int rc = -1;
    if (toolong) {
        snprintf(err, errlen, "config: %s is larger than 1 MiB", path);
        goto out;
    }
    struct env_ctx x = {c, err, errlen};
    rc = config_parse_env(buf, n, env_cb, &x, err, errlen);
out:
    free(buf);
    return rc;
}

int config_load(struct config *c, const char *envfile, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    err[0] = '\0';
    for (const struct config_entry *e = config_table; e->name; e++) {
        if (e->type == CONFIG_INT) {
            long v = 0;
            util_parse_long(e->def, e->min, e->max, &v);
            *int_field(c, e) = v;
        } else {
            *str_field(c, e) = xstrdup(e->def);
        }
    }
    if (envfile && load_envfile(c, envfile, err, errlen) < 0)
        return -1;
    for (char **ep = environ; *ep; ep++) {
        const char *eq = strchr(*ep, '=');
        if (!eq || eq - *ep >= 128)
            continue;
        char name[128];
        memcpy(name, *ep, (size_t)(eq - *ep));
        name[eq - *ep] = '\0';
        if (config_set(c, name, eq + 1, err, errlen) < 0)
            return -1;
    }
    return config_validate(c, err, errlen);
}

/* an IANA name with a compiled zone file; glibc would quietly take a bad one as UTC */
int config_timezone_ok(const char *name)
{
    if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-/") != strlen(name) ||
        name[0] == '/' || strstr(name, ".."))
        return 0;
    const char *dir = getenv("TZDIR") ? getenv("TZDIR") : "/usr/share/zoneinfo";
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    int ok = f && fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
    if (f)
        fclose(f);
    return ok;
}

int config_pacing(const struct config *c, struct pacing_config *out, char *err, size_t errlen)
{
    const char *texts[PACING__LEVELS] = {c->pacing_cold, c->pacing_warm, c->pacing_hot};
    static const char *const names[PACING__LEVELS] = {"PACING_COLD", "PACING_WARM", "PACING_HOT"};
    char why[256];
    pacing_config_default(out);
    for (int i = 0; i < PACING__LEVELS; i++) {
        if (pacing_profile_parse(texts[i], &out->level[i], why, sizeof why) < 0) {
            snprintf(err, errlen, "config: %s: %s (got '%.64s')", names[i], why, texts[i]);
            return -1;
        }
    }
    out->warm_after_days = (int)c->trust_warm_days;
    out->hot_after_days = (int)c->trust_hot_days;
    out->typing_min_ms = (int)c->typing_min_ms;
    out->typing_per_char_ms = (int)c->typing_per_char_ms;
    out->typing_max_ms = (int)c->typing_max_ms;
    return 0;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
    struct pacing_config pc;
    if (config_pacing(c, &pc, err, errlen) < 0)
        return -1;
    char *words[OPTOUT_MAX];
    int nwords = 0, bad = optout_parse(c->opt_out_words, words, OPTOUT_MAX, &nwords, err, errlen) < 0;
    for (int i = 0; i < nwords; i++)
        free(words[i]);
    if (bad)
        return -1;
    if (c->trust_hot_days < c->trust_warm_days) {
        snprintf(err, errlen, "config: TRUST_HOT_DAYS (%ld) is less than TRUST_WARM_DAYS (%ld)",
                 c->trust_hot_days, c->trust_warm_days);
        return -1;
    }
    struct pacing_profile hours;
    char why[160];
    if (pacing_profile_parse_hours(c->call_hours, &hours, why, sizeof why) < 0) {
        snprintf(err, errlen, "config: CALL_HOURS: %s (got '%.20s')", why, c->call_hours);
        return -1;
    }
    if (c->twilio_account_sid[0] && (!c->twilio_auth_token[0] || !c->twilio_from[0] || !c->twilio_twiml_url[0])) {
        snprintf(err, errlen, "config: TWILIO_ACCOUNT_SID is set, so TWILIO_AUTH_TOKEN, TWILIO_FROM and "
                 "TWILIO_TWIML_URL are needed too");
        return -1;
    }
    /* both go into Twilio URLs and are compared with what Twilio answers: exact shapes */
    const char *sid = c->twilio_account_sid;
    if (sid[0] && (strlen(sid) != 34 || strncmp(sid, "AC", 2) != 0 || strspn(sid + 2, "0123456789abcdefABCDEF") != 32)) {
        snprintf(err, errlen, "config: TWILIO_ACCOUNT_SID must be AC followed by 32 hex digits, as Twilio's "
                 "console shows it");
        return -1;
    }
    const char *from = c->twilio_from;
    size_t fdigits = from[0] == '+' ? strspn(from + 1, "0123456789") : 0;
    if (from[0] && (fdigits < 8 || fdigits > 15 || from[1] == '0' || from[1 + fdigits] != '\0')) {
        snprintf(err, errlen, "config: TWILIO_FROM must be a number in E.164: '+', then 8 to 15 digits, the "
                 "first not 0 (got '%.32s')", from);
        return -1;
    }
    if (c->backup_at[0]) {
        char both[40];
        snprintf(both, sizeof both, "%s-%s", c->backup_at, c->backup_at);
        if (pacing_profile_parse_hours(both, &hours, why, sizeof why) < 0) {
            snprintf(err, errlen, "config: BACKUP_AT must be HH:MM or empty (got '%.10s')", c->backup_at);
            return -1;
        }
    }
    if (strspn(c->telegram_bot_token, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-") !=
        strlen(c->telegram_bot_token)) {
        snprintf(err, errlen, "config: TELEGRAM_BOT_TOKEN may hold only letters, digits, ':', '_' and '-'");
        return -1;
    }
    if (!config_timezone_ok(c->timezone)) {
        snprintf(err, errlen, "config: TIMEZONE must be an IANA zone name such as Asia/Jerusalem or UTC "
                 "(got '%.64s', no such zone)", c->timezone);
        return -1;
    }
    if (c->restart_backoff_min_ms > c->restart_backoff_max_ms) {
        snprintf(err, errlen, "config: RESTART_BACKOFF_MIN_MS (%ld) exceeds RESTART_BACKOFF_MAX_MS (%ld)",
                 c->restart_backoff_min_ms, c->restart_backoff_max_ms);
        return -1;
    }
    if (c->worker_port_max < c->worker_port_min ||
        c->worker_port_max - c->worker_port_min + 1 < c->max_workers) {
        snprintf(err, errlen, "config: WORKER_PORT_MIN..WORKER_PORT_MAX (%ld..%ld) must hold MAX_WORKERS (%ld) ports",
                 c->worker_port_min, c->worker_port_max, c->max_workers);
        return -1;
    }
    if (c->worker_max_event_bytes > c->http_max_body) {
        snprintf(err, errlen, "config: WORKER_MAX_EVENT_BYTES (%ld) exceeds HTTP_MAX_BODY (%ld)",
                 c->worker_max_event_bytes, c->http_max_body);
        return -1;
    }
    if (c->api_key[0] && strlen(c->api_key) < 16) {
        snprintf(err, errlen, "config: API_KEY must be at least 16 characters (or empty to generate one)");
        return -1;
    }
    if (c->webhook_secret[0] && strlen(c->webhook_secret) < 16) {
        snprintf(err, errlen, "config: WEBHOOK_SECRET must be at least 16 characters (or empty to generate one)");
        return -1;
    }
    if (c->database_url[0] && strncmp(c->database_url, "sqlite:", 7) != 0) {
        snprintf(err, errlen, "config: DATABASE_URL must start with sqlite: (the only store in this build)");
        return -1;
    }
    /* these go into engine URLs and container names unescaped */
    if (strspn(c->worker_image, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@") !=
        strlen(c->worker_image)) {
        snprintf(err, errlen, "config: WORKER_IMAGE may hold only letters, digits and . _ - / : @");
        return -1;
    }
    if (strspn(c->worker_network, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
        strlen(c->worker_network)) {
        snprintf(err, errlen, "config: WORKER_NETWORK may hold only letters, digits and . _ -");
        return -1;
    }
    if (strcmp(c->runner, "docker") == 0 && strcmp(c->worker_network, "host") != 0 &&
        !c->worker_webhook_url[0]) {
        snprintf(err, errlen, "config: WORKER_NETWORK=%s needs WORKER_WEBHOOK_URL, an address of this "
                 "daemon that containers on that network reach (e.g. http://switchboard:3000/webhook)",
                 c->worker_network);
        return -1;
    }
    return 0;
}

void config_print_help(void)
{
    printf("Configuration (environment, or KEY=VALUE lines in .env; the environment wins):\n");
    for (const struct config_entry *e = config_table; e->name; e++) {
        if (e->type == CONFIG_INT)
            printf("  %-26s %s [%ld..%ld, default %s]\n", e->name, e->help, e->min, e->max, e->def);
        else if (e->type == CONFIG_ENUM)
            printf("  %-26s %s [%s, default %s]\n", e->name, e->help, e->choices, e->def);
        else
            printf("  %-26s %s%s%s%s\n", e->name, e->help, e->def[0] ? " [default " : "",
                   e->def, e->def[0] ? "]" : "");
    }
    printf("  %-26s a socks5h://user:pass@host:port egress for the proxy pool\n", "PROXY_URL_<n>");
}

void config_free(struct config *c)
{
    for (const struct config_entry *e = config_table; e->name; e++)
        if (e->type != CONFIG_INT)
            free(*str_field(c, e));
    for (int i = 0; i < c->nproxy_urls; i++)
        free(c->proxy_urls[i]);
    memset(c, 0, sizeof *c);
}
