/* storage/lww.c -- the data column family's merge operator (last writer wins by version)
 * and the compaction filter that purges old tombstones and expired records.
 *
 * Every write to KV_CF_DATA is a RocksDB Merge of one encoded record; this operator folds
 * the operands (and the existing value, if any) down to the record with the highest
 * version, so a put never reads first.
 * (1) The winner is the highest kv_version; equal versions (which the cluster layer never
 *     mints for different values) fall back to the larger value bytes, then the larger
 *     encoded bytes (the checksum sits before the value, so comparing the encoding alone
 *     would order by checksum, which is stable but surprising), so the result is
 *     the same whatever order, grouping or number of merges RocksDB uses: the fold is
 *     commutative, associative and idempotent.
 * (2) The winner's bytes are returned unchanged (never re-encoded), so a record survives
 *     merges bit for bit.
 * (3) An operand or existing value that does not decode fails the full merge
 *     (success = 0): RocksDB then reports Corruption for the read or compaction instead of
 *     silently dropping one side. A failed partial merge is not an error in RocksDB (it just
 *     keeps the operands), so the bad bytes reach a full merge and are reported there.
 * (4) The filter drops a record only once it is older than grace_ms: a tombstone when
 *     kv_hlc_ms(hlc) + grace < now, an expired record when expires_at_ms + grace < now.
 *     Undecodable bytes are kept (purging cannot repair them and must not hide them).
 * (5) RocksDB's C API applies the filter to plain values only, never to merge operands.
 *     Dropping a value never resurrects an older version sitting in a lower level: RocksDB
 *     turns a value the filter removes into a deletion marker (CompactionIterator, kRemove
 *     -> kTypeDeletion), which shadows everything below it and which RocksDB itself drops
 *     only where nothing older can exist. That matters because not every value comes from
 *     a full merge over the key's whole history: the commit thread's fold of a hot key
 *     (commit.c (6)) and a corrupt record's replacement are Puts above older data.
 * (6) Capture (commit.c, a replace_corrupt write): the commit thread arms it around its own
 *     read of a key it may replace. A full merge that fails on that thread then leaves the
 *     newest input that still decodes in the capture buffer, so the replacement keeps a
 *     newer write stacked above the corrupt bytes. Thread-local: no other read is touched. */
#include <stdlib.h>
#include <string.h>
#include "storage/record.h"
#include "storage/store_int.h"

/* ------------------------------------------------------------------ merge operator -- */

struct pick {
    const char *ptr;
    size_t len;
    struct kv_version ver;
    struct kv_slice value;
    bool set;
};

/* Folds one encoded record into *best per (1). Returns -1 when it does not decode. */
static int pick_fold(struct pick *best, const char *p, size_t n)
{
    struct kv_record r;
    if (kv_record_decode(kv_slice_of(p, n), &r, NULL) != KV_OK)
        return -1;
    if (best->set) {
        int c = kv_version_cmp(r.ver, best->ver);
        if (c < 0)
            return 0;
        if (c == 0) {
            int b = kv_slice_cmp(r.value, best->value);
            if (b == 0)
                b = kv_slice_cmp(kv_slice_of(p, n), kv_slice_of(best->ptr, best->len));
            if (b <= 0)
                return 0;
        }
    }
    best->ptr = p;
    best->len = n;
    best->ver = r.ver;
    best->value = r.value;
    best->set = true;
    return 0;
}

/* The C API frees what a merge returns with delete_value; a failed merge still returns a
 * malloc'd (empty) buffer because the wrapper copies the result before looking at success. */
static char *merge_result(const struct pick *best, bool ok, unsigned char *success,
                          size_t *new_len)
{
    size_t n = ok ? best->len : 0;
    char *out = malloc(n ? n : 1);
    if (!out) {
        *success = 0;
        *new_len = 0;
        return NULL;
    }
    if (n)
        memcpy(out, best->ptr, n);
    *success = ok ? 1 : 0;
    *new_len = n;
    return out;
}

static _Thread_local struct kv_buf *lww_capture;

void kv_store__lww_capture(struct kv_buf *into) { lww_capture = into; }

/* (6): the newest input that decodes, skipping the ones that do not. */
static void capture_survivor(const char *existing, size_t existing_len,
                             const char *const *ops, const size_t *op_lens, int n_ops)
{
    struct pick best = {0};
    if (existing)
        (void)pick_fold(&best, existing, existing_len);
    for (int i = 0; i < n_ops; i++)
        (void)pick_fold(&best, ops[i], op_lens[i]);
    if (!best.set)
        return;
    kv_buf_free(lww_capture);
    if (kv_buf_copy(lww_capture, kv_slice_of(best.ptr, best.len)) != 0)
        *lww_capture = (struct kv_buf){0};   /* out of memory: the repair record alone */
}

static char *lww_full_merge(void *state, const char *key, size_t key_len,
                            const char *existing, size_t existing_len,
                            const char *const *ops, const size_t *op_lens, int n_ops,
                            unsigned char *success, size_t *new_len)
{
    (void)state;
    (void)key;
    (void)key_len;
    struct pick best = {0};
    bool ok = true;
    if (existing && pick_fold(&best, existing, existing_len) != 0)
        ok = false;
    for (int i = 0; ok && i < n_ops; i++)
        if (pick_fold(&best, ops[i], op_lens[i]) != 0)
            ok = false;
    if (!best.set)
        ok = false;                 /* no operand at all: nothing sensible to produce */
    if (!ok && lww_capture)
        capture_survivor(existing, existing_len, ops, op_lens, n_ops);
    return merge_result(&best, ok, success, new_len);
}

int kv_store__lww_winner(struct kv_slice a, struct kv_slice b)
{
    struct pick best = {0};
    if (pick_fold(&best, a.ptr, a.len) != 0 || pick_fold(&best, b.ptr, b.len) != 0)
        return -1;
    return best.ptr == (const char *)a.ptr ? 0 : 1;
}

static char *lww_partial_merge(void *state, const char *key, size_t key_len,
                               const char *const *ops, const size_t *op_lens, int n_ops,
                               unsigned char *success, size_t *new_len)
{
    return lww_full_merge(state, key, key_len, NULL, 0, ops, op_lens, n_ops, success,
                          new_len);
}

static void lww_delete_value(void *state, const char *value, size_t len)
{
    (void)state;
    (void)len;
    free((void *)value);
}

static void no_destroy(void *state) { (void)state; }
static const char *lww_name(void *state)
{
    (void)state;
    return "kvd.lww.v1";
}

rocksdb_mergeoperator_t *kv_store__lww_merge_operator(void)
{
    return rocksdb_mergeoperator_create(NULL, no_destroy, lww_full_merge, lww_partial_merge,
                                        lww_delete_value, lww_name);
}

/* -------------------------------------------------------------- compaction filter -- */

static uint64_t add_sat(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

static unsigned char purge_filter(void *state, int level, const char *key, size_t key_len,
                                  const char *val, size_t val_len, char **new_val,
                                  size_t *new_len, unsigned char *changed)
{
    (void)level;
    (void)key;
    (void)key_len;
    (void)new_val;
    (void)new_len;
    *changed = 0;
    const struct kv_store *st = state;
    struct kv_record r;
    if (kv_record_decode(kv_slice_of(val, val_len), &r, NULL) != KV_OK)
        return 0;
    uint64_t now = st->now_ms();
    if (r.tombstone && add_sat(kv_hlc_ms(r.ver.hlc), st->grace_ms) < now)
        return 1;
    if (r.expires_at_ms && add_sat(r.expires_at_ms, st->grace_ms) < now)
        return 1;
    return 0;
}

static const char *purge_name(void *state)
{
    (void)state;
    return "kvd.purge.v1";
}

rocksdb_compactionfilter_t *kv_store__purge_filter(struct kv_store *st)
{
    return rocksdb_compactionfilter_create(st, no_destroy, purge_filter, purge_name);
}
