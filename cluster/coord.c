/* cluster/coord.c -- the coordinator of point requests: puts, deletes and gets over the
 * replicas the ring names, at the levels of levels.c (docs/replication.md).
 *
 * (1) A key's replicas are kv_ring_replicas(ring, key, rf); with fewer nodes than rf the
 *     set is smaller and every level counts against its size n (levels.c (1)).
 * (2) UNAVAILABLE is decided before any message is sent and before any hint is stored:
 *     such a write was applied nowhere (cluster.h invariant 2).
 * (3) Only acknowledgements from real replicas count towards a level; hints stored for a
 *     down replica never do (cluster.h invariant 4). The one exception is the fallback
 *     copy of (7), at ONE and LOCAL_ONE only. A write is answered OK at the
 *     `needed`-th ack, then kept until every replica it was sent to acked or the timeout,
 *     so the ones that never acked get a hint.
 * (4) A client write at a level below LINEARIZABLE is minted its version here:
 *     {kv_hlc_now, writer} (cluster.c (6); LINEARIZABLE writes mint in linear.c, ballots in
 *     paxos.c). Read repair writes the newest record exactly as read (cluster.h invariant 5).
 * (5) A get answers with the newest of the first `needed` replies (no record < any record).
 *     At blocking levels (QUORUM and above) stale repliers are written the newest record
 *     first and the answer waits for their acks, so a later reader cannot see an older
 *     value; if the op times out during that write-back it answers with the newest record
 *     anyway (documented: then a new->old inversion is possible). At ONE, TWO and LOCAL_ONE
 *     it answers at once and repairs stale repliers, late ones included, in the background.
 * (6) A replica that answers with an error has not answered; when errors make a level
 *     unreachable the op answers at once: a write with TIMEOUT (outcome unknown) unless no
 *     replica acked, none is still pending and no hint was stored, in which case the
 *     replica's error is the answer (definitely not applied).
 * (7) Sloppy fallback, at ONE and LOCAL_ONE only, and only when none of the key's natural
 *     replicas is alive (in any region: a LOCAL_ONE with a live replica elsewhere stays
 *     UNAVAILABLE) and the coordinator is not one of them. The coordinator then stands in
 *     for the replicas (Dynamo's sloppy quorum, with the coordinator as the fallback node):
 *     a write is sent as a ReplicaWrite to itself (the replica path: acked once durable) and
 *     a hint of it is stored for every natural replica; that one fallback ack is the ack ONE
 *     needs, and the answer also waits until every hint is durable, so a crash after the OK
 *     cannot keep the write from the replicas (a hint that fails to store turns the answer
 *     into TIMEOUT: the copy exists, but may never reach them). When a hint would exceed the
 *     hint bounds the write is refused UNAVAILABLE before anything is sent or stored. A read
 *     reads the coordinator's own store, which may be stale or NOT_FOUND: that is ONE. The
 *     answer says so (result.sloppy, alive 0; stats sloppy_writes, sloppy_reads). The copy
 *     stays in the coordinator's data column family for a key it does not own: scans ask only
 *     a range's replicas, so it is invisible to them, and the hints deliver it to the natural
 *     replicas once they are seen up again (docs/replication.md). Every other level keeps
 *     answering UNAVAILABLE (2).
 * (8) A replica that answers a read with CORRUPTION (its copy fails a checksum) is an error
 *     per (6): the answer comes from the others, never from the bad bytes. When the read is
 *     done and a good record is known, that replica is sent the newest record with
 *     repair_corrupt set, which its store applies as a replacement (storage/store.h
 *     kv_write.replace_corrupt). With no good record (the others hold nothing) there is
 *     nothing to repair from, and the error stays until a write reaches the key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/internal.h"
#include "common/log.h"
#include "proto/codec.h"

static int popcount(uint32_t m) { return __builtin_popcount(m); }

/* --- point ops ----------------------------------------------------------------------- */

enum rep_state { REP_DOWN, REP_SENT, REP_OK, REP_ERR };

struct rep {
    uint32_t id;
    uint8_t st;
    bool has;               /* read: the replica holds a record of version ver */
    bool repairing;         /* read: a blocking write-back is in flight */
    bool hinted;            /* write: a hint was stored for it */
    bool corrupt;           /* read: it answered CORRUPTION (8) */
    struct kv_version ver;
};

struct point_op {
    struct kv_coord_op hdr;
    bool is_read, answered, repairing, hinted_any;
    bool sloppy;            /* (7): rep[0] is this node, standing in for natural[] */
    bool hint_failed;       /* (7): a hint of the fallback copy was not stored */
    uint32_t hints_waiting; /* (7): hints of the fallback copy not yet durable */
    uint32_t natural[KV_RING_MAX_RF];
    size_t n_natural;
    enum kv_level level;
    uint32_t timeout_ms;
    kv_cluster_cb cb;
    void *arg;
    struct kv_coord_need nd;
    uint32_t alive_mask;
    size_t n;
    struct rep rep[KV_RING_MAX_RF];
    uint8_t *key;
    size_t key_len;
    Kv__Record best;        /* write: the record written; read: the newest seen */
    bool has_best;
    Kv__Record ans;         /* read: the answer frozen when a blocking repair starts */
    bool has_ans;
    enum kv_status first_err;
    char first_msg[128];
};

static const struct kv_coord_op_vt point_vt;

static bool rec_set(Kv__Record *dst, const uint8_t *key, size_t key_len, const Kv__Record *src)
{
    free(dst->value.data);
    kv__record__init(dst);
    dst->key.data = (uint8_t *)key;
    dst->key.len = key_len;
    dst->hlc = src->hlc;
    dst->node = src->node;
    dst->tombstone = src->tombstone;
    dst->expires_at_ms = src->expires_at_ms;
    if (src->value.len) {
        if (!(dst->value.data = malloc(src->value.len)))
            return false;
        memcpy(dst->value.data, src->value.data, src->value.len);
        dst->value.len = src->value.len;
    }
    return true;
}

static struct kv_version rec_ver(const Kv__Record *r)
{
    struct kv_version v = {r->hlc, r->node};
    return v;
}

static uint32_t mask_of(const struct point_op *op, enum rep_state st)
{
    uint32_t m = 0;
    for (size_t i = 0; i < op->n; i++)
        if (op->rep[i].st == st)
            m |= 1u << i;
    return m;
}

static void point_free(struct point_op *op)
{
    kv_cluster__op_timer_cancel(&op->hdr);
    kv_cluster__op_remove(op->hdr.c, &op->hdr);
    free(op->key);
    free(op->best.value.data);
    free(op->ans.value.data);
    free(op);
}

static void base_result(const struct point_op *op, struct kv_cluster_result *r,
                        enum kv_status st)
{
    memset(r, 0, sizeof *r);
    r->st = st;
    r->err.code = st;
    r->acks = (uint32_t)popcount(mask_of(op, REP_OK));
    r->required = op->nd.required;
    /* (7): alive counts natural replicas, and none was; the fallback's ack is in acks. */
    r->alive = op->sloppy ? 0 : (uint32_t)popcount(op->alive_mask);
    r->sloppy = op->sloppy;
}

/* The message of an OK answer served by the fallback copy (7). */
static void sloppy_note(struct point_op *op, struct kv_cluster_result *r)
{
    snprintf(r->err.msg, sizeof r->err.msg,
             "%s: no replica of the key alive: %s node %u's fallback copy (sloppy; %zu "
             "replicas hinted)",
             kv_level_name(op->level), op->is_read ? "read from" : "stored as",
             op->hdr.c->o.node_id, op->n_natural);
}

static void answer(struct point_op *op, struct kv_cluster_result *r)
{
    op->answered = true;
    if (r->st == KV_TIMEOUT)
        op->hdr.c->stats.timeouts++;
    op->cb(op->arg, r);
}

static void send_record(struct point_op *op, uint32_t to, const Kv__Record *rec,
                        bool repair_corrupt)
{
    Kv__Record *recs[1] = {(Kv__Record *)rec};
    Kv__ReplicaWrite w = KV__REPLICA_WRITE__INIT;
    w.repair_corrupt = repair_corrupt;
    w.n_records = 1;
    w.records = recs;
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.body_case = KV__PEER_MESSAGE__BODY_WRITE;
    pm.write = &w;
    kv_cluster__send_op(&op->hdr, to, &pm);
}

static void note_error(struct point_op *op, uint32_t from, Kv__Status st, const char *msg)
{
    if (op->first_err != KV_OK)
        return;
    op->first_err = kv_codec_status_from_wire(st);
    if (op->first_err == KV_OK || op->first_err == KV_NOT_FOUND)
        op->first_err = KV_INTERNAL;
    snprintf(op->first_msg, sizeof op->first_msg, "replica %u: %s", from,
             msg && msg[0] ? msg : kv_status_str(op->first_err));
}

/* --- writes -------------------------------------------------------------------------- */

static void write_finish(struct point_op *op)
{
    /* Replicas it was sent to that never acked get a hint (invariant 3). */
    for (size_t i = 0; i < op->n; i++) {
        struct rep *rp = &op->rep[i];
        if ((rp->st == REP_SENT || rp->st == REP_ERR) && !rp->hinted &&
            rp->id != op->hdr.c->o.node_id) {
            rp->hinted = true;
            kv_hint_add(op->hdr.c, rp->id, &op->best);
        }
    }
    point_free(op);
}

static void write_answer_ok(struct point_op *op)
{
    struct kv_cluster_result r;
    base_result(op, &r, KV_OK);
    r.version = rec_ver(&op->best);
    r.expires_at_ms = op->best.expires_at_ms;
    if (op->sloppy) {
        op->hdr.c->stats.sloppy_writes++;
        sloppy_note(op, &r);
    }
    answer(op, &r);
}

static void write_progress(struct point_op *op)
{
    uint32_t ok = mask_of(op, REP_OK), sent = mask_of(op, REP_SENT);
    if (op->hdr.c->o.debug_hint_counts_as_ack)     /* TEST ONLY: the bug cluster.h names */
        for (size_t i = 0; i < op->n; i++)
            ok |= (uint32_t)op->rep[i].hinted << i;
    bool hints_done = op->hints_waiting == 0;       /* always, unless sloppy (7) */
    if (!op->answered) {
        if (kv_coord_need_met(&op->nd, op->n, ok) && hints_done && !op->hint_failed) {
            write_answer_ok(op);
        } else if (!kv_coord_need_met(&op->nd, op->n, ok | sent) ||
                   (hints_done && op->hint_failed)) {
            struct kv_cluster_result r;
            if (!ok && !sent && !op->hinted_any) {
                base_result(op, &r, op->first_err);
                kv_err_set(&r.err, op->first_err, "%s; not applied", op->first_msg);
            } else {
                base_result(op, &r, KV_TIMEOUT);
                kv_err_set(&r.err, KV_TIMEOUT,
                           "%s; %u of %u required replicas acknowledged: the write may have "
                           "been applied",
                           op->first_msg, r.acks, r.required);
            }
            answer(op, &r);
        }
    }
    if (!sent && hints_done)
        write_finish(op);
}

/* (7): a hint of a sloppy write's fallback copy is durable (ok) or failed. A hint of an op
 * that already timed out finds it gone. */
static void sloppy_hint_stored(struct kv_cluster *c, uint64_t op_id, bool ok)
{
    struct kv_coord_op *hdr = kv_cluster__op_find(c, op_id);
    if (!hdr || hdr->vt != &point_vt)
        return;
    struct point_op *op = (struct point_op *)hdr;
    if (!op->sloppy || !op->hints_waiting)
        return;
    op->hints_waiting--;
    if (!ok && !op->hint_failed) {
        op->hint_failed = true;
        if (op->first_err == KV_OK)
            snprintf(op->first_msg, sizeof op->first_msg,
                     "a hint of the fallback copy could not be stored");
    }
    write_progress(op);
}

static bool write_reply(struct point_op *op, struct rep *rp, const Kv__PeerMessage *m)
{
    if (m->body_case != KV__PEER_MESSAGE__BODY_WRITE_ACK)
        return false;
    if (rp->st != REP_SENT)
        return true;            /* a duplicate */
    if (m->write_ack->status == KV__STATUS__OK) {
        rp->st = REP_OK;
    } else {
        rp->st = REP_ERR;
        note_error(op, rp->id, m->write_ack->status, m->write_ack->message);
    }
    write_progress(op);
    return true;
}

static void write_timeout(struct point_op *op)
{
    uint32_t sent = mask_of(op, REP_SENT);
    op->hdr.c->stats.replica_timeouts += (uint64_t)popcount(sent);
    if (!op->answered) {
        struct kv_cluster_result r;
        base_result(op, &r, KV_TIMEOUT);
        kv_err_set(&r.err, KV_TIMEOUT,
                   "timed out after %u ms: %u of %u required replicas acknowledged; the write "
                   "may have been applied",
                   op->timeout_ms, r.acks, r.required);
        answer(op, &r);
    }
    write_finish(op);
}

/* --- reads --------------------------------------------------------------------------- */

static bool stale(const struct point_op *op, const struct rep *rp)
{
    return op->has_best && rp->st == REP_OK && !rp->repairing &&
           (!rp->has || kv_version_cmp(rp->ver, rec_ver(&op->best)) < 0);
}

/* Writes the newest record back to rp (repair never mints: the version is as read). */
static void repair(struct point_op *op, struct rep *rp, bool blocking)
{
    send_record(op, rp->id, &op->best, false);
    rp->has = true;
    rp->ver = rec_ver(&op->best);
    rp->repairing = blocking;
    op->hdr.c->stats.read_repairs++;
}

static void read_answer(struct point_op *op, const Kv__Record *rec, bool has)
{
    struct kv_cluster_result r;
    base_result(op, &r, KV_OK);
    kv_cluster__read_result(op->hdr.c, &r, rec, has);
    if (op->sloppy) {
        op->hdr.c->stats.sloppy_reads++;
        sloppy_note(op, &r);
    }
    answer(op, &r);
}

/* Everything answered or timed out: repair in the background what is still stale, and
 * free. Acks of these repairs arrive for a gone op and are dropped. */
static void read_finish(struct point_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        struct rep *rp = &op->rep[i];
        if (stale(op, rp)) {
            repair(op, rp, false);
        } else if (rp->corrupt && op->has_best) {
            send_record(op, rp->id, &op->best, true);   /* (8) */
            op->hdr.c->stats.corrupt_repairs++;
        }
    }
    point_free(op);
}

static void read_progress(struct point_op *op)
{
    uint32_t ok = mask_of(op, REP_OK), sent = mask_of(op, REP_SENT);
    bool repairing = false;
    for (size_t i = 0; i < op->n; i++)
        repairing |= op->rep[i].repairing;
    if (!op->answered) {
        if (op->repairing) {
            if (!repairing)
                read_answer(op, &op->ans, op->has_ans);
        } else if (kv_coord_need_met(&op->nd, op->n, ok)) {
            uint32_t stale_mask = 0;
            if (kv_coord_level_blocks(op->level))
                for (size_t i = 0; i < op->n; i++)
                    if (stale(op, &op->rep[i]))
                        stale_mask |= 1u << i;
            if (stale_mask) {
                op->repairing = repairing = true;
                op->has_ans = rec_set(&op->ans, op->key, op->key_len, &op->best);
                for (size_t i = 0; i < op->n; i++)
                    if (stale_mask >> i & 1)
                        repair(op, &op->rep[i], true);
            } else {
                read_answer(op, &op->best, op->has_best);
            }
        } else if (!kv_coord_need_met(&op->nd, op->n, ok | sent)) {
            struct kv_cluster_result r;
            enum kv_status st = op->first_err ? op->first_err : KV_INTERNAL;
            base_result(op, &r, st);
            kv_err_set(&r.err, st, "%s; %u of %u required replicas answered", op->first_msg,
                       r.acks, r.required);
            answer(op, &r);
        }
    }
    if (!sent && !repairing)
        read_finish(op);
}

static bool read_reply(struct point_op *op, struct rep *rp, const Kv__PeerMessage *m)
{
    if (m->body_case == KV__PEER_MESSAGE__BODY_WRITE_ACK) {
        /* A repair's ack. An error leaves the replica stale; anti-entropy will find it. */
        if (rp->repairing) {
            rp->repairing = false;
            read_progress(op);
        }
        return true;
    }
    if (m->body_case != KV__PEER_MESSAGE__BODY_READ_REPLY)
        return false;
    const Kv__ReplicaReadReply *rr = m->read_reply;
    if (rr->status == KV__STATUS__OK &&
        (rr->record->key.len != op->key_len || memcmp(rr->record->key.data, op->key, op->key_len)))
        return false;
    if (rp->st != REP_SENT)
        return true;            /* a duplicate */
    if (rr->status == KV__STATUS__OK) {
        rp->st = REP_OK;
        rp->has = true;
        rp->ver = rec_ver(rr->record);
        if (!op->has_best || kv_version_cmp(rp->ver, rec_ver(&op->best)) > 0) {
            op->has_best = rec_set(&op->best, op->key, op->key_len, rr->record);
            if (!op->has_best)
                KV_ERROR("coord: out of memory copying a replica's record");
        }
    } else if (rr->status == KV__STATUS__NOT_FOUND) {
        rp->st = REP_OK;
        rp->has = false;
    } else {
        rp->st = REP_ERR;
        if (rr->status == KV__STATUS__CORRUPTION) {
            rp->corrupt = true;
            op->hdr.c->stats.corrupt_replies++;
        }
        note_error(op, rp->id, rr->status, rr->message);
    }
    read_progress(op);
    return true;
}

static void read_timeout(struct point_op *op)
{
    uint32_t sent = mask_of(op, REP_SENT);
    op->hdr.c->stats.replica_timeouts += (uint64_t)popcount(sent);
    if (!op->answered) {
        if (op->repairing) {
            /* The write-back did not finish in time: answer with the newest record of the
             * quorum anyway (invariant 5). */
            read_answer(op, &op->ans, op->has_ans);
        } else {
            struct kv_cluster_result r;
            base_result(op, &r, KV_TIMEOUT);
            kv_err_set(&r.err, KV_TIMEOUT,
                       "timed out after %u ms: %u of %u required replicas answered",
                       op->timeout_ms, r.acks, r.required);
            answer(op, &r);
        }
    }
    read_finish(op);
}

/* --- the op vtab --------------------------------------------------------------------- */

static bool point_reply(struct kv_coord_op *hdr, uint32_t from, const Kv__PeerMessage *m)
{
    struct point_op *op = (struct point_op *)hdr;
    for (size_t i = 0; i < op->n; i++)
        if (op->rep[i].id == from && op->rep[i].st != REP_DOWN)
            return op->is_read ? read_reply(op, &op->rep[i], m)
                               : write_reply(op, &op->rep[i], m);
    return false;               /* a reply from a node this op never asked */
}

static void point_timeout(struct kv_coord_op *hdr)
{
    struct point_op *op = (struct point_op *)hdr;
    if (op->is_read)
        read_timeout(op);
    else
        write_timeout(op);
}

static void point_shutdown(struct kv_coord_op *hdr)
{
    struct point_op *op = (struct point_op *)hdr;
    if (!op->answered) {
        struct kv_cluster_result r;
        base_result(op, &r, KV_SHUTDOWN);
        kv_err_set(&r.err, KV_SHUTDOWN, "the node is shutting down%s",
                   op->is_read ? "" : "; the write may have been applied");
        answer(op, &r);
    }
    free(op->key);
    free(op->best.value.data);
    free(op->ans.value.data);
    free(op);
}

static const struct kv_coord_op_vt point_vt = {point_reply, point_timeout, point_shutdown};

/* (7): whether a request the live replicas cannot serve may fall back to this node. */
static bool sloppy_allowed(const struct kv_cluster *c, enum kv_level level,
                           const uint32_t *ids, size_t n, uint32_t alive_mask)
{
    if ((level != KV_LEVEL_ONE && level != KV_LEVEL_LOCAL_ONE) || alive_mask || n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == c->o.node_id)
            return false;
    return true;
}

/* (7): the op's replica set becomes this node alone, needing its one answer; the natural
 * replicas are kept for the hints. */
static void sloppy_setup(struct kv_cluster *c, struct point_op *op, uint32_t *ids, size_t *n)
{
    op->sloppy = true;
    memcpy(op->natural, ids, *n * sizeof *ids);
    op->n_natural = *n;
    ids[0] = c->o.node_id;
    *n = 1;
    enum kv_level level = op->nd.level;
    memset(&op->nd, 0, sizeof op->nd);
    op->nd.level = level;
    op->nd.n_groups = 1;
    op->nd.need[0] = op->nd.required = 1;
    op->nd.group[0] = 0;
    op->alive_mask = 1;
}

/* The checks every point request passes before anything is sent; on failure the answer
 * is already on its way (deferred) and NULL is returned. */
static struct point_op *point_start(struct kv_cluster *c, struct kv_slice key,
                                    enum kv_level level, uint32_t timeout_ms, kv_cluster_cb cb,
                                    void *arg)
{
    struct kv_err err = {0};
    if (c->freeing) {
        struct kv_cluster_result r;
        memset(&r, 0, sizeof r);
        r.st = KV_SHUTDOWN;
        kv_err_set(&r.err, KV_SHUTDOWN, "the node is shutting down");
        cb(arg, &r);
        return NULL;
    }
    level = kv_coord_level(c, level);
    if (key.len == 0 || key.len > KV_STORE_KEY_MAX) {
        kv_err_set(&err, KV_INVALID, "key length %zu not in 1..%u", key.len, KV_STORE_KEY_MAX);
        kv_coord_fail_later(c, cb, arg, &err);
        return NULL;
    }
    struct point_op *op = calloc(1, sizeof *op);
    uint32_t ids[KV_RING_MAX_RF];
    size_t n = kv_ring_replicas(c->ring, key, c->o.rf, ids);
    enum kv_status st = op ? KV_OK : kv_err_set(&err, KV_NOMEM, "out of memory");
    if (st == KV_OK)
        st = kv_coord_need(c, level, ids, n, &op->nd, &err);
    if (st == KV_OK)
        st = kv_cluster__admit(c, &err);
    if (st != KV_OK) {
        free(op);
        kv_coord_fail_later(c, cb, arg, &err);
        return NULL;
    }
    op->alive_mask = kv_coord_alive_mask(c, ids, n);
    struct kv_cluster_result r;
    memset(&r, 0, sizeof r);
    /* TEST ONLY (cluster.h debug_hint_counts_as_ack): the down replicas count too. */
    uint32_t counted = c->o.debug_hint_counts_as_ack ? (1u << n) - 1 : op->alive_mask;
    if (kv_coord_check_alive(c, &op->nd, ids, n, counted, &r) != KV_OK) {
        if (!sloppy_allowed(c, level, ids, n, op->alive_mask)) {
            free(op);
            kv_coord_answer_later(c, cb, arg, &r);
            return NULL;
        }
        sloppy_setup(c, op, ids, &n);
    }
    if (!(op->key = malloc(key.len))) {
        free(op);
        kv_err_set(&err, KV_NOMEM, "out of memory");
        kv_coord_fail_later(c, cb, arg, &err);
        return NULL;
    }
    memcpy(op->key, key.ptr, key.len);
    op->key_len = key.len;
    op->hdr.vt = &point_vt;
    op->level = level;
    op->timeout_ms = timeout_ms ? timeout_ms : c->o.default_timeout_ms;
    op->cb = cb;
    op->arg = arg;
    op->n = n;
    for (size_t i = 0; i < n; i++)
        op->rep[i].id = ids[i];
    kv__record__init(&op->best);
    kv__record__init(&op->ans);
    kv_cluster__op_add(c, &op->hdr);
    kv_cluster__op_deadline_in(&op->hdr, op->timeout_ms);
    kv_cluster__op_timer(&op->hdr, op->timeout_ms);
    return op;
}

void kv_coord_write(struct kv_cluster *c, struct kv_slice key, struct kv_slice value,
                    bool tombstone, uint64_t ttl_ms, enum kv_level level, uint32_t timeout_ms,
                    kv_cluster_cb cb, void *arg)
{
    if (!c->freeing && value.len > c->o.max_value) {
        struct kv_err err;
        kv_err_set(&err, KV_TOO_LARGE, "value of %zu bytes over the limit of %u", value.len,
                   c->o.max_value);
        kv_coord_fail_later(c, cb, arg, &err);
        return;
    }
    struct point_op *op = point_start(c, key, level, timeout_ms, cb, arg);
    if (!op)
        return;
    uint64_t now = kv_cluster__now(c);
    Kv__Record *rec = &op->best;
    rec->key.data = op->key;
    rec->key.len = op->key_len;
    rec->hlc = kv_hlc_now(c->hlc, now);
    rec->node = c->writer;          /* cluster.c (6) */
    rec->tombstone = tombstone;
    rec->expires_at_ms = ttl_ms ? now + ttl_ms : 0;
    if (!tombstone && value.len) {
        if (!(rec->value.data = malloc(value.len))) {
            struct kv_cluster_result r;
            base_result(op, &r, KV_NOMEM);
            kv_err_set(&r.err, KV_NOMEM, "out of memory");
            point_free(op);
            kv_coord_answer_later(c, cb, arg, &r);
            return;
        }
        memcpy(rec->value.data, value.ptr, value.len);
        rec->value.len = value.len;
    }
    op->has_best = true;
    if (op->sloppy) {
        /* (7): hints for every natural replica, or nothing at all. */
        if (!kv_hint_room(c, op->natural, op->n_natural, rec)) {
            struct kv_cluster_result r;
            base_result(op, &r, KV_UNAVAILABLE);
            r.sloppy = false;
            kv_err_set(&r.err, KV_UNAVAILABLE,
                       "%s: no replica of the key alive, and the hint store is full "
                       "(max_hints_per_node / max_hint_bytes): no fallback copy; not applied",
                       kv_level_name(op->level));
            point_free(op);
            kv_coord_answer_later(c, cb, arg, &r);
            return;
        }
        for (size_t i = 0; i < op->n_natural; i++) {
            if (kv_hint_add_notify(c, op->natural[i], rec, sloppy_hint_stored, op->hdr.id)) {
                op->hints_waiting++;
            } else if (!op->hint_failed) {
                op->hint_failed = true;
                snprintf(op->first_msg, sizeof op->first_msg,
                         "a hint of the fallback copy could not be stored");
            }
        }
        op->hinted_any = true;
    }
    /* Every alive replica, self included, through the same send path; a hint for every
     * down one, which never counts as an ack (invariant 3). With (7) the only "replica" is
     * this node's fallback copy. */
    for (size_t i = 0; i < op->n; i++) {
        struct rep *rp = &op->rep[i];
        if (op->alive_mask >> i & 1) {
            rp->st = REP_SENT;
            send_record(op, rp->id, rec, false);
        } else {
            rp->st = REP_DOWN;
            rp->hinted = op->hinted_any = true;
            kv_hint_add(c, rp->id, rec);
        }
    }
}

void kv_coord_get(struct kv_cluster *c, struct kv_slice key, enum kv_level level,
                  uint32_t timeout_ms, kv_cluster_cb cb, void *arg)
{
    struct point_op *op = point_start(c, key, level, timeout_ms, cb, arg);
    if (!op)
        return;
    op->is_read = true;
    Kv__ReplicaRead rd = KV__REPLICA_READ__INIT;
    rd.key.data = op->key;
    rd.key.len = op->key_len;
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.body_case = KV__PEER_MESSAGE__BODY_READ;
    pm.read = &rd;
    for (size_t i = 0; i < op->n; i++) {
        if (op->alive_mask >> i & 1) {
            op->rep[i].st = REP_SENT;
            kv_cluster__send_op(&op->hdr, op->rep[i].id, &pm);
        }
    }
}
