#include "twilio.h"

#include <event2/http.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpc.h"
#include "util.h"

#define RESPONSE_MAX (256 * 1024)
#define LIST_MAX 50

static struct twilio_opts opt;
static char *auth_header; /* "Authorization: Basic ..." */

static char *dup_or_empty(const char *s) { return xstrdup(s ? s : ""); }

void twilio_init(const struct twilio_opts *o)
{
    twilio_free();
    opt = *o;
    opt.api_base = dup_or_empty(o->api_base);
    opt.account_sid = dup_or_empty(o->account_sid);
    opt.auth_token = dup_or_empty(o->auth_token);
    opt.from = dup_or_empty(o->from);
    opt.twiml_url = dup_or_empty(o->twiml_url);
    opt.callback_url = dup_or_empty(o->callback_url);
    char *plain = xasprintf("%s:%s", opt.account_sid, opt.auth_token);
    size_t n = strlen(plain);
    unsigned char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock(b64, (const unsigned char *)plain, (int)n);
    auth_header = xasprintf("Authorization: Basic %s", b64);
    OPENSSL_cleanse(plain, n);
    free(plain);
    free(b64);
}

void twilio_free(void)
{
    free((char *)opt.api_base);
    free((char *)opt.account_sid);
    if (opt.auth_token)
        OPENSSL_cleanse((char *)opt.auth_token, strlen(opt.auth_token));
    free((char *)opt.auth_token);
    free((char *)opt.from);
    free((char *)opt.twiml_url);
    free((char *)opt.callback_url);
    if (auth_header)
        OPENSSL_cleanse(auth_header, strlen(auth_header));
    free(auth_header);
    auth_header = NULL;
    memset(&opt, 0, sizeof opt);
}

/* ---- pure parts ---- */

/* copies s to w (which has room) and returns w */
static char *strcpy_bounded(char *w, const char *s)
{
    size_t l = strlen(s);
    memcpy(w, s, l + 1);
    return w;
}

struct kv {
    const char *k, *v;
};

static int kv_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

void twilio_signature(const char *token, const char *url, const char *const *keys, const char *const *vals,
                      size_t n, char *out)
{
    struct kv *p = xmalloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = (struct kv){keys[i], vals[i]};
    qsort(p, n, sizeof *p, kv_cmp);
    size_t total = strlen(url) + 1;
    for (size_t i = 0; i < n; i++)
        total += strlen(p[i].k) + strlen(p[i].v);
    char *data = xmalloc(total), *w = data;
    w += strlen(strcpy_bounded(w, url));
    for (size_t i = 0; i < n; i++) {
        w += strlen(strcpy_bounded(w, p[i].k));
        w += strlen(strcpy_bounded(w, p[i].v));
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha1(), token, (int)strlen(token), (const unsigned char *)data, (size_t)(w - data), mac, &len);
    free(data);
    free(p);
    EVP_EncodeBlock((unsigned char *)out, mac, (int)len);
}

int twilio_parse_date(const char *s, int64_t *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = s ? strptime(s, "%a, %d %b %Y %H:%M:%S %z", &tm) : NULL;
    if (!end || *end)
        return -1;
    long off = tm.tm_gmtoff;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *ms = ((int64_t)t - off) * 1000;
    return 0;
}

static void copy_str(json_t *o, const char *key, char *out, size_t outlen)
{
    json_t *v = json_object_get(o, key);
    snprintf(out, outlen, "%s", json_is_string(v) ? json_string_value(v) : "");
}

int twilio_sid_ok(const char *s)
{
    size_t l = strlen(s);
    return l > 2 && l < CALL_SID_MAX && strncmp(s, "CA", 2) == 0 && strspn(s + 2, "0123456789abcdefABCDEF") == l - 2;
}

static int call_from_json(json_t *o, struct twilio_call *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    json_t *sid = json_object_get(o, "sid");
    const char *s = json_is_string(sid) ? json_string_value(sid) : "";
    if (!twilio_sid_ok(s)) {
        snprintf(err, errlen, "a call resource without a valid sid");
        return -1;
    }
    memcpy(c->sid, s, strlen(s) + 1);
    copy_str(o, "status", c->status, sizeof c->status);
    copy_str(o, "to", c->to, sizeof c->to);
    copy_str(o, "from", c->from, sizeof c->from);
    copy_str(o, "direction", c->direction, sizeof c->direction);
    c->child = json_is_string(json_object_get(o, "parent_call_sid"));
    json_t *dc = json_object_get(o, "date_created");
    if (json_is_string(dc))
        twilio_parse_date(json_string_value(dc), &c->created_ms);
    json_t *d = json_object_get(o, "duration");
    long dur = 0;
    if (json_is_string(d))
        util_parse_long(json_string_value(d), 0, 100000000, &dur);
    else if (json_is_integer(d) && json_integer_value(d) >= 0 && json_integer_value(d) < 100000000)
        dur = (long)json_integer_value(d);
    c->duration = (int)dur;
    return 0;
}

int twilio_parse_call(const char *json, size_t len, struct twilio_call *out, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(json, len, 0, &je);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "not a JSON object");
        json_decref(o);
        return -1;
    }
    int rc = call_from_json(o, out, err, errlen);
    json_decref(o);
    return rc;
}

int twilio_parse_list(const char *json, size_t len, struct twilio_call *out, size_t max, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(json, len, 0, &je);
    json_t *calls = json_is_object(o) ? json_object_get(o, "calls") : NULL;
    if (!json_is_array(calls)) {
        snprintf(err, errlen, "not a list of calls");
        json_decref(o);
        return -1;
    }
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(calls, i, c) {
        if (n == max)
            break;
        if (json_is_object(c) && call_from_json(c, &out[n], err, errlen) == 0)
            n++;
    }
    json_decref(o);
    return (int)n;
}

void twilio_error_text(long status, const char *json, size_t len, char *out, size_t outlen)
{
    json_error_t je;
    json_t *o = json && len ? json_loadb(json, len, 0, &je) : NULL;
    json_t *m = json_is_object(o) ? json_object_get(o, "message") : NULL;
    json_t *code = json_is_object(o) ? json_object_get(o, "code") : NULL;
    if (json_is_string(m) && json_is_integer(code))
        snprintf(out, outlen, "Twilio %ld (error %lld): %.300s", status, (long long)json_integer_value(code),
                 json_string_value(m));
    else if (json_is_string(m))
        snprintf(out, outlen, "Twilio %ld: %.300s", status, json_string_value(m));
    else
        snprintf(out, outlen, "Twilio answered HTTP %ld", status);
    util_utf8_fix(out);
    json_decref(o);
}

/* ---- requests ---- */

struct req {
    twilio_cb cb;
    twilio_list_cb list_cb;
    void *arg;
};

static void on_call(const struct httpc_response *res, void *arg)
{
    struct req *r = arg;
    struct twilio_call c;
    char err[TEXT_MAX] = "";
    const struct twilio_call *call = NULL;
    if (res->status == 0) {
        snprintf(err, sizeof err, "Twilio unreachable: %.300s", res->error ? res->error : "no answer");
    } else if (res->status >= 200 && res->status < 300) {
        if (twilio_parse_call(res->body, res->len, &c, err, sizeof err) == 0)
            call = &c;
    } else {
        twilio_error_text(res->status, res->body, res->len, err, sizeof err);
    }
    r->cb(res->status, call, err[0] ? err : NULL, r->arg);
    free(r);
}

static void on_list(const struct httpc_response *res, void *arg)
{
    struct req *r = arg;
    struct twilio_call *calls = xcalloc(LIST_MAX, sizeof *calls);
    char err[TEXT_MAX] = "";
    int n = 0;
    if (res->status == 0)
        snprintf(err, sizeof err, "Twilio unreachable: %.300s", res->error ? res->error : "no answer");
    else if (res->status >= 200 && res->status < 300)
        n = twilio_parse_list(res->body, res->len, calls, LIST_MAX, err, sizeof err);
    else
        twilio_error_text(res->status, res->body, res->len, err, sizeof err);
    long status = res->status;
    if (n < 0) {
        n = 0;
        status = 0;
    }
    r->list_cb(status, calls, (size_t)n, err[0] ? err : NULL, r->arg);
    free(calls);
    free(r);
}

static char *enc(const char *s) { return evhttp_uriencode(s, -1, 0); }

/* method to {api_base}/2010-04-01/Accounts/{sid}/{path}; once: it must not be sent twice */
static int request(const char *method, const char *path, const char *form, int once, httpc_cb done, struct req *r)
{
    char *url = xasprintf("%s/2010-04-01/Accounts/%s/%s", opt.api_base, opt.account_sid, path);
    const char *headers[] = {auth_header, "Accept: application/json",
                             form ? "Content-Type: application/x-www-form-urlencoded" : NULL, NULL};
    size_t len = form ? strlen(form) : 0;
    int rc = once ? httpc_request_once(method, url, headers, form, len, opt.timeout_ms, RESPONSE_MAX, done, r)
                  : httpc_request(method, url, headers, form, len, opt.timeout_ms, RESPONSE_MAX, NULL, done, r);
    free(url);
    if (rc < 0)
        free(r);
    return rc;
}

static struct req *new_req(twilio_cb cb, twilio_list_cb lcb, void *arg)
{
    struct req *r = xmalloc(sizeof *r);
    *r = (struct req){cb, lcb, arg};
    return r;
}

int twilio_create(const char *to_digits, int64_t job_id, int attempt, twilio_cb cb, void *arg)
{
    char to[24], callback[2300];
    snprintf(to, sizeof to, "+%s", to_digits);
    snprintf(callback, sizeof callback, "%s?job=%lld&attempt=%d", opt.callback_url, (long long)job_id, attempt);
    char *e_to = enc(to), *e_from = enc(opt.from), *e_url = enc(opt.twiml_url), *e_cb = enc(callback);
    char *form = xasprintf("To=%s&From=%s&Url=%s&StatusCallback=%s&StatusCallbackMethod=POST"
                           "&StatusCallbackEvent=initiated&StatusCallbackEvent=ringing"
                           "&StatusCallbackEvent=answered&StatusCallbackEvent=completed"
                           "&Timeout=%d&TimeLimit=%d",
                           e_to, e_from, e_url, e_cb, opt.ring_timeout_s, opt.time_limit_s);
    free(e_to);
    free(e_from);
    free(e_url);
    free(e_cb);
    /* each create that reaches Twilio makes a call: only the daemon decides to send another */
    int rc = request("POST", "Calls.json", form, 1, on_call, new_req(cb, NULL, arg));
    free(form);
    return rc;
}

int twilio_fetch(const char *sid, twilio_cb cb, void *arg)
{
    char path[80];
    snprintf(path, sizeof path, "Calls/%.40s.json", sid);
    return request("GET", path, NULL, 0, on_call, new_req(cb, NULL, arg));
}

int twilio_update(const char *sid, const char *status, twilio_cb cb, void *arg)
{
    char path[80], form[40];
    snprintf(path, sizeof path, "Calls/%.40s.json", sid);
    snprintf(form, sizeof form, "Status=%s", status);
    return request("POST", path, form, 0, on_call, new_req(cb, NULL, arg));
}

int twilio_list(const char *to_digits, twilio_list_cb cb, void *arg)
{
    char to[24], path[200];
    snprintf(to, sizeof to, "+%s", to_digits);
    char *e_to = enc(to);
    /* newest first; the caller matches the creation time itself: Twilio's StartTime
     * filter leaves out a call that is still queued */
    snprintf(path, sizeof path, "Calls.json?To=%s&PageSize=%d", e_to, LIST_MAX);
    free(e_to);
    return request("GET", path, NULL, 0, on_list, new_req(NULL, cb, arg));
}
