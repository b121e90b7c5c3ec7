/* server/metrics.c -- metric recording and the Prometheus text exposition format. */
#include "server/metrics.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "server/config.h"

static const double g_bounds[KV_HIST_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

const char *kv_op_name(enum kv_op op)
{
    static const char *const names[] = {"get", "put", "delete", "scan", "cas"};
    return (unsigned)op < KV_OP_COUNT ? names[op] : "unknown";
}

void kv_metrics_init(struct kv_metrics *m) { memset(m, 0, sizeof *m); }

static void hist_add(struct kv_hist *h, uint64_t ns)
{
    double sec = (double)ns / 1e9;
    int b = 0;
    while (b < KV_HIST_BUCKETS && sec > g_bounds[b])
        b++;
    kv_metrics_add(&h->buckets[b], 1);
    kv_metrics_add(&h->count, 1);
    kv_metrics_add(&h->sum_ns, ns);
}

void kv_metrics_record(struct kv_metrics *m, enum kv_op op, unsigned level, enum kv_status s,
                       uint64_t ns)
{
    if ((unsigned)op >= KV_OP_COUNT)
        return;
    unsigned idx = (unsigned)(-(int)s);
    if (idx >= KV_METRIC_STATUSES)
        idx = (unsigned)(-(int)KV_INTERNAL);
    kv_metrics_add(&m->requests[op][idx], 1);
    hist_add(&m->latency[op], ns);
    if (level < KV_METRIC_LEVELS)
        hist_add(&m->latency_level[op][level], ns);
}

static int emit(struct kv_vec *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int emit(struct kv_vec *out, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    return kv_vec_append(out, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static uint64_t ld(_Atomic uint64_t *c) { return atomic_load_explicit(c, memory_order_relaxed); }

static int render_counter(struct kv_vec *out, const char *name, const char *help,
                          const char *type, _Atomic uint64_t *c)
{
    return emit(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                (unsigned long long)ld(c));
}

int kv_metrics_render(struct kv_metrics *m, struct kv_vec *out)
{
    int rc = 0;
    rc |= emit(out, "# HELP kvd_requests_total Requests answered, by operation and status.\n"
                    "# TYPE kvd_requests_total counter\n");
    for (int op = 0; op < KV_OP_COUNT; op++)
        for (int s = 0; s < KV_METRIC_STATUSES; s++) {
            uint64_t v = ld(&m->requests[op][s]);
            if (v || s == 0)
                rc |= emit(out, "kvd_requests_total{op=\"%s\",status=\"%s\"} %llu\n",
                           kv_op_name((enum kv_op)op), kv_status_name((enum kv_status)-s),
                           (unsigned long long)v);
        }
    rc |= emit(out, "# HELP kvd_request_duration_seconds Request latency on this node.\n"
                    "# TYPE kvd_request_duration_seconds histogram\n");
    for (int op = 0; op < KV_OP_COUNT; op++) {
        struct kv_hist *h = &m->latency[op];
        const char *name = kv_op_name((enum kv_op)op);
        uint64_t cum = 0;
        for (int b = 0; b < KV_HIST_BUCKETS; b++) {
            cum += ld(&h->buckets[b]);
            rc |= emit(out, "kvd_request_duration_seconds_bucket{op=\"%s\",le=\"%g\"} %llu\n",
                       name, g_bounds[b], (unsigned long long)cum);
        }
        cum += ld(&h->buckets[KV_HIST_BUCKETS]);
        rc |= emit(out, "kvd_request_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n",
                   name, (unsigned long long)cum);
        rc |= emit(out, "kvd_request_duration_seconds_sum{op=\"%s\"} %.9f\n", name,
                   (double)ld(&h->sum_ns) / 1e9);
        rc |= emit(out, "kvd_request_duration_seconds_count{op=\"%s\"} %llu\n", name,
                   (unsigned long long)cum);
    }
    rc |= emit(out, "# HELP kvd_request_level_duration_seconds Request latency on this node, "
                    "by operation and consistency level (levels used so far).\n"
                    "# TYPE kvd_request_level_duration_seconds histogram\n");
    for (int op = 0; op < KV_OP_COUNT; op++)
        for (unsigned l = 0; l < KV_METRIC_LEVELS; l++) {
            struct kv_hist *h = &m->latency_level[op][l];
            if (!ld(&h->count))
                continue;
            const char *name = kv_op_name((enum kv_op)op), *lv = kv_config_level_name(l);
            uint64_t cum = 0;
            for (int b = 0; b < KV_HIST_BUCKETS; b++) {
                cum += ld(&h->buckets[b]);
                rc |= emit(out, "kvd_request_level_duration_seconds_bucket{op=\"%s\","
                                "level=\"%s\",le=\"%g\"} %llu\n",
                           name, lv, g_bounds[b], (unsigned long long)cum);
            }
            cum += ld(&h->buckets[KV_HIST_BUCKETS]);
            rc |= emit(out, "kvd_request_level_duration_seconds_bucket{op=\"%s\",level=\"%s\","
                            "le=\"+Inf\"} %llu\n", name, lv, (unsigned long long)cum);
            rc |= emit(out, "kvd_request_level_duration_seconds_sum{op=\"%s\",level=\"%s\"} "
                            "%.9f\n", name, lv, (double)ld(&h->sum_ns) / 1e9);
            rc |= emit(out, "kvd_request_level_duration_seconds_count{op=\"%s\",level=\"%s\"} "
                            "%llu\n", name, lv, (unsigned long long)cum);
        }
    rc |= render_counter(out, "kvd_connections_open", "Client connections open now.", "gauge",
                         &m->conns_open);
    rc |= render_counter(out, "kvd_connections_total", "Client connections accepted.", "counter",
                         &m->conns_total);
    rc |= render_counter(out, "kvd_received_bytes_total", "Bytes read from clients.", "counter",
                         &m->bytes_in);
    rc |= render_counter(out, "kvd_sent_bytes_total", "Bytes written to clients.", "counter",
                         &m->bytes_out);
    rc |= render_counter(out, "kvd_frames_malformed_total",
                         "Frames refused for a bad checksum or protobuf.", "counter",
                         &m->frames_malformed);
    rc |= render_counter(out, "kvd_frames_too_large_total", "Frames refused over max_frame.",
                         "counter", &m->frames_too_large);
    rc |= render_counter(out, "kvd_requests_invalid_total",
                         "Requests refused before reaching an operation.", "counter",
                         &m->requests_invalid);
    rc |= render_counter(out, "kvd_peer_messages_received_total",
                         "Node-to-node messages received from other nodes.", "counter",
                         &m->peer_msgs_in);
    rc |= render_counter(out, "kvd_peer_messages_self_total",
                         "Node-to-node messages this node sent to itself (delivered locally).",
                         "counter", &m->self_msgs);
    rc |= render_counter(out, "kvd_io_runs_total",
                         "Cluster storage work (replica reads, scans, hints) run off the loop.",
                         "counter", &m->io_runs);
    rc |= render_counter(out, "kvd_io_writes_total",
                         "Record batches the cluster layer wrote to the local store.", "counter",
                         &m->io_writes);
    rc |= render_counter(out, "kvd_io_pending", "Cluster storage work not completed yet.",
                         "gauge", &m->io_pending);
    rc |= render_counter(out, "kvd_cluster_status_requests_total",
                         "cluster_status requests answered (kvctl status, client ring refresh).",
                         "counter", &m->cluster_status_reqs);
    rc |= render_counter(out, "kvd_connection_pauses_total",
                         "Times a connection stopped being read because its output was full.",
                         "counter", &m->conns_paused);
    rc |= render_counter(out, "kvd_requests_inflight", "Requests received and not yet answered.",
                         "gauge", &m->inflight);
    rc |= render_counter(out, "kvd_client_connections_open",
                         "Open connections not known to be peer nodes (counted against "
                         "max_connections).", "gauge", &m->client_conns_open);
    rc |= render_counter(out, "kvd_connections_max",
                         "The effective max_connections (lowered when RLIMIT_NOFILE is short).",
                         "gauge", &m->conns_max);
    rc |= render_counter(out, "kvd_connections_rejected_total",
                         "Connections refused over max_connections (answered OVERLOADED and "
                         "closed).", "counter", &m->conns_rejected);
    rc |= render_counter(out, "kvd_connections_header_timeout_total",
                         "Connections closed for holding an incomplete frame longer than "
                         "header_timeout_ms.", "counter", &m->conns_header_timeout);
    rc |= render_counter(out, "kvd_connections_idle_timeout_total",
                         "Client connections closed after idle_timeout_ms.", "counter",
                         &m->conns_idle_timeout);
    rc |= render_counter(out, "kvd_accept_errors_total",
                         "Failed accepts (EMFILE, ENFILE, ...).", "counter", &m->accept_errors);
    rc |= render_counter(out, "kvd_connection_inflight_pauses_total",
                         "Times a connection stopped being read because its requests in "
                         "flight held max_conn_inflight_bytes.", "counter",
                         &m->conns_inflight_paused);
    rc |= render_counter(out, "kvd_inflight_request_bytes",
                         "Request bytes read and not yet answered.", "gauge",
                         &m->inflight_bytes);
    rc |= render_counter(out, "kvd_loop_lag_microseconds",
                         "Smoothed busy time of one event-loop iteration (measured while "
                         "overload_loop_lag_ms is set).", "gauge", &m->loop_lag_us);
    static const char *const why[] = {"requests", "bytes", "loop_lag", "queue"};
    rc |= emit(out, "# HELP kvd_requests_shed_total Requests answered OVERLOADED, by the limit "
                    "that fired.\n# TYPE kvd_requests_shed_total counter\n");
    for (int i = 0; i < 4; i++)
        rc |= emit(out, "kvd_requests_shed_total{limit=\"%s\"} %llu\n", why[i],
                   (unsigned long long)ld(&m->shed[i]));
    return rc ? -1 : 0;
}
