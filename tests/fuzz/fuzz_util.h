/* tests/fuzz/fuzz_util.h -- what the fuzz targets share: reading their input as a stream of
 * frames, as a server or a client reads a socket.
 *
 * Input layout of the frame-based targets: byte 0 is a mode byte, the rest is the stream.
 * (1) Mode bit 0 set: before decoding, every frame header's checksum is rewritten to match
 *     its payload, so the fuzzer gets past xxh32 and mutates what the protobuf decoder sees.
 *     Bit 0 clear: the bytes are decoded exactly as they arrived (checksum path).
 * (2) Frames are decoded with kv_frame_decode until it answers anything but KV_OK (an
 *     incomplete frame, a length over max, a checksum mismatch): a real connection stops
 *     reading there too (it waits for more, or answers and closes).
 * (3) The stream is copied into a buffer of exactly its size, so ASan sees any overread. */
#ifndef KV_TESTS_FUZZ_UTIL_H
#define KV_TESTS_FUZZ_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/hash.h"
#include "proto/frame.h"

#define FUZZ_MODE_FIX_CRC 1u

/* A failed property is a finding: abort so libFuzzer (and the replay) report it. */
#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

static inline uint32_t fuzz_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Calls fn(arg, payload) for each whole frame of the stream in data[1..size) (1)(2), with
 * frames up to max_payload bytes. Returns the status that stopped the loop. */
typedef void (*fuzz_frame_fn)(void *arg, struct kv_slice payload);
static inline enum kv_status fuzz_frames(const uint8_t *data, size_t size, uint32_t max_payload,
                                         fuzz_frame_fn fn, void *arg)
{
    if (size < 1)
        return KV_AGAIN;
    unsigned mode = data[0];
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);   /* (3) */
    if (!buf)
        return KV_NOMEM;
    memcpy(buf, data + 1, n);
    size_t off = 0;
    enum kv_status st;
    for (;;) {
        if ((mode & FUZZ_MODE_FIX_CRC) && n - off >= KV_FRAME_HDR) {
            uint32_t len = fuzz_be32(buf + off);
            if (len <= max_payload && len <= n - off - KV_FRAME_HDR) {
                uint8_t hdr[KV_FRAME_HDR];
                kv_frame_header(hdr, buf + off + KV_FRAME_HDR, len);
                memcpy(buf + off + 4, hdr + 4, 4);
            }
        }
        struct kv_slice payload = {0};
        size_t frame_len = 0;
        struct kv_err err = {0};
        st = kv_frame_decode(buf + off, n - off, max_payload, &payload, &frame_len, &err);
        if (st != KV_OK)
            break;
        FUZZ_CHECK(frame_len >= KV_FRAME_HDR && frame_len <= n - off);
        FUZZ_CHECK(payload.len == frame_len - KV_FRAME_HDR);
        fn(arg, payload);
        off += frame_len;
    }
    free(buf);
    return st;
}
#endif
