/* server/metrics.h -- counters and latency histograms, rendered as Prometheus text.
 *
 * (1) Recording is lock-free (relaxed atomics) so any thread may record while the HTTP
 *     thread renders; a rendered snapshot may be a few events inconsistent, never torn.
 * (2) Histogram buckets are fixed (seconds, log-spaced from 50 us to 10 s) so that every
 *     node's histograms aggregate with each other. */
#ifndef KV_SERVER_METRICS_H
#define KV_SERVER_METRICS_H
#include <stdatomic.h>
#include <stdint.h>
#include "common/buf.h"
#include "common/status.h"

enum kv_op { KV_OP_GET, KV_OP_PUT, KV_OP_DELETE, KV_OP_SCAN, KV_OP_CAS, KV_OP_COUNT };
const char *kv_op_name(enum kv_op op);

#define KV_HIST_BUCKETS 18
/* Status classes counted per operation: the wire statuses that clients act on. */
#define KV_METRIC_STATUSES 14
/* Consistency levels a latency is recorded under (Kv__Consistency values). */
#define KV_METRIC_LEVELS 10

struct kv_hist {
    _Atomic uint64_t buckets[KV_HIST_BUCKETS + 1];   /* last: above the largest bound */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
};

struct kv_metrics {
    struct kv_hist latency[KV_OP_COUNT];
    struct kv_hist latency_level[KV_OP_COUNT][KV_METRIC_LEVELS];  /* resolved level */
    _Atomic uint64_t requests[KV_OP_COUNT][KV_METRIC_STATUSES];  /* index: -status */
    _Atomic uint64_t conns_open;
    _Atomic uint64_t conns_total;
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t bytes_out;
    _Atomic uint64_t frames_malformed;   /* checksum or protobuf failures */
    _Atomic uint64_t frames_too_large;
    _Atomic uint64_t requests_invalid;   /* decoded, but refused before reaching an operation */
    _Atomic uint64_t peer_msgs_in;       /* PeerMessages received from other nodes */
    _Atomic uint64_t self_msgs;          /* PeerMessages the node sent to itself */
    _Atomic uint64_t io_runs;            /* cluster work run on storage threads */
    _Atomic uint64_t io_writes;          /* cluster record batches written */
    _Atomic uint64_t io_pending;         /* of both, not completed yet */
    _Atomic uint64_t cluster_status_reqs;
    _Atomic uint64_t conns_paused;       /* times a connection stopped reading (output full) */
    _Atomic uint64_t inflight;
    /* admission control (admission.h) */
    _Atomic uint64_t client_conns_open;  /* gauge: connections not known to be peers */
    _Atomic uint64_t conns_max;          /* gauge: the effective max_connections */
    _Atomic uint64_t conns_rejected;     /* over max_connections: OVERLOADED and closed */
    _Atomic uint64_t conns_header_timeout; /* closed holding a partial frame too long */
    _Atomic uint64_t conns_idle_timeout; /* closed after idle_timeout_ms */
    _Atomic uint64_t accept_errors;      /* accept(2) failed (EMFILE, ENFILE, ...) */
    _Atomic uint64_t conns_inflight_paused; /* times a connection stopped reading: its
                                             * requests in flight hold too many bytes */
    _Atomic uint64_t inflight_bytes;     /* gauge: request bytes awaiting answers */
    _Atomic uint64_t shed[4];            /* OVERLOADED answers, by signal (enum kv_shed) */
    _Atomic uint64_t loop_lag_us;        /* gauge: smoothed busy time per loop iteration */
};

/* Why a request was shed: the index of kv_metrics.shed. */
enum kv_shed { KV_SHED_REQUESTS, KV_SHED_BYTES, KV_SHED_LOOP_LAG, KV_SHED_QUEUE };

void kv_metrics_init(struct kv_metrics *m);
/* Counts a request of op answered with s after ns; level (a Kv__Consistency value, already
 * resolved from DEFAULT) also files the latency under that level. */
void kv_metrics_record(struct kv_metrics *m, enum kv_op op, unsigned level, enum kv_status s,
                       uint64_t ns);
static inline void kv_metrics_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}
/* Appends the Prometheus text exposition to out; -1 when out of memory. */
int kv_metrics_render(struct kv_metrics *m, struct kv_vec *out);
#endif
