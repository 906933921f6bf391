/* sessfsm: the session state machine of SPEC §2 and the restart back-off.
 * Pure: no I/O, no clock; the session service applies the actions. */
#ifndef SB_SESSFSM_H
#define SB_SESSFSM_H

#include "model.h"

enum fsm_input {
    FSM_WORKER_STARTED, /* the runner started a worker */
    FSM_QR,             /* QR_CODE or PAIRING_CODE */
    FSM_CONNECTED,
    FSM_DISCONNECTED,   /* DISCONNECTED, not logged out */
    FSM_REPLACED,       /* DISCONNECTED 440: another client took the session over */
    FSM_LOGGED_OUT,     /* DISCONNECTED with loggedOut, or logout by API */
    FSM_AUTH_FAILURE,
    FSM_WORKER_EXITED,  /* the worker process/container ended */
    FSM_SILENT,         /* watchdog: no PING in time, or /health unanswered */
    FSM_CRASH_LOOP,     /* too many starts in a row without connecting */
    FSM_NO_PROXY,       /* its proxy went bad and no other has room */
    FSM_RESTART,        /* restart asked by API or by a proxy move */
    FSM_STOP,           /* stop asked (delete) */
};

enum fsm_action {
    ACT_NONE = 0,
    ACT_RESTART = 1 << 0,      /* schedule a start after the back-off delay */
    ACT_RESTART_NOW = 1 << 1,  /* schedule a start without back-off (still paced) */
    ACT_STOP_WORKER = 1 << 2,  /* stop the running worker */
    ACT_WIPE_AUTH = 1 << 3,    /* remove the auth directory once the worker is gone */
    ACT_RESET_STREAK = 1 << 4, /* failed-start streak back to 0 */
    ACT_BIND_PROXY = 1 << 5,   /* create the sticky phone->proxy binding */
    ACT_CLEAR_QR = 1 << 6,     /* the QR / pairing code is no longer valid */
    ACT_ARM_STABLE = 1 << 7,   /* connected: the streak ends if it lasts RESTART_STABLE_MS */
};

struct fsm_result {
    enum sess_status next;
    unsigned actions;
};

/* 0 with *out, or -1 when the input does not apply in this state (ignored, no change). */
int sessfsm_step(enum sess_status cur, enum fsm_input in, struct fsm_result *out);

/* 1 when a session in this status should have a worker running. */
int sessfsm_should_run(enum sess_status s);
/* 1 for logged_out, failed, stopped. */
int sessfsm_is_terminal(enum sess_status s);

/* Restart delay for the n-th restart in a row (n >= 1): min doubling each time, capped
 * at max, times a jitter factor in [0.8, 1.2) from r01 in [0,1). */
long backoff_delay_ms(int n, long min_ms, long max_ms, double r01);

#endif
