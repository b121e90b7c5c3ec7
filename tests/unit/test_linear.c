/* tests/unit/test_linear.c -- the LINEARIZABLE level (cluster/linear.c, MW-ABD) on whole
 * simulated nodes: what it guarantees that QUORUM does not (a write through a coordinator
 * whose clock trails is not lost; no new->old inversion), what it costs in round trips,
 * and that the minority side of a partition fails instead of lying.
 *
 * Every test waits until each node sees every other one up. Replicas are checked in their
 * stores directly. */
#include <check.h>
#include "tests/check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster.h"
#include "common/log.h"
#include "tests/sim/simcall.h"

#define TIMEOUT_MS SIM_TEST_TIMEOUT_MS


/* Node 2's wall clock trails by 10 s. Gossip is slow (1 s), so node 2's HLC last observed
 * the others well before the test's writes, and node 2 is cut from node 1: the write
 * through node 1 reaches nodes 1 and 3 only, and nothing from node 1 reaches node 2. */
static struct sim *skewed_cluster(uint64_t seed)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    o.gossip_interval_ms = 1000;
    o.default_timeout_ms = 500;
    struct sim *s = sim_cluster_with(seed, 3, &o);
    sim_node(s, 2)->clock_offset_ms = -10000;
    sim_run_for(s, 1000);           /* past a gossip round, so both writes fall between two */
    sim_cut(s, 1, 2, true);
    return s;
}

START_TEST(test_a_write_through_a_coordinator_10s_behind_is_lost_at_quorum_but_not_at_linearizable)
{
    /* QUORUM: the later write through node 2 is acknowledged, yet vanishes. */
    struct sim *s = skewed_cluster(1);
    struct sim_call a = sim_put(s, 1, "q", "first", KV_LEVEL_QUORUM);
    struct sim_call b = sim_put(s, 2, "q", "second", KV_LEVEL_QUORUM);
    ck_assert_int_eq(a.r.st, KV_OK);
    ck_assert_int_eq(b.r.st, KV_OK);
    ck_assert_int_lt(kv_version_cmp(b.r.version, a.r.version), 0);   /* stamped lower */
    struct sim_call g = sim_get(s, 3, "q", KV_LEVEL_QUORUM);
    ck_assert_int_eq(g.r.st, KV_OK);
    ck_assert_msg(sim_call_value_is(&g, "first"), "QUORUM kept the acknowledged later write");

    /* LINEARIZABLE, same scenario: phase 1 meets node 3, which holds "first". */
    struct sim_call la = sim_put(s, 1, "l", "first", KV_LEVEL_LINEARIZABLE);
    struct sim_call lb = sim_put(s, 2, "l", "second", KV_LEVEL_LINEARIZABLE);
    ck_assert_int_eq(la.r.st, KV_OK);
    ck_assert_int_eq(lb.r.st, KV_OK);
    ck_assert_uint_eq(lb.r.round_trips, 2);
    ck_assert_int_gt(kv_version_cmp(lb.r.version, la.r.version), 0);
    for (uint32_t via = 1; via <= 3; via++) {
        struct sim_call lg = sim_get(s, via, "l", KV_LEVEL_LINEARIZABLE);
        ck_assert_int_eq(lg.r.st, KV_OK);
        ck_assert(sim_call_value_is(&lg, "second"));
    }
    sim_free(s);
}
END_TEST

START_TEST(test_a_read_costs_one_round_trip_when_the_quorum_agrees_and_a_write_two)
{
    struct sim *s = sim_test_cluster(2, 3);
    struct sim_call p = sim_put(s, 1, "k", "v", KV_LEVEL_LINEARIZABLE);
    ck_assert_int_eq(p.r.st, KV_OK);
    ck_assert_uint_eq(p.r.round_trips, 2);
    ck_assert_uint_ge(p.r.acks, 2);
    ck_assert_uint_eq(p.r.required, 2);
    sim_run_for(s, 50);
    struct sim_call g = sim_get(s, 2, "k", KV_LEVEL_LINEARIZABLE);
    ck_assert_int_eq(g.r.st, KV_OK);
    ck_assert(sim_call_value_is(&g, "v"));
    ck_assert_uint_eq(g.r.round_trips, 1);
    ck_assert_int_eq(kv_version_cmp(g.r.version, p.r.version), 0);
    struct sim_call d = sim_del(s, 3, "k", KV_LEVEL_LINEARIZABLE);
    ck_assert_int_eq(d.r.st, KV_OK);
    ck_assert_int_gt(kv_version_cmp(d.r.version, p.r.version), 0);
    ck_assert_int_eq(sim_get(s, 1, "k", KV_LEVEL_LINEARIZABLE).r.st, KV_NOT_FOUND);
    ck_assert_int_eq(sim_get(s, 1, "never", KV_LEVEL_LINEARIZABLE).r.st, KV_NOT_FOUND);
    struct kv_cluster_stats st = sim_stats(s, 1);
    ck_assert_uint_ge(st.linear_ops, 3);
    ck_assert_uint_ge(st.linear_round_trips, 4);
    sim_free(s);
}
END_TEST

/* "old" is everywhere; then "new" reaches node 1 only (a write at ONE while node 1 is
 * isolated, healed before the detector notices: a partial write, as a LINEARIZABLE write
 * in progress leaves it). The first read, via node 3, is cut from node 2, so its quorum
 * is {3, 1} and it sees "new"; the second read, via node 2, has node 1 isolated, so its
 * quorum is {2, 3}. */
static void inversion_run(bool skip_writeback, uint64_t seed, struct sim_call *first,
                          struct sim_call *second)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    o.debug_skip_writeback = skip_writeback;
    struct sim *s = sim_cluster_with(seed, 3, &o);
    ck_assert_int_eq(sim_put(s, 2, "k", "old", KV_LEVEL_ALL).r.st, KV_OK);
    sim_isolate(s, 1, true);
    ck_assert_int_eq(sim_put(s, 1, "k", "new", KV_LEVEL_ONE).r.st, KV_OK);
    sim_isolate(s, 1, false);
    ck_assert(sim_stored_value_is(s, 1, "k", "new"));
    ck_assert(sim_stored_value_is(s, 3, "k", "old"));
    sim_cut(s, 3, 2, true);
    *first = sim_get(s, 3, "k", KV_LEVEL_LINEARIZABLE);
    sim_cut(s, 3, 2, false);
    sim_isolate(s, 1, true);
    *second = sim_get(s, 2, "k", KV_LEVEL_LINEARIZABLE);
    sim_isolate(s, 1, false);
    if (!skip_writeback) {
        ck_assert_uint_eq(first->r.round_trips, 2);
        ck_assert_uint_ge(sim_stats(s, 3).linear_writebacks, 1);
    }
    sim_free(s);
}

START_TEST(test_a_read_that_sees_a_partial_write_writes_it_back_so_no_later_read_is_older)
{
    struct sim_call a, b;
    inversion_run(false, 3, &a, &b);
    ck_assert_int_eq(a.r.st, KV_OK);
    ck_assert(sim_call_value_is(&a, "new"));
    ck_assert_int_eq(b.r.st, KV_OK);
    ck_assert_msg(sim_call_value_is(&b, "new"), "new->old inversion");
}
END_TEST

START_TEST(test_with_debug_skip_writeback_the_new_to_old_inversion_is_reproducible)
{
    struct sim_call a, b;
    inversion_run(true, 3, &a, &b);
    ck_assert_int_eq(a.r.st, KV_OK);
    ck_assert(sim_call_value_is(&a, "new"));
    ck_assert_uint_eq(a.r.round_trips, 1);
    ck_assert_int_eq(b.r.st, KV_OK);
    ck_assert(sim_call_value_is(&b, "old"));      /* the anomaly the flag exists to show */
}
END_TEST

START_TEST(test_the_minority_side_of_a_partition_fails_and_never_succeeds)
{
    struct sim *s = sim_test_cluster(4, 3);
    sim_isolate(s, 1, true);
    /* Before the detector notices: sent, unanswered: TIMEOUT, and phase 2 never ran. */
    struct sim_call p = sim_put(s, 1, "k", "minority", KV_LEVEL_LINEARIZABLE);
    ck_assert_int_eq(p.r.st, KV_TIMEOUT);
    ck_assert_uint_eq(p.r.acks, 0);
    ck_assert_msg(strstr(p.msg, "not applied"), "message: %s", p.msg);
    struct sim_call g = sim_get(s, 1, "k", KV_LEVEL_LINEARIZABLE);
    ck_assert_int_eq(g.r.st, KV_TIMEOUT);
    /* The majority side goes on. */
    ck_assert_int_eq(sim_put(s, 2, "k", "majority", KV_LEVEL_LINEARIZABLE).r.st, KV_OK);
    /* After it notices: UNAVAILABLE before sending. */
    sim_wait_view(s, 1, 2, 0);
    sim_wait_view(s, 1, 3, 0);
    p = sim_put(s, 1, "k", "minority", KV_LEVEL_LINEARIZABLE);
    ck_assert_int_eq(p.r.st, KV_UNAVAILABLE);
    ck_assert_uint_eq(p.r.required, 2);
    ck_assert_uint_eq(p.r.alive, 1);
    g = sim_get(s, 1, "k", KV_LEVEL_LINEARIZABLE);
    ck_assert_int_eq(g.r.st, KV_UNAVAILABLE);
    ck_assert_int_eq(sim_del(s, 1, "k", KV_LEVEL_LINEARIZABLE).r.st, KV_UNAVAILABLE);
    sim_run_for(s, 100);
    for (uint32_t id = 1; id <= 3; id++)
        ck_assert(!sim_stored_value_is(s, id, "k", "minority"));
    sim_isolate(s, 1, false);
    sim_wait_view(s, 1, 2, 1);
    struct sim_call after = sim_get(s, 1, "k", KV_LEVEL_LINEARIZABLE);
    ck_assert_int_eq(after.r.st, KV_OK);
    ck_assert(sim_call_value_is(&after, "majority"));
    sim_free(s);
}
END_TEST

/* "old" everywhere, node 1 isolated (and seen so), "new" written at LINEARIZABLE on the
 * majority side; then a LINEARIZABLE read on the minority side, node 1. */
static struct sim_call minority_read(bool read_one, uint64_t seed, struct sim_call *majority)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    o.debug_linear_read_one = read_one;
    struct sim *s = sim_cluster_with(seed, 3, &o);
    ck_assert_int_eq(sim_put(s, 2, "k", "old", KV_LEVEL_ALL).r.st, KV_OK);
    sim_isolate(s, 1, true);
    sim_wait_view(s, 1, 2, 0);
    sim_wait_view(s, 1, 3, 0);
    struct sim_call w = sim_put(s, 2, "k", "new", KV_LEVEL_LINEARIZABLE);
    ck_assert_int_eq(w.r.st, KV_OK);
    *majority = sim_get(s, 3, "k", KV_LEVEL_LINEARIZABLE);
    struct sim_call g = sim_get(s, 1, "k", KV_LEVEL_LINEARIZABLE);
    /* Writes keep their quorum in either mode: the minority cannot write. */
    ck_assert_int_eq(sim_put(s, 1, "k", "minority", KV_LEVEL_LINEARIZABLE).r.st,
                     KV_UNAVAILABLE);
    sim_free(s);
    return g;
}

START_TEST(test_with_debug_linear_read_one_the_minority_side_reads_a_stale_value)
{
    /* Normal mode: the minority read fails, it does not lie. */
    struct sim_call maj;
    struct sim_call g = minority_read(false, 7, &maj);
    ck_assert_int_eq(maj.r.st, KV_OK);
    ck_assert(sim_call_value_is(&maj, "new"));
    ck_assert_int_eq(g.r.st, KV_UNAVAILABLE);
    ck_assert_uint_eq(g.r.required, 2);
    /* The broken mode: one live replica is enough, and its first reply is the answer: the
     * value overwritten by an acknowledged write that finished before this read began. */
    g = minority_read(true, 7, &maj);
    ck_assert_int_eq(maj.r.st, KV_OK);
    ck_assert(sim_call_value_is(&maj, "new"));
    ck_assert_int_eq(g.r.st, KV_OK);
    ck_assert_msg(sim_call_value_is(&g, "old"), "the broken mode did not read stale");
    ck_assert_uint_eq(g.r.round_trips, 1);
}
END_TEST

START_TEST(test_a_write_whose_second_phase_acks_are_lost_times_out_with_its_acks)
{
    struct sim *s = sim_test_cluster(5, 3);
    struct sim_call c = {0};
    kv_cluster_put(sim_cluster(s, 1), kv_slice_str("k"), kv_slice_str("v"), 0,
                   KV_LEVEL_LINEARIZABLE, 0, sim_call_cb, &c);
    /* Let phase 1 finish and phase 2 go out, then lose what comes back. */
    sim_run_for(s, 11);
    sim_cut(s, 1, 2, true);
    sim_cut(s, 1, 3, true);
    sim_call_wait(s, &c);
    ck_assert_msg(c.r.st == KV_TIMEOUT || c.r.st == KV_OK, "st %d: %s", c.r.st, c.msg);
    if (c.r.st == KV_TIMEOUT) {
        ck_assert_uint_le(c.r.acks, 1);
        ck_assert_msg(strstr(c.msg, "may have been applied") || strstr(c.msg, "not applied"),
                      "message: %s", c.msg);
    }
    sim_free(s);
}
END_TEST

START_TEST(test_under_loss_and_duplication_no_read_is_older_than_an_acknowledged_write)
{
    struct sim *s = sim_test_cluster(6, 3);
    sim_set_loss(s, 0.05);
    sim_set_dup(s, 0.3);
    int last_acked = -1, last_read = -1, ok = 0;
    for (int i = 0; i < 80; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        struct sim_call p = sim_put(s, (uint32_t)(i % 3) + 1, "k", v, KV_LEVEL_LINEARIZABLE);
        ck_assert_msg(p.r.st == KV_OK || p.r.st == KV_TIMEOUT, "put: %s", p.msg);
        ck_assert_uint_le(p.r.acks, 3);
        if (p.r.st == KV_OK) {
            last_acked = i;
            ok++;
        }
        struct sim_call g = sim_get(s, (uint32_t)(i + 1) % 3 + 1, "k", KV_LEVEL_LINEARIZABLE);
        ck_assert_msg(g.r.st == KV_OK || g.r.st == KV_TIMEOUT, "get: %s", g.msg);
        if (g.r.st == KV_OK) {
            ck_assert_int_eq(g.value[0], 'v');
            int seen = atoi((const char *)g.value + 1);
            ck_assert_int_ge(seen, last_acked);       /* no lost acknowledged write */
            ck_assert_int_ge(seen, last_read);        /* no new->old inversion */
            ck_assert_int_le(seen, i);
            last_read = seen;
        }
    }
    ck_assert_int_gt(ok, 40);
    sim_free(s);
}
END_TEST

int main(void)
{
    kv_log_set_level(KV_LOG_ERROR);
    Suite *s = suite_create("linear");
    TCase *t = tcase_create("linear");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_a_write_through_a_coordinator_10s_behind_is_lost_at_quorum_but_not_at_linearizable);
    tcase_add_test(t, test_a_read_costs_one_round_trip_when_the_quorum_agrees_and_a_write_two);
    tcase_add_test(t, test_a_read_that_sees_a_partial_write_writes_it_back_so_no_later_read_is_older);
    tcase_add_test(t, test_with_debug_skip_writeback_the_new_to_old_inversion_is_reproducible);
    tcase_add_test(t, test_the_minority_side_of_a_partition_fails_and_never_succeeds);
    tcase_add_test(t, test_with_debug_linear_read_one_the_minority_side_reads_a_stale_value);
    tcase_add_test(t, test_a_write_whose_second_phase_acks_are_lost_times_out_with_its_acks);
    tcase_add_test(t, test_under_loss_and_duplication_no_read_is_older_than_an_acknowledged_write);
    suite_add_tcase(s, t);
    return kv_check_run(s, true);
}
