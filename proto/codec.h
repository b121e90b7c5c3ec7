/* proto/codec.h -- protobuf messages to and from frames, status mapping, value compression.
 *
 * (1) The wire Status enum and enum kv_status are mapped here and nowhere else.
 * (2) A decoded Request that carries unknown fields (at any depth, in repeated messages
 *     too, field number 0 included) or no operation is refused with KV_INVALID, but still
 *     returned, so the caller can answer with the request's id.
 * (3) Values at or above a threshold travel LZ4-compressed only when that makes them
 *     smaller; decompression is bounded by the caller's maximum value size. */
#ifndef KV_PROTO_CODEC_H
#define KV_PROTO_CODEC_H
#include <stdbool.h>
#include "common/buf.h"
#include "common/status.h"
#include "proto/arena.h"
#include "proto/kv.pb-c.h"

Kv__Status kv_codec_status_to_wire(enum kv_status s);
enum kv_status kv_codec_status_from_wire(Kv__Status s);

/* With arena NULL, on KV_OK or KV_INVALID *out owns a request
 * (kv__request__free_unpacked(*out, NULL)). With an arena the request lives in it until its
 * next begin (proto/arena.h (2)): never free it; a payload whose decoded form would exceed
 * kv_pb_arena_budget_for(payload.len) is KV_TOO_LARGE. KV_PROTO: the payload is not a
 * Request. On KV_TOO_LARGE and KV_PROTO *out is NULL. */
enum kv_status kv_codec_decode_req(struct kv_slice payload, struct kv_pb_arena *arena,
                                   Kv__Request **out, struct kv_err *err);
/* KV_OK: *out owns a response (kv__response__free_unpacked). KV_PROTO otherwise. */
enum kv_status kv_codec_decode_resp(struct kv_slice payload, Kv__Response **out,
                                    struct kv_err *err);

/* Appends msg as one frame to out. KV_TOO_LARGE when it would exceed max_payload,
 * KV_NOMEM when out cannot grow; out is unchanged on error. */
enum kv_status kv_codec_frame_append(struct kv_vec *out, const ProtobufCMessage *msg,
                                     uint32_t max_payload, struct kv_err *err);

/* Prepares raw for the wire: when raw.len >= threshold and LZ4 makes it smaller, *wire
 * points into scratch (which the caller keeps alive until the message is packed) and *lz4
 * is true; otherwise *wire is raw. threshold 0 disables compression. */
enum kv_status kv_codec_value_pack(struct kv_slice raw, size_t threshold, struct kv_vec *scratch,
                                   struct kv_slice *wire, bool *lz4, struct kv_err *err);
/* Inverse of kv_codec_value_pack. Without lz4 *raw is wire. With lz4, *owned receives the
 * decompressed bytes and *raw points at them; raw_len above max_len is KV_TOO_LARGE and a
 * block that does not decompress to exactly raw_len bytes is KV_PROTO. */
enum kv_status kv_codec_value_unpack(struct kv_slice wire, bool lz4, uint32_t raw_len,
                                     size_t max_len, struct kv_slice *raw, struct kv_buf *owned,
                                     struct kv_err *err);
#endif
