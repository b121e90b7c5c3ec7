/* client/ops.c -- kvc_op to Request frames, and Response messages back into kvc_op results.
 *
 * Pure functions: no sockets, no clock. client.c calls them around the connection.
 * (1) Arguments are checked here before anything is encoded, so a bad call fails with a
 *     clear message instead of a round trip and a terse server refusal.
 * (2) The key and value bytes are copied into the frame during kvc__op_encode; the caller
 *     may reuse them as soon as kvc_submit returns.
 * (3) Everything a result holds is a fresh malloc with a trailing NUL, owned by the op's
 *     caller; nothing points into the decoded protobuf, which is freed right after. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "client/internal.h"
#include "proto/codec.h"

static int check_bytes(const void *p, size_t n, const char *what, bool may_be_empty,
                       struct kvc_err *err)
{
    if (n && !p)
        return kvc__err(err, KVC_INVALID, "%s is NULL but its length is %zu", what, n);
    if (!n && !may_be_empty)
        return kvc__err(err, KVC_INVALID, "%s is empty", what);
    if (n > KVC_MAX_KEY)
        return kvc__err(err, KVC_TOO_LARGE, "%s of %zu bytes exceeds the limit of %u bytes",
                        what, n, KVC_MAX_KEY);
    return KVC_OK;
}

int kvc__op_validate(const struct kvc_op *op, uint32_t max_frame, struct kvc_err *err)
{
    if ((unsigned)op->call.consistency > KVC_CL_LINEARIZABLE)
        return kvc__err(err, KVC_INVALID, "unknown consistency level %d",
                        (int)op->call.consistency);
    if (op->call.local && op->type != KVC_OP_GET)
        return kvc__err(err, KVC_INVALID, "local applies to get only");
    int rc;
    switch (op->type) {
    case KVC_OP_CAS:
        if (op->expect_absent && op->expected_len)
            return kvc__err(err, KVC_INVALID, "cas: expect_absent with an expected value");
        if (!op->expect_absent && !op->expected)
            return kvc__err(err, KVC_INVALID, "cas: expected is NULL without expect_absent");
        if (op->expected_len > max_frame)
            return kvc__err(err, KVC_TOO_LARGE,
                            "expected value of %zu bytes exceeds the frame limit of %u bytes",
                            op->expected_len, max_frame);
        /* The new value and the key are checked as a put's. */
        /* fall through */
    case KVC_OP_PUT:
        if (op->value_len && !op->value)
            return kvc__err(err, KVC_INVALID, "value is NULL but its length is %zu",
                            op->value_len);
        if (op->value_len > max_frame)
            return kvc__err(err, KVC_TOO_LARGE,
                            "value of %zu bytes exceeds the frame limit of %u bytes",
                            op->value_len, max_frame);
        /* A put has a key like get and delete. */
        /* fall through */
    case KVC_OP_GET:
    case KVC_OP_DELETE:
        return check_bytes(op->key, op->key_len, "key", false, err);
    case KVC_OP_SCAN:
        if ((rc = check_bytes(op->scan.start, op->scan.start_len, "scan start", true, err)))
            return rc;
        if ((rc = check_bytes(op->scan.end, op->scan.end_len, "scan end", true, err)))
            return rc;
        return check_bytes(op->scan.cursor, op->scan.cursor_len, "scan cursor", true, err);
    }
    return kvc__err(err, KVC_INVALID, "unknown op type %d", (int)op->type);
}

static ProtobufCBinaryData bin(const void *p, size_t n)
{
    ProtobufCBinaryData b = {n, (uint8_t *)(uintptr_t)p};
    return b;
}

int kvc__op_encode(const struct kvc_op *op, uint32_t timeout_ms, uint32_t compress_threshold,
                   uint32_t max_frame, struct kv_vec *scratch, struct kv_vec *out,
                   struct kvc_err *err)
{
    Kv__Request req = KV__REQUEST__INIT;
    Kv__GetRequest get = KV__GET_REQUEST__INIT;
    Kv__PutRequest put = KV__PUT_REQUEST__INIT;
    Kv__DeleteRequest del = KV__DELETE_REQUEST__INIT;
    Kv__ScanRequest scan = KV__SCAN_REQUEST__INIT;
    Kv__CasRequest cas = KV__CAS_REQUEST__INIT;
    Kv__ClusterStatusRequest status = KV__CLUSTER_STATUS_REQUEST__INIT;
    struct kv_err e;
    kv_err_clear(&e);

    req.id = op->id_;
    req.consistency = (Kv__Consistency)op->call.consistency;
    req.timeout_ms = timeout_ms;
    if (op->type == KVC__OP_STATUS) {
        req.op_case = KV__REQUEST__OP_CLUSTER_STATUS;
        req.cluster_status = &status;
    }
    switch (op->type) {   /* no case for KVC__OP_STATUS, set above */
    case KVC_OP_GET:
        get.key = bin(op->key, op->key_len);
        get.local = op->call.local;
        req.op_case = KV__REQUEST__OP_GET;
        req.get = &get;
        break;
    case KVC_OP_PUT: {
        struct kv_slice wire;
        bool lz4 = false;
        if (kv_codec_value_pack(kv_slice_of(op->value, op->value_len), compress_threshold,
                                scratch, &wire, &lz4, &e) != KV_OK)
            return kvc__err(err, KVC_NOMEM, "%s", e.msg);
        put.key = bin(op->key, op->key_len);
        put.value = bin(wire.ptr, wire.len);
        put.lz4 = lz4;
        put.raw_len = lz4 ? (uint32_t)op->value_len : 0;
        put.ttl_ms = op->call.ttl_ms;
        req.op_case = KV__REQUEST__OP_PUT;
        req.put = &put;
        break;
    }
    case KVC_OP_CAS: {
        struct kv_slice wire;
        bool lz4 = false;
        if (kv_codec_value_pack(kv_slice_of(op->value, op->value_len), compress_threshold,
                                scratch, &wire, &lz4, &e) != KV_OK)
            return kvc__err(err, KVC_NOMEM, "%s", e.msg);
        cas.key = bin(op->key, op->key_len);
        cas.expect_absent = op->expect_absent;
        cas.expected = bin(op->expected, op->expected_len);
        cas.value = bin(wire.ptr, wire.len);
        cas.lz4 = lz4;
        cas.raw_len = lz4 ? (uint32_t)op->value_len : 0;
        req.op_case = KV__REQUEST__OP_CAS;
        req.cas = &cas;
        break;
    }
    case KVC_OP_DELETE:
        del.key = bin(op->key, op->key_len);
        req.op_case = KV__REQUEST__OP_DEL;
        req.del = &del;
        break;
    case KVC_OP_SCAN:
        scan.start = bin(op->scan.start, op->scan.start_len);
        scan.end = bin(op->scan.end, op->scan.end_len);
        scan.limit = op->scan.limit;
        scan.cursor = bin(op->scan.cursor, op->scan.cursor_len);
        scan.keys_only = op->scan.keys_only;
        req.op_case = KV__REQUEST__OP_SCAN;
        req.scan = &scan;
        break;
    }
    enum kv_status s = kv_codec_frame_append(out, &req.base, max_frame, &e);
    if (s != KV_OK)
        return kvc__err(err, s == KV_TOO_LARGE ? KVC_TOO_LARGE : KVC_NOMEM, "%s", e.msg);
    return KVC_OK;
}

/* A malloc'd copy of p[0..n) plus a NUL; NULL only when out of memory. */
static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = malloc(n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

/* Decompresses (when lz4) and copies a value; KVC_OK or the failure in op->err. */
static int take_value(struct kvc_op *op, ProtobufCBinaryData wire, bool lz4, uint32_t raw_len,
                      uint32_t max_value, uint8_t **data, size_t *len)
{
    struct kv_slice raw;
    struct kv_buf owned = {0};
    struct kv_err e;
    kv_err_clear(&e);
    enum kv_status s = kv_codec_value_unpack(kv_slice_of(wire.data, wire.len), lz4, raw_len,
                                             max_value, &raw, &owned, &e);
    if (s != KV_OK)
        return kvc__err(&op->err, (int)s, "%s", e.msg);
    *data = dup_bytes(raw.ptr, raw.len);
    *len = raw.len;
    kv_buf_free(&owned);
    if (!*data)
        return kvc__err(&op->err, KVC_NOMEM, "out of memory for a %zu-byte value", raw.len);
    return KVC_OK;
}

static void fill_get(struct kvc_op *op, const Kv__Response *resp, uint32_t max_value)
{
    if (resp->result_case != KV__RESPONSE__RESULT_GET || !resp->get) {
        kvc__err(&op->err, KVC_PROTO, "OK answer to a get carries no value");
        return;
    }
    const Kv__GetResponse *g = resp->get;
    if (take_value(op, g->value, g->lz4, g->raw_len, max_value, &op->result.data,
                   &op->result.len) != KVC_OK)
        return;
    op->result.version = g->version;
    op->result.version_node = g->version_node;
    op->result.expires_at_ms = g->expires_at_ms;
}

static void fill_cas(struct kvc_op *op, const Kv__Response *resp)
{
    if (resp->result_case != KV__RESPONSE__RESULT_CAS || !resp->cas) {
        kvc__err(&op->err, KVC_PROTO, "OK answer to a cas carries no cas result");
        return;
    }
    const Kv__CasResponse *cr = resp->cas;
    op->cas_applied = cr->applied;
    op->result.version = cr->version;
    op->result.version_node = cr->version_node;
    if (!cr->exists)
        return;
    if (!(op->result.data = dup_bytes(cr->current.data, cr->current.len))) {
        kvc__err(&op->err, KVC_NOMEM, "out of memory for a %zu-byte value", cr->current.len);
        return;
    }
    op->result.len = cr->current.len;
}

static void fill_scan(struct kvc_op *op, const Kv__Response *resp, uint32_t max_value)
{
    struct kvc_scan_result *r = &op->scan_result;
    /* An exhausted, empty page may arrive with no result at all: that is an empty scan. */
    if (resp->result_case == KV__RESPONSE__RESULT__NOT_SET)
        return;
    if (resp->result_case != KV__RESPONSE__RESULT_SCAN || !resp->scan) {
        kvc__err(&op->err, KVC_PROTO, "answer to a scan carries a different result");
        return;
    }
    const Kv__ScanResponse *sr = resp->scan;
    if (sr->n_items) {
        r->items = calloc(sr->n_items, sizeof *r->items);
        if (!r->items)
            goto nomem;
    }
    for (size_t i = 0; i < sr->n_items; i++) {
        const Kv__ScanItem *it = sr->items[i];
        struct kvc_scan_item *dst = &r->items[r->n];
        if (!(dst->key = dup_bytes(it->key.data, it->key.len)))
            goto nomem;
        dst->key_len = it->key.len;
        r->n++;
        if (!op->scan.keys_only &&
            take_value(op, it->value, it->lz4, it->raw_len, max_value, &dst->value,
                       &dst->value_len) != KVC_OK)
            goto fail;
    }
    if (sr->cursor.len) {
        if (!(r->cursor = dup_bytes(sr->cursor.data, sr->cursor.len)))
            goto nomem;
        r->cursor_len = sr->cursor.len;
    }
    return;
nomem:
    kvc__err(&op->err, KVC_NOMEM, "out of memory for a scan page of %zu items", sr->n_items);
fail:
    kvc_scan_result_free(r);
}

static void fill_status(struct kvc_op *op, const Kv__Response *resp)
{
    if (resp->result_case != KV__RESPONSE__RESULT_CLUSTER_STATUS || !resp->cluster_status) {
        kvc__err(&op->err, KVC_PROTO, "OK answer to cluster_status carries no status");
        return;
    }
    kvc__status_from_pb(resp->cluster_status, &((struct kvc__status_op *)op)->st, &op->err);
}

void kvc__op_fill(struct kvc_op *op, const Kv__Response *resp, uint32_t max_value)
{
    int code = (int)kv_codec_status_from_wire(resp->status);
    const char *msg = resp->message && resp->message[0] ? resp->message
                                                         : kv_status_str((enum kv_status)code);
    /* A plain copy, cut to fit: this runs for every answer, and snprintf's format
     * machinery was a visible part of a load generator's time per op. */
    size_t n = strlen(msg);
    size_t cut = n < sizeof op->err.msg - 1 ? n : sizeof op->err.msg - 1;
    memcpy(op->err.msg, msg, cut);
    op->err.msg[cut] = '\0';
    op->err.code = code;
    op->retry_after_ms = code == KVC_OVERLOADED ? resp->retry_after_ms : 0;
    if ((code == KVC_TIMEOUT || code == KVC_UNAVAILABLE) &&
        (resp->acks || resp->required || resp->alive) && n < sizeof op->err.msg) {
        /* The figures say how close the request came: the caller needs them to judge a
         * TIMEOUT (some replicas may hold the write) or an UNAVAILABLE (none do). */
        char fig[80];
        int f = snprintf(fig, sizeof fig, " (");
        const char *sep = "";
        if (resp->acks) {
            f += snprintf(fig + f, sizeof fig - (size_t)f, "acks %u", resp->acks);
            sep = ", ";
        }
        if (resp->required) {
            f += snprintf(fig + f, sizeof fig - (size_t)f, "%srequired %u", sep, resp->required);
            sep = ", ";
        }
        if (resp->alive)
            f += snprintf(fig + f, sizeof fig - (size_t)f, "%salive %u", sep, resp->alive);
        snprintf(fig + f, sizeof fig - (size_t)f, ")");
        snprintf(op->err.msg + n, sizeof op->err.msg - n, "%s", fig);
    }
    if (code != KVC_OK)
        return;
    if (op->type == KVC__OP_STATUS) {
        fill_status(op, resp);
        return;
    }
    switch (op->type) {
    case KVC_OP_GET:
        fill_get(op, resp, max_value);
        break;
    case KVC_OP_SCAN:
        fill_scan(op, resp, max_value);
        break;
    case KVC_OP_CAS:
        fill_cas(op, resp);
        break;
    case KVC_OP_PUT:
    case KVC_OP_DELETE:
        /* The write's version is in resp->write; the public op has no slot for it yet. */
        break;
    }
}
