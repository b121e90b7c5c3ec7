/* common/failpoint.h -- named crash points compiled only into test builds (docs/testing.md,
 * "Crash loop").
 *
 * KV_FAILPOINT("commit.before_wal") marks a place where a test may make the process die as
 * kill -9 would. The macro expands to nothing unless the build defines KV_FAILPOINTS (CMake
 * option KV_FAILPOINTS, on by default with KV_SANITIZE, off in release builds), so release
 * binaries carry neither the calls nor the names.
 *
 * Points are armed at run time by the environment variable KV_FAILPOINTS, read once when
 * the program starts (before main), for example
 *     KV_FAILPOINTS="commit.before_wal=crash@3,ack.after_write=crash%10"
 * Each comma-separated entry is NAME=ACTION[@N | %P]:
 *     crash      die at the first hit
 *     crash@N    die at the N-th hit of that point (N >= 1)
 *     crash%P    die at each hit with probability P percent (1..100); the generator is
 *                seeded from KV_FAILPOINTS_SEED when set, else from the time and the pid
 *     off        count hits, never act (the entry parses, nothing happens)
 * A spec that does not parse stops the program at start with exit code 2, so a typo never
 * turns a crash test into a run without crashes. The armed points are logged at WARN, and
 * so is any armed name that is not one of the points placed in kvd:
 *     commit.before_wal  storage/commit.c  a group commit is about to be written (WAL)
 *     commit.after_wal   storage/commit.c  written and synced, no callback run yet
 *     ack.before_reply   server/handler.c  a client write succeeded, its reply not queued
 *     ack.after_write    server/conn.c     a batch of replies was written to a socket
 * (add a new point's name to that list and to g_known in failpoint.c).
 *
 * (1) "crash" is raise(SIGKILL): no atexit handler, no stdio flush, no RocksDB close, no
 *     destructor runs; what survives is exactly what a kill -9 at that line leaves. One
 *     line naming the point is written to stderr with write(2) just before.
 * (2) Hits are counted per point with atomics, from any thread; the N-th hit is the N-th
 *     in the order the atomic increments happen.
 * (3) kv_failpoint_configure() replaces the whole table and is not thread-safe: call it
 *     only while no thread can hit a point (at start, or in a test). */
#ifndef KV_COMMON_FAILPOINT_H
#define KV_COMMON_FAILPOINT_H
#include <stddef.h>
#include <stdint.h>
#include "common/status.h"

#ifdef KV_FAILPOINTS
#define KV_FAILPOINT(name) kv_failpoint_hit(name)
#else
#define KV_FAILPOINT(name) ((void)0)
#endif

#define KV_FAILPOINT_MAX 16      /* points armed at once */
#define KV_FAILPOINT_NAME_MAX 48 /* bytes of a name, NUL included */

/* Parses spec (NULL or "" disarms every point) and arms what it names, resetting every hit
 * count. KV_INVALID with err naming the bad entry leaves the previous table in place. */
enum kv_status kv_failpoint_configure(const char *spec, struct kv_err *err);
/* Counts a hit of name and acts if it is armed (see above). A name not armed costs one
 * atomic load when nothing is armed, a few string compares otherwise. */
void kv_failpoint_hit(const char *name);
/* Restarts the generator of the %P form from seed (the same seed, the same crashes). */
void kv_failpoint_seed(uint64_t seed);
/* Hits of an armed point since it was configured; 0 for a name not armed. */
uint64_t kv_failpoint_hits(const char *name);
/* The armed table as "name=crash@3,other=crash%10" into buf (always NUL-terminated when
 * cap > 0); returns the number of points armed. */
size_t kv_failpoint_describe(char *buf, size_t cap);
#endif
