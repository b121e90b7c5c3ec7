/* tests/fuzz/peer.c -- fuzz target: node-to-node bytes, as a node receives them.
 *
 * Peers use client frames (proto/cluster.proto): the input is a peer connection's byte
 * stream (fuzz_util.h); each frame is decoded as the server does (kv_codec_decode_req
 * through a kv_pb_arena) and a Request whose operation is `peer` is handed to
 * kv_cluster_on_message of a real kv_cluster -- node 1 of a 3-node cluster on the
 * simulator (tests/sim), every node with a real RocksDB store -- which validates it
 * (cluster.c (1)) and, when it passes, runs the real handler: gossip merges into the
 * membership and rebuilds the ring, writes reach the store, reads and scans answer over
 * the simulated network (packed and unpacked again), Paxos messages reach the acceptor.
 * When a message was accepted the simulator then runs 12 simulated ms (a request and its
 * reply, 1-5 ms a hop, plus a store completion), so what it caused is handled too.
 * (1) The cluster is built once and rebuilt every RESET_EVERY inputs, so state a hostile
 *     peer may legitimately plant (members, a far-future clock) does not pile up; a crash
 *     reproducer therefore replays on a fresh cluster.
 * Properties checked besides "no crash, no sanitizer report": a message that fails
 * validation (no sender, no body) is counted in messages_malformed. */
#include <stdio.h>
#include "common/log.h"
#include "proto/arena.h"
#include "proto/codec.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/fuzz_sim.h"
#include "tests/sim/simcall.h"

#define MAX_FRAME (4u << 20)
#define RESET_EVERY 20000

static struct sim *g_sim;
static struct kv_pb_arena *g_arena;
static unsigned g_inputs;
static bool g_accepted;          /* a message of this input passed validation */

static void on_frame(void *arg, struct kv_slice payload)
{
    (void)arg;
    Kv__Request *r = NULL;
    if (kv_codec_decode_req(payload, g_arena, &r, NULL) != KV_OK)
        return;
    if (r->op_case != KV__REQUEST__OP_PEER)
        return;
    struct kv_cluster *c = fuzz_cluster(g_sim, 1);
    struct kv_cluster_stats before, after;
    kv_cluster_get_stats(c, &before);
    kv_cluster_on_message(c, r->peer);
    kv_cluster_get_stats(c, &after);
    FUZZ_CHECK(after.messages_malformed >= before.messages_malformed);
    if (!r->peer || r->peer->from == 0 || r->peer->body_case == KV__PEER_MESSAGE__BODY__NOT_SET)
        FUZZ_CHECK(after.messages_malformed == before.messages_malformed + 1);
    if (after.messages_malformed == before.messages_malformed)
        g_accepted = true;
}

static void fresh_cluster(void)
{
    /* No liveness check here: peers are trusted with membership (a gossip claiming a
     * newer generation for node 2 legitimately makes node 1 ignore node 2's own), so a
     * failed QUORUM write after a batch is not a decoder bug. */
    sim_free(g_sim);
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    o.gossip_interval_ms = 200;   /* fewer background events per input: faster fuzzing */
    g_sim = fuzz_sim_cluster(12, 3, &o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_arena) {
        g_arena = malloc(sizeof *g_arena);
        kv_pb_arena_init(g_arena);
        kv_log_set_level(KV_LOG_ERROR);
    }
    if (!g_sim || ++g_inputs % RESET_EVERY == 0)
        fresh_cluster();
    g_accepted = false;
    fuzz_frames(data, size, MAX_FRAME, on_frame, NULL);
    /* Two network hops (1-5 ms each) and a store completion; a dropped message caused
     * nothing, so the simulator only runs when one was accepted (fuzzing speed). */
    if (g_accepted)
        sim_run_for(g_sim, 12);
    return 0;
}
