/* client/nodes.c -- the nodes a client knows: which one gets an op, opening sockets,
 * learning nodes and ring from a cluster status.
 *
 * A node is a seed (an address the caller gave) or a member the ring named; each has at
 * most one connection and its own in-flight table.
 * (1) Token-aware picks follow the ring's preference order: the first replica of the
 *     key's range that the answering node calls up and that has not failed us lately.
 *     When none is left the op goes to "any node" (every node coordinates every request).
 * (2) "Any node" is sticky: the node used last for that purpose (c->cur), else the next
 *     one in order. In plain mode (no ring) that is exactly the old single-connection
 *     behaviour: stay on one address, move to the next when it fails.
 * (3) A node that failed us (refused or broke a connection, answered SHUTDOWN) is avoided
 *     for ring_refresh_ms, and the ring is asked for again soon. When every node is
 *     avoided, kvc__pick says so and the caller starts a new round by forgetting the
 *     marks (client.c), so a restarted cluster is found again on the next call.
 * (4) At most max_conns sockets are open: opening one more first closes the least
 *     recently used idle one (nothing queued, nothing in flight); when none is idle the
 *     pick falls back to a node whose socket is already open.
 * (5) A local read (kvc_call.local) goes to nodes[0], the first address the caller gave,
 *     whatever the ring or the node's liveness says: it is a question about that node's
 *     store, so no other node may answer it. */
#include <stdlib.h>
#include <string.h>
#include "client/internal.h"

size_t kvc__node_add(struct kvc_client *c, const char *addr, bool seed)
{
    struct kvc__node **grown = realloc(c->nodes, (c->nnodes + 1) * sizeof *grown);
    if (!grown)
        return KVC__NONE;
    c->nodes = grown;
    struct kvc__node *n = calloc(1, sizeof *n);
    if (!n || !(n->addr = strdup(addr))) {
        free(n);
        return KVC__NONE;
    }
    n->seed = seed;
    n->ring_up = true;
    kvc__conn_init(&n->conn, c->opts.max_frame);
    kvc__table_init(&n->table);
    c->nodes[c->nnodes] = n;
    return c->nnodes++;
}

void kvc__nodes_free(struct kvc_client *c)
{
    for (size_t i = 0; i < c->nnodes; i++) {
        struct kvc__node *n = c->nodes[i];
        kvc__conn_destroy(&n->conn);
        kvc__table_destroy(&n->table);
        free(n->addr);
        free(n);
    }
    free(c->nodes);
    c->nodes = NULL;
    c->nnodes = 0;
}

size_t kvc__node_by_id(const struct kvc_client *c, uint32_t id)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i]->has_id && c->nodes[i]->id == id)
            return i;
    return KVC__NONE;
}

void kvc__node_avoid(struct kvc_client *c, size_t i, uint64_t now)
{
    c->nodes[i]->avoid_until_ns = now + (uint64_t)c->opts.ring_refresh_ms * 1000000u;
    if (c->opts.token_aware && c->ring_next_ns > now)
        c->ring_next_ns = now;   /* the ring may know better already */
}

/* --- picking ------------------------------------------------------------------------------ */

static size_t open_count(const struct kvc_client *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nnodes; i++)
        n += c->nodes[i]->conn.state != KVC__CLOSED;
    return n;
}

/* The least recently used node with an open but idle socket, or KVC__NONE. */
static size_t idle_victim(const struct kvc_client *c, size_t except)
{
    size_t best = KVC__NONE;
    for (size_t i = 0; i < c->nnodes; i++) {
        const struct kvc__node *n = c->nodes[i];
        if (i == except || n->conn.state == KVC__CLOSED || n->table.count || n->conn.out.len)
            continue;
        if (best == KVC__NONE || n->last_used_ns < c->nodes[best]->last_used_ns)
            best = i;
    }
    return best;
}

/* Whether an op may go to node i now: it is a member or seed, not known down, not
 * avoided, and has a socket or may get one. */
static bool usable(const struct kvc_client *c, size_t i, uint64_t now)
{
    const struct kvc__node *n = c->nodes[i];
    if (!(n->seed || n->in_ring) || !n->ring_up || n->avoid_until_ns > now)
        return false;
    return n->conn.state != KVC__CLOSED || open_count(c) < c->opts.max_conns ||
           idle_victim(c, i) != KVC__NONE;
}

size_t kvc__pick_any(struct kvc_client *c, uint64_t now)
{
    for (size_t k = 0; k < c->nnodes; k++) {
        size_t i = (c->cur + k) % c->nnodes;
        if (usable(c, i, now)) {
            c->cur = i;
            return i;
        }
    }
    return KVC__NONE;
}

size_t kvc__pick(struct kvc_client *c, const struct kvc_op *op, uint64_t now)
{
    /* (5) A local read asks about one node's own store: the first address, or nothing. */
    if (op->type == KVC_OP_GET && op->call.local)
        return c->nnodes && c->nodes[0]->avoid_until_ns <= now ? 0 : KVC__NONE;
    const struct kvc__range *r = NULL;
    if (c->opts.token_aware && c->ring.n) {
        if (op->type == KVC_OP_SCAN)
            r = kvc__ring_find(&c->ring, op->scan.start, op->scan.start_len);
        else if (op->type != KVC__OP_STATUS)
            r = kvc__ring_find(&c->ring, op->key, op->key_len);
    }
    for (size_t k = 0; r && k < r->n_replicas; k++) {
        size_t i = kvc__node_by_id(c, r->replicas[k]);
        if (i != KVC__NONE && usable(c, i, now))
            return i;
    }
    return kvc__pick_any(c, now);
}

int kvc__node_open(struct kvc_client *c, size_t i, uint64_t now, struct kvc_err *err)
{
    struct kvc__node *n = c->nodes[i];
    n->last_used_ns = now;
    if (n->conn.state != KVC__CLOSED)
        return KVC_OK;
    if (open_count(c) >= c->opts.max_conns) {
        size_t v = idle_victim(c, i);
        if (v != KVC__NONE)
            kvc__conn_reset(&c->nodes[v]->conn);
    }
    int rc = kvc__conn_start(&n->conn, n->addr, c->opts.connect_timeout_ms, err);
    if (rc != KVC_OK)
        kvc__node_avoid(c, i, now);
    return rc;
}

/* --- learning the cluster ------------------------------------------------------------------ */

void kvc__drop_ring(struct kvc_client *c)
{
    kvc__ring_free(&c->ring);
    for (size_t i = 0; i < c->nnodes; i++) {
        c->nodes[i]->in_ring = false;
        c->nodes[i]->ring_up = true;
    }
}

/* The node for a member of the status: by id, else an unnamed node with its address,
 * else a new one. KVC__NONE when it has no address or memory ran out. */
static size_t node_for(struct kvc_client *c, const struct kvc_node_info *m)
{
    size_t i = kvc__node_by_id(c, m->id);
    if (i != KVC__NONE) {
        struct kvc__node *n = c->nodes[i];
        /* A member that moved: follow it, unless the caller named it (a seed address
         * may be a name for the same node) or a socket to the old address is in use. */
        if (!n->seed && m->addr[0] && strcmp(n->addr, m->addr) != 0 &&
            n->conn.state == KVC__CLOSED) {
            char *a = strdup(m->addr);
            if (a) {
                free(n->addr);
                n->addr = a;
            }
        }
        return i;
    }
    if (!m->addr[0])
        return KVC__NONE;
    for (i = 0; i < c->nnodes; i++)
        if (!c->nodes[i]->has_id && strcmp(c->nodes[i]->addr, m->addr) == 0)
            break;
    if (i == c->nnodes && (i = kvc__node_add(c, m->addr, false)) == KVC__NONE)
        return KVC__NONE;
    c->nodes[i]->has_id = true;
    c->nodes[i]->id = m->id;
    return i;
}

void kvc__install_status(struct kvc_client *c, const struct kvc_cluster_status *st,
                         size_t from)
{
    struct kvc__ring ring;
    if (kvc__ring_build(st, &ring) != KVC_OK)
        return;   /* out of memory: keep routing by the ring we have */
    /* The node that answered is `self`, whatever address the caller knew it by. */
    if (from < c->nnodes && !c->nodes[from]->has_id && kvc__node_by_id(c, st->self) == KVC__NONE) {
        c->nodes[from]->has_id = true;
        c->nodes[from]->id = st->self;
    }
    for (size_t i = 0; i < c->nnodes; i++) {
        c->nodes[i]->in_ring = false;
        c->nodes[i]->ring_up = true;
    }
    for (size_t k = 0; k < st->n_nodes; k++) {
        size_t i = node_for(c, &st->nodes[k]);
        if (i == KVC__NONE)
            continue;
        c->nodes[i]->in_ring = true;
        c->nodes[i]->ring_up = st->nodes[k].up;
    }
    kvc__ring_free(&c->ring);
    c->ring = ring;
}
