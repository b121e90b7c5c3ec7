/* client/feed/feed.c -- posts, follows and timelines over libkvclient (feed.h, docs/feed.md).
 *
 * (1) Every key is built by one of the key_* helpers below, so the layout in feed.h is
 *     written down in exactly one place.
 * (2) A post's body is stored before any timeline entry naming it is written, so at
 *     QUORUM (read and write quorums overlap) a reader that sees the entry finds the body.
 * (3) Entries from different sources are merged by their id (which starts with the
 *     inverted time), so the merge order is the key order of every source. */
#include "client/feed/feed.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define KEY_MAX (FEED_MAX_NAME * 2 + 64)
#define DEFAULT_LIMIT 20u

struct fan_slot;

struct feed {
    struct kvc_client *c;
    struct feed_opts o;
    struct kvc_call call;
    uint64_t last_us;          /* strictly increasing post times from this instance */
    uint32_t counter;          /* random start, +1 per post */
    /* cel/ list cache */
    char **celebs;
    size_t n_celebs;
    uint64_t celebs_at_ms;     /* 0: never read */
    /* fan-out completion counter (kvc_submit callbacks) */
    size_t fan_done;
    int fan_first_err;
    struct kvc_err fan_err;
    uint32_t fan_failed;
    struct fan_slot *fan_free;
};

static int set_err(struct kvc_err *err, int code, const char *fmt, const char *a)
{
    if (err) {
        err->code = code;
        snprintf(err->msg, sizeof err->msg, fmt, a);
    }
    return code;
}

static void copy_err(struct kvc_err *dst, const struct kvc_err *src)
{
    if (dst)
        *dst = *src;
}

static uint64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t fnv32(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

void feed_opts_default(struct feed_opts *o)
{
    *o = (struct feed_opts){.celebrity_threshold = 1000, .level = KVC_CL_QUORUM,
                            .celeb_refresh_ms = 2000, .fanout_window = 256};
}

int feed_check_name(const char *name, struct kvc_err *err)
{
    if (!name || !*name)
        return set_err(err, KVC_INVALID, "%sname is empty", "");
    size_t n = strlen(name);
    if (n > FEED_MAX_NAME)
        return set_err(err, KVC_INVALID, "name longer than %s bytes", "128");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch == '/' || ch < 0x20 || ch == 0x7f)
            return set_err(err, KVC_INVALID, "name '%.100s' has '/' or a control byte", name);
    }
    return KVC_OK;
}

int feed_new(struct kvc_client *c, const struct feed_opts *o, struct feed **out,
             struct kvc_err *err)
{
    *out = NULL;
    if (!c)
        return set_err(err, KVC_INVALID, "%sno client", "");
    struct feed *f = calloc(1, sizeof *f);
    if (!f)
        return set_err(err, KVC_NOMEM, "%sout of memory", "");
    f->c = c;
    feed_opts_default(&f->o);
    if (o) {
        if (o->celebrity_threshold)
            f->o.celebrity_threshold = o->celebrity_threshold;
        if (o->level)
            f->o.level = o->level;
        f->o.timeout_ms = o->timeout_ms;
        if (o->celeb_refresh_ms)
            f->o.celeb_refresh_ms = o->celeb_refresh_ms;
        if (o->fanout_window)
            f->o.fanout_window = o->fanout_window;
    }
    f->call = (struct kvc_call){.timeout_ms = f->o.timeout_ms, .consistency = f->o.level};
    uint32_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint32_t)(wall_us() ^ ((uint64_t)getpid() << 16) ^ (uintptr_t)f);
    f->counter = seed;
    *out = f;
    return KVC_OK;
}

static void free_celebs(struct feed *f)
{
    for (size_t i = 0; i < f->n_celebs; i++)
        free(f->celebs[i]);
    free(f->celebs);
    f->celebs = NULL;
    f->n_celebs = 0;
}

void feed_free(struct feed *f)
{
    if (!f)
        return;
    free_celebs(f);
    free(f);
}

/* --- keys ------------------------------------------------------------------------------ */

/* "<p>/<a>/" (b == NULL) or "<p>/<a>/<b>"; returns the length. */
static size_t key2(char *buf, const char *p, const char *a, const char *b)
{
    int n = snprintf(buf, KEY_MAX, "%s/%s/%s", p, a, b ? b : "");
    return (size_t)n;
}

/* The first key after every "<p>/<a>/..." key: "<p>/<a>0" ('0' follows '/'). */
static size_t key_end(char *buf, const char *p, const char *a)
{
    return (size_t)snprintf(buf, KEY_MAX, "%s/%s0", p, a);
}

/* "<p>/<a>/<inv>/<id>" from the id (whose first 16 digits are <inv>). */
static size_t key_entry(char *buf, const char *p, const char *a, const char *id)
{
    return (size_t)snprintf(buf, KEY_MAX, "%s/%s/%.16s/%s", p, a, id, id);
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Parses "<inv>/<id>" (the tail of an entry key) into id; false when malformed. */
static bool parse_tail(const uint8_t *t, size_t n, char id[FEED_ID_LEN + 1])
{
    if (n != 16 + 1 + FEED_ID_LEN || t[16] != '/' || !is_hex((const char *)t, 16) ||
        !is_hex((const char *)t + 17, FEED_ID_LEN) || memcmp(t, t + 17, 16) != 0)
        return false;
    memcpy(id, t + 17, FEED_ID_LEN);
    id[FEED_ID_LEN] = '\0';
    return true;
}

static uint64_t id_time_us(const char *id)
{
    char inv[17];
    memcpy(inv, id, 16);
    inv[16] = '\0';
    return UINT64_MAX - strtoull(inv, NULL, 16);
}

/* --- celebrities ----------------------------------------------------------------------- */

static bool in_list(char **list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

static int add_celeb(struct feed *f, const char *name)
{
    if (in_list(f->celebs, f->n_celebs, name))
        return KVC_OK;
    char **p = realloc(f->celebs, (f->n_celebs + 1) * sizeof *p);
    if (!p)
        return KVC_NOMEM;
    f->celebs = p;
    if (!(p[f->n_celebs] = strdup(name)))
        return KVC_NOMEM;
    f->n_celebs++;
    return KVC_OK;
}

/* Reads the cel/ list again when the cached one is older than celeb_refresh_ms. */
static int refresh_celebs(struct feed *f, struct kvc_err *err)
{
    uint64_t now = mono_ms();
    if (f->celebs_at_ms && f->o.celeb_refresh_ms >= 0 &&
        now - f->celebs_at_ms < (uint64_t)f->o.celeb_refresh_ms)
        return KVC_OK;
    free_celebs(f);
    struct kvc_scan_args a = {.start = "cel/", .start_len = 4, .end = "cel0", .end_len = 4,
                              .limit = 1000, .keys_only = true};
    uint8_t cur[KVC_MAX_KEY + 64];
    for (;;) {
        struct kvc_scan_result r;
        struct kvc_err e;
        int rc = kvc_scan(f->c, &a, &f->call, &r, &e);
        if (rc != KVC_OK) {
            copy_err(err, &e);
            f->celebs_at_ms = 0;
            return rc;
        }
        for (size_t i = 0; i < r.n; i++) {
            char name[FEED_MAX_NAME + 1];
            size_t len = r.items[i].key_len - 4;
            if (r.items[i].key_len <= 4 || len > FEED_MAX_NAME)
                continue;
            memcpy(name, r.items[i].key + 4, len);
            name[len] = '\0';
            if (feed_check_name(name, NULL) == KVC_OK && add_celeb(f, name) != KVC_OK) {
                kvc_scan_result_free(&r);
                return set_err(err, KVC_NOMEM, "%sout of memory", "");
            }
        }
        bool more = r.cursor && r.cursor_len <= sizeof cur;
        if (more) {
            memcpy(cur, r.cursor, r.cursor_len);
            a.cursor = cur;
            a.cursor_len = r.cursor_len;
        }
        kvc_scan_result_free(&r);
        if (!more)
            break;
    }
    f->celebs_at_ms = now ? now : 1;
    return KVC_OK;
}

/* --- follow ---------------------------------------------------------------------------- */

static int follow_op(struct feed *f, const char *user, const char *author, bool on,
                     struct kvc_err *err)
{
    int rc;
    if ((rc = feed_check_name(user, err)) != KVC_OK ||
        (rc = feed_check_name(author, err)) != KVC_OK)
        return rc;
    if (strcmp(user, author) == 0)
        return set_err(err, KVC_INVALID, "'%.100s' cannot follow itself", user);
    char k1[KEY_MAX], k2[KEY_MAX], val[24];
    size_t l1 = key2(k1, "fl", author, user), l2 = key2(k2, "fg", user, author);
    size_t vl = (size_t)snprintf(val, sizeof val, "%llu", (unsigned long long)wall_us());
    struct kvc_op ops[2];
    memset(ops, 0, sizeof ops);
    const char *keys[2] = {k1, k2};
    size_t lens[2] = {l1, l2};
    for (int i = 0; i < 2; i++) {
        ops[i].type = on ? KVC_OP_PUT : KVC_OP_DELETE;
        ops[i].key = keys[i];
        ops[i].key_len = lens[i];
        if (on) {
            ops[i].value = val;
            ops[i].value_len = vl;
        }
        ops[i].call = f->call;
    }
    struct kvc_err e;
    if ((rc = kvc_exec(f->c, ops, 2, &e)) != KVC_OK) {
        copy_err(err, &e);
        return rc;
    }
    for (int i = 0; i < 2; i++)
        if (ops[i].err.code != KVC_OK) {
            copy_err(err, &ops[i].err);
            return ops[i].err.code;
        }
    return KVC_OK;
}

int feed_follow(struct feed *f, const char *user, const char *author, struct kvc_err *err)
{
    return follow_op(f, user, author, true, err);
}

int feed_unfollow(struct feed *f, const char *user, const char *author, struct kvc_err *err)
{
    return follow_op(f, user, author, false, err);
}

/* --- post ------------------------------------------------------------------------------ */

struct names {
    char **v;
    size_t n, cap;
};

static void names_free(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
    *ns = (struct names){0};
}

static int names_add(struct names *ns, const uint8_t *p, size_t len)
{
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 64;
        char **v = realloc(ns->v, cap * sizeof *v);
        if (!v)
            return KVC_NOMEM;
        ns->v = v;
        ns->cap = cap;
    }
    char *s = malloc(len + 1);
    if (!s)
        return KVC_NOMEM;
    memcpy(s, p, len);
    s[len] = '\0';
    ns->v[ns->n++] = s;
    return KVC_OK;
}

/* Up to max followers of author (scan fl/<author>/, keys only). */
static int followers(struct feed *f, const char *author, size_t max, struct names *out,
                     struct kvc_err *err)
{
    char start[KEY_MAX], end[KEY_MAX];
    size_t sl = key2(start, "fl", author, NULL), el = key_end(end, "fl", author);
    struct kvc_scan_args a = {.start = start, .start_len = sl, .end = end, .end_len = el,
                              .keys_only = true};
    uint8_t cur[KVC_MAX_KEY + 64];
    while (out->n < max) {
        size_t want = max - out->n;
        a.limit = want > 1000 ? 1000 : (uint32_t)want;
        struct kvc_scan_result r;
        struct kvc_err e;
        int rc = kvc_scan(f->c, &a, &f->call, &r, &e);
        if (rc != KVC_OK) {
            copy_err(err, &e);
            return rc;
        }
        for (size_t i = 0; i < r.n; i++) {
            if (r.items[i].key_len <= sl || r.items[i].key_len - sl > FEED_MAX_NAME)
                continue;
            if (names_add(out, r.items[i].key + sl, r.items[i].key_len - sl) != KVC_OK) {
                kvc_scan_result_free(&r);
                return set_err(err, KVC_NOMEM, "%sout of memory", "");
            }
        }
        bool more = r.cursor && r.cursor_len <= sizeof cur && r.n;
        if (more) {
            memcpy(cur, r.cursor, r.cursor_len);
            a.cursor = cur;
            a.cursor_len = r.cursor_len;
        }
        kvc_scan_result_free(&r);
        if (!more)
            break;
    }
    return KVC_OK;
}

struct fan_slot {
    struct kvc_op op;
    struct feed *f;
    struct fan_slot *next_free;
    char key[KEY_MAX];
};

static void fan_done(struct kvc_op *op, void *arg)
{
    struct fan_slot *s = arg;
    struct feed *f = s->f;
    f->fan_done++;
    if (op->err.code != KVC_OK) {
        if (!f->fan_failed)
            f->fan_err = op->err;
        f->fan_failed++;
    }
    s->next_free = f->fan_free;
    f->fan_free = s;
}

/* Puts tl/<follower>/<inv>/<id> -> val for every follower, at most fanout_window in
 * flight. Answers come back in any order, so a slot returns to the free list only in
 * its op's completion callback. */
static void fan_out(struct feed *f, const struct names *fol, const char *id, const char *val,
                    size_t val_len)
{
    size_t n = fol->n, nslots = f->o.fanout_window < n ? f->o.fanout_window : n;
    f->fan_done = 0;
    f->fan_failed = 0;
    f->fan_free = NULL;
    if (!n)
        return;
    struct fan_slot *slots = calloc(nslots, sizeof *slots);
    if (!slots) {
        f->fan_failed = (uint32_t)n;
        f->fan_err = (struct kvc_err){.code = KVC_NOMEM, .msg = "out of memory"};
        return;
    }
    for (size_t i = 0; i < nslots; i++) {
        slots[i].f = f;
        slots[i].next_free = f->fan_free;
        f->fan_free = &slots[i];
    }
    size_t next = 0, submitted = 0;
    while (next < n || submitted > f->fan_done) {
        while (next < n && f->fan_free) {
            struct fan_slot *s = f->fan_free;
            f->fan_free = s->next_free;
            s->op = (struct kvc_op){.type = KVC_OP_PUT, .value = val, .value_len = val_len,
                                    .call = f->call};
            s->op.key = s->key;
            s->op.key_len = key_entry(s->key, "tl", fol->v[next], id);
            next++;
            struct kvc_err e;
            if (kvc_submit(f->c, &s->op, fan_done, s, &e) != KVC_OK) {
                if (!f->fan_failed)
                    f->fan_err = e;
                f->fan_failed++;
                s->next_free = f->fan_free;
                f->fan_free = s;
                continue;
            }
            submitted++;
        }
        if (submitted > f->fan_done) {
            struct kvc_err e;
            int r = kvc_poll(f->c, -1, &e);   /* failures complete ops: fan_done counts */
            if (r == 0 && kvc_pending(f->c) == 0)
                break;   /* cannot happen by kvc_poll's contract; never spin */
        }
    }
    free(slots);
}

/* The post is stored but fanning it out failed before any timeline was written: the
 * status of that failure, with err saying the post exists. */
static int stored_but(const struct feed_post_result *out, int rc, struct kvc_err *err)
{
    if (err) {
        char why[sizeof err->msg];
        memcpy(why, err->msg, sizeof why);
        snprintf(err->msg, sizeof err->msg, "post %s stored, not fanned out: %.90s", out->id,
                 why);
        err->code = rc;
    }
    return rc;
}

int feed_post(struct feed *f, const char *author, const void *body, size_t body_len,
              struct feed_post_result *out, struct kvc_err *err)
{
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = feed_check_name(author, err)) != KVC_OK)
        return rc;
    if (body_len > FEED_MAX_BODY)
        return set_err(err, KVC_TOO_LARGE, "post body longer than %s bytes", "65536");
    uint64_t t = wall_us();
    if (t <= f->last_us)
        t = f->last_us + 1;
    f->last_us = t;
    snprintf(out->id, sizeof out->id, "%016llx%08x%08x", (unsigned long long)(UINT64_MAX - t),
             fnv32(author), f->counter++);
    out->time_us = t;

    char key[KEY_MAX];
    size_t kl = key_entry(key, "post", author, out->id);
    struct kvc_err e;
    if ((rc = kvc_put(f->c, key, kl, body, body_len, &f->call, &e)) != KVC_OK) {
        copy_err(err, &e);
        return rc;
    }

    if ((rc = refresh_celebs(f, err)) != KVC_OK)
        return stored_but(out, rc, err);
    if (in_list(f->celebs, f->n_celebs, author)) {
        out->celebrity = true;
        return KVC_OK;
    }
    struct names fol = {0};
    size_t max = (size_t)f->o.celebrity_threshold + 1;
    if ((rc = followers(f, author, max, &fol, err)) != KVC_OK) {
        names_free(&fol);
        return stored_but(out, rc, err);
    }
    if (fol.n >= max) {
        /* A celebrity from now on: mark it (sticky) and leave the followers to read it. */
        char ck[KEY_MAX], cv[24];
        size_t cl = (size_t)snprintf(ck, sizeof ck, "cel/%s", author);
        size_t cvl = (size_t)snprintf(cv, sizeof cv, "%zu", fol.n);
        names_free(&fol);
        if ((rc = kvc_put(f->c, ck, cl, cv, cvl, &f->call, &e)) != KVC_OK) {
            copy_err(err, &e);
            return stored_but(out, rc, err);
        }
        add_celeb(f, author);
        out->celebrity = true;
        return KVC_OK;
    }
    char val[FEED_MAX_NAME + FEED_ID_LEN + 2];
    size_t vl = (size_t)snprintf(val, sizeof val, "%s/%s", author, out->id);
    fan_out(f, &fol, out->id, val, vl);
    out->fanned_out = (uint32_t)fol.n - f->fan_failed;
    out->fanout_failed = f->fan_failed;
    names_free(&fol);
    if (f->fan_failed) {
        if (err) {
            err->code = f->fan_err.code;
            snprintf(err->msg, sizeof err->msg, "post %s stored; %u of %u timelines not written: %.60s",
                     out->id, out->fanout_failed, out->fanout_failed + out->fanned_out,
                     f->fan_err.msg);
        }
        return f->fan_err.code;
    }
    return KVC_OK;
}

/* --- timeline -------------------------------------------------------------------------- */

/* One entry read from a source, before the merge. */
struct entry {
    char id[FEED_ID_LEN + 1];
    char *author;          /* owned */
    uint8_t *body;         /* owned; NULL for a tl/ entry until its body is fetched */
    size_t body_len;
};

/* One sorted source: the user's tl/ range or one celebrity's post/ range. */
struct source {
    const char *celeb;     /* NULL: the tl/ source */
    char prefix[KEY_MAX], start[KEY_MAX], end[KEY_MAX];
    size_t prefix_len, start_len, end_len;
    struct entry *e;
    size_t n, pos;
    uint8_t cur[KVC_MAX_KEY + 64];
    size_t cur_len;        /* 0: exhausted */
};

static void entry_free(struct entry *e)
{
    free(e->author);
    free(e->body);
}

static void source_free(struct source *s)
{
    for (size_t i = s->pos; i < s->n; i++)
        entry_free(&s->e[i]);
    free(s->e);
}

/* Takes the items of one scan page into s; keeps its cursor. */
static int source_take(struct source *s, const struct kvc_scan_result *r)
{
    struct entry *e = realloc(s->e, (s->n + r->n + 1) * sizeof *e);
    if (!e)
        return KVC_NOMEM;
    s->e = e;
    for (size_t i = 0; i < r->n; i++) {
        const struct kvc_scan_item *it = &r->items[i];
        struct entry en = {0};
        if (it->key_len <= s->prefix_len ||
            !parse_tail(it->key + s->prefix_len, it->key_len - s->prefix_len, en.id))
            continue;   /* not written by this library: skipped */
        if (s->celeb) {
            en.author = strdup(s->celeb);
            en.body = malloc(it->value_len + 1);
            if (en.body) {
                memcpy(en.body, it->value, it->value_len);
                en.body[it->value_len] = '\0';
            }
            en.body_len = it->value_len;
        } else {
            const uint8_t *slash = memchr(it->value, '/', it->value_len);
            size_t alen = slash ? (size_t)(slash - it->value) : 0;
            if (!alen || alen > FEED_MAX_NAME)
                continue;
            en.author = malloc(alen + 1);
            if (en.author) {
                memcpy(en.author, it->value, alen);
                en.author[alen] = '\0';
            }
        }
        if (!en.author || (s->celeb && !en.body)) {
            entry_free(&en);
            return KVC_NOMEM;
        }
        s->e[s->n++] = en;
    }
    s->cur_len = 0;
    if (r->cursor && r->cursor_len <= sizeof s->cur && r->n) {
        memcpy(s->cur, r->cursor, r->cursor_len);
        s->cur_len = r->cursor_len;
    }
    return KVC_OK;
}

static void scan_args(const struct source *s, uint32_t want, struct kvc_scan_args *a)
{
    *a = (struct kvc_scan_args){.start = s->start, .start_len = s->start_len, .end = s->end,
                                .end_len = s->end_len, .limit = want};
    if (s->cur_len) {
        a->cursor = s->cur;
        a->cursor_len = s->cur_len;
    }
}

/* Reads `want` entries of every source (all first pages pipelined, then whatever source
 * came back short but not exhausted, one page at a time). */
static int fill_sources(struct feed *f, struct source *src, size_t n, uint32_t want,
                        struct kvc_err *err)
{
    struct kvc_op *ops = calloc(n, sizeof *ops);
    if (!ops)
        return set_err(err, KVC_NOMEM, "%sout of memory", "");
    for (size_t i = 0; i < n; i++) {
        ops[i].type = KVC_OP_SCAN;
        ops[i].call = f->call;
        scan_args(&src[i], want, &ops[i].scan);
    }
    struct kvc_err e;
    int rc = kvc_exec(f->c, ops, n, &e);
    if (rc != KVC_OK)
        copy_err(err, &e);
    for (size_t i = 0; i < n; i++) {
        if (rc == KVC_OK && ops[i].err.code != KVC_OK) {
            rc = ops[i].err.code;
            copy_err(err, &ops[i].err);
        }
        if (rc == KVC_OK && source_take(&src[i], &ops[i].scan_result) != KVC_OK)
            rc = set_err(err, KVC_NOMEM, "%sout of memory", "");
        kvc_scan_result_free(&ops[i].scan_result);
    }
    free(ops);
    for (size_t i = 0; rc == KVC_OK && i < n; i++) {
        struct source *s = &src[i];
        while (rc == KVC_OK && s->n < want && s->cur_len) {
            struct kvc_scan_args a;
            scan_args(s, want - (uint32_t)s->n, &a);
            struct kvc_scan_result r;
            if ((rc = kvc_scan(f->c, &a, &f->call, &r, &e)) != KVC_OK) {
                copy_err(err, &e);
                break;
            }
            if (source_take(s, &r) != KVC_OK)
                rc = set_err(err, KVC_NOMEM, "%sout of memory", "");
            kvc_scan_result_free(&r);
        }
    }
    return rc;
}

/* Fetches the bodies of the tl/ entries in items (pipelined gets of their post/ keys). */
static int fetch_bodies(struct feed *f, struct feed_item *items, size_t n, struct kvc_err *err)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += items[i].body == NULL;
    if (!m)
        return KVC_OK;
    struct kvc_op *ops = calloc(m, sizeof *ops);
    char (*keys)[KEY_MAX] = calloc(m, KEY_MAX);
    size_t *which = calloc(m, sizeof *which);
    if (!ops || !keys || !which) {
        free(ops);
        free(keys);
        free(which);
        return set_err(err, KVC_NOMEM, "%sout of memory", "");
    }
    for (size_t i = 0, j = 0; i < n; i++) {
        if (items[i].body)
            continue;
        ops[j].type = KVC_OP_GET;
        ops[j].key = keys[j];
        ops[j].key_len = key_entry(keys[j], "post", items[i].author, items[i].id);
        ops[j].call = f->call;
        which[j++] = i;
    }
    struct kvc_err e;
    int rc = kvc_exec(f->c, ops, m, &e);
    if (rc != KVC_OK)
        copy_err(err, &e);
    for (size_t j = 0; j < m; j++) {
        struct feed_item *it = &items[which[j]];
        if (rc == KVC_OK && ops[j].err.code == KVC_OK) {
            it->body = ops[j].result.data;   /* NUL-terminated by the library */
            it->body_len = ops[j].result.len;
            ops[j].result.data = NULL;
        } else if (rc == KVC_OK && ops[j].err.code != KVC_NOT_FOUND &&
                   ops[j].err.code != KVC_OK) {
            rc = ops[j].err.code;
            copy_err(err, &ops[j].err);
        }
        kvc_value_free(&ops[j].result);
        if (!it->body) {
            it->missing = true;
            it->body = calloc(1, 1);
            it->body_len = 0;
        }
    }
    free(ops);
    free(keys);
    free(which);
    return rc;
}

void feed_page_free(struct feed_page *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].author);
        free(p->items[i].body);
    }
    free(p->items);
    memset(p, 0, sizeof *p);
}

static int source_init(struct source *s, const char *user, const char *celeb, const char *cursor)
{
    memset(s, 0, sizeof *s);
    s->celeb = celeb;
    const char *p = celeb ? "post" : "tl", *who = celeb ? celeb : user;
    s->prefix_len = key2(s->prefix, p, who, NULL);
    s->end_len = key_end(s->end, p, who);
    if (cursor && *cursor) {
        /* Exclusive start: the cursor entry's key followed by a NUL byte. */
        s->start_len = key_entry(s->start, p, who, cursor) + 1;
        s->start[s->start_len - 1] = '\0';
    } else {
        memcpy(s->start, s->prefix, s->prefix_len);
        s->start_len = s->prefix_len;
    }
    return KVC_OK;
}

int feed_timeline(struct feed *f, const char *user, const char *cursor, uint32_t limit,
                  struct feed_page *page, struct kvc_err *err)
{
    int rc;
    memset(page, 0, sizeof *page);
    if ((rc = feed_check_name(user, err)) != KVC_OK)
        return rc;
    if (cursor && *cursor && (strlen(cursor) != FEED_CURSOR_LEN || !is_hex(cursor, FEED_CURSOR_LEN)))
        return set_err(err, KVC_INVALID, "bad cursor '%.64s' (want 32 lowercase hex digits)",
                       cursor);
    if (limit == 0)
        limit = DEFAULT_LIMIT;
    if (limit > FEED_MAX_LIMIT)
        return set_err(err, KVC_INVALID, "limit above %s", "1000");
    if ((rc = refresh_celebs(f, err)) != KVC_OK)
        return rc;

    /* Which celebrities does user follow? One pipelined get of fg/<user>/<c> each. */
    size_t nc = f->n_celebs, nsrc = 1;
    struct source *src = calloc(nc + 1, sizeof *src);
    if (!src)
        return set_err(err, KVC_NOMEM, "%sout of memory", "");
    if (nc) {
        struct kvc_op *ops = calloc(nc, sizeof *ops);
        char (*keys)[KEY_MAX] = calloc(nc, KEY_MAX);
        if (!ops || !keys) {
            free(ops);
            free(keys);
            free(src);
            return set_err(err, KVC_NOMEM, "%sout of memory", "");
        }
        for (size_t i = 0; i < nc; i++) {
            ops[i].type = KVC_OP_GET;
            ops[i].key = keys[i];
            ops[i].key_len = key2(keys[i], "fg", user, f->celebs[i]);
            ops[i].call = f->call;
        }
        struct kvc_err e;
        rc = kvc_exec(f->c, ops, nc, &e);
        if (rc != KVC_OK)
            copy_err(err, &e);
        for (size_t i = 0; i < nc; i++) {
            if (rc == KVC_OK && ops[i].err.code == KVC_OK)
                source_init(&src[nsrc++], user, f->celebs[i], cursor);
            else if (rc == KVC_OK && ops[i].err.code != KVC_NOT_FOUND) {
                rc = ops[i].err.code;
                copy_err(err, &ops[i].err);
            }
            kvc_value_free(&ops[i].result);
        }
        free(ops);
        free(keys);
        if (rc != KVC_OK) {
            free(src);
            return rc;
        }
    }
    source_init(&src[0], user, NULL, cursor);

    /* limit + 1 from every source: the extra one says whether there is a next page. */
    rc = fill_sources(f, src, nsrc, limit + 1, err);
    struct feed_item *items = rc == KVC_OK ? calloc(limit + 1, sizeof *items) : NULL;
    if (rc == KVC_OK && !items)
        rc = set_err(err, KVC_NOMEM, "%sout of memory", "");
    size_t n = 0;
    while (rc == KVC_OK && n < limit + 1) {
        struct source *best = NULL;
        for (size_t i = 0; i < nsrc; i++)
            if (src[i].pos < src[i].n &&
                (!best || strcmp(src[i].e[src[i].pos].id, best->e[best->pos].id) < 0))
                best = &src[i];
        if (!best)
            break;
        struct entry *en = &best->e[best->pos++];
        /* The same post from two sources (fanned out before its author became a
         * celebrity): keep one, preferring the one that carries its body. */
        if (n && strcmp(items[n - 1].id, en->id) == 0) {
            if (!items[n - 1].body && en->body) {
                items[n - 1].body = en->body;
                items[n - 1].body_len = en->body_len;
                en->body = NULL;
            }
            entry_free(en);
            continue;
        }
        struct feed_item *it = &items[n++];
        memcpy(it->id, en->id, sizeof it->id);
        it->time_us = id_time_us(en->id);
        it->author = en->author;
        it->body = en->body;
        it->body_len = en->body_len;
        en->author = NULL;
        en->body = NULL;
    }
    for (size_t i = 0; i < nsrc; i++)
        source_free(&src[i]);
    free(src);
    if (rc == KVC_OK && n > limit) {
        free(items[limit].author);
        free(items[limit].body);
        n = limit;
        memcpy(page->cursor, items[n - 1].id, FEED_CURSOR_LEN + 1);
    }
    page->items = items;
    page->n = n;
    if (rc == KVC_OK)
        rc = fetch_bodies(f, items, n, err);
    if (rc != KVC_OK)
        feed_page_free(page);
    return rc;
}
