/* calls: outbound call campaigns through Twilio (SPEC §4.3). Jobs wait in the store;
 * per tenant at most CALL_CONCURRENCY of them hold a slot (dialing, ringing, in
 * progress). A job is claimed (status dialing, committed) before its call is created;
 * a terminal status callback frees the slot and the next job is claimed in the same
 * turn of the loop. Every create, a create made again after a restart or after an
 * unconfirmed create included, takes a turn of TWILIO_CPS (callpace.h). After a crash,
 * jobs left dialing without a CallSid are matched against Twilio's call list
 * (callmatch.h) before anything is dialled again. One consumer: this module, on the
 * daemon's one loop. */
#ifndef SB_CALLS_H
#define SB_CALLS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct config;
struct event_base;
struct http_req;

int calls_init(struct event_base *base, const struct config *cfg, char *err, size_t errlen);
void calls_shutdown(void);
/* 1 when Twilio is configured */
int calls_enabled(void);

/* POST /api/outbound_calls/start, after the API checked the leads: starts the calls of
 * `n` leads (borrowed). With n <= CALL_CONCURRENCY answers r once their calls are created
 * (or CALL_START_WAIT_MS passed); else creates a run and answers at once. `skipped`
 * (taken over) is included in the answer. */
void calls_start(struct http_req *r, int64_t tenant_id, const struct lead *leads, size_t n, json_t *skipped);

/* 0, or -1 with an HTTP status, code and message */
struct calls_result {
    int status;
    const char *code;
    char msg[256];
};
int calls_stop_run(int64_t tenant_id, int64_t run_id, json_t **answer, struct calls_result *out);
int calls_cancel_job(int64_t tenant_id, int64_t job_id, int force, json_t **answer, struct calls_result *out);
/* settles jobs older than CALL_STUCK_MS from Twilio (else failed); the answer lists them */
json_t *calls_cleanup_stuck(void);
/* {run_id, status, queued, in_progress, completed, failed, canceled, total_leads, concurrency, ...} */
json_t *calls_run_json(const struct call_run *r);

/* POST /webhook/call_status */
void calls_status_callback(struct http_req *r);

/* {active, limit, enabled} of a tenant's calls into j (for /api/stats) */
void calls_totals_json(int64_t tenant_id, json_t *j);

/* Prometheus lines; caller frees */
char *calls_metrics_text(void);

#endif
