/* Unit tests for src/apiparse.h: validation of API request bodies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "apiparse.h"
#include "proxy.h"
#include "tap.h"
#include "util.h"

static json_t *obj(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        TAP_DIAG("test bug: bad JSON %s: %s", text, je.text);
    return j;
}

static void test_provision(void)
{
    struct provision_req req;
    char phone[PHONE_MAX], err[256];
    json_t *j;

    j = obj("{}");
    memset(&req, 0x5a, sizeof req);
    CHECK_EQ_INT(apiparse_provision(j, &req, phone, err, sizeof err), 0, "provision {} is fine");
    CHECK_EQ_INT(req.login, LOGIN_QR, "{} logs in by QR");
    CHECK(req.phone == NULL, "{} has no phone");
    CHECK(req.proxy == NULL, "{} has no proxy");
    json_decref(j);

    j = obj("{\"phone\":\"+972501234567\"}");
    CHECK_EQ_INT(apiparse_provision(j, &req, phone, err, sizeof err), 0, "provision with a phone");
    CHECK_EQ_STR(req.phone, "972501234567", "the phone is normalised to digits");
    CHECK(req.phone == phone, "the digits live in the caller's buffer");
    json_decref(j);

    j = obj("{\"phone\":\"972501234567\",\"loginMethod\":\"pairing_code\","
            "\"proxy\":\"socks5h://u:p@h:1080\"}");
    CHECK_EQ_INT(apiparse_provision(j, &req, phone, err, sizeof err), 0, "provision with everything");
    CHECK_EQ_INT(req.login, LOGIN_PAIRING, "loginMethod pairing_code");
    CHECK_EQ_STR(req.phone, "972501234567", "phone with pairing_code");
    CHECK_EQ_STR(req.proxy, "socks5h://u:p@h:1080", "proxy is borrowed as given");
    json_decref(j);

    j = obj("{\"loginMethod\":\"qr\",\"phone\":null,\"proxy\":null}");
    CHECK_EQ_INT(apiparse_provision(j, &req, phone, err, sizeof err), 0,
                 "explicit qr and nulls are fine");
    CHECK(req.login == LOGIN_QR && req.phone == NULL && req.proxy == NULL, "nulls mean absent");
    json_decref(j);

    static const struct {
        const char *body, *want_in_err, *desc;
    } bad[] = {
        {"{\"loginMethod\":\"pairing_code\"}", "phone", "pairing_code without a phone"},
        {"{\"loginMethod\":\"sms\"}", "loginMethod", "an unknown loginMethod"},
        {"{\"loginMethod\":\"QR\"}", "loginMethod", "loginMethod QR in capitals"},
        {"{\"bogus\":1}", "bogus", "an unknown field"},
        {"{\"phone\":\"972501234567\",\"phoen\":\"1\"}", "phoen", "a misspelt field"},
        {"{\"phone\":972501234567}", "phone", "a numeric phone"},
        {"{\"phone\":\"12ab5678\"}", "phone", "a phone with letters"},
        {"{\"phone\":\"1234567\"}", "phone", "a phone of 7 digits"},
        {"{\"phone\":\"1234567890123456\"}", "phone", "a phone of 16 digits"},
        {"{\"phone\":\"+\"}", "phone", "a lone +"},
        {"{\"phone\":\"\"}", "phone", "an empty phone"},
        {"{\"phone\":\"+972 50 123 4567\"}", "phone", "a phone with spaces"},
        {"{\"phone\":[\"972501234567\"]}", "phone", "a phone array"},
        {"{\"proxy\":5}", "proxy", "a numeric proxy"},
        {"{\"proxy\":{}}", "proxy", "an object proxy"},
        {"{\"loginMethod\":true}", "loginMethod", "a boolean loginMethod"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = obj(bad[i].body);
        err[0] = '\0';
        int want = strcmp(bad[i].want_in_err, "phone") == 0   ? APIPARSE_BAD_PHONE
                   : strcmp(bad[i].want_in_err, "proxy") == 0 ? APIPARSE_BAD_PROXY
                                                              : APIPARSE_INVALID;
        CHECK_EQ_INT(apiparse_provision(j, &req, phone, err, sizeof err), want, "provision: %s is refused",
                     bad[i].desc);
        CHECK(strstr(err, bad[i].want_in_err) != NULL, "provision: %s: the error names %s (%s)",
              bad[i].desc, bad[i].want_in_err, err);
        json_decref(j);
    }

    /* a proxy string over PROXY_URL_MAX is refused by length; the URL itself is checked later */
    char longurl[PROXY_URL_MAX + 64];
    int n = snprintf(longurl, sizeof longurl, "{\"proxy\":\"socks5h://h:1/");
    memset(longurl + n, 'x', PROXY_URL_MAX);
    memcpy(longurl + n + PROXY_URL_MAX, "\"}", 3);
    j = obj(longurl);
    CHECK_EQ_INT(apiparse_provision(j, &req, phone, err, sizeof err), APIPARSE_BAD_PROXY,
                 "a proxy longer than PROXY_URL_MAX is refused");
    json_decref(j);
}

static void test_pair(void)
{
    char phone[PHONE_MAX], err[256];
    json_t *j = obj("{\"phone\":\"+12025550123\"}");
    CHECK_EQ_INT(apiparse_pair(j, phone, err, sizeof err), 0, "pair with a phone");
    CHECK_EQ_STR(phone, "12025550123", "pair phone digits");
    json_decref(j);

    static const char *const bad[] = {"{}", "{\"phone\":null}", "{\"phone\":\"abc\"}",
                                      "{\"phone\":\"12025550123\",\"x\":1}", "{\"phone\":1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = obj(bad[i]);
        err[0] = '\0';
        CHECK_EQ_INT(apiparse_pair(j, phone, err, sizeof err),
                     strstr(bad[i], "\"x\"") ? APIPARSE_INVALID : APIPARSE_BAD_PHONE, "pair %s is refused", bad[i]);
        CHECK(err[0] != '\0', "pair %s has a reason", bad[i]);
        json_decref(j);
    }
}

static void test_tenant(void)
{
    char err[256];
    char name64[80], name65[80], body[200];
    memset(name64, 'a', 64);
    name64[64] = '\0';
    memset(name65, 'a', 65);
    name65[65] = '\0';

    static const char *const good[] = {"a", "acme", "Acme-Corp_2.0", "0", "...", "a-b_c.d"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(body, sizeof body, "{\"name\":\"%s\"}", good[i]);
        json_t *j = obj(body);
        const char *name = NULL;
        CHECK_EQ_INT(apiparse_tenant(j, &name, err, sizeof err), 0, "tenant name '%s' is fine",
                     good[i]);
        CHECK_EQ_STR(name, good[i], "tenant name '%s' is returned", good[i]);
        json_decref(j);
    }
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", name64);
    json_t *j = obj(body);
    const char *name = NULL;
    CHECK_EQ_INT(apiparse_tenant(j, &name, err, sizeof err), 0, "a 64-character name is fine");
    json_decref(j);

    static const char *const bad[] = {
        "{}", "{\"name\":null}", "{\"name\":\"\"}", "{\"name\":\"a b\"}", "{\"name\":\"a/b\"}",
        "{\"name\":\"caf\\u00e9\"}", "{\"name\":\"a\\tb\"}", "{\"name\":7}", "{\"name\":\"ok\",\"x\":1}",
        "{\"name\":\"semi;colon\"}", "{\"name\":\"quote'\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = obj(bad[i]);
        err[0] = '\0';
        CHECK_EQ_INT(apiparse_tenant(j, &name, err, sizeof err), -1, "tenant %s is refused", bad[i]);
        CHECK(err[0] != '\0', "tenant %s has a reason", bad[i]);
        json_decref(j);
    }
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", name65);
    j = obj(body);
    CHECK_EQ_INT(apiparse_tenant(j, &name, err, sizeof err), -1, "a 65-character name is refused");
    json_decref(j);
}

static void test_proxy(void)
{
    char err[256];
    const char *url = NULL;
    json_t *j = obj("{\"url\":\"socks5h://user:pw@proxy.example.com:1080\"}");
    CHECK_EQ_INT(apiparse_proxy(j, &url, err, sizeof err), 0, "proxy socks5h is fine");
    CHECK_EQ_STR(url, "socks5h://user:pw@proxy.example.com:1080", "proxy url returned");
    json_decref(j);

    static const char *const bad[] = {
        "{\"url\":\"socks5://user:Zq9PaSsWoRd7x@proxy.example.com:1080\"}",
        "{\"url\":\"http://proxy.example.com:1080\"}",
        "{\"url\":\"socks5h://proxy.example.com\"}",
        "{\"url\":\"\"}",
        "{}",
        "{\"url\":null}",
        "{\"url\":1080}",
        "{\"url\":\"socks5h://h:1\",\"tenant\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = obj(bad[i]);
        err[0] = '\0';
        CHECK(apiparse_proxy(j, &url, err, sizeof err) < 0, "proxy %s is refused", bad[i]);
        CHECK(err[0] != '\0', "proxy %s has a reason", bad[i]);
        CHECK(strstr(err, "Zq9PaSsWoRd7x") == NULL, "proxy %s: the reason hides the password",
              bad[i]);
        json_decref(j);
    }
}

static void test_only_keys(void)
{
    static const char *const keys[] = {"a", "b", NULL};
    char err[256];
    json_t *j = obj("{\"a\":1,\"b\":2}");
    CHECK_EQ_INT(apiparse_only_keys(j, keys, err, sizeof err), 1, "only known keys");
    json_decref(j);
    j = obj("{}");
    CHECK_EQ_INT(apiparse_only_keys(j, keys, err, sizeof err), 1, "no keys at all");
    json_decref(j);
    j = obj("{\"a\":1,\"c\":2}");
    err[0] = '\0';
    CHECK_EQ_INT(apiparse_only_keys(j, keys, err, sizeof err), 0, "an unknown key");
    CHECK(strstr(err, "'c'") != NULL, "the error names 'c' (%s)", err);
    json_decref(j);
    j = obj("{\"A\":1}");
    CHECK_EQ_INT(apiparse_only_keys(j, keys, err, sizeof err), 0, "keys are case-sensitive");
    json_decref(j);
}

/* {"to":"+972501112233","message":"hi","idempotencyKey":<key>} with key as raw JSON */
static int send_with_key(const char *key_json, struct send_req *rq, char *err, size_t errlen)
{
    char to[PHONE_MAX];
    char *body = xasprintf("{\"to\":\"+972501112233\",\"message\":\"hi\",\"idempotencyKey\":%s}", key_json);
    json_t *j = obj(body);
    int rc = apiparse_send(j, rq, to, err, errlen);
    json_decref(j);
    free(body);
    return rc;
}

/* n copies of the UTF-8 character c as a JSON string */
static char *repeat_json(const char *c, int n)
{
    char *s = xstrdup("\"");
    for (int i = 0; i < n; i++)
        s = xappendf(s, "%s", c);
    return xappendf(s, "\"");
}

static void test_send(void)
{
    struct send_req rq;
    char to[PHONE_MAX], err[256];
    json_t *j = obj("{\"to\":\"+972501112233\",\"message\":\"hi\",\"sessionId\":\"worker_1\","
                    "\"idempotencyKey\":\"order-1\",\"ttlSeconds\":60}");
    CHECK_EQ_INT(apiparse_send(j, &rq, to, err, sizeof err), 0, "send with every field");
    CHECK(strcmp(rq.to, "972501112233") == 0 && strcmp(rq.text, "hi") == 0 && strcmp(rq.session, "worker_1") == 0 &&
              strcmp(rq.idem_key, "order-1") == 0 && rq.ttl_s == 60,
          "send fields");
    json_decref(j);

    /* checked in the documented order: to, message, then the rest (unknown fields too) */
    static const struct {
        const char *body;
        int want;
        const char *desc;
    } order[] = {
        {"{\"to\":\"123\",\"message\":\"\",\"extra\":1}", APIPARSE_BAD_PHONE, "a bad to before an unknown field"},
        {"{\"to\":\"972501112233\",\"message\":\"\",\"extra\":1}", APIPARSE_BAD_MESSAGE,
         "an empty message before an unknown field"},
        {"{\"to\":\"972501112233\",\"message\":\"x\",\"extra\":1}", APIPARSE_INVALID, "an unknown field"},
        {"{\"message\":\"x\"}", APIPARSE_BAD_PHONE, "no to"},
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        j = obj(order[i].body);
        CHECK_EQ_INT(apiparse_send(j, &rq, to, err, sizeof err), order[i].want, "send: %s", order[i].desc);
        json_decref(j);
    }

    /* idempotencyKey: 1 to 128 characters (not bytes), no space or control of any script */
    static const struct {
        const char *c;
        int n, ok;
        const char *desc;
    } keys[] = {
        {"a", 128, 1, "128 ASCII characters"},
        {"a", 129, 0, "129 ASCII characters"},
        {"\\u00e9", 128, 1, "128 two-byte characters (256 bytes)"},
        {"\\u00e9", 129, 0, "129 two-byte characters"},
        {"\\ud83d\\ude00", 128, 1, "128 four-byte characters (512 bytes)"},
        {"\\ud83d\\ude00", 129, 0, "129 four-byte characters"},
        {"\\u05e9", 3, 1, "Hebrew letters"},
        {"", 0, 0, "an empty key"},
        {"a b", 1, 0, "an ASCII space"},
        {"a\\tb", 1, 0, "a tab"},
        {"a\\u007fb", 1, 0, "DEL"},
        {"a\\u0085b", 1, 0, "a C1 control (NEL)"},
        {"a\\u00a0b", 1, 0, "a no-break space"},
        {"a\\u2028b", 1, 0, "a line separator"},
        {"a\\u3000b", 1, 0, "an ideographic space"},
        {"a\\u2003b", 1, 0, "an em space"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *k = repeat_json(keys[i].c, keys[i].n);
        err[0] = '\0';
        int rc = send_with_key(k, &rq, err, sizeof err);
        CHECK_EQ_INT(rc, keys[i].ok ? 0 : APIPARSE_INVALID, "idempotencyKey: %s", keys[i].desc);
        if (!keys[i].ok)
            CHECK(strstr(err, "idempotencyKey") != NULL, "the error names idempotencyKey (%s)", err);
        free(k);
    }
    CHECK_EQ_INT(send_with_key("7", &rq, err, sizeof err), APIPARSE_INVALID, "a numeric idempotencyKey");
    CHECK_EQ_INT(send_with_key("null", &rq, err, sizeof err), 0, "a null idempotencyKey is absent");
    CHECK(rq.idem_key == NULL, "null key: none");
}

static void test_codes(void)
{
    CHECK_EQ_STR(apiparse_code(APIPARSE_BAD_PHONE), "INVALID_PHONE", "phone code");
    CHECK_EQ_STR(apiparse_code(APIPARSE_BAD_PROXY), "INVALID_PROXY", "proxy code");
    CHECK_EQ_STR(apiparse_code(APIPARSE_INVALID), "INVALID_REQUEST", "other code");
}

int main(void)
{
    test_codes();
    test_provision();
    test_pair();
    test_tenant();
    test_proxy();
    test_only_keys();
    test_send();
    return TAP_DONE();
}
