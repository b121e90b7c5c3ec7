/* tests/sim/simcall.c -- synchronous request helpers over the simulator (simcall.h). */
#include "tests/sim/simcall.h"
#include <check.h>
#include <stdio.h>
#include <string.h>

void sim_call_cb(void *arg, const struct kv_cluster_result *r)
{
    struct sim_call *c = arg;
    ck_assert_msg(!c->done, "a callback ran twice");
    c->done = true;
    c->early = !c->returned;
    c->r = *r;
    snprintf(c->msg, sizeof c->msg, "%s", r->err.msg);
    c->r.value = kv_slice_of(NULL, 0);
    c->r.items = NULL;
    ck_assert_uint_le(r->value.len, sizeof c->value);
    if (r->value.len)
        memcpy(c->value, r->value.ptr, r->value.len);
    c->value_len = r->value.len;
}

static bool call_done(void *arg) { return ((struct sim_call *)arg)->done; }

struct kv_cluster *sim_cluster(struct sim *s, uint32_t id)
{
    struct kv_cluster *c = sim_node(s, id)->cluster;
    ck_assert_ptr_nonnull(c);
    return c;
}

void sim_call_wait(struct sim *s, struct sim_call *c)
{
    c->returned = true;
    ck_assert_msg(sim_run_until(s, call_done, c, 10000), "no answer within 10 s");
    ck_assert_msg(!c->early, "the callback ran before the call returned");
}

struct sim_call sim_put(struct sim *s, uint32_t via, const char *key, const char *val,
                        enum kv_level l)
{
    struct sim_call c = {0};
    kv_cluster_put(sim_cluster(s, via), kv_slice_str(key), kv_slice_str(val), 0, l, 0,
                   sim_call_cb, &c);
    sim_call_wait(s, &c);
    return c;
}

struct sim_call sim_del(struct sim *s, uint32_t via, const char *key, enum kv_level l)
{
    struct sim_call c = {0};
    kv_cluster_delete(sim_cluster(s, via), kv_slice_str(key), l, 0, sim_call_cb, &c);
    sim_call_wait(s, &c);
    return c;
}

struct sim_call sim_get(struct sim *s, uint32_t via, const char *key, enum kv_level l)
{
    struct sim_call c = {0};
    kv_cluster_get(sim_cluster(s, via), kv_slice_str(key), l, 0, sim_call_cb, &c);
    sim_call_wait(s, &c);
    return c;
}

bool sim_call_value_is(const struct sim_call *c, const char *v)
{
    return c->value_len == strlen(v) && memcmp(c->value, v, c->value_len) == 0;
}

int sim_stored(struct sim *s, uint32_t id, const char *key, struct kv_store_item *out)
{
    struct kv_store_item it = {0};
    enum kv_status st = kv_store_get(sim_node(s, id)->store, kv_slice_str(key), KV_STORE_RAW,
                                     &it, NULL);
    ck_assert(st == KV_OK || st == KV_NOT_FOUND);
    if (st != KV_OK)
        return 0;
    if (out)
        *out = it;
    else
        kv_store_item_free(&it);
    return 1;
}

bool sim_stored_value_is(struct sim *s, uint32_t id, const char *key, const char *v)
{
    struct kv_store_item it;
    if (!sim_stored(s, id, key, &it))
        return false;
    bool eq = !it.rec.tombstone && it.rec.value.len == strlen(v) &&
              memcmp(it.rec.value.ptr, v, it.rec.value.len) == 0;
    kv_store_item_free(&it);
    return eq;
}

int sim_sees(struct sim *s, uint32_t viewer, uint32_t id)
{
    Kv__ClusterStatus st;
    ck_assert_int_eq(kv_cluster_status(sim_cluster(s, viewer), &st, NULL), KV_OK);
    int r = -1;
    for (size_t i = 0; i < st.n_nodes; i++)
        if (st.nodes[i]->state->id == id)
            r = st.nodes[i]->up;
    kv_cluster_status_free(&st);
    return r;
}

struct view_pred {
    struct sim *s;
    uint32_t viewer, id;
    int want;
};

static bool view_is(void *arg)
{
    struct view_pred *p = arg;
    return sim_node(p->s, p->viewer)->cluster && sim_sees(p->s, p->viewer, p->id) == p->want;
}

void sim_wait_view(struct sim *s, uint32_t viewer, uint32_t id, int want)
{
    struct view_pred p = {s, viewer, id, want};
    ck_assert_msg(sim_run_until(s, view_is, &p, 10000), "node %u never saw node %u as %d",
                  viewer, id, want);
}

void sim_wait_all_up(struct sim *s, int n)
{
    for (int a = 1; a <= n; a++)
        for (int b = 1; b <= n; b++)
            if (a != b)
                sim_wait_view(s, (uint32_t)a, (uint32_t)b, 1);
}

struct sim *sim_cluster_with(uint64_t seed, int n, const struct kv_cluster_opts *o)
{
    struct sim *s = sim_new(seed, n);
    ck_assert_ptr_nonnull(s);
    for (int i = 1; i <= n; i++)
        ck_assert_int_eq(sim_start(s, (uint32_t)i, o), KV_OK);
    sim_wait_all_up(s, n);
    return s;
}

struct kv_cluster_stats sim_stats(struct sim *s, uint32_t id)
{
    struct kv_cluster_stats st;
    kv_cluster_get_stats(sim_cluster(s, id), &st);
    return st;
}

void sim_test_opts(struct kv_cluster_opts *o)
{
    kv_cluster_opts_default(o);
    o->gossip_interval_ms = 20;
    o->default_timeout_ms = SIM_TEST_TIMEOUT_MS;
    o->n_tokens = 8;
    o->rf = 3;
}

struct sim *sim_test_cluster(uint64_t seed, int n)
{
    struct kv_cluster_opts o;
    sim_test_opts(&o);
    return sim_cluster_with(seed, n, &o);
}
