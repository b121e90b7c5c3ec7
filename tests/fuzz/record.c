/* tests/fuzz/record.c -- fuzz target: the on-disk record format and the LWW merge operator.
 *
 * Bytes read back from RocksDB are outside bytes too (a flipped bit, an older build). The
 * merge operator and compaction filter (storage/lww.c) are static functions behind RocksDB
 * callbacks, so this file includes lww.c itself and calls them as RocksDB would, on
 * arbitrary operands.
 * Input: u8 mode | u64 now_ms | u32 grace_ms | operands, each u16 length (big-endian)
 * then its bytes. Mode bit 0: the first operand is the existing value. Bit 1: every
 * operand's checksum is recomputed first (kv_record_seal), so the fuzzer mutates the
 * fields behind it; clear, the bytes are decoded as they are (the checksum path).
 * Properties checked besides "no crash, no sanitizer report":
 * (1) a record that decodes re-encodes to exactly its bytes (record.h; lww.c (2) relies on
 *     records surviving merges bit for bit), and one that does not is KV_CORRUPTION;
 * (2) a full merge succeeds iff every operand decodes and there is at least one, and then
 *     returns one of the operands unchanged;
 * (3) the fold is order-independent (reversed operands give the same bytes), idempotent
 *     (every operand twice gives the same bytes) and associative (a partial merge of a
 *     prefix, then a full merge with the rest, gives the same bytes) -- lww.c (1). */
#include <stdio.h>
#include "storage/lww.c"
#include "tests/fuzz/fuzz_util.h"

#define MAX_OPS 64

struct merged {
    char *p;
    size_t n;
    bool ok;
};

static uint64_t g_now;
static uint64_t fake_now(void) { return g_now; }

static struct merged full(const char *ex, size_t exn, const char *const *ops, const size_t *lens,
                          int n)
{
    unsigned char success = 2;
    struct merged m = {0};
    m.p = lww_full_merge(NULL, "k", 1, ex, exn, ops, lens, n, &success, &m.n);
    FUZZ_CHECK(m.p != NULL && (success == 0 || success == 1));
    m.ok = success == 1;
    if (!m.ok)
        FUZZ_CHECK(m.n == 0);
    return m;
}

static bool same(struct merged a, struct merged b)
{
    return a.ok == b.ok && a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static void release(struct merged m) { lww_delete_value(NULL, m.p, m.n); }

static void check_decode(const uint8_t *p, size_t n)
{
    struct kv_record r;
    struct kv_err err = {0};
    enum kv_status st = kv_record_decode(kv_slice_of(p, n), &r, &err);
    if (st != KV_OK) {
        FUZZ_CHECK(st == KV_CORRUPTION && err.code == KV_CORRUPTION);
        return;
    }
    FUZZ_CHECK(kv_record_encoded_size(&r) == n);                  /* (1) */
    if (r.value.len)
        FUZZ_CHECK((const uint8_t *)r.value.ptr >= p &&
                   (const uint8_t *)r.value.ptr + r.value.len == p + n);
    uint8_t *out = malloc(n ? n : 1);
    FUZZ_CHECK(out);
    FUZZ_CHECK(kv_record_encode(&r, out) == n);
    FUZZ_CHECK(memcmp(out, p, n) == 0);
    free(out);
    (void)kv_record_live(&r, g_now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 13)
        return 0;
    unsigned mode = data[0];
    g_now = (uint64_t)fuzz_be32(data + 1) << 32 | fuzz_be32(data + 5);
    uint32_t grace = fuzz_be32(data + 9);
    /* Operands in their own exact-size buffers, so ASan sees a read past any of them. */
    char *ops[MAX_OPS];
    size_t lens[MAX_OPS];
    int n = 0;
    size_t off = 13;
    while (n < MAX_OPS && size - off >= 2) {
        size_t len = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
        if (len > size - off)
            len = size - off;
        ops[n] = malloc(len ? len : 1);
        memcpy(ops[n], data + off, len);
        if ((mode & 2) && len >= KV_RECORD_HDR_MIN)
            kv_record_seal((uint8_t *)ops[n], len);
        lens[n] = len;
        off += len;
        n++;
    }
    bool all_ok = true;
    for (int i = 0; i < n; i++) {
        check_decode((const uint8_t *)ops[i], lens[i]);
        struct kv_record r;
        if (kv_record_decode(kv_slice_of(ops[i], lens[i]), &r, NULL) != KV_OK)
            all_ok = false;
    }
    const char *ex = NULL;
    size_t exn = 0;
    int first = 0;
    if ((mode & 1) && n > 0) {
        ex = ops[0];
        exn = lens[0];
        first = 1;
    }
    int k = n - first;
    struct merged m = full(ex, exn, (const char *const *)ops + first, lens + first, k);
    FUZZ_CHECK(m.ok == (all_ok && n > 0));                        /* (2) */
    if (m.ok) {
        bool found = false;
        for (int i = 0; i < n && !found; i++)
            found = lens[i] == m.n && memcmp(ops[i], m.p, m.n) == 0;
        FUZZ_CHECK(found);

        /* (3) order: all operands reversed, the existing value as the last operand. */
        const char *rev[MAX_OPS * 2];
        size_t rlen[MAX_OPS * 2];
        for (int i = 0; i < n; i++) {
            rev[i] = ops[n - 1 - i];
            rlen[i] = lens[n - 1 - i];
        }
        struct merged r = full(NULL, 0, rev, rlen, n);
        FUZZ_CHECK(same(m, r));
        release(r);

        /* (3) idempotence: every operand twice. */
        for (int i = 0; i < n; i++) {
            rev[n + i] = ops[i];
            rlen[n + i] = lens[i];
        }
        struct merged d = full(NULL, 0, rev, rlen, 2 * n);
        FUZZ_CHECK(same(m, d));
        release(d);

        /* (3) associativity: a partial merge of the first half of the operands. */
        int half = k / 2;
        if (half > 0) {
            unsigned char success = 2;
            size_t pn = 0;
            char *p = lww_partial_merge(NULL, "k", 1, (const char *const *)ops + first,
                                        lens + first, half, &success, &pn);
            FUZZ_CHECK(p != NULL && success == 1);
            const char *rest[MAX_OPS];
            size_t restn[MAX_OPS];
            rest[0] = p;
            restn[0] = pn;
            for (int i = half; i < k; i++) {
                rest[1 + i - half] = ops[first + i];
                restn[1 + i - half] = lens[first + i];
            }
            struct merged a = full(ex, exn, rest, restn, 1 + k - half);
            FUZZ_CHECK(same(m, a));
            release(a);
            lww_delete_value(NULL, p, pn);
        }
    }
    release(m);

    /* The compaction filter on every operand as a stored value: keeps undecodable bytes
     * (lww.c (4)), never changes a value in place. */
    struct kv_store st;
    memset(&st, 0, sizeof st);
    st.grace_ms = grace;
    st.now_ms = fake_now;
    for (int i = 0; i < n; i++) {
        char *nv = NULL;
        size_t nl = 0;
        unsigned char changed = 7;
        unsigned char drop = purge_filter(&st, 0, "k", 1, ops[i], lens[i], &nv, &nl, &changed);
        FUZZ_CHECK(changed == 0 && nv == NULL);
        struct kv_record r;
        if (kv_record_decode(kv_slice_of(ops[i], lens[i]), &r, NULL) != KV_OK)
            FUZZ_CHECK(drop == 0);
        else if (drop)
            FUZZ_CHECK(r.tombstone || r.expires_at_ms);
    }
    for (int i = 0; i < n; i++)
        free(ops[i]);
    return 0;
}
