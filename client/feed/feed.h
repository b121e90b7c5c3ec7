/* client/feed/feed.h -- a news-feed service on libkvclient (docs/feed.md).
 *
 * Keys (names are 1..FEED_MAX_NAME bytes, no '/', no control bytes):
 *   post/<author>/<inv>/<id>     -> body                  every post, by author, newest first
 *   fl/<author>/<follower>       -> follow time (us)      who follows author
 *   fg/<user>/<author>           -> follow time (us)      whom user follows
 *   tl/<user>/<inv>/<id>         -> "<author>/<id>"       user's fanned-out timeline
 *   cel/<author>                 -> follower count seen   authors not fanned out
 * <inv> is 16 hex digits of UINT64_MAX - (post time in microseconds), so keys sort newest
 * first; <id> is 32 hex digits: <inv>, 8 of a hash of the author, 8 of a per-instance
 * random counter, so it is unique and sorts like <inv>.
 *
 * (1) Fan-out on write: feed_post stores the body, then puts one tl/ entry per follower,
 *     pipelined (kvc_submit), unless the author is a celebrity: more than
 *     celebrity_threshold followers when posting. A celebrity is marked (cel/) once and
 *     stays one; its posts are merged into each follower's page at read time by scanning
 *     post/<celebrity>/ (fan-out on read). The merge drops duplicates by (inv, id), so
 *     posts fanned out before the author became a celebrity appear once.
 * (2) A page is the `limit` newest entries older than the cursor over the user's tl/ scan
 *     and the post/ scans of the celebrities the user follows. The cursor is the last
 *     (inv, id) returned: paging from it never repeats or skips an entry older than it.
 *     Posts made while paging sort before the cursor and so appear only in a read from
 *     the top; a post whose timestamp is older than the cursor when it lands (writers'
 *     clocks apart, a slow fan-out) is missed by that paging pass.
 * (3) Every call uses the instance's consistency level and timeout, and returns an
 *     enum kvc_status with err (may be NULL) saying why. Nothing is retried.
 * (4) A struct feed borrows its kvc_client and is used by one thread at a time, like it. */
#ifndef KV_CLIENT_FEED_FEED_H
#define KV_CLIENT_FEED_FEED_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <kv/client.h>

#define FEED_MAX_NAME 128u
#define FEED_MAX_BODY 65536u
#define FEED_MAX_LIMIT 1000u
#define FEED_ID_LEN 32u        /* hex digits of a post id */
#define FEED_CURSOR_LEN 32u    /* a cursor is the id of the last entry returned */

struct feed;

/* Start from feed_opts_default(); a zero field keeps its default. */
struct feed_opts {
    uint32_t celebrity_threshold;     /* more followers than this: fan-out on read; 1000 */
    enum kvc_consistency level;       /* every read and write; default QUORUM */
    uint32_t timeout_ms;              /* per request; 0: the client's */
    int32_t celeb_refresh_ms;         /* how long the cel/ list is cached; default 2000,
                                         -1: read it for every timeline */
    uint32_t fanout_window;           /* timeline puts in flight while fanning out; 256 */
};
void feed_opts_default(struct feed_opts *o);

/* On KVC_OK *out owns a feed over client c (borrowed: it must outlive the feed). */
int feed_new(struct kvc_client *c, const struct feed_opts *o, struct feed **out,
             struct kvc_err *err);
void feed_free(struct feed *f);                /* NULL is a no-op; does not close c */

struct feed_post_result {
    char id[FEED_ID_LEN + 1];                  /* NUL-terminated */
    uint64_t time_us;                          /* microseconds since the epoch */
    bool celebrity;                            /* not fanned out (read-time merge) */
    uint32_t fanned_out;                       /* timelines written */
    uint32_t fanout_failed;                    /* timelines whose put failed */
};

/* Stores the post and fans it out. KVC_OK: stored and every follower's timeline written.
 * When the body's put fails, that status (nothing fanned out; TIMEOUT/CONN: maybe stored).
 * When the post is stored but some timeline puts fail, the first failure's status with
 * out->id set and out->fanout_failed > 0: those followers will not see it. When the post
 * is stored but the follower list (or the celebrity list) cannot be read, that status
 * with out->id set, nothing fanned out, and err saying so. */
int feed_post(struct feed *f, const char *author, const void *body, size_t body_len,
              struct feed_post_result *out, struct kvc_err *err);
/* user follows author from now on (fan-out on write reaches only later posts; a
 * celebrity's older posts appear at once). Following oneself is KVC_INVALID. */
int feed_follow(struct feed *f, const char *user, const char *author, struct kvc_err *err);
/* Stops later posts of author reaching user; entries already fanned out stay. */
int feed_unfollow(struct feed *f, const char *user, const char *author, struct kvc_err *err);

struct feed_item {
    char *author;                              /* owned, NUL-terminated */
    char id[FEED_ID_LEN + 1];
    uint64_t time_us;
    uint8_t *body;                             /* owned, NUL-terminated (not counted) */
    size_t body_len;
    bool missing;                              /* the body could not be read (NOT_FOUND
                                                  at a weak level, or a failed get) */
};
struct feed_page {
    struct feed_item *items;                   /* newest first */
    size_t n;
    char cursor[FEED_CURSOR_LEN + 1];          /* "" when there is nothing older */
};
void feed_page_free(struct feed_page *p);      /* NULL-safe; resets *p */

/* The limit (1..FEED_MAX_LIMIT; 0: 20) newest entries of user's timeline older than
 * cursor (NULL or "": from the newest). KVC_INVALID for a malformed cursor. On KVC_OK *page
 * owns the result; otherwise it is zeroed. */
int feed_timeline(struct feed *f, const char *user, const char *cursor, uint32_t limit,
                  struct feed_page *page, struct kvc_err *err);

/* KVC_OK when name can be a user or author name; otherwise KVC_INVALID with err saying why. */
int feed_check_name(const char *name, struct kvc_err *err);
#endif
