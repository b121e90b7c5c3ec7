/* tests/sim/chaos_int.h -- what chaos.c (the run: clients, nemesis, final reads) and
 * chaos_check.c (the invariants, the linearizability check, the history file) share:
 * the run's state and its small helpers. Only those two files include it. */
#ifndef KV_TESTS_SIM_CHAOS_INT_H
#define KV_TESTS_SIM_CHAOS_INT_H
#include <stdbool.h>
#include <stdint.h>
#include "cluster/cluster.h"
#include "tests/sim/chaos.h"
#include "tests/sim/sim.h"
#include "tests/sim/wgl.h"

#define TIMEOUT_MS 300          /* per request */
#define THINK_MS 8              /* a client waits 0..THINK_MS between operations */
#define WGL_BUDGET 400000       /* states a linearizability search may cache */

enum { KC_LWW, KC_LIN, KC_CAS };
enum { F_READ = WGL_READ, F_WRITE = WGL_WRITE, F_DELETE = WGL_DELETE, F_CAS = WGL_CAS };
enum { S_PENDING, S_OK, S_FAIL, S_INFO };

struct hop {                    /* one client operation */
    int client, key;
    uint8_t f, status;
    bool final;                 /* a read of the final phase */
    enum kv_level level;
    int64_t value;              /* write/cas: the new value; read: the value read (-1: none) */
    int64_t expect;             /* cas: expected value (-1: absence) */
    int64_t current;            /* cas not applied: the current value (-1: none) */
    int applied;                /* cas: 1, 0, or -1 unknown */
    enum kv_status code;
    uint64_t call, ret;         /* (2); ret of an info op: UINT64_MAX when judged */
    uint32_t node;
    struct kv_version ver;      /* the answer's version (hlc 0: none) */
};

struct ckey {
    char name[16];
    int cls;
    bool created, creating;     /* CAS keys */
};

struct chaos;

struct client {
    struct chaos *ch;
    int hid;                    /* history client id (1) */
    bool busy;
    uint64_t next_at;           /* sim ms */
    size_t op;
    int64_t *last_seen;         /* per key: the last value this client saw (-1: none) */
};

struct vslot {                  /* (c): version -> value */
    uint64_t hlc;
    uint32_t node;
    int64_t value;              /* -1: tombstone */
};

struct chaos {
    const struct chaos_opts *o;
    struct chaos_result *r;
    struct sim *s;
    int n;
    struct kv_cluster_opts copts;
    uint64_t rng, last_ns;
    struct hop *ops;
    size_t n_ops, cap_ops;
    struct ckey *keys;
    int n_keys;
    struct client *cl;
    int n_cl, next_hid;
    int64_t next_value;
    struct vslot *vs;
    size_t n_vs, cap_vs;
    uint64_t down_since[SIM_MAX_NODES + 1];
    bool traffic;
};

/* chaos.c */
void say(struct chaos *ch, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records an invariant's violation (the run fails; the first few are printed). */
void violation(struct chaos *ch, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *status_name(enum kv_status st);
const char *f_name(uint8_t f);
/* Node id's raw record of key (tombstones included): 1 with *out filled, 0 without. */
int stored(struct chaos *ch, uint32_t id, const char *key, struct kv_store_item *out);

/* chaos_check.c: the invariants over the finished run (chaos.h (a)..(d)) */
void check_converged(struct chaos *ch);
void check_reads(struct chaos *ch);
void check_linearizable(struct chaos *ch);
/* The history for jepsen/checker (o->history_dir), and KVSIM_DUMP's one-key listing. */
void write_history(struct chaos *ch);
void dump_key(struct chaos *ch);
#endif
