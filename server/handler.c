/* server/handler.c -- turns a decoded Request into a cluster call and its result into a
 * Response.
 *
 * (1) Every client request gets exactly one answer with its id, unless its connection is
 *     gone; a PeerMessage (op `peer`) goes to kv_cluster_on_message and gets none.
 * (2) Limits (key, value, scan page, level) are checked before the cluster sees the
 *     request, and a refused request reaches no replica.
 * (3) get/put/delete/scan go through the coordinator (cluster/cluster.h) even on a node
 *     alone: one code path, and a single node is a cluster of one (effective rf 1). The
 *     single-node inline cache-only read (KV_STORE_CACHE_ONLY on the loop) is gone: the
 *     replica read inside cluster/ always goes through io run (a storage thread).
 * (4) Only the loop thread runs this file. Cluster callbacks run on it too, never inside
 *     the call that started the request (cluster.h (6)).
 * (5) Exception to (3): a get with `local` set reads this node's own store on a storage
 *     thread and bypasses the coordinator (no level, no replicas, no repair, answered even
 *     before the node has joined): an operator's and a test's view of one replica. */
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster.h"
#include "common/clock.h"
#include "common/failpoint.h"
#include "common/log.h"
#include "proto/codec.h"
#include "server/server.h"

#define CURSOR_TAG 0x01    /* the first byte of every cursor: its format */

struct kv_req {
    struct kv_conn *conn;            /* referenced */
    struct kv_server *srv;
    uint64_t id;
    enum kv_op op;
    unsigned level;                  /* resolved (never DEFAULT), for metrics */
    uint64_t start_ns;
};

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

/* The request's level, or -1 (answered INVALID) for a value outside Kv__Consistency. */
static int level_of(struct kv_conn *c, const Kv__Request *msg)
{
    struct kv_server *s = kv_conn_server(c);
    unsigned l = (unsigned)msg->consistency;
    if (l < KV_CONFIG_LEVELS)
        return (int)l;
    char buf[64];
    snprintf(buf, sizeof buf, "unknown consistency level %u", l);
    kv_metrics_add(&s->metrics.requests_invalid, 1);
    kv_conn_reply_status(c, msg->id, KV_INVALID, buf);
    return -1;
}

static struct kv_req *req_new(struct kv_conn *c, const Kv__Request *msg, enum kv_op op,
                              uint64_t start_ns)
{
    struct kv_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->conn = c;
    r->srv = kv_conn_server(c);
    r->id = msg->id;
    r->op = op;
    r->level = msg->consistency ? (unsigned)msg->consistency : r->srv->cfg.default_consistency;
    r->start_ns = start_ns;
    kv_conn_ref(c);
    kv_metrics_add(&r->srv->metrics.inflight, 1);
    return r;
}

static void req_free(struct kv_req *r)
{
    kv_metrics_add(&r->srv->metrics.inflight, (uint64_t)-1);
    kv_conn_unref(r->conn);
    free(r);
}

static void finish(struct kv_req *r, enum kv_status st)
{
    kv_metrics_record(&r->srv->metrics, r->op, r->level, st,
                      kv_clock_mono_ns() - r->start_ns);
    req_free(r);
}

/* A non-OK cluster result: status, the cluster's message and the replica counts that let
 * a client tell "not applied" (UNAVAILABLE) from "unknown" (TIMEOUT). */
static void reply_error(struct kv_req *r, const struct kv_cluster_result *res)
{
    Kv__Response resp = KV__RESPONSE__INIT;
    char msg[sizeof res->err.msg + 64];
    if (res->err.msg[0])
        snprintf(msg, sizeof msg, "%s", res->err.msg);
    else if (res->st == KV_UNAVAILABLE)
        snprintf(msg, sizeof msg, "level %s needs %u replicas, %u alive",
                 kv_config_level_name(r->level), res->required, res->alive);
    else if (res->st == KV_TIMEOUT)
        snprintf(msg, sizeof msg, "timed out: %u of %u replicas acknowledged", res->acks,
                 res->required);
    else if (res->st == KV_NOT_FOUND)
        snprintf(msg, sizeof msg, "key not found");
    else
        snprintf(msg, sizeof msg, "%s", kv_status_str(res->st));
    resp.id = r->id;
    resp.status = kv_codec_status_to_wire(res->st);
    resp.message = msg;
    resp.acks = res->acks;
    resp.required = res->required;
    resp.alive = res->alive;
    kv_conn_reply(r->conn, &resp);
}

/* The common start of every cluster callback: a request whose client is gone only
 * finishes; a failed one answers with the error. True when r is done with. */
static bool answered_early(struct kv_req *r, const struct kv_cluster_result *res)
{
    if (!kv_conn_is_closing(r->conn) && res->st == KV_OK)
        return false;
    if (!kv_conn_is_closing(r->conn))
        reply_error(r, res);
    finish(r, res->st);
    return true;
}

/* --- get ------------------------------------------------------------------------------- */

static void get_done(void *arg, const struct kv_cluster_result *res)
{
    struct kv_req *r = arg;
    struct kv_server *s = r->srv;
    if (answered_early(r, res))
        return;
    Kv__Response resp = KV__RESPONSE__INIT;
    Kv__GetResponse g = KV__GET_RESPONSE__INIT;
    struct kv_vec scratch = {0};
    struct kv_slice wire;
    bool lz4;
    if (kv_codec_value_pack(res->value, s->cfg.compress_threshold, &scratch, &wire, &lz4,
                            NULL) != KV_OK) {
        wire = res->value;
        lz4 = false;
    }
    g.value.data = (uint8_t *)wire.ptr;
    g.value.len = wire.len;
    g.lz4 = lz4;
    g.raw_len = lz4 ? (uint32_t)res->value.len : 0;
    g.version = res->version.hlc;
    g.version_node = res->version.node;
    g.expires_at_ms = res->expires_at_ms;
    resp.id = r->id;
    resp.status = KV__STATUS__OK;
    resp.acks = res->acks;
    resp.required = res->required;
    resp.alive = res->alive;
    resp.result_case = KV__RESPONSE__RESULT_GET;
    resp.get = &g;
    kv_conn_reply(r->conn, &resp);
    kv_vec_free(&scratch);
    finish(r, KV_OK);
}

/* A node-local read (GetRequest.local): this node's own store, no coordinator, no
 * replicas, no repair. The store read runs on a libuv worker (it may touch disk); the
 * answer goes out through get_done like a coordinated one. The kv_req keeps the request
 * in flight (metrics.inflight), so shutdown waits for it and the store is still open. */
struct local_read {
    uv_work_t w;
    struct kv_req *r;
    struct kv_store *store;
    uint8_t *key;
    size_t key_len;
    enum kv_status st;
    struct kv_store_item item;
    struct kv_err err;
};

static void local_read_work(uv_work_t *w)
{
    struct local_read *lr = w->data;
    /* Without KV_STORE_RAW a tombstone or an expired record is KV_NOT_FOUND. */
    lr->st = kv_store_get(lr->store, kv_slice_of(lr->key, lr->key_len), 0, &lr->item,
                          &lr->err);
}

static void local_read_done(uv_work_t *w, int status)
{
    (void)status;   /* never cancelled */
    struct local_read *lr = w->data;
    struct kv_cluster_result res;
    memset(&res, 0, sizeof res);
    res.st = lr->st;
    res.err = lr->err;
    if (lr->st == KV_NOT_FOUND)
        res.err.msg[0] = '\0';   /* reply_error's own "key not found" */
    if (lr->st == KV_OK) {
        res.value = lr->item.rec.value;
        res.version = lr->item.rec.ver;
        res.expires_at_ms = lr->item.rec.expires_at_ms;
        res.acks = res.required = res.alive = 1;
    }
    get_done(lr->r, &res);
    kv_store_item_free(&lr->item);
    free(lr->key);
    free(lr);
}

static void handle_local_get(struct kv_conn *c, Kv__Request *msg, uint64_t t0)
{
    struct kv_server *s = kv_conn_server(c);
    ProtobufCBinaryData k = msg->get->key;
    struct local_read *lr = calloc(1, sizeof *lr);
    uint8_t *key = malloc(k.len);
    struct kv_req *r = lr && key ? req_new(c, msg, KV_OP_GET, t0) : NULL;
    if (!r) {
        free(lr);
        free(key);
        kv_conn_reply_status(c, msg->id, KV_NOMEM, "out of memory");
        return;
    }
    memcpy(key, k.data, k.len);
    r->level = (unsigned)-1;   /* no level: counted per op, not in the per-level latency */
    lr->w.data = lr;
    lr->r = r;
    lr->store = s->store;
    lr->key = key;
    lr->key_len = k.len;
    int rc = uv_queue_work(s->loop, &lr->w, local_read_work, local_read_done);
    if (rc != 0) {
        KV_ERROR("cannot queue a local read (%s): reading on the loop", uv_strerror(rc));
        local_read_work(&lr->w);
        local_read_done(&lr->w, 0);
    }
}

static void handle_get(struct kv_conn *c, Kv__Request *msg, uint64_t t0)
{
    struct kv_server *s = kv_conn_server(c);
    ProtobufCBinaryData k = msg->get->key;
    int level;
    if (!key_ok(c, msg->id, k) || (level = level_of(c, msg)) < 0)
        return;
    if (msg->get->local) {
        handle_local_get(c, msg, t0);
        return;
    }
    struct kv_req *r = req_new(c, msg, KV_OP_GET, t0);
    if (!r) {
        kv_conn_reply_status(c, msg->id, KV_NOMEM, "out of memory");
        return;
    }
    kv_cluster_get(s->cluster, kv_slice_of(k.data, k.len), (enum kv_level)level,
                   msg->timeout_ms, get_done, r);
}

/* --- put and delete -------------------------------------------------------------------- */

static void write_done(void *arg, const struct kv_cluster_result *res)
{
    struct kv_req *r = arg;
    if (answered_early(r, res))
        return;
    Kv__Response resp = KV__RESPONSE__INIT;
    Kv__WriteResponse wr = KV__WRITE_RESPONSE__INIT;
    wr.version = res->version.hlc;
    wr.version_node = res->version.node;
    resp.id = r->id;
    resp.acks = res->acks;
    resp.required = res->required;
    resp.alive = res->alive;
    resp.result_case = KV__RESPONSE__RESULT_WRITE;
    resp.write = &wr;
    KV_FAILPOINT("ack.before_reply");      /* crash loop: applied, the reply not queued */
    kv_conn_reply(r->conn, &resp);
    finish(r, KV_OK);
}

static void handle_write(struct kv_conn *c, Kv__Request *msg, uint64_t t0)
{
    struct kv_server *s = kv_conn_server(c);
    bool is_put = msg->op_case == KV__REQUEST__OP_PUT;
    enum kv_op op = is_put ? KV_OP_PUT : KV_OP_DELETE;
    ProtobufCBinaryData k = is_put ? msg->put->key : msg->del->key;
    int level;
    if (!key_ok(c, msg->id, k) || (level = level_of(c, msg)) < 0)
        return;
    struct kv_buf owned = {0};
    struct kv_slice raw = {0};
    if (is_put) {
        Kv__PutRequest *p = msg->put;
        struct kv_err err = {0};
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
            kv_metrics_record(&s->metrics, op, (unsigned)level ? (unsigned)level
                                                               : s->cfg.default_consistency,
                              st, kv_clock_mono_ns() - t0);
            kv_buf_free(&owned);
            return;
        }
    }
    struct kv_req *r = req_new(c, msg, op, t0);
    if (!r) {
        kv_buf_free(&owned);
        kv_conn_reply_status(c, msg->id, KV_NOMEM, "out of memory");
        return;
    }
    /* The cluster copies key and value, so the decoded request can go right after. */
    if (is_put)
        kv_cluster_put(s->cluster, kv_slice_of(k.data, k.len), raw, msg->put->ttl_ms,
                       (enum kv_level)level, msg->timeout_ms, write_done, r);
    else
        kv_cluster_delete(s->cluster, kv_slice_of(k.data, k.len), (enum kv_level)level,
                          msg->timeout_ms, write_done, r);
    kv_buf_free(&owned);
}

/* --- scan ------------------------------------------------------------------------------ */

static void scan_done(void *arg, const struct kv_cluster_result *res)
{
    struct kv_req *r = arg;
    struct kv_server *s = r->srv;
    if (answered_early(r, res))
        return;
    /* A page stops growing past scan_max_bytes (so it always fits a frame); the cursor is
     * key-based, so cutting a page short here is as good as the coordinator doing it. */
    size_t n = res->n_items, bytes = 0;
    bool more = res->more;
    for (size_t i = 0; i < res->n_items; i++) {
        size_t sz = res->items[i].key.len + res->items[i].value.len;
        if (i > 0 && bytes + sz > s->cfg.scan_max_bytes) {
            n = i;
            more = true;
            break;
        }
        bytes += sz;
    }
    if (more && n == 0) {
        /* Nothing to build a cursor from: refusing beats pretending the range ended. */
        Kv__Response resp = KV__RESPONSE__INIT;
        resp.id = r->id;
        resp.status = kv_codec_status_to_wire(KV_INTERNAL);
        resp.message = "scan returned no item but more remain";
        kv_conn_reply(r->conn, &resp);
        finish(r, KV_INTERNAL);
        return;
    }
    Kv__ScanItem *items = calloc(n ? n : 1, sizeof *items);
    Kv__ScanItem **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    struct kv_vec *scratch = calloc(n ? n : 1, sizeof *scratch);
    uint8_t *cursor = NULL;
    enum kv_status st = KV_OK;
    if (!items || !ptrs || !scratch) {
        kv_conn_reply_status(r->conn, r->id, KV_NOMEM, "out of memory in scan");
        st = KV_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct kv_cluster_item *e = &res->items[i];
        kv__scan_item__init(&items[i]);
        items[i].key.data = (uint8_t *)e->key.ptr;
        items[i].key.len = e->key.len;
        struct kv_slice wire;
        bool lz4 = false;
        if (kv_codec_value_pack(e->value, s->cfg.compress_threshold, &scratch[i], &wire, &lz4,
                                NULL) != KV_OK)
            wire = e->value, lz4 = false;
        items[i].value.data = (uint8_t *)wire.ptr;
        items[i].value.len = wire.len;
        items[i].lz4 = lz4;
        items[i].raw_len = lz4 ? (uint32_t)e->value.len : 0;
        ptrs[i] = &items[i];
    }
    Kv__Response resp = KV__RESPONSE__INIT;
    Kv__ScanResponse sr = KV__SCAN_RESPONSE__INIT;
    sr.n_items = n;
    sr.items = ptrs;
    if (more) {
        struct kv_slice last = res->items[n - 1].key;
        cursor = malloc(last.len + 1);
        if (!cursor) {
            kv_conn_reply_status(r->conn, r->id, KV_NOMEM, "out of memory in scan");
            st = KV_NOMEM;
            goto out;
        }
        cursor[0] = CURSOR_TAG;
        memcpy(cursor + 1, last.ptr, last.len);
        sr.cursor.data = cursor;
        sr.cursor.len = last.len + 1;
    }
    resp.id = r->id;
    resp.acks = res->acks;
    resp.required = res->required;
    resp.alive = res->alive;
    resp.result_case = KV__RESPONSE__RESULT_SCAN;
    resp.scan = &sr;
    kv_conn_reply(r->conn, &resp);
out:
    if (scratch)
        for (size_t i = 0; i < n; i++)
            kv_vec_free(&scratch[i]);
    free(scratch);
    free(items);
    free(ptrs);
    free(cursor);
    finish(r, st);
}

const char *kv_handler_scan_refusal(const struct kv_config *cfg, const Kv__ScanRequest *q,
                                    struct kv_slice *after, char *buf, size_t bufsz)
{
    *after = kv_slice_of(NULL, 0);
    if (q->start.len > cfg->max_key || q->end.len > cfg->max_key)
        return "scan bound longer than the key limit";
    if (q->limit > cfg->scan_max_limit) {
        snprintf(buf, bufsz, "scan limit %u exceeds scan_max_limit %u", q->limit,
                 cfg->scan_max_limit);
        return buf;
    }
    if (q->cursor.len && (q->cursor.data[0] != CURSOR_TAG || q->cursor.len - 1 > cfg->max_key))
        return "cursor was not produced by this server";
    struct kv_slice start = kv_slice_of(q->start.data, q->start.len);
    if (q->end.len && kv_slice_cmp(start, kv_slice_of(q->end.data, q->end.len)) > 0)
        return "scan start is after its end";
    if (q->cursor.len) {
        /* The cursor is the last key returned: resume strictly after it, but never before
         * the requested start. */
        struct kv_slice ck = kv_slice_of(q->cursor.data + 1, q->cursor.len - 1);
        if (kv_slice_cmp(ck, start) >= 0)
            *after = ck;
    }
    return NULL;
}

static void handle_scan(struct kv_conn *c, Kv__Request *msg, uint64_t t0)
{
    struct kv_server *s = kv_conn_server(c);
    int level = -1;
    char buf[96];
    struct kv_slice after;
    const char *why = kv_handler_scan_refusal(&s->cfg, msg->scan, &after, buf, sizeof buf);
    if (why) {
        kv_metrics_add(&s->metrics.requests_invalid, 1);
        kv_conn_reply_status(c, msg->id, KV_INVALID, why);
    }
    if (why || (level = level_of(c, msg)) < 0) {
        kv_metrics_record(&s->metrics, KV_OP_SCAN,
                          level > 0 ? (unsigned)level : s->cfg.default_consistency, KV_INVALID,
                          kv_clock_mono_ns() - t0);
        return;
    }
    Kv__ScanRequest *q = msg->scan;
    struct kv_slice start = kv_slice_of(q->start.data, q->start.len);
    struct kv_slice end = kv_slice_of(q->end.data, q->end.len);
    struct kv_req *r = req_new(c, msg, KV_OP_SCAN, t0);
    if (!r) {
        kv_conn_reply_status(c, msg->id, KV_NOMEM, "out of memory");
        return;
    }
    kv_cluster_scan(s->cluster, start, end, after, q->limit, q->keys_only, (enum kv_level)level,
                    msg->timeout_ms, scan_done, r);
}

/* --- compare-and-set ------------------------------------------------------------------ */

static void cas_done(void *arg, const struct kv_cluster_result *res)
{
    struct kv_req *r = arg;
    if (kv_conn_is_closing(r->conn) || res->st != KV_OK) {
        if (!kv_conn_is_closing(r->conn))
            reply_error(r, res);
        finish(r, res->st);
        return;
    }
    Kv__Response resp = KV__RESPONSE__INIT;
    Kv__CasResponse cr = KV__CAS_RESPONSE__INIT;
    cr.applied = res->applied;
    cr.exists = res->exists;
    cr.current.data = (uint8_t *)res->value.ptr;
    cr.current.len = res->value.len;
    cr.version = res->version.hlc;
    cr.version_node = res->version.node;
    resp.id = r->id;
    resp.acks = res->acks;
    resp.required = res->required;
    resp.alive = res->alive;
    resp.result_case = KV__RESPONSE__RESULT_CAS;
    resp.cas = &cr;
    kv_conn_reply(r->conn, &resp);
    finish(r, KV_OK);
}

static void handle_cas(struct kv_conn *c, Kv__Request *msg, uint64_t t0)
{
    struct kv_server *s = kv_conn_server(c);
    Kv__CasRequest *q = msg->cas;
    if (!key_ok(c, msg->id, q->key) || level_of(c, msg) < 0)
        return;
    struct kv_buf owned = {0};
    struct kv_slice raw = {0};
    struct kv_err err = {0};
    enum kv_status st = kv_codec_value_unpack(kv_slice_of(q->value.data, q->value.len), q->lz4,
                                              q->raw_len, s->cfg.max_value, &raw, &owned, &err);
    if (st == KV_OK && (raw.len > s->cfg.max_value || q->expected.len > s->cfg.max_value))
        st = kv_err_set(&err, KV_TOO_LARGE, "value of %zu bytes exceeds the limit of %u bytes",
                        raw.len > q->expected.len ? raw.len : q->expected.len,
                        s->cfg.max_value);
    if (st == KV_OK && q->expect_absent && q->expected.len)
        st = kv_err_set(&err, KV_INVALID, "cas: expect_absent with an expected value");
    if (st == KV_PROTO)
        st = KV_INVALID;
    if (st != KV_OK) {
        kv_metrics_add(&s->metrics.requests_invalid, 1);
        kv_conn_reply_status(c, msg->id, st, err.msg);
        kv_buf_free(&owned);
        return;
    }
    struct kv_req *r = req_new(c, msg, KV_OP_CAS, t0);
    if (!r) {
        kv_buf_free(&owned);
        kv_conn_reply_status(c, msg->id, KV_NOMEM, "out of memory");
        return;
    }
    r->level = KV_LEVEL_LINEARIZABLE;   /* a CAS is always linearizable: metrics say so */
    /* The cluster copies key, expected and value. */
    kv_cluster_cas(s->cluster, kv_slice_of(q->key.data, q->key.len), q->expect_absent,
                   kv_slice_of(q->expected.data, q->expected.len), raw, msg->timeout_ms,
                   cas_done, r);
    kv_buf_free(&owned);
}

/* --- cluster status and peer messages --------------------------------------------------- */

static void handle_cluster_status(struct kv_conn *c, Kv__Request *msg)
{
    struct kv_server *s = kv_conn_server(c);
    Kv__ClusterStatus cs = KV__CLUSTER_STATUS__INIT;
    struct kv_err err = {0};
    kv_metrics_add(&s->metrics.cluster_status_reqs, 1);
    enum kv_status st = kv_cluster_status(s->cluster, &cs, &err);
    if (st != KV_OK) {
        kv_conn_reply_status(c, msg->id, st, err.msg[0] ? err.msg : kv_status_str(st));
        return;
    }
    struct kv_store_health h;          /* memory only: safe on the loop */
    char storage[sizeof h.reason + 64] = "";
    kv_store_health(s->store, &h);
    if (h.writes_refused)
        snprintf(storage, sizeof storage, "%s: %s", h.summary, h.reason);
    cs.self_storage = storage;         /* borrowed until kv_conn_reply has encoded it */
    Kv__Response resp = KV__RESPONSE__INIT;
    resp.id = msg->id;
    resp.result_case = KV__RESPONSE__RESULT_CLUSTER_STATUS;
    resp.cluster_status = &cs;
    kv_conn_reply(c, &resp);
    kv_cluster_status_free(&cs);
}

/* --- entry point ----------------------------------------------------------------------- */

void kv_handle_frame(struct kv_conn *c, struct kv_slice payload)
{
    struct kv_server *s = kv_conn_server(c);
    uint64_t t0 = kv_clock_mono_ns();
    Kv__Request *msg;
    struct kv_err err = {0};
    /* The request lives in s->req_arena until the next frame: no free on any path. */
    enum kv_status st = kv_codec_decode_req(payload, &s->req_arena, &msg, &err);
    if (st != KV_OK) {
        if (st == KV_PROTO || st == KV_TOO_LARGE)
            kv_metrics_add(&s->metrics.frames_malformed, 1);
        else
            kv_metrics_add(&s->metrics.requests_invalid, 1);
        kv_conn_reply_status(c, msg ? msg->id : 0, st == KV_INVALID ? KV_INVALID : st, err.msg);
        return;
    }
    if (msg->op_case == KV__REQUEST__OP_PEER) {
        /* Node-to-node traffic: never answered; replies travel on our own connection. */
        kv_conn_mark_peer(c);
        kv_metrics_add(&s->metrics.peer_msgs_in, 1);
        if (s->cluster)
            kv_cluster_on_message(s->cluster, msg->peer);
        return;
    }
    if (!kv_conn_admit(c, msg))   /* admission control: answered OVERLOADED */
        return;
    if (s->stopping || !s->cluster) {
        kv_conn_reply_status(c, msg->id, KV_SHUTDOWN, "server shutting down");
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
    case KV__REQUEST__OP_CAS:
        handle_cas(c, msg, t0);
        break;
    case KV__REQUEST__OP_CLUSTER_STATUS:
        handle_cluster_status(c, msg);
        break;
    default:
        kv_conn_reply_status(c, msg->id, KV_INVALID, "unknown request type");
    }
}
