/* tests/crash/kvcrash.c -- the crash loop's load generator and checker, with an
 * expected-values file in the manner of RocksDB's db_stress (docs/testing.md, "Crash loop").
 * Built on libkvclient only (<kv/client.h>).
 *
 *   kvcrash load   --nodes LIST --state FILE [--level L] [--keys N] [--seconds S]
 *                  [--depth D] [--seed X] [--timeout-ms T]
 *   kvcrash verify --nodes LIST --state FILE [--level L] [--retry-s S]
 *   kvcrash wait   --nodes LIST [--up N] [--seconds S]
 *   kvcrash damage --nodes LIST --state FILE --how older|delete|garbage|restore [--key K]
 *   kvcrash ports  N
 *
 * The key space is fixed (crash:00000 .. N-1). Every write of key k carries a per-key
 * sequence number s: its value is value_of(k, s), a deterministic byte string naming k and s
 * and ending in a checksum, or a delete when is_delete(k, s). The state file holds one slot
 * per key: `acked` (the newest write known to have taken effect: acknowledged, or read back
 * at the level by a verify) and `issued` (the newest write ever sent). Every write in
 * (acked, issued] had an unknown outcome (timeout, connection lost, node killed), so it may
 * or may not have taken effect.
 *
 * (1) `issued` reaches the file, fdatasync'd, before the write is submitted; `acked` is
 *     written when the acknowledgement arrives and synced before the run ends. So the file
 *     never claims less than was sent, nor more than was acknowledged.
 * (2) At most one write per key is in flight. A key whose write had an unknown outcome is
 *     not written again during the same run: a request still queued somewhere could
 *     otherwise be applied after a later acknowledged write and (legitimately, by LWW)
 *     hide it. A write that never left this process (no node took the connection) has
 *     its seq taken back; one refused with UNAVAILABLE (before any replica was asked)
 *     keeps its seq in (acked, issued], but nothing of it is in flight, so the key stays
 *     writable. Every other failure is an unknown outcome and freezes the key.
 * (3) verify reads every key at the level and accepts exactly: value_of(k, s) or, for a
 *     delete, NOT_FOUND, for some s in [acked, issued] (s = 0: never written, NOT_FOUND).
 *     An older s is a lost write; bytes that are no value_of(k, s), an s above issued, or a
 *     value where s was a delete are wrong. Then the slot's acked becomes the s read (a
 *     read at QUORUM repairs a quorum before it answers, so no later read may go below it).
 * (4) Exit codes: 0 success, 1 lost or wrong values found, 2 usage, 3 could not run
 *     (nodes unreachable, keys unreadable, a bad state file). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <kv/client.h>
#include "tests/free_port.h"

#define MAGIC "KVCRASH1"
#define HEADER_SIZE 64u
#define SLOT_SIZE 32u
#define MAX_KEYS 1000000u
#define MAX_DEPTH 256u
#define KEY_FMT "crash:%05u"

/* ---------------------------------------------------------------- values and hashes -- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t fnv1a(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t hash_ks(uint32_t k, uint64_t s) { return mix64(mix64(k) ^ s); }

/* About one write in twelve is a delete (never the first write of a key). */
static bool is_delete(uint32_t k, uint64_t s) { return s > 1 && hash_ks(k, s) % 12 == 0; }

#define VALUE_MAX 256
/* value_of(k, s): "k00042 s0000000017 " + 8..135 filler bytes drawn from (k, s) + " c" +
 * 16 hex digits of the FNV-1a of everything before. Returns the length. */
static size_t value_of(uint32_t k, uint64_t s, char *out)
{
    int n = snprintf(out, VALUE_MAX, "k%05u s%010" PRIu64 " ", k, s);
    uint64_t h = hash_ks(k, s);
    size_t fill = 8 + (size_t)(h % 128);
    for (size_t i = 0; i < fill; i++) {
        h = mix64(h + i);
        out[n++] = (char)('a' + h % 26);
    }
    uint64_t c = fnv1a(out, (size_t)n);
    n += snprintf(out + n, VALUE_MAX - (size_t)n, " c%016" PRIx64, c);
    return (size_t)n;
}

/* The s a stored value claims, or 0 when it is no value_of(k, s) at all (garbage). */
static uint64_t seq_of_value(uint32_t k, const uint8_t *v, size_t len)
{
    char head[32];
    if (len < 19 || len >= VALUE_MAX)
        return 0;
    memcpy(head, v, 19);
    head[19] = '\0';
    unsigned kk;
    uint64_t s;
    char sp;
    if (sscanf(head, "k%5u s%10" SCNu64 "%c", &kk, &s, &sp) != 3 || kk != k || sp != ' ' ||
        s == 0)
        return 0;
    char want[VALUE_MAX];
    size_t wl = value_of(k, s, want);
    return wl == len && memcmp(want, v, len) == 0 ? s : 0;
}

/* ------------------------------------------------------------------------ the state -- */

struct slot {
    uint64_t acked;
    uint64_t issued;
};

struct state {
    int fd;
    uint32_t nkeys;
    struct slot *slots;
    bool dirty;                  /* written since the last fdatasync */
};

static uint64_t slot_check(uint32_t k, const struct slot *s)
{
    return mix64(mix64(mix64(k) ^ s->acked) ^ s->issued) | 1;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kvcrash: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(3);
}

static void pwrite_all(int fd, const void *p, size_t n, off_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("state file write: %s", strerror(errno));
        p = (const uint8_t *)p + w;
        n -= (size_t)w;
        off += w;
    }
}

static void state_write_slot(struct state *st, uint32_t k)
{
    uint8_t b[SLOT_SIZE] = {0};
    put64(b, st->slots[k].acked);
    put64(b + 8, st->slots[k].issued);
    put64(b + 16, slot_check(k, &st->slots[k]));
    pwrite_all(st->fd, b, sizeof b, (off_t)HEADER_SIZE + (off_t)k * SLOT_SIZE);
    st->dirty = true;
}

static void state_sync(struct state *st)
{
    if (st->dirty && fdatasync(st->fd) != 0)
        die("state file fdatasync: %s", strerror(errno));
    st->dirty = false;
}

/* Opens path; creates it for nkeys keys when it does not exist and nkeys > 0. */
static void state_open(struct state *st, const char *path, uint32_t nkeys)
{
    st->fd = open(path, O_RDWR | O_CLOEXEC);
    if (st->fd < 0 && errno == ENOENT && nkeys) {
        st->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (st->fd < 0)
            die("cannot create %s: %s", path, strerror(errno));
        uint8_t h[HEADER_SIZE] = {0};
        memcpy(h, MAGIC, 8);
        put64(h + 8, nkeys);
        put64(h + 16, mix64(nkeys));
        pwrite_all(st->fd, h, sizeof h, 0);
        st->nkeys = nkeys;
        st->slots = calloc(nkeys, sizeof *st->slots);
        if (!st->slots)
            die("out of memory");
        for (uint32_t k = 0; k < nkeys; k++)
            state_write_slot(st, k);
        state_sync(st);
        int dfd = -1;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        dfd = open(slash ? (*slash = '\0', dir[0] ? dir : "/") : ".", O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);          /* the new file's name is durable too */
            close(dfd);
        }
        return;
    }
    if (st->fd < 0)
        die("cannot open %s: %s", path, strerror(errno));
    uint8_t h[HEADER_SIZE];
    if (pread(st->fd, h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h, MAGIC, 8) != 0 ||
        get64(h + 16) != mix64(get64(h + 8)) || get64(h + 8) == 0 ||
        get64(h + 8) > MAX_KEYS)
        die("%s is not a kvcrash state file", path);
    st->nkeys = (uint32_t)get64(h + 8);
    if (nkeys && nkeys != st->nkeys)
        die("%s holds %u keys, not %u", path, st->nkeys, nkeys);
    st->slots = calloc(st->nkeys, sizeof *st->slots);
    if (!st->slots)
        die("out of memory");
    for (uint32_t k = 0; k < st->nkeys; k++) {
        uint8_t b[SLOT_SIZE];
        if (pread(st->fd, b, sizeof b, (off_t)HEADER_SIZE + (off_t)k * SLOT_SIZE) !=
            (ssize_t)sizeof b)
            die("%s: slot %u is missing", path, k);
        st->slots[k].acked = get64(b);
        st->slots[k].issued = get64(b + 8);
        if (get64(b + 16) != slot_check(k, &st->slots[k]) ||
            st->slots[k].acked > st->slots[k].issued)
            die("%s: slot %u is corrupt", path, k);
    }
}

static void state_close(struct state *st)
{
    state_sync(st);
    close(st->fd);
    free(st->slots);
}

/* ---------------------------------------------------------------------- the options -- */

struct opts {
    const char *nodes, *state, *how;
    enum kvc_consistency level;
    uint32_t keys, depth, timeout_ms, up, key;
    double seconds, retry_s;
    uint64_t seed;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: kvcrash load   --nodes LIST --state FILE [--level L] [--keys N]\n"
            "                      [--seconds S] [--depth D] [--seed X] [--timeout-ms T]\n"
            "       kvcrash verify --nodes LIST --state FILE [--level L] [--retry-s S]\n"
            "       kvcrash wait   --nodes LIST [--up N] [--seconds S]\n"
            "       kvcrash damage --nodes LIST --state FILE --how older|delete|garbage|restore\n"
            "                      [--key K] [--level L]\n"
            "       kvcrash ports  N\n");
    exit(2);
}

static void parse(struct opts *o, int argc, char **argv)
{
    *o = (struct opts){.level = KVC_CL_QUORUM, .keys = 2000, .depth = 32, .timeout_ms = 3000,
                       .up = 1, .seconds = 2.0, .retry_s = 30.0, .seed = 0};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        char *end = NULL;
        if (strcmp(a, "--nodes") == 0)
            o->nodes = v;
        else if (strcmp(a, "--state") == 0)
            o->state = v;
        else if (strcmp(a, "--how") == 0)
            o->how = v;
        else if (strcmp(a, "--key") == 0)
            o->key = (uint32_t)strtoul(v, &end, 10);
        else if (strcmp(a, "--level") == 0) {
            if (kvc_consistency_parse(v, &o->level) != 0)
                usage();
        } else if (strcmp(a, "--keys") == 0)
            o->keys = (uint32_t)strtoul(v, &end, 10);
        else if (strcmp(a, "--depth") == 0)
            o->depth = (uint32_t)strtoul(v, &end, 10);
        else if (strcmp(a, "--timeout-ms") == 0)
            o->timeout_ms = (uint32_t)strtoul(v, &end, 10);
        else if (strcmp(a, "--up") == 0)
            o->up = (uint32_t)strtoul(v, &end, 10);
        else if (strcmp(a, "--seconds") == 0)
            o->seconds = strtod(v, &end);
        else if (strcmp(a, "--retry-s") == 0)
            o->retry_s = strtod(v, &end);
        else if (strcmp(a, "--seed") == 0)
            o->seed = strtoull(v, &end, 10);
        else
            usage();
        if (end && *end)
            usage();
    }
    if (!o->nodes || o->keys == 0 || o->keys > MAX_KEYS || o->depth == 0 ||
        o->depth > MAX_DEPTH || o->seconds < 0)
        usage();
}

static struct kvc_client *connect_until(const struct opts *o, const char *addrs, bool ta,
                                        double deadline, bool quiet)
{
    struct kvc_opts co;
    kvc_opts_default(&co);
    co.addrs = addrs;
    co.token_aware = ta;
    co.timeout_ms = o->timeout_ms;
    co.connect_timeout_ms = 1000;
    co.ring_refresh_ms = 500;    /* a restarted node is tried again soon */
    struct kvc_err err = {0, ""};
    for (;;) {
        struct kvc_client *c = NULL;
        if (kvc_connect(&co, &c, &err) == KVC_OK)
            return c;
        if (now_s() >= deadline)
            break;
        usleep(100 * 1000);
    }
    if (!quiet)
        fprintf(stderr, "kvcrash: cannot connect to %s: %s\n", addrs, err.msg);
    return NULL;
}

/* --------------------------------------------------------------------------- load -- */

struct wop {
    struct kvc_op op;
    uint32_t key;
    uint64_t seq;
    bool busy;
    char kbuf[24];
    char vbuf[VALUE_MAX];
};

struct load {
    struct state *st;
    uint8_t *frozen;             /* per key: an unknown outcome this run (2) */
    uint8_t *busy;               /* per key: a write in flight (2) */
    uint64_t acked, unknown, unavailable, other, sent, not_sent;
};

static void on_done(struct kvc_op *op, void *arg)
{
    struct load *L = arg;
    struct wop *w = (struct wop *)op;   /* op is the first member */
    L->busy[w->key] = 0;
    w->busy = false;
    if (op->err.code == KVC_OK) {
        struct slot *s = &L->st->slots[w->key];
        if (w->seq > s->acked)
            s->acked = w->seq;
        state_write_slot(L->st, w->key);
        L->acked++;
        return;
    }
    if (op->err.code == KVC_CONN && !strstr(op->err.msg, "outcome unknown")) {
        /* No node took the connection: the request never left this process (client.c
         * (4)), so the seq is certainly unwritten and is taken back. */
        struct slot *s = &L->st->slots[w->key];
        if (s->issued == w->seq) {
            s->issued = w->seq - 1;
            state_write_slot(L->st, w->key);
        }
        L->not_sent++;
        return;
    }
    if (op->err.code == KVC_UNAVAILABLE) {
        /* Refused before any replica was asked: nothing of it is in flight anywhere, so
         * the key may be written again; its seq stays in (acked, issued] all the same. */
        L->unavailable++;
        return;
    }
    L->frozen[w->key] = 1;
    L->unknown++;
    if (op->err.code != KVC_CONN && op->err.code != KVC_TIMEOUT)
        L->other++;
}

/* A random key neither in flight nor frozen, or UINT32_MAX after a few misses. */
static uint32_t pick_key(const struct load *L, uint64_t *rng)
{
    for (int tries = 0; tries < 16; tries++) {
        *rng = mix64(*rng);
        uint32_t k = (uint32_t)(*rng % L->st->nkeys);
        if (!L->busy[k] && !L->frozen[k])
            return k;
    }
    return UINT32_MAX;
}

static int cmd_load(const struct opts *o)
{
    if (!o->state)
        usage();
    struct state st;
    state_open(&st, o->state, o->keys);
    struct load L = {.st = &st};
    L.frozen = calloc(st.nkeys, 1);
    L.busy = calloc(st.nkeys, 1);
    struct wop *ops = calloc(o->depth, sizeof *ops);
    if (!L.frozen || !L.busy || !ops)
        die("out of memory");
    uint64_t rng = o->seed ? o->seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    double t0 = now_s(), deadline = t0 + o->seconds;
    /* No node reachable for the whole run (a single node that died at its failpoint before
     * the run began) sends nothing: that is a run of zero writes, not a failure. */
    struct kvc_client *c = connect_until(o, o->nodes, true, deadline, false);
    bool connected = c != NULL;
    while (c) {
        bool more = now_s() < deadline;
        if (!more && kvc_pending(c) == 0)
            break;
        /* (1): every new issued seq is in the file, synced, before its write is sent. */
        struct wop *fresh[MAX_DEPTH];
        size_t nfresh = 0;
        for (uint32_t i = 0; more && i < o->depth; i++) {
            if (ops[i].busy)
                continue;
            uint32_t k = pick_key(&L, &rng);
            if (k == UINT32_MAX)
                break;
            struct wop *w = &ops[i];
            struct slot *s = &st.slots[k];
            memset(&w->op, 0, sizeof w->op);
            w->key = k;
            w->seq = s->issued + 1;
            s->issued = w->seq;
            state_write_slot(&st, k);
            snprintf(w->kbuf, sizeof w->kbuf, KEY_FMT, k);
            w->op.key = w->kbuf;
            w->op.key_len = strlen(w->kbuf);
            w->op.call.consistency = o->level;
            w->op.call.timeout_ms = o->timeout_ms;
            if (is_delete(k, w->seq)) {
                w->op.type = KVC_OP_DELETE;
            } else {
                w->op.type = KVC_OP_PUT;
                w->op.value = w->vbuf;
                w->op.value_len = value_of(k, w->seq, w->vbuf);
            }
            w->busy = true;
            L.busy[k] = 1;
            fresh[nfresh++] = w;
        }
        state_sync(&st);
        bool refused = false;
        for (size_t i = 0; i < nfresh; i++) {
            struct kvc_err err;
            if (kvc_submit(c, &fresh[i]->op, on_done, &L, &err) == KVC_OK) {
                L.sent++;
                continue;
            }
            /* Not queued, so not sent: take the seq back, as in on_done. */
            struct wop *w = fresh[i];
            w->busy = false;
            L.busy[w->key] = 0;
            st.slots[w->key].issued = w->seq - 1;
            state_write_slot(&st, w->key);
            L.not_sent++;
            refused = true;
        }
        struct kvc_err err;
        kvc_poll(c, 20, &err);
        if ((refused || nfresh == 0) && kvc_pending(c) == 0)
            usleep(20 * 1000);   /* the node is down, or no key is free: do not spin */
    }
    kvc_close(c);
    state_close(&st);
    printf("load connected=%d seconds=%.2f sent=%" PRIu64 " acked=%" PRIu64 " unknown=%" PRIu64
           " unavailable=%" PRIu64 " other_errors=%" PRIu64 " not_sent=%" PRIu64 "\n",
           connected, now_s() - t0, L.sent, L.acked, L.unknown, L.unavailable, L.other, L.not_sent);
    free(L.frozen);
    free(L.busy);
    free(ops);
    return 0;
}

/* ------------------------------------------------------------------------- verify -- */

enum verdict { V_OK, V_LOST, V_WRONG };

/* (3): what a read of key k (status code, value) says against slot s; *seen is the s it
 * shows (0: absent). */
static enum verdict judge(uint32_t k, const struct slot *s, int code, const uint8_t *v,
                          size_t len, uint64_t *seen, char *why, size_t whysz)
{
    if (code == KVC_NOT_FOUND) {
        if (s->acked == 0 || is_delete(k, s->acked)) {
            *seen = s->acked;
            return V_OK;
        }
        for (uint64_t q = s->acked + 1; q <= s->issued; q++)
            if (is_delete(k, q)) {
                *seen = q;
                return V_OK;
            }
        snprintf(why, whysz, "missing: acked s%" PRIu64 " (issued s%" PRIu64 ")", s->acked,
                 s->issued);
        return V_LOST;
    }
    uint64_t q = seq_of_value(k, v, len);
    if (q == 0) {
        snprintf(why, whysz, "garbage: %zu bytes \"%.40s\"", len, (const char *)v);
        return V_WRONG;
    }
    if (q > s->issued || is_delete(k, q)) {
        snprintf(why, whysz, "s%" PRIu64 " was never written as a value (issued s%" PRIu64
                 ")", q, s->issued);
        return V_WRONG;
    }
    if (q < s->acked) {
        snprintf(why, whysz, "older value s%" PRIu64 " (acked s%" PRIu64 ")", q, s->acked);
        return V_LOST;
    }
    *seen = q;
    return V_OK;
}

static int cmd_verify(const struct opts *o)
{
    if (!o->state)
        usage();
    struct state st;
    state_open(&st, o->state, 0);
    double t0 = now_s(), deadline = t0 + o->retry_s;
    struct kvc_client *c = connect_until(o, o->nodes, true, deadline, false);
    if (!c)
        die("verify: no node reachable");
    enum { BATCH = 100 };
    struct kvc_op ops[BATCH];
    char keys[BATCH][24];
    uint32_t idx[BATCH];
    uint8_t *done = calloc(st.nkeys, 1);
    if (!done)
        die("out of memory");
    uint64_t verified = 0, lost = 0, wrong = 0, absent = 0, resolved = 0, retries = 0,
             acked_keys = 0;
    uint32_t left = st.nkeys;
    char last_err[200] = "";
    while (left && now_s() < deadline) {
        uint32_t k = 0;
        while (k < st.nkeys) {
            size_t n = 0;
            for (; k < st.nkeys && n < BATCH; k++) {
                if (done[k])
                    continue;
                snprintf(keys[n], sizeof keys[n], KEY_FMT, k);
                ops[n] = (struct kvc_op){.type = KVC_OP_GET, .key = keys[n],
                                         .key_len = strlen(keys[n])};
                ops[n].call.consistency = o->level;
                ops[n].call.timeout_ms = o->timeout_ms;
                idx[n++] = k;
            }
            if (n == 0)
                break;
            struct kvc_err err;
            kvc_exec(c, ops, n, &err);
            for (size_t i = 0; i < n; i++) {
                uint32_t key = idx[i];
                int code = ops[i].err.code;
                if (code != KVC_OK && code != KVC_NOT_FOUND) {
                    snprintf(last_err, sizeof last_err, KEY_FMT ": %s %s", key,
                             kvc_status_name(code), ops[i].err.msg);
                    retries++;
                    continue;    /* read again in the next round */
                }
                struct slot *s = &st.slots[key];
                uint64_t seen = 0;
                char why[160] = "";
                enum verdict vd = judge(key, s, code, ops[i].result.data, ops[i].result.len,
                                        &seen, why, sizeof why);
                kvc_value_free(&ops[i].result);
                done[key] = 1;
                left--;
                if (s->acked)
                    acked_keys++;
                if (vd == V_LOST) {
                    lost++;
                    fprintf(stderr, "LOST  " KEY_FMT ": %s\n", key, why);
                } else if (vd == V_WRONG) {
                    wrong++;
                    fprintf(stderr, "WRONG " KEY_FMT ": %s\n", key, why);
                } else {
                    verified++;
                    absent += code == KVC_NOT_FOUND;
                    if (s->issued > s->acked)
                        resolved++;
                    if (seen != s->acked) {
                        s->acked = seen;   /* (3): the read is the new floor */
                        state_write_slot(&st, key);
                    }
                }
            }
        }
        if (left)
            usleep(200 * 1000);
    }
    kvc_close(c);
    state_close(&st);
    free(done);
    printf("verify seconds=%.2f keys=%u acked_keys=%" PRIu64 " verified=%" PRIu64
           " lost=%" PRIu64 " wrong=%" PRIu64 " absent=%" PRIu64 " in_doubt=%" PRIu64
           " unreadable=%u read_retries=%" PRIu64 "\n",
           now_s() - t0, st.nkeys, acked_keys, verified, lost, wrong, absent, resolved, left,
           retries);
    if (left)
        fprintf(stderr, "kvcrash: %u keys unreadable for %.0f s; last: %s\n", left,
                o->retry_s, last_err);
    return lost || wrong ? 1 : left ? 3 : 0;
}

/* --------------------------------------------------------------------------- damage -- */

/* The checker's own test (crashloop.sh runs it first): from --key on, finds a key whose
 * state fits and overwrites it at the level so that verify must object -- older: an older
 * value (lost), delete: a delete (lost), garbage: bytes no write had (wrong) -- or, with
 * restore, writes its acked value back. Prints the key index. */
static int cmd_damage(const struct opts *o, const char *how, uint32_t from)
{
    if (!o->state || !how)
        usage();
    struct state st;
    state_open(&st, o->state, 0);
    bool restore = strcmp(how, "restore") == 0;
    uint32_t k = from;
    for (; k < st.nkeys && !restore; k++) {
        const struct slot *s = &st.slots[k];
        if (s->acked != s->issued || s->acked < 3 || is_delete(k, s->acked))
            continue;            /* want a settled key holding a value, with history */
        if (strcmp(how, "older") != 0 || !is_delete(k, s->acked - 1))
            break;
    }
    if (k >= st.nkeys)
        die("damage: no key from %u fits '%s'", from, how);
    struct kvc_client *c = connect_until(o, o->nodes, true, now_s() + 10, false);
    if (!c)
        die("damage: no node reachable");
    char key[24], val[VALUE_MAX];
    snprintf(key, sizeof key, KEY_FMT, k);
    struct kvc_call call = {.consistency = o->level, .timeout_ms = o->timeout_ms};
    struct kvc_err err = {0, ""};
    const struct slot *s = &st.slots[k];
    int rc;
    if (restore && (s->acked == 0 || is_delete(k, s->acked)))
        rc = kvc_delete(c, key, strlen(key), &call, &err);
    else if (restore)
        rc = kvc_put(c, key, strlen(key), val, value_of(k, s->acked, val), &call, &err);
    else if (strcmp(how, "older") == 0)
        rc = kvc_put(c, key, strlen(key), val, value_of(k, s->acked - 1, val), &call, &err);
    else if (strcmp(how, "delete") == 0)
        rc = kvc_delete(c, key, strlen(key), &call, &err);
    else if (strcmp(how, "garbage") == 0) {
        size_t n = value_of(k, s->acked, val);
        val[n / 2] ^= 0x20;      /* one flipped bit in an otherwise right value */
        rc = kvc_put(c, key, strlen(key), val, n, &call, &err);
    } else
        usage();
    kvc_close(c);
    state_close(&st);
    if (rc != KVC_OK)
        die("damage %s of " KEY_FMT ": %s", how, k, err.msg);
    printf("%u\n", k);
    return 0;
}

/* --------------------------------------------------------------------- wait, ports -- */

/* Until every node of the list answers cluster_status seeing at least `up` nodes up. */
static int cmd_wait(const struct opts *o)
{
    double t0 = now_s(), deadline = t0 + o->seconds;
    char *list = strdup(o->nodes);
    if (!list)
        die("out of memory");
    int rc = 0;
    for (char *save = NULL, *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
        for (;;) {
            int seen = -1;
            struct kvc_client *c = connect_until(o, a, false, now_s(), true);
            if (c) {
                struct kvc_cluster_status cs;
                struct kvc_err err;
                if (kvc_cluster_status(c, &cs, &err) == KVC_OK) {
                    seen = 0;
                    for (size_t i = 0; i < cs.n_nodes; i++)
                        seen += cs.nodes[i].up;
                    kvc_cluster_status_free(&cs);
                }
                kvc_close(c);
            }
            if (seen >= (int)o->up)
                break;
            if (now_s() >= deadline) {
                fprintf(stderr, "kvcrash: %s sees %d of %u nodes up after %.1f s\n", a, seen,
                        o->up, o->seconds);
                rc = 3;
                break;
            }
            usleep(50 * 1000);
        }
        if (rc)
            break;
    }
    free(list);
    if (!rc)
        printf("wait seconds=%.2f\n", now_s() - t0);
    return rc;
}

static int cmd_ports(int argc, char **argv)
{
    if (argc != 3)
        usage();
    int n = atoi(argv[2]);
    if (n < 1 || n > 64)
        usage();
    int ports[64];
    for (int i = 0; i < n; i++) {
        int p;
        bool dup;
        do {   /* each probe closes its socket, so a later one may draw the same port */
            if ((p = kv_test_free_port("127.0.0.1")) < 0)
                die("ports: no free port below the ephemeral range");
            dup = false;
            for (int j = 0; j < i; j++)
                dup |= ports[j] == p;
        } while (dup);
        ports[i] = p;
        printf("%s%d", i ? " " : "", p);
    }
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "ports") == 0)
        return cmd_ports(argc, argv);
    struct opts o;
    parse(&o, argc, argv);
    if (strcmp(argv[1], "load") == 0)
        return cmd_load(&o);
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(&o);
    if (strcmp(argv[1], "wait") == 0)
        return cmd_wait(&o);
    if (strcmp(argv[1], "damage") == 0)
        return cmd_damage(&o, o.how, o.key);
    usage();
}
