/* common/version.h -- the version every stored record carries.
 *
 * (1) Versions are totally ordered by (hlc, node): never by value, so every replica picks
 *     the same winner whatever order writes arrive in.
 * (2) hlc is a hybrid logical clock: 48 bits of milliseconds since the Unix epoch, then a
 *     16-bit logical counter (common/hlc.h). */
#ifndef KV_COMMON_VERSION_H
#define KV_COMMON_VERSION_H
#include <stdint.h>

struct kv_version {
    uint64_t hlc;
    uint32_t node;
};

static inline int kv_version_cmp(struct kv_version a, struct kv_version b)
{
    if (a.hlc != b.hlc)
        return a.hlc < b.hlc ? -1 : 1;
    if (a.node != b.node)
        return a.node < b.node ? -1 : 1;
    return 0;
}
static inline uint64_t kv_hlc_ms(uint64_t hlc) { return hlc >> 16; }
static inline uint64_t kv_hlc_make(uint64_t ms, uint16_t logical)
{
    return (ms << 16) | logical;
}
#endif
