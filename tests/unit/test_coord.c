/* tests/unit/test_coord.c -- the coordinator (cluster/coord.c) on whole simulated nodes
 * (tests/sim/sim.h): levels, UNAVAILABLE vs TIMEOUT, read repair, LWW, the not-joined rule.
 *
 * Every test starts its nodes with fast gossip (20 ms) and short timeouts (300 ms) and
 * waits until every node sees every other one up, so a run takes simulated seconds and
 * real milliseconds. Replicas are checked directly in their stores (KV_STORE_RAW). */
#include <check.h>
#include "tests/check_run.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster.h"
#include "common/log.h"
#include "tests/sim/simcall.h"

#define TIMEOUT_MS SIM_TEST_TIMEOUT_MS


/* --------------------------------------------------------------------- helpers -- */

/* ----------------------------------------------------------------------- tests -- */

START_TEST(test_a_quorum_put_is_seen_by_a_quorum_get_from_another_coordinator)
{
    struct sim *s = sim_test_cluster(1, 3);
    struct sim_call p = sim_put(s, 1, "user:000123", "alice", KV_LEVEL_QUORUM);
    ck_assert_int_eq(p.r.st, KV_OK);
    ck_assert_uint_ge(p.r.acks, 2);
    ck_assert_uint_eq(p.r.required, 2);
    ck_assert_uint_eq(KV_WRITER_NODE(p.r.version.node), 1);
    for (uint32_t via = 1; via <= 3; via++) {
        struct sim_call g = sim_get(s, via, "user:000123", KV_LEVEL_QUORUM);
        ck_assert_int_eq(g.r.st, KV_OK);
        ck_assert(sim_call_value_is(&g, "alice"));
        ck_assert_int_eq(kv_version_cmp(g.r.version, p.r.version), 0);
    }
    struct sim_call missing = sim_get(s, 2, "user:nobody", KV_LEVEL_QUORUM);
    ck_assert_int_eq(missing.r.st, KV_NOT_FOUND);
    sim_run_for(s, 2 * TIMEOUT_MS);
    for (uint32_t id = 1; id <= 3; id++)     /* rf 3 on 3 nodes: every node is a replica */
        ck_assert(sim_stored_value_is(s, id, "user:000123", "alice"));
    sim_free(s);
}
END_TEST

START_TEST(test_all_with_one_replica_down_is_unavailable_and_nothing_is_stored_anywhere)
{
    struct sim *s = sim_test_cluster(2, 3);
    sim_crash(s, 3);
    sim_wait_view(s, 1, 3, 0);
    struct sim_call p = sim_put(s, 1, "k", "v", KV_LEVEL_ALL);
    ck_assert_int_eq(p.r.st, KV_UNAVAILABLE);
    ck_assert_uint_eq(p.r.required, 3);
    ck_assert_uint_eq(p.r.alive, 2);
    ck_assert_msg(strstr(p.msg, "3") && strstr(p.msg, "2"), "message: %s", p.msg);
    sim_run_for(s, 2 * TIMEOUT_MS);
    for (uint32_t id = 1; id <= 3; id++)
        ck_assert_int_eq(sim_stored(s, id, "k", NULL), 0);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 0);
    ck_assert_uint_eq(sim_stats(s, 1).unavailable, 1);
    struct sim_call g = sim_get(s, 2, "k", KV_LEVEL_ALL);
    ck_assert_int_eq(g.r.st, KV_UNAVAILABLE);
    sim_free(s);
}
END_TEST

START_TEST(test_a_quorum_write_succeeds_with_one_replica_partitioned)
{
    struct sim *s = sim_test_cluster(3, 3);
    sim_isolate(s, 3, true);
    /* Before the detector notices: sent to 3 and lost, still two acks. */
    struct sim_call p = sim_put(s, 1, "a", "1", KV_LEVEL_QUORUM);
    ck_assert_int_eq(p.r.st, KV_OK);
    ck_assert_uint_eq(p.r.acks, 2);
    /* After it notices: not sent to 3 at all, still two acks. */
    sim_wait_view(s, 2, 3, 0);
    p = sim_put(s, 2, "b", "2", KV_LEVEL_QUORUM);
    ck_assert_int_eq(p.r.st, KV_OK);
    ck_assert_uint_eq(p.r.alive, 2);
    struct sim_call g = sim_get(s, 2, "a", KV_LEVEL_QUORUM);
    ck_assert_int_eq(g.r.st, KV_OK);
    ck_assert(sim_call_value_is(&g, "1"));
    ck_assert_int_eq(sim_stored(s, 3, "a", NULL), 0);
    sim_free(s);
}
END_TEST

/* Node 3 misses a write to "k" (isolated for the write only, healed before the detector
 * notices). */
static struct sim *with_stale_replica(uint64_t seed, struct sim_call *p)
{
    struct sim *s = sim_test_cluster(seed, 3);
    sim_isolate(s, 3, true);
    *p = sim_put(s, 1, "k", "fresh", KV_LEVEL_QUORUM);
    ck_assert_int_eq(p->r.st, KV_OK);
    sim_isolate(s, 3, false);
    ck_assert_int_eq(sim_stored(s, 3, "k", NULL), 0);
    ck_assert_int_eq(sim_sees(s, 1, 3), 1);
    return s;
}

START_TEST(test_a_quorum_read_repairs_a_replica_that_missed_a_write_before_answering)
{
    struct sim_call p;
    struct sim *s = with_stale_replica(4, &p);
    /* Coordinated by the stale replica itself: its own (empty) answer is always among
     * the first two, so the quorum disagrees and the write-back must finish first. */
    struct sim_call g = sim_get(s, 3, "k", KV_LEVEL_QUORUM);
    ck_assert_int_eq(g.r.st, KV_OK);
    ck_assert(sim_call_value_is(&g, "fresh"));
    struct kv_store_item it;
    ck_assert_int_eq(sim_stored(s, 3, "k", &it), 1);      /* repaired before the answer */
    ck_assert_int_eq(kv_version_cmp(it.rec.ver, p.r.version), 0);   /* never re-minted */
    kv_store_item_free(&it);
    ck_assert_uint_ge(sim_stats(s, 3).read_repairs, 1);
    sim_free(s);
}
END_TEST

START_TEST(test_at_one_a_stale_replica_is_repaired_in_the_background)
{
    struct sim_call p;
    struct sim *s = with_stale_replica(5, &p);
    /* At ONE node 3's own empty answer comes first: the answer may be stale. */
    struct sim_call g = sim_get(s, 3, "k", KV_LEVEL_ONE);
    ck_assert_int_eq(g.r.st, KV_NOT_FOUND);
    ck_assert_uint_eq(g.r.acks, 1);
    sim_run_for(s, 50);
    struct kv_store_item it;
    ck_assert_int_eq(sim_stored(s, 3, "k", &it), 1);
    ck_assert_int_eq(kv_version_cmp(it.rec.ver, p.r.version), 0);
    kv_store_item_free(&it);
    ck_assert_uint_ge(sim_stats(s, 3).read_repairs, 1);
    struct sim_call again = sim_get(s, 3, "k", KV_LEVEL_ONE);
    ck_assert_int_eq(again.r.st, KV_OK);
    ck_assert(sim_call_value_is(&again, "fresh"));
    sim_free(s);
}
END_TEST

START_TEST(test_a_write_whose_acks_are_lost_times_out_and_reports_its_acks)
{
    struct sim *s = sim_test_cluster(6, 3);
    struct sim_call c = {0};
    kv_cluster_put(sim_cluster(s, 1), kv_slice_str("k"), kv_slice_str("v"), 0, KV_LEVEL_ALL, 0,
                   sim_call_cb, &c);
    /* The writes are on the wire already; the acks coming back are lost. */
    sim_cut(s, 1, 2, true);
    sim_cut(s, 1, 3, true);
    sim_call_wait(s, &c);
    ck_assert_int_eq(c.r.st, KV_TIMEOUT);
    ck_assert_uint_eq(c.r.acks, 1);
    ck_assert_uint_eq(c.r.required, 3);
    ck_assert_msg(strstr(c.msg, "may have been applied"), "message: %s", c.msg);
    /* And indeed it was: TIMEOUT means unknown, not failed. */
    ck_assert(sim_stored_value_is(s, 2, "k", "v"));
    ck_assert(sim_stored_value_is(s, 3, "k", "v"));
    ck_assert_uint_eq(sim_stats(s, 1).timeouts, 1);
    ck_assert_uint_eq(sim_stats(s, 1).replica_timeouts, 2);
    sim_free(s);
}
END_TEST

START_TEST(test_concurrent_writes_from_two_coordinators_converge_to_the_newest_after_the_heal)
{
    struct sim *s = sim_test_cluster(7, 3);
    /* Node 2's wall clock runs 5 s behind; its HLC still moves with what it observes. */
    sim_node(s, 2)->clock_offset_ms = -5000;
    sim_isolate(s, 1, true);
    struct sim_call a = sim_put(s, 1, "k", "from-1", KV_LEVEL_ONE);
    sim_run_for(s, 5);
    struct sim_call b = sim_put(s, 2, "k", "from-2", KV_LEVEL_ONE);
    ck_assert_int_eq(a.r.st, KV_OK);
    ck_assert_int_eq(b.r.st, KV_OK);
    ck_assert_int_ne(kv_version_cmp(a.r.version, b.r.version), 0);
    bool a_wins = kv_version_cmp(a.r.version, b.r.version) > 0;
    struct kv_version win = a_wins ? a.r.version : b.r.version;
    const char *val = a_wins ? "from-1" : "from-2";
    sim_run_for(s, 20);
    ck_assert(sim_stored_value_is(s, 1, "k", "from-1"));  /* diverged: 1 alone saw a */
    ck_assert(sim_stored_value_is(s, 3, "k", "from-2"));
    sim_heal(s);
    /* Hints replay (at the next tick), and a read at ALL repairs what remains. */
    sim_run_for(s, 11000);
    struct sim_call g = sim_get(s, 3, "k", KV_LEVEL_ALL);
    ck_assert_int_eq(g.r.st, KV_OK);
    ck_assert(sim_call_value_is(&g, val));
    sim_run_for(s, 100);
    for (uint32_t id = 1; id <= 3; id++) {
        struct kv_store_item it;
        ck_assert_int_eq(sim_stored(s, id, "k", &it), 1);
        ck_assert_int_eq(kv_version_cmp(it.rec.ver, win), 0);
        kv_store_item_free(&it);
        ck_assert(sim_stored_value_is(s, id, "k", val));
    }
    sim_free(s);
}
END_TEST

START_TEST(test_a_delete_after_a_put_wins_on_every_replica)
{
    struct sim *s = sim_test_cluster(8, 3);
    struct sim_call p = sim_put(s, 1, "k", "v", KV_LEVEL_QUORUM);
    struct sim_call d = sim_del(s, 2, "k", KV_LEVEL_QUORUM);
    ck_assert_int_eq(d.r.st, KV_OK);
    ck_assert_int_gt(kv_version_cmp(d.r.version, p.r.version), 0);
    struct sim_call g = sim_get(s, 3, "k", KV_LEVEL_QUORUM);
    ck_assert_int_eq(g.r.st, KV_NOT_FOUND);
    sim_run_for(s, 2 * TIMEOUT_MS);
    for (uint32_t id = 1; id <= 3; id++) {
        struct kv_store_item it;
        ck_assert_int_eq(sim_stored(s, id, "k", &it), 1);
        ck_assert(it.rec.tombstone);
        ck_assert_int_eq(kv_version_cmp(it.rec.ver, d.r.version), 0);
        kv_store_item_free(&it);
    }
    /* A put after the delete brings the key back. */
    ck_assert_int_eq(sim_put(s, 3, "k", "again", KV_LEVEL_QUORUM).r.st, KV_OK);
    struct sim_call g2 = sim_get(s, 1, "k", KV_LEVEL_QUORUM);
    ck_assert_int_eq(g2.r.st, KV_OK);
    ck_assert(sim_call_value_is(&g2, "again"));
    sim_free(s);
}
END_TEST

START_TEST(test_a_node_with_seeds_refuses_requests_until_it_has_heard_gossip)
{
    struct sim *s = sim_new(9, 3);
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    ck_assert_int_eq(sim_start(s, 2, &o), KV_OK);     /* its seed, node 1, is not running */
    sim_run_for(s, 200);
    struct sim_call p = sim_put(s, 2, "k", "v", KV_LEVEL_ONE);
    ck_assert_int_eq(p.r.st, KV_UNAVAILABLE);
    ck_assert_msg(strstr(p.msg, "not joined yet"), "message: %s", p.msg);
    ck_assert_int_eq(sim_stored(s, 2, "k", NULL), 0);
    ck_assert_int_eq(sim_start(s, 1, &o), KV_OK);     /* node 1 has no other seed: serves */
    sim_wait_view(s, 2, 1, 1);
    p = sim_put(s, 2, "k", "v", KV_LEVEL_QUORUM);
    ck_assert_int_eq(p.r.st, KV_OK);
    ck_assert_uint_eq(p.r.required, 2);           /* two nodes: a replica set of two */
    sim_free(s);
}
END_TEST

START_TEST(test_hints_never_count_so_quorum_with_two_of_three_down_is_unavailable)
{
    struct sim *s = sim_test_cluster(10, 3);
    sim_crash(s, 2);
    sim_crash(s, 3);
    sim_wait_view(s, 1, 2, 0);
    sim_wait_view(s, 1, 3, 0);
    struct sim_call p = sim_put(s, 1, "k", "v", KV_LEVEL_QUORUM);
    ck_assert_int_eq(p.r.st, KV_UNAVAILABLE);
    ck_assert_uint_eq(p.r.required, 2);
    ck_assert_uint_eq(p.r.alive, 1);
    sim_run_for(s, 2 * TIMEOUT_MS);
    ck_assert_int_eq(sim_stored(s, 1, "k", NULL), 0);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 0);
    /* At ONE the same write is applied once, and hinted for the two down replicas. */
    p = sim_put(s, 1, "k", "v", KV_LEVEL_ONE);
    ck_assert_int_eq(p.r.st, KV_OK);
    ck_assert_uint_eq(p.r.acks, 1);
    sim_run_for(s, 50);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 2);
    ck_assert(sim_stored_value_is(s, 1, "k", "v"));
    sim_free(s);
}
END_TEST

START_TEST(test_with_fewer_nodes_than_rf_levels_count_against_the_smaller_replica_set)
{
    struct sim *s = sim_test_cluster(11, 2);
    struct sim_call p = sim_put(s, 1, "k", "v", KV_LEVEL_THREE);
    ck_assert_int_eq(p.r.st, KV_UNAVAILABLE);
    ck_assert_uint_eq(p.r.required, 3);
    ck_assert_uint_eq(p.r.alive, 2);
    p = sim_put(s, 1, "k", "v", KV_LEVEL_ALL);
    ck_assert_int_eq(p.r.st, KV_OK);
    ck_assert_uint_eq(p.r.required, 2);
    ck_assert_uint_eq(p.r.acks, 2);
    p = sim_put(s, 2, "k", "w", KV_LEVEL_QUORUM);
    ck_assert_int_eq(p.r.st, KV_OK);
    ck_assert_uint_eq(p.r.required, 2);
    sim_free(s);
}
END_TEST

START_TEST(test_bad_requests_are_refused_and_never_answered_before_the_call_returns)
{
    struct sim *s = sim_test_cluster(12, 3);
    char big[KV_STORE_KEY_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ck_assert_int_eq(sim_put(s, 1, big, "v", KV_LEVEL_QUORUM).r.st, KV_INVALID);
    ck_assert_int_eq(sim_get(s, 1, "", KV_LEVEL_QUORUM).r.st, KV_INVALID);
    /* LINEARIZABLE is its own path (cluster/linear.c, tests/unit/test_linear.c). */
    struct sim_call lin = sim_put(s, 1, "k", "v", KV_LEVEL_LINEARIZABLE);
    ck_assert_int_eq(lin.r.st, KV_OK);
    ck_assert_uint_eq(lin.r.round_trips, 2);
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    size_t n = o.max_value + 1;
    char *huge = malloc(n + 1);
    memset(huge, 'v', n);
    huge[n] = 0;
    ck_assert_int_eq(sim_put(s, 1, "k", huge, KV_LEVEL_ONE).r.st, KV_TOO_LARGE);
    free(huge);
    /* The default level is QUORUM. */
    struct sim_call d = sim_put(s, 1, "k", "v", KV_LEVEL_DEFAULT);
    ck_assert_int_eq(d.r.st, KV_OK);
    ck_assert_uint_eq(d.r.required, 2);
    sim_free(s);
}
END_TEST

START_TEST(test_malformed_peer_messages_are_counted_and_dropped)
{
    struct sim *s = sim_test_cluster(13, 3);
    struct kv_cluster *c = sim_cluster(s, 1);
    uint64_t before = sim_stats(s, 1).messages_malformed;

    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    pm.from = 2;
    kv_cluster_on_message(c, &pm);                    /* no body */

    char big[KV_STORE_KEY_MAX + 1];
    memset(big, 'k', sizeof big);
    Kv__Record rec = KV__RECORD__INIT;
    rec.key.data = (uint8_t *)big;
    rec.key.len = sizeof big;                         /* one byte over */
    Kv__Record *recs[1] = {&rec};
    Kv__ReplicaWrite w = KV__REPLICA_WRITE__INIT;
    w.records = recs;
    w.n_records = 1;
    pm.body_case = KV__PEER_MESSAGE__BODY_WRITE;
    pm.write = &w;
    kv_cluster_on_message(c, &pm);

    rec.key.len = 1;
    rec.tombstone = true;                             /* a tombstone with a value */
    rec.value.data = (uint8_t *)"v";
    rec.value.len = 1;
    kv_cluster_on_message(c, &pm);

    pm.from = 0;                                      /* no sender */
    rec.tombstone = false;
    kv_cluster_on_message(c, &pm);
    sim_run_for(s, 50);
    ck_assert_uint_eq(sim_stats(s, 1).messages_malformed - before, 4);
    ck_assert_int_eq(sim_stored(s, 1, "k", NULL), 0);
    sim_free(s);
}
END_TEST

START_TEST(test_requests_in_flight_fail_with_shutdown_when_the_cluster_is_freed)
{
    struct sim *s = sim_test_cluster(14, 3);
    sim_isolate(s, 1, true);
    struct sim_call c = {0};
    kv_cluster_put(sim_cluster(s, 1), kv_slice_str("k"), kv_slice_str("v"), 0, KV_LEVEL_ALL, 0,
                   sim_call_cb, &c);
    c.returned = true;
    sim_run_for(s, 10);
    ck_assert(!c.done);
    sim_crash(s, 1);
    ck_assert(c.done);
    ck_assert_int_eq(c.r.st, KV_SHUTDOWN);
    sim_free(s);
}
END_TEST

START_TEST(test_local_levels_count_only_the_coordinators_region_and_each_quorum_every_region)
{
    struct sim *s = sim_new(15, 4);
    const char *regions[] = {"", "eu", "eu", "us", "us"};
    for (uint32_t id = 1; id <= 4; id++) {
        struct kv_cluster_opts o;
        sim_test_opts(&o);
        o.rf = 4;
        o.region = regions[id];
        ck_assert_int_eq(sim_start(s, id, &o), KV_OK);
    }
    for (uint32_t a = 1; a <= 4; a++)
        for (uint32_t b = 1; b <= 4; b++)
            if (a != b)
                sim_wait_view(s, a, b, 1);
    ck_assert_int_eq(sim_put(s, 1, "k", "v", KV_LEVEL_EACH_QUORUM).r.st, KV_OK);
    sim_crash(s, 3);
    sim_crash(s, 4);
    sim_wait_view(s, 1, 3, 0);
    sim_wait_view(s, 1, 4, 0);
    struct sim_call p = sim_put(s, 1, "k", "v2", KV_LEVEL_LOCAL_QUORUM);
    ck_assert_int_eq(p.r.st, KV_OK);
    ck_assert_uint_eq(p.r.required, 2);               /* both eu replicas */
    ck_assert_int_eq(sim_put(s, 2, "k", "v3", KV_LEVEL_LOCAL_ONE).r.st, KV_OK);
    p = sim_put(s, 1, "k", "v4", KV_LEVEL_EACH_QUORUM);
    ck_assert_int_eq(p.r.st, KV_UNAVAILABLE);
    ck_assert_uint_eq(p.r.required, 2);
    ck_assert_uint_eq(p.r.alive, 0);
    ck_assert_msg(strstr(p.msg, "'us'"), "message: %s", p.msg);
    p = sim_put(s, 1, "k", "v5", KV_LEVEL_QUORUM);        /* 3 of 4 */
    ck_assert_int_eq(p.r.st, KV_UNAVAILABLE);
    ck_assert_uint_eq(p.r.required, 3);
    struct sim_call g = sim_get(s, 2, "k", KV_LEVEL_LOCAL_QUORUM);
    ck_assert_int_eq(g.r.st, KV_OK);
    ck_assert(sim_call_value_is(&g, "v3"));
    sim_free(s);
}
END_TEST

START_TEST(test_lost_and_duplicated_messages_never_yield_a_wrong_answer_and_replicas_converge)
{
    struct sim *s = sim_test_cluster(16, 3);
    sim_set_loss(s, 0.05);
    sim_set_dup(s, 0.3);
    unsigned ok = 0;
    for (int i = 0; i < 60; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        struct sim_call p = sim_put(s, (uint32_t)(i % 3) + 1, "k", v, KV_LEVEL_QUORUM);
        ck_assert_msg(p.r.st == KV_OK || p.r.st == KV_TIMEOUT, "put: %s", p.msg);
        ck_assert_uint_le(p.r.acks, 3);               /* duplicated acks count once */
        ok += p.r.st == KV_OK;
        struct sim_call g = sim_get(s, (uint32_t)(i % 3) + 1, "k", KV_LEVEL_QUORUM);
        ck_assert_msg(g.r.st == KV_OK || g.r.st == KV_TIMEOUT, "get: %s", g.msg);
        if (g.r.st == KV_OK) {
            ck_assert_uint_ge(g.value_len, 2);
            ck_assert_int_eq(g.value[0], 'v');
            ck_assert_int_le(atoi((const char *)g.value + 1), i);
        }
    }
    ck_assert_uint_gt(ok, 30);
    sim_set_loss(s, 0);
    sim_set_dup(s, 0);
    sim_run_for(s, 11000);                            /* hints replay at the tick */
    struct sim_call g = sim_get(s, 1, "k", KV_LEVEL_ALL);     /* repairs whatever is left */
    ck_assert_int_eq(g.r.st, KV_OK);
    sim_run_for(s, 100);
    struct kv_store_item a, b;
    ck_assert_int_eq(sim_stored(s, 1, "k", &a), 1);
    for (uint32_t id = 2; id <= 3; id++) {
        ck_assert_int_eq(sim_stored(s, id, "k", &b), 1);
        ck_assert_int_eq(kv_version_cmp(a.rec.ver, b.rec.ver), 0);
        kv_store_item_free(&b);
    }
    ck_assert_int_eq(kv_version_cmp(a.rec.ver, g.r.version), 0);
    kv_store_item_free(&a);
    sim_free(s);
}
END_TEST

/* --- the sloppy fallback at ONE (coord.c (7)) -------------------------------------- */

/* Five nodes, rf 3: writes key at ALL and returns a node that is not one of its replicas
 * (the fallback coordinator), filling reps[0..3) with the replicas. */
static uint32_t non_replica_of(struct sim *s, const char *key, uint32_t *reps)
{
    struct sim_call p = sim_put(s, 1, key, "old", KV_LEVEL_ALL);
    ck_assert_int_eq(p.r.st, KV_OK);
    size_t n = 0;
    uint32_t other = 0;
    for (uint32_t id = 1; id <= 5; id++) {
        if (sim_stored(s, id, key, NULL))
            reps[n++] = id;
        else
            other = id;
    }
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_ne(other, 0);
    return other;
}

START_TEST(test_at_one_a_coordinator_cut_off_from_every_replica_stores_a_fallback_copy_and_hints_it)
{
    struct sim *s = sim_test_cluster(17, 5);
    uint32_t reps[3];
    uint32_t x = non_replica_of(s, "k", reps);
    sim_isolate(s, x, true);
    for (int i = 0; i < 3; i++)
        sim_wait_view(s, x, reps[i], 0);

    /* ONE: the coordinator's own copy is the one ack, and every replica gets a hint. */
    struct sim_call p = sim_put(s, x, "k", "sloppy", KV_LEVEL_ONE);
    ck_assert_msg(p.r.st == KV_OK, "ONE put: %s", p.msg);
    ck_assert(p.r.sloppy);
    ck_assert_uint_eq(p.r.acks, 1);
    ck_assert_uint_eq(p.r.required, 1);
    ck_assert_uint_eq(p.r.alive, 0);
    ck_assert_msg(strstr(p.msg, "fallback"), "message: %s", p.msg);
    /* Durable before the ack: the copy, and the hints that will carry it to the replicas. */
    ck_assert(sim_stored_value_is(s, x, "k", "sloppy"));
    ck_assert_uint_eq(sim_stats(s, x).hints_pending, 3);
    sim_run_for(s, 50);
    ck_assert_uint_eq(sim_stats(s, x).sloppy_writes, 1);
    for (int i = 0; i < 3; i++)
        ck_assert(sim_stored_value_is(s, reps[i], "k", "old"));

    /* ONE and LOCAL_ONE reads on that side read the coordinator's own store. */
    struct sim_call g = sim_get(s, x, "k", KV_LEVEL_ONE);
    ck_assert_int_eq(g.r.st, KV_OK);
    ck_assert(g.r.sloppy);
    ck_assert(sim_call_value_is(&g, "sloppy"));
    ck_assert_int_eq(kv_version_cmp(g.r.version, p.r.version), 0);
    g = sim_get(s, x, "k", KV_LEVEL_LOCAL_ONE);
    ck_assert_int_eq(g.r.st, KV_OK);
    ck_assert(sim_call_value_is(&g, "sloppy"));
    /* A key it never saw is simply not found there: that is ONE. */
    struct sim_call nf = sim_get(s, x, "never-written", KV_LEVEL_ONE);
    ck_assert_int_eq(nf.r.st, KV_NOT_FOUND);
    ck_assert_uint_eq(sim_stats(s, x).sloppy_reads, 2u + nf.r.sloppy);
    /* The other side still answers with what the replicas hold. */
    g = sim_get(s, reps[0], "k", KV_LEVEL_ONE);
    ck_assert_int_eq(g.r.st, KV_OK);
    ck_assert(!g.r.sloppy);
    ck_assert(sim_call_value_is(&g, "old"));

    /* Every stronger level stays UNAVAILABLE, and nothing more is stored or hinted. */
    const enum kv_level strict[] = {KV_LEVEL_TWO, KV_LEVEL_QUORUM, KV_LEVEL_ALL,
                                    KV_LEVEL_LOCAL_QUORUM, KV_LEVEL_EACH_QUORUM,
                                    KV_LEVEL_LINEARIZABLE};
    for (size_t i = 0; i < sizeof strict / sizeof strict[0]; i++) {
        struct sim_call q = sim_put(s, x, "k", "strict", strict[i]);
        ck_assert_msg(q.r.st == KV_UNAVAILABLE, "%s put: %s", kv_level_name(strict[i]), q.msg);
        ck_assert(!q.r.sloppy);
        ck_assert_uint_eq(q.r.alive, 0);
        q = sim_get(s, x, "k", strict[i]);
        ck_assert_msg(q.r.st == KV_UNAVAILABLE, "%s get: %s", kv_level_name(strict[i]), q.msg);
    }
    struct sim_call cas = {0};
    kv_cluster_cas(sim_cluster(s, x), kv_slice_str("k"), false, kv_slice_str("sloppy"),
                   kv_slice_str("strict"), 0, sim_call_cb, &cas);
    cas.returned = true;
    sim_call_wait(s, &cas);
    ck_assert_int_eq(cas.r.st, KV_UNAVAILABLE);
    sim_run_for(s, 50);
    ck_assert(sim_stored_value_is(s, x, "k", "sloppy"));
    ck_assert_uint_eq(sim_stats(s, x).hints_pending, 3);

    /* After the heal the hints reach the replicas: a QUORUM read through another node
     * returns the ONE write, with the version it was acknowledged with. */
    sim_isolate(s, x, false);
    for (int i = 0; i < 3; i++)
        sim_wait_view(s, x, reps[i], 1);
    sim_run_for(s, 500);
    ck_assert_uint_eq(sim_stats(s, x).hints_pending, 0);
    ck_assert_uint_ge(sim_stats(s, x).hints_replayed, 3);
    for (int i = 0; i < 3; i++) {
        struct kv_store_item it;
        ck_assert_int_eq(sim_stored(s, reps[i], "k", &it), 1);
        ck_assert_int_eq(kv_version_cmp(it.rec.ver, p.r.version), 0);     /* never re-minted */
        kv_store_item_free(&it);
    }
    uint32_t via = reps[0] == 1 ? reps[1] : 1;
    g = sim_get(s, via == x ? reps[2] : via, "k", KV_LEVEL_QUORUM);
    ck_assert_int_eq(g.r.st, KV_OK);
    ck_assert(!g.r.sloppy);
    ck_assert(sim_call_value_is(&g, "sloppy"));
    /* With the replicas back, ONE at x uses them again. */
    g = sim_get(s, x, "k", KV_LEVEL_ONE);
    ck_assert_int_eq(g.r.st, KV_OK);
    ck_assert(!g.r.sloppy);
    sim_free(s);
}
END_TEST

START_TEST(test_a_coordinator_that_is_a_replica_never_falls_back_and_a_full_hint_store_refuses_it)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    o.max_hint_bytes = 16;          /* no hint fits */
    struct sim *s = sim_cluster_with(18, 5, &o);
    uint32_t reps[3];
    uint32_t x = non_replica_of(s, "k", reps);
    sim_isolate(s, x, true);
    sim_isolate(s, reps[0], true);
    for (int i = 0; i < 3; i++)
        sim_wait_view(s, x, reps[i], 0);
    /* Without room for the hints the fallback copy could never reach the replicas. */
    struct sim_call p = sim_put(s, x, "k", "sloppy", KV_LEVEL_ONE);
    ck_assert_int_eq(p.r.st, KV_UNAVAILABLE);
    ck_assert(!p.r.sloppy);
    ck_assert_msg(strstr(p.msg, "hint"), "message: %s", p.msg);
    sim_run_for(s, 50);
    ck_assert_int_eq(sim_stored(s, x, "k", NULL), 0);       /* applied nowhere */
    ck_assert_uint_eq(sim_stats(s, x).sloppy_writes, 0);
    ck_assert_uint_eq(sim_stats(s, x).hints_pending, 0);
    /* A replica cut off from the other two serves ONE from its own copy, as a replica. */
    for (int i = 1; i < 3; i++)
        sim_wait_view(s, reps[0], reps[i], 0);
    p = sim_put(s, reps[0], "k", "mine", KV_LEVEL_ONE);
    ck_assert_int_eq(p.r.st, KV_OK);
    ck_assert(!p.r.sloppy);
    ck_assert_uint_eq(p.r.alive, 1);
    ck_assert_uint_eq(sim_stats(s, reps[0]).sloppy_writes, 0);
    sim_free(s);
}
END_TEST

/* cluster.c (6): a restarted node's HLC can come back to a stamp it minted before the
 * crash (it had been following its peers' stamps, its own clock far behind). It must
 * still mint a version of its own: with the node id alone the second write got the first
 * one's version, so the replicas kept whichever value they saw first (kvsim seed 30008). */
START_TEST(test_a_restarted_node_whose_clock_repeats_a_stamp_still_mints_a_new_version)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    struct sim *s = sim_cluster_with(19, 3, &o);
    struct sim_node *n1 = sim_node(s, 1);
    n1->clock_offset_ms = -100000;      /* its HLC runs on its peers' stamps */
    sim_run_for(s, 100);
    uint64_t before = atomic_load(&n1->hlc.last);
    struct sim_call a = sim_put(s, 1, "k", "before-crash", KV_LEVEL_ALL);
    ck_assert_int_eq(a.r.st, KV_OK);
    ck_assert_uint_eq(a.r.version.hlc, before + 1);
    sim_crash(s, 1);
    ck_assert_int_eq(sim_start(s, 1, &o), KV_OK);
    sim_wait_all_up(s, 3);
    atomic_store(&n1->hlc.last, before);   /* rebuilt to where it stood before the write */
    struct sim_call b = sim_put(s, 1, "k", "after-restart", KV_LEVEL_ALL);
    ck_assert_int_eq(b.r.st, KV_OK);
    ck_assert_uint_eq(b.r.version.hlc, a.r.version.hlc);   /* the clock repeated itself */
    ck_assert_int_ne(kv_version_cmp(b.r.version, a.r.version), 0);
    ck_assert_uint_eq(KV_WRITER_NODE(b.r.version.node), 1);
    /* The later start's version wins on every replica and through every coordinator. */
    for (uint32_t id = 1; id <= 3; id++) {
        ck_assert(sim_stored_value_is(s, id, "k", "after-restart"));
        struct sim_call g = sim_get(s, id, "k", KV_LEVEL_ALL);
        ck_assert_int_eq(g.r.st, KV_OK);
        ck_assert(sim_call_value_is(&g, "after-restart"));
        ck_assert_int_eq(kv_version_cmp(g.r.version, b.r.version), 0);
    }
    sim_free(s);
}
END_TEST

int main(void)
{
    kv_log_set_level(KV_LOG_ERROR);
    Suite *s = suite_create("coord");
    TCase *t = tcase_create("coord");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_a_quorum_put_is_seen_by_a_quorum_get_from_another_coordinator);
    tcase_add_test(t, test_a_restarted_node_whose_clock_repeats_a_stamp_still_mints_a_new_version);
    tcase_add_test(t, test_all_with_one_replica_down_is_unavailable_and_nothing_is_stored_anywhere);
    tcase_add_test(t, test_a_quorum_write_succeeds_with_one_replica_partitioned);
    tcase_add_test(t, test_a_quorum_read_repairs_a_replica_that_missed_a_write_before_answering);
    tcase_add_test(t, test_at_one_a_stale_replica_is_repaired_in_the_background);
    tcase_add_test(t, test_a_write_whose_acks_are_lost_times_out_and_reports_its_acks);
    tcase_add_test(t, test_concurrent_writes_from_two_coordinators_converge_to_the_newest_after_the_heal);
    tcase_add_test(t, test_a_delete_after_a_put_wins_on_every_replica);
    tcase_add_test(t, test_a_node_with_seeds_refuses_requests_until_it_has_heard_gossip);
    tcase_add_test(t, test_hints_never_count_so_quorum_with_two_of_three_down_is_unavailable);
    tcase_add_test(t, test_with_fewer_nodes_than_rf_levels_count_against_the_smaller_replica_set);
    tcase_add_test(t, test_bad_requests_are_refused_and_never_answered_before_the_call_returns);
    tcase_add_test(t, test_malformed_peer_messages_are_counted_and_dropped);
    tcase_add_test(t, test_requests_in_flight_fail_with_shutdown_when_the_cluster_is_freed);
    tcase_add_test(t, test_local_levels_count_only_the_coordinators_region_and_each_quorum_every_region);
    tcase_add_test(t, test_lost_and_duplicated_messages_never_yield_a_wrong_answer_and_replicas_converge);
    tcase_add_test(t, test_at_one_a_coordinator_cut_off_from_every_replica_stores_a_fallback_copy_and_hints_it);
    tcase_add_test(t, test_a_coordinator_that_is_a_replica_never_falls_back_and_a_full_hint_store_refuses_it);
    suite_add_tcase(s, t);
    return kv_check_run(s, true);
}
