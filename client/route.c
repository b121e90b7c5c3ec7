/* client/route.c -- the ring as the client routes by it: ranges sorted by their end key.
 *
 * Pure functions: no sockets, no clock, no node table (replicas are node ids; nodes.c maps
 * them to connections). The server's ring is order-preserving: a key k belongs to the
 * range (previous token, t] of the first token t >= k, wrapping around.
 * (1) Ranges are kept sorted by end (memcmp order, a shorter prefix first), with the
 *     ranges that run to the last key (empty end) after all others, so a binary search
 *     for the first end >= k finds the range of k.
 * (2) When every end is below k (the server sent no range running to the last key) the
 *     ring wraps: k belongs to the first range, as on the server.
 * (3) Nothing here trusts the answer's order: the ranges are sorted after copying. */
#include <stdlib.h>
#include <string.h>
#include "client/internal.h"

int kvc__key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* -1, 0, 1 comparing a range end with a key; a to_last end is above every key. */
static int end_cmp(const struct kvc__range *r, const void *key, size_t len)
{
    if (r->to_last)
        return 1;
    return kvc__key_cmp(r->end.data, r->end.len, key, len);
}

static int range_order(const void *pa, const void *pb)
{
    const struct kvc__range *a = pa, *b = pb;
    if (a->to_last || b->to_last)
        return (int)a->to_last - (int)b->to_last;
    return kvc__key_cmp(a->end.data, a->end.len, b->end.data, b->end.len);
}

void kvc__ring_free(struct kvc__ring *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->ranges[i].end.data);
        free(r->ranges[i].replicas);
    }
    free(r->ranges);
    r->ranges = NULL;
    r->n = 0;
}

int kvc__ring_build(const struct kvc_cluster_status *st, struct kvc__ring *out)
{
    out->ranges = NULL;
    out->n = 0;
    if (!st->n_ranges)
        return KVC_OK;
    if (!(out->ranges = calloc(st->n_ranges, sizeof *out->ranges)))
        return KVC_NOMEM;
    for (size_t i = 0; i < st->n_ranges; i++) {
        const struct kvc_range_info *ri = &st->ranges[i];
        if (!ri->n_replicas)
            continue;   /* nowhere to send its keys: let them fall into the next range */
        struct kvc__range *r = &out->ranges[out->n];
        r->to_last = ri->end.len == 0;
        r->end.data = malloc(ri->end.len + 1);
        r->replicas = malloc(ri->n_replicas * sizeof *r->replicas);
        out->n++;
        if (!r->end.data || !r->replicas) {
            kvc__ring_free(out);
            return KVC_NOMEM;
        }
        if (ri->end.len)
            memcpy(r->end.data, ri->end.data, ri->end.len);
        r->end.data[ri->end.len] = '\0';
        r->end.len = ri->end.len;
        memcpy(r->replicas, ri->replicas, ri->n_replicas * sizeof *r->replicas);
        r->n_replicas = ri->n_replicas;
    }
    qsort(out->ranges, out->n, sizeof *out->ranges, range_order);
    return KVC_OK;
}

const struct kvc__range *kvc__ring_find(const struct kvc__ring *r, const void *key,
                                        size_t len)
{
    if (!r->n)
        return NULL;
    size_t lo = 0, hi = r->n;   /* the answer is in [lo, hi]; hi == n: every end < key */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (end_cmp(&r->ranges[mid], key, len) >= 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return &r->ranges[lo < r->n ? lo : 0];
}
