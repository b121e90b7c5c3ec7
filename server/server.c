/* server/server.c -- node lifecycle: start-up, the loop's shared handles, clean shutdown.
 *
 * (1) The store is opened before any socket is bound and closed only after the loop has
 *     ended, so no request can reach a closed store.
 * (2) The generation is max(stored + 1, now in seconds), written with a WAL sync to
 *     KV_CF_META before the cluster is created, so every start of a node gossips a
 *     generation larger than any earlier start's, even after kill -9 or a clock step back.
 * (3) Shutdown order: stop accepting and reading clients (peers stay readable, so replica
 *     answers for requests in flight still arrive); wait (bounded by shutdown_timeout_ms)
 *     until no client request is in flight and all output is written; stop reading peers;
 *     wait until the io has no completion outstanding; free the cluster (which fails what
 *     is left with SHUTDOWN); close connections, peers and handles; the loop then ends.
 * (4) The HTTP thread never touches the cluster: the loop renders the cluster's metrics
 *     into cluster_text (under text_mu) every STATS_INTERVAL_MS. */
#include "server/server.h"
#include <stdlib.h>
#include <string.h>
#include "cluster/cluster.h"
#include "common/addr.h"
#include "common/clock.h"
#include "common/log.h"
#include "server/cluster_io.h"
#include "server/http.h"
#include "server/peer.h"

#define STATS_INTERVAL_MS 200u
#define GENERATION_KEY "generation"

/* --- the done queue --------------------------------------------------------------------- */

/* Other threads append, then wake the loop. uv_async_send coalesces wake-ups, so the loop
 * drains the whole queue each time. */
void kv_server_post_done(struct kv_server *s, struct kv_done *d)
{
    d->next = NULL;
    pthread_mutex_lock(&s->done_mu);
    if (s->done_tail)
        s->done_tail->next = d;
    else
        s->done_head = d;
    s->done_tail = d;
    pthread_mutex_unlock(&s->done_mu);
    uv_async_send(&s->done_async);
}

void kv_server_drain_done(struct kv_server *s)
{
    pthread_mutex_lock(&s->done_mu);
    struct kv_done *d = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->done_mu);
    while (d) {
        struct kv_done *next = d->next;
        d->fn(d);
        d = next;
    }
}

static void on_done_async(uv_async_t *a) { kv_server_drain_done(a->data); }

/* Output is batched per loop phase: what poll-phase callbacks (reads, storage
 * completions) produced goes out in the check phase; what timers and self-delivered
 * messages (idle) produced goes out in the prepare phase, right before the loop blocks
 * in poll -- without it such an answer would wait for the next unrelated wake-up. Both
 * deliver queued messages to self first (cluster_io.c (2)), so a request whose replica
 * is this node is answered in the iteration that read it or completed its store call. */
static void flush_output(struct kv_server *s)
{
    /* conn.c (6): a connection let go by a flush is read again (and answered) in the same
     * phase; should one still wait after a few passes, the loop must not block in poll. */
    for (int pass = 0; pass < 3; pass++) {
        kv_conn_resume_all(s);
        kv_cio_deliver(s->cio);   /* first: what self delivery answers goes out now */
        kv_conn_flush_all(s);
        if (!s->resume)
            break;
    }
    /* Every replica write this iteration queued (kv_store_write_queue) goes to the commit
     * thread with one wake-up: a futex wake per write made sync=none commit groups of one */
    if (s->store)
        kv_store_write_kick(s->store);
    if (s->resume)
        kv_adm_kick(&s->adm);
    if (s->peers)
        kv_peers_flush(s->peers);
}

static void on_flush_check(uv_check_t *h) { flush_output(h->data); }

static void on_flush_prepare(uv_prepare_t *h) { flush_output(h->data); }

/* --- cluster metrics ------------------------------------------------------------------------ */

static void emit(struct kv_vec *out, const char *name, const char *type, const char *help,
                 uint64_t v)
{
    char line[512];
    int n = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help,
                     name, type, name, (unsigned long long)v);
    if (n > 0 && (size_t)n < sizeof line)
        kv_vec_append(out, line, (size_t)n);
}

static void render_cluster(struct kv_server *s, struct kv_vec *out)
{
    struct kv_cluster_stats st;
    memset(&st, 0, sizeof st);
    kv_cluster_get_stats(s->cluster, &st);
    emit(out, "kvd_cluster_generation", "gauge", "This start's generation.", s->generation);
    emit(out, "kvd_cluster_hints_pending", "gauge", "Hints held for down replicas.",
         st.hints_pending);
    emit(out, "kvd_cluster_hints_stored_total", "counter", "Hints stored.", st.hints_stored);
    emit(out, "kvd_cluster_hints_replayed_total", "counter", "Hints replayed to their replica.",
         st.hints_replayed);
    emit(out, "kvd_cluster_hints_dropped_total", "counter",
         "Hints dropped (over count, size or age limits).", st.hints_dropped);
    emit(out, "kvd_cluster_read_repairs_total", "counter", "Stale replicas repaired by reads.",
         st.read_repairs);
    emit(out, "kvd_cluster_corrupt_reads_total", "counter",
         "Replica reads this node answered CORRUPTION (a record or block failed its checksum).",
         st.corrupt_reads);
    emit(out, "kvd_cluster_corrupt_replies_total", "counter",
         "CORRUPTION answers this coordinator got from replicas (it used the others).",
         st.corrupt_replies);
    emit(out, "kvd_cluster_corrupt_repairs_total", "counter",
         "Corrupt replica copies this coordinator replaced with the newest good record.",
         st.corrupt_repairs);
    emit(out, "kvd_cluster_replica_timeouts_total", "counter",
         "Replica requests that got no answer in time.", st.replica_timeouts);
    emit(out, "kvd_cluster_expired_dropped_total", "counter",
         "Replica work dropped unanswered because its request's deadline had passed.",
         st.expired_dropped);
    emit(out, "kvd_cluster_unavailable_total", "counter",
         "Requests refused UNAVAILABLE (too few live replicas; nothing sent).", st.unavailable);
    emit(out, "kvd_cluster_timeouts_total", "counter",
         "Requests answered TIMEOUT (outcome unknown).", st.timeouts);
    emit(out, "kvd_cluster_sloppy_writes_total", "counter",
         "ONE/LOCAL_ONE writes with no replica alive, stored as the coordinator's fallback "
         "copy and hinted.", st.sloppy_writes);
    emit(out, "kvd_cluster_sloppy_reads_total", "counter",
         "ONE/LOCAL_ONE reads with no replica alive, answered from the coordinator's store.",
         st.sloppy_reads);
    emit(out, "kvd_cluster_messages_malformed_total", "counter",
         "Peer messages dropped for breaking the protocol.", st.messages_malformed);
    emit(out, "kvd_cluster_linear_ops_total", "counter",
         "LINEARIZABLE get/put/delete answered.", st.linear_ops);
    emit(out, "kvd_cluster_linear_round_trips_total", "counter",
         "Round trips spent by LINEARIZABLE requests (write 2, read 1 or 2).",
         st.linear_round_trips);
    emit(out, "kvd_cluster_linear_writebacks_total", "counter",
         "LINEARIZABLE reads that wrote the newest value back before answering.",
         st.linear_writebacks);
    emit(out, "kvd_cluster_cas_total", "counter", "Compare-and-set requests.", st.cas_ops);
    emit(out, "kvd_cluster_cas_applied_total", "counter", "CAS answered applied.",
         st.cas_applied);
    emit(out, "kvd_cluster_cas_not_applied_total", "counter", "CAS answered not applied.",
         st.cas_not_applied);
    emit(out, "kvd_cluster_cas_attempts_total", "counter",
         "Paxos attempts (above cas_total: retries after contention).", st.cas_attempts);
    emit(out, "kvd_cluster_cas_round_trips_total", "counter", "Round trips spent by CAS.",
         st.cas_round_trips);
    emit(out, "kvd_cluster_cas_recoveries_total", "counter",
         "In-progress Paxos proposals of others finished before a CAS.", st.cas_recoveries);

    Kv__ClusterStatus cs = KV__CLUSTER_STATUS__INIT;
    if (kv_cluster_status(s->cluster, &cs, NULL) == KV_OK) {
        uint64_t up = 0, down = 0;
        char line[512];
        int n;
        struct kv_vec nodes = {0};
        for (size_t i = 0; i < cs.n_nodes; i++) {
            const Kv__NodeView *v = cs.nodes[i];
            v->up ? up++ : down++;
            if (!v->state)
                continue;
            n = snprintf(line, sizeof line,
                         "kvd_cluster_node_up{node=\"%u\",addr=\"%s\",region=\"%s\","
                         "rack=\"%s\"} %d\nkvd_cluster_node_phi{node=\"%u\"} %.3f\n"
                         "kvd_cluster_node_generation{node=\"%u\"} %llu\n",
                         v->state->id, v->state->addr ? v->state->addr : "",
                         v->state->region ? v->state->region : "",
                         v->state->rack ? v->state->rack : "", v->up ? 1 : 0, v->state->id,
                         v->phi, v->state->id, (unsigned long long)v->state->generation);
            if (n > 0 && (size_t)n < sizeof line)
                kv_vec_append(&nodes, line, (size_t)n);
        }
        n = snprintf(line, sizeof line,
                     "# HELP kvd_cluster_nodes Nodes in this node's view, by liveness.\n"
                     "# TYPE kvd_cluster_nodes gauge\nkvd_cluster_nodes{state=\"up\"} %llu\n"
                     "kvd_cluster_nodes{state=\"down\"} %llu\n"
                     "# HELP kvd_cluster_node_up 1 while the failure detector sees the node up.\n"
                     "# TYPE kvd_cluster_node_up gauge\n",
                     (unsigned long long)up, (unsigned long long)down);
        if (n > 0 && (size_t)n < sizeof line)
            kv_vec_append(out, line, (size_t)n);
        if (nodes.len)
            kv_vec_append(out, nodes.ptr, nodes.len);
        kv_vec_free(&nodes);
        emit(out, "kvd_cluster_ranges", "gauge", "Ranges of the ring as this node sees it.",
             cs.n_ranges);
        kv_cluster_status_free(&cs);
    }
    kv_peers_render(s->peers, out);
}

static void refresh_cluster_text(struct kv_server *s)
{
    struct kv_vec text = {0};
    if (s->cluster)
        render_cluster(s, &text);
    pthread_mutex_lock(&s->text_mu);
    struct kv_vec old = s->cluster_text;
    s->cluster_text = text;
    pthread_mutex_unlock(&s->text_mu);
    kv_vec_free(&old);
}

static void on_stats_timer(uv_timer_t *t) { refresh_cluster_text(t->data); }

/* --- shutdown ------------------------------------------------------------------------------- */

static void on_connection(uv_stream_t *l, int status)
{
    struct kv_server *s = l->data;
    if (status < 0) {
        kv_adm_accept_failed(s, status);
        return;
    }
    kv_conn_accept(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    KV_INFO("signal %d: shutting down", signum);
    kv_server_stop(h->data);
}

static void close_handles(struct kv_server *s)
{
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->flush_check, NULL);
    uv_close((uv_handle_t *)&s->flush_prepare, NULL);
    uv_close((uv_handle_t *)&s->stop_timer, NULL);
    uv_close((uv_handle_t *)&s->stats_timer, NULL);
    uv_close((uv_handle_t *)&s->done_async, NULL);
    kv_adm_close(&s->adm);
    if (s->peers)
        kv_peers_close(s->peers);
    if (s->cio)
        kv_cio_close(s->cio);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct kv_server *s = t->data;
    kv_server_drain_done(s);
    kv_conn_flush_all(s);
    uint64_t inflight = atomic_load(&s->metrics.inflight);
    bool drained = inflight == 0 && kv_conn_all_flushed(s);
    if (!drained && kv_clock_mono_ns() < s->stop_deadline_ns)
        return;
    if (!drained && !s->stop_warned) {
        KV_WARN("shutdown: %llu requests still in flight after %u ms; failing them",
                (unsigned long long)inflight, s->cfg.shutdown_timeout_ms);
        s->stop_warned = true;
    }
    if (s->peers_reading) {
        /* Clients are answered: nothing more may start storage work. */
        s->peers_reading = false;
        kv_conn_stop_reading_all(s, true);
    }
    if (s->cluster) {
        if (kv_cio_pending(s->cio) > 0)
            return;   /* a done callback must never reach a freed cluster */
        kv_cluster_free(s->cluster);
        s->cluster = NULL;
        kv_conn_flush_all(s);
    }
    uv_timer_stop(t);
    kv_conn_close_all(s);
    close_handles(s);
}

void kv_server_stop(struct kv_server *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->peers_reading = true;
    atomic_store(&s->healthy, 0);
    uv_close((uv_handle_t *)&s->listener, NULL);
    kv_conn_stop_reading_all(s, false);
    s->stop_deadline_ns = kv_clock_mono_ns() + (uint64_t)s->cfg.shutdown_timeout_ms * 1000000u;
    uv_timer_start(&s->stop_timer, on_stop_timer, 0, 5);
}

/* --- start-up ------------------------------------------------------------------------------- */

static enum kv_status listen_on(struct kv_server *s, struct kv_err *err)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    enum kv_status st = kv_addr_parse(s->cfg.listen, &sa, &salen, err);
    if (st != KV_OK)
        return st;
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc != 0) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        return kv_err_set(err, KV_IOERR, "cannot listen on %s: %s", s->cfg.listen,
                          uv_strerror(rc));
    }
    return KV_OK;
}

/* (2): read, bump, write synced. */
static enum kv_status bump_generation(struct kv_server *s, struct kv_err *err)
{
    struct kv_slice key = kv_slice_str(GENERATION_KEY);
    struct kv_buf v = {0};
    uint64_t stored = 0;
    enum kv_status st = kv_store_raw_get(s->store, KV_CF_META, key, &v, err);
    if (st == KV_OK) {
        if (v.len == 8) {
            const uint8_t *p = v.ptr;
            for (int i = 0; i < 8; i++)
                stored = stored << 8 | p[i];
        } else {
            KV_WARN("stored generation has %zu bytes, not 8: ignoring it", v.len);
        }
        kv_buf_free(&v);
    } else if (st != KV_NOT_FOUND) {
        return st;
    }
    uint64_t now_s = kv_clock_now_ms() / 1000;
    s->generation = stored + 1 > now_s ? stored + 1 : now_s;
    uint8_t enc[8];
    for (int i = 0; i < 8; i++)
        enc[i] = (uint8_t)(s->generation >> (56 - 8 * i));
    return kv_store_raw_put(s->store, KV_CF_META, key, kv_slice_of(enc, 8), true, err);
}

static enum kv_status cluster_create(struct kv_server *s, struct kv_err *err)
{
    const struct kv_config *cfg = &s->cfg;
    struct kv_cluster_opts o;
    kv_cluster_opts_default(&o);
    o.node_id = cfg->node_id;
    o.addr = kv_config_advertise(cfg);
    o.http = strcmp(cfg->http, "off") == 0 ? "" : cfg->http;
    o.region = cfg->region;
    o.rack = cfg->rack;
    o.generation = s->generation;
    o.rf = cfg->replication_factor;
    o.default_level = (enum kv_level)cfg->default_consistency;
    o.default_timeout_ms = cfg->default_timeout_ms;
    o.gossip_interval_ms = cfg->gossip_interval_ms;
    o.phi_threshold = cfg->phi_threshold;
    o.max_hints_per_node = cfg->hint_max_per_node;
    o.max_hint_bytes = cfg->hint_max_bytes;
    o.max_hint_age_ms = cfg->hint_max_age_s * 1000;
    o.scan_default_limit = cfg->scan_default_limit;
    o.max_value = cfg->max_value;
    o.deadline_slack_ms = cfg->peer_deadline_slack_ms;
    o.debug_skip_writeback = cfg->debug && cfg->debug_skip_writeback;   /* config.c (3) */
    if (o.debug_skip_writeback)
        KV_WARN("debug: LINEARIZABLE reads skip the write-back (test-only setting)");
    o.debug_linear_read_one = cfg->debug && cfg->debug_linear_read_one;   /* config.c (3) */
    if (o.debug_linear_read_one)
        KV_WARN("debug: LINEARIZABLE reads answer from one replica (test-only setting)");

    static uint8_t tok_buf[sizeof cfg->tokens];
    static struct kv_slice toks[KV_CONFIG_MAX_TOKENS];
    size_t n_toks = 0;
    enum kv_status st = kv_config_tokens(cfg->tokens, tok_buf, toks, &n_toks, err);
    if (st != KV_OK)
        return st;
    if (n_toks) {
        o.tokens = toks;
        o.n_tokens = n_toks;
    } else {
        o.tokens = NULL;
        o.n_tokens = cfg->num_tokens;
    }
    char seed_buf[sizeof cfg->seeds];
    const char *seeds[65];
    size_t n_seeds = 0;
    st = kv_config_seeds(cfg->seeds, seed_buf, seeds, 64, &n_seeds, err);
    if (st != KV_OK)
        return st;
    o.seeds = n_seeds ? seeds : NULL;
    /* Everything in o is copied by kv_cluster_new. */
    return kv_cluster_new(&o, kv_cio_vtab(s->cio), s->store, &s->hlc, &s->cluster, err);
}

enum kv_status kv_server_init(struct kv_server *s, const struct kv_config *cfg,
                              struct kv_err *err)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    kv_hlc_init(&s->hlc);
    kv_metrics_init(&s->metrics);
    pthread_mutex_init(&s->done_mu, NULL);
    pthread_mutex_init(&s->text_mu, NULL);
    kv_pb_arena_init(&s->req_arena);
    enum kv_status st = kv_adm_init(&s->adm, s, err);
    if (st != KV_OK)
        return st;
    atomic_store(&s->metrics.conns_max, s->adm.max_connections);

    struct kv_store_opts so;
    kv_store_opts_default(&so);
    so.path = cfg->data_dir;
    so.sync = cfg->sync;
    so.batch_delay_us = cfg->batch_delay_us;
    so.grace_ms = cfg->tombstone_grace_s * 1000;
    so.block_cache_bytes = (size_t)cfg->block_cache_mb << 20;
    so.record_cache_bytes = (size_t)cfg->record_cache_mb << 20;
    so.write_buffer_bytes = (size_t)cfg->write_buffer_mb << 20;
    st = kv_store_open(&so, &s->store, err);
    if (st != KV_OK)
        return st;
    st = bump_generation(s, err);
    if (st != KV_OK) {
        kv_store_close(s->store);
        s->store = NULL;
        return st;
    }

    s->loop = malloc(sizeof *s->loop);
    if (!s->loop || uv_loop_init(s->loop) != 0) {
        free(s->loop);
        s->loop = NULL;
        kv_store_close(s->store);
        s->store = NULL;
        return kv_err_set(err, KV_INTERNAL, "cannot create the event loop");
    }
    uv_async_init(s->loop, &s->done_async, on_done_async);
    s->done_async.data = s;
    uv_check_init(s->loop, &s->flush_check);
    s->flush_check.data = s;
    uv_check_start(&s->flush_check, on_flush_check);
    uv_prepare_init(s->loop, &s->flush_prepare);
    s->flush_prepare.data = s;
    uv_prepare_start(&s->flush_prepare, on_flush_prepare);
    uv_timer_init(s->loop, &s->stop_timer);
    s->stop_timer.data = s;
    uv_timer_init(s->loop, &s->stats_timer);
    s->stats_timer.data = s;
    uv_signal_init(s->loop, &s->sigterm);
    s->sigterm.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_init(s->loop, &s->sigint);
    s->sigint.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    kv_adm_start(&s->adm, s);

    st = kv_cio_new(s, &s->cio, err);
    if (st == KV_OK)
        st = kv_peers_new(s, &s->peers, err);
    if (st == KV_OK)
        st = cluster_create(s, err);
    if (st == KV_OK)
        st = listen_on(s, err);
    if (st == KV_OK && strcmp(cfg->http, "off") != 0 && cfg->http[0])
        st = kv_http_start(s, cfg->http, &s->http, err);
    if (st != KV_OK) {
        if (s->listener.loop && !uv_is_closing((uv_handle_t *)&s->listener))
            uv_close((uv_handle_t *)&s->listener, NULL);
        kv_cluster_free(s->cluster);   /* nothing started: no io is pending */
        s->cluster = NULL;
        close_handles(s);
        uv_run(s->loop, UV_RUN_DEFAULT);
        kv_server_destroy(s);
        return st;
    }
    kv_cluster_start(s->cluster);
    refresh_cluster_text(s);
    uv_timer_start(&s->stats_timer, on_stats_timer, STATS_INTERVAL_MS, STATS_INTERVAL_MS);
    atomic_store(&s->healthy, 1);
    KV_INFO("node %u: generation %llu, advertised as %s, %s%s", cfg->node_id,
            (unsigned long long)s->generation, kv_config_advertise(cfg),
            cfg->seeds[0] ? "seeds " : "no seeds (a cluster of one until others join)",
            cfg->seeds);
    return KV_OK;
}

void kv_server_run(struct kv_server *s) { uv_run(s->loop, UV_RUN_DEFAULT); }

void kv_server_destroy(struct kv_server *s)
{
    kv_http_stop(s->http);
    s->http = NULL;
    kv_cluster_free(s->cluster);   /* only on paths where no io was ever pending */
    s->cluster = NULL;
    if (s->loop) {
        if (uv_loop_close(s->loop) != 0)
            KV_WARN("event loop closed with handles still open");
        free(s->loop);
        s->loop = NULL;
    }
    kv_peers_free(s->peers);
    s->peers = NULL;
    kv_cio_free(s->cio);
    s->cio = NULL;
    if (s->store && s->stopping) {
        /* A clean stop leaves the data in SST files: the next start replays no WAL. */
        struct kv_err e = {0};
        if (kv_store_flush(s->store, &e) != KV_OK)
            KV_WARN("flush at shutdown: %s", e.msg);
    }
    kv_store_close(s->store);
    s->store = NULL;
    kv_vec_free(&s->cluster_text);
    kv_pb_arena_destroy(&s->req_arena);
    pthread_mutex_destroy(&s->done_mu);
    pthread_mutex_destroy(&s->text_mu);
}
