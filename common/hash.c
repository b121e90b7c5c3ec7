/* common/hash.c -- xxhash wrappers. */
#include "common/hash.h"
#include <xxhash.h>

uint32_t kv_hash32(const void *p, size_t n) { return XXH32(p, n, 0); }
uint64_t kv_hash64(const void *p, size_t n) { return XXH3_64bits(p, n); }

