/* cluster/phi.c -- phi accrual arithmetic (cluster/phi.h). */
#include "cluster/phi.h"
#include <string.h>

#define LN10 2.302585092994046

static void record(struct kv_phi *p, double iv)
{
    if (p->n == KV_PHI_WINDOW)
        p->sum -= p->iv[p->next];
    else
        p->n++;
    p->iv[p->next] = iv;
    p->sum += iv;
    p->next = (p->next + 1) % KV_PHI_WINDOW;
}

void kv_phi_init(struct kv_phi *p, uint64_t now_ms, double first_iv_ms)
{
    memset(p, 0, sizeof *p);
    p->last_ms = now_ms;
    record(p, first_iv_ms);
}

void kv_phi_arrival(struct kv_phi *p, uint64_t now_ms, bool rec)
{
    if (rec && now_ms >= p->last_ms)
        record(p, (double)(now_ms - p->last_ms));
    if (now_ms > p->last_ms)
        p->last_ms = now_ms;
}

double kv_phi_mean(const struct kv_phi *p, double min_mean_ms)
{
    double mean = p->n ? p->sum / (double)p->n : min_mean_ms;
    return mean < min_mean_ms ? min_mean_ms : mean;
}

double kv_phi_value(const struct kv_phi *p, uint64_t now_ms, double min_mean_ms)
{
    double elapsed = now_ms > p->last_ms ? (double)(now_ms - p->last_ms) : 0;
    return elapsed / (kv_phi_mean(p, min_mean_ms) * LN10);
}
