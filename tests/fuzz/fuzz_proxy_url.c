/* libFuzzer target: proxy URLs (proxy_url_parse and proxy_mask in src/proxy.h). The mask
 * must never carry the credentials: checked directly and by a non-interference test
 * (other credentials of the same length must give the same mask). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

#define INPUT_MAX (PROXY_URL_MAX + 64)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char url[INPUT_MAX + 1], other[INPUT_MAX + 1];
    if (size > INPUT_MAX)
        size = INPUT_MAX;
    memcpy(url, data, size);
    url[size] = '\0';

    struct proxy_url u;
    char err[256], masked[PROXY_URL_MAX + 32], masked2[PROXY_URL_MAX + 32];
    int rc = proxy_url_parse(url, &u, err, sizeof err);
    proxy_mask(url, masked, sizeof masked);
    if (rc < 0) {
        if (strcmp(masked, "invalid") != 0)
            abort();
        return 0;
    }
    if (u.port < 1 || u.port > 65535 || u.host[0] == '\0' ||
        strncmp(masked, "socks5h://", 10) != 0)
        abort();
    if (!u.has_credentials) {
        if (strstr(masked, "***@"))
            abort();
        return 0;
    }
    if (strncmp(masked, "socks5h://***@", 14) != 0)
        abort();

    /* the credentials: between "://" and the '@' that ends them */
    const char *cs = strstr(url, "://") + 3;
    const char *at = strrchr(cs, '@');
    if (!at || at == cs)
        abort();
    size_t cl = (size_t)(at - cs);
    char creds[INPUT_MAX + 1];
    memcpy(creds, cs, cl);
    creds[cl] = '\0';

    /* direct check: after its 14-byte prefix (scheme, "***@") the mask holds host:port,
     * copied from after the '@' (the port maybe without leading zeros or a trailing '/').
     * Credentials free of ':', '*' and '@' cannot straddle those parts, so if they show up
     * in the mask's host:port they must show up in the input's host:port too. */
    if (cl >= 4 && !strpbrk(creds, ":*@") && strstr(masked + 14, creds) && !strstr(at + 1, creds))
        abort();

    /* non-interference: replace every credential byte but the ':' separators (the user
     * and password lengths are limited separately, so their split must stay) and mask
     * again */
    memcpy(other, url, size + 1);
    for (size_t i = 0; i < cl; i++) {
        char *c = other + (cs - url) + i;
        if (*c != ':')
            *c = *c == 'x' ? 'y' : 'x';
    }
    proxy_mask(other, masked2, sizeof masked2);
    if (strcmp(masked, masked2) != 0)
        abort();
    return 0;
}
