/* server/handler.c -- turns a decoded Request into storage calls and a Response.
 *
 * (1) Every request gets exactly one answer with its id, unless its connection is gone.
 * (2) Limits (key, value, scan page) are checked before anything is stored, and a refused
 *     request leaves the store untouched.
 * (3) Only the loop thread runs this file's functions, except the *_work functions, which
 *     run on a storage thread and touch only their kv_req. */
#include <stdlib.h>
#include <string.h>
#include "common/clock.h"
#include "common/log.h"
#include "proto/codec.h"
#include "server/server.h"

#define CURSOR_TAG 0x01    /* the first byte of every cursor: its format */

struct scan_ent {
    size_t koff, klen, voff, vlen;
};

struct kv_req {
    uv_work_t work;
    struct kv_conn *conn;            /* referenced */
    struct kv_server *srv;
    Kv__Request *msg;                /* owned */
    enum kv_op op;
    uint64_t start_ns;
    enum kv_status st;
    struct kv_err err;
    struct kv_store_item item;       /* get result */
    struct kv_vec arena;             /* scan result bytes */
    struct scan_ent *ents;
    size_t n_ents;
    bool more;                       /* scan: keys remain after the last returned */
    struct kv_version ver;           /* put/delete: the version written */
    struct kv_req *next;             /* done queue */
};

static void after_work(uv_work_t *w, int status);

static bool key_ok(struct kv_conn *c, uint64_t id, ProtobufCBinaryData key)
{
    struct kv_server *s = kv_conn_server(c);
    char msg[96];
    if (key.len == 0) {
        kv_conn_reply_status(c, id, KV_INVALID, "empty key");
    } else if (key.len > s->cfg.max_key) {
        snprintf(msg, sizeof msg, "key of %zu bytes exceeds the limit of %u bytes", key.len,
                 s->cfg.max_key);
        kv_conn_reply_status(c, id, KV_TOO_LARGE, msg);
    } else {
        return true;
    }
    kv_metrics_add(&s->metrics.requests_invalid, 1);
    return false;
}

static struct kv_req *req_new(struct kv_conn *c, Kv__Request *msg, enum kv_op op,
                              uint64_t start_ns)
{
    struct kv_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->conn = c;
    r->srv = kv_conn_server(c);
    r->msg = msg;
    r->op = op;
    r->start_ns = start_ns;
    r->work.data = r;
    kv_conn_ref(c);
    kv_metrics_add(&r->srv->metrics.inflight, 1);
    return r;
}

static void req_free(struct kv_req *r)
{
    kv_metrics_add(&r->srv->metrics.inflight, (uint64_t)-1);
    kv__request__free_unpacked(r->msg, NULL);
    kv_store_item_free(&r->item);
    kv_vec_free(&r->arena);
    free(r->ents);
    kv_conn_unref(r->conn);
    free(r);
}

static void finish(struct kv_conn *c, enum kv_op op, uint64_t start_ns, enum kv_status st)
{
    struct kv_server *s = kv_conn_server(c);
    kv_metrics_record(&s->metrics, op, st, kv_clock_mono_ns() - start_ns);
}

/* --- get ------------------------------------------------------------------------------- */

static void reply_get(struct kv_conn *c, uint64_t id, enum kv_status st,
                      const struct kv_store_item *it, const struct kv_err *err)
{
    struct kv_server *s = kv_conn_server(c);
    if (st != KV_OK) {
        kv_conn_reply_status(c, id, st, st == KV_NOT_FOUND ? "key not found" : err->msg);
        return;
    }
    Kv__Response r = KV__RESPONSE__INIT;
    Kv__GetResponse g = KV__GET_RESPONSE__INIT;
    struct kv_vec scratch = {0};
    struct kv_slice wire;
    bool lz4;
    if (kv_codec_value_pack(it->rec.value, s->cfg.compress_threshold, &scratch, &wire, &lz4,
                            NULL) != KV_OK) {
        wire = it->rec.value;
        lz4 = false;
    }
    g.value.data = (uint8_t *)wire.ptr;
    g.value.len = wire.len;
    g.lz4 = lz4;
    g.raw_len = lz4 ? (uint32_t)it->rec.value.len : 0;
    g.version = it->rec.ver.hlc;
    g.version_node = it->rec.ver.node;
    g.expires_at_ms = it->rec.expires_at_ms;
    r.id = id;
    r.status = KV__STATUS__OK;
    r.result_case = KV__RESPONSE__RESULT_GET;
    r.get = &g;
    kv_conn_reply(c, &r);
    kv_vec_free(&scratch);
}

static void get_work(uv_work_t *w)
{
    struct kv_req *r = w->data;
    ProtobufCBinaryData k = r->msg->get->key;
    r->st = kv_store_get(r->srv->store, kv_slice_of(k.data, k.len), 0, &r->item, &r->err);
}

static void handle_get(struct kv_conn *c, Kv__Request *msg, uint64_t t0)
{
    struct kv_server *s = kv_conn_server(c);
    ProtobufCBinaryData k = msg->get->key;
    if (!key_ok(c, msg->id, k)) {
        kv__request__free_unpacked(msg, NULL);
        return;
    }
    struct kv_store_item it = {0};
    struct kv_err err = {0};
    enum kv_status st = kv_store_get(s->store, kv_slice_of(k.data, k.len), KV_STORE_CACHE_ONLY,
                                     &it, &err);
    if (st != KV_AGAIN) {
        kv_metrics_add(&s->metrics.reads_inline, 1);
        reply_get(c, msg->id, st, &it, &err);
        finish(c, KV_OP_GET, t0, st);
        kv_store_item_free(&it);
        kv__request__free_unpacked(msg, NULL);
        return;
    }
    kv_metrics_add(&s->metrics.reads_offloaded, 1);
    struct kv_req *r = req_new(c, msg, KV_OP_GET, t0);
    if (!r || uv_queue_work(s->loop, &r->work, get_work, after_work) != 0) {
        kv_conn_reply_status(c, msg->id, KV_NOMEM, "cannot queue read");
        if (r)
            req_free(r);
        else
            kv__request__free_unpacked(msg, NULL);
    }
}

/* --- put and delete -------------------------------------------------------------------- */

static void write_done(void *arg, enum kv_status st, const struct kv_err *err)
{
    struct kv_req *r = arg;
    r->st = st;
    if (err)
        r->err = *err;
    kv_server_post_done(r->srv, r);
}

static void handle_write(struct kv_conn *c, Kv__Request *msg, uint64_t t0)
{
    struct kv_server *s = kv_conn_server(c);
    bool is_put = msg->op_case == KV__REQUEST__OP_PUT;
    ProtobufCBinaryData k = is_put ? msg->put->key : msg->del->key;
    if (!key_ok(c, msg->id, k)) {
        kv__request__free_unpacked(msg, NULL);
        return;
    }
    struct kv_write w = {.key = kv_slice_of(k.data, k.len)};
    struct kv_buf owned = {0};
    struct kv_err err = {0};
    uint64_t now = kv_clock_now_ms();
    if (is_put) {
        Kv__PutRequest *p = msg->put;
        struct kv_slice raw;
        enum kv_status st = kv_codec_value_unpack(kv_slice_of(p->value.data, p->value.len),
                                                  p->lz4, p->raw_len, s->cfg.max_value, &raw,
                                                  &owned, &err);
        if (st == KV_OK && raw.len > s->cfg.max_value)
            st = kv_err_set(&err, KV_TOO_LARGE, "value of %zu bytes exceeds the limit of %u bytes",
                            raw.len, s->cfg.max_value);
        if (st == KV_PROTO)
            st = KV_INVALID;
        if (st != KV_OK) {
            kv_metrics_add(&s->metrics.requests_invalid, 1);
            kv_conn_reply_status(c, msg->id, st, err.msg);
            finish(c, KV_OP_PUT, t0, st);
            kv__request__free_unpacked(msg, NULL);
            return;
        }
        w.rec.value = raw;
        if (p->ttl_ms)
            w.rec.expires_at_ms = now + p->ttl_ms;
    } else {
        w.rec.tombstone = true;
    }
    w.rec.ver.hlc = kv_hlc_now(&s->hlc, now);
    w.rec.ver.node = s->cfg.node_id;
    enum kv_op op = is_put ? KV_OP_PUT : KV_OP_DELETE;
    struct kv_req *r = req_new(c, msg, op, t0);
    if (!r) {
        kv_buf_free(&owned);
        kv_conn_reply_status(c, msg->id, KV_NOMEM, "out of memory");
        kv__request__free_unpacked(msg, NULL);
        return;
    }
    r->ver = w.rec.ver;
    enum kv_status st = kv_store_write_async(s->store, &w, 1, write_done, r, &err);
    kv_buf_free(&owned);
    if (st != KV_OK) {
        kv_conn_reply_status(c, msg->id, st, err.msg);
        finish(c, op, t0, st);
        req_free(r);
    }
}

static void reply_write(struct kv_req *r)
{
    if (r->st != KV_OK) {
        kv_conn_reply_status(r->conn, r->msg->id, r->st, r->err.msg);
        return;
    }
    Kv__Response resp = KV__RESPONSE__INIT;
    Kv__WriteResponse wr = KV__WRITE_RESPONSE__INIT;
    wr.version = r->ver.hlc;
    wr.version_node = r->ver.node;
    resp.id = r->msg->id;
    resp.result_case = KV__RESPONSE__RESULT_WRITE;
    resp.write = &wr;
    kv_conn_reply(r->conn, &resp);
}

/* --- scan ------------------------------------------------------------------------------ */

static void scan_work(uv_work_t *w)
{
    struct kv_req *r = w->data;
    struct kv_server *s = r->srv;
    Kv__ScanRequest *q = r->msg->scan;
    struct kv_slice start = kv_slice_of(q->start.data, q->start.len);
    struct kv_slice end = kv_slice_of(q->end.data, q->end.len);
    bool excl = false;
    if (q->cursor.len) {
        /* The cursor is the last key returned; resume strictly after it, but never
         * before the requested start. */
        struct kv_slice ck = kv_slice_of(q->cursor.data + 1, q->cursor.len - 1);
        if (kv_slice_cmp(ck, start) >= 0) {
            start = ck;
            excl = true;
        }
    }
    uint32_t limit = q->limit ? q->limit : s->cfg.scan_default_limit;
    struct kv_store_iter *it;
    r->st = kv_store_iter_new(s->store, start, excl, end, 0, &it, &r->err);
    if (r->st != KV_OK)
        return;
    size_t cap = 0;
    for (;;) {
        struct kv_slice key;
        struct kv_record rec;
        enum kv_status st = kv_store_iter_next(it, &key, &rec, &r->err);
        if (st == KV_NOT_FOUND)
            break;
        if (st != KV_OK) {
            r->st = st;
            break;
        }
        size_t vlen = q->keys_only ? 0 : rec.value.len;
        if (r->n_ents == limit || (r->n_ents > 0 && r->arena.len + key.len + vlen >
                                                       s->cfg.scan_max_bytes)) {
            r->more = true;
            break;
        }
        if (r->n_ents == cap) {
            cap = cap ? cap * 2 : 64;
            struct scan_ent *e = realloc(r->ents, cap * sizeof *e);
            if (!e) {
                r->st = kv_err_set(&r->err, KV_NOMEM, "out of memory in scan");
                break;
            }
            r->ents = e;
        }
        struct scan_ent *e = &r->ents[r->n_ents];
        e->koff = r->arena.len;
        e->klen = key.len;
        e->voff = e->koff + key.len;
        e->vlen = vlen;
        if (kv_vec_append(&r->arena, key.ptr, key.len) ||
            kv_vec_append(&r->arena, rec.value.ptr, vlen)) {
            r->st = kv_err_set(&r->err, KV_NOMEM, "out of memory in scan");
            break;
        }
        r->n_ents++;
    }
    kv_store_iter_free(it);
}

static void reply_scan(struct kv_req *r)
{
    struct kv_server *s = r->srv;
    if (r->st != KV_OK) {
        kv_conn_reply_status(r->conn, r->msg->id, r->st, r->err.msg);
        return;
    }
    Kv__ScanItem *items = calloc(r->n_ents ? r->n_ents : 1, sizeof *items);
    Kv__ScanItem **ptrs = calloc(r->n_ents ? r->n_ents : 1, sizeof *ptrs);
    struct kv_vec *scratch = calloc(r->n_ents ? r->n_ents : 1, sizeof *scratch);
    uint8_t *cursor = NULL;
    if (!items || !ptrs || !scratch) {
        kv_conn_reply_status(r->conn, r->msg->id, KV_NOMEM, "out of memory in scan");
        goto out;
    }
    for (size_t i = 0; i < r->n_ents; i++) {
        const struct scan_ent *e = &r->ents[i];
        kv__scan_item__init(&items[i]);
        items[i].key.data = r->arena.ptr + e->koff;
        items[i].key.len = e->klen;
        struct kv_slice wire;
        bool lz4 = false;
        struct kv_slice raw = kv_slice_of(r->arena.ptr + e->voff, e->vlen);
        if (kv_codec_value_pack(raw, s->cfg.compress_threshold, &scratch[i], &wire, &lz4,
                                NULL) != KV_OK)
            wire = raw, lz4 = false;
        items[i].value.data = (uint8_t *)wire.ptr;
        items[i].value.len = wire.len;
        items[i].lz4 = lz4;
        items[i].raw_len = lz4 ? (uint32_t)e->vlen : 0;
        ptrs[i] = &items[i];
    }
    Kv__Response resp = KV__RESPONSE__INIT;
    Kv__ScanResponse sr = KV__SCAN_RESPONSE__INIT;
    sr.n_items = r->n_ents;
    sr.items = ptrs;
    if (r->more && r->n_ents) {
        const struct scan_ent *last = &r->ents[r->n_ents - 1];
        cursor = malloc(last->klen + 1);
        if (!cursor) {
            kv_conn_reply_status(r->conn, r->msg->id, KV_NOMEM, "out of memory in scan");
            goto out;
        }
        cursor[0] = CURSOR_TAG;
        memcpy(cursor + 1, r->arena.ptr + last->koff, last->klen);
        sr.cursor.data = cursor;
        sr.cursor.len = last->klen + 1;
    }
    resp.id = r->msg->id;
    resp.result_case = KV__RESPONSE__RESULT_SCAN;
    resp.scan = &sr;
    kv_conn_reply(r->conn, &resp);
out:
    if (scratch)
        for (size_t i = 0; i < r->n_ents; i++)
            kv_vec_free(&scratch[i]);
    free(scratch);
    free(items);
    free(ptrs);
    free(cursor);
}

static bool scan_ok(struct kv_conn *c, Kv__Request *msg)
{
    struct kv_server *s = kv_conn_server(c);
    Kv__ScanRequest *q = msg->scan;
    const char *why = NULL;
    char buf[96];
    if (q->start.len > s->cfg.max_key || q->end.len > s->cfg.max_key)
        why = "scan bound longer than the key limit";
    else if (q->limit > s->cfg.scan_max_limit) {
        snprintf(buf, sizeof buf, "scan limit %u exceeds scan_max_limit %u", q->limit,
                 s->cfg.scan_max_limit);
        why = buf;
    } else if (q->cursor.len && (q->cursor.data[0] != CURSOR_TAG ||
                                 q->cursor.len - 1 > s->cfg.max_key))
        why = "cursor was not produced by this server";
    else if (q->end.len && kv_slice_cmp(kv_slice_of(q->start.data, q->start.len),
                                        kv_slice_of(q->end.data, q->end.len)) > 0)
        why = "scan start is after its end";
    if (!why)
        return true;
    kv_metrics_add(&s->metrics.requests_invalid, 1);
    kv_conn_reply_status(c, msg->id, KV_INVALID, why);
    return false;
}

static void handle_scan(struct kv_conn *c, Kv__Request *msg, uint64_t t0)
{
    struct kv_server *s = kv_conn_server(c);
    if (!scan_ok(c, msg)) {
        finish(c, KV_OP_SCAN, t0, KV_INVALID);
        kv__request__free_unpacked(msg, NULL);
        return;
    }
    struct kv_req *r = req_new(c, msg, KV_OP_SCAN, t0);
    if (!r || uv_queue_work(s->loop, &r->work, scan_work, after_work) != 0) {
        kv_conn_reply_status(c, msg->id, KV_NOMEM, "cannot queue scan");
        if (r)
            req_free(r);
        else
            kv__request__free_unpacked(msg, NULL);
    }
}

/* --- entry points ---------------------------------------------------------------------- */

void kv_req_complete(struct kv_req *r)
{
    if (!kv_conn_is_closing(r->conn)) {
        switch (r->op) {
        case KV_OP_GET:
            reply_get(r->conn, r->msg->id, r->st, &r->item, &r->err);
            break;
        case KV_OP_PUT:
        case KV_OP_DELETE:
            reply_write(r);
            break;
        case KV_OP_SCAN:
            reply_scan(r);
            break;
        case KV_OP_COUNT:
            break;
        }
    }
    finish(r->conn, r->op, r->start_ns, r->st);
    req_free(r);
}

static void after_work(uv_work_t *w, int status)
{
    struct kv_req *r = w->data;
    if (status == UV_ECANCELED)
        r->st = kv_err_set(&r->err, KV_SHUTDOWN, "server shutting down");
    kv_req_complete(r);
}

void kv_handle_frame(struct kv_conn *c, struct kv_slice payload)
{
    struct kv_server *s = kv_conn_server(c);
    uint64_t t0 = kv_clock_mono_ns();
    Kv__Request *msg;
    struct kv_err err = {0};
    enum kv_status st = kv_codec_decode_req(payload, &msg, &err);
    if (st != KV_OK) {
        if (st == KV_PROTO)
            kv_metrics_add(&s->metrics.frames_malformed, 1);
        else
            kv_metrics_add(&s->metrics.requests_invalid, 1);
        kv_conn_reply_status(c, msg ? msg->id : 0, st == KV_PROTO ? KV_PROTO : KV_INVALID,
                             err.msg);
        if (msg)
            kv__request__free_unpacked(msg, NULL);
        return;
    }
    if (s->stopping) {
        kv_conn_reply_status(c, msg->id, KV_SHUTDOWN, "server shutting down");
        kv__request__free_unpacked(msg, NULL);
        return;
    }
    switch (msg->op_case) {
    case KV__REQUEST__OP_GET:
        handle_get(c, msg, t0);
        break;
    case KV__REQUEST__OP_PUT:
    case KV__REQUEST__OP_DEL:
        handle_write(c, msg, t0);
        break;
    case KV__REQUEST__OP_SCAN:
        handle_scan(c, msg, t0);
        break;
    default:
        kv_conn_reply_status(c, msg->id, KV_INVALID, "unknown request type");
        kv__request__free_unpacked(msg, NULL);
    }
}

/* The commit thread's side of the done queue: append, then wake the loop. uv_async_send
 * coalesces wake-ups, so the loop drains the whole queue each time. */
void kv_server_post_done(struct kv_server *s, struct kv_req *r)
{
    r->next = NULL;
    pthread_mutex_lock(&s->done_mu);
    if (s->done_tail)
        s->done_tail->next = r;
    else
        s->done_head = r;
    s->done_tail = r;
    pthread_mutex_unlock(&s->done_mu);
    uv_async_send(&s->done_async);
}

void kv_handler_drain_done(struct kv_server *s)
{
    pthread_mutex_lock(&s->done_mu);
    struct kv_req *r = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->done_mu);
    while (r) {
        struct kv_req *next = r->next;
        kv_req_complete(r);
        r = next;
    }
}
