#include "hmac.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

struct hmac_key {
    EVP_MAC_CTX *ctx; /* keyed, never finalised: duplicated for each message */
};

/* fetched once: OpenSSL 3 looks the algorithm up on every one-shot call otherwise */
static EVP_MAC *hmac_alg(void)
{
    static EVP_MAC *mac;
    if (!mac && !(mac = EVP_MAC_fetch(NULL, "HMAC", NULL)))
        abort();
    return mac;
}

static EVP_MAC_CTX *keyed(const void *key, size_t keylen)
{
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                            OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(hmac_alg());
    /* an empty key is valid HMAC; OpenSSL wants a non-NULL pointer for it */
    if (!c || !EVP_MAC_init(c, keylen ? key : (const void *)"", keylen, params))
        abort();
    return c;
}

static void finish(EVP_MAC_CTX *c, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    if (!EVP_MAC_final(c, md, &mdlen, sizeof md))
        abort();
    EVP_MAC_CTX_free(c);
    to_hex(md, mdlen, out);
}

static void update(EVP_MAC_CTX *c, const void *p, size_t n)
{
    if (n && !EVP_MAC_update(c, p, n))
        abort();
}

void hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen, char *out)
{
    EVP_MAC_CTX *c = keyed(key, keylen);
    update(c, msg, msglen);
    finish(c, out);
}

struct hmac_key *hmac_key_new(const void *key, size_t keylen)
{
    struct hmac_key *k = malloc(sizeof *k);
    if (!k)
        abort();
    k->ctx = keyed(key, keylen);
    return k;
}

void hmac_key_free(struct hmac_key *k)
{
    if (!k)
        return;
    EVP_MAC_CTX_free(k->ctx);
    free(k);
}

static void sign_with(EVP_MAC_CTX *c, const char *ts, const void *body, size_t bodylen, char *out)
{
    update(c, ts, strlen(ts));
    update(c, ".", 1);
    update(c, body, bodylen);
    finish(c, out);
}

void hmac_key_sign_ts_body(const struct hmac_key *k, const char *ts, const void *body, size_t bodylen,
                           char *out)
{
    EVP_MAC_CTX *c = EVP_MAC_CTX_dup(k->ctx);
    if (!c)
        abort();
    sign_with(c, ts, body, bodylen, out);
}

void hmac_sign_ts_body(const char *key, const char *ts, const void *body, size_t bodylen, char *out)
{
    sign_with(keyed(key, strlen(key)), ts, body, bodylen, out);
}

void hmac_sha256_plain_hex(const void *data, size_t len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL))
        abort();
    to_hex(md, mdlen, out);
}

int hmac_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

/* RAND_bytes costs a provider lookup and a fork check on every call: small draws (message
 * ids, jitter) come from a per-thread pool that RAND_bytes refills 256 bytes at a time.
 * Each byte is handed out once and wiped; a child after fork starts with an empty pool. */
static __thread unsigned char pool[256];
static __thread size_t pool_left;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void pool_forget(void)
{
    OPENSSL_cleanse(pool, sizeof pool);
    pool_left = 0;
}

static void atfork_init(void) { pthread_atfork(NULL, NULL, pool_forget); }

static int random_bytes(unsigned char *out, size_t n)
{
    pthread_once(&atfork_once, atfork_init);
    if (pool_left < n) {
        if (RAND_bytes(pool, sizeof pool) != 1)
            return -1;
        pool_left = sizeof pool;
    }
    unsigned char *p = pool + sizeof pool - pool_left;
    memcpy(out, p, n);
    OPENSSL_cleanse(p, n);
    pool_left -= n;
    return 0;
}

int hmac_random_hex(char *out, size_t nbytes)
{
    unsigned char buf[64];
    if (nbytes > sizeof buf || random_bytes(buf, nbytes) < 0)
        return -1;
    to_hex(buf, nbytes, out);
    OPENSSL_cleanse(buf, nbytes);
    return 0;
}

double hmac_random01(void)
{
    uint64_t v = 0;
    if (random_bytes((unsigned char *)&v, sizeof v) < 0)
        abort();
    return (double)(v >> 11) / 9007199254740992.0; /* 2^53 */
}
