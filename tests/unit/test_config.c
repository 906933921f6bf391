/* Unit tests for src/config.h: .env parsing and config_load (defaults, .env, environment). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

extern char **environ;

/* ---------- config_parse_env ---------- */

#define MAXPAIRS 16

struct pairs {
    int n;
    char key[MAXPAIRS][128];
    char value[MAXPAIRS][4096];
    int fail_at; /* 1-based call number that returns -1; 0 = never */
};

static int collect(const char *key, const char *value, void *arg)
{
    struct pairs *p = arg;
    if (p->n >= MAXPAIRS)
        return -1;
    snprintf(p->key[p->n], sizeof p->key[p->n], "%s", key);
    snprintf(p->value[p->n], sizeof p->value[p->n], "%s", value);
    p->n++;
    return p->fail_at && p->n == p->fail_at ? -1 : 0;
}

static int parse(const char *text, size_t len, struct pairs *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    err[0] = '\0';
    return config_parse_env(text, len, collect, p, err, errlen);
}

static void test_parse_env_ok(void)
{
    static const char text[] =
        "# a comment\n"
        "\n"
        "   \t \n"
        "export A=1\n"
        "B = two\n"
        "C=\"quoted value\"\n"
        "D='single # not a comment'\n"
        "E=\n"
        "  F=  spaced  \n"
        "   # indented comment\n"
        "H=a=b\n"
        "I=crlf\r\n"
        "J=\"\"\n"
        "exportK=3\n"
        "LAST=no newline";
    static const char *const want[][2] = {
        {"A", "1"},      {"B", "two"},     {"C", "quoted value"}, {"D", "single # not a comment"},
        {"E", ""},       {"F", "spaced"},  {"H", "a=b"},          {"I", "crlf"},
        {"J", ""},       {"exportK", "3"}, {"LAST", "no newline"},
    };
    const int nwant = (int)(sizeof want / sizeof want[0]);
    struct pairs p;
    char err[256];
    int rc = parse(text, sizeof text - 1, &p, err, sizeof err);
    if (!CHECK_EQ_INT(rc, 0, "a .env with comments, blanks, export, quotes parses"))
        TAP_DIAG("err: %s", err);
    CHECK_EQ_INT(p.n, nwant, "number of KEY=VALUE pairs");
    for (int i = 0; i < nwant && i < p.n; i++) {
        CHECK_EQ_STR(p.key[i], want[i][0], "pair %d key", i);
        CHECK_EQ_STR(p.value[i], want[i][1], "pair %d (%s) value", i, want[i][0]);
    }

    /* len is honoured: the buffer need not be NUL-terminated */
    char raw[16];
    memcpy(raw, "X=12345YYYYYYYYY", 16);
    CHECK_EQ_INT(parse(raw, 5, &p, err, sizeof err), 0, "len bounds the input");
    CHECK(p.n == 1 && strcmp(p.value[0], "123") == 0, "only the first 5 bytes are read (got '%s')",
          p.n ? p.value[0] : "");

    CHECK_EQ_INT(parse("", 0, &p, err, sizeof err), 0, "empty input is fine");
    CHECK_EQ_INT(p.n, 0, "empty input has no pairs");
    CHECK_EQ_INT(parse("\n\n# x\n", 6, &p, err, sizeof err), 0, "only blanks and comments");
    CHECK_EQ_INT(p.n, 0, "comments give no pairs");

    /* a value of 4095 characters fits the parser's buffer, 4096 does not */
    static char big[4200];
    memcpy(big, "V=", 2);
    memset(big + 2, 'v', 4095);
    CHECK_EQ_INT(parse(big, 2 + 4095, &p, err, sizeof err), 0, "a 4095-character value is taken");
    CHECK_EQ_INT(strlen(p.value[0]), 4095, "the 4095-character value arrives whole");
    memset(big + 2, 'v', 4096);
    CHECK_EQ_INT(parse(big, 2 + 4096, &p, err, sizeof err), -1, "a 4096-character value is refused");
    CHECK(strstr(err, "line 1") != NULL, "the too-long error names line 1 (%s)", err);
}

static void test_parse_env_bad(void)
{
    static const struct {
        const char *text;
        int line;
        const char *what;
    } t[] = {
        {"A=1\nB=2\njust words\nC=3\n", 3, "a line without '='"},
        {"A=1\nexport B\n", 2, "export without '='"},
        {"BAD-KEY=1\n", 1, "'-' in a key"},
        {"A=1\n\n# c\nA B=1\n", 4, "a space inside a key"},
        {"A.B=1\n", 1, "'.' in a key"},
        {"=value\n", 1, "an empty key"},
        {"  = value\n", 1, "a blank key"},
        {"K\xc3\xa9Y=1\n", 1, "a non-ASCII key"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct pairs p;
        char err[256], want[32];
        int rc = parse(t[i].text, strlen(t[i].text), &p, err, sizeof err);
        CHECK_EQ_INT(rc, -1, "%s is refused", t[i].what);
        snprintf(want, sizeof want, "line %d", t[i].line);
        CHECK(strstr(err, want) != NULL, "%s: the error names %s (%s)", t[i].what, want, err);
    }

    /* a key of 127 characters fits, 128 does not */
    char key[300];
    memset(key, 'K', 127);
    memcpy(key + 127, "=1", 3);
    struct pairs p;
    char err[256];
    CHECK_EQ_INT(parse(key, strlen(key), &p, err, sizeof err), 0, "a 127-character key is taken");
    memset(key, 'K', 128);
    memcpy(key + 128, "=1", 3);
    CHECK_EQ_INT(parse(key, strlen(key), &p, err, sizeof err), -1, "a 128-character key is refused");

    /* a NUL byte inside a value or a key */
    static const char nul_value[] = "A=1\nB=x\0y\n";
    CHECK_EQ_INT(parse(nul_value, sizeof nul_value - 1, &p, err, sizeof err), -1,
                 "a NUL inside a value is refused");
    CHECK(strstr(err, "line 2") != NULL, "the NUL error names line 2 (%s)", err);
    static const char nul_key[] = "A\0B=1\n";
    CHECK_EQ_INT(parse(nul_key, sizeof nul_key - 1, &p, err, sizeof err), -1,
                 "a NUL inside a key is refused");

    /* the callback refusing a pair stops the parse and names the line */
    memset(&p, 0, sizeof p);
    p.fail_at = 2;
    err[0] = '\0';
    static const char three[] = "A=1\n\nB=2\nC=3\n";
    int rc = config_parse_env(three, sizeof three - 1, collect, &p, err, sizeof err);
    CHECK_EQ_INT(rc, -1, "a callback error fails the parse");
    CHECK_EQ_INT(p.n, 2, "no pair after the refused one is passed on");
    CHECK(strstr(err, "line 3") != NULL, "the callback error names line 3 (%s)", err);
}

/* ---------- config_load ---------- */

/* Everything config_load would read from the environment, saved and removed so that the
 * machine's own environment cannot change the results; restored at the end. */
static char *saved_env[256];
static int nsaved;

static int config_name(const char *name, size_t len)
{
    if (len >= 10 && strncmp(name, "PROXY_URL_", 10) == 0)
        return 1;
    for (const struct config_entry *e = config_table; e->name; e++)
        if (strlen(e->name) == len && strncmp(e->name, name, len) == 0)
            return 1;
    return 0;
}

static void env_isolate(void)
{
    for (char **ep = environ; *ep && nsaved < (int)(sizeof saved_env / sizeof saved_env[0]); ep++) {
        const char *eq = strchr(*ep, '=');
        if (eq && config_name(*ep, (size_t)(eq - *ep)))
            saved_env[nsaved++] = strdup(*ep);
    }
    for (int i = 0; i < nsaved; i++) {
        char *eq = strchr(saved_env[i], '=');
        *eq = '\0';
        unsetenv(saved_env[i]);
        *eq = '=';
    }
}

static void env_restore(void)
{
    for (int i = 0; i < nsaved; i++) {
        char *eq = strchr(saved_env[i], '=');
        *eq = '\0';
        setenv(saved_env[i], eq + 1, 1);
        free(saved_env[i]);
    }
    nsaved = 0;
}

static char tmpdir[64];
static char envpath[128];

static void write_env(const char *text)
{
    FILE *f = fopen(envpath, "w");
    if (!f) {
        TAP_DIAG("cannot write %s", envpath);
        return;
    }
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void)
{
    struct config c;
    char err[512];
    int rc = config_load(&c, NULL, err, sizeof err);
    if (!CHECK_EQ_INT(rc, 0, "defaults load with no .env and a clean environment"))
        TAP_DIAG("err: %s", err);
    CHECK_EQ_INT(c.orch_port, 3000, "default ORCH_PORT");
    CHECK_EQ_INT(c.max_workers, 100, "default MAX_WORKERS");
    CHECK_EQ_INT(c.max_sessions_per_proxy, 4, "default MAX_SESSIONS_PER_PROXY");
    CHECK_EQ_INT(c.provisioning_interval_ms, 2000, "default PROVISIONING_INTERVAL_MS");
    CHECK_EQ_INT(c.ping_timeout_ms, 180000, "default PING_TIMEOUT_MS");
    CHECK_EQ_STR(c.runner, "process", "default RUNNER");
    CHECK_EQ_STR(c.orch_host, "127.0.0.1", "default ORCH_HOST");
    CHECK_EQ_STR(c.api_key, "", "default API_KEY is empty (generated later)");
    CHECK_EQ_INT(c.nproxy_urls, 0, "no proxies by default");
    config_free(&c);

    /* every entry's default must satisfy its own bounds */
    int defaults_ok = 1;
    for (const struct config_entry *e = config_table; e->name; e++) {
        if (e->type == CONFIG_INT) {
            char *end;
            long v = strtol(e->def, &end, 10);
            if (*end || v < e->min || v > e->max) {
                defaults_ok = 0;
                TAP_DIAG("%s default %s outside [%ld,%ld]", e->name, e->def, e->min, e->max);
            }
        }
    }
    CHECK(defaults_ok, "every integer default lies within its bounds");

    /* a missing .env is not an error */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/does-not-exist.env", tmpdir);
    rc = config_load(&c, missing, err, sizeof err);
    CHECK_EQ_INT(rc, 0, "a missing .env file is fine");
    config_free(&c);
}

static void test_env_file(void)
{
    write_env("# test .env\n"
              "ORCH_PORT=4000\n"
              "export MAX_WORKERS=7\n"
              "LOG_LEVEL = 'debug'\n"
              "PROXY_URL_10=socks5h://ten:1080\n"
              "PROXY_URL_2=socks5h://two-from-file:1080\n"
              "PROXY_URL_3=\"socks5h://three:1080\"\n"
              "SOME_UNKNOWN_SETTING=whatever\n");
    setenv("ORCH_PORT", "5000", 1);
    setenv("PROXY_URL_1", "socks5h://one:1080", 1);
    setenv("PROXY_URL_2", "socks5h://two-from-env:1080", 1);

    struct config c;
    char err[512];
    int rc = config_load(&c, envpath, err, sizeof err);
    if (!CHECK_EQ_INT(rc, 0, ".env plus environment loads"))
        TAP_DIAG("err: %s", err);
    CHECK_EQ_INT(c.orch_port, 5000, "the environment wins over .env (ORCH_PORT)");
    CHECK_EQ_INT(c.max_workers, 7, ".env value with export is used (MAX_WORKERS)");
    CHECK_EQ_STR(c.log_level, "debug", ".env quoted value is used (LOG_LEVEL)");
    CHECK_EQ_INT(c.max_sessions_per_proxy, 4, "unset values keep their default");
    CHECK_EQ_INT(c.nproxy_urls, 4, "four PROXY_URL_<n> values");
    static const int idx[] = {1, 2, 3, 10};
    static const char *const urls[] = {"socks5h://one:1080", "socks5h://two-from-env:1080",
                                       "socks5h://three:1080", "socks5h://ten:1080"};
    for (int i = 0; i < 4 && i < c.nproxy_urls; i++) {
        CHECK_EQ_INT(c.proxy_url_index[i], idx[i], "proxy %d is PROXY_URL_%d (10 after 2)", i,
                     idx[i]);
        CHECK_EQ_STR(c.proxy_urls[i], urls[i], "proxy %d value", i);
    }
    config_free(&c);
    CHECK(c.nproxy_urls == 0 && c.runner == NULL, "config_free leaves an empty struct");
    unsetenv("ORCH_PORT");
    unsetenv("PROXY_URL_1");
    unsetenv("PROXY_URL_2");
}

static void test_bad_values(void)
{
    static const struct {
        const char *name, *value;
    } t[] = {
        {"ORCH_PORT", "70000"},
        {"ORCH_PORT", "0"},
        {"ORCH_PORT", "80x"},
        {"ORCH_PORT", ""},
        {"MAX_WORKERS", "-1"},
        {"RUNNER", "foo"},
        {"LOG_LEVEL", "verbose"},
        {"PING_TIMEOUT_MS", "999"},
        {"TIMEZONE", ""},
        {"PROXY_URL_x", "socks5h://h:1"},
        {"PROXY_URL_0", "socks5h://h:1"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct config c;
        char err[512] = "";
        setenv(t[i].name, t[i].value, 1);
        int rc = config_load(&c, NULL, err, sizeof err);
        unsetenv(t[i].name);
        CHECK_EQ_INT(rc, -1, "%s='%s' in the environment is refused", t[i].name, t[i].value);
        CHECK(strstr(err, t[i].name) != NULL, "the error names %s (%s)", t[i].name, err);
        CHECK(strchr(err, '\n') == NULL, "the error is one line");
        config_free(&c);
    }

    /* a bad value in the .env file is refused and named too */
    write_env("MAX_WORKERS=5\nORCH_PORT=70000\n");
    struct config c;
    char err[512] = "";
    int rc = config_load(&c, envpath, err, sizeof err);
    CHECK_EQ_INT(rc, -1, "ORCH_PORT=70000 in .env is refused");
    CHECK(strstr(err, "ORCH_PORT") != NULL, "the .env error names ORCH_PORT (%s)", err);
    config_free(&c);

    /* ... unless the environment overrides it with a good one */
    setenv("ORCH_PORT", "8080", 1);
    rc = config_load(&c, envpath, err, sizeof err);
    unsetenv("ORCH_PORT");
    CHECK_EQ_INT(rc, 0, "a good ORCH_PORT in the environment shadows the bad one in .env");
    CHECK_EQ_INT(c.orch_port, 8080, "ORCH_PORT from the environment");
    config_free(&c);

    /* a malformed .env line names its line */
    write_env("A=1\nB=2\nthis is not a setting\n");
    rc = config_load(&c, envpath, err, sizeof err);
    CHECK_EQ_INT(rc, -1, "a malformed .env line is refused");
    CHECK(strstr(err, "line 3") != NULL, "the .env error names line 3 (%s)", err);
    config_free(&c);

    /* cross-field rule */
    setenv("RESTART_BACKOFF_MIN_MS", "5000", 1);
    setenv("RESTART_BACKOFF_MAX_MS", "1000", 1);
    rc = config_load(&c, NULL, err, sizeof err);
    unsetenv("RESTART_BACKOFF_MIN_MS");
    unsetenv("RESTART_BACKOFF_MAX_MS");
    CHECK_EQ_INT(rc, -1, "backoff min above max is refused");
    CHECK(strstr(err, "RESTART_BACKOFF_MIN_MS") != NULL, "the error names the setting (%s)", err);
    config_free(&c);

    /* Twilio's account SID and caller id have exact shapes */
    static const struct {
        const char *sid, *from;
        int ok;
        const char *what;
    } tw[] = {
        {"AC0123456789abcdef0123456789ABCDEF", "+15005550006", 0, "a real-shaped SID and E.164 number"},
        {"AC0123456789abcdef0123456789abcde", "+15005550006", -1, "a SID one digit short"},
        {"AC0123456789abcdef0123456789abcdeg", "+15005550006", -1, "a SID with a non-hex digit"},
        {"AC0123456789abcdef/../../abcdef012", "+15005550006", -1, "a SID with a path in it"},
        {"CA0123456789abcdef0123456789abcdef", "+15005550006", -1, "a call SID, not an account SID"},
        {"AC0123456789abcdef0123456789abcdef", "15005550006", -1, "a number without +"},
        {"AC0123456789abcdef0123456789abcdef", "+1 500 555 0006", -1, "a number with spaces"},
        {"AC0123456789abcdef0123456789abcdef", "+1234567", -1, "7 digits"},
        {"AC0123456789abcdef0123456789abcdef", "+1234567890123456", -1, "16 digits"},
        {"AC0123456789abcdef0123456789abcdef", "+0500555000", -1, "a leading 0"},
        {"AC0123456789abcdef0123456789abcdef", "+12345678", 0, "8 digits"},
    };
    setenv("TWILIO_AUTH_TOKEN", "token", 1);
    setenv("TWILIO_TWIML_URL", "http://127.0.0.1:9/t", 1);
    for (size_t i = 0; i < sizeof tw / sizeof tw[0]; i++) {
        setenv("TWILIO_ACCOUNT_SID", tw[i].sid, 1);
        setenv("TWILIO_FROM", tw[i].from, 1);
        rc = config_load(&c, NULL, err, sizeof err);
        CHECK_EQ_INT(rc, tw[i].ok, "%s", tw[i].what);
        if (rc < 0)
            CHECK(strstr(err, i < 5 ? "TWILIO_ACCOUNT_SID" : "TWILIO_FROM") != NULL, "the error names the setting (%s)",
                  err);
        config_free(&c);
    }
    unsetenv("TWILIO_AUTH_TOKEN");
    unsetenv("TWILIO_TWIML_URL");
    unsetenv("TWILIO_ACCOUNT_SID");
    unsetenv("TWILIO_FROM");

    /* bounds are inclusive */
    setenv("ORCH_PORT", "65535", 1);
    rc = config_load(&c, NULL, err, sizeof err);
    CHECK(rc == 0 && c.orch_port == 65535, "ORCH_PORT=65535 is accepted");
    config_free(&c);
    setenv("ORCH_PORT", "1", 1);
    rc = config_load(&c, NULL, err, sizeof err);
    CHECK(rc == 0 && c.orch_port == 1, "ORCH_PORT=1 is accepted");
    config_free(&c);
    unsetenv("ORCH_PORT");
}

/* regressions: export with any blank run; a refused line is named even when err held text */
static void test_parse_env_regressions(void)
{
    struct pairs p;
    char err[256];
    static const char t1[] = "export  A=1\nexport\tB=2\n";
    CHECK_EQ_INT(parse(t1, sizeof t1 - 1, &p, err, sizeof err), 0, "export with two spaces or a tab");
    CHECK(p.n == 2 && strcmp(p.key[0], "A") == 0 && strcmp(p.key[1], "B") == 0, "keys A and B");
    memset(&p, 0, sizeof p);
    p.fail_at = 1;
    snprintf(err, sizeof err, "previous error");
    CHECK_EQ_INT(config_parse_env("A=1\n", 4, collect, &p, err, sizeof err), -1, "callback refusal");
    CHECK(strstr(err, "line 1") != NULL, "the error names line 1, not old text (%s)", err);
}

int main(void)
{
    test_parse_env_regressions();
    test_parse_env_ok();
    test_parse_env_bad();

    snprintf(tmpdir, sizeof tmpdir, "/tmp/sb-test-config-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        return TAP_DONE();
    }
    snprintf(envpath, sizeof envpath, "%s/.env", tmpdir);
    env_isolate();
    test_defaults();
    test_env_file();
    test_bad_values();
    env_restore();
    unlink(envpath);
    rmdir(tmpdir);
    return TAP_DONE();
}
