/* tests/fuzz/disk_state.c -- fuzz target: the cluster state kvd reads back from its own
 * disk besides records and hints: the saved membership view (a packed Kv__Gossip under
 * "cluster/view" in KV_CF_META, restored at start) and a key's Paxos acceptor state (a
 * packed Kv__PaxosState in KV_CF_PAXOS, loaded by every prepare, propose and commit).
 *
 * Input: u8 mode | the stored bytes. Mode bit 0 clear: the bytes become node 1's saved
 * view and node 1 restarts on the simulator (a real RocksDB store) and runs 50 simulated
 * ms. Set: they become the acceptor state of key "k" and a compare-and-set on "k" runs
 * through node 1 (one node, rf 1), so the acceptor loads, uses and rewrites the state.
 * Properties checked besides "no crash, no sanitizer report":
 * (1) the restarted node starts (kv_cluster_new answers KV_OK whatever the view holds);
 * (2) the compare-and-set answers exactly once within 10 simulated seconds, with a status
 *     that is OK, CORRUPTION (an undecodable state), or TIMEOUT/UNAVAILABLE -- never hangs. */
#include <stdio.h>
#include "common/log.h"
#include "tests/fuzz/fuzz_sim.h"
#include "tests/sim/simcall.h"

static struct sim *g_sim;
static struct kv_cluster_opts g_opts;
static const char *const g_no_seeds[] = {NULL};

static void setup(void)
{
    kv_log_set_level(KV_LOG_ERROR + 1);   /* a broken view is logged at every restart */
    g_sim = sim_new(3, 1);
    FUZZ_CHECK(g_sim);
    sim_test_opts(&g_opts);
    g_opts.rf = 1;
    g_opts.seeds = g_no_seeds;
    FUZZ_CHECK(sim_start(g_sim, 1, &g_opts) == KV_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_sim)
        setup();
    if (size < 1)
        return 0;
    struct kv_store *st = sim_node(g_sim, 1)->store;
    struct kv_slice bytes = kv_slice_of(data + 1, size - 1);
    if (!(data[0] & 1)) {
        FUZZ_CHECK(kv_store_raw_put(st, KV_CF_META, kv_slice_str("cluster/view"), bytes, false,
                                    NULL) == KV_OK);
        sim_crash(g_sim, 1);
        FUZZ_CHECK(sim_start(g_sim, 1, &g_opts) == KV_OK);          /* (1) */
        sim_run_for(g_sim, 50);
        /* The next input starts from no saved view (the node rewrites its own on changes). */
        (void)kv_store_raw_delete(st, KV_CF_META, kv_slice_str("cluster/view"), false, NULL);
        sim_crash(g_sim, 1);
        FUZZ_CHECK(sim_start(g_sim, 1, &g_opts) == KV_OK);
        return 0;
    }
    FUZZ_CHECK(kv_store_raw_put(st, KV_CF_PAXOS, kv_slice_str("k"), bytes, false, NULL) == KV_OK);
    struct fuzz_call c = {0};
    kv_cluster_cas(fuzz_cluster(g_sim, 1), kv_slice_str("k"), true, kv_slice_of(NULL, 0),
                   kv_slice_str("v"), 0, fuzz_call_cb, &c);
    enum kv_status s = fuzz_call_wait(g_sim, &c);                    /* (2) */
    FUZZ_CHECK(s == KV_OK || s == KV_CORRUPTION || s == KV_TIMEOUT || s == KV_UNAVAILABLE);
    (void)kv_store_raw_delete(st, KV_CF_PAXOS, kv_slice_str("k"), false, NULL);
    return 0;
}
