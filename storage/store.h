/* storage/store.h -- ordered, versioned key/value engine over RocksDB.
 *
 * Thread-safe. Never calls into libuv, the wire codec or cluster logic.
 * (1) Writes are blind: a record is merged into RocksDB with a merge operator that keeps
 *     the highest version (common/version.h), so a put needs no read and replicas that
 *     receive the same records in any order converge to the same state.
 * (2) A write is reported done only once it is as durable as opts.sync promises:
 *     KV_SYNC_ALWAYS and KV_SYNC_BATCH only after the WAL fsync that covers it;
 *     KV_SYNC_NONE after the memtable and (unsynced) WAL write.
 * (3) Tombstones and expired records are purged by a compaction filter only once they
 *     are older than opts.grace_ms; until then reads and iterators hide them unless
 *     KV_STORE_RAW is asked for.
 * (4) Column families: KV_CF_DATA holds records (merge operator, compaction filter, LZ4);
 *     the others hold plain bytes for the cluster layer (hints, Paxos state, metadata).
 * (5) A full disk or an I/O error never acknowledges a write: it fails with KV_NOSPACE or
 *     KV_IOERR, reads keep working, and kv_store_health() says writes are refused and why.
 *     Writes are refused NOSPACE already while less than 2 x write_buffer_bytes would stay
 *     free (so kvd's own writes never fill the disk up), and return as soon as there is.
 *     When space runs out anyway (taken by others), RocksDB's own error recovery resumes
 *     the DB without a reopen (its SstFileManager checks every 5 s for write_buffer_bytes
 *     free) and a watcher thread notices within 1 s. store.c (5), (6). */
#ifndef KV_STORAGE_STORE_H
#define KV_STORAGE_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "common/status.h"
#include "storage/rcache.h"
#include "storage/record.h"

struct kv_store;                        /* opaque */
struct kv_store_iter;                   /* opaque */

enum kv_sync { KV_SYNC_ALWAYS, KV_SYNC_BATCH, KV_SYNC_NONE };

enum kv_cf { KV_CF_DATA, KV_CF_HINTS, KV_CF_PAXOS, KV_CF_META, KV_CF_COUNT };

/* Longest key the store accepts (ARCHITECTURE.md: keys up to 4 KiB); writes with an empty
 * or longer key are refused with KV_INVALID. */
#define KV_STORE_KEY_MAX 4096u

struct kv_store_opts {
    const char *path;                   /* borrowed for the call only */
    enum kv_sync sync;                  /* default KV_SYNC_BATCH */
    uint32_t batch_delay_us;            /* KV_SYNC_BATCH: longest a write waits for others
                                           to share its fsync; default 1000 */
    uint64_t grace_ms;                  /* purge grace for tombstones/expired; default 10 days */
    size_t block_cache_bytes;           /* default 64 MiB */
    size_t record_cache_bytes;          /* records recently read, in front of RocksDB
                                           (storage/rcache.h); default 64 MiB, 0 off */
    size_t write_buffer_bytes;          /* memtable size per column family; 0 = RocksDB's
                                           64 MiB. After a full disk, writes resume only
                                           once this much space is free again (5) */
    uint64_t (*now_ms)(void);           /* clock for TTL and purge; NULL = kv_clock_now_ms */
    bool in_memory;                     /* TEST ONLY (the simulator): every RocksDB file in an
                                           in-memory env (rocksdb_create_mem_env), gone at
                                           close; syncs cost nothing. Default false */
};

/* Fills o with the defaults above (path NULL). */
void kv_store_opts_default(struct kv_store_opts *o);
/* Parses "always" | "batch" | "none"; -1 for anything else. */
int kv_sync_parse(const char *s, enum kv_sync *out);
const char *kv_sync_name(enum kv_sync s);

/* Creates the directory and column families when missing. On KV_OK *out owns a store;
 * release it with kv_store_close(). On error *out is NULL and err says why. */
enum kv_status kv_store_open(const struct kv_store_opts *opts, struct kv_store **out,
                             struct kv_err *err);
/* Waits for queued writes to finish (their callbacks run), then closes RocksDB.
 * NULL is a no-op. No other call may be running or start on st. */
void kv_store_close(struct kv_store *st);

/* --- write health (5) -------------------------------------------------------------- */

struct kv_store_health {
    bool writes_refused;                /* the last write failed with NOSPACE or IOERR */
    enum kv_status code;                /* KV_NOSPACE or KV_IOERR when refused, else KV_OK */
    const char *summary;                /* static: "ok", "writes refused: disk full",
                                           "writes refused: I/O error" */
    char reason[160];                   /* RocksDB's message for the first refused write */
    uint64_t since_ms;                  /* wall-clock ms of the first refused write */
    uint64_t write_errors;              /* RocksDB writes failed with NOSPACE/IOERR, ever */
    uint64_t resumes;                   /* times writes came back after being refused */
    uint64_t corrupt_reads;             /* reads that found a record or block failing its
                                           checksum (answered KV_CORRUPTION), ever */
    uint64_t hot_key_folds;             /* writes of an often-written key stored as a fold
                                           of its history (commit.c (6)), ever */
};

/* The record cache's counters, for /metrics: zero when it is off. */
void kv_store_cache_stats(struct kv_store *st, struct kv_rcache_stats *out);

/* Fills *out; never touches the disk (safe on an event loop or the HTTP thread). */
void kv_store_health(struct kv_store *st, struct kv_store_health *out);

/* --- records (KV_CF_DATA) ------------------------------------------------------------ */

struct kv_write {
    struct kv_slice key;
    struct kv_record rec;               /* rec.value borrowed; copied by the call */
    /* A repair of a record another replica's read found corrupt (cluster/coord.c): if the
     * key still reads as KV_CORRUPTION when the commit thread reaches it, the stored record
     * is replaced (a RocksDB Put) by the newest of rec and whatever still decodes under
     * it, instead of merged (a merge cannot fold over undecodable bytes). Otherwise an
     * ordinary merge. docs/storage.md "Corruption". */
    bool replace_corrupt;
};

/* Done callback of an asynchronous write. Runs on the store's commit thread: it must not
 * block and must not call back into the store's write functions. err is NULL on KV_OK. */
typedef void (*kv_store_write_cb)(void *arg, enum kv_status s, const struct kv_err *err);

/* Merges n records atomically (one WriteBatch). Blocks until done per (2). */
enum kv_status kv_store_write(struct kv_store *st, const struct kv_write *w, size_t n,
                              struct kv_err *err);
/* Copies the writes, queues them for the commit thread (which group-commits everything
 * queued into one WriteBatch and one WAL sync) and returns at once. On KV_OK cb runs
 * exactly once, later; on an error return cb never runs. */
enum kv_status kv_store_write_async(struct kv_store *st, const struct kv_write *w, size_t n,
                                    kv_store_write_cb cb, void *arg, struct kv_err *err);

/* kv_store_write_async, but an idle commit thread is not woken: kv_store_write_kick must
 * follow, soon (an event loop calls it once per iteration, after queueing that iteration's
 * writes, so they share one wake-up). A full group still wakes the thread at once. */
enum kv_status kv_store_write_queue(struct kv_store *st, const struct kv_write *w, size_t n,
                                    kv_store_write_cb cb, void *arg, struct kv_err *err);
/* Wakes the commit thread for writes queued with kv_store_write_queue; cheap (one atomic
 * load) when there are none. Any thread. */
void kv_store_write_kick(struct kv_store *st);

/* Read flags. */
#define KV_STORE_RAW 0x1u        /* also return tombstones and expired records */
#define KV_STORE_CACHE_ONLY 0x2u /* never touch disk: KV_AGAIN when the answer is not in
                                    the memtable or block cache (safe on an event loop) */

/* A record read from the store: raw owns the encoded bytes, rec borrows from raw. */
struct kv_store_item {
    struct kv_buf raw;
    struct kv_record rec;
};
void kv_store_item_free(struct kv_store_item *it);   /* NULL-safe; resets *it */

/* KV_OK: *out filled (free with kv_store_item_free). KV_NOT_FOUND: no record, or (without
 * KV_STORE_RAW) a tombstone or expired record; *out untouched. KV_AGAIN: see flags. */
enum kv_status kv_store_get(struct kv_store *st, struct kv_slice key, unsigned flags,
                            struct kv_store_item *out, struct kv_err *err);

/* Iterates keys in [start, end) in memcmp order; start_exclusive skips start itself (for
 * cursors); end.len == 0 means no upper bound. Hides tombstones and expired records unless
 * flags has KV_STORE_RAW. The iterator reads one consistent snapshot. */
enum kv_status kv_store_iter_new(struct kv_store *st, struct kv_slice start,
                                 bool start_exclusive, struct kv_slice end, unsigned flags,
                                 struct kv_store_iter **out, struct kv_err *err);
/* KV_OK: *key and *rec describe the next record, borrowed until the next call or free.
 * KV_NOT_FOUND: past the end. Other codes: error (KV_CORRUPTION for an undecodable record). */
enum kv_status kv_store_iter_next(struct kv_store_iter *it, struct kv_slice *key,
                                  struct kv_record *rec, struct kv_err *err);
void kv_store_iter_free(struct kv_store_iter *it);   /* NULL-safe */

/* --- plain bytes (the other column families) ---------------------------------------- */

/* Put/delete with sync per `sync` argument (true: fsync the WAL before returning). */
enum kv_status kv_store_raw_put(struct kv_store *st, enum kv_cf cf, struct kv_slice key,
                                struct kv_slice val, bool sync, struct kv_err *err);
enum kv_status kv_store_raw_delete(struct kv_store *st, enum kv_cf cf, struct kv_slice key,
                                   bool sync, struct kv_err *err);
/* KV_OK: *val owns a copy (kv_buf_free). KV_NOT_FOUND: *val untouched. */
enum kv_status kv_store_raw_get(struct kv_store *st, enum kv_cf cf, struct kv_slice key,
                                struct kv_buf *val, struct kv_err *err);
/* Iterates a plain column family from start (inclusive) to end (exclusive, len 0: none);
 * kv_store_iter_next then returns the plain bytes in rec->value (other rec fields zero). */
enum kv_status kv_store_raw_iter_new(struct kv_store *st, enum kv_cf cf, struct kv_slice start,
                                     struct kv_slice end, struct kv_store_iter **out,
                                     struct kv_err *err);

/* --- operations ------------------------------------------------------------------- */

/* Writes a consistent RocksDB checkpoint (hard links where possible) into dir, which must
 * not exist yet. The checkpoint opens as a store with kv_store_open. */
enum kv_status kv_store_checkpoint(struct kv_store *st, const char *dir, struct kv_err *err);
/* Flushes the memtables of every column family to SST files and waits (added for tests, which
 * need merge operands on disk, and for operators before a file-level backup). */
enum kv_status kv_store_flush(struct kv_store *st, struct kv_err *err);
/* Compacts the whole data column family now (purges per (3)); for tests and operators. */
enum kv_status kv_store_compact(struct kv_store *st, struct kv_err *err);
/* Approximate on-disk bytes of the data in [start, end) (end.len 0: no bound). RocksDB's C
 * API counts SST files only: data still in the memtable counts once flushed. */
enum kv_status kv_store_approx_size(struct kv_store *st, struct kv_slice start,
                                    struct kv_slice end, uint64_t *bytes, struct kv_err *err);
/* A RocksDB property of the data column family, e.g. "rocksdb.estimate-num-keys".
 * KV_OK: *out owns a malloc'd string (free). */
enum kv_status kv_store_property(struct kv_store *st, const char *name, char **out,
                                 struct kv_err *err);
#endif
