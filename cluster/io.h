/* cluster/io.h -- everything cluster/ needs from the world, as a vtab.
 *
 * cluster/ never calls libuv, sockets or clocks directly: server/cluster_io.c implements
 * this on libuv and real sockets; tests/sim/ implements it on simulated time with a lossy,
 * partitionable network, so many nodes run deterministically in one process.
 * (1) Every callback (message delivery, timer, store completion) runs on the one thread
 *     that owns the kv_cluster: cluster/ takes no locks.
 * (2) send() is best effort and may drop, delay, duplicate or reorder; it never calls back
 *     into the cluster before it returns (delivery to self is deferred too).
 * (3) timer callbacks and done callbacks run exactly once unless the timer is cancelled. */
#ifndef KV_CLUSTER_IO_H
#define KV_CLUSTER_IO_H
#include <stddef.h>
#include <stdint.h>
#include "common/status.h"
#include "proto/cluster.pb-c.h"
#include "storage/store.h"

typedef void (*kv_io_fn)(void *arg);
typedef void (*kv_io_write_done)(void *arg, enum kv_status st, const struct kv_err *err);

struct kv_cluster_io {
    void *ctx;
    /* Sends msg (borrowed for the call; the transport encodes it) to node `to`, possibly
     * self. msg->from and msg->hlc are filled in by the caller. */
    void (*send)(void *ctx, uint32_t to, const Kv__PeerMessage *msg);
    /* Sends to an address whose node id is not known yet (seeds). */
    void (*send_addr)(void *ctx, const char *addr, const Kv__PeerMessage *msg);
    /* Tells the transport where node `id` listens (learned from gossip). */
    void (*set_addr)(void *ctx, uint32_t id, const char *addr);
    /* One-shot timer; returns a nonzero id for timer_cancel. */
    uint64_t (*timer_start)(void *ctx, uint64_t delay_ms, kv_io_fn fn, void *arg);
    void (*timer_cancel)(void *ctx, uint64_t id);
    uint64_t (*now_ms)(void *ctx);     /* wall clock: HLC physical part, TTL */
    uint64_t (*mono_ms)(void *ctx);    /* monotonic: timeouts, failure detection */
    uint32_t (*random)(void *ctx);     /* seeded in the simulator */
    /* Merges records into the local store; done runs on the cluster thread once they are
     * as durable as the store's sync setting promises. The writes are copied. */
    void (*store_write)(void *ctx, const struct kv_write *w, size_t n, kv_io_write_done done,
                        void *arg);
    /* Runs work(arg) where it may block on the local store (a storage thread), then
     * done(arg) on the cluster thread. */
    void (*run)(void *ctx, kv_io_fn work, kv_io_fn done, void *arg);
};
#endif
