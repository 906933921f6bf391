/* callfsm: the states of one call job and how Twilio's statuses move them (SPEC §4.3).
 * Pure. Repeated and out-of-order callbacks are harmless: a state only moves forward,
 * and a terminal state never changes. */
#ifndef SB_CALLFSM_H
#define SB_CALLFSM_H

#include <stdint.h>

#include "model.h"

const char *call_status_name(enum call_status s);
/* our own names ("no_answer"); -1 when unknown */
int call_status_parse(const char *name);
/* Twilio's CallStatus ("queued", "initiated", "ringing", "in-progress", "completed",
 * "busy", "no-answer", "failed", "canceled"); -1 when unknown */
int callfsm_from_twilio(const char *status);

int callfsm_is_terminal(enum call_status s);
/* holds a concurrency slot: dialing, ringing, in progress */
int callfsm_is_active(enum call_status s);
/* the state after `incoming` is reported in `current`; -1 when it is ignored */
int callfsm_step(enum call_status current, enum call_status incoming);
/* a terminal status that the busy / no-answer policy may retry */
int callfsm_retryable(enum call_status s);

#endif
