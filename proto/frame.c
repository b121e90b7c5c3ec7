/* proto/frame.c -- frame header encode and decode. */
#include "proto/frame.h"
#include "common/hash.h"

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void kv_frame_header(uint8_t hdr[KV_FRAME_HDR], const void *payload, uint32_t len)
{
    put_u32(hdr, len);
    put_u32(hdr + 4, kv_hash32(payload, len));
}

enum kv_status kv_frame_decode(const uint8_t *buf, size_t n, uint32_t max_payload,
                               struct kv_slice *payload, size_t *frame_len, struct kv_err *err)
{
    if (n < KV_FRAME_HDR) {
        *frame_len = KV_FRAME_HDR;
        return KV_AGAIN;
    }
    uint32_t len = get_u32(buf);
    if (len > max_payload)
        return kv_err_set(err, KV_TOO_LARGE, "frame of %u bytes exceeds the limit of %u bytes",
                          len, max_payload);
    *frame_len = (size_t)KV_FRAME_HDR + len;
    if (n < *frame_len)
        return KV_AGAIN;
    uint32_t want = get_u32(buf + 4);
    uint32_t got = kv_hash32(buf + KV_FRAME_HDR, len);
    if (want != got)
        return kv_err_set(err, KV_PROTO, "frame checksum mismatch (header %08x, payload %08x)",
                          want, got);
    *payload = kv_slice_of(buf + KV_FRAME_HDR, len);
    return KV_OK;
}
