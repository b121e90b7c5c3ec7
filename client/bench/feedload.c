/* client/bench/feedload.c -- kvbench --workload feed: the feed service (client/feed) under
 * load, reported like the YCSB workloads (op types "timeline" and "post").
 *
 * Load phase: --users users each follow --follows authors drawn from a Zipf distribution
 * over the users (theta 0.99, user0 the most popular), so follower counts follow a power
 * law and a few authors pass --celebrity-threshold; then --load-posts posts by uniformly
 * chosen authors fill the timelines. Run phase: --post-fraction posts (default 10%), the
 * rest timeline reads of --timeline-limit entries, users and authors uniform.
 * (1) One thread per connection, each with its own kvc_client and struct feed, calling
 *     the feed library synchronously (a feed call is several dependent requests: the
 *     pipelined slot engine of kvbench.c does not fit it). Inside a call the library
 *     pipelines what it can (fan-out puts, celebrity scans, body gets).
 * (2) Closed loop: every thread issues its next call when the last returns. Open loop
 *     (--rate): calls are scheduled at rate/threads per thread and latency counts from
 *     the scheduled time (no coordinated omission).
 * (3) Calls completing during --warmup are not recorded; every error is counted by status. */
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <kv/client.h>
#include "client/bench/hist.h"
#include "client/bench/procstat.h"
#include "client/bench/workload.h"
#include "client/feed/feed.h"

#define MAX_STATUS 16

enum fop { F_TIMELINE, F_POST, F_FOLLOW, F_NOPS };
static const char *const fop_name[F_NOPS] = {"timeline", "post", "follow"};

struct fcfg {
    const char *nodes;
    uint64_t users, follows, load_posts;
    uint32_t threshold, limit;
    double post_fraction, duration_s, warmup_s, rate;
    unsigned conns, timeout_ms;
    enum kvc_consistency level;
    bool load, run;
    const char *json_path, *server_pids;
};

struct fstats {
    struct hist h[F_NOPS];
    uint64_t errors[F_NOPS][MAX_STATUS];
};

struct fthread {
    unsigned idx;
    const struct fcfg *c;
    struct kvc_client *cl;
    struct feed *f;
    struct fstats st;
    struct wl_rng rng;
    struct wl_zipf zipf;
    uint64_t from, to;              /* load: users [from, to) follow; posts likewise */
    uint64_t measure_from_ns, interval_ns;
    pthread_t th;
    int failed;
};

static _Atomic int g_fstop;
static _Atomic uint64_t g_fprogress;
static _Atomic uint32_t *g_followers;   /* follower count per author (load phase) */
static const char *g_body =
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore";      /* 100 bytes */

static uint64_t fnow_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void user_name(uint64_t i, char *buf, size_t n) { snprintf(buf, n, "u%llu", (unsigned long long)i); }

static void frecord(struct fthread *t, enum fop op, int code, uint64_t start, uint64_t end)
{
    atomic_fetch_add_explicit(&g_fprogress, 1, memory_order_relaxed);
    if (start < t->measure_from_ns)
        return;
    if (code == KVC_OK)
        hist_record(&t->st.h[op], end - start);
    else {
        unsigned idx = (unsigned)(-code);
        t->st.errors[op][idx < MAX_STATUS ? idx : MAX_STATUS - 1]++;
    }
}

static int do_post(struct fthread *t, uint64_t author)
{
    char a[32];
    user_name(author, a, sizeof a);
    struct feed_post_result r;
    struct kvc_err e;
    return feed_post(t->f, a, g_body, strlen(g_body), &r, &e);
}

static int do_timeline(struct fthread *t, uint64_t user)
{
    char u[32];
    user_name(user, u, sizeof u);
    struct feed_page p;
    struct kvc_err e;
    int rc = feed_timeline(t->f, u, NULL, t->c->limit, &p, &e);
    if (rc == KVC_OK)
        feed_page_free(&p);
    return rc;
}

static void *load_main(void *arg)
{
    struct fthread *t = arg;
    const struct fcfg *c = t->c;
    uint64_t *picked = calloc(c->follows ? c->follows : 1, sizeof *picked);
    for (uint64_t u = t->from; u < t->to && !t->failed; u++) {
        char un[32], an[32];
        user_name(u, un, sizeof un);
        size_t np = 0;
        for (uint64_t k = 0; k < c->follows; k++) {
            uint64_t a = wl_zipf_next(&t->zipf, &t->rng);
            bool dup = a == u;
            for (size_t j = 0; j < np && !dup; j++)
                dup = picked[j] == a;
            if (dup)
                continue;
            picked[np++] = a;
            user_name(a, an, sizeof an);
            struct kvc_err e;
            uint64_t s = fnow_ns();
            int rc = feed_follow(t->f, un, an, &e);
            frecord(t, F_FOLLOW, rc, s, fnow_ns());
            if (rc == KVC_OK)
                atomic_fetch_add_explicit(&g_followers[a], 1, memory_order_relaxed);
            else if (rc == KVC_CONN)
                t->failed = 1;
        }
    }
    free(picked);
    return NULL;
}

static void *load_posts_main(void *arg)
{
    struct fthread *t = arg;
    for (uint64_t i = t->from; i < t->to && !t->failed; i++) {
        uint64_t s = fnow_ns();
        int rc = do_post(t, wl_rng_next(&t->rng) % t->c->users);
        frecord(t, F_POST, rc, s, fnow_ns());
        if (rc == KVC_CONN)
            t->failed = 1;
    }
    return NULL;
}

static void *run_main(void *arg)
{
    struct fthread *t = arg;
    const struct fcfg *c = t->c;
    uint64_t next = fnow_ns();
    while (!atomic_load(&g_fstop)) {
        uint64_t start = fnow_ns();
        if (t->interval_ns) {
            if (next > start) {
                uint64_t d = next - start;
                struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
                nanosleep(&ts, NULL);
                if (atomic_load(&g_fstop))
                    break;
            }
            start = next;   /* a late call keeps its scheduled start */
            next += t->interval_ns;
        }
        bool is_post = wl_rng_unit(&t->rng) < c->post_fraction;
        uint64_t who = wl_rng_next(&t->rng) % c->users;
        int rc = is_post ? do_post(t, who) : do_timeline(t, who);
        frecord(t, is_post ? F_POST : F_TIMELINE, rc, start, fnow_ns());
        if (rc == KVC_CONN && !t->interval_ns) {
            t->failed = 1;
            break;
        }
    }
    return NULL;
}

static void *fprogress_main(void *arg)
{
    (void)arg;
    uint64_t last = 0;
    for (int s = 1; !atomic_load(&g_fstop); s++) {
        for (int i = 0; i < 10 && !atomic_load(&g_fstop); i++)
            usleep(100000);
        uint64_t now = atomic_load(&g_fprogress);
        fprintf(stderr, "\r[%3ds] %10.0f calls/s  total %llu   ", s, (double)(now - last),
                (unsigned long long)now);
        last = now;
    }
    fprintf(stderr, "\n");
    return NULL;
}

static json_t *freport(const struct fcfg *c, const struct fstats *st, double secs,
                       int64_t cpu, const char *phase)
{
    uint64_t total = 0, errs = 0;
    json_t *ops = json_object();
    printf("\n%s: workload feed, %llu users, %u connection(s)%s, %.1f s\n", phase,
           (unsigned long long)c->users, c->conns, c->rate > 0 ? " (open loop)" : "", secs);
    printf("%-9s %10s %11s %9s %9s %9s %9s %9s\n", "op", "count", "ops/s", "p50 us", "p90 us",
           "p99 us", "p99.9 us", "max us");
    for (int op = 0; op < F_NOPS; op++) {
        const struct hist *h = &st->h[op];
        json_t *errors = json_object();
        uint64_t nerr = 0;
        for (int s = 0; s < MAX_STATUS; s++)
            if (st->errors[op][s]) {
                json_object_set_new(errors, kvc_status_name(-s),
                                    json_integer((json_int_t)st->errors[op][s]));
                nerr += st->errors[op][s];
            }
        errs += nerr;
        if (!h->n && !nerr) {
            json_decref(errors);
            continue;
        }
        total += h->n;
        printf("%-9s %10llu %11.0f %9.1f %9.1f %9.1f %9.1f %9.1f\n", fop_name[op],
               (unsigned long long)h->n, (double)h->n / secs, hist_quantile(h, 0.5) / 1e3,
               hist_quantile(h, 0.9) / 1e3, hist_quantile(h, 0.99) / 1e3,
               hist_quantile(h, 0.999) / 1e3, h->max / 1e3);
        json_object_set_new(ops, fop_name[op],
                            json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:o}", "count",
                                      (json_int_t)h->n, "ops_per_s", (double)h->n / secs,
                                      "p50_us", hist_quantile(h, 0.5) / 1e3, "p90_us",
                                      hist_quantile(h, 0.9) / 1e3, "p99_us",
                                      hist_quantile(h, 0.99) / 1e3, "p999_us",
                                      hist_quantile(h, 0.999) / 1e3, "max_us", h->max / 1e3,
                                      "errors", errors));
    }
    printf("total     %10llu %11.0f   errors %llu\n", (unsigned long long)total,
           (double)total / secs, (unsigned long long)errs);
    for (int op = 0; op < F_NOPS; op++)
        for (int s = 0; s < MAX_STATUS; s++)
            if (st->errors[op][s])
                printf("  %s %s: %llu\n", fop_name[op], kvc_status_name(-s),
                       (unsigned long long)st->errors[op][s]);
    double tck = (double)sysconf(_SC_CLK_TCK);
    if (cpu >= 0 && total)
        printf("server CPU: %.2f s, %.2f us per operation\n", (double)cpu / tck,
               (double)cpu / tck * 1e6 / (double)total);
    json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:f,s:f,s:I,s:f,s:o}", "phase", phase,
                          "workload", "feed", "users", (json_int_t)c->users, "connections",
                          (json_int_t)c->conns, "pipeline", (json_int_t)1, "rate", c->rate,
                          "seconds", secs, "operations", (json_int_t)total, "ops_per_s",
                          (double)total / secs, "ops", ops);
    if (cpu >= 0 && total)
        json_object_set_new(j, "server_cpu_us_per_op",
                            json_real((double)cpu / tck * 1e6 / (double)total));
    return j;
}

/* Runs fn on every thread (load ranges split evenly over n items); 0, or 1 when a
 * connection failed. */
static int phase(const struct fcfg *c, struct fthread *ts, void *(*fn)(void *), uint64_t n,
                 bool timed, const char *name, json_t *out)
{
    uint64_t start = fnow_ns();
    atomic_store(&g_fstop, 0);
    atomic_store(&g_fprogress, 0);
    for (unsigned i = 0; i < c->conns; i++) {
        struct fthread *t = &ts[i];
        memset(&t->st, 0, sizeof t->st);
        for (int op = 0; op < F_NOPS; op++)
            hist_init(&t->st.h[op]);
        t->from = n * i / c->conns;
        t->to = n * (i + 1) / c->conns;
        t->measure_from_ns = timed ? start + (uint64_t)(c->warmup_s * 1e9) : 0;
        t->interval_ns = timed && c->rate > 0 ? (uint64_t)(1e9 * c->conns / c->rate) : 0;
    }
    int64_t cpu0 = bench_servers_cpu(c->server_pids);
    pthread_t prog;
    pthread_create(&prog, NULL, fprogress_main, NULL);
    for (unsigned i = 0; i < c->conns; i++)
        pthread_create(&ts[i].th, NULL, fn, &ts[i]);
    if (timed) {
        uint64_t end = start + (uint64_t)(c->duration_s * 1e9);
        while (fnow_ns() < end)
            usleep(20000);
        atomic_store(&g_fstop, 1);
    }
    int rc = 0;
    for (unsigned i = 0; i < c->conns; i++) {
        pthread_join(ts[i].th, NULL);
        rc |= ts[i].failed;
    }
    atomic_store(&g_fstop, 1);
    pthread_join(prog, NULL);
    int64_t cpu1 = bench_servers_cpu(c->server_pids);
    double secs = (double)(fnow_ns() - start) / 1e9 - (timed ? c->warmup_s : 0);
    if (secs <= 0)
        secs = 1e-9;
    struct fstats *all = calloc(1, sizeof *all);
    for (int op = 0; op < F_NOPS; op++)
        hist_init(&all->h[op]);
    for (unsigned i = 0; i < c->conns; i++)
        for (int op = 0; op < F_NOPS; op++) {
            hist_merge(&all->h[op], &ts[i].st.h[op]);
            for (int s = 0; s < MAX_STATUS; s++)
                all->errors[op][s] += ts[i].st.errors[op][s];
        }
    json_t *j = freport(c, all, secs, cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1, name);
    if (out)
        json_array_append_new(out, j);
    else
        json_decref(j);
    free(all);
    return rc;
}

static void fusage(FILE *out)
{
    fprintf(out,
            "usage: kvbench --workload feed [options]\n"
            "  -n, --nodes H:P,...          servers (default $KVD_NODES or 127.0.0.1:7379)\n"
            "      --users N                users (default 10000)\n"
            "      --follows K              authors each user follows, Zipf (default 10)\n"
            "      --load-posts N           posts made in the load phase (default 2*users)\n"
            "      --celebrity-threshold T  more followers: fan-out on read (default 1000)\n"
            "      --post-fraction F        share of posts in the run (default 0.1)\n"
            "      --timeline-limit L       entries per timeline read (default 20)\n"
            "  -d, --duration S             seconds to run (default 10)\n"
            "      --warmup S               seconds not recorded (default 1)\n"
            "  -c, --connections C          connections, one thread each (default 16)\n"
            "  -r, --rate R                 open loop: R calls/s in total\n"
            "      --consistency L          default quorum\n"
            "      --timeout MS             per-request timeout (default 5000)\n"
            "      --load-only | --no-load  only the load phase | skip it\n"
            "      --json FILE              also write the results as JSON (- for stdout)\n"
            "      --server-pids P,..       report these processes' CPU time per operation\n");
}

static int fparse(int argc, char **argv, struct fcfg *c)
{
    static const struct option opts[] = {
        {"nodes", 1, 0, 'n'}, {"workload", 1, 0, 'w'}, {"users", 1, 0, 'U'},
        {"follows", 1, 0, 'F'}, {"load-posts", 1, 0, 'Q'}, {"celebrity-threshold", 1, 0, 'H'},
        {"post-fraction", 1, 0, 'X'}, {"timeline-limit", 1, 0, 'L'}, {"duration", 1, 0, 'd'},
        {"warmup", 1, 0, 'W'}, {"connections", 1, 0, 'c'}, {"threads", 1, 0, 't'},
        {"rate", 1, 0, 'r'}, {"consistency", 1, 0, 'C'}, {"timeout", 1, 0, 'T'},
        {"load-only", 0, 0, 'l'}, {"no-load", 0, 0, 'N'}, {"json", 1, 0, 'j'},
        {"server-pids", 1, 0, 'P'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *c = (struct fcfg){.nodes = getenv("KVD_NODES") ? getenv("KVD_NODES") : "127.0.0.1:7379",
                       .users = 10000, .follows = 10, .threshold = 1000, .limit = 20,
                       .post_fraction = 0.1, .duration_s = 10, .warmup_s = 1, .conns = 16,
                       .timeout_ms = 5000, .level = KVC_CL_QUORUM, .load = true, .run = true};
    bool posts_set = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "n:w:d:c:t:r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': c->nodes = optarg; break;
        case 'w': break;   /* "feed": how we got here */
        case 'U': c->users = strtoull(optarg, NULL, 10); break;
        case 'F': c->follows = strtoull(optarg, NULL, 10); break;
        case 'Q': c->load_posts = strtoull(optarg, NULL, 10); posts_set = true; break;
        case 'H': c->threshold = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'X': c->post_fraction = atof(optarg); break;
        case 'L': c->limit = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'd': c->duration_s = atof(optarg); break;
        case 'W': c->warmup_s = atof(optarg); break;
        case 'c':
        case 't': c->conns = (unsigned)atoi(optarg); break;
        case 'r': c->rate = atof(optarg); break;
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
        case 'h': fusage(stdout); exit(0);
        default: fusage(stderr); return 2;
        }
    }
    if (!posts_set)
        c->load_posts = c->users * 2;
    if (optind < argc || c->users < 2 || !c->conns || !c->threshold || !c->limit ||
        c->limit > FEED_MAX_LIMIT || c->post_fraction < 0 || c->post_fraction > 1) {
        fusage(stderr);
        return 2;
    }
    return 0;
}

int kvbench_feed_main(int argc, char **argv)
{
    struct fcfg c;
    int rc = fparse(argc, argv, &c);
    if (rc)
        return rc;
    struct fthread *ts = calloc(c.conns, sizeof *ts);
    struct wl_zipf zipf;
    wl_zipf_init(&zipf, c.users);   /* the zeta sum once, copied to every thread */
    for (unsigned i = 0; i < c.conns && !rc; i++) {
        struct fthread *t = &ts[i];
        t->idx = i;
        t->c = &c;
        t->zipf = zipf;
        wl_rng_seed(&t->rng, 7000 + i);
        struct kvc_opts o;
        kvc_opts_default(&o);
        o.addrs = c.nodes;
        o.timeout_ms = c.timeout_ms;
        struct kvc_err e;
        struct feed_opts fo;
        feed_opts_default(&fo);
        fo.celebrity_threshold = c.threshold;
        fo.level = c.level;
        if (kvc_connect(&o, &t->cl, &e) != KVC_OK || feed_new(t->cl, &fo, &t->f, &e) != KVC_OK) {
            fprintf(stderr, "kvbench: cannot connect to %s: %s\n", c.nodes, e.msg);
            rc = 1;
        }
    }
    json_t *results = c.json_path ? json_array() : NULL;
    if (!rc && c.load) {
        g_followers = calloc(c.users, sizeof *g_followers);
        rc |= phase(&c, ts, load_main, c.users, false, "load (follows)", results);
        uint64_t celebs = 0, top = 0;
        for (uint64_t a = 0; a < c.users; a++) {
            celebs += g_followers[a] > c.threshold;
            if (g_followers[a] > top)
                top = g_followers[a];
        }
        printf("follow graph: %llu users, %llu authors above the celebrity threshold %u, "
               "the most followed has %llu followers\n",
               (unsigned long long)c.users, (unsigned long long)celebs, c.threshold,
               (unsigned long long)top);
        free((void *)g_followers);
        if (!rc && c.load_posts)
            rc |= phase(&c, ts, load_posts_main, c.load_posts, false, "load (posts)", results);
    }
    if (!rc && c.run)
        rc |= phase(&c, ts, run_main, 0, true, "run", results);
    if (results) {
        if (strcmp(c.json_path, "-") == 0)
            json_dumpf(results, stdout, JSON_INDENT(2));
        else if (json_dump_file(results, c.json_path, JSON_INDENT(2)) != 0)
            fprintf(stderr, "kvbench: cannot write %s\n", c.json_path);
        json_decref(results);
    }
    for (unsigned i = 0; i < c.conns; i++) {
        feed_free(ts[i].f);
        kvc_close(ts[i].cl);
    }
    free(ts);
    return rc ? 3 : 0;
}
