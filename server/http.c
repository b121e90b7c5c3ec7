/* server/http.c -- /health and /metrics over libmicrohttpd (its own thread: it reads
 * atomics, thread-safe store calls and the loop-rendered cluster text, nothing else).
 *
 * (1) /health answers 200 while the node serves, also when its disk is full: then
 *     "status" is "degraded" and "storage" says why writes are refused. Reads still work
 *     and writes come back by themselves (storage/store.h (5)), so a probe must not take
 *     the node out of service or restart it for that; only a stopping node answers 503. */
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

/* Appends src as the body of a JSON string (quotes, backslashes and control bytes
 * escaped; RocksDB messages carry file paths). */
static void json_escape(struct kv_vec *out, const char *src)
{
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            kv_vec_append(out, esc, 2);
        } else if (*p < 0x20) {
            int n = snprintf(esc, sizeof esc, "\\u%04x", *p);
            kv_vec_append(out, esc, (size_t)n);
        } else {
            kv_vec_append(out, p, 1);
        }
    }
}

static void render_health(struct kv_server *s, bool serving, struct kv_vec *out)
{
    struct kv_store_health h;
    kv_store_health(s->store, &h);
    char line[256];
    int n = snprintf(line, sizeof line,
                     "{\"status\":\"%s\",\"node_id\":%u,\"generation\":%llu,"
                     "\"writes\":\"%s\",\"storage\":{\"state\":\"%s\"",
                     !serving ? "stopping" : h.writes_refused ? "degraded" : "ok",
                     s->cfg.node_id, (unsigned long long)s->generation,
                     h.writes_refused ? "refused" : "ok", h.summary);
    kv_vec_append(out, line, (size_t)n);
    if (h.writes_refused) {
        n = snprintf(line, sizeof line, ",\"code\":\"%s\",\"since_ms\":%llu,\"reason\":\"",
                     kv_status_name(h.code), (unsigned long long)h.since_ms);
        kv_vec_append(out, line, (size_t)n);
        json_escape(out, h.reason);
        kv_vec_append(out, "\"", 1);
    }
    kv_vec_append(out, "}}\n", 3);
}

static void render_store_health(struct kv_server *s, struct kv_vec *out)
{
    struct kv_store_health h;
    kv_store_health(s->store, &h);
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "# HELP kvd_store_writes_refused 1 while the store refuses writes (disk "
                     "full or I/O error; reads still work), else 0.\n"
                     "# TYPE kvd_store_writes_refused gauge\n"
                     "kvd_store_writes_refused{reason=\"nospace\"} %d\n"
                     "kvd_store_writes_refused{reason=\"ioerr\"} %d\n"
                     "# HELP kvd_store_write_errors_total RocksDB writes failed with no space "
                     "or an I/O error (nothing of them was acknowledged).\n"
                     "# TYPE kvd_store_write_errors_total counter\n"
                     "kvd_store_write_errors_total %llu\n"
                     "# HELP kvd_store_write_resumes_total Times writes came back by themselves "
                     "after being refused.\n"
                     "# TYPE kvd_store_write_resumes_total counter\n"
                     "kvd_store_write_resumes_total %llu\n"
                     "# HELP kvd_store_corrupt_reads_total Reads that found a record or block "
                     "failing its checksum (answered CORRUPTION, never as data).\n"
                     "# TYPE kvd_store_corrupt_reads_total counter\n"
                     "kvd_store_corrupt_reads_total %llu\n"
                     "# HELP kvd_store_hot_key_folds_total Writes of an often-written key "
                     "stored as the fold of its history, so its reads stay fast.\n"
                     "# TYPE kvd_store_hot_key_folds_total counter\n"
                     "kvd_store_hot_key_folds_total %llu\n",
                     h.code == KV_NOSPACE, h.writes_refused && h.code != KV_NOSPACE,
                     (unsigned long long)h.write_errors, (unsigned long long)h.resumes,
                     (unsigned long long)h.corrupt_reads, (unsigned long long)h.hot_key_folds);
    if (n > 0 && (size_t)n < sizeof text)
        kv_vec_append(out, text, (size_t)n);
    struct kv_rcache_stats c;
    kv_store_cache_stats(s->store, &c);
    n = snprintf(text, sizeof text,
                 "# HELP kvd_store_record_cache_lookups_total Point reads that asked the "
                 "record cache (record_cache_mb), by result.\n"
                 "# TYPE kvd_store_record_cache_lookups_total counter\n"
                 "kvd_store_record_cache_lookups_total{result=\"hit\"} %llu\n"
                 "kvd_store_record_cache_lookups_total{result=\"miss\"} %llu\n"
                 "# HELP kvd_store_record_cache_evictions_total Records evicted to make room.\n"
                 "# TYPE kvd_store_record_cache_evictions_total counter\n"
                 "kvd_store_record_cache_evictions_total %llu\n"
                 "# HELP kvd_store_record_cache_bytes Bytes held, entries' overhead included, "
                 "and the capacity.\n"
                 "# TYPE kvd_store_record_cache_bytes gauge\n"
                 "kvd_store_record_cache_bytes{of=\"used\"} %llu\n"
                 "kvd_store_record_cache_bytes{of=\"capacity\"} %llu\n",
                 (unsigned long long)c.hits, (unsigned long long)c.misses,
                 (unsigned long long)c.evictions, (unsigned long long)c.bytes,
                 (unsigned long long)c.capacity);
    if (n > 0 && (size_t)n < sizeof text)
        kv_vec_append(out, text, (size_t)n);
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
        render_health(h->srv, ok, &body);               /* (1) */
        return respond(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                       "application/json", &body);
    }
    if (strcmp(url, "/metrics") == 0) {
        if (kv_metrics_render(&h->srv->metrics, &body) != 0) {
            kv_vec_free(&body);
            return MHD_NO;
        }
        render_store(h->srv, &body);
        render_store_health(h->srv, &body);
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
    /* poll(2), not select(2): with thousands of client connections open the HTTP socket's
     * descriptor is past FD_SETSIZE, and /metrics must answer most then. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    uint16_t port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    h->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 64u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                            /* SO_REUSEADDR, as libuv sets on the client port: a kvd
                             * restarted after a crash rebinds while the old /metrics
                             * connections sit in TIME_WAIT */
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
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
