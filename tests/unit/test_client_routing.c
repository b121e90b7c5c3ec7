/* tests/unit/test_client_routing.c -- token-aware routing of libkvclient over a fake cluster.
 *
 * A fake cluster is three fake servers (threads listening on 127.0.0.1, port 0) that
 * answer cluster_status with a ring the test scripts, answer every other request at
 * once (a get's value names the node: "n2:key"), and record which node received which
 * op. A node can be stopped (its sockets closed, connects refused) to play a failure.
 * The ring lookup itself (route.c) is tested directly at the end. */
#include <arpa/inet.h>
#include <check.h>
#include "tests/check_run.h"
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "client/internal.h"
#include "kv/client.h"
#include "proto/codec.h"
#include "proto/frame.h"
#include "tests/unit/client_fixture.h"

#define NNODES 3
#define MAX_RANGES 8
#define MAX_LOG 128

/* --- the fake cluster ---------------------------------------------------------------------- */

struct fring {
    struct { const char *start, *end; uint32_t reps[NNODES]; size_t nrep; } r[MAX_RANGES];
    size_t n;
};

struct fcluster;
struct fnode {
    struct fcluster *cl;
    uint32_t id;                /* 1..NNODES */
    int lfd;
    int port;
    char addr[32];
    pthread_t th;
    atomic_bool stop;
    /* under cl->mu */
    char log[MAX_LOG][24];      /* "get:k", "put:k", "del:k", "scan:start" */
    int nlog;
    int status_reqs;
    int conns;
    int last_consistency;
};

struct fcluster {
    pthread_mutex_t mu;
    struct fnode nodes[NNODES];
    struct fring ring;          /* under mu */
    bool down[NNODES + 1];      /* by id: what cluster_status says; under mu */
    bool invalid_status;        /* answer cluster_status with INVALID_ARGUMENT */
};

static ProtobufCBinaryData pbin(const char *s)
{
    ProtobufCBinaryData b = {strlen(s), (uint8_t *)(uintptr_t)s};
    return b;
}

/* The scripted ring as this node would answer it (caller holds cl->mu). */
static void answer_status(struct fnode *n, int fd, uint64_t id)
{
    struct fcluster *cl = n->cl;
    Kv__Response r = KV__RESPONSE__INIT;
    r.id = id;
    if (cl->invalid_status) {
        r.status = KV__STATUS__INVALID_ARGUMENT;
        r.message = "unknown request type";
        fake_send_resp(fd, &r, false);
        return;
    }
    Kv__ClusterStatus st = KV__CLUSTER_STATUS__INIT;
    Kv__NodeView views[NNODES], *pviews[NNODES];
    Kv__NodeState states[NNODES];
    ProtobufCBinaryData tokens[NNODES][MAX_RANGES];
    Kv__RangeView ranges[MAX_RANGES], *pranges[MAX_RANGES];
    for (int i = 0; i < NNODES; i++) {
        kv__node_view__init(&views[i]);
        kv__node_state__init(&states[i]);
        struct fnode *m = &cl->nodes[i];
        states[i].id = m->id;
        states[i].addr = m->addr;
        states[i].http = "127.0.0.1:1";
        states[i].region = "r1";
        states[i].rack = i % 2 ? "b" : "a";
        states[i].generation = 100 + m->id;
        states[i].version = 7;
        states[i].load_bytes = 1000 * m->id;
        states[i].hints_pending = m->id - 1;
        states[i].status =
            m->id == 3 ? KV__NODE_STATUS__NODE_JOINING : KV__NODE_STATUS__NODE_NORMAL;
        states[i].tokens = tokens[i];
        for (size_t k = 0; k < cl->ring.n; k++)   /* a node owns the ends it is first for */
            if (cl->ring.r[k].reps[0] == m->id && cl->ring.r[k].end[0])
                tokens[i][states[i].n_tokens++] = pbin(cl->ring.r[k].end);
        views[i].state = &states[i];
        views[i].up = !cl->down[m->id];
        views[i].phi = cl->down[m->id] ? 12.5 : 0.25;
        pviews[i] = &views[i];
    }
    for (size_t k = 0; k < cl->ring.n; k++) {
        kv__range_view__init(&ranges[k]);
        ranges[k].start = pbin(cl->ring.r[k].start);
        ranges[k].end = pbin(cl->ring.r[k].end);
        ranges[k].replicas = cl->ring.r[k].reps;
        ranges[k].n_replicas = cl->ring.r[k].nrep;
        pranges[k] = &ranges[k];
    }
    st.self = n->id;
    st.replication_factor = 3;
    st.nodes = pviews;
    st.n_nodes = NNODES;
    st.ranges = pranges;
    st.n_ranges = cl->ring.n;
    r.result_case = KV__RESPONSE__RESULT_CLUSTER_STATUS;
    r.cluster_status = &st;
    fake_send_resp(fd, &r, false);
}

static void record(struct fnode *n, const char *op, ProtobufCBinaryData key, int consistency)
{
    if (n->nlog < MAX_LOG)
        snprintf(n->log[n->nlog++], sizeof n->log[0], "%s:%.*s", op, (int)key.len, key.data);
    n->last_consistency = consistency;
}

static void answer(struct fnode *n, int fd, const Kv__Request *req)
{
    Kv__Response r = KV__RESPONSE__INIT;
    Kv__GetResponse g = KV__GET_RESPONSE__INIT;
    Kv__WriteResponse w = KV__WRITE_RESPONSE__INIT;
    Kv__ScanResponse s = KV__SCAN_RESPONSE__INIT;
    char val[64];
    r.id = req->id;
    pthread_mutex_lock(&n->cl->mu);
    switch (req->op_case) {
    case KV__REQUEST__OP_CLUSTER_STATUS:
        n->status_reqs++;
        answer_status(n, fd, req->id);
        pthread_mutex_unlock(&n->cl->mu);
        return;
    case KV__REQUEST__OP_GET:
        record(n, req->get->local ? "lget" : "get", req->get->key, (int)req->consistency);
        snprintf(val, sizeof val, "n%u:%.*s", n->id, (int)req->get->key.len, req->get->key.data);
        g.value = pbin(val);
        r.result_case = KV__RESPONSE__RESULT_GET;
        r.get = &g;
        break;
    case KV__REQUEST__OP_PUT:
        record(n, "put", req->put->key, (int)req->consistency);
        r.result_case = KV__RESPONSE__RESULT_WRITE;
        r.write = &w;
        break;
    case KV__REQUEST__OP_DEL:
        record(n, "del", req->del->key, (int)req->consistency);
        r.result_case = KV__RESPONSE__RESULT_WRITE;
        r.write = &w;
        break;
    case KV__REQUEST__OP_SCAN:
        record(n, "scan", req->scan->start, (int)req->consistency);
        r.result_case = KV__RESPONSE__RESULT_SCAN;
        r.scan = &s;
        break;
    default:
        r.status = KV__STATUS__INVALID_ARGUMENT;
        break;
    }
    pthread_mutex_unlock(&n->cl->mu);
    fake_send_resp(fd, &r, false);
}

/* Serves every connection (the client may hold one while opening another) until stop. */
static void *fnode_main(void *arg)
{
    struct fnode *n = arg;
    struct pollfd p[9];
    nfds_t np = 1;
    p[0] = (struct pollfd){.fd = n->lfd, .events = POLLIN};
    while (!atomic_load(&n->stop)) {
        if (poll(p, np, 10) <= 0)
            continue;
        if ((p[0].revents & POLLIN) && np < 9) {
            int fd = accept(n->lfd, NULL, NULL);
            if (fd >= 0) {
                pthread_mutex_lock(&n->cl->mu);
                n->conns++;
                pthread_mutex_unlock(&n->cl->mu);
                p[np++] = (struct pollfd){.fd = fd, .events = POLLIN};
            }
        }
        for (nfds_t k = 1; k < np; k++) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            Kv__Request *req = fake_read_req(p[k].fd);
            if (!req) {
                close(p[k].fd);
                p[k--] = p[--np];
                continue;
            }
            answer(n, p[k].fd, req);
            kv__request__free_unpacked(req, NULL);
        }
    }
    for (nfds_t k = 1; k < np; k++)
        close(p[k].fd);
    return NULL;
}

static void cluster_start(struct fcluster *cl)
{
    memset(cl, 0, sizeof *cl);
    pthread_mutex_init(&cl->mu, NULL);
    for (int i = 0; i < NNODES; i++) {
        struct fnode *n = &cl->nodes[i];
        n->cl = cl;
        n->id = (uint32_t)i + 1;
        n->lfd = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(n->lfd, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        ck_assert_int_eq(bind(n->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
        ck_assert_int_eq(listen(n->lfd, 8), 0);
        socklen_t len = sizeof sa;
        getsockname(n->lfd, (struct sockaddr *)&sa, &len);
        n->port = ntohs(sa.sin_port);
        snprintf(n->addr, sizeof n->addr, "127.0.0.1:%d", n->port);
        ck_assert_int_eq(pthread_create(&n->th, NULL, fnode_main, n), 0);
    }
}

/* Stops node id: its connections close and new connects are refused. */
static void node_stop(struct fcluster *cl, uint32_t id)
{
    struct fnode *n = &cl->nodes[id - 1];
    if (atomic_exchange(&n->stop, true))
        return;
    pthread_join(n->th, NULL);
    close(n->lfd);
}

static void cluster_stop(struct fcluster *cl)
{
    for (uint32_t id = 1; id <= NNODES; id++)
        node_stop(cl, id);
    pthread_mutex_destroy(&cl->mu);
}

static void set_ring(struct fcluster *cl, const struct fring *r)
{
    pthread_mutex_lock(&cl->mu);
    cl->ring = *r;
    pthread_mutex_unlock(&cl->mu);
}

/* ("", g] -> [1,2,3], (g, p] -> [2,3,1], (p, ""] -> [3,1,2] */
static const struct fring three_ranges = {
    .r = {{"", "g", {1, 2, 3}, 3}, {"g", "p", {2, 3, 1}, 3}, {"p", "", {3, 1, 2}, 3}},
    .n = 3,
};

/* Whether node id logged entry (e.g. "get:a"); under the lock. */
static bool got(struct fcluster *cl, uint32_t id, const char *entry)
{
    pthread_mutex_lock(&cl->mu);
    bool found = false;
    struct fnode *n = &cl->nodes[id - 1];
    for (int i = 0; i < n->nlog && !found; i++)
        found = strcmp(n->log[i], entry) == 0;
    pthread_mutex_unlock(&cl->mu);
    return found;
}

static int nlog(struct fcluster *cl, uint32_t id)
{
    pthread_mutex_lock(&cl->mu);
    int n = cl->nodes[id - 1].nlog;
    pthread_mutex_unlock(&cl->mu);
    return n;
}

static struct kvc_client *connect_opts(struct fcluster *cl, const char *seeds_of,
                                       struct kvc_opts *o)
{
    char addrs[128] = "";
    for (const char *p = seeds_of; *p; p++) {   /* "13": nodes 1 and 3 */
        size_t len = strlen(addrs);
        snprintf(addrs + len, sizeof addrs - len, "%s%s", len ? "," : "",
                 cl->nodes[*p - '1'].addr);
    }
    o->addrs = addrs;
    o->connect_timeout_ms = 1000;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    int rc = kvc_connect(o, &c, &err);
    ck_assert_msg(rc == KVC_OK, "connect %s: %s", addrs, err.msg);
    return c;
}

static struct kvc_client *connect_seeds(struct fcluster *cl, const char *seeds_of)
{
    struct kvc_opts o;
    kvc_opts_default(&o);
    return connect_opts(cl, seeds_of, &o);
}

/* A get of key that must succeed; returns the number of the node that answered. */
static int get_from(struct kvc_client *c, const char *key)
{
    struct kvc_value v;
    struct kvc_err err;
    int rc = kvc_get(c, key, strlen(key), &v, NULL, &err);
    ck_assert_msg(rc == KVC_OK, "get %s: %s", key, err.msg);
    ck_assert_int_eq(v.data[0], 'n');
    int node = v.data[1] - '0';
    ck_assert_str_eq((const char *)v.data + 3, key);
    kvc_value_free(&v);
    return node;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* --- routing ------------------------------------------------------------------------------- */

START_TEST(test_routing_each_key_goes_to_the_first_replica_of_its_range)
{
    struct fcluster cl;
    cluster_start(&cl);
    set_ring(&cl, &three_ranges);
    struct kvc_client *c = connect_seeds(&cl, "1");   /* only node 1 is given */
    ck_assert_int_eq(get_from(c, "a"), 1);
    ck_assert_int_eq(get_from(c, "g"), 1);            /* ends are inclusive */
    ck_assert_int_eq(get_from(c, "g\x01"), 2);        /* just after "g" */
    ck_assert_int_eq(get_from(c, "ga"), 2);
    ck_assert_int_eq(get_from(c, "p"), 2);
    ck_assert_int_eq(get_from(c, "pa"), 3);
    ck_assert_int_eq(get_from(c, "zzzz"), 3);         /* the last range runs to the end */
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "h", 1, "v", 1, NULL, &err), KVC_OK);
    ck_assert_int_eq(kvc_delete(c, "q", 1, NULL, &err), KVC_OK);
    struct kvc_scan_args sa = {.start = "k", .start_len = 1};
    struct kvc_scan_result sr;
    ck_assert_int_eq(kvc_scan(c, &sa, NULL, &sr, &err), KVC_OK);
    kvc_scan_result_free(&sr);
    struct kvc_scan_args all = {0};                   /* from the first key: range 1 */
    ck_assert_int_eq(kvc_scan(c, &all, NULL, &sr, &err), KVC_OK);
    kvc_scan_result_free(&sr);
    kvc_close(c);
    ck_assert(got(&cl, 2, "put:h"));
    ck_assert(got(&cl, 3, "del:q"));
    ck_assert(got(&cl, 2, "scan:k"));
    ck_assert(got(&cl, 1, "scan:"));
    ck_assert_int_eq(nlog(&cl, 1), 3);
    ck_assert_int_eq(nlog(&cl, 2), 5);
    ck_assert_int_eq(nlog(&cl, 3), 3);
    cluster_stop(&cl);
}
END_TEST

START_TEST(test_routing_a_closed_first_replica_sends_new_ops_to_the_next_one)
{
    struct fcluster cl;
    cluster_start(&cl);
    set_ring(&cl, &three_ranges);
    struct kvc_client *c = connect_seeds(&cl, "1");
    node_stop(&cl, 2);   /* before the client ever connected to it */
    ck_assert_int_eq(get_from(c, "h"), 3);
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "i", 1, "v", 1, NULL, &err), KVC_OK);
    ck_assert(got(&cl, 3, "put:i"));
    kvc_close(c);
    cluster_stop(&cl);
}
END_TEST

START_TEST(test_routing_a_lost_write_is_not_resent_and_the_next_one_goes_on)
{
    struct fcluster cl;
    cluster_start(&cl);
    set_ring(&cl, &three_ranges);
    struct kvc_client *c = connect_seeds(&cl, "1");
    ck_assert_int_eq(get_from(c, "h"), 2);   /* opens the connection to node 2 */
    node_stop(&cl, 2);
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "h", 1, "v", 1, NULL, &err), KVC_CONN);
    ck_assert_ptr_nonnull(strstr(err.msg, "outcome unknown"));
    ck_assert(!got(&cl, 3, "put:h"));        /* never resent */
    ck_assert_int_eq(kvc_put(c, "h", 1, "w", 1, NULL, &err), KVC_OK);
    ck_assert(got(&cl, 3, "put:h"));
    ck_assert_int_eq(get_from(c, "j"), 3);
    kvc_close(c);
    cluster_stop(&cl);
}
END_TEST

START_TEST(test_routing_a_lost_get_is_retried_once_on_the_next_replica)
{
    struct fcluster cl;
    cluster_start(&cl);
    set_ring(&cl, &three_ranges);
    struct kvc_client *c = connect_seeds(&cl, "1");
    ck_assert_int_eq(get_from(c, "h"), 2);
    node_stop(&cl, 2);
    ck_assert_int_eq(get_from(c, "h"), 3);
    kvc_close(c);
    cluster_stop(&cl);
}
END_TEST

START_TEST(test_routing_a_replica_the_ring_calls_down_is_skipped)
{
    struct fcluster cl;
    cluster_start(&cl);
    set_ring(&cl, &three_ranges);
    cl.down[2] = true;
    struct kvc_client *c = connect_seeds(&cl, "1");
    ck_assert_int_eq(get_from(c, "h"), 3);
    ck_assert_int_eq(get_from(c, "a"), 1);
    kvc_close(c);
    cluster_stop(&cl);
}
END_TEST

/* A local get of key through c: KVC_OK and the answering node's number, or the status. */
static int local_get(struct kvc_client *c, const char *key, struct kvc_err *err)
{
    struct kvc_call call = {.local = true, .consistency = KVC_CL_QUORUM};
    struct kvc_value v;
    int rc = kvc_get(c, key, strlen(key), &v, &call, err);
    if (rc != KVC_OK)
        return rc;
    int node = v.data[1] - '0';
    kvc_value_free(&v);
    return node;
}

START_TEST(test_routing_a_local_read_goes_to_the_first_address_not_to_the_replica)
{
    struct fcluster cl;
    cluster_start(&cl);
    set_ring(&cl, &three_ranges);
    cl.down[1] = true;   /* even a node the ring calls down is asked: it was named */
    struct kvc_client *c = connect_seeds(&cl, "13");
    struct kvc_err err;
    ck_assert_int_eq(local_get(c, "h", &err), 1);    /* the ring says node 2 */
    ck_assert_int_eq(local_get(c, "q", &err), 1);    /* the ring says node 3 */
    ck_assert(got(&cl, 1, "lget:h") && got(&cl, 1, "lget:q"));
    ck_assert_int_eq(get_from(c, "h"), 2);           /* a normal get is still routed */
    ck_assert_int_eq(nlog(&cl, 3), 0);
    /* Pipelined too: every local op to node 1, the others by the ring. */
    static struct kvc_op ops[6];
    static const char *keys[6] = {"a", "h", "q", "b", "i", "r"};
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < 6; i++)
        ops[i] = (struct kvc_op){.type = KVC_OP_GET, .key = keys[i], .key_len = 1,
                                 .call = {.local = i < 3}};
    ck_assert_int_eq(kvc_exec(c, ops, 6, &err), KVC_OK);
    static const int want[6] = {1, 1, 1, 2, 2, 3};   /* "b": node 1 is called down */
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(ops[i].err.code, KVC_OK);
        ck_assert_int_eq(ops[i].result.data[1] - '0', want[i]);
        kvc_value_free(&ops[i].result);
    }
    /* A local read is refused for anything but a get, before anything is sent. */
    struct kvc_call lc = {.local = true};
    ck_assert_int_eq(kvc_put(c, "h", 1, "v", 1, &lc, &err), KVC_INVALID);
    ck_assert_int_eq(kvc_delete(c, "h", 1, &lc, &err), KVC_INVALID);
    /* The named node gone: the read fails, it is never answered by another node. */
    node_stop(&cl, 1);
    int before2 = nlog(&cl, 2), before3 = nlog(&cl, 3);
    ck_assert_int_eq(local_get(c, "h", &err), KVC_CONN);
    ck_assert_int_eq(local_get(c, "a", &err), KVC_CONN);
    ck_assert_int_eq(nlog(&cl, 2), before2);
    ck_assert_int_eq(nlog(&cl, 3), before3);
    ck_assert_int_eq(get_from(c, "a"), 2);           /* a normal get fails over */
    kvc_close(c);
    cluster_stop(&cl);
}
END_TEST

START_TEST(test_routing_a_local_read_in_plain_mode_never_fails_over_to_the_next_seed)
{
    struct fcluster cl;
    cluster_start(&cl);
    set_ring(&cl, &three_ranges);
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.token_aware = false;
    struct kvc_client *c = connect_opts(&cl, "23", &o);
    struct kvc_err err;
    ck_assert_int_eq(local_get(c, "a", &err), 2);
    node_stop(&cl, 2);
    ck_assert_int_eq(local_get(c, "a", &err), KVC_CONN);
    ck_assert_int_eq(nlog(&cl, 3), 0);
    ck_assert_int_eq(get_from(c, "a"), 3);
    kvc_close(c);
    cluster_stop(&cl);
}
END_TEST

START_TEST(test_routing_ring_refresh_picks_up_a_change)
{
    struct fcluster cl;
    cluster_start(&cl);
    const struct fring on1 = {.r = {{"", "", {1, 2}, 2}}, .n = 1};
    const struct fring on2 = {.r = {{"", "", {2, 1}, 2}}, .n = 1};
    set_ring(&cl, &on1);
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.ring_refresh_ms = 50;
    struct kvc_client *c = connect_opts(&cl, "1", &o);
    ck_assert_int_eq(get_from(c, "k"), 1);
    set_ring(&cl, &on2);
    int node = 1;
    for (int i = 0; i < 100 && node == 1; i++) {   /* the refresh runs behind the calls */
        sleep_ms(10);
        node = get_from(c, "k");
    }
    ck_assert_int_eq(node, 2);
    kvc_close(c);
    pthread_mutex_lock(&cl.mu);
    ck_assert_int_ge(cl.nodes[0].status_reqs, 2);
    pthread_mutex_unlock(&cl.mu);
    cluster_stop(&cl);
}
END_TEST

START_TEST(test_routing_unknown_cluster_status_falls_back_to_plain_mode)
{
    struct fcluster cl;
    cluster_start(&cl);
    set_ring(&cl, &three_ranges);
    cl.invalid_status = true;   /* an older server */
    struct kvc_client *c = connect_seeds(&cl, "12");
    ck_assert_int_eq(get_from(c, "a"), 1);
    ck_assert_int_eq(get_from(c, "h"), 1);
    ck_assert_int_eq(get_from(c, "z"), 1);
    struct kvc_cluster_status st;
    struct kvc_err err;
    ck_assert_int_eq(kvc_cluster_status(c, &st, &err), KVC_INVALID);
    ck_assert_uint_eq(st.n_nodes, 0);
    ck_assert_ptr_null(st.nodes);
    /* Plain failover still works: node 1 goes away, the next address takes over. */
    node_stop(&cl, 1);
    ck_assert_int_eq(get_from(c, "a"), 2);
    kvc_close(c);
    pthread_mutex_lock(&cl.mu);
    ck_assert_int_eq(cl.nodes[2].conns, 0);
    pthread_mutex_unlock(&cl.mu);
    cluster_stop(&cl);
}
END_TEST

START_TEST(test_routing_off_sends_everything_to_the_seed_and_never_asks_for_the_ring)
{
    struct fcluster cl;
    cluster_start(&cl);
    set_ring(&cl, &three_ranges);
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.token_aware = false;
    struct kvc_client *c = connect_opts(&cl, "1", &o);
    ck_assert_int_eq(get_from(c, "h"), 1);
    ck_assert_int_eq(get_from(c, "z"), 1);
    kvc_close(c);
    pthread_mutex_lock(&cl.mu);
    ck_assert_int_eq(cl.nodes[0].status_reqs, 0);
    pthread_mutex_unlock(&cl.mu);
    cluster_stop(&cl);
}
END_TEST

START_TEST(test_routing_pipelined_ops_spread_over_every_connection_and_complete)
{
    struct fcluster cl;
    cluster_start(&cl);
    set_ring(&cl, &three_ranges);
    struct kvc_client *c = connect_seeds(&cl, "1");
    static const char *keys[] = {"a", "h", "q", "b", "i", "r", "c", "j", "s"};
    struct kvc_op ops[9];
    memset(ops, 0, sizeof ops);
    struct kvc_err err;
    for (int i = 0; i < 9; i++) {
        ops[i].type = KVC_OP_GET;
        ops[i].key = keys[i];
        ops[i].key_len = 1;
        ops[i].call.consistency = KVC_CL_ONE;
        ck_assert_int_eq(kvc_submit(c, &ops[i], NULL, NULL, &err), KVC_OK);
    }
    ck_assert_uint_eq(kvc_pending(c), 9);
    struct pollfd fds[8];
    ck_assert_uint_eq(kvc_fds(c, fds, 8), 3);         /* one socket per node */
    ck_assert_uint_eq(kvc_fds(c, fds, 1), 3);         /* the count even when cut short */
    ck_assert(kvc_want_write(c));
    while (kvc_pending(c))
        ck_assert_int_ge(kvc_poll(c, 1000, &err), 0);
    for (int i = 0; i < 9; i++) {
        ck_assert_msg(ops[i].err.code == KVC_OK, "op %d: %s", i, ops[i].err.msg);
        ck_assert_int_eq(ops[i].result.data[1] - '0', i % 3 + 1);
        kvc_value_free(&ops[i].result);
    }
    kvc_close(c);
    pthread_mutex_lock(&cl.mu);
    for (int i = 0; i < NNODES; i++)
        ck_assert_int_eq(cl.nodes[i].last_consistency, KVC_CL_ONE);
    pthread_mutex_unlock(&cl.mu);
    cluster_stop(&cl);
}
END_TEST

START_TEST(test_routing_at_max_conns_an_idle_socket_is_closed_for_a_new_one)
{
    struct fcluster cl;
    cluster_start(&cl);
    set_ring(&cl, &three_ranges);
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.max_conns = 1;
    struct kvc_client *c = connect_opts(&cl, "1", &o);
    ck_assert_int_eq(get_from(c, "h"), 2);
    ck_assert_int_eq(get_from(c, "q"), 3);
    ck_assert_int_eq(get_from(c, "a"), 1);
    struct pollfd fds[4];
    ck_assert_uint_eq(kvc_fds(c, fds, 4), 1);
    kvc_close(c);
    cluster_stop(&cl);
}
END_TEST

START_TEST(test_routing_cluster_status_comes_back_as_plain_structs)
{
    struct fcluster cl;
    cluster_start(&cl);
    set_ring(&cl, &three_ranges);
    struct kvc_client *c = connect_seeds(&cl, "2");
    struct kvc_cluster_status st;
    struct kvc_err err;
    ck_assert_int_eq(kvc_cluster_status(c, &st, &err), KVC_OK);
    ck_assert_uint_eq(st.self, 2);
    ck_assert_uint_eq(st.replication_factor, 3);
    ck_assert_uint_eq(st.n_nodes, 3);
    const struct kvc_node_info *n1 = &st.nodes[0], *n3 = &st.nodes[2];
    ck_assert_uint_eq(n1->id, 1);
    ck_assert_str_eq(n1->addr, cl.nodes[0].addr);
    ck_assert_str_eq(n1->region, "r1");
    ck_assert_str_eq(n1->rack, "a");
    ck_assert(n1->up);
    ck_assert_uint_eq(n1->generation, 101);
    ck_assert_uint_eq(n1->load_bytes, 1000);
    ck_assert_str_eq(n1->status, "normal");
    ck_assert_str_eq(n3->status, "joining");
    ck_assert_uint_eq(n3->hints_pending, 2);
    ck_assert_uint_eq(n1->n_tokens, 1);
    ck_assert_str_eq((const char *)n1->tokens[0].data, "g");
    ck_assert_uint_eq(st.n_ranges, 3);
    ck_assert_uint_eq(st.ranges[1].start.len, 1);
    ck_assert_str_eq((const char *)st.ranges[1].end.data, "p");
    ck_assert_uint_eq(st.ranges[2].end.len, 0);
    ck_assert_uint_eq(st.ranges[1].n_replicas, 3);
    ck_assert_uint_eq(st.ranges[1].replicas[0], 2);
    kvc_cluster_status_free(&st);
    ck_assert_ptr_null(st.nodes);
    kvc_cluster_status_free(NULL);
    kvc_close(c);
    cluster_stop(&cl);
}
END_TEST

/* --- the ring lookup (route.c) ---------------------------------------------------------------- */

static uint32_t rep1[] = {1}, rep2[] = {2}, rep3[] = {3};

/* A status with ranges ending at ends[i] (NULL: ""), replicas {i + 1}. */
static void ring_of(struct kvc__ring *ring, const char *const *ends, size_t n)
{
    struct kvc_range_info ri[4];
    uint32_t *reps[] = {rep1, rep2, rep3, rep1};
    memset(ri, 0, sizeof ri);
    for (size_t i = 0; i < n; i++) {
        ri[i].end.data = (uint8_t *)(uintptr_t)(ends[i] ? ends[i] : "");
        ri[i].end.len = ends[i] ? strlen(ends[i]) : 0;
        ri[i].replicas = reps[i];
        ri[i].n_replicas = 1;
    }
    struct kvc_cluster_status st = {.ranges = ri, .n_ranges = n};
    ck_assert_int_eq(kvc__ring_build(&st, ring), KVC_OK);
}

static uint32_t owner(const struct kvc__ring *ring, const void *key, size_t len)
{
    const struct kvc__range *r = kvc__ring_find(ring, key, len);
    ck_assert_ptr_nonnull(r);
    return r->replicas[0];
}

START_TEST(test_ring_lookup_orders_keys_by_memcmp_with_a_shorter_prefix_first)
{
    const char *ends[] = {"ab", "ab\x01", NULL};
    struct kvc__ring ring;
    ring_of(&ring, ends, 3);
    ck_assert_uint_eq(owner(&ring, "a", 1), 1);
    ck_assert_uint_eq(owner(&ring, "ab", 2), 1);           /* inclusive end */
    ck_assert_uint_eq(owner(&ring, "ab\x00", 3), 2);       /* longer than "ab": after it */
    ck_assert_uint_eq(owner(&ring, "ab\x01", 3), 2);
    ck_assert_uint_eq(owner(&ring, "ab\x01\x00", 4), 3);
    ck_assert_uint_eq(owner(&ring, "\xff\xff", 2), 3);     /* unsigned bytes: 0xff is high */
    ck_assert_uint_eq(owner(&ring, "", 0), 1);
    kvc__ring_free(&ring);
    ck_assert_uint_eq(ring.n, 0);
    ck_assert_ptr_null(kvc__ring_find(&ring, "a", 1));
}
END_TEST

START_TEST(test_ring_lookup_wraps_to_the_first_range_past_the_last_token)
{
    const char *ends[] = {"m", "f"};   /* out of order on purpose: the ring sorts */
    struct kvc__ring ring;
    ring_of(&ring, ends, 2);
    ck_assert_uint_eq(owner(&ring, "a", 1), 2);
    ck_assert_uint_eq(owner(&ring, "g", 1), 1);
    ck_assert_uint_eq(owner(&ring, "z", 1), 2);            /* after "m": wraps to ("", f] */
    kvc__ring_free(&ring);
}
END_TEST

START_TEST(test_ring_lookup_puts_an_empty_end_after_every_key)
{
    const char *ends[] = {NULL, "k"};
    struct kvc__ring ring;
    ring_of(&ring, ends, 2);
    ck_assert_uint_eq(owner(&ring, "k", 1), 2);
    ck_assert_uint_eq(owner(&ring, "k\x00", 2), 1);
    ck_assert_uint_eq(owner(&ring, "\xff\xff\xff", 3), 1);
    kvc__ring_free(&ring);
}
END_TEST

static Suite *routing_suite(void)
{
    Suite *s = suite_create("client_routing");
    TCase *tc = tcase_create("routing");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_routing_each_key_goes_to_the_first_replica_of_its_range);
    tcase_add_test(tc, test_routing_a_closed_first_replica_sends_new_ops_to_the_next_one);
    tcase_add_test(tc, test_routing_a_lost_write_is_not_resent_and_the_next_one_goes_on);
    tcase_add_test(tc, test_routing_a_lost_get_is_retried_once_on_the_next_replica);
    tcase_add_test(tc, test_routing_a_replica_the_ring_calls_down_is_skipped);
    tcase_add_test(tc, test_routing_a_local_read_goes_to_the_first_address_not_to_the_replica);
    tcase_add_test(tc, test_routing_a_local_read_in_plain_mode_never_fails_over_to_the_next_seed);
    tcase_add_test(tc, test_routing_ring_refresh_picks_up_a_change);
    tcase_add_test(tc, test_routing_unknown_cluster_status_falls_back_to_plain_mode);
    tcase_add_test(tc, test_routing_off_sends_everything_to_the_seed_and_never_asks_for_the_ring);
    tcase_add_test(tc, test_routing_pipelined_ops_spread_over_every_connection_and_complete);
    tcase_add_test(tc, test_routing_at_max_conns_an_idle_socket_is_closed_for_a_new_one);
    tcase_add_test(tc, test_routing_cluster_status_comes_back_as_plain_structs);
    suite_add_tcase(s, tc);
    TCase *rt = tcase_create("ring");
    tcase_add_test(rt, test_ring_lookup_orders_keys_by_memcmp_with_a_shorter_prefix_first);
    tcase_add_test(rt, test_ring_lookup_wraps_to_the_first_range_past_the_last_token);
    tcase_add_test(rt, test_ring_lookup_puts_an_empty_end_after_every_key);
    suite_add_tcase(s, rt);
    return s;
}

int main(void)
{
    return kv_check_run(routing_suite(), true);
}
