/* cluster/cluster.h -- one node's cluster logic: membership, ring, coordinator, replica,
 * hints. The server feeds it peer messages and client requests; it answers through
 * callbacks and talks to the world only through struct kv_cluster_io.
 *
 * (1) Any node coordinates any request. Writes are stamped with this node's HLC; every
 *     PeerMessage carries the sender's HLC and receivers observe it.
 * (2) UNAVAILABLE is decided before anything is sent: fewer live replicas than the level
 *     needs (result.required vs result.alive). Such a write was not applied anywhere.
 * (3) TIMEOUT reports result.acks: the write may or may not have been applied.
 * (4) Hinted or fallback copies never count towards a level (sloppy quorums void R+W>N),
 *     with one exception: at ONE and LOCAL_ONE, and only when none of the key's natural
 *     replicas is alive, the coordinator's own fallback copy is the one ack (a write) or
 *     answer (a read) the level needs (coord.c (7); result.sloppy says so). TWO, THREE,
 *     QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, LINEARIZABLE and cas never count one.
 * (5) Read repair, hints and replication never mint a version; only client writes do.
 * (6) A callback runs exactly once per request, on the cluster thread, never before the
 *     call that started the request has returned.
 * (7) Deadlines: a request's timeout_ms is its deadline. The coordinator answers TIMEOUT
 *     (with the acks so far) when it passes, and every message it sends replicas for the
 *     request carries what is left of it (PeerMessage.timeout_ms, and deadline_ms on the
 *     sender's hybrid clock, which every message carries and every receiver observes, so
 *     wall-clock skew between nodes does not move it). A replica drops such work,
 *     unanswered, once the deadline has passed: on arrival, when it has waited its budget
 *     here or when deadline_ms plus deadline_slack_ms (how far a sender's HLC may lag the
 *     cluster's) is behind this node's HLC; and again when a queued read or scan reaches a
 *     storage thread. Dropping is always safe (it is a lost message); stats.expired_dropped
 *     counts it. */
#ifndef KV_CLUSTER_CLUSTER_H
#define KV_CLUSTER_CLUSTER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cluster/io.h"
#include "common/buf.h"
#include "common/hlc.h"
#include "common/status.h"
#include "proto/kv.pb-c.h"
#include "storage/store.h"

struct kv_cluster;

/* Consistency levels; values equal Kv__Consistency. */
enum kv_level {
    KV_LEVEL_DEFAULT = 0, KV_LEVEL_ONE = 1, KV_LEVEL_TWO = 2, KV_LEVEL_THREE = 3,
    KV_LEVEL_QUORUM = 4, KV_LEVEL_ALL = 5, KV_LEVEL_LOCAL_ONE = 6, KV_LEVEL_LOCAL_QUORUM = 7,
    KV_LEVEL_EACH_QUORUM = 8, KV_LEVEL_LINEARIZABLE = 9
};
const char *kv_level_name(enum kv_level l);

/* Node ids are 1..KV_NODE_ID_MAX: a version's node field also names the start (cluster.c
 * (6)). kv_cluster_writer is that field for node `id` at `generation`; KV_WRITER_NODE
 * takes the node id back out of a version's node field. */
#define KV_NODE_ID_MAX 65535u
static inline uint32_t kv_cluster_writer(uint32_t id, uint64_t generation)
{
    return id | (uint32_t)(generation & 0xffffu) << 16;
}
#define KV_WRITER_NODE(w) ((uint32_t)(w) & 0xffffu)

struct kv_cluster_opts {
    uint32_t node_id;               /* 1..KV_NODE_ID_MAX */
    const char *addr;               /* host:port peers and clients use for this node */
    const char *http;               /* host:port of /metrics, for kvctl status */
    const char *region, *rack;
    const struct kv_slice *tokens;  /* explicit tokens, or NULL: kv_ring_default_tokens */
    size_t n_tokens;                /* with tokens NULL: how many default tokens (16) */
    const char *const *seeds;       /* NULL-terminated host:port list; may be NULL */
    uint64_t generation;            /* larger than at any earlier start of this node */
    unsigned rf;                    /* replication factor; default 3 */
    enum kv_level default_level;    /* default QUORUM */
    uint32_t default_timeout_ms;    /* default 2000 */
    uint32_t gossip_interval_ms;    /* default 200 */
    double phi_threshold;           /* default 8 */
    uint64_t max_hints_per_node;    /* default 100000 records */
    uint64_t max_hint_bytes;        /* all hints on this node; default 256 MiB */
    uint64_t max_hint_age_ms;       /* older hints are dropped, not replayed; default 3 h */
    uint32_t scan_default_limit;    /* default 100 */
    uint32_t max_value;             /* for validating peer records; default 1 MiB */
    /* how far a sender's HLC may lag when judging its deadline (7); default 1000 */
    uint32_t deadline_slack_ms;
    /* TEST ONLY (server setting debug_skip_writeback, requires debug = true): LINEARIZABLE
     * reads answer without writing the newest value back, which makes new->old inversions
     * possible. Exists so the jepsen harness can prove its checker catches them. */
    bool debug_skip_writeback;
    /* TEST ONLY (server setting debug_linear_read_one, requires debug = true): LINEARIZABLE
     * reads answer from the first replica reply alone (no quorum, no write-back), so the
     * minority side of a partition returns stale values. The jepsen suite's self-test. */
    bool debug_linear_read_one;
    /* TEST ONLY (no server setting): a hint stored for a down replica counts as an
     * acknowledgement towards the level, breaking invariant (4) on purpose. Exists so the
     * simulator's chaos runs (tests/sim/chaos.c) prove they catch a lost acked write. */
    bool debug_hint_counts_as_ack;
};
void kv_cluster_opts_default(struct kv_cluster_opts *o);

/* Everything in o (strings, tokens, seeds) is copied. store and hlc are borrowed and must
 * outlive the cluster. A seed equal to o->addr is ignored. On KV_OK *out owns it. */
enum kv_status kv_cluster_new(const struct kv_cluster_opts *o, const struct kv_cluster_io *io,
                              struct kv_store *store, struct kv_hlc *hlc,
                              struct kv_cluster **out, struct kv_err *err);
/* Fails every request still in flight with KV_SHUTDOWN (callbacks run), cancels timers,
 * and frees every operation, including those waiting for a store_write/run completion:
 * after kv_cluster_free the io must never call a done callback the cluster handed it
 * (the simulator drops them; the server drains its storage work before freeing).
 * NULL-safe. */
void kv_cluster_free(struct kv_cluster *c);
/* Starts gossip (and hint replay). */
void kv_cluster_start(struct kv_cluster *c);

/* A PeerMessage (decoded, borrowed for the call) arrived. Messages that break the
 * protocol (no body, a record over the limits, an unknown sender for a reply) are counted
 * in messages_malformed and dropped. */
void kv_cluster_on_message(struct kv_cluster *c, const Kv__PeerMessage *msg);

struct kv_cluster_item {
    struct kv_slice key, value;     /* borrowed for the callback only */
};

struct kv_cluster_result {
    enum kv_status st;
    struct kv_err err;              /* message for st != KV_OK */
    uint32_t acks, required, alive;
    /* get */
    struct kv_slice value;          /* borrowed for the callback only */
    struct kv_version version;
    uint64_t expires_at_ms;
    /* scan: items in key order; cursor_key is the last key returned when more remain */
    const struct kv_cluster_item *items;
    size_t n_items;
    bool more;
    /* LINEARIZABLE and cas: round trips this request took (each phase counts one). */
    uint32_t round_trips;
    /* ONE/LOCAL_ONE with no natural replica alive: served by the coordinator's fallback
     * copy (invariant 4): acks counts that copy, alive is 0, err.msg explains. */
    bool sloppy;
    /* cas (st == KV_OK): applied, else `value`/`version` are the current value the
     * expectation failed against (exists=false: no live value). With applied, value is
     * the new value and version the committed ballot. */
    bool applied, exists;
};
/* A callback may start new requests; it must not call kv_cluster_free. */
typedef void (*kv_cluster_cb)(void *arg, const struct kv_cluster_result *r);

/* Key, value and bounds are copied. level KV_LEVEL_DEFAULT means opts.default_level;
 * timeout_ms 0 means opts.default_timeout_ms. */
void kv_cluster_get(struct kv_cluster *c, struct kv_slice key, enum kv_level level,
                    uint32_t timeout_ms, kv_cluster_cb cb, void *arg);
void kv_cluster_put(struct kv_cluster *c, struct kv_slice key, struct kv_slice value,
                    uint64_t ttl_ms, enum kv_level level, uint32_t timeout_ms, kv_cluster_cb cb,
                    void *arg);
void kv_cluster_delete(struct kv_cluster *c, struct kv_slice key, enum kv_level level,
                       uint32_t timeout_ms, kv_cluster_cb cb, void *arg);
/* Compare-and-set through single-decree Paxos among the key's replicas (cluster/paxos.c,
 * docs/cap.md): sets key to value iff its live value equals expected, or (expect_absent)
 * iff it has none. Answers KV_OK with r->applied, r->exists, r->value, r->version;
 * KV_TIMEOUT means unknown (it may have applied); KV_UNAVAILABLE means not applied.
 * Key, expected and value are copied; timeout_ms 0 means opts.default_timeout_ms. */
void kv_cluster_cas(struct kv_cluster *c, struct kv_slice key, bool expect_absent,
                    struct kv_slice expected, struct kv_slice value, uint32_t timeout_ms,
                    kv_cluster_cb cb, void *arg);
/* Keys in [start, end) (end empty: no bound), strictly after `after` when after.len > 0
 * (a cursor), at most limit (0: opts.scan_default_limit) live items in key order.
 * more=true only with n_items > 0, so the last item's key is always there to resume from;
 * a timeout or UNAVAILABLE met after some items were gathered answers KV_OK with those
 * items and more=true (docs/replication.md). */
void kv_cluster_scan(struct kv_cluster *c, struct kv_slice start, struct kv_slice end,
                     struct kv_slice after, uint32_t limit, bool keys_only, enum kv_level level,
                     uint32_t timeout_ms, kv_cluster_cb cb, void *arg);

/* Fills a status snapshot (nodes with up/phi, ranges with replicas). On KV_OK the caller
 * releases it with kv_cluster_status_free. */
enum kv_status kv_cluster_status(struct kv_cluster *c, Kv__ClusterStatus *out,
                                 struct kv_err *err);
void kv_cluster_status_free(Kv__ClusterStatus *st);

/* Counters for /metrics. */
struct kv_cluster_stats {
    uint64_t hints_pending, hints_stored, hints_replayed, hints_dropped;
    uint64_t read_repairs, replica_timeouts, messages_malformed;
    /* replica work dropped because its deadline had passed (7) */
    uint64_t expired_dropped;
    /* corruption: reads this replica answered CORRUPTION; replies of that kind this
     * coordinator got; repairs (replace_corrupt writes) it sent for them */
    uint64_t corrupt_reads, corrupt_replies, corrupt_repairs;
    uint64_t unavailable, timeouts;
    /* ONE/LOCAL_ONE requests served by the coordinator's fallback copy (invariant 4) */
    uint64_t sloppy_writes, sloppy_reads;
    /* LINEARIZABLE get/put/delete: requests, round trips, reads that wrote back */
    uint64_t linear_ops, linear_round_trips, linear_writebacks;
    /* cas: requests, applied, not applied, Paxos attempts (retries after contention),
     * round trips, in-progress proposals finished for others */
    uint64_t cas_ops, cas_applied, cas_not_applied, cas_attempts, cas_round_trips,
        cas_recoveries;
};
void kv_cluster_get_stats(const struct kv_cluster *c, struct kv_cluster_stats *out);
#endif
