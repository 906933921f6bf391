/* proxy: pure rules of the proxy pool (SPEC §4.1): URL validation, masking and the
 * least-loaded choice. No I/O; pool.c keeps the pool's state. */
#ifndef SB_PROXY_H
#define SB_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define PROXY_URL_MAX 1024

struct proxy_url {
    char host[256];
    int port;
    int has_credentials;
    char user[256]; /* secrets: never logged or returned */
    char pass[256];
};

/* Validates socks5h://[user[:pass]@]host:port. 0, or -1 with a reason in err
 * (which never contains the credentials). */
int proxy_url_parse(const char *url, struct proxy_url *out, char *err, size_t errlen);

/* "socks5h:// *** @host:port" (without the stars and @ when there are no credentials);
 * "invalid" for a URL that does not parse. */
void proxy_mask(const char *url, char *out, size_t outlen);

/* The ok proxy with room (nsessions < max) usable by tenant (own or shared pool),
 * least loaded first, then the lowest id; skips exclude_id. Returns its index or -1. */
int proxy_pick(struct proxy *const *list, size_t n, int64_t tenant_id, int max_per_proxy,
               int64_t exclude_id);

#endif
