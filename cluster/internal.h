/* cluster/internal.h -- what the .c files of cluster/ share (cluster.c, ops.c, levels.c, coord.c,
 * scan.c, linear.c, paxos.c, replica.c, hints.c, ...).
 * Only the .c files of cluster/ include it; nothing outside cluster/ may.
 *
 * (1) Every operation that waits for peers (a client request, a hint replay batch) lives in
 *     the op table under a unique op_id, echoed by replicas; a reply whose op_id is not in
 *     the table is late (its op finished) and is dropped without complaint.
 * (2) Every struct handed to io->store_write or io->run begins with a kv_cluster__job and
 *     is linked into c->jobs until its done callback runs, so kv_cluster_free can free
 *     the ones whose completion will never come. A work function (storage thread) touches
 *     only its job's own fields (never the kv_cluster__job links, which the cluster thread
 *     rewrites as other jobs come and go) and the store, never the cluster.
 * (3) Every op with a timer cancels it before it is freed. */
#ifndef KV_CLUSTER_INTERNAL_H
#define KV_CLUSTER_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cluster/cluster.h"
#include "cluster/member.h"
#include "cluster/ring.h"

/* A peer message stays below this many bytes of records unless one record alone is
 * larger (server max_frame is 4 MiB by default; max_value 1 MiB). */
#define KV_CLUSTER__MSG_BUDGET (1u << 20)
/* Most records a replica returns for one ReplicaScan, whatever the limit asked. */
#define KV_CLUSTER__SCAN_MAX 10000u

/* --- pending io work (2) -------------------------------------------------------------- */

struct kv_cluster__job {
    struct kv_cluster__job *prev, *next;
    void (*drop)(struct kv_cluster__job *j);    /* frees j at kv_cluster_free */
};
void kv_cluster__job_add(struct kv_cluster *c, struct kv_cluster__job *j,
                         void (*drop)(struct kv_cluster__job *j));
void kv_cluster__job_remove(struct kv_cluster__job *j);

/* --- the op table (1) ------------------------------------------------------------------- */

/* ops.c: an empty op table and job list (false: out of memory); and, at kv_cluster_free,
 * every op answered KV_SHUTDOWN through its vt->shutdown and every pending job dropped. */
bool kv_cluster__ops_init(struct kv_cluster *c);
void kv_cluster__ops_free(struct kv_cluster *c);

struct kv_coord_op;
struct kv_coord_op_vt {
    /* A write_ack/read_reply/scan_reply for this op from node `from`; returns false when
     * the message breaks the protocol (counted as malformed). May free op. */
    bool (*reply)(struct kv_coord_op *op, uint32_t from, const Kv__PeerMessage *msg);
    /* The op's timer fired (op->timer is already 0). May free op. */
    void (*timeout)(struct kv_coord_op *op);
    /* kv_cluster_free: answer KV_SHUTDOWN when unanswered, then free op. The op is already
     * out of the table and its timer cancelled. */
    void (*shutdown)(struct kv_coord_op *op);
};

struct kv_coord_op {
    uint64_t id;
    struct kv_coord_op *hnext;
    const struct kv_coord_op_vt *vt;
    struct kv_cluster *c;
    uint64_t timer;
    uint64_t deadline;                  /* mono ms when the caller stops waiting; 0: none */
};

/* Gives op a fresh id and inserts it (a scan calls it again per round, so replies to an
 * earlier round are late by (1)). Never fails: the table only grows when it can. */
void kv_cluster__op_add(struct kv_cluster *c, struct kv_coord_op *op);
void kv_cluster__op_remove(struct kv_cluster *c, struct kv_coord_op *op);
void kv_cluster__op_rekey(struct kv_cluster *c, struct kv_coord_op *op);
/* The op with this id, or NULL when it is gone (1). */
struct kv_coord_op *kv_cluster__op_find(const struct kv_cluster *c, uint64_t id);
/* Starts op's timer (cancelling any running one); timeout then runs vt->timeout. */
void kv_cluster__op_timer(struct kv_coord_op *op, uint64_t ms);
void kv_cluster__op_timer_cancel(struct kv_coord_op *op);
/* Sets op's deadline to ms from now: every request sent for it with kv_cluster__send_op
 * carries it, and replicas drop the work once it has passed (cluster.h (7)). */
void kv_cluster__op_deadline_in(struct kv_coord_op *op, uint64_t ms);

/* --- the cluster ---------------------------------------------------------------------- */

struct kv_hints;

struct kv_cluster {
    struct kv_cluster_opts o;           /* strings, tokens and seeds point at copies below */
    char *addr, *http, *region, *rack;
    char **seeds;                       /* NULL-terminated, self's address removed */
    struct kv_slice *tokens;
    uint8_t *token_bytes;
    struct kv_cluster_io io;
    struct kv_store *store;
    struct kv_hlc *hlc;
    uint32_t writer;                    /* the node half of what this start mints: cluster.c (6) */
    struct kv_members *members;
    struct kv_ring *ring;
    bool has_seeds;                     /* some seed other than self */
    bool joined;                        /* gossip from another node arrived */
    bool freeing;
    struct kv_cluster_stats stats;
    struct kv_coord_op **buckets;
    size_t n_buckets, n_ops;
    uint64_t next_op_id;
    struct kv_cluster__job jobs;        /* sentinel of a circular list */
    struct kv_hints *hints;
};

/* Stamps msg (from, hlc, op_id) and sends it to node `to` (possibly self). */
void kv_cluster__send(struct kv_cluster *c, uint32_t to, uint64_t op_id, Kv__PeerMessage *msg);
/* kv_cluster__send of a request made for op, stamped with op's deadline. */
void kv_cluster__send_op(struct kv_coord_op *op, uint32_t to, Kv__PeerMessage *msg);
/* Receiving side of a request's deadline (cluster.h (7)): 0 when msg carries none, else the
 * mono ms after which its work is useless (already <= now when it expired on the way). */
uint64_t kv_cluster__msg_deadline(const struct kv_cluster *c, const Kv__PeerMessage *msg);
/* Whether mono ms `deadline` (from kv_cluster__msg_deadline) has passed; counts a drop in
 * stats.expired_dropped when it has. */
bool kv_cluster__expired(struct kv_cluster *c, uint64_t deadline);
/* A job's deadline as a storage thread checks it (2): io's mono_ms is callable there. */
struct kv_cluster__deadline {
    uint64_t at;                        /* mono ms; 0: none */
    uint64_t (*mono_ms)(void *ctx);
    void *ctx;
};
struct kv_cluster__deadline kv_cluster__job_deadline(const struct kv_cluster *c,
                                                     const Kv__PeerMessage *msg);
static inline bool kv_cluster__deadline_passed(const struct kv_cluster__deadline *d)
{
    return d->at && d->mono_ms(d->ctx) >= d->at;
}
uint64_t kv_cluster__now(const struct kv_cluster *c);   /* wall ms */
const char *kv_cluster__region_of(const struct kv_cluster *c, uint32_t id);
/* KV_OK or why a client request must be refused now (not joined yet). */
enum kv_status kv_cluster__admit(struct kv_cluster *c, struct kv_err *err);

/* Record checks and conversions. A record from a peer is valid when its key is 1..4096
 * bytes, its value at most o.max_value and a tombstone carries no value. */
bool kv_cluster__record_ok(const struct kv_cluster *c, const Kv__Record *r);
struct kv_write kv_cluster__record_to_write(const Kv__Record *r);   /* borrows r */
bool kv_cluster__record_live(const Kv__Record *r, uint64_t now_ms);
/* Completes a read's result from the newest record (has: one exists): live -> KV_OK with
 * its value; tombstone, expired or none -> KV_NOT_FOUND. The version and expiry are
 * reported whenever a record exists. rec stays borrowed by r->value. */
void kv_cluster__read_result(struct kv_cluster *c, struct kv_cluster_result *r,
                             const Kv__Record *rec, bool has);
/* Copies src into dst (freeing dst's old value) with dst->key = key (borrowed); false when
 * out of memory (dst then holds no value). */
bool kv_cluster__record_copy(Kv__Record *dst, uint8_t *key, size_t key_len,
                             const Kv__Record *src);

/* --- consistency levels and answers decided at once (levels.c) ------------------------- */

/* What a level needs from a replica set: replica i counts towards group[i] (-1: towards
 * nothing), and every group g needs need[g] answers. */
struct kv_coord_need {
    enum kv_level level;
    unsigned n_groups;
    uint32_t need[KV_RING_MAX_RF];
    int8_t group[KV_RING_MAX_RF];
    uint32_t required;                  /* sum of need: result.required */
};

enum kv_level kv_coord_level(const struct kv_cluster *c, enum kv_level l);
/* Blocking read repair at this level (QUORUM and above; not ONE, TWO, LOCAL_ONE). */
bool kv_coord_level_blocks(enum kv_level l);
/* Fills nd for level over ids[0..n). KV_INVALID for LINEARIZABLE or an unknown level. */
enum kv_status kv_coord_need(const struct kv_cluster *c, enum kv_level level,
                             const uint32_t *ids, size_t n, struct kv_coord_need *nd,
                             struct kv_err *err);
/* Whether the replicas in mask (bit i: replica i) satisfy nd. */
bool kv_coord_need_met(const struct kv_coord_need *nd, size_t n, uint32_t mask);
/* KV_OK when the live replicas in alive_mask can satisfy nd; else KV_UNAVAILABLE with
 * r->required, r->alive and r->err filled (per invariant 2: decided before sending). */
enum kv_status kv_coord_check_alive(const struct kv_cluster *c, const struct kv_coord_need *nd,
                                    const uint32_t *ids, size_t n, uint32_t alive_mask,
                                    struct kv_cluster_result *r);
uint32_t kv_coord_alive_mask(const struct kv_cluster *c, const uint32_t *ids, size_t n);

/* Answers cb with *r from a zero-delay timer, so that the callback never runs before the
 * call that started the request returns (invariant 6). r is copied (no borrowed slices
 * may be set). */
void kv_coord_answer_later(struct kv_cluster *c, kv_cluster_cb cb, void *arg,
                           const struct kv_cluster_result *r);
/* kv_coord_answer_later with a result that is only err (its code the status). */
void kv_coord_fail_later(struct kv_cluster *c, kv_cluster_cb cb, void *arg,
                         const struct kv_err *err);

/* --- point requests (coord.c) and scans (scan.c) --------------------------------------- */

void kv_coord_get(struct kv_cluster *c, struct kv_slice key, enum kv_level level,
                  uint32_t timeout_ms, kv_cluster_cb cb, void *arg);
void kv_coord_write(struct kv_cluster *c, struct kv_slice key, struct kv_slice value,
                    bool tombstone, uint64_t ttl_ms, enum kv_level level, uint32_t timeout_ms,
                    kv_cluster_cb cb, void *arg);
void kv_coord_scan(struct kv_cluster *c, struct kv_slice start, struct kv_slice end,
                   struct kv_slice after, uint32_t limit, bool keys_only, enum kv_level level,
                   uint32_t timeout_ms, kv_cluster_cb cb, void *arg);

/* --- LINEARIZABLE (linear.c) and compare-and-set (paxos.c) ------------------------------ */

void kv_lin_get(struct kv_cluster *c, struct kv_slice key, uint32_t timeout_ms,
                kv_cluster_cb cb, void *arg);
void kv_lin_write(struct kv_cluster *c, struct kv_slice key, struct kv_slice value,
                  bool tombstone, uint64_t ttl_ms, uint32_t timeout_ms, kv_cluster_cb cb,
                  void *arg);
/* The checks every LINEARIZABLE and cas request passes before anything is sent: node not
 * freeing, key 1..4096 bytes, value_len <= max_value, joined, a majority of the key's
 * replicas alive (else UNAVAILABLE, cluster.h (2)). True with ids[0..*n), *alive and *q
 * (the majority) filled; false when the answer is already on its way (cluster.h (6)). */
bool kv_lin__admit(struct kv_cluster *c, struct kv_slice key, size_t value_len,
                   kv_cluster_cb cb, void *arg, uint32_t *ids, size_t *n, uint32_t *alive,
                   uint32_t *q);
/* A CAS (cond true) or an unconditional write of a CAS-managed key through Paxos (linear.c
 * (5)). round_trips: those already spent, added to the answer's count. */
void kv_paxos_cas(struct kv_cluster *c, struct kv_slice key, bool expect_absent,
                  struct kv_slice expected, struct kv_slice value, uint32_t timeout_ms,
                  kv_cluster_cb cb, void *arg);
void kv_paxos_write(struct kv_cluster *c, struct kv_slice key, struct kv_slice value,
                    bool tombstone, uint64_t ttl_ms, uint32_t timeout_ms, uint32_t round_trips,
                    kv_cluster_cb cb, void *arg);
/* Acceptor side: Prepare, Propose and Commit messages. */
void kv_paxos_on_prepare(struct kv_cluster *c, const Kv__PeerMessage *msg);
void kv_paxos_on_propose(struct kv_cluster *c, const Kv__PeerMessage *msg);
void kv_paxos_on_commit(struct kv_cluster *c, const Kv__PeerMessage *msg);

/* --- replica side (replica.c) ----------------------------------------------------------- */

void kv_replica_on_write(struct kv_cluster *c, const Kv__PeerMessage *msg);
void kv_replica_on_read(struct kv_cluster *c, const Kv__PeerMessage *msg);
void kv_replica_on_scan(struct kv_cluster *c, const Kv__PeerMessage *msg);

/* --- hints (hints.c) ------------------------------------------------------------------ */

enum kv_status kv_hint_init(struct kv_cluster *c, struct kv_err *err);
void kv_hint_start(struct kv_cluster *c);   /* rebuilds counts, then ticks */
void kv_hint_free(struct kv_cluster *c);
/* Stores a hint of r (copied) for node target, subject to the bounds in opts. */
void kv_hint_add(struct kv_cluster *c, uint32_t target, const Kv__Record *r);
/* kv_hint_add that reports the hint's store: false when it was not accepted (nothing will
 * be reported); else stored(c, op_id, ok) runs once its synced write is done (ok) or failed,
 * from a storage completion, never within this call, and not at all when the cluster is
 * freed first. */
typedef void (*kv_hint_stored_fn)(struct kv_cluster *c, uint64_t op_id, bool ok);
bool kv_hint_add_notify(struct kv_cluster *c, uint32_t target, const Kv__Record *r,
                        kv_hint_stored_fn stored, uint64_t op_id);
/* Whether a hint of r for each of targets[0..n) would be accepted now (within the bounds;
 * the store itself may still fail later). */
bool kv_hint_room(struct kv_cluster *c, const uint32_t *targets, size_t n, const Kv__Record *r);
/* Node id was seen up: replay its hints now. */
void kv_hint_on_up(struct kv_cluster *c, uint32_t id);
uint64_t kv_hint_pending(const struct kv_cluster *c);
#endif
