/* util_utf8_fix: stored text and error messages must stay valid UTF-8 */
#include <string.h>

#include "tap.h"
#include "util.h"

static const char *fixed(const char *in)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%s", in);
    util_utf8_fix(buf);
    return buf;
}

int main(void)
{
    CHECK_EQ_STR(fixed("plain ascii"), "plain ascii", "ASCII unchanged");
    CHECK_EQ_STR(fixed("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"), "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", "Hebrew unchanged");
    CHECK_EQ_STR(fixed("emoji \xf0\x9f\x94\x84"), "emoji \xf0\x9f\x94\x84", "4-byte sequence unchanged");
    CHECK_EQ_STR(fixed("cut \xd7"), "cut ", "a 2-byte sequence cut at the end is dropped");
    CHECK_EQ_STR(fixed("cut \xf0\x9f\x94"), "cut ", "a 4-byte sequence cut at the end is dropped");
    CHECK_EQ_STR(fixed("a\xff" "b"), "a?b", "an invalid byte is replaced");
    CHECK_EQ_STR(fixed("\xc0\xaf"), "??", "an overlong encoding is replaced");
    CHECK_EQ_STR(fixed("\xed\xa0\x80x"), "???x", "a surrogate is replaced");
    CHECK_EQ_STR(fixed("\xd7" "a"), "?a", "a lead byte without continuation mid-string is replaced");
    CHECK_EQ_STR(fixed(""), "", "empty stays empty");

    /* a bounded copy that cuts a character in half, then fixed, is valid */
    const char *src = "ab\xd7\xa9\xd7\x9c";
    char small[6];
    memcpy(small, src, 5); /* what a bounded copy into 6 bytes leaves */
    small[5] = '\0';
    util_utf8_fix(small);
    CHECK_EQ_STR(small, "ab\xd7\xa9", "truncated copy repaired");
    return TAP_DONE();
}
