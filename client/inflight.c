/* client/inflight.c -- the table of in-flight ops, keyed by request id.
 *
 * Answers come back in any order, so each one is matched by id: a chained hash table
 * whose chains run through op->next_ (the op is in no other list while it waits).
 * (1) An id is in the table at most once; kvc__table_take removes it, so a second answer
 *     for the same id, or a late answer for a timed-out op, finds nothing and is ignored.
 * (2) The table never owns ops; it only points at the caller's structs.
 * (3) t->earliest is a lower bound on the deadlines in the table, kept in O(1): an add
 *     lowers it, a take leaves it (removing an op can only raise the true minimum), and
 *     a drain, which visits every op anyway, sets it to the exact minimum of the ops it
 *     keeps. The client drains a table only once its bound has passed (client.c expire),
 *     so with one timeout per client the bound is recomputed about once per timeout, not
 *     once per answer: scanning every bucket per answer cost more than the answer. */
#include <stdlib.h>
#include "client/internal.h"

static size_t bucket_of(const struct kvc__table *t, uint64_t id)
{
    /* Fibonacci hashing: ids are sequential, so spread them with a multiply. */
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (t->nbuckets - 1);
}

void kvc__table_init(struct kvc__table *t)
{
    t->buckets = NULL;
    t->nbuckets = 0;
    t->count = 0;
    t->earliest = UINT64_MAX;
}

void kvc__table_destroy(struct kvc__table *t)
{
    free(t->buckets);
    kvc__table_init(t);
}

static int grow(struct kvc__table *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 64;
    struct kvc_op **b = calloc(n, sizeof *b);
    if (!b)
        return -1;
    struct kvc__table old = *t;
    t->buckets = b;
    t->nbuckets = n;
    for (size_t i = 0; i < old.nbuckets; i++) {
        struct kvc_op *op = old.buckets[i];
        while (op) {
            struct kvc_op *next = op->next_;
            size_t j = bucket_of(t, op->id_);
            op->next_ = t->buckets[j];
            t->buckets[j] = op;
            op = next;
        }
    }
    free(old.buckets);
    return 0;
}

int kvc__table_add(struct kvc__table *t, struct kvc_op *op)
{
    /* Load factor 1: chains stay short without a second allocation per op. */
    if (t->count >= t->nbuckets && grow(t) != 0)
        return -1;
    size_t j = bucket_of(t, op->id_);
    op->next_ = t->buckets[j];
    t->buckets[j] = op;
    t->count++;
    if (op->deadline_ns_ < t->earliest)
        t->earliest = op->deadline_ns_;
    return 0;
}

struct kvc_op *kvc__table_take(struct kvc__table *t, uint64_t id)
{
    if (!t->count)
        return NULL;
    for (struct kvc_op **pp = &t->buckets[bucket_of(t, id)]; *pp; pp = &(*pp)->next_) {
        struct kvc_op *op = *pp;
        if (op->id_ == id) {
            *pp = op->next_;
            op->next_ = NULL;
            if (!--t->count)
                t->earliest = UINT64_MAX;
            return op;
        }
    }
    return NULL;
}

size_t kvc__table_drain(struct kvc__table *t, bool (*pred)(const struct kvc_op *, void *),
                        void *arg, struct kvc_op **head, struct kvc_op **tail)
{
    size_t moved = 0;
    uint64_t kept_min = UINT64_MAX;
    for (size_t i = 0; i < t->nbuckets && t->count; i++) {
        struct kvc_op **pp = &t->buckets[i];
        while (*pp) {
            struct kvc_op *op = *pp;
            if (pred && !pred(op, arg)) {
                if (op->deadline_ns_ < kept_min)
                    kept_min = op->deadline_ns_;
                pp = &op->next_;
                continue;
            }
            *pp = op->next_;
            op->next_ = NULL;
            if (*tail)
                (*tail)->next_ = op;
            else
                *head = op;
            *tail = op;
            t->count--;
            moved++;
        }
    }
    t->earliest = kept_min;   /* every op left was visited: exact (3) */
    return moved;
}

uint64_t kvc__table_earliest(const struct kvc__table *t) { return t->earliest; }
