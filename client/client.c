/* client/client.c -- the public client: addresses and failover, submit/poll/exec, and the
 * synchronous calls built on them.
 *
 * (1) Request ids come from one per-client counter starting at 1, so they are unique for
 *     the client's lifetime; answers are matched by id (inflight.c), in any order.
 * (2) Every op has a deadline. When it passes the op completes KVC_TIMEOUT with a message
 *     saying the outcome is unknown, and leaves the table, so a late answer is ignored.
 *     The request tells the server a slightly shorter timeout (10%, at most 250 ms less),
 *     so the server's more informative TIMEOUT normally wins the race.
 * (3) When an open connection breaks (EOF, error, or a response that fails its checksum
 *     or does not decode), every in-flight op completes at once (KVC_CONN "connection
 *     lost; outcome unknown", or KVC_PROTO / KVC_TOO_LARGE) and the socket is closed. The
 *     next call reconnects, trying the addresses in order starting after the broken one.
 * (4) Requests queued while connecting have not left the process: when one address fails
 *     they go to the next one unchanged. Only after every address failed do they
 *     complete KVC_CONN, and then kvc_poll returns KVC_CONN.
 * (5) Nothing here blocks except kvc_connect, kvc_poll (bounded by its timeout and the
 *     ops' deadlines) and the synchronous wrappers, which are kvc_submit + kvc_poll. */
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "client/internal.h"
#include "common/clock.h"
#include "proto/codec.h"

struct kvc_client {
    char **addrs;               /* owned copies, in the order given */
    size_t naddrs;
    size_t cur;                 /* address of the current (or last) connection attempt */
    size_t next_start;          /* where the next connect round begins */
    size_t round_left;          /* attempts left in the current round */
    struct kvc_err last_err;    /* why the last attempt failed */
    struct kvc__conn conn;
    struct kvc__table table;
    struct kvc_op *done_head;   /* completed, callbacks not yet run */
    struct kvc_op *done_tail;
    uint64_t next_id;
    struct kvc_opts opts;       /* opts.addrs is not kept */
    struct kv_vec scratch;      /* LZ4 output, reused */
};

void kvc_opts_default(struct kvc_opts *o)
{
    o->addrs = "127.0.0.1:7379";
    o->connect_timeout_ms = 2000;
    o->timeout_ms = 5000;
    o->max_frame = 16u << 20;
    o->compress_threshold = 4096;
}

/* --- completion ------------------------------------------------------------------------- */

static void push_done(struct kvc_client *c, struct kvc_op *op)
{
    op->done = true;
    op->next_ = NULL;
    if (c->done_tail)
        c->done_tail->next_ = op;
    else
        c->done_head = op;
    c->done_tail = op;
}

/* Runs the callbacks of completed ops, oldest first; returns how many completed. */
static int run_done(struct kvc_client *c)
{
    int n = 0;
    while (c->done_head) {
        struct kvc_op *op = c->done_head;
        c->done_head = op->next_;
        if (!c->done_head)
            c->done_tail = NULL;
        op->next_ = NULL;
        n++;
        /* After the callback the op may be freed or resubmitted: do not touch it. */
        if (op->cb_)
            op->cb_(op, op->cb_arg_);
    }
    return n;
}

/* Completes every in-flight op with code/msg and closes the connection. */
static void fail_all(struct kvc_client *c, int code, const char *msg)
{
    struct kvc_op *head = NULL, *tail = NULL;
    kvc__table_drain(&c->table, NULL, NULL, &head, &tail);
    while (head) {
        struct kvc_op *op = head;
        head = op->next_;
        kvc__err(&op->err, code, "%s", msg);
        push_done(c, op);
    }
    kvc__conn_reset(&c->conn);
}

/* An open connection broke: fail what was in flight and fail over next time. */
static void conn_broke(struct kvc_client *c, int code, const char *detail)
{
    /* The detail is cut to fit, so the verdict ("outcome unknown") always survives. */
    char msg[sizeof ((struct kvc_err *)0)->msg];
    if (code == KVC_CONN)
        snprintf(msg, sizeof msg, "connection lost; outcome unknown (%.110s)", detail);
    else
        snprintf(msg, sizeof msg, "%.110s; connection closed, outcome unknown", detail);
    fail_all(c, code, msg);
    c->next_start = (c->cur + 1) % c->naddrs;
}

static bool deadline_passed(const struct kvc_op *op, void *now)
{
    return op->deadline_ns_ <= *(const uint64_t *)now;
}

static void expire(struct kvc_client *c, uint64_t now)
{
    if (!c->table.count || kvc__table_earliest(&c->table) > now)
        return;
    struct kvc_op *head = NULL, *tail = NULL;
    kvc__table_drain(&c->table, deadline_passed, &now, &head, &tail);
    while (head) {
        struct kvc_op *op = head;
        head = op->next_;
        uint32_t ms = op->call.timeout_ms ? op->call.timeout_ms : c->opts.timeout_ms;
        kvc__err(&op->err, KVC_TIMEOUT, "no answer within %u ms; outcome unknown", ms);
        push_done(c, op);
    }
}

/* --- connecting ------------------------------------------------------------------------- */

/* Starts attempts from c->cur until one is under way or the round is used up. */
static int try_connect(struct kvc_client *c, struct kvc_err *err)
{
    while (c->round_left) {
        c->round_left--;
        if (kvc__conn_start(&c->conn, c->addrs[c->cur], c->opts.connect_timeout_ms,
                            &c->last_err) == KVC_OK)
            return KVC_OK;
        c->cur = (c->cur + 1) % c->naddrs;
    }
    c->next_start = (c->cur + 1) % c->naddrs;
    if (c->naddrs == 1)
        return kvc__err(err, KVC_CONN, "cannot connect: %s", c->last_err.msg);
    return kvc__err(err, KVC_CONN, "cannot connect to any of %zu addresses (last: %s)",
                    c->naddrs, c->last_err.msg);
}

static int begin_round(struct kvc_client *c, struct kvc_err *err)
{
    c->cur = c->next_start;
    c->round_left = c->naddrs;
    return try_connect(c, err);
}

/* Advances a connect in progress. KVC_OK: open or still connecting. KVC_CONN: every
 * address of the round failed; the conn is closed. */
static int drive_connect(struct kvc_client *c, uint64_t now, struct kvc_err *err)
{
    while (c->conn.state == KVC__CONNECTING) {
        int r = kvc__conn_check_connect(&c->conn, now, &c->last_err);
        if (r != KVC_CONN)
            return KVC_OK;
        c->cur = (c->cur + 1) % c->naddrs;
        int rc = try_connect(c, err);
        if (rc != KVC_OK)
            return rc;
    }
    return KVC_OK;
}

static void free_client(struct kvc_client *c)
{
    for (size_t i = 0; i < c->naddrs; i++)
        free(c->addrs[i]);
    free(c->addrs);
    kvc__conn_destroy(&c->conn);
    kvc__table_destroy(&c->table);
    kv_vec_free(&c->scratch);
    free(c);
}

/* Splits "a:1, b:2" into owned, trimmed strings. */
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
        char **grown = realloc(c->addrs, (c->naddrs + 1) * sizeof *grown);
        if (!grown)
            return kvc__err(err, KVC_NOMEM, "out of memory");
        c->addrs = grown;
        if (!(c->addrs[c->naddrs] = strndup(p, (size_t)(e - p))))
            return kvc__err(err, KVC_NOMEM, "out of memory");
        c->naddrs++;
        p = e;
    }
    if (!c->naddrs)
        return kvc__err(err, KVC_INVALID, "no server address given");
    return KVC_OK;
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
    c->opts = *o;
    c->opts.addrs = NULL;
    if (!c->opts.connect_timeout_ms)
        c->opts.connect_timeout_ms = def.connect_timeout_ms;
    if (!c->opts.timeout_ms)
        c->opts.timeout_ms = def.timeout_ms;
    if (!c->opts.max_frame)
        c->opts.max_frame = def.max_frame;
    c->next_id = 1;
    kvc__conn_init(&c->conn, c->opts.max_frame);
    kvc__table_init(&c->table);
    int rc = parse_addrs(c, o->addrs ? o->addrs : def.addrs, err);
    if (rc == KVC_OK)
        rc = begin_round(c, err);
    while (rc == KVC_OK && c->conn.state == KVC__CONNECTING) {
        uint64_t now = kv_clock_mono_ns();
        uint64_t left = c->conn.connect_deadline_ns > now ? c->conn.connect_deadline_ns - now : 0;
        kvc__conn_wait(&c->conn, (int)((left + 999999) / 1000000));
        rc = drive_connect(c, kv_clock_mono_ns(), err);
    }
    if (rc != KVC_OK) {
        free_client(c);
        return rc;
    }
    *out = c;
    return KVC_OK;
}

void kvc_close(struct kvc_client *c)
{
    if (!c)
        return;
    fail_all(c, KVC_CONN, "client closed; outcome unknown");
    run_done(c);
    free_client(c);
}

/* --- pipelining ------------------------------------------------------------------------- */

int kvc_submit(struct kvc_client *c, struct kvc_op *op, kvc_done_fn cb, void *arg,
               struct kvc_err *err)
{
    memset(&op->err, 0, sizeof op->err);
    memset(&op->result, 0, sizeof op->result);
    memset(&op->scan_result, 0, sizeof op->scan_result);
    op->done = false;
    op->next_ = NULL;
    int rc = kvc__op_validate(op, c->opts.max_frame, err);
    if (rc != KVC_OK)
        return rc;
    if (c->conn.state == KVC__CLOSED && (rc = begin_round(c, err)) != KVC_OK)
        return rc;
    uint32_t tmo = op->call.timeout_ms ? op->call.timeout_ms : c->opts.timeout_ms;
    op->id_ = c->next_id++;
    op->deadline_ns_ = kv_clock_mono_ns() + (uint64_t)tmo * 1000000u;
    op->cb_ = cb;
    op->cb_arg_ = arg;
    /* The server gets a little less time than the client waits, so that when replicas
     * are slow its TIMEOUT answer (which says how many acked) arrives before the
     * client's own deadline, which can only say "unknown". */
    uint32_t server_tmo = tmo - (tmo / 10 < 250 ? tmo / 10 : 250);
    size_t mark = c->conn.out.len;
    rc = kvc__op_encode(op, server_tmo, c->opts.compress_threshold, c->opts.max_frame,
                        &c->scratch, &c->conn.out, err);
    if (rc != KVC_OK)
        return rc;
    if (kvc__table_add(&c->table, op) != 0) {
        c->conn.out.len = mark;   /* the frame is whole and last: dropping it is safe */
        return kvc__err(err, KVC_NOMEM, "out of memory");
    }
    return KVC_OK;
}

/* Reads and dispatches everything the socket has. */
static void read_answers(struct kvc_client *c)
{
    struct kvc_err e = {0};
    bool full = true;
    while (full && c->conn.state == KVC__OPEN) {
        int n = kvc__conn_read(&c->conn, &full, &e);
        if (n < 0) {
            conn_broke(c, KVC_CONN, e.msg);
            return;
        }
        for (;;) {
            struct kv_slice payload;
            size_t flen;
            int r = kvc__conn_next_frame(&c->conn, &payload, &flen, &e);
            if (r == 1)
                break;
            if (r != KVC_OK) {
                conn_broke(c, r, e.msg);
                return;
            }
            Kv__Response *resp = NULL;
            struct kv_err ke;
            if (kv_codec_decode_resp(payload, &resp, &ke) != KV_OK) {
                kvc__err(&e, KVC_PROTO, "bad response from %s: %s", c->conn.peer, ke.msg);
                conn_broke(c, KVC_PROTO, e.msg);
                return;
            }
            /* NULL: a late answer for a timed-out op, or an id we never sent; ignored. */
            struct kvc_op *op = kvc__table_take(&c->table, resp->id);
            if (op) {
                kvc__op_fill(op, resp, c->opts.max_frame);
                push_done(c, op);
            }
            kv__response__free_unpacked(resp, NULL);
            kvc__conn_consume(&c->conn, flen);
        }
    }
}

/* Non-blocking progress: finish a connect, send what is queued. Returns KVC_CONN when a
 * connect round failed (ops already completed), else KVC_OK. */
static int progress(struct kvc_client *c, uint64_t now, struct kvc_err *err)
{
    if (c->conn.state == KVC__CONNECTING) {
        int rc = drive_connect(c, now, err);
        if (rc != KVC_OK) {
            fail_all(c, rc, err ? err->msg : "cannot connect");
            return rc;
        }
    }
    if (c->conn.state == KVC__OPEN && c->conn.out.len) {
        struct kvc_err e = {0};
        if (kvc__conn_flush(&c->conn, &e) != KVC_OK)
            conn_broke(c, KVC_CONN, e.msg);
    }
    return KVC_OK;
}

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
        if (completed || !c->table.count || (waited && now >= until))
            break;
        uint64_t wake = until;
        uint64_t first = kvc__table_earliest(&c->table);
        if (first < wake)
            wake = first;
        if (c->conn.state == KVC__CONNECTING && c->conn.connect_deadline_ns < wake)
            wake = c->conn.connect_deadline_ns;
        uint64_t ms = wake > now ? (wake - now + 999999) / 1000000 : 0;
        int rev = kvc__conn_wait(&c->conn, ms > INT_MAX ? INT_MAX : (int)ms);
        waited = true;
        if (rev < 0) {
            conn_broke(c, KVC_CONN, "poll failed");
        } else if (c->conn.state == KVC__OPEN && (rev & (POLLIN | POLLERR | POLLHUP))) {
            read_answers(c);
        }
        completed += run_done(c);
        if (completed)
            break;
    }
    return completed;
}

size_t kvc_pending(const struct kvc_client *c) { return c->table.count; }

int kvc_fd(const struct kvc_client *c) { return c->conn.fd; }

bool kvc_want_write(const struct kvc_client *c)
{
    return c->conn.state == KVC__CONNECTING ||
           (c->conn.state == KVC__OPEN && c->conn.out.len > 0);
}

int kvc_exec(struct kvc_client *c, struct kvc_op *ops, size_t n, struct kvc_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (kvc_submit(c, &ops[i], NULL, NULL, &ops[i].err) != KVC_OK)
            ops[i].done = true;   /* never queued; its err says why */
    size_t i = 0;
    for (;;) {
        while (i < n && ops[i].done)
            i++;
        if (i == n)
            return KVC_OK;
        int r = kvc_poll(c, -1, err);
        if (r < 0 && !ops[i].done)
            return r;   /* cannot happen: a negative poll completes every op */
    }
}

/* --- synchronous calls ------------------------------------------------------------------ */

static int run_one(struct kvc_client *c, struct kvc_op *op, const struct kvc_call *o,
                   struct kvc_err *err)
{
    if (o)
        op->call = *o;
    int rc = kvc_submit(c, op, NULL, NULL, err);
    if (rc != KVC_OK)
        return rc;
    while (!op->done)
        if (kvc_poll(c, -1, NULL) < 0 && !op->done)
            return kvc__err(err, KVC_INTERNAL, "op lost by the client");
    if (err)
        *err = op->err;
    return op->err.code;
}

int kvc_put(struct kvc_client *c, const void *key, size_t key_len, const void *val,
            size_t val_len, const struct kvc_call *o, struct kvc_err *err)
{
    struct kvc_op op = {.type = KVC_OP_PUT, .key = key, .key_len = key_len, .value = val,
                        .value_len = val_len};
    return run_one(c, &op, o, err);
}

int kvc_get(struct kvc_client *c, const void *key, size_t key_len, struct kvc_value *out,
            const struct kvc_call *o, struct kvc_err *err)
{
    struct kvc_op op = {.type = KVC_OP_GET, .key = key, .key_len = key_len};
    int rc = run_one(c, &op, o, err);
    *out = op.result;   /* zeroed unless KVC_OK */
    return rc;
}

int kvc_delete(struct kvc_client *c, const void *key, size_t key_len, const struct kvc_call *o,
               struct kvc_err *err)
{
    struct kvc_op op = {.type = KVC_OP_DELETE, .key = key, .key_len = key_len};
    return run_one(c, &op, o, err);
}

int kvc_scan(struct kvc_client *c, const struct kvc_scan_args *a, const struct kvc_call *o,
             struct kvc_scan_result *out, struct kvc_err *err)
{
    struct kvc_op op = {.type = KVC_OP_SCAN, .scan = *a};
    int rc = run_one(c, &op, o, err);
    *out = op.scan_result;
    return rc;
}
