#include "session.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alert.h"
#include "config.h"
#include "dispatch.h"
#include "events.h"
#include "hmac.h"
#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "runner.h"
#include "sessfsm.h"
#include "store.h"
#include "util.h"
#include "wclient.h"
#include "wevent.h"

/* what to do once a stopping worker has exited */
enum after {
    AFTER_RESTART = 1 << 0,     /* start again after the back-off delay */
    AFTER_RESTART_NOW = 1 << 1, /* start again at once (still paced) */
    AFTER_WIPE = 1 << 2,        /* remove the auth directory */
    AFTER_FREE = 1 << 3,        /* the session was deleted: free it */
};

struct pair_waiter {
    struct event *timer;
    void (*cb)(struct session *s, const char *code, void *arg);
    void *arg;
    struct session *s;
    struct pair_waiter *next;
};

struct sess_rt {
    struct event *restart_ev;
    struct event *stable_ev; /* RESTART_STABLE_MS after the last CONNECTED */
    int free_start;          /* the next start follows the daemon's restart: not a failure */
    int queued;
    int running;
    int stopping;
    unsigned after_stop;
    int64_t started_mono;
    int64_t started_wall; /* ms: an event stamped before it came from an earlier worker */
    int64_t last_ping_mono;
    int waiting_proxy;
    int deleted;
    int health_inflight;
    struct pair_waiter *waiters;
    struct hmac_key *mac; /* the worker's key, prepared once */
    int64_t ping_saved_at; /* when last_ping_at last went to the store */
    int restore_pending;   /* <name>.restore waits for the worker to stop */
};

#define PING_PERSIST_MS 10000

static struct event_base *evbase;
static const struct config *cfg;
static struct runner *runner;
static char *master;
static char *webhook_url;
static char *sessions_dir;
static char *logs_dir;

static struct session **byid; /* indexed by id */
static size_t capid;
static struct session **graveyard; /* deleted, worker still stopping */
static size_t ngrave, capgrave;

static int64_t *queue; /* start queue of session ids (ring) */
static size_t qhead, qlen, qcap;
static struct event *pace_ev;
static int64_t last_start_mono = INT64_MIN / 2;
static struct event *watchdog_ev;
static struct event *monitor_ev;
static struct session_stats stats;
static int shutting_down; /* exits now only end workers: nothing restarts */

static struct sess_rt *RT(const struct session *s) { return s->rt; }

int session_is_waiting_proxy(const struct session *s) { return RT(s)->waiting_proxy; }
void session_get_stats(struct session_stats *st) { *st = stats; }

void session_worker_key(const struct session *s, char *out) { wclient_worker_key(master, s->name, out); }

const struct hmac_key *session_worker_mac(const struct session *s) { return RT(s)->mac; }

struct session *session_get(int64_t id)
{
    if (id <= 0 || (size_t)id >= capid)
        return NULL;
    return byid[id];
}

struct session *session_find(const char *name)
{
    int64_t n;
    return wevent_session_num(name, &n) == 0 ? session_get(n) : NULL;
}

void session_each(void (*fn)(struct session *s, void *arg), void *arg)
{
    for (size_t i = 1; i < capid; i++)
        if (byid[i])
            fn(byid[i], arg);
}

/* every text kept is valid UTF-8: a bounded copy may cut a character in half */
static void set_text(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
    util_utf8_fix(dst);
}

static void auth_dir(const struct session *s, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", sessions_dir, s->name);
}

static void save(struct session *s)
{
    if (store_session_save(s) != STORE_OK)
        log_error("session", "cannot save session=%s", s->name);
}

static void index_session(struct session *s)
{
    if ((size_t)s->id >= capid) {
        size_t ncap = capid ? capid : 64;
        while (ncap <= (size_t)s->id)
            ncap *= 2;
        byid = xrealloc(byid, ncap * sizeof *byid);
        memset(byid + capid, 0, (ncap - capid) * sizeof *byid);
        capid = ncap;
    }
    byid[s->id] = s;
}

/* src->name must be set */
static struct session *new_session(const struct session *src)
{
    struct session *s = xcalloc(1, sizeof *s);
    *s = *src;
    struct sess_rt *rt = xcalloc(1, sizeof *rt);
    char key[HMAC_HEX_LEN + 1];
    wclient_worker_key(master, s->name, key);
    rt->mac = hmac_key_new(key, strlen(key));
    s->rt = rt;
    return s;
}

static void free_session(struct session *s)
{
    struct sess_rt *rt = RT(s);
    if (rt->restart_ev)
        event_free(rt->restart_ev);
    if (rt->stable_ev)
        event_free(rt->stable_ev);
    hmac_key_free(rt->mac);
    free(rt);
    free(s);
}

/* ---------- pairing waiters ---------- */

/* s is passed to the callback, or NULL when gone says the session was deleted */
static void waiter_fire(struct session *s, struct pair_waiter *w, const char *code, int gone)
{
    struct sess_rt *rt = RT(s);
    for (struct pair_waiter **pp = &rt->waiters; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    event_free(w->timer);
    w->cb(gone ? NULL : s, code, w->arg);
    free(w);
}

static void waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct pair_waiter *w = arg;
    waiter_fire(w->s, w, NULL, 0);
}

static void waiters_fire_all(struct session *s, const char *code, int gone)
{
    while (RT(s)->waiters)
        waiter_fire(s, RT(s)->waiters, code, gone);
}

void session_wait_pairing(struct session *s, long wait_ms,
                          void (*cb)(struct session *s, const char *code, void *arg), void *arg)
{
    if (s->pairing_code[0] || wait_ms <= 0) {
        cb(s, s->pairing_code[0] ? s->pairing_code : NULL, arg);
        return;
    }
    struct pair_waiter *w = xcalloc(1, sizeof *w);
    w->cb = cb;
    w->arg = arg;
    w->s = s;
    w->timer = evtimer_new(evbase, waiter_timeout, w);
    struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
    evtimer_add(w->timer, &tv);
    w->next = RT(s)->waiters;
    RT(s)->waiters = w;
}

/* a signed command to the session's running worker; 0, or -1 (cb not called) */
static int command(struct session *s, const char *method, const char *path, const char *body,
                   httpc_cb cb, void *arg)
{
    if (!RT(s)->running || RT(s)->stopping || !s->worker.address[0])
        return -1;
    char key[HMAC_HEX_LEN + 1];
    session_worker_key(s, key);
    return wclient_call(s->worker.address, key, method, path, body, cfg->worker_health_timeout_ms, cb, arg);
}

/* ---------- starting and stopping workers ---------- */

static void pace_arm(void);

static void enqueue_start(struct session *s)
{
    struct sess_rt *rt = RT(s);
    if (rt->queued || rt->running || rt->deleted)
        return;
    if (qlen == qcap) {
        size_t ncap = qcap ? qcap * 2 : 64;
        int64_t *nq = xmalloc(ncap * sizeof *nq);
        for (size_t i = 0; i < qlen; i++)
            nq[i] = queue[(qhead + i) % qcap];
        free(queue);
        queue = nq;
        qhead = 0;
        qcap = ncap;
    }
    queue[(qhead + qlen) % qcap] = s->id;
    qlen++;
    rt->queued = 1;
    pace_arm();
}

static void restart_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    enqueue_start(arg);
}

static void schedule_start(struct session *s, int backoff)
{
    struct sess_rt *rt = RT(s);
    if (rt->running && rt->stopping) {
        /* the worker is on its way out: start again once it is gone */
        rt->after_stop |= backoff ? AFTER_RESTART : AFTER_RESTART_NOW;
        return;
    }
    if (!backoff) {
        enqueue_start(s);
        return;
    }
    int n = s->fail_streak < 1 ? 1 : s->fail_streak;
    long delay = backoff_delay_ms(n, cfg->restart_backoff_min_ms, cfg->restart_backoff_max_ms,
                                  hmac_random01());
    if (!rt->restart_ev)
        rt->restart_ev = evtimer_new(evbase, restart_timer_cb, s);
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(rt->restart_ev, &tv);
    log_info("session", "restart scheduled session=%s in_ms=%ld failed_starts=%d", s->name, delay,
             s->fail_streak);
}

static void wipe_auth(struct session *s)
{
    char dir[PATH_MAX];
    auth_dir(s, dir, sizeof dir);
    if (util_rmtree_below(sessions_dir, dir) < 0 && errno != ENOENT)
        log_warn("session", "cannot remove auth dir session=%s error=%s", s->name, strerror(errno));
    else
        log_info("session", "auth dir removed session=%s", s->name);
}

static void restore_path(const struct session *s, char *out, size_t n)
{
    snprintf(out, n, "%s/%s.restore", sessions_dir, s->name);
}

static void replaced_path(const struct session *s, char *out, size_t n)
{
    snprintf(out, n, "%s/%s.replaced", sessions_dir, s->name);
}

static int path_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* deletes a directory under SESSIONS_DIR so that a crash midway leaves nothing that looks
 * whole: renamed to .restore-discard-<random> first (what start-up sweeps with the other
 * .restore-* leftovers), then removed */
static void discard_dir(const char *path)
{
    char hex[17], trash[PATH_MAX];
    hmac_random_hex(hex, 8);
    snprintf(trash, sizeof trash, "%s/.restore-discard-%s", sessions_dir, hex);
    if (rename(path, trash) == 0)
        util_rmtree_below(sessions_dir, trash);
    else if (errno != ENOENT)
        log_error("session", "cannot remove %s: %s", path, strerror(errno));
}

/* a swap cut short after the auth dir was set aside (a crash between its two renames, or
 * neither rename working): the old files go back before anything uses the dir. -1 when
 * they are set aside and cannot be put back (err says why) */
static int put_back_replaced(struct session *s, char *err, size_t errlen)
{
    char dir[PATH_MAX], old[PATH_MAX];
    auth_dir(s, dir, sizeof dir);
    replaced_path(s, old, sizeof old);
    if (path_exists(dir) || !path_exists(old))
        return 0;
    if (rename(old, dir) < 0) {
        snprintf(err, errlen, "the auth dir is set aside as %s.replaced and cannot be put back: %s", s->name,
                 strerror(errno));
        log_error("session", "%s session=%s", err, s->name);
        return -1;
    }
    log_warn("session", "auth dir put back after an interrupted restore session=%s", s->name);
    return 0;
}

/* the messageIds a worker has sent (AUTH_DIR/sent.log, one a line) are history an archive
 * does not have: the restored dir keeps those of the dir it replaces too, or a message
 * asked again across the restore would be sent twice. Appended, then fsync'd */
static int merge_sent_log(const char *from_dir, const char *into_dir, char *err, size_t errlen)
{
    char from[PATH_MAX + 16], into[PATH_MAX + 16], buf[16384];
    snprintf(from, sizeof from, "%s/sent.log", from_dir);
    snprintf(into, sizeof into, "%s/sent.log", into_dir);
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1;
    if (in < 0 && errno == ENOENT)
        return 0; /* it never sent anything */
    if (in < 0)
        goto fail;
    out = open(into, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (out < 0)
        goto fail;
    /* a restored log cut in its last line must not glue that line to the first old one */
    off_t end = lseek(out, 0, SEEK_END);
    char last = '\n';
    if (end > 0 && pread(out, &last, 1, end - 1) != 1)
        goto fail;
    if (last != '\n' && write(out, "\n", 1) != 1)
        goto fail;
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        for (ssize_t off = 0, w; off < n; off += w)
            if ((w = write(out, buf + off, (size_t)(n - off))) < 0)
                goto fail;
    if (n < 0 || fsync(out) < 0)
        goto fail;
    close(in);
    close(out);
    return 0;
fail:
    snprintf(err, errlen, "cannot keep the sent-message record (sent.log) across the restore: %s", strerror(errno));
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return -1;
}

/* <name>.restore takes the place of the auth dir, which is set aside as <name>.replaced
 * and discarded once the swap is done. On failure the old files stay where they were, the
 * restored ones are discarded and err says why. A crash between the steps is finished by
 * recover_auth_dirs() */
static int swap_auth_dir(struct session *s, char *err, size_t errlen)
{
    char dir[PATH_MAX], old[PATH_MAX], src[PATH_MAX];
    auth_dir(s, dir, sizeof dir);
    replaced_path(s, old, sizeof old);
    restore_path(s, src, sizeof src);
    if (put_back_replaced(s, err, errlen) < 0)
        goto fail;
    discard_dir(old); /* what a finished swap left */
    int set_aside = rename(dir, old) == 0;
    if (!set_aside && errno != ENOENT) {
        snprintf(err, errlen, "cannot set the old auth dir aside: %s; the old files stay", strerror(errno));
        goto fail;
    }
    if (set_aside && merge_sent_log(old, src, err, errlen) < 0) {
        if (rename(old, dir) < 0)
            snprintf(err + strlen(err), errlen - strlen(err), "; nor the old auth dir back: %s (it is %s.replaced)",
                     strerror(errno), s->name);
        else
            snprintf(err + strlen(err), errlen - strlen(err), "; the old files stay");
        goto fail;
    }
    if (rename(src, dir) < 0) {
        int e = errno;
        if (set_aside && rename(old, dir) < 0)
            snprintf(err, errlen,
                     "cannot put the restored auth dir in place: %s; nor the old one back: %s (it is %s.replaced)",
                     strerror(e), strerror(errno), s->name);
        else
            snprintf(err, errlen, "cannot put the restored auth dir in place: %s; the old files stay", strerror(e));
        goto fail;
    }
    if (set_aside)
        discard_dir(old);
    log_info("session", "auth dir restored from a backup session=%s", s->name);
    return 0;
fail:
    log_error("session", "restore not applied session=%s error=\"%s\"", s->name, err);
    discard_dir(src);
    return -1;
}

/* a restore that waited for the worker to stop: swapped in now (or dropped with the
 * session); nobody waits for an answer any more, so a failure is alerted */
static void finish_pending_restore(struct session *s, int drop)
{
    char err[PATH_MAX + 200];
    RT(s)->restore_pending = 0;
    if (drop) {
        char src[PATH_MAX];
        restore_path(s, src, sizeof src);
        discard_dir(src);
    } else if (swap_auth_dir(s, err, sizeof err) < 0) {
        char text[sizeof err + 64];
        snprintf(text, sizeof text, "restore into %s failed: %s", s->name, err);
        alert_raise(1, ALERT_BACKUP_FAILED, s->name, text);
    }
}

static void run_after(struct session *s, unsigned after)
{
    if (after & AFTER_WIPE)
        wipe_auth(s);
    /* a logout (its wipe) drops a pending restore, as a delete does */
    if (RT(s)->restore_pending)
        finish_pending_restore(s, after & (AFTER_FREE | AFTER_WIPE));
    if (after & AFTER_FREE)
        return;
    if (!sessfsm_should_run(s->status) || RT(s)->waiting_proxy)
        return;
    if (after & AFTER_RESTART_NOW)
        schedule_start(s, 0);
    else if (after & AFTER_RESTART)
        schedule_start(s, 1);
}

static void stop_worker(struct session *s, unsigned after)
{
    struct sess_rt *rt = RT(s);
    if (rt->restart_ev)
        evtimer_del(rt->restart_ev);
    if (!rt->running) {
        run_after(s, after);
        return;
    }
    rt->after_stop |= after;
    if (rt->stopping)
        return;
    rt->stopping = 1;
    if (runner->stop(runner, s->name, &s->worker, cfg->worker_stop_grace_ms) < 0) {
        /* the runner no longer knows it: treat it as gone */
        rt->running = 0;
        rt->stopping = 0;
        unsigned a = rt->after_stop;
        rt->after_stop = 0;
        run_after(s, a);
    }
}

/* the operators hear of links, losses, logouts and crash loops */
static void status_alert(const struct session *s)
{
    char text[TEXT_MAX + 96];
    switch (s->status) {
    case SS_CONNECTED:
        snprintf(text, sizeof text, "%s connected as +%s", s->name, s->phone);
        alert_raise(s->tenant_id, ALERT_CONNECTED, s->name, text);
        break;
    case SS_DISCONNECTED:
        snprintf(text, sizeof text, "%s disconnected: %s", s->name, s->reason);
        alert_raise(s->tenant_id, ALERT_DISCONNECTED, s->name, text);
        break;
    case SS_LOGGED_OUT:
        snprintf(text, sizeof text, "%s logged out: %s", s->name, s->reason);
        alert_raise(s->tenant_id, ALERT_LOGGED_OUT, s->name, text);
        break;
    case SS_FAILED:
        snprintf(text, sizeof text, "%s failed: %s", s->name, s->reason);
        alert_raise(s->tenant_id, ALERT_SESSION_FAILED, s->name, text);
        break;
    default:
        break;
    }
}

/* The connection has lasted RESTART_STABLE_MS: the starts before it were not failures. */
static void stable_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    struct sess_rt *rt = RT(s);
    /* connected still: a drop in between left it, and a new CONNECTED re-armed this */
    if (rt->deleted || s->status != SS_CONNECTED || !rt->running || rt->stopping || !s->fail_streak)
        return;
    log_info("session", "connection stable session=%s failed_starts=%d reset", s->name, s->fail_streak);
    s->fail_streak = 0;
    save(s);
}

/* the session is connected (again): its failed-start streak ends once that lasts */
static void arm_stable(struct session *s)
{
    struct sess_rt *rt = RT(s);
    if (!rt->stable_ev)
        rt->stable_ev = evtimer_new(evbase, stable_cb, s);
    struct timeval tv = {cfg->restart_stable_ms / 1000, (cfg->restart_stable_ms % 1000) * 1000};
    evtimer_add(rt->stable_ev, &tv);
}

/* one status change: the pure machine decides, this applies */
static int input(struct session *s, enum fsm_input in, const char *reason)
{
    struct fsm_result r;
    if (sessfsm_step(s->status, in, &r) < 0)
        return -1;
    enum sess_status prev = s->status;
    s->status = r.next;
    if (reason)
        set_text(s->reason, sizeof s->reason, reason);
    if (r.actions & ACT_CLEAR_QR) {
        s->qr[0] = '\0';
        s->pairing_code[0] = '\0';
    }
    if (r.actions & ACT_RESET_STREAK)
        s->fail_streak = 0;
    if (r.actions & ACT_ARM_STABLE)
        arm_stable(s);
    if ((r.actions & ACT_BIND_PROXY) && s->phone[0] && s->proxy_id) {
        int64_t bound = pool_binding(s->tenant_id, s->phone);
        if (bound == 0)
            pool_bind(s->tenant_id, s->phone, s->proxy_id);
        else if (bound != s->proxy_id)
            log_warn("session", "phone is bound to another proxy session=%s phone=%s bound=%lld uses=%lld",
                     s->name, s->phone, (long long)bound, (long long)s->proxy_id);
    }
    unsigned after = 0;
    if (r.actions & ACT_RESTART)
        after |= AFTER_RESTART;
    if (r.actions & ACT_RESTART_NOW)
        after |= AFTER_RESTART_NOW;
    if (r.actions & ACT_WIPE_AUTH)
        after |= AFTER_WIPE;
    save(s);
    if (prev != s->status) {
        log_info("session", "status session=%s from=%s to=%s reason=\"%s\"", s->name,
                 sess_status_name(prev), sess_status_name(s->status), s->reason);
        events_emit(s->tenant_id, "session.status", s->name,
                    json_pack("{s:s,s:s,s:s}", "status", sess_status_name(s->status), "previous",
                              sess_status_name(prev), "reason", s->reason));
        status_alert(s);
        dispatch_session_changed(s);
    }
    if (sessfsm_is_terminal(s->status) && RT(s)->waiters)
        waiters_fire_all(s, NULL, 0);
    if (r.actions & ACT_STOP_WORKER)
        stop_worker(s, after);
    else if (after)
        run_after(s, after);
    return 0;
}

/* MAX_FAILED_STARTS starts in a row that never stayed connected for RESTART_STABLE_MS:
 * failed, not started again until asked; last says what ended the last one */
static void crash_loop(struct session *s, const char *last)
{
    char why[TEXT_MAX], stayed[64] = "connected";
    long ms = cfg->restart_stable_ms;
    if (ms >= 1000 && ms % 1000 == 0)
        snprintf(stayed, sizeof stayed, "stayed connected for %ld s", ms / 1000);
    else if (ms > 0)
        snprintf(stayed, sizeof stayed, "stayed connected for %ld ms", ms);
    snprintf(why, sizeof why, "crash loop: %d starts in a row never %s; last: %.400s", s->fail_streak, stayed, last);
    input(s, FSM_CRASH_LOOP, why);
}

/* where a session goes when it cannot stay on proxy avoid: its phone's bound proxy if
 * that has room (the same phone always uses the same proxy), else the least loaded */
static struct proxy *replacement(const struct session *s, int64_t avoid)
{
    int64_t bound = s->phone[0] ? pool_binding(s->tenant_id, s->phone) : 0;
    struct proxy *b = bound && bound != avoid ? pool_get(bound) : NULL;
    return b && pool_has_room(b) ? b : pool_pick(s->tenant_id, avoid);
}

/* the proxy a session should start on: its own if usable, else a new one. 0 = direct,
 * -1 = none available (the session must wait) */
static int64_t proxy_for_start(struct session *s)
{
    struct proxy *p = s->proxy_id ? pool_get(s->proxy_id) : NULL;
    if (p && p->status == PROXY_OK)
        return p->id;
    if (!p && s->proxy_id == 0 && !RT(s)->waiting_proxy && !s->needs_proxy)
        return 0; /* direct from the start: the pool was empty when it was provisioned */
    if (!p && pool_usable_count(s->tenant_id) == 0)
        return 0; /* the pool is empty now: direct connections */
    struct proxy *n = replacement(s, s->proxy_id);
    return n ? n->id : -1;
}

static void move_to_proxy(struct session *s, int64_t to)
{
    if (to == s->proxy_id)
        return;
    pool_adjust(s->proxy_id, -1);
    pool_adjust(to, +1);
    log_info("session", "proxy switched session=%s from=%lld to=%lld", s->name,
             (long long)s->proxy_id, (long long)to);
    char text[160];
    if (to && !s->proxy_id)
        snprintf(text, sizeof text, "%s got proxy %lld", s->name, (long long)to);
    else if (to)
        snprintf(text, sizeof text, "%s moved from proxy %lld to proxy %lld", s->name, (long long)s->proxy_id,
                 (long long)to);
    else
        snprintf(text, sizeof text, "%s moved from proxy %lld to a direct connection", s->name,
                 (long long)s->proxy_id);
    alert_raise(s->tenant_id, ALERT_PROXY_SWITCHED, s->name, text);
    s->proxy_id = to;
    if (to)
        s->needs_proxy = 0;
    if (s->phone[0] && to)
        pool_bind(s->tenant_id, s->phone, to);
}

static void worker_log_path(const struct session *s, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s.log", logs_dir, s->name);
}

static void start_now(struct session *s)
{
    struct sess_rt *rt = RT(s);
    int64_t pid = proxy_for_start(s);
    if (pid < 0) {
        rt->waiting_proxy = 1;
        input(s, FSM_NO_PROXY, "no_proxy");
        return;
    }
    if (pid != s->proxy_id)
        move_to_proxy(s, pid);
    rt->waiting_proxy = 0;
    char dir[PATH_MAX], logp[PATH_MAX], key[HMAC_HEX_LEN + 1], why[PATH_MAX + 100];
    if (put_back_replaced(s, why, sizeof why) < 0) {
        /* its link is in the set-aside dir: a start would make an empty one and a QR */
        input(s, FSM_CRASH_LOOP, why);
        return;
    }
    auth_dir(s, dir, sizeof dir);
    worker_log_path(s, logp, sizeof logp);
    if (util_mkdirs(dir, 0700) < 0) {
        log_error("session", "cannot create auth dir session=%s error=%s", s->name, strerror(errno));
    }
    session_worker_key(s, key);
    struct proxy *p = s->proxy_id ? pool_get(s->proxy_id) : NULL;
    struct worker_spec spec = {
        .session = s->name,
        .id = s->id,
        .proxy_url = p ? p->url : "",
        .webhook_url = webhook_url,
        .worker_key = key,
        .auth_dir = dir,
        .login_method = s->login == LOGIN_PAIRING ? "pairing_code" : "qr",
        .pairing_phone = s->pairing_phone,
        .log_path = logp,
    };
    /* the state that leads to this start is durable before the worker exists */
    store_flush();
    char err[256];
    /* a session is provisioning exactly until its first worker starts */
    int first = s->status == SS_PROVISIONING;
    if (rt->free_start)
        rt->free_start = 0;
    else
        s->fail_streak++;
    rt->started_wall = util_now_ms();
    if (runner->start(runner, &spec, &s->worker, err, sizeof err) < 0) {
        stats.worker_start_failures++;
        set_text(s->last_error, sizeof s->last_error, err);
        log_error("session", "worker start failed session=%s error=\"%s\"", s->name, err);
        if (s->fail_streak >= cfg->max_failed_starts) {
            crash_loop(s, err);
        } else {
            save(s);
            schedule_start(s, 1);
        }
        return;
    }
    stats.worker_starts++;
    if (!first) {
        s->restarts++;
        stats.worker_restarts++;
    }
    rt->running = 1;
    rt->started_mono = util_mono_ms();
    rt->last_ping_mono = rt->started_mono;
    input(s, FSM_WORKER_STARTED, "worker started");
}

static void pace_cb(evutil_socket_t fd, short what, void *arg)
{
    while (qlen) {
        int64_t id = queue[qhead];
        qhead = (qhead + 1) % qcap;
        qlen--;
        struct session *s = session_get(id);
        if (!s)
            continue;
        RT(s)->queued = 0;
        if (RT(s)->running || !sessfsm_should_run(s->status))
            continue;
        last_start_mono = util_mono_ms();
        start_now(s);
        break;
    }
    pace_arm();
}

static void pace_arm(void)
{
    if (!qlen || evtimer_pending(pace_ev, NULL))
        return;
    int64_t wait = last_start_mono + cfg->provisioning_interval_ms - util_mono_ms();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {wait / 1000, (wait % 1000) * 1000};
    evtimer_add(pace_ev, &tv);
}

/* ---------- runner exits ---------- */

static struct session *grave_take(const char *name)
{
    for (size_t i = 0; i < ngrave; i++) {
        if (strcmp(graveyard[i]->name, name) == 0) {
            struct session *s = graveyard[i];
            graveyard[i] = graveyard[--ngrave];
            return s;
        }
    }
    return NULL;
}

void session_on_worker_exit(const char *name, int code, int signo, const char *cause, void *arg)
{
    struct session *s = session_find(name);
    if (!s) {
        s = grave_take(name);
        if (s) {
            run_after(s, RT(s)->after_stop);
            free_session(s);
        }
        return;
    }
    struct sess_rt *rt = RT(s);
    rt->running = 0;
    memset(&s->worker, 0, sizeof s->worker);
    if (shutting_down) {
        /* the status stays: on the next start this session comes back (on the restored
         * files, when a restore waited for this worker) */
        rt->stopping = 0;
        if (rt->restore_pending)
            finish_pending_restore(s, 0);
        save(s);
        return;
    }
    if (rt->stopping) {
        rt->stopping = 0;
        unsigned after = rt->after_stop;
        rt->after_stop = 0;
        save(s);
        if ((after & AFTER_RESTART) && sessfsm_should_run(s->status) && s->fail_streak >= cfg->max_failed_starts) {
            /* stopped for a failure (disconnected, silent, no answer to /health) start
             * after start without ever connecting: the same crash loop as a worker that
             * exits by itself */
            run_after(s, after & ~(unsigned)AFTER_RESTART);
            crash_loop(s, s->reason);
            return;
        }
        run_after(s, after);
        return;
    }
    char why[TEXT_MAX];
    if (cause)
        snprintf(why, sizeof why, "%s", cause);
    else if (signo)
        snprintf(why, sizeof why, "worker killed by signal %d", signo);
    else if (code >= 0)
        snprintf(why, sizeof why, "worker exited with code %d", code);
    else
        snprintf(why, sizeof why, "worker exited");
    set_text(s->last_error, sizeof s->last_error, why);
    if (sessfsm_should_run(s->status) && s->fail_streak >= cfg->max_failed_starts) {
        crash_loop(s, why);
        return;
    }
    if (input(s, FSM_WORKER_EXITED, why) < 0)
        save(s);
}

/* ---------- provisioning and API actions ---------- */

static int count_phone(int64_t tenant_id, const char *phone)
{
    int n = 0;
    for (size_t i = 1; i < capid; i++)
        if (byid[i] && byid[i]->tenant_id == tenant_id && strcmp(byid[i]->phone, phone) == 0)
            n++;
    return n;
}

void session_counts(struct session_counts *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 1; i < capid; i++) {
        struct session *s = byid[i];
        if (!s)
            continue;
        c->by_status[s->status]++;
        c->workers_running += RT(s)->running;
        c->workers_stopping += RT(s)->stopping;
        c->restart_pending += RT(s)->restart_ev && evtimer_pending(RT(s)->restart_ev, NULL) && !RT(s)->running;
        c->waiting_proxy += RT(s)->waiting_proxy;
        c->should_run += sessfsm_should_run(s->status);
    }
    c->start_queue = (int)qlen;
}

#define FAIL(st, c, ...)                          \
    do {                                          \
        *status = (st);                           \
        *code = (c);                              \
        snprintf(msg, msglen, __VA_ARGS__);       \
        goto fail;                                \
    } while (0)

int session_provision(int64_t tenant_id, const struct provision_req *req, struct session **out,
                      int *status, const char **code, char *msg, size_t msglen)
{
    struct proxy *p = NULL;
    int added = 0, in_tx = 0;
    struct session_counts c;
    session_counts(&c);
    if (c.should_run >= cfg->max_workers)
        FAIL(503, "WORKER_LIMIT", "MAX_WORKERS (%ld) workers are running or starting", cfg->max_workers);
    if (req->phone && count_phone(tenant_id, req->phone) >= cfg->max_sessions_per_phone)
        FAIL(409, "PHONE_SESSION_LIMIT", "phone %s already has %ld sessions (MAX_SESSIONS_PER_PHONE)",
             req->phone, cfg->max_sessions_per_phone);

    int64_t bound = req->phone ? pool_binding(tenant_id, req->phone) : 0;
    store_tx_begin();
    in_tx = 1;
    if (req->proxy) {
        char err[200];
        struct proxy_url u;
        if (proxy_url_parse(req->proxy, &u, err, sizeof err) < 0)
            FAIL(400, "INVALID_PROXY", "%s", err);
        p = pool_find(tenant_id, req->proxy);
        if (!p)
            p = pool_find(0, req->proxy); /* the shared pool's own, not a private copy */
        if (bound && (!p || bound != p->id))
            FAIL(409, "PROXY_CONFLICT",
                 "phone %s is bound to proxy %lld; omit proxy to use it (the same phone always "
                 "uses the same proxy)", req->phone, (long long)bound);
        if (p && p->status != PROXY_OK)
            FAIL(503, "NO_PROXY_AVAILABLE", "the given proxy is marked bad; reset it first");
        if (p && !pool_has_room(p))
            FAIL(503, "NO_PROXY_AVAILABLE",
                 "the given proxy already carries %d sessions (MAX_SESSIONS_PER_PROXY)", p->nsessions);
        if (!p) {
            if (pool_add(tenant_id, req->proxy, "api", &p, err, sizeof err) != POOL_ADDED)
                FAIL(500, "STORE_ERROR", "%s", err);
            added = 1;
        }
    } else if (bound && pool_get(bound) && pool_get(bound)->status == PROXY_OK) {
        p = pool_get(bound);
        if (!pool_has_room(p))
            FAIL(503, "NO_PROXY_AVAILABLE",
                 "proxy %lld, bound to phone %s, is full (MAX_SESSIONS_PER_PROXY)", (long long)p->id,
                 req->phone);
    } else if (pool_usable_count(tenant_id) > 0) {
        p = pool_pick(tenant_id, 0);
        if (!p)
            FAIL(503, "NO_PROXY_AVAILABLE",
                 "every proxy is full or bad (MAX_SESSIONS_PER_PROXY=%ld); add a proxy or free a slot",
                 cfg->max_sessions_per_proxy);
    }
    struct session tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.tenant_id = tenant_id;
    tmp.status = SS_PROVISIONING;
    tmp.login = req->login;
    if (req->phone) {
        set_text(tmp.phone, sizeof tmp.phone, req->phone);
        if (req->login == LOGIN_PAIRING)
            set_text(tmp.pairing_phone, sizeof tmp.pairing_phone, req->phone);
    }
    tmp.proxy_id = p ? p->id : 0;
    tmp.created_at = util_now_ms();
    set_text(tmp.reason, sizeof tmp.reason, "provisioned");
    if (store_session_insert(&tmp) != STORE_OK)
        FAIL(500, "STORE_ERROR", "the session could not be saved");
    if (req->phone && p && !bound && pool_bind(tenant_id, req->phone, p->id) < 0)
        FAIL(500, "STORE_ERROR", "the proxy binding could not be saved");
    store_tx_end(1);
    snprintf(tmp.name, sizeof tmp.name, "worker_%lld", (long long)tmp.id);
    struct session *s = new_session(&tmp);
    index_session(s);
    pool_adjust(s->proxy_id, +1);
    log_info("session", "provisioned session=%s tenant=%lld proxy=%lld login=%s", s->name,
             (long long)tenant_id, (long long)s->proxy_id, req->login == LOGIN_PAIRING ? "pairing_code" : "qr");
    enqueue_start(s);
    *out = s;
    return 0;
fail:
    /* the savepoint drops the rows; a proxy added for this request leaves memory too */
    if (added && p)
        pool_forget(p);
    if (in_tx)
        store_tx_end(0);
    return -1;
}

enum session_restore session_restore_auth(struct session *s, const char *src_dir, char *err, size_t errlen)
{
    struct sess_rt *rt = RT(s);
    char dst[PATH_MAX];
    restore_path(s, dst, sizeof dst);
    /* an earlier restore still waiting for the worker: this one wins */
    int dropped = rt->restore_pending;
    rt->restore_pending = 0;
    discard_dir(dst);
    if (rename(src_dir, dst) < 0) {
        snprintf(err, errlen, "cannot move the restored files: %s; the old files stay%s", strerror(errno),
                 dropped ? " (and an earlier restore that waited for the worker is dropped)" : "");
        return SESSION_RESTORE_FAILED;
    }
    if (rt->running) {
        /* the worker may still write its files: they are swapped once it has gone
         * (run_after); a stopped session's worker is already on its way out. A logout's
         * wipe that waits for it too is not done: these files replace the dir anyway */
        rt->restore_pending = 1;
        rt->after_stop &= ~(unsigned)AFTER_WIPE;
        if (s->status == SS_STOPPED || session_restart(s, "auth state restored from a backup") < 0)
            return SESSION_RESTORE_STOPPED;
        return SESSION_RESTORE_RESTARTED;
    }
    if (swap_auth_dir(s, err, errlen) < 0)
        return SESSION_RESTORE_FAILED;
    /* a stopped session stays stopped, on the restored files, until it is restarted */
    if (s->status == SS_STOPPED || session_restart(s, "auth state restored from a backup") < 0)
        return SESSION_RESTORE_STOPPED;
    return SESSION_RESTORE_RESTARTED;
}

const char *session_sessions_dir(void) { return sessions_dir; }

int session_stop(struct session *s, const char *why)
{
    RT(s)->waiting_proxy = 0;
    RT(s)->free_start = 0;
    return input(s, FSM_STOP, why);
}

int session_restart(struct session *s, const char *why)
{
    if (!sessfsm_should_run(s->status)) {
        /* it runs again: it counts against MAX_WORKERS as a new one would */
        struct session_counts c;
        session_counts(&c);
        if (c.should_run >= cfg->max_workers)
            return -1;
    }
    RT(s)->waiting_proxy = 0;
    RT(s)->free_start = 0;
    input(s, FSM_RESTART, why); /* applies in every status */
    return 0;
}

void session_set_trust_level(struct session *s, const char *level)
{
    set_text(s->trust_level, sizeof s->trust_level, level);
    save(s);
    log_info("session", "trust level set session=%s level=%s", s->name, level[0] ? level : "by-age");
    dispatch_session_changed(s);
}

struct pairing_ctx {
    int64_t id;
    void (*done)(struct session *s, const char *code, const char *error, void *arg);
    void *arg;
};

static void pairing_reply(const struct httpc_response *res, void *arg)
{
    struct pairing_ctx *x = arg;
    struct session *s = session_get(x->id);
    json_t *j = res->status == 200 ? json_loadb(res->body, res->len, 0, NULL) : NULL;
    json_t *code = j ? json_object_get(j, "code") : NULL;
    if (!s)
        x->done(NULL, NULL, "the session is gone (deleted, or the daemon is stopping)", x->arg);
    else if (json_is_string(code) && json_string_length(code) >= 1 && json_string_length(code) <= 15)
        x->done(s, json_string_value(code), NULL, x->arg);
    else
        x->done(s, NULL, res->status ? "the worker refused the request" : "the worker did not answer", x->arg);
    json_decref(j);
    free(x);
}

int session_request_pairing(struct session *s, const char *phone,
                            void (*done)(struct session *s, const char *code, const char *error, void *arg),
                            void *arg)
{
    struct pairing_ctx *x = xcalloc(1, sizeof *x);
    x->id = s->id;
    x->done = done;
    x->arg = arg;
    json_t *b = json_pack("{s:s}", "phone", phone);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    int rc = command(s, "POST", "/pairing-code", body, pairing_reply, x);
    free(body);
    if (rc < 0)
        free(x);
    return rc;
}

struct logout_ctx {
    int64_t id;
    void (*done)(struct session *s, void *arg);
    void *arg;
};

static void logout_reply(const struct httpc_response *res, void *arg)
{
    struct logout_ctx *x = arg;
    struct session *s = session_get(x->id);
    if (s) {
        if (res->status < 200 || res->status >= 300)
            log_warn("session", "worker did not confirm logout session=%s status=%ld error=%s",
                     s->name, res->status, res->error ? res->error : "");
        input(s, FSM_LOGGED_OUT, "logged out by API");
    }
    x->done(s, x->arg);
    free(x);
}

void session_logout(struct session *s, void (*done)(struct session *s, void *arg), void *arg)
{
    struct logout_ctx *x = xcalloc(1, sizeof *x);
    x->id = s->id;
    x->done = done;
    x->arg = arg;
    if (command(s, "POST", "/logout", "{}", logout_reply, x) == 0)
        return;
    free(x);
    input(s, FSM_LOGGED_OUT, "logged out by API");
    done(s, arg);
}

int session_delete(struct session *s, int purge)
{
    struct sess_rt *rt = RT(s);
    if (store_session_delete(s->id) != STORE_OK)
        return -1;
    log_info("session", "deleted session=%s purge=%d", s->name, purge);
    events_emit(s->tenant_id, "session.status", s->name,
                json_pack("{s:s,s:s,s:s}", "status", "deleted", "previous", sess_status_name(s->status), "reason",
                          "deleted by API"));
    dispatch_session_deleted(s->id);
    byid[s->id] = NULL;
    rt->deleted = 1;
    rt->waiting_proxy = 0;
    pool_adjust(s->proxy_id, -1);
    waiters_fire_all(s, NULL, 1);
    if (rt->restart_ev)
        evtimer_del(rt->restart_ev);
    if (rt->stable_ev)
        evtimer_del(rt->stable_ev);
    unsigned after = AFTER_FREE | (purge ? AFTER_WIPE : 0);
    if (rt->running) {
        if (ngrave == capgrave) {
            capgrave = capgrave ? capgrave * 2 : 16;
            graveyard = xrealloc(graveyard, capgrave * sizeof *graveyard);
        }
        graveyard[ngrave++] = s;
        stop_worker(s, after);
    } else {
        run_after(s, after);
        free_session(s);
    }
    session_retry_waiting();
    return 0;
}

/* ---------- proxies ---------- */

int session_count_on_proxy(int64_t proxy_id)
{
    int n = 0;
    for (size_t i = 1; i < capid; i++)
        n += byid[i] && byid[i]->proxy_id == proxy_id;
    return n;
}

/* moves every session on bad/removed proxy p elsewhere, or makes it wait */
static void move_sessions(int64_t from, int removed, const char *why)
{
    for (size_t i = 1; i < capid; i++) {
        struct session *s = byid[i];
        if (!s || s->proxy_id != from)
            continue;
        if (!sessfsm_should_run(s->status)) {
            /* not running: it gets a proxy (or waits for one) when it is started again */
            if (removed) {
                pool_adjust(s->proxy_id, -1);
                s->proxy_id = 0;
                s->needs_proxy = 1;
                RT(s)->waiting_proxy = 0;
                save(s);
            }
            continue;
        }
        struct proxy *to = replacement(s, from);
        char reason[TEXT_MAX];
        if (to) {
            stats.proxy_failovers++;
            move_to_proxy(s, to->id);
            snprintf(reason, sizeof reason, "proxy switched from %lld to %lld: %s", (long long)from,
                     (long long)to->id, why);
            RT(s)->waiting_proxy = 0;
            input(s, FSM_RESTART, reason);
        } else {
            if (removed) {
                pool_adjust(s->proxy_id, -1);
                s->proxy_id = 0;
                s->needs_proxy = 1; /* saved by the input below */
            }
            RT(s)->waiting_proxy = 1;
            input(s, FSM_NO_PROXY, "no_proxy");
        }
    }
}

static void proxy_failed(struct session *s, const char *error)
{
    struct proxy *p = s->proxy_id ? pool_get(s->proxy_id) : NULL;
    if (!p) {
        log_warn("session", "PROXY_ERROR from a session without a proxy session=%s error=\"%s\"",
                 s->name, error);
        set_text(s->last_error, sizeof s->last_error, error);
        save(s);
        return;
    }
    if (p->status == PROXY_OK)
        pool_mark_bad(p, error, util_now_ms());
    char why[TEXT_MAX];
    snprintf(why, sizeof why, "proxy %lld failed: %.200s", (long long)p->id, error);
    move_sessions(p->id, 0, why);
}

int session_move_off_proxy(struct proxy *p, const char *why)
{
    move_sessions(p->id, 1, why);
    return 0;
}

void session_retry_waiting(void)
{
    for (size_t i = 1; i < capid; i++) {
        struct session *s = byid[i];
        if (!s || !RT(s)->waiting_proxy || !sessfsm_should_run(s->status))
            continue;
        int64_t to = proxy_for_start(s);
        if (to < 0)
            continue;
        RT(s)->waiting_proxy = 0;
        if (to != s->proxy_id)
            move_to_proxy(s, to);
        set_text(s->reason, sizeof s->reason, "a proxy is available again");
        save(s);
        schedule_start(s, 0);
    }
}

/* ---------- worker events ---------- */

int session_on_event(struct session *s, const struct wevent *ev)
{
    struct sess_rt *rt = RT(s);
    int64_t now = util_now_ms();
    char why[TEXT_MAX];
    switch (ev->type) {
    case WE_PING:
        rt->last_ping_mono = util_mono_ms();
        s->last_ping_at = now;
        /* lastPingAt is telemetry, exact in memory; the store gets it at most every
         * PING_PERSIST_MS per session (and with every other write of the session) */
        if (now - rt->ping_saved_at >= PING_PERSIST_MS) {
            rt->ping_saved_at = now;
            if (store_session_ping(s->id, now) != STORE_OK)
                log_error("session", "cannot save a ping session=%s", s->name);
        }
        return 0;
    case WE_QR_CODE:
        if (sessfsm_is_terminal(s->status))
            return 1;
        set_text(s->qr, sizeof s->qr, ev->qr);
        s->qr_at = now;
        /* the code itself stays behind GET /api/sessions/{id}/qr */
        events_emit(s->tenant_id, "session.qr", s->name, json_pack("{s:s}", "loginMethod", "qr"));
        rt->last_ping_mono = util_mono_ms();
        if (input(s, FSM_QR, "waiting for the QR code to be scanned") < 0)
            save(s);
        return 0;
    case WE_PAIRING_CODE:
        if (sessfsm_is_terminal(s->status))
            return 1;
        set_text(s->pairing_code, sizeof s->pairing_code, ev->code);
        s->pairing_at = now;
        events_emit(s->tenant_id, "session.qr", s->name, json_pack("{s:s}", "loginMethod", "pairing_code"));
        if (input(s, FSM_QR, "waiting for the pairing code to be entered") < 0)
            save(s);
        waiters_fire_all(s, s->pairing_code, 0);
        return 0;
    case WE_CONNECTED: {
        if (sessfsm_is_terminal(s->status))
            return 1;
        char phone[PHONE_MAX];
        if (util_phone_normalize(ev->phone, phone, sizeof phone) < 0)
            return 1;
        if (s->phone[0] && strcmp(s->phone, phone) != 0)
            log_warn("session", "linked phone differs from the one given session=%s given=%s linked=%s",
                     s->name, s->phone, phone);
        set_text(s->phone, sizeof s->phone, phone);
        s->connected_at = now;
        if (!s->first_connected_at)
            s->first_connected_at = now;
        s->last_error[0] = '\0';
        rt->last_ping_mono = util_mono_ms();
        return input(s, FSM_CONNECTED, "connected") < 0;
    }
    case WE_DISCONNECTED:
        snprintf(why, sizeof why, "disconnected (status %lld)%s%.300s", (long long)ev->status_code,
                 ev->reason ? ": " : "", ev->reason ? ev->reason : "");
        set_text(s->last_error, sizeof s->last_error, why);
        if (ev->logged_out)
            return input(s, FSM_LOGGED_OUT, why) < 0;
        if (ev->status_code == 440) {
            snprintf(why, sizeof why, "connection replaced (status 440): another client is using this "
                     "WhatsApp session; restart the session to take it back");
            return input(s, FSM_REPLACED, why) < 0;
        }
        return input(s, FSM_DISCONNECTED, why) < 0;
    case WE_AUTH_FAILURE:
        set_text(s->last_error, sizeof s->last_error, ev->error);
        snprintf(why, sizeof why, "auth failure: %.400s", ev->error);
        return input(s, FSM_AUTH_FAILURE, why) < 0;
    case WE_PROXY_ERROR:
        if (sessfsm_is_terminal(s->status))
            return 1;
        if (RT(s)->stopping || ev->timestamp < RT(s)->started_wall) {
            /* from a worker being stopped, or an earlier one (a late or retried post):
             * it is about the proxy the session had then, not the one it has now */
            log_warn("session", "PROXY_ERROR from an earlier worker ignored session=%s", s->name);
            return 1;
        }
        proxy_failed(s, ev->error);
        return 0;
    case WE_MESSAGE_SENT:
    case WE_MESSAGE_FAILED:
    case WE_MESSAGE_RECEIVED:
        return dispatch_on_event(s, ev);
    case WE__COUNT:
        break;
    }
    return 1;
}

/* ---------- watchdog ---------- */

struct health_ctx {
    int64_t id;
    int pid;
};

static void silent(struct session *s, const char *why)
{
    stats.watchdog_restarts++;
    log_warn("watchdog", "restarting silent worker session=%s reason=\"%s\"", s->name, why);
    set_text(s->last_error, sizeof s->last_error, why);
    input(s, FSM_SILENT, why);
}

/* A watchdog pass walks the sessions in id order; at most HEALTH_INFLIGHT /health
 * checks are out at once, each answer starting the next, so a thousand workers are
 * never asked in one burst. */
#define HEALTH_INFLIGHT 32

static size_t health_cursor; /* next id of the current pass; 0 = no pass */
static int health_inflight;

static void health_next(void);

static void health_reply(const struct httpc_response *res, void *arg)
{
    struct health_ctx *x = arg;
    struct session *s = session_get(x->id);
    health_inflight--;
    if (s) {
        RT(s)->health_inflight = 0;
        /* only the worker that was asked: a restart in between makes the answer moot */
        if (RT(s)->running && !RT(s)->stopping && s->worker.pid == x->pid &&
            (res->status < 200 || res->status >= 300)) {
            char why[TEXT_MAX];
            snprintf(why, sizeof why, "worker did not answer /health (%s)",
                     res->status ? "bad status" : (res->error ? res->error : "no answer"));
            silent(s, why);
        }
    }
    free(x);
    if (!shutting_down)
        health_next();
}

static void health_check(struct session *s)
{
    struct health_ctx *x = xcalloc(1, sizeof *x);
    x->id = s->id;
    x->pid = s->worker.pid;
    if (command(s, "GET", "/health", NULL, health_reply, x) < 0) {
        free(x);
        return;
    }
    RT(s)->health_inflight = 1;
    health_inflight++;
}

static void health_next(void)
{
    int64_t now = util_mono_ms();
    while (health_cursor && health_inflight < HEALTH_INFLIGHT) {
        if (health_cursor >= capid) {
            health_cursor = 0;
            break;
        }
        struct session *s = byid[health_cursor++];
        if (!s)
            continue;
        struct sess_rt *rt = RT(s);
        if (!rt->running || rt->stopping || !sessfsm_should_run(s->status) || rt->health_inflight ||
            !s->worker.address[0] || now - rt->started_mono < cfg->worker_start_grace_ms)
            continue;
        health_check(s);
    }
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = util_mono_ms();
    for (size_t i = 1; i < capid; i++) {
        struct session *s = byid[i];
        if (!s)
            continue;
        struct sess_rt *rt = RT(s);
        if (!rt->running || rt->stopping || !sessfsm_should_run(s->status))
            continue;
        if (now - rt->last_ping_mono > cfg->ping_timeout_ms) {
            char why[TEXT_MAX];
            snprintf(why, sizeof why, "no PING for %lld s", (long long)((now - rt->last_ping_mono) / 1000));
            silent(s, why);
        }
    }
    /* a pass still running from the last tick just goes on */
    if (!health_cursor)
        health_cursor = 1;
    health_next();
}

static void monitor_cb(evutil_socket_t fd, short what, void *arg)
{
    runner->tick(runner);
}

/* ---------- start-up and shutdown ---------- */

static void load_cb(const struct session *src, void *arg)
{
    struct session *s = new_session(src);
    index_session(s);
    pool_adjust(s->proxy_id, +1);
    if (s->status == SS_DISCONNECTED && strcmp(s->reason, "no_proxy") == 0)
        RT(s)->waiting_proxy = 1;
}

#define MAX_FOUND 20000

/* what a crash, or a stop whose worker outlived it, cut short in a restore: restored files
 * still waiting (<name>.restore) replace the auth dir now, or once an adopted worker has
 * stopped; a swap half done (<name>.replaced and no <name>) is put back; a finished one's
 * <name>.replaced goes. Those of deleted sessions go too. Runs after adoption, before any
 * worker starts. */
static void recover_auth_dirs(void)
{
    for (size_t i = 1; i < capid; i++) {
        struct session *s = byid[i];
        if (!s)
            continue;
        char old[PATH_MAX], src[PATH_MAX], err[PATH_MAX + 100];
        replaced_path(s, old, sizeof old);
        restore_path(s, src, sizeof src);
        if (put_back_replaced(s, err, sizeof err) == 0)
            discard_dir(old); /* what a finished swap left, if anything */
        if (!path_exists(src))
            continue;
        RT(s)->restore_pending = 1;
        log_info("session", "finishing a restore from a backup session=%s worker_running=%d", s->name,
                 RT(s)->running);
        if (RT(s)->running)
            input(s, FSM_RESTART, "auth state restored from a backup"); /* swapped once it stops */
        else
            finish_pending_restore(s, 0);
    }
    DIR *dp = opendir(sessions_dir);
    if (!dp)
        return;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        const char *dot = strrchr(de->d_name, '.');
        if (!dot || dot == de->d_name || (strcmp(dot, ".restore") != 0 && strcmp(dot, ".replaced") != 0))
            continue;
        char name[SESSION_NAME_MAX];
        snprintf(name, sizeof name, "%.*s", (int)(dot - de->d_name), de->d_name);
        if (session_find(name))
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", sessions_dir, de->d_name);
        if (util_rmtree_below(sessions_dir, p) == 0)
            log_info("session", "removed what a restore left of a deleted session path=%s", de->d_name);
    }
    closedir(dp);
}

static void recover(void)
{
    struct runner_found *found = xcalloc(MAX_FOUND, sizeof *found);
    int n = runner->scan(runner, found, MAX_FOUND);
    for (int i = 0; i < n; i++) {
        struct session *s = session_find(found[i].session);
        int ours = s && sessfsm_should_run(s->status) && !RT(s)->running &&
                   s->worker.pid == found[i].w.pid && s->worker.ident == found[i].w.ident &&
                   strcmp(s->worker.address, found[i].w.address) == 0;
        char logp[PATH_MAX];
        if (ours)
            worker_log_path(s, logp, sizeof logp);
        if (ours && runner->adopt(runner, s->name, &found[i].w, logp) == 0) {
            RT(s)->running = 1;
            RT(s)->started_mono = util_mono_ms();
            RT(s)->last_ping_mono = RT(s)->started_mono;
            if (s->status == SS_CONNECTED)
                arm_stable(s); /* counted from now: the daemon did not see it begin */
            continue;
        }
        log_warn("session", "stopping a stray worker session=%s pid=%d", found[i].session,
                 found[i].w.pid);
        runner->kill_found(runner, &found[i].w, cfg->worker_stop_grace_ms);
    }
    free(found);
    recover_auth_dirs();
    int queued = 0;
    for (size_t i = 1; i < capid; i++) {
        struct session *s = byid[i];
        if (!s || RT(s)->running)
            continue;
        if (s->worker.pid) {
            memset(&s->worker, 0, sizeof s->worker);
            save(s);
        }
        if (s->status == SS_LOGGED_OUT)
            wipe_auth(s); /* finishes a logout cut short by a crash */
        if (sessfsm_should_run(s->status) && !RT(s)->waiting_proxy) {
            /* its worker is gone: say so until the new one reports, rather than keep
             * showing the last live status */
            /* connected when the daemon went down: this start is the daemon's, and must
             * not push a session that connected recently towards a crash loop */
            RT(s)->free_start = s->status == SS_CONNECTED;
            if (s->status != SS_PROVISIONING && s->status != SS_DISCONNECTED)
                input(s, FSM_WORKER_EXITED, "daemon restarted: waiting for a new worker");
            enqueue_start(s);
            queued++;
        }
    }
    log_info("session", "recovered sessions adopted=%d to_start=%d", n, queued);
    session_retry_waiting();
}

int session_init(struct event_base *base, const struct config *c, struct runner *rn,
                 const char *master_secret, const char *wh_url, char *err, size_t errlen)
{
    evbase = base;
    cfg = c;
    runner = rn;
    master = xstrdup(master_secret);
    webhook_url = xstrdup(wh_url);
    sessions_dir = c->sessions_dir[0] ? xstrdup(c->sessions_dir) : xasprintf("%s/sessions", c->data_dir);
    logs_dir = xasprintf("%s/logs", c->data_dir);
    if (util_mkdirs(sessions_dir, 0700) < 0 || util_mkdirs(logs_dir, 0700) < 0) {
        snprintf(err, errlen, "session: cannot create %s or %s: %s", sessions_dir, logs_dir, strerror(errno));
        return -1;
    }
    pace_ev = evtimer_new(base, pace_cb, NULL);
    if (store_session_load(load_cb, NULL) < 0) {
        snprintf(err, errlen, "session: cannot load sessions from the store");
        return -1;
    }
    recover();
    store_flush();
    watchdog_ev = event_new(base, -1, EV_PERSIST, watchdog_cb, NULL);
    struct timeval wt = {c->watchdog_interval_ms / 1000, (c->watchdog_interval_ms % 1000) * 1000};
    event_add(watchdog_ev, &wt);
    monitor_ev = event_new(base, -1, EV_PERSIST, monitor_cb, NULL);
    struct timeval mt = {c->monitor_interval_ms / 1000, (c->monitor_interval_ms % 1000) * 1000};
    event_add(monitor_ev, &mt);
    return 0;
}

void session_shutdown(void)
{
    /* stop every worker; the loop is no longer running, so reap synchronously */
    shutting_down = 1;
    if (pace_ev)
        evtimer_del(pace_ev);
    int left = 0;
    for (size_t i = 1; i < capid; i++) {
        struct session *s = byid[i];
        /* answered first, so that the loop below also writes the answers out */
        if (s)
            waiters_fire_all(s, NULL, 0);
        if (s && RT(s)->restart_ev)
            evtimer_del(RT(s)->restart_ev);
        if (s && RT(s)->running && !RT(s)->stopping) {
            runner->stop(runner, s->name, &s->worker, cfg->worker_stop_grace_ms);
            left++;
        }
    }
    if (left)
        log_info("session", "stopping workers count=%d", left);
    int64_t deadline = util_mono_ms() + cfg->worker_stop_grace_ms + 1000;
    while (runner->count(runner) > 0 && util_mono_ms() < deadline)
        event_base_loop(evbase, EVLOOP_ONCE);
    store_flush();
    for (size_t i = 1; i < capid; i++) {
        struct session *s = byid[i];
        if (!s)
            continue;
        waiters_fire_all(s, NULL, 0);
        free_session(s);
    }
    for (size_t i = 0; i < ngrave; i++)
        free_session(graveyard[i]);
    free(graveyard);
    free(byid);
    free(queue);
    byid = NULL;
    graveyard = NULL;
    queue = NULL;
    capid = ngrave = capgrave = qlen = qcap = qhead = 0;
    if (pace_ev)
        event_free(pace_ev);
    if (watchdog_ev)
        event_free(watchdog_ev);
    if (monitor_ev)
        event_free(monitor_ev);
    pace_ev = watchdog_ev = monitor_ev = NULL;
    free(master);
    free(webhook_url);
    free(sessions_dir);
    free(logs_dir);
}
