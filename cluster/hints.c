/* cluster/hints.c -- hinted handoff: durable copies of writes a down replica missed,
 * replayed when it is seen up again.
 *
 * A hint lives in KV_CF_HINTS under key be32(target) | be64(created ms) | be64(seq), so a
 * target's hints are one contiguous key range, oldest first; the value is a checksum and
 * the packed Kv__Record exactly as the coordinator minted it (replay never mints,
 * cluster.h (5); layout and checksum: cluster/hints.h).
 * (1) A hint never counts towards a consistency level (coord.c); it only shortens the time
 *     a replica stays stale.
 * (2) Bounds (opts): at most max_hints_per_node per target and max_hint_bytes in all; a hint
 *     over a bound is dropped (hints_dropped) and logged once per target until its hints
 *     drain. Hints older than max_hint_age_ms are deleted, never replayed. A sloppy write
 *     (coord.c (7)) asks kv_hint_room first and is refused when its hints would be dropped,
 *     because then its fallback copy would never reach the key's replicas.
 * (3) A hint is stored with a synced write, through io->run, and counts as pending (and
 *     stored) once that write is done. Bounds count the accepted ones still in flight too,
 *     so they hold while stores are pending. Counts are rebuilt at start by iterating the
 *     column family (hints accepted before that finishes wait in a queue, so their sequence
 *     numbers come after every stored one). Durable counts are signed: a replay may read
 *     and delete a hint whose store completed on the storage thread before its done
 *     callback counted it, so a count may dip below zero for a moment and still nets out.
 *     kv_hint_add_notify tells its caller when that synced write is done (a sloppy write is
 *     acknowledged only once its hints are durable).
 * (4) Replay is ack-bound and one batch per target at a time: read up to HINT_BATCH hints
 *     (and KV_CLUSTER__MSG_BUDGET bytes), send them as one ReplicaWrite with is_hint, and
 *     delete them only after the target acked; no ack within the timeout leaves them for the
 *     next try. Replay starts when the target turns up and every HINT_TICK_MS while it is up
 *     with hints pending; for down targets the tick only purges expired hints. */
#include <stdlib.h>
#include <string.h>
#include "cluster/hints.h"
#include "cluster/internal.h"
#include "common/hash.h"
#include "common/log.h"

#define HINT_KEY_LEN KV_HINT_KEY_LEN
#define HINT_TICK_MS 10000
#define HINT_BATCH 64
#define HINT_PURGE_MAX 1024         /* most deletions of expired hints per job */

struct hint_node {
    uint32_t id;
    int64_t count, bytes;           /* durable hints (3) */
    uint64_t inflight, inflight_bytes;  /* accepted, store not done yet */
    bool warned;                    /* dropped-hint warning logged (2) */
    bool busy;                      /* a batch job or replay is in flight (4) */
};

struct store_job;

struct kv_hints {
    struct hint_node *nodes;
    size_t n_nodes, cap_nodes;
    int64_t total_count, total_bytes;
    uint64_t inflight, inflight_bytes;
    uint64_t seq;
    bool ready;                     /* counts rebuilt (3) */
    struct store_job **queue;       /* accepted before ready */
    size_t n_queue, cap_queue;
    uint64_t tick;
    uint64_t load_bytes;
    bool load_busy;
};

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static struct hint_node *node_get(struct kv_hints *h, uint32_t id, bool create)
{
    for (size_t i = 0; i < h->n_nodes; i++)
        if (h->nodes[i].id == id)
            return &h->nodes[i];
    if (!create)
        return NULL;
    if (h->n_nodes == h->cap_nodes) {
        size_t cap = h->cap_nodes ? h->cap_nodes * 2 : 8;
        struct hint_node *p = realloc(h->nodes, cap * sizeof *p);
        if (!p)
            return NULL;
        h->nodes = p;
        h->cap_nodes = cap;
    }
    struct hint_node *n = &h->nodes[h->n_nodes++];
    memset(n, 0, sizeof *n);
    n->id = id;
    return n;
}

static uint64_t pos(int64_t v) { return v > 0 ? (uint64_t)v : 0; }

static void publish(struct kv_cluster *c)
{
    kv_members_set_load(c->members, c->hints->load_bytes, pos(c->hints->total_count));
}

/* Durable hints of node id were replayed or deleted. */
static void uncount(struct kv_cluster *c, uint32_t id, uint64_t count, uint64_t bytes)
{
    struct kv_hints *h = c->hints;
    struct hint_node *n = node_get(h, id, false);
    if (n) {
        n->count -= (int64_t)count;
        n->bytes -= (int64_t)bytes;
        if (n->count <= 0 && !n->inflight)
            n->warned = false;
    }
    h->total_count -= (int64_t)count;
    h->total_bytes -= (int64_t)bytes;
    publish(c);
}

/* An accepted hint's store finished: durable (ok) or dropped. */
static void settle(struct kv_cluster *c, uint32_t id, uint64_t bytes, bool ok)
{
    struct kv_hints *h = c->hints;
    struct hint_node *n = node_get(h, id, false);
    if (n) {
        n->inflight--;
        n->inflight_bytes -= bytes;
        if (ok) {
            n->count++;
            n->bytes += (int64_t)bytes;
        }
    }
    h->inflight--;
    h->inflight_bytes -= bytes;
    if (ok) {
        h->total_count++;
        h->total_bytes += (int64_t)bytes;
    }
    publish(c);
}

uint64_t kv_hint_pending(const struct kv_cluster *c)
{
    return c->hints ? pos(c->hints->total_count) : 0;
}

/* --- storing (3) ---------------------------------------------------------------------- */

struct store_job {
    struct kv_cluster__job hdr;
    struct kv_cluster *c;
    struct kv_store *store;
    uint32_t target;
    uint64_t created;
    uint8_t key[HINT_KEY_LEN];
    uint8_t *val;
    size_t len;
    enum kv_status st;
    struct kv_err err;
    kv_hint_stored_fn stored;       /* kv_hint_add_notify: told when the store is done */
    uint64_t stored_id;
};

static void store_job_free(struct store_job *j)
{
    free(j->val);
    free(j);
}

static void store_job_drop(struct kv_cluster__job *j) { store_job_free((struct store_job *)j); }

static void store_work(void *arg)
{
    struct store_job *j = arg;
    j->st = kv_store_raw_put(j->store, KV_CF_HINTS, kv_slice_of(j->key, HINT_KEY_LEN),
                             kv_slice_of(j->val, j->len), true, &j->err);
}

static void store_done(void *arg)
{
    struct store_job *j = arg;
    struct kv_cluster *c = j->c;
    kv_cluster__job_remove(&j->hdr);
    if (j->st == KV_OK) {
        c->stats.hints_stored++;
    } else {
        KV_WARN("hints: storing a hint for node %u failed: %s", j->target, j->err.msg);
        c->stats.hints_dropped++;
    }
    settle(c, j->target, HINT_KEY_LEN + j->len, j->st == KV_OK);
    if (j->stored)
        j->stored(c, j->stored_id, j->st == KV_OK);
    store_job_free(j);
}

static void store_launch(struct kv_cluster *c, struct store_job *j)
{
    put_be32(j->key, j->target);
    put_be64(j->key + 4, j->created);
    put_be64(j->key + 12, c->hints->seq++);
    kv_cluster__job_add(c, &j->hdr, store_job_drop);
    c->io.run(c->io.ctx, store_work, store_done, j);
}

static void drop_hint(struct kv_cluster *c, struct hint_node *n, uint32_t target, const char *why)
{
    c->stats.hints_dropped++;
    if (n && n->warned)
        return;
    if (n)
        n->warned = true;
    KV_WARN("hints: dropping hints for node %u: %s (logged once until its hints drain)",
            target, why);
}

bool kv_hint_room(struct kv_cluster *c, const uint32_t *targets, size_t n, const Kv__Record *r)
{
    struct kv_hints *h = c->hints;
    uint64_t bytes = HINT_KEY_LEN + kv__record__get_packed_size(r);
    if (!h || pos(h->total_bytes) + h->inflight_bytes + n * bytes > c->o.max_hint_bytes)
        return false;
    for (size_t i = 0; i < n; i++) {
        const struct hint_node *hn = node_get(h, targets[i], false);
        uint64_t have = hn ? pos(hn->count) + hn->inflight : 0;
        if (have >= c->o.max_hints_per_node)
            return false;
    }
    return true;
}

void kv_hint_add(struct kv_cluster *c, uint32_t target, const Kv__Record *r)
{
    kv_hint_add_notify(c, target, r, NULL, 0);
}

bool kv_hint_add_notify(struct kv_cluster *c, uint32_t target, const Kv__Record *r,
                        kv_hint_stored_fn stored, uint64_t op_id)
{
    struct kv_hints *h = c->hints;
    struct hint_node *n = node_get(h, target, true);
    size_t len = KV_HINT_CHECK_LEN + kv__record__get_packed_size(r);
    uint64_t bytes = HINT_KEY_LEN + len;
    if (!n) {
        drop_hint(c, NULL, target, "out of memory");
        return false;
    }
    if (pos(n->count) + n->inflight >= c->o.max_hints_per_node) {
        drop_hint(c, n, target, "max_hints_per_node reached");
        return false;
    }
    if (pos(h->total_bytes) + h->inflight_bytes + bytes > c->o.max_hint_bytes) {
        drop_hint(c, n, target, "max_hint_bytes reached");
        return false;
    }
    struct store_job *j = calloc(1, sizeof *j);
    if (j)
        j->val = malloc(len ? len : 1);
    if (!j || !j->val) {
        free(j);
        drop_hint(c, n, target, "out of memory");
        return false;
    }
    kv__record__pack(r, j->val + KV_HINT_CHECK_LEN);
    put_be32(j->val, kv_hash32(j->val + KV_HINT_CHECK_LEN, len - KV_HINT_CHECK_LEN));
    j->len = len;
    j->c = c;
    j->store = c->store;
    j->target = target;
    j->created = kv_cluster__now(c);
    n->inflight++;
    n->inflight_bytes += bytes;
    h->inflight++;
    h->inflight_bytes += bytes;
    j->stored = stored;
    j->stored_id = op_id;
    if (h->ready) {
        store_launch(c, j);
        return true;
    }
    if (h->n_queue == h->cap_queue) {
        size_t cap = h->cap_queue ? h->cap_queue * 2 : 16;
        struct store_job **q = realloc(h->queue, cap * sizeof *q);
        if (!q) {
            store_job_free(j);
            settle(c, target, bytes, false);
            drop_hint(c, n, target, "out of memory");
            return false;
        }
        h->queue = q;
        h->cap_queue = cap;
    }
    h->queue[h->n_queue++] = j;
    return true;
}

/* --- replay (4) ----------------------------------------------------------------------- */

struct batch_job {
    struct kv_cluster__job hdr;
    struct kv_cluster *c;
    struct kv_store *store;
    uint32_t target;
    bool replay;                    /* false: only purge expired hints */
    uint64_t now, max_age;
    uint32_t max_value;
    /* results */
    uint8_t (*keys)[HINT_KEY_LEN];
    uint8_t **vals;
    size_t *lens;
    size_t n;
    uint64_t bytes;                 /* of the n collected hints */
    uint64_t purged, purged_bytes;
    enum kv_status st;
    struct kv_err err;
};

static void batch_free_results(uint8_t (*keys)[HINT_KEY_LEN], uint8_t **vals, size_t *lens,
                               size_t n)
{
    for (size_t i = 0; vals && i < n; i++)
        free(vals[i]);
    free(keys);
    free(vals);
    free(lens);
}

static void batch_job_free(struct batch_job *j)
{
    batch_free_results(j->keys, j->vals, j->lens, j->n);
    free(j);
}

static void batch_job_drop(struct kv_cluster__job *j) { batch_job_free((struct batch_job *)j); }

bool kv_hint_key_decode(struct kv_slice key, uint32_t *target, uint64_t *created_ms,
                        uint64_t *seq)
{
    if (key.len != HINT_KEY_LEN)
        return false;
    const uint8_t *k = key.ptr;
    *target = get_be32(k);
    *created_ms = get_be64(k + 4);
    *seq = get_be64(k + 12);
    return true;
}

bool kv_hint_value_packed(struct kv_slice v, struct kv_slice *packed)
{
    if (v.len < KV_HINT_CHECK_LEN)
        return false;
    const uint8_t *p = v.ptr;
    struct kv_slice rest = kv_slice_of(p + KV_HINT_CHECK_LEN, v.len - KV_HINT_CHECK_LEN);
    if (get_be32(p) != kv_hash32(rest.ptr, rest.len))
        return false;
    *packed = rest;
    return true;
}

/* A stored hint that no longer decodes as a valid record is deleted, never replayed. */
bool kv_hint_value_ok(struct kv_slice v, uint32_t max_value)
{
    struct kv_slice pk;
    if (!kv_hint_value_packed(v, &pk))
        return false;
    Kv__Record *r = kv__record__unpack(NULL, pk.len, pk.ptr);
    if (!r)
        return false;
    /* Unknown fields too: the receiver refuses a record carrying any (proto/codec.h (2)),
     * so such a hint would be re-sent forever and never acknowledged. */
    bool ok = r->key.len && r->key.len <= KV_STORE_KEY_MAX && r->value.len <= max_value &&
              !(r->tombstone && r->value.len) && r->base.n_unknown_fields == 0;
    kv__record__free_unpacked(r, NULL);
    return ok;
}

/* On a storage thread: touches only j and the store. */
static void batch_work(void *arg)
{
    struct batch_job *j = arg;
    uint8_t lo[4], hi[4];
    put_be32(lo, j->target);
    put_be32(hi, j->target + 1);
    struct kv_slice end = j->target == UINT32_MAX ? kv_slice_of(NULL, 0) : kv_slice_of(hi, 4);
    struct kv_store_iter *it = NULL;
    j->st = kv_store_raw_iter_new(j->store, KV_CF_HINTS, kv_slice_of(lo, 4), end, &it, &j->err);
    if (j->st != KV_OK)
        return;
    j->keys = malloc(HINT_BATCH * sizeof *j->keys);
    j->vals = calloc(HINT_BATCH, sizeof *j->vals);
    j->lens = calloc(HINT_BATCH, sizeof *j->lens);
    if (!j->keys || !j->vals || !j->lens) {
        j->st = kv_err_set(&j->err, KV_NOMEM, "hints: out of memory");
        kv_store_iter_free(it);
        return;
    }
    struct kv_slice key;
    struct kv_record rec;
    while (j->n < HINT_BATCH && j->purged < HINT_PURGE_MAX) {
        enum kv_status s = kv_store_iter_next(it, &key, &rec, &j->err);
        if (s == KV_NOT_FOUND)
            break;
        if (s != KV_OK) {
            j->st = s;
            break;
        }
        const uint8_t *k = key.ptr;
        uint32_t target;
        uint64_t created, seq;
        if (!kv_hint_key_decode(key, &target, &created, &seq) || target != j->target)
            break;              /* past this target's range */
        bool expired = j->now > created && j->now - created > j->max_age;
        if (expired || (j->replay && !kv_hint_value_ok(rec.value, j->max_value))) {
            if (kv_store_raw_delete(j->store, KV_CF_HINTS, key, false, NULL) == KV_OK) {
                j->purged++;
                j->purged_bytes += HINT_KEY_LEN + rec.value.len;
            }
            continue;
        }
        if (!j->replay)
            break;              /* oldest first: the rest are younger */
        if (j->n && j->bytes + HINT_KEY_LEN + rec.value.len > KV_CLUSTER__MSG_BUDGET)
            break;
        if (!(j->vals[j->n] = malloc(rec.value.len ? rec.value.len : 1))) {
            j->st = kv_err_set(&j->err, KV_NOMEM, "hints: out of memory");
            break;
        }
        memcpy(j->vals[j->n], rec.value.ptr, rec.value.len);
        j->lens[j->n] = rec.value.len;
        memcpy(j->keys[j->n], k, HINT_KEY_LEN);
        j->bytes += HINT_KEY_LEN + rec.value.len;
        j->n++;
    }
    kv_store_iter_free(it);
}

struct replay_op {
    struct kv_coord_op hdr;
    uint32_t target;
    uint8_t (*keys)[HINT_KEY_LEN];
    uint8_t **vals;
    size_t *lens;
    size_t n;
    uint64_t bytes;
};

struct delete_job {
    struct kv_cluster__job hdr;
    struct kv_cluster *c;
    struct kv_store *store;
    uint32_t target;
    uint8_t (*keys)[HINT_KEY_LEN];
    size_t n;
    uint64_t bytes;
};

static void start_batch(struct kv_cluster *c, struct hint_node *n, bool replay);

static void set_idle(struct kv_cluster *c, uint32_t target)
{
    struct hint_node *n = node_get(c->hints, target, false);
    if (n)
        n->busy = false;
}

static void delete_job_drop(struct kv_cluster__job *j)
{
    free(((struct delete_job *)j)->keys);
    free(j);
}

static void delete_work(void *arg)
{
    struct delete_job *j = arg;
    for (size_t i = 0; i < j->n; i++)
        (void)kv_store_raw_delete(j->store, KV_CF_HINTS, kv_slice_of(j->keys[i], HINT_KEY_LEN),
                                  false, NULL);
}

static void delete_done(void *arg)
{
    struct delete_job *j = arg;
    struct kv_cluster *c = j->c;
    kv_cluster__job_remove(&j->hdr);
    c->stats.hints_replayed += j->n;
    uncount(c, j->target, j->n, j->bytes);
    struct hint_node *n = node_get(c->hints, j->target, false);
    uint32_t target = j->target;
    free(j->keys);
    free(j);
    if (!n)
        return;
    n->busy = false;
    if (n->count > 0 && kv_members_is_up(c->members, target))
        start_batch(c, n, true);        /* keep draining while it is up */
}

static void replay_free(struct replay_op *op)
{
    batch_free_results(op->keys, op->vals, op->lens, op->n);
    free(op);
}

static void replay_end(struct replay_op *op)
{
    kv_cluster__op_timer_cancel(&op->hdr);
    kv_cluster__op_remove(op->hdr.c, &op->hdr);
    set_idle(op->hdr.c, op->target);
    replay_free(op);
}

static bool replay_reply(struct kv_coord_op *hdr, uint32_t from, const Kv__PeerMessage *m)
{
    struct replay_op *op = (struct replay_op *)hdr;
    struct kv_cluster *c = hdr->c;
    if (from != op->target || m->body_case != KV__PEER_MESSAGE__BODY_WRITE_ACK)
        return false;
    if (m->write_ack->status != KV__STATUS__OK) {
        KV_WARN("hints: node %u refused a replay batch: %s", op->target,
                m->write_ack->message ? m->write_ack->message : "");
        replay_end(op);
        return true;
    }
    struct delete_job *j = calloc(1, sizeof *j);
    if (!j) {
        replay_end(op);         /* replayed again later: harmless (LWW) */
        return true;
    }
    j->c = c;
    j->store = c->store;
    j->target = op->target;
    j->keys = op->keys;
    j->n = op->n;
    j->bytes = op->bytes;
    op->keys = NULL;
    kv_cluster__op_timer_cancel(hdr);
    kv_cluster__op_remove(c, hdr);
    replay_free(op);            /* the node stays busy until the deletes are done */
    kv_cluster__job_add(c, &j->hdr, delete_job_drop);
    c->io.run(c->io.ctx, delete_work, delete_done, j);
    return true;
}

static void replay_timeout(struct kv_coord_op *hdr)
{
    struct replay_op *op = (struct replay_op *)hdr;
    hdr->c->stats.replica_timeouts++;
    replay_end(op);             /* retried at a later tick or up transition */
}

static void replay_shutdown(struct kv_coord_op *hdr) { replay_free((struct replay_op *)hdr); }

static const struct kv_coord_op_vt replay_vt = {replay_reply, replay_timeout, replay_shutdown};

static void send_batch(struct kv_cluster *c, struct batch_job *j)
{
    struct replay_op *op = calloc(1, sizeof *op);
    Kv__Record **recs = calloc(j->n, sizeof *recs);
    size_t ok = 0;
    for (; op && recs && ok < j->n; ok++) {
        struct kv_slice pk;   /* checked by batch_work already (kv_hint_value_ok) */
        if (!kv_hint_value_packed(kv_slice_of(j->vals[ok], j->lens[ok]), &pk) ||
            !(recs[ok] = kv__record__unpack(NULL, pk.len, pk.ptr)))
            break;
    }
    if (!op || !recs || ok < j->n) {
        for (size_t i = 0; recs && i < ok; i++)
            kv__record__free_unpacked(recs[i], NULL);
        free(recs);
        free(op);
        set_idle(c, j->target);
        return;
    }
    op->hdr.vt = &replay_vt;
    op->target = j->target;
    op->keys = j->keys;
    op->vals = j->vals;
    op->lens = j->lens;
    op->n = j->n;
    op->bytes = j->bytes;
    j->keys = NULL;
    j->vals = NULL;
    j->lens = NULL;
    j->n = 0;
    kv_cluster__op_add(c, &op->hdr);
    kv_cluster__op_deadline_in(&op->hdr, c->o.default_timeout_ms);
    kv_cluster__op_timer(&op->hdr, c->o.default_timeout_ms);
    Kv__ReplicaWrite w = KV__REPLICA_WRITE__INIT;
    w.records = recs;
    w.n_records = op->n;
    w.is_hint = true;
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.body_case = KV__PEER_MESSAGE__BODY_WRITE;
    pm.write = &w;
    kv_cluster__send_op(&op->hdr, op->target, &pm);
    for (size_t i = 0; i < op->n; i++)
        kv__record__free_unpacked(recs[i], NULL);
    free(recs);
}

static void batch_done(void *arg)
{
    struct batch_job *j = arg;
    struct kv_cluster *c = j->c;
    kv_cluster__job_remove(&j->hdr);
    if (j->purged) {
        c->stats.hints_dropped += j->purged;
        uncount(c, j->target, j->purged, j->purged_bytes);
        KV_INFO("hints: deleted %llu expired or unreadable hints for node %u",
                (unsigned long long)j->purged, j->target);
    }
    if (j->st != KV_OK)
        KV_WARN("hints: reading hints for node %u failed: %s", j->target, j->err.msg);
    if (j->replay && j->n && kv_members_is_up(c->members, j->target))
        send_batch(c, j);
    else
        set_idle(c, j->target);
    batch_job_free(j);
}

static void start_batch(struct kv_cluster *c, struct hint_node *n, bool replay)
{
    struct batch_job *j = calloc(1, sizeof *j);
    if (!j)
        return;
    n->busy = true;
    j->c = c;
    j->store = c->store;
    j->target = n->id;
    j->replay = replay;
    j->now = kv_cluster__now(c);
    j->max_age = c->o.max_hint_age_ms;
    j->max_value = c->o.max_value;
    kv_cluster__job_add(c, &j->hdr, batch_job_drop);
    c->io.run(c->io.ctx, batch_work, batch_done, j);
}

void kv_hint_on_up(struct kv_cluster *c, uint32_t id)
{
    struct kv_hints *h = c->hints;
    struct hint_node *n = h ? node_get(h, id, false) : NULL;
    if (h && h->ready && n && n->count > 0 && !n->busy)
        start_batch(c, n, true);
}

/* --- the tick and load figures --------------------------------------------------------- */

struct load_job {
    struct kv_cluster__job hdr;
    struct kv_cluster *c;
    struct kv_store *store;
    uint64_t bytes;
    enum kv_status st;
};

static void load_job_drop(struct kv_cluster__job *j) { free(j); }

static void load_work(void *arg)
{
    struct load_job *j = arg;
    j->st = kv_store_approx_size(j->store, kv_slice_of(NULL, 0), kv_slice_of(NULL, 0),
                                 &j->bytes, NULL);
}

static void load_done(void *arg)
{
    struct load_job *j = arg;
    struct kv_cluster *c = j->c;
    kv_cluster__job_remove(&j->hdr);
    c->hints->load_busy = false;
    if (j->st == KV_OK) {
        c->hints->load_bytes = j->bytes;
        publish(c);
    }
    free(j);
}

static void tick(void *arg)
{
    struct kv_cluster *c = arg;
    struct kv_hints *h = c->hints;
    h->tick = 0;
    for (size_t i = 0; i < h->n_nodes; i++) {
        struct hint_node *n = &h->nodes[i];
        if (n->count > 0 && !n->busy)
            start_batch(c, n, kv_members_is_up(c->members, n->id));
    }
    if (!h->load_busy) {
        struct load_job *j = calloc(1, sizeof *j);
        if (j) {
            h->load_busy = true;
            j->c = c;
            j->store = c->store;
            kv_cluster__job_add(c, &j->hdr, load_job_drop);
            c->io.run(c->io.ctx, load_work, load_done, j);
        }
    }
    h->tick = c->io.timer_start(c->io.ctx, HINT_TICK_MS, tick, c);
}

/* --- start: rebuilding the counts (3) -------------------------------------------------- */

struct count {
    uint32_t target;
    uint64_t count, bytes;
};

struct rebuild_job {
    struct kv_cluster__job hdr;
    struct kv_cluster *c;
    struct kv_store *store;
    struct count *counts;
    size_t n, cap;
    uint64_t max_seq;
    bool any;
    enum kv_status st;
    struct kv_err err;
};

static void rebuild_job_drop(struct kv_cluster__job *j)
{
    free(((struct rebuild_job *)j)->counts);
    free(j);
}

static void rebuild_work(void *arg)
{
    struct rebuild_job *j = arg;
    struct kv_store_iter *it = NULL;
    j->st = kv_store_raw_iter_new(j->store, KV_CF_HINTS, kv_slice_of(NULL, 0),
                                  kv_slice_of(NULL, 0), &it, &j->err);
    if (j->st != KV_OK)
        return;
    struct kv_slice key;
    struct kv_record rec;
    for (;;) {
        enum kv_status s = kv_store_iter_next(it, &key, &rec, &j->err);
        if (s == KV_NOT_FOUND)
            break;
        if (s != KV_OK) {
            j->st = s;
            break;
        }
        uint32_t target;
        uint64_t created, seq;
        if (!kv_hint_key_decode(key, &target, &created, &seq)) {   /* not ours: never replayable */
            (void)kv_store_raw_delete(j->store, KV_CF_HINTS, key, false, NULL);
            continue;
        }
        if (!j->any || seq > j->max_seq)
            j->max_seq = seq;
        j->any = true;
        if (!j->n || j->counts[j->n - 1].target != target) {   /* keys sort by target */
            if (j->n == j->cap) {
                size_t cap = j->cap ? j->cap * 2 : 8;
                struct count *p = realloc(j->counts, cap * sizeof *p);
                if (!p) {
                    j->st = kv_err_set(&j->err, KV_NOMEM, "hints: out of memory");
                    break;
                }
                j->counts = p;
                j->cap = cap;
            }
            j->counts[j->n++] = (struct count){target, 0, 0};
        }
        j->counts[j->n - 1].count++;
        j->counts[j->n - 1].bytes += HINT_KEY_LEN + rec.value.len;
    }
    kv_store_iter_free(it);
}

static void rebuild_done(void *arg)
{
    struct rebuild_job *j = arg;
    struct kv_cluster *c = j->c;
    struct kv_hints *h = c->hints;
    kv_cluster__job_remove(&j->hdr);
    if (j->st != KV_OK)
        KV_ERROR("hints: counting stored hints failed (%s); counts start from what was read",
                 j->err.msg);
    for (size_t i = 0; i < j->n; i++) {
        struct hint_node *n = node_get(h, j->counts[i].target, true);
        if (!n)
            continue;
        n->count += (int64_t)j->counts[i].count;
        n->bytes += (int64_t)j->counts[i].bytes;
        h->total_count += (int64_t)j->counts[i].count;
        h->total_bytes += (int64_t)j->counts[i].bytes;
    }
    if (j->any && j->max_seq >= h->seq)
        h->seq = j->max_seq + 1;
    if (j->n)
        KV_INFO("hints: %llu stored hints for %zu nodes",
                (unsigned long long)pos(h->total_count), j->n);
    rebuild_job_drop(&j->hdr);
    h->ready = true;
    for (size_t i = 0; i < h->n_queue; i++)
        store_launch(c, h->queue[i]);
    h->n_queue = 0;
    publish(c);
    for (size_t i = 0; i < h->n_nodes; i++)
        if (h->nodes[i].count > 0 && kv_members_is_up(c->members, h->nodes[i].id) &&
            h->nodes[i].id != c->o.node_id)
            start_batch(c, &h->nodes[i], true);
    h->tick = c->io.timer_start(c->io.ctx, HINT_TICK_MS, tick, c);
}

enum kv_status kv_hint_init(struct kv_cluster *c, struct kv_err *err)
{
    if (!(c->hints = calloc(1, sizeof *c->hints)))
        return kv_err_set(err, KV_NOMEM, "hints: out of memory");
    if (!c->o.max_hints_per_node)
        c->o.max_hints_per_node = 100000;
    if (!c->o.max_hint_bytes)
        c->o.max_hint_bytes = 256ull << 20;
    if (!c->o.max_hint_age_ms)
        c->o.max_hint_age_ms = 3ull * 3600 * 1000;
    return KV_OK;
}

void kv_hint_start(struct kv_cluster *c)
{
    struct rebuild_job *j = calloc(1, sizeof *j);
    if (!j) {
        KV_ERROR("hints: out of memory; counting starts from zero");
        c->hints->ready = true;
        return;
    }
    j->c = c;
    j->store = c->store;
    kv_cluster__job_add(c, &j->hdr, rebuild_job_drop);
    c->io.run(c->io.ctx, rebuild_work, rebuild_done, j);
}

void kv_hint_free(struct kv_cluster *c)
{
    struct kv_hints *h = c->hints;
    if (!h)
        return;
    if (h->tick)
        c->io.timer_cancel(c->io.ctx, h->tick);
    for (size_t i = 0; i < h->n_queue; i++)
        store_job_free(h->queue[i]);
    free(h->queue);
    free(h->nodes);
    free(h);
    c->hints = NULL;
}
