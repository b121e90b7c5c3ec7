/* common/hlc.c -- hybrid logical clock. */
#include "common/hlc.h"
#include "common/version.h"

void kv_hlc_init(struct kv_hlc *c) { atomic_init(&c->last, 0); }

uint64_t kv_hlc_now(struct kv_hlc *c, uint64_t physical_ms)
{
    uint64_t wall = kv_hlc_make(physical_ms, 0);
    uint64_t old = atomic_load(&c->last);
    for (;;) {
        /* Past the last stamp either by the wall clock or by one logical tick. */
        uint64_t next = wall > old ? wall : old + 1;
        if (atomic_compare_exchange_weak(&c->last, &old, next))
            return next;
    }
}

uint64_t kv_hlc_peek_ms(struct kv_hlc *c, uint64_t physical_ms)
{
    uint64_t last = kv_hlc_ms(atomic_load(&c->last));
    return last > physical_ms ? last : physical_ms;
}

void kv_hlc_observe(struct kv_hlc *c, uint64_t remote)
{
    uint64_t old = atomic_load(&c->last);
    while (remote > old && !atomic_compare_exchange_weak(&c->last, &old, remote)) {
    }
}
