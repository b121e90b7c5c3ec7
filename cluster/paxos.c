/* cluster/paxos.c -- compare-and-set: the proposer of single-decree Paxos per key among
 * the key's replicas, as Cassandra's lightweight transactions (docs/cap.md). The acceptor
 * is cluster/paxos_acceptor.c.
 *
 * (1) Ballots are (kv_hlc_now, writer): unique (the writer names the node and its start,
 *     cluster.c (6)), and increasing within a start; a refusal
 *     carries the higher promise, which is observed into the HLC, so the next ballot is
 *     above it.
 * (2) An attempt: Prepare to every alive replica, q = n/2+1 promises. The promises carry
 *     each acceptor's accepted proposal, committed ballot and data record. An accepted
 *     proposal above every committed ballot in the quorum is in progress: it may have been
 *     chosen, so it is re-proposed under our ballot (keeping its own version) and committed
 *     first, then the attempt restarts with a new ballot. Otherwise the newest data record of the quorum is the
 *     current value (a committed value is on a quorum of data stores, or its proposal is
 *     still accepted on a quorum of acceptors and found in progress).
 * (3) A committed value's version is the ballot it was first proposed under. A ballot not above the current value's
 *     version (a write with a faster clock) cannot win in the LWW store: the HLC observes
 *     the version and the attempt restarts, so a commit is always above earlier versions.
 * (4) Expectation met: Propose(ballot, value) to every alive replica, q acceptances, then
 *     Commit to every alive replica, q acks, then OK applied. Not met: OK not applied with
 *     the current value, after writing it back to a quorum when the promises disagreed
 *     (as a LINEARIZABLE read does), so no later read returns something older.
 * (5) Contention (refusals leave fewer than q possible promises or acceptances): retry
 *     after a randomized, growing backoff, within the deadline. At the deadline: TIMEOUT,
 *     which means unknown. Once a proposal of our value may have been accepted anywhere,
 *     a later attempt that finds the expectation unmet answers TIMEOUT, never "not
 *     applied": our own value may be what it met. An in-progress proposal, or a current
 *     value, whose version is one of this op's own ballots is ours: that answers applied.
 * (6) Unconditional writes (kv_paxos_write: LINEARIZABLE put/delete of a CAS-managed key)
 *     run the same rounds with the expectation always met.
 * (7) A round still short of q answers a quarter of the timeout after it started is sent
 *     again to the replicas that have not answered (a prepare of the same ballot is
 *     promised again, a proposal accepted again, a commit merged again), so one lost
 *     message does not cost the whole deadline. Replies are counted once per replica. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/internal.h"
#include "common/log.h"
#include "proto/codec.h"

#define PX_MAX_OWN 16           /* own ballots remembered per op, for (5) */

enum { PR_DOWN, PR_SENT, PR_OK, PR_NO, PR_ERR };
enum px_phase { PH_PREPARE, PH_PROPOSE, PH_COMMIT, PH_WRITEBACK, PH_BACKOFF };

struct px_rep {
    uint32_t id;
    uint8_t st;
    bool has;                   /* prepare: holds a data record of version ver */
    struct kv_version ver;
};

struct px_op {
    struct kv_coord_op hdr;
    kv_cluster_cb cb;
    void *arg;
    bool cond, expect_absent, tombstone, answered;
    bool maybe_proposed;        /* (5) */
    bool finishing;             /* proposing someone else's in-progress proposal */
    bool ours;                  /* the in-progress proposal being finished is ours */
    enum px_phase phase;
    uint8_t *key, *expected, *value;
    size_t key_len, exp_len, val_len;
    uint64_t ttl_ms, deadline;  /* deadline: mono ms */
    uint32_t q, timeout_ms, resend_ms, round_trips, attempts, backoff_ms;
    size_t n;
    uint32_t alive_mask, have_mask;
    struct px_rep rep[KV_RING_MAX_RF];
    struct kv_version ballot, max_committed, inprog_ballot;
    struct kv_version own[PX_MAX_OWN];
    unsigned n_own;
    Kv__Record inprog, current, prop;
    bool has_inprog, has_current;
    enum kv_status first_err;
    char first_msg[128];
};

static struct kv_version ver_of(const Kv__Record *r)
{
    struct kv_version v = {r->hlc, r->node};
    return v;
}

static struct kv_version bal_of(const Kv__Ballot *b)
{
    struct kv_version v = {b ? b->hlc : 0, b ? b->node : 0};
    return v;
}

static int popcount(uint32_t m) { return __builtin_popcount(m); }

static uint32_t mask_of(const struct px_op *op, int st)
{
    uint32_t m = 0;
    for (size_t i = 0; i < op->n; i++)
        if (op->rep[i].st == st)
            m |= 1u << i;
    return m;
}

static bool copy_rec(struct px_op *op, Kv__Record *dst, const Kv__Record *src)
{
    return kv_cluster__record_copy(dst, op->key, op->key_len, src);
}

static void px_release(struct px_op *op)
{
    free(op->key);
    free(op->expected);
    free(op->value);
    free(op->inprog.value.data);
    free(op->current.value.data);
    free(op->prop.value.data);
    free(op);
}

static void px_free(struct px_op *op)
{
    kv_cluster__op_timer_cancel(&op->hdr);
    kv_cluster__op_remove(op->hdr.c, &op->hdr);
    px_release(op);
}

static uint64_t mono(const struct px_op *op) { return op->hdr.c->io.mono_ms(op->hdr.c->io.ctx); }

static void base(const struct px_op *op, struct kv_cluster_result *r, enum kv_status st)
{
    memset(r, 0, sizeof *r);
    r->st = st;
    r->err.code = st;
    r->acks = op->phase == PH_COMMIT ? (uint32_t)popcount(mask_of(op, PR_OK)) : 0;
    r->required = op->q;
    r->alive = (uint32_t)popcount(op->alive_mask);
    r->round_trips = op->round_trips;
}

static void answer(struct px_op *op, struct kv_cluster_result *r)
{
    struct kv_cluster *c = op->hdr.c;
    op->answered = true;
    c->stats.cas_round_trips += op->round_trips;
    if (r->st == KV_TIMEOUT)
        c->stats.timeouts++;
    if (op->cond && r->st == KV_OK) {
        if (r->applied)
            c->stats.cas_applied++;
        else
            c->stats.cas_not_applied++;
    }
    op->cb(op->arg, r);
    px_free(op);
}

static void answer_timeout(struct px_op *op, const char *why)
{
    struct kv_cluster_result r;
    base(op, &r, KV_TIMEOUT);
    kv_err_set(&r.err, KV_TIMEOUT, "%s after %u attempt(s): %s", why, op->attempts,
               op->maybe_proposed || op->phase == PH_COMMIT
                   ? "the write may have been applied"
                   : "no proposal of it was made: not applied");
    answer(op, &r);
}

static void note_error(struct px_op *op, uint32_t from, Kv__Status st, const char *msg)
{
    if (op->first_err != KV_OK)
        return;
    op->first_err = kv_codec_status_from_wire(st);
    if (op->first_err == KV_OK || op->first_err == KV_NOT_FOUND)
        op->first_err = KV_INTERNAL;
    snprintf(op->first_msg, sizeof op->first_msg, "replica %u: %s", from,
             msg && msg[0] ? msg : kv_status_str(op->first_err));
}

/* A refusal names a higher promise: the next ballot must be above it (1). */
static void observe(struct px_op *op, const Kv__Ballot *b)
{
    if (b)
        kv_hlc_observe(op->hdr.c->hlc, b->hlc);
}

/* Sends the current phase's message (rebuilt from the op) to the replicas in mask. */
static void send_phase(struct px_op *op, uint32_t mask)
{
    Kv__Ballot b = KV__BALLOT__INIT;
    b.hlc = op->ballot.hlc;
    b.node = op->ballot.node;
    Kv__PaxosPrepare pp = KV__PAXOS_PREPARE__INIT;
    Kv__PaxosPropose pr = KV__PAXOS_PROPOSE__INIT;
    Kv__PaxosCommit cm = KV__PAXOS_COMMIT__INIT;
    Kv__ReplicaWrite w = KV__REPLICA_WRITE__INIT;
    Kv__Record *recs[1] = {&op->current};
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    switch (op->phase) {
    case PH_PREPARE:
        pp.key.data = op->key;
        pp.key.len = op->key_len;
        pp.ballot = &b;
        pm.body_case = KV__PEER_MESSAGE__BODY_PREPARE;
        pm.prepare = &pp;
        break;
    case PH_PROPOSE:
        pr.proposal = &op->prop;
        pr.ballot = &b;
        pm.body_case = KV__PEER_MESSAGE__BODY_PROPOSE;
        pm.propose = &pr;
        break;
    case PH_COMMIT:
        cm.record = &op->prop;
        cm.ballot = &b;
        pm.body_case = KV__PEER_MESSAGE__BODY_COMMIT;
        pm.commit = &cm;
        break;
    case PH_WRITEBACK:
        w.n_records = 1;
        w.records = recs;
        w.is_hint = true;               /* a write-back never mints */
        pm.body_case = KV__PEER_MESSAGE__BODY_WRITE;
        pm.write = &w;
        break;
    case PH_BACKOFF:
        return;
    }
    for (size_t i = 0; i < op->n; i++)
        if (mask >> i & 1)
            kv_cluster__send_op(&op->hdr, op->rep[i].id, &pm);
}

/* The op's one timer: the deadline, or sooner the next resend of the round (7). */
static void arm(struct px_op *op)
{
    uint64_t now = mono(op), left = op->deadline > now ? op->deadline - now : 0;
    kv_cluster__op_timer(&op->hdr, left < op->resend_ms ? left : op->resend_ms);
}

/* Starts a new round of phase ph: fresh op id (late replies of the last one are dropped),
 * every alive replica (a write-back: those not known to hold the record) sent to. */
static void round_start(struct px_op *op, enum px_phase ph)
{
    kv_cluster__op_rekey(op->hdr.c, &op->hdr);
    op->phase = ph;
    op->round_trips++;
    op->first_err = KV_OK;
    op->first_msg[0] = 0;
    uint32_t mask = 0;
    for (size_t i = 0; i < op->n; i++) {
        struct px_rep *rp = &op->rep[i];
        rp->has = false;
        rp->st = PR_DOWN;
        if ((op->alive_mask >> i & 1) && !(ph == PH_WRITEBACK && (op->have_mask >> i & 1))) {
            rp->st = PR_SENT;
            mask |= 1u << i;
        }
    }
    send_phase(op, mask);
    arm(op);
}

static void attempt(struct px_op *op);

/* (5): contention. */
static void backoff(struct px_op *op)
{
    uint64_t now = mono(op);
    if (now >= op->deadline) {
        answer_timeout(op, "contention until the deadline");
        return;
    }
    op->backoff_ms = op->backoff_ms ? op->backoff_ms * 2 : 4;
    if (op->backoff_ms > 200)
        op->backoff_ms = 200;
    uint64_t d = 1 + op->hdr.c->io.random(op->hdr.c->io.ctx) % op->backoff_ms;
    if (d > op->deadline - now)
        d = op->deadline - now;
    op->phase = PH_BACKOFF;
    kv_cluster__op_rekey(op->hdr.c, &op->hdr);
    kv_cluster__op_timer(&op->hdr, d);
}

/* --- propose and commit -------------------------------------------------------------- */

static void send_propose(struct px_op *op) { round_start(op, PH_PROPOSE); }

static void send_commit(struct px_op *op) { round_start(op, PH_COMMIT); }

static void answer_current(struct px_op *op)
{
    struct kv_cluster_result r;
    base(op, &r, KV_OK);
    bool live = op->has_current && kv_cluster__record_live(&op->current,
                                                           kv_cluster__now(op->hdr.c));
    r.applied = false;
    r.exists = live;
    if (op->has_current)
        r.version = ver_of(&op->current);
    if (live)
        r.value = kv_slice_of(op->current.value.data, op->current.value.len);
    answer(op, &r);
}

static void committed(struct px_op *op)
{
    if (op->finishing && !op->ours) {
        op->hdr.c->stats.cas_recoveries++;
        op->finishing = false;
        attempt(op);                    /* (2): finished theirs; now ours */
        return;
    }
    struct kv_cluster_result r;
    base(op, &r, KV_OK);
    r.applied = true;
    r.exists = !op->prop.tombstone;
    r.version = ver_of(&op->prop);
    r.expires_at_ms = op->prop.expires_at_ms;
    if (!op->prop.tombstone)
        r.value = kv_slice_of(op->prop.value.data, op->prop.value.len);
    answer(op, &r);
}

static bool is_own(const struct px_op *op, struct kv_version b)
{
    for (unsigned i = 0; i < op->n_own; i++)
        if (kv_version_cmp(op->own[i], b) == 0)
            return true;
    return false;
}

/* --- after the promises (2)-(4) ------------------------------------------------------- */

static bool expectation_met(const struct px_op *op)
{
    if (!op->cond)
        return true;
    bool live = op->has_current && kv_cluster__record_live(&op->current,
                                                           kv_cluster__now(op->hdr.c));
    if (op->expect_absent)
        return !live;
    return live && op->current.value.len == op->exp_len &&
           (!op->exp_len || memcmp(op->current.value.data, op->expected, op->exp_len) == 0);
}

static void prepared(struct px_op *op)
{
    struct kv_cluster *c = op->hdr.c;
    if (op->has_inprog && kv_version_cmp(op->inprog_ballot, op->max_committed) > 0) {
        /* (2): finished under our ballot; it keeps its version. */
        op->ours = is_own(op, ver_of(&op->inprog));
        op->finishing = true;
        if (!copy_rec(op, &op->prop, &op->inprog)) {
            answer_timeout(op, "out of memory");
            return;
        }
        send_propose(op);
        return;
    }
    if (op->has_current && kv_version_cmp(ver_of(&op->current), op->ballot) >= 0) {
        kv_hlc_observe(c->hlc, op->current.hlc);    /* (3) */
        attempt(op);
        return;
    }
    if (op->maybe_proposed && op->has_current && is_own(op, ver_of(&op->current))) {
        /* Our proposal was committed (by us in an earlier attempt, or by another proposer):
         * it is the current value, but the promise quorum found it in a data store, and
         * maybe in only one: that commit may have reached fewer than q before it gave up.
         * It is committed again (same record, same version: idempotent) before the answer,
         * so a LINEARIZABLE read of any quorum's data finds it -- jepsen caught a read
         * returning the older value right after this path had answered "applied". */
        if (!copy_rec(op, &op->prop, &op->current)) {
            answer_timeout(op, "out of memory");
            return;
        }
        op->finishing = op->ours = true;
        send_commit(op);
        return;
    }
    if (!expectation_met(op)) {
        if (op->maybe_proposed) {
            answer_timeout(op, "an earlier proposal's fate is unknown");
            return;
        }
        /* (4): the repliers that do not hold the current record get it first. */
        uint32_t ok = mask_of(op, PR_OK), have = 0;
        for (size_t i = 0; i < op->n; i++)
            if ((ok >> i & 1) && (op->has_current ? op->rep[i].has &&
                                                        kv_version_cmp(op->rep[i].ver,
                                                                       ver_of(&op->current)) == 0
                                                  : !op->rep[i].has))
                have |= 1u << i;
        if (have == ok || !op->has_current) {
            answer_current(op);
            return;
        }
        op->have_mask = have;
        c->stats.read_repairs++;
        round_start(op, PH_WRITEBACK);
        return;
    }
    if (op->maybe_proposed) {
        /* An earlier attempt of this op may have been chosen, committed and overwritten
         * since (nothing records committed ballots once superseded): proposing the value
         * again could apply it twice -- jepsen caught a retried LINEARIZABLE put doing
         * exactly that around a kill -9. Its fate is unknown, so say so. */
        answer_timeout(op, "an earlier proposal's fate is unknown");
        return;
    }
    free(op->prop.value.data);
    kv__record__init(&op->prop);
    if (op->val_len && !(op->prop.value.data = malloc(op->val_len))) {
        answer_timeout(op, "out of memory");
        return;
    }
    if (op->val_len)
        memcpy(op->prop.value.data, op->value, op->val_len);
    op->prop.value.len = op->val_len;
    op->prop.key.data = op->key;
    op->prop.key.len = op->key_len;
    op->prop.hlc = op->ballot.hlc;
    op->prop.node = op->ballot.node;
    op->prop.tombstone = op->tombstone;
    op->prop.expires_at_ms = op->ttl_ms ? kv_cluster__now(c) + op->ttl_ms : 0;
    op->finishing = op->ours = false;
    op->maybe_proposed = true;
    if (op->n_own < PX_MAX_OWN)
        op->own[op->n_own++] = op->ballot;
    send_propose(op);
}

static void attempt(struct px_op *op)
{
    struct kv_cluster *c = op->hdr.c;
    uint64_t now = mono(op);
    if (now >= op->deadline) {
        answer_timeout(op, "timed out");
        return;
    }
    op->attempts++;
    c->stats.cas_attempts++;
    op->ballot.hlc = kv_hlc_now(c->hlc, kv_cluster__now(c));
    op->ballot.node = c->writer;    /* cluster.c (6) */
    op->has_inprog = op->has_current = false;
    memset(&op->inprog_ballot, 0, sizeof op->inprog_ballot);
    op->max_committed.hlc = 0;
    op->max_committed.node = 0;
    round_start(op, PH_PREPARE);
}

/* --- replies -------------------------------------------------------------------------- */

static bool on_promise(struct px_op *op, struct px_rep *rp, const Kv__PaxosPromise *pr)
{
    if (pr->current && (pr->current->key.len != op->key_len ||
                        memcmp(pr->current->key.data, op->key, op->key_len)))
        return false;
    if (pr->status != KV__STATUS__OK) {
        rp->st = PR_ERR;
        note_error(op, rp->id, pr->status, pr->message);
    } else if (!pr->promised) {
        rp->st = PR_NO;
        observe(op, pr->promised_ballot);
    } else {
        rp->st = PR_OK;
        struct kv_version ab = pr->accepted_ballot ? bal_of(pr->accepted_ballot)
                                                   : pr->accepted ? ver_of(pr->accepted)
                                                                  : op->inprog_ballot;
        if (pr->accepted && (!op->has_inprog || kv_version_cmp(ab, op->inprog_ballot) > 0)) {
            op->has_inprog = copy_rec(op, &op->inprog, pr->accepted);
            op->inprog_ballot = ab;
        }
        if (pr->committed && kv_version_cmp(bal_of(pr->committed), op->max_committed) > 0)
            op->max_committed = bal_of(pr->committed);
        if (pr->current) {
            rp->has = true;
            rp->ver = ver_of(pr->current);
            if (!op->has_current || kv_version_cmp(rp->ver, ver_of(&op->current)) > 0)
                op->has_current = copy_rec(op, &op->current, pr->current);
        }
    }
    return true;
}

static void progress(struct px_op *op)
{
    uint32_t ok = mask_of(op, PR_OK), sent = mask_of(op, PR_SENT);
    uint32_t have = op->phase == PH_WRITEBACK ? op->have_mask : 0;
    if ((uint32_t)popcount(ok | have) >= op->q) {
        switch (op->phase) {
        case PH_PREPARE: prepared(op); return;
        case PH_PROPOSE: send_commit(op); return;
        case PH_COMMIT: committed(op); return;
        case PH_WRITEBACK: answer_current(op); return;
        case PH_BACKOFF: return;
        }
    }
    if ((uint32_t)popcount(ok | sent | have) >= op->q)
        return;                         /* still possible */
    /* Even when every acceptor refused our proposal it stays "maybe": a refusal may answer
     * a duplicate of the proposal, whose first copy that acceptor accepted. */
    if (mask_of(op, PR_NO) && (op->phase == PH_PREPARE || op->phase == PH_PROPOSE)) {
        backoff(op);
        return;
    }
    if (op->phase == PH_COMMIT || op->phase == PH_WRITEBACK || op->maybe_proposed) {
        answer_timeout(op, op->first_msg[0] ? op->first_msg : "replica errors");
        return;
    }
    struct kv_cluster_result r;
    enum kv_status st = op->first_err ? op->first_err : KV_INTERNAL;
    base(op, &r, st);
    kv_err_set(&r.err, st, "%s; not applied", op->first_msg);
    answer(op, &r);
}

static bool px_reply(struct kv_coord_op *hdr, uint32_t from, const Kv__PeerMessage *m)
{
    struct px_op *op = (struct px_op *)hdr;
    struct px_rep *rp = NULL;
    for (size_t i = 0; i < op->n; i++)
        if (op->rep[i].id == from)
            rp = &op->rep[i];
    if (!rp)
        return false;
    bool ok;
    switch (op->phase) {
    case PH_PREPARE: ok = m->body_case == KV__PEER_MESSAGE__BODY_PROMISE; break;
    case PH_PROPOSE: ok = m->body_case == KV__PEER_MESSAGE__BODY_ACCEPTED; break;
    case PH_COMMIT: ok = m->body_case == KV__PEER_MESSAGE__BODY_COMMIT_ACK; break;
    case PH_WRITEBACK: ok = m->body_case == KV__PEER_MESSAGE__BODY_WRITE_ACK; break;
    default: ok = false;
    }
    if (!ok)
        return false;
    if (rp->st != PR_SENT)
        return true;                    /* a duplicate */
    switch (op->phase) {
    case PH_PREPARE:
        if (!on_promise(op, rp, m->promise))
            return false;
        break;
    case PH_PROPOSE:
        if (m->accepted->status != KV__STATUS__OK) {
            rp->st = PR_ERR;
            note_error(op, rp->id, m->accepted->status, m->accepted->message);
        } else if (!m->accepted->accepted) {
            rp->st = PR_NO;
            observe(op, m->accepted->promised_ballot);
        } else {
            rp->st = PR_OK;
        }
        break;
    case PH_COMMIT:
    case PH_WRITEBACK: {
        Kv__Status s = op->phase == PH_COMMIT ? m->commit_ack->status : m->write_ack->status;
        const char *msg = op->phase == PH_COMMIT ? m->commit_ack->message
                                                 : m->write_ack->message;
        rp->st = s == KV__STATUS__OK ? PR_OK : PR_ERR;
        if (s != KV__STATUS__OK)
            note_error(op, rp->id, s, msg);
        break;
    }
    default:
        break;
    }
    progress(op);
    return true;
}

static void px_timeout(struct kv_coord_op *hdr)
{
    struct px_op *op = (struct px_op *)hdr;
    if (op->phase == PH_BACKOFF) {
        attempt(op);
        return;
    }
    uint32_t sent = mask_of(op, PR_SENT);
    if (mono(op) < op->deadline) {
        /* (7): every message of a round is idempotent at the acceptor. */
        send_phase(op, sent);
        arm(op);
        return;
    }
    op->hdr.c->stats.replica_timeouts += (uint64_t)popcount(mask_of(op, PR_SENT));
    answer_timeout(op, "timed out");
}

static void px_shutdown(struct kv_coord_op *hdr)
{
    struct px_op *op = (struct px_op *)hdr;
    if (!op->answered) {
        struct kv_cluster_result r;
        base(op, &r, KV_SHUTDOWN);
        kv_err_set(&r.err, KV_SHUTDOWN, "the node is shutting down; the write may have been "
                                        "applied");
        op->answered = true;
        op->cb(op->arg, &r);
    }
    px_release(op);
}

static const struct kv_coord_op_vt px_vt = {px_reply, px_timeout, px_shutdown};

/* --- starting ------------------------------------------------------------------------ */

static uint8_t *dup(struct kv_slice s)
{
    uint8_t *p = malloc(s.len ? s.len : 1);
    if (p && s.len)
        memcpy(p, s.ptr, s.len);
    return p;
}

static void px_start(struct kv_cluster *c, struct kv_slice key, bool cond, bool expect_absent,
                     struct kv_slice expected, struct kv_slice value, bool tombstone,
                     uint64_t ttl_ms, uint32_t timeout_ms, uint32_t round_trips,
                     kv_cluster_cb cb, void *arg)
{
    if (cond && !c->freeing)
        c->stats.cas_ops++;
    uint32_t ids[KV_RING_MAX_RF], alive, q;
    size_t n;
    if (!kv_lin__admit(c, key, value.len > expected.len ? value.len : expected.len, cb, arg,
                       ids, &n, &alive, &q))
        return;
    struct px_op *op = calloc(1, sizeof *op);
    if (op) {
        op->key = dup(key);
        op->expected = dup(expected);
        op->value = dup(tombstone ? kv_slice_of(NULL, 0) : value);
    }
    if (!op || !op->key || !op->expected || !op->value) {
        if (op)
            px_release(op);
        struct kv_cluster_result r;
        memset(&r, 0, sizeof r);
        r.st = KV_NOMEM;
        kv_err_set(&r.err, KV_NOMEM, "out of memory");
        kv_coord_answer_later(c, cb, arg, &r);
        return;
    }
    op->hdr.vt = &px_vt;
    op->cb = cb;
    op->arg = arg;
    op->cond = cond;
    op->expect_absent = expect_absent;
    op->tombstone = tombstone;
    op->key_len = key.len;
    op->exp_len = expected.len;
    op->val_len = tombstone ? 0 : value.len;
    op->ttl_ms = ttl_ms;
    op->timeout_ms = timeout_ms ? timeout_ms : c->o.default_timeout_ms;
    op->deadline = c->io.mono_ms(c->io.ctx) + op->timeout_ms;
    op->hdr.deadline = op->deadline;            /* what its messages carry (cluster.h (7)) */
    op->resend_ms = op->timeout_ms / 4 ? op->timeout_ms / 4 : 1;
    op->q = q;
    op->round_trips = round_trips;
    op->n = n;
    op->alive_mask = alive;
    for (size_t i = 0; i < n; i++)
        op->rep[i].id = ids[i];
    kv__record__init(&op->inprog);
    kv__record__init(&op->current);
    kv__record__init(&op->prop);
    kv_cluster__op_add(c, &op->hdr);
    attempt(op);
}

void kv_paxos_cas(struct kv_cluster *c, struct kv_slice key, bool expect_absent,
                  struct kv_slice expected, struct kv_slice value, uint32_t timeout_ms,
                  kv_cluster_cb cb, void *arg)
{
    px_start(c, key, true, expect_absent, expected, value, false, 0, timeout_ms, 0, cb, arg);
}

void kv_paxos_write(struct kv_cluster *c, struct kv_slice key, struct kv_slice value,
                    bool tombstone, uint64_t ttl_ms, uint32_t timeout_ms, uint32_t round_trips,
                    kv_cluster_cb cb, void *arg)
{
    px_start(c, key, false, false, kv_slice_of(NULL, 0), value, tombstone, ttl_ms, timeout_ms,
             round_trips, cb, arg);
}
