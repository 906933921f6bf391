/* proxycheck: the SOCKS5 client exchange, step by step */
#include <string.h>

#include "proxycheck.h"
#include "tap.h"

int main(void)
{
    unsigned char out[600];
    int outlen;
    const char *why = NULL;
    struct socks_state st;

    memset(&st, 0, sizeof st);
    proxycheck_greeting(&st, out, &outlen);
    CHECK(outlen == 3 && out[0] == 5 && out[1] == 1 && out[2] == 0, "greeting without credentials offers method 0");
    CHECK_EQ_INT(proxycheck_step(&st, (const unsigned char *)"\x05\x00", 2, out, &outlen, &why), 1,
                 "no-auth accepted: success");
    CHECK_EQ_INT(proxycheck_step(&st, (const unsigned char *)"\x05", 1, out, &outlen, &why), 0,
                 "half an answer: wait for more");
    CHECK_EQ_INT(proxycheck_step(&st, (const unsigned char *)"\x04\x00", 2, out, &outlen, &why), -1,
                 "not SOCKS5 fails");
    CHECK(why && strstr(why, "SOCKS5"), "and says so");
    CHECK_EQ_INT(proxycheck_step(&st, (const unsigned char *)"\x05\x02", 2, out, &outlen, &why), -1,
                 "a proxy that wants credentials we lack fails");

    memset(&st, 0, sizeof st);
    st.auth = 1;
    strcpy(st.user, "alice");
    strcpy(st.pass, "s3cret");
    proxycheck_greeting(&st, out, &outlen);
    CHECK(outlen == 3 && out[2] == 2, "greeting with credentials offers method 2");
    CHECK_EQ_INT(proxycheck_step(&st, (const unsigned char *)"\x05\x02", 2, out, &outlen, &why), 0,
                 "method 2 chosen: authentication goes next");
    CHECK(outlen == 3 + 5 + 6 && out[0] == 1 && out[1] == 5 && memcmp(out + 2, "alice", 5) == 0 &&
              out[7] == 6 && memcmp(out + 8, "s3cret", 6) == 0,
          "RFC 1929 request: version 1, user, password");
    CHECK_EQ_INT(proxycheck_step(&st, (const unsigned char *)"\x01\x00", 2, out, &outlen, &why), 1,
                 "credentials accepted: success");

    memset(&st, 0, sizeof st);
    st.auth = 1;
    strcpy(st.user, "alice");
    proxycheck_greeting(&st, out, &outlen);
    proxycheck_step(&st, (const unsigned char *)"\x05\x02", 2, out, &outlen, &why);
    CHECK_EQ_INT(proxycheck_step(&st, (const unsigned char *)"\x01\x01", 2, out, &outlen, &why), -1,
                 "credentials rejected fails");
    CHECK(why && strstr(why, "rejected the credentials"), "and says so");
    memset(&st, 0, sizeof st);
    st.auth = 1;
    proxycheck_greeting(&st, out, &outlen);
    CHECK_EQ_INT(proxycheck_step(&st, (const unsigned char *)"\x05\xff", 2, out, &outlen, &why), -1,
                 "no acceptable method fails");
    return TAP_DONE();
}
