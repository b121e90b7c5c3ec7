/* tests/sim/sim_cluster.c -- running whole kv_cluster nodes on the simulator. */
#include "tests/sim/sim.h"

static void deliver_to_cluster(void *target, const Kv__PeerMessage *msg)
{
    kv_cluster_on_message(target, msg);
}

static void stop_cluster(struct sim_node *n) { sim_crash(n->sim, n->id); }

enum kv_status sim_start(struct sim *s, uint32_t id, const struct kv_cluster_opts *opts)
{
    struct sim_node *n = sim_node(s, id);
    if (!n)
        return KV_INVALID;
    if (n->target)
        sim_crash(s, id);
    struct kv_cluster_opts o;
    if (opts)
        o = *opts;
    else
        kv_cluster_opts_default(&o);
    o.node_id = id;
    o.addr = n->addr;
    o.http = n->addr;
    o.generation = ++n->generation;
    const char *seeds[2] = {sim_node(s, 1)->addr, NULL};
    if (!o.seeds)
        o.seeds = seeds;
    enum kv_status st = kv_cluster_new(&o, &n->io, n->store, &n->hlc, &n->cluster, NULL);
    if (st == KV_OK) {
        sim_attach(s, id, n->cluster, deliver_to_cluster);
        n->stop = stop_cluster;
        kv_cluster_start(n->cluster);
    }
    return st;
}

void sim_crash(struct sim *s, uint32_t id)
{
    struct sim_node *n = sim_node(s, id);
    if (!n || !n->target)
        return;
    struct kv_cluster *c = n->cluster;
    n->cluster = NULL;
    n->stop = NULL;
    sim_detach(s, id);
    kv_cluster_free(c);
}

