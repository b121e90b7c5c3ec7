/* tests/unit/test_deadline.c -- deadlines end to end in cluster/ (cluster.h (7)) on
 * simulated nodes: a coordinator answers TIMEOUT at the deadline with its acks, and a
 * replica drops, unanswered and counted, work whose deadline passed before it got there --
 * because the message was slow (its deadline rides the HLC, so skewed wall clocks move
 * nothing) or it waited too long on the replica. Hints are off (max_hint_bytes 1) wherever the test
 * asks whether a replica applied a write, so only the dropped message could have done it. */
#include <check.h>
#include "tests/check_run.h"
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster.h"
#include "common/log.h"
#include "tests/sim/simcall.h"

static struct sim *cluster_no_hints(uint64_t seed)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    o.max_hint_bytes = 1;                   /* every hint is over the bound: none kept */
    return sim_cluster_with(seed, 3, &o);
}

static uint64_t dropped(struct sim *s)
{
    uint64_t n = 0;
    for (uint32_t id = 1; id <= 3; id++)
        n += sim_stats(s, id).expired_dropped;
    return n;
}

START_TEST(test_a_write_that_reaches_its_replicas_after_its_deadline_is_applied_nowhere)
{
    struct sim *s = cluster_no_hints(1);
    /* Every message now takes 1500 ms: more than the 50 ms deadline plus the 1000 ms of
     * lateness tolerated, as a replica paused in SIGSTOP would see it after SIGCONT. */
    sim_set_delay(s, 1500, 1500);
    struct sim_call c = {0};
    kv_cluster_put(sim_cluster(s, 1), kv_slice_str("k"), kv_slice_str("v"), 0, KV_LEVEL_ALL,
                   50, sim_call_cb, &c);
    sim_call_wait(s, &c);
    ck_assert_int_eq(c.r.st, KV_TIMEOUT);
    ck_assert_uint_eq(c.r.acks, 1);         /* its own replica: no network in between */
    ck_assert_uint_eq(c.r.required, 3);
    sim_run_for(s, 3000);                   /* long after every message arrived */
    ck_assert(sim_stored_value_is(s, 1, "k", "v"));
    for (uint32_t id = 2; id <= 3; id++)
        ck_assert_int_eq(sim_stored(s, id, "k", NULL), 0);
    ck_assert_uint_eq(sim_stats(s, 2).expired_dropped, 1);
    ck_assert_uint_eq(sim_stats(s, 3).expired_dropped, 1);
    sim_free(s);
}
END_TEST

START_TEST(test_a_slow_message_within_its_deadline_is_still_applied)
{
    struct sim *s = cluster_no_hints(2);
    sim_set_delay(s, 40, 40);               /* a 300 ms deadline: arrives in time */
    struct sim_call c = sim_put(s, 1, "k", "v", KV_LEVEL_ALL);
    ck_assert_int_eq(c.r.st, KV_OK);
    ck_assert_uint_eq(c.r.acks, 3);
    for (uint32_t id = 1; id <= 3; id++)
        ck_assert(sim_stored_value_is(s, id, "k", "v"));
    ck_assert_uint_eq(dropped(s), 0);
    sim_free(s);
}
END_TEST

START_TEST(test_wall_clocks_seconds_apart_drop_nothing_because_deadlines_ride_the_hlc)
{
    struct sim *s = cluster_no_hints(3);
    sim_node(s, 3)->clock_offset_ms = 30000;    /* a replica 30 s ahead */
    sim_node(s, 2)->clock_offset_ms = -30000;   /* a coordinator 30 s behind */
    sim_run_for(s, 100);                        /* a few gossip rounds: HLCs meet */
    const char *keys[] = {"a", "b", "c", "d"};
    for (uint32_t via = 1; via <= 3; via++) {
        struct sim_call p = sim_put(s, via, keys[via], "v", KV_LEVEL_ALL);
        ck_assert_int_eq(p.r.st, KV_OK);
        for (uint32_t id = 1; id <= 3; id++)
            ck_assert(sim_stored_value_is(s, id, keys[via], "v"));
    }
    ck_assert_uint_eq(dropped(s), 0);
    sim_free(s);
}
END_TEST

START_TEST(test_late_reads_and_cas_rounds_are_dropped_and_answer_timeout)
{
    struct sim *s = cluster_no_hints(4);
    struct sim_call p = sim_put(s, 1, "k", "v", KV_LEVEL_ALL);
    ck_assert_int_eq(p.r.st, KV_OK);
    sim_set_delay(s, 1500, 1500);
    struct sim_call g = {0};
    kv_cluster_get(sim_cluster(s, 2), kv_slice_str("k"), KV_LEVEL_QUORUM, 50, sim_call_cb, &g);
    sim_call_wait(s, &g);
    ck_assert_int_eq(g.r.st, KV_TIMEOUT);
    sim_run_for(s, 3000);
    uint64_t after_get = dropped(s);
    ck_assert_uint_ge(after_get, 2);        /* the reads of the replicas it asked */
    struct sim_call cas = {0};
    kv_cluster_cas(sim_cluster(s, 1), kv_slice_str("k"), false, kv_slice_str("v"),
                   kv_slice_str("w"), 50, sim_call_cb, &cas);
    sim_call_wait(s, &cas);
    ck_assert_int_eq(cas.r.st, KV_TIMEOUT);
    sim_run_for(s, 3000);
    ck_assert_uint_gt(dropped(s), after_get);   /* the prepares, dropped unanswered */
    sim_set_delay(s, 1, 5);
    for (uint32_t id = 1; id <= 3; id++)        /* the CAS applied nowhere */
        ck_assert(sim_stored_value_is(s, id, "k", "v"));
    sim_free(s);
}
END_TEST

int main(void)
{
    kv_log_set_level(KV_LOG_ERROR);
    Suite *s = suite_create("deadline");
    TCase *t = tcase_create("deadline");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_a_write_that_reaches_its_replicas_after_its_deadline_is_applied_nowhere);
    tcase_add_test(t, test_a_slow_message_within_its_deadline_is_still_applied);
    tcase_add_test(t, test_wall_clocks_seconds_apart_drop_nothing_because_deadlines_ride_the_hlc);
    tcase_add_test(t, test_late_reads_and_cas_rounds_are_dropped_and_answer_timeout);
    suite_add_tcase(s, t);
    return kv_check_run(s, true);
}
