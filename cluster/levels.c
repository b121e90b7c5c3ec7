/* cluster/levels.c -- what each consistency level needs from a replica set, whether the
 * live replicas can give it, and answers decided before anything is sent (cluster.h
 * invariant 6). Used by every coordinator: coord.c, linear.c, paxos.c, scan.c.
 *
 * (1) Every level counts against the replica set's size n (with fewer nodes than rf the
 *     set is smaller): ONE/TWO/THREE need 1/2/3, QUORUM n/2+1, ALL n; LOCAL_ONE and
 *     LOCAL_QUORUM count only replicas in this node's region (one, or a majority of them);
 *     EACH_QUORUM needs a majority of the replicas in every region the set spans. A level
 *     needing more replicas than the set has is UNAVAILABLE. */
#include <stdlib.h>
#include <string.h>
#include "cluster/internal.h"

/* --- levels -------------------------------------------------------------------------- */

enum kv_level kv_coord_level(const struct kv_cluster *c, enum kv_level l)
{
    return l == KV_LEVEL_DEFAULT ? c->o.default_level : l;
}

bool kv_coord_level_blocks(enum kv_level l)
{
    return l != KV_LEVEL_ONE && l != KV_LEVEL_TWO && l != KV_LEVEL_LOCAL_ONE;
}

enum kv_status kv_coord_need(const struct kv_cluster *c, enum kv_level level,
                             const uint32_t *ids, size_t n, struct kv_coord_need *nd,
                             struct kv_err *err)
{
    memset(nd, 0, sizeof *nd);
    nd->level = level;
    uint32_t k = 0;
    switch (level) {
    case KV_LEVEL_ONE: k = 1; break;
    case KV_LEVEL_TWO: k = 2; break;
    case KV_LEVEL_THREE: k = 3; break;
    case KV_LEVEL_QUORUM: k = (uint32_t)n / 2 + 1; break;
    case KV_LEVEL_ALL: k = (uint32_t)n; break;
    case KV_LEVEL_LOCAL_ONE:
    case KV_LEVEL_LOCAL_QUORUM: {
        uint32_t local = 0;
        for (size_t i = 0; i < n; i++) {
            bool mine = strcmp(kv_cluster__region_of(c, ids[i]), c->region) == 0;
            nd->group[i] = mine ? 0 : -1;
            local += mine;
        }
        nd->n_groups = 1;
        nd->need[0] = level == KV_LEVEL_LOCAL_ONE ? 1 : local / 2 + 1;
        nd->required = nd->need[0];
        return KV_OK;
    }
    case KV_LEVEL_EACH_QUORUM: {
        const char *names[KV_RING_MAX_RF];
        uint32_t count[KV_RING_MAX_RF] = {0};
        for (size_t i = 0; i < n; i++) {
            const char *r = kv_cluster__region_of(c, ids[i]);
            unsigned g = 0;
            while (g < nd->n_groups && strcmp(names[g], r) != 0)
                g++;
            if (g == nd->n_groups)
                names[nd->n_groups++] = r;
            nd->group[i] = (int8_t)g;
            count[g]++;
        }
        for (unsigned g = 0; g < nd->n_groups; g++) {
            nd->need[g] = count[g] / 2 + 1;
            nd->required += nd->need[g];
        }
        if (!nd->n_groups) {            /* an empty ring: nothing can answer */
            nd->n_groups = 1;
            nd->need[0] = nd->required = 1;
        }
        return KV_OK;
    }
    case KV_LEVEL_LINEARIZABLE:
        /* get/put/delete at LINEARIZABLE go to linear.c; this is reached by scans. */
        return kv_err_set(err, KV_INVALID,
                          "LINEARIZABLE applies to get, put, delete and cas; not to scans");
    default:
        return kv_err_set(err, KV_INVALID, "unknown consistency level %d", (int)level);
    }
    nd->n_groups = 1;
    nd->need[0] = nd->required = k ? k : 1;
    return KV_OK;
}

static void group_counts(const struct kv_coord_need *nd, size_t n, uint32_t mask,
                         uint32_t *count)
{
    memset(count, 0, KV_RING_MAX_RF * sizeof *count);
    for (size_t i = 0; i < n; i++)
        if ((mask >> i & 1) && nd->group[i] >= 0)
            count[nd->group[i]]++;
}

bool kv_coord_need_met(const struct kv_coord_need *nd, size_t n, uint32_t mask)
{
    uint32_t count[KV_RING_MAX_RF];
    group_counts(nd, n, mask, count);
    for (unsigned g = 0; g < nd->n_groups; g++)
        if (count[g] < nd->need[g])
            return false;
    return true;
}

uint32_t kv_coord_alive_mask(const struct kv_cluster *c, const uint32_t *ids, size_t n)
{
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (kv_members_is_up(c->members, ids[i]))
            m |= 1u << i;
    return m;
}

enum kv_status kv_coord_check_alive(const struct kv_cluster *c, const struct kv_coord_need *nd,
                                    const uint32_t *ids, size_t n, uint32_t alive_mask,
                                    struct kv_cluster_result *r)
{
    uint32_t count[KV_RING_MAX_RF];
    group_counts(nd, n, alive_mask, count);
    for (unsigned g = 0; g < nd->n_groups; g++) {
        if (count[g] >= nd->need[g])
            continue;
        r->st = KV_UNAVAILABLE;
        r->required = nd->need[g];
        r->alive = count[g];
        const char *lvl = kv_level_name(nd->level);
        if (nd->level == KV_LEVEL_EACH_QUORUM) {
            const char *region = "";
            for (size_t i = 0; i < n; i++)
                if (nd->group[i] == (int8_t)g)
                    region = kv_cluster__region_of(c, ids[i]);
            kv_err_set(&r->err, KV_UNAVAILABLE,
                       "%s needs %u live replicas in region '%s'; alive there: %u", lvl,
                       nd->need[g], region, count[g]);
        } else if (nd->level == KV_LEVEL_LOCAL_ONE || nd->level == KV_LEVEL_LOCAL_QUORUM) {
            kv_err_set(&r->err, KV_UNAVAILABLE,
                       "%s needs %u live replicas in region '%s'; alive there: %u", lvl,
                       nd->need[g], c->region, count[g]);
        } else {
            kv_err_set(&r->err, KV_UNAVAILABLE, "%s needs %u live replicas; alive: %u of %zu",
                       lvl, nd->need[g], count[g], n);
        }
        return KV_UNAVAILABLE;
    }
    return KV_OK;
}

/* --- answers decided at once (invariant 6 of cluster.h) ------------------------------ */

struct defer_op {
    struct kv_coord_op hdr;
    kv_cluster_cb cb;
    void *arg;
    struct kv_cluster_result r;
};

static void defer_fire(struct kv_coord_op *op)
{
    struct defer_op *d = (struct defer_op *)op;
    kv_cluster__op_remove(op->c, op);
    d->cb(d->arg, &d->r);
    free(d);
}

static bool defer_reply(struct kv_coord_op *op, uint32_t from, const Kv__PeerMessage *m)
{
    (void)op;
    (void)from;
    (void)m;
    return false;       /* nothing was sent under this id */
}

static void defer_shutdown(struct kv_coord_op *op)
{
    struct defer_op *d = (struct defer_op *)op;
    d->cb(d->arg, &d->r);
    free(d);
}

static const struct kv_coord_op_vt defer_vt = {defer_reply, defer_fire, defer_shutdown};

void kv_coord_answer_later(struct kv_cluster *c, kv_cluster_cb cb, void *arg,
                           const struct kv_cluster_result *r)
{
    if (r->st == KV_UNAVAILABLE)
        c->stats.unavailable++;
    struct defer_op *d = calloc(1, sizeof *d);
    if (!d || c->freeing) {
        /* Out of memory (or freeing, when no timer may start): answering now is the
         * only answer left. */
        free(d);
        struct kv_cluster_result copy = *r;
        if (c->freeing)
            copy.st = KV_SHUTDOWN;
        cb(arg, &copy);
        return;
    }
    d->hdr.vt = &defer_vt;
    d->cb = cb;
    d->arg = arg;
    d->r = *r;
    d->r.value = kv_slice_of(NULL, 0);
    d->r.items = NULL;
    d->r.n_items = 0;
    kv_cluster__op_add(c, &d->hdr);
    kv_cluster__op_timer(&d->hdr, 0);
}

void kv_coord_fail_later(struct kv_cluster *c, kv_cluster_cb cb, void *arg,
                         const struct kv_err *err)
{
    struct kv_cluster_result r;
    memset(&r, 0, sizeof r);
    r.st = err->code;
    r.err = *err;
    kv_coord_answer_later(c, cb, arg, &r);
}
