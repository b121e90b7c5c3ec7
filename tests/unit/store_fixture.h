/* tests/unit/store_fixture.h -- temporary RocksDB stores on a fake clock, and the
 * assertions the storage suites share (test_store.c, test_store_repair.c).
 *
 * Every suite works under one mkdtemp root per run (root_setup/root_teardown as an
 * unchecked fixture, which runs in the parent process, so the directory goes away even
 * when a forked test fails). Time is fake_now, so TTL and purge are deterministic. */
#ifndef KV_TESTS_UNIT_STORE_FIXTURE_H
#define KV_TESTS_UNIT_STORE_FIXTURE_H
#include <stddef.h>
#include <stdint.h>
#include "storage/store.h"

#define T0 1700000000000ull              /* fake "now" at the start of every test */

/* A version timestamp n logical ticks into T0's millisecond: recent, so never purged
 * unless a test moves the clock past the grace. */
#define H(n) ((T0 << 16) | (uint64_t)(n))

extern uint64_t fake_now;
extern char g_root[64];
uint64_t fake_clock(void);

void root_setup(void);
void root_teardown(void);
/* A fresh directory path under the root (the store itself creates the last component). */
void fresh_dir(char *out, size_t n);
struct kv_store *open_at(const char *path, enum kv_sync sync, uint64_t grace_ms);
struct kv_store *open_fresh(char *dir, size_t n);   /* also resets fake_now to T0 */

struct w {
    uint64_t hlc;
    uint32_t node;
    const char *val;                     /* NULL: tombstone */
};
struct kv_write mk(const char *key, struct w x, uint64_t expires);
void put(struct kv_store *st, const char *key, struct w x, uint64_t expires);
/* The live value of key must be val (NULL: KV_NOT_FOUND). */
void expect_live(struct kv_store *st, const char *key, const char *val);
/* The raw record of key must have version x (and be a tombstone iff x.val is NULL). */
void expect_raw(struct kv_store *st, const char *key, struct w x);
enum kv_status get_raw_status(struct kv_store *st, const char *key);
void flush(struct kv_store *st);
/* Puts (not merges) the encoding of r under key with its last byte flipped: what a bit
 * flipped on disk or in memory leaves for the record checksum to catch. */
void plant_corrupt(struct kv_store *st, const char *key, const struct kv_record *r);
void compact(struct kv_store *st);
#endif
