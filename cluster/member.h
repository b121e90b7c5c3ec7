/* cluster/member.h -- membership by gossip, failure detection by phi accrual.
 *
 * Each node owns exactly one NodeState (its own) and is the only one that changes it:
 * every gossip round it bumps its version (the heartbeat) and sends its whole view to
 * `fanout` random live peers plus, while it knows no other node, to every seed.
 * (1) Merging keeps, per node id, the state with the higher (generation, version); so
 *     gossip commutes and never conflicts, and a restarted node (higher generation) wins
 *     over its old state at once.
 * (2) A peer is up while phi(now) < phi_threshold, where phi is computed from the
 *     intervals between arrivals of a higher heartbeat version of that peer (from any
 *     gossip source), modelled as exponential: phi = elapsed / (mean * ln 10).
 *     The mean is taken over the last PHI_WINDOW intervals and never below the gossip
 *     interval, so a burst of fast arrivals does not make the detector jumpy.
 * (3) Self is always up. A node never heard from directly or by gossip is not in the view.
 * (4) on_change runs (on the cluster thread) after any merge that changed a node's tokens,
 *     address, status or topology labels, and after any up/down transition. */
#ifndef KV_CLUSTER_MEMBER_H
#define KV_CLUSTER_MEMBER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cluster/io.h"
#include "common/status.h"
#include "proto/cluster.pb-c.h"

struct kv_members;

#define KV_MEMBER_PHI_WINDOW 100    /* arrival intervals kept per peer (KV_PHI_WINDOW) */
#define KV_MEMBER_MAX_TOKENS 4096   /* a gossiped state with more is ignored */

/* Zero means the default for every number below. */
struct kv_members_opts {
    const Kv__NodeState *self;      /* copied; generation must be set by the caller */
    const char *const *seeds;       /* host:port, NULL-terminated (may be NULL) */
    uint32_t gossip_interval_ms;    /* default 200 */
    double phi_threshold;           /* default 8 */
    unsigned fanout;                /* peers per round; default 3 */
    /* What changed: a node's state (tokens, address, labels) or its liveness. */
    /* on_change runs after the view is consistent again (end of a merge or a round), so
     * it may read the view (kv_members_at, _is_up), but it must not free m. A node seen
     * for the first time reports (id, true, true): new state, and now up. A restart
     * (higher generation) counts as a state change. Self never reports. */
    void (*on_change)(void *arg, uint32_t node_id, bool state_changed, bool up_changed);
    void *on_change_arg;
    /* Optional: called on every PeerMessage just before member.c sends it (from is set),
     * so the owner can stamp msg->hlc; may be NULL (hlc stays 0). */
    void (*stamp)(void *arg, Kv__PeerMessage *msg);
    void *stamp_arg;
};

enum kv_status kv_members_new(const struct kv_members_opts *o, const struct kv_cluster_io *io,
                              struct kv_members **out, struct kv_err *err);
void kv_members_free(struct kv_members *m);   /* NULL-safe; cancels its timers */
/* Starts the gossip timer: the first round after a random delay below the interval, then
 * one round per interval. A round bumps self's version, marks down the peers whose phi
 * reached the threshold, and sends the view (reply=true) to `fanout` random up peers; to
 * every seed when no peer is up (never to a seed equal to self's addr); and, with
 * probability down / (up + 1), to one random down peer so a returning node is noticed. */
void kv_members_start(struct kv_members *m);

/* A Gossip message arrived from node `from` (0 when the sender's id is unknown); g is
 * borrowed for the call. States failing validation (id 0, more than
 * KV_MEMBER_MAX_TOKENS tokens, an empty or over-long token) are ignored, as is any state
 * for self's id (one with a higher generation than self's is logged: two nodes share an
 * id). With g->reply, answers `from` with the whole view (reply=false). io->set_addr runs
 * when a node's address is first learned or changes. */
void kv_members_on_gossip(struct kv_members *m, uint32_t from, const Kv__Gossip *g);

/* Adds the states of g (borrowed) for ids the view does not hold yet, as peers that are
 * down until a newer heartbeat of theirs arrives: what a node remembered of its cluster
 * before a restart (cluster.c (5)). Invalid states and self's id are skipped; no
 * on_change runs (the caller rebuilds what depends on the view). */
void kv_members_restore(struct kv_members *m, const Kv__Gossip *g);

/* Updates self's load figures (carried in the next heartbeat). */
void kv_members_set_load(struct kv_members *m, uint64_t load_bytes, uint64_t hints_pending);

/* The view, self included, in increasing id order; states are borrowed until the next
 * call into m. */
size_t kv_members_count(const struct kv_members *m);
const Kv__NodeState *kv_members_at(const struct kv_members *m, size_t i);
const Kv__NodeState *kv_members_find(const struct kv_members *m, uint32_t id);
/* The up flag as of the last round or arrival (up -> down happens only in a round, so
 * phi may exceed the threshold for up to one interval before is_up says so). false for
 * an id not in the view. */
bool kv_members_is_up(const struct kv_members *m, uint32_t id);
/* phi now: 0 for self, INFINITY for an id not in the view. */
double kv_members_phi(const struct kv_members *m, uint32_t id);
/* Milliseconds since a newer heartbeat of id last arrived: 0 for self, UINT64_MAX for an
 * id not in the view (for kvctl status). */
uint64_t kv_members_silence_ms(const struct kv_members *m, uint32_t id);
#endif
