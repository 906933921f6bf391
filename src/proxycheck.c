#include "proxycheck.h"

#include <event2/bufferevent.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "session.h"
#include "util.h"

#define CHECK_TIMEOUT_S 5

struct probe {
    int64_t proxy_id;
    struct bufferevent *bev;
    struct socks_state st;
    struct probe *next;
};

static struct event_base *evbase;
static struct evdns_base *dns;
static long interval;
static struct probe *probes;

int proxycheck_greeting(struct socks_state *st, unsigned char *out, int *outlen)
{
    /* version 5, one method: username/password (2) when we have them, else none (0) */
    out[0] = 5;
    out[1] = 1;
    out[2] = st->auth ? 2 : 0;
    *outlen = 3;
    st->step = 0;
    return 0;
}

int proxycheck_step(struct socks_state *st, const unsigned char *in, int inlen, unsigned char *out,
                    int *outlen, const char **why)
{
    *outlen = 0;
    if (inlen < 2)
        return 0;
    if (st->step == 0) {
        if (in[0] != 5) {
            *why = "not a SOCKS5 server";
            return -1;
        }
        if (in[1] == 0 && !st->auth)
            return 1;
        if (in[1] != 2 || !st->auth) {
            *why = st->auth ? "the proxy refused username/password authentication"
                            : "the proxy wants authentication the URL does not give";
            return -1;
        }
        size_t ul = strlen(st->user), pl = strlen(st->pass);
        out[0] = 1;
        out[1] = (unsigned char)ul;
        memcpy(out + 2, st->user, ul);
        out[2 + ul] = (unsigned char)pl;
        memcpy(out + 3 + ul, st->pass, pl);
        *outlen = (int)(3 + ul + pl);
        st->step = 1;
        return 0;
    }
    if (in[0] != 1 || in[1] != 0) {
        *why = "the proxy rejected the credentials";
        return -1;
    }
    return 1;
}

static void probe_end(struct probe *pr, int ok, const char *why)
{
    for (struct probe **pp = &probes; *pp; pp = &(*pp)->next) {
        if (*pp == pr) {
            *pp = pr->next;
            break;
        }
    }
    bufferevent_free(pr->bev);
    struct proxy *p = pool_get(pr->proxy_id);
    memset(&pr->st, 0, sizeof pr->st); /* the credentials leave memory with the probe */
    if (p && p->status == PROXY_BAD) {
        if (ok) {
            log_info("proxycheck", "proxy works again id=%lld", (long long)p->id);
            pool_reset(p);
            session_retry_waiting();
        } else {
            char msg[TEXT_MAX];
            snprintf(msg, sizeof msg, "re-check failed: %s", why);
            log_info("proxycheck", "proxy still bad id=%lld reason=\"%s\"", (long long)p->id, why);
            pool_mark_bad(p, msg, util_now_ms());
        }
    }
    free(pr);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct probe *pr = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    unsigned char buf[8], out[600];
    int outlen;
    const char *why = "";
    if (evbuffer_get_length(in) < 2)
        return;
    int n = (int)evbuffer_remove(in, buf, 2);
    int rc = proxycheck_step(&pr->st, buf, n, out, &outlen, &why);
    if (rc != 0) {
        probe_end(pr, rc == 1, why);
        return;
    }
    bufferevent_write(bev, out, (size_t)outlen);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct probe *pr = arg;
    if (what & BEV_EVENT_CONNECTED) {
        unsigned char out[4];
        int outlen;
        proxycheck_greeting(&pr->st, out, &outlen);
        bufferevent_write(bev, out, (size_t)outlen);
        return;
    }
    probe_end(pr, 0, what & BEV_EVENT_TIMEOUT ? "no answer in time"
                     : what & BEV_EVENT_EOF  ? "the proxy closed the connection"
                                             : "cannot connect to the proxy");
}

static int probing(int64_t id)
{
    for (struct probe *p = probes; p; p = p->next)
        if (p->proxy_id == id)
            return 1;
    return 0;
}

static void start_probe(struct proxy *p)
{
    struct proxy_url u;
    char err[200];
    if (proxy_url_parse(p->url, &u, err, sizeof err) < 0)
        return;
    struct probe *pr = xcalloc(1, sizeof *pr);
    pr->proxy_id = p->id;
    pr->st.auth = u.has_credentials;
    memcpy(pr->st.user, u.user, sizeof pr->st.user);
    memcpy(pr->st.pass, u.pass, sizeof pr->st.pass);
    pr->bev = bufferevent_socket_new(evbase, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(pr->bev, read_cb, NULL, event_cb, pr);
    struct timeval tv = {CHECK_TIMEOUT_S, 0};
    bufferevent_set_timeouts(pr->bev, &tv, &tv);
    bufferevent_enable(pr->bev, EV_READ | EV_WRITE);
    pr->next = probes;
    probes = pr;
    if (bufferevent_socket_connect_hostname(pr->bev, dns, AF_UNSPEC, u.host, u.port) < 0)
        probe_end(pr, 0, "cannot start a connection");
    memset(&u, 0, sizeof u); /* it held the credentials */
}

static void recheck_job(void)
{
    int64_t now = util_now_ms();
    size_t n;
    struct proxy *const *all = pool_all(&n);
    /* a copy of the ids: a probe that fails at once changes the pool's entries */
    int64_t ids[256];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof ids / sizeof ids[0]; i++)
        if (all[i]->status == PROXY_BAD && now - all[i]->bad_at >= interval && !probing(all[i]->id))
            ids[k++] = all[i]->id;
    for (size_t i = 0; i < k; i++) {
        struct proxy *p = pool_get(ids[i]);
        if (p)
            start_probe(p);
    }
}

int proxycheck_init(struct event_base *base, long interval_ms)
{
    evbase = base;
    interval = interval_ms;
    if (interval_ms <= 0)
        return 0;
    dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (!dns)
        dns = evdns_base_new(base, 0); /* no resolv.conf: numeric hosts still work */
    if (!dns)
        return -1;
    /* tick at a fraction of the interval, so a proxy waits at most ~1.25 intervals */
    long t = interval_ms / 4 < 100 ? 100 : interval_ms / 4;
    cron_every("proxies.recheck", t, 0, recheck_job);
    return 0;
}

void proxycheck_shutdown(void)
{
    while (probes) {
        struct probe *pr = probes;
        probes = pr->next;
        bufferevent_free(pr->bev);
        free(pr);
    }

    if (dns)
        evdns_base_free(dns, 0);
    dns = NULL;
}
