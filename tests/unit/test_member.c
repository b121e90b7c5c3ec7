/* tests/unit/test_member.c -- gossip membership and phi accrual (cluster/member.h), one
 * kv_members per simulated node (tests/sim/sim.h, sim_attach: no kv_cluster involved). */
#include <check.h>
#include "tests/check_run.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/member.h"
#include "cluster/ring.h"
#include "tests/sim/sim.h"

#define INTERVAL 200

struct rec {
    unsigned joins, states, transitions, stamps;
};

struct world {
    struct sim *s;
    int n;
    struct kv_members *m[SIM_MAX_NODES + 1];
    struct rec rec[SIM_MAX_NODES + 1];
    uint64_t generation[SIM_MAX_NODES + 1];
    uint8_t token_seed[SIM_MAX_NODES + 1];
};

static void deliver(void *target, const Kv__PeerMessage *msg)
{
    if (msg->body_case == KV__PEER_MESSAGE__BODY_GOSSIP)
        kv_members_on_gossip(target, msg->from, msg->gossip);
}

/* joins: (id, true, true), a first sighting; states: a state change alone; transitions:
 * an up/down change alone (the direction is read from kv_members_is_up). */
static void on_change(void *arg, uint32_t id, bool state_changed, bool up_changed)
{
    (void)id;
    struct rec *r = arg;
    if (state_changed && up_changed) {
        r->joins++;
        return;
    }
    r->states += state_changed;
    r->transitions += up_changed;
}

static void stamp(void *arg, Kv__PeerMessage *msg)
{
    struct rec *r = arg;
    ck_assert_uint_ne(msg->from, 0);
    msg->hlc = 42;
    r->stamps++;
}

/* Starts node id (again): a fresh kv_members with the next generation. */
static void start_node(struct world *w, uint32_t id)
{
    struct sim_node *sn = sim_node(w->s, id);
    if (w->m[id]) {
        sim_detach(w->s, id);
        kv_members_free(w->m[id]);
        w->m[id] = NULL;
    }
    uint8_t buf[4 * 8];
    struct kv_slice toks[4];
    kv_ring_default_tokens(id * 100 + w->token_seed[id], 4, buf, toks);
    ProtobufCBinaryData bin[4];
    for (int i = 0; i < 4; i++)
        bin[i] = (ProtobufCBinaryData){.len = toks[i].len, .data = (uint8_t *)toks[i].ptr};
    char rack[8];
    snprintf(rack, sizeof rack, "r%u", id % 3);
    Kv__NodeState self = KV__NODE_STATE__INIT;
    self.id = id;
    self.addr = sn->addr;
    self.region = "dc1";
    self.rack = rack;
    self.tokens = bin;
    self.n_tokens = 4;
    self.generation = ++w->generation[id];
    const char *seeds[] = {sim_node(w->s, 1)->addr, NULL};
    struct kv_members_opts o = {.self = &self, .seeds = seeds, .gossip_interval_ms = INTERVAL,
                                .phi_threshold = 8, .fanout = 3, .on_change = on_change,
                                .on_change_arg = &w->rec[id], .stamp = stamp,
                                .stamp_arg = &w->rec[id]};
    struct kv_err err;
    ck_assert_int_eq(kv_members_new(&o, &sn->io, &w->m[id], &err), KV_OK);
    sim_attach(w->s, id, w->m[id], deliver);
    kv_members_start(w->m[id]);
}

static struct world *world_new(uint64_t seed, int n)
{
    struct world *w = calloc(1, sizeof *w);
    w->s = sim_new(seed, n);
    ck_assert_ptr_nonnull(w->s);
    w->n = n;
    for (int i = 1; i <= n; i++)
        start_node(w, (uint32_t)i);
    return w;
}

static void world_free(struct world *w)
{
    for (int i = 1; i <= w->n; i++)
        kv_members_free(w->m[i]);
    sim_free(w->s);
    free(w);
}

/* Every node sees every node, all up. */
static bool converged(void *arg)
{
    struct world *w = arg;
    for (int i = 1; i <= w->n; i++) {
        if (kv_members_count(w->m[i]) != (size_t)w->n)
            return false;
        for (int j = 1; j <= w->n; j++)
            if (!kv_members_is_up(w->m[i], (uint32_t)j))
                return false;
    }
    return true;
}

static uint32_t watched;

static bool all_see_watched_down(void *arg)
{
    struct world *w = arg;
    for (int i = 1; i <= w->n; i++)
        if ((uint32_t)i != watched && kv_members_is_up(w->m[i], watched))
            return false;
    return true;
}

static bool all_see_watched_generation(void *arg)
{
    struct world *w = arg;
    for (int i = 1; i <= w->n; i++) {
        const Kv__NodeState *st = kv_members_find(w->m[i], watched);
        if (!st || st->generation != w->generation[watched])
            return false;
    }
    return true;
}

/* --- tests --------------------------------------------------------------------------- */

START_TEST(test_five_nodes_with_one_seed_converge_to_a_full_view_within_ten_rounds)
{
    struct world *w = world_new(1, 5);
    ck_assert(sim_run_until(w->s, converged, w, 10 * INTERVAL));
    /* The views agree on what each node said about itself. */
    for (int i = 1; i <= 5; i++)
        for (size_t k = 0; k < 5; k++) {
            const Kv__NodeState *st = kv_members_at(w->m[i], k);
            ck_assert_uint_eq(st->id, k + 1);   /* increasing id order */
            ck_assert_str_eq(st->addr, sim_node(w->s, st->id)->addr);
            ck_assert_uint_eq(st->n_tokens, 4);
            ck_assert_str_eq(st->region, "dc1");
        }
    /* Every node learned the other four, each exactly once, as a join. */
    for (int i = 1; i <= 5; i++) {
        ck_assert_uint_eq(w->rec[i].joins, 4);
        ck_assert_uint_gt(w->rec[i].stamps, 0);
    }
    world_free(w);
}
END_TEST

START_TEST(test_an_isolated_node_is_marked_down_by_every_other_node_and_back_up_after_heal)
{
    struct world *w = world_new(2, 5);
    ck_assert(sim_run_until(w->s, converged, w, 10 * INTERVAL));
    sim_run_for(w->s, 5000);   /* settle the interval history */
    ck_assert(converged(w));
    sim_isolate(w->s, 3, true);
    uint64_t t0 = sim_now(w->s);
    watched = 3;
    /* Default timing: phi 8 at 8 * ln 10 * 200 ms = 3684 ms of silence, seen by the next
     * round: between ~3.4 s (the last heartbeat may predate the cut) and ~4.1 s. */
    ck_assert(sim_run_until(w->s, all_see_watched_down, w, 6000));
    uint64_t took = sim_now(w->s) - t0;
    ck_assert_uint_ge(took, 3000);
    ck_assert_uint_le(took, 4500);
    /* The isolated node sees the others down too, and itself up. */
    sim_run_for(w->s, 1000);
    for (uint32_t j = 1; j <= 5; j++)
        ck_assert(kv_members_is_up(w->m[3], j) == (j == 3));
    sim_heal(w->s);
    ck_assert(sim_run_until(w->s, converged, w, 10 * INTERVAL));
    world_free(w);
}
END_TEST

START_TEST(test_a_restarted_node_with_a_higher_generation_replaces_its_old_state)
{
    struct world *w = world_new(3, 5);
    ck_assert(sim_run_until(w->s, converged, w, 10 * INTERVAL));
    sim_run_for(w->s, 3000);
    uint64_t old_version = kv_members_find(w->m[1], 4)->version;
    ck_assert_uint_gt(old_version, 5);
    unsigned states_before = w->rec[1].states;
    w->token_seed[4] = 1;   /* it comes back with other tokens */
    start_node(w, 4);
    watched = 4;
    ck_assert(sim_run_until(w->s, all_see_watched_generation, w, 10 * INTERVAL));
    for (int i = 1; i <= 5; i++) {
        const Kv__NodeState *st = kv_members_find(w->m[i], 4);
        ck_assert_uint_lt(st->version, old_version);   /* lower version, newer generation */
        ck_assert(kv_members_is_up(w->m[i], 4));
    }
    ck_assert_uint_gt(w->rec[1].states, states_before);   /* the token change was reported */
    /* The restarted node relearned the others. */
    ck_assert(sim_run_until(w->s, converged, w, 10 * INTERVAL));
    world_free(w);
}
END_TEST

START_TEST(test_twenty_percent_message_loss_still_converges_without_false_downs)
{
    struct world *w = world_new(4, 5);
    sim_set_loss(w->s, 0.2);
    ck_assert(sim_run_until(w->s, converged, w, 20 * INTERVAL));
    unsigned transitions[6];
    for (int i = 1; i <= 5; i++)
        transitions[i] = w->rec[i].transitions;
    for (int k = 0; k < 60; k++) {   /* a minute of lossy gossip, checked every second */
        sim_run_for(w->s, 1000);
        ck_assert(converged(w));
    }
    for (int i = 1; i <= 5; i++)
        ck_assert_uint_eq(w->rec[i].transitions, transitions[i]);   /* no transition at all */
    ck_assert_uint_gt(sim_messages_dropped(w->s), 0);
    world_free(w);
}
END_TEST

START_TEST(test_self_is_never_down_even_when_cut_off_from_everyone)
{
    struct world *w = world_new(5, 4);
    ck_assert(sim_run_until(w->s, converged, w, 10 * INTERVAL));
    sim_isolate(w->s, 1, true);
    for (int k = 0; k < 20; k++) {
        sim_run_for(w->s, 500);
        ck_assert(kv_members_is_up(w->m[1], 1));
        ck_assert(kv_members_phi(w->m[1], 1) == 0.0);
        ck_assert_uint_eq(kv_members_silence_ms(w->m[1], 1), 0);
    }
    for (uint32_t j = 2; j <= 4; j++)
        ck_assert(!kv_members_is_up(w->m[1], j));
    world_free(w);
}
END_TEST

START_TEST(test_phi_rises_with_silence_and_drops_on_a_heartbeat)
{
    struct world *w = world_new(6, 3);
    ck_assert(sim_run_until(w->s, converged, w, 10 * INTERVAL));
    sim_run_for(w->s, 5000);
    ck_assert(kv_members_phi(w->m[1], 2) < 2.0);
    sim_cut(w->s, 2, 1, true);
    sim_cut(w->s, 2, 3, true);
    double prev = -1;
    for (int k = 0; k < 15; k++) {
        sim_run_for(w->s, 200);
        double phi = kv_members_phi(w->m[1], 2);
        ck_assert(phi > prev);
        /* phi = silence / (mean * ln 10), mean >= the interval */
        double bound = (double)kv_members_silence_ms(w->m[1], 2) / (INTERVAL * 2.302585092994046);
        ck_assert(phi <= bound + 1e-9);
        prev = phi;
    }
    ck_assert(prev > 5.0);
    ck_assert(isinf(kv_members_phi(w->m[1], 77)));
    ck_assert(!kv_members_is_up(w->m[1], 77));
    sim_heal(w->s);
    sim_run_for(w->s, 2000);
    ck_assert(kv_members_phi(w->m[1], 2) < 2.0);
    world_free(w);
}
END_TEST

START_TEST(test_on_change_fires_once_per_transition_and_per_token_change)
{
    struct world *w = world_new(7, 3);
    ck_assert(sim_run_until(w->s, converged, w, 10 * INTERVAL));
    sim_run_for(w->s, 2000);
    struct rec before = w->rec[1];
    ck_assert_uint_eq(before.joins, 2);
    ck_assert_uint_eq(before.transitions, 0);
    sim_isolate(w->s, 3, true);
    sim_run_for(w->s, 6000);
    ck_assert(!kv_members_is_up(w->m[1], 3));
    ck_assert_uint_eq(w->rec[1].transitions, before.transitions + 1);   /* down: one transition */
    ck_assert_uint_eq(w->rec[1].states, before.states);
    sim_heal(w->s);
    sim_run_for(w->s, 3000);
    ck_assert(kv_members_is_up(w->m[1], 3));
    ck_assert_uint_eq(w->rec[1].transitions, before.transitions + 2);   /* and up again: one more */
    ck_assert_uint_eq(w->rec[1].states, before.states);   /* heartbeats are not changes */
    w->token_seed[2] = 9;
    start_node(w, 2);
    sim_run_for(w->s, 3000);
    ck_assert_uint_eq(w->rec[1].states, before.states + 1);
    ck_assert_uint_eq(w->rec[1].transitions, before.transitions + 2);
    world_free(w);
}
END_TEST

/* Direct feeding: the view keeps the newest (generation, version) and drops bad input. */
START_TEST(test_gossip_merges_by_generation_then_version_and_drops_invalid_states)
{
    struct world *w = calloc(1, sizeof *w);
    w->s = sim_new(8, 2);
    w->n = 1;
    start_node(w, 1);   /* not started gossiping: kv_members_start ran, but no time passes */
    struct kv_members *m = w->m[1];
    uint8_t tok[KV_RING_MAX_TOKEN + 1];
    memset(tok, 'k', sizeof tok);
    ProtobufCBinaryData good = {.len = 3, .data = tok};
    ProtobufCBinaryData too_long = {.len = KV_RING_MAX_TOKEN + 1, .data = tok};
    ProtobufCBinaryData empty = {.len = 0, .data = tok};

    Kv__NodeState a = KV__NODE_STATE__INIT;
    a.id = 2;
    a.addr = "10.99.0.2:7379";
    a.tokens = &good;
    a.n_tokens = 1;
    a.generation = 1;
    a.version = 5;
    Kv__NodeState *one[1] = {&a};
    Kv__Gossip g = KV__GOSSIP__INIT;
    g.nodes = one;
    g.n_nodes = 1;
    g.reply = true;

    uint64_t sent = sim_messages_sent(w->s);
    kv_members_on_gossip(m, 2, &g);
    ck_assert_uint_eq(kv_members_count(m), 2);
    ck_assert_uint_eq(w->rec[1].joins, 1);
    ck_assert_uint_eq(sim_messages_sent(w->s), sent + 1);   /* answered the pull */
    a.version = 3;   /* older: ignored */
    a.addr = "elsewhere:1";
    g.reply = false;
    kv_members_on_gossip(m, 2, &g);
    ck_assert_str_eq(kv_members_find(m, 2)->addr, "10.99.0.2:7379");
    ck_assert_uint_eq(sim_messages_sent(w->s), sent + 1);   /* no pull, no answer */
    a.generation = 2;   /* restarted: wins with any version */
    a.version = 1;
    kv_members_on_gossip(m, 2, &g);
    ck_assert_uint_eq(kv_members_find(m, 2)->generation, 2);
    ck_assert_str_eq(kv_members_find(m, 2)->addr, "elsewhere:1");
    ck_assert_uint_eq(w->rec[1].states, 1);

    Kv__NodeState bad = a;
    bad.generation = 9;
    bad.id = 0;
    one[0] = &bad;
    kv_members_on_gossip(m, 2, &g);
    bad.id = 3;
    bad.tokens = &too_long;
    kv_members_on_gossip(m, 2, &g);
    bad.tokens = &empty;
    kv_members_on_gossip(m, 2, &g);
    bad.tokens = &good;
    bad.n_tokens = KV_MEMBER_MAX_TOKENS + 1;   /* rejected before the array is read */
    kv_members_on_gossip(m, 2, &g);
    ck_assert_uint_eq(kv_members_count(m), 2);
    ck_assert_ptr_null(kv_members_find(m, 3));

    /* Nobody else may speak for self, even with a higher generation (logged). */
    Kv__NodeState me = a;
    me.id = 1;
    me.generation = 100;
    me.addr = "impostor:1";
    one[0] = &me;
    kv_members_on_gossip(m, 2, &g);
    ck_assert_str_eq(kv_members_find(m, 1)->addr, sim_node(w->s, 1)->addr);
    ck_assert_uint_eq(kv_members_find(m, 1)->generation, 1);

    kv_members_set_load(m, 1234, 7);
    ck_assert_uint_eq(kv_members_find(m, 1)->load_bytes, 1234);
    ck_assert_uint_eq(kv_members_find(m, 1)->hints_pending, 7);
    ck_assert_ptr_null(kv_members_at(m, 2));
    world_free(w);
}
END_TEST

START_TEST(test_sixteen_nodes_on_a_slow_network_converge_and_stay_up)
{
    struct world *w = calloc(1, sizeof *w);
    w->s = sim_new(10, SIM_MAX_NODES);
    w->n = SIM_MAX_NODES;
    sim_set_delay(w->s, 1, 50);
    for (uint32_t i = 1; i <= SIM_MAX_NODES; i++)
        start_node(w, i);
    ck_assert(sim_run_until(w->s, converged, w, 15 * INTERVAL));
    for (int k = 0; k < 30; k++) {
        sim_run_for(w->s, 1000);
        ck_assert(converged(w));
    }
    for (int i = 1; i <= w->n; i++)
        ck_assert_uint_eq(w->rec[i].transitions, 0);
    world_free(w);
}
END_TEST

START_TEST(test_a_self_state_without_an_id_is_refused)
{
    struct sim *s = sim_new(9, 1);
    Kv__NodeState self = KV__NODE_STATE__INIT;
    struct kv_members_opts o = {.self = &self};
    struct kv_members *m = (struct kv_members *)1;
    struct kv_err err;
    ck_assert_int_eq(kv_members_new(&o, &sim_node(s, 1)->io, &m, &err), KV_INVALID);
    ck_assert_ptr_null(m);
    kv_members_free(NULL);
    sim_free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("member");
    TCase *t = tcase_create("member");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_five_nodes_with_one_seed_converge_to_a_full_view_within_ten_rounds);
    tcase_add_test(t, test_an_isolated_node_is_marked_down_by_every_other_node_and_back_up_after_heal);
    tcase_add_test(t, test_a_restarted_node_with_a_higher_generation_replaces_its_old_state);
    tcase_add_test(t, test_twenty_percent_message_loss_still_converges_without_false_downs);
    tcase_add_test(t, test_self_is_never_down_even_when_cut_off_from_everyone);
    tcase_add_test(t, test_phi_rises_with_silence_and_drops_on_a_heartbeat);
    tcase_add_test(t, test_on_change_fires_once_per_transition_and_per_token_change);
    tcase_add_test(t, test_gossip_merges_by_generation_then_version_and_drops_invalid_states);
    tcase_add_test(t, test_sixteen_nodes_on_a_slow_network_converge_and_stay_up);
    tcase_add_test(t, test_a_self_state_without_an_id_is_refused);
    suite_add_tcase(s, t);
    return kv_check_run(s, true);
}
