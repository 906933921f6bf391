/* tap: a tiny header-only TAP producer for the unit tests.
 *   CHECK(cond, fmt, ...)         ok N - desc / not ok N - desc (file:line)
 *   CHECK_EQ_INT(got, want, fmt, ...)  also prints both values on failure
 *   CHECK_EQ_STR(got, want, fmt, ...)  the same for strings (NULL allowed)
 *   return TAP_DONE();            prints the plan 1..N; 0 when nothing failed
 * Output goes to stdout; diagnostics are '#' lines so a harness can count
 * the ok / not ok lines alone. */
#ifndef SB_TAP_H
#define SB_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count __attribute__((unused));
static int tap_failed __attribute__((unused));

__attribute__((format(printf, 4, 0))) static inline int
tap_vcheck(int ok, const char *file, int line, const char *fmt, va_list ap)
{
    tap_count++;
    printf("%s %d - ", ok ? "ok" : "not ok", tap_count);
    vprintf(fmt, ap);
    if (!ok) {
        tap_failed++;
        printf(" (%s:%d)", file, line);
    }
    printf("\n");
    fflush(stdout);
    return ok;
}

__attribute__((format(printf, 4, 5))) static inline int
tap_check(int ok, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ok = tap_vcheck(ok, file, line, fmt, ap);
    va_end(ap);
    return ok;
}

__attribute__((format(printf, 6, 7))) static inline int
tap_check_int(long long got, long long want, const char *file, int line, const char *exprs,
              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int ok = tap_vcheck(got == want, file, line, fmt, ap);
    va_end(ap);
    if (!ok)
        printf("#   %s\n#   got:      %lld\n#   expected: %lld\n", exprs, got, want);
    return ok;
}

__attribute__((format(printf, 6, 7))) static inline int
tap_check_str(const char *got, const char *want, const char *file, int line, const char *exprs,
              const char *fmt, ...)
{
    int same = (got == NULL && want == NULL) || (got && want && strcmp(got, want) == 0);
    va_list ap;
    va_start(ap, fmt);
    int ok = tap_vcheck(same, file, line, fmt, ap);
    va_end(ap);
    if (!ok) {
        printf("#   %s\n", exprs);
        printf("#   got:      %s%s%s\n", got ? "\"" : "", got ? got : "NULL", got ? "\"" : "");
        printf("#   expected: %s%s%s\n", want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
    }
    return ok;
}

/* Prints a diagnostic line (never counted). */
#define TAP_DIAG(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

#define CHECK(cond, ...) tap_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_EQ_INT(got, want, ...)                                                      \
    tap_check_int((long long)(got), (long long)(want), __FILE__, __LINE__, #got " == " #want, \
                  __VA_ARGS__)
#define CHECK_EQ_STR(got, want, ...) \
    tap_check_str((got), (want), __FILE__, __LINE__, #got " == " #want, __VA_ARGS__)

static inline int tap_done(void)
{
    printf("1..%d\n", tap_count);
    if (tap_failed)
        printf("# %d of %d checks failed\n", tap_failed, tap_count);
    fflush(stdout);
    return tap_failed ? 1 : 0;
}
#define TAP_DONE() tap_done()

#endif
