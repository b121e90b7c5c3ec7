/* tests/unit/test_store.c -- the RocksDB store (storage/store.h) in temporary directories:
 * reads, last writer wins, tombstones and TTL, iterators, plain column families.
 *
 * Stores, the fake clock and the shared assertions come from tests/unit/store_fixture.h;
 * durability, async writes, event-loop reads and disk health are test_store_life.c;
 * replacing corrupt records is tested in test_store_repair.c. */
#include <check.h>
#include "tests/check_run.h"
#include <ftw.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/clock.h"
#include "common/log.h"
#include "storage/store.h"
#include "storage/store_int.h"          /* kv_store__rocks_err, kv_store__note_write */

#include "tests/unit/store_fixture.h"

/* ------------------------------------------------------------------ basic reads -- */

START_TEST(test_store_a_put_is_read_back_with_its_version)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    put(st, "k", (struct w){kv_hlc_make(T0, 1), 7, "value"}, 0);
    expect_live(st, "k", "value");
    expect_raw(st, "k", (struct w){kv_hlc_make(T0, 1), 7, "value"});
    expect_live(st, "missing", NULL);
    ck_assert_int_eq(get_raw_status(st, "missing"), KV_NOT_FOUND);
    kv_store_close(st);
}
END_TEST

START_TEST(test_store_open_reports_a_bad_path_or_mode_as_an_error_value)
{
    struct kv_store_opts o;
    kv_store_opts_default(&o);
    ck_assert_int_eq(o.sync, KV_SYNC_BATCH);
    ck_assert_uint_eq(o.grace_ms, 10ull * 24 * 3600 * 1000);
    struct kv_store *st = (struct kv_store *)&o;     /* must be reset to NULL */
    struct kv_err err = {0};
    ck_assert_int_eq(kv_store_open(&o, &st, &err), KV_INVALID);   /* no path */
    ck_assert_ptr_null(st);
    char path[256];
    snprintf(path, sizeof path, "%s/no/such/parent/db", g_root);
    o.path = path;
    enum kv_status s = kv_store_open(&o, &st, &err);
    ck_assert_msg(s == KV_IOERR, "got %s: %s", kv_status_name(s), err.msg);
    ck_assert_ptr_null(st);
    ck_assert(strstr(err.msg, "open") != NULL);
    fresh_dir(path, sizeof path);
    o.sync = (enum kv_sync)7;
    ck_assert_int_eq(kv_store_open(&o, &st, NULL), KV_INVALID);
}
END_TEST

START_TEST(test_store_bad_writes_are_refused_and_never_call_back)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    static char big[KV_STORE_KEY_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    struct kv_write bad[3] = {mk("", (struct w){H(1), 1, "v"}, 0),
                              mk(big, (struct w){H(1), 1, "v"}, 0),
                              mk("k", (struct w){H(1), 1, NULL}, 0)};
    bad[2].rec.value = kv_slice_str("tombstone with bytes");
    for (int i = 0; i < 3; i++) {
        struct kv_err err = {0};
        ck_assert_int_eq(kv_store_write(st, &bad[i], 1, &err), KV_INVALID);
        ck_assert_int_eq(err.code, KV_INVALID);
    }
    /* One bad record refuses the whole (atomic) batch. */
    struct kv_write mixed[2] = {mk("ok", (struct w){H(1), 1, "v"}, 0), bad[0]};
    ck_assert_int_eq(kv_store_write(st, mixed, 2, NULL), KV_INVALID);
    expect_live(st, "ok", NULL);
    kv_store_close(st);
}
END_TEST

/* ---------------------------------------------------------------- last writer wins -- */

#define NW 4
/* Two write sets: one where a tombstone wins (tie on hlc broken by node), one where a
 * value wins over a tombstone. */
static const struct w sets[2][NW] = {
    {{H(100), 1, "a"}, {H(200), 1, "b"}, {H(200), 2, NULL}, {H(150), 9, "c"}},
    {{H(100), 1, "a"}, {H(300), 1, "d"}, {H(200), 2, NULL}, {H(250), 1, "e"}},
};

static int perms[24][NW];
static int n_perms;

static void gen_perms(int *a, int k)
{
    if (k == NW) {
        memcpy(perms[n_perms++], a, sizeof perms[0]);
        return;
    }
    for (int i = k; i < NW; i++) {
        int t = a[k]; a[k] = a[i]; a[i] = t;
        gen_perms(a, k + 1);
        t = a[k]; a[k] = a[i]; a[i] = t;
    }
}

static void all_perms(void)
{
    int a[NW] = {0, 1, 2, 3};
    n_perms = 0;
    gen_perms(a, 0);
    ck_assert_int_eq(n_perms, 24);
}

/* The highest-versioned write among the first `upto` of permutation p of set s. */
static struct w winner(int s, const int *p, int upto)
{
    struct w best = sets[s][p[0]];
    for (int i = 1; i < upto; i++) {
        struct w x = sets[s][p[i]];
        struct kv_version a = {x.hlc, x.node}, b = {best.hlc, best.node};
        if (kv_version_cmp(a, b) > 0)
            best = x;
    }
    return best;
}

static void key_of(char *k, size_t n, int s, int p) { snprintf(k, n, "lww-%d-%02d", s, p); }

static void check_all(struct kv_store *st, int upto)
{
    char k[32];
    for (int s = 0; s < 2; s++)
        for (int p = 0; p < n_perms; p++) {
            key_of(k, sizeof k, s, p);
            struct w best = winner(s, perms[p], upto);
            expect_live(st, k, best.val);
            expect_raw(st, k, best);
        }
}

enum op { OP_NONE, OP_FLUSH, OP_COMPACT };

/* Delivers write i of every permutation as its own WriteBatch, checks every key against
 * the expected winner so far, then runs after[i] (flush: operands reach L0, with two or
 * more per key so flush partial-merges them; compact: full merges into a base value that
 * later operands merge onto). Checks again after the operation and after a final compact. */
static void run_schedule(const enum op after[NW])
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    all_perms();
    char k[32];
    for (int i = 0; i < NW; i++) {
        for (int s = 0; s < 2; s++)
            for (int p = 0; p < n_perms; p++) {
                key_of(k, sizeof k, s, p);
                put(st, k, sets[s][perms[p][i]], 0);
            }
        check_all(st, i + 1);
        if (after[i] == OP_FLUSH)
            flush(st);
        else if (after[i] == OP_COMPACT)
            compact(st);
        check_all(st, i + 1);
    }
    compact(st);
    check_all(st, NW);
    kv_store_close(st);
}

START_TEST(test_lww_keeps_the_highest_version_in_every_delivery_order)
{
    static const enum op none[NW] = {OP_NONE, OP_NONE, OP_NONE, OP_NONE};
    run_schedule(none);
}
END_TEST

START_TEST(test_lww_keeps_the_highest_version_across_flushes_and_compactions)
{
    /* Two operands per key reach one flush (partial merge), then a compaction makes a base
     * value, then more operands merge onto that base (full merge with existing value). */
    static const enum op mixed[NW] = {OP_NONE, OP_FLUSH, OP_COMPACT, OP_NONE};
    run_schedule(mixed);
    static const enum op each[NW] = {OP_FLUSH, OP_COMPACT, OP_FLUSH, OP_COMPACT};
    run_schedule(each);
}
END_TEST

START_TEST(test_lww_keeps_the_highest_version_within_one_write_batch)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    all_perms();
    char keys[2][24][32];
    for (int s = 0; s < 2; s++)
        for (int p = 0; p < n_perms; p++) {
            key_of(keys[s][p], sizeof keys[s][p], s, p);
            struct kv_write ws[NW];
            for (int i = 0; i < NW; i++)
                ws[i] = mk(keys[s][p], sets[s][perms[p][i]], 0);
            ck_assert_int_eq(kv_store_write(st, ws, NW, NULL), KV_OK);
        }
    check_all(st, NW);
    compact(st);
    check_all(st, NW);
    kv_store_close(st);
}
END_TEST

START_TEST(test_lww_breaks_an_equal_version_tie_the_same_way_in_both_orders)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    struct w x = {H(500), 3, "xx"}, y = {H(500), 3, "yy"};
    put(st, "t1", x, 0);
    put(st, "t1", y, 0);
    put(st, "t2", y, 0);
    put(st, "t2", x, 0);
    expect_live(st, "t1", "yy");        /* the larger value wins the (buggy) tie */
    expect_live(st, "t2", "yy");
    compact(st);
    expect_live(st, "t1", "yy");
    expect_live(st, "t2", "yy");
    kv_store_close(st);
}
END_TEST

/* ------------------------------------------------------- tombstones, TTL and purge -- */

START_TEST(test_store_a_tombstone_hides_the_value_but_raw_reads_show_it)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    put(st, "k", (struct w){H(10), 1, "v"}, 0);
    put(st, "k", (struct w){H(11), 1, NULL}, 0);
    expect_live(st, "k", NULL);
    expect_raw(st, "k", (struct w){H(11), 1, NULL});
    put(st, "k", (struct w){H(9), 1, "older"}, 0);  /* an older value does not resurrect */
    expect_live(st, "k", NULL);
    kv_store_close(st);
}
END_TEST

START_TEST(test_store_a_record_expires_at_its_ttl_on_the_fake_clock)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    put(st, "ttl", (struct w){kv_hlc_make(T0, 0), 1, "v"}, T0 + 100);
    expect_live(st, "ttl", "v");
    fake_now = T0 + 99;
    expect_live(st, "ttl", "v");
    fake_now = T0 + 100;
    expect_live(st, "ttl", NULL);
    expect_raw(st, "ttl", (struct w){kv_hlc_make(T0, 0), 1, "v"});
    kv_store_close(st);
}
END_TEST

START_TEST(test_store_compaction_purges_tombstones_and_expired_records_only_after_grace)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);   /* grace 1000 ms */
    struct w tomb = {kv_hlc_make(T0, 0), 1, NULL};
    struct w exp = {kv_hlc_make(T0, 0), 1, "e"};
    struct w live = {kv_hlc_make(T0, 0), 1, "l"};
    put(st, "a-tomb", (struct w){kv_hlc_make(T0 - 5, 0), 1, "old"}, 0);
    put(st, "a-tomb", tomb, 0);
    put(st, "b-exp", exp, T0 + 10);
    put(st, "c-live", live, 0);
    put(st, "d-ttl-far", live, T0 + 100000);

    fake_now = T0 + 900;                 /* expired, but still inside the grace */
    compact(st);
    expect_raw(st, "a-tomb", tomb);
    expect_raw(st, "b-exp", exp);
    fake_now = T0 + 1000;                /* exactly at the grace boundary: kept (strict <) */
    compact(st);
    expect_raw(st, "a-tomb", tomb);
    ck_assert_int_eq(get_raw_status(st, "b-exp"), KV_OK);

    fake_now = T0 + 1011;
    compact(st);
    ck_assert_int_eq(get_raw_status(st, "a-tomb"), KV_NOT_FOUND);
    ck_assert_int_eq(get_raw_status(st, "b-exp"), KV_NOT_FOUND);
    expect_live(st, "c-live", "l");
    expect_live(st, "d-ttl-far", "l");
    /* Purged means gone: the older value under the tombstone did not come back. */
    expect_live(st, "a-tomb", NULL);
    kv_store_close(st);
}
END_TEST

/* -------------------------------------------------------------------- iterators -- */

static int collect(struct kv_store *st, struct kv_slice start, bool excl, struct kv_slice end,
                   unsigned flags, int limit, char out[][16])
{
    struct kv_store_iter *it = NULL;
    ck_assert_int_eq(kv_store_iter_new(st, start, excl, end, flags, &it, NULL), KV_OK);
    int n = 0;
    struct kv_slice k;
    struct kv_record r;
    enum kv_status s;
    while (n < limit && (s = kv_store_iter_next(it, &k, &r, NULL)) == KV_OK) {
        ck_assert_uint_lt(k.len, 16);
        memcpy(out[n], k.ptr, k.len);
        out[n][k.len] = '\0';
        n++;
    }
    if (n < limit)
        ck_assert_int_eq(s, KV_NOT_FOUND);
    kv_store_iter_free(it);
    return n;
}

/* k00..k19: every third key deleted, every fifth expired at T0 + 50. */
static void fill_scan_keys(struct kv_store *st)
{
    char k[16];
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "k%02d", i);
        put(st, k, (struct w){H(10), 1, "v"}, i % 5 == 0 ? T0 + 50 : 0);
        if (i % 3 == 0)
            put(st, k, (struct w){H(11), 1, NULL}, 0);
    }
}

static bool scan_key_live(int i, uint64_t now)
{
    return i % 3 != 0 && !(i % 5 == 0 && now >= T0 + 50);
}

START_TEST(test_store_a_scan_skips_tombstones_and_expired_records_in_key_order)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    fill_scan_keys(st);
    char got[32][16], want[16];
    for (int round = 0; round < 2; round++) {
        fake_now = round ? T0 + 50 : T0;
        int n = collect(st, kv_slice_of(NULL, 0), false, kv_slice_of(NULL, 0), 0, 32, got);
        int j = 0;
        for (int i = 0; i < 20; i++)
            if (scan_key_live(i, fake_now)) {
                snprintf(want, sizeof want, "k%02d", i);
                ck_assert_int_lt(j, n);
                ck_assert_str_eq(got[j++], want);
            }
        ck_assert_int_eq(n, j);
        ck_assert_int_eq(collect(st, kv_slice_of(NULL, 0), false, kv_slice_of(NULL, 0),
                                 KV_STORE_RAW, 32, got), 20);
        compact(st);                    /* same answers from SST files */
    }
    kv_store_close(st);
}
END_TEST

START_TEST(test_store_a_cursor_resumes_exactly_after_the_last_key_returned)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    fill_scan_keys(st);
    char all[32][16], page[4][16], cursor[16] = "";
    int n_all = collect(st, kv_slice_of(NULL, 0), false, kv_slice_of(NULL, 0), 0, 32, all);
    int seen = 0, pages = 0;
    for (;;) {
        int n = collect(st, kv_slice_str(cursor), seen > 0, kv_slice_of(NULL, 0), 0, 3, page);
        for (int i = 0; i < n; i++)
            ck_assert_str_eq(page[i], all[seen + i]);
        seen += n;
        pages++;
        if (n < 3)
            break;
        strcpy(cursor, page[n - 1]);
    }
    ck_assert_int_eq(seen, n_all);
    ck_assert_int_ge(pages, 3);
    /* A cursor on a key that is not stored (deleted k03) continues at the next key. */
    int n = collect(st, kv_slice_str("k03"), true, kv_slice_of(NULL, 0), 0, 1, page);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(page[0], "k04");
    kv_store_close(st);
}
END_TEST

START_TEST(test_store_the_end_bound_is_exclusive)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    fill_scan_keys(st);
    char got[32][16];
    int n = collect(st, kv_slice_str("k01"), false, kv_slice_str("k04"), 0, 32, got);
    ck_assert_int_eq(n, 2);             /* k01, k02 (k03 deleted, k04 excluded) */
    ck_assert_str_eq(got[0], "k01");
    ck_assert_str_eq(got[1], "k02");
    n = collect(st, kv_slice_str("k01"), true, kv_slice_str("k02"), 0, 32, got);
    ck_assert_int_eq(n, 0);
    n = collect(st, kv_slice_str("k04"), false, kv_slice_str("k04"), KV_STORE_RAW, 32, got);
    ck_assert_int_eq(n, 0);
    kv_store_close(st);
}
END_TEST

/* ------------------------------------------------------------- plain column families -- */

START_TEST(test_store_raw_column_families_put_get_delete_and_iterate_separately)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    const enum kv_cf cfs[] = {KV_CF_HINTS, KV_CF_PAXOS, KV_CF_META};
    for (int c = 0; c < 3; c++) {
        char v[8];
        snprintf(v, sizeof v, "v%d", c);
        ck_assert_int_eq(kv_store_raw_put(st, cfs[c], kv_slice_str("shared"), kv_slice_str(v),
                                          c == 0, NULL), KV_OK);
        ck_assert_int_eq(kv_store_raw_put(st, cfs[c], kv_slice_str("x1"), kv_slice_of("", 0),
                                          false, NULL), KV_OK);
        ck_assert_int_eq(kv_store_raw_put(st, cfs[c], kv_slice_str("x2"), kv_slice_str("22"),
                                          true, NULL), KV_OK);
    }
    for (int c = 0; c < 3; c++) {
        char v[8];
        snprintf(v, sizeof v, "v%d", c);
        struct kv_buf b = {0};
        ck_assert_int_eq(kv_store_raw_get(st, cfs[c], kv_slice_str("shared"), &b, NULL), KV_OK);
        ck_assert_uint_eq(b.len, 2);
        ck_assert(memcmp(b.ptr, v, 2) == 0);
        kv_buf_free(&b);
        ck_assert_int_eq(kv_store_raw_get(st, cfs[c], kv_slice_str("x1"), &b, NULL), KV_OK);
        ck_assert_uint_eq(b.len, 0);    /* an empty value is found, not missing */
        kv_buf_free(&b);

        struct kv_store_iter *it;
        ck_assert_int_eq(kv_store_raw_iter_new(st, cfs[c], kv_slice_str("x"),
                                               kv_slice_of(NULL, 0), &it, NULL), KV_OK);
        struct kv_slice k;
        struct kv_record r;
        ck_assert_int_eq(kv_store_iter_next(it, &k, &r, NULL), KV_OK);
        ck_assert_uint_eq(k.len, 2);
        ck_assert(memcmp(k.ptr, "x1", 2) == 0);
        ck_assert_uint_eq(r.value.len, 0);
        ck_assert_int_eq(kv_store_iter_next(it, &k, &r, NULL), KV_OK);
        ck_assert(memcmp(k.ptr, "x2", 2) == 0 && r.value.len == 2);
        ck_assert(memcmp(r.value.ptr, "22", 2) == 0);
        ck_assert_uint_eq(r.ver.hlc, 0);
        ck_assert_int_eq(kv_store_iter_next(it, &k, &r, NULL), KV_NOT_FOUND);
        kv_store_iter_free(it);

        ck_assert_int_eq(kv_store_raw_delete(st, cfs[c], kv_slice_str("shared"), true, NULL),
                         KV_OK);
        ck_assert_int_eq(kv_store_raw_get(st, cfs[c], kv_slice_str("shared"), &b, NULL),
                         KV_NOT_FOUND);
    }
    /* The data column family holds records only: raw calls refuse it. */
    struct kv_buf b = {0};
    struct kv_store_iter *it = NULL;
    ck_assert_int_eq(kv_store_raw_put(st, KV_CF_DATA, kv_slice_str("k"), kv_slice_str("v"),
                                      false, NULL), KV_INVALID);
    ck_assert_int_eq(kv_store_raw_get(st, KV_CF_DATA, kv_slice_str("k"), &b, NULL), KV_INVALID);
    ck_assert_int_eq(kv_store_raw_iter_new(st, KV_CF_DATA, kv_slice_of(NULL, 0),
                                           kv_slice_of(NULL, 0), &it, NULL), KV_INVALID);
    ck_assert_int_eq(kv_store_raw_put(st, KV_CF_COUNT, kv_slice_str("k"), kv_slice_str("v"),
                                      false, NULL), KV_INVALID);
    expect_live(st, "shared", NULL);    /* raw keys never show up as records */
    kv_store_close(st);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("core");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_store_a_put_is_read_back_with_its_version);
    tcase_add_test(tc, test_store_open_reports_a_bad_path_or_mode_as_an_error_value);
    tcase_add_test(tc, test_store_bad_writes_are_refused_and_never_call_back);
    tcase_add_test(tc, test_lww_keeps_the_highest_version_in_every_delivery_order);
    tcase_add_test(tc, test_lww_keeps_the_highest_version_across_flushes_and_compactions);
    tcase_add_test(tc, test_lww_keeps_the_highest_version_within_one_write_batch);
    tcase_add_test(tc, test_lww_breaks_an_equal_version_tie_the_same_way_in_both_orders);
    tcase_add_test(tc, test_store_a_tombstone_hides_the_value_but_raw_reads_show_it);
    tcase_add_test(tc, test_store_a_record_expires_at_its_ttl_on_the_fake_clock);
    tcase_add_test(tc, test_store_compaction_purges_tombstones_and_expired_records_only_after_grace);
    tcase_add_test(tc, test_store_a_scan_skips_tombstones_and_expired_records_in_key_order);
    tcase_add_test(tc, test_store_a_cursor_resumes_exactly_after_the_last_key_returned);
    tcase_add_test(tc, test_store_the_end_bound_is_exclusive);
    tcase_add_test(tc, test_store_raw_column_families_put_get_delete_and_iterate_separately);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    kv_log_set_level(KV_LOG_WARN);       /* keep "opened" lines out of the test output */
    return kv_check_run(store_suite(), true);
}
