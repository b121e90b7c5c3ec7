/* proto/frame.h -- the length-prefixed, checksummed frame every message travels in.
 *
 * A frame is: u32 length | u32 xxh32(payload) | payload (length bytes), big-endian.
 * (1) The length is checked against the caller's maximum from the 8 header bytes alone,
 *     before anything is allocated for the payload.
 * (2) A checksum mismatch means the length itself may be wrong, so the stream cannot be
 *     resynchronised: the caller answers once and closes the connection. */
#ifndef KV_PROTO_FRAME_H
#define KV_PROTO_FRAME_H
#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "common/status.h"

#define KV_FRAME_HDR 8u

/* Writes the 8 header bytes for payload[0..len). */
void kv_frame_header(uint8_t hdr[KV_FRAME_HDR], const void *payload, uint32_t len);

/* Looks at the n bytes buffered at buf.
 * KV_OK: a whole frame is there; *payload borrows it and *frame_len is its total size.
 * KV_AGAIN: more bytes are needed; *frame_len is the total the frame needs so far
 *   (KV_FRAME_HDR while the header is incomplete).
 * KV_TOO_LARGE: the header announces more than max_payload bytes (*frame_len undefined).
 * KV_PROTO: checksum mismatch. */
enum kv_status kv_frame_decode(const uint8_t *buf, size_t n, uint32_t max_payload,
                               struct kv_slice *payload, size_t *frame_len, struct kv_err *err);
#endif
