/* client/bench/hist.h -- a log-linear latency histogram (HdrHistogram's layout, small).
 *
 * Values (nanoseconds) fall into 64 linear sub-buckets per power of two, so every
 * recorded value is reported within 1/64 (1.6%) of itself, from 1 ns to 2^40 ns (18 min).
 * Recording is a few instructions and no allocation; histograms merge by addition. */
#ifndef KV_BENCH_HIST_H
#define KV_BENCH_HIST_H
#include <stdint.h>

#define HIST_SUB 64
#define HIST_EXP 41

struct hist {
    uint64_t counts[HIST_EXP][HIST_SUB];
    uint64_t n, max, min, sum;
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t ns);
void hist_merge(struct hist *into, const struct hist *from);
/* The value at quantile q (0..1), as the upper edge of its bucket; 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);
#endif
