/* client/client.c -- the public client: connect and close, submit/poll/exec over the
 * connections of every node, the ring refresh.
 *
 * (1) Request ids come from one per-client counter starting at 1, so they are unique for
 *     the client's lifetime; answers are matched by id in the table of the node whose
 *     connection carried the request (inflight.c), in any order.
 * (2) Every op has a deadline. When it passes the op completes KVC_TIMEOUT with a message
 *     saying the outcome is unknown, and leaves its table, so a late answer is ignored.
 *     The request tells the server a slightly shorter timeout (10%, at most 250 ms less),
 *     so the server's more informative TIMEOUT normally wins the race.
 * (3) When an open connection breaks (EOF, error, or a response that fails its checksum
 *     or does not decode), every op in flight on it completes at once (KVC_CONN
 *     "connection lost; outcome unknown", or KVC_PROTO / KVC_TOO_LARGE), the socket is
 *     closed and the node is avoided (nodes.c). Nothing is resent here: whether a read is
 *     retried is the synchronous call's decision (calls.c), and a write never is.
 * (4) Requests queued while connecting have not left the process: when the connect
 *     fails they move to another node unchanged. Only when no node is left do they
 *     complete KVC_CONN, and then kvc_poll returns KVC_CONN.
 * (5) The ring is asked for at connect (waited for), then every ring_refresh_ms and soon
 *     after a node failed, by one op at a time in the background of the caller's calls;
 *     a node answering INVALID (it does not know cluster_status) puts the client in
 *     plain mode until a later answer brings a ring.
 * (6) Nothing here blocks except kvc_connect, kvc_poll (bounded by its timeout and the
 *     ops' deadlines) and the synchronous wrappers, which are kvc_submit + kvc_poll. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "client/internal.h"
#include "common/clock.h"
#include "proto/arena.h"

void kvc_opts_default(struct kvc_opts *o)
{
    memset(o, 0, sizeof *o);
    o->addrs = "127.0.0.1:7379";
    o->connect_timeout_ms = 2000;
    o->timeout_ms = 5000;
    o->max_frame = 16u << 20;
    o->compress_threshold = 4096;
    o->token_aware = true;
    o->ring_refresh_ms = 10000;
    o->max_conns = 64;
}

/* --- completion ------------------------------------------------------------------------- */

void kvc__push_done(struct kvc_client *c, struct kvc_op *op)
{
    op->done = true;
    op->next_ = NULL;
    if (c->done_tail)
        c->done_tail->next_ = op;
    else
        c->done_head = op;
    c->done_tail = op;
    if (op != &c->refresh.op)
        c->pending--;
}

/* The ring refresh finished: learn from it and schedule the next one. */
static void refresh_done(struct kvc_client *c)
{
    c->refreshing = false;
    c->ring_next_ns = kv_clock_mono_ns() + (uint64_t)c->opts.ring_refresh_ms * 1000000u;
    if (c->refresh.op.err.code == KVC_OK)
        kvc__install_status(c, &c->refresh.st, c->refresh_node);
    else if (c->refresh.op.err.code == KVC_INVALID)
        kvc__drop_ring(c);   /* an older server: it does not know cluster_status */
    kvc_cluster_status_free(&c->refresh.st);
}

/* Runs the callbacks of completed ops, oldest first; returns how many of the caller's
 * ops completed. */
static int run_done(struct kvc_client *c)
{
    int n = 0;
    while (c->done_head) {
        struct kvc_op *op = c->done_head;
        c->done_head = op->next_;
        if (!c->done_head)
            c->done_tail = NULL;
        op->next_ = NULL;
        if (op == &c->refresh.op) {
            refresh_done(c);
            continue;
        }
        n++;
        /* After the callback the op may be freed or resubmitted: do not touch it. */
        if (op->cb_)
            op->cb_(op, op->cb_arg_);
    }
    return n;
}

size_t kvc__fail_node(struct kvc_client *c, size_t i, int code, const char *msg,
                      unsigned flags)
{
    struct kvc__node *n = c->nodes[i];
    struct kvc_op *head = NULL, *tail = NULL;
    kvc__table_drain(&n->table, NULL, NULL, &head, &tail);
    size_t mine = 0;
    while (head) {
        struct kvc_op *op = head;
        head = op->next_;
        kvc__err(&op->err, code, "%s", msg);
        op->flags_ |= flags;
        mine += op != &c->refresh.op;
        kvc__push_done(c, op);
    }
    kvc__conn_reset(&n->conn);
    return mine;
}

/* An open connection broke: fail what was in flight on it and avoid the node. */
static void conn_broke(struct kvc_client *c, size_t i, int code, const char *detail,
                       uint64_t now)
{
    /* The detail is cut to fit, so the verdict ("outcome unknown") always survives. */
    char msg[sizeof ((struct kvc_err *)0)->msg];
    if (code == KVC_CONN)
        snprintf(msg, sizeof msg, "connection lost; outcome unknown (%.110s)", detail);
    else
        snprintf(msg, sizeof msg, "%.110s; connection closed, outcome unknown", detail);
    kvc__fail_node(c, i, code, msg, KVC__F_LOST);
    kvc__node_avoid(c, i, now);
}

static bool deadline_passed(const struct kvc_op *op, void *now)
{
    return op->deadline_ns_ <= *(const uint64_t *)now;
}

static void expire(struct kvc_client *c, uint64_t now)
{
    for (size_t i = 0; i < c->nnodes; i++) {
        struct kvc__table *t = &c->nodes[i]->table;
        if (!t->count || kvc__table_earliest(t) > now)
            continue;
        struct kvc_op *head = NULL, *tail = NULL;
        kvc__table_drain(t, deadline_passed, &now, &head, &tail);
        while (head) {
            struct kvc_op *op = head;
            head = op->next_;
            uint32_t ms = op->call.timeout_ms ? op->call.timeout_ms : c->opts.timeout_ms;
            kvc__err(&op->err, KVC_TIMEOUT, "no answer within %u ms; outcome unknown", ms);
            kvc__push_done(c, op);
        }
    }
}

/* --- routing and submitting ------------------------------------------------------------- */

/* The node for op. When every node is being avoided a new round starts (the marks are
 * forgotten); when even then the ring calls every node down, the sticky node is tried. */
static size_t route(struct kvc_client *c, const struct kvc_op *op, uint64_t now)
{
    size_t i = kvc__pick(c, op, now);
    if (i != KVC__NONE)
        return i;
    for (size_t k = 0; k < c->nnodes; k++)
        c->nodes[k]->avoid_until_ns = 0;
    i = kvc__pick(c, op, now);
    return i != KVC__NONE ? i : c->cur;
}

static void maybe_refresh(struct kvc_client *c, uint64_t now)
{
    if (!c->opts.token_aware || c->refreshing || now < c->ring_next_ns)
        return;
    memset(&c->refresh, 0, sizeof c->refresh);
    c->refresh.op.type = KVC__OP_STATUS;
    c->refreshing = true;   /* before submitting: kvc__submit calls back here */
    c->refresh_node = KVC__NONE;
    if (kvc__submit(c, &c->refresh.op, NULL, NULL, NULL) != KVC_OK) {
        c->refreshing = false;
        c->ring_next_ns = now + (uint64_t)c->opts.ring_refresh_ms * 1000000u;
    }
}

int kvc__submit(struct kvc_client *c, struct kvc_op *op, kvc_done_fn cb, void *arg,
                struct kvc_err *err)
{
    uint64_t now = kv_clock_mono_ns();
    if (op != &c->refresh.op)
        maybe_refresh(c, now);
    size_t i = route(c, op, now);
    for (size_t tried = 1; kvc__node_open(c, i, now, &c->last_err) != KVC_OK; tried++) {
        if ((i = kvc__pick(c, op, now)) != KVC__NONE)   /* the failed node is avoided now */
            continue;
        if (tried == 1)
            return kvc__err(err, KVC_CONN, "cannot connect: %s", c->last_err.msg);
        return kvc__err(err, KVC_CONN, "cannot connect to any of %zu nodes (last: %s)", tried,
                        c->last_err.msg);
    }
    struct kvc__node *n = c->nodes[i];
    uint32_t tmo = op->call.timeout_ms ? op->call.timeout_ms : c->opts.timeout_ms;
    op->id_ = c->next_id++;
    op->deadline_ns_ = now + (uint64_t)tmo * 1000000u;
    op->cb_ = cb;
    op->cb_arg_ = arg;
    op->retry_after_ms = 0;     /* set again only by an OVERLOADED answer to this send */
    /* The server gets a little less time than the client waits, so that when replicas
     * are slow its TIMEOUT answer (which says how many acked) arrives before the
     * client's own deadline, which can only say "unknown". */
    uint32_t server_tmo = tmo - (tmo / 10 < 250 ? tmo / 10 : 250);
    size_t mark = n->conn.out.len;
    int rc = kvc__op_encode(op, server_tmo, c->opts.compress_threshold, c->opts.max_frame,
                            &c->scratch, &n->conn.out, err);
    if (rc != KVC_OK)
        return rc;
    if (kvc__table_add(&n->table, op) != 0) {
        n->conn.out.len = mark;   /* the frame is whole and last: dropping it is safe */
        return kvc__err(err, KVC_NOMEM, "out of memory");
    }
    if (op != &c->refresh.op) {
        c->pending++;
        c->last_node = i;   /* kvc_fd: the caller's most recent connection */
    }
    return KVC_OK;
}

int kvc_submit(struct kvc_client *c, struct kvc_op *op, kvc_done_fn cb, void *arg,
               struct kvc_err *err)
{
    memset(&op->err, 0, sizeof op->err);
    memset(&op->result, 0, sizeof op->result);
    memset(&op->scan_result, 0, sizeof op->scan_result);
    op->done = false;
    op->next_ = NULL;
    op->flags_ = 0;
    int rc = kvc__op_validate(op, c->opts.max_frame, err);
    if (rc != KVC_OK)
        return rc;
    return kvc__submit(c, op, cb, arg, err);
}

/* --- connections -------------------------------------------------------------------------- */

/* The first op in t (any will do), or NULL. */
static const struct kvc_op *some_op(const struct kvc__table *t)
{
    for (size_t i = 0; i < t->nbuckets && t->count; i++)
        if (t->buckets[i])
            return t->buckets[i];
    return NULL;
}

/* A local read (kvc_call.local): bound to nodes[0], never moved (nodes.c (5)). */
static bool is_local(const struct kvc_op *op, void *arg)
{
    (void)arg;
    return op->type == KVC_OP_GET && op->call.local;
}

/* Node src's connect failed with requests queued that never left the process: move them
 * to another node, and on from there while connects fail at once. They all go where one
 * of them would be routed now (its next replica): most share that replica, and any node
 * coordinates the others. Returns how many of the caller's ops failed because no node
 * was left (err says why). */
static size_t reroute(struct kvc_client *c, size_t src, uint64_t now, struct kvc_err *err)
{
    size_t failed = 0;
    kvc__node_avoid(c, src, now);
    for (;;) {
        struct kvc__node *s = c->nodes[src];
        /* A local read must not be answered by another node (nodes.c (5)): it fails here.
         * Its frame moves with the others; the answer finds no op and is ignored. */
        struct kvc_op *lh = NULL, *lt = NULL;
        if (kvc__table_drain(&s->table, is_local, NULL, &lh, &lt))
            kvc__err(err, KVC_CONN, "cannot connect to %s for a local read", s->addr);
        while (lh) {
            struct kvc_op *op = lh;
            lh = op->next_;
            kvc__err(&op->err, KVC_CONN, "cannot connect to %s for a local read: %.100s",
                     s->addr, c->last_err.msg);
            failed += op != &c->refresh.op;
            kvc__push_done(c, op);
        }
        const struct kvc_op *any = some_op(&s->table);
        if (!any) {
            s->conn.out.len = 0;   /* only requests whose ops timed out: nobody waits */
            return failed;
        }
        size_t dst = kvc__pick(c, any, now);
        if (dst == KVC__NONE) {
            char msg[sizeof ((struct kvc_err *)0)->msg];
            snprintf(msg, sizeof msg, "cannot connect to any node (last: %.120s)",
                     c->last_err.msg);
            kvc__err(err, KVC_CONN, "%s", msg);
            return failed + kvc__fail_node(c, src, KVC_CONN, msg, 0);
        }
        struct kvc__node *d = c->nodes[dst];
        if (kv_vec_append(&d->conn.out, s->conn.out.ptr, s->conn.out.len) != 0)
            return failed + kvc__fail_node(c, src, KVC_NOMEM, "out of memory moving requests",
                                           0);
        s->conn.out.len = 0;
        struct kvc_op *head = NULL, *tail = NULL;
        kvc__table_drain(&s->table, NULL, NULL, &head, &tail);
        while (head) {
            struct kvc_op *op = head;
            head = op->next_;
            if (kvc__table_add(&d->table, op) != 0) {
                kvc__err(&op->err, KVC_NOMEM, "out of memory");   /* its answer is ignored */
                kvc__push_done(c, op);
            }
        }
        if (kvc__node_open(c, dst, now, &c->last_err) == KVC_OK)
            return failed;
        src = dst;
    }
}

/* Reads and dispatches everything node i's socket has. */
static void read_answers(struct kvc_client *c, size_t i, uint64_t now)
{
    struct kvc__node *n = c->nodes[i];
    struct kvc_err e = {0};
    bool full = true;
    while (full && n->conn.state == KVC__OPEN) {
        if (kvc__conn_read(&n->conn, &full, &e) < 0) {
            conn_broke(c, i, KVC_CONN, e.msg, now);
            return;
        }
        for (;;) {
            struct kv_slice payload;
            size_t flen;
            int r = kvc__conn_next_frame(&n->conn, &payload, &flen, &e);
            if (r == 1)
                break;
            if (r != KVC_OK) {
                conn_broke(c, i, r, e.msg, now);
                return;
            }
            /* Decoded into the client's arena, not with malloc per field: the response
             * lives only until its op is filled (ops.c copies what it keeps). */
            kv_pb_arena_begin(&c->arena, kv_pb_arena_budget_for(payload.len));
            Kv__Response *resp = kv__response__unpack(&c->arena.pb, payload.len, payload.ptr);
            if (!resp) {
                bool big = c->arena.refused;
                kv_pb_arena_begin(&c->arena, 0);
                kvc__err(&e, big ? KVC_TOO_LARGE : KVC_PROTO,
                         big ? "bad response from %s: payload of %zu bytes decodes to too much"
                             : "bad response from %s: payload of %zu bytes is not a valid "
                               "Response",
                         n->conn.peer, payload.len);
                conn_broke(c, i, e.code, e.msg, now);
                return;
            }
            if (resp->status == KV__STATUS__SHUTTING_DOWN)
                kvc__node_avoid(c, i, now);   /* stopping: send new requests elsewhere */
            /* NULL: a late answer for a timed-out op, or an id we never sent; ignored. */
            struct kvc_op *op = kvc__table_take(&n->table, resp->id);
            if (op) {
                if (op == &c->refresh.op)
                    c->refresh_node = i;
                kvc__op_fill(op, resp, c->opts.max_frame);
                kvc__push_done(c, op);
            }
            kv_pb_arena_begin(&c->arena, 0);   /* frees resp; returns any big chunk now */
            kvc__conn_consume(&n->conn, flen);
        }
    }
}

/* Sends what node i has queued, if it is open; false when that broke the connection
 * (its ops have completed, conn_broke). */
static bool flush_node(struct kvc_client *c, size_t i, uint64_t now)
{
    struct kvc__node *n = c->nodes[i];
    if (n->conn.state != KVC__OPEN || !n->conn.out.len)
        return true;
    struct kvc_err e;
    if (kvc__conn_flush(&n->conn, &e) == KVC_OK)
        return true;
    conn_broke(c, i, KVC_CONN, e.msg, now);
    return false;
}

/* Non-blocking progress on every node: finish connects (rerouting what a failed one
 * held), send what is queued, start a ring refresh when due. KVC_CONN when some of the
 * caller's ops found no node (they have completed), else KVC_OK. */
static int progress(struct kvc_client *c, uint64_t now, struct kvc_err *err)
{
    int hard = KVC_OK;
    maybe_refresh(c, now);
    for (size_t i = 0; i < c->nnodes; i++) {
        struct kvc__node *n = c->nodes[i];
        if (n->conn.state == KVC__CONNECTING) {
            int r = kvc__conn_check_connect(&n->conn, now, &c->last_err);
            if (r == KVC_OK)
                n->avoid_until_ns = 0;
            else if (r == KVC_CONN && reroute(c, i, now, err))
                hard = KVC_CONN;
        }
        flush_node(c, i, now);
    }
    return hard;
}

/* Milliseconds until `until`, an op deadline or a connect deadline, whichever is first. */
static int wait_ms(const struct kvc_client *c, uint64_t now, uint64_t until)
{
    uint64_t wake = until;
    for (size_t i = 0; i < c->nnodes; i++) {
        const struct kvc__node *n = c->nodes[i];
        uint64_t first = kvc__table_earliest(&n->table);
        if (first < wake)
            wake = first;
        if (n->conn.state == KVC__CONNECTING && n->conn.connect_deadline_ns < wake)
            wake = n->conn.connect_deadline_ns;
    }
    uint64_t ms = wake > now ? (wake - now + 999999) / 1000000 : 0;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Waits up to ms for any socket, then reads every one that has something. */
static void wait_sockets(struct kvc_client *c, int ms)
{
    if (c->pfd_cap < c->nnodes) {
        struct pollfd *p = realloc(c->pfds, c->nnodes * sizeof *p);
        if (p)
            c->pfds = p;
        size_t *q = p ? realloc(c->pfd_node, c->nnodes * sizeof *q) : NULL;
        if (q) {
            c->pfd_node = q;
            c->pfd_cap = c->nnodes;
        }
    }
    nfds_t nfds = 0;
    for (size_t i = 0; i < c->nnodes && nfds < c->pfd_cap; i++) {
        short ev = kvc__conn_events(&c->nodes[i]->conn);
        if (!ev)
            continue;
        c->pfds[nfds] = (struct pollfd){.fd = c->nodes[i]->conn.fd, .events = ev};
        c->pfd_node[nfds++] = i;
    }
    int r = poll(c->pfds, nfds, ms);
    uint64_t now = kv_clock_mono_ns();
    if (r < 0 && errno != EINTR) {
        for (nfds_t k = 0; k < nfds; k++)
            conn_broke(c, c->pfd_node[k], KVC_CONN, "poll failed", now);
        return;
    }
    for (nfds_t k = 0; r > 0 && k < nfds; k++) {
        size_t i = c->pfd_node[k];
        if (c->nodes[i]->conn.state == KVC__OPEN &&
            (c->pfds[k].revents & (POLLIN | POLLERR | POLLHUP)))
            read_answers(c, i, now);
    }
}

/* --- connect and close -------------------------------------------------------------------- */

static void free_client(struct kvc_client *c)
{
    kvc__nodes_free(c);
    kvc__ring_free(&c->ring);
    kvc_cluster_status_free(&c->refresh.st);
    kv_vec_free(&c->scratch);
    kv_pb_arena_destroy(&c->arena);
    free(c->pfds);
    free(c->pfd_node);
    free(c);
}

/* Splits "a:1, b:2" into seed nodes. */
static int parse_addrs(struct kvc_client *c, const char *list, struct kvc_err *err)
{
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        char *addr = strndup(p, (size_t)(e - p));
        size_t i = addr ? kvc__node_add(c, addr, true) : KVC__NONE;
        free(addr);
        if (i == KVC__NONE)
            return kvc__err(err, KVC_NOMEM, "out of memory");
        p = e;
    }
    if (!c->nnodes)
        return kvc__err(err, KVC_INVALID, "no server address given");
    c->nseeds = c->nnodes;
    return KVC_OK;
}

/* Connects to the first seed that accepts, in order, waiting for each in turn. */
static int connect_first(struct kvc_client *c, struct kvc_err *err)
{
    for (size_t i = 0; i < c->nseeds; i++) {
        struct kvc__conn *cn = &c->nodes[i]->conn;
        int rc = kvc__conn_start(cn, c->nodes[i]->addr, c->opts.connect_timeout_ms,
                                 &c->last_err);
        while (rc == KVC_OK && cn->state == KVC__CONNECTING) {
            uint64_t now = kv_clock_mono_ns();
            uint64_t left = cn->connect_deadline_ns > now ? cn->connect_deadline_ns - now : 0;
            kvc__conn_wait(cn, (int)((left + 999999) / 1000000));
            if (kvc__conn_check_connect(cn, kv_clock_mono_ns(), &c->last_err) == KVC_CONN)
                rc = KVC_CONN;
        }
        uint64_t now = kv_clock_mono_ns();
        if (rc == KVC_OK) {
            c->cur = c->last_node = i;
            c->nodes[i]->last_used_ns = now;
            return KVC_OK;
        }
        kvc__node_avoid(c, i, now);
    }
    if (c->nseeds == 1)
        return kvc__err(err, KVC_CONN, "cannot connect: %s", c->last_err.msg);
    return kvc__err(err, KVC_CONN, "cannot connect to any of %zu addresses (last: %s)",
                    c->nseeds, c->last_err.msg);
}

int kvc_connect(const struct kvc_opts *o, struct kvc_client **out, struct kvc_err *err)
{
    *out = NULL;
    struct kvc_opts def;
    kvc_opts_default(&def);
    if (!o)
        o = &def;
    struct kvc_client *c = calloc(1, sizeof *c);
    if (!c)
        return kvc__err(err, KVC_NOMEM, "out of memory");
    kv_pb_arena_init(&c->arena);
    c->opts = *o;
    c->opts.addrs = NULL;
    if (!c->opts.connect_timeout_ms)
        c->opts.connect_timeout_ms = def.connect_timeout_ms;
    if (!c->opts.timeout_ms)
        c->opts.timeout_ms = def.timeout_ms;
    if (!c->opts.max_frame)
        c->opts.max_frame = def.max_frame;
    if (!c->opts.ring_refresh_ms)
        c->opts.ring_refresh_ms = def.ring_refresh_ms;
    if (!c->opts.max_conns)
        c->opts.max_conns = def.max_conns;
    c->next_id = 1;
    int rc = parse_addrs(c, o->addrs ? o->addrs : def.addrs, err);
    if (rc == KVC_OK)
        rc = connect_first(c, err);
    if (rc != KVC_OK) {
        free_client(c);
        return rc;
    }
    /* Learn the ring before the first op, so it already goes to a replica. */
    c->ring_next_ns = 0;
    maybe_refresh(c, kv_clock_mono_ns());
    while (c->refreshing) {
        uint64_t now = kv_clock_mono_ns();
        progress(c, now, NULL);
        expire(c, now);
        run_done(c);
        if (c->refreshing)
            wait_sockets(c, wait_ms(c, now, UINT64_MAX));
        run_done(c);
    }
    *out = c;
    return KVC_OK;
}

void kvc_close(struct kvc_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nnodes; i++)
        kvc__fail_node(c, i, KVC_CONN, "client closed; outcome unknown", 0);
    run_done(c);
    free_client(c);
}

/* --- polling ------------------------------------------------------------------------------ */

int kvc_poll(struct kvc_client *c, int timeout_ms, struct kvc_err *err)
{
    struct kvc_err local;
    if (!err)
        err = &local;
    uint64_t start = kv_clock_mono_ns();
    uint64_t until = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms * 1000000u;
    int completed = 0;
    bool waited = false;
    for (;;) {
        uint64_t now = kv_clock_mono_ns();
        int hard = progress(c, now, err);
        expire(c, now);
        completed += run_done(c);
        if (hard != KVC_OK)
            return hard;
        if (completed || !c->pending || (waited && now >= until))
            break;
        wait_sockets(c, wait_ms(c, now, until));
        waited = true;
        completed += run_done(c);
        if (completed)
            break;
    }
    return completed;
}

int kvc_handle_events(struct kvc_client *c, const struct pollfd *fds, size_t nfds,
                      struct kvc_err *err)
{
    struct kvc_err local;
    if (!err)
        err = &local;
    uint64_t now = kv_clock_mono_ns();
    int hard = progress(c, now, err);
    for (size_t k = 0; k < nfds; k++) {
        if (!(fds[k].revents & (POLLIN | POLLERR | POLLHUP)))
            continue;
        /* The set may have changed since kvc_fds (progress can close and reopen): find the
         * node by descriptor, and read only a connection that is open now. */
        for (size_t i = 0; i < c->nnodes; i++)
            if (c->nodes[i]->conn.fd == fds[k].fd && c->nodes[i]->conn.state == KVC__OPEN) {
                read_answers(c, i, now);
                break;
            }
    }
    expire(c, now);
    int completed = run_done(c);
    /* Send what the callbacks queued now rather than at the next call: otherwise the
     * caller's next wait returns at once for POLLOUT, a whole extra round through its loop
     * (and, with epoll, two epoll_ctl) per request before the request leaves. */
    bool broke = false;
    for (size_t i = 0; i < c->nnodes; i++)
        broke |= !flush_node(c, i, now);
    if (broke)
        completed += run_done(c);
    return hard != KVC_OK ? hard : completed;
}

size_t kvc_pending(const struct kvc_client *c) { return c->pending; }

size_t kvc_fds(const struct kvc_client *c, struct pollfd *fds, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nnodes; i++) {
        short ev = kvc__conn_events(&c->nodes[i]->conn);
        if (!ev)
            continue;
        if (n < max)
            fds[n] = (struct pollfd){.fd = c->nodes[i]->conn.fd, .events = ev};
        n++;
    }
    return n;
}

uint64_t kvc_fds_epoch(const struct kvc_client *c)
{
    /* A sum of per-connection counters that only grow, over nodes that are never
     * removed (internal.h (4)): it changes exactly when some socket opened or closed. */
    uint64_t e = 0;
    for (size_t i = 0; i < c->nnodes; i++)
        e += c->nodes[i]->conn.epoch;
    return e;
}

int kvc_fd(const struct kvc_client *c)
{
    return c->last_node < c->nnodes ? c->nodes[c->last_node]->conn.fd : -1;
}

bool kvc_want_write(const struct kvc_client *c)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (kvc__conn_events(&c->nodes[i]->conn) & POLLOUT)
            return true;
    return false;
}
