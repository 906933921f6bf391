#include "apiparse.h"

#include <stdio.h>
#include <string.h>

#include "proxy.h"
#include "util.h"

const char *apiparse_code(int rc)
{
    return rc == APIPARSE_BAD_PHONE ? "INVALID_PHONE" : rc == APIPARSE_BAD_PROXY ? "INVALID_PROXY" : "INVALID_REQUEST";
}

int apiparse_only_keys(json_t *body, const char *const *keys, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        int ok = 0;
        for (size_t i = 0; keys[i]; i++)
            ok |= strcmp(keys[i], k) == 0;
        if (!ok) {
            snprintf(err, errlen, "unknown field '%.40s'", k);
            return 0;
        }
    }
    return 1;
}

static int opt_string(json_t *body, const char *key, size_t max, const char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(err, errlen, "%s must be a string of at most %zu characters", key, max);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int phone_field(json_t *body, int required, char *buf, const char **out, char *err, size_t errlen)
{
    const char *p;
    if (opt_string(body, "phone", 32, &p, err, errlen) < 0)
        return APIPARSE_BAD_PHONE;
    *out = NULL;
    if (!p) {
        if (required) {
            snprintf(err, errlen, "phone is required");
            return APIPARSE_BAD_PHONE;
        }
        return 0;
    }
    if (util_phone_normalize(p, buf, PHONE_MAX) < 0) {
        snprintf(err, errlen, "phone must be 8 to 15 digits with an optional leading +");
        return APIPARSE_BAD_PHONE;
    }
    *out = buf;
    return 0;
}

int apiparse_provision(json_t *body, struct provision_req *out, char *phone_buf, char *err, size_t errlen)
{
    static const char *const keys[] = {"phone", "proxy", "loginMethod", NULL};
    memset(out, 0, sizeof *out);
    if (!apiparse_only_keys(body, keys, err, errlen))
        return APIPARSE_INVALID;
    int rc = phone_field(body, 0, phone_buf, &out->phone, err, errlen);
    if (rc < 0)
        return rc;
    if (opt_string(body, "proxy", PROXY_URL_MAX, &out->proxy, err, errlen) < 0)
        return APIPARSE_BAD_PROXY;
    const char *lm;
    if (opt_string(body, "loginMethod", 32, &lm, err, errlen) < 0)
        return -1;
    if (!lm || strcmp(lm, "qr") == 0) {
        out->login = LOGIN_QR;
    } else if (strcmp(lm, "pairing_code") == 0) {
        out->login = LOGIN_PAIRING;
        if (!out->phone) {
            snprintf(err, errlen, "loginMethod pairing_code needs the phone number");
            return APIPARSE_BAD_PHONE;
        }
    } else {
        snprintf(err, errlen, "loginMethod must be qr or pairing_code");
        return -1;
    }
    return 0;
}

int apiparse_pair(json_t *body, char *phone_buf, char *err, size_t errlen)
{
    static const char *const keys[] = {"phone", NULL};
    const char *p;
    if (!apiparse_only_keys(body, keys, err, errlen))
        return APIPARSE_INVALID;
    return phone_field(body, 1, phone_buf, &p, err, errlen);
}

int apiparse_tenant(json_t *body, const char **name, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", NULL};
    if (!apiparse_only_keys(body, keys, err, errlen))
        return -1;
    if (opt_string(body, "name", 64, name, err, errlen) < 0)
        return -1;
    if (!*name || !**name) {
        snprintf(err, errlen, "name is required");
        return -1;
    }
    for (const char *p = *name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            snprintf(err, errlen, "name may hold only letters, digits, '.', '_' and '-'");
            return -1;
        }
    }
    return 0;
}

int apiparse_proxy(json_t *body, const char **url, char *err, size_t errlen)
{
    static const char *const keys[] = {"url", NULL};
    if (!apiparse_only_keys(body, keys, err, errlen))
        return -1;
    if (opt_string(body, "url", PROXY_URL_MAX, url, err, errlen) < 0)
        return APIPARSE_BAD_PROXY;
    if (!*url) {
        snprintf(err, errlen, "url is required");
        return APIPARSE_BAD_PROXY;
    }
    struct proxy_url u;
    return proxy_url_parse(*url, &u, err, errlen) < 0 ? APIPARSE_BAD_PROXY : 0;
}
