/* tests/unit/test_scan.c -- cluster-wide scans (cluster/scan.c) on whole simulated nodes:
 * ranges walked in key order, replica answers merged by version, tombstones hidden, stale
 * replicas repaired at QUORUM, and key cursors that survive node failures.
 *
 * Nodes own explicit tokens "user:%06d" at every 20th key, so the 300 keys the tests write
 * span 15 ranges; with rf 2 (or 5 nodes and rf 3) consecutive ranges have different
 * replica sets and a scan takes many rounds. */
#include <check.h>
#include "tests/check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster.h"
#include "common/log.h"
#include "tests/sim/simcall.h"

#define TIMEOUT_MS 300
#define NKEYS 300

static void test_opts(struct kv_cluster_opts *o)
{
    kv_cluster_opts_default(o);
    o->gossip_interval_ms = 20;
    o->default_timeout_ms = TIMEOUT_MS;
}

/* --------------------------------------------------------------------- helpers -- */

/* n nodes with rf, each owning its share of the tokens "user:%06d" at every 20th key
 * (so 300 keys span 15 ranges with varying replica sets), each seeing every other up. */
static double phi_threshold = 8;    /* a test may raise it to keep a partition unnoticed */

static void node_opts(struct kv_cluster_opts *o, uint32_t id, int n, unsigned rf)
{
    static char tok[SIM_MAX_NODES + 1][16][16];
    static struct kv_slice sl[SIM_MAX_NODES + 1][16];
    test_opts(o);
    o->rf = rf;
    o->phi_threshold = phi_threshold;
    size_t k = 0;
    for (int j = 0; j < 15; j++)
        if (j % n == (int)id - 1) {
            snprintf(tok[id][k], sizeof tok[id][k], "user:%06d", j * 20 + 7);
            sl[id][k] = kv_slice_str(tok[id][k]);
            k++;
        }
    o->tokens = sl[id];
    o->n_tokens = k;
}

static struct sim *cluster_of(uint64_t seed, int n, unsigned rf)
{
    struct sim *s = sim_new(seed, n);
    ck_assert_ptr_nonnull(s);
    for (int i = 1; i <= n; i++) {
        struct kv_cluster_opts o;
        node_opts(&o, (uint32_t)i, n, rf);
        ck_assert_int_eq(sim_start(s, (uint32_t)i, &o), KV_OK);
    }
    sim_wait_all_up(s, n);
    return s;
}

#define MAX_ITEMS 2048

struct page {
    bool done, returned, early;
    enum kv_status st;
    char msg[160];
    bool more;
    size_t n;
    char keys[MAX_ITEMS][16];
    char vals[MAX_ITEMS][16];
};

static void on_page(void *arg, const struct kv_cluster_result *r)
{
    struct page *p = arg;
    ck_assert(!p->done);
    p->done = true;
    p->early = !p->returned;
    p->st = r->st;
    snprintf(p->msg, sizeof p->msg, "%s", r->err.msg);
    p->more = r->more;
    ck_assert_uint_le(r->n_items, MAX_ITEMS);
    p->n = r->n_items;
    for (size_t i = 0; i < r->n_items; i++) {
        ck_assert_uint_lt(r->items[i].key.len, 16);
        ck_assert_uint_lt(r->items[i].value.len, 16);
        memcpy(p->keys[i], r->items[i].key.ptr, r->items[i].key.len);
        p->keys[i][r->items[i].key.len] = 0;
        memcpy(p->vals[i], r->items[i].value.ptr, r->items[i].value.len);
        p->vals[i][r->items[i].value.len] = 0;
    }
}

static bool page_done(void *arg) { return ((struct page *)arg)->done; }

static struct page *scan_page(struct sim *s, uint32_t via, const char *start, const char *end,
                              const char *after, uint32_t limit, bool keys_only,
                              enum kv_level l)
{
    struct page *p = calloc(1, sizeof *p);
    kv_cluster_scan(sim_cluster(s, via), kv_slice_str(start), kv_slice_str(end), kv_slice_str(after),
                    limit, keys_only, l, 0, on_page, p);
    p->returned = true;
    ck_assert_msg(sim_run_until(s, page_done, p, 10000), "no scan answer within 10 s");
    ck_assert(!p->early);
    return p;
}

/* Pages through [start, end) with limit per page from coordinator `via` at level l,
 * checking order, the limit and strict resumption after each cursor; returns how many
 * keys it saw and their concatenation order in keys_out (may be NULL). `between` runs
 * after every page (may be NULL). */
static size_t scan_all(struct sim *s, uint32_t via, const char *start, const char *end,
                       uint32_t limit, enum kv_level l, char (*keys_out)[16],
                       char (*vals_out)[16], void (*between)(struct sim *s, int page))
{
    char cursor[16] = "";
    size_t total = 0;
    for (int pg = 0;; pg++) {
        ck_assert_int_lt(pg, 2 * NKEYS + 2);
        struct page *p = scan_page(s, via, start, end, cursor, limit, false, l);
        ck_assert_msg(p->st == KV_OK, "page %d: %s", pg, p->msg);
        ck_assert_uint_le(p->n, limit);
        for (size_t i = 0; i < p->n; i++) {
            const char *prev = i ? p->keys[i - 1] : cursor;
            ck_assert_msg(strcmp(p->keys[i], prev) > 0, "%s after %s", p->keys[i], prev);
            ck_assert_uint_lt(total, NKEYS * 2);
            if (keys_out)
                strcpy(keys_out[total], p->keys[i]);
            if (vals_out)
                strcpy(vals_out[total], p->vals[i]);
            total++;
        }
        bool more = p->more;
        if (more) {
            ck_assert_uint_gt(p->n, 0);
            strcpy(cursor, p->keys[p->n - 1]);
        }
        free(p);
        if (between)
            between(s, pg);
        if (!more)
            break;
    }
    return total;
}

static void key_of(char *out, int i) { snprintf(out, 16, "user:%06d", i); }

static void write_keys(struct sim *s, const char *prefix)
{
    for (int i = 0; i < NKEYS; i++) {
        char k[16], v[16];
        key_of(k, i);
        snprintf(v, sizeof v, "%s%d", prefix, i);
        struct sim_call c = sim_put(s, (uint32_t)(i % 3) + 1, k, v, KV_LEVEL_QUORUM);
        ck_assert_int_eq(c.r.st, KV_OK);
    }
    sim_run_for(s, 2 * TIMEOUT_MS);
}

/* ----------------------------------------------------------------------- tests -- */

START_TEST(test_a_scan_returns_every_key_once_in_order_through_cursor_pages_of_any_size)
{
    struct sim *s = cluster_of(31, 3, 2);
    write_keys(s, "v");
    static char keys[NKEYS * 2][16], vals[NKEYS * 2][16];
    const uint32_t sizes[] = {1, 7, 19, 100, 1000};
    for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
        size_t n = scan_all(s, (uint32_t)(z % 3) + 1, "", "", sizes[z], KV_LEVEL_QUORUM, keys,
                            vals, NULL);
        ck_assert_uint_eq(n, NKEYS);
        for (int i = 0; i < NKEYS; i++) {
            char k[16], v[16];
            key_of(k, i);
            snprintf(v, sizeof v, "v%d", i);
            ck_assert_str_eq(keys[i], k);
            ck_assert_str_eq(vals[i], v);
        }
    }
    /* Bounds: [user:000100, user:000200) holds exactly 100 keys. */
    ck_assert_uint_eq(scan_all(s, 2, "user:000100", "user:000200", 13, KV_LEVEL_ONE, keys,
                               NULL, NULL), 100);
    ck_assert_str_eq(keys[0], "user:000100");
    ck_assert_str_eq(keys[99], "user:000199");
    /* An end that is a token, and a start past the end. */
    ck_assert_uint_eq(scan_all(s, 1, "user:000020", "user:000027", 5, KV_LEVEL_ALL, keys,
                               NULL, NULL), 7);
    ck_assert_uint_eq(scan_all(s, 1, "user:000200", "user:000100", 5, KV_LEVEL_QUORUM, NULL,
                               NULL, NULL), 0);
    /* keys_only: keys without values. */
    struct page *p = scan_page(s, 3, "", "", "", 10, true, KV_LEVEL_QUORUM);
    ck_assert_int_eq(p->st, KV_OK);
    ck_assert_uint_eq(p->n, 10);
    ck_assert_str_eq(p->vals[0], "");
    ck_assert(p->more);
    free(p);
    sim_free(s);
}
END_TEST

START_TEST(test_a_scan_hides_tombstones_and_expired_records)
{
    struct sim *s = cluster_of(32, 3, 2);
    write_keys(s, "v");
    for (int i = 0; i < NKEYS; i += 3) {
        char k[16];
        key_of(k, i);
        ck_assert_int_eq(sim_del(s, 2, k, KV_LEVEL_QUORUM).r.st, KV_OK);
    }
    struct sim_call c = {0};
    kv_cluster_put(sim_cluster(s, 1), kv_slice_str("user:000001"), kv_slice_str("short"), 100,
                   KV_LEVEL_ALL, 0, sim_call_cb, &c);
    sim_call_wait(s, &c);
    ck_assert_int_eq(c.r.st, KV_OK);
    sim_run_for(s, 200);
    static char keys[NKEYS * 2][16];
    size_t n = scan_all(s, 3, "", "", 11, KV_LEVEL_QUORUM, keys, NULL, NULL);
    ck_assert_uint_eq(n, NKEYS - NKEYS / 3 - 1);
    for (size_t i = 0; i < n; i++) {
        int k = atoi(keys[i] + 5);
        ck_assert_int_ne(k % 3, 0);
        ck_assert_int_ne(k, 1);
    }
    sim_free(s);
}
END_TEST

START_TEST(test_a_quorum_scan_merges_a_stale_replica_newest_wins_and_repairs_it)
{
    /* A partition the detector does not notice: no up transition, so no hint replays
     * before the scan; only the scan can repair node 3. */
    phi_threshold = 50;
    struct sim *s = cluster_of(33, 3, 3);
    phi_threshold = 8;
    write_keys(s, "old");
    /* Node 3 misses new values for every other key and a batch of new keys. */
    sim_isolate(s, 3, true);
    for (int i = 0; i < NKEYS; i += 2) {
        char k[16], v[16];
        key_of(k, i);
        snprintf(v, sizeof v, "new%d", i);
        ck_assert_int_eq(sim_put(s, 1, k, v, KV_LEVEL_QUORUM).r.st, KV_OK);
    }
    for (int i = NKEYS; i < NKEYS + 40; i++) {
        char k[16];
        key_of(k, i);
        ck_assert_int_eq(sim_put(s, 2, k, "fresh", KV_LEVEL_QUORUM).r.st, KV_OK);
    }
    sim_isolate(s, 3, false);
    ck_assert(sim_stored_value_is(s, 3, "user:000000", "old0"));
    ck_assert_int_eq(sim_sees(s, 1, 3), 1);
    uint64_t repairs = sim_stats(s, 3).read_repairs;

    /* Coordinated by the stale node: its own answer is always in the quorum. */
    static char keys[NKEYS * 2][16], vals[NKEYS * 2][16];
    size_t n = scan_all(s, 3, "", "", 23, KV_LEVEL_QUORUM, keys, vals, NULL);
    ck_assert_uint_eq(n, NKEYS + 40);
    for (int i = 0; i < NKEYS + 40; i++) {
        char k[16], v[16];
        key_of(k, i);
        if (i >= NKEYS)
            snprintf(v, sizeof v, "fresh");
        else
            snprintf(v, sizeof v, "%s%d", i % 2 ? "old" : "new", i);
        ck_assert_str_eq(keys[i], k);
        ck_assert_str_eq(vals[i], v);
    }
    /* Repaired before each page was answered. */
    ck_assert(sim_stored_value_is(s, 3, "user:000000", "new0"));
    ck_assert(sim_stored_value_is(s, 3, "user:000298", "new298"));
    ck_assert(sim_stored_value_is(s, 3, "user:000339", "fresh"));
    ck_assert_uint_ge(sim_stats(s, 3).read_repairs - repairs, NKEYS / 2 + 40);
    sim_free(s);
}
END_TEST

START_TEST(test_a_quorum_scan_works_with_one_node_down_and_all_is_unavailable)
{
    struct sim *s = cluster_of(34, 3, 3);
    write_keys(s, "v");
    sim_crash(s, 3);
    sim_wait_view(s, 1, 3, 0);
    ck_assert_uint_eq(scan_all(s, 1, "", "", 37, KV_LEVEL_QUORUM, NULL, NULL, NULL), NKEYS);
    struct page *p = scan_page(s, 2, "", "", "", 10, false, KV_LEVEL_ALL);
    ck_assert_int_eq(p->st, KV_UNAVAILABLE);
    ck_assert_uint_eq(p->n, 0);
    free(p);
    sim_free(s);
}
END_TEST

static void crash_node_2_after_page_2(struct sim *s, int page)
{
    if (page != 2)
        return;
    sim_crash(s, 2);
    sim_wait_view(s, 1, 2, 0);
}

static void restart_node_4_after_page_1(struct sim *s, int page)
{
    if (page == 1) {
        sim_crash(s, 4);
    } else if (page == 3) {
        struct kv_cluster_opts o;
        node_opts(&o, 4, 5, 3);
        ck_assert_int_eq(sim_start(s, 4, &o), KV_OK);
    }
}

START_TEST(test_a_cursor_taken_before_a_node_fails_continues_correctly_after)
{
    struct sim *s = cluster_of(35, 5, 3);
    write_keys(s, "v");
    static char keys[NKEYS * 2][16];
    /* A node dies after the second page: the cursor is a key, so paging goes on. */
    size_t n = scan_all(s, 1, "", "", 41, KV_LEVEL_QUORUM, keys, NULL, crash_node_2_after_page_2);
    ck_assert_uint_eq(n, NKEYS);
    for (int i = 0; i < NKEYS; i++) {
        char k[16];
        key_of(k, i);
        ck_assert_str_eq(keys[i], k);
    }
    /* A node goes down and comes back in the middle of a scan at ONE. */
    n = scan_all(s, 3, "", "", 29, KV_LEVEL_ONE, keys, NULL, restart_node_4_after_page_1);
    ck_assert_uint_eq(n, NKEYS);
    sim_free(s);
}
END_TEST

START_TEST(test_a_scan_on_a_node_that_has_not_joined_is_unavailable)
{
    struct sim *s = sim_new(36, 2);
    struct kv_cluster_opts o;
    node_opts(&o, 2, 2, 3);
    ck_assert_int_eq(sim_start(s, 2, &o), KV_OK);
    struct page *p = scan_page(s, 2, "", "", "", 10, false, KV_LEVEL_ONE);
    ck_assert_int_eq(p->st, KV_UNAVAILABLE);
    free(p);
    p = scan_page(s, 2, "", "", "", 10, false, KV_LEVEL_LINEARIZABLE);
    ck_assert_int_eq(p->st, KV_INVALID);
    free(p);
    sim_free(s);
}
END_TEST

int main(void)
{
    kv_log_set_level(KV_LOG_ERROR);
    Suite *s = suite_create("scan");
    TCase *t = tcase_create("scan");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_a_scan_returns_every_key_once_in_order_through_cursor_pages_of_any_size);
    tcase_add_test(t, test_a_scan_hides_tombstones_and_expired_records);
    tcase_add_test(t, test_a_quorum_scan_merges_a_stale_replica_newest_wins_and_repairs_it);
    tcase_add_test(t, test_a_quorum_scan_works_with_one_node_down_and_all_is_unavailable);
    tcase_add_test(t, test_a_cursor_taken_before_a_node_fails_continues_correctly_after);
    tcase_add_test(t, test_a_scan_on_a_node_that_has_not_joined_is_unavailable);
    suite_add_tcase(s, t);
    return kv_check_run(s, true);
}
