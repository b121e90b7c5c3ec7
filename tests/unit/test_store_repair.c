/* tests/unit/test_store_repair.c -- corrupt records and their replacement (store.h
 * kv_write.replace_corrupt, commit.c (5), lww.c (6)).
 *
 * Corruption is made two ways: a record with a bad checksum put under the merge operator
 * (what a bit flipped in memory or on its way to disk leaves), and one byte flipped in an
 * SST file of a closed store (what RocksDB's block checksums catch). Either way a read
 * answers KV_CORRUPTION, never data, and a replace_corrupt write heals the key without
 * dropping a newer write that sits above the bad bytes. */
#include <check.h>
#include "tests/check_run.h"
#include <dirent.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "storage/record.h"
#include "storage/store_int.h"          /* st->db, st->cf: to plant bad bytes */
#include "tests/unit/store_fixture.h"

/* plant_corrupt (store_fixture.h) for a record of version x. */
static void plant(struct kv_store *st, const char *key, struct w x)
{
    struct kv_write w = mk(key, x, 0);
    plant_corrupt(st, key, &w.rec);
}

static void repair(struct kv_store *st, const char *key, struct w x)
{
    struct kv_write w = mk(key, x, 0);
    w.replace_corrupt = true;
    struct kv_err err = {0};
    ck_assert_msg(kv_store_write(st, &w, 1, &err) == KV_OK, "repair %s: %s", key, err.msg);
}

START_TEST(test_a_corrupt_record_reads_as_corruption_and_a_repair_replaces_it)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    plant(st, "k", (struct w){H(5), 1, "truth"});
    ck_assert_int_eq(get_raw_status(st, "k"), KV_CORRUPTION);
    /* An ordinary merge cannot fold over it: still corruption, never the new value alone. */
    put(st, "k", (struct w){H(3), 2, "older"}, 0);
    ck_assert_int_eq(get_raw_status(st, "k"), KV_CORRUPTION);
    repair(st, "k", (struct w){H(5), 1, "truth"});
    expect_live(st, "k", "truth");
    expect_raw(st, "k", (struct w){H(5), 1, "truth"});
    compact(st);                     /* the bad bytes are gone, not just shadowed */
    expect_live(st, "k", "truth");
    kv_store_close(st);
}
END_TEST

START_TEST(test_a_lone_corrupt_value_is_replaced_too)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    plant(st, "k", (struct w){H(5), 1, "truth"});   /* no operand: no merge runs */
    ck_assert_int_eq(get_raw_status(st, "k"), KV_CORRUPTION);
    repair(st, "k", (struct w){H(5), 1, "truth"});
    expect_raw(st, "k", (struct w){H(5), 1, "truth"});
    kv_store_close(st);
}
END_TEST

START_TEST(test_a_repair_keeps_a_newer_write_stacked_above_the_corrupt_record)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    plant(st, "k", (struct w){H(5), 1, "old"});
    put(st, "k", (struct w){H(9), 3, "newer"}, 0);   /* a merge operand over the bad base */
    ck_assert_int_eq(get_raw_status(st, "k"), KV_CORRUPTION);
    /* The coordinator's repair carries what the other replicas had: older than "newer". */
    repair(st, "k", (struct w){H(7), 2, "from-peers"});
    expect_raw(st, "k", (struct w){H(9), 3, "newer"});
    kv_store_close(st);
}
END_TEST

START_TEST(test_a_repair_of_a_healthy_key_is_an_ordinary_merge)
{
    char dir[256];
    struct kv_store *st = open_fresh(dir, sizeof dir);
    put(st, "k", (struct w){H(9), 3, "current"}, 0);
    repair(st, "k", (struct w){H(7), 2, "stale"});   /* raced with a newer write: ignored */
    expect_raw(st, "k", (struct w){H(9), 3, "current"});
    repair(st, "fresh", (struct w){H(7), 2, "v"});    /* absent: simply written */
    expect_live(st, "fresh", "v");
    kv_store_close(st);
}
END_TEST

/* Flips one byte near the start (a data block) of every SST file in dir. */
static int flip_sst_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".sst") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r+b");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fseek(f, 40, SEEK_SET), 0);
        int c = fgetc(f);
        ck_assert_int_ne(c, EOF);
        ck_assert_int_eq(fseek(f, 40, SEEK_SET), 0);
        fputc(c ^ 0x01, f);
        fclose(f);
        n++;
    }
    closedir(d);
    return n;
}

enum { N = 200 };   /* keys key-0000 .. key-0199, values value-0000 .. */

/* A store in dir holding the N keys at H(10) in SST files, each file with one byte
 * flipped in a data block, reopened. */
static struct kv_store *flipped_store(char *dir, size_t cap)
{
    struct kv_store *st = open_fresh(dir, cap);
    char key[32], val[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key-%04d", i);
        snprintf(val, sizeof val, "value-%04d", i);
        put(st, key, (struct w){H(10), 1, val}, 0);
    }
    flush(st);
    kv_store_close(st);
    ck_assert_int_ge(flip_sst_bytes(dir), 1);
    return open_at(dir, KV_SYNC_BATCH, 1000);
}

START_TEST(test_a_flipped_sst_byte_is_corruption_for_its_keys_and_repairs_heal_them)
{
    char dir[256];
    struct kv_store *st = flipped_store(dir, sizeof dir);
    char key[32], val[32];
    int corrupt = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key-%04d", i);
        snprintf(val, sizeof val, "value-%04d", i);
        struct kv_store_item it = {0};
        enum kv_status s = kv_store_get(st, kv_slice_str(key), KV_STORE_RAW, &it, NULL);
        if (s == KV_OK) {            /* never a wrong value: right one or an error */
            ck_assert_uint_eq(it.rec.value.len, strlen(val));
            ck_assert(memcmp(it.rec.value.ptr, val, strlen(val)) == 0);
        } else {
            ck_assert_int_eq(s, KV_CORRUPTION);
            corrupt++;
            repair(st, key, (struct w){H(10), 1, val});
        }
        kv_store_item_free(&it);
    }
    ck_assert_int_ge(corrupt, 1);
    for (int i = 0; i < N; i++) {    /* every repaired key reads right now */
        snprintf(key, sizeof key, "key-%04d", i);
        snprintf(val, sizeof val, "value-%04d", i);
        expect_live(st, key, val);
    }
    kv_store_close(st);
}
END_TEST

/* commit.c (5) with a block-level fault: the read fails before any merge operand is
 * seen, so a newer write that reached the memtable between the coordinator's read and its
 * repair must be found there, not hidden under the repair's Put. */
START_TEST(test_a_repair_over_a_corrupt_block_keeps_a_newer_write_in_the_memtable)
{
    char dir[256];
    struct kv_store *st = flipped_store(dir, sizeof dir);
    char key[32];
    int bad = -1;
    for (int i = 0; i < N && bad < 0; i++) {
        snprintf(key, sizeof key, "key-%04d", i);
        if (get_raw_status(st, key) == KV_CORRUPTION)
            bad = i;
    }
    ck_assert_int_ge(bad, 0);
    snprintf(key, sizeof key, "key-%04d", bad);
    put(st, key, (struct w){H(20), 3, "newer"}, 0);    /* above the bad block */
    ck_assert_int_eq(get_raw_status(st, key), KV_CORRUPTION);
    repair(st, key, (struct w){H(10), 1, "from-peers"});
    expect_raw(st, key, (struct w){H(20), 3, "newer"});
    /* An older write is still the one replaced when nothing newer came. */
    snprintf(key, sizeof key, "key-%04d", bad + 1);
    if (get_raw_status(st, key) == KV_CORRUPTION) {
        repair(st, key, (struct w){H(10), 1, "from-peers"});
        expect_raw(st, key, (struct w){H(10), 1, "from-peers"});
    }
    kv_store_close(st);
}
END_TEST

static Suite *repair_suite(void)
{
    Suite *s = suite_create("store_repair");
    TCase *tc = tcase_create("core");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_test(tc, test_a_corrupt_record_reads_as_corruption_and_a_repair_replaces_it);
    tcase_add_test(tc, test_a_lone_corrupt_value_is_replaced_too);
    tcase_add_test(tc, test_a_repair_keeps_a_newer_write_stacked_above_the_corrupt_record);
    tcase_add_test(tc, test_a_repair_of_a_healthy_key_is_an_ordinary_merge);
    tcase_add_test(tc, test_a_flipped_sst_byte_is_corruption_for_its_keys_and_repairs_heal_them);
    tcase_add_test(tc, test_a_repair_over_a_corrupt_block_keeps_a_newer_write_in_the_memtable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kv_check_run(repair_suite(), true);
}
