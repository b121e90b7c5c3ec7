/* server/admission.h -- admission control: the node-wide limits (connections, request bytes
 * and requests in flight, event-loop lag) and the decision to shed a request with OVERLOADED.
 *
 * conn.c reads, frames and writes; this module decides what a connection and the node may
 * hold (the per-connection half works on struct kv_conn through conn_internal.h). Loop
 * thread only, except the metrics.
 * (1) Peer connections (kv_conn_mark_peer) are never shed and never count against
 *     max_connections: a replica that refused a coordinator's write would turn a client's
 *     clear OVERLOADED into an ambiguous TIMEOUT. Load is shed at the client edge instead
 *     (the coordinator), and peer traffic stays bounded at its sender (peer_queue_bytes).
 * (2) Past max_connections a new connection is either kept provisionally, in a reserve of
 *     peer_reserved_connections for nodes of the cluster (its first frame must be a peer
 *     message, else it is answered OVERLOADED and closed), or answered OVERLOADED at once
 *     and closed. Either way it is counted in kvd_connections_rejected_total.
 * (3) A request is shed (answered OVERLOADED with retry_after_ms, before any work) while
 *     the node holds max_node_inflight_requests requests or max_node_inflight_bytes of
 *     request bytes; while the requests in flight are more than the node completes in
 *     overload_queue_ms (Little's law: that is how long a new one would wait); or while the
 *     loop's smoothed busy time per iteration exceeds overload_loop_lag_ms.
 *     cluster_status requests are never shed (clients route by them).
 * (4) The completion rate behind (3) is measured over 100 ms windows in which the node
 *     stayed busy (requests in flight at the window's start and end), and the estimate is
 *     the best of the last KV_ADM_WINDOWS such windows: idle periods do not lower it, and
 *     neither does a slow moment -- an estimate that followed every dip would shed more,
 *     measure less and ratchet down. Until one busy window has passed only the fixed
 *     limits apply. Shedding never refuses a request while fewer than KV_ADM_MIN_INFLIGHT
 *     are in flight. */
#ifndef KV_SERVER_ADMISSION_H
#define KV_SERVER_ADMISSION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "common/status.h"
#include "server/metrics.h"

struct kv_server;

#define KV_ADM_WINDOWS 16u   /* (4): 1.6 s of busy windows */

struct kv_adm {
    uint32_t max_connections;      /* effective: lowered to what RLIMIT_NOFILE allows */
    uint32_t peer_reserve;         /* peer_reserved_connections */
    uint32_t clients_open;         /* open connections not known to be peers */
    uint32_t provisional_open;     /* of the peer reserve (2) */
    uint64_t inflight_bytes;       /* request bytes read and not yet answered, node-wide */
    uint64_t win_start_ns;         /* (4) the current window */
    uint64_t win_done;             /* client requests answered in it */
    uint64_t win_start_inflight;
    double rate_per_s;             /* (4) estimated capacity; 0 unknown */
    double win_rates[KV_ADM_WINDOWS]; /* (4) the last busy windows' completion rates */
    unsigned win_next;
    uint64_t lag_ewma_ns;          /* smoothed busy time of one loop iteration */
    uint64_t last_ns, last_idle_ns;
    uint64_t last_accept_warn_ns;
    uint32_t accepts;              /* this loop phase (conn.c (8)) */
    bool accept_deferred;          /* an accepted descriptor waits in libuv */
    uv_prepare_t lag_prepare;      /* measures each iteration's busy time */
    uv_timer_t sweep_timer;        /* closes stalled partial frames and idle connections */
    uv_timer_t kick;               /* a 0 ms timer: the next poll does not block */
    bool started;
};

/* Raises RLIMIT_NOFILE's soft limit to the hard one and lowers the effective connection
 * limit (with a warning) when max_connections + the peer reserve + the node's own files
 * cannot fit. KV_INVALID when not even one client connection fits. */
enum kv_status kv_adm_init(struct kv_adm *a, struct kv_server *s, struct kv_err *err);
/* Starts the loop-lag probe and the sweep timer; the loop must be initialised. */
void kv_adm_start(struct kv_adm *a, struct kv_server *s);
/* Makes the loop's next poll return at once (work is waiting for the flush phase). */
void kv_adm_kick(struct kv_adm *a);
/* Shutdown: closes the handles (their memory is inside a). */
void kv_adm_close(struct kv_adm *a);

enum kv_adm_verdict { KV_ADM_ADMIT, KV_ADM_PROVISIONAL, KV_ADM_REJECT };
/* For a connection just accepted (2). */
enum kv_adm_verdict kv_adm_on_accept(struct kv_adm *a);

/* Why a client request of frame_bytes should be shed now (3), or NULL to admit it; buf
 * (bufsz bytes) may hold the formatted reason. */
const char *kv_adm_shed_reason(struct kv_server *s, size_t frame_bytes, enum kv_shed *kind,
                               char *buf, size_t bufsz);
#define KV_ADM_MIN_INFLIGHT 32u
/* A client request was answered (feeds (4)). */
static inline void kv_adm_on_done(struct kv_adm *a) { a->win_done++; }

/* An accept failed (EMFILE and the like): counted, logged at most once a second. libuv's
 * reserve descriptor already accepts and closes the connection that failed, so the loop
 * does not spin on it. */
void kv_adm_accept_failed(struct kv_server *s, int uv_err);
#endif
