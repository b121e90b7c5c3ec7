/* cluster/phi.h -- the phi-accrual failure detector of one peer (internal to member.c).
 *
 * Pure arithmetic over caller-supplied monotonic times.
 * (1) Arrival intervals are modelled as exponential with the mean of the last
 *     KV_PHI_WINDOW recorded intervals, floored at min_mean_ms:
 *     phi(now) = (now - last arrival) / (mean * ln 10), i.e. -log10 of the probability
 *     that a live peer stays silent this long. phi 8 ~ a one-in-10^8 false alarm.
 * (2) kv_phi_arrival with record=false moves the last arrival without recording the gap
 *     (member.c uses it when a peer comes back from down). */
#ifndef KV_CLUSTER_PHI_H
#define KV_CLUSTER_PHI_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_PHI_WINDOW 100

struct kv_phi {
    uint64_t last_ms;               /* the newest arrival */
    double iv[KV_PHI_WINDOW];       /* ring buffer of intervals */
    size_t n, next;
    double sum;
};

/* Starts with one synthetic interval first_iv_ms and an arrival at now_ms. */
void kv_phi_init(struct kv_phi *p, uint64_t now_ms, double first_iv_ms);
void kv_phi_arrival(struct kv_phi *p, uint64_t now_ms, bool record);
double kv_phi_mean(const struct kv_phi *p, double min_mean_ms);
double kv_phi_value(const struct kv_phi *p, uint64_t now_ms, double min_mean_ms);
#endif
