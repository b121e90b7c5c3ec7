/* tests/unit/test_record.c -- the versioned record encoding (storage/record.h).
 *
 * Round trips for every shape of record, the exact big-endian layout, and every way the
 * bytes can be corrupt: each must decode to KV_CORRUPTION, never crash or assert. Buffers
 * are exact-size heap copies, so ASan catches any read past the end. */
#include <check.h>
#include "tests/check_run.h"
#include <stdlib.h>
#include <string.h>
#include "storage/record.h"

static uint8_t *encode(const struct kv_record *r, size_t *n)
{
    *n = kv_record_encoded_size(r);
    uint8_t *p = malloc(*n);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(kv_record_encode(r, p), *n);
    return p;
}

static enum kv_status decode_copy(const uint8_t *p, size_t n, struct kv_record *r)
{
    uint8_t *c = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(c);
    memcpy(c, p, n);
    struct kv_err err = {0};
    enum kv_status s = kv_record_decode(kv_slice_of(c, n), r, &err);
    if (s != KV_OK)
        ck_assert_int_eq(err.code, s);
    free(c);                             /* r->value dangles now: callers check s only */
    return s;
}

/* decode_copy after resealing the copy: reaches the field checks behind the checksum. */
static enum kv_status decode_sealed(const uint8_t *p, size_t n, struct kv_record *r)
{
    uint8_t *c = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(c);
    memcpy(c, p, n);
    if (n >= KV_RECORD_HDR_MIN)
        kv_record_seal(c, n);
    enum kv_status s = decode_copy(c, n, r);
    free(c);
    return s;
}

static void assert_round_trip(const struct kv_record *in)
{
    size_t n;
    uint8_t *p = encode(in, &n);
    struct kv_record out;
    ck_assert_int_eq(kv_record_decode(kv_slice_of(p, n), &out, NULL), KV_OK);
    ck_assert_uint_eq(out.ver.hlc, in->ver.hlc);
    ck_assert_uint_eq(out.ver.node, in->ver.node);
    ck_assert_uint_eq(out.expires_at_ms, in->expires_at_ms);
    ck_assert(out.tombstone == in->tombstone);
    size_t want = in->tombstone ? 0 : in->value.len;
    ck_assert_uint_eq(out.value.len, want);
    if (want) {
        ck_assert(memcmp(out.value.ptr, in->value.ptr, want) == 0);
        ck_assert(out.value.ptr == p + (n - want));   /* borrows from the input */
    }
    free(p);
}

START_TEST(test_record_a_value_without_expiry_round_trips)
{
    struct kv_record r = {.ver = {kv_hlc_make(1700000000000ull, 7), 42},
                          .value = kv_slice_str("hello")};
    assert_round_trip(&r);
}
END_TEST

START_TEST(test_record_a_value_with_expiry_round_trips)
{
    struct kv_record r = {.ver = {UINT64_MAX, UINT32_MAX}, .expires_at_ms = 1,
                          .value = kv_slice_str("v")};
    assert_round_trip(&r);
    r.expires_at_ms = UINT64_MAX;
    assert_round_trip(&r);
}
END_TEST

START_TEST(test_record_an_empty_value_round_trips_and_is_not_a_tombstone)
{
    struct kv_record r = {.ver = {1, 1}};
    assert_round_trip(&r);
    ck_assert_uint_eq(kv_record_encoded_size(&r), KV_RECORD_HDR_MIN);
}
END_TEST

START_TEST(test_record_a_tombstone_round_trips_and_drops_any_value_bytes)
{
    struct kv_record r = {.ver = {99, 3}, .tombstone = true, .value = kv_slice_str("junk")};
    ck_assert_uint_eq(kv_record_encoded_size(&r), KV_RECORD_HDR_MIN);
    assert_round_trip(&r);
    r.expires_at_ms = 12345;
    assert_round_trip(&r);
}
END_TEST

START_TEST(test_record_layout_is_big_endian_as_documented)
{
    struct kv_record r = {.ver = {0x0102030405060708ull, 0x0a0b0c0du},
                          .expires_at_ms = 0x1112131415161718ull, .value = kv_slice_str("xy")};
    size_t n;
    uint8_t *p = encode(&r, &n);
    const uint8_t want[] = {2, 0x02, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d,
                            0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 'x', 'y'};
    ck_assert_uint_eq(n, sizeof want);
    ck_assert(memcmp(p, want, 2) == 0);            /* bytes 2..5 are the checksum */
    ck_assert(memcmp(p + 6, want + 6, n - 6) == 0);
    free(p);
}
END_TEST

START_TEST(test_record_every_short_header_is_corruption)
{
    struct kv_record r = {.ver = {5, 5}};
    size_t n;
    uint8_t *p = encode(&r, &n);
    for (size_t len = 0; len < KV_RECORD_HDR_MIN; len++) {
        struct kv_record out;
        ck_assert_int_eq(decode_copy(p, len, &out), KV_CORRUPTION);
    }
    free(p);
}
END_TEST

START_TEST(test_record_a_bad_format_byte_is_corruption)
{
    struct kv_record r = {.ver = {5, 5}, .value = kv_slice_str("abc")};
    size_t n;
    uint8_t *p = encode(&r, &n);
    const uint8_t bad[] = {0, 1, 3, 0x80, 0xff};   /* 1: the checksum-less format */
    for (size_t i = 0; i < sizeof bad; i++) {
        p[0] = bad[i];
        struct kv_record out;
        ck_assert_int_eq(decode_copy(p, n, &out), KV_CORRUPTION);
    }
    free(p);
}
END_TEST

START_TEST(test_record_unknown_flag_bits_are_corruption)
{
    struct kv_record r = {.ver = {5, 5}, .value = kv_slice_str("abc")};
    size_t n;
    uint8_t *p = encode(&r, &n);
    for (int bit = 2; bit < 8; bit++) {
        p[1] = (uint8_t)(1u << bit);
        struct kv_record out;
        ck_assert_int_eq(decode_copy(p, n, &out), KV_CORRUPTION);
    }
    free(p);
}
END_TEST

START_TEST(test_record_a_tombstone_carrying_bytes_is_corruption)
{
    struct kv_record r = {.ver = {5, 5}, .value = kv_slice_str("abc")};
    size_t n;
    uint8_t *p = encode(&r, &n);
    p[1] = 0x01;                         /* claim tombstone, keep the value bytes */
    struct kv_record out;
    ck_assert_int_eq(decode_sealed(p, n, &out), KV_CORRUPTION);
    ck_assert_int_eq(decode_sealed(p, KV_RECORD_HDR_MIN + 1, &out), KV_CORRUPTION);
    ck_assert_int_eq(decode_sealed(p, KV_RECORD_HDR_MIN, &out), KV_OK);
    ck_assert(out.tombstone);
    free(p);
}
END_TEST

START_TEST(test_record_a_truncated_expiry_is_corruption)
{
    struct kv_record r = {.ver = {5, 5}, .tombstone = true, .expires_at_ms = 77};
    size_t n;
    uint8_t *p = encode(&r, &n);
    ck_assert_uint_eq(n, KV_RECORD_HDR_MIN + 8);
    for (size_t len = KV_RECORD_HDR_MIN; len < n; len++) {
        struct kv_record out;
        ck_assert_int_eq(decode_sealed(p, len, &out), KV_CORRUPTION);
    }
    free(p);
}
END_TEST

START_TEST(test_record_an_expiry_flag_with_expiry_zero_is_corruption)
{
    struct kv_record r = {.ver = {5, 5}, .expires_at_ms = 1};
    size_t n;
    uint8_t *p = encode(&r, &n);
    memset(p + KV_RECORD_HDR_MIN, 0, 8);
    struct kv_record out;
    ck_assert_int_eq(decode_sealed(p, n, &out), KV_CORRUPTION);
    free(p);
}
END_TEST

START_TEST(test_record_every_single_bit_flip_is_corruption)
{
    const struct kv_record shapes[] = {
        {.ver = {0x123456789ull, 7}, .value = kv_slice_str("a value of some length")},
        {.ver = {5, 5}, .expires_at_ms = 99, .value = kv_slice_str("v")},
        {.ver = {5, 5}, .tombstone = true},
        {.ver = {5, 5}},
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        size_t n;
        uint8_t *p = encode(&shapes[k], &n);
        for (size_t i = 0; i < n; i++)
            for (int bit = 0; bit < 8; bit++) {
                p[i] ^= (uint8_t)(1u << bit);
                struct kv_record out;
                ck_assert_msg(decode_copy(p, n, &out) == KV_CORRUPTION,
                              "shape %zu: flip of byte %zu bit %d decoded", k, i, bit);
                p[i] ^= (uint8_t)(1u << bit);
            }
        struct kv_record out;
        ck_assert_int_eq(decode_copy(p, n, &out), KV_OK);
        free(p);
    }
}
END_TEST

START_TEST(test_record_decode_fills_err_with_the_reason)
{
    const uint8_t p[3] = {1, 0, 0};
    struct kv_err err = {0};
    struct kv_record out;
    ck_assert_int_eq(kv_record_decode(kv_slice_of(p, sizeof p), &out, &err), KV_CORRUPTION);
    ck_assert_int_eq(err.code, KV_CORRUPTION);
    ck_assert(strlen(err.msg) > 0);
    ck_assert_int_eq(kv_record_decode(kv_slice_of(NULL, 0), &out, NULL), KV_CORRUPTION);
}
END_TEST

START_TEST(test_record_live_means_neither_tombstone_nor_expired_at_now)
{
    struct kv_record r = {.ver = {5, 5}};
    ck_assert(kv_record_live(&r, UINT64_MAX));
    r.expires_at_ms = 1000;
    ck_assert(kv_record_live(&r, 999));
    ck_assert(!kv_record_live(&r, 1000));
    ck_assert(!kv_record_live(&r, 1001));
    r.expires_at_ms = 0;
    r.tombstone = true;
    ck_assert(!kv_record_live(&r, 0));
}
END_TEST

static Suite *record_suite(void)
{
    Suite *s = suite_create("record");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_record_a_value_without_expiry_round_trips);
    tcase_add_test(tc, test_record_a_value_with_expiry_round_trips);
    tcase_add_test(tc, test_record_an_empty_value_round_trips_and_is_not_a_tombstone);
    tcase_add_test(tc, test_record_a_tombstone_round_trips_and_drops_any_value_bytes);
    tcase_add_test(tc, test_record_layout_is_big_endian_as_documented);
    tcase_add_test(tc, test_record_every_short_header_is_corruption);
    tcase_add_test(tc, test_record_a_bad_format_byte_is_corruption);
    tcase_add_test(tc, test_record_unknown_flag_bits_are_corruption);
    tcase_add_test(tc, test_record_a_tombstone_carrying_bytes_is_corruption);
    tcase_add_test(tc, test_record_a_truncated_expiry_is_corruption);
    tcase_add_test(tc, test_record_an_expiry_flag_with_expiry_zero_is_corruption);
    tcase_add_test(tc, test_record_every_single_bit_flip_is_corruption);
    tcase_add_test(tc, test_record_decode_fills_err_with_the_reason);
    tcase_add_test(tc, test_record_live_means_neither_tombstone_nor_expired_at_now);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kv_check_run(record_suite(), true);
}
