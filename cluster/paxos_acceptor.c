/* cluster/paxos_acceptor.c -- the acceptor side of per-key single-decree Paxos (the
 * proposer is cluster/paxos.c; docs/cap.md).
 *
 * (1) Per key an acceptor keeps a PaxosState in KV_CF_PAXOS: the ballot it promised, the
 *     proposal it accepted (cleared once a ballot at least as high is committed) and the
 *     highest ballot committed. Every change is written with sync=true (WAL fsync) before
 *     the reply is sent, so a promise or an acceptance survives a crash.
 * (2) Prepare(b) is promised iff b >= promised (equal: a duplicate of the same proposer's
 *     prepare, ballots being unique); the promise carries the accepted proposal, the
 *     committed ballot and the replica's data record for the key, so the proposer reads the
 *     current value at quorum in the same round trip.
 * (3) Propose(b, v) is accepted iff b >= promised. Commit(b, v) merges v into the LWW store
 *     with v's own version (the ballot v was first proposed under; storage merges by
 *     version, so duplicates are harmless), then records b as committed and clears an
 *     accepted proposal whose ballot is not above b.
 * (4) The read-modify-write of one key's state runs on a storage thread under a striped
 *     mutex (by key hash): the io may run several works at once, and two prepares of one
 *     key must not both read the old promise. The cluster thread never takes it. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/internal.h"
#include "common/hash.h"
#include "common/log.h"
#include "proto/codec.h"

#define PX_STRIPES 64

static pthread_mutex_t g_locks[PX_STRIPES];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void locks_init(void)
{
    for (int i = 0; i < PX_STRIPES; i++)
        pthread_mutex_init(&g_locks[i], NULL);
}

static pthread_mutex_t *lock_of(const uint8_t *key, size_t len)
{
    pthread_once(&g_once, locks_init);
    return &g_locks[kv_hash64(key, len) % PX_STRIPES];
}

enum px_kind { PX_PREPARE, PX_PROPOSE, PX_COMMIT };

struct px_job {
    struct kv_cluster__job hdr;     /* first: internal.h (2) */
    struct kv_cluster *c;           /* only the done callback touches it */
    struct kv_store *store;
    enum px_kind kind;
    uint32_t to;
    uint64_t op_id;
    uint8_t *key;
    size_t key_len;
    struct kv_version ballot;
    Kv__Record *rec;                /* propose/commit: a packed-unpacked copy */
    /* results */
    enum kv_status st;
    struct kv_err err;
    bool ok;                        /* promised / accepted */
    Kv__PaxosState *state;          /* the state after the call (unpacked) */
    struct kv_store_item item;      /* prepare: the data record */
    bool has_item;
};

static void job_free(struct px_job *j)
{
    if (j->state)
        kv__paxos_state__free_unpacked(j->state, NULL);
    if (j->rec)
        kv__record__free_unpacked(j->rec, NULL);
    kv_store_item_free(&j->item);
    free(j->key);
    free(j);
}

static void job_drop(struct kv_cluster__job *j) { job_free((struct px_job *)j); }

static struct kv_version bal(const Kv__Ballot *b)
{
    struct kv_version v = {b ? b->hlc : 0, b ? b->node : 0};
    return v;
}

static Kv__Record *rec_copy(const Kv__Record *r)
{
    size_t n = kv__record__get_packed_size(r);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    kv__record__pack(r, buf);
    Kv__Record *d = kv__record__unpack(NULL, n, buf);
    free(buf);
    return d;
}

/* Loads the key's state (a fresh empty one when there is none). */
static enum kv_status load(struct px_job *j)
{
    struct kv_buf b = {0};
    enum kv_status st = kv_store_raw_get(j->store, KV_CF_PAXOS, kv_slice_of(j->key, j->key_len),
                                         &b, &j->err);
    if (st == KV_NOT_FOUND) {
        j->state = kv__paxos_state__unpack(NULL, 0, (const uint8_t *)"");
        return j->state ? KV_OK : kv_err_set(&j->err, KV_NOMEM, "paxos: out of memory");
    }
    if (st != KV_OK)
        return st;
    j->state = kv__paxos_state__unpack(NULL, b.len, b.ptr);
    kv_buf_free(&b);
    if (!j->state)
        return kv_err_set(&j->err, KV_CORRUPTION, "paxos: undecodable acceptor state");
    return KV_OK;
}

/* Writes the (modified) state with an fsync (1). The state's sub-messages may point into
 * the job (ballots on the stack of the caller, j->rec): packing copies them. */
static enum kv_status save(struct px_job *j, Kv__PaxosState *s)
{
    size_t n = kv__paxos_state__get_packed_size(s);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return kv_err_set(&j->err, KV_NOMEM, "paxos: out of memory");
    kv__paxos_state__pack(s, buf);
    enum kv_status st = kv_store_raw_put(j->store, KV_CF_PAXOS, kv_slice_of(j->key, j->key_len),
                                         kv_slice_of(buf, n), true, &j->err);
    free(buf);
    return st;
}

/* Packs s, then reloads it into j->state so that nothing points at the stack. */
static enum kv_status save_reload(struct px_job *j, Kv__PaxosState *s)
{
    enum kv_status st = save(j, s);
    if (st != KV_OK)
        return st;
    if (j->state)
        kv__paxos_state__free_unpacked(j->state, NULL);
    j->state = NULL;
    return load(j);
}

static void work(void *arg)
{
    struct px_job *j = arg;
    pthread_mutex_t *m = lock_of(j->key, j->key_len);
    pthread_mutex_lock(m);
    if ((j->st = load(j)) != KV_OK)
        goto out;
    Kv__PaxosState s = *j->state;
    Kv__Ballot b = KV__BALLOT__INIT;
    b.hlc = j->ballot.hlc;
    b.node = j->ballot.node;
    bool above = kv_version_cmp(j->ballot, bal(s.promised)) >= 0;
    switch (j->kind) {
    case PX_PREPARE:
        j->ok = above;
        if (above && kv_version_cmp(j->ballot, bal(s.promised)) > 0) {
            s.promised = &b;
            j->st = save_reload(j, &s);
        }
        if (j->st == KV_OK) {
            enum kv_status g = kv_store_get(j->store, kv_slice_of(j->key, j->key_len),
                                            KV_STORE_RAW, &j->item, &j->err);
            j->has_item = g == KV_OK;
            if (g != KV_OK && g != KV_NOT_FOUND)
                j->st = g;
        }
        break;
    case PX_PROPOSE:
        j->ok = above;
        if (above) {
            s.promised = &b;
            s.accepted = j->rec;
            s.accepted_ballot = &b;
            j->st = save_reload(j, &s);
        }
        break;
    case PX_COMMIT: {
        struct kv_write w = kv_cluster__record_to_write(j->rec);
        if ((j->st = kv_store_write(j->store, &w, 1, &j->err)) != KV_OK)
            break;
        j->ok = true;
        bool newer = kv_version_cmp(j->ballot, bal(s.committed)) > 0;
        bool clears = false;
        if (s.accepted) {
            struct kv_version av = {s.accepted->hlc, s.accepted->node};
            if (s.accepted_ballot)
                av = bal(s.accepted_ballot);
            clears = kv_version_cmp(j->ballot, av) >= 0;
        }
        if (newer || clears) {
            if (newer)
                s.committed = &b;
            if (clears) {
                s.accepted = NULL;
                s.accepted_ballot = NULL;
            }
            j->st = save_reload(j, &s);
        }
        break;
    }
    }
out:
    pthread_mutex_unlock(m);
}

static void reply(struct px_job *j)
{
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    Kv__Status wst = kv_codec_status_to_wire(j->st);
    const char *why = j->st != KV_OK ? j->err.msg : NULL;
    Kv__PaxosPromise pr = KV__PAXOS_PROMISE__INIT;
    Kv__PaxosAccepted ac = KV__PAXOS_ACCEPTED__INIT;
    Kv__PaxosCommitAck ca = KV__PAXOS_COMMIT_ACK__INIT;
    Kv__Record cur = KV__RECORD__INIT;
    const Kv__PaxosState *s = j->st == KV_OK ? j->state : NULL;
    switch (j->kind) {
    case PX_PREPARE:
        pr.status = wst;
        pr.message = (char *)why;
        if (s) {
            pr.promised = j->ok;
            pr.promised_ballot = s->promised;
            pr.accepted = s->accepted;
            pr.accepted_ballot = s->accepted_ballot;
            pr.committed = s->committed;
        }
        if (s && j->has_item) {
            cur.key.data = j->key;
            cur.key.len = j->key_len;
            cur.hlc = j->item.rec.ver.hlc;
            cur.node = j->item.rec.ver.node;
            cur.tombstone = j->item.rec.tombstone;
            cur.expires_at_ms = j->item.rec.expires_at_ms;
            cur.value.data = (uint8_t *)j->item.rec.value.ptr;
            cur.value.len = j->item.rec.value.len;
            pr.current = &cur;
        }
        pm.body_case = KV__PEER_MESSAGE__BODY_PROMISE;
        pm.promise = &pr;
        break;
    case PX_PROPOSE:
        ac.status = wst;
        ac.message = (char *)why;
        if (s) {
            ac.accepted = j->ok;
            ac.promised_ballot = s->promised;
        }
        pm.body_case = KV__PEER_MESSAGE__BODY_ACCEPTED;
        pm.accepted = &ac;
        break;
    case PX_COMMIT:
        ca.status = wst;
        ca.message = (char *)why;
        pm.body_case = KV__PEER_MESSAGE__BODY_COMMIT_ACK;
        pm.commit_ack = &ca;
        break;
    }
    if (j->st != KV_OK)
        KV_WARN("paxos: acceptor call for node %u failed: %s", j->to, j->err.msg);
    kv_cluster__send(j->c, j->to, j->op_id, &pm);
}

static void done(void *arg)
{
    struct px_job *j = arg;
    kv_cluster__job_remove(&j->hdr);
    reply(j);
    job_free(j);
}

static void start(struct kv_cluster *c, const Kv__PeerMessage *msg, enum px_kind kind,
                  const ProtobufCBinaryData *key, struct kv_version ballot, const Kv__Record *r)
{
    struct px_job *j = calloc(1, sizeof *j);
    if (j)
        j->key = malloc(key->len);
    if (j && j->key && r)
        j->rec = rec_copy(r);
    if (!j || !j->key || (r && !j->rec)) {
        if (j) {
            j->kind = kind;
            j->c = c;
            j->to = msg->from;
            j->op_id = msg->op_id;
            j->st = kv_err_set(&j->err, KV_NOMEM, "paxos: out of memory");
            reply(j);
            job_free(j);
        }
        return;
    }
    memcpy(j->key, key->data, key->len);
    j->key_len = key->len;
    j->kind = kind;
    j->c = c;
    j->store = c->store;
    j->to = msg->from;
    j->op_id = msg->op_id;
    j->ballot = ballot;
    kv_cluster__job_add(c, &j->hdr, job_drop);
    c->io.run(c->io.ctx, work, done, j);
}

void kv_paxos_on_prepare(struct kv_cluster *c, const Kv__PeerMessage *msg)
{
    start(c, msg, PX_PREPARE, &msg->prepare->key, bal(msg->prepare->ballot), NULL);
}

void kv_paxos_on_propose(struct kv_cluster *c, const Kv__PeerMessage *msg)
{
    const Kv__Record *r = msg->propose->proposal;
    struct kv_version b = {r->hlc, r->node};
    if (msg->propose->ballot)
        b = bal(msg->propose->ballot);
    start(c, msg, PX_PROPOSE, &r->key, b, r);
}

void kv_paxos_on_commit(struct kv_cluster *c, const Kv__PeerMessage *msg)
{
    const Kv__Record *r = msg->commit->record;
    struct kv_version b = {r->hlc, r->node};
    if (msg->commit->ballot)
        b = bal(msg->commit->ballot);
    start(c, msg, PX_COMMIT, &r->key, b, r);
}
