/* storage/iter.c -- ordered iterators over the data column family (decoded records) and
 * over the plain column families (bytes).
 *
 * (1) A RocksDB iterator reads the implicit snapshot taken when it was created, so one
 *     kv_store_iter sees one consistent state however long it lives; expiry is likewise
 *     judged at one instant, the creation time.
 * (2) end is enforced by RocksDB (iterate_upper_bound), which keeps a pointer to it: the
 *     iterator owns a copy that is freed only after the RocksDB iterator and its options.
 * (3) A record that does not decode is reported as KV_CORRUPTION, never skipped silently;
 *     the next call moves past it. */
#include <stdlib.h>
#include <string.h>
#include "storage/record.h"
#include "storage/store_int.h"

struct kv_store_iter {
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ro;
    char *end;                           /* upper bound copy, NULL when unbounded */
    bool positioned;                     /* it points at the next candidate already */
    bool plain;                          /* a plain column family: return bytes */
    unsigned flags;
    uint64_t now_ms;
};

void kv_store_iter_free(struct kv_store_iter *it)
{
    if (!it)
        return;
    if (it->it)
        rocksdb_iter_destroy(it->it);
    if (it->ro)
        rocksdb_readoptions_destroy(it->ro);
    free(it->end);                       /* after ro, which points into it: (2) */
    free(it);
}

static enum kv_status iter_make(struct kv_store *st, enum kv_cf cf, struct kv_slice start,
                                bool start_exclusive, struct kv_slice end, unsigned flags,
                                bool plain, struct kv_store_iter **out, struct kv_err *err)
{
    *out = NULL;
    struct kv_store_iter *it = calloc(1, sizeof *it);
    if (!it)
        return kv_err_set(err, KV_NOMEM, "iter: out of memory");
    it->plain = plain;
    it->flags = flags;
    it->now_ms = st->now_ms();
    it->ro = rocksdb_readoptions_create();
    if (flags & KV_STORE_CACHE_ONLY)
        rocksdb_readoptions_set_read_tier(it->ro, 1);   /* kBlockCacheTier */
    if (end.len) {
        it->end = malloc(end.len);
        if (!it->end) {
            kv_store_iter_free(it);
            return kv_err_set(err, KV_NOMEM, "iter: out of memory");
        }
        memcpy(it->end, end.ptr, end.len);
        rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->end, end.len);
    }
    it->it = rocksdb_create_iterator_cf(st->db, it->ro, kv_store__cf(st, cf));
    if (start.len)
        rocksdb_iter_seek(it->it, start.ptr, start.len);
    else
        rocksdb_iter_seek_to_first(it->it);
    if (start_exclusive && start.len && rocksdb_iter_valid(it->it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it->it, &kl);
        if (kv_slice_cmp(kv_slice_of(k, kl), start) == 0)
            rocksdb_iter_next(it->it);
    }
    it->positioned = true;
    *out = it;
    return KV_OK;
}

enum kv_status kv_store_iter_new(struct kv_store *st, struct kv_slice start,
                                 bool start_exclusive, struct kv_slice end, unsigned flags,
                                 struct kv_store_iter **out, struct kv_err *err)
{
    if (flags & ~(KV_STORE_RAW | KV_STORE_CACHE_ONLY)) {
        *out = NULL;
        return kv_err_set(err, KV_INVALID, "iter: unknown flags 0x%x", flags);
    }
    return iter_make(st, KV_CF_DATA, start, start_exclusive, end, flags, false, out, err);
}

enum kv_status kv_store_raw_iter_new(struct kv_store *st, enum kv_cf cf, struct kv_slice start,
                                     struct kv_slice end, struct kv_store_iter **out,
                                     struct kv_err *err)
{
    if (cf == KV_CF_DATA || (int)cf < 0 || cf >= KV_CF_COUNT) {
        *out = NULL;
        return kv_err_set(err, KV_INVALID, "raw iter: column family %d is not a plain one",
                          (int)cf);
    }
    return iter_make(st, cf, start, false, end, 0, true, out, err);
}

enum kv_status kv_store_iter_next(struct kv_store_iter *it, struct kv_slice *key,
                                  struct kv_record *rec, struct kv_err *err)
{
    if (!it->positioned)
        rocksdb_iter_next(it->it);
    it->positioned = false;
    for (;; rocksdb_iter_next(it->it)) {
        if (!rocksdb_iter_valid(it->it)) {
            char *e = NULL;
            rocksdb_iter_get_error(it->it, &e);
            return e ? kv_store__rocks_err(&e, err, "iter") : KV_NOT_FOUND;
        }
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it->it, &kl);
        const char *v = rocksdb_iter_value(it->it, &vl);
        struct kv_record r = {0};
        if (it->plain) {
            r.value = kv_slice_of(v, vl);
        } else {
            enum kv_status s = kv_record_decode(kv_slice_of(v, vl), &r, err);
            if (s != KV_OK)
                return s;                /* (3) */
            if (!(it->flags & KV_STORE_RAW) && !kv_record_live(&r, it->now_ms))
                continue;
        }
        *key = kv_slice_of(k, kl);
        *rec = r;
        return KV_OK;
    }
}
