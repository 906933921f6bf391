/* histo: a Prometheus histogram kept in memory (fixed bucket bounds, seconds). */
#ifndef SB_HISTO_H
#define SB_HISTO_H

#include <stddef.h>
#include <stdint.h>

#define HISTO_BOUNDS_MAX 15

struct histo {
    const double *bounds; /* ascending, borrowed; n of them */
    size_t n;
    uint64_t buckets[HISTO_BOUNDS_MAX + 1]; /* the last is +Inf */
    double sum;
    uint64_t count;
};

void histo_observe(struct histo *h, double v);
/* out (malloc'd or NULL) with the metric's HELP, TYPE, buckets, sum and count added; the
 * result replaces out (caller frees) */
char *histo_append(char *out, const struct histo *h, const char *name, const char *help);

#endif
