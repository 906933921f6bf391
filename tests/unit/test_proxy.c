/* Unit tests for src/proxy.h: URL validation, masking and the least-loaded choice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"
#include "tap.h"

/* a password distinctive enough that finding it in a message is never a coincidence */
#define PW "Zq9PaSsWoRd7x"

static void test_parse_ok(void)
{
    static const struct {
        const char *url;
        const char *host;
        int port;
        int creds;
    } t[] = {
        {"socks5h://u:p@host:1080", "host", 1080, 1},
        {"socks5h://user:" PW "@proxy.example.com:1080", "proxy.example.com", 1080, 1},
        {"socks5h://host:1", "host", 1, 0},
        {"socks5h://host:65535", "host", 65535, 0},
        {"socks5h://[::1]:1080", "::1", 1080, 0},
        {"socks5h://u:p@[2001:db8::7]:9050", "2001:db8::7", 9050, 1},
        {"socks5h://[::ffff:10.0.0.1]:1080", "::ffff:10.0.0.1", 1080, 0},
        {"socks5h://u:p@host:1080/", "host", 1080, 1},
        {"socks5h://host:1080/", "host", 1080, 0},
        {"socks5h://user:pa:ss@host:1080", "host", 1080, 1},   /* ':' in the password */
        {"socks5h://user@host:1080", "host", 1080, 1},         /* user only */
        {"socks5h://u:p@w@host:1080", "host", 1080, 1},        /* '@' in the password */
        {"socks5h://10.0.0.1:3128", "10.0.0.1", 3128, 0},
        {"socks5h://my_host-1.local:22", "my_host-1.local", 22, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct proxy_url u;
        char err[256] = "";
        int rc = proxy_url_parse(t[i].url, &u, err, sizeof err);
        if (!CHECK_EQ_INT(rc, 0, "accepts %s", t[i].url)) {
            TAP_DIAG("err: %s", err);
            continue;
        }
        CHECK_EQ_STR(u.host, t[i].host, "host of %s", t[i].url);
        CHECK_EQ_INT(u.port, t[i].port, "port of %s", t[i].url);
        CHECK_EQ_INT(u.has_credentials, t[i].creds, "has_credentials of %s", t[i].url);
    }
}

static void test_parse_bad(void)
{
    static const char *const bad[] = {
        "socks5://u:" PW "@host:1080",       /* DNS would not go through the proxy */
        "http://u:" PW "@host:1080",
        "https://u:" PW "@host:1080",
        "socks5hx://u:" PW "@host:1080",
        "socks5h://u:" PW "@host",            /* no port */
        "socks5h://u:" PW "@host:",
        "socks5h://u:" PW "@host:0",
        "socks5h://u:" PW "@host:65536",
        "socks5h://u:" PW "@host:12a",
        "socks5h://u:" PW "@host:-1",
        "socks5h://u:" PW "@host:+80",
        "socks5h://u:" PW "@host: 80",
        "socks5h://u:" PW "@host:99999999999999999999",
        "socks5h://u:" PW "@host:1080/x",
        "socks5h://u:" PW "@host:1080//",
        "socks5h://u:" PW "@:1080",           /* empty host */
        "socks5h://:1080",
        "socks5h://u:" PW "@[]:1080",
        "socks5h://u:" PW "@[::1]",
        "socks5h://u:" PW "@[::1:1080",
        "socks5h://u:" PW "@[proxy.example.com]:1080", /* brackets hold an IPv6 address only */
        "socks5h://u:" PW "@[::g]:1080",
        "socks5h://u:" PW "@host:0001080",    /* more than 5 digits: the worker refuses it */
        "socks5h://u:" PW "@ho st:1080",
        "socks5h://u:" PW "@host/x:1080",
        "socks5h://u ser:" PW "@host:1080",    /* spaces in the credentials */
        "socks5h://user:" PW " @host:1080",
        "socks5h://user:" PW "\t@host:1080",
        "socks5h://us/er:" PW "@host:1080",
        "socks5h://@host:1080",               /* empty user */
        "socks5h:u:" PW "@host:1080",         /* missing :// */
        "socks5h:/u:" PW "@host:1080",
        "u:" PW "@host:1080",
        "",
        "socks5h://",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct proxy_url u;
        char err[512] = "";
        int rc = proxy_url_parse(bad[i], &u, err, sizeof err);
        CHECK_EQ_INT(rc, -1, "rejects '%s'", bad[i]);
        CHECK(err[0] != '\0', "rejecting '%s' gives a reason", bad[i]);
        CHECK(strstr(err, PW) == NULL, "the reason for '%s' hides the password (%s)", bad[i], err);
    }
}

static void test_length(void)
{
    /* exactly PROXY_URL_MAX characters is fine, one more is not */
    char url[PROXY_URL_MAX + 2];
    const char *head = "socks5h://u:", *tail = "@host:1080";
    size_t pad = PROXY_URL_MAX - strlen(head) - strlen(tail);
    char *p = url;
    memcpy(p, head, strlen(head));
    p += strlen(head);
    memset(p, 'a', pad);
    p += pad;
    memcpy(p, tail, strlen(tail) + 1);
    struct proxy_url u;
    char err[256] = "";
    CHECK_EQ_INT(strlen(url), PROXY_URL_MAX, "the long URL has PROXY_URL_MAX characters");
    /* SOCKS5 (RFC 1929) carries at most 255 bytes of password: a longer one can never work */
    CHECK_EQ_INT(proxy_url_parse(url, &u, err, sizeof err), -1,
                 "a %d-character URL whose password is over 255 is refused", PROXY_URL_MAX);
    CHECK(strstr(err, "255") != NULL && strstr(err, "aaaa") == NULL, "the reason names 255, not the password (%s)", err);
    {
        char ok[700];
        snprintf(ok, sizeof ok, "socks5h://%.*s:%.*s@host:1080", 255,
                 url + strlen(head), 255, url + strlen(head));
        CHECK_EQ_INT(proxy_url_parse(ok, &u, err, sizeof err), 0, "user and password of 255 each are accepted");
        CHECK_EQ_INT((int)strlen(u.pass), 255, "the password is kept whole for the handshake");
    }

    /* one more password character */
    memmove(url + strlen(head) + 1, url + strlen(head), strlen(url + strlen(head)) + 1);
    CHECK_EQ_INT(strlen(url), PROXY_URL_MAX + 1, "the longer URL has PROXY_URL_MAX+1 characters");
    err[0] = '\0';
    CHECK_EQ_INT(proxy_url_parse(url, &u, err, sizeof err), -1, "a %d-character URL is rejected",
                 PROXY_URL_MAX + 1);
    CHECK(strstr(err, "aaaaaaaa") == NULL, "the too-long reason does not echo the credentials");

    /* a host of 255 characters fits, 256 does not */
    char big[400];
    int n = snprintf(big, sizeof big, "socks5h://%.*s:1080", 255,
                     "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"
                     "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"
                     "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh");
    CHECK_EQ_INT(n, 10 + 255 + 5, "built a 255-character host");
    CHECK_EQ_INT(proxy_url_parse(big, &u, err, sizeof err), 0, "a 255-character host is accepted");
    CHECK_EQ_INT(strlen(u.host), 255, "the 255-character host is kept whole");
    memmove(big + 11, big + 10, strlen(big + 10) + 1);
    big[10] = 'h';
    CHECK_EQ_INT(proxy_url_parse(big, &u, err, sizeof err), -1, "a 256-character host is rejected");

    /* a small err buffer is respected */
    char tiny[8];
    memset(tiny, 'X', sizeof tiny);
    CHECK_EQ_INT(proxy_url_parse("http://h:1", &u, tiny, sizeof tiny), -1, "rejects with a tiny err");
    CHECK(memchr(tiny, '\0', sizeof tiny) != NULL, "a tiny err buffer is NUL-terminated");
}

static void test_mask(void)
{
    static const struct {
        const char *url, *want;
    } t[] = {
        {"socks5h://user:" PW "@proxy.example.com:1080", "socks5h://***@proxy.example.com:1080"},
        {"socks5h://user@host:1080", "socks5h://***@host:1080"},
        {"socks5h://host:1080", "socks5h://host:1080"},
        {"socks5h://host:1080/", "socks5h://host:1080"},
        {"socks5h://u:p@[::1]:1080", "socks5h://***@[::1]:1080"},
        {"socks5h://[::1]:1080", "socks5h://[::1]:1080"},
        {"socks5h://u:" PW "@host:01080", "socks5h://***@host:1080"},
        {"socks5://u:" PW "@host:1080", "invalid"},
        {"http://host:1080", "invalid"},
        {"garbage", "invalid"},
        {"", "invalid"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[300];
        memset(out, 'X', sizeof out);
        proxy_mask(t[i].url, out, sizeof out);
        CHECK_EQ_STR(out, t[i].want, "mask of %s", t[i].url);
        CHECK(strstr(out, PW) == NULL, "mask of %s hides the password", t[i].url);
    }
    char out[64];
    proxy_mask(NULL, out, sizeof out);
    CHECK_EQ_STR(out, "invalid", "mask of NULL");
    char small[12];
    proxy_mask("socks5h://user:" PW "@proxy.example.com:1080", small, sizeof small);
    CHECK_EQ_STR(small, "socks5h://*", "mask truncates to the buffer");
}

static void test_pick(void)
{
    /* id, tenant, status, nsessions */
    struct proxy p1 = {.id = 1, .tenant_id = 0, .status = PROXY_OK, .nsessions = 2};
    struct proxy p2 = {.id = 2, .tenant_id = 0, .status = PROXY_OK, .nsessions = 1};
    struct proxy p3 = {.id = 3, .tenant_id = 0, .status = PROXY_OK, .nsessions = 1};
    struct proxy p4 = {.id = 4, .tenant_id = 0, .status = PROXY_BAD, .nsessions = 0};
    struct proxy p5 = {.id = 5, .tenant_id = 0, .status = PROXY_OK, .nsessions = 4};
    struct proxy p6 = {.id = 6, .tenant_id = 9, .status = PROXY_OK, .nsessions = 0};
    struct proxy p7 = {.id = 7, .tenant_id = 5, .status = PROXY_OK, .nsessions = 0};

    struct proxy *const all[] = {&p1, &p2, &p3, &p4, &p5, &p6, &p7};
    const size_t n = sizeof all / sizeof all[0];

    /* tenant 1 sees the shared pool only: p2 and p3 tie at 1, p2 has the lower id */
    CHECK_EQ_INT(proxy_pick(all, n, 1, 4, 0), 1, "least loaded, tie to lowest id (p2)");
    /* the order in the list does not matter for a tie */
    struct proxy *const rev[] = {&p3, &p2, &p1};
    CHECK_EQ_INT(proxy_pick(rev, 3, 1, 4, 0), 1, "tie picks the lowest id whatever the order");
    /* excluding p2 leaves p3 */
    CHECK_EQ_INT(proxy_pick(all, n, 1, 4, 2), 2, "excluded id skipped (p3)");
    /* tenant 9 has its own empty proxy */
    CHECK_EQ_INT(proxy_pick(all, n, 9, 4, 0), 5, "own tenant's proxy is usable (p6)");
    /* tenant 5 too, and excluding it falls back to the shared pool */
    CHECK_EQ_INT(proxy_pick(all, n, 5, 4, 0), 6, "tenant 5 gets p7");
    CHECK_EQ_INT(proxy_pick(all, n, 5, 4, 7), 1, "tenant 5 without p7 gets p2");
    /* the bad p4 has no sessions but is never chosen */
    struct proxy *const bad_only[] = {&p4};
    CHECK_EQ_INT(proxy_pick(bad_only, 1, 0, 4, 0), -1, "a bad proxy is never picked");
    /* full: nsessions >= max */
    struct proxy *const full[] = {&p5};
    CHECK_EQ_INT(proxy_pick(full, 1, 0, 4, 0), -1, "a full proxy (4 of 4) is skipped");
    CHECK_EQ_INT(proxy_pick(full, 1, 0, 5, 0), 0, "the same proxy has room with max 5");
    CHECK_EQ_INT(proxy_pick(full, 1, 0, 3, 0), -1, "over max (4 of 3) is skipped");
    /* max 2: only p2 and p3 (1 session) have room; p1 has 2 */
    CHECK_EQ_INT(proxy_pick(all, n, 1, 2, 0), 1, "max 2 picks p2");
    CHECK_EQ_INT(proxy_pick(all, n, 1, 1, 0), -1, "max 1: nothing in the shared pool has room");
    /* other tenants' proxies only */
    struct proxy *const foreign[] = {&p6, &p7};
    CHECK_EQ_INT(proxy_pick(foreign, 2, 1, 4, 0), -1, "other tenants' proxies are not picked");
    CHECK_EQ_INT(proxy_pick(foreign, 2, 0, 4, 0), -1,
                 "tenant 0 does not get tenant-owned proxies either");
    CHECK_EQ_INT(proxy_pick(all, 0, 1, 4, 0), -1, "empty list gives -1");
    CHECK_EQ_INT(proxy_pick(NULL, 0, 1, 4, 0), -1, "NULL empty list gives -1");
    /* exclude_id 0 is not a real id: nothing is skipped for it */
    struct proxy p0 = {.id = 10, .tenant_id = 0, .status = PROXY_OK, .nsessions = 0};
    struct proxy *const one[] = {&p0};
    CHECK_EQ_INT(proxy_pick(one, 1, 1, 4, 0), 0, "exclude 0 skips nothing");
    CHECK_EQ_INT(proxy_pick(one, 1, 1, 4, 10), -1, "the only proxy excluded gives -1");
    /* least loaded beats a lower id */
    struct proxy q1 = {.id = 1, .tenant_id = 0, .status = PROXY_OK, .nsessions = 3};
    struct proxy q2 = {.id = 2, .tenant_id = 0, .status = PROXY_OK, .nsessions = 0};
    struct proxy *const two[] = {&q1, &q2};
    CHECK_EQ_INT(proxy_pick(two, 2, 1, 4, 0), 1, "fewer sessions wins over a lower id");
}

/* regression: the text before a later "://" is not a scheme and may hold the password */
static void test_scheme_echo(void)
{
    struct proxy_url u;
    char err[256];
    CHECK(proxy_url_parse("u:" PW "@host:1080/?a=http://x", &u, err, sizeof err) < 0,
          "credentials before a later :// are refused");
    CHECK(strstr(err, PW) == NULL, "and the error does not echo the password (%s)", err);
    CHECK(proxy_url_parse("socks5://u:" PW "@h:1", &u, err, sizeof err) < 0 && strstr(err, "got socks5://"),
          "a real scheme is named in the error");
}

int main(void)
{
    test_scheme_echo();
    test_parse_ok();
    test_parse_bad();
    test_length();
    test_mask();
    test_pick();
    return TAP_DONE();
}
