/* fuzz_socks: a proxy's answers fed through the SOCKS5 client steps, two bytes at a time */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxycheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct socks_state st;
    memset(&st, 0, sizeof st);
    st.auth = data[0] & 1;
    if (st.auth) {
        memset(st.user, 'u', 255);
        memset(st.pass, 'p', 255);
    }
    unsigned char out[600];
    int outlen = 0;
    proxycheck_greeting(&st, out, &outlen);
    for (size_t i = 1; i + 1 < size; i += 2) {
        const char *why = NULL;
        int rc = proxycheck_step(&st, data + i, 2, out, &outlen, &why);
        if (outlen < 0 || outlen > (int)sizeof out)
            abort();
        if (rc == -1 && !why)
            abort(); /* a failure always says why */
        if (rc != 0)
            break;
    }
    return 0;
}
