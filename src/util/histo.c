#include "histo.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

void histo_observe(struct histo *h, double v)
{
    size_t i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    h->buckets[i]++;
    h->sum += v;
    h->count++;
}

char *histo_append(char *out, const struct histo *h, const char *name, const char *help)
{
    out = xappendf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->n; i++) {
        cum += h->buckets[i];
        if (i < h->n)
            out = xappendf(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
        else
            out = xappendf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    return xappendf(out, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}
