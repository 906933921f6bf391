#include "sessfsm.h"

#include <string.h>

static const char *status_names[SS__COUNT] = {
    [SS_PROVISIONING] = "provisioning", [SS_STARTING] = "starting",
    [SS_QR_READY] = "qr_ready",         [SS_CONNECTED] = "connected",
    [SS_DISCONNECTED] = "disconnected", [SS_LOGGED_OUT] = "logged_out",
    [SS_FAILED] = "failed",             [SS_STOPPED] = "stopped",
};

const char *sess_status_name(enum sess_status s)
{
    return s < SS__COUNT ? status_names[s] : "unknown";
}

int sess_status_parse(const char *name)
{
    for (int i = 0; i < SS__COUNT; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

int sessfsm_is_terminal(enum sess_status s)
{
    return s == SS_LOGGED_OUT || s == SS_FAILED || s == SS_STOPPED;
}

int sessfsm_should_run(enum sess_status s) { return !sessfsm_is_terminal(s); }

int sessfsm_step(enum sess_status cur, enum fsm_input in, struct fsm_result *out)
{
    int terminal = sessfsm_is_terminal(cur);
    out->next = cur;
    out->actions = ACT_NONE;
    switch (in) {
    case FSM_WORKER_STARTED:
        /* a start is only ever scheduled for a session that should run */
        if (terminal)
            return -1;
        out->next = SS_STARTING;
        return 0;
    case FSM_QR:
        /* a stale event from a worker that is being stopped changes nothing */
        if (terminal || cur == SS_PROVISIONING)
            return -1;
        out->next = SS_QR_READY;
        return 0;
    case FSM_CONNECTED:
        if (terminal || cur == SS_PROVISIONING)
            return -1;
        out->next = SS_CONNECTED;
        /* a connection dropped at once is no success: a session that flaps would be
         * restarted every second for ever */
        out->actions = ACT_ARM_STABLE | ACT_BIND_PROXY | ACT_CLEAR_QR;
        return 0;
    case FSM_DISCONNECTED:
        if (terminal || cur == SS_PROVISIONING)
            return -1;
        out->next = SS_DISCONNECTED;
        out->actions = ACT_STOP_WORKER | ACT_RESTART | ACT_CLEAR_QR;
        return 0;
    case FSM_REPLACED:
        /* restarting would take the session back from the other client, which would take
         * it back again: stop, and leave the choice to a person (an API restart) */
        if (terminal || cur == SS_PROVISIONING)
            return -1;
        out->next = SS_FAILED;
        out->actions = ACT_STOP_WORKER | ACT_CLEAR_QR;
        return 0;
    case FSM_LOGGED_OUT:
        /* a stopped session too: a logout its worker confirmed just before a stop */
        if (cur == SS_LOGGED_OUT)
            return -1;
        out->next = SS_LOGGED_OUT;
        out->actions = ACT_STOP_WORKER | ACT_WIPE_AUTH | ACT_CLEAR_QR;
        return 0;
    case FSM_AUTH_FAILURE:
        if (terminal)
            return -1;
        out->next = SS_FAILED;
        out->actions = ACT_STOP_WORKER | ACT_CLEAR_QR;
        return 0;
    case FSM_WORKER_EXITED:
        if (terminal)
            return -1;
        out->next = SS_DISCONNECTED;
        out->actions = ACT_RESTART | ACT_CLEAR_QR;
        return 0;
    case FSM_SILENT:
        if (terminal || cur == SS_PROVISIONING)
            return -1;
        out->next = SS_DISCONNECTED;
        out->actions = ACT_STOP_WORKER | ACT_RESTART | ACT_CLEAR_QR;
        return 0;
    case FSM_CRASH_LOOP:
        if (terminal)
            return -1;
        out->next = SS_FAILED;
        out->actions = ACT_STOP_WORKER | ACT_CLEAR_QR;
        return 0;
    case FSM_NO_PROXY:
        if (terminal)
            return -1;
        out->next = SS_DISCONNECTED;
        out->actions = ACT_STOP_WORKER | ACT_CLEAR_QR;
        return 0;
    case FSM_RESTART:
        /* an explicit restart revives every session: failed, logged out or stopped */
        out->next = cur == SS_PROVISIONING ? SS_PROVISIONING : SS_DISCONNECTED;
        out->actions = ACT_STOP_WORKER | ACT_RESTART_NOW | ACT_CLEAR_QR | ACT_RESET_STREAK;
        return 0;
    case FSM_STOP:
        /* a logged-out session has no link left to keep */
        if (cur == SS_STOPPED || cur == SS_LOGGED_OUT)
            return -1;
        out->next = SS_STOPPED;
        out->actions = ACT_STOP_WORKER | ACT_CLEAR_QR;
        return 0;
    }
    return -1;
}

long backoff_delay_ms(int n, long min_ms, long max_ms, double r01)
{
    if (n < 1)
        n = 1;
    long base = min_ms;
    for (int i = 1; i < n && base < max_ms; i++)
        base *= 2;
    if (base > max_ms)
        base = max_ms;
    if (!(r01 >= 0)) /* also NaN */
        r01 = 0;
    if (r01 >= 1)
        r01 = 0.999999;
    return (long)((double)base * (0.8 + 0.4 * r01));
}
