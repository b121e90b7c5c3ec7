/* tests/integration/test_cluster.c -- real kvd processes forming one cluster (rf 3): three
 * nodes in most tests, five in one.
 *
 * Each node gets its own loopback address (127.0.0.1, .2, .3 ...) when the machine allows
 * it, else all share 127.0.0.1 on distinct ports. Gossip runs every 100 ms, so with the
 * default phi threshold (8) a silent node is marked down after about 1.8 s.
 *
 * Choosing the coordinator: every client here is built with token_aware off and one
 * address, so the node named is the one that coordinates the request.
 *
 * Checking what one replica holds: a read at any level through node X may be answered by
 * another replica, so the tests ask X for its own record with a *local* read
 * (kvc_call.local, `kvctl get --local`): no coordination, X's store only. The local reads
 * go through token-aware clients pointed at X, which must send them to X, not to the
 * replica the ring names (kv/client.h). That is how placement, hint replay, kill -9
 * durability and convergence under clock skew are verified below.
 *
 * (1) Every process is stopped by PID in the fixture, even when an assertion fails
 *     (CK_NOFORK, so the fixture sees the PIDs the test started). */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <kv/client.h>
#include "proto/codec.h"
#include "proto/frame.h"
#include "tests/integration/harness.h"

#define N_NODES 3       /* most tests */
#define MAX_NODES 5

static struct kvd_proc g_nodes[MAX_NODES];
static char g_hosts[MAX_NODES][24];

static void stop_all(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        kvd_cleanup(&g_nodes[i]);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pick_hosts(int n)
{
    bool own = true;
    for (int i = 1; i < n; i++) {
        char h[24];
        snprintf(h, sizeof h, "127.0.0.%d", i + 1);
        own = own && kvd_host_usable(h);
    }
    for (int i = 0; i < n; i++)
        snprintf(g_hosts[i], sizeof g_hosts[i], "127.0.0.%d", own ? i + 1 : 1);
}

/* The flags of node i (0-based): id i+1, rf 3, fast gossip; seeds NULL for none; more
 * (NULL-terminated, may be NULL) appended. */
static void set_flags_more(struct kvd_proc *p, int i, const char *seeds,
                           const char *const *more)
{
    char id[16];
    snprintf(id, sizeof id, "%d", i + 1);
    const char *f[KVD_MAX_EXTRA + 1] = {"--node-id", id, "--replication-factor", "3",
                                        "--gossip-interval-ms", "100", "--default-timeout-ms",
                                        "2000", "--sync", "batch"};
    int n = 10;
    if (seeds) {
        f[n++] = "--seeds";
        f[n++] = seeds;
    }
    for (; more && *more && n < KVD_MAX_EXTRA; more++)
        f[n++] = *more;
    f[n] = NULL;
    kvd_set_extra(p, f);
}

static struct kvc_client *client_at(const struct kvd_proc *p)
{
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = p->addr;
    o.token_aware = false;
    o.timeout_ms = 3000;
    o.connect_timeout_ms = 1000;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    int rc = kvc_connect(&o, &c, &err);
    ck_assert_msg(rc == KVC_OK, "connect %s: %s", p->addr, err.msg);
    return c;
}

/* Node `p`'s view: how many nodes it sees up, and (when id != 0) that node's generation
 * and liveness. -1 when it does not answer. */
static int view_of(const struct kvd_proc *p, uint32_t id, uint64_t *gen, bool *up)
{
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = p->addr;
    o.token_aware = false;
    o.timeout_ms = 1000;
    o.connect_timeout_ms = 500;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    if (kvc_connect(&o, &c, &err) != KVC_OK)
        return -1;
    struct kvc_cluster_status st;
    int rc = kvc_cluster_status(c, &st, &err);
    kvc_close(c);
    if (rc != KVC_OK)
        return -1;
    int n_up = 0;
    for (size_t i = 0; i < st.n_nodes; i++) {
        if (st.nodes[i].up)
            n_up++;
        if (id && st.nodes[i].id == id) {
            if (gen)
                *gen = st.nodes[i].generation;
            if (up)
                *up = st.nodes[i].up;
        }
    }
    kvc_cluster_status_free(&st);
    return n_up;
}

/* A token-aware client pointed at p alone: it learns the ring from p, so it would route
 * a normal get to the key's replica, but a local read must still go to p. */
static struct kvc_client *client_ta(const struct kvd_proc *p)
{
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = p->addr;
    o.token_aware = true;
    o.timeout_ms = 3000;
    o.connect_timeout_ms = 1000;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    int rc = kvc_connect(&o, &c, &err);
    ck_assert_msg(rc == KVC_OK, "connect %s: %s", p->addr, err.msg);
    return c;
}

/* Local reads of keys[0..n) on node p, pipelined; ops[i] holds each result (the caller
 * frees ops[i].result when err.code is KVC_OK). */
static void local_reads(const struct kvd_proc *p, char (*keys)[32], int n, struct kvc_op *ops)
{
    struct kvc_client *c = client_ta(p);
    for (int i = 0; i < n; i++)
        ops[i] = (struct kvc_op){.type = KVC_OP_GET, .key = keys[i],
                                 .key_len = strlen(keys[i]), .call = {.local = true}};
    struct kvc_err err;
    ck_assert_msg(kvc_exec(c, ops, (size_t)n, &err) == KVC_OK, "local reads on %s: %s",
                  p->addr, err.msg);
    for (int i = 0; i < n; i++)
        ck_assert_msg(ops[i].err.code == KVC_OK || ops[i].err.code == KVC_NOT_FOUND,
                      "local read of %s on %s: %s", keys[i], p->addr, ops[i].err.msg);
    kvc_close(c);
}

/* One local read of k on p: KVC_OK (value v, when v is not NULL) or KVC_NOT_FOUND. */
static int local_get(const struct kvd_proc *p, const char *k, const char *v)
{
    static char key[1][32];
    struct kvc_op op;
    snprintf(key[0], sizeof key[0], "%s", k);
    local_reads(p, key, 1, &op);
    if (op.err.code == KVC_OK) {
        ck_assert_msg(!v || (op.result.len == strlen(v) && memcmp(op.result.data, v,
                                                                   op.result.len) == 0),
                      "local %s on %s: '%s', want '%s'", k, p->addr,
                      (char *)op.result.data, v);
        kvc_value_free(&op.result);
    }
    return op.err.code;
}

/* Waits until every running node in [0, n) sees want nodes up. */
static void wait_converged(int n, int want, uint64_t max_ms)
{
    uint64_t t0 = now_ms();
    for (;;) {
        int ok = 0;
        for (int i = 0; i < n; i++)
            if (view_of(&g_nodes[i], 0, NULL, NULL) == want)
                ok++;
        if (ok == n)
            break;
        ck_assert_msg(now_ms() - t0 < max_ms, "nodes did not all see %d up within %llu ms",
                      want, (unsigned long long)max_ms);
        usleep(50 * 1000);
    }
    fprintf(stderr, "cluster: %d nodes see %d up after %llu ms\n", n, want,
            (unsigned long long)(now_ms() - t0));
}

/* Starts n nodes (node 1 without seeds, the others seeded by it), node i with the extra
 * flags more[i] (NULL-terminated; more or more[i] may be NULL), and waits until each
 * sees all n up. */
static void start_nodes(int n, const char *const *const *more)
{
    pick_hosts(n);
    uint64_t t0 = now_ms();
    for (int i = 0; i < n; i++) {
        struct kvd_proc tmp;
        memset(&tmp, 0, sizeof tmp);
        set_flags_more(&tmp, i, i ? g_nodes[0].addr : NULL, more ? more[i] : NULL);
        const char *extra[KVD_MAX_EXTRA + 1];
        for (int j = 0; j < tmp.n_extra; j++)
            extra[j] = tmp.extra[j];
        extra[tmp.n_extra] = NULL;
        ck_assert_msg(kvd_start_on(&g_nodes[i], g_hosts[i], extra) == 0, "start node %d", i + 1);
    }
    wait_converged(n, n, 15000);
    fprintf(stderr, "cluster: %d nodes started on %s .. %s in %llu ms\n", n, g_nodes[0].addr,
            g_nodes[n - 1].addr, (unsigned long long)(now_ms() - t0));
}

static void start_cluster(void) { start_nodes(N_NODES, NULL); }

static void put_at(const struct kvd_proc *p, const char *k, const char *v,
                   enum kvc_consistency cl)
{
    struct kvc_client *c = client_at(p);
    struct kvc_call call = {.consistency = cl};
    struct kvc_err err;
    int rc = kvc_put(c, k, strlen(k), v, strlen(v), &call, &err);
    ck_assert_msg(rc == KVC_OK, "put %s at %s via %s: %s", k, kvc_consistency_name(cl), p->addr,
                  err.msg);
    kvc_close(c);
}

/* kvc status of a get; on KVC_OK the value must be v. */
static int get_at(const struct kvd_proc *p, const char *k, enum kvc_consistency cl,
                  const char *v)
{
    struct kvc_client *c = client_at(p);
    struct kvc_call call = {.consistency = cl};
    struct kvc_value val;
    struct kvc_err err;
    int rc = kvc_get(c, k, strlen(k), &val, &call, &err);
    if (rc == KVC_OK) {
        ck_assert_msg(v && val.len == strlen(v) && memcmp(val.data, v, val.len) == 0,
                      "get %s via %s: got '%.*s', want '%s'", k, p->addr, (int)val.len,
                      (char *)val.data, v ? v : "(none)");
        kvc_value_free(&val);
    }
    kvc_close(c);
    return rc;
}

/* --- raw requests: to see acks, required and alive -------------------------------------- */

static Kv__Response *raw_call(const struct kvd_proc *p, Kv__Request *req)
{
    int fd = kvd_connect_raw(p);
    ck_assert_msg(fd >= 0, "raw connect to %s", p->addr);
    struct kv_vec v = {0};
    ck_assert_int_eq(kv_codec_frame_append(&v, &req->base, 1u << 24, NULL), KV_OK);
    ck_assert_int_eq(send(fd, v.ptr, v.len, MSG_NOSIGNAL), (ssize_t)v.len);
    kv_vec_free(&v);
    static uint8_t buf[1 << 20];
    size_t len = 0;
    uint64_t deadline = now_ms() + 10000;
    for (;;) {
        struct kv_slice payload;
        size_t flen;
        enum kv_status st = kv_frame_decode(buf, len, sizeof buf, &payload, &flen, NULL);
        if (st == KV_OK) {
            Kv__Response *r = NULL;
            ck_assert_int_eq(kv_codec_decode_resp(payload, &r, NULL), KV_OK);
            close(fd);
            return r;
        }
        ck_assert_int_eq(st, KV_AGAIN);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ck_assert_msg(now_ms() < deadline, "no answer from %s", p->addr);
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, buf + len, sizeof buf - len, 0);
        ck_assert_msg(n > 0, "connection to %s closed", p->addr);
        len += (size_t)n;
    }
}

static Kv__Response *raw_put(const struct kvd_proc *p, const char *k, const char *v,
                             Kv__Consistency cl, uint32_t timeout_ms)
{
    Kv__Request req = KV__REQUEST__INIT;
    Kv__PutRequest put = KV__PUT_REQUEST__INIT;
    put.key.data = (uint8_t *)k;
    put.key.len = strlen(k);
    put.value.data = (uint8_t *)v;
    put.value.len = strlen(v);
    req.id = 7;
    req.consistency = cl;
    req.timeout_ms = timeout_ms;
    req.op_case = KV__REQUEST__OP_PUT;
    req.put = &put;
    Kv__Response *r = raw_call(p, &req);
    ck_assert_uint_eq(r->id, 7);
    return r;
}

static Kv__Response *raw_get(const struct kvd_proc *p, const char *k, Kv__Consistency cl,
                             uint32_t timeout_ms)
{
    Kv__Request req = KV__REQUEST__INIT;
    Kv__GetRequest get = KV__GET_REQUEST__INIT;
    get.key.data = (uint8_t *)k;
    get.key.len = strlen(k);
    req.id = 8;
    req.consistency = cl;
    req.timeout_ms = timeout_ms;
    req.op_case = KV__REQUEST__OP_GET;
    req.get = &get;
    Kv__Response *r = raw_call(p, &req);
    ck_assert_uint_eq(r->id, 8);
    return r;
}

/* Fails the test unless r has status want; frees r first when it does not. */
static void check_status(Kv__Response *r, Kv__Status want, const char *what)
{
    if (r->status == want)
        return;
    char m[400];
    snprintf(m, sizeof m, "%s: status %d, want %d (%s)", what, r->status, want,
             r->message ? r->message : "");
    kv__response__free_unpacked(r, NULL);
    ck_abort_msg("%s", m);
}

/* Waits until node p's detector sees node id as up (want) or down. */
static void wait_view(const struct kvd_proc *p, uint32_t id, bool want, uint64_t max_ms)
{
    uint64_t t0 = now_ms();
    for (;;) {
        bool up = !want;
        if (view_of(p, id, NULL, &up) >= 0 && up == want)
            return;
        ck_assert_msg(now_ms() - t0 < max_ms, "%s never saw node %u %s", p->addr, id,
                      want ? "up" : "down");
        usleep(50 * 1000);
    }
}

static double metric(const struct kvd_proc *p, const char *series)
{
    double v = -1;
    if (kvd_metric(p, series, &v) != 0)
        return -1;
    return v;
}

/* Waits until series on p satisfies (value >= lo && value <= hi). */
static double wait_metric(const struct kvd_proc *p, const char *series, double lo, double hi,
                          uint64_t max_ms)
{
    uint64_t t0 = now_ms();
    double v;
    for (;;) {
        v = metric(p, series);
        if (v >= lo && v <= hi)
            return v;
        ck_assert_msg(now_ms() - t0 < max_ms, "%s on %s is %g, not in [%g, %g] after %llu ms",
                      series, p->addr, v, lo, hi, (unsigned long long)max_ms);
        usleep(50 * 1000);
    }
}

/* --- scans ---------------------------------------------------------------------------- */

/* Every key of [start, end) through node p at level cl, following cursors with `page`. */
static int scan_all(const struct kvd_proc *p, const char *start, const char *end,
                    uint32_t page, enum kvc_consistency cl, char keys[][32], int max,
                    int *pages)
{
    struct kvc_client *c = client_at(p);
    struct kvc_call call = {.consistency = cl};
    int n = 0;
    *pages = 0;
    uint8_t *cursor = NULL;
    size_t cursor_len = 0;
    for (;;) {
        struct kvc_scan_args a = {.start = start, .start_len = strlen(start), .end = end,
                                  .end_len = strlen(end), .limit = page, .cursor = cursor,
                                  .cursor_len = cursor_len};
        struct kvc_scan_result r;
        struct kvc_err err;
        ck_assert_msg(kvc_scan(c, &a, &call, &r, &err) == KVC_OK, "scan via %s: %s", p->addr,
                      err.msg);
        ck_assert(r.n <= page);
        (*pages)++;
        for (size_t i = 0; i < r.n; i++) {
            ck_assert_int_lt(n, max);
            snprintf(keys[n++], 32, "%.*s", (int)r.items[i].key_len, (char *)r.items[i].key);
        }
        free(cursor);
        cursor = NULL;
        cursor_len = r.cursor_len;
        if (r.cursor) {
            cursor = malloc(r.cursor_len);
            memcpy(cursor, r.cursor, r.cursor_len);
        }
        kvc_scan_result_free(&r);
        if (!cursor)
            break;
        ck_assert_int_lt(*pages, 1000);
    }
    kvc_close(c);
    return n;
}

/* --- tests ------------------------------------------------------------------------------ */

START_TEST(test_a_quorum_write_is_readable_from_every_coordinator_and_scans_agree)
{
    uint64_t t0 = now_ms();
    start_cluster();
    put_at(&g_nodes[0], "user:000123", "alice", KVC_CL_QUORUM);
    ck_assert_int_eq(get_at(&g_nodes[1], "user:000123", KVC_CL_QUORUM, "alice"), KVC_OK);
    /* QUORUM wrote 2 of 3 before answering; the third copy lands a moment later, so a read
     * at ONE (R + W = N, not > N) may briefly miss it: ONE promises eventual visibility. */
    uint64_t t1 = now_ms();
    int rc;
    while ((rc = get_at(&g_nodes[2], "user:000123", KVC_CL_ONE, "alice")) == KVC_NOT_FOUND &&
           now_ms() - t1 < 2000)
        usleep(20 * 1000);
    ck_assert_int_eq(rc, KVC_OK);

    /* 150 keys written pipelined through node 1, every 7th deleted through node 2. */
    enum { K = 150 };
    static struct kvc_op ops[K];
    static char keys[K][32];
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < K; i++) {
        snprintf(keys[i], sizeof keys[i], "scan:%04d", i);
        ops[i] = (struct kvc_op){.type = KVC_OP_PUT, .key = keys[i], .key_len = strlen(keys[i]),
                                 .value = keys[i], .value_len = strlen(keys[i]),
                                 .call = {.consistency = KVC_CL_QUORUM}};
    }
    struct kvc_client *c = client_at(&g_nodes[0]);
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, ops, K, &err), KVC_OK);
    for (int i = 0; i < K; i++)
        ck_assert_msg(ops[i].err.code == KVC_OK, "put %s: %s", keys[i], ops[i].err.msg);
    kvc_close(c);
    c = client_at(&g_nodes[1]);
    struct kvc_call q = {.consistency = KVC_CL_QUORUM};
    for (int i = 0; i < K; i += 7)
        ck_assert_int_eq(kvc_delete(c, keys[i], strlen(keys[i]), &q, &err), KVC_OK);
    kvc_close(c);

    static char got[N_NODES][K][32];
    int n[N_NODES], pages[N_NODES];
    for (int i = 0; i < N_NODES; i++)
        n[i] = scan_all(&g_nodes[i], "scan:", "scan;", 17, KVC_CL_QUORUM, got[i], K, &pages[i]);
    int want = 0;
    for (int i = 0; i < K; i++) {
        if (i % 7 == 0)
            continue;
        for (int j = 0; j < N_NODES; j++)
            ck_assert_msg(strcmp(got[j][want], keys[i]) == 0, "node %d item %d: %s, want %s",
                          j + 1, want, got[j][want], keys[i]);
        want++;
    }
    for (int j = 0; j < N_NODES; j++) {
        ck_assert_int_eq(n[j], want);
        ck_assert_int_ge(pages[j], want / 17);
    }
    /* ... and the same at ONE (no repair needed: every replica has every write by now). */
    int n1 = scan_all(&g_nodes[2], "scan:", "scan;", 50, KVC_CL_ONE, got[0], K, &pages[0]);
    ck_assert_int_eq(n1, want);

    /* SIGTERM while a request waits on a replica: node 2 answers it before exiting (here
     * TIMEOUT, since node 3 is paused but not yet marked down), exits 0, leaks nothing. */
    ck_assert_int_eq(kvd_signal(&g_nodes[2], SIGSTOP), 0);
    c = client_at(&g_nodes[1]);
    struct kvc_op op = {.type = KVC_OP_PUT, .key = "inflight", .key_len = 8, .value = "x",
                        .value_len = 1,
                        .call = {.consistency = KVC_CL_ALL, .timeout_ms = 1500}};
    ck_assert_int_eq(kvc_submit(c, &op, NULL, NULL, &err), KVC_OK);
    while (kvc_want_write(c))
        ck_assert(kvc_poll(c, 10, &err) >= 0);
    usleep(100 * 1000);   /* received and sent to the replicas */
    ck_assert_int_eq(kvd_signal(&g_nodes[1], SIGTERM), 0);
    uint64_t t_stop = now_ms();
    while (!op.done)
        ck_assert_msg(kvc_poll(c, 100, &err) >= 0 && now_ms() - t_stop < 5000,
                      "in-flight request not answered during shutdown");
    ck_assert_msg(op.err.code == KVC_TIMEOUT, "in-flight ALL: %s (%s)",
                  kvc_status_name(op.err.code), op.err.msg);
    kvc_close(c);
    ck_assert_int_eq(kvd_stop(&g_nodes[1], 0), 0);
    ck_assert_int_eq(kvd_signal(&g_nodes[2], SIGCONT), 0);
    ck_assert_int_eq(kvd_stop(&g_nodes[2], SIGTERM), 0);
    ck_assert_int_eq(kvd_stop(&g_nodes[0], SIGTERM), 0);
    fprintf(stderr, "quorum/scan test: %d keys in %d pages of 17 from each node, %llu ms\n",
            want, pages[1], (unsigned long long)(now_ms() - t0));
}
END_TEST

START_TEST(test_a_paused_replica_times_out_then_is_unavailable_at_all_and_gets_its_hints)
{
    uint64_t t0 = now_ms();
    start_cluster();
    struct kvd_proc *n1 = &g_nodes[0], *n2 = &g_nodes[1], *n3 = &g_nodes[2];
    put_at(n1, "before", "pause", KVC_CL_ALL);

    ck_assert_int_eq(kvd_signal(n3, SIGSTOP), 0);
    uint64_t stopped = now_ms();
    /* Node 3 is still believed alive (the detector needs ~1.8 s of silence), so ALL sends
     * to it and waits: TIMEOUT, with 2 acks of the 3 required -- the write may have been
     * applied, and the client is told exactly that. */
    Kv__Response *r = raw_put(n1, "during", "timeout", KV__CONSISTENCY__ALL, 400);
    check_status(r, KV__STATUS__TIMEOUT, "ALL right after SIGSTOP");
    ck_assert_uint_eq(r->acks, 2);
    ck_assert_uint_eq(r->required, 3);
    ck_assert_msg(now_ms() - stopped < 1500, "the TIMEOUT came too late to be meaningful");
    kv__response__free_unpacked(r, NULL);

    /* QUORUM keeps working throughout. */
    put_at(n1, "q:1", "one", KVC_CL_QUORUM);
    ck_assert_int_eq(get_at(n2, "q:1", KVC_CL_QUORUM, "one"), KVC_OK);

    /* Once the detector marks node 3 down, ALL fails fast, before sending anything. */
    uint64_t detected = 0;
    for (;;) {
        r = raw_put(n1, "all:probe", "x", KV__CONSISTENCY__ALL, 300);
        if (r->status == KV__STATUS__UNAVAILABLE)
            break;
        check_status(r, KV__STATUS__TIMEOUT, "ALL while paused");
        kv__response__free_unpacked(r, NULL);
        ck_assert_msg(now_ms() - stopped < 8000, "node 3 never marked down");
    }
    detected = now_ms() - stopped;
    ck_assert_uint_eq(r->required, 3);
    ck_assert_uint_eq(r->alive, 2);
    ck_assert_msg(r->message && strchr(r->message, '3') && strchr(r->message, '2'),
                  "UNAVAILABLE says needed vs alive: '%s'", r->message);
    fprintf(stderr, "paused node marked down after %llu ms: \"%s\"\n",
            (unsigned long long)detected, r->message);
    kv__response__free_unpacked(r, NULL);
    /* Each node has its own detector: node 2 may mark node 3 down a little later. */
    wait_view(n2, 3, false, 5000);
    uint64_t t_fast = now_ms();
    r = raw_get(n2, "q:1", KV__CONSISTENCY__ALL, 2000);
    check_status(r, KV__STATUS__UNAVAILABLE, "ALL read through node 2");
    ck_assert_msg(now_ms() - t_fast < 500, "UNAVAILABLE is immediate, not a timeout");
    kv__response__free_unpacked(r, NULL);

    /* Writes while node 3 is down are hinted on their coordinator. */
    double stored0 = metric(n1, "kvd_cluster_hints_stored_total");
    char k[32], v[32];
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "hint:%02d", i);
        snprintf(v, sizeof v, "v%d", i);
        put_at(n1, k, v, KVC_CL_QUORUM);
    }
    /* (/metrics shows cluster figures refreshed every 200 ms: wait, do not sample.) */
    wait_metric(n1, "kvd_cluster_hints_stored_total", stored0 + 20, 1e12, 3000);
    double pending = wait_metric(n1, "kvd_cluster_hints_pending", 20, 1e12, 3000);
    wait_metric(n1, "kvd_cluster_nodes{state=\"down\"}", 1, 1, 2000);

    /* Back: the hints replay, and ALL works again. */
    ck_assert_int_eq(kvd_signal(n3, SIGCONT), 0);
    uint64_t resumed = now_ms();
    wait_metric(n1, "kvd_cluster_hints_pending", 0, 0, 15000);
    uint64_t replayed_ms = now_ms() - resumed;
    wait_metric(n1, "kvd_cluster_hints_replayed_total", 20, 1e12, 1000);
    for (;;) {
        r = raw_put(n1, "all:after", "x", KV__CONSISTENCY__ALL, 1000);
        Kv__Status st = r->status;
        kv__response__free_unpacked(r, NULL);
        if (st == KV__STATUS__OK)
            break;
        ck_assert_msg(now_ms() - resumed < 5000, "ALL still failing after SIGCONT: %d", st);
        usleep(50 * 1000);
    }

    /* Node 3 itself has the hinted writes: its local reads (its own store, nothing read
     * through another replica and nothing repaired: no read touched these keys) return
     * the data written while it was paused. */
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "hint:%02d", i);
        snprintf(v, sizeof v, "v%d", i);
        ck_assert_msg(local_get(n3, k, v) == KVC_OK, "%s missing on node 3", k);
    }
    ck_assert_int_eq(local_get(n3, "before", "pause"), KVC_OK);
    /* ... and node 1, which coordinated them, has them too (a local read sees only it). */
    ck_assert_int_eq(local_get(n1, "hint:07", "v7"), KVC_OK);
    ck_assert_int_eq(local_get(n1, "no-such-key", NULL), KVC_NOT_FOUND);
    fprintf(stderr, "pause test: %.0f hints pending, replayed %llu ms after SIGCONT; %llu ms\n",
            pending, (unsigned long long)replayed_ms, (unsigned long long)(now_ms() - t0));
}
END_TEST

START_TEST(test_kill_9_and_restart_bumps_the_generation_and_keeps_the_data)
{
    uint64_t t0 = now_ms();
    start_cluster();
    struct kvd_proc *n1 = &g_nodes[0], *n2 = &g_nodes[1], *n3 = &g_nodes[2];
    char k[32], v[32];
    for (int i = 0; i < 30; i++) {   /* ALL: node 3 acknowledged, so it has them durably */
        snprintf(k, sizeof k, "d:%02d", i);
        snprintf(v, sizeof v, "val%d", i);
        put_at(n1, k, v, KVC_CL_ALL);
    }
    uint64_t gen0 = 0;
    bool up = false;
    ck_assert_int_eq(view_of(n1, 3, &gen0, &up), 3);
    ck_assert(up && gen0 > 0);

    /* Two of three replicas gone: node 3 killed, node 2 paused. */
    ck_assert_int_eq(kvd_stop(n3, SIGKILL), 128 + SIGKILL);
    ck_assert_int_eq(kvd_signal(n2, SIGSTOP), 0);
    uint64_t gone = now_ms();
    Kv__Response *r;
    for (;;) {
        r = raw_get(n1, "d:00", KV__CONSISTENCY__QUORUM, 300);
        if (r->status == KV__STATUS__UNAVAILABLE)
            break;
        kv__response__free_unpacked(r, NULL);
        ck_assert_msg(now_ms() - gone < 8000, "QUORUM never became UNAVAILABLE");
    }
    ck_assert_uint_eq(r->required, 2);
    ck_assert_uint_eq(r->alive, 1);
    kv__response__free_unpacked(r, NULL);
    wait_view(n1, 3, false, 5000);   /* both down in node 1's view, not just one */
    /* ONE still answers, from node 1's own copy; here it is current, because every write
     * went to all replicas at ALL (in general ONE may be stale). */
    ck_assert_int_eq(get_at(n1, "d:07", KVC_CL_ONE, "val7"), KVC_OK);
    r = raw_put(n1, "d:new", "x", KV__CONSISTENCY__QUORUM, 1000);
    check_status(r, KV__STATUS__UNAVAILABLE, "QUORUM write with 2 of 3 down");
    kv__response__free_unpacked(r, NULL);
    ck_assert_int_eq(kvd_signal(n2, SIGCONT), 0);

    /* Node 3 restarted (same address, data and seed): every write it acknowledged before
     * kill -9 is in its own store. Nothing could have put them back: no hint exists for
     * them (they were all acked) and no read has touched them since. */
    ck_assert_int_eq(kvd_restart(n3), 0);
    for (int i = 0; i < 30; i++) {
        snprintf(k, sizeof k, "d:%02d", i);
        snprintf(v, sizeof v, "val%d", i);
        ck_assert_msg(local_get(n3, k, v) == KVC_OK, "%s lost on node 3 by kill -9", k);
    }
    uint64_t gen1 = 0, asked = now_ms();
    while (view_of(n3, 3, &gen1, &up) < 1)
        ck_assert_msg(now_ms() - asked < 5000, "restarted node 3 does not answer status");
    ck_assert_msg(gen1 > gen0, "generation %llu after restart, %llu before",
                  (unsigned long long)gen1, (unsigned long long)gen0);

    /* The others see the new generation, up. */
    uint64_t back = now_ms(), gen2 = 0;
    for (;;) {
        up = false;
        if (view_of(n1, 3, &gen2, &up) >= 0 && up && gen2 >= gen1)
            break;
        ck_assert_msg(now_ms() - back < 10000, "node 1 never saw node 3's new generation "
                      "(sees %llu, up %d)", (unsigned long long)gen2, up);
        usleep(50 * 1000);
    }
    wait_converged(N_NODES, N_NODES, 10000);
    put_at(n1, "d:after", "x", KVC_CL_ALL);
    ck_assert_int_eq(get_at(n3, "d:29", KVC_CL_QUORUM, "val29"), KVC_OK);
    fprintf(stderr, "kill -9 test: generation %llu -> %llu -> %llu, %llu ms\n",
            (unsigned long long)gen0, (unsigned long long)gen1, (unsigned long long)gen2,
            (unsigned long long)(now_ms() - t0));
}
END_TEST

/* --- five nodes: placement ----------------------------------------------------------- */

/* The replicas the ring names for key: the ids of the one range (start, end] holding it. */
static size_t replicas_of(const struct kvc_cluster_status *st, const char *key, uint32_t *out)
{
    size_t klen = strlen(key), found = 0, n = 0;
    for (size_t i = 0; i < st->n_ranges; i++) {
        const struct kvc_range_info *r = &st->ranges[i];
        size_t sl = r->start.len, el = r->end.len;
        int cs = sl ? memcmp(key, r->start.data, klen < sl ? klen : sl) : 1;
        if (sl && cs == 0)
            cs = klen > sl ? 1 : klen < sl ? -1 : 0;
        int ce = el ? memcmp(key, r->end.data, klen < el ? klen : el) : -1;
        if (el && ce == 0)
            ce = klen > el ? 1 : klen < el ? -1 : 0;
        if (cs > 0 && ce <= 0) {
            found++;
            n = r->n_replicas;
            for (size_t j = 0; j < n && j < 8; j++)
                out[j] = r->replicas[j];
        }
    }
    ck_assert_msg(found == 1, "key %s is in %zu ranges", key, found);
    return n;
}

START_TEST(test_five_nodes_rf3_every_key_is_readable_everywhere_and_on_exactly_its_replicas)
{
    uint64_t t0 = now_ms();
    enum { N = 5, K = 200 };
    /* Tokens from the key space (docs/cluster.md): k:010, k:020 ... k:200 owned round-robin
     * by nodes 2, 3, 4, 5, 1, 2 ..., so the 200 keys k:000..k:199 spread over 20 ranges. */
    static char toks[N][128];
    static const char *more[N][3];
    static const char *const *mp[N];
    for (int i = 0; i < N; i++) {
        toks[i][0] = '\0';
        for (int j = 1; j <= 20; j++)
            if (j % N + 1 == i + 1)
                snprintf(toks[i] + strlen(toks[i]), sizeof toks[i] - strlen(toks[i]), "%sk:%03d",
                         toks[i][0] ? "," : "", j * 10);
        more[i][0] = "--tokens";
        more[i][1] = toks[i];
        more[i][2] = NULL;
        mp[i] = more[i];
    }
    start_nodes(N, mp);

    static char keys[K][32], vals[K][32];
    static struct kvc_op ops[K];
    for (int i = 0; i < K; i++) {
        snprintf(keys[i], sizeof keys[i], "k:%03d", i);
        snprintf(vals[i], sizeof vals[i], "value-%03d", i);
        ops[i] = (struct kvc_op){.type = KVC_OP_PUT, .key = keys[i], .key_len = strlen(keys[i]),
                                 .value = vals[i], .value_len = strlen(vals[i]),
                                 .call = {.consistency = KVC_CL_QUORUM}};
    }
    struct kvc_client *c = client_at(&g_nodes[0]);
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, ops, K, &err), KVC_OK);
    for (int i = 0; i < K; i++)
        ck_assert_msg(ops[i].err.code == KVC_OK, "put %s: %s", keys[i], ops[i].err.msg);
    kvc_close(c);

    /* Readable at QUORUM from every coordinator. */
    for (int n = 0; n < N; n++) {
        c = client_at(&g_nodes[n]);
        for (int i = 0; i < K; i++)
            ops[i] = (struct kvc_op){.type = KVC_OP_GET, .key = keys[i],
                                     .key_len = strlen(keys[i]),
                                     .call = {.consistency = KVC_CL_QUORUM}};
        ck_assert_int_eq(kvc_exec(c, ops, K, &err), KVC_OK);
        for (int i = 0; i < K; i++) {
            ck_assert_msg(ops[i].err.code == KVC_OK, "get %s via node %d: %s", keys[i], n + 1,
                          ops[i].err.msg);
            ck_assert_str_eq((char *)ops[i].result.data, vals[i]);
            kvc_value_free(&ops[i].result);
        }
        kvc_close(c);
    }

    /* The ring, as node 3 reports it, names 3 distinct replicas per key. */
    c = client_at(&g_nodes[2]);
    struct kvc_cluster_status st;
    ck_assert_int_eq(kvc_cluster_status(c, &st, &err), KVC_OK);
    kvc_close(c);
    ck_assert_uint_eq(st.replication_factor, 3);
    static uint32_t reps[K][8];
    for (int i = 0; i < K; i++) {
        ck_assert_uint_eq(replicas_of(&st, keys[i], reps[i]), 3);
        ck_assert(reps[i][0] != reps[i][1] && reps[i][1] != reps[i][2] &&
                  reps[i][0] != reps[i][2]);
    }
    kvc_cluster_status_free(&st);

    /* Local reads on every node: present (same value and version) on the 3 named, absent
     * on the other 2. A QUORUM write acks at 2 copies; the third lands a moment later, so
     * the check retries briefly until every named replica has it. */
    static struct kvc_op loc[N][K];
    int per_node[N] = {0};
    uint64_t t_place = now_ms();
    for (;;) {
        for (int n = 0; n < N; n++)
            local_reads(&g_nodes[n], keys, K, loc[n]);
        int missing = 0;
        for (int i = 0; i < K; i++)
            for (int r = 0; r < 3; r++)
                missing += loc[reps[i][r] - 1][i].err.code != KVC_OK;
        if (!missing || now_ms() - t_place > 3000)
            break;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < K; i++)
                kvc_value_free(&loc[n][i].result);
        usleep(100 * 1000);
    }
    for (int i = 0; i < K; i++) {
        const struct kvc_value *first = NULL;
        for (int n = 0; n < N; n++) {
            uint32_t id = (uint32_t)n + 1;
            bool named = id == reps[i][0] || id == reps[i][1] || id == reps[i][2];
            const struct kvc_op *o = &loc[n][i];
            ck_assert_msg(o->err.code == (named ? KVC_OK : KVC_NOT_FOUND),
                          "%s on node %u: %s, but the ring names [%u,%u,%u]", keys[i], id,
                          kvc_status_name(o->err.code), reps[i][0], reps[i][1], reps[i][2]);
            if (!named)
                continue;
            per_node[n]++;
            ck_assert_str_eq((char *)o->result.data, vals[i]);
            if (!first)
                first = &o->result;
            ck_assert_msg(o->result.version == first->version &&
                          o->result.version_node == first->version_node,
                          "%s: replicas disagree on the version", keys[i]);
        }
    }
    for (int n = 0; n < N; n++)
        for (int i = 0; i < K; i++)
            kvc_value_free(&loc[n][i].result);
    /* A clean exit (0) of every node: under the sanitizers, local reads leaked nothing. */
    for (int n = 0; n < N; n++)
        ck_assert_int_eq(kvd_stop(&g_nodes[n], SIGTERM), 0);
    fprintf(stderr, "five-node test: %d keys, copies per node %d/%d/%d/%d/%d (sum %d = 3 x %d), "
            "%llu ms\n", K, per_node[0], per_node[1], per_node[2], per_node[3], per_node[4],
            per_node[0] + per_node[1] + per_node[2] + per_node[3] + per_node[4], K,
            (unsigned long long)(now_ms() - t0));
}
END_TEST

/* --- a long scan across a kill -9 and restart ------------------------------------------ */

START_TEST(test_a_scan_of_100k_keys_returns_each_once_in_order_across_a_kill_9_and_restart)
{
    uint64_t t0 = now_ms();
    start_cluster();
    struct kvd_proc *n1 = &g_nodes[0], *n3 = &g_nodes[2];
    enum { K = 100000, PAGE = 1000, BATCH = 5000, KILL_AT = 20, RESTART_AT = 50 };
    static struct kvc_op ops[BATCH];
    static char kb[BATCH][16];
    /* Load pipelined at QUORUM (every key on at least 2 of the 3 nodes, so a QUORUM scan
     * with any one node missing still sees it), through a token-aware client. */
    struct kvc_client *c = client_ta(n1);
    struct kvc_err err;
    for (int b = 0; b < K / BATCH; b++) {
        for (int i = 0; i < BATCH; i++) {
            snprintf(kb[i], sizeof kb[i], "s:%06d", b * BATCH + i);
            ops[i] = (struct kvc_op){.type = KVC_OP_PUT, .key = kb[i], .key_len = 8,
                                     .value = kb[i], .value_len = 8,
                                     .call = {.consistency = KVC_CL_QUORUM}};
        }
        ck_assert_int_eq(kvc_exec(c, ops, BATCH, &err), KVC_OK);
        for (int i = 0; i < BATCH; i++)
            ck_assert_msg(ops[i].err.code == KVC_OK, "put %s: %s", kb[i], ops[i].err.msg);
    }
    kvc_close(c);
    uint64_t t_load = now_ms() - t0;

    /* Scan at QUORUM through node 1 (which stays up), 1000 keys a page; node 3 is killed
     * after page 20 and restarted (same data, address and seed) after page 50. */
    c = client_at(n1);
    struct kvc_call q = {.consistency = KVC_CL_QUORUM};
    uint8_t cursor[64];
    size_t cursor_len = 0;
    int next = 0, pages = 0, pages_down = 0;
    uint64_t t_scan = now_ms(), t_killed = 0, t_restarted = 0;
    bool down = false;
    for (;;) {
        struct kvc_scan_args a = {.start = "s:", .start_len = 2, .end = "s;", .end_len = 2,
                                  .limit = PAGE, .cursor = cursor_len ? cursor : NULL,
                                  .cursor_len = cursor_len};
        struct kvc_scan_result r;
        int rc = kvc_scan(c, &a, &q, &r, &err);
        ck_assert_msg(rc == KVC_OK, "page %d (after %d keys, node 3 %s): %s", pages + 1, next,
                      down ? "down" : "up", err.msg);
        pages++;
        pages_down += down;
        ck_assert_uint_le(r.n, PAGE);
        for (size_t i = 0; i < r.n; i++) {
            char want[16];
            snprintf(want, sizeof want, "s:%06d", next);
            ck_assert_msg(r.items[i].key_len == 8 && memcmp(r.items[i].key, want, 8) == 0,
                          "page %d item %zu: '%.*s', want %s (each key once, in order)", pages,
                          i, (int)r.items[i].key_len, (char *)r.items[i].key, want);
            ck_assert_msg(r.items[i].value_len == 8 && memcmp(r.items[i].value, want, 8) == 0,
                          "value of %s", want);
            next++;
        }
        cursor_len = r.cursor_len;
        if (r.cursor) {
            ck_assert_uint_le(r.cursor_len, sizeof cursor);
            memcpy(cursor, r.cursor, r.cursor_len);
        }
        kvc_scan_result_free(&r);
        if (!cursor_len)
            break;
        if (pages == KILL_AT) {
            ck_assert_int_eq(kvd_stop(n3, SIGKILL), 128 + SIGKILL);
            t_killed = now_ms();
            down = true;
        } else if (pages == RESTART_AT) {
            ck_assert_int_eq(kvd_restart(n3), 0);
            t_restarted = now_ms();
            down = false;
        }
        ck_assert_int_lt(pages, 2 * K / PAGE);
    }
    kvc_close(c);
    ck_assert_int_eq(next, K);
    ck_assert_int_ge(pages, K / PAGE);
    ck_assert_msg(t_killed && t_restarted, "the restart happened in the middle of the scan");
    fprintf(stderr, "100k scan test: load %llu ms; %d keys in %d pages (%d while node 3 was "
            "down, %llu ms) in %llu ms; total %llu ms\n", (unsigned long long)t_load, next,
            pages, pages_down, (unsigned long long)(t_restarted - t_killed),
            (unsigned long long)(now_ms() - t_scan), (unsigned long long)(now_ms() - t0));
}
END_TEST

/* --- clock skew ------------------------------------------------------------------------- */

enum { SKEW_KEYS = 50, SKEW_ROUNDS = 8 };

struct skew_write {
    uint64_t call_ns, ret_ns;
    int code;
};

struct skew_writer {
    const struct kvd_proc *p;
    char name;                          /* 'A' or 'B': the values are "A3:17" ... */
    struct skew_write w[SKEW_ROUNDS][SKEW_KEYS];
    char fail[400];                     /* set when the thread could not run */
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One writer thread: every key, every round, at QUORUM through its own coordinator. No
 * ck_assert here (not thread-safe): problems go to fail. */
static void *skew_writer_main(void *arg)
{
    struct skew_writer *sw = arg;
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = sw->p->addr;
    o.token_aware = false;
    o.timeout_ms = 3000;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    if (kvc_connect(&o, &c, &err) != KVC_OK) {
        snprintf(sw->fail, sizeof sw->fail, "connect %s: %s", sw->p->addr, err.msg);
        return NULL;
    }
    struct kvc_call q = {.consistency = KVC_CL_QUORUM};
    for (int r = 0; r < SKEW_ROUNDS; r++)
        for (int k = 0; k < SKEW_KEYS; k++) {
            char key[16], val[16];
            snprintf(key, sizeof key, "clk:%02d", k);
            snprintf(val, sizeof val, "%c%d:%02d", sw->name, r, k);
            struct skew_write *w = &sw->w[r][k];
            w->call_ns = mono_ns();
            w->code = kvc_put(c, key, strlen(key), val, strlen(val), &q, &err);
            w->ret_ns = mono_ns();
        }
    kvc_close(c);
    return NULL;
}

START_TEST(test_skewed_clocks_still_converge_to_one_value_per_key_and_lost_writes_are_counted)
{
    uint64_t t0 = now_ms();
    /* Node 2 runs 3 s ahead, node 3 3 s behind; node 1 is on time. */
    static const char *const ahead[] = {"--debug", "true", "--debug-clock-offset-ms", "3000",
                                        NULL};
    static const char *const behind[] = {"--debug", "true", "--debug-clock-offset-ms", "-3000",
                                         NULL};
    static const char *const *const more[N_NODES] = {NULL, ahead, behind};
    start_nodes(N_NODES, more);
    struct kvd_proc *n1 = &g_nodes[0];

    static struct skew_writer wa, wb;
    memset(&wa, 0, sizeof wa);
    memset(&wb, 0, sizeof wb);
    wa.p = &g_nodes[1];
    wa.name = 'A';
    wb.p = &g_nodes[2];
    wb.name = 'B';
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, skew_writer_main, &wa), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, skew_writer_main, &wb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_msg(!wa.fail[0] && !wb.fail[0], "writers: %s %s", wa.fail, wb.fail);
    uint64_t t_writes = now_ms() - t0;

    /* A QUORUM read of every key through node 1 (blocking read repair of the answerers
     * it compared), then local reads on every node until all three agree. */
    double repairs0 = metric(n1, "kvd_cluster_read_repairs_total");
    static char keys[SKEW_KEYS][32];
    static struct kvc_op qr[SKEW_KEYS];
    for (int k = 0; k < SKEW_KEYS; k++) {
        snprintf(keys[k], sizeof keys[k], "clk:%02d", k);
        qr[k] = (struct kvc_op){.type = KVC_OP_GET, .key = keys[k], .key_len = strlen(keys[k]),
                                .call = {.consistency = KVC_CL_QUORUM}};
    }
    struct kvc_client *c = client_at(n1);
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, qr, SKEW_KEYS, &err), KVC_OK);
    kvc_close(c);
    for (int k = 0; k < SKEW_KEYS; k++)
        ck_assert_msg(qr[k].err.code == KVC_OK, "QUORUM read %s: %s", keys[k], qr[k].err.msg);

    static struct kvc_op loc[N_NODES][SKEW_KEYS];
    uint64_t t_conv = now_ms();
    int differ;
    for (;;) {
        differ = 0;
        for (int n = 0; n < N_NODES; n++)
            local_reads(&g_nodes[n], keys, SKEW_KEYS, loc[n]);
        for (int k = 0; k < SKEW_KEYS; k++)
            for (int n = 1; n < N_NODES; n++) {
                const struct kvc_op *a = &loc[0][k], *b = &loc[n][k];
                differ += a->err.code != KVC_OK || b->err.code != KVC_OK ||
                          a->result.version != b->result.version ||
                          a->result.version_node != b->result.version_node ||
                          strcmp((char *)a->result.data, (char *)b->result.data) != 0;
            }
        if (!differ || now_ms() - t_conv > 5000)
            break;
        for (int n = 0; n < N_NODES; n++)
            for (int k = 0; k < SKEW_KEYS; k++)
                kvc_value_free(&loc[n][k].result);
        usleep(100 * 1000);
    }
    uint64_t conv_ms = now_ms() - t_conv;
    ck_assert_msg(!differ, "%d (key, replica) pairs still differ %llu ms after the writes",
                  differ, (unsigned long long)conv_ms);

    /* Lost to skew: an acknowledged write that started after the surviving write had been
     * acknowledged, yet was overwritten by it (the survivor had the higher clock). */
    int acked = 0, lost = 0, lost_a = 0, lost_b = 0, won_a = 0, won_b = 0, unknown = 0;
    for (int k = 0; k < SKEW_KEYS; k++) {
        const char *v = (char *)loc[0][k].result.data;
        ck_assert_str_eq((char *)qr[k].result.data, v);   /* the read saw the survivor */
        ck_assert_uint_eq(qr[k].result.version, loc[0][k].result.version);
        char who;
        int round, key;
        ck_assert_msg(sscanf(v, "%c%d:%d", &who, &round, &key) == 3 && key == k &&
                      (who == 'A' || who == 'B') && round >= 0 && round < SKEW_ROUNDS,
                      "unexpected value '%s' for %s", v, keys[k]);
        const struct skew_write *win = who == 'A' ? &wa.w[round][k] : &wb.w[round][k];
        who == 'A' ? won_a++ : won_b++;
        for (int r = 0; r < SKEW_ROUNDS; r++)
            for (int side = 0; side < 2; side++) {
                const struct skew_write *w = side ? &wb.w[r][k] : &wa.w[r][k];
                if (w->code != KVC_OK) {
                    unknown++;
                    continue;
                }
                acked++;
                if (win->code == KVC_OK && w->call_ns > win->ret_ns) {
                    lost++;
                    side ? lost_b++ : lost_a++;
                }
            }
        kvc_value_free(&qr[k].result);
    }
    for (int n = 0; n < N_NODES; n++)
        for (int k = 0; k < SKEW_KEYS; k++)
            kvc_value_free(&loc[n][k].result);
    double repairs = metric(n1, "kvd_cluster_read_repairs_total") - repairs0;
    for (int n = 0; n < N_NODES; n++)
        ck_assert_int_eq(kvd_stop(&g_nodes[n], SIGTERM), 0);
    /* TESTING.md lesson 1: measured and reported, never asserted to be 0. */
    fprintf(stderr, "clock skew test (node 2 +3000 ms, node 3 -3000 ms): %d writes acked at "
            "QUORUM, %d not acked; %d acked writes LOST TO SKEW (%d via node 2, %d via node 3: "
            "started after the surviving write was acked, overwritten by its higher clock); "
            "survivors: %d from node 2, %d from node 3; replicas agreed %llu ms after a QUORUM "
            "read of every key (%.0f read repairs); writes %llu ms, total %llu ms\n",
            acked, unknown, lost, lost_a, lost_b, won_a, won_b, (unsigned long long)conv_ms,
            repairs, (unsigned long long)t_writes, (unsigned long long)(now_ms() - t0));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *t = tcase_create("three_nodes");
    tcase_add_checked_fixture(t, NULL, stop_all);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_a_quorum_write_is_readable_from_every_coordinator_and_scans_agree);
    tcase_add_test(t, test_a_paused_replica_times_out_then_is_unavailable_at_all_and_gets_its_hints);
    tcase_add_test(t, test_kill_9_and_restart_bumps_the_generation_and_keeps_the_data);
    tcase_add_test(t, test_a_scan_of_100k_keys_returns_each_once_in_order_across_a_kill_9_and_restart);
    tcase_add_test(t, test_skewed_clocks_still_converge_to_one_value_per_key_and_lost_writes_are_counted);
    suite_add_tcase(s, t);
    TCase *t5 = tcase_create("five_nodes");
    tcase_add_checked_fixture(t5, NULL, stop_all);
    tcase_set_timeout(t5, 120);
    tcase_add_test(t5, test_five_nodes_rf3_every_key_is_readable_everywhere_and_on_exactly_its_replicas);
    suite_add_tcase(s, t5);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *r = srunner_create(suite());
    /* No fork: the fixture must see the kvd PIDs a test started, to stop them on failure. */
    srunner_set_fork_status(r, CK_NOFORK);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
