/* Unit tests for src/util/util.h: number parsing, phone numbers, time, files. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "util.h"

/* a number parser's answer for one input */
struct parse_case {
    const char *s;
    long min, max;
    int rc;
    long want;
};

static void check_parses(const char *name, int (*parse)(const char *, long, long, long *),
                         const struct parse_case *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        long v = 12345;
        int rc = parse(t[i].s, t[i].min, t[i].max, &v);
        CHECK_EQ_INT(rc, t[i].rc, "%s('%s', %ld, %ld) rc", name, t[i].s, t[i].min, t[i].max);
        if (t[i].rc == 0)
            CHECK_EQ_INT(v, t[i].want, "%s('%s') value", name, t[i].s);
    }
}

static void test_parse_long(void)
{
    static const struct parse_case t[] = {
        {"0", 0, 10, 0, 0},
        {"10", 0, 10, 0, 10},
        {"11", 0, 10, -1, 0},
        {"-1", 0, 10, -1, 0},
        {"-5", -10, 10, 0, -5},
        {"-10", -10, 10, 0, -10},
        {"-11", -10, 10, -1, 0},
        {"+5", 0, 10, 0, 5},
        {"00012", 0, 100, 0, 12},
        {"-", -10, 10, -1, 0},
        {"+", 0, 10, -1, 0},
        {"", 0, 10, -1, 0},
        {"12a", 0, 1000, -1, 0},
        {"a12", 0, 1000, -1, 0},
        {" 12", 0, 1000, -1, 0},
        {"12 ", 0, 1000, -1, 0},
        {"1 2", 0, 1000, -1, 0},
        {"0x10", 0, 1000, -1, 0},
        {"1e3", 0, 10000, -1, 0},
        {"1.0", 0, 10, -1, 0},
        {"--5", -10, 10, -1, 0},
        {"+-5", -10, 10, -1, 0},
        {"-+5", -10, 10, -1, 0},
        {"9223372036854775807", LONG_MIN, LONG_MAX, 0, LONG_MAX},
        {"-9223372036854775808", LONG_MIN, LONG_MAX, 0, LONG_MIN},
        {"9223372036854775808", LONG_MIN, LONG_MAX, -1, 0},
        {"-9223372036854775809", LONG_MIN, LONG_MAX, -1, 0},
        {"99999999999999999999999999", LONG_MIN, LONG_MAX, -1, 0},
    };
    check_parses("parse_long", util_parse_long, t, sizeof t / sizeof t[0]);
    long v;
    CHECK_EQ_INT(util_parse_long(NULL, 0, 10, &v), -1, "parse_long(NULL)");
    /* errno from an earlier failure does not leak into a later success */
    errno = ERANGE;
    CHECK_EQ_INT(util_parse_long("7", 0, 10, &v), 0, "a stale errno does not fail a good number");
}

static void test_phone(void)
{
    static const struct {
        const char *in;
        int rc;
        const char *want;
    } t[] = {
        {"+972501234567", 0, "972501234567"},
        {"972501234567", 0, "972501234567"},
        {"12345678", 0, "12345678"},
        {"+12345678", 0, "12345678"},
        {"123456789012345", 0, "123456789012345"},
        {"+123456789012345", 0, "123456789012345"},
        {"1234567", -1, NULL},
        {"+1234567", -1, NULL},
        {"1234567890123456", -1, NULL},
        {"+", -1, NULL},
        {"", -1, NULL},
        {"++12345678", -1, NULL},
        {"1234-5678", -1, NULL},
        {"1234 5678", -1, NULL},
        {"(123)45678", -1, NULL},
        {"12345678+", -1, NULL},
        {"١٢٣٤٥٦٧٨", -1, NULL}, /* Arabic-Indic digits are not ASCII digits */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[PHONE_MAX_DIGITS];
        memset(out, 'X', sizeof out);
        int rc = util_phone_normalize(t[i].in, out, sizeof out);
        CHECK_EQ_INT(rc, t[i].rc, "phone '%s' rc", t[i].in);
        if (t[i].rc == 0)
            CHECK_EQ_STR(out, t[i].want, "phone '%s' digits", t[i].in);
    }
    char small[15];
    CHECK_EQ_INT(util_phone_normalize("12345678", small, sizeof small), -1,
                 "an output buffer under 16 bytes is refused");
}

static void test_iso8601(void)
{
    char out[64];
    util_iso8601(0, out, sizeof out);
    CHECK_EQ_STR(out, "1970-01-01T00:00:00.000Z", "iso8601(0)");
    util_iso8601(1700000000123LL, out, sizeof out);
    CHECK_EQ_STR(out, "2023-11-14T22:13:20.123Z", "iso8601(1700000000123)");
    util_iso8601(951782400999LL, out, sizeof out); /* leap day 2000 */
    CHECK_EQ_STR(out, "2000-02-29T00:00:00.999Z", "iso8601 of 2000-02-29");
    util_iso8601(4102444799001LL, out, sizeof out);
    CHECK_EQ_STR(out, "2099-12-31T23:59:59.001Z", "iso8601 at the end of 2099");
    CHECK_EQ_INT(strlen(out), 24, "iso8601 is 24 characters");
    char small[10];
    util_iso8601(0, small, sizeof small);
    CHECK_EQ_STR(small, "1970-01-0", "iso8601 truncates to its buffer");
}

static char tmpdir[64];

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    } else {
        TAP_DIAG("cannot create %s", path);
    }
}

static void test_files(void)
{
    char dir[128], path[192];
    snprintf(dir, sizeof dir, "%s/files", tmpdir);
    CHECK_EQ_INT(util_mkdirs(dir, 0700), 0, "mkdirs a new directory");
    snprintf(path, sizeof path, "%s/secret.key", dir);

    static const char data[] = "hello\0world\n";
    const size_t len = sizeof data - 1;
    CHECK_EQ_INT(util_write_file_atomic(path, data, len, 0600), 0, "write a file atomically");
    struct stat st;
    CHECK(stat(path, &st) == 0, "the written file exists");
    CHECK_EQ_INT(st.st_mode & 07777, 0600, "the file has mode 0600");
    CHECK_EQ_INT(st.st_size, (long long)len, "the file has all the bytes");
    CHECK_EQ_INT(count_entries(dir), 1, "no temporary file is left behind");

    size_t got = 0;
    char *back = util_read_file(path, 1024, &got);
    CHECK(back != NULL, "read the file back");
    CHECK_EQ_INT(got, len, "read length");
    CHECK(back && memcmp(back, data, len) == 0, "read bytes match, NUL included");
    CHECK(back && back[got] == '\0', "the read buffer is NUL-terminated");
    free(back);

    back = util_read_file(path, 5, &got);
    CHECK(back && got == 5 && strcmp(back, "hello") == 0, "read at most max bytes");
    free(back);
    back = util_read_file(path, 0, &got);
    CHECK(back && got == 0 && back[0] == '\0', "max 0 reads nothing");
    free(back);
    back = util_read_file(path, 1024, NULL);
    CHECK(back != NULL, "lenp may be NULL");
    free(back);

    /* replacing keeps the new mode, whatever the umask */
    mode_t old = umask(077);
    CHECK_EQ_INT(util_write_file_atomic(path, "x", 1, 0640), 0, "overwrite the file");
    umask(old);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640, "the new file has mode 0640");
    back = util_read_file(path, 1024, &got);
    CHECK(back && got == 1 && back[0] == 'x', "the new content replaced the old");
    free(back);

    CHECK_EQ_INT(util_write_file_atomic(path, "", 0, 0600), 0, "write an empty file");
    back = util_read_file(path, 1024, &got);
    CHECK(back && got == 0, "an empty file reads as empty");
    free(back);

    /* a 100 KB file */
    size_t blen = 100000;
    char *big = malloc(blen);
    for (size_t i = 0; i < blen; i++)
        big[i] = (char)(i * 7);
    CHECK_EQ_INT(util_write_file_atomic(path, big, blen, 0600), 0, "write 100000 bytes");
    back = util_read_file(path, blen, &got);
    CHECK(back && got == blen && memcmp(back, big, blen) == 0, "read 100000 bytes back");
    free(back);
    free(big);

    char missing[192];
    snprintf(missing, sizeof missing, "%s/nope/file", dir);
    CHECK_EQ_INT(util_write_file_atomic(missing, "x", 1, 0600), -1,
                 "writing into a missing directory fails");
    CHECK(util_read_file(missing, 10, NULL) == NULL, "reading a missing file gives NULL");
    CHECK(util_read_file(dir, 10, NULL) == NULL, "reading a directory gives NULL");

    unlink(path);
    rmdir(dir);
}

static void test_mkdirs(void)
{
    char deep[192], file[220];
    snprintf(deep, sizeof deep, "%s/m/a/b/c", tmpdir);
    CHECK_EQ_INT(util_mkdirs(deep, 0700), 0, "mkdirs creates a nested path");
    CHECK(exists(deep), "the nested path exists");
    CHECK_EQ_INT(util_mkdirs(deep, 0700), 0, "mkdirs of an existing path is fine");
    snprintf(file, sizeof file, "%s/m/f", tmpdir);
    put(file, "x");
    snprintf(deep, sizeof deep, "%s/m/f/sub", tmpdir);
    CHECK_EQ_INT(util_mkdirs(deep, 0700), -1, "mkdirs through a file fails");
    CHECK_EQ_INT(util_mkdirs("", 0700), -1, "mkdirs of an empty path fails");
    snprintf(deep, sizeof deep, "%s/m", tmpdir);
    char base[128];
    snprintf(base, sizeof base, "%s", tmpdir);
    CHECK_EQ_INT(util_rmtree_below(base, deep), 0, "clean up the mkdirs tree");
}

static void test_rmtree(void)
{
    char base[128], victim[128], p[256], q[256];
    snprintf(base, sizeof base, "%s/base", tmpdir);
    snprintf(victim, sizeof victim, "%s/victim", tmpdir);
    snprintf(p, sizeof p, "%s/s1/a/b/c", base);
    util_mkdirs(p, 0700);
    snprintf(p, sizeof p, "%s/s1/a/b/c/file", base);
    put(p, "deep");
    snprintf(p, sizeof p, "%s/s1/top", base);
    put(p, "top");
    util_mkdirs(victim, 0700);
    snprintf(q, sizeof q, "%s/keep", victim);
    put(q, "keep me");
    /* a sibling whose name starts like base */
    char sibling[140];
    snprintf(sibling, sizeof sibling, "%s/base2/x", tmpdir);
    util_mkdirs(sibling, 0700);

    static const char *const suffix[] = {
        "/../victim",       /* climbs out */
        "/s1/../../victim", /* climbs out further down */
        "/..",              /* the parent */
        "/s1/..",           /* back to base itself */
        "",                 /* base itself */
        "/",                /* base with a slash */
        "2/x",              /* a sibling sharing the prefix */
    };
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char bad[256];
        snprintf(bad, sizeof bad, "%s%s", base, suffix[i]);
        CHECK_EQ_INT(util_rmtree_below(base, bad), -1, "refuses '%s' below base", bad);
    }
    CHECK_EQ_INT(util_rmtree_below(base, victim), -1, "refuses a path outside base");
    CHECK_EQ_INT(util_rmtree_below(base, "/"), -1, "refuses /");
    CHECK_EQ_INT(util_rmtree_below("", victim), -1, "refuses an empty base");
    CHECK_EQ_INT(util_rmtree_below(base, "relative/path"), -1, "refuses a relative path");
    CHECK(exists(q), "the victim's file survived every refusal");
    CHECK(exists(sibling), "the sibling survived");
    snprintf(p, sizeof p, "%s/s1/a/b/c/file", base);
    CHECK(exists(p), "the tree inside base survived the refusals");

    /* a symlink inside the tree is removed, not followed */
    snprintf(p, sizeof p, "%s/s1/a/link", base);
    CHECK(symlink(victim, p) == 0, "make a symlink to the victim inside the tree");

    snprintf(p, sizeof p, "%s/s1", base);
    CHECK_EQ_INT(util_rmtree_below(base, p), 0, "removes a nested tree inside base");
    CHECK(!exists(p), "the tree is gone");
    CHECK(exists(base), "base itself remains");
    CHECK(exists(q), "the symlink's target was not followed");
    CHECK_EQ_INT(util_rmtree_below(base, p), 0, "removing a missing tree is fine");

    /* a plain file below base */
    snprintf(p, sizeof p, "%s/lonely", base);
    put(p, "x");
    CHECK_EQ_INT(util_rmtree_below(base, p), 0, "removes a single file below base");
    CHECK(!exists(p), "the file is gone");

    /* clean up */
    snprintf(p, sizeof p, "%s/base", tmpdir);
    CHECK_EQ_INT(util_rmtree_below(tmpdir, p), 0, "remove base");
    CHECK_EQ_INT(util_rmtree_below(tmpdir, victim), 0, "remove the victim");
    snprintf(p, sizeof p, "%s/base2", tmpdir);
    CHECK_EQ_INT(util_rmtree_below(tmpdir, p), 0, "remove the sibling");
    CHECK_EQ_INT(count_entries(tmpdir), 0, "the temp dir is empty again");
}

static void test_alloc(void)
{
    char *s = xasprintf("%s-%d", "worker", 7);
    CHECK_EQ_STR(s, "worker-7", "xasprintf");
    free(s);
    s = xstrndup("abcdef", 3);
    CHECK_EQ_STR(s, "abc", "xstrndup stops at n");
    free(s);
    s = xstrdup("");
    CHECK_EQ_STR(s, "", "xstrdup of empty");
    free(s);
    int *z = xcalloc(4, sizeof *z);
    CHECK(z[0] == 0 && z[3] == 0, "xcalloc zeroes");
    z = xrealloc(z, 8 * sizeof *z);
    CHECK(z[3] == 0, "xrealloc keeps the contents");
    free(z);
    void *m = xmalloc(0);
    CHECK(m != NULL, "xmalloc(0) gives a pointer");
    free(m);
    int64_t a = util_mono_ms(), b = util_mono_ms();
    CHECK(b >= a, "the monotonic clock does not go back");
    CHECK(util_now_ms() > 1600000000000LL, "the wall clock is after 2020");
}

static void test_parse_count(void)
{
    static const struct parse_case t[] = {
        {"0", 0, 10, 0, 0},          {"7", 1, 10, 0, 7},          {"1000", 1, 1000, 0, 1000},
        {"999999999999", 1, 999999999999L, 0, 999999999999L},
        {"1001", 1, 1000, -1, 0},    {"0", 1, 10, -1, 0},         {"", 0, 10, -1, 0},
        {"+5", 0, 10, -1, 0},        {"-5", -10, 10, -1, 0},      {"05", 0, 10, -1, 0},
        {"00", 0, 10, -1, 0},        {" 5", 0, 10, -1, 0},        {"5 ", 0, 10, -1, 0},
        {"5x", 0, 10, -1, 0},        {"0x5", 0, 10, -1, 0},       {"99999999999999999999999", 0, LONG_MAX, -1, 0},
    };
    check_parses("parse_count", util_parse_count, t, sizeof t / sizeof t[0]);
    long v;
    CHECK_EQ_INT(util_parse_count(NULL, 0, 10, &v), -1, "parse_count(NULL)");
}

static void test_parse_iso8601(void)
{
    static const struct {
        const char *s;
        int rc;
        int64_t want;
    } t[] = {
        {"1970-01-01T00:00:00Z", 0, 0},
        {"2023-11-14T22:13:20.123Z", 0, 1700000000123LL},
        {"2023-11-14T22:13:20.1Z", 0, 1700000000100LL},
        {"2023-11-14T22:13:20.123456789Z", 0, 1700000000123LL},
        {"2000-02-29T00:00:00Z", 0, 951782400000LL},
        {"2099-12-31T23:59:59.999Z", 0, 4102444799999LL},
        {"2100-02-29T00:00:00Z", -1, 0}, /* not a leap year */
        {"2026-02-29T00:00:00Z", -1, 0},
        {"2026-02-31T00:00:00Z", -1, 0},
        {"2026-04-31T00:00:00Z", -1, 0},
        {"2026-13-01T00:00:00Z", -1, 0},
        {"2026-00-01T00:00:00Z", -1, 0},
        {"2026-01-00T00:00:00Z", -1, 0},
        {"2026-01-01T24:00:00Z", -1, 0},
        {"2026-01-01T00:60:00Z", -1, 0},
        {"2026-01-01T00:00:60Z", -1, 0},
        {"1969-12-31T23:59:59Z", -1, 0},
        {"2026-1-5T09:00:00Z", -1, 0},
        {"2026-01-05T 9:00:00Z", -1, 0},
        {"2026-01-05 09:00:00Z", -1, 0},
        {"2026-01-05T09:00:00", -1, 0},
        {"2026-01-05T09:00:00+00:00", -1, 0},
        {"2026-01-05T09:00:00.Z", -1, 0},
        {"2026-01-05T09:00:00.1234567890Z", -1, 0},
        {"2026-01-05T09:00:00Zjunk", -1, 0},
        {"2026-01-05T09:00:00z", -1, 0},
        {"+026-01-05T09:00:00Z", -1, 0},
        {"", -1, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t v = -7;
        int rc = util_parse_iso8601(t[i].s, &v);
        CHECK_EQ_INT(rc, t[i].rc, "parse_iso8601('%s') rc", t[i].s);
        if (t[i].rc == 0)
            CHECK_EQ_INT(v, t[i].want, "parse_iso8601('%s') value", t[i].s);
    }
    /* what util_iso8601 writes reads back */
    char out[40];
    int64_t back = 0;
    util_iso8601(1764496800123LL, out, sizeof out);
    CHECK(util_parse_iso8601(out, &back) == 0 && back == 1764496800123LL, "iso8601 round trip (%s)", out);
    CHECK_EQ_INT(util_parse_iso8601(NULL, &back), -1, "parse_iso8601(NULL)");
}

static void test_iso8601_negative(void)
{
    char buf[40];
    util_iso8601(-1500, buf, sizeof buf);
    CHECK_EQ_STR(buf, "1969-12-31T23:59:58.500Z", "negative ms floor to the second before");
}

int main(void)
{
    test_iso8601_negative();
    test_parse_long();
    test_parse_count();
    test_parse_iso8601();
    test_phone();
    test_iso8601();
    test_alloc();

    snprintf(tmpdir, sizeof tmpdir, "/tmp/sb-test-util-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        return TAP_DONE();
    }
    test_files();
    test_mkdirs();
    test_rmtree();
    rmdir(tmpdir);
    return TAP_DONE();
}
