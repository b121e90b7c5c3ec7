/* tests/sim/sim.c -- the deterministic simulator behind tests/sim/sim.h: events, network,
 * clocks, storage. It knows nothing of kv_cluster (sim_cluster.c does), so module tests
 * (membership alone, say) link without the rest of cluster/. */
#include "tests/sim/sim.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ev_type { EV_MSG, EV_TIMER, EV_DONE, EV_WRITE_DONE };

struct event {
    uint64_t time, seq;
    enum ev_type type;
    uint32_t node;
    uint32_t incarnation;
    uint64_t timer_id;              /* EV_TIMER */
    bool cancelled;
    kv_io_fn fn;                    /* EV_TIMER, EV_DONE */
    kv_io_write_done wfn;           /* EV_WRITE_DONE */
    void *arg;
    enum kv_status st;
    struct kv_err err;
    uint8_t *msg;                   /* EV_MSG, owned */
    size_t len;
};

struct sim {
    uint64_t now, seq, next_timer;
    uint64_t rng;
    int n;
    struct sim_node nodes[SIM_MAX_NODES + 1];
    bool cut[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];
    double loss, dup;
    uint32_t delay_min, delay_max;
    sim_drop_fn drop_fn;
    void *drop_arg;
    struct event **heap;
    size_t heap_len, heap_cap;
    uint64_t sent, dropped;
    uint64_t digest;                /* sim_digest: every dispatched event folded in */
};

static uint64_t rng_next(struct sim *s)
{
    /* xorshift64*: tiny, and the same sequence for the same seed everywhere. */
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double rng_unit(struct sim *s) { return (double)(rng_next(s) >> 11) / 9007199254740992.0; }

static bool ev_less(const struct event *a, const struct event *b)
{
    return a->time != b->time ? a->time < b->time : a->seq < b->seq;
}

static void heap_push(struct sim *s, struct event *e)
{
    if (s->heap_len == s->heap_cap) {
        s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 256;
        s->heap = realloc(s->heap, s->heap_cap * sizeof *s->heap);
    }
    size_t i = s->heap_len++;
    s->heap[i] = e;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(s->heap[i], s->heap[p]))
            break;
        struct event *t = s->heap[i];
        s->heap[i] = s->heap[p];
        s->heap[p] = t;
        i = p;
    }
}

static struct event *heap_pop(struct sim *s)
{
    if (!s->heap_len)
        return NULL;
    struct event *top = s->heap[0];
    s->heap[0] = s->heap[--s->heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->heap_len && ev_less(s->heap[l], s->heap[m]))
            m = l;
        if (r < s->heap_len && ev_less(s->heap[r], s->heap[m]))
            m = r;
        if (m == i)
            break;
        struct event *t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
    return top;
}

static struct event *ev_new(struct sim_node *n, enum ev_type t, uint64_t delay)
{
    struct sim *s = n->sim;
    struct event *e = calloc(1, sizeof *e);
    e->time = s->now + delay;
    e->seq = s->seq++;
    e->type = t;
    e->node = n->id;
    e->incarnation = n->incarnation;
    return e;
}

static void ev_free(struct event *e)
{
    free(e->msg);
    free(e);
}

/* --- the io vtab --------------------------------------------------------------------- */

static void deliver(struct sim_node *from, uint32_t to, const Kv__PeerMessage *pm)
{
    struct sim *s = from->sim;
    s->sent++;
    if (to == 0 || to > (uint32_t)s->n) {
        s->dropped++;
        return;
    }
    if (s->drop_fn && s->drop_fn(s->drop_arg, from->id, to, pm)) {
        s->dropped++;
        return;
    }
    bool self = to == from->id;
    if (!self && (s->cut[from->id][to] || rng_unit(s) < s->loss)) {
        s->dropped++;
        return;
    }
    size_t len = kv__peer_message__get_packed_size(pm);
    uint8_t *msg = malloc(len ? len : 1);
    kv__peer_message__pack(pm, msg);
    int copies = !self && rng_unit(s) < s->dup ? 2 : 1;
    for (int i = 0; i < copies; i++) {
        uint64_t d = self ? 0
                          : s->delay_min + (s->delay_max > s->delay_min
                                                ? rng_next(s) % (s->delay_max - s->delay_min + 1)
                                                : 0);
        struct sim_node *dst = &s->nodes[to];
        struct event *e = ev_new(dst, EV_MSG, d);
        e->msg = malloc(len ? len : 1);
        memcpy(e->msg, msg, len);
        e->len = len;
        heap_push(s, e);
    }
    free(msg);
}

static void io_send(void *ctx, uint32_t to, const Kv__PeerMessage *msg)
{
    deliver(ctx, to, msg);
}

static void io_send_addr(void *ctx, const char *addr, const Kv__PeerMessage *msg)
{
    struct sim_node *n = ctx;
    for (int i = 1; i <= n->sim->n; i++)
        if (strcmp(n->sim->nodes[i].addr, addr) == 0) {
            deliver(n, (uint32_t)i, msg);
            return;
        }
    n->sim->sent++;
    n->sim->dropped++;
}

static void io_set_addr(void *ctx, uint32_t id, const char *addr)
{
    (void)ctx;
    (void)id;
    (void)addr;
}

static uint64_t io_timer_start(void *ctx, uint64_t delay_ms, kv_io_fn fn, void *arg)
{
    struct sim_node *n = ctx;
    struct event *e = ev_new(n, EV_TIMER, delay_ms);
    e->timer_id = ++n->sim->next_timer;
    e->fn = fn;
    e->arg = arg;
    heap_push(n->sim, e);
    return e->timer_id;
}

static void io_timer_cancel(void *ctx, uint64_t id)
{
    struct sim_node *n = ctx;
    for (size_t i = 0; i < n->sim->heap_len; i++)
        if (n->sim->heap[i]->type == EV_TIMER && n->sim->heap[i]->timer_id == id)
            n->sim->heap[i]->cancelled = true;
}

static uint64_t io_now_ms(void *ctx)
{
    struct sim_node *n = ctx;
    return (uint64_t)((int64_t)(1800000000000ull + n->sim->now) + n->clock_offset_ms);
}

static uint64_t io_mono_ms(void *ctx)
{
    struct sim_node *n = ctx;
    return n->sim->now;
}

static uint32_t io_random(void *ctx)
{
    struct sim_node *n = ctx;
    return (uint32_t)(rng_next(n->sim) >> 32);
}

static void io_store_write(void *ctx, const struct kv_write *w, size_t cnt, kv_io_write_done done,
                           void *arg)
{
    struct sim_node *n = ctx;
    struct event *e = ev_new(n, EV_WRITE_DONE, 1);
    e->st = kv_store_write(n->store, w, cnt, &e->err);
    e->wfn = done;
    e->arg = arg;
    heap_push(n->sim, e);
}

static void io_run(void *ctx, kv_io_fn work, kv_io_fn done, void *arg)
{
    struct sim_node *n = ctx;
    work(arg);
    struct event *e = ev_new(n, EV_DONE, 1);
    e->fn = done;
    e->arg = arg;
    heap_push(n->sim, e);
}

/* --- public -------------------------------------------------------------------------- */

static bool stores_in_memory;

void sim_stores_in_memory(bool on) { stores_in_memory = on; }

struct sim *sim_new(uint64_t seed, int n)
{
    if (n < 1 || n > SIM_MAX_NODES)
        return NULL;
    struct sim *s = calloc(1, sizeof *s);
    s->rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    s->digest = 0xcbf29ce484222325ULL;
    s->n = n;
    s->delay_min = 1;
    s->delay_max = 5;
    for (int i = 1; i <= n; i++) {
        struct sim_node *nd = &s->nodes[i];
        nd->sim = s;
        nd->id = (uint32_t)i;
        snprintf(nd->addr, sizeof nd->addr, "10.99.0.%d:7379", i);
        snprintf(nd->dir, sizeof nd->dir, "/tmp/kvd-sim-XXXXXX");
        if (!mkdtemp(nd->dir)) {
            sim_free(s);
            return NULL;
        }
        struct kv_store_opts so;
        kv_store_opts_default(&so);
        so.path = nd->dir;
        so.sync = KV_SYNC_NONE;
        so.block_cache_bytes = 1 << 20;
        so.record_cache_bytes = 64 << 10;   /* small: evictions happen too */
        so.in_memory = stores_in_memory;
        if (stores_in_memory)           /* small memtables: a sim node stores little */
            so.write_buffer_bytes = 1 << 20;
        if (kv_store_open(&so, &nd->store, NULL) != KV_OK) {
            sim_free(s);
            return NULL;
        }
        kv_hlc_init(&nd->hlc);
        nd->io = (struct kv_cluster_io){.ctx = nd, .send = io_send, .send_addr = io_send_addr,
                                        .set_addr = io_set_addr, .timer_start = io_timer_start,
                                        .timer_cancel = io_timer_cancel, .now_ms = io_now_ms,
                                        .mono_ms = io_mono_ms, .random = io_random,
                                        .store_write = io_store_write, .run = io_run};
    }
    return s;
}

void sim_free(struct sim *s)
{
    if (!s)
        return;
    for (int i = 1; i <= s->n; i++)
        if (s->nodes[i].stop)
            s->nodes[i].stop(&s->nodes[i]);
    struct event *e;
    while ((e = heap_pop(s)))
        ev_free(e);
    free(s->heap);
    for (int i = 1; i <= s->n; i++) {
        struct sim_node *nd = &s->nodes[i];
        kv_store_close(nd->store);
        if (nd->dir[0] && strncmp(nd->dir, "/tmp/kvd-sim-", 13) == 0) {
            char cmd[128];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", nd->dir);
            if (system(cmd) != 0)
                fprintf(stderr, "sim: could not remove %s\n", nd->dir);
        }
    }
    free(s);
}

struct sim_node *sim_node(struct sim *s, uint32_t id)
{
    return id >= 1 && id <= (uint32_t)s->n ? &s->nodes[id] : NULL;
}

uint64_t sim_now(const struct sim *s) { return s->now; }

void sim_attach(struct sim *s, uint32_t id, void *target, sim_deliver_fn fn)
{
    struct sim_node *n = sim_node(s, id);
    n->target = target;
    n->deliver = fn;
}

void sim_detach(struct sim *s, uint32_t id)
{
    struct sim_node *n = sim_node(s, id);
    if (!n)
        return;
    n->target = NULL;
    n->deliver = NULL;
    n->incarnation++;
}

void sim_cut(struct sim *s, uint32_t a, uint32_t b, bool cut)
{
    s->cut[a][b] = s->cut[b][a] = cut;
}

void sim_isolate(struct sim *s, uint32_t id, bool cut)
{
    for (int i = 1; i <= s->n; i++)
        if ((uint32_t)i != id)
            sim_cut(s, id, (uint32_t)i, cut);
}

void sim_heal(struct sim *s) { memset(s->cut, 0, sizeof s->cut); }
void sim_set_loss(struct sim *s, double p) { s->loss = p; }

void sim_set_drop(struct sim *s, sim_drop_fn fn, void *arg)
{
    s->drop_fn = fn;
    s->drop_arg = arg;
}
void sim_set_dup(struct sim *s, double p) { s->dup = p; }
void sim_set_delay(struct sim *s, uint32_t min_ms, uint32_t max_ms)
{
    s->delay_min = min_ms;
    s->delay_max = max_ms < min_ms ? min_ms : max_ms;
}

/* FNV-1a-like, 8 bytes a step, over what identifies an event, so that two runs of one seed
 * can be compared. */
static void digest_add(struct sim *s, const void *p, size_t len)
{
    const uint8_t *b = p;
    uint64_t h = s->digest;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    s->digest = h;
}

static void dispatch(struct sim *s, struct event *e)
{
    struct sim_node *n = &s->nodes[e->node];
    if (e->cancelled || e->incarnation != n->incarnation || !n->target)
        return;
    uint64_t id[3] = {e->time, (uint64_t)e->type << 32 | e->node, e->len};
    digest_add(s, id, sizeof id);
    if (e->msg)
        digest_add(s, e->msg, e->len);
    switch (e->type) {
    case EV_MSG: {
        Kv__PeerMessage *pm = kv__peer_message__unpack(NULL, e->len, e->msg);
        if (pm) {
            n->deliver(n->target, pm);
            kv__peer_message__free_unpacked(pm, NULL);
        }
        break;
    }
    case EV_TIMER:
    case EV_DONE:
        e->fn(e->arg);
        break;
    case EV_WRITE_DONE:
        e->wfn(e->arg, e->st, e->st == KV_OK ? NULL : &e->err);
        break;
    }
}

static bool step(struct sim *s, uint64_t until)
{
    if (!s->heap_len || s->heap[0]->time > until)
        return false;
    struct event *e = heap_pop(s);
    s->now = e->time;
    dispatch(s, e);
    ev_free(e);
    return true;
}

void sim_run_for(struct sim *s, uint64_t ms)
{
    uint64_t until = s->now + ms;
    while (step(s, until)) {
    }
    s->now = until;
}

bool sim_run_until(struct sim *s, bool (*pred)(void *arg), void *arg, uint64_t max_ms)
{
    uint64_t until = s->now + max_ms;
    if (pred(arg))
        return true;
    while (step(s, until))
        if (pred(arg))
            return true;
    s->now = until;
    return pred(arg);
}

uint64_t sim_messages_sent(const struct sim *s) { return s->sent; }
uint64_t sim_messages_dropped(const struct sim *s) { return s->dropped; }
uint64_t sim_digest(const struct sim *s) { return s->digest; }
void sim_digest_mix(struct sim *s, const void *p, size_t len) { digest_add(s, p, len); }
