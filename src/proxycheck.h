/* proxycheck: tries bad proxies again. PROXY_RECHECK_MS after a proxy was marked bad, a
 * SOCKS5 handshake (with username/password authentication when the URL has them) tells
 * whether it works again; if so the proxy is ok and sessions waiting for one get it. */
#ifndef SB_PROXYCHECK_H
#define SB_PROXYCHECK_H

struct event_base;

/* interval_ms 0 turns re-checks off. 0 or -1. */
int proxycheck_init(struct event_base *base, long interval_ms);
void proxycheck_shutdown(void);

/* One SOCKS5 client exchange, pure: given what the proxy answered so far, what to send
 * next. Returns 1 when the handshake succeeded, 0 when more is needed (and *out/outlen
 * hold the next bytes to send, possibly none), -1 with a reason when it failed. */
struct socks_state {
    int step; /* 0: greeting sent, 1: authentication sent */
    int auth; /* credentials are offered */
    char user[256], pass[256];
};
int proxycheck_greeting(struct socks_state *st, unsigned char *out, int *outlen);
int proxycheck_step(struct socks_state *st, const unsigned char *in, int inlen, unsigned char *out,
                    int *outlen, const char **why);

#endif
