/* server/config.h -- kvd's settings: defaults, then the config file (INI), then flags.
 *
 * (1) One table (config.c) names every setting once; the INI parser, the command-line
 *     parser and --help are all driven by it, so they cannot disagree.
 * (2) kv_config_validate() runs after all sources are applied and refuses settings that
 *     contradict each other (e.g. a value limit that cannot fit in a frame). */
#ifndef KV_SERVER_CONFIG_H
#define KV_SERVER_CONFIG_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
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
    uint32_t max_output_mb;       /* per connection: stop reading while more is unsent */
    uint32_t shutdown_timeout_ms; /* longest a clean shutdown waits for in-flight requests */
    enum kv_log_level log_level;
};

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
