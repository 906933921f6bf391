/* Unit tests for src/apiparse.h: validation of API request bodies. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "apiparse.h"
#include "proxy.h"
#include "tap.h"

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
    return TAP_DONE();
}
