#include "proxy.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static int host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

int proxy_url_parse(const char *url, struct proxy_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(url);
    if (len == 0 || len > PROXY_URL_MAX) {
        snprintf(err, errlen, "proxy URL must be 1 to %d characters", PROXY_URL_MAX);
        return -1;
    }
    const char *scheme_end = strstr(url, "://");
    if (!scheme_end) {
        snprintf(err, errlen, "proxy URL must look like socks5h://user:pass@host:port");
        return -1;
    }
    size_t sl = (size_t)(scheme_end - url);
    if (sl != 7 || strncmp(url, "socks5h", 7) != 0) {
        /* echo the scheme only when it is one: text before a later "://" may hold the password */
        int is_scheme = sl > 0 && sl <= 16;
        for (size_t i = 0; i < sl && is_scheme; i++)
            is_scheme = (url[i] >= 'a' && url[i] <= 'z') || (url[i] >= '0' && url[i] <= '9') ||
                        url[i] == '+' || url[i] == '-' || url[i] == '.';
        if (is_scheme)
            snprintf(err, errlen,
                     "proxy URL scheme must be socks5h:// so that DNS goes through the proxy (got %.*s://)",
                     (int)sl, url);
        else
            snprintf(err, errlen, "proxy URL must start with socks5h:// so that DNS goes through the proxy");
        return -1;
    }
    const char *p = scheme_end + 3;
    const char *at = strrchr(p, '@');
    if (at) {
        if (at == p) {
            snprintf(err, errlen, "proxy URL has an empty user before '@'");
            return -1;
        }
        for (const char *q = p; q < at; q++) {
            if ((unsigned char)*q <= 0x20 || *q == '/') {
                snprintf(err, errlen, "proxy URL credentials contain a space, control character or '/'");
                return -1;
            }
        }
        out->has_credentials = 1;
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ul = colon ? (size_t)(colon - p) : (size_t)(at - p);
        size_t pl = colon ? (size_t)(at - colon - 1) : 0;
        if (ul >= sizeof out->user || pl >= sizeof out->pass) {
            snprintf(err, errlen, "proxy URL user or password is longer than 255 characters");
            return -1;
        }
        memcpy(out->user, p, ul);
        if (colon)
            memcpy(out->pass, colon + 1, pl);
        p = at + 1;
    }
    const char *hs = p, *he;
    const char *portp;
    if (*p == '[') {
        he = strchr(p, ']');
        if (!he || he[1] != ':') {
            snprintf(err, errlen, "proxy URL has a bad IPv6 host; use [addr]:port");
            return -1;
        }
        hs = p + 1;
        portp = he + 2;
        /* an IPv6 address only: hex digits, ':' and '.' (an embedded IPv4), as the
         * worker reads it */
        if (he == hs || strspn(hs, "0123456789abcdefABCDEF:.") < (size_t)(he - hs)) {
            snprintf(err, errlen, "proxy URL has a bad IPv6 host");
            return -1;
        }
    } else {
        he = strrchr(p, ':');
        if (!he) {
            snprintf(err, errlen, "proxy URL needs a port: socks5h://user:pass@host:port");
            return -1;
        }
        portp = he + 1;
        for (const char *q = hs; q < he; q++) {
            if (!host_char_ok(*q)) {
                snprintf(err, errlen, "proxy URL host may hold only letters, digits, '.', '-' and '_'");
                return -1;
            }
        }
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof out->host) {
        snprintf(err, errlen, "proxy URL needs a host: socks5h://user:pass@host:port");
        return -1;
    }
    /* a trailing slash is harmless; anything else after the port is not */
    char portbuf[8];
    size_t pl = strlen(portp);
    if (pl > 0 && portp[pl - 1] == '/')
        pl--;
    long port;
    if (pl == 0 || pl >= sizeof portbuf) {
        snprintf(err, errlen, "proxy URL port must be a number from 1 to 65535");
        return -1;
    }
    memcpy(portbuf, portp, pl);
    portbuf[pl] = '\0';
    /* 1 to 5 digits, as the worker reads it */
    if (pl > 5 || strspn(portbuf, "0123456789") != pl || util_parse_long(portbuf, 1, 65535, &port) < 0) {
        snprintf(err, errlen, "proxy URL port must be a number from 1 to 65535");
        return -1;
    }
    memcpy(out->host, hs, hl);
    out->host[hl] = '\0';
    out->port = (int)port;
    return 0;
}

void proxy_mask(const char *url, char *out, size_t outlen)
{
    struct proxy_url u;
    char err[160];
    if (!url || proxy_url_parse(url, &u, err, sizeof err) < 0) {
        snprintf(out, outlen, "invalid");
        return;
    }
    int v6 = strchr(u.host, ':') != NULL;
    snprintf(out, outlen, "socks5h://%s%s%s%s:%d", u.has_credentials ? "***@" : "", v6 ? "[" : "",
             u.host, v6 ? "]" : "", u.port);
}

int proxy_pick(struct proxy *const *list, size_t n, int64_t tenant_id, int max_per_proxy,
               int64_t exclude_id)
{
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        const struct proxy *p = list[i];
        if (p->status != PROXY_OK || p->id == exclude_id || p->nsessions >= max_per_proxy)
            continue;
        if (p->tenant_id != 0 && p->tenant_id != tenant_id)
            continue;
        if (best < 0 || p->nsessions < list[best]->nsessions ||
            (p->nsessions == list[best]->nsessions && p->id < list[best]->id))
            best = (int)i;
    }
    return best;
}
