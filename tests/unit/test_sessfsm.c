/* Unit tests for src/sessfsm.h: the session state machine and the restart back-off. */
#include <limits.h>
#include <math.h>
#include <stddef.h>

#include "sessfsm.h"
#include "tap.h"

#define N_INPUTS (FSM_STOP + 1)

static const char *const input_names[N_INPUTS] = {
    [FSM_WORKER_STARTED] = "WORKER_STARTED", [FSM_QR] = "QR",
    [FSM_CONNECTED] = "CONNECTED",           [FSM_DISCONNECTED] = "DISCONNECTED",
    [FSM_REPLACED] = "REPLACED",
    [FSM_LOGGED_OUT] = "LOGGED_OUT",         [FSM_AUTH_FAILURE] = "AUTH_FAILURE",
    [FSM_WORKER_EXITED] = "WORKER_EXITED",   [FSM_SILENT] = "SILENT",
    [FSM_CRASH_LOOP] = "CRASH_LOOP",         [FSM_NO_PROXY] = "NO_PROXY",
    [FSM_RESTART] = "RESTART",               [FSM_STOP] = "STOP",
};

/* Shorthands for the table. */
#define PROV SS_PROVISIONING
#define STRT SS_STARTING
#define QRRD SS_QR_READY
#define CONN SS_CONNECTED
#define DISC SS_DISCONNECTED
#define LOUT SS_LOGGED_OUT
#define FAIL SS_FAILED
#define STOP SS_STOPPED

#define A_STOP ACT_STOP_WORKER
#define A_RST ACT_RESTART
#define A_NOW ACT_RESTART_NOW
#define A_WIPE ACT_WIPE_AUTH
#define A_STRK ACT_RESET_STREAK
#define A_BIND ACT_BIND_PROXY
#define A_CLR ACT_CLEAR_QR
#define A_STBL ACT_ARM_STABLE

/* expected outcome of one (status, input) pair: ignored (rc -1) or a move */
struct cell {
    int rc;
    enum sess_status next;
    unsigned actions;
};

#define IGN {-1, 0, 0}
#define TO(st, acts) {0, st, acts}

/* Every (status, input) pair. Rows: the current status; columns: the input in enum order.
 * Inputs that describe a running worker (QR, CONNECTED, DISCONNECTED, SILENT) do not apply to
 * a session still waiting in provisioning. Terminal sessions ignore worker events; only an
 * explicit RESTART revives failed / logged_out, and STOP and logout still apply to them.
 * NO_PROXY never revives a terminal session. */
static const struct cell table[SS__COUNT][N_INPUTS] = {
    [SS_PROVISIONING] = {
        [FSM_WORKER_STARTED] = TO(STRT, 0),
        [FSM_QR] = IGN,
        [FSM_CONNECTED] = IGN,
        [FSM_DISCONNECTED] = IGN,
        [FSM_REPLACED] = IGN,
        [FSM_LOGGED_OUT] = TO(LOUT, A_STOP | A_WIPE | A_CLR),
        [FSM_AUTH_FAILURE] = TO(FAIL, A_STOP | A_CLR),
        [FSM_WORKER_EXITED] = TO(DISC, A_RST | A_CLR),
        [FSM_SILENT] = IGN,
        [FSM_CRASH_LOOP] = TO(FAIL, A_STOP | A_CLR),
        [FSM_NO_PROXY] = TO(DISC, A_STOP | A_CLR),
        [FSM_RESTART] = TO(PROV, A_STOP | A_NOW | A_CLR | A_STRK),
        [FSM_STOP] = TO(STOP, A_STOP | A_CLR),
    },
#define RUNNING_ROW                                                    \
    {                                                                  \
        [FSM_WORKER_STARTED] = TO(STRT, 0),                            \
        [FSM_QR] = TO(QRRD, 0),                                        \
        [FSM_CONNECTED] = TO(CONN, A_STBL | A_BIND | A_CLR),           \
        [FSM_DISCONNECTED] = TO(DISC, A_STOP | A_RST | A_CLR),         \
        [FSM_REPLACED] = TO(FAIL, A_STOP | A_CLR),                     \
        [FSM_LOGGED_OUT] = TO(LOUT, A_STOP | A_WIPE | A_CLR),          \
        [FSM_AUTH_FAILURE] = TO(FAIL, A_STOP | A_CLR),                 \
        [FSM_WORKER_EXITED] = TO(DISC, A_RST | A_CLR),                 \
        [FSM_SILENT] = TO(DISC, A_STOP | A_RST | A_CLR),               \
        [FSM_CRASH_LOOP] = TO(FAIL, A_STOP | A_CLR),                   \
        [FSM_NO_PROXY] = TO(DISC, A_STOP | A_CLR),                     \
        [FSM_RESTART] = TO(DISC, A_STOP | A_NOW | A_CLR | A_STRK),     \
        [FSM_STOP] = TO(STOP, A_STOP | A_CLR),                         \
    }
    [SS_STARTING] = RUNNING_ROW,
    [SS_QR_READY] = RUNNING_ROW,
    [SS_CONNECTED] = RUNNING_ROW,
    [SS_DISCONNECTED] = RUNNING_ROW,
    [SS_LOGGED_OUT] = {
        [FSM_WORKER_STARTED] = IGN,
        [FSM_QR] = IGN,
        [FSM_CONNECTED] = IGN,
        [FSM_DISCONNECTED] = IGN,
        [FSM_REPLACED] = IGN,
        [FSM_LOGGED_OUT] = IGN,
        [FSM_AUTH_FAILURE] = IGN,
        [FSM_WORKER_EXITED] = IGN,
        [FSM_SILENT] = IGN,
        [FSM_CRASH_LOOP] = IGN,
        [FSM_NO_PROXY] = IGN,
        [FSM_RESTART] = TO(DISC, A_STOP | A_NOW | A_CLR | A_STRK),
        [FSM_STOP] = IGN,
    },
    [SS_FAILED] = {
        [FSM_WORKER_STARTED] = IGN,
        [FSM_QR] = IGN,
        [FSM_CONNECTED] = IGN,
        [FSM_DISCONNECTED] = IGN,
        [FSM_REPLACED] = IGN,
        [FSM_LOGGED_OUT] = TO(LOUT, A_STOP | A_WIPE | A_CLR),
        [FSM_AUTH_FAILURE] = IGN,
        [FSM_WORKER_EXITED] = IGN,
        [FSM_SILENT] = IGN,
        [FSM_CRASH_LOOP] = IGN,
        [FSM_NO_PROXY] = IGN,
        [FSM_RESTART] = TO(DISC, A_STOP | A_NOW | A_CLR | A_STRK),
        [FSM_STOP] = TO(STOP, A_STOP | A_CLR),
    },
    [SS_STOPPED] = {
        [FSM_WORKER_STARTED] = IGN,
        [FSM_QR] = IGN,
        [FSM_CONNECTED] = IGN,
        [FSM_DISCONNECTED] = IGN,
        [FSM_REPLACED] = IGN,
        [FSM_LOGGED_OUT] = TO(LOUT, A_STOP | A_WIPE | A_CLR),
        [FSM_AUTH_FAILURE] = IGN,
        [FSM_WORKER_EXITED] = IGN,
        [FSM_SILENT] = IGN,
        [FSM_CRASH_LOOP] = IGN,
        [FSM_NO_PROXY] = IGN,
        [FSM_RESTART] = TO(DISC, A_STOP | A_NOW | A_CLR | A_STRK),
        [FSM_STOP] = IGN,
    },
};

static void test_table(void)
{
    for (int s = 0; s < SS__COUNT; s++) {
        for (int i = 0; i < N_INPUTS; i++) {
            const struct cell *want = &table[s][i];
            /* poison the output: an ignored input must still leave a defined result */
            struct fsm_result r = {.next = SS__COUNT, .actions = 0xdead};
            int rc = sessfsm_step((enum sess_status)s, (enum fsm_input)i, &r);
            const char *sn = sess_status_name((enum sess_status)s);
            CHECK_EQ_INT(rc, want->rc, "%s + %s: rc", sn, input_names[i]);
            if (want->rc == 0) {
                CHECK_EQ_STR(sess_status_name(r.next), sess_status_name(want->next),
                             "%s + %s: next status", sn, input_names[i]);
                CHECK_EQ_INT(r.actions, want->actions, "%s + %s: actions", sn, input_names[i]);
            } else {
                /* ignored: no change and nothing to do */
                CHECK(r.next == (enum sess_status)s && r.actions == ACT_NONE,
                      "%s + %s: ignored leaves status and no actions", sn, input_names[i]);
            }
        }
    }
}

/* The rules the table must satisfy, checked on their own so a table edit cannot hide them. */
static void test_rules(void)
{
    struct fsm_result r;
    int all_ignored = 1;
    for (int i = 0; i < N_INPUTS; i++)
        if (i != FSM_RESTART && i != FSM_LOGGED_OUT)
            all_ignored &= sessfsm_step(SS_STOPPED, (enum fsm_input)i, &r) == -1;
    CHECK(all_ignored, "stopped ignores every input but RESTART and LOGGED_OUT");

    static const enum fsm_input worker_events[] = {FSM_WORKER_STARTED, FSM_QR, FSM_CONNECTED,
                                                   FSM_DISCONNECTED, FSM_AUTH_FAILURE,
                                                   FSM_WORKER_EXITED, FSM_SILENT, FSM_CRASH_LOOP};
    static const enum sess_status terminals[] = {SS_LOGGED_OUT, SS_FAILED, SS_STOPPED};
    for (size_t t = 0; t < sizeof terminals / sizeof terminals[0]; t++) {
        int ign = 1;
        for (size_t i = 0; i < sizeof worker_events / sizeof worker_events[0]; i++)
            ign &= sessfsm_step(terminals[t], worker_events[i], &r) == -1;
        CHECK(ign, "%s ignores worker events", sess_status_name(terminals[t]));
    }

    for (int s = 0; s < SS__COUNT; s++) {
        if (sessfsm_step((enum sess_status)s, FSM_CONNECTED, &r) == 0)
            CHECK((r.actions & (ACT_RESET_STREAK | ACT_ARM_STABLE | ACT_BIND_PROXY)) ==
                      (ACT_ARM_STABLE | ACT_BIND_PROXY),
                  "CONNECTED from %s binds the proxy and ends the streak only once it lasts",
                  sess_status_name((enum sess_status)s));
        if (sessfsm_step((enum sess_status)s, FSM_LOGGED_OUT, &r) == 0)
            CHECK(r.next == SS_LOGGED_OUT && (r.actions & ACT_WIPE_AUTH),
                  "LOGGED_OUT from %s wipes the auth dir", sess_status_name((enum sess_status)s));
        if (sessfsm_step((enum sess_status)s, FSM_RESTART, &r) == 0)
            CHECK(sessfsm_should_run(r.next) && (r.actions & ACT_RESTART_NOW),
                  "RESTART from %s leads to a running status with an immediate start",
                  sess_status_name((enum sess_status)s));
    }

    /* a QR or pairing code only means something while the worker that made it runs */
    for (int s = 0; s < SS__COUNT; s++) {
        for (int i = 0; i < N_INPUTS; i++) {
            if (sessfsm_step((enum sess_status)s, (enum fsm_input)i, &r) < 0)
                continue;
            if (r.next == SS_DISCONNECTED || sessfsm_is_terminal(r.next))
                CHECK(r.actions & ACT_CLEAR_QR, "%s + %s → %s clears the QR",
                      sess_status_name((enum sess_status)s), input_names[i],
                      sess_status_name(r.next));
        }
    }

    CHECK(sessfsm_step(SS_FAILED, FSM_RESTART, &r) == 0 && r.next == SS_DISCONNECTED,
          "RESTART revives failed");
    CHECK(sessfsm_step(SS_LOGGED_OUT, FSM_RESTART, &r) == 0 && r.next == SS_DISCONNECTED,
          "RESTART revives logged_out");
    CHECK(sessfsm_step(SS_STOPPED, FSM_RESTART, &r) == 0 && r.next == SS_DISCONNECTED && (r.actions & ACT_RESTART_NOW),
          "RESTART revives stopped");
    CHECK(sessfsm_step(SS_LOGGED_OUT, FSM_LOGGED_OUT, &r) == -1,
          "a second LOGGED_OUT is ignored (no second wipe)");

    /* a short life: provision, start, QR, connect, drop, reconnect, logout */
    enum sess_status st = SS_PROVISIONING;
    static const enum fsm_input life[] = {FSM_WORKER_STARTED, FSM_QR, FSM_CONNECTED,
                                          FSM_DISCONNECTED, FSM_WORKER_STARTED, FSM_CONNECTED,
                                          FSM_LOGGED_OUT};
    static const enum sess_status after[] = {SS_STARTING, SS_QR_READY, SS_CONNECTED,
                                             SS_DISCONNECTED, SS_STARTING, SS_CONNECTED,
                                             SS_LOGGED_OUT};
    int ok = 1;
    for (size_t i = 0; i < sizeof life / sizeof life[0]; i++) {
        if (sessfsm_step(st, life[i], &r) < 0 || r.next != after[i]) {
            ok = 0;
            TAP_DIAG("life step %zu (%s) from %s went to %s", i, input_names[life[i]],
                     sess_status_name(st), sess_status_name(r.next));
            break;
        }
        st = r.next;
    }
    CHECK(ok, "a session's life walks provisioning→…→logged_out");
}

static void test_terminal_and_run(void)
{
    static const struct {
        enum sess_status s;
        int terminal;
    } t[] = {
        {SS_PROVISIONING, 0}, {SS_STARTING, 0}, {SS_QR_READY, 0}, {SS_CONNECTED, 0},
        {SS_DISCONNECTED, 0}, {SS_LOGGED_OUT, 1}, {SS_FAILED, 1},   {SS_STOPPED, 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        CHECK_EQ_INT(sessfsm_is_terminal(t[i].s), t[i].terminal, "is_terminal(%s)",
                     sess_status_name(t[i].s));
        CHECK_EQ_INT(sessfsm_should_run(t[i].s), !t[i].terminal, "should_run(%s)",
                     sess_status_name(t[i].s));
    }
}

static void test_names(void)
{
    static const char *const names[SS__COUNT] = {
        "provisioning", "starting", "qr_ready", "connected",
        "disconnected", "logged_out", "failed", "stopped",
    };
    for (int s = 0; s < SS__COUNT; s++) {
        CHECK_EQ_STR(sess_status_name((enum sess_status)s), names[s], "status %d is named %s", s,
                     names[s]);
        CHECK_EQ_INT(sess_status_parse(names[s]), s, "parse(%s) round-trips", names[s]);
    }
    static const char *const bad[] = {"", "unknown", "Connected", "connected ", " connected",
                                      "qr-ready", "stop", "stoppedx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(sess_status_parse(bad[i]), -1, "parse('%s') is unknown", bad[i]);
    CHECK_EQ_STR(sess_status_name(SS__COUNT), "unknown", "name of an out-of-range status");
}

/* floor(0.8 * base) <= d < 1.2 * base, in integers */
static int in_jitter_range(long d, long base)
{
    return d >= base * 4 / 5 && d * 5 < base * 6;
}

static long expect_base(int n, long min, long max)
{
    if (n < 1)
        n = 1;
    long b = min;
    for (int i = 1; i < n; i++) {
        if (b >= max)
            break;
        b *= 2;
    }
    return b < max ? b : max;
}

static void test_backoff(void)
{
    static const struct {
        long min, max;
    } ranges[] = {{1000, 300000}, {7, 1000}, {10, 10}, {250, 86400000}};
    static const double rs[] = {0.0, 0.5, 0.999};
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
        long min = ranges[k].min, max = ranges[k].max;
        for (size_t j = 0; j < sizeof rs / sizeof rs[0]; j++) {
            int in_range = 1, monotone = 1;
            long prev = -1;
            for (int n = 1; n <= 12; n++) {
                long d = backoff_delay_ms(n, min, max, rs[j]);
                long base = expect_base(n, min, max);
                if (!in_jitter_range(d, base)) {
                    in_range = 0;
                    TAP_DIAG("n=%d min=%ld max=%ld r=%.3f: %ld not in [0.8,1.2)x%ld", n, min, max,
                             rs[j], d, base);
                }
                if (d < prev) {
                    monotone = 0;
                    TAP_DIAG("n=%d: %ld < previous %ld", n, d, prev);
                }
                prev = d;
            }
            CHECK(in_range, "backoff n=1..12 min=%ld max=%ld r01=%.3f within [0.8,1.2)x base",
                  min, max, rs[j]);
            CHECK(monotone, "backoff min=%ld max=%ld r01=%.3f non-decreasing in n", min, max,
                  rs[j]);
        }
    }

    /* exact values at the ends of the jitter */
    CHECK_EQ_INT(backoff_delay_ms(1, 1000, 300000, 0.0), 800, "n=1 r01=0 is 0.8 x min");
    CHECK_EQ_INT(backoff_delay_ms(1, 1000, 300000, 0.5), 1000, "n=1 r01=0.5 is min");
    CHECK_EQ_INT(backoff_delay_ms(3, 1000, 300000, 0.5), 4000, "n=3 r01=0.5 is 4 x min");
    CHECK_EQ_INT(backoff_delay_ms(12, 1000, 300000, 0.5), 300000, "n=12 is capped at max");

    /* the cap: never 1.2 x max or more, even for huge n */
    static const int bign[] = {10, 13, 20, 64, 100, 1000, INT_MAX};
    for (size_t i = 0; i < sizeof bign / sizeof bign[0]; i++) {
        long d = backoff_delay_ms(bign[i], 1000, 300000, 0.999);
        CHECK(d >= 240000 && d < 360000, "n=%d r01=0.999 capped below 1.2 x max (got %ld)",
              bign[i], d);
        CHECK_EQ_INT(backoff_delay_ms(bign[i], 1000, 300000, 0.5), 300000, "n=%d r01=0.5 is max",
                     bign[i]);
    }

    /* n < 1 is the first restart */
    static const int small[] = {0, -1, -100, INT_MIN};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        for (size_t j = 0; j < sizeof rs / sizeof rs[0]; j++)
            CHECK_EQ_INT(backoff_delay_ms(small[i], 1000, 300000, rs[j]),
                         backoff_delay_ms(1, 1000, 300000, rs[j]), "n=%d is treated as 1 (r01=%.3f)",
                         small[i], rs[j]);

    /* r01 outside [0,1) is clamped */
    CHECK_EQ_INT(backoff_delay_ms(1, 1000, 300000, -0.5), 800, "r01=-0.5 clamps to 0");
    CHECK_EQ_INT(backoff_delay_ms(1, 1000, 300000, -1e300), 800, "r01=-1e300 clamps to 0");
    CHECK_EQ_INT(backoff_delay_ms(1, 1000, 300000, -INFINITY), 800, "r01=-inf clamps to 0");
    long hi = backoff_delay_ms(1, 1000, 300000, 1.0);
    CHECK(hi >= 1199 && hi < 1200, "r01=1 clamps just below 1 (got %ld)", hi);
    hi = backoff_delay_ms(1, 1000, 300000, 5.0);
    CHECK(hi >= 1199 && hi < 1200, "r01=5 clamps just below 1 (got %ld)", hi);
    hi = backoff_delay_ms(12, 1000, 300000, INFINITY);
    CHECK(hi >= 359000 && hi < 360000, "r01=+inf clamps just below 1 at the cap (got %ld)", hi);
}

static void test_backoff_nan(void)
{
    long d = backoff_delay_ms(3, 1000, 300000, 0.0 / 0.0);
    CHECK(d >= 3200 && d < 4800, "NaN jitter is clamped (got %ld)", d);
}

int main(void)
{
    test_backoff_nan();
    test_table();
    test_rules();
    test_terminal_and_run();
    test_names();
    test_backoff();
    return TAP_DONE();
}
