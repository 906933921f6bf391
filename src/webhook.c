/* webhook: POST /webhook, the worker -> daemon half of the worker protocol (SPEC §5).
 * Order of checks: size (413), signature headers present (401), JSON and sessionId
 * (400), the signature with the key derived from that sessionId and the timestamp
 * window (401), the event's own fields (400), the session (404). Nothing changes state before all of them pass, and an
 * unsigned sender learns nothing past the envelope. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "config.h"
#include "hmac.h"
#include "http.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "wclient.h"
#include "wevent.h"

#define MAX_SKEW_S 300

static const struct config *cfg;
static char *master;
static unsigned long long counts[WE__COUNT];
static unsigned long long rejected;

void webhook_metrics_each(void (*fn)(const char *type, unsigned long long n, void *arg), void *arg)
{
    for (int i = 0; i < WE__COUNT; i++)
        fn(wevent_type_name((enum wevent_type)i), counts[i], arg);
    fn("rejected", rejected, arg);
}

static void worker_event(struct http_req *r)
{
    size_t len;
    const char *body = http_body(r, &len);
    if (len > (size_t)cfg->worker_max_event_bytes) {
        rejected++;
        http_reply_error(r, 413, "TOO_LARGE", "an event may be at most %ld bytes", cfg->worker_max_event_bytes);
        return;
    }
    const char *ts = http_header(r, "X-Timestamp");
    const char *sig = http_header(r, "X-Signature");
    if (!ts || !sig) {
        rejected++;
        http_reply_error(r, 401, "BAD_SIGNATURE", "X-Timestamp and X-Signature are required");
        return;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        rejected++;
        http_reply_error(r, 400, "INVALID_EVENT", "body is not valid JSON: %s", je.text);
        return;
    }
    const char *sid = wevent_session_of(root);
    if (!sid) {
        rejected++;
        json_decref(root);
        http_reply_error(r, 400, "INVALID_EVENT", "sessionId must be a string like worker_7");
        return;
    }
    /* a known session has its key prepared; an unknown one is checked the slow way, so
     * that a bad signature is 401 whether or not the session exists */
    struct session *known = session_find(sid);
    int bad;
    if (known) {
        bad = wclient_verify_key(session_worker_mac(known), ts, sig, body, len, (long)time(NULL), MAX_SKEW_S);
    } else {
        char key[HMAC_HEX_LEN + 1];
        wclient_worker_key(master, sid, key);
        bad = wclient_verify(key, ts, sig, body, len, (long)time(NULL), MAX_SKEW_S);
    }
    if (bad < 0) {
        rejected++;
        json_decref(root);
        http_reply_error(r, 401, "BAD_SIGNATURE",
                         "the signature does not match or the timestamp is more than %d s off", MAX_SKEW_S);
        return;
    }
    struct wevent ev;
    char err[256];
    int rc = wevent_from_json(root, &ev, err, sizeof err);
    json_decref(root);
    if (rc < 0) {
        rejected++;
        http_reply_error(r, 400, "INVALID_EVENT", "%s", err);
        return;
    }
    struct session *s = known;
    if (!s) {
        rejected++;
        http_reply_error(r, 404, "SESSION_NOT_FOUND", "no session %s", ev.session);
        wevent_free(&ev);
        return;
    }
    counts[ev.type]++;
    if (ev.type != WE_PING)
        log_info("webhook", "event session=%s type=%s", s->name, wevent_type_name(ev.type));
    else
        log_debug("webhook", "event session=%s type=PING", s->name);
    int stale = session_on_event(s, &ev);
    wevent_free(&ev);
    static const char applied[] = "{\"ok\":true,\"ignored\":false}";
    static const char ignored[] = "{\"ok\":true,\"ignored\":true}";
    if (stale == 1)
        http_reply_raw(r, 200, "application/json", ignored, sizeof ignored - 1);
    else
        http_reply_raw(r, 200, "application/json", applied, sizeof applied - 1);
}

static const struct http_route routes[] = {
    {"POST", "/webhook", AUTH_NONE, worker_event},
    {NULL, NULL, 0, NULL},
};

void webhook_register(const struct config *c, const char *master_secret)
{
    cfg = c;
    master = xstrdup(master_secret);
    http_add_routes(routes);
}
