/* common/clock.h -- the one wall clock kvd reads.
 *
 * Everything that needs wall time (HLC stamps, TTL expiry, tombstone grace) goes through
 * kv_clock_now_ms(), so a test can skew one node's clock (kv_clock_set_offset_ms) without
 * touching the host clock. The offset is 0 unless a test-only setting changes it. */
#ifndef KV_COMMON_CLOCK_H
#define KV_COMMON_CLOCK_H
#include <stdint.h>

uint64_t kv_clock_now_ms(void);          /* wall clock + offset, milliseconds since epoch */
uint64_t kv_clock_mono_ns(void);         /* monotonic, for durations and deadlines */
void kv_clock_set_offset_ms(int64_t off);
#endif
