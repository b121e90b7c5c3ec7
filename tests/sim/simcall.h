/* tests/sim/simcall.h -- synchronous calls into simulated kv_cluster nodes, for tests.
 *
 * Each call starts a request on one node and runs the simulator until its callback fires
 * (failing the Check test when it never does, runs twice, or runs before the call that
 * started it returned -- cluster.h invariant (6)). Results are copied out of the callback,
 * so they stay valid after it. */
#ifndef KV_TESTS_SIMCALL_H
#define KV_TESTS_SIMCALL_H
#include <stdbool.h>
#include "tests/sim/sim.h"

struct sim_call {
    bool done;
    bool early;                     /* the callback ran before the call returned */
    bool returned;
    struct kv_cluster_result r;     /* r.value and r.items are not kept */
    char msg[160];
    uint8_t value[512];
    size_t value_len;
};

/* A kv_cluster_cb filling the struct sim_call given as arg. */
void sim_call_cb(void *arg, const struct kv_cluster_result *r);
/* Runs the simulator until c is done (at most 10 simulated seconds). */
void sim_call_wait(struct sim *s, struct sim_call *c);
/* Node id's running cluster (asserts it runs). */
struct kv_cluster *sim_cluster(struct sim *s, uint32_t id);

struct sim_call sim_put(struct sim *s, uint32_t via, const char *key, const char *val,
                        enum kv_level l);
struct sim_call sim_del(struct sim *s, uint32_t via, const char *key, enum kv_level l);
struct sim_call sim_get(struct sim *s, uint32_t via, const char *key, enum kv_level l);
bool sim_call_value_is(const struct sim_call *c, const char *v);

/* The raw record (tombstones included) node id stores for key: 1 with *out filled (out
 * may be NULL), 0 when it has none. */
int sim_stored(struct sim *s, uint32_t id, const char *key, struct kv_store_item *out);
bool sim_stored_value_is(struct sim *s, uint32_t id, const char *key, const char *v);

/* How node `viewer` sees node `id`: 1 up, 0 down, -1 not in its view. */
int sim_sees(struct sim *s, uint32_t viewer, uint32_t id);
void sim_wait_view(struct sim *s, uint32_t viewer, uint32_t id, int want);
/* Waits until each of nodes 1..n sees every other one up. */
void sim_wait_all_up(struct sim *s, int n);
/* A new simulator with nodes 1..n started with o, all seeing each other up. */
struct sim *sim_cluster_with(uint64_t seed, int n, const struct kv_cluster_opts *o);
struct kv_cluster_stats sim_stats(struct sim *s, uint32_t id);

/* The suites' common settings: gossip every 20 ms, requests time out after
 * SIM_TEST_TIMEOUT_MS, 8 tokens per node, rf 3 -- a run takes simulated seconds. */
#define SIM_TEST_TIMEOUT_MS 300
void sim_test_opts(struct kv_cluster_opts *o);
/* sim_cluster_with(seed, n, sim_test_opts). */
struct sim *sim_test_cluster(uint64_t seed, int n);
#endif
