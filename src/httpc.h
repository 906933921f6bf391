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

/* in-flight requests, for metrics and tests */
int httpc_inflight(void);

#endif
