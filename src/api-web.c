/* api-web: the dashboard's login (an HttpOnly, SameSite=Strict session cookie of which the
 * store keeps only a hash) and its pages, served from WEB_DIR. A page other than the login
 * page redirects to it without a valid login; scripts and styles hold no secret and are
 * served to anyone. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "apiparse.h"
#include "config.h"
#include "hmac.h"
#include "http.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define FILE_NAME_MAX 64
#define PAGE_MAX (4 * 1024 * 1024)

static const struct config *cfg;
static char *web_dir;

static void set_cookie(struct http_req *r, const char *token, long max_age_s)
{
    char c[200];
    snprintf(c, sizeof c, "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%ld", HTTP_SESSION_COOKIE, token,
             max_age_s);
    http_set_header(r, "Set-Cookie", c);
}

static void login(struct http_req *r)
{
    json_t *body = http_json_object(r);
    if (!body)
        return;
    static const char *const keys[] = {"apiKey", NULL};
    char err[120];
    json_t *k = json_object_get(body, "apiKey");
    int64_t tenant;
    int admin;
    if (!apiparse_only_keys(body, keys, err, sizeof err) || !json_is_string(k)) {
        json_decref(body);
        http_reply_error(r, 400, "INVALID_REQUEST", "the body must be {\"apiKey\": \"…\"}");
        return;
    }
    int bad = http_key_check(json_string_value(k), &tenant, &admin) < 0;
    json_decref(body);
    if (bad) {
        http_reply_error(r, 401, "UNAUTHORIZED", "that API key is not valid");
        return;
    }
    char token[65], hash[HMAC_HEX_LEN + 1];
    if (hmac_random_hex(token, 32) < 0) {
        http_reply_error(r, 500, "INTERNAL", "no randomness for a session");
        return;
    }
    http_key_hash(token, hash);
    int64_t now = util_now_ms();
    store_web_prune(now);
    if (store_web_insert(hash, tenant, admin, now, now + cfg->dashboard_session_ms) != STORE_OK) {
        http_reply_error(r, 500, "STORE_ERROR", "the login could not be stored");
        return;
    }
    set_cookie(r, token, cfg->dashboard_session_ms / 1000);
    memset(token, 0, sizeof token);
    log_info("web", "dashboard login tenant=%lld admin=%d", (long long)tenant, admin);
    http_reply_json(r, 200, json_pack("{s:I,s:b}", "tenantId", (json_int_t)tenant, "admin", admin));
}

static void logout(struct http_req *r)
{
    char token[80], hash[HMAC_HEX_LEN + 1];
    if (http_cookie(r, HTTP_SESSION_COOKIE, token, sizeof token) == 0) {
        http_key_hash(token, hash);
        store_web_delete(hash);
    }
    set_cookie(r, "", 0);
    http_reply_json(r, 200, json_pack("{s:b}", "loggedOut", 1));
}

static void me(struct http_req *r)
{
    http_reply_json(r, 200, json_pack("{s:I,s:b}", "tenantId", (json_int_t)http_tenant(r), "admin", http_is_admin(r)));
}

/* ---- pages ---- */

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
        {".png", "image/png"},                 {".ico", "image/x-icon"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

static void serve(struct http_req *r, const char *name)
{
    const char *type = content_type(name);
    size_t l = strlen(name);
    if (!type || l >= FILE_NAME_MAX || name[0] == '.' ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != l) {
        http_reply_error(r, 404, "NOT_FOUND", "no page %.64s", name);
        return;
    }
    int64_t tenant;
    int admin;
    if (strcmp(type, "text/html; charset=utf-8") == 0 && strcmp(name, "login.html") != 0 &&
        http_web_session(r, &tenant, &admin) < 0) {
        http_set_header(r, "Location", "/login.html");
        http_reply_raw(r, 302, "text/plain; charset=utf-8", "", 0);
        return;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", web_dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > PAGE_MAX) {
        if (fd >= 0)
            close(fd);
        http_reply_error(r, 404, "NOT_FOUND", "no page %.64s", name);
        return;
    }
    /* no inline script or style, nothing from elsewhere */
    http_set_header(r, "Content-Security-Policy",
                    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'");
    http_set_header(r, "X-Frame-Options", "DENY");
    http_reply_file(r, fd, (size_t)st.st_size, type);
}

static void page_root(struct http_req *r) { serve(r, "index.html"); }
static void page(struct http_req *r) { serve(r, http_param(r, 0)); }

static const struct http_route routes[] = {
    {"POST", "/api/login", AUTH_NONE, login},
    {"POST", "/api/logout", AUTH_NONE, logout},
    {"GET", "/api/me", AUTH_TENANT, me},
    {"GET", "/", AUTH_NONE, page_root},
    {"GET", "/{file}", AUTH_NONE, page},
    {NULL, NULL, 0, NULL},
};

/* the web/ of this source tree (the daemon runs from build/) unless WEB_DIR says */
static char *default_web_dir(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return xstrdup("web");
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    return xasprintf("%s/../web", exe);
}

void api_web_register(const struct config *c)
{
    cfg = c;
    free(web_dir);
    web_dir = c->web_dir[0] ? xstrdup(c->web_dir) : default_web_dir();
    http_add_routes(routes);
}
