/* storage/rcache.h -- the record cache: a bounded hash table of encoded records recently
 * read from the data column family, in front of RocksDB point reads.
 *
 * Why: a point read that RocksDB answers from its memtable still walks a skiplist (about
 * 20 dependent cache misses for 100k keys) and folds merge operands; that was 25% of a
 * GET's server CPU unpipelined and 60% pipelined (docs/performance.md, round 3). A hit
 * here is one hash probe. Cassandra's row cache and RocksDB's row_cache are the same idea;
 * RocksDB's own row_cache does not help, since it sits behind the memtable.
 *
 * The contract that keeps a hit exactly as true as a RocksDB read at the same moment:
 * (1) The store's only writer of the data column family (the commit thread) brackets every
 *     RocksDB write of a key with kv_rcache_write_begin / kv_rcache_write_end. Both drop
 *     the key's entry and bump its stripe's generation; between them the stripe counts a
 *     write in progress, and no read is answered from, or inserted into, that stripe.
 * (2) A reader takes a ticket (kv_rcache_lookup, on a miss) before reading RocksDB and
 *     inserts what it read with kv_rcache_insert, which keeps it only if the stripe's
 *     generation is still the ticket's: no write of any key in the stripe began or ended
 *     in between, and none was in progress when the ticket was taken. So an entry always
 *     holds what RocksDB held when the entry was made, and no write has started since.
 * (3) Anything that changes the data column family other than through (1) (a future range
 *     delete, an ingest) must call kv_rcache_clear after it.
 * Thread-safe: stripes of keys, each with its own mutex, LRU list and byte budget. */
#ifndef KV_STORAGE_RCACHE_H
#define KV_STORAGE_RCACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "common/status.h"

struct kv_rcache;                       /* opaque */

/* Records larger than this are never cached: one would evict hundreds of small ones. */
#define KV_RCACHE_MAX_RECORD (16u << 10)

struct kv_rcache_stats {
    uint64_t hits, misses, inserts, evictions;
    uint64_t bytes, entries;            /* now */
    uint64_t capacity;                  /* bytes, entries and their overhead */
};

/* capacity 0: *out = NULL, the cache is off (every call below accepts NULL and then does
 * nothing: lookups miss, tickets are refused). On KV_OK *out owns the cache. */
enum kv_status kv_rcache_new(size_t capacity, struct kv_rcache **out, struct kv_err *err);
void kv_rcache_free(struct kv_rcache *c);   /* NULL-safe */

/* true: *out owns a malloc'd copy of key's record bytes. false (a miss): *ticket is what
 * kv_rcache_insert needs after the caller read RocksDB (0 when nothing may be inserted). */
bool kv_rcache_lookup(struct kv_rcache *c, struct kv_slice key, struct kv_buf *out,
                      uint64_t *ticket);
/* Keeps a copy of val (the record bytes RocksDB returned for key) if ticket is still valid
 * (2) and val is small enough; evicts least recently used entries to make room. */
void kv_rcache_insert(struct kv_rcache *c, struct kv_slice key, struct kv_slice val,
                      uint64_t ticket);
/* (1): around every RocksDB write that may change key. */
void kv_rcache_write_begin(struct kv_rcache *c, struct kv_slice key);
void kv_rcache_write_end(struct kv_rcache *c, struct kv_slice key);
/* (3): drops every entry and invalidates every outstanding ticket. */
void kv_rcache_clear(struct kv_rcache *c);
void kv_rcache_stats(struct kv_rcache *c, struct kv_rcache_stats *out);
#endif
