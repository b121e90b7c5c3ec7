/* tests/fuzz/seeds.c -- writes small seed inputs for every fuzz target, made with the real
 * encoders (protobuf-c packing, kv_frame_header, kv_record_encode, the LZ4 value packer),
 * in the input layouts the targets document. Usage: fuzz_seeds DIR (writes DIR/<target>/
 * seed-NN; tests/fuzz/corpus/ holds the committed output, merged with what fuzzing found).
 * Not part of any test: run by hand when a format or a target's layout changes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common/hash.h"
#include "proto/codec.h"
#include "proto/frame.h"
#include "storage/record.h"

static const char *g_dir;
static char g_target[64];
static int g_seq;
static struct kv_vec g_buf;      /* the input being built */

static void start(const char *target)
{
    snprintf(g_target, sizeof g_target, "%s", target);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    g_seq = 0;
}

static void put_bytes(const void *p, size_t n)
{
    if (kv_vec_reserve(&g_buf, n) != 0)
        exit(1);
    memcpy(g_buf.ptr + g_buf.len, p, n);
    g_buf.len += n;
}

static void put_u8(unsigned v) { uint8_t b = (uint8_t)v; put_bytes(&b, 1); }

static void emit(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/seed-%02d", g_dir, g_target, g_seq++);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(g_buf.ptr, 1, g_buf.len, f) != g_buf.len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    g_buf.len = 0;
}

static void frame(const ProtobufCMessage *m)
{
    if (kv_codec_frame_append(&g_buf, m, 64u << 20, NULL) != KV_OK)
        exit(1);
}

static ProtobufCBinaryData bin(const char *s) { return (ProtobufCBinaryData){strlen(s), (uint8_t *)s}; }

/* --- requests ---------------------------------------------------------------------------- */

static void req_frame(Kv__Request *r) { frame(&r->base); }

static void client_requests(void)
{
    Kv__GetRequest g = KV__GET_REQUEST__INIT;
    g.key = bin("user:0001");
    Kv__Request r = KV__REQUEST__INIT;
    r.id = 1;
    r.consistency = KV__CONSISTENCY__QUORUM;
    r.op_case = KV__REQUEST__OP_GET;
    r.get = &g;
    put_u8(0); req_frame(&r); emit();

    Kv__PutRequest p = KV__PUT_REQUEST__INIT;
    p.key = bin("user:0002");
    p.value = bin("a small value");
    p.ttl_ms = 60000;
    r.id = 2;
    r.op_case = KV__REQUEST__OP_PUT;
    r.put = &p;
    put_u8(0); req_frame(&r); emit();

    /* An LZ4 value as the client sends one. */
    char big[8192];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 7);
    struct kv_vec scratch = {0};
    struct kv_slice wire;
    bool lz4;
    if (kv_codec_value_pack(kv_slice_of(big, sizeof big), 4096, &scratch, &wire, &lz4, NULL) != KV_OK || !lz4)
        exit(1);
    p.value.data = (uint8_t *)wire.ptr;
    p.value.len = wire.len;
    p.lz4 = true;
    p.raw_len = sizeof big;
    put_u8(0); req_frame(&r); emit();

    Kv__CasRequest cas = KV__CAS_REQUEST__INIT;
    cas.key = bin("k");
    cas.expected = bin("old");
    cas.value.data = (uint8_t *)wire.ptr;
    cas.value.len = wire.len;
    cas.lz4 = true;
    cas.raw_len = sizeof big;
    r.op_case = KV__REQUEST__OP_CAS;
    r.cas = &cas;
    put_u8(0); req_frame(&r); emit();
    kv_vec_free(&scratch);

    Kv__DeleteRequest d = KV__DELETE_REQUEST__INIT;
    d.key = bin("user:0003");
    r.op_case = KV__REQUEST__OP_DEL;
    r.del = &d;
    put_u8(0); req_frame(&r); emit();

    Kv__ClusterStatusRequest cs = KV__CLUSTER_STATUS_REQUEST__INIT;
    r.op_case = KV__REQUEST__OP_CLUSTER_STATUS;
    r.cluster_status = &cs;
    put_u8(0); req_frame(&r);
    /* Several frames in one stream, then a truncated one. */
    r.op_case = KV__REQUEST__OP_GET;
    r.get = &g;
    req_frame(&r);
    req_frame(&r);
    g_buf.len -= 3;
    emit();

    /* A header announcing 1 GiB; a bad checksum. */
    uint8_t hdr[KV_FRAME_HDR] = {0x40, 0, 0, 0, 1, 2, 3, 4};
    put_u8(0); put_bytes(hdr, sizeof hdr); emit();
    put_u8(0); req_frame(&r); g_buf.ptr[1 + 5] ^= 0x5a; emit();
}

static void scan_requests(void)
{
    Kv__ScanRequest s = KV__SCAN_REQUEST__INIT;
    Kv__Request r = KV__REQUEST__INIT;
    r.id = 9;
    r.op_case = KV__REQUEST__OP_SCAN;
    r.scan = &s;
    put_u8(0); req_frame(&r); emit();                     /* everything */
    s.start = bin("user:");
    s.end = bin("user;");
    s.limit = 2;
    put_u8(0); req_frame(&r); emit();
    s.cursor = bin("\001user:0001");
    put_u8(0); req_frame(&r); emit();                     /* a cursor from a previous page */
    s.keys_only = true;
    s.limit = 0;
    s.cursor = bin("\002another-build");
    r.consistency = KV__CONSISTENCY__ONE;
    put_u8(0); req_frame(&r); emit();                     /* a cursor with an unknown tag */
    s.start = bin("b");
    s.end = bin("a");
    s.cursor.len = 0;
    put_u8(1); req_frame(&r); emit();                     /* start after end */
}

/* --- peer messages ------------------------------------------------------------------------ */

static void peer_frame(Kv__PeerMessage *pm)
{
    Kv__Request r = KV__REQUEST__INIT;
    r.op_case = KV__REQUEST__OP_PEER;
    r.peer = pm;
    req_frame(&r);
}

static void peer_messages(void)
{
    Kv__Record rec = KV__RECORD__INIT;
    rec.key = bin("user:0001");
    rec.hlc = (1800000000000ull << 16) | 3;
    rec.node = 2;
    rec.value = bin("value from node 2");
    Kv__Record tomb = KV__RECORD__INIT;
    tomb.key = bin("user:0002");
    tomb.hlc = rec.hlc + 1;
    tomb.node = 3;
    tomb.tombstone = true;
    Kv__Record *recs[2] = {&rec, &tomb};
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.from = 2;
    pm.hlc = rec.hlc;
    pm.op_id = 77;

    ProtobufCBinaryData toks[2] = {bin("g"), bin("t")};
    Kv__NodeState ns = KV__NODE_STATE__INIT;
    ns.id = 2;
    ns.addr = "10.99.0.2:7379";
    ns.http = "10.99.0.2:7380";
    ns.region = "dc1";
    ns.rack = "r1";
    ns.tokens = toks;
    ns.n_tokens = 2;
    ns.generation = 5;
    ns.version = 9;
    Kv__NodeState *nss[1] = {&ns};
    Kv__Gossip gs = KV__GOSSIP__INIT;
    gs.nodes = nss;
    gs.n_nodes = 1;
    gs.reply = true;
    pm.body_case = KV__PEER_MESSAGE__BODY_GOSSIP;
    pm.gossip = &gs;
    put_u8(0); peer_frame(&pm); emit();

    Kv__ReplicaWrite w = KV__REPLICA_WRITE__INIT;
    w.records = recs;
    w.n_records = 2;
    pm.body_case = KV__PEER_MESSAGE__BODY_WRITE;
    pm.write = &w;
    put_u8(0); peer_frame(&pm);
    w.is_hint = true;
    peer_frame(&pm); emit();

    Kv__ReplicaWriteAck wa = KV__REPLICA_WRITE_ACK__INIT;
    pm.body_case = KV__PEER_MESSAGE__BODY_WRITE_ACK;
    pm.write_ack = &wa;
    put_u8(0); peer_frame(&pm); emit();

    Kv__ReplicaRead rd = KV__REPLICA_READ__INIT;
    rd.key = bin("user:0001");
    rd.linear = true;
    pm.body_case = KV__PEER_MESSAGE__BODY_READ;
    pm.read = &rd;
    put_u8(0); peer_frame(&pm); emit();

    Kv__ReplicaReadReply rr = KV__REPLICA_READ_REPLY__INIT;
    rr.record = &rec;
    pm.body_case = KV__PEER_MESSAGE__BODY_READ_REPLY;
    pm.read_reply = &rr;
    put_u8(0); peer_frame(&pm); emit();

    Kv__ReplicaScan sc = KV__REPLICA_SCAN__INIT;
    sc.start = bin("user:");
    sc.start_exclusive = true;
    sc.end = bin("user;");
    sc.limit = 10;
    pm.body_case = KV__PEER_MESSAGE__BODY_SCAN;
    pm.scan = &sc;
    put_u8(0); peer_frame(&pm); emit();

    Kv__ReplicaScanReply sr = KV__REPLICA_SCAN_REPLY__INIT;
    sr.records = recs;
    sr.n_records = 2;
    sr.more = true;
    pm.body_case = KV__PEER_MESSAGE__BODY_SCAN_REPLY;
    pm.scan_reply = &sr;
    put_u8(0); peer_frame(&pm); emit();

    Kv__Ballot b = KV__BALLOT__INIT;
    b.hlc = rec.hlc + 5;
    b.node = 2;
    Kv__PaxosPrepare pp = KV__PAXOS_PREPARE__INIT;
    pp.key = bin("k");
    pp.ballot = &b;
    pm.body_case = KV__PEER_MESSAGE__BODY_PREPARE;
    pm.prepare = &pp;
    put_u8(0); peer_frame(&pm); emit();

    Kv__PaxosPromise pr = KV__PAXOS_PROMISE__INIT;
    pr.promised = true;
    pr.promised_ballot = &b;
    pr.accepted = &rec;
    pr.accepted_ballot = &b;
    pr.current = &rec;
    pm.body_case = KV__PEER_MESSAGE__BODY_PROMISE;
    pm.promise = &pr;
    put_u8(0); peer_frame(&pm); emit();

    Kv__Record prop = rec;
    prop.key = bin("k");
    Kv__PaxosPropose po = KV__PAXOS_PROPOSE__INIT;
    po.proposal = &prop;
    po.ballot = &b;
    pm.body_case = KV__PEER_MESSAGE__BODY_PROPOSE;
    pm.propose = &po;
    put_u8(0); peer_frame(&pm);
    Kv__PaxosCommit pc = KV__PAXOS_COMMIT__INIT;
    pc.record = &prop;
    pc.ballot = &b;
    pm.body_case = KV__PEER_MESSAGE__BODY_COMMIT;
    pm.commit = &pc;
    peer_frame(&pm); emit();

    Kv__PaxosAccepted pa = KV__PAXOS_ACCEPTED__INIT;
    pa.accepted = true;
    pm.body_case = KV__PEER_MESSAGE__BODY_ACCEPTED;
    pm.accepted = &pa;
    put_u8(0); peer_frame(&pm);
    Kv__PaxosCommitAck ca = KV__PAXOS_COMMIT_ACK__INIT;
    pm.body_case = KV__PEER_MESSAGE__BODY_COMMIT_ACK;
    pm.commit_ack = &ca;
    peer_frame(&pm); emit();
}

/* --- records and hints ------------------------------------------------------------------- */

static void record_operand(const struct kv_record *r)
{
    size_t n = kv_record_encoded_size(r);
    uint8_t *b = malloc(n);
    kv_record_encode(r, b);
    put_u8((unsigned)(n >> 8));
    put_u8((unsigned)n);
    put_bytes(b, n);
    free(b);
}

static void records(void)
{
    struct kv_record a = {{(1800000000000ull << 16) | 1, 1}, 0, false, {"v1", 2}};
    struct kv_record b = {{(1800000000000ull << 16) | 1, 2}, 1800000050000ull, false, {"v2", 2}};
    struct kv_record t = {{(1800000001000ull << 16), 3}, 0, true, {NULL, 0}};
    uint8_t head[13] = {0, 0, 0, 0x01, 0xa3, 0x18, 0x5c, 0x50, 0x00, 0, 0, 0x03, 0xe8};
    put_bytes(head, sizeof head); record_operand(&a); emit();
    put_bytes(head, sizeof head); record_operand(&a); record_operand(&b); record_operand(&t); emit();
    head[0] = 3;   /* the first operand is the existing value; checksums resealed */
    put_bytes(head, sizeof head); record_operand(&t); record_operand(&b); record_operand(&a);
    record_operand(&b); emit();
}

static void put_be(uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        put_u8((unsigned)(v >> (8 * i)));
}

static void hints(void)
{
    Kv__Record rec = KV__RECORD__INIT;
    rec.key = bin("user:0001");
    rec.hlc = (1800000000000ull << 16) | 3;
    rec.node = 1;
    rec.value = bin("hinted");
    for (int i = 0; i < 3; i++) {
        put_u8(0x80 | 20);          /* reseal the checksum (hint.c) */
        put_be(2, 4);
        put_be(1800000000000ull + (uint64_t)i, 8);
        put_be((uint64_t)i, 8);
        if (i == 1) {
            rec.tombstone = true;
            rec.value.len = 0;
        }
        if (i == 2)
            rec.expires_at_ms = 1800000099000ull;
        size_t n = kv__record__get_packed_size(&rec);
        uint8_t *b = malloc(n ? n : 1);
        kv__record__pack(&rec, b);
        put_be(kv_hash32(b, n), 4);   /* the stored form: xxh32 of the record, then it */
        put_bytes(b, n);
        free(b);
        emit();
    }
}

/* --- state saved on disk: the membership view, Paxos acceptor state ---------------------- */

static void put_packed(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n ? n : 1);
    protobuf_c_message_pack(m, b);
    put_bytes(b, n);
    free(b);
}

static void disk_state(void)
{
    ProtobufCBinaryData toks[2] = {bin("g"), bin("t")};
    Kv__NodeState ns[2] = {KV__NODE_STATE__INIT, KV__NODE_STATE__INIT};
    for (int i = 0; i < 2; i++) {
        ns[i].id = (uint32_t)i + 1;
        ns[i].addr = i ? "10.99.0.2:7379" : "10.99.0.1:7379";
        ns[i].region = "dc1";
        ns[i].rack = "r1";
        ns[i].tokens = toks + i;
        ns[i].n_tokens = 1;
        ns[i].generation = 3;
        ns[i].version = 7;
    }
    Kv__NodeState *nss[2] = {&ns[0], &ns[1]};
    Kv__Gossip g = KV__GOSSIP__INIT;
    g.nodes = nss;
    g.n_nodes = 2;
    put_u8(0); put_packed(&g.base); emit();

    Kv__Ballot b = KV__BALLOT__INIT;
    b.hlc = (1800000000000ull << 16) | 9;
    b.node = 1;
    Kv__Record rec = KV__RECORD__INIT;
    rec.key = bin("k");
    rec.hlc = b.hlc;
    rec.node = 1;
    rec.value = bin("accepted");
    Kv__PaxosState ps = KV__PAXOS_STATE__INIT;
    ps.promised = &b;
    put_u8(1); put_packed(&ps.base); emit();
    ps.accepted = &rec;
    ps.accepted_ballot = &b;
    put_u8(1); put_packed(&ps.base); emit();
    ps.accepted = NULL;
    ps.accepted_ballot = NULL;
    ps.committed = &b;
    put_u8(1); put_packed(&ps.base); emit();
}

/* --- responses ---------------------------------------------------------------------------- */

static void responses(void)
{
    Kv__Response r = KV__RESPONSE__INIT;
    r.id = 1;
    Kv__GetResponse g = KV__GET_RESPONSE__INIT;
    g.value = bin("value");
    g.version = 12345;
    g.version_node = 2;
    r.result_case = KV__RESPONSE__RESULT_GET;
    r.get = &g;
    put_u8(0); frame(&r.base); emit();

    char big[6000];
    memset(big, 'x', sizeof big);
    struct kv_vec scratch = {0};
    struct kv_slice wire;
    bool lz4;
    if (kv_codec_value_pack(kv_slice_of(big, sizeof big), 4096, &scratch, &wire, &lz4, NULL) != KV_OK || !lz4)
        exit(1);
    g.value.data = (uint8_t *)wire.ptr;
    g.value.len = wire.len;
    g.lz4 = true;
    g.raw_len = sizeof big;
    put_u8(0); frame(&r.base); emit();

    Kv__ScanItem it[2] = {KV__SCAN_ITEM__INIT, KV__SCAN_ITEM__INIT};
    it[0].key = bin("a");
    it[0].value = bin("1");
    it[1].key = bin("b");
    it[1].value.data = (uint8_t *)wire.ptr;
    it[1].value.len = wire.len;
    it[1].lz4 = true;
    it[1].raw_len = sizeof big;
    Kv__ScanItem *its[2] = {&it[0], &it[1]};
    Kv__ScanResponse sr = KV__SCAN_RESPONSE__INIT;
    sr.items = its;
    sr.n_items = 2;
    sr.cursor = bin("\001b");
    r.result_case = KV__RESPONSE__RESULT_SCAN;
    r.scan = &sr;
    put_u8(0); frame(&r.base); emit();
    kv_vec_free(&scratch);

    Kv__WriteResponse w = KV__WRITE_RESPONSE__INIT;
    w.version = 99;
    r.result_case = KV__RESPONSE__RESULT_WRITE;
    r.write = &w;
    put_u8(0); frame(&r.base);
    Kv__CasResponse cr = KV__CAS_RESPONSE__INIT;
    cr.exists = true;
    cr.current = bin("cur");
    r.result_case = KV__RESPONSE__RESULT_CAS;
    r.cas = &cr;
    frame(&r.base); emit();

    ProtobufCBinaryData toks[2] = {bin("g"), bin("t")};
    Kv__NodeState ns = KV__NODE_STATE__INIT;
    ns.id = 1;
    ns.addr = "127.0.0.1:7379";
    ns.tokens = toks;
    ns.n_tokens = 2;
    Kv__NodeView nv = KV__NODE_VIEW__INIT;
    nv.state = &ns;
    nv.up = true;
    Kv__NodeView *nvs[1] = {&nv};
    uint32_t reps[2] = {1, 2};
    Kv__RangeView rv[2] = {KV__RANGE_VIEW__INIT, KV__RANGE_VIEW__INIT};
    rv[0].end = bin("g");
    rv[0].replicas = reps;
    rv[0].n_replicas = 2;
    rv[1].start = bin("g");
    rv[1].replicas = reps;
    rv[1].n_replicas = 1;
    Kv__RangeView *rvs[2] = {&rv[0], &rv[1]};
    Kv__ClusterStatus cs = KV__CLUSTER_STATUS__INIT;
    cs.self = 1;
    cs.replication_factor = 2;
    cs.nodes = nvs;
    cs.n_nodes = 1;
    cs.ranges = rvs;
    cs.n_ranges = 2;
    r.result_case = KV__RESPONSE__RESULT_CLUSTER_STATUS;
    r.cluster_status = &cs;
    put_u8(0); frame(&r.base); emit();

    Kv__Response e = KV__RESPONSE__INIT;
    e.id = 4;
    e.status = KV__STATUS__UNAVAILABLE;
    e.message = "not enough replicas";
    e.required = 2;
    e.alive = 1;
    put_u8(0); frame(&e.base); emit();
}

/* --- config files ------------------------------------------------------------------------- */

static void text(const char *s) { put_bytes(s, strlen(s)); emit(); }

static void configs(void)
{
    text("node_id = 1\nlisten = 127.0.0.1:7379\nhttp = off\ndata_dir = /tmp/kvd\nsync = always\n");
    text("[server]\nnode_id = 3\nlisten = 127.0.0.3:7379\n[storage]\nsync = batch\n"
         "batch_delay_us = 500\nmax_value = 65536\n[cluster]\nseeds = 127.0.0.1:7379, "
         "127.0.0.2:7379\nregion = eu\nrack = r2\nreplication_factor = 3\n"
         "default_consistency = quorum\ntokens = a,m\\x00,\\xff\\,z\n");
    text("; comment\n# other\nmax-key = 4096\nscan_max_limit=10\nscan_default_limit=20\n");
    text("debug = true\ndebug_clock_offset_ms = -5000\nphi_threshold = 8.5\nlog_level = warn\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    mkdir(g_dir, 0755);
    start("frame_req");
    client_requests();
    scan_requests();
    peer_messages();
    start("scan");
    scan_requests();
    start("peer");
    peer_messages();
    start("record");
    records();
    start("hint");
    hints();
    start("client_resp");
    responses();
    start("config");
    configs();
    start("disk_state");
    disk_state();
    kv_vec_free(&g_buf);
    return 0;
}
