/* tests/integration/test_cluster.c -- three real kvd processes forming one cluster (rf 3).
 *
 * Each node gets its own loopback address (127.0.0.1, .2, .3) when the machine allows it,
 * else all share 127.0.0.1 on distinct ports. Gossip runs every 100 ms, so with the
 * default phi threshold (8) a silent node is marked down after about 1.8 s.
 *
 * Choosing the coordinator: every client here is built with token_aware off and one
 * address, so the node named is the one that coordinates the request.
 *
 * Checking what one replica holds: with rf 3 on three nodes every node is a replica of
 * every key, but a read at ONE through node X may be answered by another replica. So to
 * see node X's own data the test stops it and restarts it *isolated*: same node id and
 * data directory, a new client port nobody knows and no seeds. Its ring is then itself
 * alone (a cluster of one, effective rf 1), so a read at ONE can only come from its own
 * store. That is how hint replay and kill -9 durability are verified below.
 *
 * (1) Every process is stopped by PID in the fixture, even when an assertion fails
 *     (CK_NOFORK, so the fixture sees the PIDs the test started). */
#include <check.h>
#include <errno.h>
#include <poll.h>
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

#define N_NODES 3

static struct kvd_proc g_nodes[N_NODES];
static char g_hosts[N_NODES][16];

static void stop_all(void)
{
    for (int i = 0; i < N_NODES; i++)
        kvd_cleanup(&g_nodes[i]);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pick_hosts(void)
{
    bool own = kvd_host_usable("127.0.0.2") && kvd_host_usable("127.0.0.3");
    for (int i = 0; i < N_NODES; i++)
        snprintf(g_hosts[i], sizeof g_hosts[i], "127.0.0.%d", own ? i + 1 : 1);
}

/* The flags of node i (0-based): id i+1, rf 3, fast gossip; seeds NULL for none. */
static void set_flags(struct kvd_proc *p, int i, const char *seeds)
{
    char id[16];
    snprintf(id, sizeof id, "%d", i + 1);
    const char *f[] = {"--node-id", id, "--replication-factor", "3", "--gossip-interval-ms",
                       "100", "--default-timeout-ms", "2000", "--sync", "batch",
                       seeds ? "--seeds" : NULL, seeds, NULL};
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

static void start_cluster(void)
{
    pick_hosts();
    uint64_t t0 = now_ms();
    for (int i = 0; i < N_NODES; i++) {
        struct kvd_proc tmp;
        memset(&tmp, 0, sizeof tmp);
        set_flags(&tmp, i, i ? g_nodes[0].addr : NULL);
        const char *extra[KVD_MAX_EXTRA + 1];
        for (int j = 0; j < tmp.n_extra; j++)
            extra[j] = tmp.extra[j];
        extra[tmp.n_extra] = NULL;
        ck_assert_msg(kvd_start_on(&g_nodes[i], g_hosts[i], extra) == 0, "start node %d", i + 1);
    }
    wait_converged(N_NODES, N_NODES, 15000);
    fprintf(stderr, "cluster: started on %s, %s, %s in %llu ms\n", g_nodes[0].addr,
            g_nodes[1].addr, g_nodes[2].addr, (unsigned long long)(now_ms() - t0));
}

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

/* Stops node i and starts it again alone: a new client port, no seeds (see the top). */
static void restart_isolated(int i)
{
    struct kvd_proc *p = &g_nodes[i];
    if (p->pid > 0)
        ck_assert_int_eq(kvd_stop(p, SIGTERM), 0);
    ck_assert_int_eq(kvd_move(p), 0);
    set_flags(p, i, NULL);
    ck_assert_int_eq(kvd_restart(p), 0);
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

    /* Node 3 itself has the hinted writes: restarted alone, it answers ONE from its own
     * store (see the top of this file). */
    restart_isolated(2);
    ck_assert_int_eq(view_of(n3, 0, NULL, NULL), 1);
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "hint:%02d", i);
        snprintf(v, sizeof v, "v%d", i);
        ck_assert_msg(get_at(n3, k, KVC_CL_ONE, v) == KVC_OK, "%s missing on node 3", k);
    }
    ck_assert_int_eq(get_at(n3, "q:1", KVC_CL_ONE, "one"), KVC_OK);
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

    /* Node 3, restarted alone: a higher generation, and every acknowledged write. */
    int port = n3->port;
    char addr[64];
    snprintf(addr, sizeof addr, "%s", n3->addr);
    restart_isolated(2);
    uint64_t gen1 = 0;
    ck_assert_int_eq(view_of(n3, 3, &gen1, &up), 1);
    ck_assert_msg(gen1 > gen0, "generation %llu after restart, %llu before",
                  (unsigned long long)gen1, (unsigned long long)gen0);
    for (int i = 0; i < 30; i++) {
        snprintf(k, sizeof k, "d:%02d", i);
        snprintf(v, sizeof v, "val%d", i);
        ck_assert_int_eq(get_at(n3, k, KVC_CL_ONE, v), KVC_OK);
    }

    /* Back at its own address with its seed: the others see the new generation, up. */
    ck_assert_int_eq(kvd_stop(n3, SIGTERM), 0);
    n3->port = port;
    snprintf(n3->addr, sizeof n3->addr, "%s", addr);
    set_flags(n3, 2, n1->addr);
    ck_assert_int_eq(kvd_restart(n3), 0);
    uint64_t back = now_ms(), gen2 = 0;
    for (;;) {
        up = false;
        if (view_of(n1, 3, &gen2, &up) >= 0 && up && gen2 > gen1)
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

static Suite *suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *t = tcase_create("three_nodes");
    tcase_add_checked_fixture(t, NULL, stop_all);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_a_quorum_write_is_readable_from_every_coordinator_and_scans_agree);
    tcase_add_test(t, test_a_paused_replica_times_out_then_is_unavailable_at_all_and_gets_its_hints);
    tcase_add_test(t, test_kill_9_and_restart_bumps_the_generation_and_keeps_the_data);
    suite_add_tcase(s, t);
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
