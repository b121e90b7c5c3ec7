/* cluster/cluster.c -- the kv_cluster façade (cluster/cluster.h): construction, message
 * dispatch, status and stats. The op table, jobs and deadlines are ops.c; the decisions
 * live in coord.c (quorums, reads, writes), scan.c, replica.c and hints.c.
 *
 * (1) Every incoming PeerMessage is validated here before anyone looks at it: a sender id,
 *     a body, and records within the limits (key 1..4096 bytes, value <= max_value, no value
 *     on a tombstone). A message that fails is counted in messages_malformed and dropped.
 * (2) The HLC observes every incoming message's hlc before the message is handled, and every
 *     outgoing message is stamped with from = node_id and hlc = kv_hlc_now (ops.c), so a
 *     write coordinated after a message arrived is stamped above the sender's clock.
 * (3) The ring is rebuilt from the membership view whenever a node's state changes; ops copy
 *     the replica ids they need when they start, so a rebuild never pulls a ring from under
 *     an op.
 * (4) A node configured with seeds (other than itself) refuses client requests with
 *     UNAVAILABLE until gossip from another node has arrived: alone it would count itself as
 *     every replica and acknowledge QUORUM writes nobody else has.
 * (5) The view is durable: whenever a node's state changes (one joins, its tokens change)
 *     the whole view is written to KV_CF_META (VIEW_KEY, synced, one write in flight at a
 *     time, the newest view last), and a restart restores it with every other node down
 *     until heard from. So a restarted node's ring names the same replicas as before,
 *     instead of the few nodes whose gossip arrived first: two restarted nodes that heard
 *     only from each other formed a two-node ring and answered LINEARIZABLE reads from it,
 *     stale (kvsim --seed 21 --bug hint-ack, before this fix). A restored view with other
 *     nodes also makes the node refuse client requests as in (4) until gossip arrives, seeds
 *     or not: a cluster's first node often has no seed but itself, and restarted it counted
 *     itself as every replica (kvsim --seed 25). has_seeds then means "must join first".
 * (6) Every version and ballot this start mints is (hlc, writer), writer = node id in the
 *     low 16 bits and this start's generation mod 2^16 in the high ones (kv_cluster_writer).
 *     One start's HLC never repeats a value, but a restarted node's HLC is rebuilt from its
 *     wall clock and its peers' stamps, so it can climb through values it minted before
 *     the crash when it had been following a peer whose clock ran ahead. With the node id
 *     alone in the version, it minted (hlc, node) again for another value: two values
 *     under one version, which replicas never reconcile (kvsim --seed 30008 --nodes 6, a
 *     +3.9 s clock jump on node 2 then a crash of node 3), and a reused Paxos ballot. The
 *     start in the writer makes versions of different starts differ, as the clock
 *     sequence of a UUIDv1 does; persisting an HLC ceiling instead and starting above it
 *     put the restarted node's clock ahead of the cluster's, which lost last-writer-wins
 *     writes in seeds that had no clock jump at all (docs/testing.md). */
#include "cluster/internal.h"
#include <stdlib.h>
#include <string.h>
#include "common/log.h"

/* --- small helpers ------------------------------------------------------------------- */

#define VIEW_KEY "cluster/view"         /* (5): a packed Kv__Gossip of the whole view */

static void save_view(struct kv_cluster *c);
static void restore_view(struct kv_cluster *c);

static char *str_dup(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

const char *kv_level_name(enum kv_level l)
{
    switch (l) {
    case KV_LEVEL_DEFAULT: return "DEFAULT";
    case KV_LEVEL_ONE: return "ONE";
    case KV_LEVEL_TWO: return "TWO";
    case KV_LEVEL_THREE: return "THREE";
    case KV_LEVEL_QUORUM: return "QUORUM";
    case KV_LEVEL_ALL: return "ALL";
    case KV_LEVEL_LOCAL_ONE: return "LOCAL_ONE";
    case KV_LEVEL_LOCAL_QUORUM: return "LOCAL_QUORUM";
    case KV_LEVEL_EACH_QUORUM: return "EACH_QUORUM";
    case KV_LEVEL_LINEARIZABLE: return "LINEARIZABLE";
    }
    return "UNKNOWN";
}

void kv_cluster_opts_default(struct kv_cluster_opts *o)
{
    memset(o, 0, sizeof *o);
    o->region = "";
    o->rack = "";
    o->n_tokens = 16;
    o->rf = 3;
    o->default_level = KV_LEVEL_QUORUM;
    o->default_timeout_ms = 2000;
    o->gossip_interval_ms = 200;
    o->phi_threshold = 8;
    o->max_hints_per_node = 100000;
    o->max_hint_bytes = 256ull << 20;
    o->max_hint_age_ms = 3ull * 3600 * 1000;
    o->scan_default_limit = 100;
    o->max_value = 1u << 20;
    o->deadline_slack_ms = 1000;
}

uint64_t kv_cluster__now(const struct kv_cluster *c) { return c->io.now_ms(c->io.ctx); }

const char *kv_cluster__region_of(const struct kv_cluster *c, uint32_t id)
{
    const Kv__NodeState *s = kv_members_find(c->members, id);
    return s && s->region ? s->region : "";
}

enum kv_status kv_cluster__admit(struct kv_cluster *c, struct kv_err *err)
{
    if (c->has_seeds && !c->joined)
        return kv_err_set(err, KV_UNAVAILABLE,
                          "not joined yet: no gossip from another node has arrived");
    return KV_OK;
}

/* --- records ------------------------------------------------------------------------- */

bool kv_cluster__record_ok(const struct kv_cluster *c, const Kv__Record *r)
{
    if (!r || r->key.len == 0 || r->key.len > KV_STORE_KEY_MAX || !r->key.data)
        return false;
    if (r->value.len > c->o.max_value || (r->value.len && !r->value.data))
        return false;
    return !(r->tombstone && r->value.len);
}

struct kv_write kv_cluster__record_to_write(const Kv__Record *r)
{
    struct kv_write w;
    memset(&w, 0, sizeof w);
    w.key = kv_slice_of(r->key.data, r->key.len);
    w.rec.ver.hlc = r->hlc;
    w.rec.ver.node = r->node;
    w.rec.tombstone = r->tombstone;
    w.rec.expires_at_ms = r->expires_at_ms;
    /* The store refuses a NULL value pointer even for an empty value. */
    w.rec.value = r->tombstone ? kv_slice_of(NULL, 0)
                               : kv_slice_of(r->value.len ? (const void *)r->value.data : "",
                                             r->value.len);
    return w;
}

bool kv_cluster__record_live(const Kv__Record *r, uint64_t now_ms)
{
    return !r->tombstone && (r->expires_at_ms == 0 || r->expires_at_ms > now_ms);
}

void kv_cluster__read_result(struct kv_cluster *c, struct kv_cluster_result *r,
                             const Kv__Record *rec, bool has)
{
    bool live = has && kv_cluster__record_live(rec, kv_cluster__now(c));
    r->st = r->err.code = live ? KV_OK : KV_NOT_FOUND;
    if (has) {
        r->version = (struct kv_version){rec->hlc, rec->node};
        r->expires_at_ms = rec->expires_at_ms;
    }
    if (live)
        r->value = kv_slice_of(rec->value.data, rec->value.len);
    else
        kv_err_set(&r->err, KV_NOT_FOUND, "key not found");
}

bool kv_cluster__record_copy(Kv__Record *dst, uint8_t *key, size_t key_len,
                             const Kv__Record *src)
{
    free(dst->value.data);
    kv__record__init(dst);
    dst->key.data = key;
    dst->key.len = key_len;
    dst->hlc = src->hlc;
    dst->node = src->node;
    dst->tombstone = src->tombstone;
    dst->expires_at_ms = src->expires_at_ms;
    if (src->value.len) {
        if (!(dst->value.data = malloc(src->value.len)))
            return false;
        memcpy(dst->value.data, src->value.data, src->value.len);
        dst->value.len = src->value.len;
    }
    return true;
}

/* member.c stamps its gossip through this, so gossip carries the HLC too (2). */
static void stamp_gossip(void *arg, Kv__PeerMessage *msg)
{
    struct kv_cluster *c = arg;
    msg->from = c->o.node_id;
    msg->hlc = kv_hlc_now(c->hlc, kv_cluster__now(c));
}

/* --- the ring (3) ------------------------------------------------------------------- */

static void rebuild_ring(struct kv_cluster *c)
{
    struct kv_ring *r = kv_ring_new();
    if (!r) {
        KV_ERROR("cluster: out of memory rebuilding the ring; keeping the old one");
        return;
    }
    for (size_t i = 0; i < kv_members_count(c->members); i++) {
        const Kv__NodeState *s = kv_members_at(c->members, i);
        if (!s->n_tokens)
            continue;
        struct kv_slice *tok = malloc(s->n_tokens * sizeof *tok);
        if (!tok) {
            KV_ERROR("cluster: out of memory rebuilding the ring; keeping the old one");
            kv_ring_free(r);
            return;
        }
        for (size_t t = 0; t < s->n_tokens; t++)
            tok[t] = kv_slice_of(s->tokens[t].data, s->tokens[t].len);
        struct kv_err err = {0};
        if (kv_ring_add_node(r, s->id, s->region, s->rack, tok, s->n_tokens, &err) != KV_OK)
            KV_WARN("cluster: node %u left out of the ring: %s", s->id, err.msg);
        free(tok);
    }
    unsigned rf = c->o.rf > KV_RING_MAX_RF ? KV_RING_MAX_RF : c->o.rf;
    if (kv_ring_build(r, rf) != KV_OK)
        KV_WARN("cluster: ring replica cache not built (out of memory); lookups walk");
    kv_ring_free(c->ring);
    c->ring = r;
}

static void on_member_change(void *arg, uint32_t id, bool state_changed, bool up_changed)
{
    struct kv_cluster *c = arg;
    if (c->freeing || !c->members)
        return;
    if (state_changed) {
        rebuild_ring(c);
        save_view(c);
    }
    if (up_changed && kv_members_is_up(c->members, id))
        kv_hint_on_up(c, id);
}

/* --- construction -------------------------------------------------------------------- */

static enum kv_status copy_opts(struct kv_cluster *c, const struct kv_cluster_opts *o,
                                struct kv_err *err)
{
    c->o = *o;
    c->addr = str_dup(o->addr);
    c->http = str_dup(o->http);
    c->region = str_dup(o->region);
    c->rack = str_dup(o->rack);
    if (!c->addr || !c->http || !c->region || !c->rack)
        return kv_err_set(err, KV_NOMEM, "cluster: out of memory");
    c->o.addr = c->addr;
    c->o.http = c->http;
    c->o.region = c->region;
    c->o.rack = c->rack;

    size_t n_seeds = 0;
    for (size_t i = 0; o->seeds && o->seeds[i]; i++)
        n_seeds++;
    c->seeds = calloc(n_seeds + 1, sizeof *c->seeds);
    if (!c->seeds)
        return kv_err_set(err, KV_NOMEM, "cluster: out of memory");
    for (size_t i = 0, k = 0; i < n_seeds; i++) {
        if (strcmp(o->seeds[i], c->addr) == 0)
            continue;
        if (!(c->seeds[k++] = str_dup(o->seeds[i])))
            return kv_err_set(err, KV_NOMEM, "cluster: out of memory");
        c->has_seeds = true;
    }
    c->o.seeds = (const char *const *)c->seeds;

    size_t nt = o->tokens ? o->n_tokens : (o->n_tokens ? o->n_tokens : 16);
    size_t bytes = 0;
    if (o->tokens)
        for (size_t i = 0; i < nt; i++)
            bytes += o->tokens[i].len;
    else
        bytes = nt * 8;
    c->tokens = calloc(nt ? nt : 1, sizeof *c->tokens);
    c->token_bytes = malloc(bytes ? bytes : 1);
    if (!c->tokens || !c->token_bytes)
        return kv_err_set(err, KV_NOMEM, "cluster: out of memory");
    if (o->tokens) {
        uint8_t *p = c->token_bytes;
        for (size_t i = 0; i < nt; i++) {
            if (o->tokens[i].len)
                memcpy(p, o->tokens[i].ptr, o->tokens[i].len);
            c->tokens[i] = kv_slice_of(p, o->tokens[i].len);
            p += o->tokens[i].len;
        }
    } else {
        kv_ring_default_tokens(o->node_id, nt, c->token_bytes, c->tokens);
    }
    c->o.tokens = c->tokens;
    c->o.n_tokens = nt;
    if (!c->o.rf)
        c->o.rf = 3;
    if (c->o.default_level == KV_LEVEL_DEFAULT)
        c->o.default_level = KV_LEVEL_QUORUM;
    if (!c->o.default_timeout_ms)
        c->o.default_timeout_ms = 2000;
    if (!c->o.scan_default_limit)
        c->o.scan_default_limit = 100;
    if (!c->o.max_value)
        c->o.max_value = 1u << 20;
    return KV_OK;
}

static enum kv_status make_members(struct kv_cluster *c, struct kv_err *err)
{
    Kv__NodeState self = KV__NODE_STATE__INIT;
    self.id = c->o.node_id;
    self.addr = c->addr;
    self.http = c->http;
    self.region = c->region;
    self.rack = c->rack;
    self.generation = c->o.generation;
    self.status = KV__NODE_STATUS__NODE_NORMAL;
    ProtobufCBinaryData tok[c->o.n_tokens ? c->o.n_tokens : 1];
    for (size_t i = 0; i < c->o.n_tokens; i++) {
        tok[i].data = (uint8_t *)c->tokens[i].ptr;
        tok[i].len = c->tokens[i].len;
    }
    self.n_tokens = c->o.n_tokens;
    self.tokens = tok;

    struct kv_members_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.self = &self;
    mo.seeds = c->o.seeds;
    mo.gossip_interval_ms = c->o.gossip_interval_ms;
    mo.phi_threshold = c->o.phi_threshold;
    mo.fanout = 3;
    mo.on_change = on_member_change;
    mo.on_change_arg = c;
    mo.stamp = stamp_gossip;
    mo.stamp_arg = c;
    return kv_members_new(&mo, &c->io, &c->members, err);
}

enum kv_status kv_cluster_new(const struct kv_cluster_opts *o, const struct kv_cluster_io *io,
                              struct kv_store *store, struct kv_hlc *hlc,
                              struct kv_cluster **out, struct kv_err *err)
{
    *out = NULL;
    if (!o || !io || !store || !hlc)
        return kv_err_set(err, KV_INVALID, "cluster: opts, io, store and hlc are required");
    if (o->node_id == 0 || o->node_id > KV_NODE_ID_MAX)
        return kv_err_set(err, KV_INVALID, "cluster: node id %u not in 1..%u", o->node_id,
                          KV_NODE_ID_MAX);
    if (o->rf > KV_RING_MAX_RF)
        return kv_err_set(err, KV_INVALID, "cluster: replication factor %u over %d", o->rf,
                          KV_RING_MAX_RF);
    if (o->default_level == KV_LEVEL_LINEARIZABLE || (unsigned)o->default_level > 9)
        return kv_err_set(err, KV_INVALID, "cluster: default level %s is not supported",
                          kv_level_name(o->default_level));
    struct kv_cluster *c = calloc(1, sizeof *c);
    if (!c)
        return kv_err_set(err, KV_NOMEM, "cluster: out of memory");
    if (!kv_cluster__ops_init(c)) {
        free(c);
        return kv_err_set(err, KV_NOMEM, "cluster: out of memory");
    }
    c->io = *io;
    c->store = store;
    c->hlc = hlc;
    c->writer = kv_cluster_writer(o->node_id, o->generation);
    enum kv_status st = copy_opts(c, o, err);
    if (st == KV_OK)
        st = make_members(c, err);
    if (st == KV_OK)
        restore_view(c);
    if (st == KV_OK)
        st = kv_hint_init(c, err);
    if (st != KV_OK) {
        kv_cluster_free(c);
        return st;
    }
    rebuild_ring(c);
    if (!c->ring) {
        kv_cluster_free(c);
        return kv_err_set(err, KV_NOMEM, "cluster: out of memory");
    }
    *out = c;
    return KV_OK;
}

void kv_cluster_start(struct kv_cluster *c)
{
    kv_members_start(c->members);
    kv_hint_start(c);
}

void kv_cluster_free(struct kv_cluster *c)
{
    if (!c)
        return;
    c->freeing = true;
    kv_cluster__ops_free(c);   /* ops first: their shutdown may still read the view */
    kv_hint_free(c);
    kv_members_free(c->members);
    kv_ring_free(c->ring);
    free(c->addr);
    free(c->http);
    free(c->region);
    free(c->rack);
    for (size_t i = 0; c->seeds && c->seeds[i]; i++)
        free(c->seeds[i]);
    free(c->seeds);
    free(c->tokens);
    free(c->token_bytes);
    free(c);
}

/* --- messages (1) -------------------------------------------------------------------- */

/* (5): the durable view, written off the cluster thread, one write at a time. */
struct view_job {
    struct kv_cluster__job hdr;     /* first: internal.h (2) */
    struct kv_cluster *c;           /* for done only (the cluster thread) */
    struct kv_store *store;
    uint8_t *buf;
    size_t len;
    bool again;                     /* the view changed while this one was being written */
};

static void view_drop(struct kv_cluster__job *hdr)
{
    struct view_job *j = (struct view_job *)hdr;
    free(j->buf);
    free(j);
}

static void view_work(void *arg)
{
    struct view_job *j = arg;
    struct kv_err err = {0};
    if (kv_store_raw_put(j->store, KV_CF_META, kv_slice_str(VIEW_KEY),
                         kv_slice_of(j->buf, j->len), true, &err) != KV_OK)
        KV_WARN("cluster: could not save the membership view: %s", err.msg);
}

static void view_done(void *arg)
{
    struct view_job *j = arg;
    struct kv_cluster *c = j->c;
    bool again = j->again;
    kv_cluster__job_remove(&j->hdr);
    view_drop(&j->hdr);
    if (again)
        save_view(c);
}

static void save_view(struct kv_cluster *c)
{
    for (struct kv_cluster__job *q = c->jobs.next; q != &c->jobs; q = q->next)
        if (q->drop == view_drop) {
            ((struct view_job *)q)->again = true;
            return;
        }
    size_t n = kv_members_count(c->members);
    Kv__Gossip g = KV__GOSSIP__INIT;
    g.nodes = malloc((n ? n : 1) * sizeof *g.nodes);
    struct view_job *j = calloc(1, sizeof *j);
    if (!g.nodes || !j) {
        free(g.nodes);
        free(j);
        KV_ERROR("cluster: out of memory saving the membership view");
        return;
    }
    for (size_t i = 0; i < n; i++)
        g.nodes[i] = (Kv__NodeState *)kv_members_at(c->members, i);
    g.n_nodes = n;
    j->len = kv__gossip__get_packed_size(&g);
    j->buf = malloc(j->len ? j->len : 1);
    if (!j->buf) {
        free(g.nodes);
        free(j);
        KV_ERROR("cluster: out of memory saving the membership view");
        return;
    }
    kv__gossip__pack(&g, j->buf);
    free(g.nodes);
    j->c = c;
    j->store = c->store;
    kv_cluster__job_add(c, &j->hdr, view_drop);
    c->io.run(c->io.ctx, view_work, view_done, j);
}

/* (5): the view saved before a restart, its other nodes down until heard from. */
static void restore_view(struct kv_cluster *c)
{
    struct kv_buf b = {0};
    if (kv_store_raw_get(c->store, KV_CF_META, kv_slice_str(VIEW_KEY), &b, NULL) != KV_OK)
        return;
    Kv__Gossip *g = kv__gossip__unpack(NULL, b.len, b.ptr);
    if (!g) {
        KV_WARN("cluster: the saved membership view does not decode; starting without it");
    } else {
        kv_members_restore(c->members, g);
        if (kv_members_count(c->members) > 1)
            c->has_seeds = true;
        kv__gossip__free_unpacked(g, NULL);
    }
    kv_buf_free(&b);
}

static bool records_ok(const struct kv_cluster *c, Kv__Record *const *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!kv_cluster__record_ok(c, r[i]))
            return false;
    return true;
}

static bool message_ok(const struct kv_cluster *c, const Kv__PeerMessage *m)
{
    if (m->from == 0)
        return false;
    switch (m->body_case) {
    case KV__PEER_MESSAGE__BODY_GOSSIP:
        return m->gossip != NULL;
    case KV__PEER_MESSAGE__BODY_WRITE:
        return m->write && m->write->n_records &&
               records_ok(c, m->write->records, m->write->n_records);
    case KV__PEER_MESSAGE__BODY_WRITE_ACK:
        return m->write_ack != NULL;
    case KV__PEER_MESSAGE__BODY_READ:
        return m->read && m->read->key.len && m->read->key.len <= KV_STORE_KEY_MAX;
    case KV__PEER_MESSAGE__BODY_READ_REPLY:
        return m->read_reply &&
               (!m->read_reply->record || kv_cluster__record_ok(c, m->read_reply->record)) &&
               (m->read_reply->status != KV__STATUS__OK || m->read_reply->record);
    case KV__PEER_MESSAGE__BODY_SCAN:
        return m->scan && m->scan->start.len <= KV_STORE_KEY_MAX + 1 &&
               m->scan->end.len <= KV_STORE_KEY_MAX + 1;
    case KV__PEER_MESSAGE__BODY_SCAN_REPLY:
        return m->scan_reply &&
               records_ok(c, m->scan_reply->records, m->scan_reply->n_records);
    case KV__PEER_MESSAGE__BODY_PREPARE:
        return m->prepare && m->prepare->ballot && m->prepare->key.len &&
               m->prepare->key.len <= KV_STORE_KEY_MAX;
    case KV__PEER_MESSAGE__BODY_PROMISE:
        return m->promise &&
               (!m->promise->current || kv_cluster__record_ok(c, m->promise->current)) &&
               (!m->promise->accepted || kv_cluster__record_ok(c, m->promise->accepted));
    case KV__PEER_MESSAGE__BODY_PROPOSE:
        return m->propose && kv_cluster__record_ok(c, m->propose->proposal);
    case KV__PEER_MESSAGE__BODY_ACCEPTED:
        return m->accepted != NULL;
    case KV__PEER_MESSAGE__BODY_COMMIT:
        return m->commit && kv_cluster__record_ok(c, m->commit->record);
    case KV__PEER_MESSAGE__BODY_COMMIT_ACK:
        return m->commit_ack != NULL;
    default:
        return false;
    }
}

void kv_cluster_on_message(struct kv_cluster *c, const Kv__PeerMessage *msg)
{
    if (!msg || !message_ok(c, msg)) {
        c->stats.messages_malformed++;
        return;
    }
    kv_hlc_observe(c->hlc, msg->hlc);
    switch (msg->body_case) {
    case KV__PEER_MESSAGE__BODY_WRITE:
    case KV__PEER_MESSAGE__BODY_READ:
    case KV__PEER_MESSAGE__BODY_SCAN:
    case KV__PEER_MESSAGE__BODY_PREPARE:
    case KV__PEER_MESSAGE__BODY_PROPOSE:
    case KV__PEER_MESSAGE__BODY_COMMIT:
        if (kv_cluster__expired(c, kv_cluster__msg_deadline(c, msg)))   /* (7) */
            return;
        break;
    default:
        break;
    }
    switch (msg->body_case) {
    case KV__PEER_MESSAGE__BODY_GOSSIP:
        if (msg->from != c->o.node_id)
            c->joined = true;
        kv_members_on_gossip(c->members, msg->from, msg->gossip);
        return;
    case KV__PEER_MESSAGE__BODY_WRITE:
        kv_replica_on_write(c, msg);
        return;
    case KV__PEER_MESSAGE__BODY_READ:
        kv_replica_on_read(c, msg);
        return;
    case KV__PEER_MESSAGE__BODY_SCAN:
        kv_replica_on_scan(c, msg);
        return;
    case KV__PEER_MESSAGE__BODY_PREPARE:
        kv_paxos_on_prepare(c, msg);
        return;
    case KV__PEER_MESSAGE__BODY_PROPOSE:
        kv_paxos_on_propose(c, msg);
        return;
    case KV__PEER_MESSAGE__BODY_COMMIT:
        kv_paxos_on_commit(c, msg);
        return;
    default:
        break;
    }
    /* A reply: to a live op, or late (its op is gone) and dropped quietly. */
    struct kv_coord_op *op = kv_cluster__op_find(c, msg->op_id);
    if (op && !op->vt->reply(op, msg->from, msg))
        c->stats.messages_malformed++;
}

/* --- requests ------------------------------------------------------------------------ */

void kv_cluster_get(struct kv_cluster *c, struct kv_slice key, enum kv_level level,
                    uint32_t timeout_ms, kv_cluster_cb cb, void *arg)
{
    if (kv_coord_level(c, level) == KV_LEVEL_LINEARIZABLE)
        kv_lin_get(c, key, timeout_ms, cb, arg);
    else
        kv_coord_get(c, key, level, timeout_ms, cb, arg);
}

void kv_cluster_put(struct kv_cluster *c, struct kv_slice key, struct kv_slice value,
                    uint64_t ttl_ms, enum kv_level level, uint32_t timeout_ms, kv_cluster_cb cb,
                    void *arg)
{
    if (kv_coord_level(c, level) == KV_LEVEL_LINEARIZABLE)
        kv_lin_write(c, key, value, false, ttl_ms, timeout_ms, cb, arg);
    else
        kv_coord_write(c, key, value, false, ttl_ms, level, timeout_ms, cb, arg);
}

void kv_cluster_delete(struct kv_cluster *c, struct kv_slice key, enum kv_level level,
                       uint32_t timeout_ms, kv_cluster_cb cb, void *arg)
{
    if (kv_coord_level(c, level) == KV_LEVEL_LINEARIZABLE)
        kv_lin_write(c, key, kv_slice_of(NULL, 0), true, 0, timeout_ms, cb, arg);
    else
        kv_coord_write(c, key, kv_slice_of(NULL, 0), true, 0, level, timeout_ms, cb, arg);
}

void kv_cluster_cas(struct kv_cluster *c, struct kv_slice key, bool expect_absent,
                    struct kv_slice expected, struct kv_slice value, uint32_t timeout_ms,
                    kv_cluster_cb cb, void *arg)
{
    kv_paxos_cas(c, key, expect_absent, expected, value, timeout_ms, cb, arg);
}

void kv_cluster_scan(struct kv_cluster *c, struct kv_slice start, struct kv_slice end,
                     struct kv_slice after, uint32_t limit, bool keys_only, enum kv_level level,
                     uint32_t timeout_ms, kv_cluster_cb cb, void *arg)
{
    kv_coord_scan(c, start, end, after, limit, keys_only, level, timeout_ms, cb, arg);
}

/* --- status and stats ---------------------------------------------------------------- */

/* A deep copy by packing and unpacking, so fields added to NodeState are copied too. */
static Kv__NodeState *copy_state(const Kv__NodeState *s)
{
    size_t n = kv__node_state__get_packed_size(s);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    kv__node_state__pack(s, buf);
    Kv__NodeState *d = kv__node_state__unpack(NULL, n, buf);
    free(buf);
    return d;
}

enum kv_status kv_cluster_status(struct kv_cluster *c, Kv__ClusterStatus *out,
                                 struct kv_err *err)
{
    kv__cluster_status__init(out);
    out->self = c->o.node_id;
    out->replication_factor = c->o.rf;
    size_t nn = kv_members_count(c->members);
    out->nodes = calloc(nn ? nn : 1, sizeof *out->nodes);
    if (!out->nodes)
        goto nomem;
    for (size_t i = 0; i < nn; i++) {
        const Kv__NodeState *s = kv_members_at(c->members, i);
        Kv__NodeView *v = malloc(sizeof *v);
        if (!v)
            goto nomem;
        kv__node_view__init(v);
        out->nodes[out->n_nodes++] = v;
        if (!(v->state = copy_state(s)))
            goto nomem;
        v->up = kv_members_is_up(c->members, s->id);
        v->phi = kv_members_phi(c->members, s->id);
    }
    size_t nr = kv_ring_range_count(c->ring);
    out->ranges = calloc(nr ? nr : 1, sizeof *out->ranges);
    if (!out->ranges)
        goto nomem;
    for (size_t i = 0; i < nr; i++) {
        Kv__RangeView *v = malloc(sizeof *v);
        if (!v)
            goto nomem;
        kv__range_view__init(v);
        out->ranges[out->n_ranges++] = v;
        struct kv_slice s, e;
        kv_ring_range(c->ring, i, &s, &e);
        uint32_t ids[KV_RING_MAX_RF];
        size_t n = kv_ring_range_replicas(c->ring, i, c->o.rf, ids);
        v->start.data = malloc(s.len ? s.len : 1);
        v->end.data = malloc(e.len ? e.len : 1);
        v->replicas = malloc((n ? n : 1) * sizeof *v->replicas);
        if (!v->start.data || !v->end.data || !v->replicas)
            goto nomem;
        if (s.len)
            memcpy(v->start.data, s.ptr, s.len);
        if (e.len)
            memcpy(v->end.data, e.ptr, e.len);
        v->start.len = s.len;
        v->end.len = e.len;
        memcpy(v->replicas, ids, n * sizeof *ids);
        v->n_replicas = n;
    }
    return KV_OK;
nomem:
    kv_cluster_status_free(out);
    return kv_err_set(err, KV_NOMEM, "cluster status: out of memory");
}

void kv_cluster_status_free(Kv__ClusterStatus *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_nodes; i++) {
        if (st->nodes[i]->state)
            kv__node_state__free_unpacked(st->nodes[i]->state, NULL);
        free(st->nodes[i]);
    }
    free(st->nodes);
    for (size_t i = 0; i < st->n_ranges; i++) {
        free(st->ranges[i]->start.data);
        free(st->ranges[i]->end.data);
        free(st->ranges[i]->replicas);
        free(st->ranges[i]);
    }
    free(st->ranges);
    kv__cluster_status__init(st);
}

void kv_cluster_get_stats(const struct kv_cluster *c, struct kv_cluster_stats *out)
{
    *out = c->stats;
    out->hints_pending = kv_hint_pending(c);
}
