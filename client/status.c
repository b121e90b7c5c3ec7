/* client/status.c -- the ClusterStatus answer as plain C structs (kv/client.h).
 *
 * (1) The copy is deep: nothing in a struct kvc_cluster_status points into the decoded
 *     protobuf, which is freed as soon as the answer has been converted.
 * (2) Strings are never NULL (a missing one is ""), so callers print them unchecked.
 * (3) On failure nothing is half-filled: the partial copy is freed and *out zeroed. */
#include <stdlib.h>
#include <string.h>
#include "client/internal.h"

static char *dup_str(const char *s)
{
    return strdup(s ? s : "");
}

static int dup_bytes(struct kvc_bytes *dst, ProtobufCBinaryData src)
{
    dst->data = malloc(src.len + 1);
    if (!dst->data)
        return -1;
    if (src.len)
        memcpy(dst->data, src.data, src.len);
    dst->data[src.len] = '\0';
    dst->len = src.len;
    return 0;
}

static const char *status_name(Kv__NodeStatus s)
{
    switch (s) {
    case KV__NODE_STATUS__NODE_NORMAL: return "normal";
    case KV__NODE_STATUS__NODE_JOINING: return "joining";
    case KV__NODE_STATUS__NODE_LEAVING: return "leaving";
    default: return "unknown";
    }
}

static int copy_node(struct kvc_node_info *n, const Kv__NodeView *v)
{
    static const Kv__NodeState empty = KV__NODE_STATE__INIT;
    const Kv__NodeState *s = v->state ? v->state : &empty;
    n->id = s->id;
    n->up = v->up;
    n->phi = v->phi;
    n->generation = s->generation;
    n->version = s->version;
    n->status = status_name(s->status);
    n->load_bytes = s->load_bytes;
    n->hints_pending = s->hints_pending;
    n->addr = dup_str(s->addr);
    n->http = dup_str(s->http);
    n->region = dup_str(s->region);
    n->rack = dup_str(s->rack);
    if (!n->addr || !n->http || !n->region || !n->rack)
        return -1;
    if (s->n_tokens && !(n->tokens = calloc(s->n_tokens, sizeof *n->tokens)))
        return -1;
    for (size_t i = 0; i < s->n_tokens; i++, n->n_tokens++)
        if (dup_bytes(&n->tokens[i], s->tokens[i]) != 0)
            return -1;
    return 0;
}

static int copy_range(struct kvc_range_info *r, const Kv__RangeView *v)
{
    if (dup_bytes(&r->start, v->start) != 0 || dup_bytes(&r->end, v->end) != 0)
        return -1;
    if (v->n_replicas) {
        if (!(r->replicas = malloc(v->n_replicas * sizeof *r->replicas)))
            return -1;
        memcpy(r->replicas, v->replicas, v->n_replicas * sizeof *r->replicas);
        r->n_replicas = v->n_replicas;
    }
    return 0;
}

int kvc__status_from_pb(const Kv__ClusterStatus *pb, struct kvc_cluster_status *out,
                        struct kvc_err *err)
{
    memset(out, 0, sizeof *out);
    out->self = pb->self;
    out->replication_factor = pb->replication_factor;
    if (!(out->self_storage = dup_str(pb->self_storage)))
        goto nomem;
    if (pb->n_nodes && !(out->nodes = calloc(pb->n_nodes, sizeof *out->nodes)))
        goto nomem;
    /* Each count grows only once its element is allocated, so the free below is exact. */
    for (size_t i = 0; i < pb->n_nodes; i++) {
        if (!pb->nodes[i])
            continue;
        int rc = copy_node(&out->nodes[out->n_nodes], pb->nodes[i]);
        out->n_nodes++;
        if (rc != 0)
            goto nomem;
    }
    if (pb->n_ranges && !(out->ranges = calloc(pb->n_ranges, sizeof *out->ranges)))
        goto nomem;
    for (size_t i = 0; i < pb->n_ranges; i++) {
        if (!pb->ranges[i])
            continue;
        int rc = copy_range(&out->ranges[out->n_ranges], pb->ranges[i]);
        out->n_ranges++;
        if (rc != 0)
            goto nomem;
    }
    return KVC_OK;
nomem:
    kvc_cluster_status_free(out);
    return kvc__err(err, KVC_NOMEM, "out of memory for a cluster status of %zu nodes",
                    pb->n_nodes);
}

void kvc_cluster_status_free(struct kvc_cluster_status *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_nodes; i++) {
        struct kvc_node_info *n = &s->nodes[i];
        free(n->addr);
        free(n->http);
        free(n->region);
        free(n->rack);
        for (size_t t = 0; t < n->n_tokens; t++)
            free(n->tokens[t].data);
        free(n->tokens);
    }
    free(s->nodes);
    for (size_t i = 0; i < s->n_ranges; i++) {
        free(s->ranges[i].start.data);
        free(s->ranges[i].end.data);
        free(s->ranges[i].replicas);
    }
    free(s->ranges);
    free(s->self_storage);
    memset(s, 0, sizeof *s);
}
