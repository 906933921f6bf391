/* switchboard: the daemon's entry point. Wires the modules together on one libevent
 * loop; see DESIGN.md for the shape. */
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alert.h"
#include "api.h"
#include "backup.h"
#include "calls.h"
#include "config.h"
#include "cron.h"
#include "dispatch.h"
#include "events.h"
#include "hmac.h"
#include "http.h"
#include "httpc.h"
#include "log.h"
#include "outbox.h"
#include "pool.h"
#include "proxycheck.h"
#include "runner.h"
#include "session.h"
#include "store.h"
#include "util.h"

static void usage(void)
{
    printf("usage: switchboard [--check] [--help]\n"
           "  --check   validate the configuration and exit (0 when it is good)\n\n");
    config_print_help();
}

/* the value of a generated secret: from the config, else from DATA_DIR/name, else new */
static char *secret(const char *configured, const char *dir, const char *name, const char *prefix,
                    int *generated)
{
    *generated = 0;
    if (configured && *configured)
        return xstrdup(configured);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *v = util_read_file(path, 512, NULL);
    if (v) {
        v[strcspn(v, "\r\n")] = '\0';
        if (strlen(v) >= 16)
            return v;
        free(v);
    }
    char hex[97];
    if (hmac_random_hex(hex, 24) < 0)
        return NULL;
    char *out = xasprintf("%s%s", prefix, hex);
    if (util_write_file_atomic(path, out, strlen(out), 0600) < 0) {
        log_error("main", "cannot write %s: %s", path, strerror(errno));
        free(out);
        return NULL;
    }
    *generated = 1;
    return out;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    log_info("main", "signal received, shutting down signal=%d", (int)sig);
    event_base_loopbreak(arg);
}

/* the Baileys worker of this source tree (the daemon runs from build/), run by node */
static char *default_worker_command(char *err, size_t errlen)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(err, errlen, "cannot find the daemon's own path; set WORKER_COMMAND");
        return NULL;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    char *main_js = xasprintf("%s/../workers/baileys/src/main.js", exe);
    char real[PATH_MAX];
    if (!realpath(main_js, real)) {
        snprintf(err, errlen, "no WORKER_COMMAND set and no Baileys worker at %.200s; set WORKER_COMMAND "
                 "(the simulator: WORKER_COMMAND=%.200s/sim-worker)", main_js, exe);
        free(main_js);
        return NULL;
    }
    free(main_js);
    return xasprintf("node %s", real);
}

int main(int argc, char **argv)
{
    /* the environment holds API_KEY, WEBHOOK_SECRET and the Twilio and Telegram tokens:
     * not dumpable, /proc/<pid>/environ and the memory are root's, so that another
     * process of this user (a worker, say) cannot read them; no core files either */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        fprintf(stderr, "switchboard: cannot make the process non-dumpable: %s\n", strerror(errno));
    int check = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check") == 0) {
            check = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "switchboard: unknown argument '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    struct config cfg;
    char err[512];
    const char *envfile = getenv("ENV_FILE") ? getenv("ENV_FILE") : ".env";
    if (config_load(&cfg, envfile, err, sizeof err) < 0) {
        fprintf(stderr, "switchboard: %s\n", err);
        config_free(&cfg);
        return 1;
    }
    enum log_level lvl = LOG_INFO;
    log_level_parse(cfg.log_level, &lvl);
    log_set_level(lvl);
    if (check) {
        printf("switchboard: configuration ok\n");
        config_free(&cfg);
        return 0;
    }

    int rc = 1;
    struct event_base *base = NULL;
    struct runner *runner = NULL;
    char *api_key = NULL, *master = NULL, *instance = NULL, *worker_cmd = NULL, *wh_url = NULL,
         *db_path = NULL;
    struct event *sig_int = NULL, *sig_term = NULL;
    int gen_key, gen_secret, gen_inst;
    int sessions_up = 0;

    /* the store holds proxy credentials, logs may hold phone numbers: nothing the daemon
     * or its workers create is for other users */
    umask(0077);
    /* "today" and the active hours are local to TIMEZONE (checked by config_load) */
    setenv("TZ", cfg.timezone, 1);
    tzset();
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (util_mkdirs(cfg.data_dir, 0700) < 0) {
        fprintf(stderr, "switchboard: cannot create DATA_DIR %s: %s\n", cfg.data_dir, strerror(errno));
        goto out;
    }
    api_key = secret(cfg.api_key, cfg.data_dir, "api_key", "sb_admin_", &gen_key);
    master = secret(cfg.webhook_secret, cfg.data_dir, "webhook_secret", "", &gen_secret);
    instance = secret(NULL, cfg.data_dir, "instance_id", "", &gen_inst);
    if (!api_key || !master || !instance) {
        fprintf(stderr, "switchboard: cannot create the secrets under %s\n", cfg.data_dir);
        goto out;
    }
    if (gen_key)
        printf("switchboard: first start: generated the admin API key %s\n"
               "switchboard: it is kept in %s/api_key (mode 0600) and is not printed again\n",
               api_key, cfg.data_dir);
    fflush(stdout);

    struct event_config *ec = event_config_new();
    /* batches epoll_ctl changes per turn (about 7 % on event ingest); its caveat is fds
     * dup'd inside the loop, which the daemon never makes */
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(ec);
    event_config_free(ec);
    /* 0: unused, 1: I/O and timers, 2: the store's group commit (after the turn's I/O) */
    if (!base || event_base_priority_init(base, 3) < 0) {
        fprintf(stderr, "switchboard: cannot create the event loop\n");
        goto out;
    }
    cron_init(base);
    db_path = cfg.database_url[0] ? xstrdup(cfg.database_url + 7)
                                  : xasprintf("%s/switchboard.db", cfg.data_dir);
    if (store_open(base, db_path, strcmp(cfg.sqlite_synchronous, "FULL") == 0, err, sizeof err) < 0 || httpc_init(base) < 0 ||
        pool_init(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "switchboard: %s\n", err[0] ? err : "start-up failed");
        goto out;
    }
    store_flush();
    if (strcmp(cfg.runner, "docker") == 0) {
        worker_cmd = xasprintf("image %s", cfg.worker_image);
        struct runner_docker_opts dopt = {
            .socket = cfg.docker_socket, .image = cfg.worker_image, .network = cfg.worker_network,
            .instance_id = instance, .sessions_host_dir = cfg.docker_sessions_host_dir,
            .memory_mb = cfg.worker_memory_mb, .cpu_millicores = cfg.worker_cpu_millicores,
            .log_max_bytes = cfg.worker_log_max_bytes, .port_min = (int)cfg.worker_port_min,
            .port_max = (int)cfg.worker_port_max,
        };
        runner = runner_docker_new(base, &dopt, session_on_worker_exit, NULL, err, sizeof err);
    } else {
        worker_cmd = cfg.worker_command[0] ? xstrdup(cfg.worker_command)
                                           : default_worker_command(err, sizeof err);
        if (worker_cmd) {
            struct runner_process_opts ro = {worker_cmd, instance, cfg.worker_log_max_bytes,
                                             (int)cfg.worker_port_min, (int)cfg.worker_port_max};
            runner = runner_process_new(base, &ro, session_on_worker_exit, NULL, err, sizeof err);
        }
    }
    if (!runner) {
        fprintf(stderr, "switchboard: %s\n", err);
        goto out;
    }
    wh_url = cfg.worker_webhook_url[0] ? xstrdup(cfg.worker_webhook_url)
                                       : xasprintf("http://127.0.0.1:%ld/webhook", cfg.orch_port);
    api_ops_set_start_time();
    webhook_register(&cfg, master); /* first: worker events are the hot route */
    api_ops_register(&cfg);
    api_sessions_register(&cfg);
    api_proxies_register();
    api_messages_register();
    api_calls_register();
    events_register();
    outbox_register();
    backup_register();
    api_web_register(&cfg);
    struct http_options ho = {cfg.orch_host, (int)cfg.orch_port, (int)cfg.http_threads, (size_t)cfg.http_max_body};
    if (http_start(base, &ho, api_key, err, sizeof err) < 0) {
        fprintf(stderr, "switchboard: %s\n", err);
        goto out;
    }
    /* what hears of events first: the sessions' recovery below already makes some (a
     * session whose worker is gone), and they go to the customers' webhooks and alerts
     * like any other */
    if (events_init(base, &cfg) < 0 || alert_init(base, &cfg) < 0 || outbox_init(base, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "switchboard: %s\n", err[0] ? err : "start-up failed");
        goto out;
    }
    if (session_init(base, &cfg, runner, master, wh_url, err, sizeof err) < 0) {
        fprintf(stderr, "switchboard: %s\n", err);
        goto out;
    }
    sessions_up = 1;
    if (backup_init(base, &cfg, err, sizeof err) < 0 || dispatch_init(base, &cfg, err, sizeof err) < 0 ||
        calls_init(base, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "switchboard: %s\n", err);
        goto out;
    }
    if (proxycheck_init(base, cfg.proxy_recheck_ms) < 0) {
        fprintf(stderr, "switchboard: cannot set up proxy re-checks\n");
        goto out;
    }
    sig_int = evsignal_new(base, SIGINT, on_signal, base);
    sig_term = evsignal_new(base, SIGTERM, on_signal, base);
    event_add(sig_int, NULL);
    event_add(sig_term, NULL);
    log_info("main", "listening url=http://%s:%ld runner=%s worker=%s data=%s", cfg.orch_host,
             cfg.orch_port, runner->name, worker_cmd, cfg.data_dir);
    event_base_dispatch(base);
    rc = 0;
out:
    /* no new requests; those in hand (a pair waiting for its code, a logout) are
     * answered as sessions and outbound calls wind down, then the server goes */
    http_close_listener();
    cron_shutdown(); /* no periodic job runs while the modules wind down */
    proxycheck_shutdown(); /* before sessions: a probe's end moves sessions */
    backup_shutdown();     /* before sessions: waits for an archive in progress, which
                            * reads their directory, and a restore's end restarts them */
    if (sessions_up)
        session_shutdown();
    dispatch_shutdown(); /* after the sessions, whose last changes it hears of */
    calls_shutdown();    /* answers a start still waiting for its calls */
    events_shutdown();   /* ends the live streams */
    outbox_shutdown();   /* pending deliveries stay in the store for the next start */
    alert_shutdown();
    if (runner)
        runner->destroy(runner);
    httpc_shutdown();
    store_close();
    if (base)
        http_drain(base, 100);
    http_stop();
    pool_free();
    if (sig_int)
        event_free(sig_int);
    if (sig_term)
        event_free(sig_term);
    if (base)
        event_base_free(base);
    free(api_key);
    free(master);
    free(instance);
    free(worker_cmd);
    free(wh_url);
    free(db_path);
    config_free(&cfg);
    log_info("main", "stopped");
    return rc;
}
