/* common/hash.h -- the project's hash functions, all xxhash, in one place so that a frame
 * checksum computed by the client and by the server can never disagree. */
#ifndef KV_COMMON_HASH_H
#define KV_COMMON_HASH_H
#include <stddef.h>
#include <stdint.h>

uint32_t kv_hash32(const void *p, size_t n);   /* XXH32, seed 0: frame checksums */
uint64_t kv_hash64(const void *p, size_t n);   /* XXH3 64-bit */
#endif
