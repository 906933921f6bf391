/* sim-worker: start-up, timers, signals and link state of the simulator.
 * See sim.h for the module map and SPEC §5 for the protocol. */
#include "sim.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "simcmd.h"
#include "simq.h"
#include "util.h"

#define SIM_EXIT_CONFIG 2
#define SIM_EXIT_RUNTIME 1
#define SIM_MS_MIN 10L
#define SIM_MS_MAX 3600000L
#define SIM_SESSION_MAX 64
#define SIM_PROXY_MAX 2048
#define SIM_LOG_LINE 1024

/* ---- log ---------------------------------------------------------------- */

static void sim_vlog(const char *level, const char *module, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void sim_vlog(const char *level, const char *module, const char *fmt, va_list ap)
{
    char line[SIM_LOG_LINE];
    int n = snprintf(line, sizeof line, "%s %s: ", level, module);
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = m < 0 ? (size_t)n : (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: still one line */
    line[len++] = '\n';
    /* one write() per line so lines of many sims sharing a pipe never interleave */
    ssize_t w;
    do
        w = write(STDERR_FILENO, line, len);
    while (w < 0 && errno == EINTR);
}

void sim_log(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sim_vlog(level, "sim", fmt, ap);
    va_end(ap);
}

static void sim_log_module(const char *level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sim_log_module(const char *level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sim_vlog(level, module, fmt, ap);
    va_end(ap);
}

/* ---- random strings ------------------------------------------------------- */

static void sim_random(void *buf, size_t n)
{
    if (RAND_bytes(buf, (int)n) != 1)
        abort(); /* no CSPRNG: nothing sensible to do */
}

/* n random bytes as base64 (with padding) into out, which holds 4*ceil(n/3)+1. */
static void sim_random_b64(char *out, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[48];
    if (n > sizeof raw)
        n = sizeof raw;
    sim_random(raw, n);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)raw[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)raw[i + 1] << 8;
        if (i + 2 < n)
            v |= raw[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Shaped like a Baileys QR payload: "2@ref,noiseKey,identityKey,advSecret". */
static void sim_make_qr(char *out, size_t outlen)
{
    char ref[41], noise[45], ident[45], adv[25];
    sim_random_b64(ref, 30);
    sim_random_b64(noise, 32);
    sim_random_b64(ident, 32);
    sim_random_b64(adv, 16);
    snprintf(out, outlen, "2@%s,%s,%s,%s", ref, noise, ident, adv);
}

static void sim_make_pairing_code(char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t o = 0;
    while (o < SIM_CODE_LEN) {
        unsigned char raw[16];
        sim_random(raw, sizeof raw);
        /* 252 = 7 * 36: rejecting the rest keeps every character equally likely */
        for (size_t i = 0; i < sizeof raw && o < SIM_CODE_LEN; i++)
            if (raw[i] < 252)
                out[o++] = tab[raw[i] % 36];
    }
    out[o] = '\0';
}

/* ---- events ------------------------------------------------------------- */

int64_t sim_uptime_ms(const struct sim *s)
{
    return util_mono_ms() - s->start_mono_ms;
}

/* Resident set size from /proc/self/statm (second field, in pages); 0 if unknown. */
static long long sim_rss_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = buf, *end = NULL;
    strtoull(p, &end, 10); /* total size: skipped */
    if (end == p)
        return 0;
    p = end;
    unsigned long long pages = strtoull(p, &end, 10);
    if (end == p)
        return 0;
    long pagesize = sysconf(_SC_PAGESIZE);
    return (long long)pages * (pagesize > 0 ? pagesize : 4096);
}

static void sim_post_qr(struct sim *s)
{
    char qr[200];
    sim_make_qr(qr, sizeof qr);
    s->qr_count++;
    simq_post(s->q, "QR_CODE", json_pack("{s:s}", "qr", qr));
    sim_log("info", "qr code posted n=%u", s->qr_count);
}

void sim_post_pairing_code(struct sim *s, char *out)
{
    sim_make_pairing_code(out);
    simq_post(s->q, "PAIRING_CODE", json_pack("{s:s}", "code", out));
    sim_log("info", "pairing code posted");
}

void sim_post_connected(struct sim *s)
{
    char name[32];
    snprintf(name, sizeof name, "Sim %s", s->phone);
    simq_post(s->q, "CONNECTED", json_pack("{s:s, s:s}", "phoneNumber", s->phone, "name", name));
    sim_log("info", "connected posted phone=%s", s->phone);
}

void sim_post_disconnected(struct sim *s, int logged_out)
{
    simq_post(s->q, "DISCONNECTED",
              json_pack("{s:s, s:i, s:b}", "reason", logged_out ? "logged out" : "connection lost", "statusCode",
                        logged_out ? 401 : 428, "loggedOut", logged_out));
    sim_log("info", "disconnected posted logged_out=%s", logged_out ? "true" : "false");
}

static void sim_ping_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sim *s = arg;
    if (s->silenced)
        return;
    simq_post(s->q, "PING",
              json_pack("{s:I, s:I}", "uptimeMs", (json_int_t)sim_uptime_ms(s), "rssBytes",
                        (json_int_t)sim_rss_bytes()));
}

static void sim_qr_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sim *s = arg;
    if (!s->linked)
        sim_post_qr(s);
}

static void sim_add_periodic(struct event *ev, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(ev, &tv);
}

/* ---- link state --------------------------------------------------------- */

int sim_link(struct sim *s, const char *phone)
{
    int64_t now = util_now_ms();
    if (simstore_creds_save(&s->store, phone, now) < 0)
        return -1;
    snprintf(s->phone, sizeof s->phone, "%s", phone);
    s->linked_at_ms = now;
    s->linked = 1;
    s->connected = 1;
    event_del(s->ev_qr);
    sim_log("info", "linked phone=%s", phone);
    sim_post_connected(s);
    return 0;
}

int sim_unlink(struct sim *s)
{
    if (simstore_creds_remove(&s->store) < 0)
        return -1;
    s->linked = 0;
    s->connected = 0;
    s->phone[0] = '\0';
    /* a logged-out session does not ask for a new QR; the daemon stops it */
    event_del(s->ev_qr);
    sim_log("info", "unlinked");
    return 0;
}

static void sim_exit_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sim *s = arg;
    event_base_loopexit(s->base, NULL);
}

void sim_exit_later(struct sim *s, int code, long delay_ms)
{
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    s->exit_code = code;
    event_add(s->ev_exit, &tv);
}

static void sim_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct sim *s = arg;
    if (s->stopping)
        return; /* a repeated signal does not cut a stop delay short */
    s->stopping = 1;
    sim_log("info", "stopping signal=%s delay_ms=%ld", sig == SIGTERM ? "TERM" : "INT", s->stop_delay_ms);
    sim_exit_later(s, 0, s->stop_delay_ms);
}

/* ---- configuration ------------------------------------------------------ */

static void sim_usage(FILE *f)
{
    fprintf(f, "usage: sim-worker [--ping-ms N] [--qr-ms N]\n"
               "  A SIMULATOR of a WhatsApp worker (worker protocol v1), for tests and demos.\n"
               "  --ping-ms N   PING period in ms (%ld..%ld, default 15000)\n"
               "  --qr-ms N     new QR code period in ms (%ld..%ld, default 20000)\n"
               "  environment: SESSION_ID WEBHOOK_URL WEBHOOK_SECRET AUTH_DIR WORKER_LISTEN (required),\n"
               "               PROXY_URL LOGIN_METHOD=qr|pairing_code PAIRING_PHONE (optional)\n",
               SIM_MS_MIN, SIM_MS_MAX, SIM_MS_MIN, SIM_MS_MAX);
}

/* 0, 1 when --help was asked (exit 0), -1 on a bad option (logged). */
static int sim_parse_args(struct sim *s, int argc, char **argv)
{
    static const struct option opts[] = {
        {"ping-ms", required_argument, NULL, 'p'},
        {"qr-ms", required_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    s->ping_ms = 15000;
    s->qr_ms = 20000;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (util_parse_long(optarg, SIM_MS_MIN, SIM_MS_MAX, &s->ping_ms) < 0) {
                sim_log("error", "--ping-ms must be a whole number of ms in %ld..%ld", SIM_MS_MIN, SIM_MS_MAX);
                return -1;
            }
            break;
        case 'q':
            if (util_parse_long(optarg, SIM_MS_MIN, SIM_MS_MAX, &s->qr_ms) < 0) {
                sim_log("error", "--qr-ms must be a whole number of ms in %ld..%ld", SIM_MS_MIN, SIM_MS_MAX);
                return -1;
            }
            break;
        case 'h':
            sim_usage(stdout);
            return 1;
        default:
            sim_log("error", "unknown option or missing value, see --help");
            return -1;
        }
    }
    if (optind < argc) {
        sim_log("error", "unexpected argument, see --help");
        return -1;
    }
    return 0;
}

static const char *sim_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int sim_session_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > SIM_SESSION_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static int sim_secret_valid(const char *v)
{
    if (strlen(v) != SIM_SECRET_LEN)
        return 0;
    for (size_t i = 0; i < SIM_SECRET_LEN; i++) {
        char c = v[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

/* host:port or [v6]:port. */
static int sim_parse_listen(struct sim *s, const char *v)
{
    const char *colon = strrchr(v, ':');
    long port = 0;
    if (!colon || colon == v || util_parse_long(colon + 1, 1, 65535, &port) < 0)
        return -1;
    const char *h = v;
    size_t hl = (size_t)(colon - v);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return -1;
        h++;
        hl -= 2;
    }
    if (hl > 255 || memchr(h, ' ', hl))
        return -1;
    s->listen_host = xstrndup(h, hl);
    s->listen_port = (int)port;
    return 0;
}

/* The proxy URL for the log with its credentials replaced by three stars. */
static void sim_mask_proxy(const char *url, char *out, size_t outlen)
{
    const char *sep = strstr(url, "://");
    if (strlen(url) > SIM_PROXY_MAX || !sep) {
        snprintf(out, outlen, "(unparsable, not shown)");
        return;
    }
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *hostport = at ? at + 1 : auth;
    int hl = (int)(auth + alen - hostport);
    int sl = (int)(sep - url);
    snprintf(out, outlen, "%.*s://%s%.*s", sl, url, at ? "***@" : "", hl, hostport);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == ' ')
            *p = '?';
}

static int sim_bad_env(const char *name, const char *why)
{
    sim_log("error", "invalid environment %s: %s", name, why);
    return -1;
}

/* Reads and checks the environment. 0 or -1 (logged, naming the variable). */
static int sim_load_env(struct sim *s)
{
    const char *v;
    if (!(v = sim_env("SESSION_ID")))
        return sim_bad_env("SESSION_ID", "required");
    if (!sim_session_id_valid(v))
        return sim_bad_env("SESSION_ID", "1-64 characters of [A-Za-z0-9_.-]");
    s->session_id = v;

    if (!(v = sim_env("WEBHOOK_URL")))
        return sim_bad_env("WEBHOOK_URL", "required");
    s->webhook_url = v;

    if (!(v = sim_env("WEBHOOK_SECRET")))
        return sim_bad_env("WEBHOOK_SECRET", "required");
    if (!sim_secret_valid(v))
        return sim_bad_env("WEBHOOK_SECRET", "must be 64 hex characters");
    memcpy(s->secret, v, SIM_SECRET_LEN + 1);

    if (!(v = sim_env("AUTH_DIR")))
        return sim_bad_env("AUTH_DIR", "required");
    if (strlen(v) > 3000)
        return sim_bad_env("AUTH_DIR", "path too long");
    s->auth_dir = v;

    if (!(v = sim_env("WORKER_LISTEN")))
        return sim_bad_env("WORKER_LISTEN", "required");
    if (sim_parse_listen(s, v) < 0)
        return sim_bad_env("WORKER_LISTEN", "must be host:port with port 1..65535");

    v = sim_env("LOGIN_METHOD");
    if (!v || strcmp(v, "qr") == 0)
        s->login_pairing = 0;
    else if (strcmp(v, "pairing_code") == 0)
        s->login_pairing = 1;
    else
        return sim_bad_env("LOGIN_METHOD", "must be qr or pairing_code");

    /* only a pairing-code login has a phone before the user links one */
    v = sim_env("PAIRING_PHONE");
    if (v && s->login_pairing && util_phone_normalize(v, s->pairing_phone, sizeof s->pairing_phone) < 0)
        return sim_bad_env("PAIRING_PHONE", "must be 8-15 digits with an optional +");
    return 0;
}

/* ---- main --------------------------------------------------------------- */

/* What a starting sim says first: CONNECTED when linked, else the login prompt. */
static void sim_announce(struct sim *s)
{
    int64_t linked_at = 0;
    int r = simstore_creds_load(&s->store, s->phone, sizeof s->phone, &linked_at);
    if (r == 1) {
        s->linked = 1;
        s->connected = 1;
        s->linked_at_ms = linked_at;
        sim_log("info", "restored link phone=%s", s->phone);
        sim_post_connected(s);
        return;
    }
    s->phone[0] = '\0';
    if (!s->login_pairing) {
        sim_post_qr(s);
        sim_add_periodic(s->ev_qr, s->qr_ms);
    } else if (s->pairing_phone[0]) {
        char code[SIM_CODE_LEN + 1];
        sim_post_pairing_code(s, code);
    } else {
        sim_log("info", "pairing_code login without PAIRING_PHONE, waiting for POST /pairing-code");
    }
}

int main(int argc, char **argv)
{
    struct sim sim;
    struct sim *s = &sim;
    char err[256];
    int rc = SIM_EXIT_CONFIG;

    memset(s, 0, sizeof *s);
    s->store.sent_fd = -1;
    s->start_mono_ms = util_mono_ms();
    signal(SIGPIPE, SIG_IGN);

    int a = sim_parse_args(s, argc, argv);
    if (a != 0) {
        rc = a > 0 ? 0 : SIM_EXIT_CONFIG;
        goto out;
    }
    if (sim_load_env(s) < 0)
        goto out;

    sim_log_module("info", "sim-worker", "SIMULATOR, not a real WhatsApp client session=%s", s->session_id);

    s->base = event_base_new();
    if (!s->base) {
        sim_log("error", "cannot create the event loop");
        rc = SIM_EXIT_RUNTIME;
        goto out;
    }
    /* the idle connection outlives the gap between PINGs (the daemon keeps it 60 s) */
    long idle_s = s->ping_ms / 1000 * 2 + 5;
    s->q = simq_new(s->base, s->webhook_url, s->session_id, s->secret,
                    (int)(idle_s < 10 ? 10 : idle_s > 55 ? 55 : idle_s), err, sizeof err);
    if (!s->q) {
        sim_bad_env("WEBHOOK_URL", err);
        goto out;
    }
    if (simstore_open(&s->store, s->auth_dir) < 0) {
        sim_bad_env("AUTH_DIR", "not usable (see above)");
        goto out;
    }

    const char *proxy = sim_env("PROXY_URL");
    char masked[300];
    if (proxy)
        sim_mask_proxy(proxy, masked, sizeof masked);
    else
        snprintf(masked, sizeof masked, "none");
    sim_log("info", "config listen=%s:%d webhook=%s login=%s ping_ms=%ld qr_ms=%ld proxy=%s (not used by the simulator) sent_ids=%zu",
            s->listen_host, s->listen_port, simq_target(s->q), s->login_pairing ? "pairing_code" : "qr", s->ping_ms,
            s->qr_ms, masked, s->store.count);

    s->ev_ping = event_new(s->base, -1, EV_PERSIST, sim_ping_cb, s);
    s->ev_qr = event_new(s->base, -1, EV_PERSIST, sim_qr_cb, s);
    s->ev_exit = evtimer_new(s->base, sim_exit_cb, s);
    s->ev_term = evsignal_new(s->base, SIGTERM, sim_signal_cb, s);
    s->ev_int = evsignal_new(s->base, SIGINT, sim_signal_cb, s);
    if (!s->ev_ping || !s->ev_qr || !s->ev_exit || !s->ev_term || !s->ev_int) {
        sim_log("error", "cannot create events");
        rc = SIM_EXIT_RUNTIME;
        goto out;
    }
    event_add(s->ev_term, NULL);
    event_add(s->ev_int, NULL);

    /* listen before the first event: a daemon that hears from us may call at once */
    if (simcmd_start(s) < 0) {
        rc = SIM_EXIT_RUNTIME;
        goto out;
    }
    sim_announce(s);
    sim_add_periodic(s->ev_ping, s->ping_ms);

    if (event_base_dispatch(s->base) < 0) {
        sim_log("error", "event loop failed");
        rc = SIM_EXIT_RUNTIME;
        goto out;
    }
    rc = s->exit_code;
    if (simq_length(s->q))
        sim_log("info", "undelivered events dropped at exit count=%zu", simq_length(s->q));
out:
    simcmd_stop(s);
    simq_free(s->q);
    if (s->ev_ping)
        event_free(s->ev_ping);
    if (s->ev_qr)
        event_free(s->ev_qr);
    if (s->ev_exit)
        event_free(s->ev_exit);
    if (s->ev_term)
        event_free(s->ev_term);
    if (s->ev_int)
        event_free(s->ev_int);
    simstore_close(&s->store);
    if (s->base)
        event_base_free(s->base);
    libevent_global_shutdown();
    free(s->listen_host);
    memset(s->secret, 0, sizeof s->secret);
    return rc;
}
