/* callpace: the spacing of Twilio call creates to TWILIO_CPS, for the whole daemon
 * (SPEC §4.3). Every create takes a turn, whatever made it: a claim takes one for the
 * create that follows its commit (and no other create may go before that one has gone
 * out or been given up), a create made again (after a restart, or after a create whose
 * outcome was unknown) takes one when it is due. Turns are measured from the moment a
 * create goes out. Pure: the caller passes the time (ms). */
#ifndef SB_CALLPACE_H
#define SB_CALLPACE_H

#include <stdint.h>

struct callpace {
    int64_t interval_ms; /* ceil(1000 / cps); 0: no spacing */
    int64_t next_at;     /* the earliest moment of the next create */
    int reserved;        /* claims whose create has not gone out, nor been given up */
};

/* a create may have gone out just before `now` (a restart): the first turn is one
 * interval away */
void callpace_init(struct callpace *p, long cps, int64_t now);
/* when the next turn may be taken: <= now when it may be taken now; INT64_MAX while a
 * claim's create is still to go out (callpace_release opens it) */
int64_t callpace_ready_at(const struct callpace *p);
/* takes the turn for a create that goes out now: 0, or -1 when it is not due */
int callpace_take(struct callpace *p, int64_t now);
/* takes the turn for a claim, whose create goes out after its commit: 0 or -1 */
int callpace_reserve(struct callpace *p, int64_t now);
/* that claim's create goes out now (sent), or never will (the claim was undone) */
void callpace_release(struct callpace *p, int64_t now, int sent);

#endif
