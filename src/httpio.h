/* httpio: the HTTP server's I/O threads. Each thread runs an event loop of its own with
 * an evhttp server on the one listening socket: it accepts connections, reads and parses
 * requests, and writes answers. It owns no daemon state. Every parsed request goes to
 * the main loop (on_request); the main loop answers by posting back to the request's
 * thread. So the socket work, the kernel's share of it and HTTP parsing run beside the
 * main loop, which keeps routing, the handlers and the store to itself.
 *
 * Ownership: a request handed to on_request belongs to the main loop until it answers
 * (httpio_reply or httpio_stream_start), which hands it back; its thread leaves it alone
 * in between (evhttp reads nothing more from that connection while a request waits for
 * its answer), so the main loop may read the evhttp request's headers, URI and body and
 * add answer headers. Each function here but httpio_start and httpio_stop is called on
 * the main loop only.
 *
 * Streams: httpio_stream_start turns a request into a chunked answer. The main loop then
 * posts chunks and, once, an end; the thread calls on_stream_closed once, on the main
 * loop, when the stream is over on its side (the client left, it fell too far behind,
 * or the end was written). The main side may forget the stream after that call. */
#ifndef SB_HTTPIO_H
#define SB_HTTPIO_H

#include <stddef.h>

struct event_base;
struct evbuffer;
struct evhttp_request;
struct httpio_req;
struct httpio_stream;

#define HTTPIO_THREADS_MAX 16

struct httpio_config {
    const char *host;
    int port;
    int threads;       /* 1..HTTPIO_THREADS_MAX */
    size_t max_body;
    size_t max_headers;
    int timeout_s;
    /* a request, first on its thread: on_parse does what needs no daemon state and its
     * result comes to on_request, on the main loop (or to on_drop, at stop) */
    void *(*on_parse)(struct evhttp_request *req);
    void (*on_request)(struct httpio_req *hr, void *parsed);
    void (*on_drop)(void *parsed);
    /* a stream is over on the I/O side (too_slow: its reader fell behind); on the main loop */
    void (*on_stream_closed)(void *handle, int too_slow);
};

int httpio_start(struct event_base *main_base, const struct httpio_config *c, char *err, size_t errlen);
/* stops accepting connections; those open are still served */
void httpio_unlisten(void);
/* stops the threads and frees every connection; requests never answered are dropped
 * with them. Call last, after the main loop has had its time to answer (http_drain). */
void httpio_stop(void);

/* the evhttp request of hr, borrowed while the main loop holds hr */
struct evhttp_request *httpio_evreq(struct httpio_req *hr);

/* answers hr (taken back); body is taken over (NULL: no body); reason must be a literal */
void httpio_reply(struct httpio_req *hr, int status, const char *reason, struct evbuffer *body);

/* starts a chunked 200 answer on hr (taken back; its headers set); handle comes back in
 * on_stream_closed. A reader with more than max_backlog bytes unwritten is cut off. */
struct httpio_stream *httpio_stream_start(struct httpio_req *hr, size_t max_backlog, void *handle);
/* sends b's bytes (b is taken over); a no-op once the stream is over on the I/O side */
void httpio_stream_send(struct httpio_stream *s, struct evbuffer *b);
/* ends the stream; s is not used again (on_stream_closed still comes, once) */
void httpio_stream_end(struct httpio_stream *s);

#endif
