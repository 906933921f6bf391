#include "httpc.h"

#include <curl/curl.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct xfer {
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char *resp;
    size_t resp_len, resp_cap, max_resp;
    int truncated;
    char errbuf[CURL_ERROR_SIZE];
    httpc_cb cb;
    httpc_data_cb on_data; /* streams: the body goes here piece by piece */
    void *arg;
    struct xfer *prev, *next; /* in-flight list, so that shutdown can free them */
};

struct sockctx {
    struct event *ev;
};

static struct event_base *evbase;
static CURLM *multi;
static struct event *timer_ev;
static int inflight;
static struct xfer *xfers;

static void unlink_xfer(struct xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
}

static void free_xfer(struct xfer *x)
{
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x->resp);
    free(x);
}

static void check_done(void)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        struct xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(multi, easy);
        struct httpc_response res = {0};
        if (code == CURLE_OK && !x->truncated) {
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &res.status);
        } else {
            res.error = x->truncated ? "response too large"
                                     : (x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
        }
        res.body = x->resp ? x->resp : "";
        res.len = x->resp_len;
        inflight--;
        unlink_xfer(x);
        x->cb(&res, x->arg);
        free_xfer(x);
    }
}

static void event_cb(evutil_socket_t fd, short what, void *arg)
{
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(multi, fd, action, &running);
    check_done();
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    int running;
    curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done();
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct sockctx *c = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (c) {
            event_free(c->ev);
            free(c);
            curl_multi_assign(multi, s, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (!c) {
        c = xcalloc(1, sizeof *c);
        curl_multi_assign(multi, s, c);
    } else {
        event_free(c->ev);
    }
    c->ev = event_new(evbase, s, kind, event_cb, NULL);
    event_add(c->ev, NULL);
    return 0;
}

static int timerfn(CURLM *m, long timeout_ms, void *userp)
{
    if (timeout_ms < 0) {
        evtimer_del(timer_ev);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(timer_ev, &tv);
    return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    if (x->on_data) {
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        return x->on_data(status, ptr, n, x->arg) < 0 ? 0 : n;
    }
    if (x->resp_len + n > x->max_resp) {
        x->truncated = 1;
        return 0; /* aborts the transfer */
    }
    if (x->resp_len + n + 1 > x->resp_cap) {
        x->resp_cap = (x->resp_len + n + 1) * 2;
        if (x->resp_cap > x->max_resp + 1)
            x->resp_cap = x->max_resp + 1;
        x->resp = xrealloc(x->resp, x->resp_cap);
    }
    memcpy(x->resp + x->resp_len, ptr, n);
    x->resp_len += n;
    x->resp[x->resp_len] = '\0';
    return n;
}

int httpc_init(struct event_base *base)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    evbase = base;
    multi = curl_multi_init();
    if (!multi)
        return -1;
    timer_ev = evtimer_new(base, timer_cb, NULL);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timerfn);
    /* no cap per host: a transfer waiting for a connection would spend its own timeout in
     * that queue, so one tenant's endpoints that never answer would fail another tenant's
     * on the same host. What is in flight is bounded by the callers: one delivery per
     * customer webhook, one send per session, the call slots, one alert */
    /* idle connections kept for reuse: bounded, so that a burst leaves no lasting memory,
     * and above the ~100 workers a dispatcher keeps busy, so that POST /send reuses them */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 160L);
    return 0;
}

void httpc_shutdown(void)
{
    if (!multi)
        return;
    while (xfers) {
        struct xfer *x = xfers;
        unlink_xfer(x);
        curl_multi_remove_handle(multi, x->easy);
        inflight--;
        struct httpc_response res = {.status = 0, .error = "shutting down", .body = "", .len = 0};
        x->cb(&res, x->arg);
        free_xfer(x);
    }
    inflight = 0;
    curl_multi_cleanup(multi);
    multi = NULL;
    event_free(timer_ev);
    timer_ev = NULL;
    curl_global_cleanup();
}

static void add_xfer(struct xfer *x)
{
    inflight++;
    x->next = xfers;
    if (xfers)
        xfers->prev = x;
    xfers = x;
}

static struct xfer *new_xfer(const char *method, const char *url, const char *const *headers,
                             const char *unix_socket, httpc_cb cb, void *arg)
{
    struct xfer *x = xcalloc(1, sizeof *x);
    x->easy = curl_easy_init();
    if (!x->easy) {
        free(x);
        return NULL;
    }
    x->cb = cb;
    x->arg = arg;
    for (size_t i = 0; headers && headers[i]; i++)
        x->headers = curl_slist_append(x->headers, headers[i]);
    /* no "Expect: 100-continue" round trip on larger bodies */
    x->headers = curl_slist_append(x->headers, "Expect:");
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    if (unix_socket)
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, unix_socket);
    return x;
}

/* CURLOPT_OPENSOCKETFUNCTION of a public-only request: no socket to a loopback, private or
 * link-local address, whatever the name resolved to */
static curl_socket_t open_public(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    if (util_addr_is_private(&a->addr))
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype, a->protocol);
}

enum { REQ_PUBLIC = 1, REQ_ONCE = 2 };

static int request(const char *method, const char *url, const char *const *headers, const char *body,
                   size_t bodylen, long timeout_ms, size_t max_response, const char *unix_socket, int flags,
                   httpc_cb cb, void *arg)
{
    struct xfer *x = new_xfer(method, url, headers, unix_socket, cb, arg);
    if (!x)
        return -1;
    x->max_resp = max_response;
    CURL *e = x->easy;
    if (flags & REQ_ONCE)
        /* libcurl sends a request again, unasked, when a reused connection turns out
         * closed before any answer: the server may have acted on the first one. Not on a
         * connection of its own */
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    if (flags & REQ_PUBLIC) {
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_public);
        /* a pooled connection was checked for someone else, and a proxy from the
         * environment would be the address checked: neither for a public request */
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    if (body) {
        x->body = xmalloc(bodylen + 1);
        memcpy(x->body, body, bodylen);
        x->body[bodylen] = '\0';
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bodylen);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (curl_multi_add_handle(multi, e) != CURLM_OK) {
        free_xfer(x);
        return -1;
    }
    add_xfer(x);
    return 0;
}

int httpc_request(const char *method, const char *url, const char *const *headers, const char *body, size_t bodylen,
                  long timeout_ms, size_t max_response, const char *unix_socket, httpc_cb cb, void *arg)
{
    return request(method, url, headers, body, bodylen, timeout_ms, max_response, unix_socket, 0, cb, arg);
}

int httpc_request_once(const char *method, const char *url, const char *const *headers, const char *body,
                       size_t bodylen, long timeout_ms, size_t max_response, httpc_cb cb, void *arg)
{
    return request(method, url, headers, body, bodylen, timeout_ms, max_response, NULL, REQ_ONCE, cb, arg);
}

int httpc_request_public(const char *method, const char *url, const char *const *headers, const char *body,
                         size_t bodylen, long timeout_ms, size_t max_response, httpc_cb cb, void *arg)
{
    return request(method, url, headers, body, bodylen, timeout_ms, max_response, NULL, REQ_PUBLIC, cb, arg);
}

struct httpc_stream *httpc_stream(const char *url, const char *unix_socket, long connect_timeout_ms,
                                  httpc_data_cb on_data, httpc_cb done, void *arg)
{
    struct xfer *x = new_xfer("GET", url, NULL, unix_socket, done, arg);
    if (!x)
        return NULL;
    x->on_data = on_data;
    curl_easy_setopt(x->easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    /* a stream of its own: never a pooled connection another request could be queued on */
    curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);
    if (curl_multi_add_handle(multi, x->easy) != CURLM_OK) {
        free_xfer(x);
        return NULL;
    }
    add_xfer(x);
    return (struct httpc_stream *)x;
}

void httpc_stream_cancel(struct httpc_stream *h)
{
    struct xfer *x = (struct xfer *)h;
    if (!x || !multi)
        return;
    curl_multi_remove_handle(multi, x->easy);
    inflight--;
    unlink_xfer(x);
    free_xfer(x);
}

int httpc_inflight(void) { return inflight; }
