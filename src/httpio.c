#include "httpio.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

/* evhttp stops reading a connection while its request waits for an answer from 2.1.9 on;
 * before that a client that left could detach a request the main loop still holds */
#if LIBEVENT_VERSION_NUMBER < 0x02010900
#error "libevent 2.1.9 or later is needed (Debian 12 has 2.1.12)"
#endif

/* What goes between the main loop and a thread. REQUEST and CLOSED go to the main loop,
 * the rest to a thread. A REQUEST comes back as the REPLY or START that answers it, so
 * that the op is freed by the thread that made it. */
enum op_kind { OP_REQUEST, OP_CLOSED, OP_REPLY, OP_START, OP_CHUNK, OP_END, OP_UNLISTEN, OP_STOP };

struct op { /* struct httpio_req is a REQUEST op */
    struct op *next;
    enum op_kind kind;
    int status;
    int too_slow;
    const char *reason;
    struct httpio_thread *io;
    struct evhttp_request *req;
    struct httpio_stream *stream;
    struct evbuffer *buf; /* owned */
    void *handle;         /* CLOSED: the stream's; REQUEST: what on_parse made of it */
};

/* a list of ops and an eventfd that is readable while the list may be non-empty */
struct queue {
    pthread_mutex_t lock;
    struct op *head, **tail;
    int fd;
    struct event *ev;
};

/* ops gathered during one turn of a loop, handed over at its end with one wake-up */
struct batch {
    struct op *head, **tail;
    struct event *flush;
};

struct httpio_thread {
    struct queue in;
    struct batch out; /* the main loop's ops for this thread (main loop only) */
    struct batch up;  /* this thread's ops for the main loop (this thread only) */
    struct event_base *base;
    struct evhttp *server;
    struct evhttp_bound_socket *listener;
    pthread_t tid;
    int running;
};

/* The I/O side of a stream, owned by its thread: freed when it takes the main loop's
 * END, which is the last op the main loop posts for it. */
struct httpio_stream {
    struct httpio_thread *io;
    struct evhttp_request *req; /* NULL once the stream is over on this side */
    size_t max_backlog;
    void *handle;
};

static struct httpio_config cfg;
static struct queue to_main = {.fd = -1};
static int started; /* httpio_start got past its checks: httpio_stop has something to undo */
static struct httpio_thread threads[HTTPIO_THREADS_MAX];
static int nthreads;

static struct op *op_new(enum op_kind kind)
{
    struct op *o = xcalloc(1, sizeof *o);
    o->kind = kind;
    return o;
}

static void op_free(struct op *o)
{
    if (o->buf)
        evbuffer_free(o->buf);
    free(o);
}

static int queue_init(struct queue *q, struct event_base *base, event_callback_fn cb, void *arg)
{
    pthread_mutex_init(&q->lock, NULL);
    q->head = NULL;
    q->tail = &q->head;
    q->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->fd < 0)
        return -1;
    q->ev = event_new(base, q->fd, EV_READ | EV_PERSIST, cb, arg);
    return q->ev && event_add(q->ev, NULL) == 0 ? 0 : -1;
}

static void queue_free(struct queue *q)
{
    if (q->ev)
        event_free(q->ev);
    q->ev = NULL;
    if (q->fd >= 0)
        close(q->fd);
    q->fd = -1;
    pthread_mutex_destroy(&q->lock);
}

/* appends the list head..*tail; the consumer is woken only when the queue was empty: it
 * takes the whole queue each time */
static void queue_push(struct queue *q, struct op *head, struct op **tail)
{
    pthread_mutex_lock(&q->lock);
    int was_empty = q->head == NULL;
    *q->tail = head;
    q->tail = tail;
    pthread_mutex_unlock(&q->lock);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t n = write(q->fd, &one, sizeof one);
        (void)n; /* a full counter (it cannot be) would still leave the fd readable */
    }
}

static struct op *queue_take(struct queue *q)
{
    uint64_t v;
    ssize_t n = read(q->fd, &v, sizeof v);
    (void)n; /* EAGAIN: a wake-up already taken with an earlier list */
    pthread_mutex_lock(&q->lock);
    struct op *o = q->head;
    q->head = NULL;
    q->tail = &q->head;
    pthread_mutex_unlock(&q->lock);
    return o;
}

/* a turn's ops wait in b until its flush event, of the loop's lowest priority, runs.
 * libevent runs a lower priority only in a pass of the loop that ran no higher one, so
 * the flush waits while other events keep coming; that is bounded, as each connection
 * has at most one request in flight, and it is what makes the batches */
static void batch_add(struct batch *b, struct op *o)
{
    o->next = NULL;
    if (!b->head)
        event_active(b->flush, EV_TIMEOUT, 0);
    *b->tail = o;
    b->tail = &o->next;
}

static void batch_flush(struct batch *b, struct queue *q)
{
    if (!b->head)
        return;
    queue_push(q, b->head, b->tail);
    b->head = NULL;
    b->tail = &b->head;
}

static int batch_init(struct batch *b, struct event_base *base, event_callback_fn cb, void *arg)
{
    b->head = NULL;
    b->tail = &b->head;
    b->flush = event_new(base, -1, 0, cb, arg);
    return b->flush && event_priority_set(b->flush, event_base_get_npriorities(base) - 1) == 0 ? 0 : -1;
}

static void batch_free(struct batch *b)
{
    if (b->flush)
        event_free(b->flush);
    b->flush = NULL;
}

/* ---- the threads ---- */

static void up_flush(evutil_socket_t fd, short what, void *arg)
{
    struct httpio_thread *io = arg;
    batch_flush(&io->up, &to_main);
}

static void io_request(struct evhttp_request *req, void *arg)
{
    struct httpio_thread *io = arg;
    struct op *o = op_new(OP_REQUEST);
    o->io = io;
    o->req = req;
    o->handle = cfg.on_parse(req);
    batch_add(&io->up, o);
}

/* tells the main loop, once, that the stream is over here */
static void stream_over(struct httpio_stream *s, int too_slow)
{
    s->req = NULL;
    struct op *o = op_new(OP_CLOSED);
    o->handle = s->handle;
    o->too_slow = too_slow;
    batch_add(&s->io->up, o);
}

/* the client went away. libevent 2.1 detaches a request whose reply was started but not
 * ended from its failing connection and leaves it to its owner: free it then. */
static void stream_conn_closed(struct evhttp_connection *conn, void *arg)
{
    struct httpio_stream *s = arg;
    if (!evhttp_request_get_connection(s->req))
        evhttp_request_free(s->req);
    stream_over(s, 0);
}

static void stream_finish(struct httpio_stream *s, int too_slow)
{
    evhttp_connection_set_closecb(evhttp_request_get_connection(s->req), NULL, NULL);
    evhttp_send_reply_end(s->req);
    stream_over(s, too_slow);
}

static void stream_chunk(struct httpio_stream *s, struct evbuffer *b)
{
    if (!s->req)
        return;
    struct evhttp_connection *conn = evhttp_request_get_connection(s->req);
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    if (bev && evbuffer_get_length(bufferevent_get_output(bev)) > s->max_backlog)
        stream_finish(s, 1);
    else
        evhttp_send_reply_chunk(s->req, b);
}

static void io_ops(evutil_socket_t fd, short what, void *arg)
{
    struct httpio_thread *io = arg;
    struct op *o = queue_take(&io->in), *next;
    for (; o; o = next) {
        next = o->next;
        switch (o->kind) {
        case OP_REPLY:
            evhttp_send_reply(o->req, o->status, o->reason, o->buf);
            break;
        case OP_START:
            evhttp_send_reply_start(o->req, 200, "OK");
            evhttp_connection_set_closecb(evhttp_request_get_connection(o->req), stream_conn_closed, o->stream);
            break;
        case OP_CHUNK:
            stream_chunk(o->stream, o->buf);
            break;
        case OP_END:
            if (o->stream->req)
                stream_finish(o->stream, 0);
            free(o->stream);
            break;
        case OP_UNLISTEN:
            if (io->listener)
                evhttp_del_accept_socket(io->server, io->listener);
            io->listener = NULL;
            break;
        case OP_STOP:
            event_base_loopbreak(io->base);
            break;
        case OP_REQUEST:
        case OP_CLOSED:
            break;
        }
        op_free(o);
    }
}

static void *io_main(void *arg)
{
    struct httpio_thread *io = arg;
    char name[16]; /* as top -H and /proc/PID/task/TID/comm show it */
    snprintf(name, sizeof name, "sb-http-%u", (unsigned)(io - threads + 1) % 100);
    pthread_setname_np(pthread_self(), name);
    event_base_dispatch(io->base);
    return NULL;
}

/* ---- the main loop's side ---- */

static void main_ops(evutil_socket_t fd, short what, void *arg)
{
    struct op *o = queue_take(&to_main), *next;
    for (; o; o = next) {
        next = o->next;
        if (o->kind == OP_REQUEST) {
            cfg.on_request((struct httpio_req *)o, o->handle); /* the main loop's until it answers */
            continue;
        }
        if (o->kind == OP_CLOSED)
            cfg.on_stream_closed(o->handle, o->too_slow);
        op_free(o);
    }
}

static void out_flush(evutil_socket_t fd, short what, void *arg)
{
    struct httpio_thread *io = arg;
    batch_flush(&io->out, &io->in);
}

static void post(struct httpio_thread *io, struct op *o) { batch_add(&io->out, o); }

/* at once, for the control ops, which need not keep their order with answers */
static void post_now(struct httpio_thread *io, struct op *o)
{
    o->next = NULL;
    queue_push(&io->in, o, &o->next);
}

struct evhttp_request *httpio_evreq(struct httpio_req *hr) { return ((struct op *)hr)->req; }

void httpio_reply(struct httpio_req *hr, int status, const char *reason, struct evbuffer *body)
{
    struct op *o = (struct op *)hr;
    o->kind = OP_REPLY;
    o->status = status;
    o->reason = reason;
    o->buf = body;
    post(o->io, o);
}

struct httpio_stream *httpio_stream_start(struct httpio_req *hr, size_t max_backlog, void *handle)
{
    struct op *o = (struct op *)hr;
    struct httpio_stream *s = xcalloc(1, sizeof *s);
    s->io = o->io;
    s->req = o->req;
    s->max_backlog = max_backlog;
    s->handle = handle;
    o->kind = OP_START;
    o->stream = s;
    post(o->io, o);
    return s;
}

void httpio_stream_send(struct httpio_stream *s, struct evbuffer *b)
{
    struct op *o = op_new(OP_CHUNK);
    o->stream = s;
    o->buf = b;
    post(s->io, o);
}

void httpio_stream_end(struct httpio_stream *s)
{
    struct op *o = op_new(OP_END);
    o->stream = s;
    post(s->io, o);
}

/* as the main loop's: 0 unused, 1 I/O (the default), 2 the end-of-turn flush */
static struct event_base *new_base(void)
{
    struct event_config *ec = event_config_new();
    if (!ec)
        return NULL;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *b = event_base_new_with_config(ec);
    event_config_free(ec);
    if (b && event_base_priority_init(b, 3) < 0) {
        event_base_free(b);
        b = NULL;
    }
    return b;
}

/* A listening socket on the configured address: with reuseport, one of a group that the
 * kernel spreads new connections over. -1 with errno. */
static int listen_on(int reuseport, int do_listen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", cfg.port);
    if (getaddrinfo(cfg.host, port, &hints, &ai) != 0 || !ai) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    int on = 1, fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || (do_listen && listen(fd, 128) < 0)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        errno = e;
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int thread_init(struct event_base *main_base, struct httpio_thread *io)
{
    io->in.fd = -1;
    if (!(io->base = new_base()) || !(io->server = evhttp_new(io->base)) ||
        queue_init(&io->in, io->base, io_ops, io) < 0 || batch_init(&io->up, io->base, up_flush, io) < 0 ||
        batch_init(&io->out, main_base, out_flush, io) < 0)
        return -1;
    evhttp_set_max_body_size(io->server, (ev_ssize_t)cfg.max_body);
    evhttp_set_max_headers_size(io->server, (ev_ssize_t)cfg.max_headers);
    evhttp_set_timeout(io->server, cfg.timeout_s);
    evhttp_set_allowed_methods(io->server, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_PUT |
                                               EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(io->server, io_request, io);
    /* several threads: each its own socket of one SO_REUSEPORT group, so that the kernel
     * shares the connections out (a shared socket would leave them all to whichever
     * thread wakes first) */
    int fd = listen_on(cfg.threads > 1, 1);
    if (fd < 0)
        return -2;
    io->listener = evhttp_accept_socket_with_handle(io->server, fd);
    if (!io->listener) {
        close(fd);
        return -1;
    }
    return 0;
}

static void thread_free(struct httpio_thread *io)
{
    if (io->server)
        evhttp_free(io->server);
    io->server = NULL;
    io->listener = NULL;
}

/* ops nobody will take any more, after the threads have stopped */
static int drop_queued(void)
{
    int n = 0;
    for (int i = 0; i < nthreads; i++) {
        batch_flush(&threads[i].up, &to_main);
        batch_flush(&threads[i].out, &threads[i].in);
        struct op *o = queue_take(&threads[i].in), *next;
        for (; o; o = next, n++) {
            next = o->next;
            if (o->kind == OP_END)
                free(o->stream);
            op_free(o);
        }
    }
    struct op *o = queue_take(&to_main), *next;
    for (; o; o = next, n++) {
        next = o->next;
        if (o->kind == OP_REQUEST)
            cfg.on_drop(o->handle);
        if (o->kind == OP_CLOSED)
            cfg.on_stream_closed(o->handle, o->too_slow); /* may post an END: taken next round */
        op_free(o);
    }
    return n;
}

int httpio_start(struct event_base *main_base, const struct httpio_config *c, char *err, size_t errlen)
{
    cfg = *c;
    nthreads = 0;
    if (c->threads < 1 || c->threads > HTTPIO_THREADS_MAX) {
        snprintf(err, errlen, "http: %d I/O threads: from 1 to %d", c->threads, HTTPIO_THREADS_MAX);
        return -1;
    }
    started = 1;
    if (queue_init(&to_main, main_base, main_ops, NULL) < 0) {
        snprintf(err, errlen, "http: cannot set up the I/O threads' queue");
        goto fail;
    }
    if (c->threads > 1) {
        /* A group of SO_REUSEPORT sockets would let a second daemon on this port join it
         * unnoticed: first a plain bind, which fails while anyone else holds the port
         * (and makes a later daemon's plain bind fail against this group). */
        int guard = listen_on(0, 0);
        if (guard < 0) {
            snprintf(err, errlen, "http: cannot listen on %s:%d (in use, or not an address here)", c->host, c->port);
            goto fail;
        }
        close(guard);
    }
    for (; nthreads < c->threads; nthreads++) {
        int rc = thread_init(main_base, &threads[nthreads]);
        if (rc < 0) {
            nthreads++; /* freed below */
            if (rc == -2)
                snprintf(err, errlen, "http: cannot listen on %s:%d (in use, or not an address here)", c->host,
                         c->port);
            else
                snprintf(err, errlen, "http: cannot set up I/O thread %d", nthreads);
            goto fail;
        }
    }
    /* the threads take no signals: the main loop handles them */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&threads[i].tid, NULL, io_main, &threads[i]) != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            snprintf(err, errlen, "http: cannot start I/O thread %d", i + 1);
            goto fail;
        }
        threads[i].running = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
fail:
    httpio_stop();
    return -1;
}

void httpio_unlisten(void)
{
    for (int i = 0; i < nthreads; i++)
        post_now(&threads[i], op_new(OP_UNLISTEN));
}

void httpio_stop(void)
{
    if (!started)
        return; /* never started, or stopped already (main's exit path stops it again) */
    started = 0;
    for (int i = 0; i < nthreads; i++) {
        if (threads[i].running) {
            batch_flush(&threads[i].out, &threads[i].in); /* the answers first */
            post_now(&threads[i], op_new(OP_STOP));
            pthread_join(threads[i].tid, NULL);
            threads[i].running = 0;
        }
    }
    /* freeing a server closes its connections; a stream's close comes back as CLOSED */
    for (int i = 0; i < nthreads; i++)
        thread_free(&threads[i]);
    while (drop_queued() > 0) {
    }
    for (int i = 0; i < nthreads; i++) {
        batch_free(&threads[i].up);
        batch_free(&threads[i].out);
        queue_free(&threads[i].in);
        if (threads[i].base)
            event_base_free(threads[i].base);
        memset(&threads[i], 0, sizeof threads[i]);
    }
    nthreads = 0;
    queue_free(&to_main);
}
