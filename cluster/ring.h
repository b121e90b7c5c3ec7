/* cluster/ring.h -- the order-preserving token ring: which nodes hold which keys.
 *
 * Pure: no I/O, no clock; a ring is built from (node, tokens) and never changes after
 * that (membership changes build a new ring).
 * (1) A token is a key. A key k belongs to the range (previous token, t] of the first token
 *     t >= k (memcmp order), wrapping around past the last token to the first.
 * (2) A range's replicas are the first rf distinct nodes clockwise from its token,
 *     choosing first nodes in regions not yet used, then in (region, rack) pairs not yet
 *     used, then any remaining node, so copies spread over failure domains when the
 *     topology allows, and the choice is the same on every node.
 * (3) Two nodes may not own the same token (kv_ring_add_node refuses). */
#ifndef KV_CLUSTER_RING_H
#define KV_CLUSTER_RING_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "common/status.h"

#define KV_RING_MAX_RF 16
#define KV_RING_MAX_TOKEN 256   /* bytes */

struct kv_ring;

struct kv_ring *kv_ring_new(void);          /* NULL when out of memory */
void kv_ring_free(struct kv_ring *r);       /* NULL-safe */
/* Deep copy (for building the next ring from this one); NULL when out of memory. */
struct kv_ring *kv_ring_copy(const struct kv_ring *r);

/* Adds a node with its tokens (copied; any order; n may be 0). region and rack may be
 * NULL (read as ""). KV_INVALID: id already present, an empty or over-long token, a token
 * another node owns, or one token listed twice; r is unchanged on any error. */
enum kv_status kv_ring_add_node(struct kv_ring *r, uint32_t id, const char *region,
                                const char *rack, const struct kv_slice *tokens, size_t n,
                                struct kv_err *err);
/* Removes a node and its tokens; KV_NOT_FOUND when absent. */
enum kv_status kv_ring_remove_node(struct kv_ring *r, uint32_t id);

size_t kv_ring_node_count(const struct kv_ring *r);
size_t kv_ring_token_count(const struct kv_ring *r);

/* Up to rf (<= KV_RING_MAX_RF; larger is clamped) node ids holding key, in preference
 * order per (2); returns how many: min(rf, nodes that own tokens), 0 for an empty ring. */
size_t kv_ring_replicas(const struct kv_ring *r, struct kv_slice key, unsigned rf,
                        uint32_t *out);

/* Ranges in key order. With T tokens there are T+1 ranges: range 0 is [first key, t0],
 * range i (1..T-1) is (t(i-1), t(i)], and range T is (t(T-1), last key] -- which wraps to
 * t0's replicas. An empty ring has no ranges. *start is empty for range 0 (no lower
 * bound) and *end is empty for range T (no upper bound); both borrow from the ring. */
size_t kv_ring_range_count(const struct kv_ring *r);
void kv_ring_range(const struct kv_ring *r, size_t i, struct kv_slice *start,
                   struct kv_slice *end);
size_t kv_ring_range_replicas(const struct kv_ring *r, size_t i, unsigned rf, uint32_t *out);
/* The index of the range holding key. */
size_t kv_ring_range_of(const struct kv_ring *r, struct kv_slice key);

/* Precomputes every range's replica list for rf (1..KV_RING_MAX_RF), so that
 * kv_ring_replicas and kv_ring_range_replicas with that rf are a binary search and a copy;
 * other rf values still work, walking the ring per call. Call it once the ring is complete:
 * kv_ring_add_node and kv_ring_remove_node drop the cache, and kv_ring_copy does not copy
 * it. The ring is not thread-safe during kv_ring_build; afterwards concurrent readers are
 * fine (nothing is cached lazily). KV_INVALID for a bad rf, KV_NOMEM. */
enum kv_status kv_ring_build(struct kv_ring *r, unsigned rf);

/* Token i (0..token_count-1) in key order, borrowed from the ring, and its owner's id
 * (owner may be NULL). Out of range: an empty slice and owner 0. */
struct kv_slice kv_ring_token_at(const struct kv_ring *r, size_t i, uint32_t *owner);
/* Node i (0..node_count-1) in increasing id order; labels borrowed from the ring; any out
 * pointer may be NULL. false when i is out of range. A node added with no tokens is
 * counted by kv_ring_node_count but holds no range and is never a replica. */
bool kv_ring_node_at(const struct kv_ring *r, size_t i, uint32_t *id, const char **region,
                     const char **rack, size_t *n_tokens);

/* Deterministic initial tokens for a node joining an empty cluster, when the operator
 * gives none: count tokens of 8 bytes each drawn from xxhash of (node id, i), so they
 * spread uniformly over the byte space. out[i] points into buf (count * 8 bytes). */
void kv_ring_default_tokens(uint32_t node_id, size_t count, uint8_t *buf,
                            struct kv_slice *out);
#endif
