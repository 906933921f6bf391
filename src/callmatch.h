/* callmatch: which call in Twilio's call list a job whose create had no clear outcome
 * may adopt (SPEC §4.3, start-up and create retries). Twilio's list says nothing that
 * names the job: a call resource carries no StatusCallback, Url or other parameter of
 * its create. So a call is only a candidate (made to the job's number, from TWILIO_FROM,
 * by the REST API and not as a leg of another call, no earlier than the claim allows,
 * and held by no job), and a candidate that another unresolved claim to the same number
 * could have made is not adopted by either: the daemon waits until Twilio's status
 * callback (which names job and attempt), a create's answer or that other job's own
 * check decides it. Pure. */
#ifndef SB_CALLMATCH_H
#define SB_CALLMATCH_H

#include <stddef.h>
#include <stdint.h>

#include "twilio.h"

/* what a claim looks for: `to` and `from` as Twilio writes them (+digits), and the
 * earliest date_created its call can have (the claim, less the clock skew allowed) */
struct callmatch_claim {
    const char *to;
    const char *from;
    int64_t not_before;
};

/* 1 when c may be a call that claim's create made (held or not) */
int callmatch_candidate(const struct callmatch_claim *claim, const struct twilio_call *c);

enum callmatch_result {
    CALLMATCH_NONE,      /* no candidate: no call was made for the claim */
    CALLMATCH_ONE,       /* *pick is the claim's call */
    CALLMATCH_AMBIGUOUS, /* a candidate another unresolved claim could have made too */
};

/* over a list: held[i] when a job holds calls[i]'s sid; rivals: the not_before of every
 * other claim to the same number whose call is not known yet. Of several candidates
 * nobody else could have made, the newest (an older one is a call of an earlier create
 * that a status callback names and hangs up). */
enum callmatch_result callmatch_pick(const struct callmatch_claim *claim, const struct twilio_call *calls, size_t n,
                                     const unsigned char *held, const int64_t *rivals, size_t nrivals, size_t *pick);

#endif
