/* optout: recognises an opt-out reply (SPEC §4.2: STOP, UNSUBSCRIBE, הסר, עצור). Pure. */
#ifndef SB_OPTOUT_H
#define SB_OPTOUT_H

#include <stddef.h>

#define OPTOUT_MAX 32 /* words */

/* Splits a comma-separated list into words (trimmed; empty ones skipped), at most max of
 * at most 64 bytes each, allocated into words[*n...] (caller frees). 0, or -1 with err. */
int optout_parse(const char *list, char **words, int max, int *n, char *err, size_t errlen);
/* 1 when the whole text is one of the words once trimmed of spaces, ASCII punctuation and
 * invisible direction marks, ASCII letters compared without case; else 0 */
int optout_match(const char *text, char *const *words, int nwords);

#endif
