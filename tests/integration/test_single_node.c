/* tests/integration/test_single_node.c -- one real kvd process driven through libkvclient
 * and raw sockets: the operations, the limits, malformed input, restarts and kill -9. */
#include <check.h>
#include "tests/check_run.h"
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <kv/client.h>
#include "proto/codec.h"
#include "proto/frame.h"
#include "tests/integration/harness.h"

static struct kvd_proc g_node;

static void stop_node(void) { kvd_cleanup(&g_node); }

static struct kvc_client *client_for(const struct kvd_proc *p)
{
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = p->addr;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    int rc = kvc_connect(&o, &c, &err);
    ck_assert_msg(rc == KVC_OK, "connect %s: %s", p->addr, err.msg);
    return c;
}

static void start_with(const char *const *extra)
{
    ck_assert_int_eq(kvd_start(&g_node, extra), 0);
}

static void put_str(struct kvc_client *c, const char *k, const char *v)
{
    struct kvc_err err;
    int rc = kvc_put(c, k, strlen(k), v, strlen(v), NULL, &err);
    ck_assert_msg(rc == KVC_OK, "put %s: %s", k, err.msg);
}

static void expect_value(struct kvc_client *c, const char *k, const char *v)
{
    struct kvc_value val;
    struct kvc_err err;
    int rc = kvc_get(c, k, strlen(k), &val, NULL, &err);
    ck_assert_msg(rc == KVC_OK, "get %s: %s", k, err.msg);
    ck_assert_uint_eq(val.len, strlen(v));
    ck_assert(memcmp(val.data, v, val.len) == 0);
    kvc_value_free(&val);
}

static void expect_missing(struct kvc_client *c, const char *k)
{
    struct kvc_value val;
    struct kvc_err err;
    ck_assert_int_eq(kvc_get(c, k, strlen(k), &val, NULL, &err), KVC_NOT_FOUND);
}

START_TEST(test_put_get_delete_round_trip_through_the_client)
{
    start_with(NULL);
    struct kvc_client *c = client_for(&g_node);
    put_str(c, "user:1", "alice");
    expect_value(c, "user:1", "alice");
    put_str(c, "user:1", "alice2");
    expect_value(c, "user:1", "alice2");
    struct kvc_err err;
    ck_assert_int_eq(kvc_delete(c, "user:1", 6, NULL, &err), KVC_OK);
    expect_missing(c, "user:1");
    /* Binary keys and values, including NUL bytes, survive the trip. */
    const char bk[] = {0, 1, 2, (char)0xff}, bv[] = {'a', 0, 'b'};
    ck_assert_int_eq(kvc_put(c, bk, sizeof bk, bv, sizeof bv, NULL, &err), KVC_OK);
    struct kvc_value v;
    ck_assert_int_eq(kvc_get(c, bk, sizeof bk, &v, NULL, &err), KVC_OK);
    ck_assert_uint_eq(v.len, 3);
    ck_assert(memcmp(v.data, bv, 3) == 0);
    ck_assert(v.version > 0);
    kvc_value_free(&v);
    kvc_close(c);
}
END_TEST

START_TEST(test_large_compressible_values_round_trip)
{
    start_with(NULL);
    struct kvc_client *c = client_for(&g_node);
    size_t n = 512 * 1024;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + (i / 100) % 7);
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "big", 3, big, n, NULL, &err), KVC_OK);
    struct kvc_value v;
    ck_assert_int_eq(kvc_get(c, "big", 3, &v, NULL, &err), KVC_OK);
    ck_assert_uint_eq(v.len, n);
    ck_assert(memcmp(v.data, big, n) == 0);
    kvc_value_free(&v);
    free(big);
    kvc_close(c);
}
END_TEST

START_TEST(test_ttl_expires_a_value)
{
    start_with(NULL);
    struct kvc_client *c = client_for(&g_node);
    struct kvc_call call = {.ttl_ms = 300};
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "session", 7, "x", 1, &call, &err), KVC_OK);
    struct kvc_value v;
    ck_assert_int_eq(kvc_get(c, "session", 7, &v, NULL, &err), KVC_OK);
    ck_assert(v.expires_at_ms > 0);
    kvc_value_free(&v);
    usleep(600 * 1000);
    expect_missing(c, "session");
    kvc_close(c);
}
END_TEST

/* Collects every key of [start, end) by following cursors with the given page size. */
static int scan_all(struct kvc_client *c, const char *start, const char *end, uint32_t page,
                    char keys[][32], int max)
{
    int n = 0;
    uint8_t *cursor = NULL;
    size_t cursor_len = 0;
    for (;;) {
        struct kvc_scan_args a = {.start = start, .start_len = strlen(start), .end = end,
                                  .end_len = strlen(end), .limit = page, .cursor = cursor,
                                  .cursor_len = cursor_len};
        struct kvc_scan_result r;
        struct kvc_err err;
        ck_assert_msg(kvc_scan(c, &a, NULL, &r, &err) == KVC_OK, "scan: %s", err.msg);
        ck_assert(r.n <= page);
        for (size_t i = 0; i < r.n && n < max; i++, n++)
            snprintf(keys[n], 32, "%.*s", (int)r.items[i].key_len, (char *)r.items[i].key);
        free(cursor);
        cursor = NULL;
        cursor_len = r.cursor_len;
        if (r.cursor) {
            cursor = malloc(r.cursor_len);
            memcpy(cursor, r.cursor, r.cursor_len);
        }
        kvc_scan_result_free(&r);
        if (!cursor)
            break;
    }
    return n;
}

START_TEST(test_scan_pages_follow_cursors_in_key_order_across_tombstones)
{
    start_with(NULL);
    struct kvc_client *c = client_for(&g_node);
    char k[32];
    for (int i = 0; i < 50; i++) {
        snprintf(k, sizeof k, "item:%03d", i);
        put_str(c, k, "v");
    }
    put_str(c, "other:1", "v");
    struct kvc_err err;
    for (int i = 0; i < 50; i += 5) {   /* every fifth key deleted */
        snprintf(k, sizeof k, "item:%03d", i);
        ck_assert_int_eq(kvc_delete(c, k, strlen(k), NULL, &err), KVC_OK);
    }
    char keys[64][32];
    int n = scan_all(c, "item:", "item;", 7, keys, 64);
    ck_assert_int_eq(n, 40);
    int j = 0;
    for (int i = 0; i < 50; i++) {
        if (i % 5 == 0)
            continue;
        snprintf(k, sizeof k, "item:%03d", i);
        ck_assert_str_eq(keys[j++], k);
    }
    /* Resuming from a cursor continues exactly after the last key returned. */
    struct kvc_scan_args a = {.start = "item:", .start_len = 5, .end = "item;", .end_len = 5,
                              .limit = 3};
    struct kvc_scan_result r1, r2;
    ck_assert_int_eq(kvc_scan(c, &a, NULL, &r1, &err), KVC_OK);
    ck_assert_uint_eq(r1.n, 3);
    ck_assert_ptr_nonnull(r1.cursor);
    a.cursor = r1.cursor;
    a.cursor_len = r1.cursor_len;
    ck_assert_int_eq(kvc_scan(c, &a, NULL, &r2, &err), KVC_OK);
    ck_assert_uint_eq(r2.n, 3);
    ck_assert(memcmp(r2.items[0].key, "item:004", 8) == 0);   /* after 001 002 003 */
    kvc_scan_result_free(&r1);
    kvc_scan_result_free(&r2);
    kvc_close(c);
}
END_TEST

START_TEST(test_pipelined_requests_all_complete_on_one_connection)
{
    start_with(NULL);
    struct kvc_client *c = client_for(&g_node);
    enum { N = 2000 };
    static struct kvc_op ops[N];
    static char keys[N][16];
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], 16, "p%05d", i);
        ops[i].type = KVC_OP_PUT;
        ops[i].key = keys[i];
        ops[i].key_len = strlen(keys[i]);
        ops[i].value = keys[i];
        ops[i].value_len = strlen(keys[i]);
    }
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, ops, N, &err), KVC_OK);
    for (int i = 0; i < N; i++)
        ck_assert_msg(ops[i].done && ops[i].err.code == KVC_OK, "op %d: %s", i, ops[i].err.msg);
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < N; i++) {
        ops[i].type = KVC_OP_GET;
        ops[i].key = keys[i];
        ops[i].key_len = strlen(keys[i]);
    }
    ck_assert_int_eq(kvc_exec(c, ops, N, &err), KVC_OK);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(ops[i].err.code, KVC_OK);
        ck_assert_uint_eq(ops[i].result.len, strlen(keys[i]));
        ck_assert(memcmp(ops[i].result.data, keys[i], ops[i].result.len) == 0);
        kvc_value_free(&ops[i].result);
    }
    kvc_close(c);
}
END_TEST

START_TEST(test_limits_are_refused_with_clear_errors_and_nothing_stored)
{
    const char *const extra[] = {"--max-value", "1024", NULL};
    start_with(extra);
    struct kvc_client *c = client_for(&g_node);
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "", 0, "v", 1, NULL, &err), KVC_INVALID);
    char *key = malloc(5000);
    memset(key, 'k', 5000);
    ck_assert_int_eq(kvc_put(c, key, 4097, "v", 1, NULL, &err), KVC_TOO_LARGE);
    ck_assert_int_eq(kvc_put(c, key, 4096, "v", 1, NULL, &err), KVC_OK);
    char *val = calloc(1, 1025);
    int rc = kvc_put(c, "v", 1, val, 1025, NULL, &err);
    ck_assert_int_eq(rc, KVC_TOO_LARGE);
    ck_assert_msg(strstr(err.msg, "1024") != NULL, "message names the limit: %s", err.msg);
    expect_missing(c, "v");
    ck_assert_int_eq(kvc_put(c, "v", 1, val, 1024, NULL, &err), KVC_OK);
    free(key);
    free(val);
    kvc_close(c);
}
END_TEST

/* Reads one response frame from a raw socket; returns its decoded message or NULL on EOF. */
static Kv__Response *raw_read_response(int fd)
{
    uint8_t buf[65536];
    size_t len = 0;
    for (;;) {
        struct kv_slice payload;
        size_t flen;
        enum kv_status st = kv_frame_decode(buf, len, sizeof buf, &payload, &flen, NULL);
        if (st == KV_OK) {
            Kv__Response *r = NULL;
            ck_assert_int_eq(kv_codec_decode_resp(payload, &r, NULL), KV_OK);
            return r;
        }
        ck_assert_int_eq(st, KV_AGAIN);
        ssize_t n = recv(fd, buf + len, sizeof buf - len, 0);
        if (n <= 0)
            return NULL;
        len += (size_t)n;
    }
}

static bool raw_at_eof(int fd)
{
    char b;
    return recv(fd, &b, 1, 0) == 0;
}

static void raw_send(int fd, const void *p, size_t n)
{
    ck_assert_int_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void raw_send_request(int fd, Kv__Request *req)
{
    struct kv_vec v = {0};
    ck_assert_int_eq(kv_codec_frame_append(&v, &req->base, 1u << 24, NULL), KV_OK);
    raw_send(fd, v.ptr, v.len);
    kv_vec_free(&v);
}

static void expect_status(int fd, uint64_t id, Kv__Status st)
{
    Kv__Response *r = raw_read_response(fd);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->id, id);
    ck_assert_msg(r->status == st, "status %d, want %d (%s)", r->status, st, r->message);
    if (st != KV__STATUS__OK)
        ck_assert_msg(r->message && r->message[0], "an error always says why");
    kv__response__free_unpacked(r, NULL);
}

START_TEST(test_malformed_input_gets_an_error_and_other_clients_keep_being_served)
{
    start_with(NULL);
    struct kvc_client *good = client_for(&g_node);
    put_str(good, "stable", "yes");

    /* Garbage: the header decodes to a huge length, refused before any allocation. */
    int fd = kvd_connect_raw(&g_node);
    raw_send(fd, "GET / HTTP/1.1\r\n\r\n", 18);
    expect_status(fd, 0, KV__STATUS__TOO_LARGE);
    ck_assert(raw_at_eof(fd));
    close(fd);
    expect_value(good, "stable", "yes");

    /* A frame over the limit, announced by its header alone. */
    fd = kvd_connect_raw(&g_node);
    uint8_t hdr[8] = {0x10, 0, 0, 0, 0, 0, 0, 0};
    raw_send(fd, hdr, 8);
    expect_status(fd, 0, KV__STATUS__TOO_LARGE);
    ck_assert(raw_at_eof(fd));
    close(fd);

    /* A bad checksum cannot be resynchronised: error, then close. */
    fd = kvd_connect_raw(&g_node);
    uint8_t bad[12] = {0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};
    raw_send(fd, bad, sizeof bad);
    expect_status(fd, 0, KV__STATUS__MALFORMED);
    ck_assert(raw_at_eof(fd));
    close(fd);

    /* A good frame whose payload is not protobuf: the stream is intact, so it stays open. */
    fd = kvd_connect_raw(&g_node);
    uint8_t junk[4] = {0xff, 0xff, 0xff, 0xff};
    uint8_t jh[8];
    kv_frame_header(jh, junk, 4);
    raw_send(fd, jh, 8);
    raw_send(fd, junk, 4);
    expect_status(fd, 0, KV__STATUS__MALFORMED);
    /* An unknown request type (no known operation) and an unknown field are refused by id. */
    Kv__Request req = KV__REQUEST__INIT;
    req.id = 41;
    raw_send_request(fd, &req);
    expect_status(fd, 41, KV__STATUS__INVALID_ARGUMENT);
    uint8_t unknown[] = {0x08, 42, 0xf8, 0x07, 0x01};   /* id=42, field 127 = 1 */
    kv_frame_header(jh, unknown, sizeof unknown);
    raw_send(fd, jh, 8);
    raw_send(fd, unknown, sizeof unknown);
    expect_status(fd, 42, KV__STATUS__INVALID_ARGUMENT);
    /* ... and the same connection still serves a valid request. */
    Kv__GetRequest g = KV__GET_REQUEST__INIT;
    g.key.data = (uint8_t *)"stable";
    g.key.len = 6;
    req.id = 43;
    req.op_case = KV__REQUEST__OP_GET;
    req.get = &g;
    raw_send_request(fd, &req);
    expect_status(fd, 43, KV__STATUS__OK);
    close(fd);

    /* A truncated frame followed by a hang-up leaves the server serving. */
    fd = kvd_connect_raw(&g_node);
    uint8_t trunc[10] = {0, 0, 0, 100, 1, 2, 3, 4, 5, 6};
    raw_send(fd, trunc, sizeof trunc);
    close(fd);

    expect_value(good, "stable", "yes");
    put_str(good, "after", "garbage");
    expect_value(good, "after", "garbage");
    kvc_close(good);
}
END_TEST

START_TEST(test_data_survives_a_clean_restart)
{
    start_with(NULL);
    struct kvc_client *c = client_for(&g_node);
    put_str(c, "durable", "1");
    struct kvc_err err;
    ck_assert_int_eq(kvc_delete(c, "durable", 7, NULL, &err), KVC_OK);
    put_str(c, "kept", "2");
    kvc_close(c);
    ck_assert_int_eq(kvd_stop(&g_node, SIGTERM), 0);
    ck_assert_int_eq(kvd_restart(&g_node), 0);
    c = client_for(&g_node);
    expect_missing(c, "durable");
    expect_value(c, "kept", "2");
    kvc_close(c);
}
END_TEST

START_TEST(test_sigterm_answers_requests_already_received)
{
    start_with(NULL);
    struct kvc_client *c = client_for(&g_node);
    enum { N = 500 };
    static struct kvc_op ops[N];
    static char keys[N][16];
    memset(ops, 0, sizeof ops);
    struct kvc_err err;
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], 16, "t%04d", i);
        ops[i] = (struct kvc_op){.type = KVC_OP_PUT, .key = keys[i], .key_len = 5,
                                 .value = "v", .value_len = 1};
        ck_assert_int_eq(kvc_submit(c, &ops[i], NULL, NULL, &err), KVC_OK);
    }
    while (kvc_want_write(c))
        ck_assert(kvc_poll(c, 10, &err) >= 0);
    kill(g_node.pid, SIGTERM);
    while (kvc_pending(c) > 0)
        if (kvc_poll(c, 100, &err) < 0)
            break;
    /* Every op the server acknowledged is durable; none is reported as lost silently. */
    int acked = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(ops[i].done);
        if (ops[i].err.code == KVC_OK)
            acked++;
        else
            ck_assert_msg(ops[i].err.code == KVC_SHUTDOWN || ops[i].err.code == KVC_CONN,
                          "op %d: %s", i, ops[i].err.msg);
    }
    kvc_close(c);
    ck_assert_int_eq(kvd_stop(&g_node, 0), 0);   /* the first SIGTERM's clean exit */
    ck_assert_int_eq(kvd_restart(&g_node), 0);
    c = client_for(&g_node);
    for (int i = 0; i < N; i++)
        if (ops[i].err.code == KVC_OK)
            expect_value(c, keys[i], "v");
    kvc_close(c);
    ck_assert_msg(acked > 0, "no write was answered before shutdown");
}
END_TEST

struct writer {
    const struct kvd_proc *node;
    int id;
    _Atomic int *stop;
    int acked;          /* writes 0..acked-1 were acknowledged */
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = w->node->addr;
    o.timeout_ms = 2000;
    struct kvc_client *c;
    struct kvc_err err;
    if (kvc_connect(&o, &c, &err) != KVC_OK)
        return NULL;
    char k[32], v[32];
    for (int i = 0; !atomic_load(w->stop); i++) {
        snprintf(k, sizeof k, "w%d:%06d", w->id, i);
        snprintf(v, sizeof v, "value-%d-%d", w->id, i);
        if (kvc_put(c, k, strlen(k), v, strlen(v), NULL, &err) != KVC_OK)
            break;
        w->acked = i + 1;
    }
    kvc_close(c);
    return NULL;
}

START_TEST(test_kill_9_under_write_load_loses_no_acknowledged_write_with_sync_always)
{
    const char *const extra[] = {"--sync", "always", NULL};
    start_with(extra);
    enum { W = 4 };
    struct writer ws[W];
    pthread_t th[W];
    _Atomic int stop = 0;
    for (int i = 0; i < W; i++) {
        ws[i] = (struct writer){.node = &g_node, .id = i, .stop = &stop};
        pthread_create(&th[i], NULL, writer_main, &ws[i]);
    }
    usleep(1500 * 1000);
    ck_assert_int_eq(kvd_stop(&g_node, SIGKILL), 128 + SIGKILL);
    atomic_store(&stop, 1);
    int total = 0;
    for (int i = 0; i < W; i++) {
        pthread_join(th[i], NULL);
        total += ws[i].acked;
    }
    ck_assert_msg(total > 20, "only %d writes acknowledged before the kill", total);
    ck_assert_int_eq(kvd_restart(&g_node), 0);
    struct kvc_client *c = client_for(&g_node);
    char k[32], v[32];
    for (int i = 0; i < W; i++)
        for (int j = 0; j < ws[i].acked; j++) {
            snprintf(k, sizeof k, "w%d:%06d", i, j);
            snprintf(v, sizeof v, "value-%d-%d", i, j);
            expect_value(c, k, v);
        }
    fprintf(stderr, "kill -9: %d acknowledged writes, all readable after restart\n", total);
    kvc_close(c);
}
END_TEST

/* Threads of pid at each nice value: counts[nice + 20], from /proc/PID/task/TID/stat. */
static void thread_nices(pid_t pid, int counts[40], int *main_nice)
{
    memset(counts, 0, 40 * sizeof *counts);
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "opendir %s", dir);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[384], buf[512];
        snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;                       /* the thread just ended */
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        /* After "(comm) ": state is field 3; nice is field 19. */
        char *p = strrchr(buf, ')');
        ck_assert(p != NULL);
        int field = 2, nice = 0;
        for (char *t = strtok(p + 1, " "); t; t = strtok(NULL, " "))
            if (++field == 19) {
                nice = atoi(t);
                break;
            }
        ck_assert(nice >= -20 && nice < 20);
        counts[nice + 20]++;
        if (atoi(e->d_name) == (int)pid)
            *main_nice = nice;
    }
    closedir(d);
}

START_TEST(test_storage_threads_run_nicer_than_the_event_loop)
{
    const char *const extra[] = {"--storage-thread-nice", "7", NULL};
    start_with(extra);
    struct kvc_client *c = client_for(&g_node);
    char k[32];
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "n%02d", i);
        put_str(c, k, "v");
    }
    char keys[20][32];
    for (int i = 0; i < 5; i++)         /* scans run on the storage threads */
        ck_assert_int_eq(scan_all(c, "", "", 7, keys, 20), 20);
    kvc_close(c);
    int counts[40], main_nice = -99;
    thread_nices(g_node.pid, counts, &main_nice);
    ck_assert_int_eq(main_nice, 0);     /* the loop */
    ck_assert_int_ge(counts[7 + 20], 1);
}
END_TEST

START_TEST(test_health_and_metrics_endpoints_report_requests)
{
    start_with(NULL);
    struct kvc_client *c = client_for(&g_node);
    put_str(c, "m", "1");
    expect_value(c, "m", "1");
    expect_missing(c, "nope");
    kvc_close(c);
    char *body;
    ck_assert_int_eq(kvd_http_get(&g_node, "/health", &body), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"ok\""));
    free(body);
    ck_assert_int_eq(kvd_http_get(&g_node, "/metrics", &body), 200);
    ck_assert_ptr_nonnull(strstr(body, "kvd_requests_total{op=\"put\",status=\"OK\"} 1"));
    ck_assert_ptr_nonnull(strstr(body, "kvd_requests_total{op=\"get\",status=\"NOT_FOUND\"} 1"));
    ck_assert_ptr_nonnull(strstr(body, "kvd_request_duration_seconds_count{op=\"get\"} 2"));
    ck_assert_ptr_nonnull(strstr(body, "kvd_request_duration_seconds_bucket{op=\"put\",le=\"+Inf\"} 1"));
    free(body);
    ck_assert_int_eq(kvd_http_get(&g_node, "/nothing", &body), 404);
    free(body);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("single_node");
    TCase *t = tcase_create("kvd");
    tcase_add_checked_fixture(t, NULL, stop_node);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_put_get_delete_round_trip_through_the_client);
    tcase_add_test(t, test_large_compressible_values_round_trip);
    tcase_add_test(t, test_ttl_expires_a_value);
    tcase_add_test(t, test_scan_pages_follow_cursors_in_key_order_across_tombstones);
    tcase_add_test(t, test_pipelined_requests_all_complete_on_one_connection);
    tcase_add_test(t, test_limits_are_refused_with_clear_errors_and_nothing_stored);
    tcase_add_test(t, test_malformed_input_gets_an_error_and_other_clients_keep_being_served);
    tcase_add_test(t, test_data_survives_a_clean_restart);
    tcase_add_test(t, test_sigterm_answers_requests_already_received);
    tcase_add_test(t, test_kill_9_under_write_load_loses_no_acknowledged_write_with_sync_always);
    tcase_add_test(t, test_health_and_metrics_endpoints_report_requests);
    tcase_add_test(t, test_storage_threads_run_nicer_than_the_event_loop);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    /* No fork: the fixture must see the kvd PID a test started, to stop it on failure. */
    return kv_check_run(suite(), false);
}
