/* tests/unit/test_corrupt.c -- a replica whose copy of a key fails its checksum, on the
 * simulator (cluster/coord.c (8), storage kv_write.replace_corrupt).
 *
 * The bad copy is planted under the merge operator with a Put of a record whose checksum
 * no longer matches, as a flipped bit on that replica's disk would leave it. Reads at any
 * level must answer from the other replicas and never with the bad bytes; the coordinator
 * then replaces the bad copy with the newest good record. */
#include <check.h>
#include "tests/check_run.h"
#include <stdlib.h>
#include <string.h>
#include "storage/record.h"
#include "tests/sim/simcall.h"
#include "tests/unit/store_fixture.h"

static void plant(struct sim *s, uint32_t id, const char *key)
{
    struct kv_record r = {.ver = {1, 1}, .value = kv_slice_str("garbage!")};
    plant_corrupt(sim_node(s, id)->store, key, &r);
}

static enum kv_status stored_status(struct sim *s, uint32_t id, const char *key,
                                    const char *want)
{
    struct kv_store_item it = {0};
    enum kv_status st = kv_store_get(sim_node(s, id)->store, kv_slice_str(key), KV_STORE_RAW,
                                     &it, NULL);
    if (st == KV_OK && want) {
        ck_assert_uint_eq(it.rec.value.len, strlen(want));
        ck_assert(memcmp(it.rec.value.ptr, want, strlen(want)) == 0);
    }
    kv_store_item_free(&it);
    return st;
}

/* Every level, coordinated by the corrupt replica itself (its own error answer comes
 * first) and by another node: the right value every time, then the copy is repaired. */
START_TEST(test_a_corrupt_replica_is_never_the_answer_and_is_repaired_from_the_others)
{
    const enum kv_level levels[] = {KV_LEVEL_ONE, KV_LEVEL_QUORUM, KV_LEVEL_ALL};
    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++)
        for (uint32_t via = 1; via <= 3; via += 2) {
            struct sim *s = sim_test_cluster(40 + l * 4 + via, 3);
            struct sim_call p = sim_put(s, 1, "k", "truth", KV_LEVEL_ALL);
            ck_assert_int_eq(p.r.st, KV_OK);
            plant(s, 3, "k");
            ck_assert_int_eq(stored_status(s, 3, "k", NULL), KV_CORRUPTION);
            struct sim_call g = sim_get(s, via, "k", levels[l]);
            if (levels[l] == KV_LEVEL_ALL) {
                /* ALL needs node 3's answer: an error, never its bytes. */
                ck_assert_int_eq(g.r.st, KV_CORRUPTION);
            } else {
                ck_assert_msg(g.r.st == KV_OK, "%s via %u: %s", kv_level_name(levels[l]), via,
                              kv_status_name(g.r.st));
                ck_assert(sim_call_value_is(&g, "truth"));
            }
            sim_run_for(s, 100);     /* at ONE the answer may precede node 3's reply */
            ck_assert_uint_ge(sim_stats(s, 3).corrupt_reads, 1);
            ck_assert_uint_ge(sim_stats(s, via).corrupt_replies, 1);
            ck_assert_uint_ge(sim_stats(s, via).corrupt_repairs, 1);
            ck_assert_int_eq(stored_status(s, 3, "k", "truth"), KV_OK);   /* replaced */
            struct sim_call again = sim_get(s, via, "k", KV_LEVEL_ALL);
            ck_assert_int_eq(again.r.st, KV_OK);
            ck_assert(sim_call_value_is(&again, "truth"));
            sim_free(s);
        }
}
END_TEST

/* With no good copy anywhere else there is nothing to repair from: the key keeps
 * answering an error at the corrupt replica, and nothing is invented. */
START_TEST(test_without_a_good_copy_nothing_is_repaired_or_invented)
{
    struct sim *s = sim_test_cluster(77, 3);
    plant(s, 3, "lonely");
    struct sim_call g = sim_get(s, 3, "lonely", KV_LEVEL_QUORUM);
    ck_assert_int_eq(g.r.st, KV_NOT_FOUND);          /* what nodes 1 and 2 hold */
    sim_run_for(s, 100);
    ck_assert_uint_eq(sim_stats(s, 3).corrupt_repairs, 0);
    ck_assert_int_eq(stored_status(s, 3, "lonely", NULL), KV_CORRUPTION);
    /* A write never reads, so it is acknowledged by node 3 too (a merge operand above the
     * bad bytes); node 3 still cannot answer the key until the next read repairs it. */
    struct sim_call p = sim_put(s, 1, "lonely", "now", KV_LEVEL_ALL);
    ck_assert_int_eq(p.r.st, KV_OK);
    ck_assert_int_eq(stored_status(s, 3, "lonely", NULL), KV_CORRUPTION);
    struct sim_call r = sim_get(s, 1, "lonely", KV_LEVEL_QUORUM);
    ck_assert_int_eq(r.r.st, KV_OK);
    ck_assert(sim_call_value_is(&r, "now"));
    sim_run_for(s, 100);
    ck_assert_int_eq(stored_status(s, 3, "lonely", "now"), KV_OK);   /* repaired by that read */
    sim_free(s);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("corrupt");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_a_corrupt_replica_is_never_the_answer_and_is_repaired_from_the_others);
    tcase_add_test(t, test_without_a_good_copy_nothing_is_repaired_or_invented);
    suite_add_tcase(su, t);
    return kv_check_run(su, true);
}
