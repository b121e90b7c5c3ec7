/* common/hlc.h -- hybrid logical clock (Kulkarni et al.), lock-free.
 *
 * (1) kv_hlc_now() never returns the same value twice for one clock, and never a value
 *     below one previously returned or observed through kv_hlc_observe().
 * (2) The physical part follows the wall clock; when the wall clock stalls or goes back the
 *     logical counter advances instead, and it carries into the millisecond field. */
#ifndef KV_COMMON_HLC_H
#define KV_COMMON_HLC_H
#include <stdatomic.h>
#include <stdint.h>

struct kv_hlc {
    _Atomic uint64_t last;
};

void kv_hlc_init(struct kv_hlc *c);
/* A new timestamp above every earlier one; physical_ms is the current wall clock. */
uint64_t kv_hlc_now(struct kv_hlc *c, uint64_t physical_ms);
/* The clock's millisecond part now without minting a stamp: the later of physical_ms and
 * the last stamp issued or observed. Nodes that exchange messages agree on it to within a
 * message's age whatever their wall clocks' skew, which is what deadlines need. */
uint64_t kv_hlc_peek_ms(struct kv_hlc *c, uint64_t physical_ms);
/* Moves the clock forward past a timestamp received from a peer or read from disk. */
void kv_hlc_observe(struct kv_hlc *c, uint64_t remote);
#endif
