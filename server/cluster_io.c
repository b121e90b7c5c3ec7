/* server/cluster_io.c -- the libuv implementation of struct kv_cluster_io.
 *
 * (1) Loop thread only, except run()'s work function (a libuv worker) and the store's
 *     commit callback, which touches only its own struct cio_write and posts it to the
 *     loop (kv_server_post_done); done callbacks always run on the loop.
 * (2) A message to self is deep-copied at send time (pb_dup: by its protobuf-c
 *     descriptor, the same fields pack + unpack would give, without the wire format) into
 *     one of two bump arenas, its pointer appended to that arena's reused queue (no
 *     malloc per message); a round delivers one queue while sends fill the other, then
 *     releases its arena at once. Never inside send() (io.h (2)). Delivery runs from the
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
 *     frees the cluster only at 0, so no done callback ever reaches a freed cluster.
 * (5) The storage threads (libuv's work queue) run at storage_thread_nice above the loop's
 *     nice: when both want the CPU the loop wins, so it keeps reading, answering and
 *     shedding (OVERLOADED is only quick if the loop gets to read the request) while reads
 *     and scans queue behind it. Set on each worker's first job. */
#include "server/cluster_io.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
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
/* A drained queue of message pointers larger than this (a burst) is freed, not kept; the
 * messages themselves live in the arena, whose every block a round's end releases. */
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
    /* (2) self_q[i] holds Kv__PeerMessage pointers into self_arena[i]; sends go to
     * [self_fill], a round drains the other. */
    struct kv_vec self_q[2];
    struct kv_pb_arena self_arena[2];
    unsigned self_fill;
    uint64_t pending;
    uint64_t rng;
};

static void pending_add(struct kv_cio *io, int64_t d)
{
    io->pending += (uint64_t)d;
    kv_metrics_add(&io->srv->metrics.io_pending, (uint64_t)d);
}

/* --- messages ---------------------------------------------------------------------------- */

/* An arena block of n bytes (16-aligned); NULL when out of memory. */
static void *arena_take(struct kv_pb_arena *a, size_t n)
{
    return a->pb.alloc(a->pb.allocator_data, n ? n : 1);
}

static void *pb_dup(struct kv_pb_arena *a, const ProtobufCMessage *src);

/* Makes the copy's member (still pointing at the source's data) own arena copies.
 * `absent_ok`: a NULL string stays NULL (proto2 optional); otherwise it becomes "", as
 * unpack would make it. */
static bool dup_member(struct kv_pb_arena *a, const ProtobufCFieldDescriptor *f, void *member,
                       bool absent_ok)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char **sp = member;
        if (!*sp) {
            if (!absent_ok)
                *sp = (char *)protobuf_c_empty_string;
            return true;
        }
        size_t n = strlen(*sp) + 1;
        char *d = arena_take(a, n);
        if (!d)
            return false;
        memcpy(d, *sp, n);
        *sp = d;
        return true;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = member;
        if (!b->len) {
            b->data = NULL;
            return true;
        }
        uint8_t *d = arena_take(a, b->len);
        if (!d)
            return false;
        memcpy(d, b->data, b->len);
        b->data = d;
        return true;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage **mp = member;
        return !*mp || (*mp = pb_dup(a, *mp)) != NULL;
    }
    default:
        return true;   /* a scalar: the struct copy has it */
    }
}

static size_t repeated_elt_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4;      /* the 32-bit integers, float, enum */
    }
}

/* (2): a deep copy of src in arena a, field by field from its descriptor: the struct
 * (scalars, has_ flags, counts, oneof cases), then every string, bytes, submessage and
 * repeated array that is present (for a oneof only the member its case names). Unknown
 * fields are not copied (this node built src; it has none). */
static void *pb_dup(struct kv_pb_arena *a, const ProtobufCMessage *src)
{
    const ProtobufCMessageDescriptor *desc = src->descriptor;
    ProtobufCMessage *dst = arena_take(a, desc->sizeof_message);
    if (!dst)
        return NULL;
    memcpy(dst, src, desc->sizeof_message);
    dst->n_unknown_fields = 0;
    dst->unknown_fields = NULL;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        uint8_t *member = (uint8_t *)dst + f->offset;
        const uint8_t *quant = (const uint8_t *)dst + f->quantifier_offset;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which;
            memcpy(&which, quant, sizeof which);
            if (which != f->id)
                continue;
        }
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            if (!dup_member(a, f, member, f->label == PROTOBUF_C_LABEL_OPTIONAL))
                return NULL;
            continue;
        }
        size_t n, esz = repeated_elt_size(f->type);
        memcpy(&n, quant, sizeof n);
        void *arr;
        memcpy(&arr, member, sizeof arr);
        void *copy = NULL;
        if (n) {
            if (n > SIZE_MAX / esz || !(copy = arena_take(a, n * esz)))
                return NULL;
            memcpy(copy, arr, n * esz);
            for (size_t k = 0; k < n; k++)
                if (!dup_member(a, f, (uint8_t *)copy + k * esz, false))
                    return NULL;
        }
        memcpy(member, &copy, sizeof copy);
    }
    return dst;
}

/* One round (2): switches sends to the other queue, delivers every message in this one,
 * then releases its arena. */
static void deliver_round(struct kv_cio *io)
{
    struct kv_server *s = io->srv;
    unsigned d = io->self_fill;
    io->self_fill ^= 1u;
    struct kv_vec *q = &io->self_q[d];
    size_t n = q->len / sizeof(Kv__PeerMessage *);
    for (size_t i = 0; i < n && !io->closing; i++) {
        Kv__PeerMessage *pm;
        memcpy(&pm, q->ptr + i * sizeof pm, sizeof pm);
        if (s->cluster)
            kv_cluster_on_message(s->cluster, pm);
    }
    q->len = 0;
    if (q->cap > SELF_KEEP_BYTES)
        kv_vec_free(q);
    /* No budget: the arena holds copies this node made of its own messages. */
    kv_pb_arena_begin(&io->self_arena[d], SIZE_MAX);
}

void kv_cio_deliver(struct kv_cio *io)
{
    if (!io || io->delivering || io->closing)
        return;
    io->delivering = true;
    for (unsigned r = 0; r < SELF_ROUNDS && io->self_q[io->self_fill].len && !io->closing; r++)
        deliver_round(io);
    io->delivering = false;
    if (!io->self_q[io->self_fill].len && io->idle_on) {
        uv_idle_stop(&io->idle);
        io->idle_on = false;
    }
}

static void on_idle(uv_idle_t *h) { kv_cio_deliver(h->data); }

static void send_self(struct kv_cio *io, const Kv__PeerMessage *msg)
{
    struct kv_vec *q = &io->self_q[io->self_fill];
    if (kv_vec_reserve(q, sizeof msg) != 0)
        return;   /* best effort, like any send */
    Kv__PeerMessage *copy = pb_dup(&io->self_arena[io->self_fill], &msg->base);
    if (!copy)
        return;   /* out of memory: the arena keeps what it took until the round ends */
    memcpy(q->ptr + q->len, &copy, sizeof copy);
    q->len += sizeof copy;
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
    /* Woken once per loop iteration by flush_output (server.c), not per write. */
    enum kv_status st = kv_store_write_queue(io->srv->store, w, n, on_commit, cw, &err);
    if (st != KV_OK) {
        /* Refused at once (bad record, store closing): still answered later, never
         * inside this call. */
        cw->st = st;
        cw->err = err;
        kv_server_post_done(io->srv, &cw->d);
    }
}

static void lower_priority_once(uint32_t nice_incr)
{
    static _Thread_local bool done;
    if (done || nice_incr == 0)
        return;
    done = true;
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, tid);
    if ((cur == -1 && errno) || setpriority(PRIO_PROCESS, tid, cur + (int)nice_incr) != 0)
        KV_WARN("storage thread: cannot lower its priority: %s", strerror(errno));
}

static void work_cb(uv_work_t *w)
{
    struct cio_work *cw = w->data;
    lower_priority_once(cw->io->srv->cfg.storage_thread_nice);   /* (5) */
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
    for (int i = 0; i < 2; i++) {
        kv_pb_arena_init(&io->self_arena[i]);
        kv_pb_arena_begin(&io->self_arena[i], SIZE_MAX);   /* (2): no budget */
    }
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
    io->self_q[0].len = io->self_q[1].len = 0;   /* undelivered self messages are dropped */
}

void kv_cio_free(struct kv_cio *io)
{
    if (!io)
        return;
    for (uint32_t i = 0; i < io->n_timers; i++)
        free(io->timers[i]);
    free(io->timers);
    for (int i = 0; i < 2; i++) {
        kv_vec_free(&io->self_q[i]);
        kv_pb_arena_destroy(&io->self_arena[i]);
    }
    free(io);
}
