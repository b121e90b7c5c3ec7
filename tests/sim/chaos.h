/* tests/sim/chaos.h -- one randomized, seeded whole-cluster run on the simulator, and the
 * invariants checked after it (docs/testing.md, "Deterministic simulation").
 *
 * A run: n nodes (rf 3) on tests/sim/sim.h; concurrent simulated clients send get, put,
 * delete and cas through random coordinators at ONE, QUORUM, ALL and LINEARIZABLE while a
 * seeded nemesis applies loss, delay ranges (reordering), duplication, partitions (halves,
 * one node isolated, random cuts), crashes with restart and, in some runs, clock jumps.
 * Then everything heals, hints replay, every key is read at ALL through every node (read
 * repair), and the invariants are checked:
 *   (a) no acknowledged write is lost at its level: the key's final value, and every
 *       QUORUM/ALL read, comes from a write that did not complete before the latest
 *       acknowledged QUORUM/ALL write (before the read) started -- the last acknowledged
 *       write, one concurrent with it, or a later or unknown one. Checked always for
 *       LINEARIZABLE and CAS keys; for QUORUM/ALL only in runs without clock jumps (last
 *       writer wins with skewed clocks loses writes by design, docs/cap.md). No answer ever
 *       carries a value whose write definitely failed, or one nobody wrote.
 *   (b) replicas converge after the heal: every replica of a key holds the same raw record
 *       (tombstones included), and every node's ALL read answers the same version.
 *   (c) no two different values ever share one version (hlc, writer): in any answer, and
 *       in any store (scanned during the run and at the end). The writer is the node and
 *       its start (cluster/cluster.c (6)).
 *   (d) the LINEARIZABLE and CAS keys' histories are linearizable (a Wing-Gong-Lowe search
 *       here; the same history can be written for jepsen/checker).
 * (1) A run is a pure function of its options: the same seed gives the same events, the
 *     same answers and the same digest.
 * (2) A restart keeps only what is durable: the store. The node's HLC starts from zero, as
 *     a restarted kvd's does, and its cluster state is rebuilt by sim_start. */
#ifndef KV_TESTS_SIM_CHAOS_H
#define KV_TESTS_SIM_CHAOS_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct chaos_opts {
    uint64_t seed;
    int nodes;                  /* 3..SIM_MAX_NODES; 0: 3 + seed % 5 */
    uint32_t duration_ms;       /* simulated traffic under faults; 0: 2000 */
    int clients;                /* 0: 8 */
    int keys;                   /* keys per class (LWW, LINEARIZABLE, CAS); 0: 8 */
    int clock_jumps;            /* 1 on, 0 off, -1: by seed (one run in three) */
    bool bug_hint_ack;          /* kv_cluster_opts.debug_hint_counts_as_ack */
    const char *history;        /* JSON-lines history for jepsen/checker, or NULL */
    FILE *log;                  /* violations and, with verbose, the nemesis; may be NULL */
    bool verbose;
};

struct chaos_result {
    int nodes;
    bool clock_jumps;
    uint64_t digest;            /* events, answers and checks (1) */
    unsigned violations;
    char first[320];            /* the first violation, "" when none */
    uint64_t ops, ok, fail, info;
    uint64_t lin_keys, lin_unknown;  /* keys searched; searches over budget (not failures) */
    uint64_t sim_ms;            /* simulated time of the whole run */
    uint64_t messages;          /* sent, including the dropped ones */
};

/* Runs one seed. Returns 0 when every invariant held, 1 when one did not (r->first says
 * which), -1 when the run could not be set up (stores, cluster start). */
int chaos_run(const struct chaos_opts *o, struct chaos_result *r);
#endif
