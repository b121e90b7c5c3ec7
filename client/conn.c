/* client/conn.c -- one non-blocking TCP connection: connect, send queue, receive buffer.
 *
 * The connection is a small state machine (CLOSED -> CONNECTING -> OPEN -> CLOSED) that
 * knows nothing about ops or ids; client.c drives it and decides what a failure means.
 * (1) The socket is always non-blocking; the only waiting happens in kvc__conn_wait
 *     (poll(2)), so every wait is bounded by a deadline the caller computed.
 * (2) Requests leave in as few system calls as possible: the whole out-buffer is handed
 *     to one send() each time the socket is writable, never a frame or a byte at a time.
 * (3) A frame's length is checked against max_frame from its 8 header bytes, before the
 *     in-buffer grows for it (kv_frame_decode), so a hostile length cannot exhaust memory.
 * (4) TCP_NODELAY is set: requests are small and latency-bound; batching happens in the
 *     out-buffer, not in Nagle's algorithm.
 * (5) cn->epoch grows by one at every socket opened and every socket closed, so a caller
 *     that registered the descriptor with epoll can tell a closed socket whose number came
 *     back for a new one (the kernel dropped the registration) from the same socket. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "client/internal.h"
#include "common/clock.h"
#include "proto/frame.h"

#define KVC__READ_CHUNK 65536u

void kvc__conn_init(struct kvc__conn *cn, uint32_t max_frame)
{
    memset(cn, 0, sizeof *cn);
    cn->fd = -1;
    cn->state = KVC__CLOSED;
    cn->max_frame = max_frame;
}

/* Closes the socket, if any; (5). */
static void close_fd(struct kvc__conn *cn)
{
    if (cn->fd < 0)
        return;
    close(cn->fd);
    cn->fd = -1;
    cn->epoch++;
}

void kvc__conn_reset(struct kvc__conn *cn)
{
    close_fd(cn);
    cn->state = KVC__CLOSED;
    cn->out.len = 0;
    cn->in.len = 0;
    cn->in_off = 0;
}

void kvc__conn_destroy(struct kvc__conn *cn)
{
    kvc__conn_reset(cn);
    kv_vec_free(&cn->out);
    kv_vec_free(&cn->in);
}

/* Splits "host:port" or "[v6addr]:port" into host and port; 0 on success. */
static int split_addr(const char *addr, char *host, size_t hostsz, char *port, size_t portsz)
{
    const char *colon;
    const char *h = addr;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close_br = strchr(addr, ']');
        if (!close_br || close_br[1] != ':')
            return -1;
        h = addr + 1;
        hlen = (size_t)(close_br - h);
        colon = close_br + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - addr);
    }
    size_t plen = strlen(colon + 1);
    if (hlen == 0 || hlen >= hostsz || plen == 0 || plen >= portsz)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, plen + 1);
    return 0;
}

int kvc__conn_start(struct kvc__conn *cn, const char *addr, uint32_t timeout_ms,
                    struct kvc_err *err)
{
    close_fd(cn);
    cn->state = KVC__CLOSED;
    cn->in.len = 0;
    cn->in_off = 0;
    snprintf(cn->peer, sizeof cn->peer, "%s", addr);

    char host[256], port[16];
    if (split_addr(addr, host, sizeof host, port, sizeof port) != 0)
        return kvc__err(err, KVC_CONN, "bad address '%s' (want host:port)", addr);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0)
        return kvc__err(err, KVC_CONN, "cannot resolve %s: %s", addr, gai_strerror(gai));
    /* One attempt per address, so prefer IPv4 when a name resolves both ways: kvd nodes
     * usually listen on 127.0.0.x or an IPv4 interface. */
    struct addrinfo *ai = res;
    for (struct addrinfo *p = res; p; p = p->ai_next)
        if (p->ai_family == AF_INET) {
            ai = p;
            break;
        }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        freeaddrinfo(res);
        return kvc__err(err, KVC_CONN, "socket: %s", strerror(e));
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    int e = errno;
    freeaddrinfo(res);
    if (rc != 0 && e != EINPROGRESS) {
        close(fd);
        return kvc__err(err, KVC_CONN, "connect to %s: %s", addr, strerror(e));
    }
    cn->fd = fd;
    cn->epoch++;
    cn->state = rc == 0 ? KVC__OPEN : KVC__CONNECTING;
    cn->connect_deadline_ns = kv_clock_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    return KVC_OK;
}

int kvc__conn_check_connect(struct kvc__conn *cn, uint64_t now_ns, struct kvc_err *err)
{
    struct pollfd pfd = {.fd = cn->fd, .events = POLLOUT};
    int n = poll(&pfd, 1, 0);
    if (n <= 0) {
        if (now_ns >= cn->connect_deadline_ns) {
            kvc__conn_reset(cn);
            return kvc__err(err, KVC_CONN, "connect to %s timed out", cn->peer);
        }
        return 1;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(cn->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        soerr = errno;
    if (soerr != 0) {
        /* The out-buffer survives: nothing in it reached this peer, so it may go to the
         * next address unchanged. */
        close_fd(cn);
        cn->state = KVC__CLOSED;
        return kvc__err(err, KVC_CONN, "connect to %s: %s", cn->peer, strerror(soerr));
    }
    cn->state = KVC__OPEN;
    return KVC_OK;
}

int kvc__conn_flush(struct kvc__conn *cn, struct kvc_err *err)
{
    while (cn->state == KVC__OPEN && cn->out.len) {
        ssize_t n = send(cn->fd, cn->out.ptr, cn->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            kv_vec_consume(&cn->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return KVC_OK;
        return kvc__err(err, KVC_CONN, "send to %s: %s", cn->peer,
                        n < 0 ? strerror(errno) : "no progress");
    }
    return KVC_OK;
}

int kvc__conn_read(struct kvc__conn *cn, bool *full, struct kvc_err *err)
{
    *full = false;
    if (cn->in_off) {
        /* Keep the undecoded tail at the front so the buffer never creeps upward. */
        memmove(cn->in.ptr, cn->in.ptr + cn->in_off, cn->in.len - cn->in_off);
        cn->in.len -= cn->in_off;
        cn->in_off = 0;
    }
    if (kv_vec_reserve(&cn->in, KVC__READ_CHUNK) != 0)
        return kvc__err(err, KVC_CONN, "out of memory reading from %s", cn->peer);
    size_t room = cn->in.cap - cn->in.len;
    for (;;) {
        ssize_t n = recv(cn->fd, cn->in.ptr + cn->in.len, room, 0);
        if (n > 0) {
            cn->in.len += (size_t)n;
            *full = (size_t)n == room;
            return (int)n;
        }
        if (n == 0)
            return kvc__err(err, KVC_CONN, "%s closed the connection", cn->peer);
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return kvc__err(err, KVC_CONN, "recv from %s: %s", cn->peer, strerror(errno));
    }
}

int kvc__conn_next_frame(struct kvc__conn *cn, struct kv_slice *payload, size_t *frame_len,
                         struct kvc_err *err)
{
    struct kv_err e;
    kv_err_clear(&e);
    enum kv_status s = kv_frame_decode(cn->in.ptr + cn->in_off, cn->in.len - cn->in_off,
                                       cn->max_frame, payload, frame_len, &e);
    if (s == KV_OK)
        return KVC_OK;
    if (s == KV_AGAIN)
        return 1;
    return kvc__err(err, s == KV_TOO_LARGE ? KVC_TOO_LARGE : KVC_PROTO,
                    "bad response from %s: %s", cn->peer, e.msg);
}

void kvc__conn_consume(struct kvc__conn *cn, size_t n)
{
    cn->in_off += n;
    if (cn->in_off >= cn->in.len)
        cn->in.len = cn->in_off = 0;
}

short kvc__conn_events(const struct kvc__conn *cn)
{
    if (cn->fd < 0 || cn->state == KVC__CLOSED)
        return 0;
    if (cn->state == KVC__CONNECTING)
        return POLLOUT;
    return (short)(POLLIN | (cn->out.len ? POLLOUT : 0));
}

int kvc__conn_wait(struct kvc__conn *cn, int timeout_ms)
{
    if (cn->fd < 0)
        return 0;
    struct pollfd pfd = {.fd = cn->fd, .events = kvc__conn_events(cn)};
    int n = poll(&pfd, 1, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    return n ? pfd.revents : 0;
}
