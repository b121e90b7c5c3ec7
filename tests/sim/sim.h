/* tests/sim/sim.h -- many kvd nodes in one process, on simulated time.
 *
 * Implements struct kv_cluster_io for each node: messages (packed on send, unpacked on
 * delivery, as on a real wire), timers and storage completions
 * are events in one queue ordered by (time, sequence), so a run is a pure function of its
 * seed. The network can lose, delay, duplicate and partition; a node can crash (its
 * cluster state is freed, its store survives, as a durable store would) and restart.
 * (1) Nothing runs concurrently: every callback runs from sim_run_*.
 * (2) An event addressed to a node that crashed after the event was queued is dropped. */
#ifndef KV_TESTS_SIM_H
#define KV_TESTS_SIM_H
#include <stdbool.h>
#include <stdint.h>
#include "cluster/cluster.h"

#define SIM_MAX_NODES 16

struct sim;

/* What a node runs: a kv_cluster (sim_start) or, for tests of one module, anything that
 * takes peer messages (sim_attach). */
typedef void (*sim_deliver_fn)(void *target, const Kv__PeerMessage *msg);

struct sim_node;
struct sim_node {
    struct sim *sim;
    uint32_t id;
    char addr[32];
    char dir[64];
    struct kv_store *store;
    struct kv_hlc hlc;
    struct kv_cluster *cluster;     /* set by sim_start; NULL while crashed */
    void *target;                   /* receives messages; NULL while crashed */
    sim_deliver_fn deliver;
    void (*stop)(struct sim_node *n);   /* sim_free calls it for a running node */
    struct kv_cluster_io io;
    int64_t clock_offset_ms;
    uint32_t incarnation;
    uint64_t generation;
};

/* n nodes with ids 1..n, each with an open store in a fresh temp directory. */
struct sim *sim_new(uint64_t seed, int n);
/* From now on sim_new opens its stores in RocksDB's in-memory env (kv_store_opts.in_memory):
 * the same records, no disk, no fsync cost. Off by default. A store still lives as long as
 * its sim, so crashes keep it either way. */
void sim_stores_in_memory(bool on);
void sim_free(struct sim *s);          /* frees clusters, closes and removes stores */
struct sim_node *sim_node(struct sim *s, uint32_t id);
uint64_t sim_now(const struct sim *s); /* simulated ms since the start */

/* Starts (or restarts) node id's cluster. opts may be NULL (defaults); node_id, addr and
 * generation are filled in by the simulator, and when opts->seeds is NULL node 1's
 * address is the seed. Returns the kv_cluster_new status. */
enum kv_status sim_start(struct sim *s, uint32_t id, const struct kv_cluster_opts *opts);
/* Frees node id's cluster (in-flight requests fail); its store stays. Events queued for
 * the node before the crash are dropped, never delivered. */
void sim_crash(struct sim *s, uint32_t id);
/* Lower level: messages for node id go to deliver(target, ...) from now on. */
void sim_attach(struct sim *s, uint32_t id, void *target, sim_deliver_fn deliver);
/* Stops delivering to node id and drops its queued events (as sim_crash, freeing nothing). */
void sim_detach(struct sim *s, uint32_t id);

/* Network faults. */
void sim_cut(struct sim *s, uint32_t a, uint32_t b, bool cut);   /* both directions */
void sim_isolate(struct sim *s, uint32_t id, bool cut);
void sim_heal(struct sim *s);
void sim_set_loss(struct sim *s, double p);
void sim_set_dup(struct sim *s, double p);
void sim_set_delay(struct sim *s, uint32_t min_ms, uint32_t max_ms);
/* A test's own fault: every message (self ones included) is first offered to fn, and one
 * it returns true for is dropped (counted). fn NULL removes it. For scenarios that need one
 * kind of message lost between two nodes at one moment (test_cas.c). */
typedef bool (*sim_drop_fn)(void *arg, uint32_t from, uint32_t to, const Kv__PeerMessage *msg);
void sim_set_drop(struct sim *s, sim_drop_fn fn, void *arg);

/* Runs events for ms of simulated time. */
void sim_run_for(struct sim *s, uint64_t ms);
/* Runs until pred(arg) is true (checked after every event) or max_ms pass; returns pred. */
bool sim_run_until(struct sim *s, bool (*pred)(void *arg), void *arg, uint64_t max_ms);
/* Counters for assertions. */
uint64_t sim_messages_sent(const struct sim *s);
uint64_t sim_messages_dropped(const struct sim *s);
/* A digest of every event dispatched so far (time, kind, node, message bytes): one seed,
 * one digest. sim_digest_mix folds in bytes of the caller's own (client results, say). */
uint64_t sim_digest(const struct sim *s);
void sim_digest_mix(struct sim *s, const void *p, size_t len);
#endif
