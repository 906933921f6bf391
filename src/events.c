#include "events.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "cron.h"
#include "http.h"
#include "log.h"
#include "outbox.h"
#include "store.h"
#include "util.h"

#define STREAMS_MAX 256
#define STREAMS_PER_TENANT 32 /* so that one tenant cannot take every stream */
#define STREAM_BATCH 500              /* events read per pass for one stream */
#define STREAM_OUT_MAX (4 * 1024 * 1024) /* a reader this far behind is dropped */
#define KEEPALIVE_S 15
#define PRUNE_MS 60000
#define TYPES_MAX 256
#define LIST_MAX 1000

static const char *const known_types[] = {"session.status", "session.qr",  "message.status", "message.received",
                                          "call.status",    "run.status",  "proxy.status",   "alert",
                                          NULL};

struct stream {
    struct http_stream *hs;
    int64_t tenant_id;
    int64_t last_id;
    char types[TYPES_MAX];  /* ",a,b," or "" */
    char session[SESSION_NAME_MAX];
    struct event *keepalive;
    struct stream *next;
};

static const struct config *cfg;
static struct event_base *evbase;
static struct stream *streams;
static int nstreams;
/* Streams read only events known to be committed: the newest id of each batch is passed
 * to a callback that runs after that batch's commit. */
struct batch_mark {
    int64_t max_id;
    uint64_t commits; /* the store's commit count when the batch's first event came */
};
static struct batch_mark *mark;
static int64_t committed_max;
static struct event *more_ev;

int events_streams(void) { return nstreams; }

int events_type_known(const char *type, size_t len)
{
    for (int i = 0; known_types[i]; i++)
        if (strlen(known_types[i]) == len && strncmp(known_types[i], type, len) == 0)
            return 1;
    return 0;
}

/* ---- writing ---- */

static void notify_all(void);

static void batch_committed(void *arg, int ok)
{
    struct batch_mark *m = arg;
    if (ok && m->max_id > committed_max)
        committed_max = m->max_id;
    if (mark == m)
        mark = NULL;
    free(m);
    if (ok && streams)
        notify_all();
}

/* the event id belongs to the open batch */
static void note_event(int64_t id)
{
    struct store_stats st;
    store_get_stats(&st);
    if (!mark || mark->commits != st.commits) {
        /* a first event since the last commit: a batch of its own */
        mark = xmalloc(sizeof *mark);
        mark->commits = st.commits;
        mark->max_id = id;
        store_after_commit(batch_committed, mark);
        return;
    }
    mark->max_id = id;
}

void events_emit(int64_t tenant_id, const char *type, const char *session, json_t *data)
{
    if (!data)
        data = json_object();
    char *text = json_dumps(data, JSON_COMPACT);
    if (!text) {
        log_error("events", "an event could not be encoded type=%s", type);
        json_decref(data);
        return;
    }
    int64_t id = 0, now = util_now_ms();
    if (store_event_insert(tenant_id, type, session, text, now, &id) != STORE_OK) {
        log_error("events", "cannot record an event type=%s", type);
        free(text);
        json_decref(data);
        return;
    }
    free(text);
    if (outbox_wants(tenant_id, type)) {
        /* the payload customer webhooks get: the event as GET /api/events shows it */
        char at[40];
        util_iso8601(now, at, sizeof at);
        json_t *ev = json_pack("{s:I,s:s,s:o,s:O,s:s}", "id", (json_int_t)id, "type", type, "sessionId",
                               session ? json_string(session) : json_null(), "data", data, "at", at);
        char *payload = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
        if (payload)
            outbox_on_event(tenant_id, id, type, payload);
        free(payload);
    }
    json_decref(data);
    note_event(id);
}

/* ---- streams ---- */

static void stream_free(struct stream *s)
{
    for (struct stream **p = &streams; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    nstreams--;
    event_free(s->keepalive);
    free(s);
}

/* the client went away, or fell too far behind */
static void on_close(void *arg, int too_slow)
{
    struct stream *s = arg;
    if (too_slow)
        log_warn("events", "a stream reader is too far behind; its stream is closed last_id=%lld", (long long)s->last_id);
    stream_free(s);
}

static void end_stream(struct stream *s)
{
    http_stream_end(s->hs);
    stream_free(s);
}

struct pass {
    struct evbuffer *out;
    int64_t last_id;
    int n;
};

static void add_event(const struct store_event *e, void *arg)
{
    struct pass *p = arg;
    char at[40];
    util_iso8601(e->at, at, sizeof at);
    /* data is compact JSON: one line, as SSE needs */
    evbuffer_add_printf(p->out, "id: %lld\nevent: %s\ndata: {\"id\":%lld,\"type\":\"%s\",\"sessionId\":", (long long)e->id,
                        e->type, (long long)e->id, e->type);
    if (e->session && *e->session)
        evbuffer_add_printf(p->out, "\"%s\"", e->session);
    else
        evbuffer_add(p->out, "null", 4);
    evbuffer_add_printf(p->out, ",\"data\":%s,\"at\":\"%s\"}\n\n", e->data, at);
    p->last_id = e->id;
    p->n++;
}

/* sends what the stream has not seen yet; 1 when more is left than one pass takes */
static int stream_pass(struct stream *s)
{
    struct pass p = {evbuffer_new(), s->last_id, 0};
    store_event_list(s->tenant_id, s->last_id, committed_max, s->types, s->session, STREAM_BATCH, 0, add_event, &p);
    if (p.n) {
        s->last_id = p.last_id;
        http_stream_send(s->hs, p.out);
    } else {
        evbuffer_free(p.out);
    }
    return p.n == STREAM_BATCH;
}

static void more_cb(evutil_socket_t fd, short what, void *arg) { notify_all(); }

static void notify_all(void)
{
    int more = 0;
    struct stream *s = streams, *next;
    for (; s; s = next) {
        next = s->next;
        more |= stream_pass(s);
    }
    if (more)
        event_active(more_ev, EV_TIMEOUT, 0); /* the rest on the next turn: nothing starves */
}

static void keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
    struct stream *s = arg;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, ": keep-alive\n\n", 14);
    http_stream_send(s->hs, b);
}

/* ",a,b," from "a,b" of known types; -1 with the unknown one in err */
static int parse_types(const char *v, char *out, size_t outlen, char *err, size_t errlen)
{
    out[0] = '\0';
    if (!v || !*v || strcmp(v, "*") == 0)
        return 0;
    size_t used = 0;
    const char *p = v;
    while (*p) {
        size_t l = strcspn(p, ",");
        if (!events_type_known(p, l) || used + l + 2 >= outlen) {
            snprintf(err, errlen, "type must be a comma-separated list of session.status, session.qr, "
                     "message.status, message.received, call.status, run.status, proxy.status, alert");
            return -1;
        }
        used += (size_t)snprintf(out + used, outlen - used, "%s%.*s,", used ? "" : ",", (int)l, p);
        p += l;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* the filters shared by the list and the stream; -1 after answering 400. The start: a
 * stream resumes from Last-Event-ID (what a reconnecting EventSource sends) before ?since=;
 * *since is -1 when neither is given. */
static int filters(struct http_req *r, int stream, char *types, size_t tlen, char *session, size_t slen,
                   int64_t *since)
{
    char err[300];
    if (parse_types(http_query(r, "type"), types, tlen, err, sizeof err) < 0) {
        http_reply_error(r, 400, "INVALID_REQUEST", "%s", err);
        return -1;
    }
    const char *sid = http_query(r, "sessionId");
    if (sid && (strlen(sid) >= slen || strncmp(sid, "worker_", 7) != 0)) {
        http_reply_error(r, 400, "INVALID_REQUEST", "sessionId must look like worker_7");
        return -1;
    }
    snprintf(session, slen, "%s", sid ? sid : "");
    const char *v = stream ? http_header(r, "Last-Event-ID") : NULL;
    if (!v)
        v = http_query(r, "since");
    long n = 0;
    if (v && util_parse_count(v, 0, 999999999999999L, &n) < 0) {
        http_reply_error(r, 400, "INVALID_REQUEST", "since (or Last-Event-ID) must be an event id");
        return -1;
    }
    *since = v ? n : -1;
    return 0;
}

static void list_row(const struct store_event *e, void *arg)
{
    json_error_t je;
    json_t *data = json_loads(e->data, 0, &je);
    json_array_append_new(arg, json_pack("{s:I,s:s,s:o,s:o,s:o}", "id", (json_int_t)e->id, "type", e->type,
                                         "sessionId", e->session && *e->session ? json_string(e->session) : json_null(),
                                         "data", data ? data : json_object(), "at", api_time(e->at)));
}

static void list_events(struct http_req *r)
{
    char types[TYPES_MAX], session[SESSION_NAME_MAX];
    int64_t since;
    if (filters(r, 0, types, sizeof types, session, sizeof session, &since) < 0)
        return;
    if (since < 0)
        since = 0;
    const char *l = http_query(r, "limit"), *last = http_query(r, "last");
    long limit = 100;
    if (l && last) {
        http_reply_error(r, 400, "INVALID_REQUEST", "give limit (a page from since) or last (the newest), not both");
        return;
    }
    if ((l || last) && util_parse_count(l ? l : last, 1, LIST_MAX, &limit) < 0) {
        http_reply_error(r, 400, "INVALID_REQUEST", "%s must be a whole number from 1 to %d", l ? "limit" : "last",
                         LIST_MAX);
        return;
    }
    json_t *list = json_array();
    store_event_list(http_tenant(r), since, last ? committed_max : INT64_MAX, types, session, (int)limit, last != NULL,
                     list_row, list);
    size_t n = json_array_size(list);
    /* after the newest, a stream from nextSince misses nothing: with none, from now */
    json_int_t next = n ? json_integer_value(json_object_get(json_array_get(list, n - 1), "id"))
                        : (last ? committed_max : since);
    http_reply_json(r, 200, json_pack("{s:o,s:I}", "events", list, "nextSince", next));
}

static void stream_events(struct http_req *r)
{
    char types[TYPES_MAX], session[SESSION_NAME_MAX];
    int64_t since;
    if (filters(r, 1, types, sizeof types, session, sizeof session, &since) < 0)
        return;
    if (since < 0)
        since = committed_max; /* no starting point: what happens from now on */
    if (nstreams >= STREAMS_MAX) {
        http_reply_error(r, 503, "TOO_MANY_STREAMS", "at most %d event streams may be open", STREAMS_MAX);
        return;
    }
    int mine = 0;
    for (const struct stream *o = streams; o; o = o->next)
        mine += o->tenant_id == http_tenant(r);
    if (mine >= STREAMS_PER_TENANT) {
        http_reply_error(r, 429, "TOO_MANY_STREAMS", "at most %d event streams per tenant may be open; close one first",
                         STREAMS_PER_TENANT);
        return;
    }
    struct stream *s = xcalloc(1, sizeof *s);
    s->tenant_id = http_tenant(r);
    s->last_id = since;
    snprintf(s->types, sizeof s->types, "%s", types);
    snprintf(s->session, sizeof s->session, "%s", session);
    s->hs = http_stream_begin(r, "text/event-stream; charset=utf-8", STREAM_OUT_MAX, on_close, s);
    s->keepalive = event_new(evbase, -1, EV_PERSIST, keepalive_cb, s);
    struct timeval tv = {KEEPALIVE_S, 0};
    event_add(s->keepalive, &tv);
    s->next = streams;
    streams = s;
    nstreams++;
    /* a reconnecting client asks for a retry delay and gets the backlog at once */
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "retry: 2000\n\n");
    http_stream_send(s->hs, b);
    if (stream_pass(s))
        event_active(more_ev, EV_TIMEOUT, 0);
}

/* ---- pruning ---- */

static void prune_job(void)
{
    int n = store_event_prune(util_now_ms() - cfg->events_max_age_ms, cfg->events_max);
    if (n > 0)
        log_info("events", "pruned old events count=%d", n);
}

static const struct http_route routes[] = {
    {"GET", "/api/events", AUTH_TENANT, list_events},
    {"GET", "/api/events/stream", AUTH_TENANT, stream_events},
    {NULL, NULL, 0, NULL},
};

void events_register(void) { http_add_routes(routes); }

int events_init(struct event_base *base, const struct config *c)
{
    evbase = base;
    cfg = c;
    more_ev = event_new(base, -1, 0, more_cb, NULL);
    cron_every("events.prune", c->monitor_interval_ms < PRUNE_MS ? c->monitor_interval_ms : PRUNE_MS, 1, prune_job);
    committed_max = store_event_last(0);
    return 0;
}

void events_shutdown(void)
{
    while (streams)
        end_stream(streams);
    if (more_ev)
        event_free(more_ev);
    more_ev = NULL;
}
