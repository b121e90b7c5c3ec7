/* storage/commit.c -- the group-commit thread behind kv_store_write_async().
 *
 * Writers copy their records into a request and append it to a FIFO under st->mu; one
 * commit thread takes everything queued, writes it as one RocksDB WriteBatch of merges
 * (one WAL write, one fsync), then runs each request's callback with the result.
 * (1) A callback runs only after the WriteBatch holding its records has returned from
 *     rocksdb_write: with sync = true (KV_SYNC_ALWAYS, KV_SYNC_BATCH) that includes the
 *     WAL fsync, with KV_SYNC_NONE only the unsynced WAL and memtable write.
 * (2) Requests are committed and called back in queue order, each exactly once; a request
 *     is never split across two WriteBatches, so its records stay atomic.
 * (3) KV_SYNC_BATCH, when a request finds the thread idle, waits at most batch_delay_us
 *     after it for more to arrive, and stops waiting early once a group reaches
 *     GROUP_MAX_REQS or GROUP_MAX_BYTES, or once no request arrived for BATCH_QUIET_US (the
 *     writers that were coming have come: waiting longer only adds latency). A thread that
 *     finishes a group and finds requests queued commits them at once: they queued during
 *     the previous fsync, so they are already a group, and waiting for more would only
 *     serialise the disk with the writers (50 closed-loop writers: 40k SET/s waiting, 65k
 *     not; docs/performance.md, round 3). KV_SYNC_ALWAYS and KV_SYNC_NONE never wait
 *     (they too group what queued while the previous write ran).
 * (4) Once closing is set no new request is accepted; the thread commits what is queued
 *     and exits only when the queue is empty, so every accepted callback runs.
 * (5) A request holding a replace_corrupt write (store.h) is committed in a WriteBatch of
 *     its own, after everything queued before it: its read of the key then sees every
 *     earlier write, and being the only writer, nothing can land between that read and
 *     the replacing Put. The Put is the newest of the repair record, what still decodes
 *     under bad bytes (lww.c (6)) and, since a corrupt SST block fails the read before any
 *     operand is merged, the key's newest record in the memtables: a write that arrived
 *     between the coordinator's read and this repair is kept, not shadowed. A write
 *     flushed to an SST in that window is still shadowed on this replica (the others hold
 *     it; read repair brings it back).
 * (7) kv_store_write_queue queues like kv_store_write_async but does not wake an idle
 *     thread: an event loop queues every write one iteration produced, then wakes the
 *     thread once (kv_store_write_kick), instead of a futex wake-up and a context switch
 *     per write that left the thread committing groups of one at sync=none.
 * (8) A group's records go into its WriteBatch sorted by key (a stable sort: one key's
 *     records keep their queue order, which folds (6) and replaces (5) rely on, and which
 *     the merge operator would not even need, lww.c (1)). RocksDB's memtable remembers
 *     where its last insert went, so keys in order cost a short walk from there instead of
 *     a search from the top for each: the insert was a third of a pipelined SET's CPU.
 * (6) Hot keys: every write is a merge, and a read folds all of a key's operands still in
 *     the memtable, so a key written thousands of times between flushes would read ever
 *     slower. The commit thread counts writes per key (a 2-way set-associative table of
 *     key hashes) and, on a key's FOLD_AFTER-th write since its last fold, reads the key
 *     (which folds its whole history) and writes the newer of that and the new record as
 *     a Put, which hides every operand below it. RocksDB's max_successive_merges does the
 *     same but seeks the memtable on every merge to count, which was a quarter of a
 *     SET's CPU (docs/performance.md, round 3). A key already written earlier in the same
 *     WriteBatch is not folded (the read cannot see the batch); the next batch does it.
 *     The table forgets a key only when two others in its set are written after it, so a
 *     key that keeps being written keeps being folded; one that was forgotten had gone
 *     quiet, and starts counting again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "common/clock.h"
#include "common/failpoint.h"
#include "common/hash.h"
#include "common/log.h"
#include "storage/record.h"
#include "storage/store_int.h"

#define GROUP_MAX_REQS 4096u
#define GROUP_MAX_BYTES (16u << 20)
/* (3): a pause in arrivals this long ends a batch's wait. The loop hands over its writes
 * once per iteration (7), so arrivals come in bursts a loop iteration apart (tens of µs
 * under load); a pause longer than that means the loop has no more. 100 µs, the value
 * before (7), held 50 closed-loop writers to 48k SET/s against 65k without waiting; 30 µs
 * gives 60-65k (docs/performance.md, round 3). A constant, not a setting. */
#define BATCH_QUIET_US 30u
/* (6): as RocksDB's max_successive_merges was set before (hot-key reads stay as fast). */
#define FOLD_AFTER 4u
#define FOLD_SETS 8192u                  /* x 2 ways x 16 bytes: 256 KiB */

struct fold_way {
    uint64_t tag;                        /* key hash; 0 = empty */
    uint32_t count;                      /* writes since the last fold */
    uint32_t batch;                      /* the WriteBatch that last wrote the key */
};
struct fold_set {
    struct fold_way way[2];
    unsigned mru;                        /* the way used last: the other one is replaced */
};
struct ordered;
/* The commit thread's own state: (6) fold counts, (8) the array a group is sorted in. */
struct commit_state {
    struct fold_set sets[FOLD_SETS];
    uint32_t batch;                      /* numbers the WriteBatches */
    struct ordered *order;               /* owned; order_cap entries, reused per group */
    size_t order_cap;
};

struct commit_item {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *val;                  /* encoded record */
    size_t val_len;
    bool replace;                        /* kv_write.replace_corrupt */
};

struct kv_commit_req {
    struct kv_commit_req *next;
    kv_store_write_cb cb;
    void *arg;
    uint64_t enq_ns;                     /* kv_clock_mono_ns() when queued */
    size_t bytes;                        /* keys + encoded records */
    bool replaces;                       /* some item is a replace (5) */
    size_t n;
    struct commit_item items[];          /* then the bytes they point into */
};

/* ------------------------------------------------------------------ request copy -- */

static enum kv_status check_write(const struct kv_write *w, struct kv_err *err)
{
    if (w->key.len == 0 || w->key.len > KV_STORE_KEY_MAX || !w->key.ptr)
        return kv_err_set(err, KV_INVALID, "write: key length %zu not in 1..%u", w->key.len,
                          KV_STORE_KEY_MAX);
    if (w->rec.tombstone && w->rec.value.len)
        return kv_err_set(err, KV_INVALID, "write: tombstone with a value");
    if (w->rec.value.len && !w->rec.value.ptr)
        return kv_err_set(err, KV_INVALID, "write: value pointer is NULL");
    return KV_OK;
}

/* One allocation per request: header, item table, then keys and encoded records. */
static enum kv_status req_new(const struct kv_write *w, size_t n, struct kv_commit_req **out,
                              struct kv_err *err)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        enum kv_status s = check_write(&w[i], err);
        if (s != KV_OK)
            return s;
        bytes += w[i].key.len + kv_record_encoded_size(&w[i].rec);
    }
    size_t head = sizeof(struct kv_commit_req) + n * sizeof(struct commit_item);
    struct kv_commit_req *r = malloc(head + bytes);
    if (!r)
        return kv_err_set(err, KV_NOMEM, "write: out of memory for %zu bytes", head + bytes);
    uint8_t *p = (uint8_t *)r + head;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, w[i].key.ptr, w[i].key.len);
        r->items[i].key = p;
        r->items[i].key_len = w[i].key.len;
        p += w[i].key.len;
        r->items[i].val = p;
        r->items[i].val_len = kv_record_encode(&w[i].rec, p);
        r->items[i].replace = w[i].replace_corrupt;
        p += r->items[i].val_len;
    }
    r->replaces = false;
    for (size_t i = 0; i < n; i++)
        r->replaces |= w[i].replace_corrupt;
    r->next = NULL;
    r->bytes = bytes;
    r->n = n;
    *out = r;
    return KV_OK;
}

/* ----------------------------------------------------------------- commit thread -- */

static void abs_deadline(struct timespec *ts, uint64_t mono_ns)
{
    ts->tv_sec = (time_t)(mono_ns / 1000000000u);
    ts->tv_nsec = (long)(mono_ns % 1000000000u);
}

static bool group_full(const struct kv_store *st)
{
    return st->queued_reqs >= GROUP_MAX_REQS || st->queued_bytes >= GROUP_MAX_BYTES;
}

/* Caller holds st->mu and the queue is not empty: detaches the oldest requests that fit
 * the group caps (always at least one) and returns them as a list. */
static struct kv_commit_req *do_take_group(struct kv_store *st)
{
    struct kv_commit_req *first = st->head, *last = first;
    size_t reqs = 1, bytes = first->bytes;
    while (last->next && reqs < GROUP_MAX_REQS && bytes + last->next->bytes <= GROUP_MAX_BYTES) {
        last = last->next;
        reqs++;
        bytes += last->bytes;
    }
    st->head = last->next;
    if (!st->head)
        st->tail = NULL;
    last->next = NULL;
    st->queued_reqs -= reqs;
    st->queued_bytes -= bytes;
    return first;
}

/* (6): counts a write of key; true when this one should be written as a fold. */
static bool fold_due(struct commit_state *ft, struct kv_slice key)
{
    uint64_t h = kv_hash64(key.ptr, key.len) | 1;   /* never 0, the empty tag */
    struct fold_set *set = &ft->sets[h % FOLD_SETS];
    unsigned i = set->way[0].tag == h ? 0 : set->way[1].tag == h ? 1 : 2;
    if (i == 2) {
        i = !set->mru;
        set->way[i] = (struct fold_way){.tag = h};
    }
    set->mru = i;
    struct fold_way *w = &set->way[i];
    bool in_batch = w->count && w->batch == ft->batch;
    w->batch = ft->batch;
    if (++w->count < FOLD_AFTER || in_batch)
        return false;
    w->count = 0;
    return true;
}

/* (6): adds key's fold to wb and returns true; false (nothing added) when the key has no
 * stored record yet, or reading it fails: the caller then merges as usual. */
static bool add_fold(struct kv_store *st, rocksdb_writebatch_t *wb,
                     const struct commit_item *it)
{
    char *e = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(st->db, st->ro, st->cf[KV_CF_DATA], (const char *)it->key,
                             it->key_len, &len, &e);
    if (e) {
        rocksdb_free(e);   /* the merge that follows meets the same error, and reports it */
        return false;
    }
    if (!v)
        return false;
    int w = kv_store__lww_winner(kv_slice_of(v, len), kv_slice_of(it->val, it->val_len));
    if (w >= 0) {
        const char *put = w == 0 ? v : (const char *)it->val;
        rocksdb_writebatch_put_cf(wb, st->cf[KV_CF_DATA], (const char *)it->key, it->key_len,
                                  put, w == 0 ? len : it->val_len);
        atomic_fetch_add(&st->folds, 1);
    }
    rocksdb_free(v);
    return w >= 0;
}

/* (5): the key's record as the memtables alone hold it (their operands merged), into out;
 * nothing when they hold none or it cannot be read. */
static void memtable_record(struct kv_store *st, const struct commit_item *it,
                            struct kv_buf *out)
{
    rocksdb_iterator_t *i = rocksdb_create_iterator_cf(st->db, st->ro_mem, st->cf[KV_CF_DATA]);
    rocksdb_iter_seek(i, (const char *)it->key, it->key_len);
    size_t kl = 0, vl = 0;
    const char *k = rocksdb_iter_valid(i) ? rocksdb_iter_key(i, &kl) : NULL;
    if (k && kl == it->key_len && memcmp(k, it->key, kl) == 0) {
        const char *v = rocksdb_iter_value(i, &vl);
        if (kv_buf_copy(out, kv_slice_of(v, vl)) != 0)
            KV_WARN("storage: out of memory reading the memtable under a repair");
    }
    char *e = NULL;
    rocksdb_iter_get_error(i, &e);
    if (e) {
        kv_buf_free(out);
        rocksdb_free(e);
    }
    rocksdb_iter_destroy(i);
}

/* Whether the record in b decodes and is newer than *best (then *best is it). */
static bool newer_record(struct kv_slice b, struct kv_record *best)
{
    struct kv_record r;
    if (!b.len || kv_record_decode(b, &r, NULL) != KV_OK ||
        kv_version_cmp(r.ver, best->ver) <= 0)
        return false;
    *best = r;
    return true;
}

/* (5): a Put of the newest of the repair record, what still decodes under the corrupt
 * bytes and what the memtables hold, when the key still reads as corrupt; else the usual
 * merge. */
static void add_replace(struct kv_store *st, rocksdb_writebatch_t *wb,
                        const struct commit_item *it)
{
    struct kv_buf survivor = {0};
    char *e = NULL;
    size_t len = 0;
    kv_store__lww_capture(&survivor);
    char *v = rocksdb_get_cf(st->db, st->ro, st->cf[KV_CF_DATA], (const char *)it->key,
                             it->key_len, &len, &e);
    kv_store__lww_capture(NULL);
    struct kv_err err;
    struct kv_record cur;
    /* Corrupt either way: RocksDB failed (a block checksum, or the merge operator refusing
     * bad operands) or it returned a lone stored value that does not decode. */
    bool corrupt = e ? kv_store__rocks_err(&e, &err, "repair read") == KV_CORRUPTION
                     : v && kv_record_decode(kv_slice_of(v, len), &cur, &err) != KV_OK;
    rocksdb_free(v);
    if (!corrupt) {
        kv_buf_free(&survivor);
        rocksdb_writebatch_merge_cf(wb, st->cf[KV_CF_DATA], (const char *)it->key, it->key_len,
                                    (const char *)it->val, it->val_len);
        return;
    }
    /* A failed merge already captured the newest operand, memtable ones included; only a
     * read that failed before merging (a bad block) leaves the memtables unseen. */
    struct kv_buf mem = {0};
    if (!survivor.len)
        memtable_record(st, it, &mem);
    struct kv_slice put = kv_slice_of(it->val, it->val_len);
    struct kv_record best;
    if (kv_record_decode(put, &best, NULL) == KV_OK) {
        if (newer_record(kv_buf_slice(&survivor), &best))
            put = kv_buf_slice(&survivor);
        if (newer_record(kv_buf_slice(&mem), &best))
            put = kv_buf_slice(&mem);
    }
    KV_WARN("storage: replacing a corrupt record (%s)", err.msg);
    rocksdb_writebatch_put_cf(wb, st->cf[KV_CF_DATA], (const char *)it->key, it->key_len,
                              put.ptr, put.len);
    kv_buf_free(&survivor);   /* the batch copied the bytes */
    kv_buf_free(&mem);
}

/* The record cache's brackets around a segment's write (rcache.h (1)). */
static void cache_bracket(struct kv_store *st, struct kv_commit_req *group, bool begin)
{
    for (struct kv_commit_req *r = group; r && st->rcache; r = r->next)
        for (size_t i = 0; i < r->n; i++) {
            struct kv_slice key = kv_slice_of(r->items[i].key, r->items[i].key_len);
            if (begin)
                kv_rcache_write_begin(st->rcache, key);
            else
                kv_rcache_write_end(st->rcache, key);
        }
}

struct ordered {
    const struct commit_item *it;
    size_t seq;                          /* position in queue order */
};

static int ordered_cmp(const void *a, const void *b)
{
    const struct ordered *x = a, *y = b;
    int c = kv_slice_cmp(kv_slice_of(x->it->key, x->it->key_len),
                         kv_slice_of(y->it->key, y->it->key_len));
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;   /* same key: queue order (8) */
}

/* One item into wb: a replace (5), a fold (6) or a merge. */
static void add_item(struct kv_store *st, struct commit_state *ft, rocksdb_writebatch_t *wb,
                     const struct commit_item *it)
{
    if (it->replace) {
        add_replace(st, wb, it);
        return;
    }
    if (ft && fold_due(ft, kv_slice_of(it->key, it->key_len)) && add_fold(st, wb, it))
        return;
    rocksdb_writebatch_merge_cf(wb, st->cf[KV_CF_DATA], (const char *)it->key, it->key_len,
                                (const char *)it->val, it->val_len);
}

/* (8): adds the group's items to wb in key order (same keys in queue order), or in queue
 * order when there is no array to sort them in (no ft, or no memory for it). */
static void add_group(struct kv_store *st, struct commit_state *ft, rocksdb_writebatch_t *wb,
                      struct kv_commit_req *group)
{
    size_t total = 0;
    for (struct kv_commit_req *r = group; r; r = r->next)
        total += r->n;
    if (ft && total > ft->order_cap) {
        size_t cap = total < 256 ? 256 : total * 2;
        struct ordered *p = realloc(ft->order, cap * sizeof *p);
        if (p) {
            ft->order = p;
            ft->order_cap = cap;
        }
    }
    if (!ft || total > ft->order_cap || total < 2) {
        for (struct kv_commit_req *r = group; r; r = r->next)
            for (size_t i = 0; i < r->n; i++)
                add_item(st, ft, wb, &r->items[i]);
        return;
    }
    size_t n = 0;
    for (struct kv_commit_req *r = group; r; r = r->next)
        for (size_t i = 0; i < r->n; i++, n++)
            ft->order[n] = (struct ordered){&r->items[i], n};
    qsort(ft->order, n, sizeof *ft->order, ordered_cmp);
    for (size_t k = 0; k < n; k++)
        add_item(st, ft, wb, ft->order[k].it);
}

/* ft NULL: no folding (6). */
static void commit_segment(struct kv_store *st, struct commit_state *ft,
                           rocksdb_writebatch_t *wb, struct kv_commit_req *group)
{
    cache_bracket(st, group, true);
    rocksdb_writebatch_clear(wb);
    if (ft)
        ft->batch++;
    add_group(st, ft, wb, group);
    size_t wb_len = 0;
    rocksdb_writebatch_data(wb, &wb_len);
    char *e = kv_store__space_check(st, wb_len);   /* a full disk: store.c (6) */
    KV_FAILPOINT("commit.before_wal");     /* crash loop: nothing of the group is written */
    if (!e)
        rocksdb_write(st->db, st->sync == KV_SYNC_NONE ? st->wo_nosync : st->wo_sync, wb, &e);
    KV_FAILPOINT("commit.after_wal");      /* crash loop: written, nobody told yet */
    cache_bracket(st, group, false);       /* before any callback: an acked write reads */
    struct kv_err err = {KV_OK, ""};
    enum kv_status s = e ? kv_store__rocks_err(&e, &err, "write") : KV_OK;
    kv_store__note_write(st, s, &err);      /* write health, logged once: store.c (5) */
    if (s != KV_OK && s != KV_NOSPACE && s != KV_IOERR)
        KV_ERROR("storage: group commit failed: %s", err.msg);
    while (group) {
        struct kv_commit_req *next = group->next;
        group->cb(group->arg, s, s == KV_OK ? NULL : &err);
        free(group);
        group = next;
    }
}

/* Splits the group so that every request with a replace is a segment of its own (5). */
static void commit_group(struct kv_store *st, struct commit_state *ft,
                         rocksdb_writebatch_t *wb, struct kv_commit_req *group)
{
    while (group) {
        struct kv_commit_req *last = group;
        if (!group->replaces)
            while (last->next && !last->next->replaces)
                last = last->next;
        struct kv_commit_req *rest = last->next;
        last->next = NULL;
        commit_segment(st, ft, wb, group);
        group = rest;
    }
}

static void *commit_main(void *arg)
{
    struct kv_store *st = arg;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    /* Without its table the thread still commits; it only stops folding hot keys. */
    struct commit_state *ft = calloc(1, sizeof *ft);
    pthread_mutex_lock(&st->mu);
    for (;;) {
        bool was_idle = false;
        while (!st->head && !st->closing) {
            was_idle = true;
            pthread_cond_wait(&st->wake, &st->mu);
        }
        if (!st->head)
            break;                       /* closing and drained: (4) */
        if (st->sync == KV_SYNC_BATCH && st->batch_delay_us && was_idle) {
            uint64_t deadline = st->head->enq_ns + (uint64_t)st->batch_delay_us * 1000u;
            struct timespec ts;
            for (;;) {
                uint64_t now = kv_clock_mono_ns();
                uint64_t quiet = st->tail->enq_ns + (uint64_t)BATCH_QUIET_US * 1000u;
                if (st->closing || group_full(st) || now >= deadline || now >= quiet)
                    break;
                abs_deadline(&ts, quiet < deadline ? quiet : deadline);
                pthread_cond_timedwait(&st->wake, &st->mu, &ts);
            }
        }
        struct kv_commit_req *group = do_take_group(st);
        pthread_mutex_unlock(&st->mu);
        commit_group(st, ft, wb, group);
        pthread_mutex_lock(&st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    rocksdb_writebatch_destroy(wb);
    if (ft)
        free(ft->order);
    free(ft);
    return NULL;
}

enum kv_status kv_store__commit_start(struct kv_store *st, struct kv_err *err)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* deadlines use kv_clock_mono_ns */
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->wake, &ca);
    pthread_condattr_destroy(&ca);
    st->head = st->tail = NULL;
    st->queued_reqs = st->queued_bytes = 0;
    st->closing = false;
    int rc = pthread_create(&st->thread, NULL, commit_main, st);
    if (rc != 0) {
        pthread_cond_destroy(&st->wake);
        pthread_mutex_destroy(&st->mu);
        return kv_err_set(err, KV_INTERNAL, "commit thread: %s", strerror(rc));
    }
    st->thread_started = true;
    return KV_OK;
}

void kv_store__commit_stop(struct kv_store *st)
{
    if (!st->thread_started)
        return;
    pthread_mutex_lock(&st->mu);
    st->closing = true;
    pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->thread, NULL);
    st->thread_started = false;
    pthread_cond_destroy(&st->wake);
    pthread_mutex_destroy(&st->mu);
}

/* ------------------------------------------------------------------ public entry -- */

static enum kv_status enqueue(struct kv_store *st, const struct kv_write *w, size_t n,
                             kv_store_write_cb cb, void *arg, bool defer, struct kv_err *err)
{
    if (!st || !cb || (n && !w))
        return kv_err_set(err, KV_INVALID, "write: NULL store, callback or writes");
    struct kv_commit_req *r = NULL;
    enum kv_status s = req_new(w, n, &r, err);
    if (s != KV_OK)
        return s;
    r->cb = cb;
    r->arg = arg;
    r->enq_ns = kv_clock_mono_ns();
    pthread_mutex_lock(&st->mu);
    if (st->closing) {
        pthread_mutex_unlock(&st->mu);
        free(r);
        return kv_err_set(err, KV_SHUTDOWN, "write: store is closing");
    }
    bool was_empty = st->head == NULL;
    if (st->tail)
        st->tail->next = r;
    else
        st->head = r;
    st->tail = r;
    st->queued_reqs++;
    st->queued_bytes += r->bytes;
    /* The thread waits either for a first request or, batching, for a full group. A
     * deferred first request leaves the wake-up to kv_store_write_kick (7). */
    if (group_full(st) || (was_empty && !defer))
        pthread_cond_signal(&st->wake);
    else if (was_empty)
        atomic_store(&st->unkicked, true);
    pthread_mutex_unlock(&st->mu);
    return KV_OK;
}

enum kv_status kv_store_write_async(struct kv_store *st, const struct kv_write *w, size_t n,
                                    kv_store_write_cb cb, void *arg, struct kv_err *err)
{
    return enqueue(st, w, n, cb, arg, false, err);
}

enum kv_status kv_store_write_queue(struct kv_store *st, const struct kv_write *w, size_t n,
                                    kv_store_write_cb cb, void *arg, struct kv_err *err)
{
    return enqueue(st, w, n, cb, arg, true, err);
}

void kv_store_write_kick(struct kv_store *st)
{
    if (!atomic_load(&st->unkicked))     /* the common case on an idle loop: no lock */
        return;
    pthread_mutex_lock(&st->mu);
    atomic_store(&st->unkicked, false);
    if (st->head)
        pthread_cond_signal(&st->wake);
    pthread_mutex_unlock(&st->mu);
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    enum kv_status s;
    struct kv_err err;
};

static void waiter_cb(void *arg, enum kv_status s, const struct kv_err *err)
{
    struct waiter *wt = arg;
    pthread_mutex_lock(&wt->mu);
    wt->s = s;
    if (err)
        wt->err = *err;
    wt->done = true;
    pthread_cond_signal(&wt->cv);        /* under the lock: wt lives until we unlock */
    pthread_mutex_unlock(&wt->mu);
}

enum kv_status kv_store_write(struct kv_store *st, const struct kv_write *w, size_t n,
                              struct kv_err *err)
{
    struct waiter wt = {.done = false, .s = KV_OK, .err = {KV_OK, ""}};
    pthread_mutex_init(&wt.mu, NULL);
    pthread_cond_init(&wt.cv, NULL);
    enum kv_status s = kv_store_write_async(st, w, n, waiter_cb, &wt, err);
    if (s == KV_OK) {
        pthread_mutex_lock(&wt.mu);
        while (!wt.done)
            pthread_cond_wait(&wt.cv, &wt.mu);
        pthread_mutex_unlock(&wt.mu);
        s = wt.s;
        if (s != KV_OK && err)
            *err = wt.err;
    }
    pthread_cond_destroy(&wt.cv);
    pthread_mutex_destroy(&wt.mu);
    return s;
}
