/* model: the records the daemon keeps in memory and the store persists.
 * Plain data; the owning module (session.c, proxy.c) manages their lifetime. */
#ifndef SB_MODEL_H
#define SB_MODEL_H

#include <stdint.h>

enum sess_status {
    SS_PROVISIONING,
    SS_STARTING,
    SS_QR_READY,
    SS_CONNECTED,
    SS_DISCONNECTED,
    SS_LOGGED_OUT,
    SS_FAILED,
    SS_STOPPED,
    SS__COUNT
};

enum login_method { LOGIN_QR, LOGIN_PAIRING };

#define SESSION_NAME_MAX 32
#define PHONE_MAX 16
#define ADDR_MAX 64
#define TEXT_MAX 512 /* reason, last error: truncated to this */
#define QR_MAX 1024

struct worker_state {
    char backend[16];     /* "process" | "docker" */
    int pid;              /* process backend; 0 when none */
    int64_t ident;        /* process start time in clock ticks (guards pid reuse) */
    char address[ADDR_MAX]; /* host:port the worker serves commands on */
};

struct session {
    int64_t id;                   /* n of worker_<n>; never reused */
    char name[SESSION_NAME_MAX];  /* "worker_<n>" */
    int64_t tenant_id;
    enum sess_status status;
    char phone[PHONE_MAX];        /* digits, "" until known */
    int64_t proxy_id;             /* 0 = direct connection */
    int needs_proxy;              /* its proxy was deleted and no other took it yet: it
                                     starts on another one, or waits, never directly
                                     while the tenant's pool has a proxy */
    enum login_method login;
    char pairing_phone[PHONE_MAX];
    char reason[TEXT_MAX];        /* why the last status change happened */
    char last_error[TEXT_MAX];
    char qr[QR_MAX];
    int64_t qr_at;
    char pairing_code[16];
    int64_t pairing_at;
    char trust_level[8];          /* fixed level, "" = by account age */
    int64_t created_at, connected_at, first_connected_at, last_ping_at;
    int restarts;                 /* worker restarts over the session's life */
    int fail_streak;              /* starts in a row that never reached connected */
    struct worker_state worker;
    void *rt;                     /* runtime state owned by session.c, never stored */
};

enum proxy_status { PROXY_OK, PROXY_BAD };

struct proxy {
    int64_t id;
    int64_t tenant_id;            /* 0 = shared pool */
    char *url;                    /* socks5h://user:pass@host:port — a secret */
    enum proxy_status status;
    char source[8];               /* "env" | "api" */
    char last_error[TEXT_MAX];
    int64_t bad_at;
    int64_t created_at;
    int nsessions;                /* derived, not stored */
};

struct binding {
    int64_t tenant_id;
    char phone[PHONE_MAX];
    int64_t proxy_id;
};

/* an outbound message (SPEC §2): queued -> sending -> sent | failed | expired | cancelled */
enum msg_status { MS_QUEUED, MS_SENDING, MS_SENT, MS_FAILED, MS_EXPIRED, MS_CANCELLED, MS__COUNT };

#define MSG_ID_MAX 32           /* "msg_" + 24 hex */
#define MSG_CHARS_MAX 4096      /* characters of a message */
#define MSG_BYTES_MAX (MSG_CHARS_MAX * 4 + 1)

struct message {
    int64_t id;                 /* row id, internal */
    char public_id[MSG_ID_MAX]; /* the messageId the API and the worker see */
    int64_t tenant_id;
    int64_t session_id;
    char to[PHONE_MAX];         /* digits */
    char text[MSG_BYTES_MAX];
    enum msg_status status;
    int attempts;               /* dispatches to the worker */
    char error[TEXT_MAX];
    char wa_message_id[128];
    int64_t created_at, expires_at;
    int64_t not_before;         /* a retry waits for this */
    int64_t dispatched_at, finished_at;
};

/* an incoming message */
struct inbound {
    int64_t id;
    int64_t tenant_id, session_id;
    char from[PHONE_MAX];
    char text[MSG_BYTES_MAX];
    char wa_message_id[128];
    int64_t sent_at, received_at;
};

/* outbound calls (SPEC §4.3): a lead is a person to call, a run a campaign over leads,
 * a job one lead's call in it (run 0: the small-batch path) */
enum call_status {
    CS_QUEUED,
    CS_DIALING,     /* claimed a slot; the create request is out or done, no progress yet */
    CS_RINGING,
    CS_IN_PROGRESS,
    CS_COMPLETED,
    CS_BUSY,
    CS_NO_ANSWER,
    CS_FAILED,
    CS_CANCELED,
    CS__COUNT
};

#define LEAD_NAME_MAX 128
#define TZ_NAME_MAX 64
#define CALL_SID_MAX 40

struct lead {
    int64_t id, tenant_id;
    char name[LEAD_NAME_MAX];
    char phone[PHONE_MAX];
    char timezone[TZ_NAME_MAX]; /* "" = TIMEZONE */
    int64_t created_at;
};

struct call_run {
    int64_t id, tenant_id;
    char status[16];            /* running | stopped | completed */
    int total;
    int64_t created_at, finished_at;
};

struct call_job {
    int64_t id, tenant_id, run_id, lead_id;
    char phone[PHONE_MAX];
    char timezone[TZ_NAME_MAX];
    enum call_status status;
    char call_sid[CALL_SID_MAX];
    int attempts;               /* dial attempts (busy / no-answer retries) */
    int64_t not_before;
    char error[TEXT_MAX];
    int duration;               /* seconds, from Twilio */
    int64_t created_at, dialed_at, finished_at;
};

struct run_counts {
    int queued, in_progress, completed, failed, canceled;
};

const char *msg_status_name(enum msg_status s);
/* -1 when unknown */
int msg_status_parse(const char *name);

const char *sess_status_name(enum sess_status s);
/* -1 when unknown */
int sess_status_parse(const char *name);

#endif
