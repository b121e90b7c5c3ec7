/* cluster/hints.h -- the stored form of a hint (cluster/hints.c), for code that reads it
 * back: hints.c itself and tests/fuzz/hint.c, which drives these on arbitrary bytes (a
 * hint comes off the disk, and may be flipped, truncated or from another build).
 *
 * A hint is one KV_CF_HINTS entry: key be32(target) | be64(created ms) | be64(seq),
 * value be32(xxh32 of the rest) | the packed Kv__Record as the coordinator minted it.
 * (1) These functions are pure and never trust the bytes.
 * (2) The checksum is what makes a flipped bit detectable: protobuf has no redundancy, so
 *     a flip inside a value or a varint could otherwise decode as a different, valid
 *     record and be replayed as data. A hint that fails it is deleted, never sent. */
#ifndef KV_CLUSTER_HINTS_H
#define KV_CLUSTER_HINTS_H
#include <stdbool.h>
#include <stdint.h>
#include "common/buf.h"

#define KV_HINT_KEY_LEN 20u

/* false: not a hint's key (any length but KV_HINT_KEY_LEN); the outputs are then unset. */
bool kv_hint_key_decode(struct kv_slice key, uint32_t *target, uint64_t *created_ms,
                        uint64_t *seq);
#define KV_HINT_CHECK_LEN 4u

/* false: too short or the checksum does not match; else *packed is the record's bytes
 * (borrowed from v). */
bool kv_hint_value_packed(struct kv_slice v, struct kv_slice *packed);
/* Whether a stored value may be replayed: its checksum holds and it unpacks as a
 * Kv__Record that a replica accepts (key 1..KV_STORE_KEY_MAX bytes, value <= max_value
 * bytes, none on a tombstone, no unknown fields).
 * A hint that fails is deleted, never sent. */
bool kv_hint_value_ok(struct kv_slice v, uint32_t max_value);
#endif
