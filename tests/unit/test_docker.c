/* Unit tests for src/docker.h: the container-create body, and the parsers of what the
 * Docker engine sends back (listings, the event stream, log frames). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "runner.h"
#include "tap.h"

static const struct worker_spec spec = {
    .session = "worker_7", .id = 7, .proxy_url = "socks5h://u:pw@10.1.1.1:1080",
    .webhook_url = "http://127.0.0.1:3000/webhook", .worker_key = "abc123",
    .auth_dir = "/data/sessions/worker_7", .login_method = "pairing_code",
    .pairing_phone = "972501234567", .log_path = "/data/logs/worker_7.log",
};

static const char *env_of(json_t *body, const char *name)
{
    size_t i;
    json_t *v;
    size_t nl = strlen(name);
    json_array_foreach(json_object_get(body, "Env"), i, v) {
        const char *kv = json_string_value(v);
        if (kv && strncmp(kv, name, nl) == 0 && kv[nl] == '=')
            return kv + nl + 1;
    }
    return NULL;
}

static void test_create_body(void)
{
    struct docker_create c = {
        .image = "switchboard-sim-worker:dev", .network = "host", .instance_id = "inst1",
        .user = "1000:1000", .bind_source = "/srv/sessions/worker_7", .listen = "127.0.0.1:20007",
        .address = "127.0.0.1:20007", .tz = NULL, .start = 123456789012345LL, .memory_mb = 256,
        .cpu_millicores = 1500, .log_max_bytes = 1048576,
    };
    char *text = docker_create_body(&c, &spec);
    json_t *b = json_loads(text, 0, NULL);
    CHECK(b != NULL, "the body is JSON");
    CHECK_EQ_STR(json_string_value(json_object_get(b, "Image")), "switchboard-sim-worker:dev", "image");
    CHECK_EQ_STR(json_string_value(json_object_get(b, "User")), "1000:1000", "user");
    static const char *want[][2] = {
        {"SESSION_ID", "worker_7"}, {"PROXY_URL", "socks5h://u:pw@10.1.1.1:1080"},
        {"WEBHOOK_URL", "http://127.0.0.1:3000/webhook"}, {"WEBHOOK_SECRET", "abc123"},
        {"AUTH_DIR", "/auth"}, {"WORKER_LISTEN", "127.0.0.1:20007"},
        {"LOGIN_METHOD", "pairing_code"}, {"PAIRING_PHONE", "972501234567"},
        {"SWITCHBOARD_INSTANCE", "inst1"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *v = env_of(b, want[i][0]);
        CHECK(v && strcmp(v, want[i][1]) == 0, "env %s=%s (got %s)", want[i][0], want[i][1], v ? v : "none");
    }
    CHECK(env_of(b, "TZ") == NULL, "no TZ when none is given");
    json_t *l = json_object_get(b, "Labels");
    CHECK_EQ_STR(json_string_value(json_object_get(l, DOCKER_LABEL_INSTANCE)), "inst1", "instance label");
    CHECK_EQ_STR(json_string_value(json_object_get(l, DOCKER_LABEL_SESSION)), "worker_7", "session label");
    CHECK_EQ_STR(json_string_value(json_object_get(l, DOCKER_LABEL_START)), "123456789012345", "start label");
    CHECK_EQ_STR(json_string_value(json_object_get(l, DOCKER_LABEL_ADDRESS)), "127.0.0.1:20007", "address label");
    json_t *h = json_object_get(b, "HostConfig");
    CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(h, "Binds"), 0)),
                 "/srv/sessions/worker_7:/auth:rw", "the auth dir is mounted");
    CHECK_EQ_STR(json_string_value(json_object_get(h, "NetworkMode")), "host", "network");
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(h, "RestartPolicy"), "Name")), "no",
                 "no engine restarts");
    CHECK(json_integer_value(json_object_get(h, "Memory")) == 256LL * 1024 * 1024, "memory limit");
    CHECK(json_integer_value(json_object_get(h, "MemorySwap")) == 256LL * 1024 * 1024, "no swap on top");
    CHECK(json_integer_value(json_object_get(h, "NanoCpus")) == 1500000000LL, "cpu limit");
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(json_object_get(h, "LogConfig"), "Config"), "max-size")),
                 "1048576", "log cap");
    json_decref(b);
    free(text);

    c.memory_mb = 0;
    c.cpu_millicores = 0;
    c.tz = "Asia/Jerusalem";
    text = docker_create_body(&c, &spec);
    b = json_loads(text, 0, NULL);
    h = json_object_get(b, "HostConfig");
    CHECK(!json_object_get(h, "Memory") && !json_object_get(h, "NanoCpus"), "0 = no limits");
    CHECK_EQ_STR(env_of(b, "TZ"), "Asia/Jerusalem", "TZ passed on");
    json_decref(b);
    free(text);

    char name[DOCKER_NAME_MAX];
    docker_container_name(42, name, sizeof name);
    CHECK_EQ_STR(name, "wa_session_42", "container name");
}

static void test_list(void)
{
    const char *j =
        "[{\"Id\":\"aaa111\",\"State\":\"running\",\"Status\":\"Up 3 minutes\",\"Labels\":{"
        "\"switchboard.instance\":\"me\",\"switchboard.session\":\"worker_1\","
        "\"switchboard.start\":\"77\",\"switchboard.address\":\"127.0.0.1:20001\"}},"
        "{\"Id\":\"bbb222\",\"State\":\"exited\",\"Status\":\"Exited (3) 2 seconds ago\",\"Labels\":{"
        "\"switchboard.instance\":\"me\",\"switchboard.session\":\"worker_2\"}},"
        "{\"Id\":\"ccc333\",\"State\":\"running\",\"Labels\":{\"switchboard.instance\":\"other\","
        "\"switchboard.session\":\"worker_3\"}},"
        "{\"Id\":\"ddd444\",\"State\":\"running\",\"Labels\":{\"switchboard.instance\":\"me\"}},"
        "{\"State\":\"running\",\"Labels\":null}, 5, \"x\"]";
    struct docker_found f[8];
    int n = docker_parse_list(j, strlen(j), "me", f, 8);
    CHECK_EQ_INT(n, 2, "only this instance's containers with a session label");
    CHECK_EQ_STR(f[0].id, "aaa111", "id");
    CHECK_EQ_STR(f[0].session, "worker_1", "session");
    CHECK_EQ_STR(f[0].address, "127.0.0.1:20001", "address");
    CHECK(f[0].start == 77 && f[0].running && f[0].exit_code == -1, "running, start token");
    CHECK(!f[1].running && f[1].exit_code == 3 && f[1].start == 0, "exited with its code");
    CHECK_EQ_INT(docker_parse_list(j, strlen(j), "me", f, 1), 1, "at most max");
    CHECK_EQ_INT(docker_parse_list("{}", 2, "me", f, 8), -1, "not an array");
    CHECK_EQ_INT(docker_parse_list("[", 1, "me", f, 8), -1, "not JSON");
}

static void test_event(void)
{
    struct docker_event ev;
    const char *die = "{\"status\":\"die\",\"id\":\"abc\",\"Type\":\"container\",\"Action\":\"die\","
                      "\"Actor\":{\"ID\":\"abc\",\"Attributes\":{\"exitCode\":\"137\",\"name\":\"wa_session_1\"}},"
                      "\"time\":1700000000,\"timeNano\":1700000000123456789}";
    CHECK_EQ_INT(docker_parse_event(die, strlen(die), &ev), 0, "a die event");
    CHECK_EQ_STR(ev.id, "abc", "its container");
    CHECK_EQ_STR(ev.action, "die", "action");
    CHECK(ev.exit_code == 137 && ev.time == 1700000000, "exit code and time");
    const char *noexit = "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"abc\"}}";
    CHECK(docker_parse_event(noexit, strlen(noexit), &ev) == 0 && ev.exit_code == -1, "no exit code: -1");
    const char *bad[] = {
        "{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":{\"ID\":\"n1\"}}",
        "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{}}",
        "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"a\",\"Attributes\":{\"exitCode\":\"999\"}}}",
        "not json", "[]", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = docker_parse_event(bad[i], strlen(bad[i]), &ev);
        if (i == 2)
            CHECK(rc == 0 && ev.exit_code == -1, "an out-of-range exit code is unknown");
        else
            CHECK_EQ_INT(rc, -1, "not a container event: %s", bad[i]);
    }
}

struct got {
    char lines[8][64];
    int n;
};

static void on_line(const char *line, size_t len, void *arg)
{
    struct got *g = arg;
    if (g->n < 8)
        snprintf(g->lines[g->n++], 64, "%.*s", (int)len, line);
}

static void test_lines(void)
{
    struct docker_lines l;
    docker_lines_init(&l, 16);
    struct got g = {0};
    docker_lines_feed(&l, "ab", 2, on_line, &g);
    docker_lines_feed(&l, "c\nde\n\nf", 7, on_line, &g);
    CHECK_EQ_INT(g.n, 2, "two whole lines, the empty one skipped");
    CHECK(strcmp(g.lines[0], "abc") == 0 && strcmp(g.lines[1], "de") == 0, "pieces joined across feeds");
    docker_lines_feed(&l, "0123456789abcdefXYZ", 19, on_line, &g);
    docker_lines_feed(&l, "more\nok\n", 8, on_line, &g);
    CHECK_EQ_INT(g.n, 3, "an over-long line is dropped whole");
    CHECK_EQ_STR(g.lines[2], "ok", "and the next one is whole");
    docker_lines_free(&l);
}

static void test_demux(void)
{
    const unsigned char framed[] = {1, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c',
                                    2, 0, 0, 0, 0, 0, 0, 2, 'd', 'e',
                                    1, 0, 0, 0, 0, 0, 0, 9, 'f'}; /* the last frame cut short */
    char out[32];
    size_t n = docker_demux(framed, sizeof framed, out, sizeof out);
    CHECK(n == 6 && memcmp(out, "abcdef", 6) == 0, "frames joined, a cut frame kept as far as it goes");
    n = docker_demux(framed, sizeof framed, out, 4);
    CHECK(n == 4 && memcmp(out, "abcd", 4) == 0, "bounded by the output");
    const unsigned char plain[] = "hello\n";
    n = docker_demux(plain, 6, out, sizeof out);
    CHECK(n == 6 && memcmp(out, "hello\n", 6) == 0, "an unframed (TTY) stream as is");
}

static void test_small_parsers(void)
{
    char id[DOCKER_ID_MAX], msg[128], inst[32];
    const char *ok = "{\"Id\":\"4f2a9c0e1b3d5f7a\",\"Warnings\":[]}";
    CHECK(docker_parse_id(ok, strlen(ok), id, sizeof id) == 0 && strcmp(id, "4f2a9c0e1b3d5f7a") == 0, "create id");
    const char *bad = "{\"Id\":\"../../etc\"}";
    CHECK_EQ_INT(docker_parse_id(bad, strlen(bad), id, sizeof id), -1, "an id is hex");
    const char *m = "{\"message\":\"No such image: x:dev\"}";
    docker_parse_message(m, strlen(m), 404, msg, sizeof msg);
    CHECK_EQ_STR(msg, "No such image: x:dev", "engine message");
    docker_parse_message("oops", 4, 500, msg, sizeof msg);
    CHECK_EQ_STR(msg, "the engine answered 500", "no message: the status");
    int running = 0;
    const char *insp = "{\"Config\":{\"Labels\":{\"switchboard.instance\":\"me\"}},\"State\":{\"Running\":true}}";
    CHECK(docker_parse_inspect(insp, strlen(insp), inst, sizeof inst, &running) == 0 && running &&
              strcmp(inst, "me") == 0, "inspect: instance and running");
    const char *foreign = "{\"Config\":{\"Labels\":{}},\"State\":{\"Running\":false}}";
    CHECK(docker_parse_inspect(foreign, strlen(foreign), inst, sizeof inst, &running) == 0 && !running &&
              inst[0] == '\0', "a foreign container has no instance");
}

int main(void)
{
    test_create_body();
    test_list();
    test_event();
    test_lines();
    test_demux();
    test_small_parsers();
    return TAP_DONE();
}
