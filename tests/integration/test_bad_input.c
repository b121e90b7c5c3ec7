/* tests/integration/test_bad_input.c -- hostile bytes cost a real kvd little: every kind of
 * bad input gets a clear error (and a close where the stream cannot be resynchronised), a
 * normal client keeps being served, and 100 repetitions grow the server's RSS by < 1 MiB.
 *
 * (1) The inputs: a frame header announcing 1 GiB; a value over max_value; an LZ4 value
 *     announcing 1 GiB once unpacked; a repeated-field bomb (a PeerMessage write of 100000
 *     empty Records in a 200 KB frame, which protobuf-c alone would turn into ~8 MB); nested
 *     groups 10000 deep and an unknown field nesting length-delimited fields 2000 deep; scan
 *     cursors from "another build" (an unknown tag) and oversized ones; a bad checksum.
 * (2) RSS is VmRSS from /proc/PID/status, read after a warm-up round of each input (so
 *     buffers that are kept and reused by design are counted once, before) and again after
 *     100 more. kvd runs with a small ASan quarantine: in sanitized builds freed memory is
 *     otherwise held back for reuse detection, which would count as growth without being
 *     kept by kvd (a real leak is still one: it is never freed, and LSan reports it). */
#include <check.h>
#include "tests/check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <kv/client.h>
#include "proto/codec.h"
#include "proto/frame.h"
#include "tests/integration/harness.h"

#define MAX_VALUE 65536
#define REPEAT 100
#define WARMUP 20

static struct kvd_proc g_node;
static struct kvc_client *g_good;   /* the normal client that must keep being served */

/* --- raw connections ---------------------------------------------------------------------- */

static int raw_connect(void)
{
    int fd = kvd_connect_raw(&g_node);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {10, 0};    /* a missing answer fails the test, never hangs it */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
    ck_assert_int_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void send_payload(int fd, const void *p, size_t n)
{
    uint8_t hdr[KV_FRAME_HDR];
    kv_frame_header(hdr, p, (uint32_t)n);
    raw_send(fd, hdr, sizeof hdr);
    raw_send(fd, p, n);
}

static void send_request(int fd, Kv__Request *req)
{
    struct kv_vec v = {0};
    ck_assert_int_eq(kv_codec_frame_append(&v, &req->base, 1u << 24, NULL), KV_OK);
    raw_send(fd, v.ptr, v.len);
    kv_vec_free(&v);
}

/* Reads one answer and checks it: status st and a message that says why. */
static void expect_error(int fd, Kv__Status st, const char *what)
{
    static uint8_t buf[65536];
    size_t len = 0;
    for (;;) {
        struct kv_slice payload;
        size_t flen;
        enum kv_status s = kv_frame_decode(buf, len, sizeof buf, &payload, &flen, NULL);
        if (s == KV_OK) {
            Kv__Response *r = NULL;
            ck_assert_int_eq(kv_codec_decode_resp(payload, &r, NULL), KV_OK);
            ck_assert_msg(r->status == st, "%s: status %d, want %d (%s)", what, r->status, st,
                          r->message);
            ck_assert_msg(r->message && r->message[0], "%s: an error always says why", what);
            kv__response__free_unpacked(r, NULL);
            return;
        }
        ck_assert_int_eq(s, KV_AGAIN);
        ssize_t n = recv(fd, buf + len, sizeof buf - len, 0);
        ck_assert_msg(n > 0, "%s: no answer before the connection ended", what);
        len += (size_t)n;
    }
}

static void expect_closed(int fd, const char *what)
{
    char b;
    ck_assert_msg(recv(fd, &b, 1, 0) == 0, "%s: the server must close after the error", what);
}

/* --- the inputs (1) ----------------------------------------------------------------------- */

static void header_1gib(void)
{
    int fd = raw_connect();
    uint8_t hdr[KV_FRAME_HDR] = {0x40, 0, 0, 0, 0, 0, 0, 0};   /* 1 GiB, never sent */
    raw_send(fd, hdr, sizeof hdr);
    expect_error(fd, KV__STATUS__TOO_LARGE, "1 GiB header");
    expect_closed(fd, "1 GiB header");
    close(fd);
}

static void bad_checksum(void)
{
    int fd = raw_connect();
    uint8_t f[12] = {0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};
    raw_send(fd, f, sizeof f);
    expect_error(fd, KV__STATUS__MALFORMED, "bad checksum");
    expect_closed(fd, "bad checksum");
    close(fd);
}

static void value_over_max(void)
{
    static uint8_t big[MAX_VALUE + 1];
    int fd = raw_connect();
    Kv__PutRequest p = KV__PUT_REQUEST__INIT;
    p.key.data = (uint8_t *)"big";
    p.key.len = 3;
    p.value.data = big;
    p.value.len = sizeof big;
    Kv__Request r = KV__REQUEST__INIT;
    r.id = 7;
    r.op_case = KV__REQUEST__OP_PUT;
    r.put = &p;
    send_request(fd, &r);
    expect_error(fd, KV__STATUS__TOO_LARGE, "value over max_value");
    close(fd);
}

static void lz4_claims_1gib(void)
{
    int fd = raw_connect();
    Kv__PutRequest p = KV__PUT_REQUEST__INIT;
    p.key.data = (uint8_t *)"lz4";
    p.key.len = 3;
    p.value.data = (uint8_t *)"\x1f\x00\x01\x00";
    p.value.len = 4;
    p.lz4 = true;
    p.raw_len = 1u << 30;
    Kv__Request r = KV__REQUEST__INIT;
    r.id = 8;
    r.op_case = KV__REQUEST__OP_PUT;
    r.put = &p;
    send_request(fd, &r);
    expect_error(fd, KV__STATUS__TOO_LARGE, "LZ4 value announcing 1 GiB");
    close(fd);
}

/* Request{peer{write{records: n empty Records}}} (tests/unit/test_proto.c's bomb). */
static size_t repeated_bomb(uint8_t *buf, size_t n)
{
    size_t inner = 2 * n;
    uint8_t *p = buf;
    size_t peer_len = 1 + 3 + inner;
    *p++ = 0xa2, *p++ = 0x01;   /* field 20 (peer), length-delimited, 3-byte length */
    *p++ = (uint8_t)(0x80 | (peer_len & 0x7f)), *p++ = (uint8_t)(0x80 | (peer_len >> 7 & 0x7f)),
    *p++ = (uint8_t)(peer_len >> 14);
    *p++ = 0x5a;                /* field 11 (write) */
    *p++ = (uint8_t)(0x80 | (inner & 0x7f)), *p++ = (uint8_t)(0x80 | (inner >> 7 & 0x7f)),
    *p++ = (uint8_t)(inner >> 14);
    for (size_t i = 0; i < n; i++)
        *p++ = 0x0a, *p++ = 0x00;   /* records: an empty Record */
    return (size_t)(p - buf);
}

static void protobuf_bomb(void)
{
    enum { N = 100000 };
    static uint8_t bomb[16 + 2 * N];
    size_t len = repeated_bomb(bomb, N);
    int fd = raw_connect();
    send_payload(fd, bomb, len);
    expect_error(fd, KV__STATUS__TOO_LARGE, "repeated-field bomb");
    close(fd);
}

static void nested_groups(void)
{
    enum { DEPTH = 10000 };
    static uint8_t p[2 + 2 * DEPTH];
    size_t n = 0;
    p[n++] = 0x08, p[n++] = 0x05;               /* id = 5 */
    for (int i = 0; i < DEPTH; i++)
        p[n++] = 0xfb, p[n++] = 0x07;           /* start group, field 127 */
    int fd = raw_connect();
    send_payload(fd, p, n);
    expect_error(fd, KV__STATUS__MALFORMED, "nested groups");
    close(fd);
}

static void nested_length_delimited(void)
{
    /* Field 127 holding field 127 holding ... 2000 deep, each a 2-byte length prefix. */
    enum { DEPTH = 2000 };
    static uint8_t p[8 + 4 * DEPTH];
    size_t n = 4 * DEPTH;
    for (int i = DEPTH - 1; i >= 0; i--) {
        size_t inner = 4 * (size_t)(DEPTH - 1 - i);
        uint8_t *q = p + 2 + 4 * (size_t)i;
        q[0] = 0xfa, q[1] = 0x07;               /* field 127, length-delimited */
        q[2] = (uint8_t)(0x80 | (inner & 0x7f)), q[3] = (uint8_t)(inner >> 7);
    }
    p[0] = 0x08, p[1] = 0x06;                   /* id = 6 */
    n += 2;
    int fd = raw_connect();
    send_payload(fd, p, n);
    expect_error(fd, KV__STATUS__INVALID_ARGUMENT, "nested unknown fields");
    close(fd);
}

static void foreign_cursors(void)
{
    static uint8_t huge[1 + 5000];
    memset(huge, 'k', sizeof huge);
    huge[0] = 0x01;                             /* the right tag, a key over max_key */
    int fd = raw_connect();
    Kv__ScanRequest s = KV__SCAN_REQUEST__INIT;
    Kv__Request r = KV__REQUEST__INIT;
    r.op_case = KV__REQUEST__OP_SCAN;
    r.scan = &s;
    r.id = 9;
    s.cursor.data = (uint8_t *)"\x02v2:opaque-cursor-of-another-build";
    s.cursor.len = 34;
    send_request(fd, &r);
    expect_error(fd, KV__STATUS__INVALID_ARGUMENT, "cursor with an unknown tag");
    r.id = 10;
    s.cursor.data = huge;
    s.cursor.len = sizeof huge;
    send_request(fd, &r);
    expect_error(fd, KV__STATUS__INVALID_ARGUMENT, "oversized cursor");
    close(fd);
}

/* --- the test ----------------------------------------------------------------------------- */

static long vm_rss_kib(pid_t pid)
{
    long kib = kvd_rss_kib(pid);
    ck_assert_msg(kib > 0, "no VmRSS for pid %d", (int)pid);
    return kib;
}

static void still_served(const char *after)
{
    struct kvc_value v;
    struct kvc_err err;
    int rc = kvc_get(g_good, "stable", 6, &v, NULL, &err);
    ck_assert_msg(rc == KVC_OK, "after %s the normal client failed: %s", after, err.msg);
    ck_assert_uint_eq(v.len, 3);
    ck_assert_int_eq(memcmp(v.data, "yes", 3), 0);
    kvc_value_free(&v);
}

static const struct { const char *name; void (*send)(void); } CASES[] = {
    {"header announcing 1 GiB", header_1gib},
    {"bad checksum", bad_checksum},
    {"value over max_value", value_over_max},
    {"LZ4 value announcing 1 GiB", lz4_claims_1gib},
    {"repeated-field protobuf bomb", protobuf_bomb},
    {"nested groups", nested_groups},
    {"nested length-delimited unknown fields", nested_length_delimited},
    {"cursors from another build", foreign_cursors},
};

START_TEST(test_each_bad_input_gets_an_error_and_costs_under_a_mebibyte_over_100_sends)
{
    /* (2) A small quarantine for the server. */
    char maxv[16];
    snprintf(maxv, sizeof maxv, "%d", MAX_VALUE);
    const char *const extra[] = {"--max-value", maxv, NULL};
    ck_assert_int_eq(kvd_start_lean(&g_node, extra), 0);

    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = g_node.addr;
    struct kvc_err err;
    ck_assert_int_eq(kvc_connect(&o, &g_good, &err), KVC_OK);
    ck_assert_int_eq(kvc_put(g_good, "stable", 6, "yes", 3, NULL, &err), KVC_OK);

    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        for (int i = 0; i < WARMUP; i++)
            CASES[c].send();
        still_served(CASES[c].name);
        long before = vm_rss_kib(g_node.pid);
        for (int i = 0; i < REPEAT; i++)
            CASES[c].send();
        still_served(CASES[c].name);
        long after = vm_rss_kib(g_node.pid);
        printf("bad input: %-40s x%d: VmRSS %ld -> %ld KiB (%+ld)\n", CASES[c].name, REPEAT,
               before, after, after - before);
        ck_assert_msg(after - before < 1024, "%s x%d grew kvd's RSS by %ld KiB (limit 1 MiB)",
                      CASES[c].name, REPEAT, after - before);
    }
    kvc_close(g_good);
    g_good = NULL;
}
END_TEST

static void stop_node(void)
{
    kvc_close(g_good);
    g_good = NULL;
    kvd_cleanup(&g_node);
}

int main(void)
{
    Suite *s = suite_create("bad_input");
    TCase *t = tcase_create("kvd");
    tcase_add_checked_fixture(t, NULL, stop_node);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, test_each_bad_input_gets_an_error_and_costs_under_a_mebibyte_over_100_sends);
    suite_add_tcase(s, t);
    /* No fork: the fixture must see the kvd PID the test started, to stop it on failure. */
    return kv_check_run(s, false);
}
