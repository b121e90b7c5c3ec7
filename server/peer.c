/* server/peer.c -- outbound peer connections: lazy connect, backoff, bounded queues.
 *
 * States of one peer (one address):
 *   IDLE --send--> CONNECTING --connected--> CONNECTED --error/EOF--> BACKOFF --timer--> IDLE
 *   CONNECTING --refused/timeout--> BACKOFF
 * (1) A struct pconn is one connection attempt with its own uv_tcp_t, freed in its close
 *     callback; a peer detaches from a failed attempt at once (pconn->peer = NULL), so a
 *     new attempt never waits for the old handle to close and late callbacks of the old
 *     one touch nothing but the pconn and their own write buffers.
 * (2) Bytes count against the queue limit from the moment they are framed until the
 *     socket took them (uv_try_write at a flush, or their uv_write completed), so a paused
 *     peer (SIGSTOP, full socket buffers) fills its queue and then loses new messages
 *     instead of growing memory.
 * (3) Peers are never freed before the loop has ended: their timer handles stay valid
 *     for the node's lifetime (kv_peers_close closes them, kv_peers_free frees).
 * (4) A peer address may name a host ("kvd1:7379"): every connection attempt resolves it
 *     again with uv_getaddrinfo (the loop never blocks on DNS; a container that came back
 *     under a new IP is found). The connect timeout covers resolving and connecting. A
 *     pconn whose lookup is in flight is freed by whichever of its close callback and its
 *     lookup callback comes last. At most PEER_MAX_RESOLVING lookups run at once, because
 *     they occupy libuv threadpool threads that storage work needs too; when the resolver
 *     is busy or fails, the address the name last resolved to is used, if any.
 * (5) When a name resolves to several addresses, IPv4 ones come first and each failed
 *     attempt moves on to the next address ("localhost" may list ::1 before 127.0.0.1). */
#include "server/peer.h"
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/addr.h"
#include "common/log.h"
#include "proto/codec.h"
#include "proto/frame.h"
#include "server/server.h"

#define PEER_BACKOFF_MIN_MS 50u
#define PEER_BACKOFF_MAX_MS 1000u
#define PEER_CONNECT_TIMEOUT_MS 1000u
#define PEER_MAX_RESOLVING 2u     /* (4) */

/* The values are exported as kvd_peer_state. */
enum peer_state { PEER_IDLE = 0, PEER_CONNECTING = 1, PEER_CONNECTED = 2, PEER_BACKOFF = 3 };

struct kv_peer;

struct pconn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_getaddrinfo_t gai;
    struct kv_peers *set;
    struct kv_peer *peer;          /* NULL once detached (1) */
    bool resolving, closed;        /* (4): the lookup is in flight / the handle is closed */
};

struct pwrite {
    uv_write_t req;
    struct pconn *pc;
    struct kv_vec buf;
};

struct kv_peer {
    struct kv_peers *set;
    char addr[128];
    uint32_t id;                   /* the node last known at this address; 0: a seed */
    enum peer_state state;
    struct pconn *conn;
    uv_timer_t timer;              /* connect timeout in CONNECTING, backoff in BACKOFF */
    struct kv_vec out;             /* framed, not yet handed to uv_write */
    size_t out_msgs;
    size_t writing;                /* bytes inside uv_write requests */
    uint32_t backoff_ms;
    bool dirty, bad_addr, resolve_warned;
    uint32_t addr_idx;             /* (5): which of the resolved addresses to try next */
    struct sockaddr_storage last_sa;   /* (4): what the name resolved to last; family 0: none */
    uint64_t sent, dropped, connects, failures, resolve_failures;
    struct kv_peer *next, *dirty_next;
};

struct id_ent {
    uint32_t id;
    struct kv_peer *peer;
};

struct kv_peers {
    struct kv_server *srv;
    struct kv_peer *list;
    struct kv_peer *dirty;
    struct id_ent *ids;
    size_t n_ids, cap_ids;
    bool closing;
    unsigned resolving;            /* lookups in flight, (4) */
    uint64_t unknown_drops;        /* sends to an id whose address is not known */
};

static char g_discard[4096];       /* what a peer writes back is only watched for EOF */

enum kv_status kv_peers_new(struct kv_server *s, struct kv_peers **out, struct kv_err *err)
{
    struct kv_peers *p = calloc(1, sizeof *p);
    if (!p)
        return kv_err_set(err, KV_NOMEM, "out of memory");
    p->srv = s;
    *out = p;
    return KV_OK;
}

static struct kv_peer *peer_for_addr(struct kv_peers *ps, const char *addr)
{
    for (struct kv_peer *p = ps->list; p; p = p->next)
        if (strcmp(p->addr, addr) == 0)
            return p;
    if (strlen(addr) >= sizeof ((struct kv_peer *)0)->addr)
        return NULL;
    struct kv_peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->set = ps;
    strcpy(p->addr, addr);
    p->backoff_ms = PEER_BACKOFF_MIN_MS;
    uv_timer_init(ps->srv->loop, &p->timer);
    p->timer.data = p;
    p->next = ps->list;
    ps->list = p;
    return p;
}

static struct id_ent *find_id(struct kv_peers *ps, uint32_t id)
{
    for (size_t i = 0; i < ps->n_ids; i++)
        if (ps->ids[i].id == id)
            return &ps->ids[i];
    return NULL;
}

void kv_peers_set_addr(struct kv_peers *ps, uint32_t id, const char *addr)
{
    if (ps->closing || !addr || !*addr)
        return;
    struct id_ent *e = find_id(ps, id);
    if (e && strcmp(e->peer->addr, addr) == 0)
        return;
    struct kv_peer *p = peer_for_addr(ps, addr);
    if (!p)
        return;
    if (!e) {
        if (ps->n_ids == ps->cap_ids) {
            size_t cap = ps->cap_ids ? ps->cap_ids * 2 : 16;
            struct id_ent *n = realloc(ps->ids, cap * sizeof *n);
            if (!n)
                return;
            ps->ids = n;
            ps->cap_ids = cap;
        }
        e = &ps->ids[ps->n_ids++];
        e->id = id;
    } else {
        KV_INFO("node %u moved from %s to %s", id, e->peer->addr, addr);
    }
    e->peer = p;
    p->id = id;
}

/* --- connection life cycle ------------------------------------------------------------- */

static void start_connect(struct kv_peer *p);

static void on_pconn_close(uv_handle_t *h)
{
    struct pconn *pc = h->data;
    pc->closed = true;
    if (!pc->resolving)
        free(pc);
}

static void detach(struct kv_peer *p)
{
    struct pconn *pc = p->conn;
    if (!pc)
        return;
    p->conn = NULL;
    pc->peer = NULL;
    if (pc->resolving)
        (void)uv_cancel((uv_req_t *)&pc->gai);   /* fails once a thread runs it: fine */
    if (!uv_is_closing((uv_handle_t *)&pc->tcp))
        uv_close((uv_handle_t *)&pc->tcp, on_pconn_close);
}

static void on_backoff(uv_timer_t *t)
{
    struct kv_peer *p = t->data;
    p->state = PEER_IDLE;
    if (p->out.len && !p->set->closing)
        start_connect(p);
}

/* The connection failed or broke: what was queued is dropped (it is stale by the time a
 * retry could succeed; the cluster repeats what matters), then back off. */
static void conn_failed(struct kv_peer *p, const char *what, int status)
{
    if (p->state == PEER_CONNECTED)
        KV_INFO("peer %s (node %u): connection lost: %s", p->addr, p->id,
                status ? uv_strerror(status) : what);
    else
        KV_DEBUG("peer %s (node %u): %s: %s", p->addr, p->id, what,
                 status ? uv_strerror(status) : "");
    p->failures++;
    if (p->state == PEER_CONNECTING)
        p->addr_idx++;   /* (5) */
    detach(p);
    p->dropped += p->out_msgs;
    kv_vec_free(&p->out);
    p->out_msgs = 0;
    p->writing = 0;
    uv_timer_stop(&p->timer);
    if (p->set->closing) {
        p->state = PEER_IDLE;
        return;
    }
    p->state = PEER_BACKOFF;
    uv_timer_start(&p->timer, on_backoff, p->backoff_ms, 0);
    p->backoff_ms = p->backoff_ms * 2 > PEER_BACKOFF_MAX_MS ? PEER_BACKOFF_MAX_MS
                                                            : p->backoff_ms * 2;
}

static void on_connect_timeout(uv_timer_t *t)
{
    struct kv_peer *p = t->data;
    if (p->state == PEER_CONNECTING)
        conn_failed(p, "connect timed out", 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = g_discard;
    buf->len = sizeof g_discard;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct pconn *pc = st->data;
    if (nread >= 0 || !pc->peer)
        return;   /* a peer sends nothing on this connection but, at worst, an error frame */
    conn_failed(pc->peer, nread == UV_EOF ? "closed by the peer" : "read",
                nread == UV_EOF ? 0 : (int)nread);
}

static void mark_dirty(struct kv_peer *p)
{
    if (p->dirty)
        return;
    p->dirty = true;
    p->dirty_next = p->set->dirty;
    p->set->dirty = p;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct pconn *pc = req->data;
    struct kv_peer *p = pc->peer;
    if (!p)
        return;   /* detached: the handle is closing */
    if (status < 0) {
        conn_failed(p, "connect", status);
        return;
    }
    uv_timer_stop(&p->timer);
    p->state = PEER_CONNECTED;
    p->backoff_ms = PEER_BACKOFF_MIN_MS;
    p->connects++;
    uv_tcp_nodelay(&pc->tcp, 1);
    uv_read_start((uv_stream_t *)&pc->tcp, on_alloc, on_read);
    KV_DEBUG("peer %s (node %u): connected", p->addr, p->id);
    if (p->out.len)
        mark_dirty(p);
}

/* Starts the TCP connect of pc (the peer's current attempt) to sa. */
static void connect_to(struct kv_peer *p, struct pconn *pc, const struct sockaddr *sa)
{
    int rc = uv_tcp_connect(&pc->creq, &pc->tcp, sa, on_connect);
    if (rc < 0)
        conn_failed(p, "connect", rc);
}

/* (5): the addr_idx-th address of res counting IPv4 ones first, wrapping around. */
static const struct addrinfo *pick_addr(const struct addrinfo *res, uint32_t idx)
{
    size_t n = 0;
    for (const struct addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET || a->ai_family == AF_INET6)
            n++;
    if (n == 0)
        return NULL;
    size_t want = idx % n;
    for (int pass = 0; pass < 2; pass++)
        for (const struct addrinfo *a = res; a; a = a->ai_next) {
            int fam = pass == 0 ? AF_INET : AF_INET6;
            if (a->ai_family == fam && want-- == 0)
                return a;
        }
    return NULL;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct pconn *pc = req->data;
    pc->resolving = false;
    pc->set->resolving--;
    struct kv_peer *p = pc->peer;
    if (!p) {   /* detached (timed out, shutdown): the close callback may have run already */
        uv_freeaddrinfo(res);
        if (pc->closed)
            free(pc);
        return;
    }
    const struct addrinfo *ai = status == 0 ? pick_addr(res, p->addr_idx) : NULL;
    if (ai && ai->ai_addrlen <= sizeof p->last_sa) {
        memcpy(&p->last_sa, ai->ai_addr, ai->ai_addrlen);
        p->resolve_warned = false;
        uv_freeaddrinfo(res);
        connect_to(p, pc, (const struct sockaddr *)&p->last_sa);
        return;
    }
    uv_freeaddrinfo(res);
    p->resolve_failures++;
    if (!p->resolve_warned)
        KV_WARN("peer %s (node %u): cannot resolve: %s%s", p->addr, p->id,
                status ? uv_strerror(status) : "no IP address",
                p->last_sa.ss_family ? "; using the address it had last" : "");
    p->resolve_warned = true;
    if (p->last_sa.ss_family)
        connect_to(p, pc, (const struct sockaddr *)&p->last_sa);
    else
        conn_failed(p, "resolve", status);
}

static void start_connect(struct kv_peer *p)
{
    struct kv_peers *ps = p->set;
    struct kv_server *s = ps->srv;
    char host[KV_ADDR_HOST_MAX];
    uint16_t port;
    struct sockaddr_storage sa;
    socklen_t salen;
    struct kv_err err;
    if (kv_addr_split(p->addr, host, sizeof host, &port, &err) != KV_OK ||
        kv_addr_check(p->addr, &err) != KV_OK) {
        if (!p->bad_addr)
            KV_WARN("peer %s: %s", p->addr, err.msg);
        p->bad_addr = true;
        conn_failed(p, "bad address", 0);
        return;
    }
    struct pconn *pc = calloc(1, sizeof *pc);
    if (!pc) {
        conn_failed(p, "out of memory", 0);
        return;
    }
    pc->set = ps;
    pc->peer = p;
    uv_tcp_init(s->loop, &pc->tcp);
    pc->tcp.data = pc;
    pc->creq.data = pc;
    pc->gai.data = pc;
    p->conn = pc;
    p->state = PEER_CONNECTING;
    uv_timer_start(&p->timer, on_connect_timeout, PEER_CONNECT_TIMEOUT_MS, 0);
    if (kv_addr_numeric(host, port, &sa, &salen) == 0) {
        connect_to(p, pc, (const struct sockaddr *)&sa);
        return;
    }
    if (ps->resolving >= PEER_MAX_RESOLVING) {   /* (4) */
        if (p->last_sa.ss_family)
            connect_to(p, pc, (const struct sockaddr *)&p->last_sa);
        else
            conn_failed(p, "resolver busy", 0);
        return;
    }
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = uv_getaddrinfo(s->loop, &pc->gai, on_resolved, host, service, &hints);
    if (rc < 0) {
        conn_failed(p, "resolve", rc);
        return;
    }
    pc->resolving = true;
    ps->resolving++;
}

/* --- sending ----------------------------------------------------------------------------- */

static void enqueue(struct kv_peer *p, const Kv__PeerMessage *msg)
{
    struct kv_server *s = p->set->srv;
    if (p->set->closing)
        return;
    Kv__Request req = KV__REQUEST__INIT;
    req.id = 0;
    req.op_case = KV__REQUEST__OP_PEER;
    req.peer = (Kv__PeerMessage *)msg;
    size_t need = kv__request__get_packed_size(&req) + KV_FRAME_HDR;
    if (p->out.len + p->writing + need > s->cfg.peer_queue_bytes) {
        p->dropped++;
        return;
    }
    struct kv_err err;
    if (kv_codec_frame_append(&p->out, &req.base, s->cfg.max_frame, &err) != KV_OK) {
        KV_WARN("peer %s: message not sent: %s", p->addr, err.msg);
        p->dropped++;
        return;
    }
    p->out_msgs++;
    switch (p->state) {
    case PEER_IDLE:
        start_connect(p);
        break;
    case PEER_CONNECTED:
        mark_dirty(p);
        break;
    case PEER_CONNECTING:
    case PEER_BACKOFF:
        break;
    }
}

void kv_peers_send(struct kv_peers *ps, uint32_t id, const Kv__PeerMessage *msg)
{
    struct id_ent *e = find_id(ps, id);
    if (!e) {
        ps->unknown_drops++;
        return;
    }
    enqueue(e->peer, msg);
}

void kv_peers_send_addr(struct kv_peers *ps, const char *addr, const Kv__PeerMessage *msg)
{
    if (ps->closing)
        return;
    struct kv_peer *p = peer_for_addr(ps, addr);
    if (!p) {
        ps->unknown_drops++;
        return;
    }
    enqueue(p, msg);
}

static void on_write(uv_write_t *req, int status)
{
    struct pwrite *w = (struct pwrite *)req;
    struct kv_peer *p = w->pc->peer;
    size_t len = w->buf.len;
    kv_vec_free(&w->buf);
    free(w);
    if (!p)
        return;   /* detached: accounted for when it failed */
    p->writing -= len;
    if (status < 0)
        conn_failed(p, "write", status);
}

/* Like server/conn.c (2): uv_try_write first while no uv_write is in flight (order is
 * kept), and a uv_write only for what the socket did not take. */
static void peer_flush(struct kv_peer *p)
{
    if (p->state != PEER_CONNECTED || !p->out.len)
        return;
    if (p->writing == 0) {
        uv_buf_t tb = uv_buf_init((char *)p->out.ptr, (unsigned)p->out.len);
        int n = uv_try_write((uv_stream_t *)&p->conn->tcp, &tb, 1);
        if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
            conn_failed(p, "write", n);
            return;
        }
        if (n > 0)
            kv_vec_consume(&p->out, (size_t)n);
        if (p->out.len == 0) {
            p->sent += p->out_msgs;
            p->out_msgs = 0;
            if (p->out.cap > (1u << 20))   /* one big message: do not keep its buffer */
                kv_vec_free(&p->out);
            return;
        }
    }
    struct pwrite *w = malloc(sizeof *w);
    if (!w)
        return;   /* stays queued for the next flush */
    w->pc = p->conn;
    w->buf = p->out;
    p->out = (struct kv_vec){0};
    p->sent += p->out_msgs;
    p->out_msgs = 0;
    p->writing += w->buf.len;
    uv_buf_t b = uv_buf_init((char *)w->buf.ptr, (unsigned)w->buf.len);
    int rc = uv_write(&w->req, (uv_stream_t *)&p->conn->tcp, &b, 1, on_write);
    if (rc < 0) {
        p->writing -= w->buf.len;
        kv_vec_free(&w->buf);
        free(w);
        conn_failed(p, "write", rc);
    }
}

void kv_peers_flush(struct kv_peers *ps)
{
    struct kv_peer *p = ps->dirty;
    ps->dirty = NULL;
    while (p) {
        struct kv_peer *next = p->dirty_next;
        p->dirty = false;
        p->dirty_next = NULL;
        peer_flush(p);
        p = next;
    }
}

/* --- metrics and shutdown ------------------------------------------------------------- */

static int emitf(struct kv_vec *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int emitf(struct kv_vec *out, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    return kv_vec_append(out, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

int kv_peers_render(const struct kv_peers *ps, struct kv_vec *out)
{
    int rc = 0;
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"kvd_peer_connected", "gauge", "1 while the outbound connection to the peer is up."},
        {"kvd_peer_state", "gauge",
         "Outbound connection state: 0 idle, 1 connecting, 2 connected, 3 backoff."},
        {"kvd_peer_queued_bytes", "gauge", "Bytes queued for the peer and not yet written."},
        {"kvd_peer_messages_sent_total", "counter", "Messages written to the peer."},
        {"kvd_peer_messages_dropped_total", "counter",
         "Messages dropped: queue full, connection failed, or too large."},
        {"kvd_peer_connects_total", "counter", "Connections established to the peer."},
        {"kvd_peer_connect_failures_total", "counter",
         "Connection attempts that failed or connections that broke."},
        {"kvd_peer_resolve_failures_total", "counter",
         "Lookups of the peer's host name that failed (numeric addresses never fail)."},
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        rc |= emitf(out, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name,
                    fam[f].type);
        for (const struct kv_peer *p = ps->list; p; p = p->next) {
            uint64_t v = 0;
            switch (f) {
            case 0: v = p->state == PEER_CONNECTED; break;
            case 1: v = (uint64_t)p->state; break;
            case 2: v = p->out.len + p->writing; break;
            case 3: v = p->sent; break;
            case 4: v = p->dropped; break;
            case 5: v = p->connects; break;
            case 6: v = p->failures; break;
            case 7: v = p->resolve_failures; break;
            }
            rc |= emitf(out, "%s{peer=\"%s\",node=\"%u\"} %llu\n", fam[f].name, p->addr,
                        p->id, (unsigned long long)v);
        }
    }
    rc |= emitf(out, "# HELP kvd_peer_messages_unroutable_total Messages for a node whose "
                     "address is not known yet.\n# TYPE kvd_peer_messages_unroutable_total "
                     "counter\nkvd_peer_messages_unroutable_total %llu\n",
                (unsigned long long)ps->unknown_drops);
    return rc ? -1 : 0;
}

void kv_peers_close(struct kv_peers *ps)
{
    if (!ps || ps->closing)
        return;
    ps->closing = true;
    ps->dirty = NULL;
    for (struct kv_peer *p = ps->list; p; p = p->next) {
        p->dirty = false;
        detach(p);
        kv_vec_free(&p->out);
        p->out_msgs = 0;
        p->writing = 0;
        p->state = PEER_IDLE;
        uv_close((uv_handle_t *)&p->timer, NULL);
    }
}

void kv_peers_free(struct kv_peers *ps)
{
    if (!ps)
        return;
    struct kv_peer *p = ps->list;
    while (p) {
        struct kv_peer *next = p->next;
        kv_vec_free(&p->out);
        free(p);
        p = next;
    }
    free(ps->ids);
    free(ps);
}
