/* tests/integration/test_corruption.c -- one byte flipped in an SST file of a stopped
 * replica (issue 12, "Integrity"): three real kvd processes, rf 3.
 *
 * Node 3 is stopped cleanly (which flushes its memtables into SST files), one byte of its
 * largest SST (the data column family's) is flipped inside the first data block, and it is
 * started again. Then every key is read at ONE through node 3 (which coordinates and asks
 * itself first), at QUORUM through node 1, and locally from node 3's own store: no read
 * ever returns a wrong value; node 3's own store answers an error for the keys of the bad
 * block and counts it; the coordinators use the other replicas and replace node 3's bad
 * copies, after which node 3's own store answers every key correctly. */
#include <check.h>
#include "tests/check_run.h"
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <kv/client.h>
#include "tests/integration/cluster_fixture.h"

enum { K = 400 };
static char keys[K][32], vals[K][256];

static void fill_keys(void)
{
    for (int i = 0; i < K; i++) {
        snprintf(keys[i], sizeof keys[i], "flip:%04d", i);
        int n = snprintf(vals[i], sizeof vals[i], "value-%04d-", i);
        memset(vals[i] + n, 'a' + i % 26, 200 - (size_t)n);   /* 200 bytes: many blocks */
        vals[i][200] = 0;
    }
}

/* Flips one byte at offset 64 of the largest .sst in dir; returns its size or -1. */
static long flip_largest_sst(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char best[512] = "";
    long best_size = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".sst") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) == 0 && sb.st_size > best_size) {
            best_size = sb.st_size;
            snprintf(best, sizeof best, "%s", path);
        }
    }
    closedir(d);
    if (best_size < 128)
        return -1;
    FILE *f = fopen(best, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 64, SEEK_SET), 0);
    int c = fgetc(f);
    ck_assert_int_ne(c, EOF);
    ck_assert_int_eq(fseek(f, 64, SEEK_SET), 0);
    fputc(c ^ 0x10, f);
    fclose(f);
    return best_size;
}

static int get_value(struct kvc_client *c, int i, enum kvc_consistency cl)
{
    struct kvc_call call = {.consistency = cl};
    struct kvc_value v;
    struct kvc_err err;
    int rc = kvc_get(c, keys[i], strlen(keys[i]), &v, &call, &err);
    if (rc == KVC_OK) {
        ck_assert_msg(v.len == strlen(vals[i]) && memcmp(v.data, vals[i], v.len) == 0,
                      "%s at %s: a wrong value (%zu bytes)", keys[i], kvc_consistency_name(cl),
                      v.len);
        kvc_value_free(&v);
    }
    return rc;
}

/* Node p's own store, every key (local reads, pipelined): the right value or CORRUPTION,
 * never anything else; returns how many were CORRUPTION. */
static int local_corrupt(const struct kvd_proc *p)
{
    static struct kvc_op ops[K];
    struct kvc_client *c = client_ta(p);
    for (int i = 0; i < K; i++)
        ops[i] = (struct kvc_op){.type = KVC_OP_GET, .key = keys[i],
                                 .key_len = strlen(keys[i]), .call = {.local = true}};
    struct kvc_err err;
    ck_assert_msg(kvc_exec(c, ops, K, &err) == KVC_OK, "local reads: %s", err.msg);
    int bad = 0;
    for (int i = 0; i < K; i++) {
        if (ops[i].err.code == KVC_OK) {
            ck_assert_msg(ops[i].result.len == strlen(vals[i]) &&
                              memcmp(ops[i].result.data, vals[i], ops[i].result.len) == 0,
                          "%s local: a wrong value", keys[i]);
            kvc_value_free(&ops[i].result);
        } else {
            ck_assert_msg(ops[i].err.code == KVC_CORRUPTION, "%s local: %s", keys[i],
                          ops[i].err.msg);
            bad++;
        }
    }
    kvc_close(c);
    return bad;
}

START_TEST(test_a_flipped_sst_byte_never_returns_a_wrong_value_and_is_repaired)
{
    fill_keys();
    start_cluster();
    struct kvc_client *c1 = client_at(&g_nodes[0]);
    for (int i = 0; i < K; i++) {
        struct kvc_call call = {.consistency = KVC_CL_ALL};
        struct kvc_err err;
        int rc = kvc_put(c1, keys[i], strlen(keys[i]), vals[i], strlen(vals[i]), &call, &err);
        ck_assert_msg(rc == KVC_OK, "put %s: %s", keys[i], err.msg);
    }
    kvc_close(c1);

    ck_assert_int_eq(kvd_stop(&g_nodes[2], SIGTERM), 0);   /* clean: flushed to SSTs */
    ck_assert_int_gt(flip_largest_sst(g_nodes[2].dir), 0);
    ck_assert_int_eq(kvd_restart(&g_nodes[2]), 0);
    wait_view(&g_nodes[0], 3, true, 10000);
    wait_view(&g_nodes[2], 1, true, 10000);
    wait_view(&g_nodes[2], 2, true, 10000);

    /* Node 3's own store: the right value or an error for each key, never a wrong one. */
    int bad = local_corrupt(&g_nodes[2]);
    ck_assert_msg(bad > 0 && bad < K, "%d of %d keys corrupt on node 3", bad, K);
    ck_assert(metric(&g_nodes[2], "kvd_store_corrupt_reads_total") >= bad);

    /* Through node 3 at ONE and through node 1 at QUORUM: always the right value. */
    struct kvc_client *c3 = client_at(&g_nodes[2]);
    c1 = client_at(&g_nodes[0]);
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(get_value(c3, i, KVC_CL_ONE), KVC_OK);
        ck_assert_int_eq(get_value(c1, i, KVC_CL_QUORUM), KVC_OK);
    }
    kvc_close(c3);
    kvc_close(c1);
    /* Node 3 asked itself for every key at ONE, so it alone counted every bad one. The
     * cluster counters reach /metrics on the stats timer (server.c), hence the wait. */
    wait_metric(&g_nodes[2], "kvd_cluster_corrupt_replies_total", bad, 1e12, 5000);

    /* The bad copies were replaced from the other replicas. */
    uint64_t t0 = now_ms();
    int left;
    do {
        left = local_corrupt(&g_nodes[2]);
        if (left)
            usleep(100 * 1000);
    } while (left && now_ms() - t0 < 5000);
    ck_assert_msg(left == 0, "%d keys still not repaired on node 3", left);
    printf("corruption: %d of %d keys in the flipped block, all answered right, all repaired\n",
           bad, K);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("corruption");
    TCase *t = tcase_create("three_nodes");
    tcase_add_checked_fixture(t, NULL, stop_all);
    tcase_set_timeout(t, 180);
    tcase_add_test(t, test_a_flipped_sst_byte_never_returns_a_wrong_value_and_is_repaired);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* No fork: the fixture must see the kvd PIDs a test started, to stop them on failure. */
    return kv_check_run(suite(), false);
}
