/* server/cluster_io.c -- the libuv implementation of struct kv_cluster_io.
 *
 * (1) Loop thread only, except run()'s work function (a libuv worker) and the store's
 *     commit callback, which touches only its own struct cio_write and posts it to the
 *     loop (kv_server_post_done); done callbacks always run on the loop.
 * (2) A message to self is packed at send time onto one reused byte queue (no allocation
 *     per message) and delivered later, unpacked into the io's own arena (no allocation,
 *     freed by the next unpack): never inside send() (io.h (2)). Delivery runs from the
 *     server's flush points (kv_cio_deliver, right before output is written, so a reply
 *     produced by delivery goes out in the same loop iteration) and from a uv_idle
 *     callback, which keeps the loop from blocking in poll while messages wait. One
 *     delivery takes at most SELF_ROUNDS rounds, each round only what was queued before
 *     it started, so a chain of messages to self (request, reply, repair, ack) finishes
 *     at once but an endless one cannot livelock the loop: the rest waits for the next
 *     flush point, and other I/O keeps being served.
 * (3) Timer ids are (generation << 32 | slot + 1): a slot's generation changes whenever
 *     its timer fires or is cancelled, so cancelling an id that already fired is a no-op
 *     even when the slot has been reused.
 * (4) pending counts store_write and run calls whose done has not run yet; the server
 *     frees the cluster only at 0, so no done callback ever reaches a freed cluster. */
#include "server/cluster_io.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cluster/cluster.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/arena.h"
#include "server/peer.h"
#include "server/server.h"

struct cio_timer {
    uv_timer_t h;
    struct kv_cio *io;
    uint32_t slot, gen;
    bool armed;
    kv_io_fn fn;
    void *arg;
    struct cio_timer *next_free;
};

/* (2): rounds of self delivery per flush point; request, reply, repair and its ack of one
 * operation fit. */
#define SELF_ROUNDS 4u
/* A drained self queue larger than this (one big scan reply) is freed, not kept. */
#define SELF_KEEP_BYTES (1u << 20)

struct cio_work {
    uv_work_t w;
    struct kv_cio *io;
    kv_io_fn work, done;
    void *arg;
};

struct cio_write {
    struct kv_done d;              /* first: kv_done * is a cio_write * */
    struct kv_cio *io;
    kv_io_write_done done;
    void *arg;
    enum kv_status st;
    struct kv_err err;
};

struct kv_cio {
    struct kv_cluster_io vt;
    struct kv_server *srv;
    struct cio_timer **timers;
    uint32_t n_timers, cap_timers;
    struct cio_timer *free_timers;
    uv_idle_t idle;
    bool idle_on, closing, delivering;
    struct kv_vec self_q;              /* (2) queued: u32 length (host order) | packed bytes */
    struct kv_vec self_spare;          /* the drained queue, kept for its capacity */
    struct kv_pb_arena self_arena;     /* the message being delivered lives here */
    uint64_t pending;
    uint64_t rng;
};

static void pending_add(struct kv_cio *io, int64_t d)
{
    io->pending += (uint64_t)d;
    kv_metrics_add(&io->srv->metrics.io_pending, (uint64_t)d);
}

/* --- messages ---------------------------------------------------------------------------- */

/* One round (2): detaches the queue, delivers every message in it; what delivery sends
 * goes to the fresh queue. */
static void deliver_round(struct kv_cio *io)
{
    struct kv_server *s = io->srv;
    struct kv_vec q = io->self_q;
    io->self_q = io->self_spare;
    io->self_spare = (struct kv_vec){0};
    size_t off = 0;
    while (off + sizeof(uint32_t) <= q.len && !io->closing) {
        uint32_t len;
        memcpy(&len, q.ptr + off, sizeof len);
        off += sizeof len;
        /* No budget: this node packed these bytes itself, and a page of small records
         * unpacks to more than kv_pb_arena_budget_for allows hostile input. */
        kv_pb_arena_begin(&io->self_arena, SIZE_MAX);
        Kv__PeerMessage *pm = kv__peer_message__unpack(&io->self_arena.pb, len, q.ptr + off);
        off += len;
        if (pm && s->cluster)
            kv_cluster_on_message(s->cluster, pm);
        else if (!pm)
            KV_WARN("a message to self did not unpack (%u bytes)", len);
        /* The arena keeps pm until the next begin: never *__free_unpacked (arena.h (2)). */
    }
    q.len = 0;
    if (q.cap > SELF_KEEP_BYTES)
        kv_vec_free(&q);
    io->self_spare = q;
}

void kv_cio_deliver(struct kv_cio *io)
{
    if (!io || io->delivering || io->closing)
        return;
    io->delivering = true;
    for (unsigned r = 0; r < SELF_ROUNDS && io->self_q.len && !io->closing; r++)
        deliver_round(io);
    io->delivering = false;
    if (!io->self_q.len && io->idle_on) {
        uv_idle_stop(&io->idle);
        io->idle_on = false;
    }
}

static void on_idle(uv_idle_t *h) { kv_cio_deliver(h->data); }

static void send_self(struct kv_cio *io, const Kv__PeerMessage *msg)
{
    size_t len = kv__peer_message__get_packed_size(msg);
    if (len > UINT32_MAX || kv_vec_reserve(&io->self_q, sizeof(uint32_t) + len) != 0)
        return;   /* best effort, like any send */
    uint32_t l32 = (uint32_t)len;
    uint8_t *p = io->self_q.ptr + io->self_q.len;
    memcpy(p, &l32, sizeof l32);
    size_t packed = kv__peer_message__pack(msg, p + sizeof l32);
    if (packed != len)
        return;   /* cannot happen (protobuf-c packs what it measured); never queue junk */
    io->self_q.len += sizeof l32 + len;
    kv_metrics_add(&io->srv->metrics.self_msgs, 1);
    if (!io->idle_on) {
        uv_idle_start(&io->idle, on_idle);
        io->idle_on = true;
    }
}

static void io_send(void *ctx, uint32_t to, const Kv__PeerMessage *msg)
{
    struct kv_cio *io = ctx;
    if (io->closing)
        return;
    if (to == io->srv->cfg.node_id)
        send_self(io, msg);
    else
        kv_peers_send(io->srv->peers, to, msg);
}

static void io_send_addr(void *ctx, const char *addr, const Kv__PeerMessage *msg)
{
    struct kv_cio *io = ctx;
    if (io->closing)
        return;
    if (strcmp(addr, kv_config_advertise(&io->srv->cfg)) == 0)
        send_self(io, msg);
    else
        kv_peers_send_addr(io->srv->peers, addr, msg);
}

static void io_set_addr(void *ctx, uint32_t id, const char *addr)
{
    struct kv_cio *io = ctx;
    if (id != io->srv->cfg.node_id)
        kv_peers_set_addr(io->srv->peers, id, addr);
}

/* --- timers ------------------------------------------------------------------------------ */

static void timer_release(struct kv_cio *io, struct cio_timer *t)
{
    t->armed = false;
    t->fn = NULL;
    t->arg = NULL;
    if (++t->gen == 0)
        t->gen = 1;
    t->next_free = io->free_timers;
    io->free_timers = t;
}

static void on_timer(uv_timer_t *h)
{
    struct cio_timer *t = h->data;
    kv_io_fn fn = t->fn;
    void *arg = t->arg;
    timer_release(t->io, t);   /* before fn: fn may start timers, reusing this slot */
    fn(arg);
}

static uint64_t io_timer_start(void *ctx, uint64_t delay_ms, kv_io_fn fn, void *arg)
{
    struct kv_cio *io = ctx;
    struct cio_timer *t = io->free_timers;
    if (t) {
        io->free_timers = t->next_free;
    } else {
        if (io->n_timers == io->cap_timers) {
            uint32_t cap = io->cap_timers ? io->cap_timers * 2 : 64;
            struct cio_timer **n = realloc(io->timers, cap * sizeof *n);
            if (!n)
                return 0;
            io->timers = n;
            io->cap_timers = cap;
        }
        t = calloc(1, sizeof *t);
        if (!t)
            return 0;
        t->io = io;
        t->slot = io->n_timers;
        t->gen = 1;
        uv_timer_init(io->srv->loop, &t->h);
        t->h.data = t;
        io->timers[io->n_timers++] = t;
    }
    t->fn = fn;
    t->arg = arg;
    t->armed = true;
    if (!io->closing)
        uv_timer_start(&t->h, on_timer, delay_ms, 0);
    return (uint64_t)t->gen << 32 | (uint64_t)(t->slot + 1);
}

static void io_timer_cancel(void *ctx, uint64_t id)
{
    struct kv_cio *io = ctx;
    uint32_t slot = (uint32_t)(id & 0xffffffffu), gen = (uint32_t)(id >> 32);
    if (slot == 0 || slot > io->n_timers)
        return;
    struct cio_timer *t = io->timers[slot - 1];
    if (t->gen != gen || !t->armed)
        return;
    if (!io->closing)
        uv_timer_stop(&t->h);
    timer_release(io, t);
}

/* --- clocks and randomness ---------------------------------------------------------------- */

static uint64_t io_now_ms(void *ctx)
{
    (void)ctx;
    return kv_clock_now_ms();
}

static uint64_t io_mono_ms(void *ctx)
{
    (void)ctx;
    return kv_clock_mono_ns() / 1000000u;
}

static uint32_t io_random(void *ctx)
{
    struct kv_cio *io = ctx;
    uint64_t x = io->rng;   /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    io->rng = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* --- storage ------------------------------------------------------------------------------- */

static void write_complete(struct kv_done *d)
{
    struct cio_write *cw = (struct cio_write *)d;
    struct kv_cio *io = cw->io;
    pending_add(io, -1);
    cw->done(cw->arg, cw->st, cw->st == KV_OK ? NULL : &cw->err);
    free(cw);
}

/* The commit thread: record the outcome, hand it to the loop. */
static void on_commit(void *arg, enum kv_status st, const struct kv_err *err)
{
    struct cio_write *cw = arg;
    cw->st = st;
    if (st != KV_OK) {
        if (err)
            cw->err = *err;
        else
            kv_err_set(&cw->err, st, "%s", kv_status_str(st));
    }
    kv_server_post_done(cw->io->srv, &cw->d);
}

static void io_store_write(void *ctx, const struct kv_write *w, size_t n, kv_io_write_done done,
                           void *arg)
{
    struct kv_cio *io = ctx;
    struct cio_write *cw = calloc(1, sizeof *cw);
    if (!cw) {
        struct kv_err err;
        kv_err_set(&err, KV_NOMEM, "out of memory queueing a replica write");
        done(arg, KV_NOMEM, &err);
        return;
    }
    cw->d.fn = write_complete;
    cw->io = io;
    cw->done = done;
    cw->arg = arg;
    pending_add(io, 1);
    kv_metrics_add(&io->srv->metrics.io_writes, 1);
    struct kv_err err = {0};
    enum kv_status st = kv_store_write_async(io->srv->store, w, n, on_commit, cw, &err);
    if (st != KV_OK) {
        /* Refused at once (bad record, store closing): still answered later, never
         * inside this call. */
        cw->st = st;
        cw->err = err;
        kv_server_post_done(io->srv, &cw->d);
    }
}

static void work_cb(uv_work_t *w)
{
    struct cio_work *cw = w->data;
    cw->work(cw->arg);
}

static void after_work_cb(uv_work_t *w, int status)
{
    (void)status;   /* never cancelled: every queued work runs */
    struct cio_work *cw = w->data;
    pending_add(cw->io, -1);
    cw->done(cw->arg);
    free(cw);
}

static void io_run(void *ctx, kv_io_fn work, kv_io_fn done, void *arg)
{
    struct kv_cio *io = ctx;
    struct cio_work *cw = calloc(1, sizeof *cw);
    if (!cw) {
        KV_ERROR("out of memory queueing storage work: running it on the loop");
        work(arg);
        done(arg);
        return;
    }
    cw->w.data = cw;
    cw->io = io;
    cw->work = work;
    cw->done = done;
    cw->arg = arg;
    pending_add(io, 1);
    kv_metrics_add(&io->srv->metrics.io_runs, 1);
    int rc = uv_queue_work(io->srv->loop, &cw->w, work_cb, after_work_cb);
    if (rc != 0) {
        KV_ERROR("cannot queue storage work (%s): running it on the loop", uv_strerror(rc));
        pending_add(io, -1);
        free(cw);
        work(arg);
        done(arg);
    }
}

/* --- life cycle ----------------------------------------------------------------------------- */

enum kv_status kv_cio_new(struct kv_server *s, struct kv_cio **out, struct kv_err *err)
{
    struct kv_cio *io = calloc(1, sizeof *io);
    if (!io)
        return kv_err_set(err, KV_NOMEM, "out of memory");
    io->srv = s;
    io->rng = (kv_clock_mono_ns() ^ kv_clock_now_ms() << 20 ^ (uint64_t)getpid() << 40 ^
               (uint64_t)s->cfg.node_id << 52) | 1;
    uv_idle_init(s->loop, &io->idle);
    io->idle.data = io;
    kv_pb_arena_init(&io->self_arena);
    io->vt = (struct kv_cluster_io){
        .ctx = io, .send = io_send, .send_addr = io_send_addr, .set_addr = io_set_addr,
        .timer_start = io_timer_start, .timer_cancel = io_timer_cancel, .now_ms = io_now_ms,
        .mono_ms = io_mono_ms, .random = io_random, .store_write = io_store_write,
        .run = io_run};
    *out = io;
    return KV_OK;
}

const struct kv_cluster_io *kv_cio_vtab(struct kv_cio *io) { return &io->vt; }

uint64_t kv_cio_pending(const struct kv_cio *io) { return io->pending; }

void kv_cio_close(struct kv_cio *io)
{
    if (!io || io->closing)
        return;
    io->closing = true;
    for (uint32_t i = 0; i < io->n_timers; i++)
        uv_close((uv_handle_t *)&io->timers[i]->h, NULL);
    uv_close((uv_handle_t *)&io->idle, NULL);
    io->idle_on = false;
    io->self_q.len = 0;   /* undelivered self messages are dropped */
}

void kv_cio_free(struct kv_cio *io)
{
    if (!io)
        return;
    for (uint32_t i = 0; i < io->n_timers; i++)
        free(io->timers[i]);
    free(io->timers);
    kv_vec_free(&io->self_q);
    kv_vec_free(&io->self_spare);
    kv_pb_arena_destroy(&io->self_arena);
    free(io);
}
