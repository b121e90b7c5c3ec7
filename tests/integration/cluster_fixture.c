/* tests/integration/cluster_fixture.c -- the shared cluster fixture (cluster_fixture.h). */
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
#include "tests/integration/cluster_fixture.h"

struct kvd_proc g_nodes[MAX_NODES];
char g_hosts[MAX_NODES][24];

void stop_all(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        kvd_cleanup(&g_nodes[i]);
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void pick_hosts(int n)
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
void set_flags_more(struct kvd_proc *p, int i, const char *seeds,
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

/* A client of node p alone, with the suites' timeouts. */
static struct kvc_client *connect_to(const struct kvd_proc *p, bool token_aware)
{
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = p->addr;
    o.token_aware = token_aware;
    o.timeout_ms = 3000;
    o.connect_timeout_ms = 1000;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    int rc = kvc_connect(&o, &c, &err);
    ck_assert_msg(rc == KVC_OK, "connect %s: %s", p->addr, err.msg);
    return c;
}

struct kvc_client *client_at(const struct kvd_proc *p) { return connect_to(p, false); }

/* Node `p`'s view: how many nodes it sees up, and (when id != 0) that node's generation
 * and liveness. -1 when it does not answer. */
int view_of(const struct kvd_proc *p, uint32_t id, uint64_t *gen, bool *up)
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
struct kvc_client *client_ta(const struct kvd_proc *p) { return connect_to(p, true); }

/* Local reads of keys[0..n) on node p, pipelined; ops[i] holds each result (the caller
 * frees ops[i].result when err.code is KVC_OK). */
void local_reads(const struct kvd_proc *p, char (*keys)[32], int n, struct kvc_op *ops)
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
int local_get(const struct kvd_proc *p, const char *k, const char *v)
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
void wait_converged(int n, int want, uint64_t max_ms)
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
void start_nodes(int n, const char *const *const *more)
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

void start_cluster(void) { start_nodes(N_NODES, NULL); }

void put_at(const struct kvd_proc *p, const char *k, const char *v,
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
int get_at(const struct kvd_proc *p, const char *k, enum kvc_consistency cl,
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

Kv__Response *raw_call(const struct kvd_proc *p, Kv__Request *req)
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

Kv__Response *raw_put(const struct kvd_proc *p, const char *k, const char *v,
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

Kv__Response *raw_get(const struct kvd_proc *p, const char *k, Kv__Consistency cl,
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
void check_status(Kv__Response *r, Kv__Status want, const char *what)
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
void wait_view(const struct kvd_proc *p, uint32_t id, bool want, uint64_t max_ms)
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

double metric(const struct kvd_proc *p, const char *series)
{
    double v = -1;
    if (kvd_metric(p, series, &v) != 0)
        return -1;
    return v;
}

/* Waits until series on p satisfies (value >= lo && value <= hi). */
double wait_metric(const struct kvd_proc *p, const char *series, double lo, double hi,
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
int scan_all(const struct kvd_proc *p, const char *start, const char *end,
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
