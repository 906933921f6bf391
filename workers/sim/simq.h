/* simq: worker -> daemon events. A bounded FIFO delivered in order, one
 * signed POST at a time over one keep-alive evhttp connection, retried with
 * back-off while the daemon is unreachable or answers 5xx. */
#ifndef SB_SIMQ_H
#define SB_SIMQ_H

#include <jansson.h>
#include <stddef.h>

struct event_base;
struct simq;

#define SIMQ_MAX 256 /* events held at most; the oldest PING goes first */

/* Parses url (http://host[:port]/path) and prepares the connection. timeout_s bounds
 * a request and also how long the idle connection is kept: give it more than the
 * PING interval, or every PING pays a new connection. Borrows base; copies
 * session_id and secret. NULL with a reason in err when the URL is not usable. */
struct simq *simq_new(struct event_base *base, const char *url, const char *session_id,
                      const char *secret, int timeout_s, char *err, size_t errlen);

/* Frees the queue; undelivered events are dropped. NULL is fine. */
void simq_free(struct simq *q);

/* Queues {"sessionId","type","data","timestamp"}. type must be a string with
 * static storage (it is kept for logging); takes ownership of data. */
void simq_post(struct simq *q, const char *type, json_t *data);

/* Events waiting or in flight. */
size_t simq_length(const struct simq *q);

/* "host:port/path" of the target, without credentials, for the log. */
const char *simq_target(const struct simq *q);

#endif
