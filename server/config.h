/* server/config.h -- kvd's settings: defaults, then the config file (INI), then flags.
 *
 * (1) One table (config.c) names every setting once; the INI parser, the command-line
 *     parser and --help are all driven by it, so they cannot disagree.
 * (2) kv_config_validate() runs after all sources are applied and refuses settings that
 *     contradict each other (e.g. a value limit that cannot fit in a frame).
 * (3) Test-only settings (debug_*) are refused unless debug = true is set too, so no
 *     production config enables one by accident (docs/operations.md). */
#ifndef KV_SERVER_CONFIG_H
#define KV_SERVER_CONFIG_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "common/buf.h"
#include "common/log.h"
#include "common/status.h"
#include "storage/store.h"

struct kv_config {
    uint32_t node_id;
    char listen[128];             /* host:port for clients */
    char http[128];               /* host:port for /health and /metrics; "off" disables */
    char data_dir[512];
    enum kv_sync sync;
    uint32_t batch_delay_us;
    uint32_t max_key;             /* bytes; at most 4096 */
    uint32_t max_value;           /* bytes */
    uint32_t max_frame;           /* bytes of one frame's payload */
    uint32_t compress_threshold;  /* values at least this long are sent LZ4; 0 off */
    uint32_t scan_default_limit;
    uint32_t scan_max_limit;
    uint32_t scan_max_bytes;      /* a scan page stops growing past this many bytes */
    uint32_t default_timeout_ms;
    uint64_t tombstone_grace_s;
    uint32_t block_cache_mb;
    uint32_t record_cache_mb;     /* storage/rcache.h; 0 off */
    uint32_t write_buffer_mb;     /* RocksDB memtable per column family (store.h (5)) */
    uint32_t storage_thread_nice; /* storage threads' nice above the loop's (0..19) */
    uint32_t max_output_mb;       /* per connection: stop reading while more is unsent */
    /* admission control (server/admission.h, docs/operations.md "Limits") */
    uint32_t max_connections;     /* client connections; the excess is refused OVERLOADED */
    uint32_t peer_reserved_connections; /* beyond max_connections, kept for peer nodes */
    uint64_t max_conn_inflight_bytes;   /* per connection: stop reading past this */
    uint32_t max_conn_inflight_requests; /* per connection: stop reading past this */
    uint64_t max_node_inflight_bytes;   /* per node: shed new requests past this */
    uint32_t max_node_inflight_requests; /* per node: shed new requests past this; 0 off */
    uint32_t overload_queue_ms;   /* shed past this much queued work (Little's law); 0 off */
    uint32_t overload_loop_lag_ms; /* shed while the loop is busier per iteration; 0 off */
    uint32_t overload_retry_after_ms; /* retry_after_ms sent with OVERLOADED */
    uint32_t header_timeout_ms;   /* a started frame must complete within this */
    uint32_t idle_timeout_ms;     /* close client connections idle this long; 0 never */
    uint32_t shutdown_timeout_ms; /* longest a clean shutdown waits for in-flight requests */
    enum kv_log_level log_level;
    /* cluster */
    char advertise[128];          /* host:port peers and clients use; empty: listen */
    char seeds[1024];             /* comma-separated host:port; empty: a cluster of one */
    char region[64];
    char rack[64];
    char tokens[4096];            /* comma-separated explicit tokens (\xNN escapes) */
    uint32_t num_tokens;          /* with no explicit tokens: how many default tokens */
    uint32_t replication_factor;
    uint32_t default_consistency; /* enum kv_level (Kv__Consistency) */
    uint32_t gossip_interval_ms;
    double phi_threshold;
    uint64_t hint_max_per_node;
    uint64_t hint_max_bytes;
    uint64_t hint_max_age_s;
    uint32_t peer_queue_bytes;    /* per peer: frames queued beyond this are dropped */
    uint32_t peer_deadline_slack_ms; /* lateness allowed past a peer request's deadline */
    /* test only, see (3) */
    bool debug;                   /* allows the debug_* settings */
    int64_t debug_clock_offset_ms; /* added to the wall clock (kv_clock_set_offset_ms) */
    bool debug_skip_writeback;    /* LINEARIZABLE reads skip the write-back (jepsen self-test) */
    bool debug_linear_read_one;   /* LINEARIZABLE reads answer from one replica (jepsen suite) */
};

/* Most tokens a node may own (explicit or default) and the longest token in bytes. */
#define KV_CONFIG_MAX_TOKENS 1024u
#define KV_CONFIG_MAX_TOKEN_LEN 256u

/* Consistency level names ("one", "quorum", ...), indexed by Kv__Consistency; "default" is
 * 0. kv_config_level_parse returns -1 for an unknown name (case-insensitive). */
#define KV_CONFIG_LEVELS 10u
const char *kv_config_level_name(unsigned level);
int kv_config_level_parse(const char *s, unsigned *out);

/* Splits a tokens setting (c->tokens) into tokens: buf receives their bytes (at least
 * strlen(spec) bytes), out[] (KV_CONFIG_MAX_TOKENS entries) points into buf, *n is how many.
 * KV_INVALID: a bad escape, an empty or over-long token, or too many. */
enum kv_status kv_config_tokens(const char *spec, uint8_t *buf, struct kv_slice *out, size_t *n,
                                struct kv_err *err);
/* Splits a seeds setting (c->seeds) into at most max NUL-terminated addresses in buf
 * (strlen(spec)+1 bytes); out has max+1 entries and out[*n] is set to NULL. KV_INVALID: an address that does not parse. */
enum kv_status kv_config_seeds(const char *spec, char *buf, const char **out, size_t max,
                               size_t *n, struct kv_err *err);
/* The address this node gives peers and clients: advertise, or listen when unset. */
const char *kv_config_advertise(const struct kv_config *c);

void kv_config_default(struct kv_config *c);
/* Applies an INI file. KV_INVALID names the file, line and setting at fault. */
enum kv_status kv_config_load_file(struct kv_config *c, const char *path, struct kv_err *err);
/* Applies one setting by name ("max_value" or "max-value"). */
enum kv_status kv_config_set(struct kv_config *c, const char *name, const char *value,
                             struct kv_err *err);
/* Parses argv: "--config FILE" is applied first, then every "--name value" or
 * "--name=value" in order. *help is set for -h/--help (nothing else is validated then). */
enum kv_status kv_config_parse_args(struct kv_config *c, int argc, char **argv, bool *help,
                                    struct kv_err *err);
enum kv_status kv_config_validate(const struct kv_config *c, struct kv_err *err);
void kv_config_usage(FILE *out, const char *prog);
#endif
