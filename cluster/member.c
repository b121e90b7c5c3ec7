/* cluster/member.c -- gossip membership and phi-accrual failure detection
 * (cluster/member.h).
 *
 * The view is an array of peers sorted by id, self included; each holds its own deep copy
 * of a NodeState (made by packing and unpacking, so a field added to the proto is copied
 * too) and the arrival history the failure detector needs.
 * (1) Only self's copy is ever modified here (version, load); every other copy is
 *     replaced whole by a state with a higher (generation, version), never edited.
 * (2) A peer's `up` flag changes only in two places: an arrival of a newer heartbeat
 *     (down -> up) and the gossip round's sweep (up -> down when phi >= threshold), and
 *     each change queues exactly one on_change. on_change calls run after the view is
 *     consistent again (end of a merge or of a round), so a callback may read the view.
 * (3) Interval history (cluster/phi.h) records the time between arrivals of newer
 *     heartbeats while the peer is up; the gap across a down period is not an interval (it
 *     would make the detector blind for the next KV_PHI_WINDOW arrivals).
 * (4) Bytes from peers are validated before anything is kept: id 0, more than
 *     KV_MEMBER_MAX_TOKENS tokens, an empty token or one over KV_RING_MAX_TOKEN drop that
 *     state; a state claiming to be self is never accepted. */
#include "cluster/member.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/phi.h"
#include "cluster/ring.h"
#include "common/log.h"

_Static_assert(KV_MEMBER_PHI_WINDOW == KV_PHI_WINDOW, "member.h documents the phi window");

struct peer {
    Kv__NodeState *st;              /* owned, from copy_state */
    bool self;
    bool up;
    struct kv_phi phi;              /* arrivals of newer heartbeats */
};

struct change {
    uint32_t id;
    bool state, up;
};

struct kv_members {
    struct kv_cluster_io io;
    uint32_t self_id;
    uint32_t interval_ms;
    double threshold;
    unsigned fanout;
    char **seeds;
    size_t n_seeds;
    void (*on_change)(void *arg, uint32_t node_id, bool state_changed, bool up_changed);
    void *on_change_arg;
    void (*stamp)(void *arg, Kv__PeerMessage *msg);
    void *stamp_arg;
    uint64_t timer;
    struct peer *peers;
    size_t n_peers;
    struct change *changes;         /* queued on_change calls, see (2) */
    size_t n_changes, cap_changes;
    uint64_t warned_generation;
};

/* --- states -------------------------------------------------------------------------- */

static Kv__NodeState *copy_state(const Kv__NodeState *s)
{
    size_t len = kv__node_state__get_packed_size(s);
    uint8_t stackbuf[1024];
    uint8_t *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
    if (!buf)
        return NULL;
    kv__node_state__pack(s, buf);
    Kv__NodeState *c = kv__node_state__unpack(NULL, len, buf);
    if (buf != stackbuf)
        free(buf);
    return c;
}

static void free_state(Kv__NodeState *s)
{
    if (s)
        kv__node_state__free_unpacked(s, NULL);
}

static bool str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* What on_change calls a state change: tokens, addresses, labels, status, generation. */
static bool state_differs(const Kv__NodeState *a, const Kv__NodeState *b)
{
    if (a->generation != b->generation || a->status != b->status || !str_eq(a->addr, b->addr) ||
        !str_eq(a->http, b->http) || !str_eq(a->region, b->region) || !str_eq(a->rack, b->rack) ||
        a->n_tokens != b->n_tokens)
        return true;
    for (size_t i = 0; i < a->n_tokens; i++)
        if (a->tokens[i].len != b->tokens[i].len ||
            (a->tokens[i].len && memcmp(a->tokens[i].data, b->tokens[i].data, a->tokens[i].len)))
            return true;
    return false;
}

static bool newer(const Kv__NodeState *a, const Kv__NodeState *b)
{
    return a->generation != b->generation ? a->generation > b->generation
                                          : a->version > b->version;
}

static const char *valid_state(const Kv__NodeState *s)
{
    if (s->id == 0)
        return "node id 0";
    if (s->n_tokens > KV_MEMBER_MAX_TOKENS)
        return "too many tokens";
    for (size_t i = 0; i < s->n_tokens; i++)
        if (s->tokens[i].len == 0 || s->tokens[i].len > KV_RING_MAX_TOKEN)
            return "a token is empty or too long";
    return NULL;
}

/* --- the view ------------------------------------------------------------------------ */

static size_t find_ix(const struct kv_members *m, uint32_t id, bool *found)
{
    size_t lo = 0, hi = m->n_peers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->peers[mid].st->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < m->n_peers && m->peers[lo].st->id == id;
    return lo;
}

static struct peer *find_peer(const struct kv_members *m, uint32_t id)
{
    bool found;
    size_t i = find_ix(m, id, &found);
    return found ? &m->peers[i] : NULL;
}

/* Inserts a peer owning st (on failure st is freed and NULL returned). */
static struct peer *insert_peer(struct kv_members *m, Kv__NodeState *st)
{
    bool found;
    size_t at = find_ix(m, st->id, &found);
    struct peer *p = realloc(m->peers, (m->n_peers + 1) * sizeof *p);
    if (!p) {
        free_state(st);
        return NULL;
    }
    m->peers = p;
    memmove(&m->peers[at + 1], &m->peers[at], (m->n_peers - at) * sizeof *p);
    m->n_peers++;
    memset(&m->peers[at], 0, sizeof *p);
    m->peers[at].st = st;
    return &m->peers[at];
}

static void queue_change(struct kv_members *m, uint32_t id, bool state, bool up)
{
    for (size_t i = 0; i < m->n_changes; i++)
        if (m->changes[i].id == id) {
            m->changes[i].state |= state;
            m->changes[i].up ^= up;   /* down then up again within one batch: no change */
            return;
        }
    if (m->n_changes == m->cap_changes) {
        size_t cap = m->cap_changes ? m->cap_changes * 2 : 8;
        struct change *c = realloc(m->changes, cap * sizeof *c);
        if (!c) {
            KV_ERROR("members: out of memory queueing a change for node %u", id);
            return;
        }
        m->changes = c;
        m->cap_changes = cap;
    }
    m->changes[m->n_changes++] = (struct change){id, state, up};
}

static void fire_changes(struct kv_members *m)
{
    /* A callback may read the view but could, in principle, queue more; take the batch. */
    while (m->n_changes) {
        struct change c = m->changes[0];
        memmove(&m->changes[0], &m->changes[1], (m->n_changes - 1) * sizeof c);
        m->n_changes--;
        if ((c.state || c.up) && m->on_change)
            m->on_change(m->on_change_arg, c.id, c.state, c.up);
    }
}

static double phi_at(const struct kv_members *m, const struct peer *p, uint64_t now)
{
    return p->self ? 0 : kv_phi_value(&p->phi, now, (double)m->interval_ms);
}

/* A newer heartbeat of p arrived now. */
static void arrival(struct kv_members *m, struct peer *p, uint64_t now)
{
    if (!p->up) {
        p->up = true;
        queue_change(m, p->st->id, false, true);
        KV_INFO("members[%u]: node %u is up", m->self_id, p->st->id);
        kv_phi_arrival(&p->phi, now, false);   /* (3): the down gap is no interval */
        return;
    }
    kv_phi_arrival(&p->phi, now, true);
}

/* Merges one state from gossip (borrowed). */
static void merge(struct kv_members *m, const Kv__NodeState *s)
{
    const char *why = valid_state(s);
    if (why) {
        KV_DEBUG("members: ignoring a gossiped state for node %u: %s", s->id, why);
        return;
    }
    struct peer *p = find_peer(m, s->id);
    if (p && p->self) {
        Kv__NodeState *me = p->st;
        if (s->generation > me->generation) {
            if (m->warned_generation < s->generation) {
                m->warned_generation = s->generation;
                KV_WARN("members: another node gossips id %u with generation %llu, above ours "
                        "(%llu): two nodes share an id, or this node's generation went back",
                        s->id, (unsigned long long)s->generation,
                        (unsigned long long)me->generation);
            }
        } else if (s->generation == me->generation && s->version > me->version) {
            /* We restarted without a new generation: jump ahead so peers accept us. */
            me->version = s->version + 1;
        }
        return;
    }
    if (p && !newer(s, p->st))
        return;
    Kv__NodeState *c = copy_state(s);
    if (!c) {
        KV_ERROR("members: out of memory copying the state of node %u", s->id);
        return;
    }
    uint64_t now = m->io.mono_ms(m->io.ctx);
    if (!p) {
        p = insert_peer(m, c);
        if (!p) {
            KV_ERROR("members: out of memory adding node %u", s->id);
            return;
        }
        /* First sight: up, with one synthetic interval so phi has a mean at once. */
        p->up = true;
        kv_phi_init(&p->phi, now, (double)m->interval_ms);
        if (m->io.set_addr && c->addr && c->addr[0])
            m->io.set_addr(m->io.ctx, c->id, c->addr);
        queue_change(m, c->id, true, true);
        KV_INFO("members[%u]: node %u (%s) joined the view", m->self_id, c->id,
                c->addr ? c->addr : "");
        return;
    }
    bool changed = state_differs(p->st, c);
    bool addr_changed = !str_eq(p->st->addr, c->addr);
    free_state(p->st);
    p->st = c;
    if (addr_changed && m->io.set_addr && c->addr && c->addr[0])
        m->io.set_addr(m->io.ctx, c->id, c->addr);
    if (changed)
        queue_change(m, c->id, true, false);
    arrival(m, p, now);
}

/* --- sending ------------------------------------------------------------------------- */

/* Fills g with the whole view (pointers into the peers; valid until the view changes).
 * Returns false when out of memory. */
static bool view_message(struct kv_members *m, Kv__Gossip *g, Kv__PeerMessage *pm, bool reply)
{
    kv__gossip__init(g);
    kv__peer_message__init(pm);
    g->nodes = malloc(m->n_peers * sizeof *g->nodes);
    if (!g->nodes)
        return false;
    for (size_t i = 0; i < m->n_peers; i++)
        g->nodes[i] = m->peers[i].st;
    g->n_nodes = m->n_peers;
    g->reply = reply;
    pm->from = m->self_id;
    pm->body_case = KV__PEER_MESSAGE__BODY_GOSSIP;
    pm->gossip = g;
    return true;
}

static void send_to(struct kv_members *m, uint32_t to, Kv__PeerMessage *pm)
{
    if (m->stamp)
        m->stamp(m->stamp_arg, pm);
    m->io.send(m->io.ctx, to, pm);
}

static void send_to_addr(struct kv_members *m, const char *addr, Kv__PeerMessage *pm)
{
    if (m->stamp)
        m->stamp(m->stamp_arg, pm);
    m->io.send_addr(m->io.ctx, addr, pm);
}

static struct peer *self_peer(struct kv_members *m) { return find_peer(m, m->self_id); }

/* Marks down every peer whose phi reached the threshold. */
static void sweep(struct kv_members *m, uint64_t now)
{
    for (size_t i = 0; i < m->n_peers; i++) {
        struct peer *p = &m->peers[i];
        if (p->self || !p->up)
            continue;
        double phi = phi_at(m, p, now);
        if (phi >= m->threshold) {
            p->up = false;
            queue_change(m, p->st->id, false, true);
            KV_INFO("members[%u]: node %u is down (phi %.1f, silent %llu ms)", m->self_id,
                    p->st->id, phi,
                    (unsigned long long)(now - p->phi.last_ms));
        }
    }
}

static void gossip_round(void *arg)
{
    struct kv_members *m = arg;
    m->timer = 0;
    uint64_t now = m->io.mono_ms(m->io.ctx);
    self_peer(m)->st->version++;
    sweep(m, now);

    size_t n_live = 0, n_down = 0;
    uint32_t *live = malloc((m->n_peers + 1) * sizeof *live);
    uint32_t *down = malloc((m->n_peers + 1) * sizeof *down);
    Kv__Gossip g;
    Kv__PeerMessage pm;
    if (!live || !down || !view_message(m, &g, &pm, true)) {
        KV_ERROR("members: out of memory in a gossip round");
        free(live);
        free(down);
        goto rearm;
    }
    for (size_t i = 0; i < m->n_peers; i++) {
        if (m->peers[i].self)
            continue;
        if (m->peers[i].up)
            live[n_live++] = m->peers[i].st->id;
        else
            down[n_down++] = m->peers[i].st->id;
    }
    /* fanout distinct live peers: a partial Fisher-Yates shuffle. */
    for (size_t k = 0; k < m->fanout && k < n_live; k++) {
        size_t j = k + m->io.random(m->io.ctx) % (n_live - k);
        uint32_t t = live[k];
        live[k] = live[j];
        live[j] = t;
        send_to(m, live[k], &pm);
    }
    /* Nobody alive to talk to: knock on every seed. */
    if (n_live == 0) {
        const char *self_addr = self_peer(m)->st->addr;
        for (size_t i = 0; i < m->n_seeds; i++)
            if (!str_eq(m->seeds[i], self_addr))
                send_to_addr(m, m->seeds[i], &pm);
    }
    /* A down node, with probability down / (live + 1), so a returning node hears from us
     * (and answers, which marks it up) even if none of its own targets reach us. */
    if (n_down && m->io.random(m->io.ctx) % (n_live + 1) < n_down)
        send_to(m, down[m->io.random(m->io.ctx) % n_down], &pm);
    free(g.nodes);
    free(live);
    free(down);
rearm:
    m->timer = m->io.timer_start(m->io.ctx, m->interval_ms, gossip_round, m);
    fire_changes(m);
}

/* --- public -------------------------------------------------------------------------- */

enum kv_status kv_members_new(const struct kv_members_opts *o, const struct kv_cluster_io *io,
                              struct kv_members **out, struct kv_err *err)
{
    *out = NULL;
    if (!o || !o->self || !io)
        return kv_err_set(err, KV_INVALID, "members: self state and io are required");
    if (o->self->id == 0)
        return kv_err_set(err, KV_INVALID, "members: node id 0 is reserved");
    const char *why = valid_state(o->self);
    if (why)
        return kv_err_set(err, KV_INVALID, "members: own state is invalid: %s", why);
    struct kv_members *m = calloc(1, sizeof *m);
    if (!m)
        return kv_err_set(err, KV_NOMEM, "members: out of memory");
    m->io = *io;
    m->self_id = o->self->id;
    m->interval_ms = o->gossip_interval_ms ? o->gossip_interval_ms : 200;
    m->threshold = o->phi_threshold > 0 ? o->phi_threshold : 8;
    m->fanout = o->fanout ? o->fanout : 3;
    m->on_change = o->on_change;
    m->on_change_arg = o->on_change_arg;
    m->stamp = o->stamp;
    m->stamp_arg = o->stamp_arg;
    for (size_t i = 0; o->seeds && o->seeds[i]; i++)
        m->n_seeds++;
    m->seeds = calloc(m->n_seeds ? m->n_seeds : 1, sizeof *m->seeds);
    Kv__NodeState *me = copy_state(o->self);
    if (!m->seeds || !me)
        goto oom;
    for (size_t i = 0; i < m->n_seeds; i++)
        if (!(m->seeds[i] = strdup(o->seeds[i])))
            goto oom;
    struct peer *p = insert_peer(m, me);
    me = NULL;
    if (!p)
        goto oom;
    p->self = true;
    p->up = true;
    if (m->io.set_addr && p->st->addr && p->st->addr[0])
        m->io.set_addr(m->io.ctx, p->st->id, p->st->addr);
    *out = m;
    return KV_OK;
oom:
    free_state(me);
    kv_members_free(m);
    return kv_err_set(err, KV_NOMEM, "members: out of memory");
}

void kv_members_free(struct kv_members *m)
{
    if (!m)
        return;
    if (m->timer)
        m->io.timer_cancel(m->io.ctx, m->timer);
    for (size_t i = 0; i < m->n_peers; i++)
        free_state(m->peers[i].st);
    free(m->peers);
    for (size_t i = 0; m->seeds && i < m->n_seeds; i++)
        free(m->seeds[i]);
    free(m->seeds);
    free(m->changes);
    free(m);
}

void kv_members_start(struct kv_members *m)
{
    if (m->timer)
        return;
    /* A random first delay keeps nodes started together from gossiping in lockstep. */
    m->timer = m->io.timer_start(m->io.ctx, m->io.random(m->io.ctx) % m->interval_ms,
                                 gossip_round, m);
}

void kv_members_on_gossip(struct kv_members *m, uint32_t from, const Kv__Gossip *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i])
            merge(m, g->nodes[i]);
    if (g->reply && from != 0 && from != m->self_id) {
        Kv__Gossip r;
        Kv__PeerMessage pm;
        if (view_message(m, &r, &pm, false))
            send_to(m, from, &pm);
        else
            KV_ERROR("members: out of memory answering gossip from node %u", from);
        free(r.nodes);
    }
    fire_changes(m);
}

void kv_members_restore(struct kv_members *m, const Kv__Gossip *g)
{
    for (size_t i = 0; g && i < g->n_nodes; i++) {
        const Kv__NodeState *s = g->nodes[i];
        if (!s || valid_state(s) || find_peer(m, s->id))
            continue;
        Kv__NodeState *c = copy_state(s);
        struct peer *p = c ? insert_peer(m, c) : NULL;   /* insert_peer frees c on failure */
        if (!p) {
            KV_ERROR("members: out of memory restoring node %u", s->id);
            continue;
        }
        p->up = false;              /* (2): up only once a newer heartbeat arrives */
        kv_phi_init(&p->phi, m->io.mono_ms(m->io.ctx), (double)m->interval_ms);
        if (m->io.set_addr && c->addr && c->addr[0])
            m->io.set_addr(m->io.ctx, c->id, c->addr);
    }
}

void kv_members_set_load(struct kv_members *m, uint64_t load_bytes, uint64_t hints_pending)
{
    Kv__NodeState *me = self_peer(m)->st;
    me->load_bytes = load_bytes;
    me->hints_pending = hints_pending;
}

size_t kv_members_count(const struct kv_members *m) { return m->n_peers; }

const Kv__NodeState *kv_members_at(const struct kv_members *m, size_t i)
{
    return i < m->n_peers ? m->peers[i].st : NULL;
}

const Kv__NodeState *kv_members_find(const struct kv_members *m, uint32_t id)
{
    const struct peer *p = find_peer(m, id);
    return p ? p->st : NULL;
}

bool kv_members_is_up(const struct kv_members *m, uint32_t id)
{
    const struct peer *p = find_peer(m, id);
    return p && p->up;
}

double kv_members_phi(const struct kv_members *m, uint32_t id)
{
    const struct peer *p = find_peer(m, id);
    if (!p)
        return INFINITY;
    return phi_at(m, p, m->io.mono_ms(m->io.ctx));
}

uint64_t kv_members_silence_ms(const struct kv_members *m, uint32_t id)
{
    const struct peer *p = find_peer(m, id);
    if (!p)
        return UINT64_MAX;
    if (p->self)
        return 0;
    uint64_t now = m->io.mono_ms(m->io.ctx);
    return now > p->phi.last_ms ? now - p->phi.last_ms : 0;
}
