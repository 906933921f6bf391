#include "simq.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hmac.h"
#include "sim.h"
#include "util.h"

#define SIMQ_BACKOFF_MIN_MS 250
#define SIMQ_BACKOFF_MAX_MS 5000
#define SIMQ_RESPONSE_MAX (64 * 1024)
#define SIMQ_HEADERS_MAX (16 * 1024)
#define SIMQ_LOG_BODY_MAX 200
#define SIMQ_URL_MAX 2048

struct simq_item {
    char *body; /* owned, the exact bytes that are signed and sent */
    size_t len;
    const char *type; /* static */
};

struct simq {
    struct event_base *base;          /* borrowed */
    struct evdns_base *dns;           /* owned, NULL for a numeric host */
    struct evhttp_connection *conn;   /* owned */
    struct event *kick;               /* owned: next send, now or after back-off */
    char *host_hdr;                   /* owned: Host header value */
    char *path;                       /* owned: path?query */
    char *target;                     /* owned: for logs */
    char *session_id;                 /* owned */
    char *secret;                     /* owned */
    struct simq_item *items;          /* items[0] is the oldest */
    size_t n, cap;
    int inflight;                     /* items[0] is on the wire */
    long backoff_ms;                  /* 0 after a success */
    int last_error;                   /* enum evhttp_request_error of the attempt, or -1 */
};

static void simq_schedule(struct simq *q, long delay_ms)
{
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    evtimer_add(q->kick, &tv);
}

/* Starts the next send unless one is on the wire or a back-off is running. */
static void simq_wake(struct simq *q)
{
    if (q->n && !q->inflight && !evtimer_pending(q->kick, NULL))
        simq_schedule(q, 0);
}

static void simq_remove(struct simq *q, size_t i)
{
    free(q->items[i].body);
    memmove(&q->items[i], &q->items[i + 1], (q->n - i - 1) * sizeof q->items[0]);
    q->n--;
}

/* The queue is full. PINGs only say "alive" and a later one says it again,
 * so they go first; the item on the wire is never touched. */
static void simq_drop_one(struct simq *q)
{
    size_t start = q->inflight ? 1 : 0;
    size_t victim = start;
    for (size_t i = start; i < q->n; i++) {
        if (strcmp(q->items[i].type, "PING") == 0) {
            victim = i;
            break;
        }
    }
    sim_log("warn", "event queue full, dropped type=%s queued=%zu", q->items[victim].type, q->n);
    simq_remove(q, victim);
}

/* Copies at most SIMQ_LOG_BODY_MAX bytes of an answer, made safe for one log line. */
static void simq_body_excerpt(struct evhttp_request *req, char *out, size_t outlen)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    ev_ssize_t n = in ? evbuffer_copyout(in, out, outlen - 1) : 0;
    if (n < 0)
        n = 0;
    out[n] = '\0';
    for (ev_ssize_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] == 0x7f)
            out[i] = '?';
}

static const char *simq_error_name(int err)
{
    switch (err) {
    case EVREQ_HTTP_TIMEOUT:
        return "timeout";
    case EVREQ_HTTP_EOF:
        return "eof";
    case EVREQ_HTTP_INVALID_HEADER:
        return "invalid_header";
    case EVREQ_HTTP_BUFFER_ERROR:
        return "connection";
    case EVREQ_HTTP_REQUEST_CANCEL:
        return "cancelled";
    case EVREQ_HTTP_DATA_TOO_LONG:
        return "too_long";
    default:
        return "connection";
    }
}

static void simq_error_cb(enum evhttp_request_error err, void *arg)
{
    struct simq *q = arg;
    q->last_error = (int)err;
}

static void simq_backoff(struct simq *q, int status)
{
    if (q->backoff_ms == 0)
        q->backoff_ms = SIMQ_BACKOFF_MIN_MS;
    else if (q->backoff_ms < SIMQ_BACKOFF_MAX_MS)
        q->backoff_ms = q->backoff_ms * 2 > SIMQ_BACKOFF_MAX_MS ? SIMQ_BACKOFF_MAX_MS : q->backoff_ms * 2;
    if (status)
        sim_log("warn", "event not delivered, will retry type=%s status=%d retry_ms=%ld", q->items[0].type,
                status, q->backoff_ms);
    else
        sim_log("warn", "event not delivered, will retry type=%s error=%s retry_ms=%ld", q->items[0].type,
                simq_error_name(q->last_error), q->backoff_ms);
    simq_schedule(q, q->backoff_ms);
}

/* Decides what an answer means for the head of the queue. libevent frees req
 * after this returns; the next send starts from the kick timer, never from
 * inside this callback. */
static void simq_done_cb(struct evhttp_request *req, void *arg)
{
    struct simq *q = arg;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    q->inflight = 0;
    if (q->n == 0)
        return;

    /* no answer, a server error, or "try later": the daemon may be restarting */
    if (status == 0 || status >= 500 || status == 408 || status == 429) {
        simq_backoff(q, status);
        return;
    }
    if (status >= 200 && status < 300) {
        if (strcmp(q->items[0].type, "PING") != 0 || q->backoff_ms)
            sim_log("info", "event delivered type=%s status=%d", q->items[0].type, status);
    } else {
        /* the daemon read it and refused it: sending it again would not help */
        char excerpt[SIMQ_LOG_BODY_MAX + 1];
        simq_body_excerpt(req, excerpt, sizeof excerpt);
        sim_log("warn", "event refused, dropped type=%s status=%d body=%s", q->items[0].type, status, excerpt);
    }
    q->backoff_ms = 0;
    simq_remove(q, 0);
    simq_wake(q);
}

static void simq_send_head(struct simq *q)
{
    struct simq_item *it = &q->items[0];
    struct evhttp_request *req = evhttp_request_new(simq_done_cb, q);
    if (!req)
        abort();
    evhttp_request_set_error_cb(req, simq_error_cb);

    /* signed at each attempt: a retry after a long outage needs a fresh timestamp */
    char ts[24], sig[HMAC_HEX_LEN + 1], sighdr[HMAC_HEX_LEN + 8];
    snprintf(ts, sizeof ts, "%lld", (long long)(util_now_ms() / 1000));
    hmac_sign_ts_body(q->secret, ts, it->body, it->len, sig);
    snprintf(sighdr, sizeof sighdr, "sha256=%s", sig);

    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", q->host_hdr);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "User-Agent", "switchboard-sim-worker");
    evhttp_add_header(h, "X-Timestamp", ts);
    evhttp_add_header(h, "X-Signature", sighdr);
    evbuffer_add(evhttp_request_get_output_buffer(req), it->body, it->len);

    q->last_error = -1;
    /* set first: a refused connect can run simq_done_cb before this returns */
    q->inflight = 1;
    if (evhttp_make_request(q->conn, req, EVHTTP_REQ_POST, q->path) < 0) {
        /* without a bind address this only fails after libevent freed req itself */
        q->inflight = 0;
        simq_backoff(q, 0);
    }
}

static void simq_kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct simq *q = arg;
    if (q->n && !q->inflight)
        simq_send_head(q);
}

static int simq_parse_url(struct simq *q, const char *url, char **host_out, int *port_out, char *err,
                          size_t errlen)
{
    int rc = -1;
    struct evhttp_uri *uri = NULL;
    if (strlen(url) > SIMQ_URL_MAX) {
        snprintf(err, errlen, "longer than %d characters", SIMQ_URL_MAX);
        goto out;
    }
    uri = evhttp_uri_parse(url);
    if (!uri) {
        snprintf(err, errlen, "not a valid URL");
        goto out;
    }
    const char *scheme = evhttp_uri_get_scheme(uri);
    const char *host = evhttp_uri_get_host(uri);
    const char *path = evhttp_uri_get_path(uri);
    const char *query = evhttp_uri_get_query(uri);
    int port = evhttp_uri_get_port(uri);
    if (!scheme || strcasecmp(scheme, "http") != 0) {
        snprintf(err, errlen, "must start with http:// (the simulator speaks plain HTTP only)");
        goto out;
    }
    if (!host || !*host) {
        snprintf(err, errlen, "has no host");
        goto out;
    }
    if (port == -1)
        port = 80;
    if (port < 1 || port > 65535) {
        snprintf(err, errlen, "has a bad port");
        goto out;
    }
    if (!path || !*path)
        path = "/";
    size_t hl = strlen(host);
    /* an IPv6 literal keeps its brackets in Host but not for connect() */
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']')
        *host_out = xstrndup(host + 1, hl - 2);
    else
        *host_out = xstrdup(host);
    *port_out = port;
    q->host_hdr = port == 80 ? xstrdup(host) : xasprintf("%s:%d", host, port);
    q->path = query && *query ? xasprintf("%s?%s", path, query) : xstrdup(path);
    /* no query in logs: it may carry a token */
    q->target = xasprintf("http://%s%s", q->host_hdr, path);
    rc = 0;
out:
    if (uri)
        evhttp_uri_free(uri);
    return rc;
}

static int simq_is_numeric_host(const char *host)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

struct simq *simq_new(struct event_base *base, const char *url, const char *session_id,
                      const char *secret, int timeout_s, char *err, size_t errlen)
{
    char *host = NULL;
    int port = 0;
    struct simq *q = xcalloc(1, sizeof *q);
    q->base = base;
    q->last_error = -1;
    if (simq_parse_url(q, url, &host, &port, err, errlen) < 0)
        goto fail;
    /* a name is resolved by evdns so that no lookup blocks the loop;
     * a literal address needs no resolver at all */
    if (!simq_is_numeric_host(host)) {
        q->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        if (!q->dns) {
            snprintf(err, errlen, "cannot set up DNS resolution for its host");
            goto fail;
        }
    }
    q->conn = evhttp_connection_base_new(base, q->dns, host, (unsigned short)port);
    if (!q->conn) {
        snprintf(err, errlen, "cannot create a connection to its host");
        goto fail;
    }
    evhttp_connection_set_timeout(q->conn, timeout_s);
    /* retries are ours (ordered, with back-off), not libevent's */
    evhttp_connection_set_retries(q->conn, 0);
    evhttp_connection_set_max_body_size(q->conn, SIMQ_RESPONSE_MAX);
    evhttp_connection_set_max_headers_size(q->conn, SIMQ_HEADERS_MAX);
    q->kick = evtimer_new(base, simq_kick_cb, q);
    if (!q->kick)
        abort();
    q->session_id = xstrdup(session_id);
    q->secret = xstrdup(secret);
    free(host);
    return q;
fail:
    free(host);
    simq_free(q);
    return NULL;
}

void simq_free(struct simq *q)
{
    if (!q)
        return;
    /* frees a request on the wire without calling simq_done_cb */
    if (q->conn)
        evhttp_connection_free(q->conn);
    if (q->dns)
        evdns_base_free(q->dns, 0);
    if (q->kick)
        event_free(q->kick);
    for (size_t i = 0; i < q->n; i++)
        free(q->items[i].body);
    free(q->items);
    free(q->host_hdr);
    free(q->path);
    free(q->target);
    free(q->session_id);
    if (q->secret) {
        memset(q->secret, 0, strlen(q->secret));
        free(q->secret);
    }
    free(q);
}

void simq_post(struct simq *q, const char *type, json_t *data)
{
    json_t *root = json_pack("{s:s, s:s, s:o, s:I}", "sessionId", q->session_id, "type", type, "data", data,
                             "timestamp", (json_int_t)util_now_ms());
    if (!root)
        abort();
    char *body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!body)
        abort();
    if (q->n == SIMQ_MAX)
        simq_drop_one(q);
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->items = xrealloc(q->items, q->cap * sizeof q->items[0]);
    }
    q->items[q->n].body = body;
    q->items[q->n].len = strlen(body);
    q->items[q->n].type = type;
    q->n++;
    simq_wake(q);
}

size_t simq_length(const struct simq *q)
{
    return q->n;
}

const char *simq_target(const struct simq *q)
{
    return q->target;
}
