/* Unit tests of the pure parts of call creation: the spacing of creates to TWILIO_CPS
 * (callpace.h) and which listed call a create with no clear outcome may adopt
 * (callmatch.h). */
#include <stdint.h>
#include <string.h>

#include "callmatch.h"
#include "callpace.h"
#include "tap.h"

static void test_pace(void)
{
    struct callpace p;
    callpace_init(&p, 2, 1000);
    CHECK_EQ_INT(p.interval_ms, 500, "2/s: 500 ms");
    CHECK_EQ_INT(callpace_take(&p, 1000), -1, "a create just before a restart: the first turn is one interval away");
    CHECK_EQ_INT(callpace_ready_at(&p), 1500, "due at 1500");
    CHECK_EQ_INT(callpace_take(&p, 1500), 0, "taken when due");
    CHECK_EQ_INT(callpace_take(&p, 1999), -1, "not twice in one interval");
    /* a claim reserves the turn; nothing else goes until its create has */
    CHECK_EQ_INT(callpace_reserve(&p, 2000), 0, "a claim takes the next turn");
    CHECK(callpace_ready_at(&p) == INT64_MAX, "closed while the claim's create is to go out");
    CHECK_EQ_INT(callpace_take(&p, 9000), -1, "even long after, while reserved");
    CHECK_EQ_INT(callpace_reserve(&p, 9000), -1, "no second claim");
    callpace_release(&p, 2700, 1); /* the commit took 700 ms */
    CHECK_EQ_INT(callpace_ready_at(&p), 3200, "the interval runs from the create itself");
    CHECK_EQ_INT(callpace_reserve(&p, 3200), 0, "the next claim");
    callpace_release(&p, 3210, 0); /* undone: nothing went out */
    CHECK_EQ_INT(callpace_ready_at(&p), 3700, "an undone claim keeps its turn's spacing");
    /* 3 creates made again after a restart and one claim, at 1/s: never closer than 1 s */
    callpace_init(&p, 1, 0);
    int64_t last = -1, now = 0;
    int sent = 0;
    for (; now < 10000 && sent < 4; now += 7) {
        if (sent == 3 ? callpace_reserve(&p, now) == 0 : callpace_take(&p, now) == 0) {
            if (sent == 3)
                callpace_release(&p, now + 3, 1);
            CHECK(last < 0 || now - last >= 1000, "create %d %lld ms after the previous", sent, (long long)(now - last));
            last = now;
            sent++;
        }
    }
    CHECK_EQ_INT(sent, 4, "all four went out");
    /* 0: no spacing */
    callpace_init(&p, 0, 5000);
    CHECK_EQ_INT(callpace_take(&p, 5000), 0, "cps 0: at once");
    CHECK_EQ_INT(callpace_reserve(&p, 5000), 0, "cps 0: a claim at once");
    CHECK_EQ_INT(callpace_reserve(&p, 5000), 0, "cps 0: and another");
    CHECK(callpace_ready_at(&p) <= 5000, "cps 0: a reservation closes nothing");
    callpace_init(&p, 3, 0);
    CHECK_EQ_INT(p.interval_ms, 334, "3/s: rounded up, never faster");
}

static struct twilio_call call(const char *sid, const char *to, const char *from, const char *dir, int child,
                               int64_t created)
{
    struct twilio_call c;
    memset(&c, 0, sizeof c);
    snprintf(c.sid, sizeof c.sid, "%s", sid);
    snprintf(c.to, sizeof c.to, "%s", to);
    snprintf(c.from, sizeof c.from, "%s", from);
    snprintf(c.direction, sizeof c.direction, "%s", dir);
    c.child = child;
    c.created_ms = created;
    return c;
}

static void test_match(void)
{
    const struct callmatch_claim claim = {"+15550000001", "+15005550006", 100000};
    struct twilio_call l[6];
    unsigned char held[6] = {0};
    size_t pick = 99;
    l[0] = call("CA01", "+15550000001", "+15005550006", "outbound-api", 0, 150000);
    CHECK(callmatch_candidate(&claim, &l[0]), "to, from, direction and time: a candidate");
    l[1] = call("CA02", "+15550000002", "+15005550006", "outbound-api", 0, 150000);
    CHECK(!callmatch_candidate(&claim, &l[1]), "another number");
    l[2] = call("CA03", "+15550000001", "+15009999999", "outbound-api", 0, 150000);
    CHECK(!callmatch_candidate(&claim, &l[2]), "another From of the account");
    l[3] = call("CA04", "+15550000001", "+15005550006", "outbound-dial", 1, 150000);
    CHECK(!callmatch_candidate(&claim, &l[3]), "a leg of another call's <Dial>");
    l[4] = call("CA05", "+15550000001", "+15005550006", "outbound-api", 0, 99000);
    CHECK(!callmatch_candidate(&claim, &l[4]), "made before the claim allows");
    l[5] = call("CA06", "+15550000001", "", "", 0, 100000);
    CHECK(callmatch_candidate(&claim, &l[5]), "fields Twilio left out do not exclude");

    CHECK_EQ_INT(callmatch_pick(&claim, l, 5, held, NULL, 0, &pick), CALLMATCH_ONE, "one candidate, no rival");
    CHECK_EQ_INT((int)pick, 0, "it is the claim's");
    CHECK_EQ_INT(callmatch_pick(&claim, l, 6, held, NULL, 0, &pick), CALLMATCH_ONE, "two candidates, no rival");
    CHECK_EQ_INT((int)pick, 0, "the newest");
    held[0] = 1;
    CHECK_EQ_INT(callmatch_pick(&claim, l, 5, held, NULL, 0, &pick), CALLMATCH_NONE, "a held call is nobody else's");
    held[0] = 0;
    CHECK_EQ_INT(callmatch_pick(&claim, l + 1, 4, held, NULL, 0, &pick), CALLMATCH_NONE, "no candidate");

    /* another open job (another tenant's, say) dialled the same number without a CallSid yet */
    int64_t rival_early = 90000, rival_late = 200000;
    CHECK_EQ_INT(callmatch_pick(&claim, l, 5, held, &rival_early, 1, &pick), CALLMATCH_AMBIGUOUS,
                 "a call the rival's claim could have made too: neither adopts it");
    CHECK_EQ_INT(callmatch_pick(&claim, l, 5, held, &rival_late, 1, &pick), CALLMATCH_ONE,
                 "a rival claimed after the call was made cannot own it");
    CHECK_EQ_INT(callmatch_pick(&claim, l + 1, 4, held, &rival_early, 1, &pick), CALLMATCH_NONE,
                 "a rival with no candidate: none");
    held[0] = 1;
    CHECK_EQ_INT(callmatch_pick(&claim, l, 5, held, &rival_early, 1, &pick), CALLMATCH_NONE,
                 "the rival's call once it holds it: none for this claim");
}

int main(void)
{
    test_pace();
    test_match();
    return TAP_DONE();
}
