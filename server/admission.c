/* server/admission.c -- node-wide admission decisions (admission.h). */
#include "server/admission.h"
#include <stdio.h>
#include <sys/resource.h>
#include "common/clock.h"
#include "common/log.h"
#include "proto/codec.h"
#include "server/conn_internal.h"

/* Descriptors kvd needs besides client connections: RocksDB's files and WAL, the listeners,
 * outbound peer connections, the HTTP server, libuv's own. */
#define OWN_FDS 512u

enum kv_status kv_adm_init(struct kv_adm *a, struct kv_server *s, struct kv_err *err)
{
    const struct kv_config *cfg = &s->cfg;
    a->max_connections = cfg->max_connections;
    a->peer_reserve = cfg->peer_reserved_connections;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return KV_OK;   /* nothing to check against */
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    uint64_t need = (uint64_t)cfg->max_connections + cfg->peer_reserved_connections + OWN_FDS;
    if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
        uint64_t room = rl.rlim_cur > (uint64_t)cfg->peer_reserved_connections + OWN_FDS
                            ? rl.rlim_cur - cfg->peer_reserved_connections - OWN_FDS
                            : 0;
        if (room == 0)
            return kv_err_set(err, KV_INVALID,
                              "RLIMIT_NOFILE is %llu: no room for client connections beside "
                              "peer_reserved_connections (%u) and %u descriptors of the node's "
                              "own; raise the limit (ulimit -n)",
                              (unsigned long long)rl.rlim_cur, cfg->peer_reserved_connections,
                              OWN_FDS);
        KV_WARN("max_connections %u does not fit RLIMIT_NOFILE %llu (with %u reserved for "
                "peers and %u for the node's own files): using %llu; raise ulimit -n to "
                "allow more",
                cfg->max_connections, (unsigned long long)rl.rlim_cur,
                cfg->peer_reserved_connections, OWN_FDS, (unsigned long long)room);
        a->max_connections = (uint32_t)room;
    }
    return KV_OK;
}

/* Busy time of the iteration that just ended: wall time since the last prepare minus the
 * time the loop spent blocked in poll. A request that arrives while the loop is busy waits
 * about that long before it is read, so this is the queueing delay the loop adds. */
static void on_lag_prepare(uv_prepare_t *h)
{
    struct kv_server *s = h->data;
    struct kv_adm *a = &s->adm;
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(s->loop);
    if (a->last_ns) {
        uint64_t wall = now - a->last_ns, waited = idle - a->last_idle_ns;
        uint64_t busy = wall > waited ? wall - waited : 0;
        a->lag_ewma_ns = (a->lag_ewma_ns * 7 + busy) / 8;
        atomic_store_explicit(&s->metrics.loop_lag_us, a->lag_ewma_ns / 1000,
                              memory_order_relaxed);
    }
    a->last_ns = now;
    a->last_idle_ns = idle;
}

static void on_sweep(uv_timer_t *t)
{
    struct kv_server *s = t->data;
    kv_conn_sweep(s, kv_clock_mono_ns());
}

void kv_adm_start(struct kv_adm *a, struct kv_server *s)
{
    /* Idle-time accounting must be enabled before the loop runs; it costs a clock read per
     * poll. Without it (an error here) busy time reads as wall time, so the lag probe is
     * only used when overload_loop_lag_ms asks for it. */
    if (s->cfg.overload_loop_lag_ms && uv_loop_configure(s->loop, UV_METRICS_IDLE_TIME) != 0)
        KV_WARN("cannot measure loop idle time: overload_loop_lag_ms is ignored");
    uv_prepare_init(s->loop, &a->lag_prepare);
    a->lag_prepare.data = s;
    if (s->cfg.overload_loop_lag_ms)
        uv_prepare_start(&a->lag_prepare, on_lag_prepare);
    uv_timer_init(s->loop, &a->sweep_timer);
    a->sweep_timer.data = s;
    uint64_t every = s->cfg.header_timeout_ms / 4;
    uint32_t idle = s->cfg.idle_timeout_ms;
    if (idle && idle / 4 < every)
        every = idle / 4;
    if (every < 10)
        every = 10;
    if (every > 1000)
        every = 1000;
    uv_timer_start(&a->sweep_timer, on_sweep, every, every);
    uv_timer_init(s->loop, &a->kick);
    a->started = true;
}

static void on_kick(uv_timer_t *t) { (void)t; }   /* the flush phase does the work */

void kv_adm_kick(struct kv_adm *a)
{
    if (a->started && !uv_is_active((uv_handle_t *)&a->kick))
        uv_timer_start(&a->kick, on_kick, 0, 0);
}

void kv_adm_close(struct kv_adm *a)
{
    if (!a->started)
        return;
    a->started = false;
    uv_close((uv_handle_t *)&a->lag_prepare, NULL);
    uv_close((uv_handle_t *)&a->sweep_timer, NULL);
    uv_close((uv_handle_t *)&a->kick, NULL);
}

enum kv_adm_verdict kv_adm_on_accept(struct kv_adm *a)
{
    if (a->clients_open < a->max_connections)
        return KV_ADM_ADMIT;
    return a->provisional_open < a->peer_reserve ? KV_ADM_PROVISIONAL : KV_ADM_REJECT;
}

#define WINDOW_NS 100000000u

/* (4): closes the window when it is over; a busy window updates the capacity estimate. */
static void update_rate(struct kv_adm *a, uint64_t inflight)
{
    uint64_t now = kv_clock_mono_ns();
    if (!a->win_start_ns || now - a->win_start_ns < WINDOW_NS) {
        if (!a->win_start_ns) {
            a->win_start_ns = now;
            a->win_start_inflight = inflight;
            a->win_done = 0;
        }
        return;
    }
    if (a->win_start_inflight >= KV_ADM_MIN_INFLIGHT / 4 && inflight >= KV_ADM_MIN_INFLIGHT / 4 &&
        a->win_done > 0) {
        a->win_rates[a->win_next++ % KV_ADM_WINDOWS] =
            (double)a->win_done * 1e9 / (double)(now - a->win_start_ns);
        a->rate_per_s = 0;
        for (unsigned i = 0; i < KV_ADM_WINDOWS; i++)
            if (a->win_rates[i] > a->rate_per_s)
                a->rate_per_s = a->win_rates[i];
    }
    a->win_start_ns = now;
    a->win_start_inflight = inflight;
    a->win_done = 0;
}

const char *kv_adm_shed_reason(struct kv_server *s, size_t frame_bytes, enum kv_shed *kind,
                               char *buf, size_t bufsz)
{
    const struct kv_config *cfg = &s->cfg;
    struct kv_adm *a = &s->adm;
    uint64_t inflight = atomic_load_explicit(&s->metrics.inflight, memory_order_relaxed);
    update_rate(a, inflight);
    if (cfg->overload_queue_ms && a->rate_per_s > 0 && inflight >= KV_ADM_MIN_INFLIGHT) {
        double allowed = a->rate_per_s * cfg->overload_queue_ms / 1000.0;
        if ((double)inflight > allowed) {
            *kind = KV_SHED_QUEUE;
            snprintf(buf, bufsz, "node overloaded: %llu requests in flight, more than it "
                     "completes in overload_queue_ms (%u ms)", (unsigned long long)inflight,
                     cfg->overload_queue_ms);
            return buf;
        }
    }
    if (cfg->max_node_inflight_requests && inflight >= cfg->max_node_inflight_requests) {
        *kind = KV_SHED_REQUESTS;
        snprintf(buf, bufsz, "node overloaded: %llu requests in flight "
                 "(max_node_inflight_requests %u)", (unsigned long long)inflight,
                 cfg->max_node_inflight_requests);
        return buf;
    }
    if (s->adm.inflight_bytes + frame_bytes > cfg->max_node_inflight_bytes &&
        s->adm.inflight_bytes > 0) {
        *kind = KV_SHED_BYTES;
        snprintf(buf, bufsz, "node overloaded: %llu request bytes in flight "
                 "(max_node_inflight_bytes %llu)", (unsigned long long)s->adm.inflight_bytes,
                 (unsigned long long)cfg->max_node_inflight_bytes);
        return buf;
    }
    if (cfg->overload_loop_lag_ms &&
        s->adm.lag_ewma_ns > (uint64_t)cfg->overload_loop_lag_ms * 1000000u) {
        *kind = KV_SHED_LOOP_LAG;
        snprintf(buf, bufsz, "node overloaded: event loop busy %.1f ms per iteration "
                 "(overload_loop_lag_ms %u)", (double)s->adm.lag_ewma_ns / 1e6,
                 cfg->overload_loop_lag_ms);
        return buf;
    }
    return NULL;
}

void kv_adm_accept_failed(struct kv_server *s, int uv_err)
{
    kv_metrics_add(&s->metrics.accept_errors, 1);
    uint64_t now = kv_clock_mono_ns();
    if (now - s->adm.last_accept_warn_ns >= 1000000000u || !s->adm.last_accept_warn_ns) {
        s->adm.last_accept_warn_ns = now;
        KV_WARN("accept failed: %s (kvd_accept_errors_total counts them; this is logged at "
                "most once a second)", uv_strerror(uv_err));
    }
}

/* --- per connection (conn_internal.h) ------------------------------------------------------ */

void kv__adm_charge(struct kv_conn *c, size_t n, bool add)
{
    struct kv_server *s = c->srv;
    if (add) {
        c->inflight_bytes += n;
        s->adm.inflight_bytes += n;
        kv_metrics_add(&s->metrics.inflight_bytes, n);
    } else {
        c->inflight_bytes -= n;
        s->adm.inflight_bytes -= n;
        kv_metrics_add(&s->metrics.inflight_bytes, (uint64_t)0 - n);
    }
}

/* (3), (6): the limits that hold a connection's input back, and when to let it go. */
bool kv__conn_input_full(const struct kv_conn *c, bool *output)
{
    const struct kv_config *cfg = &c->srv->cfg;
    *output = kv__conn_pending_out(c) > (size_t)cfg->max_output_mb << 20;
    return *output || (!c->peer && (c->inflight_bytes >= cfg->max_conn_inflight_bytes ||
                                    (unsigned)c->reqs >= cfg->max_conn_inflight_requests));
}

bool kv__conn_input_low(const struct kv_conn *c)
{
    const struct kv_config *cfg = &c->srv->cfg;
    return kv__conn_pending_out(c) < ((size_t)cfg->max_output_mb << 20) / 2 &&
           (c->reqs == 0 || (c->inflight_bytes <= cfg->max_conn_inflight_bytes / 2 &&
                             (unsigned)c->reqs <= cfg->max_conn_inflight_requests / 2));
}

/* An OVERLOADED answer with retry_after_ms. */
static void reply_overloaded(struct kv_conn *c, uint64_t id, uint32_t retry_ms, const char *msg)
{
    Kv__Response r = KV__RESPONSE__INIT;
    r.id = id;
    r.status = kv_codec_status_to_wire(KV_AGAIN);
    r.message = (char *)msg;
    r.retry_after_ms = retry_ms;
    kv_conn_reply(c, &r);
}

/* admission.h (2): one OVERLOADED frame, written only if the socket takes it at once, then
 * the close. Nothing else is allocated for the connection. */
void kv__adm_reject(struct kv_conn *c)
{
    struct kv_server *s = c->srv;
    char msg[160];
    snprintf(msg, sizeof msg, "connection limit reached: %u client connections are open "
             "(max_connections); retry later or use another node", s->adm.max_connections);
    Kv__Response r = KV__RESPONSE__INIT;
    r.status = kv_codec_status_to_wire(KV_AGAIN);
    r.message = msg;
    r.retry_after_ms = s->cfg.overload_retry_after_ms;
    struct kv_vec v = {0};
    if (kv_codec_frame_append(&v, &r.base, s->cfg.max_frame, NULL) == KV_OK) {
        uv_buf_t b = uv_buf_init((char *)v.ptr, (unsigned)v.len);
        (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    kv_vec_free(&v);
    kv_metrics_add(&s->metrics.conns_rejected, 1);
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, kv__conn_on_close);
}

void kv_conn_mark_peer(struct kv_conn *c)
{
    if (c->peer)
        return;
    c->peer = true;
    struct kv_server *s = c->srv;
    if (c->provisional) {
        c->provisional = false;
        s->adm.provisional_open--;
    } else {
        s->adm.clients_open--;
        kv_metrics_add(&s->metrics.client_conns_open, (uint64_t)-1);
    }
}

bool kv_conn_admit(struct kv_conn *c, const Kv__Request *msg)
{
    struct kv_server *s = c->srv;
    if (c->peer)
        return true;
    char buf[192];
    if (c->provisional) {
        /* admission.h (2): the reserve is for peer nodes only. */
        snprintf(buf, sizeof buf, "connection limit reached: %u client connections are open "
                 "(max_connections); retry later or use another node", s->adm.max_connections);
        kv_metrics_add(&s->metrics.conns_rejected, 1);
        reply_overloaded(c, msg->id, s->cfg.overload_retry_after_ms, buf);
        kv_conn_close_after_flush(c);
        return false;
    }
    if (msg->op_case == KV__REQUEST__OP_CLUSTER_STATUS)
        return true;
    enum kv_shed kind;
    const char *why = kv_adm_shed_reason(s, c->cur_frame, &kind, buf, sizeof buf);
    if (!why)
        return true;
    kv_metrics_add(&s->metrics.shed[kind], 1);
    reply_overloaded(c, msg->id, s->cfg.overload_retry_after_ms, why);
    return false;
}

void kv_conn_sweep(struct kv_server *s, uint64_t now)
{
    uint64_t hdr = (uint64_t)s->cfg.header_timeout_ms * 1000000u;
    uint64_t idle = (uint64_t)s->cfg.idle_timeout_ms * 1000000u;
    struct kv_conn *next;
    for (struct kv_conn *c = s->conns; c; c = next) {
        next = c->next;
        if (c->closing || c->close_after_flush)
            continue;
        char msg[128];
        if ((c->frame_start_ns && c->reading && now - c->frame_start_ns > hdr) ||
            (c->provisional && now - c->accepted_ns > hdr)) {
            /* conn.c (7). Best effort: the reason goes out if the socket takes it now. */
            kv_metrics_add(&s->metrics.conns_header_timeout, 1);
            snprintf(msg, sizeof msg, "incomplete frame held longer than header_timeout_ms "
                     "(%u ms): closing", s->cfg.header_timeout_ms);
            kv_conn_reply_status(c, 0, KV_TIMEOUT, msg);
            kv__conn_flush(c);
            kv__conn_close(c);
        } else if (idle && !c->peer && c->reqs == 0 && kv__conn_pending_out(c) == 0 &&
                   now - c->active_ns > idle) {
            kv_metrics_add(&s->metrics.conns_idle_timeout, 1);
            kv__conn_close(c);
        }
    }
}

