/* tests/fuzz/hint.c -- fuzz target: stored hints (cluster/hints.h) read back from disk.
 *
 * Input: u8 mode | the key | the value (the rest); the mode's low 7 bits mod 41 are the
 * key's length, bit 7 set recomputes the value's checksum (its first 4 bytes, hints.h)
 * first so the fuzzer mutates the record behind it. The key goes through
 * kv_hint_key_decode, the value through kv_hint_value_ok under two limits (the default
 * 1 MiB and a small one, so the bound itself is exercised). A value that may be replayed
 * is then sent as the replay sends it -- a ReplicaWrite with is_hint, packed into a
 * Request{peer} frame payload -- decoded by the receiving side's decoder
 * (kv_codec_decode_req through a kv_pb_arena) and handed to a real kv_cluster (one node
 * on the simulator, real RocksDB store, max_value = the limit used).
 * Properties checked besides "no crash, no sanitizer report":
 * (1) a key decodes iff it is KV_HINT_KEY_LEN bytes, and then into its big-endian fields;
 * (2) a hint that may be replayed is never refused by its target: the receiver decodes
 *     it (KV_OK) and its validation does not count it malformed -- otherwise the hint
 *     would be re-sent forever without an ack;
 * (3) a value accepted under the small limit is accepted under the large one. */
#include <stdio.h>
#include "cluster/hints.h"
#include "common/log.h"
#include "proto/arena.h"
#include "proto/codec.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/fuzz_sim.h"
#include "tests/sim/simcall.h"

#define SMALL_MAX 64u
#define LARGE_MAX (1u << 20)

static struct sim *g_sim;        /* node 1 with max_value SMALL_MAX, node 2 with LARGE_MAX */
static struct kv_pb_arena *g_arena;
static unsigned g_writes;

static void setup(void)
{
    if (!g_arena) {
        kv_log_set_level(KV_LOG_ERROR);
        g_arena = malloc(sizeof *g_arena);
        kv_pb_arena_init(g_arena);
    }
    g_sim = sim_new(5, 2);
    FUZZ_CHECK(g_sim);
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    o.rf = 1;
    const char *none[] = {NULL};
    o.seeds = none;
    o.max_value = SMALL_MAX;
    FUZZ_CHECK(sim_start(g_sim, 1, &o) == KV_OK);
    o.max_value = LARGE_MAX;
    FUZZ_CHECK(sim_start(g_sim, 2, &o) == KV_OK);
}

static void replay_to(uint32_t node, struct kv_slice v)
{
    struct kv_slice pk;
    FUZZ_CHECK(kv_hint_value_packed(v, &pk));
    Kv__Record *rec = kv__record__unpack(NULL, pk.len, pk.ptr);
    FUZZ_CHECK(rec != NULL);
    Kv__ReplicaWrite w = KV__REPLICA_WRITE__INIT;
    w.records = &rec;
    w.n_records = 1;
    w.is_hint = true;
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.from = 3;
    pm.op_id = 1;
    pm.body_case = KV__PEER_MESSAGE__BODY_WRITE;
    pm.write = &w;
    Kv__Request req = KV__REQUEST__INIT;
    req.op_case = KV__REQUEST__OP_PEER;
    req.peer = &pm;
    size_t n = kv__request__get_packed_size(&req);
    uint8_t *buf = malloc(n ? n : 1);
    kv__request__pack(&req, buf);
    kv__record__free_unpacked(rec, NULL);

    Kv__Request *got = NULL;
    struct kv_err err = {0};
    enum kv_status st = kv_codec_decode_req(kv_slice_of(buf, n), g_arena, &got, &err);
    if (st != KV_OK)
        fprintf(stderr, "receiver refused a replayable hint: %s\n", err.msg);
    FUZZ_CHECK(st == KV_OK);                                       /* (2) */
    struct kv_cluster *c = fuzz_cluster(g_sim, node);
    struct kv_cluster_stats before, after;
    kv_cluster_get_stats(c, &before);
    kv_cluster_on_message(c, got->peer);
    kv_cluster_get_stats(c, &after);
    FUZZ_CHECK(after.messages_malformed == before.messages_malformed);
    free(buf);
    sim_run_for(g_sim, 5);   /* the store write completes; the ack goes nowhere (node 3) */
    g_writes++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_sim)
        setup();
    if (size < 1)
        return 0;
    bool reseal = data[0] & 0x80;
    size_t klen = (data[0] & 0x7fu) % 41;
    if (klen > size - 1)
        klen = size - 1;
    /* Exact-size copies: ASan sees any read past the key or the value. */
    uint8_t *key = malloc(klen ? klen : 1);
    memcpy(key, data + 1, klen);
    size_t vlen = size - 1 - klen;
    uint8_t *val = malloc(vlen ? vlen : 1);
    memcpy(val, data + 1 + klen, vlen);
    if (reseal && vlen >= KV_HINT_CHECK_LEN) {
        uint32_t h = kv_hash32(val + KV_HINT_CHECK_LEN, vlen - KV_HINT_CHECK_LEN);
        for (int i = 0; i < 4; i++)
            val[i] = (uint8_t)(h >> (24 - 8 * i));
    }

    uint32_t target = 0;
    uint64_t created = 0, seq = 0;
    bool is_key = kv_hint_key_decode(kv_slice_of(key, klen), &target, &created, &seq);
    FUZZ_CHECK(is_key == (klen == KV_HINT_KEY_LEN));               /* (1) */
    if (is_key) {
        FUZZ_CHECK(target == fuzz_be32(key));
        FUZZ_CHECK(created == ((uint64_t)fuzz_be32(key + 4) << 32 | fuzz_be32(key + 8)));
        FUZZ_CHECK(seq == ((uint64_t)fuzz_be32(key + 12) << 32 | fuzz_be32(key + 16)));
    }

    struct kv_slice v = kv_slice_of(val, vlen);
    bool small = kv_hint_value_ok(v, SMALL_MAX);
    bool large = kv_hint_value_ok(v, LARGE_MAX);
    FUZZ_CHECK(!small || large);                                   /* (3) */
    if (small)
        replay_to(1, v);
    else if (large)
        replay_to(2, v);
    free(key);
    free(val);
    if (g_writes >= 20000) {   /* keep the stores small over a long run */
        sim_free(g_sim);
        g_sim = NULL;
        g_writes = 0;
    }
    return 0;
}
