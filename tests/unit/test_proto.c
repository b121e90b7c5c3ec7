/* tests/unit/test_proto.c -- frame codec and message codec: round trips and corruption. */
#include <check.h>
#include "tests/check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/codec.h"
#include "proto/frame.h"

static size_t frame_of(const char *payload, uint8_t *out)
{
    size_t n = strlen(payload);
    kv_frame_header(out, payload, (uint32_t)n);
    memcpy(out + KV_FRAME_HDR, payload, n);
    return KV_FRAME_HDR + n;
}

START_TEST(test_frame_round_trips_and_reports_its_length)
{
    uint8_t buf[64];
    size_t n = frame_of("hello", buf);
    struct kv_slice p;
    size_t flen;
    ck_assert_int_eq(kv_frame_decode(buf, n, 100, &p, &flen, NULL), KV_OK);
    ck_assert_uint_eq(flen, n);
    ck_assert_uint_eq(p.len, 5);
    ck_assert(memcmp(p.ptr, "hello", 5) == 0);
}
END_TEST

START_TEST(test_frame_asks_for_more_bytes_at_every_truncation)
{
    uint8_t buf[64];
    size_t n = frame_of("hello world", buf);
    for (size_t i = 0; i < n; i++) {
        struct kv_slice p;
        size_t flen = 0;
        ck_assert_int_eq(kv_frame_decode(buf, i, 100, &p, &flen, NULL), KV_AGAIN);
        ck_assert_uint_eq(flen, i < KV_FRAME_HDR ? KV_FRAME_HDR : n);
    }
}
END_TEST

START_TEST(test_frame_over_the_limit_is_refused_from_the_header_alone)
{
    uint8_t hdr[KV_FRAME_HDR] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    struct kv_slice p;
    size_t flen;
    struct kv_err err;
    ck_assert_int_eq(kv_frame_decode(hdr, sizeof hdr, 1024, &p, &flen, &err), KV_TOO_LARGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "1024"));
}
END_TEST

START_TEST(test_frame_detects_every_single_bit_flip)
{
    uint8_t buf[64];
    size_t n = frame_of("checksummed payload", buf);
    for (size_t byte = 4; byte < n; byte++)
        for (int bit = 0; bit < 8; bit++) {
            buf[byte] ^= (uint8_t)(1u << bit);
            struct kv_slice p;
            size_t flen;
            ck_assert_int_eq(kv_frame_decode(buf, n, 100, &p, &flen, NULL), KV_PROTO);
            buf[byte] ^= (uint8_t)(1u << bit);
        }
}
END_TEST

START_TEST(test_request_round_trips_through_a_frame)
{
    Kv__Request r = KV__REQUEST__INIT;
    Kv__PutRequest p = KV__PUT_REQUEST__INIT;
    p.key.data = (uint8_t *)"k";
    p.key.len = 1;
    p.value.data = (uint8_t *)"v";
    p.value.len = 1;
    p.ttl_ms = 99;
    r.id = 7;
    r.consistency = KV__CONSISTENCY__QUORUM;
    r.op_case = KV__REQUEST__OP_PUT;
    r.put = &p;
    struct kv_vec v = {0};
    ck_assert_int_eq(kv_codec_frame_append(&v, &r.base, 1000, NULL), KV_OK);
    struct kv_slice payload;
    size_t flen;
    ck_assert_int_eq(kv_frame_decode(v.ptr, v.len, 1000, &payload, &flen, NULL), KV_OK);
    Kv__Request *d;
    ck_assert_int_eq(kv_codec_decode_req(payload, NULL, &d, NULL), KV_OK);
    ck_assert_uint_eq(d->id, 7);
    ck_assert_int_eq(d->consistency, KV__CONSISTENCY__QUORUM);
    ck_assert_int_eq(d->op_case, KV__REQUEST__OP_PUT);
    ck_assert_uint_eq(d->put->ttl_ms, 99);
    kv__request__free_unpacked(d, NULL);
    kv_vec_free(&v);
}
END_TEST

START_TEST(test_requests_without_an_operation_or_with_unknown_fields_are_refused_by_id)
{
    Kv__Request *d;
    uint8_t empty[] = {0x08, 5};   /* id = 5, no operation */
    ck_assert_int_eq(kv_codec_decode_req(kv_slice_of(empty, sizeof empty), NULL, &d, NULL), KV_INVALID);
    ck_assert_uint_eq(d->id, 5);
    kv__request__free_unpacked(d, NULL);
    /* id = 6, get { key "a", field 9 = 1 }: unknown inside a nested message. */
    uint8_t nested[] = {0x08, 6, 0x52, 0x05, 0x0a, 0x01, 'a', 0x48, 0x01};
    struct kv_err err;
    ck_assert_int_eq(kv_codec_decode_req(kv_slice_of(nested, sizeof nested), NULL, &d, &err),
                     KV_INVALID);
    ck_assert_uint_eq(d->id, 6);
    ck_assert_ptr_nonnull(strstr(err.msg, "9"));
    kv__request__free_unpacked(d, NULL);
    uint8_t junk[] = {0xff, 0xff, 0xff};
    ck_assert_int_eq(kv_codec_decode_req(kv_slice_of(junk, sizeof junk), NULL, &d, NULL), KV_PROTO);
    ck_assert_ptr_null(d);
}
END_TEST

/* Request{peer{write{records: n empty Records}}}: 2 wire bytes per Record, each of which
 * protobuf-c turns into a whole struct. */
static size_t repeated_field_bomb(uint8_t *buf, size_t n)
{
    size_t inner = 2 * n, len = 0;
    uint8_t *p = buf;
    *p++ = 0xa2, *p++ = 0x01;   /* field 20 (peer), length-delimited */
    size_t write_hdr = 1 + 3;   /* field 11 tag + a 3-byte varint length */
    size_t peer_len = write_hdr + inner;
    *p++ = (uint8_t)(0x80 | (peer_len & 0x7f)), *p++ = (uint8_t)(0x80 | (peer_len >> 7 & 0x7f)),
    *p++ = (uint8_t)(peer_len >> 14);
    *p++ = 0x5a;                /* field 11 (write) */
    *p++ = (uint8_t)(0x80 | (inner & 0x7f)), *p++ = (uint8_t)(0x80 | (inner >> 7 & 0x7f)),
    *p++ = (uint8_t)(inner >> 14);
    for (size_t i = 0; i < n; i++)
        *p++ = 0x0a, *p++ = 0x00;
    len = (size_t)(p - buf);
    return len;
}

START_TEST(test_an_arena_decode_is_bounded_by_its_budget_and_reusable)
{
    static struct kv_pb_arena a;
    kv_pb_arena_init(&a);
    enum { N = 20000 };
    static uint8_t bomb[16 + 2 * N];
    size_t len = repeated_field_bomb(bomb, N);
    Kv__Request *d = NULL;
    struct kv_err err = {0};
    /* Without a budget it decodes (protobuf-c allocates a struct per Record) ... */
    ck_assert_int_eq(kv_codec_decode_req(kv_slice_of(bomb, len), NULL, &d, NULL), KV_OK);
    ck_assert_uint_eq(d->peer->write->n_records, N);
    size_t unbounded = N * sizeof(Kv__Record);
    kv__request__free_unpacked(d, NULL);
    ck_assert_uint_gt(unbounded, kv_pb_arena_budget_for(len));
    /* ... through the arena it is refused as too large, without allocating past it. */
    ck_assert_int_eq(kv_codec_decode_req(kv_slice_of(bomb, len), &a, &d, &err), KV_TOO_LARGE);
    ck_assert_ptr_null(d);
    ck_assert_uint_le(a.used, kv_pb_arena_budget_for(len));
    ck_assert_ptr_nonnull(strstr(err.msg, "budget"));
    /* A legal message of many small records (a scan reply's shape: ~4.5x its wire size in
     * memory) fits its budget. */
    {
        enum { R = 1000 };
        static Kv__Record recs[R];
        static Kv__Record *ptrs[R];
        static char kv[R][9];
        for (int i = 0; i < R; i++) {
            snprintf(kv[i], sizeof kv[i], "s:%06d", i);
            recs[i] = (Kv__Record)KV__RECORD__INIT;
            recs[i].key = (ProtobufCBinaryData){8, (uint8_t *)kv[i]};
            recs[i].value = (ProtobufCBinaryData){8, (uint8_t *)kv[i]};
            recs[i].hlc = 0x1234567890ull;
            recs[i].node = 3;
            ptrs[i] = &recs[i];
        }
        Kv__ReplicaWrite w = KV__REPLICA_WRITE__INIT;
        w.n_records = R;
        w.records = ptrs;
        Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
        pm.body_case = KV__PEER_MESSAGE__BODY_WRITE;
        pm.write = &w;
        Kv__Request r = KV__REQUEST__INIT;
        r.op_case = KV__REQUEST__OP_PEER;
        r.peer = &pm;
        size_t n = kv__request__get_packed_size(&r);
        uint8_t *buf = malloc(n);
        ck_assert_ptr_nonnull(buf);
        kv__request__pack(&r, buf);
        ck_assert_int_eq(kv_codec_decode_req(kv_slice_of(buf, n), &a, &d, &err), KV_OK);
        ck_assert_uint_eq(d->peer->write->n_records, R);
        ck_assert_uint_gt(a.used, 4 * n);   /* the budget the first version had: too small */
        free(buf);
    }
    /* The same arena then decodes an ordinary request, and again after the next begin. */
    for (int round = 0; round < 2; round++) {
        Kv__Request r = KV__REQUEST__INIT;
        Kv__GetRequest g = KV__GET_REQUEST__INIT;
        r.id = 41 + (uint64_t)round;
        r.op_case = KV__REQUEST__OP_GET;
        r.get = &g;
        g.key.data = (uint8_t *)"key";
        g.key.len = 3;
        uint8_t buf[64];
        size_t n = kv__request__pack(&r, buf);
        ck_assert_int_eq(kv_codec_decode_req(kv_slice_of(buf, n), &a, &d, NULL), KV_OK);
        ck_assert_uint_eq(d->id, 41 + (uint64_t)round);
        ck_assert_uint_eq(d->get->key.len, 3);
        ck_assert_int_eq(memcmp(d->get->key.data, "key", 3), 0);
        ck_assert_ptr_null(a.chunks);   /* small: served from the inline block */
    }
    kv_pb_arena_destroy(&a);
}
END_TEST

START_TEST(test_values_compress_only_when_large_and_smaller)
{
    char big[8192];
    memset(big, 'x', sizeof big);
    struct kv_vec scratch = {0};
    struct kv_slice wire, raw;
    bool lz4;
    ck_assert_int_eq(kv_codec_value_pack(kv_slice_of(big, sizeof big), 4096, &scratch, &wire,
                                         &lz4, NULL), KV_OK);
    ck_assert(lz4);
    ck_assert(wire.len < sizeof big);
    struct kv_buf owned = {0};
    ck_assert_int_eq(kv_codec_value_unpack(wire, true, sizeof big, sizeof big, &raw, &owned,
                                           NULL), KV_OK);
    ck_assert_uint_eq(raw.len, sizeof big);
    ck_assert(memcmp(raw.ptr, big, sizeof big) == 0);
    kv_buf_free(&owned);
    /* The decompressed size is bounded by the caller's limit, and must match exactly. */
    ck_assert_int_eq(kv_codec_value_unpack(wire, true, sizeof big, 100, &raw, &owned, NULL),
                     KV_TOO_LARGE);
    ck_assert_int_eq(kv_codec_value_unpack(wire, true, sizeof big - 1, sizeof big, &raw, &owned,
                                           NULL), KV_PROTO);
    ck_assert_int_eq(kv_codec_value_pack(kv_slice_of(big, 100), 4096, &scratch, &wire, &lz4,
                                         NULL), KV_OK);
    ck_assert(!lz4);
    ck_assert_ptr_eq(wire.ptr, big);
    kv_vec_free(&scratch);
}
END_TEST

START_TEST(test_every_status_maps_to_the_wire_and_back)
{
    enum kv_status all[] = {KV_OK, KV_NOT_FOUND, KV_INVALID, KV_PROTO, KV_TOO_LARGE, KV_IOERR,
                            KV_CORRUPTION, KV_UNAVAILABLE, KV_TIMEOUT, KV_INTERNAL, KV_AGAIN,
                            KV_SHUTDOWN};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ck_assert_int_eq(kv_codec_status_from_wire(kv_codec_status_to_wire(all[i])), all[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proto");
    TCase *t = tcase_create("codec");
    tcase_add_test(t, test_frame_round_trips_and_reports_its_length);
    tcase_add_test(t, test_frame_asks_for_more_bytes_at_every_truncation);
    tcase_add_test(t, test_frame_over_the_limit_is_refused_from_the_header_alone);
    tcase_add_test(t, test_frame_detects_every_single_bit_flip);
    tcase_add_test(t, test_request_round_trips_through_a_frame);
    tcase_add_test(t, test_requests_without_an_operation_or_with_unknown_fields_are_refused_by_id);
    tcase_add_test(t, test_an_arena_decode_is_bounded_by_its_budget_and_reusable);
    tcase_add_test(t, test_values_compress_only_when_large_and_smaller);
    tcase_add_test(t, test_every_status_maps_to_the_wire_and_back);
    suite_add_tcase(s, t);
    return kv_check_run(s, true);
}
