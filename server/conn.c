/* server/conn.c -- one inbound connection (a client's, or a peer node's sending
 * PeerMessages): read buffer, frame splitting, output batching.
 *
 * (1) The input buffer grows only to what a validated frame header announces (at most
 *     max_frame + header), so a hostile length never causes a large allocation.
 * (2) Output produced during one loop iteration is written with one write per connection
 *     (flush_check / flush_prepare), however many responses it holds: first uv_try_write
 *     straight from `out` (no request, no buffer hand-over, no epoll change when the
 *     socket takes it all, the common case), and only what the socket refused goes to a
 *     uv_write. try_write is used only while no uv_write is in progress, so bytes leave
 *     in order.
 * (3) A connection whose unsent output exceeds max_output_mb stops being read until it
 *     drains below half of that: backpressure instead of unbounded buffers.
 * (4) The struct is freed only when the handle is closed and no request references it.
 * (5) Reads land in one loop-wide buffer (server.read_buf) whenever what the connection
 *     holds is small; only an incomplete frame's bytes are copied into the connection's
 *     own buffer. An idle connection, or one stalled halfway through a frame, so costs
 *     the bytes it sent, not a 64 KiB read buffer.
 * (6) Request bytes in flight: a frame's size is charged to its connection and the node
 *     when its request takes a reference (kv_conn_ref) and released when the answer
 *     drops it (kv_conn_unref). A request's own size is not kept, so each answer releases
 *     an equal share of its connection's charge: the figure is exact when a connection's
 *     requests are alike, and always returns to 0 when all are answered. Past
 *     max_conn_inflight_bytes or max_conn_inflight_requests the connection is not read
 *     (nor its buffered frames handled) until half of that is answered, so one pipelining
 *     client can neither hold all of the node's in-flight requests nor queue more answers
 *     than that many behind max_output_mb (3). Node-wide limits shed (admission.h). Peer
 *     connections are not charged (admission.h (1)).
 * (7) A connection holding an incomplete frame for header_timeout_ms while it is being
 *     read (not paused by (3) or (6)) is closed; so is one idle for idle_timeout_ms
 *     (kv_conn_sweep, in admission.c with the rest of what a connection may hold).
 * (8) At most ACCEPT_BATCH connections are accepted per loop phase: a connection burst
 *     then costs each iteration a bounded time, and libuv stops polling the listener while
 *     an accepted descriptor waits for us (kv_conn_resume_all takes it next phase). */
#include <stdlib.h>
#include <string.h>
#include "common/clock.h"
#include "common/failpoint.h"
#include "common/log.h"
#include "proto/codec.h"
#include "proto/frame.h"
#include "server/conn_internal.h"

#define READ_CHUNK 65536u
#define SHARED_COPY_MAX 16384u   /* (5): a partial frame up to this size moves to read_buf */
#define ACCEPT_BATCH 16u          /* (8) */

struct write_req {
    uv_write_t req;
    struct kv_conn *conn;
    struct kv_vec buf;
};

struct kv_server *kv_conn_server(const struct kv_conn *c) { return c->srv; }
bool kv_conn_is_closing(const struct kv_conn *c) { return c->closing; }
static void hold(struct kv_conn *c) { c->refs++; }

static void release(struct kv_conn *c)
{
    if (--c->refs > 0)
        return;
    kv_vec_free(&c->in);
    kv_vec_free(&c->out);
    free(c);
}

static void mark_dirty(struct kv_conn *c);

void kv_conn_ref(struct kv_conn *c)
{
    c->reqs++;
    hold(c);
    if (!c->peer && c->cur_frame) {   /* (6): one charge per frame */
        kv__adm_charge(c, c->cur_frame, true);
        c->cur_frame = 0;
    }
}

/* (6): resumed by kv_conn_resume_all, at the start of the flush phase, never inside a
 * handler's call chain (which may still use the request decoded in the arena). */
static void queue_resume(struct kv_conn *c)
{
    if (c->resume_queued || c->closing)
        return;
    c->resume_queued = true;
    hold(c);
    c->resume_next = c->srv->resume;
    c->srv->resume = c;
}

/* Holds c's input back when a limit is reached; true if it is held. */
static bool maybe_hold(struct kv_conn *c)
{
    bool output;
    if (!kv__conn_input_full(c, &output))
        return c->in_paused;
    if (!c->in_paused) {
        c->in_paused = true;
        kv_metrics_add(output ? &c->srv->metrics.conns_paused
                              : &c->srv->metrics.conns_inflight_paused, 1);
    }
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    return true;
}

void kv_conn_unref(struct kv_conn *c)
{
    size_t share = c->reqs > 1 ? c->inflight_bytes / (size_t)c->reqs : c->inflight_bytes;
    kv__adm_charge(c, share, false);
    c->active_ns = kv_clock_mono_ns();
    if (!c->peer)
        kv_adm_on_done(&c->srv->adm);
    /* The last answer of a connection the client half-closed lets it close. */
    if (--c->reqs == 0 && c->close_after_flush && !c->closing)
        mark_dirty(c);
    if (c->in_paused && kv__conn_input_low(c))
        queue_resume(c);
    release(c);
}

void kv__conn_on_close(uv_handle_t *h)
{
    struct kv_conn *c = h->data;
    c->closed = true;
    release(c);
}

void kv__conn_close(struct kv_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->reading = false;
    struct kv_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    kv_metrics_add(&s->metrics.conns_open, (uint64_t)-1);
    if (!c->peer) {
        if (c->provisional) {
            s->adm.provisional_open--;
        } else {
            s->adm.clients_open--;
            kv_metrics_add(&s->metrics.client_conns_open, (uint64_t)-1);
        }
    }
    uv_close((uv_handle_t *)&c->tcp, kv__conn_on_close);
}


static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct kv_conn *c = h->data;
    struct kv_server *s = c->srv;
    if (c->in.len <= SHARED_COPY_MAX && c->want <= READ_CHUNK) {   /* (5) */
        if (!s->read_buf)
            s->read_buf = malloc(READ_CHUNK);
        if (s->read_buf) {
            if (c->in.len)
                memcpy(s->read_buf, c->in.ptr, c->in.len);
            c->shared_pre = c->in.len;
            c->in.len = 0;
            c->shared = true;
            buf->base = (char *)s->read_buf + c->shared_pre;
            buf->len = READ_CHUNK - c->shared_pre;
            return;
        }
    }
    size_t need = c->want > c->in.len ? c->want - c->in.len : 0;
    if (need < READ_CHUNK)
        need = READ_CHUNK;
    if (kv_vec_reserve(&c->in, need) != 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)c->in.ptr + c->in.len;
    buf->len = c->in.cap - c->in.len;
}

static void reply_fatal(struct kv_conn *c, enum kv_status st, const char *msg)
{
    kv_conn_reply_status(c, 0, st, msg);
    kv_conn_close_after_flush(c);
}

/* Handles the whole frames at buf (len bytes); returns how many bytes they took. */
static size_t process_input(struct kv_conn *c, const uint8_t *buf, size_t len)
{
    struct kv_server *s = c->srv;
    size_t off = 0;
    while (!c->close_after_flush && !c->closing && !maybe_hold(c)) {
        struct kv_slice payload;
        size_t flen = 0;
        struct kv_err err;
        enum kv_status st = kv_frame_decode(buf + off, len - off, s->cfg.max_frame,
                                            &payload, &flen, &err);
        if (st == KV_AGAIN) {
            c->want = flen;
            break;
        }
        if (st == KV_TOO_LARGE) {
            kv_metrics_add(&s->metrics.frames_too_large, 1);
            reply_fatal(c, st, err.msg);
            break;
        }
        if (st != KV_OK) {
            kv_metrics_add(&s->metrics.frames_malformed, 1);
            reply_fatal(c, KV_PROTO, err.msg);
            break;
        }
        c->cur_frame = flen;
        kv_handle_frame(c, payload);
        c->cur_frame = 0;
        off += flen;
        c->want = 0;
    }
    if (!c->closing && !c->close_after_flush)
        maybe_hold(c);
    return off;
}

/* After process_input took used bytes of what `in` holds (or, with shared, of read_buf's
 * len bytes): keep the rest in `in`, small, and note when an incomplete frame began. */
static int keep_rest(struct kv_conn *c, const uint8_t *buf, size_t len, size_t used,
                     bool shared)
{
    size_t rest = len - used;
    if (shared) {
        /* `in` is empty here; do not keep a big allocation for a few bytes (5). */
        if (c->in.cap > 4096 && rest * 4 < c->in.cap)
            kv_vec_free(&c->in);
        if (rest && kv_vec_append(&c->in, buf + used, rest) != 0)
            return -1;
    } else {
        kv_vec_consume(&c->in, used);
        /* A long-idle connection should not keep a big buffer from one large frame. */
        if (c->in.len == 0 && c->in.cap > 4 * READ_CHUNK)
            kv_vec_free(&c->in);
    }
    if (rest == 0)
        c->frame_start_ns = 0;
    else if (used || !c->frame_start_ns)
        c->frame_start_ns = kv_clock_mono_ns();
    return 0;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct kv_conn *c = st->data;
    bool shared = c->shared;
    c->shared = false;
    if (shared && nread <= 0 && nread != UV_EOF && c->shared_pre &&
        kv_vec_append(&c->in, c->srv->read_buf, c->shared_pre) != 0)
        nread = UV_ENOMEM;   /* the partial frame we held cannot be put back */
    if (nread == UV_EOF) {
        /* The client may have half-closed after pipelining: answer what it sent first. */
        kv_conn_close_after_flush(c);
        return;
    }
    if (nread < 0) {
        KV_DEBUG("connection read error: %s", uv_strerror((int)nread));
        kv__conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    kv_metrics_add(&c->srv->metrics.bytes_in, (uint64_t)nread);
    c->active_ns = kv_clock_mono_ns();
    const uint8_t *data;
    size_t len;
    if (shared) {
        data = c->srv->read_buf;
        len = c->shared_pre + (size_t)nread;
    } else {
        c->in.len += (size_t)nread;
        data = c->in.ptr;
        len = c->in.len;
    }
    size_t used = process_input(c, data, len);
    if (c->closing)
        return;
    if (keep_rest(c, data, len, used, shared) != 0) {
        KV_WARN("out of memory buffering a connection's input: closing it");
        kv__conn_close(c);
        return;
    }
}

static void start_reading(struct kv_conn *c)
{
    if (c->reading || c->closing || c->close_after_flush || c->in_paused ||
        (c->srv->stopping && !(c->peer && c->srv->peers_reading)))
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) {
        c->reading = true;
        if (c->frame_start_ns)   /* (7): a pause is not the client's stall */
            c->frame_start_ns = kv_clock_mono_ns();
    }
}

/* Output drained somewhat: close a half-closed connection that is done, or let go of one
 * that backpressure (3) held. */
static void after_output(struct kv_conn *c)
{
    if (c->close_after_flush && kv__conn_pending_out(c) == 0 && c->reqs == 0)
        kv__conn_close(c);
    else if (c->in_paused && kv__conn_input_low(c))
        queue_resume(c);
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct kv_conn *c = w->conn;
    KV_FAILPOINT("ack.after_write");       /* crash loop: replies are in the socket */
    c->writing -= w->buf.len;
    kv_vec_free(&w->buf);
    free(w);
    if (status < 0) {
        KV_DEBUG("connection write error: %s", uv_strerror(status));
        kv__conn_close(c);
    } else if (!c->closing) {
        after_output(c);
    }
    release(c);
}

void kv__conn_flush(struct kv_conn *c)
{
    if (c->closing || c->out.len == 0) {
        if (!c->closing && c->close_after_flush && kv__conn_pending_out(c) == 0 && c->reqs == 0)
            kv__conn_close(c);
        return;
    }
    if (c->writing == 0) {   /* (2): nothing of ours inside libuv, order is kept */
        uv_buf_t tb = uv_buf_init((char *)c->out.ptr, (unsigned)c->out.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &tb, 1);
        if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
            KV_DEBUG("connection write error: %s", uv_strerror(n));
            kv__conn_close(c);
            return;
        }
        if (n > 0) {
            kv_metrics_add(&c->srv->metrics.bytes_out, (uint64_t)n);
            kv_vec_consume(&c->out, (size_t)n);
            KV_FAILPOINT("ack.after_write");   /* as in on_write: replies are in the socket */
        }
        if (c->out.len == 0) {
            if (c->out.cap > 4 * READ_CHUNK)   /* one big answer: do not keep its buffer */
                kv_vec_free(&c->out);
            after_output(c);
            return;
        }
    }
    struct write_req *w = malloc(sizeof *w);
    if (!w) {
        kv__conn_close(c);
        return;
    }
    w->conn = c;
    w->buf = c->out;
    c->out = (struct kv_vec){0};
    uv_buf_t b = uv_buf_init((char *)w->buf.ptr, (unsigned)w->buf.len);
    c->writing += w->buf.len;
    kv_metrics_add(&c->srv->metrics.bytes_out, w->buf.len);
    hold(c);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        c->writing -= w->buf.len;
        kv_vec_free(&w->buf);
        free(w);
        release(c);
        kv__conn_close(c);
    }
}

void kv_conn_flush_all(struct kv_server *s)
{
    struct kv_conn *c = s->dirty;
    s->dirty = NULL;
    while (c) {
        struct kv_conn *next = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        kv__conn_flush(c);
        release(c);
        c = next;
    }
}

static void mark_dirty(struct kv_conn *c)
{
    if (c->dirty || c->closing)
        return;
    c->dirty = true;
    hold(c);
    c->dirty_next = c->srv->dirty;
    c->srv->dirty = c;
}

void kv_conn_reply(struct kv_conn *c, Kv__Response *resp)
{
    if (c->closing)
        return;
    struct kv_err err;
    enum kv_status st = kv_codec_frame_append(&c->out, &resp->base, c->srv->cfg.max_frame, &err);
    if (st != KV_OK) {
        KV_WARN("cannot encode response %llu: %s", (unsigned long long)resp->id, err.msg);
        Kv__Response fail = KV__RESPONSE__INIT;
        fail.id = resp->id;
        fail.status = kv_codec_status_to_wire(st == KV_TOO_LARGE ? KV_TOO_LARGE : KV_INTERNAL);
        fail.message = err.msg;
        if (kv_codec_frame_append(&c->out, &fail.base, c->srv->cfg.max_frame, NULL) != KV_OK) {
            kv__conn_close(c);
            return;
        }
    }
    mark_dirty(c);
}

void kv_conn_reply_status(struct kv_conn *c, uint64_t id, enum kv_status st, const char *msg)
{
    Kv__Response r = KV__RESPONSE__INIT;
    r.id = id;
    r.status = kv_codec_status_to_wire(st);
    r.message = (char *)(msg ? msg : "");
    kv_conn_reply(c, &r);
}

void kv_conn_close_after_flush(struct kv_conn *c)
{
    c->close_after_flush = true;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    mark_dirty(c);
}

void kv_conn_accept(struct kv_server *s)
{
    if (s->adm.accepts >= ACCEPT_BATCH) {   /* (8) */
        s->adm.accept_deferred = true;
        return;
    }
    s->adm.accepts++;
    struct kv_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    c->refs = 1;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, kv__conn_on_close);
        return;
    }
    enum kv_adm_verdict v = kv_adm_on_accept(&s->adm);
    if (v == KV_ADM_REJECT) {
        kv__adm_reject(c);
        return;
    }
    if (v == KV_ADM_PROVISIONAL) {
        c->provisional = true;
        s->adm.provisional_open++;
    } else {
        s->adm.clients_open++;
        kv_metrics_add(&s->metrics.client_conns_open, 1);
    }
    c->accepted_ns = c->active_ns = kv_clock_mono_ns();
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    kv_metrics_add(&s->metrics.conns_open, 1);
    kv_metrics_add(&s->metrics.conns_total, 1);
    start_reading(c);
}

void kv_conn_resume_all(struct kv_server *s)
{
    s->adm.accepts = 0;
    if (s->adm.accept_deferred) {   /* (8): this re-arms the listener */
        s->adm.accept_deferred = false;
        if (!s->stopping)
            kv_conn_accept(s);
    }
    struct kv_conn *c = s->resume;
    s->resume = NULL;
    while (c) {
        struct kv_conn *next = c->resume_next;
        c->resume_queued = false;
        c->resume_next = NULL;
        if (c->in_paused && !c->closing && kv__conn_input_low(c)) {
            c->in_paused = false;
            size_t used = process_input(c, c->in.ptr, c->in.len);
            if (!c->closing && keep_rest(c, c->in.ptr, c->in.len, used, false) != 0)
                kv__conn_close(c);
            if (!c->closing && !c->in_paused)
                start_reading(c);
        }
        release(c);
        c = next;
    }
}

void kv_conn_stop_reading_all(struct kv_server *s, bool peers)
{
    for (struct kv_conn *c = s->conns; c; c = c->next)
        if (c->reading && (peers || !c->peer)) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
        }
}

void kv_conn_close_all(struct kv_server *s)
{
    while (s->conns)
        kv__conn_close(s->conns);
    free(s->read_buf);   /* no connection reads any more */
    s->read_buf = NULL;
}

bool kv_conn_all_flushed(const struct kv_server *s)
{
    if (s->dirty)
        return false;
    for (const struct kv_conn *c = s->conns; c; c = c->next)
        if (kv__conn_pending_out(c))
            return false;
    return true;
}
