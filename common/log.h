/* common/log.h -- leveled logging to stderr.
 * Thread-safe: each line is written with one fprintf, so lines do not interleave. */
#ifndef KV_COMMON_LOG_H
#define KV_COMMON_LOG_H

enum kv_log_level { KV_LOG_DEBUG, KV_LOG_INFO, KV_LOG_WARN, KV_LOG_ERROR };

void kv_log_set_level(enum kv_log_level lvl);
/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int kv_log_parse_level(const char *s, enum kv_log_level *out);
void kv_log(enum kv_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define KV_DEBUG(...) kv_log(KV_LOG_DEBUG, __VA_ARGS__)
#define KV_INFO(...) kv_log(KV_LOG_INFO, __VA_ARGS__)
#define KV_WARN(...) kv_log(KV_LOG_WARN, __VA_ARGS__)
#define KV_ERROR(...) kv_log(KV_LOG_ERROR, __VA_ARGS__)
#endif
