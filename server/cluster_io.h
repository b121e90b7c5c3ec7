/* server/cluster_io.h -- struct kv_cluster_io on the server's libuv loop.
 *
 * (1) Everything runs on the loop thread except the work functions handed to run()
 *     (libuv work queue) and the store's commit callback, which only posts to the loop.
 * (2) send() to this node's own id is queued and delivered later by kv_cio_deliver (the
 *     server's flush points) or a uv_idle callback, never re-entrantly (io.h (2)); other
 *     ids and send_addr go to server/peer.c.
 * (3) kv_cio_pending counts store_write and run calls whose done callback has not run yet:
 *     the cluster may be freed only while it is 0 (cluster.h, kv_cluster_free).
 * (4) Timer handles are pooled and reused; all are closed by kv_cio_close and freed by
 *     kv_cio_free after the loop has ended. */
#ifndef KV_SERVER_CLUSTER_IO_H
#define KV_SERVER_CLUSTER_IO_H
#include <stdint.h>
#include "cluster/io.h"
#include "common/status.h"

struct kv_server;
struct kv_cio;

enum kv_status kv_cio_new(struct kv_server *s, struct kv_cio **out, struct kv_err *err);
/* The vtab to give kv_cluster_new; valid until kv_cio_free. */
const struct kv_cluster_io *kv_cio_vtab(struct kv_cio *io);
uint64_t kv_cio_pending(const struct kv_cio *io);
/* Delivers queued messages to self (a bounded number of rounds, cluster_io.c (2)). Loop
 * thread, never from inside a cluster call; the server calls it right before writing
 * output, so replies that delivery produces leave in the same loop iteration. */
void kv_cio_deliver(struct kv_cio *io);
/* Shutdown, after the cluster is freed: cancels timers, drops undelivered self messages
 * and closes every handle. */
void kv_cio_close(struct kv_cio *io);
/* After the loop ended (every close callback ran). NULL-safe. */
void kv_cio_free(struct kv_cio *io);
#endif
