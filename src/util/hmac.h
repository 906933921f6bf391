/* hmac: HMAC-SHA256 in hex, constant-time comparison, random tokens.
 * No daemon knowledge; used by the daemon, the simulator worker and tests.
 * All output buffers are caller-owned and sized by the constants below. */
#ifndef SB_HMAC_H
#define SB_HMAC_H

#include <stddef.h>

#define HMAC_HEX_LEN 64 /* hex digits of a SHA-256 digest, without NUL */

/* out must hold HMAC_HEX_LEN + 1 bytes. */
void hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen, char *out);

/* HMAC over "prefix" "." "body": the worker protocol's signed message. */
void hmac_sign_ts_body(const char *key, const char *ts, const void *body, size_t bodylen, char *out);

/* A key made ready once for many messages: signing with it skips OpenSSL's per-call
 * algorithm fetch and key setup (about 0.8 us a message instead of 2). Caller frees. */
struct hmac_key;
struct hmac_key *hmac_key_new(const void *key, size_t keylen);
void hmac_key_free(struct hmac_key *k);
/* as hmac_sign_ts_body, with a prepared key */
void hmac_key_sign_ts_body(const struct hmac_key *k, const char *ts, const void *body, size_t bodylen,
                           char *out);

/* SHA-256 of data, hex. out must hold HMAC_HEX_LEN + 1 bytes. */
void hmac_sha256_plain_hex(const void *data, size_t len, char *out);

/* 1 when equal; time depends only on the lengths. */
int hmac_equal(const char *a, size_t alen, const char *b, size_t blen);

/* Fills out with nbytes random bytes as hex (out holds 2*nbytes+1). 0 or -1. */
int hmac_random_hex(char *out, size_t nbytes);

/* A uniform random double in [0,1) from the OS CSPRNG. */
double hmac_random01(void);

#endif
