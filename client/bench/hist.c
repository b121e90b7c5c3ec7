/* client/bench/hist.c -- log-linear histogram arithmetic. */
#include "client/bench/hist.h"
#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

/* Exponent 0 holds 0..63 exactly; exponent e >= 1 holds [64 << (e-1), 64 << e) in 64
 * steps of 1 << (e-1). */
static void bucket_of(uint64_t v, unsigned *e, unsigned *s)
{
    if (v < HIST_SUB) {
        *e = 0;
        *s = (unsigned)v;
        return;
    }
    unsigned bits = 64u - (unsigned)__builtin_clzll(v);   /* v >= 64: bits >= 7 */
    unsigned ex = bits - 6;
    if (ex >= HIST_EXP) {
        *e = HIST_EXP - 1;
        *s = HIST_SUB - 1;
        return;
    }
    *e = ex;
    *s = (unsigned)((v >> (ex - 1)) - HIST_SUB);
}

static uint64_t bucket_top(unsigned e, unsigned s)
{
    if (e == 0)
        return s;
    return ((uint64_t)(HIST_SUB + s + 1) << (e - 1)) - 1;
}

void hist_record(struct hist *h, uint64_t ns)
{
    unsigned e, s;
    bucket_of(ns, &e, &s);
    h->counts[e][s]++;
    h->n++;
    h->sum += ns;
    if (ns > h->max)
        h->max = ns;
    if (ns < h->min)
        h->min = ns;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned e = 0; e < HIST_EXP; e++)
        for (unsigned s = 0; s < HIST_SUB; s++)
            into->counts[e][s] += from->counts[e][s];
    into->n += from->n;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
    if (from->min < into->min)
        into->min = from->min;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (!h->n)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->n);
    if (want >= h->n)
        return h->max;
    uint64_t seen = 0;
    for (unsigned e = 0; e < HIST_EXP; e++)
        for (unsigned s = 0; s < HIST_SUB; s++) {
            seen += h->counts[e][s];
            if (seen > want) {
                uint64_t top = bucket_top(e, s);
                return top < h->max ? top : h->max;
            }
        }
    return h->max;
}
