#include "http.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "hmac.h"
#include "httpio.h"
#include "log.h"
#include "store.h"
#include "util.h"

struct http_req {
    struct httpio_req *hr;      /* handed back with the answer */
    struct evhttp_request *req; /* hr's: its I/O thread leaves it alone until then */
    const struct http_route *route;
    const char *route_label;
    char *params[HTTP_MAX_PARAMS];
    int64_t tenant_id;
    int admin;
    struct evkeyvalq query; /* parsed by parse() */
    char *body;
    size_t bodylen;
    /* made on the I/O thread (parse): an answer already known, the API key given, and
     * the body as JSON (json_failed: the reason it is not) */
    int early_status;
    const char *early_code;
    char *early_msg;
    const char *key; /* in req's headers */
    json_t *json;
    char *json_failed;
    /* the answer, kept until the batch commits */
    int status;
    const char *content_type; /* a literal */
    struct evbuffer *out;
};

#define MAX_ROUTE_TABLES 16
#define MAX_METRIC_ROWS 512

struct metric_row {
    const char *route;
    int status;
    uint64_t count;
};

/* the main side of a stream; freed when its I/O side reports it over */
struct http_stream {
    struct httpio_stream *io;
    void (*on_close)(void *arg, int too_slow);
    void *arg;
    int ended;
};

static const struct http_route *tables[MAX_ROUTE_TABLES];
static int ntables;
static char *admin_key;
static struct metric_row metric_rows[MAX_METRIC_ROWS];
static int nmetric_rows;

void http_add_routes(const struct http_route *routes)
{
    if (ntables < MAX_ROUTE_TABLES)
        tables[ntables++] = routes;
}

const char *http_param(struct http_req *r, int i) { return i < HTTP_MAX_PARAMS ? r->params[i] : NULL; }
int64_t http_tenant(const struct http_req *r) { return r->tenant_id; }
int http_is_admin(const struct http_req *r) { return r->admin; }

const char *http_body(struct http_req *r, size_t *len)
{
    *len = r->bodylen;
    return r->body;
}

const char *http_header(struct http_req *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

const char *http_uri(struct http_req *r) { return evhttp_request_get_uri(r->req); }

const char *http_query(struct http_req *r, const char *key) { return evhttp_find_header(&r->query, key); }

void http_key_hash(const char *key, char *out) { hmac_sha256_plain_hex(key, strlen(key), out); }

static void count_metric(const char *route, int status)
{
    /* labels are the route table's own strings (or "other"): pointers compare */
    for (int i = 0; i < nmetric_rows; i++) {
        if (metric_rows[i].status == status && metric_rows[i].route == route) {
            metric_rows[i].count++;
            return;
        }
    }
    if (nmetric_rows < MAX_METRIC_ROWS)
        metric_rows[nmetric_rows++] = (struct metric_row){route, status, 1};
}

void http_metrics_each(void (*fn)(const char *route, int status, uint64_t count, void *arg), void *arg)
{
    for (int i = 0; i < nmetric_rows; i++)
        fn(metric_rows[i].route, metric_rows[i].status, metric_rows[i].count, arg);
}

static void req_free(struct http_req *r)
{
    for (int i = 0; i < HTTP_MAX_PARAMS; i++)
        free(r->params[i]);
    evhttp_clear_headers(&r->query);
    free(r->body);
    free(r->early_msg);
    json_decref(r->json);
    free(r->json_failed);
    if (r->out)
        evbuffer_free(r->out);
    free(r);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "";
    }
}

static void send_now(void *arg, int ok)
{
    struct http_req *r = arg;
    if (!ok) {
        /* the state this answer described did not become durable */
        static const char msg[] =
            "{\"error\":{\"code\":\"STORE_ERROR\",\"message\":\"the change could not be saved; nothing was done\"}}";
        evbuffer_drain(r->out, evbuffer_get_length(r->out));
        evbuffer_add(r->out, msg, sizeof msg - 1);
        r->content_type = "application/json";
        r->status = 500;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", r->content_type);
    /* for browsers and caches in front of the API; machine webhooks go without */
    if (!r->route || r->route->auth != AUTH_NONE) {
        evhttp_add_header(h, "Cache-Control", "no-store");
        evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    }
    count_metric(r->route_label, r->status);
    httpio_reply(r->hr, r->status, reason_phrase(r->status), r->out);
    r->out = NULL;
    req_free(r);
}

void http_reply_raw(struct http_req *r, int status, const char *content_type, const char *body,
                    size_t len)
{
    r->status = status;
    r->content_type = content_type;
    r->out = evbuffer_new();
    evbuffer_add(r->out, body, len);
    store_after_commit(send_now, r);
}

struct http_stream *http_stream_begin(struct http_req *r, const char *content_type, size_t max_backlog,
                                     void (*on_close)(void *arg, int too_slow), void *arg)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    count_metric(r->route_label, 200);
    struct http_stream *s = xcalloc(1, sizeof *s);
    s->on_close = on_close;
    s->arg = arg;
    s->io = httpio_stream_start(r->hr, max_backlog, s);
    req_free(r);
    return s;
}

void http_stream_send(struct http_stream *s, struct evbuffer *b) { httpio_stream_send(s->io, b); }

void http_stream_end(struct http_stream *s)
{
    s->ended = 1;
    httpio_stream_end(s->io);
}

static void stream_closed(void *handle, int too_slow)
{
    struct http_stream *s = handle;
    if (!s->ended) {
        s->ended = 1;
        s->on_close(s->arg, too_slow);
        httpio_stream_end(s->io);
    }
    free(s);
}

void http_reply_file(struct http_req *r, int fd, size_t len, const char *content_type)
{
    r->status = 200;
    r->content_type = content_type;
    r->out = evbuffer_new();
    evbuffer_add_file(r->out, fd, 0, (ev_off_t)len);
    store_after_commit(send_now, r);
}

void http_set_header(struct http_req *r, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->req), name, value);
}

static void free_dumped(const void *data, size_t len, void *arg) { free(arg); }

void http_reply_json(struct http_req *r, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) {
        /* a value that jansson refused (not UTF-8): a bug, but not one to die of */
        static const char msg[] = "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"the answer could not be encoded\"}}";
        log_error("http", "answer could not be encoded route=%s", r->route_label);
        http_reply_raw(r, 500, "application/json", msg, sizeof msg - 1);
        return;
    }
    r->status = status;
    r->content_type = "application/json";
    r->out = evbuffer_new();
    /* the dumped text goes to the socket as it is, freed once written */
    evbuffer_add_reference(r->out, s, strlen(s), free_dumped, s);
    store_after_commit(send_now, r);
}

void http_reply_error(struct http_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    util_utf8_fix(msg); /* it may quote bytes a client sent */
    http_reply_json(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

/* the body as a JSON object, or NULL with the reason in why (allocated) */
static json_t *parse_json(const char *body, size_t len, char **why)
{
    if (len == 0) {
        *why = xstrdup("the request needs a JSON object body");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        *why = xasprintf("body is not valid JSON: %s (line %d)", e.text, e.line);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *why = xstrdup("body must be a JSON object");
        return NULL;
    }
    return j;
}

json_t *http_json_object(struct http_req *r)
{
    json_t *j = r->json;
    r->json = NULL;
    if (!j && !r->json_failed)
        j = parse_json(r->body, r->bodylen, &r->json_failed);
    if (!j)
        http_reply_error(r, 400, "INVALID_JSON", "%s", r->json_failed);
    return j;
}

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    default: return "OTHER";
    }
}

/* 1 when path matches pattern; captures {x} segments into r->params */
static int match(const char *pattern, const char *path, struct http_req *r)
{
    const char *p = pattern, *s = path;
    int np = 0;
    char *caps[HTTP_MAX_PARAMS] = {0};
    while (*p && *s) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *se = strchr(s, '/');
            if (!pe)
                goto no;
            if (!se)
                se = s + strlen(s);
            if (se == s || np >= HTTP_MAX_PARAMS)
                goto no;
            caps[np++] = xstrndup(s, (size_t)(se - s));
            p = pe + 1;
            s = se;
        } else if (*p == *s) {
            p++;
            s++;
        } else {
            goto no;
        }
    }
    if (*p || *s)
        goto no;
    for (int i = 0; i < np; i++)
        r->params[i] = caps[i];
    return 1;
no:
    for (int i = 0; i < np; i++)
        free(caps[i]);
    return 0;
}

int http_key_check(const char *key, int64_t *tenant_id, int *admin)
{
    if (!key || !*key || strlen(key) > 256)
        return -1;
    if (hmac_equal(key, strlen(key), admin_key, strlen(admin_key))) {
        *admin = 1;
        *tenant_id = TENANT_DEFAULT;
        return 0;
    }
    char hash[HMAC_HEX_LEN + 1];
    http_key_hash(key, hash);
    *admin = 0;
    return store_apikey_lookup(hash, tenant_id) == STORE_OK ? 0 : -1;
}

int http_cookie(struct http_req *r, const char *name, char *out, size_t outlen)
{
    const char *c = http_header(r, "Cookie");
    size_t nl = strlen(name);
    while (c && *c) {
        while (*c == ' ' || *c == ';')
            c++;
        size_t l = strcspn(c, ";");
        if (l > nl && strncmp(c, name, nl) == 0 && c[nl] == '=') {
            size_t vl = l - nl - 1;
            if (vl >= outlen)
                return -1;
            memcpy(out, c + nl + 1, vl);
            out[vl] = '\0';
            return 0;
        }
        c += l;
    }
    return -1;
}

int http_web_session(struct http_req *r, int64_t *tenant_id, int *admin)
{
    char token[80], hash[HMAC_HEX_LEN + 1];
    if (http_cookie(r, HTTP_SESSION_COOKIE, token, sizeof token) < 0 || strlen(token) < 32)
        return -1;
    http_key_hash(token, hash);
    return store_web_get(hash, util_now_ms(), tenant_id, admin) == STORE_OK ? 0 : -1;
}

/* an API key (parse found it), else the dashboard's session cookie */
static int authenticate(struct http_req *r)
{
    if (r->key)
        return http_key_check(r->key, &r->tenant_id, &r->admin);
    return http_web_session(r, &r->tenant_id, &r->admin);
}

static void early(struct http_req *r, int status, const char *code, char *msg)
{
    r->early_status = status;
    r->early_code = code;
    r->early_msg = msg;
}

#define QUERY_PARAMS_MAX 32 /* no route reads more than a handful */

/* The query string into q: name=value pairs joined by '&', each name once, no NUL.
 * NULL, or why not (allocated). libevent's parser gives up on a part without '=', and
 * a handler would then see no parameter at all: a filter or a bound silently dropped. */
static char *parse_query(const struct evhttp_uri *uri, struct evkeyvalq *q)
{
    const char *s = uri ? evhttp_uri_get_query(uri) : NULL;
    if (!s || !*s)
        return NULL;
    if (strcasestr(s, "%00"))
        return xstrdup("the query string must not hold %00");
    if (evhttp_parse_query_str(s, q) < 0)
        return xstrdup("the query string must be name=value pairs joined by &");
    int n = 0;
    for (struct evkeyval *a = TAILQ_FIRST(q); a; a = TAILQ_NEXT(a, next))
        if (++n > QUERY_PARAMS_MAX)
            return xasprintf("the query string has more than %d parameters", QUERY_PARAMS_MAX);
    for (struct evkeyval *a = TAILQ_FIRST(q); a; a = TAILQ_NEXT(a, next))
        for (struct evkeyval *b = TAILQ_NEXT(a, next); b; b = TAILQ_NEXT(b, next))
            if (strcmp(a->key, b->key) == 0)
                return xasprintf("the query string gives '%.64s' more than once", a->key);
    return NULL;
}

/* On the request's I/O thread: what needs no daemon state (the route tables are fixed
 * before the threads start). The rest is serve's, on the main loop. */
static void *parse(struct evhttp_request *req)
{
    struct http_req *r = xcalloc(1, sizeof *r);
    r->req = req;
    r->route_label = "other";
    TAILQ_INIT(&r->query);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *method = method_name(evhttp_request_get_command(req));
    if (!path || !*path) {
        early(r, 400, "BAD_REQUEST", xstrdup("the request has no path"));
        return r;
    }
    const struct http_route *found = NULL;
    int path_matched = 0;
    for (int t = 0; t < ntables && !found; t++) {
        for (const struct http_route *rt = tables[t]; rt->method; rt++) {
            if (!match(rt->pattern, path, r))
                continue;
            path_matched = 1;
            if (strcmp(rt->method, method) == 0) {
                found = rt;
                break;
            }
            for (int i = 0; i < HTTP_MAX_PARAMS; i++) {
                free(r->params[i]);
                r->params[i] = NULL;
            }
        }
    }
    if (!found) {
        if (path_matched)
            early(r, 405, "METHOD_NOT_ALLOWED", xasprintf("%s is not allowed on %s", method, path));
        else
            early(r, 404, "NOT_FOUND", xasprintf("no route %s %s", method, path));
        return r;
    }
    r->route = found;
    r->route_label = found->pattern;
    char *why = parse_query(uri, &r->query);
    if (why) {
        early(r, 400, "INVALID_REQUEST", why);
        return r;
    }
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    if (found->auth != AUTH_NONE) {
        r->key = evhttp_find_header(h, "X-API-Key");
        const char *a = r->key ? NULL : evhttp_find_header(h, "Authorization");
        if (a && strncasecmp(a, "Bearer ", 7) == 0)
            r->key = a + 7;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    r->body = xmalloc(len + 1);
    evbuffer_remove(in, r->body, len);
    r->body[len] = '\0';
    r->bodylen = len;
    /* a JSON body of a client's request is parsed here too (a worker's or Twilio's is
     * checked against its signature first, by its handler) */
    const char *ct = evhttp_find_header(h, "Content-Type");
    if (found->auth != AUTH_NONE && len && ct && strncasecmp(ct, "application/json", 16) == 0)
        r->json = parse_json(r->body, len, &r->json_failed);
    return r;
}

/* on the main loop */
static void serve(struct httpio_req *hr, void *parsed)
{
    struct http_req *r = parsed;
    r->hr = hr;
    if (r->early_status) {
        http_reply_error(r, r->early_status, r->early_code, "%s", r->early_msg);
        return;
    }
    if (r->route->auth != AUTH_NONE) {
        if (authenticate(r) < 0) {
            http_reply_error(r, 401, "UNAUTHORIZED",
                             "a valid API key is needed in X-API-Key or Authorization: Bearer (or a dashboard login)");
            return;
        }
        if (r->route->auth == AUTH_ADMIN && !r->admin) {
            http_reply_error(r, 403, "FORBIDDEN", "this route needs the admin key");
            return;
        }
    }
    r->route->fn(r);
}

static void drop(void *parsed) { req_free(parsed); }

int http_start(struct event_base *base, const struct http_options *o, const char *key, char *err, size_t errlen)
{
    struct httpio_config c = {
        .host = o->host,
        .port = o->port,
        .threads = o->threads,
        .max_body = o->max_body,
        .max_headers = 16 * 1024,
        .timeout_s = 60,
        .on_parse = parse,
        .on_request = serve,
        .on_drop = drop,
        .on_stream_closed = stream_closed,
    };
    if (httpio_start(base, &c, err, errlen) < 0)
        return -1;
    admin_key = xstrdup(key);
    return 0;
}

void http_close_listener(void)
{
    httpio_unlisten();
}

void http_drain(struct event_base *base, long max_ms)
{
    /* only the I/O threads' queue still has events here: the rest is torn down */
    int64_t end = util_mono_ms() + max_ms;
    while (util_mono_ms() < end && event_base_loop(base, EVLOOP_NONBLOCK) == 0)
        usleep(2000);
}

void http_stop(void)
{
    httpio_stop();
    free(admin_key);
    admin_key = NULL;
}
