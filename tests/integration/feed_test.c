/* tests/integration/feed_test.c -- the feed library (client/feed/feed.h) and feedctl
 * against real kvd processes: one node, and a 3-node RF=3 cluster at QUORUM.
 *
 * (1) Every kvd is stopped by PID in the fixture, even when a check fails (no fork).
 * (2) feedctl comes from FEEDCTL_BIN (set by ctest); its checks are skipped, saying so,
 *     when it is not set. */
#include <check.h>
#include "tests/check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <kv/client.h>
#include "client/feed/feed.h"
#include "tests/integration/harness.h"

#define N_NODES 3
static struct kvd_proc g_nodes[N_NODES];
static int g_n;

static void stop_nodes(void)
{
    for (int i = 0; i < g_n; i++)
        kvd_cleanup(&g_nodes[i]);
    g_n = 0;
}

static void start_single(void)
{
    const char *extra[] = {"--sync", "none", NULL};
    ck_assert_int_eq(kvd_start(&g_nodes[0], extra), 0);
    g_n = 1;
}

struct env {
    struct kvc_client *c;
    struct feed *f;
};

/* A client and a feed over it; threshold 0 keeps the default. The cel/ list is read for
 * every timeline so a new celebrity shows at once. */
static struct env open_feed(const char *addrs, uint32_t threshold)
{
    struct env e;
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = addrs;
    struct kvc_err err;
    int rc = kvc_connect(&o, &e.c, &err);
    ck_assert_msg(rc == KVC_OK, "connect %s: %s", addrs, err.msg);
    struct feed_opts fo;
    feed_opts_default(&fo);
    fo.celebrity_threshold = threshold;
    fo.celeb_refresh_ms = -1;
    ck_assert_int_eq(feed_new(e.c, &fo, &e.f, &err), KVC_OK);
    return e;
}

static void close_feed(struct env *e)
{
    feed_free(e->f);
    kvc_close(e->c);
}

static void follow(struct feed *f, const char *u, const char *a)
{
    struct kvc_err err;
    int rc = feed_follow(f, u, a, &err);
    ck_assert_msg(rc == KVC_OK, "%s follows %s: %s", u, a, err.msg);
}

static void post(struct feed *f, const char *a, const char *body, struct feed_post_result *r)
{
    struct feed_post_result tmp;
    struct kvc_err err;
    int rc = feed_post(f, a, body, strlen(body), r ? r : &tmp, &err);
    ck_assert_msg(rc == KVC_OK, "post by %s: %s", a, err.msg);
}

static void timeline(struct feed *f, const char *u, const char *cursor, uint32_t limit,
                     struct feed_page *p)
{
    struct kvc_err err;
    int rc = feed_timeline(f, u, cursor, limit, p, &err);
    ck_assert_msg(rc == KVC_OK, "timeline of %s: %s", u, err.msg);
}

/* Checks a page is newest first with strictly decreasing times. */
static void check_order(const struct feed_page *p)
{
    for (size_t i = 1; i < p->n; i++) {
        ck_assert_msg(strcmp(p->items[i - 1].id, p->items[i].id) < 0, "ids out of order at %zu",
                      i);
        ck_assert(p->items[i - 1].time_us > p->items[i].time_us);
    }
}

/* All of user's timeline, limit at a time; returns the ids (malloc'd array of n). */
static char (*read_all(struct feed *f, const char *u, uint32_t limit, size_t *n))[FEED_ID_LEN + 1]
{
    char (*ids)[FEED_ID_LEN + 1] = NULL;
    size_t cnt = 0;
    char cursor[FEED_CURSOR_LEN + 1] = "";
    for (int pages = 0;; pages++) {
        ck_assert_msg(pages < 10000, "paging does not end");
        struct feed_page p;
        timeline(f, u, cursor, limit, &p);
        ck_assert_uint_le(p.n, limit);
        check_order(&p);
        ids = realloc(ids, (cnt + p.n + 1) * sizeof *ids);
        for (size_t i = 0; i < p.n; i++) {
            if (cnt)
                ck_assert_msg(strcmp(ids[cnt - 1], p.items[i].id) < 0,
                              "page %d repeats or reorders an entry", pages);
            memcpy(ids[cnt++], p.items[i].id, FEED_ID_LEN + 1);
        }
        bool more = p.cursor[0] != '\0';
        if (more) {
            ck_assert_uint_eq(p.n, limit);   /* a short page is the last */
            memcpy(cursor, p.cursor, sizeof cursor);
        }
        feed_page_free(&p);
        if (!more)
            break;
    }
    *n = cnt;
    return ids;
}

/* --- one node --------------------------------------------------------------------------- */

START_TEST(test_a_timeline_shows_followed_authors_posts_newest_first_with_bodies)
{
    start_single();
    struct env e = open_feed(g_nodes[0].addr, 0);
    follow(e.f, "bob", "alice");
    follow(e.f, "bob", "carol");
    follow(e.f, "dave", "alice");
    const char *order[] = {"alice", "carol", "alice", "carol", "alice"};
    struct feed_post_result r[5];
    for (int i = 0; i < 5; i++) {
        char body[32];
        snprintf(body, sizeof body, "post %d by %s", i, order[i]);
        post(e.f, order[i], body, &r[i]);
        ck_assert(!r[i].celebrity);
        ck_assert_uint_eq(r[i].fanned_out, strcmp(order[i], "alice") == 0 ? 2 : 1);
    }
    struct feed_page p;
    timeline(e.f, "bob", NULL, 0, &p);
    ck_assert_uint_eq(p.n, 5);
    check_order(&p);
    for (int i = 0; i < 5; i++) {
        const struct feed_item *it = &p.items[4 - i];
        char body[32];
        snprintf(body, sizeof body, "post %d by %s", i, order[i]);
        ck_assert_str_eq(it->author, order[i]);
        ck_assert_str_eq(it->id, r[i].id);
        ck_assert_uint_eq(it->time_us, r[i].time_us);
        ck_assert_str_eq((const char *)it->body, body);
        ck_assert(!it->missing);
    }
    ck_assert_str_eq(p.cursor, "");
    feed_page_free(&p);
    timeline(e.f, "dave", NULL, 0, &p);
    ck_assert_uint_eq(p.n, 3);
    feed_page_free(&p);
    /* Own posts are not in one's own timeline; an unknown user has an empty one. */
    timeline(e.f, "alice", NULL, 0, &p);
    ck_assert_uint_eq(p.n, 0);
    feed_page_free(&p);
    timeline(e.f, "nobody", NULL, 0, &p);
    ck_assert_uint_eq(p.n, 0);
    feed_page_free(&p);
    close_feed(&e);
}
END_TEST

START_TEST(test_bad_names_cursors_and_limits_are_invalid_and_touch_nothing)
{
    start_single();
    struct env e = open_feed(g_nodes[0].addr, 0);
    struct kvc_err err;
    struct feed_post_result r;
    struct feed_page p;
    ck_assert_int_eq(feed_follow(e.f, "a/b", "c", &err), KVC_INVALID);
    ck_assert_int_eq(feed_follow(e.f, "", "c", &err), KVC_INVALID);
    ck_assert_int_eq(feed_follow(e.f, "bob", "bob", &err), KVC_INVALID);
    ck_assert_int_eq(feed_post(e.f, "x\ny", "b", 1, &r, &err), KVC_INVALID);
    ck_assert_int_eq(feed_timeline(e.f, "bob", "nothex", 5, &p, &err), KVC_INVALID);
    ck_assert_int_eq(feed_timeline(e.f, "bob", NULL, FEED_MAX_LIMIT + 1, &p, &err), KVC_INVALID);
    static char big[FEED_MAX_BODY + 1];
    ck_assert_int_eq(feed_post(e.f, "bob", big, sizeof big, &r, &err), KVC_TOO_LARGE);
    close_feed(&e);
}
END_TEST

START_TEST(test_paging_250_posts_by_7_never_repeats_or_skips)
{
    start_single();
    struct env e = open_feed(g_nodes[0].addr, 0);
    follow(e.f, "reader", "w1");
    follow(e.f, "reader", "w2");
    char (*posted)[FEED_ID_LEN + 1] = calloc(250, sizeof *posted);
    for (int i = 0; i < 250; i++) {
        struct feed_post_result r;
        char body[16];
        snprintf(body, sizeof body, "%d", i);
        post(e.f, i % 3 ? "w1" : "w2", body, &r);
        memcpy(posted[249 - i], r.id, FEED_ID_LEN + 1);   /* newest first */
    }
    size_t n;
    char (*ids)[FEED_ID_LEN + 1] = read_all(e.f, "reader", 7, &n);
    ck_assert_uint_eq(n, 250);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(ids[i], posted[i]);
    free(ids);

    /* A post made while paging sorts before the cursor: the ongoing pass does not see
     * it, a read from the top does. */
    struct feed_page p1, p2;
    timeline(e.f, "reader", NULL, 7, &p1);
    struct feed_post_result late;
    post(e.f, "w1", "late", &late);
    timeline(e.f, "reader", p1.cursor, 7, &p2);
    ck_assert_str_eq(p2.items[0].id, posted[7]);
    for (size_t i = 0; i < p2.n; i++)
        ck_assert_str_ne(p2.items[i].id, late.id);
    feed_page_free(&p1);
    feed_page_free(&p2);
    timeline(e.f, "reader", NULL, 1, &p1);
    ck_assert_str_eq(p1.items[0].id, late.id);
    ck_assert_str_eq((const char *)p1.items[0].body, "late");
    feed_page_free(&p1);
    free(posted);
    close_feed(&e);
}
END_TEST

START_TEST(test_celebrity_posts_are_merged_at_read_time_in_order_and_once)
{
    start_single();
    struct env e = open_feed(g_nodes[0].addr, 3);   /* more than 3 followers: celebrity */
    follow(e.f, "u1", "star");
    follow(e.f, "u2", "star");
    follow(e.f, "u1", "pal");
    struct feed_post_result early, r;
    post(e.f, "star", "before fame", &early);        /* 2 followers: fanned out */
    ck_assert(!early.celebrity);
    ck_assert_uint_eq(early.fanned_out, 2);
    follow(e.f, "u3", "star");
    follow(e.f, "u4", "star");
    char (*want)[FEED_ID_LEN + 1] = calloc(21, sizeof *want);
    int nw = 0;
    memcpy(want[nw++], early.id, FEED_ID_LEN + 1);
    for (int i = 0; i < 20; i++) {
        post(e.f, i % 2 ? "star" : "pal", i % 2 ? "star post" : "pal post", &r);
        if (i % 2) {
            ck_assert(r.celebrity);                   /* 4 followers > 3 */
            ck_assert_uint_eq(r.fanned_out, 0);
        } else {
            ck_assert(!r.celebrity);
        }
        memcpy(want[nw++], r.id, FEED_ID_LEN + 1);
    }
    /* u1 follows both: every post, once, newest first, through pages of 3 that cross
     * the two sources. The early star post is in u1's tl/ and in post/star: once. */
    size_t n;
    char (*ids)[FEED_ID_LEN + 1] = read_all(e.f, "u1", 3, &n);
    ck_assert_uint_eq(n, 21);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(ids[i], want[20 - i]);
    free(ids);
    /* u4 followed after the early post: a celebrity's whole history shows at once. */
    ids = read_all(e.f, "u4", 4, &n);
    ck_assert_uint_eq(n, 11);
    ck_assert_str_eq(ids[10], early.id);
    free(ids);
    /* Bodies of merged entries come from the post/ scan. */
    struct feed_page p;
    timeline(e.f, "u2", NULL, 2, &p);
    ck_assert_uint_eq(p.n, 2);
    ck_assert_str_eq(p.items[0].author, "star");
    ck_assert_str_eq((const char *)p.items[0].body, "star post");
    feed_page_free(&p);
    /* Unfollowing a celebrity removes all of its posts at once. */
    struct kvc_err err;
    ck_assert_int_eq(feed_unfollow(e.f, "u2", "star", &err), KVC_OK);
    timeline(e.f, "u2", NULL, 50, &p);
    ck_assert_uint_eq(p.n, 1);                       /* only the fanned-out early post */
    ck_assert_str_eq(p.items[0].id, early.id);
    feed_page_free(&p);
    /* Another feed instance (default threshold) sees star as a celebrity too (cel/). */
    struct env e2 = open_feed(g_nodes[0].addr, 0);
    post(e2.f, "star", "still famous", &r);
    ck_assert(r.celebrity);
    timeline(e2.f, "u3", NULL, 1, &p);
    ck_assert_str_eq(p.items[0].id, r.id);
    feed_page_free(&p);
    close_feed(&e2);
    free(want);
    close_feed(&e);
}
END_TEST

START_TEST(test_unfollow_stops_new_posts_and_keeps_the_old_ones)
{
    start_single();
    struct env e = open_feed(g_nodes[0].addr, 0);
    follow(e.f, "bob", "alice");
    struct feed_post_result old, fresh;
    post(e.f, "alice", "old", &old);
    struct kvc_err err;
    ck_assert_int_eq(feed_unfollow(e.f, "bob", "alice", &err), KVC_OK);
    post(e.f, "alice", "new", &fresh);
    ck_assert_uint_eq(fresh.fanned_out, 0);
    struct feed_page p;
    timeline(e.f, "bob", NULL, 10, &p);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(p.items[0].id, old.id);
    feed_page_free(&p);
    /* Unfollowing twice, or someone never followed, is fine. */
    ck_assert_int_eq(feed_unfollow(e.f, "bob", "alice", &err), KVC_OK);
    close_feed(&e);
}
END_TEST

/* Runs feedctl with args (a shell-quoted string), capturing stdout into out; returns the
 * exit code. */
static int feedctl(const char *nodes, const char *args, char *out, size_t n)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "KVD_NODES='%s' '%s' %s 2>/dev/null", nodes,
             getenv("FEEDCTL_BIN"), args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t len = fread(out, 1, n - 1, p);
    out[len] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

START_TEST(test_feedctl_commands_print_results_and_exit_like_kvctl)
{
    if (!getenv("FEEDCTL_BIN")) {
        fprintf(stderr, "SKIP: FEEDCTL_BIN not set\n");
        return;
    }
    start_single();
    const char *nodes = g_nodes[0].addr;
    static char out[65536];
    ck_assert_int_eq(feedctl(nodes, "follow bob alice", out, sizeof out), 0);
    ck_assert_str_eq(out, "bob follows alice\n");
    ck_assert_int_eq(feedctl(nodes, "post alice 'hello world'", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "fanned out to 1 timeline"));
    ck_assert_int_eq(feedctl(nodes, "--json post alice second", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"fanned_out\":1"));
    ck_assert_int_eq(feedctl(nodes, "timeline bob", out, sizeof out), 0);
    char *first = strstr(out, "second"), *second = strstr(out, "hello world");
    ck_assert(first && second && first < second);
    ck_assert_int_eq(feedctl(nodes, "timeline bob --limit 1 --json", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"body\":\"second\""));
    char *c = strstr(out, "\"cursor\":\"");
    ck_assert_ptr_nonnull(c);
    char cursor[FEED_CURSOR_LEN + 1];
    memcpy(cursor, c + 10, FEED_CURSOR_LEN);
    cursor[FEED_CURSOR_LEN] = '\0';
    char args[256];
    snprintf(args, sizeof args, "--json timeline bob --limit 1 --cursor %s", cursor);
    ck_assert_int_eq(feedctl(nodes, args, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"body\":\"hello world\""));
    ck_assert_ptr_nonnull(strstr(out, "\"cursor\":null"));
    ck_assert_int_eq(feedctl(nodes, "unfollow bob alice", out, sizeof out), 0);
    /* Usage errors: exit 2, before any connection. */
    ck_assert_int_eq(feedctl(nodes, "", out, sizeof out), 2);
    ck_assert_int_eq(feedctl(nodes, "frobnicate x", out, sizeof out), 2);
    ck_assert_int_eq(feedctl(nodes, "post alice", out, sizeof out), 2);
    ck_assert_int_eq(feedctl(nodes, "follow bob bob", out, sizeof out), 2);
    ck_assert_int_eq(feedctl(nodes, "follow a/b c", out, sizeof out), 2);
    ck_assert_int_eq(feedctl(nodes, "timeline bob --limit 0", out, sizeof out), 2);
    ck_assert_int_eq(feedctl(nodes, "timeline bob --cursor xyz", out, sizeof out), 2);
    ck_assert_int_eq(feedctl(nodes, "post a b --limit 3", out, sizeof out), 2);
    ck_assert_int_eq(feedctl(nodes, "--bogus timeline bob", out, sizeof out), 2);
    ck_assert_int_eq(feedctl(nodes, "--help", out, sizeof out), 0);
    /* Nothing listening: exit 3, and with --json an error object. */
    ck_assert_int_eq(feedctl("127.0.0.1:1", "--json timeline bob", out, sizeof out), 3);
    ck_assert_ptr_nonnull(strstr(out, "\"error\":\"CONN\""));
}
END_TEST

/* --- three nodes ------------------------------------------------------------------------ */

START_TEST(test_three_node_cluster_at_quorum_serves_the_feed)
{
    for (int i = 0; i < N_NODES; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i + 1);
        const char *extra[] = {"--node-id", id, "--replication-factor", "3",
                               "--gossip-interval-ms", "100", "--sync", "none",
                               i ? "--seeds" : NULL, i ? g_nodes[0].addr : NULL, NULL};
        ck_assert_msg(kvd_start(&g_nodes[i], extra) == 0, "start node %d", i + 1);
        g_n = i + 1;
    }
    char addrs[256];
    snprintf(addrs, sizeof addrs, "%s,%s,%s", g_nodes[0].addr, g_nodes[1].addr, g_nodes[2].addr);
    /* Wait until node 1 sees all three up (gossip has spread the ring). */
    struct env e = open_feed(addrs, 2);
    struct kvc_err err;
    int up = 0;
    for (int tries = 0; tries < 150 && up < N_NODES; tries++) {
        struct kvc_cluster_status st;
        up = 0;
        if (kvc_cluster_status(e.c, &st, &err) == KVC_OK) {
            for (size_t i = 0; i < st.n_nodes; i++)
                up += st.nodes[i].up;
            kvc_cluster_status_free(&st);
        }
        if (up < N_NODES)
            usleep(100 * 1000);
    }
    ck_assert_int_eq(up, N_NODES);
    int rc = KVC_UNAVAILABLE;
    for (int tries = 0; tries < 150 && rc != KVC_OK; tries++) {
        rc = feed_follow(e.f, "bob", "alice", &err);
        if (rc != KVC_OK)
            usleep(100 * 1000);
    }
    ck_assert_msg(rc == KVC_OK, "follow at QUORUM: %s", err.msg);
    follow(e.f, "bob", "star");
    follow(e.f, "x1", "star");
    follow(e.f, "x2", "star");   /* 3 followers > 2: star is a celebrity */
    char (*want)[FEED_ID_LEN + 1] = calloc(40, sizeof *want);
    for (int i = 0; i < 40; i++) {
        struct feed_post_result r;
        post(e.f, i % 4 ? "alice" : "star", "x", &r);
        ck_assert(r.celebrity == (i % 4 == 0));
        memcpy(want[39 - i], r.id, FEED_ID_LEN + 1);
    }
    size_t n;
    char (*ids)[FEED_ID_LEN + 1] = read_all(e.f, "bob", 7, &n);
    ck_assert_uint_eq(n, 40);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(ids[i], want[i]);
    free(ids);
    free(want);
    close_feed(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("feed");
    TCase *t = tcase_create("feed");
    tcase_add_checked_fixture(t, NULL, stop_nodes);
    tcase_set_timeout(t, 180);
    tcase_add_test(t, test_a_timeline_shows_followed_authors_posts_newest_first_with_bodies);
    tcase_add_test(t, test_bad_names_cursors_and_limits_are_invalid_and_touch_nothing);
    tcase_add_test(t, test_paging_250_posts_by_7_never_repeats_or_skips);
    tcase_add_test(t, test_celebrity_posts_are_merged_at_read_time_in_order_and_once);
    tcase_add_test(t, test_unfollow_stops_new_posts_and_keeps_the_old_ones);
    tcase_add_test(t, test_feedctl_commands_print_results_and_exit_like_kvctl);
    tcase_add_test(t, test_three_node_cluster_at_quorum_serves_the_feed);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    /* No fork: the fixture must see the kvd PIDs a test started, to stop them on failure. */
    return kv_check_run(suite(), false);
}
