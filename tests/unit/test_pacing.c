/* Unit tests for src/pacing.h: trust levels by account age, with a fake clock. */
#include <stdint.h>

#include "pacing.h"
#include "tap.h"

#define DAY (24LL * 3600 * 1000)
#define T0 1700000000000LL /* first connection, ms */

static void test_levels(void)
{
    static const struct {
        int64_t first, now;
        const char *want, *desc;
    } t[] = {
        {0, T0, "cold", "never connected (0)"},
        {-1, T0, "cold", "never connected (negative)"},
        {0, 0, "cold", "never connected, clock at 0"},
        {T0, T0, "cold", "just connected"},
        {T0, T0 - 1, "cold", "clock 1 ms before the first connection"},
        {T0, T0 - 30 * DAY, "cold", "clock a month before the first connection"},
        {T0, T0 + DAY, "cold", "day 1"},
        {T0, T0 + 3 * DAY - 1, "cold", "1 ms before day 3"},
        {T0, T0 + 3 * DAY, "warm", "exactly day 3"},
        {T0, T0 + 3 * DAY + 1, "warm", "just after day 3"},
        {T0, T0 + 10 * DAY, "warm", "day 10"},
        {T0, T0 + 14 * DAY - 1, "warm", "1 ms before day 14"},
        {T0, T0 + 14 * DAY, "hot", "exactly day 14"},
        {T0, T0 + 14 * DAY + 1, "hot", "just after day 14"},
        {T0, T0 + 3650 * DAY, "hot", "ten years on"},
        {1, 1 + 3 * DAY, "warm", "first connection at ms 1, day 3"},
        {1, INT64_MAX, "hot", "clock at INT64_MAX"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECK_EQ_STR(pacing_trust_level(t[i].first, t[i].now), t[i].want, "%s is %s", t[i].desc,
                     t[i].want);
}

static void test_valid(void)
{
    static const struct {
        const char *name;
        int valid;
    } t[] = {
        {"cold", 1}, {"warm", 1}, {"hot", 1}, {"", 0}, {"Hot", 0}, {"hot ", 0}, {"tepid", 0},
        {"cool", 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECK_EQ_INT(pacing_level_valid(t[i].name), t[i].valid, "level '%s' valid=%d", t[i].name,
                     t[i].valid);
    /* every level the function returns is a valid one */
    int ok = 1;
    for (int64_t d = -2; d <= 20; d++)
        ok &= pacing_level_valid(pacing_trust_level(T0, T0 + d * DAY));
    CHECK(ok, "every returned level is valid");
}

int main(void)
{
    test_levels();
    test_valid();
    return TAP_DONE();
}
