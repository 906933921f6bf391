#include "callmatch.h"

#include <string.h>

int callmatch_candidate(const struct callmatch_claim *claim, const struct twilio_call *c)
{
    if (strcmp(c->to, claim->to) != 0 || c->created_ms < claim->not_before)
        return 0;
    /* the fields below are compared when Twilio gives them: another number of the
     * account, an incoming call or a leg of a <Dial> is no create of ours */
    if (c->from[0] && strcmp(c->from, claim->from) != 0)
        return 0;
    if (c->direction[0] && strcmp(c->direction, "outbound-api") != 0)
        return 0;
    return !c->child;
}

enum callmatch_result callmatch_pick(const struct callmatch_claim *claim, const struct twilio_call *calls, size_t n,
                                     const unsigned char *held, const int64_t *rivals, size_t nrivals, size_t *pick)
{
    int found = 0;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        if (held[i] || !callmatch_candidate(claim, &calls[i]))
            continue;
        for (size_t r = 0; r < nrivals; r++)
            if (calls[i].created_ms >= rivals[r])
                return CALLMATCH_AMBIGUOUS;
        if (!found || calls[i].created_ms > calls[best].created_ms)
            best = i;
        found = 1;
    }
    if (!found)
        return CALLMATCH_NONE;
    *pick = best;
    return CALLMATCH_ONE;
}
