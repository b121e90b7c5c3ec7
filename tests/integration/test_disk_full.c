/* tests/integration/test_disk_full.c -- one real kvd on a small tmpfs, filled up by its own
 * writes (issue 12, part 4; docs/operations.md "Disk full").
 *
 * (1) Needs root to mount the tmpfs (64 MiB); exits 77 (skipped) when not root or when the
 *     mount fails. main() mounts before the suite and, on every path, stops kvd by its PID
 *     and unmounts after it (the suite runs unforked, so a failed assertion returns there).
 * (2) A 20 MiB ballast file shares the tmpfs, so freeing space is one unlink.
 * (3) Values are derived from the key index, so every acknowledged write is checked by
 *     recomputing its value; a write answered anything but OK counts as not acknowledged.
 * (4) kvd runs with write_buffer_mb = 1, so it refuses writes once less than 2 MiB would
 *     stay free (storage/store.h (5)) and the tmpfs fills in seconds.
 * (5) The cluster case puts node 3 alone on a second tmpfs and fills that with a file (space
 *     taken by someone else): node 3's refusals must reach the coordinator as errors, never
 *     as acks. */
#include <check.h>
#include "tests/check_run.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <kv/client.h>
#include "tests/integration/cluster_fixture.h"
#include "tests/integration/harness.h"

#define TMPFS_SIZE "size=64m"
#define BALLAST_MB 20
#define VALUE_LEN 16384
#define MAX_KEYS 20000               /* more than 64 MiB of values: the disk fills first */
#define WRITES_AFTER_FULL 40         /* writes tried once the first NOSPACE came back */
#define RESUME_LIMIT_S 10.0

static char g_mnt[64];               /* the tmpfs mount point ("" when not mounted) */
static char g_mnt3[64];              /* node 3's, for the cluster case */
static char g_data[128], g_ballast[128];
static struct kvd_proc g_node;
static unsigned char *g_acked;       /* g_acked[i]: "fill:i" was acknowledged */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The value of key i: xorshift bytes seeded by i, incompressible (LZ4 cannot shrink it). */
static void value_of(uint32_t i, unsigned char *v)
{
    uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);
    for (size_t k = 0; k < VALUE_LEN; k += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(v + k, &x, 8);
    }
}

static int key_of(uint32_t i, char *k, size_t n) { return snprintf(k, n, "fill:%06u", i); }

static struct kvc_client *client_for(const struct kvd_proc *p)
{
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = p->addr;
    o.timeout_ms = 5000;
    struct kvc_client *c = NULL;
    struct kvc_err err;
    ck_assert_msg(kvc_connect(&o, &c, &err) == KVC_OK, "connect: %s", err.msg);
    return c;
}

static int write_ballast(const char *path, int mb)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    static char buf[1 << 20];
    memset(buf, 0xab, sizeof buf);
    for (int i = 0; i < mb; i++)
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
            close(fd);
            return -1;
        }
    return close(fd);
}

static char *health(int *code)
{
    char *body = NULL;
    *code = kvd_http_get(&g_node, "/health", &body);
    ck_assert_msg(*code > 0 && body, "no /health answer");
    return body;
}

static double node_metric(const char *series)
{
    double v = -1;
    ck_assert_msg(kvd_metric(&g_node, series, &v) == 0, "no metric %s", series);
    return v;
}

/* `kvctl status` output (KVCTL_BIN from ctest), or NULL when the binary is not given. */
static char *kvctl_status(void)
{
    const char *bin = getenv("KVCTL_BIN");
    if (!bin || !*bin)
        return NULL;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' --nodes %s status 2>&1", bin, g_node.addr);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    static char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    pclose(f);
    return out;
}

static void verify_acked(struct kvc_client *c, uint32_t n, const char *when)
{
    static unsigned char want[VALUE_LEN];
    uint32_t checked = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!g_acked[i])
            continue;
        char k[32];
        int kl = key_of(i, k, sizeof k);
        struct kvc_value v;
        struct kvc_err err;
        int rc = kvc_get(c, k, (size_t)kl, &v, NULL, &err);
        ck_assert_msg(rc == KVC_OK, "%s: acknowledged %s lost: %s %s", when, k,
                      kvc_status_name(rc), err.msg);
        value_of(i, want);
        ck_assert_msg(v.len == VALUE_LEN && memcmp(v.data, want, VALUE_LEN) == 0,
                      "%s: %s has a wrong value", when, k);
        kvc_value_free(&v);
        checked++;
    }
    fprintf(stderr, "disk_full: %s: %u acknowledged keys verified\n", when, checked);
}

START_TEST(test_a_full_disk_refuses_writes_keeps_reads_and_resumes_without_restart)
{
    ck_assert_int_eq(write_ballast(g_ballast, BALLAST_MB), 0);
    const char *extra[] = {"--data-dir", g_data, "--write-buffer-mb", "1", NULL};
    ck_assert_int_eq(kvd_start(&g_node, extra), 0);
    pid_t pid = g_node.pid;
    int code;
    char *h0 = health(&code);
    for (int i = 0; i < 50 && code != 200; i++) {   /* the port accepts a moment before */
        free(h0);
        usleep(100 * 1000);
        h0 = health(&code);
    }
    ck_assert_msg(code == 200, "/health %d at start: %s", code, h0);
    ck_assert_msg(strstr(h0, "\"writes\":\"ok\""), "fresh node: %s", h0);
    char *gen = strstr(h0, "\"generation\":");
    ck_assert_ptr_nonnull(gen);
    unsigned long long generation = strtoull(gen + 13, NULL, 10);
    free(h0);

    struct kvc_client *c = client_for(&g_node);
    g_acked = calloc(MAX_KEYS, 1);
    static unsigned char val[VALUE_LEN];
    double t_fill = mono_s();
    uint32_t n = 0, first_full = 0, acked = 0, acked_after_full = 0, refused = 0;
    for (; n < MAX_KEYS; n++) {
        char k[32];
        int kl = key_of(n, k, sizeof k);
        value_of(n, val);
        struct kvc_err err;
        double t0 = mono_s();
        int rc = kvc_put(c, k, (size_t)kl, val, VALUE_LEN, NULL, &err);
        /* Never a hang: a refused write is answered at once, well inside the timeout. */
        ck_assert_msg(mono_s() - t0 < 5.0, "put %s took %.1f s", k, mono_s() - t0);
        if (rc == KVC_OK) {
            g_acked[n] = 1;
            acked++;
            if (refused)
                acked_after_full++;
        } else {
            ck_assert_msg(rc == KVC_NOSPACE, "put %s: %s (%s), want OK or NOSPACE", k,
                          kvc_status_name(rc), err.msg);
            ck_assert_msg(strstr(err.msg, "No space") || strstr(err.msg, "space"),
                          "NOSPACE without a reason: %s", err.msg);
            if (!refused++)
                first_full = n;
        }
        if (refused && n >= first_full + WRITES_AFTER_FULL)
            break;
    }
    double fill_s = mono_s() - t_fill;
    fprintf(stderr, "disk_full: %u acked, first NOSPACE at write %u after %.1f s, %u refused "
            "of the next %u, %u acked after the first NOSPACE\n", acked, first_full, fill_s,
            refused, WRITES_AFTER_FULL + 1, acked_after_full);
    ck_assert_msg(refused > 0, "the disk never filled after %u writes", n);
    ck_assert_uint_gt(acked, 100);

    /* Reads keep working: the first, a middle and the last acknowledged key. */
    verify_acked(c, first_full, "while full");

    /* /health stays 200 (the node serves reads) and says why writes are refused. */
    char *h = health(&code);
    ck_assert_msg(code == 200, "/health %d: %s", code, h);
    ck_assert_msg(strstr(h, "\"status\":\"degraded\"") && strstr(h, "\"writes\":\"refused\"") &&
                  strstr(h, "writes refused: disk full") && strstr(h, "\"code\":\"NOSPACE\""),
                  "/health while full: %s", h);
    fprintf(stderr, "disk_full: /health: %s", h);
    free(h);
    ck_assert(node_metric("kvd_store_writes_refused{reason=\"nospace\"}") == 1);
    ck_assert(node_metric("kvd_store_write_errors_total") >= 1);

    /* The status request (what kvctl status shows) says it too. */
    struct kvc_cluster_status cs;
    struct kvc_err err;
    ck_assert_int_eq(kvc_cluster_status(c, &cs, &err), KVC_OK);
    ck_assert_msg(strstr(cs.self_storage, "writes refused: disk full"), "status: '%s'",
                  cs.self_storage);
    kvc_cluster_status_free(&cs);
    char *out = kvctl_status();
    if (out) {
        ck_assert_msg(strstr(out, "writes refused: disk full"), "kvctl status:\n%s", out);
        fprintf(stderr, "disk_full: kvctl status:\n%s", out);
    } else {
        fprintf(stderr, "disk_full: KVCTL_BIN not set, kvctl status not run\n");
    }

    /* Free the ballast: writes come back by themselves, same process, same generation. */
    ck_assert_int_eq(unlink(g_ballast), 0);
    double t_free = mono_s(), resumed_s = -1;
    uint32_t probe = 0;
    while (mono_s() - t_free < RESUME_LIMIT_S + 5) {
        char k[32];
        int kl = snprintf(k, sizeof k, "resume:%u", probe++);
        int rc = kvc_put(c, k, (size_t)kl, "v", 1, NULL, &err);
        if (rc == KVC_OK) {
            resumed_s = mono_s() - t_free;
            break;
        }
        ck_assert_msg(rc == KVC_NOSPACE, "while recovering: %s %s", kvc_status_name(rc),
                      err.msg);
        usleep(200 * 1000);
    }
    fprintf(stderr, "disk_full: writes resumed %.1f s after freeing %d MiB\n", resumed_s,
            BALLAST_MB);
    ck_assert_msg(resumed_s >= 0 && resumed_s <= RESUME_LIMIT_S,
                  "writes did not resume within %.0f s (%.1f)", RESUME_LIMIT_S, resumed_s);
    ck_assert_int_eq(g_node.pid, pid);
    ck_assert_int_eq(kill(pid, 0), 0);

    /* More writes now succeed; they are acknowledged keys like the others. */
    uint32_t more = n + 1 + 200 < MAX_KEYS ? n + 1 + 200 : MAX_KEYS;
    for (uint32_t i = n + 1; i < more; i++) {
        char k[32];
        int kl = key_of(i, k, sizeof k);
        value_of(i, val);
        int rc = kvc_put(c, k, (size_t)kl, val, VALUE_LEN, NULL, &err);
        ck_assert_msg(rc == KVC_OK, "put %s after recovery: %s %s", k, kvc_status_name(rc),
                      err.msg);
        g_acked[i] = 1;
    }
    /* The health watcher may lag the first write by up to a second. */
    for (int i = 0; i < 30; i++) {
        h = health(&code);
        if (strstr(h, "\"writes\":\"ok\""))
            break;
        free(h);
        h = NULL;
        usleep(100 * 1000);
    }
    ck_assert_msg(h && code == 200 && strstr(h, "\"status\":\"ok\""), "/health after: %s", h);
    gen = strstr(h, "\"generation\":");
    ck_assert_ptr_nonnull(gen);
    ck_assert_msg(strtoull(gen + 13, NULL, 10) == generation, "kvd restarted: %s", h);
    free(h);
    ck_assert(node_metric("kvd_store_writes_refused{reason=\"nospace\"}") == 0);
    ck_assert(node_metric("kvd_store_write_resumes_total") >= 1);
    ck_assert_int_eq(kvc_cluster_status(c, &cs, &err), KVC_OK);
    ck_assert_str_eq(cs.self_storage, "");
    kvc_cluster_status_free(&cs);

    verify_acked(c, more, "after recovery");
    kvc_close(c);

    /* And on disk: a clean restart reads every acknowledged key back. */
    ck_assert_int_eq(kvd_stop(&g_node, SIGTERM), 0);
    ck_assert_int_eq(kvd_restart(&g_node), 0);
    c = client_for(&g_node);
    verify_acked(c, more, "after a restart");
    kvc_close(c);
}
END_TEST

/* Fills the filesystem of dir with one file until about `leave` bytes stay free. */
static void fill_leaving(const char *dir, const char *path, uint64_t leave)
{
    struct statvfs vfs;
    ck_assert_int_eq(statvfs(dir, &vfs), 0);
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    ck_assert_uint_gt(avail, leave);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    static char buf[1 << 16];
    memset(buf, 0xcd, sizeof buf);
    for (uint64_t left = avail - leave; left > 0;) {
        size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
        ssize_t w = write(fd, buf, n);
        ck_assert_msg(w > 0, "filler: %s", strerror(errno));
        left -= (uint64_t)w;
    }
    close(fd);
}

static int put_cl(const struct kvd_proc *p, const char *k, enum kvc_consistency cl,
                  struct kvc_err *err)
{
    struct kvc_client *c = client_at(p);
    struct kvc_call call = {.consistency = cl};
    int rc = kvc_put(c, k, strlen(k), k, strlen(k), &call, err);
    kvc_close(c);
    return rc;
}

START_TEST(test_a_replica_with_a_full_disk_answers_an_error_never_an_ack)
{
    char data3[128], filler[128];
    snprintf(data3, sizeof data3, "%s/db", g_mnt3);
    snprintf(filler, sizeof filler, "%s/filler", g_mnt3);
    const char *node3[] = {"--data-dir", data3, "--write-buffer-mb", "1", NULL};
    const char *const *more[] = {NULL, NULL, node3};
    start_nodes(3, more);
    struct kvd_proc *n1 = &g_nodes[0], *n3 = &g_nodes[2];
    put_at(n1, "before", "before", KVC_CL_ALL);
    ck_assert_int_eq(local_get(n3, "before", "before"), KVC_OK);

    fill_leaving(g_mnt3, filler, 1u << 20);      /* under node 3's 2 MiB reserve */
    usleep(300 * 1000);          /* node 3 trusts its last free-space answer for 100 ms */
    struct kvc_err err;
    /* ALL needs node 3's ack: the write must fail, naming node 3's full disk. Nodes 1 and 2
     * did apply it, so the coordinator may call the outcome unknown (TIMEOUT) rather than
     * "not applied" (NOSPACE); it must never call it a success. */
    int rc = put_cl(n1, "all-full", KVC_CL_ALL, &err);
    fprintf(stderr, "disk_full: cluster: put at ALL with node 3 full: %s (%s)\n",
            kvc_status_name(rc), err.msg);
    ck_assert_msg(rc == KVC_NOSPACE || rc == KVC_TIMEOUT, "put at ALL: %s (%s)",
                  kvc_status_name(rc), err.msg);
    ck_assert_msg(strstr(err.msg, "replica 3") && strstr(err.msg, "No space"),
                  "the error names node 3's full disk: %s", err.msg);
    /* QUORUM is met by nodes 1 and 2; node 3 has nothing of it. */
    ck_assert_int_eq(put_cl(n1, "quorum-full", KVC_CL_QUORUM, &err), KVC_OK);
    ck_assert_int_eq(local_get(&g_nodes[1], "quorum-full", "quorum-full"), KVC_OK);
    ck_assert_int_eq(local_get(n3, "quorum-full", NULL), KVC_NOT_FOUND);
    /* Node 3 still reads, and says why it refuses writes. */
    ck_assert_int_eq(local_get(n3, "before", "before"), KVC_OK);
    char *body = NULL;
    ck_assert_int_eq(kvd_http_get(n3, "/health", &body), 200);
    ck_assert_msg(strstr(body, "writes refused: disk full"), "node 3 /health: %s", body);
    free(body);
    ck_assert(metric(n3, "kvd_store_writes_refused{reason=\"nospace\"}") == 1);
    ck_assert(metric(n1, "kvd_store_writes_refused{reason=\"nospace\"}") == 0);

    /* Space back on node 3: ALL succeeds again, no restart. */
    pid_t pid3 = n3->pid;
    ck_assert_int_eq(unlink(filler), 0);
    uint64_t t0 = now_ms();
    while ((rc = put_cl(n1, "all-after", KVC_CL_ALL, &err)) != KVC_OK && now_ms() - t0 < 10000)
        usleep(200 * 1000);
    ck_assert_msg(rc == KVC_OK, "put at ALL after freeing: %s (%s)", kvc_status_name(rc),
                  err.msg);
    fprintf(stderr, "disk_full: cluster: ALL writes back %llu ms after freeing node 3's disk\n",
            (unsigned long long)(now_ms() - t0));
    ck_assert_int_eq(n3->pid, pid3);
    ck_assert_int_eq(local_get(n3, "all-after", "all-after"), KVC_OK);
    stop_all();
}
END_TEST

/* (1): everything main() set up goes away, whatever the test did. */
static void unmount(char *dir)
{
    if (!dir[0])
        return;
    if (umount(dir) != 0 && umount2(dir, MNT_DETACH) != 0)
        fprintf(stderr, "disk_full: could not unmount %s: %s\n", dir, strerror(errno));
    rmdir(dir);
    dir[0] = '\0';
}

static void teardown_all(void)
{
    kvd_cleanup(&g_node);
    stop_all();
    free(g_acked);
    g_acked = NULL;
    unmount(g_mnt);
    unmount(g_mnt3);
}

/* Mounts a fresh tmpfs of TMPFS_SIZE on a new temporary directory; 0 or -1 (dir ""). */
static int mount_tmpfs(char *dir)
{
    strcpy(dir, "/tmp/kvd-diskfull-XXXXXX");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "disk_full: mkdtemp: %s\n", strerror(errno));
        dir[0] = '\0';
        return -1;
    }
    if (mount("tmpfs", dir, "tmpfs", 0, TMPFS_SIZE) != 0) {
        fprintf(stderr, "disk_full: cannot mount a tmpfs: %s\n", strerror(errno));
        rmdir(dir);
        dir[0] = '\0';
        return -1;
    }
    return 0;
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "disk_full: skipped: needs root to mount a tmpfs\n");
        return 77;
    }
    if (mount_tmpfs(g_mnt) != 0 || mount_tmpfs(g_mnt3) != 0) {
        unmount(g_mnt);
        fprintf(stderr, "disk_full: skipped: no tmpfs\n");
        return 77;
    }
    snprintf(g_data, sizeof g_data, "%s/db", g_mnt);
    snprintf(g_ballast, sizeof g_ballast, "%s/ballast", g_mnt);

    Suite *s = suite_create("disk_full");
    TCase *tc = tcase_create("disk_full");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_a_full_disk_refuses_writes_keeps_reads_and_resumes_without_restart);
    tcase_add_test(tc, test_a_replica_with_a_full_disk_answers_an_error_never_an_ack);
    suite_add_tcase(s, tc);
    int rc = kv_check_run(s, false);             /* (1): failures come back to main */
    teardown_all();
    return rc;
}
