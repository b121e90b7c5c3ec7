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
 * (4) The struct is freed only when the handle is closed and no request references it. */
#include <stdlib.h>
#include "common/failpoint.h"
#include "common/log.h"
#include "proto/codec.h"
#include "proto/frame.h"
#include "server/server.h"

#define READ_CHUNK 65536u

struct kv_conn {
    uv_tcp_t tcp;
    struct kv_server *srv;
    struct kv_vec in;
    struct kv_vec out;           /* framed responses not yet handed to uv_write */
    size_t writing;              /* bytes inside uv_write requests */
    size_t want;                 /* bytes the frame at the front of `in` needs */
    int refs;                    /* the handle's, the dirty list's, each write's, each request's */
    int reqs;                    /* requests in flight */
    bool reading, closing, closed, close_after_flush, dirty;
    bool peer;                   /* another node sends PeerMessages on it */
    struct kv_conn *prev, *next, *dirty_next;
};

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
}

void kv_conn_unref(struct kv_conn *c)
{
    /* The last answer of a connection the client half-closed lets it close. */
    if (--c->reqs == 0 && c->close_after_flush && !c->closing)
        mark_dirty(c);
    release(c);
}

static void on_close(uv_handle_t *h)
{
    struct kv_conn *c = h->data;
    c->closed = true;
    release(c);
}

static void conn_close(struct kv_conn *c)
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
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static size_t pending_out(const struct kv_conn *c) { return c->out.len + c->writing; }

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct kv_conn *c = h->data;
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

static void process_input(struct kv_conn *c)
{
    struct kv_server *s = c->srv;
    size_t off = 0;
    while (!c->close_after_flush && !c->closing) {
        struct kv_slice payload;
        size_t flen = 0;
        struct kv_err err;
        enum kv_status st = kv_frame_decode(c->in.ptr + off, c->in.len - off, s->cfg.max_frame,
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
        kv_handle_frame(c, payload);
        off += flen;
        c->want = 0;
    }
    kv_vec_consume(&c->in, off);
    /* A long-idle connection should not keep a big buffer from one large frame. */
    if (c->in.len == 0 && c->in.cap > 4 * READ_CHUNK) {
        kv_vec_free(&c->in);
    }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct kv_conn *c = st->data;
    if (nread == UV_EOF) {
        /* The client may have half-closed after pipelining: answer what it sent first. */
        kv_conn_close_after_flush(c);
        return;
    }
    if (nread < 0) {
        KV_DEBUG("connection read error: %s", uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    c->in.len += (size_t)nread;
    kv_metrics_add(&c->srv->metrics.bytes_in, (uint64_t)nread);
    process_input(c);
    if (!c->closing && c->reading &&
        pending_out(c) > (size_t)c->srv->cfg.max_output_mb << 20) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
        kv_metrics_add(&c->srv->metrics.conns_paused, 1);
    }
}

static void start_reading(struct kv_conn *c)
{
    if (c->reading || c->closing || c->close_after_flush ||
        (c->srv->stopping && !(c->peer && c->srv->peers_reading)))
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

/* Output drained somewhat: close a half-closed connection that is done, or resume reading
 * one that backpressure (3) paused. */
static void after_output(struct kv_conn *c)
{
    if (c->close_after_flush && pending_out(c) == 0 && c->reqs == 0)
        conn_close(c);
    else if (pending_out(c) < ((size_t)c->srv->cfg.max_output_mb << 20) / 2)
        start_reading(c);
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
        conn_close(c);
    } else if (!c->closing) {
        after_output(c);
    }
    release(c);
}

static void conn_flush(struct kv_conn *c)
{
    if (c->closing || c->out.len == 0) {
        if (!c->closing && c->close_after_flush && pending_out(c) == 0 && c->reqs == 0)
            conn_close(c);
        return;
    }
    if (c->writing == 0) {   /* (2): nothing of ours inside libuv, order is kept */
        uv_buf_t tb = uv_buf_init((char *)c->out.ptr, (unsigned)c->out.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &tb, 1);
        if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
            KV_DEBUG("connection write error: %s", uv_strerror(n));
            conn_close(c);
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
        conn_close(c);
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
        conn_close(c);
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
        conn_flush(c);
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
            conn_close(c);
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
    struct kv_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    c->refs = 1;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    kv_metrics_add(&s->metrics.conns_open, 1);
    kv_metrics_add(&s->metrics.conns_total, 1);
    start_reading(c);
}

void kv_conn_mark_peer(struct kv_conn *c) { c->peer = true; }

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
        conn_close(s->conns);
}

bool kv_conn_all_flushed(const struct kv_server *s)
{
    if (s->dirty)
        return false;
    for (const struct kv_conn *c = s->conns; c; c = c->next)
        if (pending_out(c))
            return false;
    return true;
}
