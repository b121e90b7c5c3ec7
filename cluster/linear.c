/* cluster/linear.c -- the LINEARIZABLE level for get/put/delete: a multi-writer atomic
 * register (MW-ABD) over the key's replica set with majority quorums (docs/cap.md).
 *
 * (1) The replica set is the one every level uses (kv_ring_replicas); q = n/2 + 1 of it.
 *     Only real replicas' answers count; hints never do (cluster.h invariant 4).
 * (2) A write takes two round trips. Phase 1 reads the key from every alive replica and
 *     waits for q answers; the new version is minted after the highest version among them
 *     was observed into the HLC, so it is strictly above every version that quorum holds and
 *     above the local clock (node id breaks ties). Phase 2 sends it to every alive replica
 *     and answers OK at q acks. A coordinator whose clock trails cannot lose a write that
 *     finished before it started: that write is on a quorum, which phase 1 meets.
 * (3) A read asks every alive replica and waits for q answers. When they hold one version
 *     (or none at all) it answers at once: one round trip. Otherwise it writes the newest
 *     record back, exactly as read (never re-minted), to every alive replica not known to
 *     hold it, and answers only once q replicas are known to hold it, so no later read can
 *     return an older value (no new->old inversion). opts.debug_skip_writeback (tests only)
 *     skips that write-back; opts.debug_linear_read_one (tests only) goes further: a read
 *     needs one live replica and answers with the first reply (q = 1, so no write-back
 *     either), which lets the minority side of a partition return stale values.
 * (4) UNAVAILABLE is decided before anything is sent (fewer than q replicas alive). A write
 *     timing out in phase 1 sent nothing (TIMEOUT, acks 0, "not applied" in the message); in
 *     phase 2 it answers TIMEOUT with its acks: it may have been applied. A read whose
 *     write-back does not finish answers TIMEOUT, never a value a later read may contradict.
 * (5) When a phase-1 reply says the key has Paxos state (it is CAS-managed), the write goes
 *     through Paxos instead (kv_paxos_write), so it is ordered with the key's CASes.
 * (6) Phases are separated by op ids (kv_cluster__op_rekey): a late phase-1 reply is
 *     dropped, never mistaken for a phase-2 ack.
 * (7) A phase still short of q answers a quarter of the timeout after the request started
 *     (and every quarter after) is sent again to the replicas that have not answered:
 *     reads are side-effect free and a record merges by version, so a resend is harmless
 *     and one lost message does not cost the whole timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/internal.h"
#include "common/log.h"
#include "proto/codec.h"

enum { LR_DOWN, LR_SENT, LR_OK, LR_ERR };

struct lin_rep {
    uint32_t id;
    uint8_t st;
    bool has;                   /* phase 1: holds a record of version ver */
    struct kv_version ver;
};

struct lin_op {
    struct kv_coord_op hdr;
    bool is_read, answered, phase2, paxos_seen, hinted, not_applied;
    kv_cluster_cb cb;
    void *arg;
    uint32_t timeout_ms, resend_ms, q, round_trips;
    uint64_t started;           /* mono ms */
    size_t n;
    uint32_t alive_mask, have_mask;   /* phase 2: replicas known to hold rec */
    struct lin_rep rep[KV_RING_MAX_RF];
    uint8_t *key;
    size_t key_len;
    Kv__Record best;            /* phase 1: the newest record seen */
    bool has_best;
    Kv__Record rec;             /* write: the new record; read: the record written back */
    uint64_t ttl_ms;
    enum kv_status first_err;
    char first_msg[128];
};

static const struct kv_coord_op_vt lin_vt;

static struct kv_version ver_of(const Kv__Record *r)
{
    struct kv_version v = {r->hlc, r->node};
    return v;
}

static uint32_t mask_of(const struct lin_op *op, int st)
{
    uint32_t m = 0;
    for (size_t i = 0; i < op->n; i++)
        if (op->rep[i].st == st)
            m |= 1u << i;
    return m;
}

static int popcount(uint32_t m) { return __builtin_popcount(m); }

/* Copies src's fields and value into dst (key pointing at op->key). */
static bool copy_rec(struct lin_op *op, Kv__Record *dst, const Kv__Record *src)
{
    return kv_cluster__record_copy(dst, op->key, op->key_len, src);
}

static void lin_release(struct lin_op *op)
{
    free(op->key);
    free(op->best.value.data);
    free(op->rec.value.data);
    free(op);
}

static void lin_free(struct lin_op *op)
{
    kv_cluster__op_timer_cancel(&op->hdr);
    kv_cluster__op_remove(op->hdr.c, &op->hdr);
    lin_release(op);
}

static void base(const struct lin_op *op, struct kv_cluster_result *r, enum kv_status st)
{
    memset(r, 0, sizeof *r);
    r->st = st;
    r->err.code = st;
    r->acks = (uint32_t)popcount(op->phase2 ? mask_of(op, LR_OK) | op->have_mask
                                            : mask_of(op, LR_OK));
    if (!op->is_read && !op->phase2)
        r->acks = 0;            /* phase 1 acks are reads: nothing was written */
    r->required = op->q;
    r->alive = (uint32_t)popcount(op->alive_mask);
    r->round_trips = op->round_trips;
}

static void answer(struct lin_op *op, struct kv_cluster_result *r)
{
    struct kv_cluster *c = op->hdr.c;
    op->answered = true;
    c->stats.linear_ops++;
    c->stats.linear_round_trips += op->round_trips;
    if (r->st == KV_TIMEOUT)
        c->stats.timeouts++;
    op->cb(op->arg, r);
}

static void note_error(struct lin_op *op, uint32_t from, Kv__Status st, const char *msg)
{
    if (op->first_err != KV_OK)
        return;
    op->first_err = kv_codec_status_from_wire(st);
    if (op->first_err == KV_OK || op->first_err == KV_NOT_FOUND)
        op->first_err = KV_INTERNAL;
    snprintf(op->first_msg, sizeof op->first_msg, "replica %u: %s", from,
             msg && msg[0] ? msg : kv_status_str(op->first_err));
}

static void send_rec(struct lin_op *op, uint32_t to, const Kv__Record *rec)
{
    Kv__Record *recs[1] = {(Kv__Record *)rec};
    Kv__ReplicaWrite w = KV__REPLICA_WRITE__INIT;
    w.n_records = 1;
    w.records = recs;
    w.is_hint = op->is_read;    /* a write-back never mints */
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.body_case = KV__PEER_MESSAGE__BODY_WRITE;
    pm.write = &w;
    kv_cluster__send_op(&op->hdr, to, &pm);
}

static void send_read(struct lin_op *op, uint32_t to)
{
    Kv__ReplicaRead rd = KV__REPLICA_READ__INIT;
    rd.key.data = op->key;
    rd.key.len = op->key_len;
    rd.linear = !op->is_read;       /* only a write needs to know about Paxos state (5) */
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.body_case = KV__PEER_MESSAGE__BODY_READ;
    pm.read = &rd;
    kv_cluster__send_op(&op->hdr, to, &pm);
}

/* The op's one timer: the deadline, or sooner the next resend of the phase (7). */
static void arm(struct lin_op *op)
{
    uint64_t now = op->hdr.c->io.mono_ms(op->hdr.c->io.ctx);
    uint64_t end = op->started + op->timeout_ms, left = end > now ? end - now : 0;
    kv_cluster__op_timer(&op->hdr, left < op->resend_ms ? left : op->resend_ms);
}

/* --- phase 2: the write, or the read's write-back ---------------------------------------- */

static void read_answer(struct lin_op *op, const Kv__Record *rec, bool has)
{
    struct kv_cluster_result r;
    base(op, &r, KV_OK);
    kv_cluster__read_result(op->hdr.c, &r, rec, has);
    answer(op, &r);
}

/* Replicas sent to that never acked get a hint of a write (never of a write-back). */
static void finish(struct lin_op *op)
{
    if (!op->is_read && op->phase2 && !op->not_applied)
        for (size_t i = 0; i < op->n; i++)
            if ((op->rep[i].st == LR_SENT || op->rep[i].st == LR_ERR) &&
                op->rep[i].id != op->hdr.c->o.node_id)
                kv_hint_add(op->hdr.c, op->rep[i].id, &op->rec);
    lin_free(op);
}

static void phase2_progress(struct lin_op *op)
{
    uint32_t ok = mask_of(op, LR_OK) | op->have_mask, sent = mask_of(op, LR_SENT);
    if (!op->answered) {
        if ((uint32_t)popcount(ok) >= op->q) {
            if (op->is_read) {
                read_answer(op, &op->rec, true);
            } else {
                struct kv_cluster_result r;
                base(op, &r, KV_OK);
                r.version = ver_of(&op->rec);
                r.expires_at_ms = op->rec.expires_at_ms;
                answer(op, &r);
            }
        } else if ((uint32_t)popcount(ok | sent) < op->q) {
            struct kv_cluster_result r;
            if (!op->is_read && !(ok & ~op->have_mask) && !sent && !op->hinted) {
                op->not_applied = true;
                base(op, &r, op->first_err);
                kv_err_set(&r.err, op->first_err, "%s; not applied", op->first_msg);
            } else {
                base(op, &r, KV_TIMEOUT);
                kv_err_set(&r.err, KV_TIMEOUT,
                           "%s; %u of %u required replicas hold the %s: %s", op->first_msg,
                           r.acks, r.required, op->is_read ? "value read" : "write",
                           op->is_read ? "no answer is safe" : "it may have been applied");
            }
            answer(op, &r);
        }
    }
    if (!sent)
        finish(op);
}

static void start_phase2(struct lin_op *op)
{
    kv_cluster__op_rekey(op->hdr.c, &op->hdr);
    op->phase2 = true;
    op->round_trips++;
    op->first_err = KV_OK;
    op->first_msg[0] = 0;
    for (size_t i = 0; i < op->n; i++) {
        struct lin_rep *rp = &op->rep[i];
        if (op->have_mask >> i & 1) {
            rp->st = LR_DOWN;           /* counted through have_mask */
        } else if (op->alive_mask >> i & 1) {
            rp->st = LR_SENT;
            send_rec(op, rp->id, &op->rec);
        } else {
            rp->st = LR_DOWN;
            if (!op->is_read && rp->id != op->hdr.c->o.node_id) {
                kv_hint_add(op->hdr.c, rp->id, &op->rec);
                op->hinted = true;
            }
        }
    }
    arm(op);
}

/* --- phase 1: the quorum read ---------------------------------------------------------- */

static void mint_and_write(struct lin_op *op)
{
    struct kv_cluster *c = op->hdr.c;
    if (op->has_best)
        kv_hlc_observe(c->hlc, op->best.hlc);
    uint64_t now = kv_cluster__now(c);
    op->rec.hlc = kv_hlc_now(c->hlc, now);
    op->rec.node = c->writer;       /* cluster.c (6) */
    op->rec.expires_at_ms = op->ttl_ms ? now + op->ttl_ms : 0;
    op->have_mask = 0;
    start_phase2(op);
}

static void phase1_done(struct lin_op *op)
{
    uint32_t ok = mask_of(op, LR_OK);
    if (!op->is_read) {
        if (op->paxos_seen) {
            /* (5): the key is CAS-managed; Paxos orders this write with its CASes. */
            uint64_t spent = op->hdr.c->io.mono_ms(op->hdr.c->io.ctx) - op->started;
            uint32_t left = spent >= op->timeout_ms ? 1 : op->timeout_ms - (uint32_t)spent;
            kv_paxos_write(op->hdr.c, kv_slice_of(op->key, op->key_len),
                           kv_slice_of(op->rec.value.data, op->rec.value.len),
                           op->rec.tombstone, op->ttl_ms, left, op->round_trips, op->cb,
                           op->arg);
            op->answered = true;
            lin_free(op);
            return;
        }
        mint_and_write(op);
        return;
    }
    /* A read: the repliers that already hold the newest version count towards q. */
    uint32_t have = 0;
    for (size_t i = 0; i < op->n; i++) {
        const struct lin_rep *rp = &op->rep[i];
        if (!(ok >> i & 1))
            continue;
        if (op->has_best ? rp->has && kv_version_cmp(rp->ver, ver_of(&op->best)) == 0 : !rp->has)
            have |= 1u << i;
    }
    if (have == ok || !op->has_best || op->hdr.c->o.debug_skip_writeback) {
        read_answer(op, &op->best, op->has_best);
        lin_free(op);                   /* late replies are dropped (6) */
        return;
    }
    op->hdr.c->stats.linear_writebacks++;
    op->hdr.c->stats.read_repairs++;
    if (!copy_rec(op, &op->rec, &op->best)) {
        struct kv_cluster_result r;
        base(op, &r, KV_NOMEM);
        kv_err_set(&r.err, KV_NOMEM, "out of memory");
        answer(op, &r);
        lin_free(op);
        return;
    }
    op->have_mask = have;
    start_phase2(op);
}

static void phase1_progress(struct lin_op *op)
{
    uint32_t ok = mask_of(op, LR_OK), sent = mask_of(op, LR_SENT);
    if ((uint32_t)popcount(ok) >= op->q) {
        phase1_done(op);
    } else if ((uint32_t)popcount(ok | sent) < op->q) {
        struct kv_cluster_result r;
        enum kv_status st = op->first_err ? op->first_err : KV_INTERNAL;
        base(op, &r, st);
        kv_err_set(&r.err, st, "%s; %u of %u required replicas answered%s", op->first_msg,
                   (unsigned)popcount(ok), op->q, op->is_read ? "" : "; not applied");
        answer(op, &r);
        lin_free(op);
    }
}

static bool phase1_reply(struct lin_op *op, struct lin_rep *rp, const Kv__PeerMessage *m)
{
    if (m->body_case != KV__PEER_MESSAGE__BODY_READ_REPLY)
        return false;
    const Kv__ReplicaReadReply *rr = m->read_reply;
    if (rr->status == KV__STATUS__OK &&
        (rr->record->key.len != op->key_len || memcmp(rr->record->key.data, op->key, op->key_len)))
        return false;
    if (rp->st != LR_SENT)
        return true;                    /* a duplicate */
    op->paxos_seen |= rr->paxos;
    if (rr->status == KV__STATUS__OK) {
        rp->st = LR_OK;
        rp->has = true;
        rp->ver = ver_of(rr->record);
        if (!op->has_best || kv_version_cmp(rp->ver, ver_of(&op->best)) > 0) {
            op->has_best = copy_rec(op, &op->best, rr->record);
            if (!op->has_best) {
                KV_ERROR("linear: out of memory copying a replica's record");
                rp->st = LR_ERR;
                note_error(op, rp->id, KV__STATUS__INTERNAL, "coordinator out of memory");
            }
        }
    } else if (rr->status == KV__STATUS__NOT_FOUND) {
        rp->st = LR_OK;
        rp->has = false;
    } else {
        rp->st = LR_ERR;
        note_error(op, rp->id, rr->status, rr->message);
    }
    phase1_progress(op);
    return true;
}

/* --- the op vtab ----------------------------------------------------------------------- */

static bool lin_reply(struct kv_coord_op *hdr, uint32_t from, const Kv__PeerMessage *m)
{
    struct lin_op *op = (struct lin_op *)hdr;
    struct lin_rep *rp = NULL;
    for (size_t i = 0; i < op->n; i++)
        if (op->rep[i].id == from && op->rep[i].st != LR_DOWN)
            rp = &op->rep[i];
    if (!rp)
        return !op->phase2;             /* phase 2 never asked it: a late duplicate */
    if (!op->phase2)
        return phase1_reply(op, rp, m);
    if (m->body_case != KV__PEER_MESSAGE__BODY_WRITE_ACK)
        return false;
    if (rp->st != LR_SENT)
        return true;
    if (m->write_ack->status == KV__STATUS__OK) {
        rp->st = LR_OK;
    } else {
        rp->st = LR_ERR;
        note_error(op, rp->id, m->write_ack->status, m->write_ack->message);
    }
    phase2_progress(op);
    return true;
}

static void lin_timeout(struct kv_coord_op *hdr)
{
    struct lin_op *op = (struct lin_op *)hdr;
    if (op->hdr.c->io.mono_ms(op->hdr.c->io.ctx) < op->started + op->timeout_ms) {
        /* (7): resend to those that have not answered; both phases are idempotent. */
        for (size_t i = 0; i < op->n; i++)
            if (op->rep[i].st == LR_SENT) {
                if (op->phase2)
                    send_rec(op, op->rep[i].id, &op->rec);
                else
                    send_read(op, op->rep[i].id);
            }
        arm(op);
        return;
    }
    op->hdr.c->stats.replica_timeouts += (uint64_t)popcount(mask_of(op, LR_SENT));
    if (!op->answered) {
        struct kv_cluster_result r;
        base(op, &r, KV_TIMEOUT);
        if (!op->phase2)
            kv_err_set(&r.err, KV_TIMEOUT,
                       "timed out after %u ms in the quorum read: %u of %u replicas "
                       "answered%s",
                       op->timeout_ms, (unsigned)popcount(mask_of(op, LR_OK)), op->q,
                       op->is_read ? "" : "; nothing was written: not applied");
        else
            kv_err_set(&r.err, KV_TIMEOUT,
                       "timed out after %u ms: %u of %u required replicas hold the %s",
                       op->timeout_ms, r.acks, r.required,
                       op->is_read ? "value read (write-back unfinished)"
                                   : "write; it may have been applied");
        answer(op, &r);
    }
    finish(op);
}

static void lin_shutdown(struct kv_coord_op *hdr)
{
    struct lin_op *op = (struct lin_op *)hdr;
    if (!op->answered) {
        struct kv_cluster_result r;
        base(op, &r, KV_SHUTDOWN);
        kv_err_set(&r.err, KV_SHUTDOWN, "the node is shutting down%s",
                   op->is_read ? "" : "; the write may have been applied");
        answer(op, &r);
    }
    lin_release(op);
}

static const struct kv_coord_op_vt lin_vt = {lin_reply, lin_timeout, lin_shutdown};

/* --- starting ------------------------------------------------------------------------- */

/* kv_lin__admit with the replicas `need` (QUORUM; ONE for debug_linear_read_one) counts. */
static bool admit_at(struct kv_cluster *c, struct kv_slice key, size_t value_len,
                     kv_cluster_cb cb, void *arg, uint32_t *ids, size_t *n, uint32_t *alive,
                     uint32_t *q, enum kv_level need)
{
    struct kv_err err = {0};
    if (c->freeing) {
        struct kv_cluster_result r;
        memset(&r, 0, sizeof r);
        r.st = KV_SHUTDOWN;
        kv_err_set(&r.err, KV_SHUTDOWN, "the node is shutting down");
        cb(arg, &r);            /* no timer may start now: the only answer left */
        return false;
    }
    if (key.len == 0 || key.len > KV_STORE_KEY_MAX) {
        kv_err_set(&err, KV_INVALID, "key length %zu not in 1..%u", key.len, KV_STORE_KEY_MAX);
        kv_coord_fail_later(c, cb, arg, &err);
        return false;
    }
    if (value_len > c->o.max_value) {
        kv_err_set(&err, KV_TOO_LARGE, "value of %zu bytes over the limit of %u", value_len,
                   c->o.max_value);
        kv_coord_fail_later(c, cb, arg, &err);
        return false;
    }
    if (kv_cluster__admit(c, &err) != KV_OK) {
        kv_coord_fail_later(c, cb, arg, &err);
        return false;
    }
    *n = kv_ring_replicas(c->ring, key, c->o.rf, ids);
    struct kv_coord_need nd;
    kv_coord_need(c, need, ids, *n, &nd, NULL);
    nd.level = KV_LEVEL_LINEARIZABLE;       /* for the UNAVAILABLE message */
    *alive = kv_coord_alive_mask(c, ids, *n);
    *q = nd.need[0];
    struct kv_cluster_result r;
    memset(&r, 0, sizeof r);
    if (kv_coord_check_alive(c, &nd, ids, *n, *alive, &r) != KV_OK) {
        kv_coord_answer_later(c, cb, arg, &r);
        return false;
    }
    return true;
}

bool kv_lin__admit(struct kv_cluster *c, struct kv_slice key, size_t value_len,
                   kv_cluster_cb cb, void *arg, uint32_t *ids, size_t *n, uint32_t *alive,
                   uint32_t *q)
{
    return admit_at(c, key, value_len, cb, arg, ids, n, alive, q, KV_LEVEL_QUORUM);
}

static void lin_start(struct kv_cluster *c, struct kv_slice key, bool is_read,
                      struct kv_slice value, bool tombstone, uint64_t ttl_ms,
                      uint32_t timeout_ms, kv_cluster_cb cb, void *arg)
{
    uint32_t ids[KV_RING_MAX_RF], alive, q;
    size_t n;
    /* (3): the broken test mode reads like ONE: one live replica, the first reply. */
    bool one = is_read && c->o.debug_linear_read_one;
    if (!admit_at(c, key, value.len, cb, arg, ids, &n, &alive, &q,
                  one ? KV_LEVEL_ONE : KV_LEVEL_QUORUM))
        return;
    struct kv_err err = {0};
    struct lin_op *op = calloc(1, sizeof *op);
    uint8_t *k = malloc(key.len);
    uint8_t *v = value.len && !tombstone ? malloc(value.len) : NULL;
    if (!op || !k || (value.len && !tombstone && !v)) {
        free(op);
        free(k);
        free(v);
        kv_err_set(&err, KV_NOMEM, "out of memory");
        kv_coord_fail_later(c, cb, arg, &err);
        return;
    }
    memcpy(k, key.ptr, key.len);
    if (v)
        memcpy(v, value.ptr, value.len);
    op->hdr.vt = &lin_vt;
    op->is_read = is_read;
    op->cb = cb;
    op->arg = arg;
    op->timeout_ms = timeout_ms ? timeout_ms : c->o.default_timeout_ms;
    op->q = q;
    op->started = c->io.mono_ms(c->io.ctx);
    op->hdr.deadline = op->started + op->timeout_ms;   /* its messages carry it (cluster.h (7)) */
    op->n = n;
    op->alive_mask = alive;
    op->key = k;
    op->key_len = key.len;
    op->ttl_ms = ttl_ms;
    kv__record__init(&op->best);
    kv__record__init(&op->rec);
    op->rec.key.data = k;
    op->rec.key.len = key.len;
    op->rec.tombstone = tombstone;
    op->rec.value.data = v;
    op->rec.value.len = v ? value.len : 0;
    op->resend_ms = op->timeout_ms / 4 ? op->timeout_ms / 4 : 1;
    kv_cluster__op_add(c, &op->hdr);
    op->round_trips = 1;
    for (size_t i = 0; i < n; i++) {
        op->rep[i].id = ids[i];
        if (alive >> i & 1) {
            op->rep[i].st = LR_SENT;
            send_read(op, ids[i]);
        }
    }
    arm(op);
}

void kv_lin_get(struct kv_cluster *c, struct kv_slice key, uint32_t timeout_ms,
                kv_cluster_cb cb, void *arg)
{
    lin_start(c, key, true, kv_slice_of(NULL, 0), false, 0, timeout_ms, cb, arg);
}

void kv_lin_write(struct kv_cluster *c, struct kv_slice key, struct kv_slice value,
                  bool tombstone, uint64_t ttl_ms, uint32_t timeout_ms, kv_cluster_cb cb,
                  void *arg)
{
    lin_start(c, key, false, value, tombstone, ttl_ms, timeout_ms, cb, arg);
}
