/* events: the event log (SPEC §2 types) and its live stream. An event is written in the
 * same store batch as the change that caused it, so that it exists exactly when the change
 * does; after the batch commits, the Server-Sent Events clients get it. GET /api/events
 * pages through the log, GET /api/events/stream follows it (Last-Event-ID resumes). Old
 * events are pruned by age and count. */
#ifndef SB_EVENTS_H
#define SB_EVENTS_H

#include <jansson.h>
#include <stdint.h>

struct config;
struct event_base;

int events_init(struct event_base *base, const struct config *cfg);
/* ends every stream; call before the HTTP server goes */
void events_shutdown(void);
void events_register(void);

/* records one event of the tenant in the current batch; data is taken over; session is
 * "worker_<n>" or NULL */
void events_emit(int64_t tenant_id, const char *type, const char *session, json_t *data);

/* 1 when type[0..len) is one of the SPEC §2 event types */
#include <stddef.h>
int events_type_known(const char *type, size_t len);

/* open streams, for /metrics */
int events_streams(void);

#endif
