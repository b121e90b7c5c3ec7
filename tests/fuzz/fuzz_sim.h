/* tests/fuzz/fuzz_sim.h -- simulator helpers for the fuzz targets that drive a real
 * kv_cluster (peer, scan, hint). tests/sim/simcall.c asserts with Check, which only works
 * inside a Check test run, so the targets use the plain simulator (tests/sim/sim.h) and
 * these helpers, which report a failure with FUZZ_CHECK. */
#ifndef KV_TESTS_FUZZ_SIM_H
#define KV_TESTS_FUZZ_SIM_H
#include "tests/fuzz/fuzz_util.h"
#include "tests/sim/sim.h"

static inline struct kv_cluster *fuzz_cluster(struct sim *s, uint32_t id)
{
    struct sim_node *n = sim_node(s, id);
    FUZZ_CHECK(n && n->cluster);
    return n->cluster;
}

struct fuzz_call {
    bool done;
    enum kv_status st;
};

static inline void fuzz_call_cb(void *arg, const struct kv_cluster_result *r)
{
    struct fuzz_call *c = arg;
    FUZZ_CHECK(!c->done);
    c->done = true;
    c->st = r->st;
}

static inline bool fuzz_call_done(void *arg) { return ((struct fuzz_call *)arg)->done; }

static inline enum kv_status fuzz_call_wait(struct sim *s, struct fuzz_call *c)
{
    FUZZ_CHECK(sim_run_until(s, fuzz_call_done, c, 10000));
    return c->st;
}

/* Every node of 1..n sees every other one up (a cluster ready for QUORUM). */
struct fuzz_up { struct sim *s; int n; };
static inline bool fuzz_all_up_pred(void *arg)
{
    struct fuzz_up *u = arg;
    for (int v = 1; v <= u->n; v++) {
        Kv__ClusterStatus st;
        if (kv_cluster_status(fuzz_cluster(u->s, (uint32_t)v), &st, NULL) != KV_OK)
            return false;
        size_t up = 0;
        for (size_t i = 0; i < st.n_nodes; i++)
            up += st.nodes[i]->up;
        kv_cluster_status_free(&st);
        if (up < (size_t)u->n)
            return false;
    }
    return true;
}

/* A simulator with nodes 1..n started with o (node 1's address as the seed), all up. */
static inline struct sim *fuzz_sim_cluster(uint64_t seed, int n, const struct kv_cluster_opts *o)
{
    struct sim *s = sim_new(seed, n);
    FUZZ_CHECK(s != NULL);
    for (int i = 1; i <= n; i++)
        FUZZ_CHECK(sim_start(s, (uint32_t)i, o) == KV_OK);
    struct fuzz_up u = {s, n};
    FUZZ_CHECK(sim_run_until(s, fuzz_all_up_pred, &u, 20000));
    return s;
}
#endif
