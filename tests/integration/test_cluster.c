/* tests/integration/test_cluster.c -- three real kvd processes (rf 3): coordination from
 * every node, a paused replica (TIMEOUT, then UNAVAILABLE, hints replayed), a 5 ms
 * deadline that a paused replica must not act on after it resumes, kill -9 and restart. The fixture and its conventions: cluster_fixture.h. */
#include <check.h>
#include "tests/check_run.h"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <kv/client.h>
#include "tests/integration/cluster_fixture.h"

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

START_TEST(test_a_5ms_write_times_out_on_time_and_the_paused_replica_drops_it_after_sigcont)
{
    /* Hints off (hint_max_bytes 1: none fits), so only the expired message itself could
     * put the write on node 3; 200 ms of lateness tolerated past a deadline. */
    const char *const flags[] = {"--peer-deadline-slack-ms", "200", "--hint-max-bytes", "1",
                                 NULL};
    const char *const *more[N_NODES] = {flags, flags, flags};
    start_nodes(N_NODES, more);
    struct kvd_proc *n1 = &g_nodes[0], *n3 = &g_nodes[2];
    put_at(n1, "warm", "x", KVC_CL_ALL);
    double dropped0 = metric(n3, "kvd_cluster_expired_dropped_total");

    ck_assert_int_eq(kvd_signal(n3, SIGSTOP), 0);
    struct kvc_client *c = client_at(n1);
    struct kvc_call call = {.consistency = KVC_CL_ALL, .timeout_ms = 5};
    struct kvc_err err;
    uint64_t t0 = now_ms();
    int rc = kvc_put(c, "late", 4, "never-on-3", 10, &call, &err);
    uint64_t took = now_ms() - t0;
    kvc_close(c);
    ck_assert_msg(rc == KVC_TIMEOUT, "put: %s", err.msg);
    /* The deadline plus a margin for a loaded test machine (ASan, two cores). */
    ck_assert_msg(took <= 5 + 250, "TIMEOUT after %llu ms for a 5 ms deadline",
                  (unsigned long long)took);
    usleep(1000 * 1000);        /* paused well past the deadline + slack, not yet down */
    ck_assert_int_eq(kvd_signal(n3, SIGCONT), 0);
    /* Node 3 now reads the write that waited in its socket: it must drop it, counted. */
    wait_metric(n3, "kvd_cluster_expired_dropped_total", dropped0 + 1, 1e12, 3000);
    ck_assert_int_eq(local_get(n3, "late", NULL), KVC_NOT_FOUND);
    /* Fresh work is done as before. */
    put_at(n1, "after", "y", KVC_CL_ALL);
    ck_assert_int_eq(local_get(n3, "after", "y"), KVC_OK);
    ck_assert_int_eq(local_get(n3, "late", NULL), KVC_NOT_FOUND);
    fprintf(stderr, "deadline test: TIMEOUT after %llu ms (deadline 5 ms)\n",
            (unsigned long long)took);
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



static Suite *suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *t = tcase_create("three_nodes");
    tcase_add_checked_fixture(t, NULL, stop_all);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_a_quorum_write_is_readable_from_every_coordinator_and_scans_agree);
    tcase_add_test(t, test_a_paused_replica_times_out_then_is_unavailable_at_all_and_gets_its_hints);
    tcase_add_test(t, test_a_5ms_write_times_out_on_time_and_the_paused_replica_drops_it_after_sigcont);
    tcase_add_test(t, test_kill_9_and_restart_bumps_the_generation_and_keeps_the_data);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* No fork: the fixture must see the kvd PIDs a test started, to stop them on failure. */
    return kv_check_run(suite(), false);
}
