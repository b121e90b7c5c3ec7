/* tests/integration/test_cluster_scale.c -- real kvd clusters at scale: five nodes and key
 * placement, a 100k-key scan across a kill -9 and restart, skewed clocks converging. The
 * fixture and its conventions: cluster_fixture.h. */
#include <check.h>
#include "tests/check_run.h"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <kv/client.h>
#include "tests/integration/cluster_fixture.h"

/* --- five nodes: placement ----------------------------------------------------------- */

/* The replicas the ring names for key: the ids of the one range (start, end] holding it. */
static size_t replicas_of(const struct kvc_cluster_status *st, const char *key, uint32_t *out)
{
    size_t klen = strlen(key), found = 0, n = 0;
    for (size_t i = 0; i < st->n_ranges; i++) {
        const struct kvc_range_info *r = &st->ranges[i];
        size_t sl = r->start.len, el = r->end.len;
        int cs = sl ? memcmp(key, r->start.data, klen < sl ? klen : sl) : 1;
        if (sl && cs == 0)
            cs = klen > sl ? 1 : klen < sl ? -1 : 0;
        int ce = el ? memcmp(key, r->end.data, klen < el ? klen : el) : -1;
        if (el && ce == 0)
            ce = klen > el ? 1 : klen < el ? -1 : 0;
        if (cs > 0 && ce <= 0) {
            found++;
            n = r->n_replicas;
            for (size_t j = 0; j < n && j < 8; j++)
                out[j] = r->replicas[j];
        }
    }
    ck_assert_msg(found == 1, "key %s is in %zu ranges", key, found);
    return n;
}

START_TEST(test_five_nodes_rf3_every_key_is_readable_everywhere_and_on_exactly_its_replicas)
{
    uint64_t t0 = now_ms();
    enum { N = 5, K = 200 };
    /* Tokens from the key space (docs/cluster.md): k:010, k:020 ... k:200 owned round-robin
     * by nodes 2, 3, 4, 5, 1, 2 ..., so the 200 keys k:000..k:199 spread over 20 ranges. */
    static char toks[N][128];
    static const char *more[N][3];
    static const char *const *mp[N];
    for (int i = 0; i < N; i++) {
        toks[i][0] = '\0';
        for (int j = 1; j <= 20; j++)
            if (j % N + 1 == i + 1)
                snprintf(toks[i] + strlen(toks[i]), sizeof toks[i] - strlen(toks[i]), "%sk:%03d",
                         toks[i][0] ? "," : "", j * 10);
        more[i][0] = "--tokens";
        more[i][1] = toks[i];
        more[i][2] = NULL;
        mp[i] = more[i];
    }
    start_nodes(N, mp);

    static char keys[K][32], vals[K][32];
    static struct kvc_op ops[K];
    for (int i = 0; i < K; i++) {
        snprintf(keys[i], sizeof keys[i], "k:%03d", i);
        snprintf(vals[i], sizeof vals[i], "value-%03d", i);
        ops[i] = (struct kvc_op){.type = KVC_OP_PUT, .key = keys[i], .key_len = strlen(keys[i]),
                                 .value = vals[i], .value_len = strlen(vals[i]),
                                 .call = {.consistency = KVC_CL_QUORUM}};
    }
    struct kvc_client *c = client_at(&g_nodes[0]);
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, ops, K, &err), KVC_OK);
    for (int i = 0; i < K; i++)
        ck_assert_msg(ops[i].err.code == KVC_OK, "put %s: %s", keys[i], ops[i].err.msg);
    kvc_close(c);

    /* Readable at QUORUM from every coordinator. */
    for (int n = 0; n < N; n++) {
        c = client_at(&g_nodes[n]);
        for (int i = 0; i < K; i++)
            ops[i] = (struct kvc_op){.type = KVC_OP_GET, .key = keys[i],
                                     .key_len = strlen(keys[i]),
                                     .call = {.consistency = KVC_CL_QUORUM}};
        ck_assert_int_eq(kvc_exec(c, ops, K, &err), KVC_OK);
        for (int i = 0; i < K; i++) {
            ck_assert_msg(ops[i].err.code == KVC_OK, "get %s via node %d: %s", keys[i], n + 1,
                          ops[i].err.msg);
            ck_assert_str_eq((char *)ops[i].result.data, vals[i]);
            kvc_value_free(&ops[i].result);
        }
        kvc_close(c);
    }

    /* The ring, as node 3 reports it, names 3 distinct replicas per key. */
    c = client_at(&g_nodes[2]);
    struct kvc_cluster_status st;
    ck_assert_int_eq(kvc_cluster_status(c, &st, &err), KVC_OK);
    kvc_close(c);
    ck_assert_uint_eq(st.replication_factor, 3);
    static uint32_t reps[K][8];
    for (int i = 0; i < K; i++) {
        ck_assert_uint_eq(replicas_of(&st, keys[i], reps[i]), 3);
        ck_assert(reps[i][0] != reps[i][1] && reps[i][1] != reps[i][2] &&
                  reps[i][0] != reps[i][2]);
    }
    kvc_cluster_status_free(&st);

    /* Local reads on every node: present (same value and version) on the 3 named, absent
     * on the other 2. A QUORUM write acks at 2 copies; the third lands a moment later, so
     * the check retries briefly until every named replica has it. */
    static struct kvc_op loc[N][K];
    int per_node[N] = {0};
    uint64_t t_place = now_ms();
    for (;;) {
        for (int n = 0; n < N; n++)
            local_reads(&g_nodes[n], keys, K, loc[n]);
        int missing = 0;
        for (int i = 0; i < K; i++)
            for (int r = 0; r < 3; r++)
                missing += loc[reps[i][r] - 1][i].err.code != KVC_OK;
        if (!missing || now_ms() - t_place > 3000)
            break;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < K; i++)
                kvc_value_free(&loc[n][i].result);
        usleep(100 * 1000);
    }
    for (int i = 0; i < K; i++) {
        const struct kvc_value *first = NULL;
        for (int n = 0; n < N; n++) {
            uint32_t id = (uint32_t)n + 1;
            bool named = id == reps[i][0] || id == reps[i][1] || id == reps[i][2];
            const struct kvc_op *o = &loc[n][i];
            ck_assert_msg(o->err.code == (named ? KVC_OK : KVC_NOT_FOUND),
                          "%s on node %u: %s, but the ring names [%u,%u,%u]", keys[i], id,
                          kvc_status_name(o->err.code), reps[i][0], reps[i][1], reps[i][2]);
            if (!named)
                continue;
            per_node[n]++;
            ck_assert_str_eq((char *)o->result.data, vals[i]);
            if (!first)
                first = &o->result;
            ck_assert_msg(o->result.version == first->version &&
                          o->result.version_node == first->version_node,
                          "%s: replicas disagree on the version", keys[i]);
        }
    }
    for (int n = 0; n < N; n++)
        for (int i = 0; i < K; i++)
            kvc_value_free(&loc[n][i].result);
    /* A clean exit (0) of every node: under the sanitizers, local reads leaked nothing. */
    for (int n = 0; n < N; n++)
        ck_assert_int_eq(kvd_stop(&g_nodes[n], SIGTERM), 0);
    fprintf(stderr, "five-node test: %d keys, copies per node %d/%d/%d/%d/%d (sum %d = 3 x %d), "
            "%llu ms\n", K, per_node[0], per_node[1], per_node[2], per_node[3], per_node[4],
            per_node[0] + per_node[1] + per_node[2] + per_node[3] + per_node[4], K,
            (unsigned long long)(now_ms() - t0));
}
END_TEST

/* --- a long scan across a kill -9 and restart ------------------------------------------ */

START_TEST(test_a_scan_of_100k_keys_returns_each_once_in_order_across_a_kill_9_and_restart)
{
    uint64_t t0 = now_ms();
    start_cluster();
    struct kvd_proc *n1 = &g_nodes[0], *n3 = &g_nodes[2];
    enum { K = 100000, PAGE = 1000, BATCH = 5000, KILL_AT = 20, RESTART_AT = 50 };
    static struct kvc_op ops[BATCH];
    static char kb[BATCH][16];
    /* Load pipelined at QUORUM (every key on at least 2 of the 3 nodes, so a QUORUM scan
     * with any one node missing still sees it), through a token-aware client. */
    struct kvc_client *c = client_ta(n1);
    struct kvc_err err;
    for (int b = 0; b < K / BATCH; b++) {
        for (int i = 0; i < BATCH; i++) {
            snprintf(kb[i], sizeof kb[i], "s:%06d", b * BATCH + i);
            ops[i] = (struct kvc_op){.type = KVC_OP_PUT, .key = kb[i], .key_len = 8,
                                     .value = kb[i], .value_len = 8,
                                     .call = {.consistency = KVC_CL_QUORUM}};
        }
        ck_assert_int_eq(kvc_exec(c, ops, BATCH, &err), KVC_OK);
        for (int i = 0; i < BATCH; i++)
            ck_assert_msg(ops[i].err.code == KVC_OK, "put %s: %s", kb[i], ops[i].err.msg);
    }
    kvc_close(c);
    uint64_t t_load = now_ms() - t0;

    /* Scan at QUORUM through node 1 (which stays up), 1000 keys a page; node 3 is killed
     * after page 20 and restarted (same data, address and seed) after page 50. */
    c = client_at(n1);
    struct kvc_call q = {.consistency = KVC_CL_QUORUM};
    uint8_t cursor[64];
    size_t cursor_len = 0;
    int next = 0, pages = 0, pages_down = 0;
    uint64_t t_scan = now_ms(), t_killed = 0, t_restarted = 0;
    bool down = false;
    for (;;) {
        struct kvc_scan_args a = {.start = "s:", .start_len = 2, .end = "s;", .end_len = 2,
                                  .limit = PAGE, .cursor = cursor_len ? cursor : NULL,
                                  .cursor_len = cursor_len};
        struct kvc_scan_result r;
        int rc = kvc_scan(c, &a, &q, &r, &err);
        ck_assert_msg(rc == KVC_OK, "page %d (after %d keys, node 3 %s): %s", pages + 1, next,
                      down ? "down" : "up", err.msg);
        pages++;
        pages_down += down;
        ck_assert_uint_le(r.n, PAGE);
        for (size_t i = 0; i < r.n; i++) {
            char want[16];
            snprintf(want, sizeof want, "s:%06d", next);
            ck_assert_msg(r.items[i].key_len == 8 && memcmp(r.items[i].key, want, 8) == 0,
                          "page %d item %zu: '%.*s', want %s (each key once, in order)", pages,
                          i, (int)r.items[i].key_len, (char *)r.items[i].key, want);
            ck_assert_msg(r.items[i].value_len == 8 && memcmp(r.items[i].value, want, 8) == 0,
                          "value of %s", want);
            next++;
        }
        cursor_len = r.cursor_len;
        if (r.cursor) {
            ck_assert_uint_le(r.cursor_len, sizeof cursor);
            memcpy(cursor, r.cursor, r.cursor_len);
        }
        kvc_scan_result_free(&r);
        if (!cursor_len)
            break;
        if (pages == KILL_AT) {
            ck_assert_int_eq(kvd_stop(n3, SIGKILL), 128 + SIGKILL);
            t_killed = now_ms();
            down = true;
        } else if (pages == RESTART_AT) {
            ck_assert_int_eq(kvd_restart(n3), 0);
            t_restarted = now_ms();
            down = false;
        }
        ck_assert_int_lt(pages, 2 * K / PAGE);
    }
    kvc_close(c);
    ck_assert_int_eq(next, K);
    ck_assert_int_ge(pages, K / PAGE);
    ck_assert_msg(t_killed && t_restarted, "the restart happened in the middle of the scan");
    fprintf(stderr, "100k scan test: load %llu ms; %d keys in %d pages (%d while node 3 was "
            "down, %llu ms) in %llu ms; total %llu ms\n", (unsigned long long)t_load, next,
            pages, pages_down, (unsigned long long)(t_restarted - t_killed),
            (unsigned long long)(now_ms() - t_scan), (unsigned long long)(now_ms() - t0));
}
END_TEST

/* --- clock skew ------------------------------------------------------------------------- */

enum { SKEW_KEYS = 50, SKEW_ROUNDS = 8 };

struct skew_write {
    uint64_t call_ns, ret_ns;
    int code;
};

struct skew_writer {
    const struct kvd_proc *p;
    char name;                          /* 'A' or 'B': the values are "A3:17" ... */
    struct skew_write w[SKEW_ROUNDS][SKEW_KEYS];
    char fail[400];                     /* set when the thread could not run */
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One writer thread: every key, every round, at QUORUM through its own coordinator. No
 * ck_assert here (not thread-safe): problems go to fail. */
static void *skew_writer_main(void *arg)
{
    struct skew_writer *sw = arg;
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = sw->p->addr;
    o.token_aware = false;
    o.timeout_ms = 3000;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    if (kvc_connect(&o, &c, &err) != KVC_OK) {
        snprintf(sw->fail, sizeof sw->fail, "connect %s: %s", sw->p->addr, err.msg);
        return NULL;
    }
    struct kvc_call q = {.consistency = KVC_CL_QUORUM};
    for (int r = 0; r < SKEW_ROUNDS; r++)
        for (int k = 0; k < SKEW_KEYS; k++) {
            char key[16], val[16];
            snprintf(key, sizeof key, "clk:%02d", k);
            snprintf(val, sizeof val, "%c%d:%02d", sw->name, r, k);
            struct skew_write *w = &sw->w[r][k];
            w->call_ns = mono_ns();
            w->code = kvc_put(c, key, strlen(key), val, strlen(val), &q, &err);
            w->ret_ns = mono_ns();
        }
    kvc_close(c);
    return NULL;
}

START_TEST(test_skewed_clocks_still_converge_to_one_value_per_key_and_lost_writes_are_counted)
{
    uint64_t t0 = now_ms();
    /* Node 2 runs 3 s ahead, node 3 3 s behind; node 1 is on time. */
    static const char *const ahead[] = {"--debug", "true", "--debug-clock-offset-ms", "3000",
                                        NULL};
    static const char *const behind[] = {"--debug", "true", "--debug-clock-offset-ms", "-3000",
                                         NULL};
    static const char *const *const more[N_NODES] = {NULL, ahead, behind};
    start_nodes(N_NODES, more);
    struct kvd_proc *n1 = &g_nodes[0];

    static struct skew_writer wa, wb;
    memset(&wa, 0, sizeof wa);
    memset(&wb, 0, sizeof wb);
    wa.p = &g_nodes[1];
    wa.name = 'A';
    wb.p = &g_nodes[2];
    wb.name = 'B';
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, skew_writer_main, &wa), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, skew_writer_main, &wb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_msg(!wa.fail[0] && !wb.fail[0], "writers: %s %s", wa.fail, wb.fail);
    uint64_t t_writes = now_ms() - t0;

    /* A QUORUM read of every key through node 1 (blocking read repair of the answerers
     * it compared), then local reads on every node until all three agree. */
    double repairs0 = metric(n1, "kvd_cluster_read_repairs_total");
    static char keys[SKEW_KEYS][32];
    static struct kvc_op qr[SKEW_KEYS];
    for (int k = 0; k < SKEW_KEYS; k++) {
        snprintf(keys[k], sizeof keys[k], "clk:%02d", k);
        qr[k] = (struct kvc_op){.type = KVC_OP_GET, .key = keys[k], .key_len = strlen(keys[k]),
                                .call = {.consistency = KVC_CL_QUORUM}};
    }
    struct kvc_client *c = client_at(n1);
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, qr, SKEW_KEYS, &err), KVC_OK);
    kvc_close(c);
    for (int k = 0; k < SKEW_KEYS; k++)
        ck_assert_msg(qr[k].err.code == KVC_OK, "QUORUM read %s: %s", keys[k], qr[k].err.msg);

    static struct kvc_op loc[N_NODES][SKEW_KEYS];
    uint64_t t_conv = now_ms();
    int differ;
    for (;;) {
        differ = 0;
        for (int n = 0; n < N_NODES; n++)
            local_reads(&g_nodes[n], keys, SKEW_KEYS, loc[n]);
        for (int k = 0; k < SKEW_KEYS; k++)
            for (int n = 1; n < N_NODES; n++) {
                const struct kvc_op *a = &loc[0][k], *b = &loc[n][k];
                differ += a->err.code != KVC_OK || b->err.code != KVC_OK ||
                          a->result.version != b->result.version ||
                          a->result.version_node != b->result.version_node ||
                          strcmp((char *)a->result.data, (char *)b->result.data) != 0;
            }
        if (!differ || now_ms() - t_conv > 5000)
            break;
        for (int n = 0; n < N_NODES; n++)
            for (int k = 0; k < SKEW_KEYS; k++)
                kvc_value_free(&loc[n][k].result);
        usleep(100 * 1000);
    }
    uint64_t conv_ms = now_ms() - t_conv;
    ck_assert_msg(!differ, "%d (key, replica) pairs still differ %llu ms after the writes",
                  differ, (unsigned long long)conv_ms);

    /* Lost to skew: an acknowledged write that started after the surviving write had been
     * acknowledged, yet was overwritten by it (the survivor had the higher clock). */
    int acked = 0, lost = 0, lost_a = 0, lost_b = 0, won_a = 0, won_b = 0, unknown = 0;
    for (int k = 0; k < SKEW_KEYS; k++) {
        const char *v = (char *)loc[0][k].result.data;
        ck_assert_str_eq((char *)qr[k].result.data, v);   /* the read saw the survivor */
        ck_assert_uint_eq(qr[k].result.version, loc[0][k].result.version);
        char who;
        int round, key;
        ck_assert_msg(sscanf(v, "%c%d:%d", &who, &round, &key) == 3 && key == k &&
                      (who == 'A' || who == 'B') && round >= 0 && round < SKEW_ROUNDS,
                      "unexpected value '%s' for %s", v, keys[k]);
        const struct skew_write *win = who == 'A' ? &wa.w[round][k] : &wb.w[round][k];
        who == 'A' ? won_a++ : won_b++;
        for (int r = 0; r < SKEW_ROUNDS; r++)
            for (int side = 0; side < 2; side++) {
                const struct skew_write *w = side ? &wb.w[r][k] : &wa.w[r][k];
                if (w->code != KVC_OK) {
                    unknown++;
                    continue;
                }
                acked++;
                if (win->code == KVC_OK && w->call_ns > win->ret_ns) {
                    lost++;
                    side ? lost_b++ : lost_a++;
                }
            }
        kvc_value_free(&qr[k].result);
    }
    for (int n = 0; n < N_NODES; n++)
        for (int k = 0; k < SKEW_KEYS; k++)
            kvc_value_free(&loc[n][k].result);
    double repairs = metric(n1, "kvd_cluster_read_repairs_total") - repairs0;
    for (int n = 0; n < N_NODES; n++)
        ck_assert_int_eq(kvd_stop(&g_nodes[n], SIGTERM), 0);
    /* TESTING.md lesson 1: measured and reported, never asserted to be 0. */
    fprintf(stderr, "clock skew test (node 2 +3000 ms, node 3 -3000 ms): %d writes acked at "
            "QUORUM, %d not acked; %d acked writes LOST TO SKEW (%d via node 2, %d via node 3: "
            "started after the surviving write was acked, overwritten by its higher clock); "
            "survivors: %d from node 2, %d from node 3; replicas agreed %llu ms after a QUORUM "
            "read of every key (%.0f read repairs); writes %llu ms, total %llu ms\n",
            acked, unknown, lost, lost_a, lost_b, won_a, won_b, (unsigned long long)conv_ms,
            repairs, (unsigned long long)t_writes, (unsigned long long)(now_ms() - t0));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cluster_scale");
    TCase *t = tcase_create("three_nodes");
    tcase_add_checked_fixture(t, NULL, stop_all);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_a_scan_of_100k_keys_returns_each_once_in_order_across_a_kill_9_and_restart);
    tcase_add_test(t, test_skewed_clocks_still_converge_to_one_value_per_key_and_lost_writes_are_counted);
    suite_add_tcase(s, t);
    TCase *t5 = tcase_create("five_nodes");
    tcase_add_checked_fixture(t5, NULL, stop_all);
    tcase_set_timeout(t5, 120);
    tcase_add_test(t5, test_five_nodes_rf3_every_key_is_readable_everywhere_and_on_exactly_its_replicas);
    suite_add_tcase(s, t5);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* No fork: the fixture must see the kvd PIDs a test started, to stop them on failure. */
    return kv_check_run(suite(), false);
}
