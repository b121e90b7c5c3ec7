/* tests/unit/test_client.c -- libkvclient against a scripted fake server on a thread.
 *
 * Each test starts a fake server listening on 127.0.0.1 (port 0) whose handler reads
 * request frames and writes whatever responses the test scripts: out of order, late,
 * corrupt, or not at all. The client under test is the real library over real sockets.
 * These tests run the client in plain mode (token_aware off: no cluster_status request
 * at connect); routing over a fake cluster is in test_client_routing.c. */
#include <arpa/inet.h>
#include <check.h>
#include "tests/check_run.h"
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "common/clock.h"
#include "kv/client.h"
#include "proto/codec.h"
#include "proto/frame.h"

/* --- the fake server -------------------------------------------------------------------- */

struct fake;
typedef void (*fake_handler)(struct fake *f, int fd);

struct fake {
    int lfd;
    int port;
    pthread_t th;
    atomic_bool stop;
    fake_handler handler;
    int conns;                 /* connections accepted (read after fake_stop) */
    /* scratch shared by handlers and tests (read after fake_stop, or under the protocol
     * of the test, never concurrently) */
    uint64_t ids[16];
    int nids;
    bool put_was_lz4;
    size_t put_wire_len;
    uint8_t *stored;           /* the put's wire value, echoed back by a get */
    size_t stored_len;
    uint32_t stored_raw_len;
    /* h_overload: answer the first `shed` requests OVERLOADED with retry_after_ms, and note
     * when each request arrived and the timeout it carried */
    int shed;
    uint32_t retry_after_ms;
    uint64_t at_ns[64];
    uint32_t timeout_ms[64];
    int seen;
};

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {.fd = f->lfd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        f->conns++;
        f->handler(f, fd);
        close(fd);
    }
    return NULL;
}

static void fake_start(struct fake *f, fake_handler h)
{
    memset(f, 0, sizeof *f);
    f->handler = h;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(f->lfd, 0);
    int one = 1;
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(f->lfd, 8), 0);
    socklen_t len = sizeof sa;
    getsockname(f->lfd, (struct sockaddr *)&sa, &len);
    f->port = ntohs(sa.sin_port);
    ck_assert_int_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->th, NULL);
    close(f->lfd);
    free(f->stored);
}

/* A port on 127.0.0.1 that nothing listens on (bound once, then released). */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static bool read_full(int fd, void *p, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static void write_full(int fd, const void *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = send(fd, (const char *)p + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

/* Reads one request frame; NULL when the client went away. */
static Kv__Request *read_req(int fd)
{
    uint8_t hdr[KV_FRAME_HDR];
    if (!read_full(fd, hdr, sizeof hdr))
        return NULL;
    uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    uint8_t *buf = malloc(KV_FRAME_HDR + len);
    memcpy(buf, hdr, sizeof hdr);
    if (!read_full(fd, buf + KV_FRAME_HDR, len)) {
        free(buf);
        return NULL;
    }
    struct kv_slice payload;
    size_t flen;
    ck_assert_int_eq(kv_frame_decode(buf, KV_FRAME_HDR + len, 1u << 30, &payload, &flen, NULL),
                     KV_OK);
    Kv__Request *req = NULL;
    ck_assert_int_eq(kv_codec_decode_req(payload, NULL, &req, NULL), KV_OK);
    free(buf);
    return req;
}

static void send_resp(int fd, const Kv__Response *r, bool corrupt)
{
    struct kv_vec v = {0};
    ck_assert_int_eq(kv_codec_frame_append(&v, &r->base, 1u << 30, NULL), KV_OK);
    if (corrupt)
        v.ptr[5] ^= 0x5a;   /* flip checksum bits */
    write_full(fd, v.ptr, v.len);
    kv_vec_free(&v);
}

/* Answers a get with value "v:" + key. */
static void send_get(int fd, const Kv__Request *req)
{
    static _Thread_local char val[KVC_MAX_KEY + 8];
    int n = snprintf(val, sizeof val, "v:%.*s", (int)req->get->key.len, req->get->key.data);
    Kv__Response r = KV__RESPONSE__INIT;
    Kv__GetResponse g = KV__GET_RESPONSE__INIT;
    r.id = req->id;
    g.value.data = (uint8_t *)val;
    g.value.len = (size_t)n;
    g.version = 42;
    r.result_case = KV__RESPONSE__RESULT_GET;
    r.get = &g;
    send_resp(fd, &r, false);
}

static struct kvc_client *connect_to(const char *addrs)
{
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = addrs;
    o.connect_timeout_ms = 1000;
    o.token_aware = false;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    int rc = kvc_connect(&o, &c, &err);
    ck_assert_msg(rc == KVC_OK, "connect %s: %s", addrs, err.msg);
    return c;
}

static struct kvc_client *connect_fake(const struct fake *f)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f->port);
    return connect_to(addr);
}

/* --- handlers --------------------------------------------------------------------------- */

static void h_reverse(struct fake *f, int fd)
{
    Kv__Request *reqs[5];
    for (int i = 0; i < 5; i++) {
        if (!(reqs[i] = read_req(fd))) {
            while (i--)
                kv__request__free_unpacked(reqs[i], NULL);
            return;
        }
        f->ids[f->nids++] = reqs[i]->id;
    }
    for (int i = 4; i >= 0; i--) {
        send_get(fd, reqs[i]);
        kv__request__free_unpacked(reqs[i], NULL);
    }
}

/* First request: answered only after the second one arrives, and before it. */
static void h_late(struct fake *f, int fd)
{
    (void)f;
    Kv__Request *slow = read_req(fd);
    if (!slow)
        return;
    Kv__Request *fast = read_req(fd);
    if (fast) {
        send_get(fd, slow);   /* late: the client has timed it out */
        send_get(fd, fast);
        kv__request__free_unpacked(fast, NULL);
    }
    kv__request__free_unpacked(slow, NULL);
}

static void h_close_after_read(struct fake *f, int fd)
{
    (void)f;
    Kv__Request *r = read_req(fd);
    if (r)
        kv__request__free_unpacked(r, NULL);
}

static void h_echo_get(struct fake *f, int fd)
{
    (void)f;
    Kv__Request *r;
    while ((r = read_req(fd))) {
        send_get(fd, r);
        kv__request__free_unpacked(r, NULL);
    }
}

static void h_corrupt(struct fake *f, int fd)
{
    (void)f;
    Kv__Request *r = read_req(fd);
    if (!r)
        return;
    Kv__Response resp = KV__RESPONSE__INIT;
    resp.id = r->id;
    send_resp(fd, &resp, true);
    kv__request__free_unpacked(r, NULL);
    char b;
    (void)read(fd, &b, 1);   /* wait for the client to hang up */
}

/* Put: remember the wire value. Get: answer with it, compressed as it came. */
static void h_store(struct fake *f, int fd)
{
    Kv__Request *r;
    while ((r = read_req(fd))) {
        Kv__Response resp = KV__RESPONSE__INIT;
        Kv__GetResponse g = KV__GET_RESPONSE__INIT;
        Kv__WriteResponse w = KV__WRITE_RESPONSE__INIT;
        resp.id = r->id;
        if (r->op_case == KV__REQUEST__OP_PUT) {
            f->put_was_lz4 = r->put->lz4;
            f->put_wire_len = r->put->value.len;
            free(f->stored);
            f->stored = malloc(r->put->value.len);
            memcpy(f->stored, r->put->value.data, r->put->value.len);
            f->stored_len = r->put->value.len;
            f->stored_raw_len = r->put->raw_len;
            resp.result_case = KV__RESPONSE__RESULT_WRITE;
            resp.write = &w;
        } else {
            g.value.data = f->stored;
            g.value.len = f->stored_len;
            g.lz4 = f->put_was_lz4;
            g.raw_len = f->stored_raw_len;
            resp.result_case = KV__RESPONSE__RESULT_GET;
            resp.get = &g;
        }
        send_resp(fd, &resp, false);
        kv__request__free_unpacked(r, NULL);
    }
}

/* Every request fails: gets NOT_FOUND, everything else TIMEOUT with figures. */
static void h_errors(struct fake *f, int fd)
{
    (void)f;
    Kv__Request *r;
    while ((r = read_req(fd))) {
        Kv__Response resp = KV__RESPONSE__INIT;
        resp.id = r->id;
        if (r->op_case == KV__REQUEST__OP_GET) {
            resp.status = KV__STATUS__NOT_FOUND;
        } else {
            resp.status = KV__STATUS__TIMEOUT;
            resp.message = "write timed out";
            resp.acks = 1;
            resp.required = 2;
        }
        send_resp(fd, &resp, false);
        kv__request__free_unpacked(r, NULL);
    }
}

/* Reads every request and answers none, until the client hangs up. */
static void h_silent(struct fake *f, int fd)
{
    (void)f;
    Kv__Request *r;
    while ((r = read_req(fd)))
        kv__request__free_unpacked(r, NULL);
}

/* Sheds the first f->shed requests (OVERLOADED, f->retry_after_ms), then answers puts OK. */
static void h_overload(struct fake *f, int fd)
{
    Kv__Request *r;
    while ((r = read_req(fd))) {
        if (f->seen < 64) {
            f->at_ns[f->seen] = kv_clock_mono_ns();
            f->timeout_ms[f->seen] = r->timeout_ms;
        }
        Kv__Response resp = KV__RESPONSE__INIT;
        Kv__WriteResponse w = KV__WRITE_RESPONSE__INIT;
        resp.id = r->id;
        if (f->seen++ < f->shed) {
            resp.status = KV__STATUS__OVERLOADED;
            resp.message = "node overloaded";
            resp.retry_after_ms = f->retry_after_ms;
        } else {
            resp.result_case = KV__RESPONSE__RESULT_WRITE;
            resp.write = &w;
        }
        send_resp(fd, &resp, false);
        kv__request__free_unpacked(r, NULL);
    }
}

/* --- tests ------------------------------------------------------------------------------ */

START_TEST(test_client_put_shed_as_overloaded_is_resent_after_the_nodes_pause_until_it_lands)
{
    struct fake f;
    fake_start(&f, h_overload);
    f.shed = 3;                 /* read by the handler only once the client connects */
    f.retry_after_ms = 20;
    struct kvc_client *c = connect_fake(&f);
    struct kvc_call call = {.timeout_ms = 3000};
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "k", 1, "v", 1, &call, &err), KVC_OK);
    kvc_close(c);
    fake_stop(&f);
    ck_assert_int_eq(f.seen, 4);
    for (int i = 1; i < 4; i++) {
        /* at least the node's pause between attempts, and each carries less of the deadline */
        ck_assert_uint_ge(f.at_ns[i] - f.at_ns[i - 1], 20u * 1000000u);
        ck_assert_uint_lt(f.timeout_ms[i], f.timeout_ms[i - 1]);
    }
}
END_TEST

START_TEST(test_client_overloaded_until_the_deadline_answers_overloaded_at_the_deadline)
{
    struct fake f;
    fake_start(&f, h_overload);
    f.shed = 1000;                 /* read by the handler only once the client connects */
    f.retry_after_ms = 30;
    struct kvc_client *c = connect_fake(&f);
    struct kvc_call call = {.timeout_ms = 400};
    struct kvc_err err;
    uint64_t t0 = kv_clock_mono_ns();
    ck_assert_int_eq(kvc_put(c, "k", 1, "v", 1, &call, &err), KVC_OVERLOADED);
    uint64_t took_ms = (kv_clock_mono_ns() - t0) / 1000000u;
    kvc_close(c);
    fake_stop(&f);
    ck_assert_msg(strstr(err.msg, "overloaded"), "message: %s", err.msg);
    ck_assert_int_ge(f.seen, 2);                 /* it did try again */
    ck_assert_int_le(f.seen, 400 / 30 + 1);      /* never sooner than the node asked */
    ck_assert_uint_le(took_ms, 400);             /* and never past the call's deadline */
}
END_TEST

START_TEST(test_client_pipelined_op_shed_as_overloaded_completes_with_the_nodes_hint)
{
    struct fake f;
    fake_start(&f, h_overload);
    f.shed = 1000;                 /* read by the handler only once the client connects */
    f.retry_after_ms = 25;
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op op = {.type = KVC_OP_PUT, .key = "k", .key_len = 1, .value = "v",
                        .value_len = 1};
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, &op, 1, &err), KVC_OK);
    ck_assert_int_eq(op.err.code, KVC_OVERLOADED);
    ck_assert_uint_eq(op.retry_after_ms, 25);
    kvc_close(c);
    fake_stop(&f);
    ck_assert_int_eq(f.seen, 1);                 /* (4): never resent by the library */
}
END_TEST

START_TEST(test_client_pipelined_answers_in_reverse_order_are_matched_by_id)
{
    struct fake f;
    fake_start(&f, h_reverse);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op ops[5];
    char keys[5][8];
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < 5; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        ops[i].type = KVC_OP_GET;
        ops[i].key = keys[i];
        ops[i].key_len = strlen(keys[i]);
    }
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, ops, 5, &err), KVC_OK);
    for (int i = 0; i < 5; i++) {
        char want[16];
        snprintf(want, sizeof want, "v:%s", keys[i]);
        ck_assert(ops[i].done);
        ck_assert_msg(ops[i].err.code == KVC_OK, "op %d: %s", i, ops[i].err.msg);
        ck_assert_str_eq((const char *)ops[i].result.data, want);
        ck_assert_uint_eq(ops[i].result.version, 42);
        kvc_value_free(&ops[i].result);
    }
    ck_assert_uint_eq(kvc_pending(c), 0);
    kvc_close(c);
    fake_stop(&f);
    ck_assert_int_eq(f.nids, 5);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            ck_assert_uint_ne(f.ids[i], f.ids[j]);
}
END_TEST

START_TEST(test_client_op_without_answer_times_out_and_its_late_answer_is_ignored)
{
    struct fake f;
    fake_start(&f, h_late);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op slow = {.type = KVC_OP_GET, .key = "slow", .key_len = 4};
    slow.call.timeout_ms = 100;
    struct kvc_err err;
    ck_assert_int_eq(kvc_submit(c, &slow, NULL, NULL, &err), KVC_OK);
    while (!slow.done)
        ck_assert_int_ge(kvc_poll(c, -1, &err), 0);
    ck_assert_int_eq(slow.err.code, KVC_TIMEOUT);
    ck_assert_ptr_nonnull(strstr(slow.err.msg, "outcome unknown"));
    ck_assert_ptr_null(slow.result.data);

    /* The server now answers "slow" first, then "fast": only "fast" may complete. */
    struct kvc_value v;
    ck_assert_int_eq(kvc_get(c, "fast", 4, &v, NULL, &err), KVC_OK);
    ck_assert_str_eq((const char *)v.data, "v:fast");
    ck_assert_ptr_null(slow.result.data);
    kvc_value_free(&v);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_connection_loss_completes_in_flight_ops_with_conn)
{
    struct fake f;
    fake_start(&f, h_close_after_read);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op ops[3] = {
        {.type = KVC_OP_PUT, .key = "a", .key_len = 1, .value = "1", .value_len = 1},
        {.type = KVC_OP_GET, .key = "b", .key_len = 1},
        {.type = KVC_OP_DELETE, .key = "c", .key_len = 1},
    };
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, ops, 3, &err), KVC_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(ops[i].err.code, KVC_CONN);
        ck_assert_ptr_nonnull(strstr(ops[i].err.msg, "connection lost; outcome unknown"));
    }
    ck_assert_uint_eq(kvc_pending(c), 0);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_fails_over_to_the_second_address_when_the_first_refuses)
{
    struct fake f;
    fake_start(&f, h_echo_get);
    char addrs[64];
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,127.0.0.1:%d", dead_port(), f.port);
    struct kvc_client *c = connect_to(addrs);
    struct kvc_value v;
    struct kvc_err err;
    ck_assert_int_eq(kvc_get(c, "x", 1, &v, NULL, &err), KVC_OK);
    ck_assert_str_eq((const char *)v.data, "v:x");
    kvc_value_free(&v);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_reconnects_to_the_next_address_after_a_connection_breaks)
{
    struct fake a, b;
    fake_start(&a, h_close_after_read);
    fake_start(&b, h_echo_get);
    char addrs[64];
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,127.0.0.1:%d", a.port, b.port);
    struct kvc_client *c = connect_to(addrs);
    struct kvc_value v;
    struct kvc_err err;
    /* A write whose connection breaks is never resent: its outcome is unknown. */
    ck_assert_int_eq(kvc_put(c, "x", 1, "1", 1, NULL, &err), KVC_CONN);
    ck_assert_ptr_nonnull(strstr(err.msg, "outcome unknown"));
    ck_assert_int_eq(kvc_get(c, "y", 1, &v, NULL, &err), KVC_OK);
    ck_assert_str_eq((const char *)v.data, "v:y");
    kvc_value_free(&v);
    kvc_close(c);
    fake_stop(&a);
    fake_stop(&b);
    ck_assert_int_eq(a.conns, 1);
    ck_assert_int_eq(b.conns, 1);
}
END_TEST

START_TEST(test_client_get_whose_connection_breaks_is_retried_once_on_the_next_address)
{
    struct fake a, b;
    fake_start(&a, h_close_after_read);
    fake_start(&b, h_echo_get);
    char addrs[64];
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,127.0.0.1:%d", a.port, b.port);
    struct kvc_client *c = connect_to(addrs);
    struct kvc_value v;
    struct kvc_err err;
    ck_assert_int_eq(kvc_get(c, "x", 1, &v, NULL, &err), KVC_OK);
    ck_assert_str_eq((const char *)v.data, "v:x");
    kvc_value_free(&v);
    kvc_close(c);
    fake_stop(&a);
    fake_stop(&b);
    ck_assert_int_eq(a.conns, 1);
    ck_assert_int_eq(b.conns, 1);
}
END_TEST

START_TEST(test_client_pipelined_get_whose_connection_breaks_is_not_resent)
{
    struct fake a, b;
    fake_start(&a, h_close_after_read);
    fake_start(&b, h_echo_get);
    char addrs[64];
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,127.0.0.1:%d", a.port, b.port);
    struct kvc_client *c = connect_to(addrs);
    struct kvc_op op = {.type = KVC_OP_GET, .key = "x", .key_len = 1};
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, &op, 1, &err), KVC_OK);
    ck_assert_int_eq(op.err.code, KVC_CONN);
    ck_assert_ptr_nonnull(strstr(op.err.msg, "connection lost"));
    /* Resubmitting is the caller's choice; it goes past the failed address. */
    ck_assert_int_eq(kvc_exec(c, &op, 1, &err), KVC_OK);
    ck_assert_int_eq(op.err.code, KVC_OK);
    ck_assert_str_eq((const char *)op.result.data, "v:x");
    kvc_value_free(&op.result);
    kvc_close(c);
    fake_stop(&a);
    fake_stop(&b);
}
END_TEST

START_TEST(test_client_connect_fails_with_conn_when_no_address_answers)
{
    char addrs[64];
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,127.0.0.1:%d", dead_port(), dead_port());
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = addrs;
    struct kvc_client *c = (struct kvc_client *)1;
    struct kvc_err err;
    ck_assert_int_eq(kvc_connect(&o, &c, &err), KVC_CONN);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(err.code, KVC_CONN);
    ck_assert_ptr_nonnull(strstr(err.msg, "2 addresses"));
}
END_TEST

START_TEST(test_client_response_with_a_bad_checksum_closes_the_connection_with_proto)
{
    struct fake f;
    fake_start(&f, h_corrupt);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_value v;
    struct kvc_err err;
    ck_assert_int_eq(kvc_get(c, "k", 1, &v, NULL, &err), KVC_PROTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "checksum"));
    ck_assert_int_eq(kvc_fd(c), -1);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_rejects_empty_and_oversized_keys_before_sending)
{
    struct fake f;
    fake_start(&f, h_echo_get);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "", 0, "v", 1, NULL, &err), KVC_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "key is empty"));
    static char big[KVC_MAX_KEY + 1];
    memset(big, 'k', sizeof big);
    struct kvc_value v;
    ck_assert_int_eq(kvc_get(c, big, sizeof big, &v, NULL, &err), KVC_TOO_LARGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "4096"));
    ck_assert_ptr_null(v.data);
    ck_assert_int_eq(kvc_delete(c, NULL, 3, NULL, &err), KVC_INVALID);
    struct kvc_scan_args sa = {.start = big, .start_len = sizeof big};
    struct kvc_scan_result sr;
    ck_assert_int_eq(kvc_scan(c, &sa, NULL, &sr, &err), KVC_TOO_LARGE);
    ck_assert_uint_eq(kvc_pending(c), 0);
    /* A key of exactly the limit is fine. */
    ck_assert_int_eq(kvc_get(c, big, KVC_MAX_KEY, &v, NULL, &err), KVC_OK);
    kvc_value_free(&v);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_large_compressible_value_travels_lz4_and_comes_back_intact)
{
    struct fake f;
    fake_start(&f, h_store);
    struct kvc_client *c = connect_fake(&f);
    size_t n = 200000;
    uint8_t *val = malloc(n);
    for (size_t i = 0; i < n; i++)
        val[i] = (uint8_t)("abcdefgh"[i % 8] + (i / 5000) % 3);
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "big", 3, val, n, NULL, &err), KVC_OK);
    struct kvc_value v;
    ck_assert_int_eq(kvc_get(c, "big", 3, &v, NULL, &err), KVC_OK);
    ck_assert_uint_eq(v.len, n);
    ck_assert_int_eq(memcmp(v.data, val, n), 0);
    ck_assert_uint_eq(v.data[n], 0);
    kvc_value_free(&v);
    kvc_close(c);
    fake_stop(&f);
    ck_assert(f.put_was_lz4);
    ck_assert_uint_lt(f.put_wire_len, n / 4);
    free(val);
}
END_TEST

START_TEST(test_client_small_values_travel_uncompressed)
{
    struct fake f;
    fake_start(&f, h_store);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "k", 1, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 32, NULL, &err), KVC_OK);
    kvc_close(c);
    fake_stop(&f);
    ck_assert(!f.put_was_lz4);
    ck_assert_uint_eq(f.put_wire_len, 32);
}
END_TEST

START_TEST(test_client_server_errors_carry_the_message_and_replica_figures)
{
    struct fake f;
    fake_start(&f, h_errors);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_err err;
    struct kvc_value v = {.len = 7};
    ck_assert_int_eq(kvc_get(c, "k", 1, &v, NULL, &err), KVC_NOT_FOUND);
    ck_assert_ptr_null(v.data);
    ck_assert_uint_eq(v.len, 0);
    ck_assert_str_eq(err.msg, "key not found");
    ck_assert_int_eq(kvc_put(c, "k", 1, "v", 1, NULL, &err), KVC_TIMEOUT);
    ck_assert_str_eq(err.msg, "write timed out (acks 1, required 2)");
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

static void count_cb(struct kvc_op *op, void *arg)
{
    (void)op;
    ++*(int *)arg;
}

START_TEST(test_client_callbacks_run_inside_poll_once_per_op)
{
    struct fake f;
    fake_start(&f, h_echo_get);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op ops[4];
    memset(ops, 0, sizeof ops);
    int calls = 0;
    struct kvc_err err;
    for (int i = 0; i < 4; i++) {
        ops[i].type = KVC_OP_GET;
        ops[i].key = "k";
        ops[i].key_len = 1;
        ck_assert_int_eq(kvc_submit(c, &ops[i], count_cb, &calls, &err), KVC_OK);
    }
    ck_assert_uint_eq(kvc_pending(c), 4);
    ck_assert(kvc_want_write(c));
    while (kvc_pending(c))
        ck_assert_int_ge(kvc_poll(c, 1000, &err), 0);
    ck_assert_int_eq(calls, 4);
    for (int i = 0; i < 4; i++)
        kvc_value_free(&ops[i].result);
    ck_assert_int_eq(kvc_poll(c, 0, &err), 0);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

/* The caller's own event loop: one poll(2) over kvc_fds, then kvc_handle_events. */
static int drive_once(struct kvc_client *c, int timeout_ms)
{
    struct pollfd fds[4];
    size_t n = kvc_fds(c, fds, 4);
    ck_assert_uint_le(n, 4);
    ck_assert_int_ge(poll(fds, n, timeout_ms), 0);
    struct kvc_err err;
    return kvc_handle_events(c, fds, n, &err);
}

struct chain {
    struct kvc_client *c;
    struct kvc_op next;
    int calls;
};

/* Submits c->next from inside the first op's callback. */
static void chain_cb(struct kvc_op *op, void *arg)
{
    (void)op;
    struct chain *ch = arg;
    if (ch->calls++ == 0) {
        struct kvc_err err;
        ck_assert_int_eq(kvc_submit(ch->c, &ch->next, chain_cb, ch, &err), KVC_OK);
    }
}

START_TEST(test_client_handle_events_completes_ops_and_sends_what_callbacks_submit)
{
    struct fake f;
    fake_start(&f, h_echo_get);
    struct kvc_client *c = connect_fake(&f);
    struct chain ch = {.c = c, .next = {.type = KVC_OP_GET, .key = "k2", .key_len = 2}};
    struct kvc_op op = {.type = KVC_OP_GET, .key = "k1", .key_len = 2};
    struct kvc_err err;
    ck_assert_int_eq(kvc_submit(c, &op, chain_cb, &ch, &err), KVC_OK);
    ck_assert(kvc_want_write(c));
    /* The first call has nothing to read: it sends the queued request. */
    ck_assert_int_eq(kvc_handle_events(c, NULL, 0, &err), 0);
    ck_assert(!kvc_want_write(c));
    uint64_t until = kv_clock_mono_ns() + 5000000000ull;
    while (!op.done && kv_clock_mono_ns() < until)
        ck_assert_int_ge(drive_once(c, 100), 0);
    ck_assert(op.done);
    ck_assert_msg(op.err.code == KVC_OK, "%s", op.err.msg);
    ck_assert_str_eq((const char *)op.result.data, "v:k1");
    /* The callback's op left before kvc_handle_events returned: no POLLOUT round. */
    ck_assert_uint_eq(kvc_pending(c), 1);
    ck_assert(!kvc_want_write(c));
    while (!ch.next.done && kv_clock_mono_ns() < until)
        ck_assert_int_ge(drive_once(c, 100), 0);
    ck_assert(ch.next.done);
    ck_assert_str_eq((const char *)ch.next.result.data, "v:k2");
    ck_assert_int_eq(ch.calls, 2);
    kvc_value_free(&op.result);
    kvc_value_free(&ch.next.result);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_handle_events_without_events_expires_ops_past_their_deadline)
{
    struct fake f;
    fake_start(&f, h_silent);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op op = {.type = KVC_OP_GET, .key = "k", .key_len = 1};
    op.call.timeout_ms = 50;
    struct kvc_err err;
    int calls = 0;
    uint64_t t0 = kv_clock_mono_ns();
    ck_assert_int_eq(kvc_submit(c, &op, count_cb, &calls, &err), KVC_OK);
    int completed = 0;
    while (!op.done && kv_clock_mono_ns() - t0 < 5000000000ull) {
        completed += kvc_handle_events(c, NULL, 0, &err);
        usleep(5000);
    }
    ck_assert(op.done);
    ck_assert_int_eq(op.err.code, KVC_TIMEOUT);
    ck_assert_ptr_nonnull(strstr(op.err.msg, "outcome unknown"));
    ck_assert_int_eq(completed, 1);
    ck_assert_int_eq(calls, 1);
    ck_assert_uint_ge(kv_clock_mono_ns() - t0, 50000000ull);
    ck_assert_uint_eq(kvc_pending(c), 0);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_short_deadline_behind_a_long_one_expires_on_time)
{
    struct fake f;
    fake_start(&f, h_silent);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op slow = {.type = KVC_OP_GET, .key = "a", .key_len = 1};
    struct kvc_op fast = {.type = KVC_OP_GET, .key = "b", .key_len = 1};
    slow.call.timeout_ms = 3000;
    fast.call.timeout_ms = 50;
    struct kvc_err err;
    uint64_t t0 = kv_clock_mono_ns();
    ck_assert_int_eq(kvc_submit(c, &slow, NULL, NULL, &err), KVC_OK);
    ck_assert_int_eq(kvc_submit(c, &fast, NULL, NULL, &err), KVC_OK);
    while (!fast.done)
        ck_assert_int_ge(kvc_poll(c, -1, &err), 0);
    ck_assert_int_eq(fast.err.code, KVC_TIMEOUT);
    ck_assert_uint_lt(kv_clock_mono_ns() - t0, 1000000000ull);
    ck_assert(!slow.done);
    ck_assert_uint_eq(kvc_pending(c), 1);
    kvc_close(c);   /* slow completes KVC_CONN */
    ck_assert(slow.done);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_fds_epoch_moves_when_a_socket_closes_and_when_one_opens)
{
    struct fake f;
    fake_start(&f, h_close_after_read);
    struct kvc_client *c = connect_fake(&f);
    struct pollfd fds[2];
    ck_assert_uint_eq(kvc_fds(c, fds, 2), 1);
    uint64_t e0 = kvc_fds_epoch(c);
    ck_assert_uint_eq(kvc_fds_epoch(c), e0);   /* nothing happened */
    struct kvc_op op = {.type = KVC_OP_GET, .key = "k", .key_len = 1};
    struct kvc_err err;
    ck_assert_int_eq(kvc_submit(c, &op, NULL, NULL, &err), KVC_OK);
    ck_assert_uint_eq(kvc_fds_epoch(c), e0);   /* same socket */
    uint64_t until = kv_clock_mono_ns() + 5000000000ull;
    while (!op.done && kv_clock_mono_ns() < until)
        drive_once(c, 100);
    ck_assert_int_eq(op.err.code, KVC_CONN);   /* the fake hung up */
    uint64_t e1 = kvc_fds_epoch(c);
    ck_assert_uint_ne(e1, e0);
    ck_assert_uint_eq(kvc_fds(c, fds, 2), 0);
    /* The next op opens a new socket (which may reuse the old number): the epoch moves. */
    struct kvc_op again = {.type = KVC_OP_GET, .key = "k", .key_len = 1};
    ck_assert_int_eq(kvc_submit(c, &again, NULL, NULL, &err), KVC_OK);
    ck_assert_uint_eq(kvc_fds(c, fds, 2), 1);
    ck_assert_uint_ne(kvc_fds_epoch(c), e1);
    while (!again.done && kv_clock_mono_ns() < until)
        drive_once(c, 100);
    ck_assert(again.done);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_consistency_names_parse_case_insensitively)
{
    enum kvc_consistency cl = KVC_CL_DEFAULT;
    ck_assert_int_eq(kvc_consistency_parse("QUORUM", &cl), 0);
    ck_assert_int_eq(cl, KVC_CL_QUORUM);
    ck_assert_int_eq(kvc_consistency_parse("local_quorum", &cl), 0);
    ck_assert_int_eq(cl, KVC_CL_LOCAL_QUORUM);
    ck_assert_int_eq(kvc_consistency_parse("Each-Quorum", &cl), 0);
    ck_assert_int_eq(cl, KVC_CL_EACH_QUORUM);
    ck_assert_int_eq(kvc_consistency_parse("linearizable", &cl), 0);
    ck_assert_int_eq(cl, KVC_CL_LINEARIZABLE);
    ck_assert_int_eq(kvc_consistency_parse("one", &cl), 0);
    ck_assert_int_eq(cl, KVC_CL_ONE);
    ck_assert_int_eq(kvc_consistency_parse("most", &cl), -1);
    ck_assert_int_eq(kvc_consistency_parse("", &cl), -1);
    ck_assert_int_eq(cl, KVC_CL_ONE);
    ck_assert_str_eq(kvc_consistency_name(KVC_CL_LOCAL_ONE), "local_one");
    ck_assert_str_eq(kvc_status_name(KVC_NOT_FOUND), "NOT_FOUND");
    ck_assert_str_eq(kvc_status_name(12345), "UNKNOWN");
}
END_TEST

static Suite *client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_client_pipelined_answers_in_reverse_order_are_matched_by_id);
    tcase_add_test(tc, test_client_op_without_answer_times_out_and_its_late_answer_is_ignored);
    tcase_add_test(tc, test_client_connection_loss_completes_in_flight_ops_with_conn);
    tcase_add_test(tc, test_client_fails_over_to_the_second_address_when_the_first_refuses);
    tcase_add_test(tc, test_client_reconnects_to_the_next_address_after_a_connection_breaks);
    tcase_add_test(tc, test_client_get_whose_connection_breaks_is_retried_once_on_the_next_address);
    tcase_add_test(tc, test_client_pipelined_get_whose_connection_breaks_is_not_resent);
    tcase_add_test(tc, test_client_connect_fails_with_conn_when_no_address_answers);
    tcase_add_test(tc, test_client_response_with_a_bad_checksum_closes_the_connection_with_proto);
    tcase_add_test(tc, test_client_rejects_empty_and_oversized_keys_before_sending);
    tcase_add_test(tc, test_client_large_compressible_value_travels_lz4_and_comes_back_intact);
    tcase_add_test(tc, test_client_small_values_travel_uncompressed);
    tcase_add_test(tc, test_client_server_errors_carry_the_message_and_replica_figures);
    tcase_add_test(tc, test_client_callbacks_run_inside_poll_once_per_op);
    tcase_add_test(tc, test_client_consistency_names_parse_case_insensitively);
    tcase_add_test(tc, test_client_handle_events_completes_ops_and_sends_what_callbacks_submit);
    tcase_add_test(tc, test_client_handle_events_without_events_expires_ops_past_their_deadline);
    tcase_add_test(tc, test_client_short_deadline_behind_a_long_one_expires_on_time);
    tcase_add_test(tc, test_client_fds_epoch_moves_when_a_socket_closes_and_when_one_opens);
    tcase_add_test(tc, test_client_put_shed_as_overloaded_is_resent_after_the_nodes_pause_until_it_lands);
    tcase_add_test(tc, test_client_overloaded_until_the_deadline_answers_overloaded_at_the_deadline);
    tcase_add_test(tc, test_client_pipelined_op_shed_as_overloaded_completes_with_the_nodes_hint);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kv_check_run(client_suite(), true);
}
