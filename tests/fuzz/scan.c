/* tests/fuzz/scan.c -- fuzz target: scan bounds and cursors as the server receives them.
 *
 * A cursor is the opaque `bytes cursor` of a ScanResponse, handed back in the next
 * ScanRequest: one tag byte (server/handler.c CURSOR_TAG) then the last key returned. A
 * client may send anything there (a cursor from another build, garbage, 1 MiB of it).
 * Each frame of the input stream (fuzz_util.h) is decoded as the server does
 * (kv_codec_decode_req through a kv_pb_arena); a scan request goes through the server's
 * own check (kv_handler_scan_refusal, default limits) and, when accepted, runs as
 * kv_cluster_scan on a one-node cluster on the simulator (tests/sim, a real RocksDB store)
 * holding a fixed data set (DATA below, some keys deleted).
 * Properties checked besides "no crash, no sanitizer report" -- the answer equals a
 * brute-force scan of the data set:
 * (1) an accepted request answers OK (one node, rf 1: every level that counts replicas
 *     relative to rf is reachable); TWO and THREE may answer UNAVAILABLE (OK for a range
 *     with no keys to ask for), LINEARIZABLE (not for scans) KV_INVALID;
 * (2) the items are exactly the first n live keys of the data set that lie in
 *     [start, end) and strictly after the resume key, in order, with their values
 *     (empty with keys_only), n <= limit (0: the default page);
 * (3) more=false only when nothing is left: n is then the whole expected count. */
#include <stdio.h>
#include "cluster/cluster.h"
#include "common/log.h"
#include "proto/arena.h"
#include "proto/codec.h"
#include "server/config.h"
#include "server/server.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/fuzz_sim.h"
#include "tests/sim/simcall.h"

#define MAX_FRAME (4u << 20)

/* Keys chosen around the edges: the empty-key boundary, prefixes, NUL and 0xff bytes. */
static const struct { const char *k; size_t n; bool deleted; } DATA[] = {
    {"a", 1, false}, {"a\0", 2, false}, {"a\0\0", 3, true}, {"aa", 2, false},
    {"ab", 2, true}, {"b", 1, false}, {"user:0001", 9, false}, {"user:0002", 9, false},
    {"user:0003", 9, true}, {"user:0010", 9, false}, {"user:1", 6, false},
    {"user;", 5, false}, {"z", 1, false}, {"zz\xff", 3, false}, {"\x7f", 1, false},
    {"\x80", 1, false}, {"\xff", 1, false}, {"\xff\xff", 2, true}, {"\xff\xff\xff", 3, false},
    {"\x01", 1, false}, {"\x01\x00", 2, false}, {"\x00k", 2, false},
};
#define N_DATA (sizeof DATA / sizeof *DATA)

static struct sim *g_sim;
static struct kv_pb_arena *g_arena;
static struct kv_config g_cfg;
static size_t g_order[N_DATA];   /* DATA indices in key order */

struct scan_out {
    bool done;
    enum kv_status st;
    size_t n;
    bool more;
    bool ok;                     /* items matched the expectation (checked in the callback) */
    const size_t *want;          /* DATA indices expected, in order */
    size_t n_want;
    bool keys_only;
    char msg[160];               /* the answer's error message, for a failed check */
};

static struct kv_slice key_of(size_t i) { return kv_slice_of(DATA[i].k, DATA[i].n); }

static void value_of(size_t i, char *buf, size_t cap, struct kv_slice *out)
{
    int n = snprintf(buf, cap, "v%zu", i);
    *out = kv_slice_of(buf, (size_t)n);
}

static void scan_cb(void *arg, const struct kv_cluster_result *r)
{
    struct scan_out *o = arg;
    FUZZ_CHECK(!o->done);
    o->done = true;
    o->st = r->st;
    o->n = r->n_items;
    o->more = r->more;
    o->ok = true;
    snprintf(o->msg, sizeof o->msg, "%s", r->err.msg);
    if (r->st != KV_OK)
        return;
    for (size_t i = 0; i < r->n_items; i++) {                      /* (2) */
        FUZZ_CHECK(i < o->n_want);
        size_t d = o->want[i];
        FUZZ_CHECK(kv_slice_cmp(r->items[i].key, key_of(d)) == 0);
        char buf[32];
        struct kv_slice v;
        value_of(d, buf, sizeof buf, &v);
        if (o->keys_only)
            FUZZ_CHECK(r->items[i].value.len == 0);
        else
            FUZZ_CHECK(kv_slice_cmp(r->items[i].value, v) == 0);
    }
}

static bool done_pred(void *arg) { return ((struct scan_out *)arg)->done; }

static void setup(void)
{
    kv_log_set_level(KV_LOG_ERROR);
    g_arena = malloc(sizeof *g_arena);
    kv_pb_arena_init(g_arena);
    kv_config_default(&g_cfg);
    g_sim = sim_new(7, 1);
    FUZZ_CHECK(g_sim);
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    o.rf = 1;
    FUZZ_CHECK(sim_start(g_sim, 1, &o) == KV_OK);
    for (size_t i = 0; i < N_DATA; i++) {
        char buf[32];
        struct kv_slice v;
        value_of(i, buf, sizeof buf, &v);
        struct fuzz_call c = {0};
        kv_cluster_put(fuzz_cluster(g_sim, 1), key_of(i), v, 0, KV_LEVEL_ONE, 0, fuzz_call_cb, &c);
        FUZZ_CHECK(fuzz_call_wait(g_sim, &c) == KV_OK);
        if (DATA[i].deleted) {
            struct fuzz_call d = {0};
            kv_cluster_delete(fuzz_cluster(g_sim, 1), key_of(i), KV_LEVEL_ONE, 0, fuzz_call_cb, &d);
            FUZZ_CHECK(fuzz_call_wait(g_sim, &d) == KV_OK);
        }
    }
    for (size_t i = 0; i < N_DATA; i++)
        g_order[i] = i;
    for (size_t i = 1; i < N_DATA; i++)     /* insertion sort by key */
        for (size_t j = i; j > 0 && kv_slice_cmp(key_of(g_order[j]), key_of(g_order[j - 1])) < 0; j--) {
            size_t t = g_order[j];
            g_order[j] = g_order[j - 1];
            g_order[j - 1] = t;
        }
}

static void on_frame(void *arg, struct kv_slice payload)
{
    (void)arg;
    Kv__Request *r = NULL;
    if (kv_codec_decode_req(payload, g_arena, &r, NULL) != KV_OK ||
        r->op_case != KV__REQUEST__OP_SCAN)
        return;
    const Kv__ScanRequest *q = r->scan;
    char buf[96];
    struct kv_slice after = {(const void *)1, 99};
    const char *why = kv_handler_scan_refusal(&g_cfg, q, &after, buf, sizeof buf);
    if (why) {
        FUZZ_CHECK(why[0] != '\0');
        return;
    }
    if ((unsigned)r->consistency >= KV_CONFIG_LEVELS)
        return;                     /* the handler refuses it (level_of) */
    struct kv_slice start = kv_slice_of(q->start.data, q->start.len);
    struct kv_slice end = kv_slice_of(q->end.data, q->end.len);
    FUZZ_CHECK(after.len == 0 || kv_slice_cmp(after, start) >= 0);
    size_t want[N_DATA], n_want = 0;
    for (size_t i = 0; i < N_DATA; i++) {
        size_t d = g_order[i];
        struct kv_slice k = key_of(d);
        if (DATA[d].deleted || kv_slice_cmp(k, start) < 0)
            continue;
        if (end.len && kv_slice_cmp(k, end) >= 0)
            continue;
        if (after.len && kv_slice_cmp(k, after) <= 0)
            continue;
        want[n_want++] = d;
    }
    struct scan_out o = {0};
    o.want = want;
    o.n_want = n_want;
    o.keys_only = q->keys_only;
    kv_cluster_scan(fuzz_cluster(g_sim, 1), start, end, after, q->limit, q->keys_only,
                    (enum kv_level)r->consistency, 0, scan_cb, &o);
    FUZZ_CHECK(sim_run_until(g_sim, done_pred, &o, 10000));
    if (r->consistency == KV__CONSISTENCY__LINEARIZABLE) {
        FUZZ_CHECK(o.st == KV_INVALID);   /* cluster.h: LINEARIZABLE is not for scans */
        return;
    }
    if ((r->consistency == KV__CONSISTENCY__TWO || r->consistency == KV__CONSISTENCY__THREE) &&
        o.st == KV_UNAVAILABLE)
        return;   /* more replicas than the one node (an empty range needs none: OK) */
    if (o.st != KV_OK)
        fprintf(stderr, "scan answered %s: %s\n", kv_status_str(o.st), o.msg);
    FUZZ_CHECK(o.st == KV_OK && o.ok);                             /* (1) */
    uint32_t limit = q->limit ? q->limit : 100;
    FUZZ_CHECK(o.n <= limit);
    if (!o.more)                                                   /* (3) */
        FUZZ_CHECK(o.n == n_want);
    else
        FUZZ_CHECK(o.n > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned inputs;
    if (!g_sim)
        setup();
    fuzz_frames(data, size, MAX_FRAME, on_frame, NULL);
    /* A finished scan cancels its timeout timer, but the simulator keeps the cancelled
     * event queued until its time comes, and each cancel walks the queue: let simulated
     * time pass now and then so the queue stays short (fuzzing speed only). */
    if (++inputs % 64 == 0)
        sim_run_for(g_sim, SIM_TEST_TIMEOUT_MS + 10);
    return 0;
}
