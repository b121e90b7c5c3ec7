/* server/peer.h -- outbound connections to the other nodes of the cluster.
 *
 * One connection per peer address, opened lazily on the first message and carrying only
 * Requests with op `peer` (id 0), framed exactly like client requests; the peer never
 * answers them (its replies come over its own connection to us), so what we read back is
 * only watched for EOF.
 * (1) A peer's queue (unsent plus unacknowledged-by-the-kernel bytes) never grows beyond
 *     cfg.peer_queue_bytes: a message that would is dropped and counted. The cluster
 *     logic tolerates loss (gossip repeats, requests time out).
 * (2) A connection that fails or breaks drops what was queued for it (counted) and is
 *     retried after a capped exponential backoff; a connect attempt that takes longer
 *     than PEER_CONNECT_TIMEOUT_MS fails.
 * (3) Loop thread only. Output produced in one loop iteration goes out in one write per
 *     peer (kv_peers_flush, from the server's check handle). */
#ifndef KV_SERVER_PEER_H
#define KV_SERVER_PEER_H
#include <stdint.h>
#include "common/buf.h"
#include "common/status.h"
#include "proto/cluster.pb-c.h"

struct kv_server;
struct kv_peers;

enum kv_status kv_peers_new(struct kv_server *s, struct kv_peers **out, struct kv_err *err);
/* Node id listens at addr (copied); a later call for the same id moves it. */
void kv_peers_set_addr(struct kv_peers *p, uint32_t id, const char *addr);
/* Queues msg (encoded now; borrowed for the call) for node id / for an address. */
void kv_peers_send(struct kv_peers *p, uint32_t id, const Kv__PeerMessage *msg);
void kv_peers_send_addr(struct kv_peers *p, const char *addr, const Kv__PeerMessage *msg);
/* Writes out what this loop iteration queued. */
void kv_peers_flush(struct kv_peers *p);
/* Appends Prometheus text for every peer (connection state, queue, drops). */
int kv_peers_render(const struct kv_peers *p, struct kv_vec *out);
/* Shutdown: closes every connection and timer; nothing is sent afterwards. */
void kv_peers_close(struct kv_peers *p);
/* After the loop ended. NULL-safe. */
void kv_peers_free(struct kv_peers *p);
#endif
