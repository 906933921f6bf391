#include "docker.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "util.h"

void docker_container_name(int64_t id, char *out, size_t outlen)
{
    snprintf(out, outlen, "wa_session_%lld", (long long)id);
}

static void add_env(json_t *env, const char *name, const char *value)
{
    char *kv = xasprintf("%s=%s", name, value ? value : "");
    json_array_append_new(env, json_string(kv));
    free(kv);
}

char *docker_create_body(const struct docker_create *c, const struct worker_spec *s)
{
    json_t *env = json_array();
    add_env(env, "SESSION_ID", s->session);
    add_env(env, "PROXY_URL", s->proxy_url);
    add_env(env, "WEBHOOK_URL", s->webhook_url);
    add_env(env, "WEBHOOK_SECRET", s->worker_key);
    add_env(env, "AUTH_DIR", DOCKER_AUTH_MOUNT);
    add_env(env, "WORKER_LISTEN", c->listen);
    add_env(env, "LOGIN_METHOD", s->login_method);
    add_env(env, "PAIRING_PHONE", s->pairing_phone);
    add_env(env, "SWITCHBOARD_INSTANCE", c->instance_id);
    add_env(env, "HOME", "/tmp");
    if (c->tz)
        add_env(env, "TZ", c->tz);

    char start[24];
    snprintf(start, sizeof start, "%lld", (long long)c->start);
    json_t *labels = json_pack("{s:s, s:s, s:s, s:s, s:s}", "switchboard", "worker",
                               DOCKER_LABEL_INSTANCE, c->instance_id, DOCKER_LABEL_SESSION,
                               s->session, DOCKER_LABEL_START, start, DOCKER_LABEL_ADDRESS,
                               c->address);

    char *bind = xasprintf("%s:%s:rw", c->bind_source, DOCKER_AUTH_MOUNT);
    char logmax[24];
    snprintf(logmax, sizeof logmax, "%ld", c->log_max_bytes);
    /* the daemon decides restarts (never the engine), and the container is hardened: no
     * capabilities, no privilege gain, a read-only root with a small /tmp, bounded pids */
    json_t *host = json_pack(
        "{s:[s], s:s, s:{s:s}, s:{s:s, s:{s:s, s:s}}, s:[s], s:[s], s:b, s:{s:s}, s:I}",
        "Binds", bind, "NetworkMode", c->network, "RestartPolicy", "Name", "no", "LogConfig",
        "Type", "json-file", "Config", "max-size", logmax, "max-file", "2", "CapDrop", "ALL",
        "SecurityOpt", "no-new-privileges", "ReadonlyRootfs", 1, "Tmpfs", "/tmp",
        "rw,nosuid,nodev,size=64m", "PidsLimit", (json_int_t)512);
    if (c->memory_mb > 0) {
        json_int_t bytes = (json_int_t)c->memory_mb * 1024 * 1024;
        json_object_set_new(host, "Memory", json_integer(bytes));
        json_object_set_new(host, "MemorySwap", json_integer(bytes)); /* no swap on top */
    }
    if (c->cpu_millicores > 0)
        json_object_set_new(host, "NanoCpus", json_integer((json_int_t)c->cpu_millicores * 1000000));

    json_t *body = json_pack("{s:s, s:o, s:o, s:s, s:s, s:o}", "Image", c->image, "Env", env,
                             "Labels", labels, "User", c->user, "StopSignal", "SIGTERM",
                             "HostConfig", host);
    char *out = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    free(bind);
    return out;
}

static const char *obj_str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static int copy_str(char *out, size_t outlen, const char *v)
{
    size_t l = strlen(v);
    if (l == 0 || l >= outlen)
        return -1;
    memcpy(out, v, l + 1);
    return 0;
}

static int64_t parse_start(const char *v)
{
    long n;
    /* util_parse_long bounds it; a token is positive */
    return util_parse_long(v, 1, INT64_MAX, &n) == 0 ? (int64_t)n : 0;
}

int docker_parse_list(const char *json, size_t len, const char *instance_id,
                      struct docker_found *out, int max)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    if (!json_is_array(root)) {
        json_decref(root);
        return -1;
    }
    int n = 0;
    size_t i;
    json_t *c;
    json_array_foreach(root, i, c) {
        if (n >= max)
            break;
        json_t *labels = json_object_get(c, "Labels");
        if (strcmp(obj_str(labels, DOCKER_LABEL_INSTANCE), instance_id) != 0)
            continue;
        struct docker_found f = {.exit_code = -1};
        if (copy_str(f.id, sizeof f.id, obj_str(c, "Id")) < 0 ||
            copy_str(f.session, sizeof f.session, obj_str(labels, DOCKER_LABEL_SESSION)) < 0)
            continue;
        copy_str(f.address, sizeof f.address, obj_str(labels, DOCKER_LABEL_ADDRESS));
        f.start = parse_start(obj_str(labels, DOCKER_LABEL_START));
        f.running = strcmp(obj_str(c, "State"), "running") == 0;
        int code;
        if (sscanf(obj_str(c, "Status"), "Exited (%d)", &code) == 1)
            f.exit_code = code;
        out[n++] = f;
    }
    json_decref(root);
    return n;
}

int docker_parse_id(const char *json, size_t len, char *id, size_t idlen)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    int rc = -1;
    const char *v = obj_str(root, "Id");
    size_t l = strlen(v);
    if (l >= 12 && l < idlen && strspn(v, "0123456789abcdef") == l) {
        memcpy(id, v, l + 1);
        rc = 0;
    }
    json_decref(root);
    return rc;
}

void docker_parse_message(const char *json, size_t len, long status, char *out, size_t outlen)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    const char *m = obj_str(root, "message");
    if (m[0])
        snprintf(out, outlen, "%s", m);
    else
        snprintf(out, outlen, "the engine answered %ld", status);
    util_utf8_fix(out);
    json_decref(root);
}

int docker_parse_inspect(const char *json, size_t len, char *instance, size_t ilen, int *running)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return -1;
    }
    json_t *labels = json_object_get(json_object_get(root, "Config"), "Labels");
    snprintf(instance, ilen, "%s", obj_str(labels, DOCKER_LABEL_INSTANCE));
    *running = json_is_true(json_object_get(json_object_get(root, "State"), "Running"));
    json_decref(root);
    return 0;
}

int docker_parse_event(const char *line, size_t len, struct docker_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->exit_code = -1;
    json_t *root = json_loadb(line, len, 0, NULL);
    int rc = -1;
    if (!json_is_object(root) || strcmp(obj_str(root, "Type"), "container") != 0)
        goto out;
    json_t *actor = json_object_get(root, "Actor");
    if (copy_str(ev->id, sizeof ev->id, obj_str(actor, "ID")) < 0 ||
        copy_str(ev->action, sizeof ev->action, obj_str(root, "Action")) < 0)
        goto out;
    long code;
    if (util_parse_long(obj_str(json_object_get(actor, "Attributes"), "exitCode"), 0, 255, &code) == 0)
        ev->exit_code = (int)code;
    json_t *t = json_object_get(root, "time");
    if (json_is_integer(t) && json_integer_value(t) > 0)
        ev->time = json_integer_value(t);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

void docker_lines_init(struct docker_lines *l, size_t max)
{
    memset(l, 0, sizeof *l);
    l->max = max;
    l->buf = xmalloc(max);
}

void docker_lines_feed(struct docker_lines *l, const char *data, size_t n,
                       void (*cb)(const char *line, size_t len, void *arg), void *arg)
{
    while (n) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        if (!l->dropping) {
            if (l->len + take > l->max) {
                l->dropping = 1;
                l->len = 0;
            } else {
                memcpy(l->buf + l->len, data, take);
                l->len += take;
            }
        }
        if (!nl)
            return;
        if (!l->dropping && l->len)
            cb(l->buf, l->len, arg);
        l->len = 0;
        l->dropping = 0;
        data = nl + 1;
        n -= take + 1;
    }
}

void docker_lines_free(struct docker_lines *l)
{
    free(l->buf);
    l->buf = NULL;
}

size_t docker_demux(const unsigned char *in, size_t len, char *out, size_t outcap)
{
    size_t o = 0;
    int framed = len >= 8 && in[0] <= 2 && !in[1] && !in[2] && !in[3];
    if (!framed) {
        o = len < outcap ? len : outcap;
        memcpy(out, in, o);
        return o;
    }
    size_t p = 0;
    while (p + 8 <= len && o < outcap) {
        size_t sz = ((size_t)in[p + 4] << 24) | ((size_t)in[p + 5] << 16) | ((size_t)in[p + 6] << 8) | in[p + 7];
        p += 8;
        if (sz > len - p)
            sz = len - p;
        if (sz > outcap - o)
            sz = outcap - o;
        memcpy(out + o, in + p, sz);
        o += sz;
        p += sz;
    }
    return o;
}
