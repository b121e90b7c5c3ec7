/* server/config.c -- the settings table and its three readers (INI, flags, --help). */
#include "server/config.h"
#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster.h"
#include "common/addr.h"

enum opt_type { T_U32, T_U64, T_STR, T_SYNC, T_LOG, T_DOUBLE, T_LEVEL, T_BOOL, T_I64 };

struct opt {
    const char *name;
    enum opt_type type;
    size_t off;
    size_t size;        /* T_STR: buffer size */
    const char *help;
};

#define O(n, t, f, h) {n, t, offsetof(struct kv_config, f), sizeof(((struct kv_config *)0)->f), h}
static const struct opt g_opts[] = {
    O("node_id", T_U32, node_id, "this node's id, unique in the cluster, 1..65535 (1)"),
    O("listen", T_STR, listen, "client address host:port (127.0.0.1:7379)"),
    O("http", T_STR, http, "/health and /metrics address, or off (127.0.0.1:7380)"),
    O("data_dir", T_STR, data_dir, "RocksDB directory (./kvd-data)"),
    O("sync", T_SYNC, sync, "durability: always | batch | none (batch)"),
    O("batch_delay_us", T_U32, batch_delay_us, "sync=batch: longest group-commit wait (1000)"),
    O("max_key", T_U32, max_key, "largest key in bytes, at most 4096 (4096)"),
    O("max_value", T_U32, max_value, "largest value in bytes (1048576)"),
    O("max_frame", T_U32, max_frame, "largest frame payload in bytes (4194304)"),
    O("compress_threshold", T_U32, compress_threshold,
      "values at least this long are sent LZ4-compressed; 0 off (4096)"),
    O("scan_default_limit", T_U32, scan_default_limit, "scan page size when none given (100)"),
    O("scan_max_limit", T_U32, scan_max_limit, "largest scan page (10000)"),
    O("scan_max_bytes", T_U32, scan_max_bytes, "a scan page stops past this size (1048576)"),
    O("default_timeout_ms", T_U32, default_timeout_ms, "request timeout when none given (5000)"),
    O("tombstone_grace_s", T_U64, tombstone_grace_s,
      "tombstones/expired records are purged after this long (864000 = 10 days)"),
    O("block_cache_mb", T_U32, block_cache_mb, "RocksDB block cache (64)"),
    O("record_cache_mb", T_U32, record_cache_mb,
      "records recently read, kept in memory in front of RocksDB point reads; 0 off (64)"),
    O("write_buffer_mb", T_U32, write_buffer_mb,
      "RocksDB memtable per column family; after a full disk, writes resume once this "
      "much is free (64)"),
    O("storage_thread_nice", T_U32, storage_thread_nice,
      "storage threads run this much nicer than the event loop, which then keeps reading "
      "and shedding under load; 0..19 (10)"),
    O("max_output_mb", T_U32, max_output_mb,
      "per connection: stop reading while this much output is unsent (64)"),
    O("max_connections", T_U32, max_connections,
      "client connections at once; the excess gets OVERLOADED and is closed (10000)"),
    O("peer_reserved_connections", T_U32, peer_reserved_connections,
      "connections kept beyond max_connections for peer nodes (64)"),
    O("max_conn_inflight_bytes", T_U64, max_conn_inflight_bytes,
      "per connection: stop reading while this many request bytes await answers (16777216)"),
    O("max_conn_inflight_requests", T_U32, max_conn_inflight_requests,
      "per connection: stop reading while this many requests await answers (256)"),
    O("max_node_inflight_bytes", T_U64, max_node_inflight_bytes,
      "per node: answer new requests OVERLOADED while this many request bytes await "
      "answers (268435456)"),
    O("max_node_inflight_requests", T_U32, max_node_inflight_requests,
      "per node: answer new requests OVERLOADED while this many await answers; 0 off (4096)"),
    O("overload_queue_ms", T_U32, overload_queue_ms,
      "answer new requests OVERLOADED while those in flight are more than the node completes "
      "in this many ms; 0 off (100)"),
    O("overload_loop_lag_ms", T_U32, overload_loop_lag_ms,
      "answer new requests OVERLOADED while the event loop is busy this long per "
      "iteration (smoothed); 0 off (0)"),
    O("overload_retry_after_ms", T_U32, overload_retry_after_ms,
      "retry_after_ms sent with OVERLOADED (50)"),
    O("header_timeout_ms", T_U32, header_timeout_ms,
      "close a connection holding an incomplete frame this long (10000)"),
    O("idle_timeout_ms", T_U32, idle_timeout_ms,
      "close a client connection with nothing in flight idle this long; 0 never (0)"),
    O("shutdown_timeout_ms", T_U32, shutdown_timeout_ms,
      "longest a clean shutdown waits for in-flight requests (10000)"),
    O("log_level", T_LOG, log_level, "debug | info | warn | error (info)"),
    O("advertise", T_STR, advertise,
      "host:port (or name:port) peers and clients reach this node at (default: listen)"),
    O("seeds", T_STR, seeds,
      "comma-separated host:port of nodes to join through (none: a cluster of one)"),
    O("region", T_STR, region, "this node's region label (dc1)"),
    O("rack", T_STR, rack, "this node's rack label (rack1)"),
    O("tokens", T_STR, tokens,
      "comma-separated ring tokens this node owns, \\xNN escapes (default: num_tokens)"),
    O("num_tokens", T_U32, num_tokens, "default tokens drawn when tokens is not given (16)"),
    O("replication_factor", T_U32, replication_factor, "copies of every key (3)"),
    O("default_consistency", T_LEVEL, default_consistency,
      "level for requests that name none: one | two | three | quorum | all (quorum)"),
    O("gossip_interval_ms", T_U32, gossip_interval_ms, "gossip round period (200)"),
    O("phi_threshold", T_DOUBLE, phi_threshold, "failure detector: down above this phi (8)"),
    O("hint_max_per_node", T_U64, hint_max_per_node, "hints kept per down node (100000)"),
    O("hint_max_bytes", T_U64, hint_max_bytes, "bytes of hints kept in all (268435456)"),
    O("hint_max_age_s", T_U64, hint_max_age_s, "older hints are dropped, not replayed (10800)"),
    O("peer_queue_bytes", T_U32, peer_queue_bytes,
      "per peer: messages queued beyond this are dropped (8388608)"),
    O("peer_deadline_slack_ms", T_U32, peer_deadline_slack_ms,
      "how late a peer request may arrive past its deadline before a replica drops it (1000)"),
    O("debug", T_BOOL, debug, "allow the test-only debug_* settings: true | false (false)"),
    O("debug_clock_offset_ms", T_I64, debug_clock_offset_ms,
      "TEST ONLY, needs debug = true: shift this node's wall clock by N ms, signed (0)"),
    O("debug_skip_writeback", T_BOOL, debug_skip_writeback,
      "TEST ONLY, needs debug = true: LINEARIZABLE reads skip the write-back, so new->old "
      "inversions become possible (false)"),
    O("debug_linear_read_one", T_BOOL, debug_linear_read_one,
      "TEST ONLY, needs debug = true: LINEARIZABLE reads answer from the first replica reply "
      "alone (no quorum, no write-back), so they return stale values (false)"),
};
#undef O
#define N_OPTS (sizeof g_opts / sizeof g_opts[0])

void kv_config_default(struct kv_config *c)
{
    memset(c, 0, sizeof *c);
    c->node_id = 1;
    strcpy(c->listen, "127.0.0.1:7379");
    strcpy(c->http, "127.0.0.1:7380");
    strcpy(c->data_dir, "./kvd-data");
    c->sync = KV_SYNC_BATCH;
    c->batch_delay_us = 1000;
    c->max_key = 4096;
    c->max_value = 1u << 20;
    c->max_frame = 4u << 20;
    c->compress_threshold = 4096;
    c->scan_default_limit = 100;
    c->scan_max_limit = 10000;
    c->scan_max_bytes = 1u << 20;
    c->default_timeout_ms = 5000;
    c->tombstone_grace_s = 10 * 24 * 3600;
    c->block_cache_mb = 64;
    c->record_cache_mb = 64;
    c->write_buffer_mb = 64;
    c->max_output_mb = 64;
    c->storage_thread_nice = 10;
    c->max_connections = 10000;
    c->peer_reserved_connections = 64;
    c->max_conn_inflight_bytes = 16u << 20;
    c->max_conn_inflight_requests = 256;
    c->max_node_inflight_bytes = 256u << 20;
    c->max_node_inflight_requests = 4096;
    c->overload_queue_ms = 100;
    c->overload_loop_lag_ms = 0;
    c->overload_retry_after_ms = 50;
    c->header_timeout_ms = 10000;
    c->idle_timeout_ms = 0;
    c->shutdown_timeout_ms = 10000;
    c->log_level = KV_LOG_INFO;
    strcpy(c->region, "dc1");
    strcpy(c->rack, "rack1");
    c->num_tokens = 16;
    c->replication_factor = 3;
    c->default_consistency = 4;   /* QUORUM */
    c->gossip_interval_ms = 200;
    c->phi_threshold = 8;
    c->hint_max_per_node = 100000;
    c->hint_max_bytes = 256u << 20;
    c->hint_max_age_s = 3 * 3600;
    c->peer_queue_bytes = 8u << 20;
    c->peer_deadline_slack_ms = 1000;
}

static const char *const g_levels[KV_CONFIG_LEVELS] = {
    "default", "one", "two", "three", "quorum", "all", "local_one", "local_quorum",
    "each_quorum", "linearizable",
};

const char *kv_config_level_name(unsigned level)
{
    return level < KV_CONFIG_LEVELS ? g_levels[level] : "unknown";
}

int kv_config_level_parse(const char *s, unsigned *out)
{
    for (unsigned i = 0; i < KV_CONFIG_LEVELS; i++) {
        const char *a = s, *b = g_levels[i];
        while (*a && *b) {
            char ca = *a == '-' ? '_' : (char)(*a >= 'A' && *a <= 'Z' ? *a + 32 : *a);
            if (ca != *b)
                break;
            a++, b++;
        }
        if (!*a && !*b) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

enum kv_status kv_config_tokens(const char *spec, uint8_t *buf, struct kv_slice *out, size_t *n,
                                struct kv_err *err)
{
    *n = 0;
    size_t len = 0, start = 0;
    for (const char *p = spec;; p++) {
        if (*p == ',' || *p == '\0') {
            size_t tl = len - start;
            if (tl == 0 && *p == '\0' && *n == 0 && p == spec)
                return KV_OK;   /* no tokens at all */
            if (tl == 0)
                return kv_err_set(err, KV_INVALID, "tokens: empty token (#%zu)", *n + 1);
            if (tl > KV_CONFIG_MAX_TOKEN_LEN)
                return kv_err_set(err, KV_INVALID, "tokens: token #%zu is longer than %u bytes",
                                  *n + 1, KV_CONFIG_MAX_TOKEN_LEN);
            if (*n == KV_CONFIG_MAX_TOKENS)
                return kv_err_set(err, KV_INVALID, "tokens: more than %u", KV_CONFIG_MAX_TOKENS);
            out[(*n)++] = kv_slice_of(buf + start, tl);
            start = len;
            if (*p == '\0')
                return KV_OK;
            continue;
        }
        if (*p == '\\') {
            if (p[1] == 'x') {
                int hi = p[2] ? hexval(p[2]) : -1, lo = hi >= 0 && p[3] ? hexval(p[3]) : -1;
                if (hi < 0 || lo < 0)
                    return kv_err_set(err, KV_INVALID, "tokens: bad escape in token #%zu "
                                      "(want \\xNN)", *n + 1);
                buf[len++] = (uint8_t)(hi << 4 | lo);
                p += 3;
            } else if (p[1] == '\\' || p[1] == ',') {
                buf[len++] = (uint8_t)p[1];
                p++;
            } else {
                return kv_err_set(err, KV_INVALID, "tokens: bad escape in token #%zu "
                                  "(\\xNN, \\\\ or \\,)", *n + 1);
            }
            continue;
        }
        buf[len++] = (uint8_t)*p;
    }
}

enum kv_status kv_config_seeds(const char *spec, char *buf, const char **out, size_t max,
                               size_t *n, struct kv_err *err)
{
    *n = 0;
    strcpy(buf, spec);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ' || *t == '\t')
            t++;
        char *e = t + strlen(t);
        while (e > t && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        if (!*t)
            continue;
        struct kv_err inner;
        if (kv_addr_check(t, &inner) != KV_OK)   /* host names allowed: peer.c resolves */
            return kv_err_set(err, KV_INVALID, "seeds: %s", inner.msg);
        if (*n == max)
            return kv_err_set(err, KV_INVALID, "seeds: more than %zu addresses", max);
        out[(*n)++] = t;
    }
    out[*n] = NULL;
    return KV_OK;
}

const char *kv_config_advertise(const struct kv_config *c)
{
    return c->advertise[0] ? c->advertise : c->listen;
}

static const struct opt *find_opt(const char *name)
{
    char norm[64];
    size_t n = strlen(name);
    if (n >= sizeof norm)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        norm[i] = name[i] == '-' ? '_' : name[i];
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(g_opts[i].name, norm) == 0)
            return &g_opts[i];
    return NULL;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

enum kv_status kv_config_set(struct kv_config *c, const char *name, const char *value,
                             struct kv_err *err)
{
    const struct opt *o = find_opt(name);
    if (!o)
        return kv_err_set(err, KV_INVALID, "unknown setting '%s'", name);
    char *field = (char *)c + o->off;
    uint64_t v;
    switch (o->type) {
    case T_U32:
        if (parse_u64(value, UINT32_MAX, &v))
            return kv_err_set(err, KV_INVALID, "%s: '%s' is not a number in 0..%u", o->name,
                              value, UINT32_MAX);
        *(uint32_t *)field = (uint32_t)v;
        return KV_OK;
    case T_U64:
        if (parse_u64(value, UINT64_MAX, &v))
            return kv_err_set(err, KV_INVALID, "%s: '%s' is not a number", o->name, value);
        *(uint64_t *)field = v;
        return KV_OK;
    case T_STR:
        if (strlen(value) >= o->size)
            return kv_err_set(err, KV_INVALID, "%s: value longer than %zu bytes", o->name,
                              o->size - 1);
        strcpy(field, value);
        return KV_OK;
    case T_SYNC:
        if (kv_sync_parse(value, (enum kv_sync *)field))
            return kv_err_set(err, KV_INVALID, "sync: '%s' is not always, batch or none", value);
        return KV_OK;
    case T_LOG:
        if (kv_log_parse_level(value, (enum kv_log_level *)field))
            return kv_err_set(err, KV_INVALID, "log_level: '%s' is not debug, info, warn or error",
                              value);
        return KV_OK;
    case T_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(value, &end);
        if (errno || end == value || *end || !(d >= 0))
            return kv_err_set(err, KV_INVALID, "%s: '%s' is not a non-negative number", o->name,
                              value);
        *(double *)field = d;
        return KV_OK;
    }
    case T_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 || strcmp(value, "yes") == 0 ||
            strcmp(value, "on") == 0)
            *(bool *)field = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0 ||
                 strcmp(value, "no") == 0 || strcmp(value, "off") == 0)
            *(bool *)field = false;
        else
            return kv_err_set(err, KV_INVALID, "%s: '%s' is not true or false", o->name, value);
        return KV_OK;
    case T_I64: {
        char *end;
        errno = 0;
        long long n = strtoll(value, &end, 10);
        /* A day either way is plenty for a test and keeps every sum far from overflow. */
        if (errno || end == value || *end || n < -86400000LL || n > 86400000LL)
            return kv_err_set(err, KV_INVALID, "%s: '%s' is not a number in -86400000..86400000",
                              o->name, value);
        *(int64_t *)field = n;
        return KV_OK;
    }
    case T_LEVEL: {
        unsigned l;
        if (kv_config_level_parse(value, &l))
            return kv_err_set(err, KV_INVALID, "%s: '%s' is not a consistency level (one, two, "
                              "three, quorum, all, ...)", o->name, value);
        *(uint32_t *)field = l;
        return KV_OK;
    }
    }
    return kv_err_set(err, KV_INTERNAL, "bad option table");
}

struct ini_ctx {
    struct kv_config *c;
    struct kv_err *err;
    enum kv_status st;
};

/* Sections only group settings for the reader: "[storage] sync = always" and a bare
 * "sync = always" mean the same. */
static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    (void)section;
    struct ini_ctx *x = user;
    if (x->st != KV_OK)
        return 0;
    x->st = kv_config_set(x->c, name, value, x->err);
    return x->st == KV_OK;
}

enum kv_status kv_config_load_file(struct kv_config *c, const char *path, struct kv_err *err)
{
    struct kv_err inner = {0};
    struct ini_ctx x = {c, &inner, KV_OK};
    int rc = ini_parse(path, on_ini, &x);
    if (rc == -1)
        return kv_err_set(err, KV_INVALID, "cannot open config file %s", path);
    if (rc == -2)
        return kv_err_set(err, KV_NOMEM, "out of memory reading %s", path);
    if (rc > 0) {
        if (x.st != KV_OK)
            return kv_err_set(err, x.st, "%s:%d: %s", path, rc, inner.msg);
        return kv_err_set(err, KV_INVALID, "%s:%d: syntax error", path, rc);
    }
    return KV_OK;
}

enum kv_status kv_config_parse_args(struct kv_config *c, int argc, char **argv, bool *help,
                                    struct kv_err *err)
{
    *help = false;
    /* The file goes first wherever --config appears, so flags always override it. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *help = true;
            return KV_OK;
        }
        const char *path = NULL;
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0)
            path = i + 1 < argc ? argv[i + 1] : NULL;
        else if (strncmp(a, "--config=", 9) == 0)
            path = a + 9;
        else
            continue;
        if (!path)
            return kv_err_set(err, KV_INVALID, "--config needs a file name");
        enum kv_status s = kv_config_load_file(c, path, err);
        if (s != KV_OK)
            return s;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return kv_err_set(err, KV_INVALID, "unexpected argument '%s'", a);
        char name[64];
        const char *value;
        const char *eq = strchr(a + 2, '=');
        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (n >= sizeof name)
            return kv_err_set(err, KV_INVALID, "unknown flag '%s'", a);
        memcpy(name, a + 2, n);
        name[n] = '\0';
        if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return kv_err_set(err, KV_INVALID, "flag --%s needs a value", name);
            value = argv[++i];
        }
        if (strcmp(name, "config") == 0)
            continue;
        enum kv_status s = kv_config_set(c, name, value, err);
        if (s != KV_OK)
            return s;
    }
    return KV_OK;
}

enum kv_status kv_config_validate(const struct kv_config *c, struct kv_err *err)
{
    if (c->node_id == 0 || c->node_id > KV_NODE_ID_MAX)
        return kv_err_set(err, KV_INVALID, "node_id must be in 1..%u", KV_NODE_ID_MAX);
    if (c->max_key == 0 || c->max_key > 4096)
        return kv_err_set(err, KV_INVALID, "max_key must be in 1..4096");
    if (c->max_value == 0)
        return kv_err_set(err, KV_INVALID, "max_value must be at least 1");
    /* A put of the largest key and value must fit in one frame, with room for framing. */
    if ((uint64_t)c->max_frame < (uint64_t)c->max_value + c->max_key + 1024)
        return kv_err_set(err, KV_INVALID,
                          "max_frame (%u) must exceed max_value + max_key + 1024 (%u)",
                          c->max_frame, c->max_value + c->max_key + 1024);
    if (c->scan_default_limit == 0 || c->scan_default_limit > c->scan_max_limit)
        return kv_err_set(err, KV_INVALID, "scan_default_limit must be in 1..scan_max_limit");
    if (c->scan_max_bytes >= c->max_frame)
        return kv_err_set(err, KV_INVALID, "scan_max_bytes must be below max_frame");
    if (!c->data_dir[0])
        return kv_err_set(err, KV_INVALID, "data_dir must be set");
    if (c->storage_thread_nice > 19)
        return kv_err_set(err, KV_INVALID, "storage_thread_nice must be in 0..19");
    if (c->max_output_mb == 0)
        return kv_err_set(err, KV_INVALID, "max_output_mb must be at least 1");
    if (c->max_connections == 0)
        return kv_err_set(err, KV_INVALID, "max_connections must be at least 1");
    if (c->max_conn_inflight_bytes == 0 || c->max_conn_inflight_requests == 0)
        return kv_err_set(err, KV_INVALID, "max_conn_inflight_bytes and "
                          "max_conn_inflight_requests must be at least 1");
    /* One largest request must always fit, or a node would shed it forever. */
    if (c->max_node_inflight_bytes < (uint64_t)c->max_frame + 8)
        return kv_err_set(err, KV_INVALID, "max_node_inflight_bytes (%llu) must be at least "
                          "max_frame + 8 (%llu)", (unsigned long long)c->max_node_inflight_bytes,
                          (unsigned long long)c->max_frame + 8);
    if (c->header_timeout_ms < 10)
        return kv_err_set(err, KV_INVALID, "header_timeout_ms must be at least 10");
    if (c->idle_timeout_ms && c->idle_timeout_ms < 10)
        return kv_err_set(err, KV_INVALID, "idle_timeout_ms must be 0 (never) or at least 10");
    if (c->overload_retry_after_ms > 60000)
        return kv_err_set(err, KV_INVALID, "overload_retry_after_ms must be in 0..60000");
    struct sockaddr_storage sa;
    socklen_t salen;
    struct kv_err inner;
    if (c->advertise[0] && kv_addr_check(c->advertise, &inner) != KV_OK)
        return kv_err_set(err, KV_INVALID, "advertise: %s", inner.msg);
    if (!c->advertise[0] && kv_addr_parse(c->listen, &sa, &salen, &inner) == KV_OK &&
        ((sa.ss_family == AF_INET &&
          ((struct sockaddr_in *)&sa)->sin_addr.s_addr == htonl(INADDR_ANY)) ||
         (sa.ss_family == AF_INET6 &&
          IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&sa)->sin6_addr))))
        return kv_err_set(err, KV_INVALID, "listen %s is a wildcard address: set advertise to "
                          "the address peers and clients should use", c->listen);
    if (c->replication_factor == 0 || c->replication_factor > 16)
        return kv_err_set(err, KV_INVALID, "replication_factor must be in 1..16");
    if (c->default_consistency == 0)
        return kv_err_set(err, KV_INVALID, "default_consistency cannot be 'default'");
    if (!c->tokens[0] && (c->num_tokens == 0 || c->num_tokens > KV_CONFIG_MAX_TOKENS))
        return kv_err_set(err, KV_INVALID, "num_tokens must be in 1..%u", KV_CONFIG_MAX_TOKENS);
    if (c->tokens[0]) {
        uint8_t buf[sizeof c->tokens];
        struct kv_slice toks[KV_CONFIG_MAX_TOKENS];
        size_t n;
        if (kv_config_tokens(c->tokens, buf, toks, &n, &inner) != KV_OK)
            return kv_err_set(err, KV_INVALID, "%s", inner.msg);
    }
    if (c->seeds[0]) {
        char buf[sizeof c->seeds];
        const char *seeds[65];
        size_t n;
        if (kv_config_seeds(c->seeds, buf, seeds, 64, &n, &inner) != KV_OK)
            return kv_err_set(err, KV_INVALID, "%s", inner.msg);
    }
    if (c->gossip_interval_ms < 10 || c->gossip_interval_ms > 60000)
        return kv_err_set(err, KV_INVALID, "gossip_interval_ms must be in 10..60000");
    if (!(c->phi_threshold > 0))
        return kv_err_set(err, KV_INVALID, "phi_threshold must be above 0");
    if (c->peer_queue_bytes < (uint64_t)c->max_frame + 8)
        return kv_err_set(err, KV_INVALID, "peer_queue_bytes must be at least max_frame + 8");
    if (!c->region[0] || !c->rack[0])
        return kv_err_set(err, KV_INVALID, "region and rack must not be empty");
    /* (3) Test-only settings work only together with debug = true. */
    if (c->debug_skip_writeback && !c->debug)
        return kv_err_set(err, KV_INVALID, "debug_skip_writeback is a test-only setting: it "
                          "also needs debug = true");
    if (c->debug_linear_read_one && !c->debug)
        return kv_err_set(err, KV_INVALID, "debug_linear_read_one is a test-only setting: it "
                          "also needs debug = true");
    if (c->debug_clock_offset_ms != 0 && !c->debug)
        return kv_err_set(err, KV_INVALID, "debug_clock_offset_ms is a test-only setting: it "
                          "also needs debug = true");
    return KV_OK;
}

void kv_config_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [--config FILE] [--SETTING VALUE ...]\n\n"
            "kvd is a key-value store node. Settings come from the defaults, then the INI\n"
            "file given with --config (sections are optional and only group settings),\n"
            "then flags (--max-value 2048 or --max_value=2048).\n\nsettings (default):\n",
            prog);
    for (size_t i = 0; i < N_OPTS; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", g_opts[i].name);
        for (char *p = flag + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        fprintf(out, "  %-24s %s\n", flag, g_opts[i].help);
    }
    fprintf(out,
            "\nCluster: every node needs its own node_id; start the first without seeds, the\n"
            "others with --seeds HOST:PORT of a running node. Requests without a level use\n"
            "default_consistency; replication_factor counts the copies of every key.\n"
            "The generation (bumped at every start) is kept in the data directory.\n"
            "\nSignals: SIGTERM or SIGINT stop the node cleanly.\n");
}
