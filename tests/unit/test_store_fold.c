/* tests/unit/test_store_fold.c -- the commit thread's hot-key folds (storage/commit.c (6)):
 * an often-written key is stored as a Put of its folded history every few writes, which
 * must never change what last-writer-wins keeps: not across out-of-order versions, not
 * when the key is written twice in one WriteBatch (where a fold's read cannot see the
 * batch), not across flushes. */
#include <check.h>
#include "tests/check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/clock.h"
#include "storage/store.h"
#include "tests/unit/store_fixture.h"

static uint64_t folds(struct kv_store *st)
{
    struct kv_store_health h;
    kv_store_health(st, &h);
    return h.hot_key_folds;
}

START_TEST(test_fold_a_key_written_often_is_folded_and_keeps_the_newest_version)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    /* Versions arrive out of order, as replicas see them: the highest must win. */
    uint64_t max = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t v = (uint64_t)((i * 37) % 200) + 1;
        char val[32];
        snprintf(val, sizeof val, "v%llu", (unsigned long long)v);
        put(st, "hot", (struct w){H(v), 1, val}, 0);
        if (v > max)
            max = v;
        char want[32];
        snprintf(want, sizeof want, "v%llu", (unsigned long long)max);
        expect_live(st, "hot", want);
        if (i == 100)
            flush(st);
    }
    ck_assert_uint_ge(folds(st), 200 / 4 - 1);
    /* A key written once or twice is never folded. */
    uint64_t before = folds(st);
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "cold%d", i);
        put(st, k, (struct w){H(1), 1, "c"}, 0);
        put(st, k, (struct w){H(2), 1, "d"}, 0);
    }
    ck_assert_uint_eq(folds(st), before);
    kv_store_close(st);
    st = open_at(dir, KV_SYNC_BATCH, 1000);   /* and it all survives a reopen */
    expect_live(st, "hot", "v200");
    expect_live(st, "cold7", "d");
    kv_store_close(st);
}
END_TEST

/* The key twice in one WriteBatch, newer first, at every alignment of the fold counter:
 * a fold of the second (older) write would read the store without the first and Put over
 * it, losing the newer version. */
START_TEST(test_fold_never_hides_a_newer_write_earlier_in_the_same_batch)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    for (int offset = 0; offset < 8; offset++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", offset);
        for (int i = 0; i < offset; i++)
            put(st, key, (struct w){H(1 + (uint64_t)i), 1, "old"}, 0);
        struct kv_write two[2] = {mk(key, (struct w){H(100), 1, "newest"}, 0),
                                  mk(key, (struct w){H(50), 1, "older"}, 0)};
        struct kv_err err = {0};
        ck_assert_msg(kv_store_write(st, two, 2, &err) == KV_OK, "write: %s", err.msg);
        expect_live(st, key, "newest");
        expect_raw(st, key, (struct w){H(100), 1, "newest"});
        put(st, key, (struct w){H(60), 1, "late"}, 0);   /* later batches fold on it */
        put(st, key, (struct w){H(70), 1, "later"}, 0);
        expect_live(st, key, "newest");
    }
    ck_assert_uint_gt(folds(st), 0);
    kv_store_close(st);
}
END_TEST

/* A tombstone folded into a Put still hides the value, and its purge after the grace
 * cannot bring back the version below it (RocksDB turns a filtered value into a deletion
 * marker: lww.c (5)). */
START_TEST(test_fold_a_folded_tombstone_hides_and_purges_without_resurrection)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    put(st, "t", (struct w){H(1), 1, "base"}, 0);
    compact(st);                                      /* "base" in the bottom level */
    for (int i = 2; i < 12; i++)                      /* enough writes to fold */
        put(st, "t", (struct w){H((uint64_t)i), 1, i < 11 ? "mid" : NULL}, 0);
    ck_assert_uint_gt(folds(st), 0);
    expect_live(st, "t", NULL);
    flush(st);
    fake_now += 2000;                                 /* past the store's 1 s grace */
    compact(st);
    expect_live(st, "t", NULL);
    ck_assert_int_eq(get_raw_status(st, "t"), KV_NOT_FOUND);
    kv_store_close(st);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("store_fold");
    TCase *tc = tcase_create("fold");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fold_a_key_written_often_is_folded_and_keeps_the_newest_version);
    tcase_add_test(tc, test_fold_never_hides_a_newer_write_earlier_in_the_same_batch);
    tcase_add_test(tc, test_fold_a_folded_tombstone_hides_and_purges_without_resurrection);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kv_check_run(suite(), true); }
