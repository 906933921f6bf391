/* httpc: outbound HTTP on libcurl multi, driven by the daemon's libevent loop.
 * Every request has a timeout and a response cap. Nothing blocks. */
#ifndef SB_HTTPC_H
#define SB_HTTPC_H

#include <stddef.h>

struct event_base;

struct httpc_response {
    long status;        /* HTTP status, 0 when the request failed */
    const char *error;  /* curl's error text when status is 0 */
    const char *body;   /* NUL-terminated, borrowed for the callback's duration */
    size_t len;
};

typedef void (*httpc_cb)(const struct httpc_response *res, void *arg);

int httpc_init(struct event_base *base);
/* cancels what is in flight: each callback is called once with status 0 and the error
 * "shutting down", so that whatever it owns is released */
void httpc_shutdown(void);

/* headers: NULL-terminated "Name: value" strings, copied. body may be NULL (GET).
 * unix_socket: NULL for TCP. cb is called exactly once, from the loop, never from
 * inside this call. 0 or -1. */
int httpc_request(const char *method, const char *url, const char *const *headers,
                  const char *body, size_t bodylen, long timeout_ms, size_t max_response,
                  const char *unix_socket, httpc_cb cb, void *arg);

/* the same, for a request that must not reach the server twice (it is not idempotent: a
 * Twilio create makes a call each time): sent on a new connection, which libcurl never
 * resubmits on its own. TCP only */
int httpc_request_once(const char *method, const char *url, const char *const *headers, const char *body,
                       size_t bodylen, long timeout_ms, size_t max_response, httpc_cb cb, void *arg);

/* the same, but the connection may only go to a public address: a name that resolves to
 * a loopback, private or link-local address fails as a connection error (customer
 * webhooks: no request into the daemon's own network) */
int httpc_request_public(const char *method, const char *url, const char *const *headers, const char *body,
                         size_t bodylen, long timeout_ms, size_t max_response, httpc_cb cb, void *arg);

/* A long-lived GET whose body is handed over as it arrives: on_data gets each piece
 * (borrowed) with the response status, and returns -1 to end the stream. done is called
 * once when the stream ends (closed, failed, or ended by on_data), with an empty body.
 * No overall timeout; connecting is bounded. Returns a handle, or NULL. */
struct httpc_stream;
typedef int (*httpc_data_cb)(long status, const char *data, size_t len, void *arg);
struct httpc_stream *httpc_stream(const char *url, const char *unix_socket, long connect_timeout_ms,
                                  httpc_data_cb on_data, httpc_cb done, void *arg);
/* ends a stream at once; done is not called. Never from inside its own callbacks. */
void httpc_stream_cancel(struct httpc_stream *h);

/* in-flight requests, for metrics and tests */
int httpc_inflight(void);

#endif
