/* tests/unit/test_ring.c -- the order-preserving token ring (cluster/ring.h). */
#include <check.h>
#include "tests/check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/ring.h"
#include "common/hash.h"

/* --- helpers ------------------------------------------------------------------------- */

static void add_str_tokens(struct kv_ring *r, uint32_t id, const char *region, const char *rack,
                           const char *const *toks, size_t n)
{
    struct kv_slice s[16];
    ck_assert_uint_le(n, 16);
    for (size_t i = 0; i < n; i++)
        s[i] = kv_slice_str(toks[i]);
    struct kv_err err;
    ck_assert_int_eq(kv_ring_add_node(r, id, region, rack, s, n, &err), KV_OK);
}

static void add_default(struct kv_ring *r, uint32_t id, const char *region, const char *rack,
                        size_t n_tokens)
{
    uint8_t buf[64 * 8];
    struct kv_slice toks[64];
    ck_assert_uint_le(n_tokens, 64);
    kv_ring_default_tokens(id, n_tokens, buf, toks);
    struct kv_err err;
    ck_assert_int_eq(kv_ring_add_node(r, id, region, rack, toks, n_tokens, &err), KV_OK);
}

static struct kv_ring *ring_with_nodes(uint32_t n, size_t tokens_each)
{
    struct kv_ring *r = kv_ring_new();
    ck_assert_ptr_nonnull(r);
    for (uint32_t id = 1; id <= n; id++)
        add_default(r, id, "dc1", "r1", tokens_each);
    return r;
}

static struct kv_ring *ring_copy_with_node(const struct kv_ring *r, uint32_t id)
{
    struct kv_ring *c = kv_ring_copy(r);
    ck_assert_ptr_nonnull(c);
    add_default(c, id, "dc1", "r1", 16);
    return c;
}

/* Key i of a spread-out key set: 8 hashed bytes, like a default token. */
static struct kv_slice hashed_key(size_t i, uint8_t out[8])
{
    uint64_t h = kv_hash64(&i, sizeof i);
    for (int b = 0; b < 8; b++)
        out[b] = (uint8_t)(h >> (56 - 8 * b));
    return kv_slice_of(out, 8);
}

static uint32_t primary(const struct kv_ring *r, struct kv_slice key)
{
    uint32_t out[1];
    ck_assert_uint_eq(kv_ring_replicas(r, key, 1, out), 1);
    return out[0];
}

static size_t count_moved_keys(const struct kv_ring *a, const struct kv_ring *b, size_t n)
{
    size_t moved = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t k[8];
        struct kv_slice key = hashed_key(i, k);
        moved += primary(a, key) != primary(b, key);
    }
    return moved;
}

static size_t count_keys_owned(const struct kv_ring *r, uint32_t id, size_t n)
{
    size_t owned = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t k[8];
        owned += primary(r, hashed_key(i, k)) == id;
    }
    return owned;
}

static bool contains(const uint32_t *ids, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* --- tests --------------------------------------------------------------------------- */

START_TEST(test_a_key_belongs_to_the_first_token_at_or_after_it_wrapping_past_the_last)
{
    struct kv_ring *r = kv_ring_new();
    add_str_tokens(r, 1, "dc1", "r1", (const char *[]){"b"}, 1);
    add_str_tokens(r, 2, "dc1", "r1", (const char *[]){"d"}, 1);
    add_str_tokens(r, 3, "dc1", "r1", (const char *[]){"f"}, 1);
    ck_assert_uint_eq(primary(r, kv_slice_str("")), 1);
    ck_assert_uint_eq(primary(r, kv_slice_str("a")), 1);
    ck_assert_uint_eq(primary(r, kv_slice_str("b")), 1);    /* a token is in its own range */
    ck_assert_uint_eq(primary(r, kv_slice_str("b\0")), 1);
    ck_assert_uint_eq(primary(r, kv_slice_of("b\0", 2)), 2);  /* just after "b" */
    ck_assert_uint_eq(primary(r, kv_slice_str("c")), 2);
    ck_assert_uint_eq(primary(r, kv_slice_str("d")), 2);
    ck_assert_uint_eq(primary(r, kv_slice_str("da")), 3);
    ck_assert_uint_eq(primary(r, kv_slice_str("f")), 3);
    ck_assert_uint_eq(primary(r, kv_slice_str("fa")), 1);   /* wraps to the first token */
    ck_assert_uint_eq(primary(r, kv_slice_str("zzzz")), 1);
    uint32_t out[3];
    ck_assert_uint_eq(kv_ring_replicas(r, kv_slice_str("c"), 3, out), 3);
    ck_assert_uint_eq(out[0], 2);   /* then clockwise */
    ck_assert_uint_eq(out[1], 3);
    ck_assert_uint_eq(out[2], 1);
    kv_ring_free(r);
}
END_TEST

START_TEST(test_replicas_are_distinct_and_exactly_min_of_rf_and_nodes)
{
    for (uint32_t nodes = 1; nodes <= 6; nodes++) {
        struct kv_ring *r = ring_with_nodes(nodes, 8);
        for (unsigned rf = 1; rf <= 8; rf++)
            for (size_t i = 0; i < 500; i++) {
                uint8_t k[8];
                uint32_t out[KV_RING_MAX_RF];
                size_t n = kv_ring_replicas(r, hashed_key(i, k), rf, out);
                ck_assert_uint_eq(n, rf < nodes ? rf : nodes);
                for (size_t a = 0; a < n; a++) {
                    ck_assert(out[a] >= 1 && out[a] <= nodes);
                    for (size_t b = a + 1; b < n; b++)
                        ck_assert_uint_ne(out[a], out[b]);
                }
            }
        kv_ring_free(r);
    }
    struct kv_ring *empty = kv_ring_new();
    uint32_t out[3];
    ck_assert_uint_eq(kv_ring_replicas(empty, kv_slice_str("k"), 3, out), 0);
    ck_assert_uint_eq(kv_ring_range_count(empty), 0);
    kv_ring_free(empty);
}
END_TEST

START_TEST(test_three_replicas_land_on_three_racks_when_there_are_three)
{
    struct kv_ring *r = kv_ring_new();
    const char *racks[] = {"r1", "r2", "r3"};
    for (uint32_t id = 1; id <= 9; id++)   /* racks unevenly interleaved by token */
        add_default(r, id, "dc1", racks[(id * 7) % 3], 16);
    for (size_t i = 0; i < 2000; i++) {
        uint8_t k[8];
        uint32_t out[3];
        ck_assert_uint_eq(kv_ring_replicas(r, hashed_key(i, k), 3, out), 3);
        bool seen[3] = {false, false, false};
        for (int j = 0; j < 3; j++)
            seen[(out[j] * 7) % 3] = true;
        ck_assert(seen[0] && seen[1] && seen[2]);
    }
    kv_ring_free(r);
}
END_TEST

START_TEST(test_replicas_spread_over_regions_first_then_racks)
{
    struct kv_ring *r = kv_ring_new();
    /* dc1 has 4 nodes on 2 racks, dc2 has 2 nodes on one rack. */
    add_default(r, 1, "dc1", "a", 16);
    add_default(r, 2, "dc1", "a", 16);
    add_default(r, 3, "dc1", "b", 16);
    add_default(r, 4, "dc1", "b", 16);
    add_default(r, 5, "dc2", "a", 16);
    add_default(r, 6, "dc2", "a", 16);
    for (size_t i = 0; i < 2000; i++) {
        uint8_t k[8];
        uint32_t out[4];
        ck_assert_uint_eq(kv_ring_replicas(r, hashed_key(i, k), 4, out), 4);
        /* The first two are one per region; the first three cover three (region, rack)
         * pairs: dc1/a, dc1/b and dc2/a. */
        bool dc2_0 = out[0] >= 5, dc2_1 = out[1] >= 5, dc2_2 = out[2] >= 5;
        ck_assert(dc2_0 != dc2_1);
        ck_assert(!dc2_2);
        uint32_t dc1a = dc2_0 ? out[1] : out[0];
        bool first_dc1_on_a = dc1a <= 2;
        ck_assert(first_dc1_on_a != (out[2] <= 2));
    }
    kv_ring_free(r);
}
END_TEST

START_TEST(test_the_answer_does_not_depend_on_the_order_nodes_were_added)
{
    const char *racks[] = {"r1", "r2"};
    const char *regions[] = {"eu", "us"};
    struct kv_ring *a = kv_ring_new(), *b = kv_ring_new();
    for (uint32_t id = 1; id <= 7; id++)
        add_default(a, id, regions[id % 2], racks[(id / 2) % 2], 12);
    for (uint32_t id = 7; id >= 1; id--)
        add_default(b, id, regions[id % 2], racks[(id / 2) % 2], 12);
    ck_assert_uint_eq(kv_ring_token_count(a), 7 * 12);
    ck_assert_uint_eq(kv_ring_node_count(b), 7);
    for (unsigned rf = 1; rf <= 5; rf++)
        for (size_t i = 0; i < 1000; i++) {
            uint8_t k[8];
            uint32_t oa[5], ob[5];
            size_t na = kv_ring_replicas(a, hashed_key(i, k), rf, oa);
            size_t nb = kv_ring_replicas(b, hashed_key(i, k), rf, ob);
            ck_assert_uint_eq(na, nb);
            ck_assert_mem_eq(oa, ob, na * sizeof *oa);
        }
    kv_ring_free(a);
    kv_ring_free(b);
}
END_TEST

START_TEST(test_the_built_cache_gives_the_same_replicas_as_walking)
{
    struct kv_ring *walked = kv_ring_new();
    const char *racks[] = {"r1", "r2", "r3"};
    for (uint32_t id = 1; id <= 8; id++)
        add_default(walked, id, id <= 5 ? "eu" : "us", racks[id % 3], 16);
    struct kv_ring *built = kv_ring_copy(walked);
    ck_assert_int_eq(kv_ring_build(built, 3), KV_OK);
    ck_assert_int_eq(kv_ring_build(built, 0), KV_INVALID);
    ck_assert_int_eq(kv_ring_build(built, 3), KV_OK);
    for (size_t i = 0; i < 3000; i++) {
        uint8_t k[8];
        uint32_t ow[3], ob[3];
        ck_assert_uint_eq(kv_ring_replicas(walked, hashed_key(i, k), 3, ow), 3);
        ck_assert_uint_eq(kv_ring_replicas(built, hashed_key(i, k), 3, ob), 3);
        ck_assert_mem_eq(ow, ob, sizeof ow);
    }
    /* Another rf still works (walks), and changing the ring drops the cache. */
    uint32_t o2[2];
    ck_assert_uint_eq(kv_ring_replicas(built, kv_slice_str("x"), 2, o2), 2);
    ck_assert_int_eq(kv_ring_remove_node(built, 8), KV_OK);
    ck_assert_int_eq(kv_ring_remove_node(walked, 8), KV_OK);
    for (size_t i = 0; i < 500; i++) {
        uint8_t k[8];
        uint32_t ow[3], ob[3];
        kv_ring_replicas(walked, hashed_key(i, k), 3, ow);
        kv_ring_replicas(built, hashed_key(i, k), 3, ob);
        ck_assert_mem_eq(ow, ob, sizeof ow);
        ck_assert(!contains(ob, 3, 8));
    }
    kv_ring_free(walked);
    kv_ring_free(built);
}
END_TEST

START_TEST(test_ring_adding_a_node_moves_only_the_ranges_it_splits)
{
    struct kv_ring *r = ring_with_nodes(3, 16 /* tokens each */);
    struct kv_ring *after = ring_copy_with_node(r, 4);
    size_t owned = count_keys_owned(after, 4, 10000);
    ck_assert_uint_gt(owned, 0);
    ck_assert_int_eq(count_moved_keys(r, after, 10000), owned);
    /* With rf 3 on one rack, a replica set changes only by node 4 joining it. */
    for (size_t i = 0; i < 10000; i++) {
        uint8_t k[8];
        uint32_t ob[3], oa[3];
        kv_ring_replicas(r, hashed_key(i, k), 3, ob);
        kv_ring_replicas(after, hashed_key(i, k), 3, oa);
        for (int j = 0; j < 3; j++)
            if (!contains(ob, 3, oa[j]))
                ck_assert_uint_eq(oa[j], 4);
    }
    kv_ring_free(r);
    kv_ring_free(after);
}
END_TEST

START_TEST(test_a_token_already_owned_or_malformed_is_refused_and_the_ring_is_unchanged)
{
    struct kv_ring *r = kv_ring_new();
    struct kv_err err;
    add_str_tokens(r, 1, "dc1", "r1", (const char *[]){"m", "t"}, 2);
    struct kv_slice dup[] = {kv_slice_str("a"), kv_slice_str("t")};
    ck_assert_int_eq(kv_ring_add_node(r, 2, "dc1", "r1", dup, 2, &err), KV_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "node 1"));
    struct kv_slice twice[] = {kv_slice_str("q"), kv_slice_str("q")};
    ck_assert_int_eq(kv_ring_add_node(r, 2, "dc1", "r1", twice, 2, &err), KV_INVALID);
    struct kv_slice empty[] = {kv_slice_of("", 0)};
    ck_assert_int_eq(kv_ring_add_node(r, 2, "dc1", "r1", empty, 1, &err), KV_INVALID);
    static uint8_t big[KV_RING_MAX_TOKEN + 1];
    memset(big, 'z', sizeof big);
    struct kv_slice longt[] = {kv_slice_of(big, sizeof big)};
    ck_assert_int_eq(kv_ring_add_node(r, 2, "dc1", "r1", longt, 1, &err), KV_INVALID);
    struct kv_slice fine[] = {kv_slice_str("c")};
    ck_assert_int_eq(kv_ring_add_node(r, 1, "dc1", "r1", fine, 1, &err), KV_INVALID);
    ck_assert_uint_eq(kv_ring_node_count(r), 1);
    ck_assert_uint_eq(kv_ring_token_count(r), 2);
    ck_assert_int_eq(kv_ring_add_node(r, 2, NULL, NULL, fine, 1, &err), KV_OK);
    ck_assert_int_eq(kv_ring_remove_node(r, 9), KV_NOT_FOUND);
    uint32_t owner;
    struct kv_slice t0 = kv_ring_token_at(r, 0, &owner);
    ck_assert_int_eq(kv_slice_cmp(t0, kv_slice_str("c")), 0);
    ck_assert_uint_eq(owner, 2);
    kv_ring_free(r);
}
END_TEST

START_TEST(test_ranges_cover_the_key_space_in_order_without_gaps)
{
    struct kv_ring *r = ring_with_nodes(4, 8);
    ck_assert_int_eq(kv_ring_build(r, 3), KV_OK);
    size_t n = kv_ring_range_count(r);
    ck_assert_uint_eq(n, kv_ring_token_count(r) + 1);
    struct kv_slice prev_end = kv_slice_of(NULL, 0);
    for (size_t i = 0; i < n; i++) {
        struct kv_slice start, end;
        kv_ring_range(r, i, &start, &end);
        if (i == 0)
            ck_assert_uint_eq(start.len, 0);
        else
            ck_assert_int_eq(kv_slice_cmp(start, prev_end), 0);   /* no gap, no overlap */
        if (i == n - 1) {
            ck_assert_uint_eq(end.len, 0);
        } else {
            ck_assert_uint_gt(end.len, 0);
            if (i > 0)
                ck_assert_int_lt(kv_slice_cmp(start, end), 0);
            ck_assert_uint_eq(kv_ring_range_of(r, end), i);   /* the end is inclusive */
            uint32_t a[3], b[3];
            kv_ring_range_replicas(r, i, 3, a);
            kv_ring_replicas(r, end, 3, b);
            ck_assert_mem_eq(a, b, sizeof a);
        }
        if (i > 0) {   /* the start is exclusive: start + "\0" is the range's first key */
            uint8_t k[KV_RING_MAX_TOKEN + 1];
            memcpy(k, start.ptr, start.len);
            k[start.len] = 0;
            ck_assert_uint_eq(kv_ring_range_of(r, kv_slice_of(k, start.len + 1)), i);
            ck_assert_uint_eq(kv_ring_range_of(r, start), i - 1);
        }
        prev_end = end;
    }
    ck_assert_uint_eq(kv_ring_range_of(r, kv_slice_str("")), 0);
    uint8_t top[9] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ck_assert_uint_eq(kv_ring_range_of(r, kv_slice_of(top, 9)), n - 1);
    uint32_t first[3], last[3];   /* the last range wraps to the first token's replicas */
    kv_ring_range_replicas(r, 0, 3, first);
    kv_ring_range_replicas(r, n - 1, 3, last);
    ck_assert_mem_eq(first, last, sizeof first);
    kv_ring_free(r);
}
END_TEST

START_TEST(test_default_tokens_are_deterministic_distinct_and_eight_bytes)
{
    uint8_t a[64 * 8], b[64 * 8];
    struct kv_slice ta[64], tb[64];
    kv_ring_default_tokens(7, 64, a, ta);
    kv_ring_default_tokens(7, 64, b, tb);
    ck_assert_mem_eq(a, b, sizeof a);
    for (int i = 0; i < 64; i++) {
        ck_assert_uint_eq(ta[i].len, 8);
        ck_assert_ptr_eq(ta[i].ptr, a + 8 * i);
    }
    /* Distinct across 16 nodes x 64 tokens: the whole set goes into one ring. */
    struct kv_ring *r = kv_ring_new();
    for (uint32_t id = 1; id <= 16; id++)
        add_default(r, id, "dc1", "r1", 64);
    ck_assert_uint_eq(kv_ring_token_count(r), 16 * 64);
    /* Uniform enough: every first byte quarter holds a fair share of the 1024 tokens. */
    size_t quarter[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < kv_ring_token_count(r); i++)
        quarter[((const uint8_t *)kv_ring_token_at(r, i, NULL).ptr)[0] >> 6]++;
    for (int q = 0; q < 4; q++)
        ck_assert(quarter[q] > 180 && quarter[q] < 330);
    kv_ring_free(r);
}
END_TEST

/* What docs/cluster.md explains: hashed tokens spread over the whole byte space, but keys
 * that share a prefix are adjacent in key order, so they all fall into one range. */
START_TEST(test_ten_thousand_user_keys_fall_into_one_range_with_default_tokens)
{
    struct kv_ring *r = ring_with_nodes(3, 16);
    char key[32];
    size_t first = 0, per_node[4] = {0, 0, 0, 0};
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "user:%06d", i);
        size_t range = kv_ring_range_of(r, kv_slice_str(key));
        if (i == 0)
            first = range;
        ck_assert_uint_eq(range, first);
        per_node[primary(r, kv_slice_str(key))]++;
    }
    /* One node is primary for all of them. */
    ck_assert(per_node[1] == 10000 || per_node[2] == 10000 || per_node[3] == 10000);
    /* Tokens from the key space split them evenly instead. */
    struct kv_ring *e = kv_ring_new();
    add_str_tokens(e, 1, "dc1", "r1", (const char *[]){"user:002500", "user:007500"}, 2);
    add_str_tokens(e, 2, "dc1", "r1", (const char *[]){"user:005000"}, 1);
    add_str_tokens(e, 3, "dc1", "r1", (const char *[]){"user:010000"}, 1);
    size_t ranges[6] = {0};
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "user:%06d", i);
        ranges[kv_ring_range_of(e, kv_slice_str(key))]++;
    }
    ck_assert_uint_eq(ranges[0], 2501);   /* user:000000 .. user:002500 inclusive */
    ck_assert_uint_eq(ranges[1], 2500);
    ck_assert_uint_eq(ranges[2], 2500);
    ck_assert_uint_eq(ranges[3], 2499);
    ck_assert_uint_eq(ranges[4], 0);
    kv_ring_free(e);
    kv_ring_free(r);
}
END_TEST

START_TEST(test_a_copy_is_independent_of_its_original)
{
    struct kv_ring *r = ring_with_nodes(3, 4);
    struct kv_ring *c = kv_ring_copy(r);
    ck_assert_int_eq(kv_ring_remove_node(r, 2), KV_OK);
    ck_assert_uint_eq(kv_ring_node_count(c), 3);
    ck_assert_uint_eq(kv_ring_token_count(c), 12);
    ck_assert_uint_eq(kv_ring_token_count(r), 8);
    uint32_t id;
    const char *region, *rack;
    size_t nt;
    ck_assert(kv_ring_node_at(c, 1, &id, &region, &rack, &nt));
    ck_assert_uint_eq(id, 2);
    ck_assert_str_eq(region, "dc1");
    ck_assert_str_eq(rack, "r1");
    ck_assert_uint_eq(nt, 4);
    ck_assert(!kv_ring_node_at(c, 3, &id, NULL, NULL, NULL));
    kv_ring_free(r);
    kv_ring_free(c);
    kv_ring_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ring");
    TCase *t = tcase_create("ring");
    tcase_add_test(t, test_a_key_belongs_to_the_first_token_at_or_after_it_wrapping_past_the_last);
    tcase_add_test(t, test_replicas_are_distinct_and_exactly_min_of_rf_and_nodes);
    tcase_add_test(t, test_three_replicas_land_on_three_racks_when_there_are_three);
    tcase_add_test(t, test_replicas_spread_over_regions_first_then_racks);
    tcase_add_test(t, test_the_answer_does_not_depend_on_the_order_nodes_were_added);
    tcase_add_test(t, test_the_built_cache_gives_the_same_replicas_as_walking);
    tcase_add_test(t, test_ring_adding_a_node_moves_only_the_ranges_it_splits);
    tcase_add_test(t, test_a_token_already_owned_or_malformed_is_refused_and_the_ring_is_unchanged);
    tcase_add_test(t, test_ranges_cover_the_key_space_in_order_without_gaps);
    tcase_add_test(t, test_default_tokens_are_deterministic_distinct_and_eight_bytes);
    tcase_add_test(t, test_ten_thousand_user_keys_fall_into_one_range_with_default_tokens);
    tcase_add_test(t, test_a_copy_is_independent_of_its_original);
    suite_add_tcase(s, t);
    return kv_check_run(s, true);
}
