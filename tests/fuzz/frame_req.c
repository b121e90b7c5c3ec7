/* tests/fuzz/frame_req.c -- fuzz target: client bytes as the server reads them.
 *
 * The input is a connection's byte stream (fuzz_util.h): frames cut by kv_frame_decode,
 * each payload decoded by kv_codec_decode_req through one kv_pb_arena reused across
 * frames (as server/handler.c does), then the value of a put or cas unpacked with
 * kv_codec_value_unpack under the server's default max_value.
 * Properties checked besides "no crash, no sanitizer report":
 * (1) the arena never hands out more than its budget (proto/arena.h (1));
 * (2) KV_OK/KV_INVALID return a request, KV_TOO_LARGE/KV_PROTO return none (codec.h);
 * (3) a request that decoded OK packs to bytes that decode OK again and pack identically;
 * (4) an LZ4 value that unpacks OK has exactly raw_len bytes, never above max_value. */
#include <stdio.h>
#include "proto/arena.h"
#include "proto/codec.h"
#include "tests/fuzz/fuzz_util.h"

#define MAX_FRAME (4u << 20)       /* server defaults (server/config.c) */
#define MAX_VALUE (1u << 20)

static struct kv_pb_arena *g_arena;

static void check_value(ProtobufCBinaryData v, bool lz4, uint32_t raw_len)
{
    struct kv_slice raw = {0};
    struct kv_buf owned = {0};
    struct kv_err err = {0};
    enum kv_status st = kv_codec_value_unpack(kv_slice_of(v.data, v.len), lz4, raw_len,
                                              MAX_VALUE, &raw, &owned, &err);
    if (st == KV_OK && lz4) {
        FUZZ_CHECK(raw.len == raw_len && raw_len <= MAX_VALUE);   /* (4) */
        FUZZ_CHECK(owned.ptr == raw.ptr);
    }
    if (st == KV_OK && !lz4)
        FUZZ_CHECK(raw.ptr == (const void *)v.data && raw.len == v.len);
    kv_buf_free(&owned);
}

static void repack(const Kv__Request *r)
{
    size_t n = kv__request__get_packed_size(r);
    uint8_t *a = malloc(n ? n : 1);
    FUZZ_CHECK(a);
    FUZZ_CHECK(kv__request__pack(r, a) == n);
    Kv__Request *again = NULL;
    struct kv_err err = {0};
    enum kv_status st = kv_codec_decode_req(kv_slice_of(a, n), NULL, &again, &err);
    if (st != KV_OK)
        fprintf(stderr, "re-decoding %zu repacked bytes: %s\n", n, err.msg);
    FUZZ_CHECK(st == KV_OK);                                      /* (3) */
    size_t m = kv__request__get_packed_size(again);
    FUZZ_CHECK(m == n);
    uint8_t *b = malloc(m ? m : 1);
    FUZZ_CHECK(b);
    kv__request__pack(again, b);
    FUZZ_CHECK(memcmp(a, b, n) == 0);
    kv__request__free_unpacked(again, NULL);
    free(a);
    free(b);
}

static void on_frame(void *arg, struct kv_slice payload)
{
    (void)arg;
    Kv__Request *r = (Kv__Request *)1;
    struct kv_err err = {0};
    enum kv_status st = kv_codec_decode_req(payload, g_arena, &r, &err);
    FUZZ_CHECK(g_arena->used <= g_arena->budget);                 /* (1) */
    FUZZ_CHECK(g_arena->budget == kv_pb_arena_budget_for(payload.len));
    if (st == KV_TOO_LARGE || st == KV_PROTO) {
        FUZZ_CHECK(r == NULL);                                    /* (2) */
        FUZZ_CHECK(err.code == st && err.msg[0]);
        return;
    }
    FUZZ_CHECK(st == KV_OK || st == KV_INVALID);
    FUZZ_CHECK(r != NULL);
    if (st != KV_OK)
        return;
    FUZZ_CHECK(r->op_case != KV__REQUEST__OP__NOT_SET);
    if (r->op_case == KV__REQUEST__OP_PUT && r->put)
        check_value(r->put->value, r->put->lz4, r->put->raw_len);
    if (r->op_case == KV__REQUEST__OP_CAS && r->cas)
        check_value(r->cas->value, r->cas->lz4, r->cas->raw_len);
    repack(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_arena) {
        /* One arena for the process, as the server keeps one on its loop. */
        g_arena = malloc(sizeof *g_arena);
        kv_pb_arena_init(g_arena);
    }
    fuzz_frames(data, size, MAX_FRAME, on_frame, NULL);
    return 0;
}
