/* pacing: trust levels by account age (SPEC §4.2). Pure; the dispatcher will add the
 * send-time decisions here. */
#ifndef SB_PACING_H
#define SB_PACING_H

#include <stdint.h>

/* "cold" (day 0–3), "warm" (day 3–14), "hot" (14+); a session that never connected is cold */
const char *pacing_trust_level(int64_t first_connected_ms, int64_t now_ms);
/* 1 when name is a level */
int pacing_level_valid(const char *name);

#endif
