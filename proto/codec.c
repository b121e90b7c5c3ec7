/* proto/codec.c -- protobuf-c glue for frames, the status mapping, LZ4 for values. */
#include "proto/codec.h"
#include <lz4.h>
#include <stdlib.h>
#include "proto/frame.h"

Kv__Status kv_codec_status_to_wire(enum kv_status s)
{
    switch (s) {
    case KV_OK: return KV__STATUS__OK;
    case KV_NOT_FOUND: return KV__STATUS__NOT_FOUND;
    case KV_INVALID: return KV__STATUS__INVALID_ARGUMENT;
    case KV_PROTO: return KV__STATUS__MALFORMED;
    case KV_TOO_LARGE: return KV__STATUS__TOO_LARGE;
    case KV_IOERR: return KV__STATUS__IO_ERROR;
    case KV_CORRUPTION: return KV__STATUS__CORRUPTION;
    case KV_UNAVAILABLE: return KV__STATUS__UNAVAILABLE;
    case KV_TIMEOUT: return KV__STATUS__TIMEOUT;
    case KV_AGAIN: return KV__STATUS__OVERLOADED;
    case KV_SHUTDOWN: return KV__STATUS__SHUTTING_DOWN;
    case KV_NOSPACE: return KV__STATUS__NO_SPACE;
    case KV_INTERNAL: case KV_NOMEM: case KV_CONN: break;
    }
    return KV__STATUS__INTERNAL;
}

enum kv_status kv_codec_status_from_wire(Kv__Status s)
{
    switch (s) {
    case KV__STATUS__OK: return KV_OK;
    case KV__STATUS__NOT_FOUND: return KV_NOT_FOUND;
    case KV__STATUS__INVALID_ARGUMENT: return KV_INVALID;
    case KV__STATUS__TOO_LARGE: return KV_TOO_LARGE;
    case KV__STATUS__UNAVAILABLE: return KV_UNAVAILABLE;
    case KV__STATUS__TIMEOUT: return KV_TIMEOUT;
    case KV__STATUS__MALFORMED: return KV_PROTO;
    case KV__STATUS__CORRUPTION: return KV_CORRUPTION;
    case KV__STATUS__IO_ERROR: return KV_IOERR;
    case KV__STATUS__OVERLOADED: return KV_AGAIN;
    case KV__STATUS__SHUTTING_DOWN: return KV_SHUTDOWN;
    case KV__STATUS__NO_SPACE: return KV_NOSPACE;
    default: return KV_INTERNAL;
    }
}

/* Nested messages are checked too: an unknown field anywhere means the peer speaks a
 * protocol we do not, and silently ignoring part of a request could lose what it asked.
 * Returns whether one was found, its tag in *tag: the tag alone cannot say, because
 * protobuf-c keeps a field numbered 0 (an over-long varint tag) as an unknown field too. */
static bool find_unknown_field(const ProtobufCMessage *m, uint32_t *tag)
{
    if (m->n_unknown_fields) {
        *tag = m->unknown_fields[0].tag;
        return true;
    }
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            /* Records in a ReplicaWrite, nodes in a Gossip: re-sent (read repair, hints),
             * so an unknown field kept in one would be re-encoded for other nodes too. */
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            ProtobufCMessage *const *arr =
                *(ProtobufCMessage *const *const *)((const char *)m + f->offset);
            for (size_t j = 0; j < n; j++)
                if (arr[j] && find_unknown_field(arr[j], tag))
                    return true;
            continue;
        }
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)((const char *)m + f->offset);
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)((const char *)m + f->quantifier_offset);
            if (which != f->id)
                continue;
        }
        if (sub && find_unknown_field(sub, tag))
            return true;
    }
    return false;
}

enum kv_status kv_codec_decode_req(struct kv_slice payload, struct kv_pb_arena *arena,
                                   Kv__Request **out, struct kv_err *err)
{
    if (arena)
        kv_pb_arena_begin(arena, kv_pb_arena_budget_for(payload.len));
    Kv__Request *r = kv__request__unpack(arena ? &arena->pb : NULL, payload.len, payload.ptr);
    *out = r;
    if (!r && arena && arena->refused)
        return kv_err_set(err, KV_TOO_LARGE,
                          "payload of %zu bytes decodes to more than its budget of %zu bytes",
                          payload.len, arena->budget);
    if (!r)
        return kv_err_set(err, KV_PROTO, "payload of %zu bytes is not a valid Request",
                          payload.len);
    uint32_t tag;
    if (find_unknown_field(&r->base, &tag))
        return kv_err_set(err, KV_INVALID, "unknown field %u in request", tag);
    if (r->op_case == KV__REQUEST__OP__NOT_SET)
        return kv_err_set(err, KV_INVALID, "request names no known operation");
    return KV_OK;
}

enum kv_status kv_codec_decode_resp(struct kv_slice payload, Kv__Response **out,
                                    struct kv_err *err)
{
    *out = kv__response__unpack(NULL, payload.len, payload.ptr);
    if (!*out)
        return kv_err_set(err, KV_PROTO, "payload of %zu bytes is not a valid Response",
                          payload.len);
    return KV_OK;
}

enum kv_status kv_codec_frame_append(struct kv_vec *out, const ProtobufCMessage *msg,
                                     uint32_t max_payload, struct kv_err *err)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > max_payload)
        return kv_err_set(err, KV_TOO_LARGE, "message of %zu bytes exceeds the frame limit %u",
                          n, max_payload);
    if (kv_vec_reserve(out, KV_FRAME_HDR + n) != 0)
        return kv_err_set(err, KV_NOMEM, "out of memory framing %zu bytes", n);
    uint8_t *hdr = out->ptr + out->len;
    protobuf_c_message_pack(msg, hdr + KV_FRAME_HDR);
    kv_frame_header(hdr, hdr + KV_FRAME_HDR, (uint32_t)n);
    out->len += KV_FRAME_HDR + n;
    return KV_OK;
}

enum kv_status kv_codec_value_pack(struct kv_slice raw, size_t threshold, struct kv_vec *scratch,
                                   struct kv_slice *wire, bool *lz4, struct kv_err *err)
{
    *wire = raw;
    *lz4 = false;
    if (threshold == 0 || raw.len < threshold || raw.len > (size_t)LZ4_MAX_INPUT_SIZE)
        return KV_OK;
    int bound = LZ4_compressBound((int)raw.len);
    scratch->len = 0;
    if (kv_vec_reserve(scratch, (size_t)bound) != 0)
        return kv_err_set(err, KV_NOMEM, "out of memory compressing %zu bytes", raw.len);
    int n = LZ4_compress_default(raw.ptr, (char *)scratch->ptr, (int)raw.len, bound);
    if (n > 0 && (size_t)n < raw.len) {
        scratch->len = (size_t)n;
        *wire = kv_slice_of(scratch->ptr, (size_t)n);
        *lz4 = true;
    }
    return KV_OK;
}

enum kv_status kv_codec_value_unpack(struct kv_slice wire, bool lz4, uint32_t raw_len,
                                     size_t max_len, struct kv_slice *raw, struct kv_buf *owned,
                                     struct kv_err *err)
{
    if (!lz4) {
        *raw = wire;
        return KV_OK;
    }
    if (raw_len > max_len)
        return kv_err_set(err, KV_TOO_LARGE, "value of %u bytes exceeds the limit of %zu bytes",
                          raw_len, max_len);
    if (wire.len > (size_t)LZ4_MAX_INPUT_SIZE)
        return kv_err_set(err, KV_PROTO, "compressed value too large");
    char *p = malloc(raw_len ? raw_len : 1);
    if (!p)
        return kv_err_set(err, KV_NOMEM, "out of memory for a %u-byte value", raw_len);
    int n = LZ4_decompress_safe(wire.ptr, p, (int)wire.len, (int)raw_len);
    if (n < 0 || (uint32_t)n != raw_len) {
        free(p);
        return kv_err_set(err, KV_PROTO, "LZ4 value does not decompress to %u bytes", raw_len);
    }
    owned->ptr = p;
    owned->len = raw_len;
    owned->free_fn = NULL;
    *raw = kv_slice_of(p, raw_len);
    return KV_OK;
}
