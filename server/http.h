/* server/http.h -- the admin HTTP endpoint: GET /health and GET /metrics.
 * Runs on libmicrohttpd's own thread; it only reads atomics and thread-safe store calls. */
#ifndef KV_SERVER_HTTP_H
#define KV_SERVER_HTTP_H
#include "common/status.h"

struct kv_server;
struct kv_http;

/* addr is "host:port". On KV_OK *out owns the endpoint (kv_http_stop). */
enum kv_status kv_http_start(struct kv_server *s, const char *addr, struct kv_http **out,
                             struct kv_err *err);
void kv_http_stop(struct kv_http *h);   /* NULL-safe */
#endif
