/* Unit tests for src/wevent.h: parsing and validating worker events. */
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "wevent.h"

#define TS 1700000000123LL

static char body[200000];

/* a well-formed envelope around type and data (data is raw JSON text) */
static const char *envelope(const char *session, const char *type, const char *data)
{
    snprintf(body, sizeof body, "{\"sessionId\":\"%s\",\"type\":\"%s\",\"timestamp\":%lld,\"data\":%s}",
             session, type, TS, data);
    return body;
}

static int parse(const char *text, struct wevent *ev, char *err, size_t errlen)
{
    err[0] = '\0';
    return wevent_parse(text, strlen(text), ev, err, errlen);
}

static void test_valid(void)
{
    struct wevent ev;
    char err[256];
    const char *b;

#define PARSE_OK(type_, data_, desc_)                                           \
    b = envelope("worker_7", type_, data_);                                      \
    if (!CHECK_EQ_INT(parse(b, &ev, err, sizeof err), 0, "valid %s parses", desc_)) \
        TAP_DIAG("err: %s", err);

    PARSE_OK("QR_CODE", "{\"qr\":\"2@abc,def==\"}", "QR_CODE");
    CHECK_EQ_INT(ev.type, WE_QR_CODE, "QR_CODE type");
    CHECK_EQ_STR(ev.session, "worker_7", "QR_CODE session");
    CHECK_EQ_INT(ev.session_num, 7, "QR_CODE session number");
    CHECK_EQ_INT(ev.timestamp, TS, "QR_CODE timestamp");
    CHECK_EQ_STR(ev.qr, "2@abc,def==", "QR_CODE qr");
    CHECK(ev.root != NULL, "QR_CODE keeps its root");
    wevent_free(&ev);
    CHECK(ev.root == NULL, "wevent_free clears root");
    wevent_free(&ev); /* a second free is harmless */

    PARSE_OK("PAIRING_CODE", "{\"code\":\"ABCD-1234\"}", "PAIRING_CODE");
    CHECK_EQ_INT(ev.type, WE_PAIRING_CODE, "PAIRING_CODE type");
    CHECK_EQ_STR(ev.code, "ABCD-1234", "PAIRING_CODE code");
    wevent_free(&ev);

    PARSE_OK("CONNECTED", "{\"phoneNumber\":\"+972501234567\",\"name\":\"Dana\"}", "CONNECTED");
    CHECK_EQ_INT(ev.type, WE_CONNECTED, "CONNECTED type");
    CHECK_EQ_STR(ev.phone, "+972501234567", "CONNECTED phone");
    CHECK_EQ_STR(ev.name, "Dana", "CONNECTED name");
    wevent_free(&ev);

    PARSE_OK("CONNECTED", "{\"phoneNumber\":\"12345678\"}", "CONNECTED without name");
    CHECK(ev.name == NULL, "CONNECTED name absent is NULL");
    wevent_free(&ev);

    PARSE_OK("DISCONNECTED", "{\"loggedOut\":false,\"statusCode\":428,\"reason\":\"closed\"}",
             "DISCONNECTED");
    CHECK_EQ_INT(ev.type, WE_DISCONNECTED, "DISCONNECTED type");
    CHECK_EQ_INT(ev.logged_out, 0, "DISCONNECTED loggedOut false");
    CHECK_EQ_INT(ev.status_code, 428, "DISCONNECTED statusCode");
    CHECK_EQ_STR(ev.reason, "closed", "DISCONNECTED reason");
    wevent_free(&ev);

    PARSE_OK("DISCONNECTED", "{\"loggedOut\":true,\"statusCode\":401}", "DISCONNECTED logged out");
    CHECK_EQ_INT(ev.logged_out, 1, "DISCONNECTED loggedOut true");
    CHECK_EQ_INT(ev.status_code, 401, "DISCONNECTED statusCode 401");
    CHECK(ev.reason == NULL, "DISCONNECTED reason absent is NULL");
    wevent_free(&ev);

    PARSE_OK("MESSAGE_SENT", "{\"messageId\":\"m-1\",\"waMessageId\":\"3EB0\"}", "MESSAGE_SENT");
    CHECK_EQ_INT(ev.type, WE_MESSAGE_SENT, "MESSAGE_SENT type");
    CHECK_EQ_STR(ev.message_id, "m-1", "MESSAGE_SENT messageId");
    CHECK_EQ_STR(ev.wa_message_id, "3EB0", "MESSAGE_SENT waMessageId");
    wevent_free(&ev);

    PARSE_OK("MESSAGE_FAILED", "{\"messageId\":\"m-2\",\"error\":\"boom\",\"retryable\":true}",
             "MESSAGE_FAILED");
    CHECK_EQ_INT(ev.type, WE_MESSAGE_FAILED, "MESSAGE_FAILED type");
    CHECK_EQ_STR(ev.message_id, "m-2", "MESSAGE_FAILED messageId");
    CHECK_EQ_STR(ev.error, "boom", "MESSAGE_FAILED error");
    CHECK_EQ_INT(ev.retryable, 1, "MESSAGE_FAILED retryable");
    wevent_free(&ev);

    PARSE_OK("MESSAGE_RECEIVED", "{\"from\":\"972501234567\",\"text\":\"hi \\u00e9\",\"waMessageId\":\"W2\"}",
             "MESSAGE_RECEIVED");
    CHECK_EQ_INT(ev.type, WE_MESSAGE_RECEIVED, "MESSAGE_RECEIVED type");
    CHECK_EQ_STR(ev.from, "972501234567", "MESSAGE_RECEIVED from");
    CHECK_EQ_STR(ev.text, "hi \xc3\xa9", "MESSAGE_RECEIVED text (UTF-8)");
    CHECK_EQ_STR(ev.wa_message_id, "W2", "MESSAGE_RECEIVED waMessageId");
    wevent_free(&ev);

    PARSE_OK("PING", "{\"uptimeMs\":1000,\"rssBytes\":2048}", "PING");
    CHECK_EQ_INT(ev.type, WE_PING, "PING type");
    CHECK_EQ_INT(ev.uptime_ms, 1000, "PING uptimeMs");
    CHECK_EQ_INT(ev.rss_bytes, 2048, "PING rssBytes");
    wevent_free(&ev);

    PARSE_OK("PING", "{}", "PING with empty data");
    CHECK(ev.uptime_ms == 0 && ev.rss_bytes == 0, "PING fields absent are 0");
    wevent_free(&ev);

    PARSE_OK("PROXY_ERROR", "{\"error\":\"ECONNREFUSED\"}", "PROXY_ERROR");
    CHECK_EQ_INT(ev.type, WE_PROXY_ERROR, "PROXY_ERROR type");
    CHECK_EQ_STR(ev.error, "ECONNREFUSED", "PROXY_ERROR error");
    wevent_free(&ev);

    PARSE_OK("AUTH_FAILURE", "{\"error\":\"bad creds\"}", "AUTH_FAILURE");
    CHECK_EQ_INT(ev.type, WE_AUTH_FAILURE, "AUTH_FAILURE type");
    CHECK_EQ_STR(ev.error, "bad creds", "AUTH_FAILURE error");
    wevent_free(&ev);

    /* other edges that are fine */
    PARSE_OK("PING", "{\"uptimeMs\":null}", "PING with a null optional field");
    wevent_free(&ev);
    b = "{\"data\":{},\"timestamp\":0,\"type\":\"PING\",\"sessionId\":\"worker_1\",\"extra\":[1,2]}";
    CHECK_EQ_INT(parse(b, &ev, err, sizeof err), 0, "keys in any order, timestamp 0, extra key");
    CHECK_EQ_INT(ev.session_num, 1, "worker_1 is number 1");
    wevent_free(&ev);
    b = envelope("worker_1000000000000", "PING", "{}");
    CHECK_EQ_INT(parse(b, &ev, err, sizeof err), 0, "worker_1000000000000 (20 chars) is fine");
    CHECK_EQ_INT(ev.session_num, 1000000000000LL, "its number");
    wevent_free(&ev);

    /* the names of the types */
    static const char *const names[WE__COUNT] = {
        "QR_CODE", "PAIRING_CODE", "CONNECTED", "DISCONNECTED", "MESSAGE_SENT", "MESSAGE_FAILED",
        "MESSAGE_RECEIVED", "PING", "PROXY_ERROR", "AUTH_FAILURE",
    };
    for (int t = 0; t < WE__COUNT; t++)
        CHECK_EQ_STR(wevent_type_name((enum wevent_type)t), names[t], "type %d is named %s", t,
                     names[t]);
    CHECK_EQ_STR(wevent_type_name(WE__COUNT), "?", "out-of-range type name");
#undef PARSE_OK
}

static void expect_fail(const char *text, const char *desc)
{
    struct wevent ev;
    char err[256];
    memset(&ev, 0x5a, sizeof ev);
    int rc = parse(text, &ev, err, sizeof err);
    CHECK_EQ_INT(rc, -1, "%s is refused", desc);
    CHECK(err[0] != '\0', "%s has a reason", desc);
    CHECK(ev.root == NULL, "%s leaves nothing to free", desc);
    if (rc == 0)
        wevent_free(&ev);
}

static void test_invalid(void)
{
    static const struct {
        const char *type, *data, *desc;
    } t[] = {
        {"QR_CODE", "{}", "QR_CODE without qr"},
        {"QR_CODE", "{\"qr\":null}", "QR_CODE with qr null"},
        {"QR_CODE", "{\"qr\":\"\"}", "QR_CODE with an empty qr"},
        {"QR_CODE", "{\"qr\":5}", "QR_CODE with a numeric qr"},
        {"QR_CODE", "{\"qr\":\"a\\u0000b\"}", "QR_CODE with a NUL inside qr"},
        {"PAIRING_CODE", "{}", "PAIRING_CODE without code"},
        {"PAIRING_CODE", "{\"code\":\"0123456789abcdef\"}", "PAIRING_CODE of 16 characters"},
        {"CONNECTED", "{}", "CONNECTED without phoneNumber"},
        {"CONNECTED", "{\"name\":\"x\"}", "CONNECTED with name only"},
        {"CONNECTED", "{\"phoneNumber\":\"12ab\"}", "CONNECTED with phoneNumber 12ab"},
        {"CONNECTED", "{\"phoneNumber\":\"1234567\"}", "CONNECTED with 7 digits"},
        {"CONNECTED", "{\"phoneNumber\":\"1234567890123456\"}", "CONNECTED with 16 digits"},
        {"CONNECTED", "{\"phoneNumber\":972501234567}", "CONNECTED with a numeric phoneNumber"},
        {"CONNECTED", "{\"phoneNumber\":\"12345678\",\"name\":7}", "CONNECTED with a numeric name"},
        {"DISCONNECTED", "{\"statusCode\":428}", "DISCONNECTED without loggedOut"},
        {"DISCONNECTED", "{\"loggedOut\":false}", "DISCONNECTED without statusCode"},
        {"DISCONNECTED", "{\"loggedOut\":\"yes\",\"statusCode\":428}", "DISCONNECTED loggedOut string"},
        {"DISCONNECTED", "{\"loggedOut\":0,\"statusCode\":428}", "DISCONNECTED loggedOut 0"},
        {"DISCONNECTED", "{\"loggedOut\":false,\"statusCode\":-1}", "DISCONNECTED statusCode -1"},
        {"DISCONNECTED", "{\"loggedOut\":false,\"statusCode\":10000}", "DISCONNECTED statusCode 10000"},
        {"DISCONNECTED", "{\"loggedOut\":false,\"statusCode\":\"428\"}", "DISCONNECTED statusCode string"},
        {"MESSAGE_SENT", "{}", "MESSAGE_SENT without messageId"},
        {"MESSAGE_FAILED", "{\"messageId\":\"m\"}", "MESSAGE_FAILED without error"},
        {"MESSAGE_FAILED", "{\"error\":\"e\"}", "MESSAGE_FAILED without messageId"},
        {"MESSAGE_FAILED", "{\"messageId\":\"m\",\"error\":\"e\",\"retryable\":1}",
         "MESSAGE_FAILED retryable 1"},
        {"MESSAGE_RECEIVED", "{\"text\":\"hi\"}", "MESSAGE_RECEIVED without from"},
        {"PING", "{\"uptimeMs\":-5}", "PING with negative uptime"},
        {"PING", "{\"rssBytes\":\"big\"}", "PING with rssBytes string"},
        {"PROXY_ERROR", "{}", "PROXY_ERROR without error"},
        {"PROXY_ERROR", "{\"error\":\"\"}", "PROXY_ERROR with an empty error"},
        {"AUTH_FAILURE", "{}", "AUTH_FAILURE without error"},
        {"FOO", "{}", "unknown type FOO"},
        {"ping", "{}", "lower-case type ping"},
        {"", "{}", "empty type"},
        {"PING", "[]", "data an array"},
        {"PING", "\"x\"", "data a string"},
        {"PING", "null", "data null"},
        {"PING", "42", "data a number"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        expect_fail(envelope("worker_7", t[i].type, t[i].data), t[i].desc);

    /* field length limits */
    static char big[1100 + 64];
    memcpy(big, "{\"qr\":\"", 7);
    memset(big + 7, 'q', 1000);
    memcpy(big + 7 + 1000, "\"}", 3);
    struct wevent ev;
    char err[256];
    CHECK_EQ_INT(parse(envelope("worker_7", "QR_CODE", big), &ev, err, sizeof err), 0,
                 "a 1000-character qr is fine");
    if (ev.root)
        wevent_free(&ev);
    memset(big + 7, 'q', 1001);
    memcpy(big + 7 + 1001, "\"}", 3);
    expect_fail(envelope("worker_7", "QR_CODE", big), "a 1001-character qr");

    /* the envelope */
    static const struct {
        const char *text, *desc;
    } e[] = {
        {"{\"sessionId\":\"worker_7\",\"type\":\"PING\",\"data\":{}}", "timestamp missing"},
        {"{\"sessionId\":\"worker_7\",\"type\":\"PING\",\"timestamp\":-1,\"data\":{}}",
         "timestamp negative"},
        {"{\"sessionId\":\"worker_7\",\"type\":\"PING\",\"timestamp\":\"1700000000123\",\"data\":{}}",
         "timestamp a string"},
        {"{\"sessionId\":\"worker_7\",\"type\":\"PING\",\"timestamp\":1.5,\"data\":{}}",
         "timestamp a fraction"},
        {"{\"sessionId\":\"worker_7\",\"type\":\"PING\",\"timestamp\":null,\"data\":{}}",
         "timestamp null"},
        {"{\"sessionId\":\"worker_7\",\"type\":\"PING\",\"timestamp\":4102444800001,\"data\":{}}",
         "timestamp after 2100"},
        {"{\"sessionId\":\"worker_7\",\"type\":\"PING\",\"timestamp\":1}", "data missing"},
        {"{\"sessionId\":\"worker_7\",\"timestamp\":1,\"data\":{}}", "type missing"},
        {"{\"sessionId\":\"worker_7\",\"type\":7,\"timestamp\":1,\"data\":{}}", "type a number"},
        {"{\"type\":\"PING\",\"timestamp\":1,\"data\":{}}", "sessionId missing"},
        {"{\"sessionId\":7,\"type\":\"PING\",\"timestamp\":1,\"data\":{}}", "sessionId a number"},
        /* duplicate keys, at the top and inside data */
        {"{\"sessionId\":\"worker_7\",\"type\":\"PING\",\"type\":\"PING\",\"timestamp\":1,\"data\":{}}",
         "a duplicate type key"},
        {"{\"sessionId\":\"worker_7\",\"sessionId\":\"worker_8\",\"type\":\"PING\",\"timestamp\":1,"
         "\"data\":{}}",
         "a duplicate sessionId key"},
        {"{\"sessionId\":\"worker_7\",\"type\":\"PROXY_ERROR\",\"timestamp\":1,"
         "\"data\":{\"error\":\"a\",\"error\":\"b\"}}",
         "a duplicate key inside data"},
        /* not JSON or not an object */
        {"", "an empty body"},
        {"{", "a truncated object"},
        {"not json", "plain text"},
        {"null", "null"},
        {"[]", "an array"},
        {"\"worker_7\"", "a string"},
        {"{\"sessionId\":\"worker_7\",\"type\":\"PING\",\"timestamp\":1,\"data\":{}} x",
         "trailing garbage"},
        {"{\"sessionId\":\"worker_7\",\"type\":\"PING\",\"timestamp\":1,\"data\":{},}", "a trailing comma"},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++)
        expect_fail(e[i].text, e[i].desc);

    /* session ids */
    static const char *const badsid[] = {"worker_0", "worker_-1", "worker_x", "w_1", "worker_",
                                         "worker_+1", "worker_01", "worker_1x", "worker_ 1",
                                         "Worker_1", "worker_10000000000000", /* 21 chars */
                                         "worker_99999999999999999999", "", "worker_1000000000001"};
    for (size_t i = 0; i < sizeof badsid / sizeof badsid[0]; i++) {
        char desc[80];
        snprintf(desc, sizeof desc, "sessionId '%s'", badsid[i]);
        expect_fail(envelope(badsid[i], "PING", "{}"), desc);
    }
}

static void test_session_helpers(void)
{
    static const struct {
        const char *name;
        int rc;
        long long num;
    } t[] = {
        {"worker_1", 0, 1},        {"worker_42", 0, 42},   {"worker_1000000000000", 0, 1000000000000LL},
        {"worker_0", -1, 0},       {"worker_-1", -1, 0},   {"worker_x", -1, 0},
        {"w_1", -1, 0},            {"worker_", -1, 0},     {"worker_007", -1, 0},
        {"worker_10000000000000", -1, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t n = -99;
        int rc = wevent_session_num(t[i].name, &n);
        CHECK_EQ_INT(rc, t[i].rc, "wevent_session_num('%s')", t[i].name);
        if (t[i].rc == 0)
            CHECK_EQ_INT(n, t[i].num, "number of '%s'", t[i].name);
    }
    int64_t n;
    CHECK_EQ_INT(wevent_session_num(NULL, &n), -1, "wevent_session_num(NULL)");

    json_t *root = json_loads("{\"sessionId\":\"worker_9\",\"type\":\"nonsense\"}", 0, NULL);
    CHECK_EQ_STR(wevent_session_of(root), "worker_9", "wevent_session_of a body with a bad type");
    json_decref(root);
    root = json_loads("{\"sessionId\":\"worker_0\"}", 0, NULL);
    CHECK(wevent_session_of(root) == NULL, "wevent_session_of worker_0 is NULL");
    json_decref(root);
    root = json_loads("[1]", 0, NULL);
    CHECK(wevent_session_of(root) == NULL, "wevent_session_of an array is NULL");
    json_decref(root);
    CHECK(wevent_session_of(NULL) == NULL, "wevent_session_of NULL is NULL");

    /* wevent_from_json takes its own reference and gives it back */
    struct wevent ev;
    char err[256];
    root = json_loads("{\"sessionId\":\"worker_3\",\"type\":\"PING\",\"timestamp\":5,\"data\":{}}", 0,
                      NULL);
    CHECK_EQ_INT(wevent_from_json(root, &ev, err, sizeof err), 0, "wevent_from_json accepts");
    CHECK_EQ_INT(root->refcount, 2, "wevent_from_json holds a reference");
    wevent_free(&ev);
    CHECK_EQ_INT(root->refcount, 1, "wevent_free gives it back");
    json_decref(root);
    root = json_loads("{\"sessionId\":\"worker_3\",\"type\":\"PING\",\"timestamp\":-5,\"data\":{}}", 0,
                      NULL);
    CHECK_EQ_INT(wevent_from_json(root, &ev, err, sizeof err), -1, "wevent_from_json refuses");
    CHECK_EQ_INT(root->refcount, 1, "a refused body keeps the caller's reference only");
    CHECK(ev.root == NULL, "a refused body leaves nothing to free");
    json_decref(root);
}

/* a waMessageId is stored in 128 bytes: 127 parse, 128 are refused, not cut */
static void test_wa_id_bound(void)
{
    char id[200], data[300], err[256];
    struct wevent ev;
    for (int n = 127; n <= 128; n++) {
        memset(id, 'w', (size_t)n);
        id[n] = '\0';
        static const char *const head[] = {"{\"messageId\":\"m\",", "{\"from\":\"972501234567\","};
        static const char *const type[] = {"MESSAGE_SENT", "MESSAGE_RECEIVED"};
        for (int k = 0; k < 2; k++) {
            snprintf(data, sizeof data, "%s\"waMessageId\":\"%s\"}", head[k], id);
            int rc = parse(envelope("worker_7", type[k], data), &ev, err, sizeof err);
            CHECK_EQ_INT(rc, n == 127 ? 0 : -1, "%s with a waMessageId of %d bytes", type[k], n);
            if (rc == 0) {
                CHECK_EQ_INT((int)strlen(ev.wa_message_id), 127, "kept whole");
                wevent_free(&ev);
            } else {
                CHECK(strstr(err, "waMessageId") != NULL, "the error names waMessageId (%s)", err);
            }
        }
    }
}

int main(void)
{
    test_wa_id_bound();
    test_valid();
    test_invalid();
    test_session_helpers();
    return TAP_DONE();
}
