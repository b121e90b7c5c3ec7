/* tests/unit/test_store_life.c -- the RocksDB store (storage/store.h) over its life:
 * durability across reopen, checkpoints and sync modes, async writes and their callbacks,
 * corrupt records, reads on an event loop, properties, and disk full / I/O errors.
 * Fixtures: tests/unit/store_fixture.h; the store's other behaviour is test_store.c. */
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

/* A fresh store in dir at sync=batch whose commit thread may wait batch_delay_us for
 * company (commit.c (3)). */
static struct kv_store *open_batch_waiting(char *dir, size_t cap, uint32_t batch_delay_us)
{
    fresh_dir(dir, cap);
    struct kv_store_opts o;
    kv_store_opts_default(&o);
    o.path = dir;
    o.sync = KV_SYNC_BATCH;
    o.batch_delay_us = batch_delay_us;
    o.now_ms = fake_clock;
    struct kv_store *st;
    ck_assert_int_eq(kv_store_open(&o, &st, NULL), KV_OK);
    return st;
}

START_TEST(test_store_close_runs_the_callbacks_of_pending_async_writes)
{
    char dir[256];
    /* the thread would wait 2 s: close must not */
    struct kv_store *st = open_batch_waiting(dir, sizeof dir, 2000000);
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
    struct kv_store *st = open_batch_waiting(dir, sizeof dir, 3000000);   /* the old wait */
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

static Suite *store_life_suite(void)
{
    Suite *s = suite_create("store_life");
    TCase *tc = tcase_create("core");
    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_set_timeout(tc, 120);
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
    return kv_check_run(store_life_suite(), true);
}
