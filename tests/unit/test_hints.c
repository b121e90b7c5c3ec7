/* tests/unit/test_hints.c -- hinted handoff (cluster/hints.c) on whole simulated nodes:
 * hints are stored for down replicas, survive a restart of the node holding them, stay
 * within their bounds, and replay (ack-bound) when the replica is seen up again.
 *
 * Gossip every 20 ms, timeouts of 300 ms; the replay tick is 10 s of simulated time. */
#include <check.h>
#include "tests/check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster.h"
#include "common/log.h"
#include "tests/sim/simcall.h"

#define TIMEOUT_MS SIM_TEST_TIMEOUT_MS


/* --------------------------------------------------------------------- helpers -- */


struct holds_pred {
    struct sim *s;
    uint32_t id;
    const char *key, *val;
};

static bool holds(void *arg)
{
    struct holds_pred *p = arg;
    return sim_stored_value_is(p->s, p->id, p->key, p->val);
}

static bool wait_holds(struct sim *s, uint32_t id, const char *key, const char *val,
                       uint64_t ms)
{
    struct holds_pred p = {s, id, key, val};
    return sim_run_until(s, holds, &p, ms);
}

/* The hints_pending that node `viewer` sees gossiped by node id. */
static uint64_t gossiped_hints(struct sim *s, uint32_t viewer, uint32_t id)
{
    Kv__ClusterStatus st;
    ck_assert_int_eq(kv_cluster_status(sim_cluster(s, viewer), &st, NULL), KV_OK);
    uint64_t h = UINT64_MAX;
    for (size_t i = 0; i < st.n_nodes; i++)
        if (st.nodes[i]->state->id == id)
            h = st.nodes[i]->state->hints_pending;
    kv_cluster_status_free(&st);
    return h;
}

/* Node 3 is down (crashed and seen down by nodes 1 and 2). */
static struct sim *with_node_3_down(uint64_t seed, const struct kv_cluster_opts *o)
{
    struct sim *s = sim_cluster_with(seed, 3, o);
    sim_crash(s, 3);
    sim_wait_view(s, 1, 3, 0);
    sim_wait_view(s, 2, 3, 0);
    return s;
}

/* ----------------------------------------------------------------------- tests -- */

START_TEST(test_a_write_while_a_replica_is_down_is_hinted_and_replayed_when_it_returns)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    struct sim *s = with_node_3_down(21, &o);
    struct sim_call p = sim_put(s, 1, "k", "v", KV_LEVEL_QUORUM);
    ck_assert_int_eq(p.r.st, KV_OK);
    ck_assert_uint_eq(p.r.acks, 2);               /* the hint is not an ack */
    sim_run_for(s, 50);
    struct kv_cluster_stats st = sim_stats(s, 1);
    ck_assert_uint_eq(st.hints_pending, 1);
    ck_assert_uint_eq(st.hints_stored, 1);
    ck_assert_uint_eq(sim_stats(s, 2).hints_pending, 0);
    sim_run_for(s, 100);
    ck_assert_uint_eq(gossiped_hints(s, 2, 1), 1);  /* visible in kvctl status */

    ck_assert_int_eq(sim_start(s, 3, &o), KV_OK);
    ck_assert_int_eq(sim_stored(s, 3, "k", NULL), 0);
    ck_assert_msg(wait_holds(s, 3, "k", "v", 2000), "the hint was not replayed");
    struct kv_store_item it;
    ck_assert_int_eq(sim_stored(s, 3, "k", &it), 1);
    ck_assert_int_eq(kv_version_cmp(it.rec.ver, p.r.version), 0);    /* never re-minted */
    kv_store_item_free(&it);
    sim_run_for(s, 50);
    st = sim_stats(s, 1);
    ck_assert_uint_eq(st.hints_pending, 0);
    ck_assert_uint_eq(st.hints_replayed, 1);
    ck_assert_uint_eq(st.hints_dropped, 0);
    sim_free(s);
}
END_TEST

START_TEST(test_hints_survive_a_restart_of_the_coordinator_that_holds_them)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    struct sim *s = with_node_3_down(22, &o);
    ck_assert_int_eq(sim_put(s, 1, "a", "1", KV_LEVEL_QUORUM).r.st, KV_OK);
    ck_assert_int_eq(sim_put(s, 1, "b", "2", KV_LEVEL_QUORUM).r.st, KV_OK);
    sim_run_for(s, 50);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 2);

    sim_crash(s, 1);
    ck_assert_int_eq(sim_start(s, 1, &o), KV_OK);
    sim_run_for(s, 10);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 2);     /* counted from the store */
    sim_wait_view(s, 1, 2, 1);
    sim_wait_view(s, 1, 3, 0);
    /* New hints after the restart get new keys: nothing is overwritten. */
    ck_assert_int_eq(sim_put(s, 1, "c", "3", KV_LEVEL_QUORUM).r.st, KV_OK);
    sim_run_for(s, 50);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 3);

    ck_assert_int_eq(sim_start(s, 3, &o), KV_OK);
    ck_assert(wait_holds(s, 3, "a", "1", 2000));
    ck_assert(wait_holds(s, 3, "b", "2", 2000));
    ck_assert(wait_holds(s, 3, "c", "3", 2000));
    sim_run_for(s, 50);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 0);
    ck_assert_uint_eq(sim_stats(s, 1).hints_replayed, 3);
    sim_free(s);
}
END_TEST

START_TEST(test_hints_over_the_per_node_bound_are_dropped)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    o.max_hints_per_node = 3;
    struct sim *s = with_node_3_down(23, &o);
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        ck_assert_int_eq(sim_put(s, 1, key, "v", KV_LEVEL_QUORUM).r.st, KV_OK);
    }
    sim_run_for(s, 50);
    struct kv_cluster_stats st = sim_stats(s, 1);
    ck_assert_uint_eq(st.hints_pending, 3);
    ck_assert_uint_eq(st.hints_dropped, 2);
    ck_assert_int_eq(sim_start(s, 3, &o), KV_OK);
    ck_assert(wait_holds(s, 3, "k2", "v", 2000));
    sim_run_for(s, 100);
    ck_assert_int_eq(sim_stored(s, 3, "k3", NULL), 0);   /* dropped: anti-entropy's job */
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 0);
    sim_free(s);
}
END_TEST

START_TEST(test_hints_over_the_byte_bound_are_dropped)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    o.max_hint_bytes = 300;
    struct sim *s = with_node_3_down(24, &o);
    char val[101];
    memset(val, 'x', 100);
    val[100] = 0;
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        ck_assert_int_eq(sim_put(s, 1, key, val, KV_LEVEL_QUORUM).r.st, KV_OK);
    }
    sim_run_for(s, 50);
    struct kv_cluster_stats st = sim_stats(s, 1);
    ck_assert_uint_eq(st.hints_pending, 2);          /* about 140 bytes each */
    ck_assert_uint_eq(st.hints_dropped, 3);
    sim_free(s);
}
END_TEST

START_TEST(test_hints_older_than_the_age_bound_are_deleted_not_replayed)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    o.max_hint_age_ms = 1000;
    struct sim *s = with_node_3_down(25, &o);
    ck_assert_int_eq(sim_put(s, 1, "k", "v", KV_LEVEL_QUORUM).r.st, KV_OK);
    sim_run_for(s, 50);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 1);
    sim_run_for(s, 11000);                          /* a tick purges the expired hint */
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 0);
    ck_assert_uint_eq(sim_stats(s, 1).hints_dropped, 1);
    ck_assert_int_eq(sim_start(s, 3, &o), KV_OK);
    sim_wait_view(s, 1, 3, 1);
    sim_run_for(s, 500);
    ck_assert_int_eq(sim_stored(s, 3, "k", NULL), 0);
    ck_assert_uint_eq(sim_stats(s, 1).hints_replayed, 0);
    sim_free(s);
}
END_TEST

START_TEST(test_a_replay_that_is_never_acked_keeps_its_hints_and_is_retried)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    struct sim *s = with_node_3_down(26, &o);
    ck_assert_int_eq(sim_put(s, 1, "k", "v", KV_LEVEL_QUORUM).r.st, KV_OK);
    sim_run_for(s, 50);
    /* Node 3 returns, but node 1 reaches it only through node 2's gossip: the replay
     * batch is lost on the way. */
    sim_cut(s, 1, 3, true);
    ck_assert_int_eq(sim_start(s, 3, &o), KV_OK);
    sim_wait_view(s, 1, 3, 1);
    sim_run_for(s, 2 * TIMEOUT_MS);
    ck_assert_int_eq(sim_stored(s, 3, "k", NULL), 0);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 1);   /* not deleted without an ack */
    sim_cut(s, 1, 3, false);
    ck_assert_msg(wait_holds(s, 3, "k", "v", 11000), "the replay was not retried");
    sim_run_for(s, 50);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 0);
    sim_free(s);
}
END_TEST

START_TEST(test_a_replica_that_never_acked_a_write_gets_a_hint_at_the_timeout)
{
    struct sim *s = sim_test_cluster(27, 3);
    sim_isolate(s, 3, true);                        /* lost before anyone notices */
    ck_assert_int_eq(sim_put(s, 1, "k", "v", KV_LEVEL_QUORUM).r.st, KV_OK);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 0);
    sim_run_for(s, TIMEOUT_MS + 50);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 1);
    sim_isolate(s, 3, false);
    ck_assert_msg(wait_holds(s, 3, "k", "v", 11000), "the hint was not replayed at a tick");
    sim_free(s);
}
END_TEST

/* One byte of a stored hint flipped on node 1's disk (in the value bytes, where protobuf
 * would still decode it): the hint is dropped, never replayed as a different value. */
START_TEST(test_a_hint_with_a_flipped_byte_is_dropped_never_replayed)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    struct sim *s = with_node_3_down(26, &o);
    ck_assert_int_eq(sim_put(s, 1, "k", "value", KV_LEVEL_QUORUM).r.st, KV_OK);
    sim_run_for(s, 50);
    ck_assert_uint_eq(sim_stats(s, 1).hints_pending, 1);

    struct kv_store *st = sim_node(s, 1)->store;
    struct kv_store_iter *it = NULL;
    ck_assert_int_eq(kv_store_raw_iter_new(st, KV_CF_HINTS, kv_slice_of(NULL, 0),
                                           kv_slice_of(NULL, 0), &it, NULL), KV_OK);
    struct kv_slice key;
    struct kv_record rec;
    ck_assert_int_eq(kv_store_iter_next(it, &key, &rec, NULL), KV_OK);
    uint8_t k[64], v[256];
    ck_assert_uint_le(key.len, sizeof k);
    ck_assert_uint_le(rec.value.len, sizeof v);
    memcpy(k, key.ptr, key.len);
    memcpy(v, rec.value.ptr, rec.value.len);
    size_t klen = key.len, vlen = rec.value.len;
    kv_store_iter_free(it);
    const uint8_t *at = memmem(v, vlen, "value", 5);
    ck_assert_ptr_nonnull(at);
    v[at - v] = 'V';                               /* "Value": still a valid protobuf */
    ck_assert_int_eq(kv_store_raw_put(st, KV_CF_HINTS, kv_slice_of(k, klen),
                                      kv_slice_of(v, vlen), true, NULL), KV_OK);

    ck_assert_int_eq(sim_start(s, 3, &o), KV_OK);
    sim_wait_view(s, 1, 3, 1);
    sim_run_for(s, 2000);
    ck_assert(!sim_stored_value_is(s, 3, "k", "Value"));   /* never the flipped bytes */
    ck_assert_int_eq(sim_stored(s, 3, "k", NULL), 0);       /* the hint was not sent */
    ck_assert_uint_ge(sim_stats(s, 1).hints_dropped, 1);
    ck_assert_uint_eq(sim_stats(s, 1).hints_replayed, 0);
    sim_free(s);
}
END_TEST

int main(void)
{
    kv_log_set_level(KV_LOG_ERROR);
    Suite *s = suite_create("hints");
    TCase *t = tcase_create("hints");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_a_write_while_a_replica_is_down_is_hinted_and_replayed_when_it_returns);
    tcase_add_test(t, test_hints_survive_a_restart_of_the_coordinator_that_holds_them);
    tcase_add_test(t, test_hints_over_the_per_node_bound_are_dropped);
    tcase_add_test(t, test_hints_over_the_byte_bound_are_dropped);
    tcase_add_test(t, test_hints_older_than_the_age_bound_are_deleted_not_replayed);
    tcase_add_test(t, test_a_replay_that_is_never_acked_keeps_its_hints_and_is_retried);
    tcase_add_test(t, test_a_replica_that_never_acked_a_write_gets_a_hint_at_the_timeout);
    tcase_add_test(t, test_a_hint_with_a_flipped_byte_is_dropped_never_replayed);
    suite_add_tcase(s, t);
    return kv_check_run(s, true);
}
