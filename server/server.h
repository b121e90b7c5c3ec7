/* server/server.h -- one kvd node: the libuv loop, its connections, its store and its
 * cluster logic (cluster/, driven through server/cluster_io.c).
 *
 * Threads: the loop thread owns every connection, every kv_req and the kv_cluster; storage
 * threads (the libuv work queue and the store's commit thread) run only the work the
 * cluster handed to its io and give the result back (after_work, or the done queue +
 * uv_async for the commit thread).
 * (1) The loop never blocks on disk: replica reads and scans run on the work queue (io
 *     run), writes go to the commit thread (io store_write).
 * (2) A request in flight holds a reference on its connection, so a client that hangs up
 *     closes the socket but frees nothing until its last request returns.
 * (3) Shutdown stops accepting and reading clients, answers every request already
 *     received (peer connections keep being read meanwhile, so replicas' answers still
 *     arrive), then frees the cluster only once no io completion is outstanding
 *     (cluster.h), then closes connections; the store is closed after the loop ends. */
#ifndef KV_SERVER_SERVER_H
#define KV_SERVER_SERVER_H
#include <pthread.h>
#include <stdbool.h>
#include <uv.h>
#include "common/hlc.h"
#include "proto/arena.h"
#include "proto/kv.pb-c.h"
#include "server/admission.h"
#include "server/config.h"
#include "server/metrics.h"
#include "storage/store.h"

struct kv_conn;
struct kv_req;
struct kv_http;
struct kv_cio;
struct kv_peers;
struct kv_cluster;

/* A completion another thread hands to the loop (kv_server_post_done). */
struct kv_done {
    struct kv_done *next;
    void (*fn)(struct kv_done *d);     /* runs on the loop thread */
};

struct kv_server {
    struct kv_config cfg;
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint;
    uv_async_t done_async;          /* the commit thread's completions arrive here */
    uv_check_t flush_check;         /* writes out what the poll phase produced */
    uv_prepare_t flush_prepare;     /* ... and what timers and idle (self messages) did */
    uv_timer_t stop_timer;          /* polls for in-flight requests to drain on shutdown */
    uv_timer_t stats_timer;         /* refreshes cluster_text for /metrics */
    pthread_mutex_t done_mu;
    struct kv_done *done_head, *done_tail;
    struct kv_store *store;
    struct kv_hlc hlc;
    struct kv_metrics metrics;
    struct kv_http *http;
    struct kv_conn *conns;          /* every open connection */
    struct kv_conn *dirty;          /* connections with output waiting for a flush */
    struct kv_conn *resume;         /* connections to read again (conn.c (6)) */
    uint8_t *read_buf;              /* the loop's shared read buffer (conn.c (5)) */
    struct kv_adm adm;              /* admission control (admission.h) */
    struct kv_cio *cio;             /* the libuv kv_cluster_io (cluster_io.c) */
    struct kv_peers *peers;         /* outbound peer connections (peer.c) */
    struct kv_cluster *cluster;     /* NULL once freed at shutdown */
    struct kv_pb_arena req_arena;   /* the request being handled is decoded here (loop only) */
    uint64_t generation;            /* this start's, persisted in KV_CF_META */
    pthread_mutex_t text_mu;        /* guards cluster_text (the HTTP thread reads it) */
    struct kv_vec cluster_text;     /* cluster/peer metrics, rendered on the loop */
    uint64_t stop_deadline_ns;
    bool stopping, stop_warned, peers_reading;
    _Atomic int healthy;            /* read by the HTTP thread */
};

/* Opens the store, binds the listeners and installs signal handlers on a new loop.
 * On KV_OK the caller runs kv_server_run and then kv_server_destroy. */
enum kv_status kv_server_init(struct kv_server *s, const struct kv_config *cfg,
                              struct kv_err *err);
/* Runs until shutdown completes (a signal or kv_server_stop). */
void kv_server_run(struct kv_server *s);
/* Begins a clean shutdown; loop thread only. */
void kv_server_stop(struct kv_server *s);
void kv_server_destroy(struct kv_server *s);

/* --- used by conn.c and handler.c ------------------------------------------------------ */

/* Queues a frame with resp on c's output (flushed at the end of this loop iteration). */
void kv_conn_reply(struct kv_conn *c, Kv__Response *resp);
/* Answers request id with a bare status and message. */
void kv_conn_reply_status(struct kv_conn *c, uint64_t id, enum kv_status st, const char *msg);
void kv_conn_ref(struct kv_conn *c);
void kv_conn_unref(struct kv_conn *c);
bool kv_conn_is_closing(const struct kv_conn *c);
struct kv_server *kv_conn_server(const struct kv_conn *c);
/* Marks c as a connection another node sends PeerMessages on: it keeps being read during
 * shutdown until kv_conn_stop_reading_all(s, true). */
void kv_conn_mark_peer(struct kv_conn *c);
/* handler.c, for every decoded client request before any work: false when the request was
 * answered OVERLOADED (admission.h (2), (3)) and must be dropped. */
bool kv_conn_admit(struct kv_conn *c, const Kv__Request *msg);
/* Loop thread, at the start of the flush phase: reads again the connections whose
 * requests in flight fell below half their limits (conn.c (6)) and takes a connection
 * whose accept was deferred (conn.c (8)). */
void kv_conn_resume_all(struct kv_server *s);
/* Closes connections past header_timeout_ms or idle_timeout_ms (conn.c (7)). */
void kv_conn_sweep(struct kv_server *s, uint64_t now_ns);
/* Stops reading c and closes it once its queued output is written. */
void kv_conn_close_after_flush(struct kv_conn *c);
/* Starts serving an accepted connection. */
void kv_conn_accept(struct kv_server *s);
/* Writes out every dirty connection's output. */
void kv_conn_flush_all(struct kv_server *s);
/* Shutdown: stop reading every client connection (and peer ones too with peers); then
 * close them all. */
void kv_conn_stop_reading_all(struct kv_server *s, bool peers);
void kv_conn_close_all(struct kv_server *s);
bool kv_conn_all_flushed(const struct kv_server *s);

/* handler.c: one decoded frame's payload, answered now or later through kv_conn_reply
 * (a PeerMessage goes to the cluster and is never answered). */
void kv_handle_frame(struct kv_conn *c, struct kv_slice payload);
/* handler.c: why a scan request is refused before the cluster sees it (NULL: accepted;
 * buf, bufsz bytes, may hold the formatted reason). On NULL *after is where the scan
 * resumes, strictly after a cursor's key but never before start; empty without a cursor.
 * Pure (no connection, no I/O), so tests/fuzz/scan.c drives it on hostile requests. */
const char *kv_handler_scan_refusal(const struct kv_config *cfg, const Kv__ScanRequest *q,
                                    struct kv_slice *after, char *buf, size_t bufsz);
/* Hands d to the loop thread, which runs d->fn(d) soon. Thread-safe (the commit thread
 * uses it); also usable on the loop thread to defer a call. */
void kv_server_post_done(struct kv_server *s, struct kv_done *d);
/* Loop thread: runs every completion posted with kv_server_post_done so far. */
void kv_server_drain_done(struct kv_server *s);
#endif
