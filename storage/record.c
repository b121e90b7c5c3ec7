/* storage/record.c -- encode and decode the versioned record (layout in storage/record.h).
 *
 * (1) Decoding validates every byte it reads and returns KV_CORRUPTION, never asserts:
 *     the bytes come from disk (or from a merge operand written by an older build).
 * (2) Encoding is canonical: decode(encode(r)) == r, and the expiry flag is set exactly
 *     when expires_at_ms != 0. A record with the expiry flag but an expiry of 0 therefore
 *     cannot come from this encoder and is refused as corruption.
 * (3) A tombstone never carries value bytes: the encoder drops them, the decoder refuses
 *     them. */
#include "storage/record.h"
#include <string.h>
#include "common/hash.h"

#define FLAG_TOMBSTONE 0x01u
#define FLAG_EXPIRES 0x02u
#define FLAGS_KNOWN (FLAG_TOMBSTONE | FLAG_EXPIRES)

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

#define OFF_CHECK 2u
#define OFF_HLC 6u
#define OFF_NODE 14u

/* The format byte is checked on its own; the flags are folded in by an odd multiplier, so
 * two different flag bytes always give different checksums. */
static uint32_t record_check(const uint8_t *p, size_t n)
{
    uint64_t h = kv_hash64(p + OFF_HLC, n - OFF_HLC);
    return (uint32_t)h ^ (uint32_t)(p[1] * 0x7F4A7C15u);
}

size_t kv_record_encoded_size(const struct kv_record *r)
{
    size_t n = KV_RECORD_HDR_MIN;
    if (r->expires_at_ms)
        n += 8;
    if (!r->tombstone)
        n += r->value.len;
    return n;
}

size_t kv_record_encode(const struct kv_record *r, uint8_t *out)
{
    uint8_t flags = 0;
    if (r->tombstone)
        flags |= FLAG_TOMBSTONE;
    if (r->expires_at_ms)
        flags |= FLAG_EXPIRES;
    out[0] = KV_RECORD_FORMAT;
    out[1] = flags;
    put_u64(out + OFF_HLC, r->ver.hlc);
    put_u32(out + OFF_NODE, r->ver.node);
    size_t off = KV_RECORD_HDR_MIN;
    if (r->expires_at_ms) {
        put_u64(out + off, r->expires_at_ms);
        off += 8;
    }
    if (!r->tombstone && r->value.len) {
        memcpy(out + off, r->value.ptr, r->value.len);
        off += r->value.len;
    }
    kv_record_seal(out, off);
    return off;
}

void kv_record_seal(uint8_t *p, size_t n)
{
    put_u32(p + OFF_CHECK, record_check(p, n));
}

enum kv_status kv_record_decode(struct kv_slice in, struct kv_record *r, struct kv_err *err)
{
    const uint8_t *p = in.ptr;
    if (in.len < KV_RECORD_HDR_MIN)
        return kv_err_set(err, KV_CORRUPTION, "record: %zu bytes, header needs %u", in.len,
                          KV_RECORD_HDR_MIN);
    if (p[0] != KV_RECORD_FORMAT)
        return kv_err_set(err, KV_CORRUPTION, "record: unknown format %u", p[0]);
    uint8_t flags = p[1];
    if (flags & ~FLAGS_KNOWN)
        return kv_err_set(err, KV_CORRUPTION, "record: unknown flag bits 0x%02x", flags);
    uint32_t want = get_u32(p + OFF_CHECK), got = record_check(p, in.len);
    if (want != got)
        return kv_err_set(err, KV_CORRUPTION, "record: checksum mismatch (%08x, computed %08x)",
                          want, got);
    struct kv_record out = {0};
    out.ver.hlc = get_u64(p + OFF_HLC);
    out.ver.node = get_u32(p + OFF_NODE);
    out.tombstone = (flags & FLAG_TOMBSTONE) != 0;
    size_t off = KV_RECORD_HDR_MIN;
    if (flags & FLAG_EXPIRES) {
        if (in.len - off < 8)
            return kv_err_set(err, KV_CORRUPTION, "record: truncated expiry");
        out.expires_at_ms = get_u64(p + off);
        off += 8;
        if (out.expires_at_ms == 0)
            return kv_err_set(err, KV_CORRUPTION, "record: expiry flag with expiry 0");
    }
    size_t rest = in.len - off;
    if (out.tombstone && rest != 0)
        return kv_err_set(err, KV_CORRUPTION, "record: tombstone carries %zu bytes", rest);
    out.value = rest ? kv_slice_of(p + off, rest) : kv_slice_of(NULL, 0);
    *r = out;
    return KV_OK;
}

bool kv_record_live(const struct kv_record *r, uint64_t now_ms)
{
    if (r->tombstone)
        return false;
    return r->expires_at_ms == 0 || r->expires_at_ms > now_ms;
}
