/* tests/unit/client_fixture.c -- see client_fixture.h. */
#include "tests/unit/client_fixture.h"
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "common/clock.h"
#include "proto/codec.h"
#include "proto/frame.h"

/* --- the fake server -------------------------------------------------------------------- */

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

void fake_start(struct fake *f, fake_handler h)
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

void fake_stop(struct fake *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->th, NULL);
    close(f->lfd);
    free(f->stored);
}

/* A port on 127.0.0.1 that nothing listens on (bound once, then released). */
int dead_port(void)
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

Kv__Request *fake_read_req(int fd)
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

void fake_send_resp(int fd, const Kv__Response *r, bool corrupt)
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
    fake_send_resp(fd, &r, false);
}

struct kvc_client *connect_to(const char *addrs)
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

struct kvc_client *connect_fake(const struct fake *f)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f->port);
    return connect_to(addr);
}

/* --- handlers --------------------------------------------------------------------------- */

void h_reverse(struct fake *f, int fd)
{
    Kv__Request *reqs[5];
    for (int i = 0; i < 5; i++) {
        if (!(reqs[i] = fake_read_req(fd))) {
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
void h_late(struct fake *f, int fd)
{
    (void)f;
    Kv__Request *slow = fake_read_req(fd);
    if (!slow)
        return;
    Kv__Request *fast = fake_read_req(fd);
    if (fast) {
        send_get(fd, slow);   /* late: the client has timed it out */
        send_get(fd, fast);
        kv__request__free_unpacked(fast, NULL);
    }
    kv__request__free_unpacked(slow, NULL);
}

void h_close_after_read(struct fake *f, int fd)
{
    (void)f;
    Kv__Request *r = fake_read_req(fd);
    if (r)
        kv__request__free_unpacked(r, NULL);
}

void h_echo_get(struct fake *f, int fd)
{
    (void)f;
    Kv__Request *r;
    while ((r = fake_read_req(fd))) {
        send_get(fd, r);
        kv__request__free_unpacked(r, NULL);
    }
}

void h_corrupt(struct fake *f, int fd)
{
    (void)f;
    Kv__Request *r = fake_read_req(fd);
    if (!r)
        return;
    Kv__Response resp = KV__RESPONSE__INIT;
    resp.id = r->id;
    fake_send_resp(fd, &resp, true);
    kv__request__free_unpacked(r, NULL);
    char b;
    (void)read(fd, &b, 1);   /* wait for the client to hang up */
}

/* Put: remember the wire value. Get: answer with it, compressed as it came. */
void h_store(struct fake *f, int fd)
{
    Kv__Request *r;
    while ((r = fake_read_req(fd))) {
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
        fake_send_resp(fd, &resp, false);
        kv__request__free_unpacked(r, NULL);
    }
}

/* Every request fails: gets NOT_FOUND, everything else TIMEOUT with figures. */
void h_errors(struct fake *f, int fd)
{
    (void)f;
    Kv__Request *r;
    while ((r = fake_read_req(fd))) {
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
        fake_send_resp(fd, &resp, false);
        kv__request__free_unpacked(r, NULL);
    }
}

/* Reads every request and answers none, until the client hangs up. */
void h_silent(struct fake *f, int fd)
{
    (void)f;
    Kv__Request *r;
    while ((r = fake_read_req(fd)))
        kv__request__free_unpacked(r, NULL);
}

/* Sheds the first f->shed requests (OVERLOADED, f->retry_after_ms), then answers puts OK. */
void h_overload(struct fake *f, int fd)
{
    Kv__Request *r;
    while ((r = fake_read_req(fd))) {
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
        fake_send_resp(fd, &resp, false);
        kv__request__free_unpacked(r, NULL);
    }
}
