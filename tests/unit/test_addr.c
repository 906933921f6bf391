/* Unit tests of util_addr_is_private: the addresses customer webhooks may not reach. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "tap.h"
#include "util.h"

static int priv(const char *a)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, a, &v4.sin_addr) == 1)
        return util_addr_is_private((struct sockaddr *)&v4);
    if (inet_pton(AF_INET6, a, &v6.sin6_addr) == 1)
        return util_addr_is_private((struct sockaddr *)&v6);
    return -1;
}

int main(void)
{
    static const char *const private_ones[] = {
        "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "198.18.0.1", "192.0.0.8", "::1", "::", "fc00::1", "fd12::5",
        "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:c0a8:101::1", "fec0::1",
    };
    static const char *const public_ones[] = {
        "8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1", "198.20.0.1", "2001:4860:4860::8888",
        "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
    };
    for (size_t i = 0; i < sizeof private_ones / sizeof private_ones[0]; i++)
        CHECK_EQ_INT(priv(private_ones[i]), 1, "%s is private", private_ones[i]);
    for (size_t i = 0; i < sizeof public_ones / sizeof public_ones[0]; i++)
        CHECK_EQ_INT(priv(public_ones[i]), 0, "%s is public", public_ones[i]);
    struct sockaddr other = {.sa_family = AF_UNIX};
    CHECK_EQ_INT(util_addr_is_private(&other), 1, "another family is refused");
    return TAP_DONE();
}
