/* tests/integration/cluster_fixture.h -- real kvd processes forming one cluster, and the
 * calls the cluster integration suites (test_cluster.c, test_cluster_scale.c) share.
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
 * replica the ring names (kv/client.h).
 *
 * (1) Every process is stopped by PID in the fixture (stop_all), even when an assertion
 *     fails (the suites run CK_NOFORK, so the fixture sees the PIDs a test started). */
#ifndef KV_TESTS_CLUSTER_FIXTURE_H
#define KV_TESTS_CLUSTER_FIXTURE_H
#include <stdbool.h>
#include <stdint.h>
#include <kv/client.h>
#include "proto/kv.pb-c.h"
#include "tests/integration/harness.h"

#define N_NODES 3       /* most tests */
#define MAX_NODES 5

extern struct kvd_proc g_nodes[MAX_NODES];
extern char g_hosts[MAX_NODES][24];

void start_cluster(void);
void stop_all(void);
uint64_t now_ms(void);
void pick_hosts(int n);
void set_flags_more(struct kvd_proc *p, int i, const char *seeds,
    const char *const *more);
struct kvc_client *client_at(const struct kvd_proc *p);
int view_of(const struct kvd_proc *p, uint32_t id, uint64_t *gen, bool *up);
struct kvc_client *client_ta(const struct kvd_proc *p);
void local_reads(const struct kvd_proc *p, char (*keys)[32], int n, struct kvc_op *ops);
int local_get(const struct kvd_proc *p, const char *k, const char *v);
void wait_converged(int n, int want, uint64_t max_ms);
void start_nodes(int n, const char *const *const *more);
void put_at(const struct kvd_proc *p, const char *k, const char *v,
    enum kvc_consistency cl);
int get_at(const struct kvd_proc *p, const char *k, enum kvc_consistency cl,
    const char *v);
Kv__Response *raw_call(const struct kvd_proc *p, Kv__Request *req);
Kv__Response *raw_put(const struct kvd_proc *p, const char *k, const char *v,
    Kv__Consistency cl, uint32_t timeout_ms);
Kv__Response *raw_get(const struct kvd_proc *p, const char *k, Kv__Consistency cl,
    uint32_t timeout_ms);
void check_status(Kv__Response *r, Kv__Status want, const char *what);
void wait_view(const struct kvd_proc *p, uint32_t id, bool want, uint64_t max_ms);
double metric(const struct kvd_proc *p, const char *series);
double wait_metric(const struct kvd_proc *p, const char *series, double lo, double hi,
    uint64_t max_ms);
int scan_all(const struct kvd_proc *p, const char *start, const char *end,
    uint32_t page, enum kvc_consistency cl, char keys[][32], int max,
    int *pages);
#endif
