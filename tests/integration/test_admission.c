/* tests/integration/test_admission.c -- admission control on a real kvd: the node stays up,
 * its memory stays bounded and normal clients keep being served under connection floods,
 * slowloris connections, a client that pipelines without reading, and a request flood; what
 * it refuses it refuses at once with OVERLOADED, and every limit that fires is counted in
 * /metrics (server/admission.h, docs/operations.md "Limits").
 *
 * (1) RSS is VmRSS from /proc/PID/status. kvd runs with a small ASan quarantine, as in
 *     test_bad_input.c: freed memory held back by ASan would otherwise count as kept.
 * (2) Latency figures are robust statistics over rounds (the median of the rounds' p99),
 *     baseline and loaded rounds measured alike in the same run. On a shared CI machine
 *     the 2x bound of the issue is checked only with KVD_ADMISSION_STRICT=1 (as
 *     scripts/overload.sh runs it, docs/testing.md "Overload"); otherwise the ratio is
 *     printed and a 100 ms bound on the loaded p99 catches a node that stopped serving
 *     others.
 * (3) The test process raises its own RLIMIT_NOFILE to the hard limit for the floods. */
#include <check.h>
#include "tests/check_run.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <kv/client.h>
#include "proto/codec.h"
#include "proto/frame.h"
#include "tests/integration/harness.h"

static struct kvd_proc g_node;
static struct kvc_client *g_good;   /* the normal client that must keep being served */
static int *g_fds;                  /* raw sockets of the current test, closed at teardown */
static size_t g_nfds, g_capfds;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void keep_fd(int fd)
{
    if (g_nfds == g_capfds) {
        g_capfds = g_capfds ? g_capfds * 2 : 1024;
        g_fds = realloc(g_fds, g_capfds * sizeof *g_fds);
        ck_assert_ptr_nonnull(g_fds);
    }
    g_fds[g_nfds++] = fd;
}

static void close_fds(void)
{
    for (size_t i = 0; i < g_nfds; i++)
        if (g_fds[i] >= 0)
            close(g_fds[i]);
    g_nfds = 0;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* (1) Starts the node with extra flags and a small quarantine; connects g_good and stores
 * the key it reads. */
static void start_node(const char *const *extra)
{
    ck_assert_int_eq(kvd_start_lean(&g_node, extra), 0);
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = g_node.addr;
    struct kvc_err err;
    ck_assert_int_eq(kvc_connect(&o, &g_good, &err), KVC_OK);
    ck_assert_int_eq(kvc_put(g_good, "stable", 6, "yes", 3, NULL, &err), KVC_OK);
}

static void stop_node(void)
{
    close_fds();
    kvc_close(g_good);
    g_good = NULL;
    kvd_cleanup(&g_node);
}

static long vm_rss_kib(pid_t pid)
{
    long kib = kvd_rss_kib(pid);
    ck_assert_msg(kib > 0, "no VmRSS for pid %d", (int)pid);
    return kib;
}

static double metric(const char *series)
{
    double v = -1;
    ck_assert_msg(kvd_metric(&g_node, series, &v) == 0, "no metric %s", series);
    return v;
}

static void still_served(const char *after)
{
    struct kvc_value v;
    struct kvc_err err;
    int rc = kvc_get(g_good, "stable", 6, &v, NULL, &err);
    ck_assert_msg(rc == KVC_OK, "%s: the normal client failed: %s", after, err.msg);
    ck_assert_uint_eq(v.len, 3);
    ck_assert_int_eq(memcmp(v.data, "yes", 3), 0);
    kvc_value_free(&v);
}

static void node_alive(const char *after)
{
    ck_assert_msg(kill(g_node.pid, 0) == 0, "%s: kvd died", after);
    char *body = NULL;
    int code = kvd_http_get(&g_node, "/health", &body);
    free(body);
    ck_assert_msg(code == 200, "%s: /health answered %d", after, code);
}

/* --- raw connections ---------------------------------------------------------------------- */

static int raw_connect(int rcv_timeout_s)
{
    int fd = kvd_connect_raw(&g_node);
    ck_assert_int_ge(fd, 0);
    struct timeval tv = {rcv_timeout_s, 0};   /* a missing answer fails, never hangs */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void frame_of(Kv__Request *req, struct kv_vec *out)
{
    ck_assert_int_eq(kv_codec_frame_append(out, &req->base, 1u << 24, NULL), KV_OK);
}

static void get_frame(uint64_t id, const char *key, struct kv_vec *out)
{
    Kv__GetRequest g = KV__GET_REQUEST__INIT;
    g.key.data = (uint8_t *)key;
    g.key.len = strlen(key);
    Kv__Request r = KV__REQUEST__INIT;
    r.id = id;
    r.op_case = KV__REQUEST__OP_GET;
    r.get = &g;
    frame_of(&r, out);
}

/* Reads one response (NULL when the connection ended or timed out first). */
struct reader {
    uint8_t *buf;
    size_t len, cap;
};

static Kv__Response *read_resp(int fd, struct reader *rd)
{
    for (;;) {
        struct kv_slice payload;
        size_t flen;
        if (rd->len &&
            kv_frame_decode(rd->buf, rd->len, 1u << 24, &payload, &flen, NULL) == KV_OK) {
            Kv__Response *r = NULL;
            ck_assert_int_eq(kv_codec_decode_resp(payload, &r, NULL), KV_OK);
            memmove(rd->buf, rd->buf + flen, rd->len - flen);
            rd->len -= flen;
            return r;
        }
        if (rd->cap - rd->len < 65536) {
            rd->cap = rd->cap ? rd->cap * 2 : 1 << 17;
            rd->buf = realloc(rd->buf, rd->cap);
            ck_assert_ptr_nonnull(rd->buf);
        }
        ssize_t n = recv(fd, rd->buf + rd->len, rd->cap - rd->len, 0);
        if (n <= 0)
            return NULL;
        rd->len += (size_t)n;
    }
}

/* True once the peer closed (0 from recv), within the socket's receive timeout. */
static bool closed_by_server(int fd)
{
    char b[4096];
    for (;;) {
        ssize_t n = recv(fd, b, sizeof b, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0)
            return false;
    }
}

/* Half of a GET frame: the header and part of the payload, never the rest. */
static void send_half_frame(int fd)
{
    struct kv_vec v = {0};
    get_frame(1, "slowloris-key", &v);
    ck_assert_int_eq(send(fd, v.ptr, v.len / 2, MSG_NOSIGNAL), (ssize_t)(v.len / 2));
    kv_vec_free(&v);
}

/* --- latency of the normal client (2) ------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The p99 of n sequential gets, in microseconds. */
static double round_p99_us(int n)
{
    uint64_t *lat = calloc((size_t)n, sizeof *lat);
    ck_assert_ptr_nonnull(lat);
    for (int i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        still_served("a latency round");
        lat[i] = now_ns() - t0;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    double p = (double)lat[(size_t)(n * 99 / 100)] / 1e3;
    free(lat);
    return p;
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* --- the tests ------------------------------------------------------------------------------ */

START_TEST(test_a_connection_holding_half_a_frame_is_closed_after_header_timeout_ms)
{
    const char *const extra[] = {"--header-timeout-ms", "300", NULL};
    start_node(extra);
    int fd = raw_connect(10);
    keep_fd(fd);
    /* A connection that only ever sends whole frames is not touched: g_good. */
    uint64_t t0 = now_ns();
    send_half_frame(fd);
    struct reader rd = {0};
    Kv__Response *r = read_resp(fd, &rd);   /* best effort: the reason, then the close */
    if (r) {
        ck_assert_msg(strstr(r->message, "header_timeout_ms"), "reason: %s", r->message);
        kv__response__free_unpacked(r, NULL);
    }
    ck_assert_msg(closed_by_server(fd), "the stalled connection was not closed");
    double ms = (double)(now_ns() - t0) / 1e6;
    printf("half frame: closed after %.0f ms (header_timeout_ms 300)\n", ms);
    ck_assert_msg(ms >= 300 && ms < 5000, "closed after %.0f ms", ms);
    free(rd.buf);
    ck_assert_double_ge(metric("kvd_connections_header_timeout_total"), 1);
    /* Time spent idle between frames is not a stall: g_good sat idle all along. */
    usleep(500 * 1000);
    still_served("after the slowloris close");
}
END_TEST

START_TEST(test_connections_past_max_connections_get_overloaded_and_existing_ones_keep_working)
{
    const char *const extra[] = {"--max-connections", "20", "--peer-reserved-connections", "2",
                                 NULL};
    start_node(extra);
    /* g_good holds one; /metrics is HTTP and does not count. */
    for (int i = 0; i < 19; i++)
        keep_fd(raw_connect(10));
    usleep(200 * 1000);
    ck_assert_double_eq(metric("kvd_client_connections_open"), 20);
    /* The peer reserve: kept until its first frame says what it is. A client request on it
     * gets OVERLOADED and the close. */
    int prov = raw_connect(10);
    keep_fd(prov);
    struct kv_vec v = {0};
    get_frame(42, "stable", &v);
    ck_assert_int_eq(send(prov, v.ptr, v.len, MSG_NOSIGNAL), (ssize_t)v.len);
    kv_vec_free(&v);
    struct reader rd = {0};
    Kv__Response *r = read_resp(prov, &rd);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->status, KV__STATUS__OVERLOADED);
    ck_assert_uint_eq(r->id, 42);
    ck_assert_msg(strstr(r->message, "max_connections"), "message: %s", r->message);
    kv__response__free_unpacked(r, NULL);
    ck_assert(closed_by_server(prov));
    rd.len = 0;
    /* A peer node's connection in the reserve is kept: its first frame is a PeerMessage. */
    int peer = raw_connect(1);
    keep_fd(peer);
    Kv__PeerMessage pm = KV__PEER_MESSAGE__INIT;
    Kv__Request pr = KV__REQUEST__INIT;
    pr.op_case = KV__REQUEST__OP_PEER;
    pr.peer = &pm;
    frame_of(&pr, &v);
    ck_assert_int_eq(send(peer, v.ptr, v.len, MSG_NOSIGNAL), (ssize_t)v.len);
    kv_vec_free(&v);
    /* Past the reserve: OVERLOADED at once. */
    usleep(200 * 1000);
    /* The peer left the reserve when it said what it is: two more fill it again. */
    for (int i = 0; i < 2; i++)
        keep_fd(raw_connect(10));
    for (int i = 0; i < 5; i++) {
        int fd = raw_connect(10);
        keep_fd(fd);
        r = read_resp(fd, &rd);
        ck_assert_msg(r != NULL, "excess connection %d got no answer", i);
        ck_assert_int_eq(r->status, KV__STATUS__OVERLOADED);
        ck_assert_msg(strstr(r->message, "max_connections"), "message: %s", r->message);
        ck_assert_uint_gt(r->retry_after_ms, 0);
        kv__response__free_unpacked(r, NULL);
        ck_assert(closed_by_server(fd));
        rd.len = 0;
    }
    free(rd.buf);
    char b;
    ck_assert_msg(recv(peer, &b, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN,
                  "the peer's connection in the reserve was closed");
    ck_assert_double_eq(metric("kvd_connections_rejected_total"), 6);
    still_served("past max_connections");
    /* Room again once some leave. */
    for (int i = 0; i < 3; i++) {
        close(g_fds[i]);
        g_fds[i] = -1;
    }
    usleep(200 * 1000);
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = g_node.addr;
    struct kvc_client *c2;
    struct kvc_err err;
    ck_assert_int_eq(kvc_connect(&o, &c2, &err), KVC_OK);
    ck_assert_int_eq(kvc_put(c2, "new", 3, "ok", 2, NULL, &err), KVC_OK);
    kvc_close(c2);
}
END_TEST

/* Starts n non-blocking connects to port and returns once each has connected or failed;
 * fds[] get the sockets (-1 for a failure). */
static int connect_wave(int port, int *fds, int n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    ck_assert_ptr_nonnull(pf);
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fds[i] >= 0 && connect(fds[i], (struct sockaddr *)&a, sizeof a) != 0 &&
            errno != EINPROGRESS) {
            close(fds[i]);
            fds[i] = -1;
        }
        pf[i].fd = fds[i];
        pf[i].events = POLLOUT;
    }
    int ok = 0;
    uint64_t end = now_ns() + 5000000000ull;
    for (int left = n; left > 0 && now_ns() < end;) {
        if (poll(pf, (nfds_t)n, 100) < 0)
            break;
        left = 0;
        for (int i = 0; i < n; i++) {
            if (pf[i].fd < 0)
                continue;
            if (pf[i].revents) {
                int e = 0;
                socklen_t el = sizeof e;
                getsockopt(pf[i].fd, SOL_SOCKET, SO_ERROR, &e, &el);
                ok += e == 0;
                pf[i].fd = -1;
            } else {
                left++;
            }
        }
    }
    free(pf);
    return ok;
}

struct burst {
    int port, attempts, wave, connected;
    _Atomic bool done;
};

/* The connection burst, from its own thread while the main thread measures the normal
 * client: waves of non-blocking connects, each wave closed as soon as it has connected. */
static void *burst_main(void *arg)
{
    struct burst *b = arg;
    int *fds = calloc((size_t)b->wave, sizeof *fds);
    for (int done = 0; fds && done < b->attempts; done += b->wave) {
        b->connected += connect_wave(b->port, fds, b->wave);
        for (int i = 0; i < b->wave; i++)
            if (fds[i] >= 0)
                close(fds[i]);
    }
    free(fds);
    atomic_store(&b->done, true);
    return NULL;
}

/* (2) The baseline's burst goes to this listener instead: the machine is as busy (the
 * same connects, handshakes and closes), only kvd is not involved. On a VM an idle CPU
 * also wakes slowly, which would make a quiet baseline slower than a loaded run. */
struct sink {
    int fd;
    _Atomic bool stop;
};

static void *sink_main(void *arg)
{
    struct sink *k = arg;
    while (!atomic_load(&k->stop)) {
        struct pollfd p = {k->fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            int c = accept(k->fd, NULL, NULL);
            if (c >= 0)
                close(c);
        }
    }
    return NULL;
}

static int sink_open(struct sink *k)
{
    k->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(k->fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t al = sizeof a;
    ck_assert_int_eq(bind(k->fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(k->fd, 1024), 0);
    ck_assert_int_eq(getsockname(k->fd, (struct sockaddr *)&a, &al), 0);
    return ntohs(a.sin_port);
}

/* Latency rounds of the normal client while a burst of attempts connects to port: at
 * least min rounds, the last ones after the burst if it was quicker. */
static int rounds_during_burst(int port, int attempts, double *p99, int min, int max,
                               int per_round, int *connected, double *secs, long *rss_max)
{
    struct burst b = {.port = port, .attempts = attempts, .wave = 500};
    pthread_t th;
    uint64_t t0 = now_ns();
    ck_assert_int_eq(pthread_create(&th, NULL, burst_main, &b), 0);
    int n = 0;
    while ((!atomic_load(&b.done) || n < min) && n < max) {
        p99[n++] = round_p99_us(per_round);
        long rss = vm_rss_kib(g_node.pid);
        *rss_max = rss > *rss_max ? rss : *rss_max;
    }
    pthread_join(th, NULL);
    *secs = (double)(now_ns() - t0) / 1e9;
    *connected = b.connected;
    return n;
}

START_TEST(test_5000_stalled_half_frames_and_a_20000_connection_burst_leave_the_node_serving)
{
    raise_nofile();
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    enum { STALLED = 5000, ATTEMPTS = 20000, MIN_ROUNDS = 7, MAX_ROUNDS = 400, PER_ROUND = 200 };
    ck_assert_msg(rl.rlim_cur >= (rlim_t)(STALLED + 500 + 256),
                  "RLIMIT_NOFILE %llu is too small for the test", (unsigned long long)rl.rlim_cur);
    /* Default limits (max_connections 10000), but the stalled connections must outlive
     * the test's few tens of seconds: the timeout has its own test. */
    const char *const extra[] = {"--header-timeout-ms", "600000", NULL};
    start_node(extra);
    const bool strict = getenv("KVD_ADMISSION_STRICT") != NULL;
    static double base[MAX_ROUNDS], loaded[MAX_ROUNDS];
    round_p99_us(1000);   /* warm-up: the first requests of a new node are slower */
    struct sink k = {0};
    int sink_port = sink_open(&k);
    pthread_t sink_th;
    ck_assert_int_eq(pthread_create(&sink_th, NULL, sink_main, &k), 0);
    long rss0 = vm_rss_kib(g_node.pid), rss_max = rss0;
    int base_conn, conn;
    double base_s, burst_s;
    int nb = rounds_during_burst(sink_port, ATTEMPTS, base, MIN_ROUNDS, MAX_ROUNDS, PER_ROUND,
                                 &base_conn, &base_s, &rss_max);
    atomic_store(&k.stop, true);
    pthread_join(sink_th, NULL);
    close(k.fd);

    uint64_t t0 = now_ns();
    for (int i = 0; i < STALLED; i++) {
        int fd = raw_connect(10);
        keep_fd(fd);
        send_half_frame(fd);
    }
    double open_s = (double)(now_ns() - t0) / 1e9;
    usleep(300 * 1000);
    ck_assert_double_ge(metric("kvd_client_connections_open"), STALLED);
    long rss_stalled = vm_rss_kib(g_node.pid);
    rss_max = rss_stalled;
    int nl = rounds_during_burst(g_node.port, ATTEMPTS, loaded, MIN_ROUNDS, MAX_ROUNDS,
                                 PER_ROUND, &conn, &burst_s, &rss_max);
    node_alive("after the burst");
    still_served("after the burst");
    ck_assert_double_ge(metric("kvd_client_connections_open"), STALLED);
    double bm = median(base, nb), lm = median(loaded, nl);
    printf("floods: %d stalled half frames opened in %.1f s; burst: %d of %d connects in "
           "%.1f s; VmRSS %ld KiB -> %ld with the stalled (%.1f KiB each) -> max %ld in the "
           "burst; normal client p99 (median of rounds of %d gets): baseline %.0f us "
           "(%d rounds, burst to another listener), loaded %.0f us (%d rounds), ratio %.2f\n",
           STALLED, open_s, conn, ATTEMPTS, burst_s, rss0, rss_stalled,
           (double)(rss_stalled - rss0) / STALLED, rss_max, PER_ROUND, bm, nb, lm, nl, lm / bm);
    ck_assert_msg(conn >= ATTEMPTS / 2, "only %d of %d connects succeeded", conn, ATTEMPTS);
    /* 5000 stalled connections cost their bytes and bookkeeping, not read buffers:
     * 64 MiB is about 13 KiB each, well above what they take. */
    ck_assert_msg(rss_max - rss0 < 64 * 1024, "VmRSS grew by %ld KiB", rss_max - rss0);
    if (strict)
        ck_assert_msg(lm <= 2.0 * bm, "loaded p99 %.0f us vs baseline %.0f us", lm, bm);
    else   /* (2) served promptly, whatever else the machine runs */
        ck_assert_msg(lm < 100000, "loaded p99 %.0f us (baseline %.0f us)", lm, bm);
}
END_TEST

/* The fd is non-blocking; sends what the socket takes of buf[*off..len). */
static void send_some(int fd, const uint8_t *buf, size_t len, size_t *off)
{
    while (*off < len) {
        ssize_t n = send(fd, buf + *off, len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0)
            return;
        *off += (size_t)n;
    }
}

START_TEST(test_a_client_pipelining_1gib_without_reading_leaves_rss_bounded_and_others_served)
{
    /* 64 KiB values of random bytes (LZ4 cannot shrink them), put once, then read by a
     * client that never reads its answers: output backpressure (max_output_mb). Then the
     * same client pipelines 1 GiB of 64 KiB puts: input backpressure
     * (max_conn_inflight_bytes) while the store absorbs them. */
    const char *const extra[] = {"--max-output-mb", "8", "--sync", "none", "--write-buffer-mb",
                                 "8", "--max-value", "70000", NULL};
    start_node(extra);
    enum { VAL = 65536 };
    static uint8_t val[VAL];
    srand(7);
    for (size_t i = 0; i < VAL; i++)
        val[i] = (uint8_t)rand();
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(g_good, "big", 3, val, VAL, NULL, &err), KVC_OK);
    long rss0 = vm_rss_kib(g_node.pid);

    int fd = raw_connect(10);
    keep_fd(fd);
    struct kv_vec gets = {0};
    for (int i = 0; i < 4096; i++)   /* 4096 answers of 64 KiB: 256 MiB of output */
        get_frame((uint64_t)i + 1, "big", &gets);
    size_t off = 0;
    uint64_t end = now_ns() + 3000000000ull;
    long rss_max = rss0;
    while (now_ns() < end) {
        send_some(fd, gets.ptr, gets.len, &off);
        if (off == gets.len)
            off = 0;   /* keep pipelining */
        still_served("while a client pipelines gets without reading");
        long rss = vm_rss_kib(g_node.pid);
        rss_max = rss > rss_max ? rss : rss_max;
        usleep(50 * 1000);
    }
    kv_vec_free(&gets);
    /* Held back by its unsent output or by its answers still to come, whichever first. */
    double paused = metric("kvd_connection_pauses_total") +
                    metric("kvd_connection_inflight_pauses_total");
    printf("unread gets: VmRSS %ld -> max %ld KiB; connection holds %.0f\n", rss0, rss_max,
           paused);
    ck_assert_double_ge(paused, 1);
    ck_assert_msg(rss_max - rss0 < 64 * 1024, "VmRSS grew by %ld KiB", rss_max - rss0);

    /* 1 GiB of puts on a fresh connection that never reads. */
    int pf = raw_connect(10);
    keep_fd(pf);
    int fl = fcntl(pf, F_GETFL);
    fcntl(pf, F_SETFL, fl | O_NONBLOCK);
    const size_t total = (size_t)1 << 30;
    struct kv_vec batch = {0};
    Kv__PutRequest p = KV__PUT_REQUEST__INIT;
    p.value.data = val;
    p.value.len = VAL;
    char key[32];
    for (int i = 0; i < 16; i++) {   /* 16 frames per batch, keys k0..k15 */
        snprintf(key, sizeof key, "k%d", i);
        p.key.data = (uint8_t *)key;
        p.key.len = strlen(key);
        Kv__Request r = KV__REQUEST__INIT;
        r.id = 100000 + (uint64_t)i;
        r.op_case = KV__REQUEST__OP_PUT;
        r.put = &p;
        frame_of(&r, &batch);
    }
    size_t sent = 0, boff = 0;
    uint64_t t0 = now_ns(), next_check = 0;
    end = t0 + 60000000000ull;   /* a budget, not the expectation (a few seconds) */
    rss0 = vm_rss_kib(g_node.pid);
    rss_max = rss0;
    int checks = 0;
    while (sent < total && now_ns() < end) {
        size_t before = boff;
        send_some(pf, batch.ptr, batch.len, &boff);
        sent += boff - before;
        if (boff == batch.len)
            boff = 0;
        if (now_ns() >= next_check) {
            still_served("while a client pipelines 1 GiB of puts without reading");
            long rss = vm_rss_kib(g_node.pid);
            rss_max = rss > rss_max ? rss : rss_max;
            checks++;
            next_check = now_ns() + 200000000u;
        }
        if (boff == before) {
            struct pollfd w = {pf, POLLOUT, 0};
            poll(&w, 1, 20);
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    kv_vec_free(&batch);
    double ipaused = metric("kvd_connection_inflight_pauses_total");
    printf("unread puts: %.0f MiB sent in %.1f s; VmRSS %ld -> max %ld KiB; inflight pauses "
           "%.0f; %d checks of the normal client\n",
           (double)sent / 1048576, secs, rss0, rss_max, ipaused, checks);
    ck_assert_msg(sent >= total, "only %zu MiB of 1024 went out in %.0f s", sent >> 20, secs);
    node_alive("after 1 GiB of puts");
    still_served("after 1 GiB of puts");
    /* RocksDB's memtables (write_buffer_mb 8 per column family) and block cache are in
     * there too; what must not be there is 1 GiB. */
    ck_assert_msg(rss_max - rss0 < 256 * 1024, "VmRSS grew by %ld KiB", rss_max - rss0);
}
END_TEST

START_TEST(test_a_request_flood_is_answered_overloaded_at_once_with_retry_after_ms)
{
    const char *const extra[] = {"--max-node-inflight-requests", "64",
                                 "--overload-retry-after-ms", "77", NULL};
    start_node(extra);
    int fd = raw_connect(10);
    keep_fd(fd);
    enum { N = 3000 };
    struct kv_vec v = {0};
    for (int i = 0; i < N; i++)
        get_frame((uint64_t)i + 1, "stable", &v);
    uint64_t t0 = now_ns();
    size_t off = 0;
    while (off < v.len) {
        ssize_t n = send(fd, v.ptr + off, v.len - off, MSG_NOSIGNAL);
        ck_assert_int_gt(n, 0);
        off += (size_t)n;
    }
    kv_vec_free(&v);
    struct reader rd = {0};
    int ok = 0, shed = 0, other = 0;
    uint64_t worst_shed_ns = 0;
    for (int i = 0; i < N; i++) {
        Kv__Response *r = read_resp(fd, &rd);
        ck_assert_msg(r != NULL, "answer %d of %d missing", i, N);
        uint64_t t = now_ns() - t0;
        if (r->status == KV__STATUS__OK) {
            ok++;
        } else if (r->status == KV__STATUS__OVERLOADED) {
            shed++;
            ck_assert_uint_eq(r->retry_after_ms, 77);
            ck_assert_msg(strstr(r->message, "max_node_inflight_requests"), "%s", r->message);
            worst_shed_ns = t > worst_shed_ns ? t : worst_shed_ns;
        } else {
            other++;
        }
        kv__response__free_unpacked(r, NULL);
    }
    free(rd.buf);
    printf("flood of %d pipelined gets: %d ok, %d OVERLOADED (the last after %.1f ms), %d other\n",
           N, ok, shed, (double)worst_shed_ns / 1e6, other);
    ck_assert_int_eq(other, 0);   /* no TIMEOUT: refused ones are refused, not dropped */
    ck_assert_int_ge(ok, 64);   /* read in one burst: the first 64 are admitted */
    ck_assert_int_gt(shed, 0);
    /* The whole flood is answered well inside one request timeout (5 s). */
    ck_assert_msg(worst_shed_ns < 2000000000ull, "OVERLOADED after %.0f ms",
                  (double)worst_shed_ns / 1e6);
    ck_assert_double_eq(metric("kvd_requests_shed_total{limit=\"requests\"}"), shed);
    still_served("after the flood");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("admission");
    TCase *t = tcase_create("kvd");
    tcase_add_checked_fixture(t, NULL, stop_node);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, test_a_connection_holding_half_a_frame_is_closed_after_header_timeout_ms);
    tcase_add_test(t,
                   test_connections_past_max_connections_get_overloaded_and_existing_ones_keep_working);
    tcase_add_test(t, test_a_request_flood_is_answered_overloaded_at_once_with_retry_after_ms);
    tcase_add_test(t,
                   test_a_client_pipelining_1gib_without_reading_leaves_rss_bounded_and_others_served);
    suite_add_tcase(s, t);
    /* Its own case, so scripts/overload.sh runs it alone (CK_RUN_CASE=floods). */
    TCase *f = tcase_create("floods");
    tcase_add_checked_fixture(f, NULL, stop_node);
    tcase_set_timeout(f, 300);
    tcase_add_test(f,
                   test_5000_stalled_half_frames_and_a_20000_connection_burst_leave_the_node_serving);
    suite_add_tcase(s, f);
    /* No fork: the fixture must see the kvd PID the test started, to stop it on failure. */
    return kv_check_run(s, false);
}
