/* client/bench/kvbench.c -- load generator for kvd, built on libkvclient only.
 *
 * Closed loop (--connections C --pipeline D: C*D requests always in flight) or open loop
 * (--rate R ops/s: requests are issued on a schedule and latency is measured from the
 * scheduled time, so a stalled server cannot hide its stall -- no coordinated omission).
 * (1) Each thread owns its connections and waits on them with one epoll set; nothing is
 *     shared between threads except the insert counter and the stop flag.
 * (4) The load generator shares the cores with the server it measures, so its own CPU per
 *     op is kept small: the sockets stay registered with epoll (level-triggered) and are
 *     re-registered only when kvc_fds or kvc_fds_epoch says they changed; only the clients
 *     with ready sockets are handed their events, and every client with ops in flight is
 *     swept every SWEEP_NS so that deadlines still expire on a silent connection.
 * (2) Operations that complete during --warmup are not recorded.
 * (3) Every error is counted by status; none is silently retried. The latency of requests
 *     the server shed (OVERLOADED) is kept too, so a run shows that they were refused at
 *     once rather than after a wait. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include <kv/client.h>
#include "client/bench/hist.h"
#include "client/bench/procstat.h"
#include "client/bench/workload.h"

#define MAX_STATUS 16
/* How often every client with ops in flight is driven even without events, so that ops
 * whose deadline passed on a silent connection complete (TIMEOUT) at most this late. */
#define SWEEP_NS 2000000u

/* --workload feed: the feed service workload (client/bench/feedload.c) parses its own
 * options and runs instead of the YCSB loop. */
int kvbench_feed_main(int argc, char **argv);

/* --mix set|get: 100% updates or 100% reads on uniform keys (redis-benchmark's SET/GET
 * with -r), beside the YCSB letters. */
static const struct wl_mix g_set_mix = {'s', {[WL_UPDATE] = 1}, WL_UNIFORM};
static const struct wl_mix g_get_mix = {'g', {[WL_READ] = 1}, WL_UNIFORM};

static const struct wl_mix *mix_of(char w)
{
    return w == 's' ? &g_set_mix : w == 'g' ? &g_get_mix : wl_mix_of(w);
}

struct cfg {
    const char *nodes;
    char workload;
    uint64_t records, operations;
    double duration_s, warmup_s;
    unsigned threads, conns, pipeline;
    double rate;
    size_t value_size;
    unsigned scan_length;
    enum kvc_consistency level;
    bool load, run;
    const char *json_path;
    const char *server_pids;
    unsigned timeout_ms;
};

struct stats {
    struct hist h[WL_NOPS];
    uint64_t errors[WL_NOPS][MAX_STATUS];
    struct hist shed;               /* OVERLOADED answers, every op */
};

struct thread;

struct slot {
    struct kvc_op op;
    struct thread *t;
    struct kvc_client *cl;
    unsigned ci;                    /* index of cl in t->cls */
    char key[24];
    enum wl_op wop;
    bool rmw_write;
    uint64_t start_ns;
};

/* One client's sockets as they are registered with the thread's epoll set. */
struct watch {
    struct pollfd *fds;             /* kvc_fds at the last registration; revents are set
                                       from epoll for kvc_handle_events, then cleared */
    size_t n, cap;
    uint64_t epoch;                 /* kvc_fds_epoch at the last registration */
    bool ready;                     /* has events in the current wake-up */
    bool touched;                   /* called since the last registration: compare again */
};

struct thread {
    unsigned idx;
    const struct cfg *cfg;
    struct wl_gen gen;
    struct kvc_client **cls;
    struct watch *w;                /* per client */
    unsigned *touched;              /* clients to compare with their registration */
    size_t ntouched;
    unsigned *ready;                /* clients with events in this wake-up */
    int ep;                         /* epoll set of every client's sockets */
    struct slot *slots;
    struct slot **free_slots;
    size_t n_free;
    struct stats st;
    uint64_t done, issued, quota;   /* quota: ops this thread may issue (0: unlimited) */
    uint64_t measure_from_ns;
    uint64_t next_ns, interval_ns;  /* open loop */
    bool loading;
    uint64_t load_next, load_end;
    pthread_t th;
    int failed;
};

static const uint8_t *g_value;
static uint64_t g_insert_next;
static _Atomic int g_stop;
static _Atomic uint64_t g_progress_ops;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void submit(struct thread *t, struct slot *s, uint64_t start_ns);

/* Records s's outcome; returns the time it completed (read once, also the next op's start). */
static uint64_t record(struct thread *t, struct slot *s)
{
    uint64_t end = now_ns();
    enum wl_op op = s->wop;
    if (s->start_ns >= t->measure_from_ns) {
        int code = s->op.err.code;
        if (code == KVC_OK || (code == KVC_NOT_FOUND && op == WL_READ))
            hist_record(&t->st.h[op], end - s->start_ns);
        else {
            unsigned idx = (unsigned)(-code);
            t->st.errors[op][idx < MAX_STATUS ? idx : MAX_STATUS - 1]++;
            if (code == KVC_OVERLOADED)
                hist_record(&t->st.shed, end - s->start_ns);
        }
    }
    if (s->op.type == KVC_OP_GET)
        kvc_value_free(&s->op.result);
    if (s->op.type == KVC_OP_SCAN)
        kvc_scan_result_free(&s->op.scan_result);
    t->done++;
    atomic_fetch_add_explicit(&g_progress_ops, 1, memory_order_relaxed);
    return end;
}

/* Client ci was called: its sockets may have changed (compared before the next wait). */
static void touch(struct thread *t, unsigned ci)
{
    if (!t->w[ci].touched) {
        t->w[ci].touched = true;
        t->touched[t->ntouched++] = ci;
    }
}

static void on_done(struct kvc_op *op, void *arg)
{
    struct slot *s = arg;
    struct thread *t = s->t;
    (void)op;
    if (s->wop == WL_RMW && !s->rmw_write && s->op.err.code == KVC_OK) {
        /* Read-modify-write: the write half goes out as soon as the read returns. */
        kvc_value_free(&s->op.result);
        s->rmw_write = true;
        uint64_t start = s->start_ns;
        struct kvc_op next = {.type = KVC_OP_PUT, .key = s->key, .key_len = strlen(s->key),
                              .value = g_value, .value_len = t->cfg->value_size,
                              .call = {.timeout_ms = t->cfg->timeout_ms,
                                       .consistency = t->cfg->level}};
        s->op = next;
        struct kvc_err err;
        touch(t, s->ci);
        if (kvc_submit(s->cl, &s->op, on_done, s, &err) == KVC_OK) {
            s->start_ns = start;
            return;
        }
        s->op.err = err;
    }
    uint64_t end = record(t, s);
    bool load_done = t->loading && t->load_next >= t->load_end;
    if (t->interval_ns || load_done || atomic_load(&g_stop) || (t->quota && t->issued >= t->quota))
        t->free_slots[t->n_free++] = s;
    else
        submit(t, s, end);
}

static void build_op(struct thread *t, struct slot *s)
{
    const struct cfg *c = t->cfg;
    uint64_t rec;
    struct kvc_op op = {.call = {.timeout_ms = c->timeout_ms, .consistency = c->level}};
    if (t->loading) {
        s->wop = WL_INSERT;
        rec = t->load_next++;
    } else {
        s->wop = wl_gen_op(&t->gen);
        rec = s->wop == WL_INSERT ? __atomic_fetch_add(&g_insert_next, 1, __ATOMIC_RELAXED)
                                  : wl_gen_record(&t->gen);
    }
    op.key = s->key;
    op.key_len = wl_key(rec, s->key);
    switch (s->wop) {
    case WL_READ:
    case WL_RMW:
        op.type = KVC_OP_GET;
        break;
    case WL_UPDATE:
    case WL_INSERT:
        op.type = KVC_OP_PUT;
        op.value = g_value;
        op.value_len = c->value_size;
        break;
    case WL_SCAN:
        op.type = KVC_OP_SCAN;
        op.scan.start = s->key;
        op.scan.start_len = op.key_len;
        op.scan.limit = 1 + (unsigned)(wl_rng_next(&t->gen.rng) % c->scan_length);
        break;
    case WL_NOPS:
        break;
    }
    s->rmw_write = false;
    s->op = op;
}

static void submit(struct thread *t, struct slot *s, uint64_t start_ns)
{
    build_op(t, s);
    s->start_ns = start_ns;
    t->issued++;
    struct kvc_err err;
    touch(t, s->ci);
    if (kvc_submit(s->cl, &s->op, on_done, s, &err) != KVC_OK) {
        s->op.err = err;
        record(t, s);
        t->free_slots[t->n_free++] = s;
    }
}

static bool thread_finished(struct thread *t)
{
    size_t total = (size_t)t->cfg->conns * t->cfg->pipeline;
    if (t->loading)
        return (t->load_next >= t->load_end || t->failed) && t->n_free == total;
    bool no_more = atomic_load(&g_stop) || (t->quota && t->issued >= t->quota);
    return no_more && t->n_free == total;
}

static short poll_events(uint32_t ev)
{
    return (short)((ev & EPOLLIN ? POLLIN : 0) | (ev & EPOLLOUT ? POLLOUT : 0) |
                   (ev & EPOLLERR ? POLLERR : 0) | (ev & EPOLLHUP ? POLLHUP : 0));
}

/* Registers one socket of client ci; op is EPOLL_CTL_ADD or EPOLL_CTL_MOD, and the other
 * one is tried when the kernel says the registration is (or is not) there after all. */
static int watch_ctl(struct thread *t, unsigned ci, int op, const struct pollfd *p)
{
    struct epoll_event ev = {
        .events = (p->events & POLLIN ? EPOLLIN : 0u) | (p->events & POLLOUT ? EPOLLOUT : 0u),
        .data.u64 = (uint64_t)ci << 32 | (uint32_t)p->fd};
    if (epoll_ctl(t->ep, op, p->fd, &ev) == 0)
        return 0;
    if ((op == EPOLL_CTL_ADD && errno == EEXIST) || (op == EPOLL_CTL_MOD && errno == ENOENT))
        return epoll_ctl(t->ep, op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p->fd, &ev);
    return -1;
}

/* Brings client ci's registration up to date with kvc_fds. A socket that left the set was
 * closed, and closing dropped it from the epoll set: it is never EPOLL_CTL_DEL'd, which
 * could hit another client's new socket that got the same number. When kvc_fds_epoch
 * moved, a socket may have been closed and its number reused by a new one, so every fd
 * is registered again. 0, or -1 when epoll_ctl or memory failed. */
static int watch_sync(struct thread *t, unsigned ci, struct pollfd **tmp, size_t *tmpcap)
{
    struct watch *w = &t->w[ci];
    struct kvc_client *c = t->cls[ci];
    w->touched = false;
    size_t n = kvc_fds(c, *tmp, *tmpcap);
    if (n > *tmpcap) {
        struct pollfd *p = realloc(*tmp, n * sizeof *p);
        if (!p)
            return -1;
        *tmp = p;
        *tmpcap = n;
        kvc_fds(c, *tmp, *tmpcap);
    }
    uint64_t epoch = kvc_fds_epoch(c);
    bool reopened = epoch != w->epoch;
    for (size_t k = 0; k < n; k++) {
        const struct pollfd *p = &(*tmp)[k];
        const struct pollfd *old = NULL;
        for (size_t j = 0; !reopened && j < w->n && !old; j++)
            if (w->fds[j].fd == p->fd)
                old = &w->fds[j];
        if (old && old->events == p->events)
            continue;
        if (watch_ctl(t, ci, old ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p) != 0)
            return -1;
    }
    if (n > w->cap) {
        struct pollfd *p = realloc(w->fds, n * sizeof *p);
        if (!p)
            return -1;
        w->fds = p;
        w->cap = n;
    }
    for (size_t k = 0; k < n; k++)
        w->fds[k] = (struct pollfd){.fd = (*tmp)[k].fd, .events = (*tmp)[k].events};
    w->n = n;
    w->epoch = epoch;
    return 0;
}

/* Hands client ci the events it has (nfds 0: none; it still sends, expires and runs
 * callbacks). */
static void drive(struct thread *t, unsigned ci, const struct pollfd *fds, size_t nfds)
{
    struct kvc_err err;
    touch(t, ci);
    if (kvc_handle_events(t->cls[ci], fds, nfds, &err) < 0) {
        fprintf(stderr, "kvbench: connection %u: %s\n", ci, err.msg);
        t->failed = 1;
    }
}

static void *thread_main(void *arg)
{
    struct thread *t = arg;
    const struct cfg *c = t->cfg;
    unsigned n = c->conns;
    int maxev = n < 64 ? 64 : (int)n;
    struct epoll_event *evs = calloc((size_t)maxev, sizeof *evs);
    size_t tmpcap = 8;
    struct pollfd *tmp = calloc(tmpcap, sizeof *tmp);
    t->w = calloc(n, sizeof *t->w);
    t->touched = calloc(n, sizeof *t->touched);
    t->ready = calloc(n, sizeof *t->ready);
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!evs || !tmp || !t->w || !t->touched || !t->ready || t->ep < 0) {
        fprintf(stderr, "kvbench: thread setup: %s\n", strerror(errno));
        t->failed = 1;
        goto out;
    }
    for (unsigned i = 0; i < n; i++) {
        t->w[i].epoch = kvc_fds_epoch(t->cls[i]) - 1;   /* nothing registered yet */
        touch(t, i);
    }
    /* Closed loop: fill every slot once; completions refill them (on_done). */
    if (!t->interval_ns) {
        while (t->n_free && !(t->loading && t->load_next >= t->load_end) &&
               !(t->quota && t->issued >= t->quota))
            submit(t, t->free_slots[--t->n_free], now_ns());
    }
    uint64_t next_sweep = now_ns() + SWEEP_NS;
    bool from_loop = true;   /* the touched clients were submitted to outside a callback */
    while (!thread_finished(t)) {
        uint64_t now = now_ns();
        uint64_t issued = t->issued;
        if (t->interval_ns && !atomic_load(&g_stop)) {
            /* Open loop: issue everything scheduled up to now; a late op keeps its
             * scheduled start so the delay shows in its latency. */
            while (t->next_ns <= now && t->n_free && !(t->quota && t->issued >= t->quota)) {
                submit(t, t->free_slots[--t->n_free], t->next_ns);
                t->next_ns += t->interval_ns;
            }
        }
        if (t->loading && t->load_next < t->load_end)
            while (t->n_free && t->load_next < t->load_end)
                submit(t, t->free_slots[--t->n_free], now_ns());
        from_loop |= t->issued != issued;
        /* What this loop submitted sits in the out-buffers: send it now rather than
         * registering POLLOUT for one wake-up. (Callbacks' submits are sent by
         * kvc_handle_events itself.) */
        if (from_loop)
            for (size_t k = 0; k < t->ntouched; k++)
                drive(t, t->touched[k], NULL, 0);
        from_loop = false;
        for (size_t k = 0; k < t->ntouched; k++)
            if (watch_sync(t, t->touched[k], &tmp, &tmpcap) != 0) {
                fprintf(stderr, "kvbench: epoll: %s\n", strerror(errno));
                t->failed = 1;
                goto out;
            }
        t->ntouched = 0;
        /* Sleep until the sweep or the open loop's next op, to the microsecond
         * (epoll_pwait2): a millisecond timeout would make a schedule under 1 ms away a
         * busy wait, a core of client CPU taken from the servers under test. */
        uint64_t until = next_sweep;
        if (t->interval_ns && t->next_ns < until)
            until = t->next_ns;
        uint64_t wait_ns = until > now ? until - now : 0;
        if (wait_ns > 100000000u)
            wait_ns = 100000000u;
        struct timespec tmo = {(time_t)(wait_ns / 1000000000u), (long)(wait_ns % 1000000000u)};
        int ne = epoll_pwait2(t->ep, evs, maxev, &tmo, NULL);
        if (ne < 0 && errno != EINTR)
            break;
        size_t nready = 0;
        for (int k = 0; k < ne; k++) {
            unsigned ci = (unsigned)(evs[k].data.u64 >> 32);
            int fd = (int)(uint32_t)evs[k].data.u64;
            struct watch *w = &t->w[ci];
            for (size_t j = 0; j < w->n; j++)
                if (w->fds[j].fd == fd)
                    w->fds[j].revents |= poll_events(evs[k].events);
            if (!w->ready) {
                w->ready = true;
                t->ready[nready++] = ci;
            }
        }
        for (size_t k = 0; k < nready; k++) {
            struct watch *w = &t->w[t->ready[k]];
            drive(t, t->ready[k], w->fds, w->n);
            for (size_t j = 0; j < w->n; j++)
                w->fds[j].revents = 0;
            w->ready = false;
        }
        now = now_ns();
        if (now >= next_sweep) {
            for (unsigned i = 0; i < n; i++)
                if (kvc_pending(t->cls[i]))
                    drive(t, i, NULL, 0);
            next_sweep = now + SWEEP_NS;
        }
        if (t->failed && !t->loading && kvc_pending(t->cls[0]) == 0 && t->interval_ns == 0)
            break;
    }
out:
    if (t->ep >= 0)
        close(t->ep);
    if (t->w)
        for (unsigned i = 0; i < n; i++)
            free(t->w[i].fds);
    free(t->w);
    free(t->touched);
    free(t->ready);
    free(evs);
    free(tmp);
    return NULL;
}

static int connect_all(struct thread *t)
{
    const struct cfg *c = t->cfg;
    t->cls = calloc(c->conns, sizeof *t->cls);
    size_t total = (size_t)c->conns * c->pipeline;
    t->slots = calloc(total, sizeof *t->slots);
    t->free_slots = calloc(total, sizeof *t->free_slots);
    for (unsigned i = 0; i < c->conns; i++) {
        struct kvc_opts o;
        kvc_opts_default(&o);
        o.addrs = c->nodes;
        o.timeout_ms = c->timeout_ms;
        struct kvc_err err;
        if (kvc_connect(&o, &t->cls[i], &err) != KVC_OK) {
            fprintf(stderr, "kvbench: cannot connect to %s: %s\n", c->nodes, err.msg);
            return -1;
        }
    }
    for (size_t i = 0; i < total; i++) {
        t->slots[i].t = t;
        t->slots[i].cl = t->cls[i % c->conns];
        t->slots[i].ci = (unsigned)(i % c->conns);
        t->free_slots[t->n_free++] = &t->slots[i];
    }
    return 0;
}

static void disconnect_all(struct thread *t)
{
    for (unsigned i = 0; t->cls && i < t->cfg->conns; i++)
        kvc_close(t->cls[i]);
    free(t->cls);
    free(t->slots);
    free(t->free_slots);
}

static void *progress_main(void *arg)
{
    (void)arg;
    uint64_t last = 0;
    for (int s = 1; !atomic_load(&g_stop); s++) {
        for (int i = 0; i < 10 && !atomic_load(&g_stop); i++)
            usleep(100000);
        uint64_t now = atomic_load(&g_progress_ops);
        fprintf(stderr, "\r[%3ds] %10.0f ops/s  total %llu   ", s, (double)(now - last),
                (unsigned long long)now);
        last = now;
    }
    fprintf(stderr, "\n");
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: kvbench [options]\n"
            "  -n, --nodes H:P,...     servers (default $KVD_NODES or 127.0.0.1:7379)\n"
            "  -w, --workload a..f     YCSB core workload (default a); feed: the feed\n"
            "                          service workload (kvbench -w feed --help)\n"
            "      --mix set|get       100%% updates or 100%% reads, uniform keys\n"
            "      --records N         records in the key space (default 100000)\n"
            "      --operations N      stop after N operations (default: by --duration)\n"
            "  -d, --duration S        seconds to run (default 10)\n"
            "      --warmup S          seconds not recorded at the start (default 1)\n"
            "  -t, --threads T         client threads (default 1)\n"
            "  -c, --connections C     connections per thread (default 8)\n"
            "  -p, --pipeline D        requests in flight per connection (default 1)\n"
            "  -r, --rate R            open loop: R ops/s in total (default: closed loop)\n"
            "      --value-size B      bytes per value (default 100)\n"
            "      --scan-length L     longest scan, uniform 1..L (default 100)\n"
            "      --consistency L     one|quorum|all|... (default: the server's)\n"
            "      --timeout MS        per-request timeout (default 5000)\n"
            "      --load-only         insert the records, then stop\n"
            "      --no-load           skip the load phase (records already present)\n"
            "      --json FILE         also write the results as JSON (- for stdout)\n"
            "      --server-pids P,..  report these processes' CPU time per operation\n"
            "  -h, --help\n");
}

static int parse_args(int argc, char **argv, struct cfg *c)
{
    static const struct option opts[] = {
        {"nodes", 1, 0, 'n'}, {"workload", 1, 0, 'w'}, {"records", 1, 0, 'R'},
        {"operations", 1, 0, 'O'}, {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'W'},
        {"threads", 1, 0, 't'}, {"connections", 1, 0, 'c'}, {"pipeline", 1, 0, 'p'},
        {"rate", 1, 0, 'r'}, {"value-size", 1, 0, 'v'}, {"scan-length", 1, 0, 'L'},
        {"consistency", 1, 0, 'C'}, {"timeout", 1, 0, 'T'}, {"load-only", 0, 0, 'l'},
        {"no-load", 0, 0, 'N'}, {"json", 1, 0, 'j'}, {"server-pids", 1, 0, 'P'},
        {"mix", 1, 0, 'M'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *c = (struct cfg){.nodes = getenv("KVD_NODES") ? getenv("KVD_NODES") : "127.0.0.1:7379",
                      .workload = 'a', .records = 100000, .duration_s = 10, .warmup_s = 1,
                      .threads = 1, .conns = 8, .pipeline = 1, .value_size = 100,
                      .scan_length = 100, .load = true, .run = true, .timeout_ms = 5000};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:w:d:t:c:p:r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': c->nodes = optarg; break;
        case 'w': c->workload = optarg[0]; break;
        case 'R': c->records = strtoull(optarg, NULL, 10); break;
        case 'O': c->operations = strtoull(optarg, NULL, 10); break;
        case 'd': c->duration_s = atof(optarg); break;
        case 'W': c->warmup_s = atof(optarg); break;
        case 't': c->threads = (unsigned)atoi(optarg); break;
        case 'c': c->conns = (unsigned)atoi(optarg); break;
        case 'p': c->pipeline = (unsigned)atoi(optarg); break;
        case 'r': c->rate = atof(optarg); break;
        case 'v': c->value_size = strtoull(optarg, NULL, 10); break;
        case 'L': c->scan_length = (unsigned)atoi(optarg); break;
        case 'C':
            if (kvc_consistency_parse(optarg, &c->level) != 0) {
                fprintf(stderr, "kvbench: unknown consistency '%s'\n", optarg);
                return 2;
            }
            break;
        case 'T': c->timeout_ms = (unsigned)atoi(optarg); break;
        case 'l': c->run = false; break;
        case 'N': c->load = false; break;
        case 'j': c->json_path = optarg; break;
        case 'P': c->server_pids = optarg; break;
        case 'M':
            if (strcmp(optarg, "set") && strcmp(optarg, "get")) {
                fprintf(stderr, "kvbench: --mix is set or get, not '%s'\n", optarg);
                return 2;
            }
            c->workload = optarg[0] == 's' ? 's' : 'g';
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !mix_of(c->workload) || !c->threads || !c->conns || !c->pipeline ||
        !c->records || !c->scan_length || c->value_size > (1u << 20)) {
        usage(stderr);
        return 2;
    }
    return 0;
}

static void print_results(const struct cfg *c, const struct stats *st, double secs,
                          int64_t cpu_ticks, const char *phase)
{
    uint64_t total = 0, errs = 0;
    for (int op = 0; op < WL_NOPS; op++) {
        total += st->h[op].n;
        for (int s = 0; s < MAX_STATUS; s++)
            errs += st->errors[op][s];
    }
    printf("\n%s: workload %c, %u thread(s) x %u connection(s) x pipeline %u%s, %.1f s\n", phase,
           c->workload, c->threads, c->conns, c->pipeline, c->rate > 0 ? " (open loop)" : "",
           secs);
    printf("%-7s %10s %11s %9s %9s %9s %9s %9s\n", "op", "count", "ops/s", "p50 us", "p90 us",
           "p99 us", "p99.9 us", "max us");
    for (int op = 0; op < WL_NOPS; op++) {
        const struct hist *h = &st->h[op];
        if (!h->n)
            continue;
        printf("%-7s %10llu %11.0f %9.1f %9.1f %9.1f %9.1f %9.1f\n", wl_op_name((enum wl_op)op),
               (unsigned long long)h->n, (double)h->n / secs, hist_quantile(h, 0.5) / 1e3,
               hist_quantile(h, 0.9) / 1e3, hist_quantile(h, 0.99) / 1e3,
               hist_quantile(h, 0.999) / 1e3, h->max / 1e3);
    }
    printf("total   %10llu %11.0f   errors %llu\n", (unsigned long long)total,
           (double)total / secs, (unsigned long long)errs);
    for (int op = 0; op < WL_NOPS; op++)
        for (int s = 0; s < MAX_STATUS; s++)
            if (st->errors[op][s])
                printf("  %s %s: %llu\n", wl_op_name((enum wl_op)op), kvc_status_name(-s),
                       (unsigned long long)st->errors[op][s]);
    if (st->shed.n)
        printf("shed    %10llu %11.0f %9.1f %9.1f %9.1f %9.1f %9.1f   (OVERLOADED answers)\n",
               (unsigned long long)st->shed.n, (double)st->shed.n / secs,
               hist_quantile(&st->shed, 0.5) / 1e3, hist_quantile(&st->shed, 0.9) / 1e3,
               hist_quantile(&st->shed, 0.99) / 1e3, hist_quantile(&st->shed, 0.999) / 1e3,
               st->shed.max / 1e3);
    if (cpu_ticks >= 0 && total)
        printf("server CPU: %.2f s, %.2f us per operation\n",
               (double)cpu_ticks / (double)sysconf(_SC_CLK_TCK),
               (double)cpu_ticks / (double)sysconf(_SC_CLK_TCK) * 1e6 / (double)total);
}

static json_t *results_json(const struct cfg *c, const struct stats *st, double secs,
                            int64_t cpu_ticks, const char *phase)
{
    json_t *ops = json_object();
    uint64_t total = 0;
    for (int op = 0; op < WL_NOPS; op++) {
        const struct hist *h = &st->h[op];
        json_t *errors = json_object();
        uint64_t nerr = 0;
        for (int s = 0; s < MAX_STATUS; s++)
            if (st->errors[op][s]) {
                json_object_set_new(errors, kvc_status_name(-s),
                                    json_integer((json_int_t)st->errors[op][s]));
                nerr += st->errors[op][s];
            }
        if (!h->n && !nerr) {
            json_decref(errors);
            continue;
        }
        total += h->n;
        json_object_set_new(ops, wl_op_name((enum wl_op)op),
                            json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:o}", "count",
                                      (json_int_t)h->n, "ops_per_s", (double)h->n / secs,
                                      "p50_us", hist_quantile(h, 0.5) / 1e3, "p90_us",
                                      hist_quantile(h, 0.9) / 1e3, "p99_us",
                                      hist_quantile(h, 0.99) / 1e3, "p999_us",
                                      hist_quantile(h, 0.999) / 1e3, "max_us", h->max / 1e3,
                                      "errors", errors));
    }
    json_t *j = json_pack("{s:s,s:s%,s:I,s:I,s:I,s:f,s:f,s:I,s:f,s:o}", "phase", phase,
                          "workload", &c->workload, (size_t)1, "threads", (json_int_t)c->threads,
                          "connections", (json_int_t)c->conns, "pipeline",
                          (json_int_t)c->pipeline, "rate", c->rate, "seconds", secs,
                          "operations", (json_int_t)total, "ops_per_s", (double)total / secs,
                          "ops", ops);
    if (st->shed.n)
        json_object_set_new(j, "shed",
                            json_pack("{s:I,s:f,s:f,s:f,s:f}", "count",
                                      (json_int_t)st->shed.n, "p50_us",
                                      hist_quantile(&st->shed, 0.5) / 1e3, "p99_us",
                                      hist_quantile(&st->shed, 0.99) / 1e3, "p999_us",
                                      hist_quantile(&st->shed, 0.999) / 1e3, "max_us",
                                      st->shed.max / 1e3));
    if (cpu_ticks >= 0 && total)
        json_object_set_new(j, "server_cpu_us_per_op",
                            json_real((double)cpu_ticks / (double)sysconf(_SC_CLK_TCK) * 1e6 /
                                      (double)total));
    return j;
}

/* Runs one phase (load or run) with all threads; returns 0 or 1 on connection failure. */
static int run_phase(const struct cfg *c, bool loading, json_t *out)
{
    struct thread *ts = calloc(c->threads, sizeof *ts);
    uint64_t start = now_ns();
    int rc = 0;
    atomic_store(&g_stop, 0);
    atomic_store(&g_progress_ops, 0);
    for (unsigned i = 0; i < c->threads; i++) {
        struct thread *t = &ts[i];
        t->idx = i;
        t->cfg = c;
        t->loading = loading;
        hist_init(&t->st.h[0]);
        for (int op = 0; op < WL_NOPS; op++)
            hist_init(&t->st.h[op]);
        hist_init(&t->st.shed);
        wl_gen_init(&t->gen, mix_of(c->workload), c->records, &g_insert_next, 1000 + i);
        if (loading) {
            t->load_next = c->records * i / c->threads;
            t->load_end = c->records * (i + 1) / c->threads;
        } else {
            t->measure_from_ns = start + (uint64_t)(c->warmup_s * 1e9);
            if (c->operations)
                t->quota = c->operations / c->threads + (i < c->operations % c->threads);
            if (c->rate > 0) {
                t->interval_ns = (uint64_t)(1e9 * c->threads / c->rate);
                t->next_ns = start;
            }
        }
        if (connect_all(t) != 0) {
            rc = 1;
            for (unsigned k = 0; k <= i; k++)
                disconnect_all(&ts[k]);
            free(ts);
            return rc;
        }
    }
    int64_t cpu0 = bench_servers_cpu(c->server_pids);
    pthread_t prog;
    pthread_create(&prog, NULL, progress_main, NULL);
    for (unsigned i = 0; i < c->threads; i++)
        pthread_create(&ts[i].th, NULL, thread_main, &ts[i]);
    if (!loading && !c->operations) {
        uint64_t end = start + (uint64_t)(c->duration_s * 1e9);
        uint64_t measure_from = start + (uint64_t)(c->warmup_s * 1e9);
        bool measuring = c->warmup_s <= 0;
        for (uint64_t now; (now = now_ns()) < end; usleep(measuring ? 20000 : 2000))
            if (!measuring && now >= measure_from) {
                /* The servers' CPU counts from here too: per op of the recorded ops. */
                cpu0 = bench_servers_cpu(c->server_pids);
                measuring = true;
            }
        atomic_store(&g_stop, 1);
    }
    for (unsigned i = 0; i < c->threads; i++)
        pthread_join(ts[i].th, NULL);
    atomic_store(&g_stop, 1);
    pthread_join(prog, NULL);
    uint64_t end = now_ns();
    int64_t cpu1 = bench_servers_cpu(c->server_pids);
    double secs = (double)(end - start) / 1e9;
    if (!loading)
        secs -= c->warmup_s;
    if (secs <= 0)
        secs = 1e-9;
    struct stats *all = calloc(1, sizeof *all);
    for (int op = 0; op < WL_NOPS; op++)
        hist_init(&all->h[op]);
    hist_init(&all->shed);
    for (unsigned i = 0; i < c->threads; i++) {
        hist_merge(&all->shed, &ts[i].st.shed);
        for (int op = 0; op < WL_NOPS; op++) {
            hist_merge(&all->h[op], &ts[i].st.h[op]);
            for (int s = 0; s < MAX_STATUS; s++)
                all->errors[op][s] += ts[i].st.errors[op][s];
        }
        rc |= ts[i].failed;
        disconnect_all(&ts[i]);
    }
    int64_t cpu = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
    const char *phase = loading ? "load" : "run";
    print_results(c, all, secs, cpu, phase);
    if (out)
        json_array_append_new(out, results_json(c, all, secs, cpu, phase));
    free(all);
    free(ts);
    return rc;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--workload=feed") == 0 || strcmp(argv[i], "-wfeed") == 0 ||
            ((strcmp(argv[i], "-w") == 0 || strcmp(argv[i], "--workload") == 0) &&
             i + 1 < argc && strcmp(argv[i + 1], "feed") == 0))
            return kvbench_feed_main(argc, argv);
    struct cfg c;
    int rc = parse_args(argc, argv, &c);
    if (rc)
        return rc;
    uint8_t *value = malloc(c.value_size ? c.value_size : 1);
    for (size_t i = 0; i < c.value_size; i++)
        value[i] = (uint8_t)('a' + (i * 7 + i / 13) % 26);
    g_value = value;
    g_insert_next = c.records;
    json_t *results = c.json_path ? json_array() : NULL;
    if (c.load)
        rc |= run_phase(&c, true, results);
    if (c.run && !rc)
        rc |= run_phase(&c, false, results);
    if (results) {
        int flags = JSON_INDENT(2);
        if (strcmp(c.json_path, "-") == 0)
            json_dumpf(results, stdout, flags);
        else if (json_dump_file(results, c.json_path, flags) != 0)
            fprintf(stderr, "kvbench: cannot write %s\n", c.json_path);
        json_decref(results);
    }
    free(value);
    return rc ? 3 : 0;
}
