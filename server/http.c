/* server/http.c -- /health and /metrics over libmicrohttpd (its own thread: it reads
 * atomics, thread-safe store calls and the loop-rendered cluster text, nothing else). */
#include "server/http.h"
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/addr.h"
#include "server/server.h"

struct kv_http {
    struct MHD_Daemon *d;
    struct kv_server *srv;
};

static const char *const g_store_props[][2] = {
    {"rocksdb.estimate-num-keys", "kvd_store_estimated_keys"},
    {"rocksdb.live-sst-files-size", "kvd_store_live_sst_bytes"},
    {"rocksdb.cur-size-all-mem-tables", "kvd_store_memtable_bytes"},
    {"rocksdb.estimate-pending-compaction-bytes", "kvd_store_pending_compaction_bytes"},
};

static void render_store(struct kv_server *s, struct kv_vec *out)
{
    for (size_t i = 0; i < sizeof g_store_props / sizeof g_store_props[0]; i++) {
        char *v = NULL;
        if (kv_store_property(s->store, g_store_props[i][0], &v, NULL) != KV_OK)
            continue;
        char line[256];
        int n = snprintf(line, sizeof line, "# TYPE %s gauge\n%s %s\n", g_store_props[i][1],
                         g_store_props[i][1], v);
        free(v);
        if (n > 0 && (size_t)n < sizeof line)
            kv_vec_append(out, line, (size_t)n);
    }
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned code, const char *type,
                               struct kv_vec *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(body->len, body->ptr,
                                                             MHD_RESPMEM_MUST_FREE);
    if (!r) {
        kv_vec_free(body);
        return MHD_NO;
    }
    *body = (struct kv_vec){0};   /* MHD frees it now */
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **ctx)
{
    (void)version;
    (void)upload_data;
    (void)upload_size;
    (void)ctx;
    struct kv_http *h = cls;
    struct kv_vec body = {0};
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        kv_vec_append(&body, "method not allowed\n", 19);
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", &body);
    }
    if (strcmp(url, "/health") == 0) {
        bool ok = atomic_load(&h->srv->healthy);
        char line[192];
        int n = snprintf(line, sizeof line,
                         "{\"status\":\"%s\",\"node_id\":%u,\"generation\":%llu}\n",
                         ok ? "ok" : "stopping", h->srv->cfg.node_id,
                         (unsigned long long)h->srv->generation);
        kv_vec_append(&body, line, (size_t)n);
        return respond(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                       "application/json", &body);
    }
    if (strcmp(url, "/metrics") == 0) {
        if (kv_metrics_render(&h->srv->metrics, &body) != 0) {
            kv_vec_free(&body);
            return MHD_NO;
        }
        render_store(h->srv, &body);
        /* Rendered on the loop thread (server.c (4)): the cluster is not thread-safe. */
        pthread_mutex_lock(&h->srv->text_mu);
        if (h->srv->cluster_text.len)
            kv_vec_append(&body, h->srv->cluster_text.ptr, h->srv->cluster_text.len);
        pthread_mutex_unlock(&h->srv->text_mu);
        return respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", &body);
    }
    kv_vec_append(&body, "not found; try /health or /metrics\n", 35);
    return respond(conn, MHD_HTTP_NOT_FOUND, "text/plain", &body);
}

enum kv_status kv_http_start(struct kv_server *s, const char *addr, struct kv_http **out,
                             struct kv_err *err)
{
    *out = NULL;
    struct sockaddr_storage sa;
    socklen_t salen;
    enum kv_status st = kv_addr_parse(addr, &sa, &salen, err);
    if (st != KV_OK)
        return st;
    struct kv_http *h = calloc(1, sizeof *h);
    if (!h)
        return kv_err_set(err, KV_NOMEM, "out of memory");
    h->srv = s;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    uint16_t port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    h->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 64u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!h->d) {
        free(h);
        return kv_err_set(err, KV_IOERR, "cannot listen for HTTP on %s", addr);
    }
    *out = h;
    return KV_OK;
}

void kv_http_stop(struct kv_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
