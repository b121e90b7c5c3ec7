/* server/server.h -- one kvd node: the libuv loop, its connections and its store.
 *
 * Threads: the loop thread owns every connection and every kv_req; storage threads (the
 * libuv work queue and the store's commit thread) only touch the kv_req they were given
 * and hand it back (after_work or the done queue + uv_async).
 * (1) The loop never blocks on disk: point reads are tried from memory only
 *     (KV_STORE_CACHE_ONLY) and otherwise offloaded; writes go to the commit thread.
 * (2) A request in flight holds a reference on its connection, so a client that hangs up
 *     closes the socket but frees nothing until its last request returns.
 * (3) Shutdown stops accepting and reading, answers every request already received, then
 *     closes connections and the store (bounded by shutdown_timeout_ms). */
#ifndef KV_SERVER_SERVER_H
#define KV_SERVER_SERVER_H
#include <pthread.h>
#include <stdbool.h>
#include <uv.h>
#include "common/hlc.h"
#include "proto/kv.pb-c.h"
#include "server/config.h"
#include "server/metrics.h"
#include "storage/store.h"

struct kv_conn;
struct kv_req;
struct kv_http;

struct kv_server {
    struct kv_config cfg;
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint;
    uv_async_t done_async;          /* the commit thread's completions arrive here */
    uv_check_t flush_check;         /* writes out what one loop iteration produced */
    uv_timer_t stop_timer;          /* polls for in-flight requests to drain on shutdown */
    pthread_mutex_t done_mu;
    struct kv_req *done_head, *done_tail;
    struct kv_store *store;
    struct kv_hlc hlc;
    struct kv_metrics metrics;
    struct kv_http *http;
    struct kv_conn *conns;          /* every open connection */
    struct kv_conn *dirty;          /* connections with output waiting for flush_check */
    uint64_t stop_deadline_ns;
    bool stopping;
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
/* Stops reading c and closes it once its queued output is written. */
void kv_conn_close_after_flush(struct kv_conn *c);
/* Starts serving an accepted connection. */
void kv_conn_accept(struct kv_server *s);
/* Writes out every dirty connection's output. */
void kv_conn_flush_all(struct kv_server *s);
/* Shutdown: stop reading every connection; then close them all. */
void kv_conn_stop_reading_all(struct kv_server *s);
void kv_conn_close_all(struct kv_server *s);
bool kv_conn_all_flushed(const struct kv_server *s);

/* handler.c: one decoded frame's payload, answered now or later through kv_conn_reply. */
void kv_handle_frame(struct kv_conn *c, struct kv_slice payload);
/* handler.c: finishes a request that came back from a storage thread. */
void kv_req_complete(struct kv_req *r);
/* The commit thread hands a finished write back to the loop. Thread-safe. */
void kv_server_post_done(struct kv_server *s, struct kv_req *r);
/* Loop thread: completes every request posted with kv_server_post_done. */
void kv_handler_drain_done(struct kv_server *s);
#endif
