#include "callfsm.h"

#include <string.h>

static const char *const names[CS__COUNT] = {
    [CS_QUEUED] = "queued",       [CS_DIALING] = "dialing",     [CS_RINGING] = "ringing",
    [CS_IN_PROGRESS] = "in_progress", [CS_COMPLETED] = "completed", [CS_BUSY] = "busy",
    [CS_NO_ANSWER] = "no_answer", [CS_FAILED] = "failed",       [CS_CANCELED] = "canceled",
};

const char *call_status_name(enum call_status s) { return s < CS__COUNT ? names[s] : "unknown"; }

int call_status_parse(const char *name)
{
    for (int i = 0; i < CS__COUNT; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

int callfsm_from_twilio(const char *s)
{
    static const struct {
        const char *twilio;
        enum call_status st;
    } map[] = {
        {"queued", CS_DIALING},   {"initiated", CS_DIALING}, {"ringing", CS_RINGING},
        {"in-progress", CS_IN_PROGRESS}, {"answered", CS_IN_PROGRESS}, {"completed", CS_COMPLETED},
        {"busy", CS_BUSY},        {"no-answer", CS_NO_ANSWER}, {"failed", CS_FAILED},
        {"canceled", CS_CANCELED},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(s, map[i].twilio) == 0)
            return map[i].st;
    return -1;
}

int callfsm_is_terminal(enum call_status s) { return s >= CS_COMPLETED && s < CS__COUNT; }

int callfsm_is_active(enum call_status s) { return s == CS_DIALING || s == CS_RINGING || s == CS_IN_PROGRESS; }

int callfsm_step(enum call_status cur, enum call_status in)
{
    if (cur >= CS__COUNT || in >= CS__COUNT || callfsm_is_terminal(cur))
        return -1;
    /* a queued job has not been dialled: nothing Twilio says can be about it */
    if (cur == CS_QUEUED)
        return -1;
    if (callfsm_is_terminal(in))
        return in;
    return in > cur ? (int)in : -1;
}

int callfsm_retryable(enum call_status s) { return s == CS_BUSY || s == CS_NO_ANSWER; }
