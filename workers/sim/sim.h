/* sim: the simulator worker. It speaks worker protocol v1 (SPEC §5) with no
 * WhatsApp behind it, for tests, demos and benchmarks, and says so.
 *
 * One thread, one libevent loop. struct sim is owned by main() and lives for
 * the whole process; the modules below borrow it.
 *   sim.c      start-up (options, environment), timers, signals, link state
 *   simcmd.c   the signed command server on WORKER_LISTEN
 *   simq.c     the ordered, bounded, retrying event queue to WEBHOOK_URL
 *   simstore.c AUTH_DIR: sim-creds.json and the sent.log of message ids */
#ifndef SB_SIM_H
#define SB_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "simstore.h"

struct event_base;
struct event;
struct evhttp;
struct simq;
struct simcmd_send;
struct simcmd_hold;

#define SIM_SECRET_LEN 64 /* WEBHOOK_SECRET is a SHA-256 HMAC in hex */
#define SIM_PHONE_MAX 16  /* 15 digits + NUL */
#define SIM_CODE_LEN 8    /* pairing code characters */

/* /sim/send-mode: what a /send that would really send does instead. In memory
 * only: a restarted sim sends normally again. */
enum sim_send_mode {
    SIM_SEND_OK,             /* record, answer, MESSAGE_SENT after typingMs */
    SIM_SEND_FAIL,           /* answer, MESSAGE_FAILED retryable:false, not recorded */
    SIM_SEND_FAIL_RETRYABLE, /* the same with retryable:true */
    SIM_SEND_SILENT,         /* record and answer, no MESSAGE_SENT */
    SIM_SEND_ERROR500,       /* answer 500, nothing recorded or posted */
    SIM_SEND_HANG,           /* never answer, nothing recorded or posted */
    SIM_SEND__COUNT
};

struct sim {
    struct event_base *base;
    struct simq *q;         /* owned */
    struct evhttp *http;    /* owned, by simcmd */
    struct event *ev_ping;  /* owned */
    struct event *ev_qr;    /* owned */
    struct event *ev_exit;  /* owned: delayed exit after /sim/crash */
    struct event *ev_term;  /* owned */
    struct event *ev_int;   /* owned */
    struct simstore store;

    /* configuration, fixed after start-up; strings point into the environment */
    const char *session_id;
    const char *webhook_url;
    const char *auth_dir;
    char secret[SIM_SECRET_LEN + 1];
    char *listen_host; /* owned */
    int listen_port;
    int login_pairing;                 /* LOGIN_METHOD=pairing_code */
    char pairing_phone[SIM_PHONE_MAX]; /* digits, "" when unknown */
    long ping_ms;
    long qr_ms;

    /* state */
    int linked;    /* sim-creds.json exists and is valid */
    int connected; /* linked and not "connection lost" */
    int silenced;  /* /sim/silence: no more PINGs */
    long stop_delay_ms; /* /sim/stop-delay: SIGTERM/SIGINT exit this much later */
    int stopping;       /* a stop signal came: exiting (at most once) */
    char phone[SIM_PHONE_MAX];
    int64_t linked_at_ms;
    int64_t start_mono_ms;
    unsigned qr_count;
    int exit_code;

    /* messages accepted by /send whose MESSAGE_SENT waits for typingMs */
    struct simcmd_send *sends;
    size_t nsends;

    enum sim_send_mode send_mode;
    long send_mode_left; /* /send calls left in send_mode before "ok"; 0 = until changed */
    /* /send requests the "hang" mode keeps unanswered until exit */
    struct simcmd_hold *holds;
    size_t nholds;
};

/* One line on stderr: "level sim: message". Never pass a secret. */
void sim_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Milliseconds since start (monotonic). */
int64_t sim_uptime_ms(const struct sim *s);

/* Links the sim to phone (digits): writes sim-creds.json durably, stops the
 * QR timer, posts CONNECTED. 0, or -1 when the file cannot be written. */
int sim_link(struct sim *s, const char *phone);

/* Forgets the link: removes sim-creds.json, stops QR. 0 or -1. */
int sim_unlink(struct sim *s);

/* Posts CONNECTED for the current link. */
void sim_post_connected(struct sim *s);

/* Posts DISCONNECTED with the reason the protocol uses for loggedOut. */
void sim_post_disconnected(struct sim *s, int logged_out);

/* Draws a new pairing code into out (SIM_CODE_LEN + 1 bytes) and posts it. */
void sim_post_pairing_code(struct sim *s, char *out);

/* Ends the loop after delay_ms; main() then tears down and exits with code. */
void sim_exit_later(struct sim *s, int code, long delay_ms);

#endif
