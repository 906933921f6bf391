/* Unit tests for src/optout.h: opt-out words, trimmed and compared without case. */
#include <stdlib.h>

#include "optout.h"
#include "tap.h"

int main(void)
{
    char *w[OPTOUT_MAX];
    int n = 0;
    char err[200];
    CHECK_EQ_INT(optout_parse(" STOP, UNSUBSCRIBE ,הסר,,עצור ", w, OPTOUT_MAX, &n, err, sizeof err), 0,
                 "the default list parses");
    CHECK_EQ_INT(n, 4, "four words, the empty one skipped");
    CHECK_EQ_STR(w[1], "UNSUBSCRIBE", "words are trimmed");
    static const struct {
        const char *text;
        int want;
    } t[] = {
        {"STOP", 1},
        {"stop", 1},
        {"  Stop!  ", 1},
        {"\tstop.\n", 1},
        {"unsubscribe", 1},
        {"הסר", 1},
        {"\xE2\x80\x8F" "הסר" "\xE2\x80\x8F", 1}, /* wrapped in RLM, as phones send it */
        {"\xC2\xA0" "עצור!", 1},                 /* NBSP before */
        {"\xEF\xBB\xBF" "STOP", 1},               /* BOM */
        {"stop it", 0},
        {"please stop", 0},
        {"STOPP", 0},
        {"STO", 0},
        {"", 0},
        {"!!!", 0},
        {"הסרה", 0},
        {"\xE2\x80", 0}, /* a cut sequence is not a filler */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECK_EQ_INT(optout_match(t[i].text, w, n), t[i].want, "text %zu -> %d", i, t[i].want);
    CHECK_EQ_INT(optout_match("STOP", w, 0), 0, "no words: nothing matches");
    for (int i = 0; i < n; i++)
        free(w[i]);

    /* bounds */
    n = 0;
    char big[40 * 3 + 1];
    for (int i = 0; i < 40; i++) {
        big[i * 3] = 'a';
        big[i * 3 + 1] = (char)('a' + i % 26);
        big[i * 3 + 2] = ',';
    }
    big[40 * 3] = '\0';
    CHECK_EQ_INT(optout_parse(big, w, OPTOUT_MAX, &n, err, sizeof err), -1, "more than %d words is refused", OPTOUT_MAX);
    CHECK(strstr(err, "OPT_OUT_WORDS") != NULL, "the error names OPT_OUT_WORDS: %s", err);
    for (int i = 0; i < n; i++)
        free(w[i]);
    n = 0;
    char longw[80];
    memset(longw, 'x', 70);
    longw[70] = '\0';
    CHECK_EQ_INT(optout_parse(longw, w, OPTOUT_MAX, &n, err, sizeof err), -1, "a word over 64 bytes is refused");
    return TAP_DONE();
}
