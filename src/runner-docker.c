/* runner-docker: each worker in a container of its own, named wa_session_<id> and
 * labelled with this daemon's instance and the session, created and removed through the
 * Docker Engine API on its unix socket (libcurl; never the docker CLI).
 *
 * Starting is asynchronous: start() answers at once with the container's address and a
 * start token (kept as a label, so a restarted daemon recognises the container), then
 * create and start run on the loop; a failure is reported as an exit with its cause.
 * The engine's restart policy is "no": the daemon decides restarts. Exits arrive on the
 * engine's event stream; a listing every MONITOR_INTERVAL_MS (and after the stream
 * reconnects) catches any the stream missed. An exited container's last output is copied
 * into the worker's log file, then the container is removed.
 *
 * scan, kill_found and the checks in runner_docker_new block: they run at start-up,
 * before the loop serves anything. */
#include <errno.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "docker.h"
#include "httpc.h"
#include "log.h"
#include "ports.h"
#include "runner.h"
#include "util.h"

#define API "http://docker/v1.41"
#define CALL_TIMEOUT_MS 30000L
#define ANSWER_MAX (64L * 1024 * 1024) /* a listing of many thousand containers */
#define EVENT_LINE_MAX 65536
#define LOG_TAIL_LINES 2000
#define WORKER_PORT_IN_NETWORK 8080
#define RECONNECT_MAX_MS 30000

enum dk_state { DK_CREATING, DK_STARTING, DK_RUNNING, DK_EXITING };

struct dk {
    char session[SESSION_NAME_MAX];
    char name[DOCKER_NAME_MAX];
    char id[DOCKER_ID_MAX]; /* "" until created */
    enum dk_state state;
    int64_t start;          /* the start token (label switchboard.start) */
    int port;               /* host network: its listen port */
    int stop_wanted;        /* a stop came while it was being created */
    long grace_ms;
    int conflict_retried;
    int exit_code, signo;
    char why[320];          /* why a start failed */
    uint64_t running_seq;   /* when it reached DK_RUNNING, in rd->seq steps */
    char *log_path;
    char *body;             /* the create body, kept for a retry after a name conflict */
    struct event *kill_ev;
    int ops;                /* requests in flight that point at it */
    int gone;               /* reported and off the list: freed when ops reaches 0 */
    struct dk *next;
    struct runner_docker *rd;
};

struct runner_docker {
    struct runner base;
    struct event_base *evbase;
    char *socket, *image, *network, *instance_id, *hostdir;
    char user[32];
    long memory_mb, cpu_millicores, log_max;
    int host_net;
    struct ports ports;
    runner_exit_cb cb;
    void *cb_arg;
    struct dk *dks;
    int ndks;
    int pending; /* requests in flight */
    int dead;    /* destroyed while requests were in flight: the last one frees it */
    struct httpc_stream *events;
    struct docker_lines lines;
    /* deaths read off the stream, handled on the next loop turn: libcurl takes no new
     * request from inside its own callbacks */
    struct docker_event *deaths;
    size_t ndeaths, capdeaths;
    struct event *deaths_ev;
    struct event *reconnect_ev;
    long reconnect_ms;
    int64_t events_since;
    int listing;
    uint64_t seq, list_seq; /* orders state changes against the listing in flight */
    struct docker_found *found; /* the scan's result, for adopt and kill_found */
    int nfound;
};

typedef void (*dk_cb)(struct runner_docker *rd, struct dk *d, const struct httpc_response *res);

struct call {
    char what[200]; /* "METHOD path", for the debug log */
    struct runner_docker *rd;
    struct dk *d; /* NULL for runner-wide calls */
    dk_cb cb;
};

static void rd_free(struct runner_docker *rd);
static void exit_seen(struct dk *d, int code);
static void list_now(struct runner_docker *rd);

/* ---------- the list of containers ---------- */

static struct dk *find_session(struct runner_docker *rd, const char *session)
{
    for (struct dk *d = rd->dks; d; d = d->next)
        if (strcmp(d->session, session) == 0)
            return d;
    return NULL;
}

static struct dk *find_id(struct runner_docker *rd, const char *id)
{
    for (struct dk *d = rd->dks; d; d = d->next)
        if (d->id[0] && strcmp(d->id, id) == 0)
            return d;
    return NULL;
}

static struct dk *dk_new(struct runner_docker *rd, const char *session, int64_t start)
{
    struct dk *d = xcalloc(1, sizeof *d);
    snprintf(d->session, sizeof d->session, "%s", session);
    d->start = start;
    d->rd = rd;
    d->exit_code = -1;
    d->next = rd->dks;
    rd->dks = d;
    rd->ndks++;
    return d;
}

static void dk_release(struct dk *d)
{
    if (!d->gone || d->ops)
        return;
    free(d->log_path);
    free(d->body);
    free(d);
}

/* off the list, and the session told; memory goes once no request points at it */
static void report(struct dk *d, const char *why)
{
    struct runner_docker *rd = d->rd;
    for (struct dk **pp = &rd->dks; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    rd->ndks--;
    ports_mark(&rd->ports, d->port, 0);
    if (d->kill_ev) {
        event_free(d->kill_ev);
        d->kill_ev = NULL;
    }
    d->gone = 1;
    log_info("runner", "worker exited session=%s container=%s code=%d signal=%d%s%s", d->session,
             d->name, d->exit_code, d->signo, why ? " error=" : "", why ? why : "");
    rd->cb(d->session, d->exit_code, d->signo, why, rd->cb_arg);
    dk_release(d);
}

/* ---------- talking to the engine ---------- */

static void call_done(const struct httpc_response *res, void *arg)
{
    struct call *c = arg;
    struct runner_docker *rd = c->rd;
    log_debug("runner", "engine %s status=%ld%s%s", c->what, res->status, res->error ? " error=" : "",
              res->error ? res->error : "");
    rd->pending--;
    if (c->d)
        c->d->ops--;
    if (rd->dead) {
        if (c->d)
            dk_release(c->d);
        if (!rd->pending)
            rd_free(rd);
        free(c);
        return;
    }
    if (c->d && c->d->gone)
        dk_release(c->d);
    else
        c->cb(rd, c->d, res);
    free(c);
}

static int call(struct runner_docker *rd, struct dk *d, const char *method, const char *path,
                const char *body, long timeout_ms, dk_cb cb)
{
    char *url = xasprintf(API "%s", path);
    const char *json_hdr[] = {"Content-Type: application/json", NULL};
    struct call *c = xcalloc(1, sizeof *c);
    snprintf(c->what, sizeof c->what, "%s %s", method, path);
    c->rd = rd;
    c->d = d;
    c->cb = cb;
    int rc = httpc_request(method, url, body ? json_hdr : NULL, body, body ? strlen(body) : 0,
                           timeout_ms, ANSWER_MAX, rd->socket, call_done, c);
    free(url);
    if (rc < 0) {
        free(c);
        return -1;
    }
    rd->pending++;
    if (d)
        d->ops++;
    return 0;
}

/* percent-encodes a query value (libevent's encoder: all but the unreserved characters);
 * caller frees */
static char *qescape(const char *s)
{
    char *out = evhttp_uriencode(s, -1, 0);
    if (!out)
        abort();
    return out;
}

/* the label filter that selects this instance's containers, query-encoded */
static char *label_filter(struct runner_docker *rd, const char *extra)
{
    char *json = xasprintf("{\"label\":[\"" DOCKER_LABEL_INSTANCE "=%s\"]%s}", rd->instance_id,
                           extra);
    char *q = qescape(json);
    free(json);
    return q;
}

/* Blocking, for start-up only: 0 with *status and a malloc'd *body, or -1 with err. */
struct sync_buf {
    char *data;
    size_t len;
};

static size_t sync_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sync_buf *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > (size_t)ANSWER_MAX)
        return 0;
    b->data = xrealloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static int sync_call(const char *socket, const char *method, const char *path, long timeout_ms,
                     long *status, char **body, char *err, size_t errlen)
{
    CURL *e = curl_easy_init();
    if (!e) {
        snprintf(err, errlen, "cannot set up an HTTP client");
        return -1;
    }
    char *url = xasprintf(API "%s", path);
    struct sync_buf b = {xcalloc(1, 1), 0};
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, socket);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sync_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ebuf);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    }
    CURLcode rc = curl_easy_perform(e);
    free(url);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "the Docker engine at %s does not answer: %s", socket,
                 ebuf[0] ? ebuf : curl_easy_strerror(rc));
        curl_easy_cleanup(e);
        free(b.data);
        return -1;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(e);
    *body = b.data;
    return 0;
}

/* ---------- starting ---------- */

static void fail(struct dk *d, const char *why);
static void create(struct dk *d);

static void removed_then_report(struct runner_docker *rd, struct dk *d, const struct httpc_response *res)
{
    if (res->status != 204 && res->status != 404)
        log_warn("runner", "cannot remove container %s: status=%ld error=%s", d->name, res->status,
                 res->error ? res->error : "");
    report(d, d->why);
}

/* removes what was created, then reports the failure */
static void fail(struct dk *d, const char *why)
{
    d->state = DK_EXITING;
    snprintf(d->why, sizeof d->why, "%s", why);
    if (d->id[0]) {
        char path[160];
        snprintf(path, sizeof path, "/containers/%s?force=1", d->id);
        if (call(d->rd, d, "DELETE", path, NULL, CALL_TIMEOUT_MS, removed_then_report) == 0)
            return;
    }
    report(d, d->why);
}

static void answer_error(const struct httpc_response *res, const char *what, char *out, size_t outlen)
{
    char msg[256];
    if (!res->status)
        snprintf(msg, sizeof msg, "%s", res->error ? res->error : "no answer");
    else
        docker_parse_message(res->body, res->len, res->status, msg, sizeof msg);
    snprintf(out, outlen, "%s: %s", what, msg);
}

static void send_kill(struct dk *d, const char *sig);

static void started(struct runner_docker *rd, struct dk *d, const struct httpc_response *res)
{
    if (d->state == DK_EXITING)
        return; /* it died before the answer came: the exit is under way */
    if (res->status != 204 && res->status != 304) {
        char why[320];
        answer_error(res, "the engine did not start the container", why, sizeof why);
        fail(d, why);
        return;
    }
    d->state = DK_RUNNING;
    d->running_seq = ++rd->seq;
    log_info("runner", "worker started session=%s container=%s id=%.12s", d->session, d->name, d->id);
    if (d->stop_wanted)
        rd->base.stop(&rd->base, d->session, NULL, d->grace_ms);
}

static void created(struct runner_docker *rd, struct dk *d, const struct httpc_response *res);

static void conflict_removed(struct runner_docker *rd, struct dk *d, const struct httpc_response *res)
{
    if (res->status != 204 && res->status != 404) {
        char why[320];
        answer_error(res, "cannot remove the old container", why, sizeof why);
        fail(d, why);
        return;
    }
    create(d);
}

static void conflict_inspected(struct runner_docker *rd, struct dk *d, const struct httpc_response *res)
{
    char instance[128] = "";
    int running = 0;
    if (res->status != 200 ||
        docker_parse_inspect(res->body, res->len, instance, sizeof instance, &running) < 0) {
        char why[320];
        answer_error(res, "cannot inspect the container that holds the name", why, sizeof why);
        fail(d, why);
        return;
    }
    if (strcmp(instance, rd->instance_id) != 0) {
        char why[256];
        snprintf(why, sizeof why, "the container name %s is taken by a container this daemon does not own",
                 d->name);
        fail(d, why);
        return;
    }
    /* ours and not tracked: left over from an earlier start (this session has no other) */
    log_warn("runner", "removing a left-over container session=%s container=%s running=%d",
             d->session, d->name, running);
    char path[160];
    snprintf(path, sizeof path, "/containers/%s?force=1", d->name);
    if (call(rd, d, "DELETE", path, NULL, CALL_TIMEOUT_MS, conflict_removed) < 0)
        fail(d, "cannot reach the Docker engine");
}

static void created(struct runner_docker *rd, struct dk *d, const struct httpc_response *res)
{
    char why[320];
    if (res->status == 409 && !d->conflict_retried) {
        d->conflict_retried = 1;
        char path[160];
        snprintf(path, sizeof path, "/containers/%s/json", d->name);
        if (call(rd, d, "GET", path, NULL, CALL_TIMEOUT_MS, conflict_inspected) < 0)
            fail(d, "cannot reach the Docker engine");
        return;
    }
    if (res->status == 404) {
        snprintf(why, sizeof why, "WORKER_IMAGE %s is not on the engine (build it: make docker-images)",
                 rd->image);
        fail(d, why);
        return;
    }
    if (res->status != 201 || docker_parse_id(res->body, res->len, d->id, sizeof d->id) < 0) {
        answer_error(res, "the engine did not create the container", why, sizeof why);
        fail(d, why);
        return;
    }
    if (d->stop_wanted) {
        fail(d, "stopped before it started");
        return;
    }
    d->state = DK_STARTING;
    char path[160];
    snprintf(path, sizeof path, "/containers/%s/start", d->id);
    if (call(rd, d, "POST", path, NULL, CALL_TIMEOUT_MS, started) < 0)
        fail(d, "cannot reach the Docker engine");
}

static void create(struct dk *d)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/create?name=%s", d->name);
    if (call(d->rd, d, "POST", path, d->body, CALL_TIMEOUT_MS, created) < 0)
        fail(d, "cannot reach the Docker engine");
}

static int64_t new_token(void)
{
    uint64_t t = 0;
    if (getrandom(&t, sizeof t, 0) != (ssize_t)sizeof t)
        t = (uint64_t)util_now_ms() * 2654435761u;
    t &= 0x3fffffffffffffffULL;
    return (int64_t)(t ? t : 1);
}

static int token_pid(int64_t start) { return (int)(start % 2147483646) + 1; }

static int rd_start(struct runner *rn, const struct worker_spec *s, struct worker_state *out,
                    char *err, size_t errlen)
{
    struct runner_docker *rd = rn->impl;
    if (find_session(rd, s->session)) {
        snprintf(err, errlen, "the container of %s has not finished yet", s->session);
        return -1;
    }
    char name[DOCKER_NAME_MAX], listen[ADDR_MAX], address[ADDR_MAX], bind[PATH_MAX];
    docker_container_name(s->id, name, sizeof name);
    int port = 0;
    if (rd->host_net) {
        port = ports_take(&rd->ports);
        if (port < 0) {
            snprintf(err, errlen, "no free port in %d..%d on 127.0.0.1", rd->ports.min, rd->ports.max);
            return -1;
        }
        snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
        snprintf(address, sizeof address, "%s", listen);
    } else {
        snprintf(listen, sizeof listen, "0.0.0.0:%d", WORKER_PORT_IN_NETWORK);
        snprintf(address, sizeof address, "%s:%d", name, WORKER_PORT_IN_NETWORK);
    }
    if (rd->hostdir[0]) {
        snprintf(bind, sizeof bind, "%s/%s", rd->hostdir, s->session);
    } else if (!realpath(s->auth_dir, bind)) {
        snprintf(err, errlen, "auth dir %s: %s", s->auth_dir, strerror(errno));
        ports_mark(&rd->ports, port, 0);
        return -1;
    }
    int64_t start = new_token();
    struct docker_create c = {
        .image = rd->image, .network = rd->network, .instance_id = rd->instance_id,
        .user = rd->user, .bind_source = bind, .listen = listen, .address = address,
        .tz = getenv("TZ"), .start = start, .memory_mb = rd->memory_mb,
        .cpu_millicores = rd->cpu_millicores, .log_max_bytes = rd->log_max,
    };
    struct dk *d = dk_new(rd, s->session, start);
    snprintf(d->name, sizeof d->name, "%s", name);
    d->port = port;
    d->log_path = xstrdup(s->log_path);
    d->body = docker_create_body(&c, s);
    d->state = DK_CREATING;
    create(d);
    memset(out, 0, sizeof *out);
    snprintf(out->backend, sizeof out->backend, "docker");
    out->pid = token_pid(start);
    out->ident = start;
    snprintf(out->address, sizeof out->address, "%s", address);
    return 0;
}

/* ---------- stopping and exits ---------- */

static void killed(struct runner_docker *rd, struct dk *d, const struct httpc_response *res)
{
    /* 404: gone already; 409: not running. Either way it has exited. */
    if (res->status == 404 || res->status == 409)
        exit_seen(d, -1);
    else if (res->status != 204)
        log_warn("runner", "kill of %s failed: status=%ld error=%s", d->name, res->status,
                 res->error ? res->error : "");
}

static void send_kill(struct dk *d, const char *sig)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s/kill?signal=%s", d->id, sig);
    call(d->rd, d, "POST", path, NULL, CALL_TIMEOUT_MS, killed);
}

static void kill_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dk *d = arg;
    if (d->state == DK_RUNNING) {
        log_warn("runner", "worker did not stop in time, killing session=%s container=%s", d->session,
                 d->name);
        send_kill(d, "SIGKILL");
    }
}

static int rd_stop(struct runner *rn, const char *session, const struct worker_state *w, long grace_ms)
{
    struct runner_docker *rd = rn->impl;
    struct dk *d = find_session(rd, session);
    if (!d || (w && w->ident != d->start) || d->state == DK_EXITING)
        return w ? -1 : 0;
    d->grace_ms = grace_ms;
    if (d->state != DK_RUNNING) {
        d->stop_wanted = 1; /* acted on once the container exists */
        return 0;
    }
    send_kill(d, "SIGTERM");
    if (!d->kill_ev) {
        d->kill_ev = evtimer_new(rd->evbase, kill_cb, d);
        struct timeval tv = {grace_ms / 1000, (grace_ms % 1000) * 1000};
        evtimer_add(d->kill_ev, &tv);
    }
    return 0;
}

static void exited_removed(struct runner_docker *rd, struct dk *d, const struct httpc_response *res)
{
    if (res->status != 204 && res->status != 404)
        log_warn("runner", "cannot remove exited container %s: status=%ld", d->name, res->status);
    report(d, NULL);
}

static void remove_exited(struct dk *d)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s?force=1", d->id);
    if (call(d->rd, d, "DELETE", path, NULL, CALL_TIMEOUT_MS, exited_removed) < 0)
        report(d, NULL);
}

/* the container's last output goes to the worker's log file before it is removed */
static void got_logs(struct runner_docker *rd, struct dk *d, const struct httpc_response *res)
{
    if (res->status == 200 && res->len && d->log_path) {
        char *plain = xmalloc(res->len);
        size_t n = docker_demux((const unsigned char *)res->body, res->len, plain, res->len);
        int fd = open(d->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dprintf(fd, "--- output of container %s (id %.12s), last %d lines ---\n", d->name, d->id,
                    LOG_TAIL_LINES);
            if (write(fd, plain, n) != (ssize_t)n)
                log_warn("runner", "short write to %s", d->log_path);
            close(fd);
            /* a container that exits again and again appends each time */
            runner_log_cap(d->log_path, rd->log_max);
        }
        free(plain);
    }
    remove_exited(d);
}

static void exit_seen(struct dk *d, int code)
{
    if (d->state == DK_EXITING || d->gone)
        return;
    d->state = DK_EXITING;
    /* the engine reports a signal death as 128 + the signal */
    if (code > 128 && code < 160) {
        d->signo = code - 128;
        d->exit_code = -1;
    } else {
        d->exit_code = code;
    }
    char path[200];
    snprintf(path, sizeof path, "/containers/%s/logs?stdout=1&stderr=1&tail=%d", d->id, LOG_TAIL_LINES);
    if (call(d->rd, d, "GET", path, NULL, CALL_TIMEOUT_MS, got_logs) < 0)
        remove_exited(d);
}

/* ---------- the event stream and the listing ---------- */

static void event_line(const char *line, size_t len, void *arg)
{
    struct runner_docker *rd = arg;
    struct docker_event ev;
    if (docker_parse_event(line, len, &ev) < 0)
        return;
    if (ev.time > rd->events_since)
        rd->events_since = ev.time;
    if (strcmp(ev.action, "die") != 0 || !find_id(rd, ev.id))
        return;
    if (rd->ndeaths == rd->capdeaths) {
        rd->capdeaths = rd->capdeaths ? rd->capdeaths * 2 : 16;
        rd->deaths = xrealloc(rd->deaths, rd->capdeaths * sizeof *rd->deaths);
    }
    rd->deaths[rd->ndeaths++] = ev;
    event_active(rd->deaths_ev, EV_TIMEOUT, 0);
}

static void deaths_cb(evutil_socket_t fd, short what, void *arg)
{
    struct runner_docker *rd = arg;
    for (size_t i = 0; i < rd->ndeaths; i++) {
        struct dk *d = find_id(rd, rd->deaths[i].id);
        if (d)
            exit_seen(d, rd->deaths[i].exit_code);
    }
    rd->ndeaths = 0;
}

static int events_data(long status, const char *data, size_t len, void *arg)
{
    struct runner_docker *rd = arg;
    if (status != 200)
        return -1;
    rd->reconnect_ms = 0; /* it answered: the next loss starts the back-off afresh */
    docker_lines_feed(&rd->lines, data, len, event_line, rd);
    return 0;
}

static void events_done(const struct httpc_response *res, void *arg)
{
    struct runner_docker *rd = arg;
    rd->events = NULL;
    if (rd->dead)
        return;
    rd->reconnect_ms = rd->reconnect_ms ? rd->reconnect_ms * 2 : 1000;
    if (rd->reconnect_ms > RECONNECT_MAX_MS)
        rd->reconnect_ms = RECONNECT_MAX_MS;
    log_warn("runner", "Docker event stream ended (%s); reconnecting in %ld ms",
             res->error ? res->error : "closed", rd->reconnect_ms);
    struct timeval tv = {rd->reconnect_ms / 1000, (rd->reconnect_ms % 1000) * 1000};
    evtimer_add(rd->reconnect_ev, &tv);
}

static int events_connect(struct runner_docker *rd)
{
    char *filter = label_filter(rd, ",\"type\":[\"container\"],\"event\":[\"die\"]");
    char *url = rd->events_since
                    ? xasprintf(API "/events?since=%lld&filters=%s", (long long)rd->events_since, filter)
                    : xasprintf(API "/events?filters=%s", filter);
    docker_lines_free(&rd->lines);
    docker_lines_init(&rd->lines, EVENT_LINE_MAX);
    rd->events = httpc_stream(url, rd->socket, 5000, events_data, events_done, rd);
    free(url);
    free(filter);
    return rd->events ? 0 : -1;
}

static void reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
    struct runner_docker *rd = arg;
    if (events_connect(rd) < 0) {
        struct httpc_response res = {.error = "cannot open the stream"};
        events_done(&res, rd);
        return;
    }
    list_now(rd); /* whatever died while the stream was down */
}

/* nothing waits on it: the next listing shows whether it went */
static void garbage_removed(struct runner_docker *rd, struct dk *d, const struct httpc_response *res)
{
}

static void listed(struct runner_docker *rd, struct dk *unused, const struct httpc_response *res)
{
    rd->listing = 0;
    if (res->status != 200) {
        log_warn("runner", "cannot list containers: status=%ld error=%s", res->status,
                 res->error ? res->error : "");
        return;
    }
    int max = 100000;
    struct docker_found *f = xcalloc((size_t)max, sizeof *f);
    int n = docker_parse_list(res->body, res->len, rd->instance_id, f, max);
    if (n < 0) {
        /* an answer that is not a listing says nothing about the workers: none is taken
         * for dead on it (the next listing decides) */
        log_warn("runner", "docker: a container listing could not be read; it is ignored");
        free(f);
        return;
    }
    for (struct dk *d = rd->dks, *next; d; d = next) {
        next = d->next; /* exit_seen never unlinks at once: its requests come first */
        /* one that came up after the listing was taken is not in it */
        if (d->state != DK_RUNNING || d->running_seq > rd->list_seq)
            continue;
        int i;
        for (i = 0; i < n && strcmp(f[i].id, d->id) != 0; i++)
            ;
        if (i == n || !f[i].running)
            exit_seen(d, i == n ? -1 : f[i].exit_code);
    }
    for (int i = 0; i < n; i++) {
        if (find_session(rd, f[i].session))
            continue;
        /* ours but no session's: left by an earlier start, or a duplicate */
        log_warn("runner", "removing a container no session owns session=%s id=%.12s running=%d",
                 f[i].session, f[i].id, f[i].running);
        char path[160];
        snprintf(path, sizeof path, "/containers/%s?force=1", f[i].id);
        call(rd, NULL, "DELETE", path, NULL, CALL_TIMEOUT_MS, garbage_removed);
    }
    free(f);
}

static void list_now(struct runner_docker *rd)
{
    if (rd->listing)
        return;
    char *filter = label_filter(rd, "");
    char *path = xasprintf("/containers/json?all=1&filters=%s", filter);
    if (call(rd, NULL, "GET", path, NULL, CALL_TIMEOUT_MS, listed) == 0) {
        rd->listing = 1;
        rd->list_seq = rd->seq;
    }
    free(path);
    free(filter);
}

/* ---------- the rest of the interface ---------- */

static int rd_inspect(struct runner *rn, const struct worker_state *w)
{
    struct runner_docker *rd = rn->impl;
    for (struct dk *d = rd->dks; d; d = d->next)
        if (d->start == w->ident)
            return d->state != DK_EXITING;
    return 0;
}

static int rd_scan(struct runner *rn, struct runner_found *out, int max)
{
    struct runner_docker *rd = rn->impl;
    char *filter = label_filter(rd, "");
    char *path = xasprintf("/containers/json?all=1&filters=%s", filter);
    free(filter);
    long status = 0;
    char *body = NULL, err[256];
    int rc = sync_call(rd->socket, "GET", path, CALL_TIMEOUT_MS, &status, &body, err, sizeof err);
    free(path);
    if (rc < 0 || status != 200) {
        log_error("runner", "cannot list containers at start-up: %s", rc < 0 ? err : "bad status");
        free(body);
        return 0;
    }
    free(rd->found);
    rd->found = xcalloc((size_t)max, sizeof *rd->found);
    int n = docker_parse_list(body, strlen(body), rd->instance_id, rd->found, max);
    free(body);
    rd->nfound = n < 0 ? 0 : n;
    int k = 0;
    for (int i = 0; i < rd->nfound; i++) {
        struct docker_found *f = &rd->found[i];
        if (!f->running) {
            /* an exited container of ours is of no more use */
            char del[160], *ignored = NULL;
            snprintf(del, sizeof del, "/containers/%s?force=1", f->id);
            sync_call(rd->socket, "DELETE", del, CALL_TIMEOUT_MS, &status, &ignored, err, sizeof err);
            free(ignored);
            continue;
        }
        struct runner_found *o = &out[k++];
        memset(o, 0, sizeof *o);
        snprintf(o->session, sizeof o->session, "%s", f->session);
        snprintf(o->w.backend, sizeof o->w.backend, "docker");
        o->w.pid = token_pid(f->start);
        o->w.ident = f->start;
        snprintf(o->w.address, sizeof o->w.address, "%s", f->address);
    }
    return k;
}

static struct docker_found *found_by_start(struct runner_docker *rd, int64_t start)
{
    for (int i = 0; i < rd->nfound; i++)
        if (rd->found[i].start == start)
            return &rd->found[i];
    return NULL;
}

static int rd_adopt(struct runner *rn, const char *session, const struct worker_state *w,
                    const char *log_path)
{
    struct runner_docker *rd = rn->impl;
    struct docker_found *f = found_by_start(rd, w->ident);
    if (!f || strcmp(f->session, session) != 0 || find_session(rd, session))
        return -1;
    struct dk *d = dk_new(rd, session, f->start);
    long id = 0;
    const char *u = strrchr(session, '_');
    if (u)
        util_parse_long(u + 1, 1, LONG_MAX, &id);
    docker_container_name(id, d->name, sizeof d->name);
    snprintf(d->id, sizeof d->id, "%s", f->id);
    d->state = DK_RUNNING;
    d->running_seq = ++rd->seq;
    d->log_path = log_path ? xstrdup(log_path) : NULL; /* its last output when it exits */
    const char *colon = strrchr(w->address, ':');
    long port = 0;
    if (rd->host_net && colon && util_parse_long(colon + 1, 1, 65535, &port) == 0) {
        d->port = (int)port;
        ports_mark(&rd->ports, d->port, 1);
    }
    log_info("runner", "adopted running container session=%s container=%s id=%.12s", session,
             d->name, d->id);
    return 0;
}

static void rd_kill_found(struct runner *rn, const struct worker_state *w, long grace_ms)
{
    struct runner_docker *rd = rn->impl;
    struct docker_found *f = found_by_start(rd, w->ident);
    if (!f)
        return;
    char path[200], err[256], *body = NULL;
    long status = 0;
    snprintf(path, sizeof path, "/containers/%s/stop?t=%ld", f->id, (grace_ms + 999) / 1000);
    sync_call(rd->socket, "POST", path, grace_ms + CALL_TIMEOUT_MS, &status, &body, err, sizeof err);
    free(body);
    body = NULL;
    snprintf(path, sizeof path, "/containers/%s?force=1", f->id);
    sync_call(rd->socket, "DELETE", path, CALL_TIMEOUT_MS, &status, &body, err, sizeof err);
    free(body);
}

static void rd_tick(struct runner *rn)
{
    struct runner_docker *rd = rn->impl;
    free(rd->found); /* adoption is over once the loop runs */
    rd->found = NULL;
    rd->nfound = 0;
    list_now(rd);
}

static int rd_count(struct runner *rn) { return ((struct runner_docker *)rn->impl)->ndks; }

static void rd_free(struct runner_docker *rd)
{
    while (rd->dks) {
        struct dk *d = rd->dks;
        rd->dks = d->next;
        if (d->kill_ev)
            event_free(d->kill_ev);
        d->gone = 1;
        d->ops = 0;
        dk_release(d);
    }
    if (rd->reconnect_ev)
        event_free(rd->reconnect_ev);
    if (rd->deaths_ev)
        event_free(rd->deaths_ev);
    free(rd->deaths);
    docker_lines_free(&rd->lines);
    ports_free(&rd->ports);
    free(rd->found);
    free(rd->socket);
    free(rd->image);
    free(rd->network);
    free(rd->instance_id);
    free(rd->hostdir);
    free(rd);
}

static void rd_destroy(struct runner *rn)
{
    struct runner_docker *rd = rn->impl;
    if (rd->events)
        httpc_stream_cancel(rd->events);
    rd->events = NULL;
    rd->dead = 1;
    if (rd->reconnect_ev)
        evtimer_del(rd->reconnect_ev);
    if (rd->deaths_ev)
        event_del(rd->deaths_ev);
    for (struct dk *d = rd->dks; d; d = d->next)
        if (d->kill_ev)
            evtimer_del(d->kill_ev);
    /* requests still out point at it: the last answer (httpc_shutdown answers them all)
     * frees it */
    if (!rd->pending)
        rd_free(rd);
}

struct runner *runner_docker_new(struct event_base *base, const struct runner_docker_opts *o,
                                 runner_exit_cb cb, void *arg, char *err, size_t errlen)
{
    long status = 0;
    char *body = NULL;
    if (sync_call(o->socket, "GET", "/_ping", 5000, &status, &body, err, errlen) < 0)
        return NULL;
    free(body);
    body = NULL;
    if (status != 200) {
        snprintf(err, errlen, "the Docker engine at %s answered /_ping with %ld", o->socket, status);
        return NULL;
    }
    char *path = xasprintf("/images/%s/json", o->image);
    int rc = sync_call(o->socket, "GET", path, 10000, &status, &body, err, errlen);
    free(path);
    free(body);
    if (rc < 0)
        return NULL;
    if (status != 200) {
        snprintf(err, errlen, "WORKER_IMAGE %s is not on the engine (build it: make docker-images)",
                 o->image);
        return NULL;
    }
    struct runner_docker *rd = xcalloc(1, sizeof *rd);
    rd->evbase = base;
    rd->cb = cb;
    rd->cb_arg = arg;
    rd->socket = xstrdup(o->socket);
    rd->image = xstrdup(o->image);
    rd->network = xstrdup(o->network);
    rd->instance_id = xstrdup(o->instance_id);
    rd->hostdir = xstrdup(o->sessions_host_dir ? o->sessions_host_dir : "");
    rd->memory_mb = o->memory_mb;
    rd->cpu_millicores = o->cpu_millicores;
    rd->log_max = o->log_max_bytes;
    rd->host_net = strcmp(o->network, "host") == 0;
    snprintf(rd->user, sizeof rd->user, "%u:%u", (unsigned)geteuid(), (unsigned)getegid());
    ports_init(&rd->ports, o->port_min, o->port_max);
    docker_lines_init(&rd->lines, EVENT_LINE_MAX);
    rd->reconnect_ev = evtimer_new(base, reconnect_cb, rd);
    rd->deaths_ev = event_new(base, -1, 0, deaths_cb, rd);
    if (events_connect(rd) < 0) {
        snprintf(err, errlen, "cannot open the Docker event stream");
        rd_free(rd);
        return NULL;
    }
    rd->base = (struct runner){
        .name = "docker",
        .start = rd_start,
        .stop = rd_stop,
        .inspect = rd_inspect,
        .scan = rd_scan,
        .adopt = rd_adopt,
        .kill_found = rd_kill_found,
        .tick = rd_tick,
        .count = rd_count,
        .destroy = rd_destroy,
        .impl = rd,
    };
    return &rd->base;
}
