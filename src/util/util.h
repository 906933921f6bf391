/* util: allocation that aborts on failure, bounded number parsing, time, files.
 * No daemon knowledge. */
#ifndef SB_UTIL_H
#define SB_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* snprintf into a fresh allocation; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* s (malloc'd or NULL) with the formatted text appended; the result replaces s. */
char *xappendf(char *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whole decimal number in [min,max], no junk, no overflow. 0 or -1. */
int util_parse_long(const char *s, long min, long max, long *out);
/* The same for a value from a client (a query parameter, a path id): digits only, no
 * sign, no leading zero ("0" itself is fine), in [min,max] with min >= 0. 0 or -1. */
int util_parse_count(const char *s, long min, long max, long *out);

/* Wall clock in ms since the epoch, and a monotonic clock in ms. */
int64_t util_now_ms(void);
int64_t util_mono_ms(void);

/* ISO-8601 UTC with milliseconds into out (>= 25 bytes). */
void util_iso8601(int64_t ms, char *out, size_t outlen);
/* The reverse, strictly: YYYY-MM-DDTHH:MM:SS, an optional fraction of 1 to 9 digits
 * (kept to the ms), then Z; a real date of the years 1970-9999. 0 or -1. */
int util_parse_iso8601(const char *s, int64_t *ms);

/* mkdir -p with mode; 0 or -1 (errno set). */
int util_mkdirs(const char *path, int mode);
/* rm -rf of a directory tree that must lie below base (a guard against a bad path). 0 or -1. */
int util_rmtree_below(const char *base, const char *path);
/* Writes data to path atomically (temp file, fsync, rename) with mode. 0 or -1. */
int util_write_file_atomic(const char *path, const void *data, size_t len, int mode);
/* Reads at most max bytes of a file into a NUL-terminated allocation. Caller frees. NULL on error. */
char *util_read_file(const char *path, size_t max, size_t *lenp);

/* Phone number: 8–15 digits with an optional leading '+'; out gets the digits (>= 16 bytes). 0 or -1. */
/* Makes s valid UTF-8 in place: invalid bytes become '?', and a sequence cut short at
 * the end (by a bounded copy) is dropped. */
void util_utf8_fix(char *s);

/* 1 for a loopback, private, link-local, shared (100.64/10), unspecified or multicast
 * address (IPv4, IPv6 and v4-mapped), and for any other family */
struct sockaddr;
int util_addr_is_private(const struct sockaddr *sa);

#define PHONE_MAX_DIGITS 16
int util_phone_normalize(const char *in, char *out, size_t outlen);

#endif
