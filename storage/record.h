/* storage/record.h -- the versioned record: the value bytes RocksDB stores for every key.
 *
 * Encoding (all integers big-endian):
 *   u8  format   (KV_RECORD_FORMAT, 2)
 *   u8  flags    (bit 0 tombstone, bit 1 has expiry; other bits must be 0)
 *   u32 check    low 32 bits of XXH3-64 over every byte after this field, xor the flags
 *                times an odd constant: any flipped bit anywhere in a record is detected
 *   u64 hlc      version timestamp (common/version.h)
 *   u32 node     version tie-breaker: the id of the node that minted the version
 *   u64 expires  only when the expiry flag is set: absolute ms since epoch
 *   ...          the value bytes (absent for a tombstone)
 * (1) Decoding never trusts the bytes: an unknown format, unknown flag bits, a short
 *     header, a checksum mismatch or a tombstone carrying bytes is KV_CORRUPTION, never
 *     an assert. The checksum is verified on every decode, so a bit flipped on disk (below
 *     RocksDB's block checksums, e.g. in a memtable or a merge operand) never reaches a
 *     client as data.
 * (2) A decoded record's value points into the bytes it was decoded from. */
#ifndef KV_STORAGE_RECORD_H
#define KV_STORAGE_RECORD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "common/status.h"
#include "common/version.h"

#define KV_RECORD_FORMAT 2
#define KV_RECORD_HDR_MIN 18u

struct kv_record {
    struct kv_version ver;
    uint64_t expires_at_ms;   /* 0: never expires */
    bool tombstone;
    struct kv_slice value;    /* borrowed; empty for a tombstone */
};

size_t kv_record_encoded_size(const struct kv_record *r);
/* Writes exactly kv_record_encoded_size(r) bytes to out and returns that count. */
size_t kv_record_encode(const struct kv_record *r, uint8_t *out);
/* Recomputes the checksum of n encoded bytes in place (n >= KV_RECORD_HDR_MIN): for tests
 * and fuzzers that craft records field by field; kv_record_encode already seals. */
void kv_record_seal(uint8_t *p, size_t n);
/* KV_OK: *r describes in (r->value borrows from in). KV_CORRUPTION otherwise. */
enum kv_status kv_record_decode(struct kv_slice in, struct kv_record *r, struct kv_err *err);
/* A live record is neither a tombstone nor expired at now_ms. */
bool kv_record_live(const struct kv_record *r, uint64_t now_ms);
#endif
