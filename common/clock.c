/* common/clock.c -- wall and monotonic clocks, with a skew offset for fault tests. */
#include "common/clock.h"
#include <stdatomic.h>
#include <time.h>

static _Atomic int64_t g_offset_ms;

uint64_t kv_clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return (uint64_t)(ms + atomic_load(&g_offset_ms));
}

uint64_t kv_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void kv_clock_set_offset_ms(int64_t off) { atomic_store(&g_offset_ms, off); }
