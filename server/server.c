/* server/server.c -- node lifecycle: start-up, the loop's shared handles, clean shutdown.
 *
 * (1) The store is opened before any socket is bound and closed only after the loop has
 *     ended, so no request can reach a closed store.
 * (2) Shutdown order: stop accepting and reading; wait (bounded) until no request is in
 *     flight and all output is written; close connections, handles and the HTTP thread. */
#include "server/server.h"
#include <stdlib.h>
#include <string.h>
#include "common/addr.h"
#include "common/clock.h"
#include "common/log.h"
#include "server/http.h"

static void on_done_async(uv_async_t *a) { kv_handler_drain_done(a->data); }

static void on_flush_check(uv_check_t *h) { kv_conn_flush_all(h->data); }

static void on_connection(uv_stream_t *l, int status)
{
    struct kv_server *s = l->data;
    if (status < 0) {
        KV_WARN("accept failed: %s", uv_strerror(status));
        return;
    }
    kv_conn_accept(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    KV_INFO("signal %d: shutting down", signum);
    kv_server_stop(h->data);
}

static void close_handles(struct kv_server *s)
{
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->flush_check, NULL);
    uv_close((uv_handle_t *)&s->stop_timer, NULL);
    uv_close((uv_handle_t *)&s->done_async, NULL);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct kv_server *s = t->data;
    kv_handler_drain_done(s);
    kv_conn_flush_all(s);
    uint64_t inflight = atomic_load(&s->metrics.inflight);
    bool drained = inflight == 0 && kv_conn_all_flushed(s);
    if (!drained && kv_clock_mono_ns() < s->stop_deadline_ns)
        return;
    if (!drained)
        KV_WARN("shutdown: %llu requests still in flight after %u ms; closing anyway",
                (unsigned long long)inflight, s->cfg.shutdown_timeout_ms);
    uv_timer_stop(t);
    kv_conn_close_all(s);
    if (inflight == 0) {
        close_handles(s);
        return;
    }
    /* Storage threads still hold requests: keep the async handle until they return. */
    uv_timer_start(t, on_stop_timer, 10, 10);
    s->stop_deadline_ns = UINT64_MAX;
}

void kv_server_stop(struct kv_server *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    atomic_store(&s->healthy, 0);
    uv_close((uv_handle_t *)&s->listener, NULL);
    kv_conn_stop_reading_all(s);
    s->stop_deadline_ns = kv_clock_mono_ns() + (uint64_t)s->cfg.shutdown_timeout_ms * 1000000u;
    uv_timer_start(&s->stop_timer, on_stop_timer, 0, 5);
}

static enum kv_status listen_on(struct kv_server *s, struct kv_err *err)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    enum kv_status st = kv_addr_parse(s->cfg.listen, &sa, &salen, err);
    if (st != KV_OK)
        return st;
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc != 0) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        return kv_err_set(err, KV_IOERR, "cannot listen on %s: %s", s->cfg.listen,
                          uv_strerror(rc));
    }
    return KV_OK;
}

enum kv_status kv_server_init(struct kv_server *s, const struct kv_config *cfg,
                              struct kv_err *err)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    kv_hlc_init(&s->hlc);
    kv_metrics_init(&s->metrics);
    pthread_mutex_init(&s->done_mu, NULL);

    struct kv_store_opts so;
    kv_store_opts_default(&so);
    so.path = cfg->data_dir;
    so.sync = cfg->sync;
    so.batch_delay_us = cfg->batch_delay_us;
    so.grace_ms = cfg->tombstone_grace_s * 1000;
    so.block_cache_bytes = (size_t)cfg->block_cache_mb << 20;
    enum kv_status st = kv_store_open(&so, &s->store, err);
    if (st != KV_OK)
        return st;

    s->loop = malloc(sizeof *s->loop);
    if (!s->loop || uv_loop_init(s->loop) != 0) {
        free(s->loop);
        s->loop = NULL;
        kv_store_close(s->store);
        s->store = NULL;
        return kv_err_set(err, KV_INTERNAL, "cannot create the event loop");
    }
    uv_async_init(s->loop, &s->done_async, on_done_async);
    s->done_async.data = s;
    uv_check_init(s->loop, &s->flush_check);
    s->flush_check.data = s;
    uv_check_start(&s->flush_check, on_flush_check);
    uv_timer_init(s->loop, &s->stop_timer);
    s->stop_timer.data = s;
    uv_signal_init(s->loop, &s->sigterm);
    s->sigterm.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_init(s->loop, &s->sigint);
    s->sigint.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);

    st = listen_on(s, err);
    if (st == KV_OK && strcmp(cfg->http, "off") != 0 && cfg->http[0])
        st = kv_http_start(s, cfg->http, &s->http, err);
    if (st != KV_OK) {
        if (!uv_is_closing((uv_handle_t *)&s->listener) && s->listener.loop)
            uv_close((uv_handle_t *)&s->listener, NULL);
        close_handles(s);
        uv_run(s->loop, UV_RUN_DEFAULT);
        kv_server_destroy(s);
        return st;
    }
    atomic_store(&s->healthy, 1);
    return KV_OK;
}

void kv_server_run(struct kv_server *s) { uv_run(s->loop, UV_RUN_DEFAULT); }

void kv_server_destroy(struct kv_server *s)
{
    kv_http_stop(s->http);
    s->http = NULL;
    if (s->loop) {
        uv_loop_close(s->loop);
        free(s->loop);
        s->loop = NULL;
    }
    kv_store_close(s->store);
    s->store = NULL;
    pthread_mutex_destroy(&s->done_mu);
}
