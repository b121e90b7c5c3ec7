/* client/kvctl/output.c -- results as text lines or one JSON object per line.
 *
 * (1) JSON strings must be valid UTF-8, keys and values need not be: a string that is
 *     not valid UTF-8 (or any string under --hex) is emitted as "key_hex"/"value_hex"
 *     instead of "key"/"value", so no byte is ever lost or replaced.
 * (2) Data goes to stdout, diagnostics to stderr; in JSON mode errors are data too (one
 *     object on stdout) so a consumer reads a single stream.
 * (3) Numbers in JSON are exact (bytes, not "1.2 MiB"); a phi that is not finite is null,
 *     since JSON has no infinity. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "client/kvctl/kvctl.h"
#include "kv/client.h"

/* Sets obj[name] (or obj[name_hex]) to the bytes. */
static void set_bytes(json_t *obj, const char *name, const uint8_t *p, size_t n, bool hex)
{
    json_t *s = hex ? NULL : json_stringn((const char *)p, n);
    if (s) {
        json_object_set_new(obj, name, s);
        return;
    }
    char key[32];
    snprintf(key, sizeof key, "%s_hex", name);
    char *h = kvctl_hex_string(p, n);
    json_object_set_new(obj, key, h ? json_string(h) : json_null());
    free(h);
}

static void emit(json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
    json_decref(obj);
}

static void write_bytes(const struct kvctl_out *o, const uint8_t *p, size_t n)
{
    if (o->hex)
        kvctl_write_hex(stdout, p, n);
    else
        kvctl_write_escaped(stdout, p, n);
}

void kvctl_print_item(const struct kvctl_out *o, const uint8_t *key, size_t klen,
                      const uint8_t *val, size_t vlen)
{
    if (o->json) {
        json_t *obj = json_object();
        set_bytes(obj, "key", key, klen, o->hex);
        if (val)
            set_bytes(obj, "value", val, vlen, o->hex);
        emit(obj);
        return;
    }
    write_bytes(o, key, klen);
    if (val) {
        fputc('\t', stdout);
        write_bytes(o, val, vlen);
    }
    fputc('\n', stdout);
}

void kvctl_print_value(const struct kvctl_out *o, const uint8_t *key, size_t klen,
                       const uint8_t *val, size_t vlen)
{
    if (o->json) {
        kvctl_print_item(o, key, klen, val, vlen);
        return;
    }
    write_bytes(o, val, vlen);
    fputc('\n', stdout);
}

void kvctl_print_record(const struct kvctl_out *o, const uint8_t *key, size_t klen,
                        const struct kvc_value *v)
{
    if (!o->json) {
        kvctl_print_value(o, key, klen, v->data, v->len);
        return;
    }
    json_t *obj = json_object();
    set_bytes(obj, "key", key, klen, o->hex);
    set_bytes(obj, "value", v->data, v->len, o->hex);
    json_object_set_new(obj, "version", json_integer((json_int_t)v->version));
    json_object_set_new(obj, "version_node",
                        json_integer((json_int_t)KVC_VERSION_NODE_ID(v->version_node)));
    json_object_set_new(obj, "version_start",
                        json_integer((json_int_t)KVC_VERSION_START(v->version_node)));
    if (v->expires_at_ms)
        json_object_set_new(obj, "expires_at_ms", json_integer((json_int_t)v->expires_at_ms));
    emit(obj);
}

void kvctl_print_ok(const struct kvctl_out *o)
{
    if (o->json) {
        json_t *obj = json_object();
        json_object_set_new(obj, "ok", json_true());
        emit(obj);
    }
}

void kvctl_print_cursor(const struct kvctl_out *o, const uint8_t *cur, size_t n)
{
    char *h = kvctl_hex_string(cur, n);
    if (!h)
        return;
    if (o->json) {
        json_t *obj = json_object();
        json_object_set_new(obj, "cursor", json_string(h));
        emit(obj);
    } else {
        fprintf(stderr, "cursor: %s\n", h);
    }
    free(h);
}

void kvctl_print_error(const struct kvctl_out *o, const char *name, const char *msg)
{
    if (o->json) {
        json_t *obj = json_object();
        json_object_set_new(obj, "error", json_string(name));
        /* Server messages are usually ASCII; if one is not UTF-8, keep the code alone. */
        json_t *m = json_string(msg);
        json_object_set_new(obj, "message", m ? m : json_string("(message not UTF-8)"));
        emit(obj);
    } else {
        fprintf(stderr, "kvctl: %s: %s\n", name, msg);
    }
}

/* --- status and ring ------------------------------------------------------------------------ */

/* "0 B", "512 B", "1.5 KiB", ... "3.2 TiB". */
static void human_bytes(char *out, size_t n, uint64_t b)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (b < 1024) {
        snprintf(out, n, "%llu B", (unsigned long long)b);
        return;
    }
    double v = (double)b;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    snprintf(out, n, "%.1f %s", v, units[u]);
}

static const char *or_dash(const char *s)
{
    return s[0] ? s : "-";
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

void kvctl_print_status(const struct kvctl_out *o, const struct kvc_cluster_status *st)
{
    if (o->json) {
        for (size_t i = 0; i < st->n_nodes; i++) {
            const struct kvc_node_info *n = &st->nodes[i];
            json_t *obj = json_object();
            json_object_set_new(obj, "id", json_integer(n->id));
            json_object_set_new(obj, "addr", json_string(n->addr));
            json_object_set_new(obj, "http", json_string(n->http));
            json_object_set_new(obj, "region", json_string(n->region));
            json_object_set_new(obj, "rack", json_string(n->rack));
            json_object_set_new(obj, "up", json_boolean(n->up));
            json_object_set_new(obj, "phi", isfinite(n->phi) ? json_real(n->phi) : json_null());
            json_object_set_new(obj, "status", json_string(n->status));
            json_object_set_new(obj, "tokens", json_integer((json_int_t)n->n_tokens));
            json_object_set_new(obj, "load_bytes", json_integer((json_int_t)n->load_bytes));
            json_object_set_new(obj, "hints_pending",
                                json_integer((json_int_t)n->hints_pending));
            json_object_set_new(obj, "generation", json_integer((json_int_t)n->generation));
            json_object_set_new(obj, "version", json_integer((json_int_t)n->version));
            json_object_set_new(obj, "self", json_boolean(n->id == st->self));
            if (n->id == st->self)       /* only the answering node knows its own disk */
                json_object_set_new(obj, "storage",
                                    json_string(st->self_storage && st->self_storage[0]
                                                    ? st->self_storage : "ok"));
            emit(obj);
        }
        return;
    }
    int wa = (int)strlen("ADDRESS"), wg = (int)strlen("REGION"), wr = (int)strlen("RACK");
    for (size_t i = 0; i < st->n_nodes; i++) {
        wa = max_int(wa, (int)strlen(st->nodes[i].addr));
        wg = max_int(wg, (int)strlen(or_dash(st->nodes[i].region)));
        wr = max_int(wr, (int)strlen(or_dash(st->nodes[i].rack)));
    }
    printf("%-5s %-*s %-*s %-*s %-4s %6s %6s %10s %7s %-8s %s\n", "ID", wa, "ADDRESS", wg,
           "REGION", wr, "RACK", "UP", "PHI", "TOKENS", "LOAD", "HINTS", "STATUS", "GENERATION");
    for (size_t i = 0; i < st->n_nodes; i++) {
        const struct kvc_node_info *n = &st->nodes[i];
        char load[32], phi[32];
        human_bytes(load, sizeof load, n->load_bytes);
        if (isfinite(n->phi))
            snprintf(phi, sizeof phi, "%.1f", n->phi);
        else
            snprintf(phi, sizeof phi, "inf");
        printf("%-5u %-*s %-*s %-*s %-4s %6s %6zu %10s %7llu %-8s %llu\n", n->id, wa, n->addr,
               wg, or_dash(n->region), wr, or_dash(n->rack), n->up ? "up" : "down", phi,
               n->n_tokens, load, (unsigned long long)n->hints_pending, n->status,
               (unsigned long long)n->generation);
    }
    /* The answering node's own storage, only when it refuses writes (full disk, I/O error;
     * reads still work): one more line under the table. */
    if (st->self_storage && st->self_storage[0])
        printf("node %u: %s\n", st->self, st->self_storage);
}

/* Key order of range starts; the empty start (from the first key) comes first. */
static int start_order(const void *pa, const void *pb)
{
    const struct kvc_range_info *a = pa, *b = pb;
    size_t n = a->start.len < b->start.len ? a->start.len : b->start.len;
    int c = n ? memcmp(a->start.data, b->start.data, n) : 0;
    if (c)
        return c;
    return a->start.len < b->start.len ? -1 : a->start.len > b->start.len;
}

void kvctl_print_ring(const struct kvctl_out *o, struct kvc_cluster_status *st)
{
    if (st->n_ranges > 1)
        qsort(st->ranges, st->n_ranges, sizeof *st->ranges, start_order);
    for (size_t i = 0; i < st->n_ranges; i++) {
        const struct kvc_range_info *r = &st->ranges[i];
        if (o->json) {
            json_t *obj = json_object();
            set_bytes(obj, "start", r->start.data, r->start.len, o->hex);
            set_bytes(obj, "end", r->end.data, r->end.len, o->hex);
            json_t *reps = json_array();
            for (size_t k = 0; k < r->n_replicas; k++)
                json_array_append_new(reps, json_integer(r->replicas[k]));
            json_object_set_new(obj, "replicas", reps);
            emit(obj);
            continue;
        }
        fputc('(', stdout);
        write_bytes(o, r->start.data, r->start.len);
        fputs(", ", stdout);
        write_bytes(o, r->end.data, r->end.len);
        fputs("] -> [", stdout);
        for (size_t k = 0; k < r->n_replicas; k++)
            printf("%s%u", k ? "," : "", r->replicas[k]);
        fputs("]\n", stdout);
    }
}
