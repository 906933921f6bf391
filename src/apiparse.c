#include "apiparse.h"

#include <stdio.h>
#include <string.h>

#include "proxy.h"
#include "util.h"

const char *apiparse_code(int rc)
{
    return rc == APIPARSE_BAD_PHONE     ? "INVALID_PHONE"
           : rc == APIPARSE_BAD_PROXY   ? "INVALID_PROXY"
           : rc == APIPARSE_BAD_MESSAGE ? "INVALID_MESSAGE"
                                        : "INVALID_REQUEST";
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

/* characters (code points) of valid UTF-8, as jansson guarantees for its strings */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* the code point at *s of valid UTF-8 (as jansson guarantees); *s moves past it */
static unsigned utf8_next(const unsigned char **s)
{
    const unsigned char *p = *s;
    unsigned c = *p++;
    int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    c &= more == 3 ? 0x07 : more == 2 ? 0x0F : more == 1 ? 0x1F : 0x7F;
    for (; more > 0 && (*p & 0xC0) == 0x80; more--)
        c = (c << 6) | (*p++ & 0x3F);
    *s = p;
    return c;
}

/* a control character (C0, DEL, C1) or a space of any script (Unicode Zs, Zl, Zp) */
static int space_or_control(unsigned c)
{
    return c <= 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int idem_key_ok(const char *key)
{
    const unsigned char *k = (const unsigned char *)key;
    size_t chars = 0;
    while (*k && chars <= 128) {
        if (space_or_control(utf8_next(&k)))
            return 0;
        chars++;
    }
    return chars >= 1 && chars <= 128 && !*k;
}

int apiparse_send(json_t *body, struct send_req *out, char *to_buf, char *err, size_t errlen)
{
    static const char *const keys[] = {"to", "message", "sessionId", "idempotencyKey", "ttlSeconds", NULL};
    memset(out, 0, sizeof *out);
    /* in the documented order: to, message, then the rest (unknown fields included) */
    const char *to;
    if (opt_string(body, "to", 32, &to, err, errlen) < 0 || !to ||
        util_phone_normalize(to, to_buf, PHONE_MAX) < 0) {
        snprintf(err, errlen, "to must be a phone number of 8 to 15 digits with an optional leading +");
        return APIPARSE_BAD_PHONE;
    }
    out->to = to_buf;
    json_t *m = json_object_get(body, "message");
    if (!m || !json_is_string(m)) {
        snprintf(err, errlen, "message must be a string of 1 to %d characters", MSG_CHARS_MAX);
        return APIPARSE_BAD_MESSAGE;
    }
    const char *text = json_string_value(m);
    size_t chars = utf8_chars(text);
    if (strlen(text) != json_string_length(m) || chars < 1 || chars > MSG_CHARS_MAX) {
        snprintf(err, errlen, "message must be 1 to %d characters of text without NUL (got %zu)",
                 MSG_CHARS_MAX, chars);
        return APIPARSE_BAD_MESSAGE;
    }
    out->text = text;
    if (!apiparse_only_keys(body, keys, err, errlen))
        return APIPARSE_INVALID;
    if (opt_string(body, "sessionId", SESSION_NAME_MAX - 1, &out->session, err, errlen) < 0)
        return APIPARSE_INVALID;
    /* 128 characters of up to 4 bytes each */
    if (opt_string(body, "idempotencyKey", 4 * 128, &out->idem_key, err, errlen) < 0 ||
        (out->idem_key && !idem_key_ok(out->idem_key))) {
        snprintf(err, errlen, "idempotencyKey must be 1 to 128 characters without spaces or control characters");
        return APIPARSE_INVALID;
    }
    json_t *ttl = json_object_get(body, "ttlSeconds");
    if (ttl && !json_is_null(ttl)) {
        if (!json_is_integer(ttl) || json_integer_value(ttl) < 1 || json_integer_value(ttl) > 7 * 86400) {
            snprintf(err, errlen, "ttlSeconds must be a whole number from 1 to 604800");
            return APIPARSE_INVALID;
        }
        out->ttl_s = (long)json_integer_value(ttl);
    }
    return 0;
}
