/* client/kvctl/main.c -- the kvd command-line client: options, commands, exit codes.
 *
 * (1) Every option is known to one parser, with the commands it applies to, so global
 *     options may come before or after the command and a misplaced one is a usage error
 *     (exit 2) naming it, never silently ignored.
 * (2) Arguments are checked before connecting: a usage error never touches the network.
 * (3) Library statuses map to exit codes in exit_for() only (kvctl.h lists them). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "client/kvctl/kvctl.h"
#include "kv/client.h"

enum cmd {
    CMD_NONE = 0, CMD_PUT = 1, CMD_GET = 2, CMD_DEL = 4, CMD_SCAN = 8, CMD_HELP = 16,
    CMD_STATUS = 32, CMD_RING = 64, CMD_CAS = 128
};
#define ALL_CMDS \
    (CMD_NONE | CMD_PUT | CMD_GET | CMD_DEL | CMD_SCAN | CMD_HELP | CMD_STATUS | CMD_RING | \
     CMD_CAS)

enum opt_id {
    O_NODES, O_CONSISTENCY, O_TIMEOUT, O_JSON, O_HEX, O_HELP, O_FILE, O_TTL, O_TTL_MS, O_RAW,
    O_PREFIX, O_START, O_END, O_LIMIT, O_CURSOR, O_ALL, O_KEYS_ONLY, O_LOCAL, O_EXPECT,
    O_EXPECT_ABSENT, O_COUNT
};

static const struct opt {
    const char *name;
    char short_name;
    bool has_arg;
    int cmds;            /* commands it applies to; ALL_CMDS for global options */
} opts[O_COUNT] = {
    [O_NODES] = {"nodes", 'n', true, ALL_CMDS},
    [O_CONSISTENCY] = {"consistency", 'c', true, ALL_CMDS},
    [O_TIMEOUT] = {"timeout", 0, true, ALL_CMDS},
    [O_JSON] = {"json", 0, false, ALL_CMDS},
    [O_HEX] = {"hex", 0, false, ALL_CMDS},
    [O_HELP] = {"help", 'h', false, ALL_CMDS},
    [O_FILE] = {"file", 'f', true, CMD_PUT | CMD_CAS},
    [O_TTL] = {"ttl", 0, true, CMD_PUT},
    [O_TTL_MS] = {"ttl-ms", 0, true, CMD_PUT},
    [O_RAW] = {"raw", 0, false, CMD_GET},
    [O_PREFIX] = {"prefix", 0, true, CMD_SCAN},
    [O_START] = {"start", 0, true, CMD_SCAN},
    [O_END] = {"end", 0, true, CMD_SCAN},
    [O_LIMIT] = {"limit", 0, true, CMD_SCAN},
    [O_CURSOR] = {"cursor", 0, true, CMD_SCAN},
    [O_ALL] = {"all", 0, false, CMD_SCAN},
    [O_KEYS_ONLY] = {"keys-only", 0, false, CMD_SCAN},
    [O_LOCAL] = {"local", 0, false, CMD_GET},
    [O_EXPECT] = {"expect", 0, true, CMD_CAS},
    [O_EXPECT_ABSENT] = {"expect-absent", 0, false, CMD_CAS},
};

struct args {
    bool set[O_COUNT];
    const char *val[O_COUNT];
    enum cmd cmd;
    const char *cmd_name;
    const char *pos[4];
    int npos;
};

static int usage(const char *fmt, const char *a)
{
    fputs("kvctl: ", stderr);
    fprintf(stderr, fmt, a);
    fputs("\n(try 'kvctl --help')\n", stderr);
    return KVCTL_EXIT_USAGE;
}

static enum cmd cmd_of(const char *s)
{
    static const struct { const char *name; enum cmd c; } cmds[] = {
        {"put", CMD_PUT}, {"get", CMD_GET}, {"del", CMD_DEL}, {"delete", CMD_DEL},
        {"scan", CMD_SCAN}, {"help", CMD_HELP}, {"status", CMD_STATUS}, {"ring", CMD_RING},
        {"cas", CMD_CAS}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(s, cmds[i].name) == 0)
            return cmds[i].c;
    return CMD_NONE;
}

static int find_opt(const char *arg, const char **inline_val)
{
    *inline_val = NULL;
    if (arg[1] != '-') {
        for (int i = 0; i < O_COUNT; i++)
            if (opts[i].short_name && arg[1] == opts[i].short_name && arg[2] == '\0')
                return i;
        return -1;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    for (int i = 0; i < O_COUNT; i++)
        if (strlen(opts[i].name) == n && strncmp(opts[i].name, name, n) == 0) {
            if (eq)
                *inline_val = eq + 1;
            return i;
        }
    return -1;
}

static int parse(int argc, char **argv, struct args *a)
{
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_pos || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (a->cmd_name == NULL) {
                a->cmd_name = arg;
                a->cmd = cmd_of(arg);
                if (a->cmd == CMD_NONE)
                    return usage("unknown command '%s'", arg);
            } else if (a->npos < 4) {
                a->pos[a->npos++] = arg;
            } else {
                return usage("too many arguments (at '%s')", arg);
            }
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_pos = true;
            continue;
        }
        const char *v;
        int id = find_opt(arg, &v);
        if (id < 0)
            return usage("unknown option '%s'", arg);
        if (opts[id].has_arg && !v) {
            if (i + 1 >= argc)
                return usage("option '%s' needs a value", arg);
            v = argv[++i];
        } else if (!opts[id].has_arg && v) {
            return usage("option '%s' takes no value", arg);
        }
        a->set[id] = true;
        a->val[id] = v;
    }
    return 0;
}

/* Parses a decimal number into *out (at most max); 0 or a usage error. */
static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || v > max) {
        fprintf(stderr, "kvctl: --%s wants a number up to %llu, not '%s'\n", opt,
                (unsigned long long)max, s);
        return KVCTL_EXIT_USAGE;
    }
    *out = v;
    return 0;
}

static int exit_for(int code)
{
    switch (code) {
    case KVC_OK: return KVCTL_EXIT_OK;
    case KVC_NOT_FOUND: return KVCTL_EXIT_NOT_FOUND;
    case KVC_CONN: return KVCTL_EXIT_CONN;
    case KVC_TIMEOUT: return KVCTL_EXIT_TIMEOUT;
    case KVC_UNAVAILABLE:
    case KVC_OVERLOADED:
    case KVC_SHUTDOWN: return KVCTL_EXIT_UNAVAILABLE;
    default: return KVCTL_EXIT_SERVER;
    }
}

/* Reads all of f into *out; 0 or -1 (errno set). */
static int slurp(FILE *f, struct kvctl_bytes *out)
{
    size_t cap = 65536;
    out->p = malloc(cap + 1);
    out->len = 0;
    if (!out->p)
        return -1;
    for (;;) {
        if (out->len == cap) {
            uint8_t *p = realloc(out->p, cap * 2 + 1);
            if (!p)
                return -1;
            out->p = p;
            cap *= 2;
        }
        size_t n = fread(out->p + out->len, 1, cap - out->len, f);
        out->len += n;
        if (n == 0)
            break;
    }
    out->p[out->len] = '\0';
    return ferror(f) ? -1 : 0;
}

/* Decodes a key argument and checks it is sendable. */
static int key_arg(const struct args *a, const char *s, struct kvctl_bytes *key)
{
    char why[128];
    if (kvctl_decode_arg(s, a->set[O_HEX], key, why) != 0)
        return usage("bad key: %s", why);
    if (key->len == 0 || key->len > KVC_MAX_KEY) {
        const char *msg = key->len ? "key longer than 4096 bytes" : "key is empty";
        kvctl_bytes_free(key);
        return usage("%s", msg);
    }
    return 0;
}

struct ctx {
    struct args a;
    struct kvctl_out out;
    struct kvc_opts copts;
    struct kvc_call call;
    struct kvc_client *c;
};

static int fail(struct ctx *x, const struct kvc_err *e)
{
    kvctl_print_error(&x->out, kvc_status_name(e->code), e->msg);
    return exit_for(e->code);
}

static int do_put(struct ctx *x, const struct kvctl_bytes *key, struct kvctl_bytes *val)
{
    struct kvc_err e;
    if (kvc_put(x->c, key->p, key->len, val->p, val->len, &x->call, &e) != KVC_OK)
        return fail(x, &e);
    kvctl_print_ok(&x->out);
    return KVCTL_EXIT_OK;
}

static int do_get(struct ctx *x, const struct kvctl_bytes *key)
{
    struct kvc_err e;
    struct kvc_value v;
    if (kvc_get(x->c, key->p, key->len, &v, &x->call, &e) != KVC_OK)
        return fail(x, &e);
    if (x->a.set[O_RAW])
        fwrite(v.data, 1, v.len, stdout);
    else if (x->a.set[O_LOCAL])
        kvctl_print_record(&x->out, key->p, key->len, &v);
    else
        kvctl_print_value(&x->out, key->p, key->len, v.data, v.len);
    kvc_value_free(&v);
    return KVCTL_EXIT_OK;
}

static int do_del(struct ctx *x, const struct kvctl_bytes *key)
{
    struct kvc_err e;
    if (kvc_delete(x->c, key->p, key->len, &x->call, &e) != KVC_OK)
        return fail(x, &e);
    kvctl_print_ok(&x->out);
    return KVCTL_EXIT_OK;
}

/* Exit 0 applied; 1 not applied, with the current value printed (or, when the key has no
 * value, a NOT_APPLIED note); the usual codes for errors (TIMEOUT: unknown). */
static int do_cas(struct ctx *x, const struct kvctl_bytes *key, const struct kvctl_bytes *exp,
                  const struct kvctl_bytes *val)
{
    struct kvc_err e;
    struct kvc_value cur;
    bool applied = false, absent = x->a.set[O_EXPECT_ABSENT];
    if (kvc_cas(x->c, key->p, key->len, absent ? NULL : exp->p, absent ? 0 : exp->len, absent,
                val->p, val->len, &x->call, &applied, &cur, &e) != KVC_OK)
        return fail(x, &e);
    int rc = KVCTL_EXIT_OK;
    if (applied) {
        kvctl_print_ok(&x->out);
    } else if (cur.data) {
        if (!x->out.json)
            fputs("kvctl: not applied; current value:\n", stderr);
        kvctl_print_value(&x->out, key->p, key->len, cur.data, cur.len);
        rc = KVCTL_EXIT_NOT_FOUND;
    } else {
        kvctl_print_error(&x->out, "NOT_APPLIED", "not applied: the key has no value");
        rc = KVCTL_EXIT_NOT_FOUND;
    }
    kvc_value_free(&cur);
    return rc;
}

static int do_scan(struct ctx *x, struct kvc_scan_args *sa)
{
    bool all = x->a.set[O_ALL];
    uint8_t *cursor = NULL;   /* owned copy of the page's cursor, for the next request */
    int rc = KVCTL_EXIT_OK;
    for (;;) {
        struct kvc_scan_result r;
        struct kvc_err e;
        if (kvc_scan(x->c, sa, &x->call, &r, &e) != KVC_OK) {
            rc = fail(x, &e);
            break;
        }
        for (size_t i = 0; i < r.n; i++)
            kvctl_print_item(&x->out, r.items[i].key, r.items[i].key_len,
                             sa->keys_only ? NULL : r.items[i].value, r.items[i].value_len);
        free(cursor);
        cursor = r.cursor;          /* take it over from the result */
        sa->cursor = cursor;
        sa->cursor_len = r.cursor_len;
        r.cursor = NULL;
        r.cursor_len = 0;
        kvc_scan_result_free(&r);
        if (!cursor)
            break;
        if (!all) {
            kvctl_print_cursor(&x->out, cursor, sa->cursor_len);
            break;
        }
    }
    free(cursor);
    return rc;
}

/* status and ring: one node's view of the cluster. */
static int do_cluster(struct ctx *x)
{
    struct kvc_err e;
    struct kvc_cluster_status st;
    if (kvc_cluster_status(x->c, &st, &e) != KVC_OK)
        return fail(x, &e);
    if (x->a.cmd == CMD_STATUS)
        kvctl_print_status(&x->out, &st);
    else
        kvctl_print_ring(&x->out, &st);
    kvc_cluster_status_free(&st);
    return KVCTL_EXIT_OK;
}

/* Builds the value of a put from its argument, --file or stdin. */
static int put_value(struct ctx *x, struct kvctl_bytes *val)
{
    const char *arg = x->a.npos >= 2 ? x->a.pos[1] : NULL;
    if (x->a.set[O_FILE]) {
        if (arg)
            return usage("give the value either as an argument or with --file, not both%s", "");
        FILE *f = fopen(x->a.val[O_FILE], "rb");
        if (!f) {
            fprintf(stderr, "kvctl: cannot open %s: %s\n", x->a.val[O_FILE], strerror(errno));
            return KVCTL_EXIT_USAGE;
        }
        int r = slurp(f, val);
        fclose(f);
        if (r != 0) {
            fprintf(stderr, "kvctl: cannot read %s\n", x->a.val[O_FILE]);
            return KVCTL_EXIT_USAGE;
        }
        return 0;
    }
    if (!arg || strcmp(arg, "-") == 0) {
        if (slurp(stdin, val) != 0) {
            fprintf(stderr, "kvctl: cannot read the value from stdin\n");
            return KVCTL_EXIT_USAGE;
        }
        return 0;
    }
    char why[128];
    if (kvctl_decode_arg(arg, x->a.set[O_HEX], val, why) != 0)
        return usage("bad value: %s", why);
    return 0;
}

/* Reads scan options into sa; the buffers it points to are kept in bufs[0..3). */
static int scan_args(struct ctx *x, struct kvc_scan_args *sa, struct kvctl_bytes bufs[3])
{
    const struct args *a = &x->a;
    char why[128];
    if (a->set[O_PREFIX] && (a->set[O_START] || a->set[O_END]))
        return usage("--prefix cannot be combined with --start or --end%s", "");
    if (a->set[O_PREFIX]) {
        struct kvctl_bytes p;
        if (kvctl_decode_arg(a->val[O_PREFIX], a->set[O_HEX], &p, why) != 0)
            return usage("bad prefix: %s", why);
        int r = kvctl_prefix_end(&p, &bufs[1]);
        bufs[0] = p;
        if (r != 0)
            return usage("%s", "out of memory");
    } else {
        if (a->set[O_START] && kvctl_decode_arg(a->val[O_START], a->set[O_HEX], &bufs[0], why))
            return usage("bad --start: %s", why);
        if (a->set[O_END] && kvctl_decode_arg(a->val[O_END], a->set[O_HEX], &bufs[1], why))
            return usage("bad --end: %s", why);
    }
    /* Cursors are printed in hex whatever the mode, so they are always read as hex. */
    if (a->set[O_CURSOR] && kvctl_decode_arg(a->val[O_CURSOR], true, &bufs[2], why))
        return usage("bad --cursor: %s", why);
    if (a->set[O_LIMIT]) {
        uint64_t n;
        if (parse_u64("limit", a->val[O_LIMIT], UINT32_MAX, &n))
            return KVCTL_EXIT_USAGE;
        sa->limit = (uint32_t)n;
    }
    sa->start = bufs[0].p;
    sa->start_len = bufs[0].len;
    sa->end = bufs[1].p;
    sa->end_len = bufs[1].len;
    sa->cursor = bufs[2].p;
    sa->cursor_len = bufs[2].len;
    sa->keys_only = a->set[O_KEYS_ONLY];
    return 0;
}

/* Global options into the client and call options. */
static int setup(struct ctx *x)
{
    const struct args *a = &x->a;
    kvc_opts_default(&x->copts);
    const char *nodes = a->set[O_NODES] ? a->val[O_NODES] : getenv("KVD_NODES");
    if (nodes && *nodes)
        x->copts.addrs = nodes;
    /* One request per run: the first node that answers coordinates it, so learning the
     * ring first would only double the round trips (docs/kvctl.md). */
    x->copts.token_aware = false;
    if (a->set[O_TIMEOUT]) {
        uint64_t ms;
        if (parse_u64("timeout", a->val[O_TIMEOUT], UINT32_MAX, &ms) || ms == 0)
            return usage("--timeout wants a positive number of milliseconds%s", "");
        x->copts.timeout_ms = (uint32_t)ms;
        if (ms < x->copts.connect_timeout_ms)
            x->copts.connect_timeout_ms = (uint32_t)ms;
    }
    if (a->set[O_CONSISTENCY] && kvc_consistency_parse(a->val[O_CONSISTENCY],
                                                       &x->call.consistency) != 0)
        return usage("unknown consistency level '%s'", a->val[O_CONSISTENCY]);
    if (a->set[O_TTL] && a->set[O_TTL_MS])
        return usage("give --ttl or --ttl-ms, not both%s", "");
    uint64_t ttl;
    if (a->set[O_TTL]) {
        if (parse_u64("ttl", a->val[O_TTL], UINT64_MAX / 1000, &ttl))
            return KVCTL_EXIT_USAGE;
        x->call.ttl_ms = ttl * 1000;
    }
    if (a->set[O_TTL_MS]) {
        if (parse_u64("ttl-ms", a->val[O_TTL_MS], UINT64_MAX, &ttl))
            return KVCTL_EXIT_USAGE;
        x->call.ttl_ms = ttl;
    }
    /* --local: the first node's own store, never another node (docs/kvctl.md). */
    x->call.local = a->set[O_LOCAL];
    if (a->set[O_RAW] && (a->set[O_JSON] || a->set[O_HEX]))
        return usage("--raw cannot be combined with --json or --hex%s", "");
    x->out.json = a->set[O_JSON];
    x->out.hex = a->set[O_HEX];
    return 0;
}

/* Whether n positional arguments fit cmd. */
static bool npos_ok(enum cmd cmd, int n)
{
    switch (cmd) {
    case CMD_PUT:
    case CMD_CAS: return n == 1 || n == 2;
    case CMD_GET:
    case CMD_DEL: return n == 1;
    default: return n == 0;
    }
}

static int run(struct ctx *x)
{
    struct args *a = &x->a;
    if (a->set[O_HELP] || a->cmd == CMD_HELP) {
        kvctl_help(stdout, a->cmd == CMD_HELP ? (a->npos ? a->pos[0] : NULL) : a->cmd_name);
        return KVCTL_EXIT_OK;
    }
    if (a->cmd == CMD_NONE) {
        kvctl_help(stderr, NULL);
        return KVCTL_EXIT_USAGE;
    }
    for (int i = 0; i < O_COUNT; i++)
        if (a->set[i] && !(opts[i].cmds & (int)a->cmd)) {
            fprintf(stderr, "kvctl: --%s does not apply to '%s'\n", opts[i].name, a->cmd_name);
            return KVCTL_EXIT_USAGE;
        }
    if (!npos_ok(a->cmd, a->npos))
        return usage("wrong number of arguments for '%s'", a->cmd_name);
    int rc = setup(x);
    if (rc)
        return rc;

    struct kvctl_bytes key = {0}, val = {0}, bufs[3] = {{0}};
    struct kvc_scan_args sa = {0};
    if (a->cmd == CMD_SCAN)
        rc = scan_args(x, &sa, bufs);
    else if (a->cmd != CMD_STATUS && a->cmd != CMD_RING)
        rc = key_arg(a, a->pos[0], &key);
    struct kvctl_bytes exp = {0};
    if (!rc && a->cmd == CMD_CAS) {
        char why[128];
        if (a->set[O_EXPECT] == a->set[O_EXPECT_ABSENT])
            rc = usage("cas needs exactly one of --expect VALUE and --expect-absent%s", "");
        else if (a->set[O_EXPECT] && kvctl_decode_arg(a->val[O_EXPECT], a->set[O_HEX], &exp,
                                                      why) != 0)
            rc = usage("bad --expect value: %s", why);
    }
    if (!rc && (a->cmd == CMD_PUT || a->cmd == CMD_CAS))
        rc = put_value(x, &val);
    if (!rc) {
        struct kvc_err e;
        if (kvc_connect(&x->copts, &x->c, &e) != KVC_OK) {
            rc = fail(x, &e);
        } else {
            switch (a->cmd) {
            case CMD_PUT: rc = do_put(x, &key, &val); break;
            case CMD_GET: rc = do_get(x, &key); break;
            case CMD_DEL: rc = do_del(x, &key); break;
            case CMD_CAS: rc = do_cas(x, &key, &exp, &val); break;
            case CMD_SCAN: rc = do_scan(x, &sa); break;
            case CMD_STATUS:
            case CMD_RING: rc = do_cluster(x); break;
            default: rc = KVCTL_EXIT_USAGE; break;
            }
            kvc_close(x->c);
        }
    }
    kvctl_bytes_free(&key);
    kvctl_bytes_free(&val);
    kvctl_bytes_free(&exp);
    for (int i = 0; i < 3; i++)
        kvctl_bytes_free(&bufs[i]);
    return rc;
}

int main(int argc, char **argv)
{
    struct ctx x;
    memset(&x, 0, sizeof x);
    int rc = parse(argc, argv, &x.a);
    if (rc == 0)
        rc = run(&x);
    if (fflush(stdout) != 0 && rc == KVCTL_EXIT_OK)
        rc = KVCTL_EXIT_SERVER;
    return rc;
}
