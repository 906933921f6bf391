/* config: one table (name, type, bounds, default, help) read from the environment
 * and an optional .env file (the environment wins). A bad value stops start-up with
 * one line that names it. The struct owns its strings; config_free releases them. */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <stddef.h>

#define CONFIG_MAX_PROXIES 1024

struct config {
    char *api_key;
    char *webhook_secret;
    char *orch_host;
    long orch_port;
    char *data_dir;
    char *database_url;
    char *sessions_dir;
    char *runner;
    char *worker_command;
    char *worker_webhook_url;
    char *docker_socket;
    char *worker_image;
    char *worker_network;
    long worker_memory_mb;
    long worker_cpu_millicores;
    char *docker_sessions_host_dir;
    long max_workers;
    long max_sessions_per_proxy;
    long max_sessions_per_phone;
    long provisioning_interval_ms;
    long monitor_interval_ms;
    long watchdog_interval_ms;
    long ping_timeout_ms;
    long worker_health_timeout_ms;
    long worker_start_grace_ms;
    long worker_stop_grace_ms;
    long worker_log_max_bytes;
    long worker_port_min;
    long worker_port_max;
    long restart_backoff_min_ms;
    long restart_backoff_max_ms;
    long max_failed_starts;
    long restart_stable_ms;
    long pair_wait_ms;
    long proxy_recheck_ms;
    long http_threads;
    long http_max_body;
    long worker_max_event_bytes;
    char *log_level;
    char *timezone;
    char *sqlite_synchronous;
    char *pacing_cold, *pacing_warm, *pacing_hot;
    long trust_warm_days, trust_hot_days;
    long typing_min_ms, typing_per_char_ms, typing_max_ms;
    long message_ttl_ms;
    long message_max_attempts;
    long message_retry_ms;
    long send_confirm_ms;
    long send_timeout_ms;
    char *opt_out_words;
    char *twilio_account_sid, *twilio_auth_token, *twilio_from, *twilio_api_base, *twilio_twiml_url;
    char *public_url;
    long call_concurrency, twilio_cps, twilio_timeout_ms;
    long call_ring_timeout_s, call_time_limit_s, call_settle_margin_ms, call_watchdog_ms;
    long call_retry_attempts, call_retry_delay_ms;
    char *call_hours;
    long call_create_tries, call_stuck_ms, call_start_wait_ms;
    long events_max_age_ms, events_max;
    char *telegram_bot_token, *telegram_chat_id, *telegram_api_base, *alert_webhook_url;
    long alert_fold_ms;
    char *backups_dir, *backup_at;
    char *web_dir;
    long dashboard_session_ms;
    long max_backups;
    long webhook_allow_private, webhook_timeout_ms, webhook_retry_base_ms, webhook_retry_for_ms;
    /* PROXY_URL_<n>, in order of n */
    char *proxy_urls[CONFIG_MAX_PROXIES];
    int proxy_url_index[CONFIG_MAX_PROXIES];
    int nproxy_urls;
};

enum config_type { CONFIG_INT, CONFIG_STR, CONFIG_ENUM };

struct config_entry {
    const char *name;
    enum config_type type;
    size_t offset;
    long min, max;        /* CONFIG_INT: bounds; CONFIG_STR: max length in max */
    const char *def;      /* default as text ("" = empty) */
    const char *choices;  /* CONFIG_ENUM: "a|b|c" */
    int secret;           /* never printed */
    const char *help;
};

/* The table itself (for --help and docs), terminated by a NULL name. */
extern const struct config_entry config_table[];

/* Fills c from defaults, then .env at envfile (may be NULL or missing), then the
 * environment. 0, or -1 with one line in err naming the bad value. */
int config_load(struct config *c, const char *envfile, char *err, size_t errlen);

/* Sets one entry from text; 0, or -1 with err. Unknown names are ignored (return 1). */
int config_set(struct config *c, const char *name, const char *value, char *err, size_t errlen);

/* Parses .env text: calls cb for each KEY=VALUE. 0, or -1 with err naming the line.
 * Pure; the fuzz target drives it. */
int config_parse_env(const char *buf, size_t len,
                     int (*cb)(const char *key, const char *value, void *arg), void *arg,
                     char *err, size_t errlen);

/* Checks cross-field rules after loading. */
int config_validate(const struct config *c, char *err, size_t errlen);

struct pacing_config;
/* the pacing table from PACING_*, TRUST_*_DAYS and TYPING_*; 0 or -1 with err */
int config_pacing(const struct config *c, struct pacing_config *out, char *err, size_t errlen);

/* 1 when name is an IANA zone with a compiled zone file */
int config_timezone_ok(const char *name);

void config_print_help(void);
void config_free(struct config *c);

#endif
