/* client/feed/feedctl.c -- the demo command line of the feed library (docs/feed.md).
 *
 *   feedctl [options] post AUTHOR TEXT
 *   feedctl [options] follow USER AUTHOR | unfollow USER AUTHOR
 *   feedctl [options] timeline USER [--limit N] [--cursor C]
 *
 * (1) Exit codes are kvctl's: 0 ok, 2 usage, 3 cannot connect, 4 timeout, 5 unavailable
 *     (or overloaded, shutting down), 6 any other server or library error; 1 (not found)
 *     is not used: an unknown user simply has an empty timeline.
 * (2) Arguments are checked before connecting: a usage error never touches the network.
 * (3) With --json every answer, errors included, is one JSON object on stdout. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <kv/client.h>
#include "client/feed/feed.h"

enum { EXIT_OK = 0, EXIT_USAGE = 2, EXIT_CONN = 3, EXIT_TIMEOUT = 4, EXIT_UNAVAILABLE = 5,
       EXIT_SERVER = 6 };

static bool g_json;

static int exit_for(int code)
{
    switch (code) {
    case KVC_OK: return EXIT_OK;
    case KVC_CONN: return EXIT_CONN;
    case KVC_TIMEOUT: return EXIT_TIMEOUT;
    case KVC_UNAVAILABLE:
    case KVC_OVERLOADED:
    case KVC_SHUTDOWN: return EXIT_UNAVAILABLE;
    default: return EXIT_SERVER;
    }
}

static void emit(json_t *j)
{
    json_dumpf(j, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(j);
}

static int fail(const struct kvc_err *e)
{
    if (g_json) {
        json_t *m = json_string(e->msg);
        emit(json_pack("{s:s,s:o}", "error", kvc_status_name(e->code), "message",
                       m ? m : json_string("(message not UTF-8)")));
    } else {
        fprintf(stderr, "feedctl: %s: %s\n", kvc_status_name(e->code), e->msg);
    }
    return exit_for(e->code);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: feedctl [options] COMMAND ARGS\n"
            "  post AUTHOR TEXT              store a post and fan it out to AUTHOR's followers\n"
            "  follow USER AUTHOR            USER sees AUTHOR's later posts\n"
            "  unfollow USER AUTHOR          stops AUTHOR's later posts reaching USER\n"
            "  timeline USER [--limit N] [--cursor C]\n"
            "                                USER's newest posts (N, default 20, at most 1000);\n"
            "                                pass the printed cursor to get the next page\n"
            "options:\n"
            "  -n, --nodes H:P,...           servers (default $KVD_NODES or 127.0.0.1:7379)\n"
            "  -c, --consistency L           one|quorum|all|... (default quorum)\n"
            "      --timeout MS              per-request timeout (default 5000)\n"
            "      --celebrity-threshold N   more followers than N: fan-out on read (1000)\n"
            "      --json                    print JSON\n"
            "  -h, --help\n"
            "exit codes: 0 ok, 2 usage, 3 cannot connect, 4 timeout, 5 unavailable, 6 error\n");
}

static int usage_err(const char *fmt, const char *a)
{
    fprintf(stderr, "feedctl: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, " (feedctl --help)\n");
    return EXIT_USAGE;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || v > UINT32_MAX || s[0] == '-')
        return false;
    *out = (uint32_t)v;
    return true;
}

static void print_time(uint64_t us, char *buf, size_t n)
{
    time_t t = (time_t)(us / 1000000u);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%06uZ", (unsigned)(us % 1000000u));
}

static int cmd_post(struct feed *f, const char *author, const char *text)
{
    struct feed_post_result r;
    struct kvc_err e;
    int rc = feed_post(f, author, text, strlen(text), &r, &e);
    if (rc != KVC_OK)
        return fail(&e);   /* when r.id is set the post is stored: e says what failed */
    if (g_json) {
        emit(json_pack("{s:s,s:s,s:I,s:b,s:I}", "id", r.id, "author", author, "time_us",
                       (json_int_t)r.time_us, "celebrity", r.celebrity, "fanned_out",
                       (json_int_t)r.fanned_out));
    } else {
        char ts[40];
        print_time(r.time_us, ts, sizeof ts);
        if (r.celebrity)
            printf("post %s by %s at %s (celebrity: merged into timelines at read time)\n",
                   r.id, author, ts);
        else
            printf("post %s by %s at %s, fanned out to %u timeline(s)\n", r.id, author, ts,
                   r.fanned_out);
    }
    return EXIT_OK;
}

static int cmd_follow(struct feed *f, const char *user, const char *author, bool on)
{
    struct kvc_err e;
    int rc = on ? feed_follow(f, user, author, &e) : feed_unfollow(f, user, author, &e);
    if (rc != KVC_OK)
        return fail(&e);
    if (g_json)
        emit(json_pack("{s:s,s:s,s:b}", "user", user, "author", author, "following", on));
    else
        printf("%s %s %s\n", user, on ? "follows" : "no longer follows", author);
    return EXIT_OK;
}

static int cmd_timeline(struct feed *f, const char *user, const char *cursor, uint32_t limit)
{
    struct feed_page p;
    struct kvc_err e;
    int rc = feed_timeline(f, user, cursor, limit, &p, &e);
    if (rc != KVC_OK)
        return fail(&e);
    if (g_json) {
        json_t *items = json_array();
        for (size_t i = 0; i < p.n; i++) {
            const struct feed_item *it = &p.items[i];
            json_t *body = json_stringn((const char *)it->body, it->body_len);
            json_t *o = json_pack("{s:s,s:s,s:I}", "author", it->author, "id", it->id,
                                  "time_us", (json_int_t)it->time_us);
            json_object_set_new(o, "body", body ? body : json_string("(body not UTF-8)"));
            if (it->missing)
                json_object_set_new(o, "missing", json_true());
            json_array_append_new(items, o);
        }
        emit(json_pack("{s:o,s:o}", "items", items, "cursor",
                       p.cursor[0] ? json_string(p.cursor) : json_null()));
    } else {
        for (size_t i = 0; i < p.n; i++) {
            const struct feed_item *it = &p.items[i];
            char ts[40];
            print_time(it->time_us, ts, sizeof ts);
            printf("%s  %-12s %.*s%s\n", ts, it->author, (int)it->body_len,
                   (const char *)it->body, it->missing ? "(body missing)" : "");
        }
        if (p.cursor[0])
            printf("next: --cursor %s\n", p.cursor);
    }
    feed_page_free(&p);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"nodes", 1, 0, 'n'}, {"consistency", 1, 0, 'c'}, {"timeout", 1, 0, 'T'},
        {"celebrity-threshold", 1, 0, 'C'}, {"json", 0, 0, 'j'}, {"limit", 1, 0, 'l'},
        {"cursor", 1, 0, 'u'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *nodes = getenv("KVD_NODES"), *cursor = NULL;
    uint32_t timeout = 0, limit = 0;
    bool limit_set = false;
    struct feed_opts fo;
    feed_opts_default(&fo);
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":n:c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': nodes = optarg; break;
        case 'c':
            if (kvc_consistency_parse(optarg, &fo.level) != 0)
                return usage_err("unknown consistency '%s'", optarg);
            break;
        case 'T':
            if (!parse_u32(optarg, &timeout) || !timeout)
                return usage_err("bad --timeout '%s'", optarg);
            break;
        case 'C':
            if (!parse_u32(optarg, &fo.celebrity_threshold) || !fo.celebrity_threshold)
                return usage_err("bad --celebrity-threshold '%s'", optarg);
            break;
        case 'j': g_json = true; break;
        case 'l':
            if (!parse_u32(optarg, &limit) || !limit || limit > FEED_MAX_LIMIT)
                return usage_err("bad --limit '%s' (1..1000)", optarg);
            limit_set = true;
            break;
        case 'u': cursor = optarg; break;
        case 'h': usage(stdout); return EXIT_OK;
        case ':': return usage_err("option %s needs a value", argv[optind - 1]);
        default: return usage_err("unknown option '%s'", argv[optind - 1]);
        }
    }
    int npos = argc - optind;
    char **pos = argv + optind;
    if (npos < 1)
        return usage_err("%sno command", "");
    const char *cmd = pos[0];
    int want = strcmp(cmd, "post") == 0 || strcmp(cmd, "follow") == 0 ||
                       strcmp(cmd, "unfollow") == 0
                   ? 3
               : strcmp(cmd, "timeline") == 0 ? 2
                                              : -1;
    if (want < 0)
        return usage_err("unknown command '%s'", cmd);
    if (npos != want)
        return usage_err("wrong number of arguments for '%s'", cmd);
    if ((limit_set || cursor) && strcmp(cmd, "timeline") != 0)
        return usage_err("--limit and --cursor apply to timeline only, not '%s'", cmd);
    struct kvc_err e;
    for (int i = 1; i < npos; i++)
        if (i < 2 || strcmp(cmd, "post") != 0)
            if (feed_check_name(pos[i], &e) != KVC_OK)
                return usage_err("%s", e.msg);
    if (strcmp(cmd, "post") == 0 && strlen(pos[2]) > FEED_MAX_BODY)
        return usage_err("post text longer than %s bytes", "65536");
    if ((strcmp(cmd, "follow") == 0 || strcmp(cmd, "unfollow") == 0) &&
        strcmp(pos[1], pos[2]) == 0)
        return usage_err("'%s' cannot follow itself", pos[1]);
    if (cursor && *cursor &&
        (strlen(cursor) != FEED_CURSOR_LEN || strspn(cursor, "0123456789abcdef") != FEED_CURSOR_LEN))
        return usage_err("bad --cursor '%s' (32 lowercase hex digits)", cursor);

    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = nodes && *nodes ? nodes : "127.0.0.1:7379";
    if (timeout)
        o.timeout_ms = timeout;
    struct kvc_client *c;
    if (kvc_connect(&o, &c, &e) != KVC_OK)
        return fail(&e);
    struct feed *f;
    fo.timeout_ms = timeout;
    if (feed_new(c, &fo, &f, &e) != KVC_OK) {
        kvc_close(c);
        return fail(&e);
    }
    int rc;
    if (strcmp(cmd, "post") == 0)
        rc = cmd_post(f, pos[1], pos[2]);
    else if (strcmp(cmd, "follow") == 0)
        rc = cmd_follow(f, pos[1], pos[2], true);
    else if (strcmp(cmd, "unfollow") == 0)
        rc = cmd_follow(f, pos[1], pos[2], false);
    else
        rc = cmd_timeline(f, pos[1], cursor, limit);
    feed_free(f);
    kvc_close(c);
    return rc;
}
