/* tests/unit/store_fixture.c -- see store_fixture.h. */
#include "tests/unit/store_fixture.h"
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rocksdb/c.h>
#include "common/clock.h"
#include "storage/record.h"
#include "storage/store_int.h"

uint64_t fake_now = T0;
uint64_t fake_clock(void) { return fake_now; }

/* --------------------------------------------------------------------- fixtures -- */

char g_root[64];

void root_setup(void)
{
    strcpy(g_root, "/tmp/kvstore-test-XXXXXX");
    if (!mkdtemp(g_root))
        abort();
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void root_teardown(void) { nftw(g_root, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* A fresh directory path under the root (the store itself creates the last component). */
void fresh_dir(char *out, size_t n)
{
    char tmpl[128];
    snprintf(tmpl, sizeof tmpl, "%s/t-XXXXXX", g_root);
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    snprintf(out, n, "%s/db", tmpl);
}

struct kv_store *open_at(const char *path, enum kv_sync sync, uint64_t grace_ms)
{
    struct kv_store_opts o;
    kv_store_opts_default(&o);
    o.path = path;
    o.sync = sync;
    o.grace_ms = grace_ms;
    o.batch_delay_us = 200;
    o.block_cache_bytes = 8u << 20;
    o.now_ms = fake_clock;
    struct kv_store *st = NULL;
    struct kv_err err = {0};
    enum kv_status s = kv_store_open(&o, &st, &err);
    ck_assert_msg(s == KV_OK, "open %s: %s", path, err.msg);
    ck_assert_ptr_nonnull(st);
    return st;
}

struct kv_store *open_fresh(char *dir, size_t n)
{
    fresh_dir(dir, n);
    fake_now = T0;
    return open_at(dir, KV_SYNC_BATCH, 1000);
}

/* ---------------------------------------------------------------------- helpers -- */


struct kv_write mk(const char *key, struct w x, uint64_t expires)
{
    struct kv_write w = {.key = kv_slice_str(key)};
    w.rec.ver.hlc = x.hlc;
    w.rec.ver.node = x.node;
    w.rec.expires_at_ms = expires;
    w.rec.tombstone = x.val == NULL;
    if (x.val)
        w.rec.value = kv_slice_str(x.val);
    return w;
}

void put(struct kv_store *st, const char *key, struct w x, uint64_t expires)
{
    struct kv_write w = mk(key, x, expires);
    struct kv_err err = {0};
    enum kv_status s = kv_store_write(st, &w, 1, &err);
    ck_assert_msg(s == KV_OK, "write %s: %s", key, err.msg);
}

/* The live value of key must be val (NULL: KV_NOT_FOUND). */
void expect_live(struct kv_store *st, const char *key, const char *val)
{
    struct kv_store_item it = {0};
    struct kv_err err = {0};
    enum kv_status s = kv_store_get(st, kv_slice_str(key), 0, &it, &err);
    if (!val) {
        ck_assert_msg(s == KV_NOT_FOUND, "%s: want not found, got %s (%s)", key,
                      kv_status_name(s), err.msg);
        return;
    }
    ck_assert_msg(s == KV_OK, "%s: want %s, got %s (%s)", key, val, kv_status_name(s), err.msg);
    ck_assert_uint_eq(it.rec.value.len, strlen(val));
    ck_assert(memcmp(it.rec.value.ptr, val, strlen(val)) == 0);
    kv_store_item_free(&it);
    ck_assert_ptr_null(it.raw.ptr);
}

/* The raw record of key must have version x (and be a tombstone iff x.val is NULL). */
void expect_raw(struct kv_store *st, const char *key, struct w x)
{
    struct kv_store_item it = {0};
    struct kv_err err = {0};
    enum kv_status s = kv_store_get(st, kv_slice_str(key), KV_STORE_RAW, &it, &err);
    ck_assert_msg(s == KV_OK, "%s raw: %s (%s)", key, kv_status_name(s), err.msg);
    ck_assert_uint_eq(it.rec.ver.hlc, x.hlc);
    ck_assert_uint_eq(it.rec.ver.node, x.node);
    ck_assert(it.rec.tombstone == (x.val == NULL));
    kv_store_item_free(&it);
}

enum kv_status get_raw_status(struct kv_store *st, const char *key)
{
    struct kv_store_item it = {0};
    enum kv_status s = kv_store_get(st, kv_slice_str(key), KV_STORE_RAW, &it, NULL);
    kv_store_item_free(&it);
    return s;
}

void flush(struct kv_store *st)
{
    struct kv_err err = {0};
    ck_assert_msg(kv_store_flush(st, &err) == KV_OK, "flush: %s", err.msg);
}

void compact(struct kv_store *st)
{
    struct kv_err err = {0};
    ck_assert_msg(kv_store_compact(st, &err) == KV_OK, "compact: %s", err.msg);
}


void plant_corrupt(struct kv_store *st, const char *key, const struct kv_record *r)
{
    size_t n = kv_record_encoded_size(r);
    uint8_t *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    kv_record_encode(r, p);
    p[n - 1] ^= 0x20;
    char *e = NULL;
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put_cf(st->db, wo, st->cf[KV_CF_DATA], key, strlen(key), (const char *)p, n, &e);
    rocksdb_writeoptions_destroy(wo);
    ck_assert_ptr_null(e);
    free(p);
    kv_rcache_clear(st->rcache);   /* a write behind the commit thread: rcache.h (3) */
}
