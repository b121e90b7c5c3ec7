/* storage/store.c -- opening and closing the RocksDB store, point reads, the plain column
 * families, and operations (checkpoint, compaction, sizes, properties).
 *
 * (1) The DB is always opened with all four column families ("default" = KV_CF_DATA,
 *     "hints", "paxos", "meta"), creating the missing ones, so an old directory opens too.
 * (2) KV_CF_DATA is written only through merges (storage/commit.c); the raw functions here
 *     refuse it, so every value in it is an encoded record.
 * (3) A read returns a record only after it decoded; without KV_STORE_RAW it hides
 *     tombstones and records expired at st->now_ms().
 * (4) kv_store_close stops the commit thread (which drains the queue, running callbacks)
 *     and the health watcher before any RocksDB object is released.
 * (5) Write health follows the writes themselves: a write failing with KV_NOSPACE or
 *     KV_IOERR marks writes refused (keeping its message), the next successful write clears
 *     the mark. RocksDB stops a DB after such an error and answers every write with it
 *     until its own recovery resumes the DB (for no space: its default SstFileManager
 *     checks the free space every 5 s and resumes once write_buffer_bytes are free); with
 *     no client writing, the watcher thread probes once a second with an empty WriteBatch
 *     (which fails while the DB is stopped and writes nothing otherwise), so the mark
 *     clears within about a second of the DB resuming. An error RocksDB does not recover
 *     from by itself (a fatal one) keeps writes refused until kvd restarts.
 * (6) kvd never lets its own writes take the disk to zero: a write is refused (KV_NOSPACE,
 *     before RocksDB sees it) while the data directory's filesystem has less than
 *     reserve_bytes (2 x write_buffer_bytes: room for a memtable being flushed and one
 *     filling, and for RocksDB's info LOG) free after it. Writes come back the moment space
 *     does. This matters beyond tidiness: RocksDB 7.8 as Debian builds it keeps its
 *     assertions, and a WAL or info-LOG file that failed one append aborts the process on
 *     its next one (WritableFileWriter::AssertFalseAndGetStatusForPrevError, fixed upstream
 *     in 9.x); the reserve keeps those appends from ever failing for lack of space caused
 *     by kvd's own writes. RocksDB's recovery in (5) remains for space taken by others. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include "common/clock.h"
#include "common/log.h"
#include "storage/store_int.h"

static const char *const cf_names[KV_CF_COUNT] = {"default", "hints", "paxos", "meta"};

#define DEFAULT_BATCH_DELAY_US 1000u
#define DEFAULT_GRACE_MS (10ull * 24 * 3600 * 1000)
#define DEFAULT_BLOCK_CACHE (64u << 20)
#define DEFAULT_RECORD_CACHE (64u << 20)
#define READ_FLAGS_KNOWN (KV_STORE_RAW | KV_STORE_CACHE_ONLY)
#define ROCKSDB_BLOCK_CACHE_TIER 1       /* ReadTier::kBlockCacheTier */
#define ROCKSDB_MEMTABLE_TIER 3          /* ReadTier::kMemtableTier (iterators only) */
#define ROCKSDB_BOTTOMMOST_FORCE 2       /* BottommostLevelCompaction::kForce */
#define ROCKSDB_WRITE_BUFFER (64u << 20) /* RocksDB's default write_buffer_size */

void kv_store_opts_default(struct kv_store_opts *o)
{
    memset(o, 0, sizeof *o);
    o->sync = KV_SYNC_BATCH;
    o->batch_delay_us = DEFAULT_BATCH_DELAY_US;
    o->grace_ms = DEFAULT_GRACE_MS;
    o->block_cache_bytes = DEFAULT_BLOCK_CACHE;
    o->record_cache_bytes = DEFAULT_RECORD_CACHE;
    o->now_ms = NULL;
}

int kv_sync_parse(const char *s, enum kv_sync *out)
{
    static const struct { const char *name; enum kv_sync v; } t[] = {
        {"always", KV_SYNC_ALWAYS}, {"batch", KV_SYNC_BATCH}, {"none", KV_SYNC_NONE}};
    for (size_t i = 0; s && i < sizeof t / sizeof t[0]; i++)
        if (strcmp(s, t[i].name) == 0) {
            *out = t[i].v;
            return 0;
        }
    return -1;
}

const char *kv_sync_name(enum kv_sync s)
{
    switch (s) {
    case KV_SYNC_ALWAYS: return "always";
    case KV_SYNC_BATCH: return "batch";
    case KV_SYNC_NONE: return "none";
    }
    return "unknown";
}

rocksdb_column_family_handle_t *kv_store__cf(struct kv_store *st, enum kv_cf cf)
{
    if ((int)cf < 0 || cf >= KV_CF_COUNT)
        return NULL;
    return st->cf[cf];
}

/* ------------------------------------------------------------------ write health -- */

#define WATCH_PROBE_MS 1000

static const char *health_summary(enum kv_status code)
{
    switch (code) {
    case KV_OK: return "ok";
    case KV_NOSPACE: return "writes refused: disk full";
    default: return "writes refused: I/O error";
    }
}

void kv_store__note_write(struct kv_store *st, enum kv_status s, const struct kv_err *err)
{
    if (s == KV_OK) {
        if (!atomic_load_explicit(&st->refused, memory_order_relaxed))
            return;                      /* the common case: one relaxed load */
        pthread_mutex_lock(&st->hmu);
        if (atomic_load(&st->refused)) {
            atomic_store(&st->refused, false);
            st->resumes++;
            KV_INFO("storage: writes resumed after %llu ms refused (%s)",
                    (unsigned long long)(kv_clock_now_ms() - st->refused_since_ms),
                    health_summary(st->refused_code));
            st->refused_code = KV_OK;
        }
        pthread_mutex_unlock(&st->hmu);
        return;
    }
    if (s != KV_NOSPACE && s != KV_IOERR)
        return;                          /* bad input, shutdown...: not the disk's state */
    atomic_fetch_add(&st->write_errors, 1);
    pthread_mutex_lock(&st->hmu);
    if (!atomic_load(&st->refused)) {
        st->refused_code = s;
        snprintf(st->refused_msg, sizeof st->refused_msg, "%s", err ? err->msg : "");
        st->refused_since_ms = kv_clock_now_ms();
        atomic_store(&st->refused, true);
        KV_ERROR("storage: %s; reads still work, writes resume by themselves when the "
                 "disk recovers: %s", health_summary(s), st->refused_msg);
        pthread_cond_signal(&st->hwake);
    }
    pthread_mutex_unlock(&st->hmu);
}

#define SPACE_RECHECK_NS (100u * 1000000u)

/* statvfs costs microseconds, a group commit may take less: the answer is reused for up to
 * SPACE_RECHECK_NS, and for no more than half the bytes it left above the reserve (space
 * others take meanwhile is what the other half is for). Near the reserve, every write asks. */
char *kv_store__space_check(struct kv_store *st, size_t bytes)
{
    if (!st->reserve_bytes || !st->path)
        return NULL;
    uint64_t now = kv_clock_mono_ns();
    if (now < atomic_load_explicit(&st->space_until_ns, memory_order_relaxed) &&
        atomic_fetch_sub(&st->space_budget, (int64_t)bytes) >= (int64_t)bytes)
        return NULL;
    struct statvfs vfs;
    if (statvfs(st->path, &vfs) != 0)
        return NULL;                     /* cannot tell: let RocksDB find out */
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (avail >= st->reserve_bytes + bytes) {
        uint64_t spare = (avail - st->reserve_bytes - bytes) / 2;
        atomic_store(&st->space_budget, spare > INT64_MAX ? INT64_MAX : (int64_t)spare);
        atomic_store(&st->space_until_ns, now + SPACE_RECHECK_NS);
        return NULL;
    }
    atomic_store(&st->space_until_ns, 0);
    char msg[256];
    snprintf(msg, sizeof msg, "IO error: No space left on device: %llu bytes free on the "
             "data directory's filesystem, %llu kept free for RocksDB (2 x write_buffer_mb)",
             (unsigned long long)avail, (unsigned long long)st->reserve_bytes);
    return strdup(msg);                  /* rocksdb_free is free() */
}

void kv_store_health(struct kv_store *st, struct kv_store_health *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->hmu);
    out->writes_refused = atomic_load(&st->refused);
    out->code = out->writes_refused ? st->refused_code : KV_OK;
    out->summary = health_summary(out->code);
    if (out->writes_refused) {
        snprintf(out->reason, sizeof out->reason, "%s", st->refused_msg);
        out->since_ms = st->refused_since_ms;
    }
    out->resumes = st->resumes;
    pthread_mutex_unlock(&st->hmu);
    out->write_errors = atomic_load(&st->write_errors);
    out->corrupt_reads = atomic_load(&st->corrupt_reads);
    out->hot_key_folds = atomic_load(&st->folds);
}

void kv_store_cache_stats(struct kv_store *st, struct kv_rcache_stats *out)
{
    kv_rcache_stats(st->rcache, out);
}

/* The watcher: idle until writes are refused, then one probe a second until they are not. */
static void *watch_main(void *arg)
{
    struct kv_store *st = arg;
    rocksdb_writebatch_t *empty = rocksdb_writebatch_create();
    pthread_mutex_lock(&st->hmu);
    while (!st->watch_stop) {
        if (!atomic_load(&st->refused)) {
            pthread_cond_wait(&st->hwake, &st->hmu);
            continue;
        }
        struct timespec ts;              /* a full interval, whatever wakes us meanwhile */
        uint64_t at = kv_clock_mono_ns() + WATCH_PROBE_MS * 1000000ull;
        ts.tv_sec = (time_t)(at / 1000000000u);
        ts.tv_nsec = (long)(at % 1000000000u);
        while (!st->watch_stop && atomic_load(&st->refused) && kv_clock_mono_ns() < at)
            pthread_cond_timedwait(&st->hwake, &st->hmu, &ts);
        if (st->watch_stop || !atomic_load(&st->refused))
            continue;
        pthread_mutex_unlock(&st->hmu);
        char *e = kv_store__space_check(st, 0);        /* (6) first, then RocksDB (5) */
        struct kv_err err = {KV_OK, ""};
        if (!e)
            rocksdb_write(st->db, st->wo_nosync, empty, &e);
        enum kv_status s = e ? kv_store__rocks_err(&e, &err, "write probe") : KV_OK;
        if (s == KV_OK)
            kv_store__note_write(st, s, NULL);
        else                             /* still stopped: not another client error */
            KV_DEBUG("storage: %s", err.msg);
        pthread_mutex_lock(&st->hmu);
    }
    pthread_mutex_unlock(&st->hmu);
    rocksdb_writebatch_destroy(empty);
    return NULL;
}

static enum kv_status watch_start(struct kv_store *st, struct kv_err *err)
{
    int rc = pthread_create(&st->watcher, NULL, watch_main, st);
    if (rc != 0)
        return kv_err_set(err, KV_INTERNAL, "health watcher thread: %s", strerror(rc));
    st->watch_started = true;
    return KV_OK;
}

static void watch_stop(struct kv_store *st)
{
    if (!st->watch_started)
        return;
    pthread_mutex_lock(&st->hmu);
    st->watch_stop = true;
    pthread_cond_signal(&st->hwake);
    pthread_mutex_unlock(&st->hmu);
    pthread_join(st->watcher, NULL);
    st->watch_started = false;
}

/* ------------------------------------------------------------------- open / close -- */

/* Options shared by every column family: one LRU block cache and a bloom filter. */
static rocksdb_options_t *base_options(size_t cache_bytes)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    rocksdb_options_increase_parallelism(o, 2);
    rocksdb_options_set_max_background_jobs(o, 2);
    rocksdb_options_set_keep_log_file_num(o, 10);
    /* Integrity (docs/storage.md "Corruption"): RocksDB's defaults, stated because they are
     * relied on: every block read is checked against its checksum (ReadOptions
     * verify_checksums) and corruption found in the background stops writes rather than
     * being skipped. Records carry their own checksum on top (record.h). */
    rocksdb_options_set_paranoid_checks(o, 1);

    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(cache_bytes);
    rocksdb_block_based_options_set_block_cache(t, cache);        /* shares the cache */
    rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_options_set_block_based_table_factory(o, t);          /* copies t */
    rocksdb_block_based_options_destroy(t);                       /* frees the policy too */
    rocksdb_cache_destroy(cache);                                 /* drops our reference */
    return o;
}

/* Releases whatever part of st is set; used by close and by a failed open. */
static void store_free(struct kv_store *st)
{
    kv_store__commit_stop(st);
    watch_stop(st);
    for (int i = 0; i < KV_CF_COUNT; i++)
        if (st->cf[i])
            rocksdb_column_family_handle_destroy(st->cf[i]);
    if (st->db)
        rocksdb_close(st->db);
    if (st->filter)                      /* only after the DB: compactions use it */
        rocksdb_compactionfilter_destroy(st->filter);
    if (st->env)                         /* only after the DB: its files live there */
        rocksdb_env_destroy(st->env);
    if (st->ro)
        rocksdb_readoptions_destroy(st->ro);
    if (st->ro_cache)
        rocksdb_readoptions_destroy(st->ro_cache);
    if (st->ro_mem)
        rocksdb_readoptions_destroy(st->ro_mem);
    if (st->wo_sync)
        rocksdb_writeoptions_destroy(st->wo_sync);
    if (st->wo_nosync)
        rocksdb_writeoptions_destroy(st->wo_nosync);
    pthread_cond_destroy(&st->hwake);
    pthread_mutex_destroy(&st->hmu);
    kv_rcache_free(st->rcache);
    free(st->path);
    free(st);
}

enum kv_status kv_store_open(const struct kv_store_opts *opts, struct kv_store **out,
                             struct kv_err *err)
{
    *out = NULL;
    if (!opts || !opts->path || !opts->path[0])
        return kv_err_set(err, KV_INVALID, "open: no path");
    if (opts->sync != KV_SYNC_ALWAYS && opts->sync != KV_SYNC_BATCH &&
        opts->sync != KV_SYNC_NONE)
        return kv_err_set(err, KV_INVALID, "open: bad sync mode %d", (int)opts->sync);
    struct kv_store *st = calloc(1, sizeof *st);
    if (!st)
        return kv_err_set(err, KV_NOMEM, "open: out of memory");
    st->sync = opts->sync;
    st->batch_delay_us = opts->batch_delay_us;
    st->grace_ms = opts->grace_ms;
    st->now_ms = opts->now_ms ? opts->now_ms : kv_clock_now_ms;
    st->path = strdup(opts->path);
    enum kv_status cs = kv_rcache_new(opts->record_cache_bytes, &st->rcache, err);
    if (cs != KV_OK) {
        free(st->path);
        free(st);
        return cs;
    }
    st->reserve_bytes = 2 * (uint64_t)(opts->write_buffer_bytes ? opts->write_buffer_bytes
                                                                : ROCKSDB_WRITE_BUFFER);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* the watcher uses kv_clock_mono_ns */
    pthread_mutex_init(&st->hmu, NULL);
    pthread_cond_init(&st->hwake, &ca);
    pthread_condattr_destroy(&ca);

    rocksdb_options_t *base = base_options(opts->block_cache_bytes ? opts->block_cache_bytes
                                                                   : DEFAULT_BLOCK_CACHE);
    if (opts->write_buffer_bytes)        /* also the free space needed to resume (5) */
        rocksdb_options_set_write_buffer_size(base, opts->write_buffer_bytes);
    if (opts->in_memory) {
        st->env = rocksdb_create_mem_env();
        rocksdb_options_set_env(base, st->env);
        st->reserve_bytes = 0;   /* no disk to fill: no statvfs per write */
    }
    rocksdb_options_t *data = rocksdb_options_create_copy(base);
    rocksdb_options_set_merge_operator(data, kv_store__lww_merge_operator()); /* owned */
    st->filter = kv_store__purge_filter(st);
    rocksdb_options_set_compaction_filter(data, st->filter);                  /* borrowed */
    rocksdb_options_set_compression(data, rocksdb_lz4_compression);
    /* No max_successive_merges: the commit thread folds hot keys itself (commit.c (6)). */

    const rocksdb_options_t *cf_opts[KV_CF_COUNT] = {data, base, base, base};
    char *e = NULL;
    st->db = rocksdb_open_column_families(base, opts->path, KV_CF_COUNT, cf_names, cf_opts,
                                          st->cf, &e);
    rocksdb_options_destroy(data);       /* the DB keeps its own copies */
    rocksdb_options_destroy(base);
    if (e) {
        enum kv_status s = kv_store__rocks_err(&e, err, "open");
        st->db = NULL;
        memset(st->cf, 0, sizeof st->cf);
        store_free(st);
        return s;
    }

    st->ro = rocksdb_readoptions_create();
    st->ro_cache = rocksdb_readoptions_create();
    rocksdb_readoptions_set_read_tier(st->ro_cache, ROCKSDB_BLOCK_CACHE_TIER);
    st->ro_mem = rocksdb_readoptions_create();
    rocksdb_readoptions_set_read_tier(st->ro_mem, ROCKSDB_MEMTABLE_TIER);
    st->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(st->wo_sync, 1);
    st->wo_nosync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(st->wo_nosync, 0);

    enum kv_status s = kv_store__commit_start(st, err);
    if (s == KV_OK)
        s = watch_start(st, err);
    if (s != KV_OK) {
        store_free(st);
        return s;
    }
    KV_INFO("storage: opened %s (sync=%s)", opts->path, kv_sync_name(st->sync));
    *out = st;
    return KV_OK;
}

void kv_store_close(struct kv_store *st)
{
    if (st)
        store_free(st);
}

/* ------------------------------------------------------------------- point reads -- */

void kv_store_item_free(struct kv_store_item *it)
{
    if (!it)
        return;
    kv_buf_free(&it->raw);
    memset(it, 0, sizeof *it);
}

enum kv_status kv_store_get(struct kv_store *st, struct kv_slice key, unsigned flags,
                            struct kv_store_item *out, struct kv_err *err)
{
    if (flags & ~READ_FLAGS_KNOWN)
        return kv_err_set(err, KV_INVALID, "get: unknown flags 0x%x", flags);
    const rocksdb_readoptions_t *ro = (flags & KV_STORE_CACHE_ONLY) ? st->ro_cache : st->ro;
    size_t len = 0;
    char *e = NULL;
    uint64_t ticket = 0;
    struct kv_buf hit = {0};
    char *v;
    bool cached = kv_rcache_lookup(st->rcache, key, &hit, &ticket);
    if (cached) {   /* as true as a RocksDB read now: rcache.h; malloc'd like RocksDB's */
        v = hit.ptr;
        len = hit.len;
    } else {
        v = rocksdb_get_cf(st->db, ro, st->cf[KV_CF_DATA], key.ptr, key.len, &len, &e);
    }
    if (e) {
        enum kv_status s = kv_store__rocks_err(&e, err, "get");   /* incomplete: KV_AGAIN */
        if (s == KV_CORRUPTION)
            atomic_fetch_add(&st->corrupt_reads, 1);
        return s;
    }
    if (!v)
        return KV_NOT_FOUND;
    struct kv_record rec;
    enum kv_status s = kv_record_decode(kv_slice_of(v, len), &rec, err);
    if (s != KV_OK) {
        atomic_fetch_add(&st->corrupt_reads, 1);
        free(v);
        return s;
    }
    if (!cached)   /* only what decoded: a corrupt record is never kept */
        kv_rcache_insert(st->rcache, key, kv_slice_of(v, len), ticket);
    if (!(flags & KV_STORE_RAW) && !kv_record_live(&rec, st->now_ms())) {
        free(v);
        return KV_NOT_FOUND;
    }
    out->raw.ptr = v;                    /* rocksdb_get_cf returns malloc'd bytes */
    out->raw.len = len;
    out->raw.free_fn = free;
    out->rec = rec;
    return KV_OK;
}

/* ------------------------------------------------------------ plain column families -- */

static enum kv_status check_raw_cf(enum kv_cf cf, struct kv_err *err)
{
    if (cf == KV_CF_DATA || (int)cf < 0 || cf >= KV_CF_COUNT)
        return kv_err_set(err, KV_INVALID, "raw: column family %d is not a plain one", (int)cf);
    return KV_OK;
}

enum kv_status kv_store_raw_put(struct kv_store *st, enum kv_cf cf, struct kv_slice key,
                                struct kv_slice val, bool sync, struct kv_err *err)
{
    enum kv_status s = check_raw_cf(cf, err);
    if (s != KV_OK)
        return s;
    char *e = kv_store__space_check(st, key.len + val.len);   /* (6) */
    if (!e)
        rocksdb_put_cf(st->db, sync ? st->wo_sync : st->wo_nosync, st->cf[cf], key.ptr,
                       key.len, val.ptr, val.len, &e);
    struct kv_err local = {KV_OK, ""};
    s = e ? kv_store__rocks_err(&e, err ? err : &local, "raw put") : KV_OK;
    kv_store__note_write(st, s, err ? err : &local);
    return s;
}

enum kv_status kv_store_raw_delete(struct kv_store *st, enum kv_cf cf, struct kv_slice key,
                                   bool sync, struct kv_err *err)
{
    enum kv_status s = check_raw_cf(cf, err);
    if (s != KV_OK)
        return s;
    char *e = kv_store__space_check(st, key.len);   /* (6): a tombstone takes space too */
    if (!e)
        rocksdb_delete_cf(st->db, sync ? st->wo_sync : st->wo_nosync, st->cf[cf], key.ptr,
                          key.len, &e);
    struct kv_err local = {KV_OK, ""};
    s = e ? kv_store__rocks_err(&e, err ? err : &local, "raw delete") : KV_OK;
    kv_store__note_write(st, s, err ? err : &local);
    return s;
}

enum kv_status kv_store_raw_get(struct kv_store *st, enum kv_cf cf, struct kv_slice key,
                                struct kv_buf *val, struct kv_err *err)
{
    enum kv_status s = check_raw_cf(cf, err);
    if (s != KV_OK)
        return s;
    size_t len = 0;
    char *e = NULL;
    /* Found values come back malloc'd even when empty (glibc malloc(0) is not NULL), so
     * NULL without an error means not found. */
    char *v = rocksdb_get_cf(st->db, st->ro, st->cf[cf], key.ptr, key.len, &len, &e);
    if (e)
        return kv_store__rocks_err(&e, err, "raw get");
    if (!v)
        return KV_NOT_FOUND;
    val->ptr = v;
    val->len = len;
    val->free_fn = free;
    return KV_OK;
}

/* -------------------------------------------------------------------- operations -- */

enum kv_status kv_store_checkpoint(struct kv_store *st, const char *dir, struct kv_err *err)
{
    struct stat sb;
    if (!dir || !dir[0])
        return kv_err_set(err, KV_INVALID, "checkpoint: no directory");
    if (stat(dir, &sb) == 0 || errno != ENOENT)
        return kv_err_set(err, KV_INVALID, "checkpoint: %s already exists", dir);
    char *e = NULL;
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(st->db, &e);
    if (e)
        return kv_store__rocks_err(&e, err, "checkpoint");
    /* log_size_for_flush 0: flush the memtables first, so the checkpoint needs no WAL. */
    rocksdb_checkpoint_create(cp, dir, 0, &e);
    rocksdb_checkpoint_object_destroy(cp);
    return e ? kv_store__rocks_err(&e, err, "checkpoint") : KV_OK;
}

static enum kv_status flush_cf(struct kv_store *st, enum kv_cf cf, struct kv_err *err)
{
    char *e = NULL;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_flush_cf(st->db, fo, st->cf[cf], &e);
    rocksdb_flushoptions_destroy(fo);
    return e ? kv_store__rocks_err(&e, err, "flush") : KV_OK;
}

enum kv_status kv_store_flush(struct kv_store *st, struct kv_err *err)
{
    for (int cf = 0; cf < KV_CF_COUNT; cf++) {
        enum kv_status s = flush_cf(st, (enum kv_cf)cf, err);
        if (s != KV_OK)
            return s;
    }
    return KV_OK;
}

/* Two forced bottommost passes: the C API runs the compaction filter on plain values only
 * (never on merge operands), and a record becomes a plain value in the first pass's full
 * merge; the second pass then lets the filter purge it (storage/lww.c (5)). */
enum kv_status kv_store_compact(struct kv_store *st, struct kv_err *err)
{
    enum kv_status s = flush_cf(st, KV_CF_DATA, err);
    if (s != KV_OK)
        return s;
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    rocksdb_compactoptions_set_bottommost_level_compaction(co, ROCKSDB_BOTTOMMOST_FORCE);
    for (int pass = 0; pass < 2; pass++)
        rocksdb_compact_range_cf_opt(st->db, st->cf[KV_CF_DATA], co, NULL, 0, NULL, 0);
    rocksdb_compactoptions_destroy(co);
    /* A cached tombstone or expired record outlives a background purge as if that
     * compaction had not run yet (harmless: purging is only ever "eventually"); one asked
     * for is to be seen at once, by raw reads too. */
    kv_rcache_clear(st->rcache);
    return KV_OK;
}

enum kv_status kv_store_approx_size(struct kv_store *st, struct kv_slice start,
                                    struct kv_slice end, uint64_t *bytes, struct kv_err *err)
{
    /* No upper bound: a limit above every key the store accepts (KV_STORE_KEY_MAX). */
    char unbounded[KV_STORE_KEY_MAX + 1];
    memset(unbounded, 0xff, sizeof unbounded);
    const char *sk = start.ptr ? start.ptr : "";
    const char *lk = end.len ? end.ptr : unbounded;
    size_t sl = start.len, ll = end.len ? end.len : sizeof unbounded;
    uint64_t size = 0;
    char *e = NULL;
    rocksdb_approximate_sizes_cf(st->db, st->cf[KV_CF_DATA], 1, &sk, &sl, &lk, &ll, &size, &e);
    if (e)
        return kv_store__rocks_err(&e, err, "approx size");
    *bytes = size;
    return KV_OK;
}

enum kv_status kv_store_property(struct kv_store *st, const char *name, char **out,
                                 struct kv_err *err)
{
    if (!name)
        return kv_err_set(err, KV_INVALID, "property: no name");
    char *v = rocksdb_property_value_cf(st->db, st->cf[KV_CF_DATA], name);
    if (!v)
        return kv_err_set(err, KV_NOT_FOUND, "property %s: unknown", name);
    *out = v;                            /* strdup'd by RocksDB: free() */
    return KV_OK;
}
