/* api-calls: leads, outbound call runs and jobs (the seed 004 routes), and Twilio's
 * status callbacks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "apiparse.h"
#include "callfsm.h"
#include "calls.h"
#include "config.h"
#include "csv.h"
#include "http.h"
#include "store.h"
#include "util.h"

#define START_MAX 10000       /* leads of one start */
#define IMPORT_ERRORS_MAX 1000
#define PAGE_SIZE_MAX 100

static int calls_ready(struct http_req *r)
{
    if (calls_enabled())
        return 1;
    http_reply_error(r, 503, "CALLS_NOT_CONFIGURED",
                     "outbound calls are off: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM and TWILIO_TWIML_URL");
    return 0;
}

/* ---- leads ---- */

static json_t *lead_json(const struct lead *l)
{
    char phone[PHONE_MAX + 1];
    snprintf(phone, sizeof phone, "+%s", l->phone);
    return json_pack("{s:I,s:s,s:s,s:o,s:o}", "id", (json_int_t)l->id, "name", l->name, "phone", phone, "timezone",
                     l->timezone[0] ? json_string(l->timezone) : json_null(), "created_at", api_time(l->created_at));
}

/* fills l from the three texts; 0, or -1 with err */
static int lead_from(const char *name, const char *phone, const char *tz, struct lead *l, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    while (name && (*name == ' ' || *name == '\t'))
        name++;
    size_t nl = name ? strlen(name) : 0;
    while (nl && (name[nl - 1] == ' ' || name[nl - 1] == '\t'))
        nl--;
    if (nl == 0 || nl >= LEAD_NAME_MAX) {
        snprintf(err, errlen, "name must be 1 to %d bytes of text", LEAD_NAME_MAX - 1);
        return -1;
    }
    snprintf(l->name, sizeof l->name, "%.*s", (int)nl, name);
    char check[LEAD_NAME_MAX];
    memcpy(check, l->name, nl + 1);
    util_utf8_fix(check);
    if (strcmp(check, l->name) != 0) {
        snprintf(err, errlen, "name is not valid UTF-8");
        return -1;
    }
    if (!phone || util_phone_normalize(phone, l->phone, sizeof l->phone) < 0) {
        snprintf(err, errlen, "phone must be 8 to 15 digits with an optional leading +");
        return -1;
    }
    if (tz && *tz) {
        if (strlen(tz) >= TZ_NAME_MAX || !config_timezone_ok(tz)) {
            snprintf(err, errlen, "timezone must be an IANA zone such as Asia/Jerusalem");
            return -1;
        }
        snprintf(l->timezone, sizeof l->timezone, "%s", tz);
    }
    return 0;
}

static void create_lead(struct http_req *r)
{
    json_t *body = http_json_object(r);
    if (!body)
        return;
    static const char *const keys[] = {"name", "phone", "timezone", NULL};
    char err[200];
    struct lead l;
    json_t *n = json_object_get(body, "name"), *p = json_object_get(body, "phone"), *t = json_object_get(body, "timezone");
    if (!apiparse_only_keys(body, keys, err, sizeof err)) {
        json_decref(body);
        http_reply_error(r, 400, "INVALID_REQUEST", "%s", err);
        return;
    }
    if ((n && !json_is_string(n)) || (p && !json_is_string(p)) || (t && !json_is_null(t) && !json_is_string(t))) {
        json_decref(body);
        http_reply_error(r, 400, "INVALID_REQUEST", "name, phone and timezone must be strings");
        return;
    }
    int rc = lead_from(json_string_value(n), json_string_value(p), json_is_string(t) ? json_string_value(t) : NULL,
                       &l, err, sizeof err);
    json_decref(body);
    if (rc < 0) {
        http_reply_error(r, 400, strstr(err, "phone") == err ? "INVALID_PHONE" : "INVALID_REQUEST", "%s", err);
        return;
    }
    l.tenant_id = http_tenant(r);
    l.created_at = util_now_ms();
    rc = store_lead_insert(&l);
    if (rc == STORE_CONFLICT) {
        http_reply_error(r, 409, "LEAD_EXISTS", "a lead with phone +%s exists already", l.phone);
        return;
    }
    if (rc != STORE_OK) {
        http_reply_error(r, 500, "STORE_ERROR", "the lead could not be stored");
        return;
    }
    http_reply_json(r, 201, lead_json(&l));
}

static void import_leads(struct http_req *r)
{
    size_t len;
    const char *body = http_body(r, &len);
    struct csv c;
    char f[CSV_FIELDS_MAX][CSV_FIELD_BYTES], err[200];
    int line;
    csv_init(&c, body ? body : "", body ? len : 0);
    int n = csv_next(&c, f, &line, err, sizeof err);
    int has_tz = n == 3 && strcmp(f[2], "timezone") == 0;
    if (n < 2 || n > 3 || strcmp(f[0], "name") != 0 || strcmp(f[1], "phone") != 0 || (n == 3 && !has_tz)) {
        http_reply_error(r, 400, "INVALID_CSV", "the first line must be the header name,phone or name,phone,timezone");
        return;
    }
    json_t *errors = json_array();
    int imported = 0, failed = 0;
    int64_t tenant = http_tenant(r), now = util_now_ms();
    struct lead l;
    store_tx_begin();
    while ((n = csv_next(&c, f, &line, err, sizeof err)) != 0) {
        char why[240];
        int bad = 1;
        if (n < 0) {
            snprintf(why, sizeof why, "%s", err);
        } else if (n != (has_tz ? 3 : 2) && !(has_tz && n == 2)) {
            snprintf(why, sizeof why, "expected %d fields, got %d", has_tz ? 3 : 2, n);
        } else if (lead_from(f[0], f[1], n == 3 ? f[2] : NULL, &l, err, sizeof err) < 0) {
            snprintf(why, sizeof why, "%s", err);
        } else {
            l.tenant_id = tenant;
            l.created_at = now;
            int rc = store_lead_insert(&l);
            if (rc == STORE_OK) {
                imported++;
                bad = 0;
            } else {
                snprintf(why, sizeof why, rc == STORE_CONFLICT ? "a lead with phone +%s exists already"
                                                               : "the lead could not be stored (+%s)", l.phone);
            }
        }
        if (bad) {
            failed++;
            if (json_array_size(errors) < IMPORT_ERRORS_MAX)
                json_array_append_new(errors, json_pack("{s:i,s:s}", "line", line, "error", why));
        }
    }
    store_tx_end(1);
    http_reply_json(r, 200, json_pack("{s:i,s:i,s:o}", "imported", imported, "failed", failed, "errors", errors));
}

/* ?page= from 1 and ?page_size= 1..max (default def); -1 after answering 400 */
static int paging(struct http_req *r, int def, int max, int *page, int *size)
{
    const char *p = http_query(r, "page"), *s = http_query(r, "page_size");
    long pv = 1, sv = def;
    if ((p && util_parse_count(p, 1, 1000000, &pv) < 0) || (s && util_parse_count(s, 1, max, &sv) < 0)) {
        http_reply_error(r, 400, "INVALID_REQUEST", "page must be 1 or more and page_size 1 to %d", max);
        return -1;
    }
    *page = (int)pv;
    *size = (int)sv;
    return 0;
}

static void lead_row(const struct lead *l, void *arg) { json_array_append_new(arg, lead_json(l)); }

static void list_leads(struct http_req *r)
{
    int page, size;
    if (paging(r, 50, 500, &page, &size) < 0)
        return;
    json_t *list = json_array();
    int64_t tenant = http_tenant(r);
    store_lead_list(tenant, (page - 1) * size, size, lead_row, list);
    http_reply_json(r, 200, json_pack("{s:o,s:i,s:i,s:I}", "leads", list, "page", page, "page_size", size, "total",
                                      (json_int_t)store_lead_count(tenant)));
}

/* ---- starting calls ---- */

static void start_calls(struct http_req *r)
{
    if (!calls_ready(r))
        return;
    json_t *body = http_json_object(r);
    if (!body)
        return;
    static const char *const keys[] = {"lead_ids", NULL};
    char err[200];
    json_t *ids = json_object_get(body, "lead_ids");
    if (!apiparse_only_keys(body, keys, err, sizeof err)) {
        json_decref(body);
        http_reply_error(r, 400, "INVALID_REQUEST", "%s", err);
        return;
    }
    if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > START_MAX) {
        json_decref(body);
        http_reply_error(r, 400, "INVALID_REQUEST", "lead_ids must be a list of 1 to %d lead ids", START_MAX);
        return;
    }
    size_t n = json_array_size(ids), nleads = 0;
    struct lead *leads = xcalloc(n, sizeof *leads);
    json_t *unknown = json_array(), *skipped = json_array();
    int64_t tenant = http_tenant(r);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(ids, i);
        json_int_t id = json_is_integer(v) ? json_integer_value(v) : 0;
        if (id <= 0) {
            json_array_append(unknown, v);
            continue;
        }
        int dup = 0;
        for (size_t k = 0; k < nleads && !dup; k++)
            dup = leads[k].id == id;
        if (dup)
            continue;
        struct lead *l = &leads[nleads];
        if (store_lead_get(id, l) != STORE_OK || l->tenant_id != tenant) {
            json_array_append_new(unknown, json_integer(id));
            continue;
        }
        int64_t run_id;
        if (store_job_lead_open(id, &run_id)) {
            json_array_append_new(skipped, json_pack("{s:I,s:I,s:s}", "lead_id", id, "run_id", (json_int_t)run_id,
                                                     "reason", "already has a call queued or in progress"));
            continue;
        }
        nleads++;
    }
    json_decref(body);
    if (json_array_size(unknown)) {
        char *list = json_dumps(unknown, JSON_COMPACT);
        http_reply_error(r, 400, "UNKNOWN_LEADS", "unknown lead ids: %.400s", list);
        free(list);
        json_decref(unknown);
        json_decref(skipped);
        free(leads);
        return;
    }
    json_decref(unknown);
    if (nleads == 0) {
        http_reply_json(r, 409, json_pack("{s:{s:s,s:s},s:o}", "error", "code", "LEADS_BUSY", "message",
                                          "every lead already has a call queued or in progress", "skipped", skipped));
        free(leads);
        return;
    }
    calls_start(r, tenant, leads, nleads, skipped);
    free(leads);
}

/* ---- runs and jobs ---- */

static int64_t id_param(struct http_req *r, int i, const char *what)
{
    long id;
    if (util_parse_count(http_param(r, i), 1, 999999999999L, &id) < 0) {
        http_reply_error(r, 404, what, "no such id %.40s", http_param(r, i));
        return -1;
    }
    return id;
}

static void get_run(struct http_req *r)
{
    int64_t id = id_param(r, 0, "RUN_NOT_FOUND");
    if (id < 0)
        return;
    struct call_run run;
    if (store_run_get(id, &run) != STORE_OK || run.tenant_id != http_tenant(r)) {
        http_reply_error(r, 404, "RUN_NOT_FOUND", "no run %lld", (long long)id);
        return;
    }
    http_reply_json(r, 200, calls_run_json(&run));
}

static void run_row(const struct call_run *run, void *arg) { json_array_append_new(arg, calls_run_json(run)); }

static void list_runs(struct http_req *r)
{
    json_t *list = json_array();
    store_run_list(http_tenant(r), 100, run_row, list);
    http_reply_json(r, 200, json_pack("{s:o}", "runs", list));
}

/* {run_id} in a body, as the seed has it */
static void stop_queue(struct http_req *r)
{
    json_t *body = http_json_object(r);
    if (!body)
        return;
    json_t *v = json_object_get(body, "run_id");
    json_int_t id = json_is_integer(v) ? json_integer_value(v) : 0;
    json_decref(body);
    if (id <= 0) {
        http_reply_error(r, 400, "INVALID_REQUEST", "run_id must be a run's id");
        return;
    }
    json_t *ans;
    struct calls_result res;
    if (calls_stop_run(http_tenant(r), id, &ans, &res) < 0) {
        http_reply_error(r, res.status, res.code, "%s", res.msg);
        return;
    }
    http_reply_json(r, 200, ans);
}

static void cancel(struct http_req *r, int force)
{
    int64_t id = id_param(r, 0, "JOB_NOT_FOUND");
    if (id < 0)
        return;
    json_t *ans;
    struct calls_result res;
    if (calls_cancel_job(http_tenant(r), id, force, &ans, &res) < 0) {
        http_reply_error(r, res.status, res.code, "%s", res.msg);
        return;
    }
    http_reply_json(r, force ? 200 : 202, ans);
}

static void soft_cancel(struct http_req *r) { cancel(r, 0); }
static void force_cancel(struct http_req *r) { cancel(r, 1); }

static void cleanup_stuck(struct http_req *r)
{
    if (!calls_ready(r))
        return;
    json_t *list = calls_cleanup_stuck();
    http_reply_json(r, 200, json_pack("{s:i,s:o}", "checked", (int)json_array_size(list), "jobs", list));
}

static void recent_row(const struct call_job *j, const char *lead_name, void *arg)
{
    char phone[PHONE_MAX + 1];
    snprintf(phone, sizeof phone, "+%s", j->phone);
    json_array_append_new(
        arg, json_pack("{s:I,s:I,s:I,s:s,s:s,s:s,s:o,s:i,s:i,s:o,s:o,s:o,s:o}", "job_id", (json_int_t)j->id,
                       "run_id", (json_int_t)j->run_id, "lead_id", (json_int_t)j->lead_id, "lead_name", lead_name,
                       "phone", phone, "status", call_status_name(j->status), "call_sid",
                       j->call_sid[0] ? json_string(j->call_sid) : json_null(), "attempts", j->attempts, "duration",
                       j->duration, "error", j->error[0] ? json_string(j->error) : json_null(), "created_at",
                       api_time(j->created_at), "dialed_at", api_time(j->dialed_at), "finished_at",
                       api_time(j->finished_at)));
}

static void recent_calls(struct http_req *r)
{
    int page, size;
    if (paging(r, 20, PAGE_SIZE_MAX, &page, &size) < 0)
        return;
    json_t *list = json_array();
    int64_t tenant = http_tenant(r);
    store_job_recent(tenant, (page - 1) * size, size, recent_row, list);
    http_reply_json(r, 200, json_pack("{s:o,s:i,s:i,s:I}", "calls", list, "page", page, "page_size", size, "total",
                                      (json_int_t)store_job_count(tenant)));
}

static const struct http_route routes[] = {
    {"POST", "/webhook/call_status", AUTH_NONE, calls_status_callback},
    {"POST", "/api/leads", AUTH_TENANT, create_lead},
    {"POST", "/api/leads/import", AUTH_TENANT, import_leads},
    {"GET", "/api/leads", AUTH_TENANT, list_leads},
    {"POST", "/api/outbound_calls/start", AUTH_TENANT, start_calls},
    {"GET", "/api/outbound/runs", AUTH_TENANT, list_runs},
    {"GET", "/api/outbound/runs/{id}", AUTH_TENANT, get_run},
    {"POST", "/api/outbound/stop-queue", AUTH_TENANT, stop_queue},
    {"POST", "/api/outbound_calls/jobs/{id}/cancel", AUTH_TENANT, soft_cancel},
    {"POST", "/api/outbound_calls/jobs/{id}/force-cancel", AUTH_TENANT, force_cancel},
    {"POST", "/api/outbound/cleanup-stuck-jobs", AUTH_ADMIN, cleanup_stuck},
    {"GET", "/api/outbound/recent-calls", AUTH_TENANT, recent_calls},
    {NULL, NULL, 0, NULL},
};

void api_calls_register(void) { http_add_routes(routes); }
