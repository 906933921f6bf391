#include "pacing.h"

#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

const char *pacing_trust_level(int64_t first_connected_ms, int64_t now_ms)
{
    if (first_connected_ms <= 0 || now_ms < first_connected_ms)
        return "cold";
    int64_t age = now_ms - first_connected_ms;
    if (age < 3 * DAY_MS)
        return "cold";
    if (age < 14 * DAY_MS)
        return "warm";
    return "hot";
}

int pacing_level_valid(const char *name)
{
    return strcmp(name, "cold") == 0 || strcmp(name, "warm") == 0 || strcmp(name, "hot") == 0;
}
