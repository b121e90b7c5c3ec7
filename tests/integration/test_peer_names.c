/* tests/integration/test_peer_names.c -- peers addressed by host name, not by IP.
 *
 * Two real kvd processes (rf 2). Node 2 joins through the seed "localhost:PORT" and
 * advertises itself as "localhost:PORT" while listening on the wildcard 0.0.0.0, exactly
 * what a container does with "--listen 0.0.0.0:7379 --advertise kvd2:7379". Node 1 must
 * then resolve "localhost" (server/peer.c, uv_getaddrinfo) to reach node 2 back, so a write
 * at ALL through either node proves both directions resolve. Which address "localhost"
 * yields first (::1 or 127.0.0.1) does not matter: peer.c tries IPv4 first and moves on
 * to the next address after a failure.
 * (1) Every process is stopped by PID in the fixture, even when an assertion fails. */
#include <check.h>
#include "tests/check_run.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <kv/client.h>
#include "common/addr.h"
#include "tests/integration/harness.h"

static struct kvd_proc g_a, g_b;

static void stop_all(void)
{
    kvd_cleanup(&g_a);
    kvd_cleanup(&g_b);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct kvc_client *client_at(const char *addr)
{
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = addr;
    o.token_aware = false;
    o.timeout_ms = 3000;
    o.connect_timeout_ms = 1000;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    ck_assert_msg(kvc_connect(&o, &c, &err) == KVC_OK, "connect %s: %s", addr, err.msg);
    return c;
}

/* Nodes up in p's view, -1 when it does not answer. */
static int nodes_up(const struct kvd_proc *p)
{
    double v;
    return kvd_metric(p, "kvd_cluster_nodes{state=\"up\"}", &v) == 0 ? (int)v : -1;
}

START_TEST(test_addresses_accept_host_names_for_peers_but_listeners_stay_numeric)
{
    struct kv_err err;
    ck_assert_int_eq(kv_addr_check("kvd1:7379", NULL), KV_OK);
    ck_assert_int_eq(kv_addr_check("kvd_project-kvd2-1.example.org:1", NULL), KV_OK);
    ck_assert_int_eq(kv_addr_check("10.0.0.1:7379", NULL), KV_OK);
    ck_assert_int_eq(kv_addr_check("[::1]:7379", NULL), KV_OK);
    const char *bad[] = {"kvd1", "kvd1:", ":7379", "kvd 1:7379", "-kvd:1", "kvd-:1", "a..b:1",
                         "kvd1:99999", "[kvd1]:7379", "kvd1:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(kv_addr_check(bad[i], &err) == KV_INVALID, "%s accepted", bad[i]);
    struct sockaddr_storage sa;
    socklen_t len;
    ck_assert_int_eq(kv_addr_parse("kvd1:7379", &sa, &len, NULL), KV_INVALID);
    ck_assert_int_eq(kv_addr_parse("localhost:7379", &sa, &len, NULL), KV_OK);
}
END_TEST

START_TEST(test_a_node_joins_through_localhost_and_advertises_a_name_on_a_wildcard_listener)
{
    const char *fa[] = {"--node-id", "1", "--replication-factor", "2", "--gossip-interval-ms",
                        "100", "--default-timeout-ms", "2000", NULL};
    ck_assert_int_eq(kvd_start(&g_a, fa), 0);
    char seed[64];
    snprintf(seed, sizeof seed, "localhost:%d", g_a.port);
    /* First start only to learn the ports the harness picked; then restart node 2 on the
     * wildcard address with a name to advertise (same ports and data directory). */
    const char *fb0[] = {"--node-id", "2", NULL};
    ck_assert_int_eq(kvd_start(&g_b, fb0), 0);
    ck_assert_int_eq(kvd_stop(&g_b, SIGTERM), 0);
    char listen[32], adv[64];
    snprintf(listen, sizeof listen, "0.0.0.0:%d", g_b.port);
    snprintf(adv, sizeof adv, "localhost:%d", g_b.port);
    const char *fb[] = {"--node-id", "2", "--replication-factor", "2", "--gossip-interval-ms",
                        "100", "--default-timeout-ms", "2000", "--listen", listen,
                        "--advertise", adv, "--seeds", seed, NULL};
    kvd_set_extra(&g_b, fb);
    ck_assert_int_eq(kvd_restart(&g_b), 0);

    uint64_t t0 = now_ms();
    while (nodes_up(&g_a) != 2 || nodes_up(&g_b) != 2) {
        ck_assert_msg(now_ms() - t0 < 15000, "no 2-node view within 15 s (a sees %d, b %d)",
                      nodes_up(&g_a), nodes_up(&g_b));
        usleep(50 * 1000);
    }
    fprintf(stderr, "peer names: both nodes see 2 up after %llu ms\n",
            (unsigned long long)(now_ms() - t0));

    /* ALL needs both replicas: node 1 must reach "localhost:PORT" and node 2 its seed. */
    const struct kvd_proc *via[] = {&g_a, &g_b};
    for (int i = 0; i < 2; i++) {
        char key[16], val[16];
        snprintf(key, sizeof key, "name:%d", i);
        snprintf(val, sizeof val, "v%d", i);
        struct kvc_client *c = client_at(via[i]->addr);
        struct kvc_call all = {.consistency = KVC_CL_ALL};
        struct kvc_err err;
        int rc = KVC_CONN;
        for (int tries = 0; tries < 50 && rc != KVC_OK; tries++) {   /* rings settle */
            rc = kvc_put(c, key, strlen(key), val, strlen(val), &all, &err);
            if (rc != KVC_OK)
                usleep(100 * 1000);
        }
        ck_assert_msg(rc == KVC_OK, "put at ALL via node %d: %s", i + 1, err.msg);
        struct kvc_value v;
        ck_assert_int_eq(kvc_get(c, key, strlen(key), &v, &all, &err), KVC_OK);
        ck_assert_str_eq((char *)v.data, val);
        kvc_value_free(&v);
        kvc_close(c);
    }
    /* Node 1 knows node 2 by its advertised name. */
    char *body = NULL;
    ck_assert_int_eq(kvd_http_get(&g_a, "/metrics", &body), 200);
    char want[160];
    snprintf(want, sizeof want, "kvd_peer_connected{peer=\"%s\",node=\"2\"} 1", adv);
    ck_assert_msg(strstr(body, want), "node 1's metrics lack %s", want);
    free(body);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("peer_names");
    TCase *t = tcase_create("names");
    tcase_add_checked_fixture(t, NULL, stop_all);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_addresses_accept_host_names_for_peers_but_listeners_stay_numeric);
    tcase_add_test(t, test_a_node_joins_through_localhost_and_advertises_a_name_on_a_wildcard_listener);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return kv_check_run(suite(), false);   /* (1) */
}
