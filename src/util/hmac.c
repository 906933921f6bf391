#include "hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
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

void hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, md, &mdlen))
        abort();
    to_hex(md, mdlen, out);
}

void hmac_sign_ts_body(const char *key, const char *ts, const void *body, size_t bodylen, char *out)
{
    /* HMAC_CTX is deprecated in OpenSSL 3; one buffer and the one-shot HMAC() is simpler anyway */
    size_t tslen = strlen(ts);
    char stackbuf[4096];
    char *msg = tslen + 1 + bodylen <= sizeof stackbuf ? stackbuf : malloc(tslen + 1 + bodylen);
    if (!msg)
        abort();
    memcpy(msg, ts, tslen);
    msg[tslen] = '.';
    if (bodylen)
        memcpy(msg + tslen + 1, body, bodylen);
    hmac_sha256_hex(key, strlen(key), msg, tslen + 1 + bodylen, out);
    if (msg != stackbuf)
        free(msg);
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

int hmac_random_hex(char *out, size_t nbytes)
{
    unsigned char buf[64];
    if (nbytes > sizeof buf || RAND_bytes(buf, (int)nbytes) != 1)
        return -1;
    to_hex(buf, nbytes, out);
    return 0;
}

double hmac_random01(void)
{
    uint64_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
        abort();
    return (double)(v >> 11) / 9007199254740992.0; /* 2^53 */
}
