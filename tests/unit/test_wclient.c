/* Unit tests for src/wclient.h (worker keys, signature check) and src/util/hmac.h. */
#include <stdio.h>
#include <string.h>

#include "hmac.h"
#include "tap.h"
#include "wclient.h"

#define NOW 1700000000L
#define SKEW 300L

/* Vectors computed independently with Python's hmac module:
 *   hmac.new(b"secret", b"worker_7", hashlib.sha256).hexdigest()
 *   hmac.new(b"k", b'1700000000.{"a":1}', hashlib.sha256).hexdigest() */
#define KEY_SECRET_WORKER7 "1528666464e51a698d991fbf1a826c2d7270fd436547b7398ad754b0002ec552"
#define SIG_K_TS_BODY "1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3"
/* RFC 4231 test case 2 */
#define RFC4231_2 "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
/* SHA-256("abc"), FIPS 180-2 */
#define SHA256_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_vectors(void)
{
    char out[HMAC_HEX_LEN + 1];
    memset(out, 'X', sizeof out);
    wclient_worker_key("secret", "worker_7", out);
    CHECK_EQ_STR(out, KEY_SECRET_WORKER7, "worker key of worker_7 under 'secret'");
    CHECK_EQ_INT(strlen(out), HMAC_HEX_LEN, "the worker key is 64 hex digits");

    char other[HMAC_HEX_LEN + 1];
    wclient_worker_key("secret", "worker_8", other);
    CHECK(strcmp(out, other) != 0, "another session gets another key");
    wclient_worker_key("Secret", "worker_7", other);
    CHECK(strcmp(out, other) != 0, "another master gets another key");

    hmac_sign_ts_body("k", "1700000000", "{\"a\":1}", 7, out);
    CHECK_EQ_STR(out, SIG_K_TS_BODY, "hmac_sign_ts_body signs ts '.' body");

    hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, out);
    CHECK_EQ_STR(out, RFC4231_2, "HMAC-SHA256 RFC 4231 case 2");

    hmac_sha256_plain_hex("abc", 3, out);
    CHECK_EQ_STR(out, SHA256_ABC, "SHA-256 of 'abc'");

    /* a body larger than the signer's stack buffer */
    static char big[10000];
    memset(big, 'b', sizeof big);
    char sig1[HMAC_HEX_LEN + 1], sig2[HMAC_HEX_LEN + 1];
    hmac_sign_ts_body("k", "1700000000", big, sizeof big, sig1);
    static char joined[11 + sizeof big]; /* the same message built by hand */
    memcpy(joined, "1700000000.", 11);
    memcpy(joined + 11, big, sizeof big);
    hmac_sha256_hex("k", 1, joined, sizeof joined, sig2);
    CHECK_EQ_STR(sig1, sig2, "a 10000-byte body signs like ts '.' body built by hand");
}

static void sign(const char *key, const char *ts, const char *body, char *sig, size_t siglen)
{
    char hex[HMAC_HEX_LEN + 1];
    hmac_sign_ts_body(key, ts, body, strlen(body), hex);
    snprintf(sig, siglen, "sha256=%s", hex);
}

static void test_verify(void)
{
    const char *key = KEY_SECRET_WORKER7;
    const char *body = "{\"sessionId\":\"worker_7\",\"type\":\"PING\"}";
    size_t len = strlen(body);
    char ts[32], sig[128];
    snprintf(ts, sizeof ts, "%ld", NOW);
    sign(key, ts, body, sig, sizeof sig);

    CHECK_EQ_INT(wclient_verify(key, ts, sig, body, len, NOW, SKEW), 0, "a good signature verifies");

    char wrong[HMAC_HEX_LEN + 1];
    wclient_worker_key("secret", "worker_8", wrong);
    CHECK_EQ_INT(wclient_verify(wrong, ts, sig, body, len, NOW, SKEW), -1, "a wrong key fails");

    char flipped[128];
    snprintf(flipped, sizeof flipped, "%s", body);
    flipped[len / 2] ^= 1;
    CHECK_EQ_INT(wclient_verify(key, ts, sig, flipped, len, NOW, SKEW), -1,
                 "a flipped body byte fails");
    CHECK_EQ_INT(wclient_verify(key, ts, sig, body, len - 1, NOW, SKEW), -1, "a truncated body fails");

    CHECK_EQ_INT(wclient_verify(key, ts, sig + 7, body, len, NOW, SKEW), -1,
                 "a signature without 'sha256=' fails");
    char upper[128];
    snprintf(upper, sizeof upper, "SHA256=%s", sig + 7);
    CHECK_EQ_INT(wclient_verify(key, ts, upper, body, len, NOW, SKEW), -1, "'SHA256=' prefix fails");
    char sigflip[128];
    snprintf(sigflip, sizeof sigflip, "%s", sig);
    sigflip[20] = sigflip[20] == 'a' ? 'b' : 'a';
    CHECK_EQ_INT(wclient_verify(key, ts, sigflip, body, len, NOW, SKEW), -1, "a changed digit fails");
    char sigshort[128];
    snprintf(sigshort, sizeof sigshort, "%.*s", (int)strlen(sig) - 1, sig);
    CHECK_EQ_INT(wclient_verify(key, ts, sigshort, body, len, NOW, SKEW), -1, "a short signature fails");
    char siglong[140];
    snprintf(siglong, sizeof siglong, "%s0", sig);
    CHECK_EQ_INT(wclient_verify(key, ts, siglong, body, len, NOW, SKEW), -1, "a long signature fails");
    CHECK_EQ_INT(wclient_verify(key, ts, "sha256=", body, len, NOW, SKEW), -1, "an empty digest fails");

    /* the signature covers the timestamp too */
    char ts2[32];
    snprintf(ts2, sizeof ts2, "%ld", NOW + 1);
    CHECK_EQ_INT(wclient_verify(key, ts2, sig, body, len, NOW, SKEW), -1,
                 "a signature for another timestamp fails");

    /* skew: exactly 300 s either way passes, 301 s fails */
    static const struct {
        long delta;
        int want;
    } sk[] = {{-SKEW, 0}, {SKEW, 0}, {-SKEW - 1, -1}, {SKEW + 1, -1}, {-1, 0}, {1, 0},
              {-100000, -1}, {100000, -1}};
    for (size_t i = 0; i < sizeof sk / sizeof sk[0]; i++) {
        char t[32], s[128];
        snprintf(t, sizeof t, "%ld", NOW + sk[i].delta);
        sign(key, t, body, s, sizeof s);
        CHECK_EQ_INT(wclient_verify(key, t, s, body, len, NOW, SKEW), sk[i].want,
                     "timestamp %+ld s from now", sk[i].delta);
    }

    /* timestamps that are not plain numbers fail even when signed */
    static const char *const badts[] = {"", "abc", "17000000O0", "1700000000.5", " 1700000000",
                                        "1700000000 ", "-1700000000", "0x6553f100",
                                        "99999999999999999999999"};
    for (size_t i = 0; i < sizeof badts / sizeof badts[0]; i++) {
        char s[128];
        sign(key, badts[i], body, s, sizeof s);
        CHECK_EQ_INT(wclient_verify(key, badts[i], s, body, len, NOW, SKEW), -1,
                     "timestamp '%s' fails", badts[i]);
    }

    CHECK_EQ_INT(wclient_verify(key, NULL, sig, body, len, NOW, SKEW), -1, "NULL timestamp fails");
    CHECK_EQ_INT(wclient_verify(key, ts, NULL, body, len, NOW, SKEW), -1, "NULL signature fails");
    CHECK_EQ_INT(wclient_verify(key, NULL, NULL, body, len, NOW, SKEW), -1, "both NULL fail");

    /* an empty body (GET) signs as "ts." */
    char s[128];
    sign(key, ts, "", s, sizeof s);
    CHECK_EQ_INT(wclient_verify(key, ts, s, "", 0, NOW, SKEW), 0, "an empty body verifies");
    CHECK_EQ_INT(wclient_verify(key, ts, s, body, len, NOW, SKEW), -1,
                 "the empty body's signature does not cover a real body");
}

static void test_equal(void)
{
    CHECK_EQ_INT(hmac_equal("abc", 3, "abc", 3), 1, "equal strings");
    CHECK_EQ_INT(hmac_equal("abc", 3, "abd", 3), 0, "different last byte");
    CHECK_EQ_INT(hmac_equal("abc", 3, "abcd", 4), 0, "different lengths (prefix)");
    CHECK_EQ_INT(hmac_equal("abcd", 4, "abc", 3), 0, "different lengths (other way)");
    CHECK_EQ_INT(hmac_equal("", 0, "", 0), 1, "two empty strings");
    CHECK_EQ_INT(hmac_equal("", 0, "a", 1), 0, "empty against one byte");
    CHECK_EQ_INT(hmac_equal("a\0b", 3, "a\0c", 3), 0, "bytes after a NUL count");

    char r1[33], r2[33];
    CHECK_EQ_INT(hmac_random_hex(r1, 16), 0, "random hex of 16 bytes");
    CHECK_EQ_INT(hmac_random_hex(r2, 16), 0, "random hex again");
    CHECK_EQ_INT(strlen(r1), 32, "16 random bytes are 32 hex digits");
    CHECK(strspn(r1, "0123456789abcdef") == 32, "random hex is lower-case hex");
    CHECK(strcmp(r1, r2) != 0, "two random tokens differ");
    char r3[200];
    CHECK_EQ_INT(hmac_random_hex(r3, 65), -1, "more than 64 random bytes is refused");
    int in_range = 1;
    for (int i = 0; i < 1000; i++) {
        double d = hmac_random01();
        in_range &= d >= 0.0 && d < 1.0;
    }
    CHECK(in_range, "hmac_random01 stays in [0,1)");
}

int main(void)
{
    test_vectors();
    test_verify();
    test_equal();
    return TAP_DONE();
}
