/* http: the route table, authentication and JSON answers, over the I/O threads of
 * httpio.h. A request is routed and its body (and a client's JSON) parsed on its I/O
 * thread; authentication, the handler and every function below run on the main loop.
 * Routes are added before http_start and not changed after.
 * Answers are held until the store's batch commits (store_after_commit), so that a
 * client never sees an answer for state that is not durable.
 * A struct http_req lives from the route's handler until its answer is sent; a
 * handler that answers later keeps the pointer and must answer exactly once. */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct http_req;

typedef void (*http_handler)(struct http_req *r);

enum http_auth {
    AUTH_NONE,   /* /health, worker and provider webhooks: they check their own signatures */
    AUTH_TENANT, /* any valid key; acts on its tenant (the admin key acts on 'default') */
    AUTH_ADMIN,  /* the admin key only */
};

struct http_route {
    const char *method;  /* "GET", "POST", "DELETE" */
    const char *pattern; /* "/api/sessions/{id}/qr": {x} matches one path segment */
    enum http_auth auth;
    http_handler fn;
};

#define HTTP_MAX_PARAMS 4
#define TENANT_DEFAULT 1

struct http_options {
    const char *host;
    int port;
    int threads; /* I/O threads (httpio.h) */
    size_t max_body;
};

int http_start(struct event_base *base, const struct http_options *o, const char *admin_key, char *err,
               size_t errlen);
/* stops accepting connections; requests already in hand can still be answered */
void http_close_listener(void);
/* lets the loop write out answers already given, for at most max_ms */
void http_drain(struct event_base *base, long max_ms);
/* frees the server and every connection: call last */
void http_stop(void);
/* routes: a static array ending with a NULL method; borrowed for the daemon's life */
void http_add_routes(const struct http_route *routes);

const char *http_param(struct http_req *r, int i);
int64_t http_tenant(const struct http_req *r);
int http_is_admin(const struct http_req *r);
const char *http_body(struct http_req *r, size_t *len);
const char *http_header(struct http_req *r, const char *name);
/* the request's path and query as received; borrowed */
const char *http_uri(struct http_req *r);
/* value of a query parameter, or NULL; borrowed */
const char *http_query(struct http_req *r, const char *key);

/* The body as a JSON object. On failure answers 400 INVALID_JSON and returns NULL.
 * Caller owns the result (json_decref). */
json_t *http_json_object(struct http_req *r);

/* Answers; each ends the request. json is taken over; body and content_type are
 * borrowed (the body is copied, content_type must be a literal). */
void http_reply_json(struct http_req *r, int status, json_t *body);
void http_reply_raw(struct http_req *r, int status, const char *content_type, const char *body,
                    size_t len);
void http_reply_error(struct http_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Turns the request into a stream (Server-Sent Events): the status and headers go out
 * now and r is freed. The caller sends chunks until it ends the stream, or until
 * on_close(arg, too_slow) tells it the stream is over (the client left, or more than
 * max_backlog bytes waited for it): after either it uses the stream no more, and
 * on_close does not call http_stream_end. */
struct http_stream;
struct evbuffer;
struct http_stream *http_stream_begin(struct http_req *r, const char *content_type, size_t max_backlog,
                                     void (*on_close)(void *arg, int too_slow), void *arg);
/* b is taken over */
void http_stream_send(struct http_stream *s, struct evbuffer *b);
void http_stream_end(struct http_stream *s);

/* answers 200 with len bytes of the open file fd (taken over) */
void http_reply_file(struct http_req *r, int fd, size_t len, const char *content_type);

/* adds a header to the answer to come (before one of the replies); both copied */
void http_set_header(struct http_req *r, const char *name, const char *value);

#define HTTP_SESSION_COOKIE "sb_session"
/* 0 with the tenant (and admin flag) of an API key, -1 when it is no key */
int http_key_check(const char *key, int64_t *tenant_id, int *admin);
/* the value of a request cookie into out; 0 or -1 */
int http_cookie(struct http_req *r, const char *name, char *out, size_t outlen);
/* 0 with the tenant of a valid dashboard login cookie, else -1 */
int http_web_session(struct http_req *r, int64_t *tenant_id, int *admin);

/* SHA-256 hex of an API key, as stored. out holds 65 bytes. */
void http_key_hash(const char *key, char *out);

/* Counter rows for /metrics: calls fn for each (route, status, count). */
void http_metrics_each(void (*fn)(const char *route, int status, uint64_t count, void *arg), void *arg);

#endif
