/* tests/unit/test_rcache.c -- the record cache (storage/rcache.h): hits, the write
 * brackets and tickets that keep it exactly as true as RocksDB, eviction within its
 * budget, and, through the store, that a read after an acknowledged write never returns
 * what the cache held before it (also with readers and a writer racing). */
#include <check.h>
#include "tests/check_run.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "storage/rcache.h"
#include "storage/store.h"
#include "tests/unit/store_fixture.h"

static struct kv_rcache *mk_cache(size_t bytes)
{
    struct kv_rcache *c = NULL;
    ck_assert_int_eq(kv_rcache_new(bytes, &c, NULL), KV_OK);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* Misses (returning its ticket) or hits and checks the bytes are want. */
static bool lookup(struct kv_rcache *c, const char *key, const char *want, uint64_t *ticket)
{
    struct kv_buf b = {0};
    uint64_t t = 0;
    bool hit = kv_rcache_lookup(c, kv_slice_str(key), &b, &t);
    if (hit) {
        ck_assert_ptr_nonnull(want);
        ck_assert_uint_eq(b.len, strlen(want));
        ck_assert_int_eq(memcmp(b.ptr, want, b.len), 0);
        kv_buf_free(&b);
    }
    if (ticket)
        *ticket = t;
    return hit;
}

static void fill(struct kv_rcache *c, const char *key, const char *val)
{
    uint64_t t;
    if (!lookup(c, key, NULL, &t))
        kv_rcache_insert(c, kv_slice_str(key), kv_slice_str(val), t);
}

START_TEST(test_rcache_a_miss_gives_a_ticket_and_the_insert_then_hits)
{
    struct kv_rcache *c = mk_cache(1 << 20);
    uint64_t t = 0;
    ck_assert(!lookup(c, "k", NULL, &t));
    ck_assert_uint_ne(t, 0);
    kv_rcache_insert(c, kv_slice_str("k"), kv_slice_str("value"), t);
    ck_assert(lookup(c, "k", "value", NULL));
    ck_assert(!lookup(c, "other", NULL, NULL));
    struct kv_rcache_stats s;
    kv_rcache_stats(c, &s);
    ck_assert_uint_eq(s.hits, 1);
    ck_assert_uint_eq(s.misses, 2);
    ck_assert_uint_eq(s.entries, 1);
    kv_rcache_free(c);
}
END_TEST

START_TEST(test_rcache_off_is_null_and_every_call_is_a_no_op)
{
    struct kv_rcache *c = (struct kv_rcache *)1;
    ck_assert_int_eq(kv_rcache_new(0, &c, NULL), KV_OK);
    ck_assert_ptr_null(c);
    uint64_t t = 7;
    struct kv_buf b = {0};
    ck_assert(!kv_rcache_lookup(NULL, kv_slice_str("k"), &b, &t));
    ck_assert_uint_eq(t, 0);
    kv_rcache_insert(NULL, kv_slice_str("k"), kv_slice_str("v"), 1);
    kv_rcache_write_begin(NULL, kv_slice_str("k"));
    kv_rcache_write_end(NULL, kv_slice_str("k"));
    kv_rcache_clear(NULL);
    kv_rcache_free(NULL);
}
END_TEST

START_TEST(test_rcache_a_write_drops_the_entry_and_refuses_older_tickets)
{
    struct kv_rcache *c = mk_cache(1 << 20);
    fill(c, "k", "old");
    ck_assert(lookup(c, "k", "old", NULL));
    kv_rcache_write_begin(c, kv_slice_str("k"));
    /* During the write: no hit, and no ticket that could insert. */
    uint64_t during = 1;
    ck_assert(!lookup(c, "k", NULL, &during));
    ck_assert_uint_eq(during, 0);
    kv_rcache_insert(c, kv_slice_str("k"), kv_slice_str("stale"), during);
    ck_assert(!lookup(c, "k", NULL, NULL));
    kv_rcache_write_end(c, kv_slice_str("k"));
    ck_assert(!lookup(c, "k", NULL, NULL));
    /* A reader that missed before a write began (and then read RocksDB slowly) cannot
     * insert what it read. */
    uint64_t before = 0;
    ck_assert(!lookup(c, "k", NULL, &before));
    ck_assert_uint_ne(before, 0);
    kv_rcache_write_begin(c, kv_slice_str("k"));
    kv_rcache_write_end(c, kv_slice_str("k"));
    kv_rcache_insert(c, kv_slice_str("k"), kv_slice_str("stale"), before);
    ck_assert(!lookup(c, "k", NULL, NULL));
    /* A ticket taken after the write works. */
    fill(c, "k", "new");
    ck_assert(lookup(c, "k", "new", NULL));
    kv_rcache_free(c);
}
END_TEST

START_TEST(test_rcache_clear_drops_everything_and_outstanding_tickets)
{
    struct kv_rcache *c = mk_cache(1 << 20);
    for (int i = 0; i < 200; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        fill(c, k, "v");
    }
    uint64_t t;
    ck_assert(!lookup(c, "late", NULL, &t));
    kv_rcache_clear(c);
    kv_rcache_insert(c, kv_slice_str("late"), kv_slice_str("v"), t);
    struct kv_rcache_stats s;
    kv_rcache_stats(c, &s);
    ck_assert_uint_eq(s.entries, 0);
    ck_assert_uint_eq(s.bytes, 0);
    ck_assert(!lookup(c, "k7", NULL, NULL));
    kv_rcache_free(c);
}
END_TEST

START_TEST(test_rcache_stays_within_its_budget_and_evicts_the_least_recently_used)
{
    size_t cap = 64u << 10;              /* 1 KiB per stripe */
    struct kv_rcache *c = mk_cache(cap);
    char val[100];
    memset(val, 'x', sizeof val - 1);
    val[sizeof val - 1] = '\0';
    for (int i = 0; i < 5000; i++) {
        char k[16];
        snprintf(k, sizeof k, "key%d", i);
        fill(c, k, val);
        lookup(c, "key0", val, NULL);    /* kept hot: must survive every eviction */
    }
    struct kv_rcache_stats s;
    kv_rcache_stats(c, &s);
    ck_assert_uint_le(s.bytes, cap);
    ck_assert_uint_gt(s.evictions, 4000);
    ck_assert_uint_gt(s.entries, 100);
    ck_assert(lookup(c, "key0", val, NULL));
    ck_assert(!lookup(c, "key1", NULL, NULL));   /* long since evicted */
    /* Too large to cache: never kept. */
    char *big = malloc(KV_RCACHE_MAX_RECORD + 2);
    memset(big, 'b', KV_RCACHE_MAX_RECORD + 1);
    big[KV_RCACHE_MAX_RECORD + 1] = '\0';
    fill(c, "big", big);
    ck_assert(!lookup(c, "big", NULL, NULL));
    free(big);
    kv_rcache_free(c);
}
END_TEST

/* ---------------------------------------------------------------- through the store -- */

START_TEST(test_store_reads_hit_the_cache_and_a_write_is_read_at_once)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    put(st, "a", (struct w){H(1), 1, "one"}, 0);
    expect_live(st, "a", "one");
    expect_live(st, "a", "one");
    struct kv_rcache_stats s;
    kv_store_cache_stats(st, &s);
    ck_assert_uint_eq(s.hits, 1);
    ck_assert_uint_eq(s.misses, 1);
    put(st, "a", (struct w){H(2), 1, "two"}, 0);     /* acknowledged: must read back */
    expect_live(st, "a", "two");
    put(st, "a", (struct w){H(3), 1, NULL}, 0);      /* a delete too */
    expect_live(st, "a", NULL);
    expect_raw(st, "a", (struct w){H(3), 1, NULL});
    expect_raw(st, "a", (struct w){H(3), 1, NULL});  /* the tombstone, from the cache */
    put(st, "a", (struct w){H(2), 1, "older"}, 0);   /* loses to the tombstone */
    expect_live(st, "a", NULL);
    /* TTL is judged at read time, so a cached record still expires. */
    put(st, "t", (struct w){H(4), 1, "ttl"}, T0 + 1000);
    expect_live(st, "t", "ttl");
    expect_live(st, "t", "ttl");
    fake_now = T0 + 2000;
    expect_live(st, "t", NULL);
    kv_store_cache_stats(st, &s);
    ck_assert_uint_ge(s.hits, 3);
    kv_store_close(st);
}
END_TEST

START_TEST(test_store_a_corrupt_record_is_never_cached)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    put(st, "c", (struct w){H(1), 1, "good"}, 0);
    expect_live(st, "c", "good");                    /* now cached */
    struct kv_record r = {.ver = {H(2), 1}, .value = kv_slice_str("bad")};
    plant_corrupt(st, "c", &r);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(get_raw_status(st, "c"), KV_CORRUPTION);
    kv_store_close(st);
}
END_TEST

/* Readers race one writer that acknowledges ever newer versions of a few keys: a read
 * that starts after an acknowledgement must see that version or a newer one. Without the
 * write brackets (or with a ticket check that lets a slow reader insert what it read
 * before a write), readers find the cache holding a version older than one acknowledged. */
#define RACE_KEYS 4
#define RACE_WRITES 3000
static _Atomic uint64_t g_acked[RACE_KEYS];
static _Atomic int g_race_done;
static _Atomic uint64_t g_stale, g_reads;
static struct kv_store *g_st;

static void *race_reader(void *arg)
{
    (void)arg;
    unsigned k = 0;
    while (!atomic_load(&g_race_done)) {
        k = (k + 1) % RACE_KEYS;
        uint64_t floor = atomic_load(&g_acked[k]);
        char key[8];
        snprintf(key, sizeof key, "r%u", k);
        struct kv_store_item it = {0};
        if (kv_store_get(g_st, kv_slice_str(key), KV_STORE_RAW, &it, NULL) == KV_OK) {
            if (it.rec.ver.hlc < floor)
                atomic_fetch_add(&g_stale, 1);
            kv_store_item_free(&it);
        } else if (floor) {
            atomic_fetch_add(&g_stale, 1);
        }
        atomic_fetch_add(&g_reads, 1);
    }
    return NULL;
}

START_TEST(test_store_racing_readers_never_read_older_than_an_acknowledged_write)
{
    char dir[256];
    g_st = open_fresh(dir, sizeof dir);
    atomic_store(&g_race_done, 0);
    atomic_store(&g_stale, 0);
    atomic_store(&g_reads, 0);
    for (int k = 0; k < RACE_KEYS; k++)
        atomic_store(&g_acked[k], 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, race_reader, NULL), 0);
    for (int i = 1; i <= RACE_WRITES; i++) {
        unsigned k = (unsigned)i % RACE_KEYS;
        char key[8];
        snprintf(key, sizeof key, "r%u", k);
        put(g_st, key, (struct w){H(i), 1, "v"}, 0);   /* returns once acknowledged */
        atomic_store(&g_acked[k], H(i));
    }
    atomic_store(&g_race_done, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    struct kv_rcache_stats s;
    kv_store_cache_stats(g_st, &s);
    ck_assert_uint_eq(atomic_load(&g_stale), 0);
    ck_assert_uint_gt(atomic_load(&g_reads), 1000);
    ck_assert_uint_gt(s.hits, 0);        /* the cache was in play, not bypassed */
    kv_store_close(g_st);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("rcache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, test_rcache_a_miss_gives_a_ticket_and_the_insert_then_hits);
    tcase_add_test(tc, test_rcache_off_is_null_and_every_call_is_a_no_op);
    tcase_add_test(tc, test_rcache_a_write_drops_the_entry_and_refuses_older_tickets);
    tcase_add_test(tc, test_rcache_clear_drops_everything_and_outstanding_tickets);
    tcase_add_test(tc, test_rcache_stays_within_its_budget_and_evicts_the_least_recently_used);
    suite_add_tcase(s, tc);
    TCase *ts = tcase_create("store");
    tcase_add_unchecked_fixture(ts, root_setup, root_teardown);
    tcase_set_timeout(ts, 120);
    tcase_add_test(ts, test_store_reads_hit_the_cache_and_a_write_is_read_at_once);
    tcase_add_test(ts, test_store_a_corrupt_record_is_never_cached);
    tcase_add_test(ts, test_store_racing_readers_never_read_older_than_an_acknowledged_write);
    suite_add_tcase(s, ts);
    return s;
}

int main(void) { return kv_check_run(suite(), true); }
