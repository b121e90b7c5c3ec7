/* jepsen/kvj.c -- the client side of the jepsen harness: concurrent clients that record
 * every operation they invoke, as JSON lines, for the checkers (jepsen/checker/).
 *
 *   kvj run   --nodes A,B,.. --level L --time S --out FILE [options]   the workloads
 *   kvj now                                      CLOCK_MONOTONIC in ns (for the runner)
 *   kvj probe --nodes A --level L                exit 0 if the level is served, 3 if refused
 *
 * Uses libkvclient only (<kv/client.h>).
 *
 * (1) Every operation is one line {client, workload, key, f, value, expect, status, call_ns,
 *     return_ns, node, level, err}; call_ns is taken before the call, return_ns after it,
 *     both CLOCK_MONOTONIC.
 * (2) status "fail" only when the operation was definitely not applied (UNAVAILABLE,
 *     INVALID, OVERLOADED, IOERR, a connect that never succeeded); NOT_FOUND is an ok read.
 *     TIMEOUT and a broken connection are "info" (outcome unknown) and the client continues
 *     under a new client id, so that no client id has two operations open at once.
 * (3) Values are unique in a run: one atomic counter hands them out.
 * (4) Each client is bound to one node (token_aware off, one address), so "node" is the
 *     coordinator and a client on the minority side of a partition stays there.
 * (5) A register key takes at most `rotate` operations; then its slot moves to a new key, so
 *     each key's history stays small enough for the linearizability checker. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kv/client.h>

#define MAX_NODES 16
#define MAX_CLIENTS 64
#define MAX_SLOTS 16

struct cfg {
    char *nodes[MAX_NODES];
    int n_nodes;
    enum kvc_consistency level;
    const char *level_name;
    double time_s;
    int reg_clients, set_clients, slots, rotate;
    bool cas;
    uint32_t timeout_ms;
    const char *out;
    const char *run_id;
    int think_us;
};

static struct cfg g;
static FILE *g_out;
static pthread_mutex_t g_out_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_client_ids;
static atomic_long g_values;
static atomic_long g_slot_ops[MAX_SLOTS];
static atomic_long g_set_next;
/* --cas: a key is created by a CAS (expect absent) before anything else writes it, so that
 * it is CAS-managed from its first write (docs/cap.md). Both hold gen + 1 (0: none). */
static atomic_long g_slot_created[MAX_SLOTS];
static atomic_long g_slot_creating[MAX_SLOTS];
static atomic_bool g_stop;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void json_str(char *dst, size_t cap, const char *s)
{
    size_t j = 0;
    if (cap < 3)
        return;
    dst[j++] = '"';
    for (; *s && j + 8 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            dst[j++] = '\\';
            dst[j++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            j += (size_t)snprintf(dst + j, cap - j, "\\u%04x", ch);
        } else {
            dst[j++] = (char)ch;
        }
    }
    dst[j++] = '"';
    dst[j] = '\0';
}

/* A value field: a number, or null for "absent" (v < 0). */
static void json_val(char *dst, size_t cap, long v)
{
    if (v < 0)
        snprintf(dst, cap, "null");
    else
        snprintf(dst, cap, "%ld", v);
}

struct rec {
    int client;
    const char *workload, *f;
    const char *key;
    long value, expect;     /* -1: null */
    bool has_expect;
    int applied;            /* cas: 1 applied, 0 not, -1 unknown/none */
    const char *status;
    uint64_t call_ns, return_ns;
    int node;
    int code;
    const char *msg;
};

static void emit(const struct rec *r)
{
    char key[256], val[32], exp[32], msg[400];
    json_str(key, sizeof key, r->key);
    json_val(val, sizeof val, r->value);
    json_val(exp, sizeof exp, r->has_expect ? r->expect : -1);
    json_str(msg, sizeof msg, r->msg ? r->msg : "");
    char line[1024];
    int n = snprintf(line, sizeof line,
                     "{\"client\":%d,\"workload\":\"%s\",\"key\":%s,\"f\":\"%s\",\"value\":%s,"
                     "\"expect\":%s,\"applied\":%s,\"status\":\"%s\",\"call_ns\":%" PRIu64
                     ",\"return_ns\":%" PRIu64 ",\"node\":%d,\"level\":\"%s\",\"code\":\"%s\","
                     "\"err\":%s}\n",
                     r->client, r->workload, key, r->f, val, exp,
                     r->applied < 0 ? "null" : (r->applied ? "true" : "false"), r->status,
                     r->call_ns, r->return_ns, r->node, g.level_name,
                     r->code == 0 ? "OK" : kvc_status_name(r->code), msg);
    if (n <= 0)
        return;
    pthread_mutex_lock(&g_out_mu);
    fputs(line, g_out);
    pthread_mutex_unlock(&g_out_mu);
}

/* Definitely not applied, or unknown (see (2)). Reads: the caller drops info reads. */
static const char *classify(int code, const char *msg)
{
    switch (code) {
    case KVC_OK:
    case KVC_NOT_FOUND:
        return "ok";
    case KVC_UNAVAILABLE:
    case KVC_INVALID:
    case KVC_OVERLOADED:
    case KVC_IOERR:
    case KVC_TOO_LARGE:
        return "fail";
    case KVC_CONN:
        /* "cannot connect" / "connect to X: ..." : the request never left the client. */
        if (strstr(msg, "outcome unknown") == NULL &&
            (strstr(msg, "cannot connect") != NULL || strncmp(msg, "connect to", 10) == 0))
            return "fail";
        return "info";
    default:
        return "info";
    }
}

static void think(void)
{
    if (g.think_us > 0)
        usleep((useconds_t)(g.think_us / 2 + rand() % (g.think_us + 1)));
}

static struct kvc_client *connect_node(int node)
{
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = g.nodes[node];
    o.token_aware = false;
    o.timeout_ms = g.timeout_ms;
    o.connect_timeout_ms = g.timeout_ms;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    while (!atomic_load(&g_stop)) {
        if (kvc_connect(&o, &c, &err) == KVC_OK)
            return c;
        usleep(200 * 1000);
    }
    return NULL;
}

static void slot_key(char *buf, size_t cap, int slot, long gen)
{
    snprintf(buf, cap, "%s/r%d/%ld", g.run_id, slot, gen);
}

struct worker {
    pthread_t th;
    int idx;
    int node;
    unsigned seed;
    bool is_set;
    uint64_t deadline_ns;
};

static void store_max(atomic_long *a, long v)
{
    long cur = atomic_load(a);
    while (cur < v && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

/* One register operation on key: 0 ok, 1 fail, 2 info (the client must take a new id). */
static int register_op(struct kvc_client *c, struct worker *w, int client, const char *key,
                        long *last_seen, bool create, bool read_only)
{
    struct kvc_call call = {.timeout_ms = g.timeout_ms, .consistency = g.level};
    struct kvc_err err = {0};
    struct rec r = {.client = client, .workload = "register", .key = key, .value = -1,
                    .expect = -1, .applied = -1, .node = w->node + 1};
    int dice = create ? 99 : read_only ? 0 : rand_r(&w->seed) % 100;
    int rc;
    r.call_ns = mono_ns();
    if (dice < 45) {
        struct kvc_value v = {0};
        r.f = "read";
        rc = kvc_get(c, key, strlen(key), &v, &call, &err);
        r.return_ns = mono_ns();
        if (rc == KVC_OK) {
            r.value = strtol((const char *)v.data, NULL, 10);
            *last_seen = r.value;
        } else if (rc == KVC_NOT_FOUND) {
            *last_seen = -1;
        }
        kvc_value_free(&v);
    } else if (g.cas && (create || dice >= 75 || g.level != KVC_CL_LINEARIZABLE)) {
        long nv = atomic_fetch_add(&g_values, 1);
        char vb[32], eb[32];
        long expect = create ? -1 : *last_seen;
        snprintf(vb, sizeof vb, "%ld", nv);
        snprintf(eb, sizeof eb, "%ld", expect);
        struct kvc_value cur = {0};
        bool applied = false;
        r.f = "cas";
        r.value = nv;
        r.expect = expect;
        r.has_expect = true;
        rc = kvc_cas(c, key, strlen(key), expect < 0 ? NULL : eb, expect < 0 ? 0 : strlen(eb),
                     expect < 0, vb, strlen(vb), &call, &applied, &cur, &err);
        r.return_ns = mono_ns();
        if (rc == KVC_OK) {
            r.applied = applied ? 1 : 0;
            if (applied)
                *last_seen = nv;
            else if (cur.data != NULL)
                *last_seen = strtol((const char *)cur.data, NULL, 10);
            else
                *last_seen = -1;
        }
        kvc_value_free(&cur);
    } else {
        long nv = atomic_fetch_add(&g_values, 1);
        char vb[32];
        snprintf(vb, sizeof vb, "%ld", nv);
        r.f = "write";
        r.value = nv;
        rc = kvc_put(c, key, strlen(key), vb, strlen(vb), &call, &err);
        r.return_ns = mono_ns();
    }
    r.code = rc;
    r.msg = rc == KVC_OK || rc == KVC_NOT_FOUND ? "" : err.msg;
    r.status = classify(rc, err.msg);
    emit(&r);
    if (strcmp(r.status, "info") == 0)
        return 2;
    if (rc == KVC_CONN)
        usleep(100 * 1000);   /* do not spin against a dead node */
    return strcmp(r.status, "fail") == 0 ? 1 : 0;
}

static void *register_main(void *arg)
{
    struct worker *w = arg;
    int slot = w->idx % g.slots;
    struct kvc_client *c = connect_node(w->node);
    int client = atomic_fetch_add(&g_client_ids, 1);
    long last_seen = -1, last_gen = -1;
    while (c != NULL && !atomic_load(&g_stop) && mono_ns() < w->deadline_ns) {
        long n = atomic_fetch_add(&g_slot_ops[slot], 1);
        long gen = n / g.rotate;
        if (gen != last_gen) {
            last_gen = gen;
            last_seen = -1;
        }
        char key[128];
        slot_key(key, sizeof key, slot, gen);
        bool create = false, read_only = false;
        if (g.cas && atomic_load(&g_slot_created[slot]) < gen + 1) {
            long cur = atomic_load(&g_slot_creating[slot]);
            if (cur < gen + 1 &&
                atomic_compare_exchange_strong(&g_slot_creating[slot], &cur, gen + 1))
                create = true;
            else
                read_only = true;   /* someone is creating it: only reads until then */
        }
        int st = register_op(c, w, client, key, &last_seen, create, read_only);
        if (create && st == 1)
            atomic_compare_exchange_strong(&g_slot_creating[slot], &(long){gen + 1}, gen);
        else if (create)
            store_max(&g_slot_created[slot], gen + 1);
        if (st == 2)
            client = atomic_fetch_add(&g_client_ids, 1);
        think();
    }
    kvc_close(c);
    return NULL;
}

static void *set_main(void *arg)
{
    struct worker *w = arg;
    struct kvc_client *c = connect_node(w->node);
    int client = atomic_fetch_add(&g_client_ids, 1);
    while (c != NULL && !atomic_load(&g_stop) && mono_ns() < w->deadline_ns) {
        long n = atomic_fetch_add(&g_set_next, 1);
        char key[128], vb[32];
        snprintf(key, sizeof key, "%s/s/%08ld", g.run_id, n);
        snprintf(vb, sizeof vb, "%ld", n);
        struct kvc_call call = {.timeout_ms = g.timeout_ms, .consistency = g.level};
        struct kvc_err err = {0};
        struct rec r = {.client = client, .workload = "set", .key = key, .f = "add",
                        .value = n, .expect = -1, .applied = -1, .node = w->node + 1};
        r.call_ns = mono_ns();
        int rc = kvc_put(c, key, strlen(key), vb, strlen(vb), &call, &err);
        r.return_ns = mono_ns();
        r.code = rc;
        r.msg = rc == KVC_OK ? "" : err.msg;
        r.status = classify(rc, err.msg);
        emit(&r);
        if (strcmp(r.status, "info") == 0)
            client = atomic_fetch_add(&g_client_ids, 1);
        else if (rc == KVC_CONN)
            usleep(100 * 1000);
        think();
    }
    kvc_close(c);
    return NULL;
}

/* After the run (the runner healed everything): every register key ever used is read at the
 * run's level, every set element that was attempted is read at QUORUM. A read that errors
 * is retried for a while; one that never succeeds is a "never-read" element. */
#define FINAL_BATCH 128
static int final_reads(void)
{
    struct kvc_opts o;
    kvc_opts_default(&o);
    char addrs[MAX_NODES * 40] = "";
    for (int i = 0; i < g.n_nodes; i++) {
        if (i)
            strcat(addrs, ",");
        strcat(addrs, g.nodes[i]);
    }
    o.addrs = addrs;
    o.timeout_ms = 2000;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    for (int tries = 0; kvc_connect(&o, &c, &err) != KVC_OK; tries++) {
        if (tries > 50) {
            fprintf(stderr, "kvj: final reads: cannot connect: %s\n", err.msg);
            return -1;
        }
        usleep(200 * 1000);
    }
    int client = atomic_fetch_add(&g_client_ids, 1);
    /* Register keys: a final read at the run's level by a fresh client, checked like any
     * other read (it catches a write that was acknowledged and then lost). */
    for (int s = 0; s < g.slots; s++) {
        long gens = (atomic_load(&g_slot_ops[s]) + g.rotate - 1) / g.rotate;
        for (long gen = 0; gen < gens; gen++) {
            char key[128];
            slot_key(key, sizeof key, s, gen);
            for (int attempt = 0; attempt < 10; attempt++) {
                struct kvc_call call = {.timeout_ms = 2000, .consistency = g.level};
                struct kvc_value v = {0};
                struct rec r = {.client = client, .workload = "register", .key = key,
                                .f = "read", .value = -1, .expect = -1, .applied = -1,
                                .node = 0};
                r.call_ns = mono_ns();
                int rc = kvc_get(c, key, strlen(key), &v, &call, &err);
                r.return_ns = mono_ns();
                if (rc == KVC_OK)
                    r.value = strtol((const char *)v.data, NULL, 10);
                kvc_value_free(&v);
                r.code = rc;
                r.msg = rc == KVC_OK || rc == KVC_NOT_FOUND ? "" : err.msg;
                r.status = classify(rc, err.msg);
                emit(&r);
                if (strcmp(r.status, "info") == 0)
                    client = atomic_fetch_add(&g_client_ids, 1);
                if (strcmp(r.status, "ok") == 0)
                    break;
                usleep(300 * 1000);
            }
        }
    }
    /* Set elements, pipelined in batches at QUORUM. */
    long total = atomic_load(&g_set_next);
    static struct kvc_op ops[FINAL_BATCH];
    static char keys[FINAL_BATCH][128];
    long idx[FINAL_BATCH];
    long pending_from = 0;
    long *retry = calloc((size_t)(total > 0 ? total : 1), sizeof *retry);
    long n_retry = 0;
    for (int round = 0; round < 8; round++) {
        long n_todo = round == 0 ? total : n_retry;
        long *todo = NULL;
        if (round > 0) {
            if (n_retry == 0)
                break;
            todo = malloc((size_t)n_retry * sizeof *todo);
            memcpy(todo, retry, (size_t)n_retry * sizeof *todo);
            usleep(500 * 1000);
        }
        n_retry = 0;
        for (pending_from = 0; pending_from < n_todo; pending_from += FINAL_BATCH) {
            size_t n = 0;
            for (long k = pending_from; k < n_todo && n < FINAL_BATCH; k++, n++) {
                idx[n] = todo ? todo[k] : k;
                snprintf(keys[n], sizeof keys[n], "%s/s/%08ld", g.run_id, idx[n]);
                memset(&ops[n], 0, sizeof ops[n]);
                ops[n].type = KVC_OP_GET;
                ops[n].key = keys[n];
                ops[n].key_len = strlen(keys[n]);
                ops[n].call.timeout_ms = 3000;
                ops[n].call.consistency = KVC_CL_QUORUM;
            }
            uint64_t t0 = mono_ns();
            kvc_exec(c, ops, n, &err);
            uint64_t t1 = mono_ns();
            for (size_t k = 0; k < n; k++) {
                int rc = ops[k].err.code;
                struct rec r = {.client = client, .workload = "set", .key = keys[k],
                                .f = "final-read", .value = -1, .expect = -1, .applied = -1,
                                .node = 0, .call_ns = t0, .return_ns = t1, .code = rc};
                if (rc == KVC_OK)
                    r.value = strtol((const char *)ops[k].result.data, NULL, 10);
                kvc_value_free(&ops[k].result);
                r.msg = rc == KVC_OK || rc == KVC_NOT_FOUND ? "" : ops[k].err.msg;
                r.status = classify(rc, ops[k].err.msg);
                if (strcmp(r.status, "ok") != 0 && round < 7) {
                    retry[n_retry++] = idx[k];
                    continue;   /* only the last attempt's failure is recorded */
                }
                emit(&r);
            }
        }
        free(todo);
    }
    free(retry);
    kvc_close(c);
    return 0;
}

static int split_nodes(const char *s)
{
    char *dup = strdup(s), *save = NULL;
    g.n_nodes = 0;
    for (char *t = strtok_r(dup, ",", &save); t && g.n_nodes < MAX_NODES;
         t = strtok_r(NULL, ",", &save))
        g.nodes[g.n_nodes++] = strdup(t);
    free(dup);
    return g.n_nodes;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: kvj run --nodes A,B,.. --level one|quorum|linearizable --time S --out FILE\n"
            "               [--run-id ID] [--register-clients N] [--set-clients N] [--keys K]\n"
            "               [--rotate OPS] [--cas] [--timeout-ms MS] [--think-us US]\n"
            "       kvj now\n"
            "       kvj probe --nodes A --level L\n");
    return 2;
}

static int parse(int argc, char **argv)
{
    g.level = KVC_CL_QUORUM;
    g.level_name = "quorum";
    g.time_s = 10;
    g.reg_clients = 6;
    g.set_clients = 2;
    g.slots = 2;
    g.rotate = 500;
    g.timeout_ms = 1000;
    g.run_id = "jep";
    g.think_us = 2000;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--cas") == 0) {
            g.cas = true;
            continue;
        }
        if (v == NULL)
            return usage();
        i++;
        if (strcmp(a, "--nodes") == 0)
            split_nodes(v);
        else if (strcmp(a, "--level") == 0) {
            if (kvc_consistency_parse(v, &g.level) != 0) {
                fprintf(stderr, "kvj: unknown level '%s'\n", v);
                return 2;
            }
            g.level_name = v;
        } else if (strcmp(a, "--time") == 0)
            g.time_s = atof(v);
        else if (strcmp(a, "--out") == 0)
            g.out = v;
        else if (strcmp(a, "--run-id") == 0)
            g.run_id = v;
        else if (strcmp(a, "--register-clients") == 0)
            g.reg_clients = atoi(v);
        else if (strcmp(a, "--set-clients") == 0)
            g.set_clients = atoi(v);
        else if (strcmp(a, "--keys") == 0)
            g.slots = atoi(v);
        else if (strcmp(a, "--rotate") == 0)
            g.rotate = atoi(v);
        else if (strcmp(a, "--timeout-ms") == 0)
            g.timeout_ms = (uint32_t)atoi(v);
        else if (strcmp(a, "--think-us") == 0)
            g.think_us = atoi(v);
        else
            return usage();
    }
    if (g.n_nodes == 0 || g.slots < 1 || g.slots > MAX_SLOTS || g.rotate < 1 ||
        g.reg_clients + g.set_clients > MAX_CLIENTS || g.reg_clients < 0 || g.set_clients < 0)
        return usage();
    if ((g.reg_clients + g.slots - 1) / g.slots > 10)
        fprintf(stderr, "kvj: warning: more than 10 clients per register key\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "now") == 0) {
        printf("%" PRIu64 "\n", mono_ns());
        return 0;
    }
    if (parse(argc, argv) != 0)
        return 2;
    if (strcmp(argv[1], "probe") == 0) {
        struct kvc_client *c = connect_node(0);
        if (c == NULL)
            return 1;
        struct kvc_call call = {.timeout_ms = 3000, .consistency = g.level};
        struct kvc_err err = {0};
        int rc = kvc_put(c, "jepsen-probe", 12, "1", 1, &call, &err);
        kvc_close(c);
        if (rc == KVC_OK)
            return 0;
        fprintf(stderr, "kvj: probe at %s: %s %s\n", g.level_name, kvc_status_name(rc), err.msg);
        return rc == KVC_INVALID ? 3 : 1;
    }
    if (strcmp(argv[1], "run") != 0 || g.out == NULL)
        return usage();
    g_out = fopen(g.out, "w");
    if (g_out == NULL) {
        fprintf(stderr, "kvj: %s: %s\n", g.out, strerror(errno));
        return 1;
    }
    int n = g.reg_clients + g.set_clients;
    struct worker *ws = calloc((size_t)n, sizeof *ws);
    uint64_t deadline = mono_ns() + (uint64_t)(g.time_s * 1e9);
    for (int i = 0; i < n; i++) {
        ws[i].idx = i < g.reg_clients ? i : i - g.reg_clients;
        ws[i].node = i % g.n_nodes;
        ws[i].seed = (unsigned)(i * 7919 + 17);
        ws[i].is_set = i >= g.reg_clients;
        ws[i].deadline_ns = deadline;
        pthread_create(&ws[i].th, NULL, ws[i].is_set ? set_main : register_main, &ws[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(ws[i].th, NULL);
    free(ws);
    fflush(g_out);
    /* The runner heals every fault at the deadline and waits the quiet period; it tells us
     * to go on by creating FILE.final (or we go on after 30 s). */
    char flag[1024];
    snprintf(flag, sizeof flag, "%s.final", g.out);
    for (int i = 0; i < 300 && access(flag, F_OK) != 0; i++)
        usleep(100 * 1000);
    int rc = final_reads();
    fclose(g_out);
    return rc == 0 ? 0 : 1;
}
