#include "wclient.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hmac.h"
#include "util.h"

void wclient_worker_key(const char *master, const char *session, char *out)
{
    hmac_sha256_hex(master, strlen(master), session, strlen(session), out);
}

int wclient_call(const char *address, const char *key, const char *method, const char *path,
                 const char *body, long timeout_ms, httpc_cb cb, void *arg)
{
    char url[256], ts[32], sig[HMAC_HEX_LEN + 1];
    char h_ts[64], h_sig[96];
    snprintf(url, sizeof url, "http://%s%s", address, path);
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    size_t len = body ? strlen(body) : 0;
    hmac_sign_ts_body(key, ts, body ? body : "", len, sig);
    snprintf(h_ts, sizeof h_ts, "X-Timestamp: %s", ts);
    snprintf(h_sig, sizeof h_sig, "X-Signature: sha256=%s", sig);
    const char *headers[] = {h_ts, h_sig, "Content-Type: application/json", NULL};
    return httpc_request(method, url, headers, body, len, timeout_ms, 64 * 1024, NULL, cb, arg);
}

static int verify(const char *key, const struct hmac_key *prepared, const char *ts, const char *sig,
                  const char *body, size_t len, long now_s, long max_skew_s)
{
    long t;
    if (!ts || !sig || util_parse_long(ts, 0, 99999999999L, &t) < 0)
        return -1;
    if (t < now_s - max_skew_s || t > now_s + max_skew_s)
        return -1;
    if (strncmp(sig, "sha256=", 7) != 0)
        return -1;
    char want[HMAC_HEX_LEN + 1];
    if (prepared)
        hmac_key_sign_ts_body(prepared, ts, body, len, want);
    else
        hmac_sign_ts_body(key, ts, body, len, want);
    return hmac_equal(sig + 7, strlen(sig + 7), want, HMAC_HEX_LEN) ? 0 : -1;
}

int wclient_verify(const char *key, const char *ts, const char *sig, const char *body,
                   size_t len, long now_s, long max_skew_s)
{
    return verify(key, NULL, ts, sig, body, len, now_s, max_skew_s);
}

int wclient_verify_key(const struct hmac_key *key, const char *ts, const char *sig, const char *body,
                       size_t len, long now_s, long max_skew_s)
{
    return verify(NULL, key, ts, sig, body, len, now_s, max_skew_s);
}
