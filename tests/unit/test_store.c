/* tests/unit/test_store.c -- the RocksDB store (storage/store.h) in temporary directories.
 *
 * Stores, the fake clock and the shared assertions come from tests/unit/store_fixture.h;
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

/* ------------------------------------------------------- durability and lifecycle -- */

START_TEST(test_store_data_survives_close_and_reopen)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    put(st, "a", (struct w){H(5), 1, "alpha"}, 0);
    put(st, "b", (struct w){H(5), 1, NULL}, 0);
    ck_assert_int_eq(kv_store_raw_put(st, KV_CF_META, kv_slice_str("m"), kv_slice_str("meta"),
                                      true, NULL), KV_OK);
    kv_store_close(st);
    st = open_at(dir, KV_SYNC_ALWAYS, 1000);
    expect_live(st, "a", "alpha");
    expect_raw(st, "b", (struct w){H(5), 1, NULL});
    struct kv_buf b = {0};
    ck_assert_int_eq(kv_store_raw_get(st, KV_CF_META, kv_slice_str("m"), &b, NULL), KV_OK);
    ck_assert_uint_eq(b.len, 4);
    kv_buf_free(&b);
    put(st, "a", (struct w){H(6), 1, "beta"}, 0);  /* merges onto the recovered state */
    expect_live(st, "a", "beta");
    kv_store_close(st);
}
END_TEST

START_TEST(test_store_a_checkpoint_opens_as_a_store_with_the_same_data)
{
    char dir[256], cp[300];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    put(st, "a", (struct w){H(5), 1, "alpha"}, 0);
    flush(st);
    put(st, "a", (struct w){H(7), 1, "gamma"}, 0);  /* operand only in the memtable + WAL */
    put(st, "b", (struct w){H(5), 1, NULL}, 0);
    ck_assert_int_eq(kv_store_raw_put(st, KV_CF_HINTS, kv_slice_str("h"), kv_slice_str("1"),
                                      false, NULL), KV_OK);
    snprintf(cp, sizeof cp, "%s-checkpoint", dir);
    struct kv_err err = {0};
    ck_assert_msg(kv_store_checkpoint(st, cp, &err) == KV_OK, "checkpoint: %s", err.msg);
    ck_assert_int_eq(kv_store_checkpoint(st, cp, &err), KV_INVALID);  /* dir exists */
    put(st, "a", (struct w){H(9), 1, "after"}, 0);  /* not in the checkpoint */

    struct kv_store *c = open_at(cp, KV_SYNC_BATCH, 1000);
    expect_live(c, "a", "gamma");
    expect_raw(c, "b", (struct w){H(5), 1, NULL});
    struct kv_buf b = {0};
    ck_assert_int_eq(kv_store_raw_get(c, KV_CF_HINTS, kv_slice_str("h"), &b, NULL), KV_OK);
    kv_buf_free(&b);
    kv_store_close(c);
    expect_live(st, "a", "after");
    kv_store_close(st);
}
END_TEST

START_TEST(test_store_every_sync_mode_commits_and_recovers_writes)
{
    const enum kv_sync modes[] = {KV_SYNC_ALWAYS, KV_SYNC_BATCH, KV_SYNC_NONE};
    for (int m = 0; m < 3; m++) {
        char dir[256], k[16];
        fresh_dir(dir, sizeof dir);
        struct kv_store *st = open_at(dir, modes[m], 1000);
        for (int i = 0; i < 50; i++) {
            snprintf(k, sizeof k, "s%02d", i);
            put(st, k, (struct w){H(i + 1), 1, kv_sync_name(modes[m])}, 0);
        }
        kv_store_close(st);
        st = open_at(dir, modes[m], 1000);
        for (int i = 0; i < 50; i++) {
            snprintf(k, sizeof k, "s%02d", i);
            expect_live(st, k, kv_sync_name(modes[m]));
        }
        kv_store_close(st);
    }
    enum kv_sync s;
    ck_assert_int_eq(kv_sync_parse("always", &s), 0);
    ck_assert_int_eq(s, KV_SYNC_ALWAYS);
    ck_assert_int_eq(kv_sync_parse("batch", &s), 0);
    ck_assert_int_eq(s, KV_SYNC_BATCH);
    ck_assert_int_eq(kv_sync_parse("none", &s), 0);
    ck_assert_int_eq(s, KV_SYNC_NONE);
    ck_assert_int_eq(kv_sync_parse("sometimes", &s), -1);
    ck_assert_int_eq(kv_sync_parse(NULL, &s), -1);
}
END_TEST

/* Completion counter shared by async callbacks (which run on the commit thread). */
struct done {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ok, failed;
};

static void done_cb(void *arg, enum kv_status s, const struct kv_err *err)
{
    struct done *d = arg;
    pthread_mutex_lock(&d->mu);
    if (s == KV_OK && err == NULL)
        d->ok++;
    else
        d->failed++;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void done_wait(struct done *d, int n)
{
    pthread_mutex_lock(&d->mu);
    while (d->ok + d->failed < n)
        pthread_cond_wait(&d->cv, &d->mu);
    pthread_mutex_unlock(&d->mu);
}

#define WRITERS 8
#define PER_WRITER 300

struct writer {
    struct kv_store *st;
    struct done *d;
    int id;
    int refused;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char k[32], v[32];
    for (int i = 0; i < PER_WRITER; i++) {
        snprintf(k, sizeof k, "w%d-%04d", w->id, i);
        snprintf(v, sizeof v, "v%d-%d", w->id, i);
        struct kv_write x = mk(k, (struct w){H(i + 1), (uint32_t)w->id, v}, 0);
        if (kv_store_write_async(w->st, &x, 1, done_cb, w->d, NULL) != KV_OK)
            w->refused++;
    }
    return NULL;
}

START_TEST(test_store_many_concurrent_async_writes_all_complete_with_callbacks)
{
    const enum kv_sync modes[] = {KV_SYNC_BATCH, KV_SYNC_ALWAYS, KV_SYNC_NONE};
    for (int m = 0; m < 3; m++) {
        char dir[256];
        fresh_dir(dir, sizeof dir);
        struct kv_store *st = open_at(dir, modes[m], 1000);
        struct done d = {.ok = 0, .failed = 0};
        pthread_mutex_init(&d.mu, NULL);
        pthread_cond_init(&d.cv, NULL);
        pthread_t th[WRITERS];
        struct writer ws[WRITERS];
        for (int i = 0; i < WRITERS; i++) {
            ws[i] = (struct writer){st, &d, i, 0};
            ck_assert_int_eq(pthread_create(&th[i], NULL, writer_main, &ws[i]), 0);
        }
        for (int i = 0; i < WRITERS; i++) {
            pthread_join(th[i], NULL);
            ck_assert_int_eq(ws[i].refused, 0);
        }
        done_wait(&d, WRITERS * PER_WRITER);
        ck_assert_int_eq(d.ok, WRITERS * PER_WRITER);
        ck_assert_int_eq(d.failed, 0);
        char k[32], v[32];
        for (int w = 0; w < WRITERS; w++)
            for (int i = 0; i < PER_WRITER; i += 37) {
                snprintf(k, sizeof k, "w%d-%04d", w, i);
                snprintf(v, sizeof v, "v%d-%d", w, i);
                expect_live(st, k, v);
            }
        kv_store_close(st);
        pthread_cond_destroy(&d.cv);
        pthread_mutex_destroy(&d.mu);
    }
}
END_TEST

START_TEST(test_store_close_runs_the_callbacks_of_pending_async_writes)
{
    char dir[256];
    fresh_dir(dir, sizeof dir);
    struct kv_store_opts o;
    kv_store_opts_default(&o);
    o.path = dir;
    o.sync = KV_SYNC_BATCH;
    o.batch_delay_us = 2000000;          /* the thread would wait 2 s: close must not */
    o.now_ms = fake_clock;
    struct kv_store *st;
    ck_assert_int_eq(kv_store_open(&o, &st, NULL), KV_OK);
    struct done d = {.ok = 0, .failed = 0};
    pthread_mutex_init(&d.mu, NULL);
    pthread_cond_init(&d.cv, NULL);
    char k[32];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "p%03d", i);
        struct kv_write x = mk(k, (struct w){H(1), 1, "pending"}, 0);
        ck_assert_int_eq(kv_store_write_async(st, &x, 1, done_cb, &d, NULL), KV_OK);
    }
    uint64_t t = (uint64_t)time(NULL);
    kv_store_close(st);
    ck_assert_uint_le((uint64_t)time(NULL) - t, 1);
    ck_assert_int_eq(d.ok, 100);         /* all ran before close returned */
    st = open_at(dir, KV_SYNC_BATCH, 1000);
    expect_live(st, "p000", "pending");
    expect_live(st, "p099", "pending");
    kv_store_close(st);
    pthread_cond_destroy(&d.cv);
    pthread_mutex_destroy(&d.mu);
}
END_TEST

/* commit.c (3): a batch stops waiting once arrivals pause, so a lone write at
 * sync=batch is not held for the whole batch_delay_us. */
START_TEST(test_store_a_lone_batch_write_does_not_wait_out_the_batch_delay)
{
    char dir[256];
    fresh_dir(dir, sizeof dir);
    struct kv_store_opts o;
    kv_store_opts_default(&o);
    o.path = dir;
    o.sync = KV_SYNC_BATCH;
    o.batch_delay_us = 3000000;          /* 3 s: the old wait */
    o.now_ms = fake_clock;
    struct kv_store *st;
    ck_assert_int_eq(kv_store_open(&o, &st, NULL), KV_OK);
    for (int i = 0; i < 3; i++) {
        char k[16];
        snprintf(k, sizeof k, "lone%d", i);
        struct kv_write x = mk(k, (struct w){H(1), 1, "v"}, 0);
        uint64_t t = kv_clock_mono_ns();
        ck_assert_int_eq(kv_store_write(st, &x, 1, NULL), KV_OK);
        uint64_t ms = (kv_clock_mono_ns() - t) / 1000000u;
        ck_assert_msg(ms < 1500, "write %d took %llu ms", i, (unsigned long long)ms);
    }
    expect_live(st, "lone2", "v");
    kv_store_close(st);
}
END_TEST

/* Puts raw bytes into the data column family behind the store's back (the store never
 * does: every data value is an encoded record), with plain RocksDB options. */
static void poke_data_cf(const char *dir, const char *key, const char *bytes, size_t n)
{
    const char *names[4] = {"default", "hints", "paxos", "meta"};
    rocksdb_options_t *o = rocksdb_options_create();
    const rocksdb_options_t *cfo[4] = {o, o, o, o};
    rocksdb_column_family_handle_t *h[4];
    char *e = NULL;
    rocksdb_t *db = rocksdb_open_column_families(o, dir, 4, names, cfo, h, &e);
    ck_assert_msg(e == NULL, "open: %s", e);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put_cf(db, wo, h[0], key, strlen(key), bytes, n, &e);
    ck_assert_msg(e == NULL, "put: %s", e);
    rocksdb_writeoptions_destroy(wo);
    for (int i = 0; i < 4; i++)
        rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
}

START_TEST(test_store_an_undecodable_record_is_reported_as_corruption_never_dropped)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    put(st, "a", (struct w){H(1), 1, "fine"}, 0);
    flush(st);                           /* no merge left in the WAL for poke's replay */
    kv_store_close(st);
    static const char junk[] = {9, 9, 9};           /* bad format byte, short header */
    poke_data_cf(dir, "b", junk, sizeof junk);
    st = open_at(dir, KV_SYNC_BATCH, 1000);
    struct kv_store_item it = {0};
    struct kv_err err = {0};
    ck_assert_int_eq(kv_store_get(st, kv_slice_str("b"), KV_STORE_RAW, &it, &err),
                     KV_CORRUPTION);
    ck_assert_int_eq(err.code, KV_CORRUPTION);
    /* A valid write on top must not paper over the bad base: the merge fails loudly. */
    put(st, "b", (struct w){H(2), 1, "new"}, 0);
    ck_assert_int_eq(kv_store_get(st, kv_slice_str("b"), 0, &it, &err), KV_CORRUPTION);
    /* The iterator returns the good record, then reports the bad one. */
    struct kv_store_iter *iter;
    ck_assert_int_eq(kv_store_iter_new(st, kv_slice_of(NULL, 0), false, kv_slice_of(NULL, 0),
                                       0, &iter, NULL), KV_OK);
    struct kv_slice k;
    struct kv_record r;
    ck_assert_int_eq(kv_store_iter_next(iter, &k, &r, NULL), KV_OK);
    ck_assert_int_eq(kv_store_iter_next(iter, &k, &r, &err), KV_CORRUPTION);
    kv_store_iter_free(iter);
    expect_live(st, "a", "fine");
    kv_store_close(st);
}
END_TEST

/* ----------------------------------------------------------- reads on an event loop -- */

START_TEST(test_store_cache_only_reads_answer_ok_or_again_and_never_wrong_data)
{
    char dir[256], k[16], v[128];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "c%05d", i);
        snprintf(v, sizeof v, "value-%05d-%0100d", i, i);
        put(st, k, (struct w){H(1), 1, v}, 0);
    }
    compact(st);
    kv_store_close(st);
    st = open_at(dir, KV_SYNC_BATCH, 1000);   /* cold block cache */
    int ok = 0, again = 0;
    for (int i = 0; i < 2000; i += 7) {
        snprintf(k, sizeof k, "c%05d", i);
        snprintf(v, sizeof v, "value-%05d-%0100d", i, i);
        struct kv_store_item it = {0};
        struct kv_err err = {0};
        enum kv_status s = kv_store_get(st, kv_slice_str(k), KV_STORE_CACHE_ONLY, &it, &err);
        ck_assert_msg(s == KV_OK || s == KV_AGAIN, "%s: %s", k, kv_status_name(s));
        if (s == KV_OK) {
            ck_assert_uint_eq(it.rec.value.len, strlen(v));
            ck_assert(memcmp(it.rec.value.ptr, v, strlen(v)) == 0);
            kv_store_item_free(&it);
            ok++;
        } else {
            again++;
            expect_live(st, k, v);               /* the storage-thread fallback */
            s = kv_store_get(st, kv_slice_str(k), KV_STORE_CACHE_ONLY, &it, NULL);
            ck_assert_int_eq(s, KV_OK);          /* that read warmed the block */
            kv_store_item_free(&it);
        }
    }
    ck_assert_int_gt(ok + again, 0);
    /* Writes still in the memtable are always answerable without disk. */
    put(st, "mem", (struct w){H(1), 1, "m"}, 0);
    struct kv_store_item it = {0};
    ck_assert_int_eq(kv_store_get(st, kv_slice_str("mem"), KV_STORE_CACHE_ONLY, &it, NULL),
                     KV_OK);
    kv_store_item_free(&it);
    kv_store_close(st);
}
END_TEST

START_TEST(test_store_reports_properties_and_approximate_sizes)
{
    char dir[256], k[16];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof k, "z%04d", i);
        put(st, k, (struct w){H(1), 1, "some value bytes to take up room in the file"}, 0);
    }
    flush(st);
    uint64_t all = 0, half = 0;
    ck_assert_int_eq(kv_store_approx_size(st, kv_slice_of(NULL, 0), kv_slice_of(NULL, 0), &all,
                                          NULL), KV_OK);
    ck_assert_uint_gt(all, 0);
    ck_assert_int_eq(kv_store_approx_size(st, kv_slice_str("z0000"), kv_slice_str("z0250"),
                                          &half, NULL), KV_OK);
    ck_assert_uint_le(half, all);
    char *p = NULL;
    ck_assert_int_eq(kv_store_property(st, "rocksdb.estimate-num-keys", &p, NULL), KV_OK);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_gt(atoi(p), 0);
    free(p);
    ck_assert_int_eq(kv_store_property(st, "rocksdb.no-such-property", &p, NULL), KV_NOT_FOUND);
    kv_store_close(st);
    kv_store_close(NULL);
}
END_TEST

/* ---------------------------------------------------------------- disk full, I/O errors -- */

static enum kv_status map_rocks(const char *msg, struct kv_err *err)
{
    char *e = strdup(msg);               /* rocksdb_free is free() */
    ck_assert_ptr_nonnull(e);
    enum kv_status s = kv_store__rocks_err(&e, err, "write");
    ck_assert_ptr_null(e);
    return s;
}

START_TEST(test_store_a_full_disk_maps_to_nospace_apart_from_other_io_errors)
{
    struct kv_err err = {0};
    /* The texts RocksDB 7.8 gives: a failed append, a stopped DB's replay of it, a cap. */
    ck_assert_int_eq(map_rocks("IO error: No space left on device: While appending to file: "
                               "db/000051.sst: No space left on device", &err), KV_NOSPACE);
    ck_assert_int_eq(err.code, KV_NOSPACE);
    ck_assert(strncmp(err.msg, "write: IO error: No space", 25) == 0);
    ck_assert_int_eq(map_rocks("IO error: No space left on device", &err), KV_NOSPACE);
    ck_assert_int_eq(map_rocks("IO error: Space limit reached", &err), KV_NOSPACE);
    ck_assert_int_eq(map_rocks("IO error: While fsync: db/000012.log: Input/output error",
                               &err), KV_IOERR);
    ck_assert_int_eq(map_rocks("IO error: db/LOCK: Permission denied", &err), KV_IOERR);
    ck_assert_int_eq(map_rocks("Corruption: block checksum mismatch", &err), KV_CORRUPTION);
    ck_assert_int_eq(map_rocks("Result incomplete: no io", &err), KV_AGAIN);
    ck_assert_int_eq(map_rocks("Invalid argument: nope", &err), KV_INTERNAL);
    ck_assert_int_ne(KV_NOSPACE, KV_IOERR);
    ck_assert_str_eq(kv_status_name(KV_NOSPACE), "NOSPACE");
}
END_TEST

START_TEST(test_store_a_refused_write_shows_in_health_until_writes_work_again)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    struct kv_store_health h;
    kv_store_health(st, &h);
    ck_assert(!h.writes_refused);
    ck_assert_int_eq(h.code, KV_OK);
    ck_assert_str_eq(h.summary, "ok");
    ck_assert_uint_eq(h.write_errors, 0);
    put(st, "k", (struct w){H(1), 1, "v"}, 0);

    /* Errors that say nothing about the disk leave the health alone. */
    struct kv_err bad = {KV_INVALID, "write: key length 0"};
    kv_store__note_write(st, KV_INVALID, &bad);
    kv_store_health(st, &h);
    ck_assert(!h.writes_refused);

    /* What the commit thread reports for a write RocksDB refused with no space. */
    struct kv_err full = {KV_NOSPACE, "write: IO error: No space left on device"};
    kv_store__note_write(st, KV_NOSPACE, &full);
    kv_store_health(st, &h);
    ck_assert(h.writes_refused);
    ck_assert_int_eq(h.code, KV_NOSPACE);
    ck_assert_str_eq(h.summary, "writes refused: disk full");
    ck_assert_str_eq(h.reason, full.msg);
    ck_assert_uint_gt(h.since_ms, 0);
    ck_assert_uint_eq(h.write_errors, 1);
    /* A later I/O error does not replace the first reason. */
    struct kv_err io = {KV_IOERR, "write: IO error: Input/output error"};
    kv_store__note_write(st, KV_IOERR, &io);
    kv_store_health(st, &h);
    ck_assert_int_eq(h.code, KV_NOSPACE);
    ck_assert_uint_eq(h.write_errors, 2);
    expect_live(st, "k", "v");           /* reads never look at the mark */
    put(st, "k2", (struct w){H(2), 1, "v2"}, 0);   /* a write that works clears it... */
    kv_store_health(st, &h);
    ck_assert(!h.writes_refused);
    ck_assert_uint_eq(h.resumes, 1);

    /* ...and with no client writing, the watcher's probe clears it within about 1 s. */
    kv_store__note_write(st, KV_IOERR, &io);
    kv_store_health(st, &h);
    ck_assert(h.writes_refused);
    ck_assert_str_eq(h.summary, "writes refused: I/O error");
    for (int i = 0; i < 40 && h.writes_refused; i++) {
        usleep(100 * 1000);
        kv_store_health(st, &h);
    }
    ck_assert_msg(!h.writes_refused, "the watcher never cleared the mark");
    ck_assert_uint_eq(h.resumes, 2);
    ck_assert_str_eq(h.reason, "");
    kv_store_close(st);
}
END_TEST

START_TEST(test_store_writes_are_refused_nospace_while_free_space_is_under_the_reserve)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    put(st, "k", (struct w){H(1), 1, "v"}, 0);
    /* The default reserve: two RocksDB write buffers (64 MiB each). */
    ck_assert_uint_eq(st->reserve_bytes, 2ull * (64u << 20));
    /* White box: a reserve no filesystem has, as if the disk were full. */
    uint64_t reserve = st->reserve_bytes;
    st->reserve_bytes = UINT64_MAX / 4;
    st->space_until_ns = 0;              /* forget the last answer */
    struct kv_write w = mk("k2", (struct w){H(2), 1, "v2"}, 0);
    struct kv_err err = {0};
    ck_assert_int_eq(kv_store_write(st, &w, 1, &err), KV_NOSPACE);
    ck_assert_msg(strstr(err.msg, "No space left on device"), "%s", err.msg);
    ck_assert_int_eq(kv_store_raw_put(st, KV_CF_META, kv_slice_str("m"), kv_slice_str("1"), true,
                                      &err), KV_NOSPACE);
    ck_assert_int_eq(kv_store_raw_delete(st, KV_CF_META, kv_slice_str("m"), true, &err),
                     KV_NOSPACE);
    expect_live(st, "k", "v");           /* reads go on */
    expect_live(st, "k2", NULL);         /* the refused write left nothing */
    struct kv_store_health h;
    kv_store_health(st, &h);
    ck_assert(h.writes_refused);
    ck_assert_int_eq(h.code, KV_NOSPACE);
    usleep(1500 * 1000);                 /* the watcher's probe honours the reserve too */
    kv_store_health(st, &h);
    ck_assert(h.writes_refused);

    st->reserve_bytes = reserve;         /* space is back: writes work without a reopen */
    for (int i = 0; i < 30 && h.writes_refused; i++) {
        usleep(100 * 1000);
        kv_store_health(st, &h);
    }
    ck_assert(!h.writes_refused);
    ck_assert_int_eq(kv_store_write(st, &w, 1, &err), KV_OK);
    expect_live(st, "k2", "v2");
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
    tcase_add_test(tc, test_store_data_survives_close_and_reopen);
    tcase_add_test(tc, test_store_a_checkpoint_opens_as_a_store_with_the_same_data);
    tcase_add_test(tc, test_store_every_sync_mode_commits_and_recovers_writes);
    tcase_add_test(tc, test_store_many_concurrent_async_writes_all_complete_with_callbacks);
    tcase_add_test(tc, test_store_close_runs_the_callbacks_of_pending_async_writes);
    tcase_add_test(tc, test_store_a_lone_batch_write_does_not_wait_out_the_batch_delay);
    tcase_add_test(tc, test_store_an_undecodable_record_is_reported_as_corruption_never_dropped);
    tcase_add_test(tc, test_store_cache_only_reads_answer_ok_or_again_and_never_wrong_data);
    tcase_add_test(tc, test_store_reports_properties_and_approximate_sizes);
    tcase_add_test(tc, test_store_a_full_disk_maps_to_nospace_apart_from_other_io_errors);
    tcase_add_test(tc, test_store_a_refused_write_shows_in_health_until_writes_work_again);
    tcase_add_test(tc, test_store_writes_are_refused_nospace_while_free_space_is_under_the_reserve);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    kv_log_set_level(KV_LOG_WARN);       /* keep "opened" lines out of the test output */
    return kv_check_run(store_suite(), true);
}
