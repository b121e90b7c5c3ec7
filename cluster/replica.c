/* cluster/replica.c -- the replica side: what a node does when a coordinator (possibly
 * itself) asks it to write, read or scan its local store.
 *
 * (1) Every answer goes back to msg->from with msg->op_id, over io->send, after the store
 *     call completed (io->store_write / io->run): a write is acked only once it is as
 *     durable as the store's sync setting promises.
 * (2) Reads and scans use KV_STORE_RAW: tombstones and expired records are returned, so the
 *     coordinator compares versions and repairs deletes too; it decides what is live.
 * (3) Writes merge by version in the store (storage/store.h invariant 1), so a duplicated,
 *     reordered or replayed ReplicaWrite is harmless.
 * (4) A scan answer is bounded by the limit asked (at most KV_CLUSTER__SCAN_MAX) and by
 *     KV_CLUSTER__MSG_BUDGET bytes; `more` says the replica stopped early, which it checks
 *     by looking one record further. */
#include <stdlib.h>
#include <string.h>
#include "cluster/internal.h"
#include "common/log.h"
#include "proto/codec.h"

/* --- writes -------------------------------------------------------------------------- */

struct write_job {
    struct kv_cluster__job hdr;     /* first: see internal.h (2) */
    struct kv_cluster *c;
    uint32_t to;
    uint64_t op_id;
};

static void write_job_drop(struct kv_cluster__job *j) { free(j); }

static void send_ack(struct kv_cluster *c, uint32_t to, uint64_t op_id, enum kv_status st,
                     const char *why)
{
    Kv__ReplicaWriteAck ack = KV__REPLICA_WRITE_ACK__INIT;
    ack.status = kv_codec_status_to_wire(st);
    if (st != KV_OK && why)
        ack.message = (char *)why;
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.body_case = KV__PEER_MESSAGE__BODY_WRITE_ACK;
    pm.write_ack = &ack;
    kv_cluster__send(c, to, op_id, &pm);
}

static void write_done(void *arg, enum kv_status st, const struct kv_err *err)
{
    struct write_job *j = arg;
    kv_cluster__job_remove(&j->hdr);
    if (st != KV_OK && st != KV_NOSPACE)    /* a full disk: logged once by storage/ */
        KV_WARN("replica: write for node %u failed: %s", j->to,
                err ? err->msg : kv_status_str(st));
    send_ack(j->c, j->to, j->op_id, st, err ? err->msg : NULL);
    free(j);
}

void kv_replica_on_write(struct kv_cluster *c, const Kv__PeerMessage *msg)
{
    const Kv__ReplicaWrite *w = msg->write;
    struct kv_write *ws = malloc(w->n_records * sizeof *ws);
    struct write_job *j = calloc(1, sizeof *j);
    if (!ws || !j) {
        free(ws);
        free(j);
        send_ack(c, msg->from, msg->op_id, KV_NOMEM, "replica: out of memory");
        return;
    }
    for (size_t i = 0; i < w->n_records; i++) {
        ws[i] = kv_cluster__record_to_write(w->records[i]);
        ws[i].replace_corrupt = w->repair_corrupt;   /* storage/store.h */
    }
    j->c = c;
    j->to = msg->from;
    j->op_id = msg->op_id;
    kv_cluster__job_add(c, &j->hdr, write_job_drop);
    c->io.store_write(c->io.ctx, ws, w->n_records, write_done, j);   /* copies ws */
    free(ws);
}

/* --- reads --------------------------------------------------------------------------- */

struct read_job {
    struct kv_cluster__job hdr;
    struct kv_cluster *c;           /* only the done callback touches it */
    struct kv_store *store;
    uint32_t to;
    uint64_t op_id;
    uint8_t *key;
    size_t key_len;
    bool linear, paxos;             /* linear: also look for Paxos state (paxos: found) */
    struct kv_cluster__deadline deadline;
    bool expired;                   /* the deadline passed while queued: not read */
    enum kv_status st;
    struct kv_err err;
    struct kv_store_item item;
};

static void read_job_free(struct read_job *j)
{
    kv_store_item_free(&j->item);
    free(j->key);
    free(j);
}

static void read_job_drop(struct kv_cluster__job *j) { read_job_free((struct read_job *)j); }

static void read_work(void *arg)
{
    struct read_job *j = arg;
    if ((j->expired = kv_cluster__deadline_passed(&j->deadline)))   /* cluster.h (7) */
        return;
    j->st = kv_store_get(j->store, kv_slice_of(j->key, j->key_len), KV_STORE_RAW, &j->item,
                         &j->err);
    if (j->linear) {
        struct kv_buf b = {0};
        j->paxos = kv_store_raw_get(j->store, KV_CF_PAXOS, kv_slice_of(j->key, j->key_len), &b,
                                    NULL) == KV_OK;
        kv_buf_free(&b);
    }
}

static void read_done(void *arg)
{
    struct read_job *j = arg;
    kv_cluster__job_remove(&j->hdr);
    if (j->expired) {
        j->c->stats.expired_dropped++;
        read_job_free(j);
        return;
    }
    Kv__ReplicaReadReply rr = KV__REPLICA_READ_REPLY__INIT;
    Kv__Record rec = KV__RECORD__INIT;
    rr.status = kv_codec_status_to_wire(j->st);
    rr.paxos = j->paxos;
    if (j->st == KV_OK) {
        rec.key.data = j->key;
        rec.key.len = j->key_len;
        rec.hlc = j->item.rec.ver.hlc;
        rec.node = j->item.rec.ver.node;
        rec.tombstone = j->item.rec.tombstone;
        rec.expires_at_ms = j->item.rec.expires_at_ms;
        rec.value.data = (uint8_t *)j->item.rec.value.ptr;
        rec.value.len = j->item.rec.value.len;
        rr.record = &rec;
    } else if (j->st != KV_NOT_FOUND) {
        rr.message = j->err.msg;
        if (j->st == KV_CORRUPTION)
            j->c->stats.corrupt_reads++;
        KV_WARN("replica: read for node %u failed: %s", j->to, j->err.msg);
    }
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.body_case = KV__PEER_MESSAGE__BODY_READ_REPLY;
    pm.read_reply = &rr;
    kv_cluster__send(j->c, j->to, j->op_id, &pm);
    read_job_free(j);
}

static void send_read_error(struct kv_cluster *c, const Kv__PeerMessage *msg, const char *why)
{
    Kv__ReplicaReadReply rr = KV__REPLICA_READ_REPLY__INIT;
    rr.status = kv_codec_status_to_wire(KV_NOMEM);
    rr.message = (char *)why;
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.body_case = KV__PEER_MESSAGE__BODY_READ_REPLY;
    pm.read_reply = &rr;
    kv_cluster__send(c, msg->from, msg->op_id, &pm);
}

void kv_replica_on_read(struct kv_cluster *c, const Kv__PeerMessage *msg)
{
    struct read_job *j = calloc(1, sizeof *j);
    if (j)
        j->key = malloc(msg->read->key.len);
    if (!j || !j->key) {
        free(j);
        send_read_error(c, msg, "replica: out of memory");
        return;
    }
    memcpy(j->key, msg->read->key.data, msg->read->key.len);
    j->key_len = msg->read->key.len;
    j->linear = msg->read->linear;
    j->c = c;
    j->store = c->store;
    j->to = msg->from;
    j->op_id = msg->op_id;
    j->deadline = kv_cluster__job_deadline(c, msg);
    kv_cluster__job_add(c, &j->hdr, read_job_drop);
    /* A read the memtable or block cache can answer costs far less than a hop to a
     * storage thread and back (the hop's context switches were most of a read's CPU), and
     * KV_STORE_CACHE_ONLY never touches the disk, so it is safe on the cluster thread.
     * A LINEARIZABLE write's read also looks up Paxos state: always a storage thread. */
    if (!j->linear) {
        j->st = kv_store_get(j->store, kv_slice_of(j->key, j->key_len),
                             KV_STORE_RAW | KV_STORE_CACHE_ONLY, &j->item, &j->err);
        if (j->st != KV_AGAIN) {
            read_done(j);
            return;
        }
    }
    c->io.run(c->io.ctx, read_work, read_done, j);
}

/* --- scans --------------------------------------------------------------------------- */

struct scan_job {
    struct kv_cluster__job hdr;
    struct kv_cluster *c;
    struct kv_store *store;
    uint32_t to;
    uint64_t op_id;
    uint8_t *start, *end;
    size_t start_len, end_len;
    bool start_exclusive, keys_only;
    uint32_t limit;
    struct kv_cluster__deadline deadline;
    bool expired;                   /* the deadline passed while queued: not scanned */
    /* results, filled by scan_work */
    enum kv_status st;
    struct kv_err err;
    Kv__Record **recs;              /* each record and its key/value are malloc'd */
    size_t n_recs;
    bool more;
};

static void scan_job_free(struct scan_job *j)
{
    for (size_t i = 0; i < j->n_recs; i++) {
        free(j->recs[i]->key.data);
        free(j->recs[i]->value.data);
        free(j->recs[i]);
    }
    free(j->recs);
    free(j->start);
    free(j->end);
    free(j);
}

static void scan_job_drop(struct kv_cluster__job *j) { scan_job_free((struct scan_job *)j); }

static Kv__Record *copy_record(struct kv_slice key, const struct kv_record *r, bool keys_only)
{
    Kv__Record *d = malloc(sizeof *d);
    if (!d)
        return NULL;
    kv__record__init(d);
    d->key.data = malloc(key.len);
    size_t vlen = keys_only ? 0 : r->value.len;
    d->value.data = vlen ? malloc(vlen) : NULL;
    if (!d->key.data || (vlen && !d->value.data)) {
        free(d->key.data);
        free(d->value.data);
        free(d);
        return NULL;
    }
    memcpy(d->key.data, key.ptr, key.len);
    d->key.len = key.len;
    if (vlen)
        memcpy(d->value.data, r->value.ptr, vlen);
    d->value.len = vlen;
    d->hlc = r->ver.hlc;
    d->node = r->ver.node;
    d->tombstone = r->tombstone;
    d->expires_at_ms = r->expires_at_ms;
    return d;
}

/* On a storage thread: touches only j and the store. */
static void scan_work(void *arg)
{
    struct scan_job *j = arg;
    if ((j->expired = kv_cluster__deadline_passed(&j->deadline)))   /* cluster.h (7) */
        return;
    struct kv_store_iter *it = NULL;
    j->st = kv_store_iter_new(j->store, kv_slice_of(j->start, j->start_len), j->start_exclusive,
                              kv_slice_of(j->end, j->end_len), KV_STORE_RAW, &it, &j->err);
    if (j->st != KV_OK)
        return;
    if (!(j->recs = malloc(j->limit * sizeof *j->recs))) {
        j->st = kv_err_set(&j->err, KV_NOMEM, "replica scan: out of memory");
        kv_store_iter_free(it);
        return;
    }
    size_t bytes = 0;
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
        size_t size = key.len + (j->keys_only ? 0 : rec.value.len) + 32;
        if (j->n_recs == j->limit || (j->n_recs && bytes + size > KV_CLUSTER__MSG_BUDGET)) {
            j->more = true;     /* one more record exists past the last returned */
            break;
        }
        Kv__Record *d = copy_record(key, &rec, j->keys_only);
        if (!d) {
            j->st = kv_err_set(&j->err, KV_NOMEM, "replica scan: out of memory");
            break;
        }
        j->recs[j->n_recs++] = d;
        bytes += size;
    }
    kv_store_iter_free(it);
}

static void scan_done(void *arg)
{
    struct scan_job *j = arg;
    kv_cluster__job_remove(&j->hdr);
    if (j->expired) {
        j->c->stats.expired_dropped++;
        scan_job_free(j);
        return;
    }
    Kv__ReplicaScanReply sr = KV__REPLICA_SCAN_REPLY__INIT;
    sr.status = kv_codec_status_to_wire(j->st);
    if (j->st == KV_OK) {
        sr.records = j->recs;
        sr.n_records = j->n_recs;
        sr.more = j->more;
    } else {
        sr.message = j->err.msg;
        KV_WARN("replica: scan for node %u failed: %s", j->to, j->err.msg);
    }
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.body_case = KV__PEER_MESSAGE__BODY_SCAN_REPLY;
    pm.scan_reply = &sr;
    kv_cluster__send(j->c, j->to, j->op_id, &pm);
    scan_job_free(j);
}

static uint8_t *dup_bytes(const ProtobufCBinaryData *b)
{
    uint8_t *p = malloc(b->len ? b->len : 1);
    if (p && b->len)
        memcpy(p, b->data, b->len);
    return p;
}

void kv_replica_on_scan(struct kv_cluster *c, const Kv__PeerMessage *msg)
{
    const Kv__ReplicaScan *s = msg->scan;
    struct scan_job *j = calloc(1, sizeof *j);
    if (j) {
        j->start = dup_bytes(&s->start);
        j->end = dup_bytes(&s->end);
    }
    if (!j || !j->start || !j->end) {
        if (j)
            scan_job_free(j);
        Kv__ReplicaScanReply sr = KV__REPLICA_SCAN_REPLY__INIT;
        sr.status = kv_codec_status_to_wire(KV_NOMEM);
        sr.message = "replica: out of memory";
        Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
        pm.body_case = KV__PEER_MESSAGE__BODY_SCAN_REPLY;
        pm.scan_reply = &sr;
        kv_cluster__send(c, msg->from, msg->op_id, &pm);
        return;
    }
    j->start_len = s->start.len;
    j->end_len = s->end.len;
    j->start_exclusive = s->start_exclusive;
    j->keys_only = s->keys_only;
    j->limit = s->limit == 0 ? 1 : s->limit > KV_CLUSTER__SCAN_MAX ? KV_CLUSTER__SCAN_MAX
                                                                   : s->limit;
    j->c = c;
    j->store = c->store;
    j->to = msg->from;
    j->op_id = msg->op_id;
    j->deadline = kv_cluster__job_deadline(c, msg);
    kv_cluster__job_add(c, &j->hdr, scan_job_drop);
    c->io.run(c->io.ctx, scan_work, scan_done, j);
}
