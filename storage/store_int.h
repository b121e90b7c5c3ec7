/* storage/store_int.h -- internals shared by the storage/ files; never included outside.
 *
 * (1) Names shared between storage files use the kv_store__ prefix (libuv's uv__ habit).
 * (2) Every RocksDB errptr becomes a kv_err through kv_store__rocks_err() only.
 * (3) struct kv_store is fully built before the commit thread starts and is only read by
 *     other threads afterwards, except the commit queue, which its mutex protects. */
#ifndef KV_STORAGE_STORE_INT_H
#define KV_STORAGE_STORE_INT_H
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "common/status.h"
#include "storage/store.h"

struct kv_commit_req;                    /* storage/commit.c */

struct kv_store {
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[KV_CF_COUNT];
    rocksdb_compactionfilter_t *filter;  /* not owned by RocksDB options: freed after close */
    rocksdb_readoptions_t *ro;           /* shared, read-only after open */
    rocksdb_readoptions_t *ro_cache;     /* read_tier = block cache only */
    rocksdb_readoptions_t *ro_mem;       /* read_tier = memtables only: commit.c (5) */
    rocksdb_writeoptions_t *wo_sync;
    rocksdb_writeoptions_t *wo_nosync;
    rocksdb_env_t *env;                  /* opts.in_memory: the mem env, freed after close */
    struct kv_rcache *rcache;            /* owned; NULL when off. Every write of the data
                                            column family goes through commit.c, which
                                            brackets it per rcache.h (1) */
    enum kv_sync sync;
    uint32_t batch_delay_us;
    uint64_t grace_ms;
    uint64_t (*now_ms)(void);

    /* Group commit (storage/commit.c). */
    pthread_mutex_t mu;
    pthread_cond_t wake;                 /* commit thread: work queued or closing */
    struct kv_commit_req *head, *tail;   /* FIFO of pending writes, under mu */
    size_t queued_reqs, queued_bytes;    /* under mu */
    bool closing;                        /* under mu */
    _Atomic bool unkicked;               /* deferred writes wait for a kick (commit.c (7)) */
    bool thread_started;
    pthread_t thread;

    /* Write health (store.h (5), store.c "write health"): set by a write that fails with
     * NOSPACE/IOERR, cleared by the next write that succeeds, probed by the watcher. */
    pthread_mutex_t hmu;
    pthread_cond_t hwake;                /* watcher: writes refused, or stopping */
    _Atomic bool refused;                /* written under hmu; read without it */
    enum kv_status refused_code;         /* under hmu */
    char refused_msg[160];               /* under hmu */
    uint64_t refused_since_ms;           /* under hmu */
    uint64_t resumes;                    /* under hmu */
    _Atomic uint64_t write_errors;
    _Atomic uint64_t corrupt_reads;      /* kv_store_health.corrupt_reads */
    _Atomic uint64_t folds;              /* kv_store_health.hot_key_folds (commit.c (6)) */
    bool watch_stop;                     /* under hmu */
    bool watch_started;
    pthread_t watcher;
    char *path;                          /* the data directory, for statvfs (store.c (6)) */
    uint64_t reserve_bytes;              /* writes are refused below this much free */
    _Atomic uint64_t space_until_ns;     /* until then (mono), space_budget may be spent */
    _Atomic int64_t space_budget;        /* bytes writable without asking statvfs again */
};

/* Converts *errptr (non-NULL) into err, prefixed by what, frees it and sets *errptr to
 * NULL. Returns the mapped code: "Corruption" -> KV_CORRUPTION, no space (or a space
 * limit) -> KV_NOSPACE, any other "IO error" -> KV_IOERR, "Result incomplete" -> KV_AGAIN,
 * anything else KV_INTERNAL. */
enum kv_status kv_store__rocks_err(char **errptr, struct kv_err *err, const char *what);

/* storage/lww.c: the data column family's merge operator and compaction filter. The merge
 * operator is owned by the options it is set on; the filter is owned by the caller and
 * must outlive the DB. st is read (grace_ms, now_ms) by the filter while compacting. */
rocksdb_mergeoperator_t *kv_store__lww_merge_operator(void);
/* Arms (into != NULL) or disarms this thread's capture of a failed full merge (lww.c (6)). */
void kv_store__lww_capture(struct kv_buf *into);
rocksdb_compactionfilter_t *kv_store__purge_filter(struct kv_store *st);
/* Which of two encoded records the merge operator keeps (lww.c (1)): 0 for a, 1 for b, -1
 * when either does not decode. */
int kv_store__lww_winner(struct kv_slice a, struct kv_slice b);

/* storage/commit.c */
enum kv_status kv_store__commit_start(struct kv_store *st, struct kv_err *err);
/* Stops accepting writes, commits everything queued (callbacks run), joins the thread. */
void kv_store__commit_stop(struct kv_store *st);

/* storage/store.c: every RocksDB write reports its result here (s, and err when s is not
 * KV_OK), so kv_store_health() follows it. Cheap on KV_OK while writes are not refused. */
void kv_store__note_write(struct kv_store *st, enum kv_status s, const struct kv_err *err);

/* storage/store.c (6): NULL when the data directory's filesystem keeps more than
 * st->reserve_bytes free after `bytes` more, else a malloc'd RocksDB-style "IO error: No
 * space left on device: ..." string, to be turned into KV_NOSPACE by kv_store__rocks_err. */
char *kv_store__space_check(struct kv_store *st, size_t bytes);

/* storage/store.c: the column family handle for cf, NULL when cf is out of range. */
rocksdb_column_family_handle_t *kv_store__cf(struct kv_store *st, enum kv_cf cf);
#endif
