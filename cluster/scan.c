/* cluster/scan.c -- cluster-wide scans: walk the ring's ranges in key order, ask each
 * range's replicas per the level, merge their answers by key and version.
 *
 * A scan is a sequence of rounds. A round covers the ranges from the one holding the
 * current position up to the last consecutive range with the same replica set (with RF
 * equal to the node count that is the whole ring at once), and asks those replicas for
 * [position, upper), where upper is the successor of the last range's end token (ranges
 * end inclusively: the successor of t is t + "\0") or the scan's end, whichever is first.
 * (1) The position is a key: either the scan's start (inclusive) or the last key a round
 *     fully settled (exclusive). Nothing but a key carries over between rounds or pages,
 *     so a scan, and a cursor, survive ring and liveness changes.
 * (2) A round waits for `needed` replies (UNAVAILABLE before sending when too few replicas
 *     are alive). A replica that stopped at its limit (more=true) is complete only up to
 *     its last key, so the merged round is bounded by the smallest such last key; keys
 *     after it are left for the next round, which starts strictly after it.
 * (3) Per key the newest version wins (kv_version_cmp); tombstones and expired records are
 *     dropped after the merge, so an old value on one replica never resurfaces from under a
 *     newer tombstone on another.
 * (4) At blocking levels (QUORUM and above) every replier that lacked a key's newest record
 *     is written it (version unchanged) and the round waits for those acks before going on,
 *     as a get does. At ONE and TWO scans do not repair.
 * (5) The answer holds at most `limit` live items in key order; more=true whenever keys may
 *     remain, and then at least one item was returned, so the caller's cursor (its last key)
 *     always exists. A timeout or UNAVAILABLE after some items were gathered answers OK with
 *     those items and more=true: the next page starts from the cursor and meets the fault
 *     itself.
 * (6) The first round starts from a zero-delay timer, so the callback never runs before
 *     kv_cluster_scan returns (cluster.h invariant 6). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/internal.h"
#include "common/log.h"
#include "proto/codec.h"

enum srep_state { SREP_DOWN, SREP_SENT, SREP_OK, SREP_ERR };

struct srep {
    uint32_t id;
    uint8_t st;
    Kv__ReplicaScanReply *reply;    /* owned copy (SREP_OK) */
    unsigned repairs;               /* repair writes not acked yet */
};

struct item {
    uint8_t *key, *val;
    size_t key_len, val_len;
};

struct scan_op {
    struct kv_coord_op hdr;
    kv_cluster_cb cb;
    void *arg;
    enum kv_level level;
    bool blocks, keys_only, started, merged, repairing, answered;
    uint32_t limit, timeout_ms;
    struct kv_vec end;              /* the scan's end (exclusive); empty: none */
    struct kv_vec cur;              /* the position (1) */
    bool cur_excl;
    struct kv_vec upper;            /* this round's exclusive bound; empty: none */
    struct kv_vec round_end;        /* this round's last range end token (inclusive) */
    bool round_final;               /* nothing after upper is wanted */
    struct kv_vec bound;            /* (2), valid when has_bound */
    bool has_bound, limit_more;
    struct kv_coord_need nd;
    size_t n;
    struct srep rep[KV_RING_MAX_RF];
    struct item *items;
    size_t n_items, cap_items;
    enum kv_status first_err;
    char first_msg[128];
};

static struct kv_slice vs(const struct kv_vec *v) { return kv_slice_of(v->ptr, v->len); }

static bool vset(struct kv_vec *v, struct kv_slice s)
{
    v->len = 0;
    return kv_vec_append(v, s.ptr ? s.ptr : "", s.len) == 0;
}

static struct kv_slice bin(const ProtobufCBinaryData *b) { return kv_slice_of(b->data, b->len); }

static void reset_replies(struct scan_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        if (op->rep[i].reply)
            kv__replica_scan_reply__free_unpacked(op->rep[i].reply, NULL);
        op->rep[i].reply = NULL;
    }
    memset(op->rep, 0, sizeof op->rep);
    op->n = 0;
}

static void scan_free(struct scan_op *op)
{
    reset_replies(op);
    for (size_t i = 0; i < op->n_items; i++) {
        free(op->items[i].key);
        free(op->items[i].val);
    }
    free(op->items);
    kv_vec_free(&op->end);
    kv_vec_free(&op->cur);
    kv_vec_free(&op->upper);
    kv_vec_free(&op->round_end);
    kv_vec_free(&op->bound);
    free(op);
}

static void scan_destroy(struct scan_op *op)
{
    kv_cluster__op_timer_cancel(&op->hdr);
    kv_cluster__op_remove(op->hdr.c, &op->hdr);
    scan_free(op);
}

static void scan_answer(struct scan_op *op, enum kv_status st, bool more, const char *why)
{
    struct kv_cluster_item *items = NULL;
    struct kv_cluster_result r;
    memset(&r, 0, sizeof r);
    r.st = st;
    r.err.code = st;
    if (st != KV_OK)
        snprintf(r.err.msg, sizeof r.err.msg, "%s", why ? why : kv_status_str(st));
    if (st == KV_OK && op->n_items) {
        items = malloc(op->n_items * sizeof *items);
        if (!items) {
            r.st = KV_NOMEM;
            kv_err_set(&r.err, KV_NOMEM, "scan: out of memory");
        } else {
            for (size_t i = 0; i < op->n_items; i++) {
                items[i].key = kv_slice_of(op->items[i].key, op->items[i].key_len);
                items[i].value = kv_slice_of(op->items[i].val ? op->items[i].val
                                                              : (const uint8_t *)"",
                                             op->items[i].val_len);
            }
            r.items = items;
            r.n_items = op->n_items;
        }
    }
    r.more = r.st == KV_OK && more && op->n_items > 0;
    r.required = op->nd.required;
    if (r.st == KV_TIMEOUT)
        op->hdr.c->stats.timeouts++;
    if (r.st == KV_UNAVAILABLE)
        op->hdr.c->stats.unavailable++;
    op->answered = true;
    op->cb(op->arg, &r);
    free(items);
}

static void scan_finish(struct scan_op *op, enum kv_status st, bool more, const char *why)
{
    scan_answer(op, st, more, why);
    scan_destroy(op);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static bool same_set(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    if (na != nb)
        return false;
    uint32_t x[KV_RING_MAX_RF], y[KV_RING_MAX_RF];
    memcpy(x, a, na * sizeof *a);
    memcpy(y, b, nb * sizeof *b);
    qsort(x, na, sizeof *x, cmp_u32);
    qsort(y, nb, sizeof *y, cmp_u32);
    return memcmp(x, y, na * sizeof *x) == 0;
}

/* --- a round ------------------------------------------------------------------------- */

static void scan_round(struct scan_op *op)
{
    struct kv_cluster *c = op->hdr.c;
    if (op->n_items >= op->limit) {
        scan_finish(op, KV_OK, true, NULL);
        return;
    }
    if (op->end.len && kv_slice_cmp(vs(&op->cur), vs(&op->end)) >= 0) {
        scan_finish(op, KV_OK, false, NULL);
        return;
    }
    const struct kv_ring *ring = c->ring;
    size_t nr = kv_ring_range_count(ring);
    size_t r = op->cur.len ? kv_ring_range_of(ring, vs(&op->cur)) : 0;
    struct kv_slice rs, re;
    if (r < nr) {
        kv_ring_range(ring, r, &rs, &re);
        if (op->cur_excl && re.len && kv_slice_cmp(vs(&op->cur), re) == 0)
            r++;            /* strictly after a range's end token: the next range */
    }
    if (r >= nr) {
        if (nr == 0)
            scan_finish(op, KV_UNAVAILABLE, false, "the ring is empty");
        else
            scan_finish(op, KV_OK, false, NULL);
        return;
    }
    uint32_t ids[KV_RING_MAX_RF], next[KV_RING_MAX_RF];
    size_t n = kv_ring_range_replicas(ring, r, c->o.rf, ids);
    size_t last = r;
    for (;;) {
        kv_ring_range(ring, last, &rs, &re);
        if (last + 1 >= nr || (op->end.len && re.len && kv_slice_cmp(vs(&op->end), re) <= 0))
            break;
        size_t nn = kv_ring_range_replicas(ring, last + 1, c->o.rf, next);
        if (!same_set(ids, n, next, nn))
            break;
        last++;
    }
    bool ok = true;
    if (re.len == 0) {
        ok &= vset(&op->upper, vs(&op->end));
        op->round_final = true;
    } else {
        ok &= vset(&op->round_end, re);
        ok &= vset(&op->upper, re) && kv_vec_append(&op->upper, "", 1) == 0;
        op->round_final = op->end.len && kv_slice_cmp(vs(&op->end), vs(&op->upper)) <= 0;
        if (op->round_final)
            ok &= vset(&op->upper, vs(&op->end));
    }
    if (!ok) {
        scan_finish(op, KV_NOMEM, false, "scan: out of memory");
        return;
    }

    struct kv_err err = {0};
    if (kv_coord_need(c, op->level, ids, n, &op->nd, &err) != KV_OK) {
        scan_finish(op, err.code, false, err.msg);
        return;
    }
    uint32_t alive = kv_coord_alive_mask(c, ids, n);
    struct kv_cluster_result ur;
    memset(&ur, 0, sizeof ur);
    if (kv_coord_check_alive(c, &op->nd, ids, n, alive, &ur) != KV_OK) {
        if (op->n_items)
            scan_finish(op, KV_OK, true, NULL);     /* (5) */
        else
            scan_finish(op, KV_UNAVAILABLE, false, ur.err.msg);
        return;
    }

    reset_replies(op);
    op->n = n;
    op->merged = op->repairing = op->has_bound = op->limit_more = false;
    op->first_err = KV_OK;
    kv_cluster__op_rekey(c, &op->hdr);      /* replies to earlier rounds are now late */
    uint32_t remaining = op->limit - (uint32_t)op->n_items;
    uint64_t ask = (uint64_t)remaining + remaining / 4 + 8;
    Kv__ReplicaScan sc = KV__REPLICA_SCAN__INIT;
    sc.start.data = op->cur.ptr;
    sc.start.len = op->cur.len;
    sc.start_exclusive = op->cur_excl;
    sc.end.data = op->upper.ptr;
    sc.end.len = op->upper.len;
    sc.limit = ask > KV_CLUSTER__SCAN_MAX ? KV_CLUSTER__SCAN_MAX : (uint32_t)ask;
    /* Values are needed to repair even when the caller wants keys only (4). */
    sc.keys_only = op->keys_only && !op->blocks;
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.body_case = KV__PEER_MESSAGE__BODY_SCAN;
    pm.scan = &sc;
    for (size_t i = 0; i < n; i++) {
        op->rep[i].id = ids[i];
        if (alive >> i & 1) {
            op->rep[i].st = SREP_SENT;
            kv_cluster__send_op(&op->hdr, ids[i], &pm);
        }
    }
}

/* The next round, or the answer, once a round is merged and repaired. */
static void scan_advance(struct scan_op *op)
{
    if (op->n_items >= op->limit) {
        scan_finish(op, KV_OK, op->limit_more || op->has_bound || !op->round_final, NULL);
        return;
    }
    if (op->has_bound) {
        struct kv_vec t = op->cur;
        op->cur = op->bound;
        op->bound = t;
        op->cur_excl = true;
    } else if (op->round_final) {
        scan_finish(op, KV_OK, false, NULL);
        return;
    } else {
        struct kv_vec t = op->cur;
        op->cur = op->round_end;
        op->round_end = t;
        op->cur_excl = true;
    }
    scan_round(op);
}

/* --- merging ------------------------------------------------------------------------- */

struct repair_list {
    const Kv__Record **recs;
    size_t n, cap;
};

static bool repair_push(struct repair_list *l, const Kv__Record *r)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        const Kv__Record **p = realloc(l->recs, cap * sizeof *p);
        if (!p)
            return false;
        l->recs = p;
        l->cap = cap;
    }
    l->recs[l->n++] = r;
    return true;
}

static bool item_push(struct scan_op *op, const Kv__Record *r)
{
    if (op->n_items == op->cap_items) {
        size_t cap = op->cap_items ? op->cap_items * 2 : 64;
        struct item *p = realloc(op->items, cap * sizeof *p);
        if (!p)
            return false;
        op->items = p;
        op->cap_items = cap;
    }
    struct item *it = &op->items[op->n_items];
    memset(it, 0, sizeof *it);
    it->key = malloc(r->key.len);
    size_t vl = op->keys_only ? 0 : r->value.len;
    it->val = vl ? malloc(vl) : NULL;
    if (!it->key || (vl && !it->val)) {
        free(it->key);
        free(it->val);
        return false;
    }
    memcpy(it->key, r->key.data, r->key.len);
    it->key_len = r->key.len;
    if (vl)
        memcpy(it->val, r->value.data, vl);
    it->val_len = vl;
    op->n_items++;
    return true;
}

/* Sends l's records to node `to` in messages of at most KV_CLUSTER__MSG_BUDGET bytes;
 * returns how many messages (each gets one ack). */
static unsigned send_repairs(struct scan_op *op, uint32_t to, const struct repair_list *l)
{
    unsigned msgs = 0;
    for (size_t i = 0; i < l->n;) {
        size_t j = i, bytes = 0;
        while (j < l->n) {
            size_t sz = l->recs[j]->key.len + l->recs[j]->value.len + 32;
            if (j > i && bytes + sz > KV_CLUSTER__MSG_BUDGET)
                break;
            bytes += sz;
            j++;
        }
        Kv__ReplicaWrite w = KV__REPLICA_WRITE__INIT;
        w.records = (Kv__Record **)&l->recs[i];
        w.n_records = j - i;
        Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
        pm.body_case = KV__PEER_MESSAGE__BODY_WRITE;
        pm.write = &w;
        kv_cluster__send_op(&op->hdr, to, &pm);
        msgs++;
        i = j;
    }
    return msgs;
}

static void scan_merge(struct scan_op *op)
{
    struct kv_cluster *c = op->hdr.c;
    uint64_t now = kv_cluster__now(c);
    op->merged = true;
    /* (2): the smallest last key of a replica that stopped at its limit. */
    op->has_bound = false;
    for (size_t i = 0; i < op->n; i++) {
        const Kv__ReplicaScanReply *rp = op->rep[i].reply;
        if (op->rep[i].st != SREP_OK || !rp->more)
            continue;
        struct kv_slice last = bin(&rp->records[rp->n_records - 1]->key);
        if (!op->has_bound || kv_slice_cmp(last, vs(&op->bound)) < 0) {
            if (!vset(&op->bound, last)) {
                scan_finish(op, KV_NOMEM, false, "scan: out of memory");
                return;
            }
            op->has_bound = true;
        }
    }
    size_t head[KV_RING_MAX_RF] = {0};
    struct repair_list fix[KV_RING_MAX_RF];
    memset(fix, 0, sizeof fix);
    bool oom = false;
    for (;;) {
        /* The smallest key at the heads, within the bound. */
        const Kv__Record *at[KV_RING_MAX_RF] = {0};
        struct kv_slice min = {0};
        bool any = false;
        for (size_t i = 0; i < op->n; i++) {
            const Kv__ReplicaScanReply *rp = op->rep[i].reply;
            if (op->rep[i].st != SREP_OK || head[i] >= rp->n_records)
                continue;
            const Kv__Record *r = rp->records[head[i]];
            if (op->has_bound && kv_slice_cmp(bin(&r->key), vs(&op->bound)) > 0)
                continue;
            if (!any || kv_slice_cmp(bin(&r->key), min) < 0)
                min = bin(&r->key);
            any = true;
        }
        if (!any)
            break;
        if (op->n_items >= op->limit) {
            op->limit_more = true;      /* records remain past the last item */
            break;
        }
        const Kv__Record *newest = NULL;
        for (size_t i = 0; i < op->n; i++) {
            const Kv__ReplicaScanReply *rp = op->rep[i].reply;
            if (op->rep[i].st != SREP_OK || head[i] >= rp->n_records)
                continue;
            const Kv__Record *r = rp->records[head[i]];
            if (kv_slice_cmp(bin(&r->key), min) != 0)
                continue;
            at[i] = r;
            struct kv_version v = {r->hlc, r->node};
            if (!newest || kv_version_cmp(v, (struct kv_version){newest->hlc, newest->node}) > 0)
                newest = r;
        }
        struct kv_version nv = {newest->hlc, newest->node};
        for (size_t i = 0; i < op->n; i++) {
            if (op->rep[i].st != SREP_OK)
                continue;
            bool is_stale = !at[i] || kv_version_cmp((struct kv_version){at[i]->hlc, at[i]->node},
                                                     nv) < 0;
            if (op->blocks && is_stale)
                oom |= !repair_push(&fix[i], newest);
            if (at[i])
                head[i]++;
        }
        if (kv_cluster__record_live(newest, now))
            oom |= !item_push(op, newest);
    }
    if (oom) {
        for (size_t i = 0; i < op->n; i++)
            free(fix[i].recs);
        scan_finish(op, KV_NOMEM, false, "scan: out of memory");
        return;
    }
    for (size_t i = 0; i < op->n; i++) {
        if (fix[i].n) {
            op->rep[i].repairs += send_repairs(op, op->rep[i].id, &fix[i]);
            c->stats.read_repairs += fix[i].n;
            op->repairing = true;
        }
        free(fix[i].recs);
    }
    if (!op->repairing)
        scan_advance(op);
}

/* --- replies ------------------------------------------------------------------------- */

/* A reply must stay inside what was asked: keys strictly increasing within
 * [cur, upper) (cur excluded when cur_excl), and more only with at least one record. */
static bool reply_in_bounds(const struct scan_op *op, const Kv__ReplicaScanReply *sr)
{
    if (sr->more && !sr->n_records)
        return false;
    for (size_t k = 0; k < sr->n_records; k++) {
        struct kv_slice key = bin(&sr->records[k]->key);
        int lo = kv_slice_cmp(key, vs(&op->cur));
        if (lo < 0 || (lo == 0 && op->cur_excl))
            return false;
        if (op->upper.len && kv_slice_cmp(key, vs(&op->upper)) >= 0)
            return false;
        if (k && kv_slice_cmp(bin(&sr->records[k - 1]->key), key) >= 0)
            return false;
    }
    return true;
}

static Kv__ReplicaScanReply *copy_reply(const Kv__ReplicaScanReply *sr)
{
    size_t n = kv__replica_scan_reply__get_packed_size(sr);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    kv__replica_scan_reply__pack(sr, buf);
    Kv__ReplicaScanReply *d = kv__replica_scan_reply__unpack(NULL, n, buf);
    free(buf);
    return d;
}

static void scan_progress(struct scan_op *op)
{
    if (op->merged)
        return;
    uint32_t ok = 0, sent = 0;
    for (size_t i = 0; i < op->n; i++) {
        ok |= (uint32_t)(op->rep[i].st == SREP_OK) << i;
        sent |= (uint32_t)(op->rep[i].st == SREP_SENT) << i;
    }
    if (kv_coord_need_met(&op->nd, op->n, ok)) {
        scan_merge(op);
    } else if (!kv_coord_need_met(&op->nd, op->n, ok | sent)) {
        if (op->n_items)
            scan_finish(op, KV_OK, true, NULL);
        else
            scan_finish(op, op->first_err ? op->first_err : KV_INTERNAL, false, op->first_msg);
    }
}

static bool scan_reply(struct kv_coord_op *hdr, uint32_t from, const Kv__PeerMessage *m)
{
    struct scan_op *op = (struct scan_op *)hdr;
    struct srep *rp = NULL;
    for (size_t i = 0; i < op->n; i++)
        if (op->rep[i].id == from && op->rep[i].st != SREP_DOWN)
            rp = &op->rep[i];
    if (!rp)
        return false;
    if (m->body_case == KV__PEER_MESSAGE__BODY_WRITE_ACK) {
        if (!rp->repairs)
            return true;                /* a duplicate */
        rp->repairs--;
        if (op->repairing) {
            for (size_t i = 0; i < op->n; i++)
                if (op->rep[i].repairs)
                    return true;
            op->repairing = false;
            scan_advance(op);
        }
        return true;
    }
    if (m->body_case != KV__PEER_MESSAGE__BODY_SCAN_REPLY)
        return false;
    const Kv__ReplicaScanReply *sr = m->scan_reply;
    if (sr->status == KV__STATUS__OK && !reply_in_bounds(op, sr))
        return false;
    if (rp->st != SREP_SENT)
        return true;
    if (op->merged) {
        rp->st = SREP_ERR;              /* late for this round's merge: not kept */
        return true;
    }
    if (sr->status == KV__STATUS__OK) {
        if (!(rp->reply = copy_reply(sr))) {
            rp->st = SREP_ERR;
            if (!op->first_err) {
                op->first_err = KV_NOMEM;
                snprintf(op->first_msg, sizeof op->first_msg, "scan: out of memory");
            }
        } else {
            rp->st = SREP_OK;
        }
    } else {
        rp->st = SREP_ERR;
        if (!op->first_err) {
            op->first_err = kv_codec_status_from_wire(sr->status);
            if (op->first_err == KV_OK || op->first_err == KV_NOT_FOUND)
                op->first_err = KV_INTERNAL;
            snprintf(op->first_msg, sizeof op->first_msg, "replica %u: %s", from,
                     sr->message && sr->message[0] ? sr->message
                                                   : kv_status_str(op->first_err));
        }
    }
    scan_progress(op);
    return true;
}

static void scan_timeout(struct kv_coord_op *hdr)
{
    struct scan_op *op = (struct scan_op *)hdr;
    if (!op->started) {
        op->started = true;
        kv_cluster__op_deadline_in(hdr, op->timeout_ms);
        kv_cluster__op_timer(hdr, op->timeout_ms);
        scan_round(op);
        return;
    }
    for (size_t i = 0; i < op->n; i++)
        if (op->rep[i].st == SREP_SENT)
            hdr->c->stats.replica_timeouts++;
    if (op->n_items) {
        scan_finish(op, KV_OK, true, NULL);
    } else {
        char why[96];
        snprintf(why, sizeof why, "scan timed out after %u ms", op->timeout_ms);
        scan_finish(op, KV_TIMEOUT, false, why);
    }
}

static void scan_shutdown(struct kv_coord_op *hdr)
{
    struct scan_op *op = (struct scan_op *)hdr;
    if (!op->answered)
        scan_answer(op, KV_SHUTDOWN, false, "the node is shutting down");
    scan_free(op);
}

static const struct kv_coord_op_vt scan_vt = {scan_reply, scan_timeout, scan_shutdown};

void kv_coord_scan(struct kv_cluster *c, struct kv_slice start, struct kv_slice end,
                   struct kv_slice after, uint32_t limit, bool keys_only, enum kv_level level,
                   uint32_t timeout_ms, kv_cluster_cb cb, void *arg)
{
    struct kv_err err = {0};
    struct kv_cluster_result r;
    memset(&r, 0, sizeof r);
    if (c->freeing) {
        r.st = KV_SHUTDOWN;
        kv_err_set(&r.err, KV_SHUTDOWN, "the node is shutting down");
        cb(arg, &r);
        return;
    }
    level = kv_coord_level(c, level);
    struct kv_coord_need nd;
    enum kv_status st = KV_OK;
    if (start.len > KV_STORE_KEY_MAX || end.len > KV_STORE_KEY_MAX ||
        after.len > KV_STORE_KEY_MAX)
        st = kv_err_set(&err, KV_INVALID, "scan bounds and cursor are keys of at most %u bytes",
                        KV_STORE_KEY_MAX);
    if (st == KV_OK)
        st = kv_coord_need(c, level, NULL, 0, &nd, &err);
    if (st == KV_OK)
        st = kv_cluster__admit(c, &err);
    struct scan_op *op = st == KV_OK ? calloc(1, sizeof *op) : NULL;
    if (st == KV_OK && !op)
        st = kv_err_set(&err, KV_NOMEM, "scan: out of memory");
    if (st == KV_OK) {
        bool from_after = after.len && kv_slice_cmp(after, start) >= 0;
        if (!vset(&op->end, end) || !vset(&op->cur, from_after ? after : start)) {
            scan_free(op);
            op = NULL;
            st = kv_err_set(&err, KV_NOMEM, "scan: out of memory");
        } else {
            op->cur_excl = from_after;
        }
    }
    if (st != KV_OK) {
        r.st = st;
        r.err = err;
        kv_coord_answer_later(c, cb, arg, &r);
        return;
    }
    op->hdr.vt = &scan_vt;
    op->cb = cb;
    op->arg = arg;
    op->level = level;
    op->blocks = kv_coord_level_blocks(level);
    op->keys_only = keys_only;
    op->limit = limit ? limit : c->o.scan_default_limit;
    op->timeout_ms = timeout_ms ? timeout_ms : c->o.default_timeout_ms;
    kv_cluster__op_add(c, &op->hdr);
    kv_cluster__op_timer(&op->hdr, 0);      /* (6) */
}
