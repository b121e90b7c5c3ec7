/* client/bench/procstat.h -- the CPU time servers spend, so benchmarks can report it per
 * operation beside ops/s (a fair comparison even when load generators differ in cost). */
#ifndef KV_BENCH_PROCSTAT_H
#define KV_BENCH_PROCSTAT_H
#include <stdint.h>

/* User + system CPU of the comma-separated PIDs, in clock ticks (sysconf(_SC_CLK_TCK));
 * -1 when pids is NULL or any process cannot be read. */
int64_t bench_servers_cpu(const char *pids);
#endif
