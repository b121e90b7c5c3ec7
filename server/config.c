/* server/config.c -- the settings table and its three readers (INI, flags, --help). */
#include "server/config.h"
#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { T_U32, T_U64, T_STR, T_SYNC, T_LOG };

struct opt {
    const char *name;
    enum opt_type type;
    size_t off;
    size_t size;        /* T_STR: buffer size */
    const char *help;
};

#define O(n, t, f, h) {n, t, offsetof(struct kv_config, f), sizeof(((struct kv_config *)0)->f), h}
static const struct opt g_opts[] = {
    O("node_id", T_U32, node_id, "this node's id, unique in the cluster (1)"),
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
    O("max_output_mb", T_U32, max_output_mb,
      "per connection: stop reading while this much output is unsent (64)"),
    O("shutdown_timeout_ms", T_U32, shutdown_timeout_ms,
      "longest a clean shutdown waits for in-flight requests (10000)"),
    O("log_level", T_LOG, log_level, "debug | info | warn | error (info)"),
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
    c->max_output_mb = 64;
    c->shutdown_timeout_ms = 10000;
    c->log_level = KV_LOG_INFO;
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
    if (c->node_id == 0)
        return kv_err_set(err, KV_INVALID, "node_id must be at least 1");
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
    if (c->max_output_mb == 0)
        return kv_err_set(err, KV_INVALID, "max_output_mb must be at least 1");
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
    fprintf(out, "\nSignals: SIGTERM or SIGINT stop the node cleanly.\n");
}
