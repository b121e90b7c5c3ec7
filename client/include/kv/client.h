/* kv/client.h -- libkvclient, the C client library of kvd (docs/client.md).
 *
 * A client learns the ring from any node it was given (cluster_status) and sends each
 * single-key request straight to the first live replica of the key (token-aware
 * routing), keeping one connection per node it talks to. When the ring is unknown (an
 * older server, or token_aware off) it holds one connection at a time to one of the
 * addresses it was given and fails over to the next one when it breaks. Every call takes
 * per-call options (timeout, consistency, TTL) and returns a status with a message.
 *
 * (1) Thread-compatibility: a struct kvc_client is used by one thread at a time; use one
 *     client per thread.
 * (2) Outcomes are honest: KVC_TIMEOUT or KVC_CONN on a write means the write may or may
 *     not have been applied; KVC_UNAVAILABLE means it was definitely not applied. A write
 *     whose outcome is unknown is never retried by the library; a read may be resent once
 *     to another node. Every call has a deadline (its timeout, sent to the server too) and
 *     nothing is resent past it.
 * (6) Overload: a node that sheds a request answers KVC_OVERLOADED before doing any of it.
 *     The synchronous calls (kvc_put, kvc_get, ...) then wait the node's retry_after_ms,
 *     with a growing, jittered backoff, and resend, within the call's deadline; pipelined
 *     ops complete with KVC_OVERLOADED and op->retry_after_ms for the caller to decide.
 * (3) Pipelining: kvc_submit() queues requests without waiting and kvc_poll() completes
 *     them as answers arrive, in any order and from any connection; kvc_exec() does both
 *     for an array of ops.
 * (4) Ownership: everything a call returns (values, scan items, cursors, cluster status)
 *     is malloc'd and owned by the caller, released with the matching _free function.
 * (5) No protobuf or other internal type appears here: the header is plain C. */
#ifndef KV_CLIENT_H
#define KV_CLIENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The same codes, with the same values, as the server's enum kv_status. */
enum kvc_status {
    KVC_OK = 0,
    KVC_NOT_FOUND = -1,
    KVC_INVALID = -2,      /* bad argument (client-side check or the server's answer) */
    KVC_PROTO = -3,        /* malformed message */
    KVC_TOO_LARGE = -4,    /* key, value or frame over its limit */
    KVC_IOERR = -5,        /* the server's storage failed (e.g. disk full): not applied */
    KVC_CORRUPTION = -6,
    KVC_UNAVAILABLE = -7,  /* not enough replicas alive: not applied */
    KVC_TIMEOUT = -8,      /* no answer in time: outcome unknown */
    KVC_INTERNAL = -9,
    KVC_OVERLOADED = -10,  /* the server shed the request: retry later */
    KVC_NOMEM = -11,
    KVC_CONN = -12,        /* connection failed or broke: for writes, outcome unknown */
    KVC_SHUTDOWN = -13,    /* the server is stopping */
    KVC_NOSPACE = -14      /* the server's disk is full: not applied; reads still work */
};

struct kvc_err {
    int code;              /* enum kvc_status */
    char msg[160];
};

const char *kvc_status_name(int code);   /* "NOT_FOUND", ...; never NULL */

enum kvc_consistency {
    KVC_CL_DEFAULT = 0, KVC_CL_ONE = 1, KVC_CL_TWO = 2, KVC_CL_THREE = 3, KVC_CL_QUORUM = 4,
    KVC_CL_ALL = 5, KVC_CL_LOCAL_ONE = 6, KVC_CL_LOCAL_QUORUM = 7, KVC_CL_EACH_QUORUM = 8,
    KVC_CL_LINEARIZABLE = 9
};
/* Parses "one", "quorum", "local_quorum", ... (case-insensitive); -1 when unknown. */
int kvc_consistency_parse(const char *s, enum kvc_consistency *out);
const char *kvc_consistency_name(enum kvc_consistency c);

#define KVC_MAX_KEY 4096u

/* Start from kvc_opts_default(): a zero field means its default, except token_aware,
 * which a zeroed struct turns off. */
struct kvc_opts {
    const char *addrs;            /* "host:port[,host:port...]": seeds; copied */
    uint32_t connect_timeout_ms;  /* default 2000 */
    uint32_t timeout_ms;          /* default per-call timeout; default 5000 */
    uint32_t max_frame;           /* largest response accepted; default 16 MiB */
    uint32_t compress_threshold;  /* values at least this long go LZ4; default 4096; 0 off */
    bool token_aware;             /* route each key to its replicas; default true */
    uint32_t ring_refresh_ms;     /* ask for the ring again this often; default 10000.
                                     Also how long a node that failed is avoided. */
    uint32_t max_conns;           /* connections open at once; default 64, at least 1 */
};
void kvc_opts_default(struct kvc_opts *o);

struct kvc_client;

/* Connects to the first reachable address and, when token_aware, asks it for the ring
 * (waiting at most timeout_ms; a node that does not know cluster_status leaves the client
 * in plain mode). On KVC_OK *out owns a client (kvc_close). KVC_CONN: no address
 * accepted a connection. */
int kvc_connect(const struct kvc_opts *o, struct kvc_client **out, struct kvc_err *err);
void kvc_close(struct kvc_client *c);    /* NULL is a no-op; pending ops complete KVC_CONN */

/* Per-call options; pass NULL for the defaults. */
struct kvc_call {
    uint32_t timeout_ms;          /* 0: the client's default */
    enum kvc_consistency consistency;
    uint64_t ttl_ms;              /* put: 0 never expires */
    bool local;                   /* get only: read the raw record of one node's own store,
                                     no coordination (consistency ignored; a tombstone or
                                     expired record is KVC_NOT_FOUND). It goes to the first
                                     address of opts.addrs, never to a replica the client
                                     picks and never to another node on failure (KVC_CONN
                                     then): for operators and tests. */
};

struct kvc_value {
    uint8_t *data;                /* owned; NUL-terminated for convenience (not counted) */
    size_t len;
    uint64_t version;             /* HLC timestamp of the version read */
    uint32_t version_node;        /* its writer: KVC_VERSION_NODE_ID and KVC_VERSION_START */
    uint64_t expires_at_ms;       /* 0: never */
};
void kvc_value_free(struct kvc_value *v);   /* NULL-safe; resets *v */
/* A version is (version, version_node); version_node names the node that minted it and
 * that node's start (its generation mod 65536), since a restarted node's clock may repeat
 * stamps of its previous start (docs/replication.md). */
#define KVC_VERSION_NODE_ID(version_node) ((uint32_t)(version_node) & 0xffffu)
#define KVC_VERSION_START(version_node) ((uint32_t)(version_node) >> 16)

struct kvc_scan_args {
    const void *start; size_t start_len;   /* inclusive; empty: from the first key */
    const void *end; size_t end_len;       /* exclusive; empty: to the last key */
    uint32_t limit;                        /* 0: the server's default page */
    const void *cursor; size_t cursor_len; /* from a previous result: resume after it */
    bool keys_only;
};
struct kvc_scan_item {
    uint8_t *key; size_t key_len;          /* both owned by the result */
    uint8_t *value; size_t value_len;
};
struct kvc_scan_result {
    struct kvc_scan_item *items;
    size_t n;
    uint8_t *cursor; size_t cursor_len;    /* NULL/0: the range is exhausted */
};
void kvc_scan_result_free(struct kvc_scan_result *r);   /* NULL-safe; resets *r */

int kvc_put(struct kvc_client *c, const void *key, size_t key_len, const void *val,
            size_t val_len, const struct kvc_call *o, struct kvc_err *err);
/* KVC_OK: *out owns the value. KVC_NOT_FOUND: *out zeroed. */
int kvc_get(struct kvc_client *c, const void *key, size_t key_len, struct kvc_value *out,
            const struct kvc_call *o, struct kvc_err *err);
/* Deleting a missing key is KVC_OK (a tombstone is written either way). */
int kvc_delete(struct kvc_client *c, const void *key, size_t key_len, const struct kvc_call *o,
               struct kvc_err *err);
/* Compare-and-set through per-key Paxos on the server (always linearizable; the call's
 * consistency is ignored): sets key to val iff its live value equals expected (expected
 * NULL with expect_absent: iff it has none). KVC_OK whether it applied or not: *applied
 * says which, and *current (may be NULL) owns the value now there (applied: val; not
 * applied: the value the expectation failed against, current->data NULL when absent;
 * kvc_value_free). KVC_TIMEOUT / KVC_CONN: unknown, it may have applied (never resent).
 * KVC_UNAVAILABLE: not applied. */
int kvc_cas(struct kvc_client *c, const void *key, size_t key_len, const void *expected,
            size_t expected_len, bool expect_absent, const void *val, size_t val_len,
            const struct kvc_call *o, bool *applied, struct kvc_value *current,
            struct kvc_err *err);
/* One page of a scan. Keep calling with the returned cursor until it is NULL. */
int kvc_scan(struct kvc_client *c, const struct kvc_scan_args *a, const struct kvc_call *o,
             struct kvc_scan_result *out, struct kvc_err *err);

/* --- pipelining ------------------------------------------------------------------------ */

enum kvc_op_type { KVC_OP_GET, KVC_OP_PUT, KVC_OP_DELETE, KVC_OP_SCAN, KVC_OP_CAS };

struct kvc_op;
typedef void (*kvc_done_fn)(struct kvc_op *op, void *arg);

/* An operation in flight. The caller owns the struct and keeps it (and the key/value
 * bytes it points to, until kvc_submit returns) alive until it completes. */
struct kvc_op {
    /* in */
    enum kvc_op_type type;
    const void *key; size_t key_len;
    const void *value; size_t value_len;   /* put */
    struct kvc_call call;
    struct kvc_scan_args scan;             /* scan */
    /* out, valid once done */
    struct kvc_err err;                    /* err.code: the op's status */
    struct kvc_value result;               /* get: owned by the op's caller (kvc_value_free) */
    struct kvc_scan_result scan_result;    /* scan: owned by the caller */
    bool done;
    /* private to the library */
    uint64_t id_;
    uint64_t deadline_ns_;
    kvc_done_fn cb_;
    void *cb_arg_;
    struct kvc_op *next_;
    unsigned flags_;
    /* cas (KVC_OP_CAS; at the end so older fields keep their offsets). in: key, value (the
     * new value), expected or expect_absent. out: cas_applied, and result holds the current
     * value (applied: the new one; result.data NULL when the key has no live value). */
    const void *expected; size_t expected_len;
    bool expect_absent;
    bool cas_applied;
    /* out: with KVC_OVERLOADED, how long the node asked callers to wait (0: no hint). The
     * synchronous calls wait and resend by themselves (calls.c); pipelined callers decide. */
    uint32_t retry_after_ms;
};

/* Encodes op and queues it for sending; never blocks. cb (may be NULL) runs inside a later
 * kvc_poll when op completes. KVC_OK: op is in flight. Other codes: op was not queued.
 * The op goes to the first live replica of its key (a scan: of its start key), else to
 * any live node; a node without a connection gets a non-blocking connect. A node that
 * failed recently is avoided; if every node fails at once it returns KVC_CONN.
 * A callback may call kvc_submit, but not kvc_poll, kvc_exec or kvc_close. */
int kvc_submit(struct kvc_client *c, struct kvc_op *op, kvc_done_fn cb, void *arg,
               struct kvc_err *err);
/* Sends what is queued on every connection and completes every op whose answer arrived
 * or whose deadline passed, waiting on all sockets at most timeout_ms (0: do not wait;
 * -1: until at least one completes). Returns the number of ops completed (>= 0) or
 * KVC_CONN when ops queued for a node that refused the connection could go to no other
 * node (those ops have completed with KVC_CONN; ops on other connections continue).
 * It returns as soon as at least one op completed, and at once (0) when none is in
 * flight. A connection that breaks completes its ops (KVC_CONN "connection lost; outcome
 * unknown", or KVC_PROTO for a corrupt answer) and counts them; they are not resent. */
int kvc_poll(struct kvc_client *c, int timeout_ms, struct kvc_err *err);
/* Ops in flight. */
size_t kvc_pending(const struct kvc_client *c);
/* For an event loop. A token-aware client may hold several sockets: kvc_fds fills up to
 * max pollfds (fd and events: POLLIN, plus POLLOUT while that socket has requests to send
 * or is connecting) and returns how many sockets there are (which may exceed max); wait
 * on them, then call kvc_handle_events (or kvc_poll(c, 0, ...), which polls again).
 * The set changes after any call. */
size_t kvc_fds(const struct kvc_client *c, struct pollfd *fds, size_t max);
/* After the caller's own poll/epoll over the sockets kvc_fds gave: fds[0..nfds) with
 * revents filled in (entries for other clients' sockets are ignored). Reads the sockets
 * that are ready, sends what is queued, expires ops whose deadline passed and runs their
 * callbacks, without another system call to wait: what kvc_poll(c, 0, ...) does, minus
 * its poll(2) per client, which dominates a loop driving many clients. What the callbacks
 * submitted is sent before it returns, so it needs no POLLOUT round of its own. With
 * nfds 0 (fds may be NULL) it reads nothing: call it so on a client that had no events
 * when its ops' deadlines may have passed, or to send what kvc_submit queued. Returns
 * the number of ops completed, or KVC_CONN as kvc_poll does. */
int kvc_handle_events(struct kvc_client *c, const struct pollfd *fds, size_t nfds,
                      struct kvc_err *err);
/* Changes whenever one of the client's sockets is opened or closed. A caller that keeps
 * the kvc_fds sockets registered with epoll needs it: closing a socket drops it from the
 * epoll set, and the next socket may get the same number back, so an unchanged fd and
 * events in kvc_fds do not prove the registration is still there. When the value differs
 * from the one seen at the last registration, register every fd of kvc_fds again
 * (EPOLL_CTL_ADD, or EPOLL_CTL_MOD on EEXIST); one that is gone needs no EPOLL_CTL_DEL. */
uint64_t kvc_fds_epoch(const struct kvc_client *c);
/* The socket of the most recently used connection (-1 when it is closed): enough for a
 * client with one connection (plain mode), not for a token-aware one (use kvc_fds). */
int kvc_fd(const struct kvc_client *c);
/* True when any socket has requests to send or is connecting. */
bool kvc_want_write(const struct kvc_client *c);

/* Submits all n ops pipelined (each to its own node) and waits until each is done.
 * Returns KVC_OK when every op completed (each carries its own status in op->err). */
int kvc_exec(struct kvc_client *c, struct kvc_op *ops, size_t n, struct kvc_err *err);

/* --- cluster status ---------------------------------------------------------------------- */

struct kvc_bytes {
    uint8_t *data;                /* owned; NUL-terminated for convenience (not counted) */
    size_t len;
};

/* One node as the answering node sees it (gossip state plus its failure detector). */
struct kvc_node_info {
    uint32_t id;
    char *addr;                   /* client/peer address host:port; owned, never NULL */
    char *http;                   /* admin address; owned, never NULL ("" when unknown) */
    char *region;                 /* owned, never NULL */
    char *rack;                   /* owned, never NULL */
    bool up;
    double phi;                   /* suspicion; may be INFINITY */
    uint64_t generation;          /* bumped at every start of the node */
    uint64_t version;             /* bumped at every heartbeat or change */
    const char *status;           /* "normal", "joining", "leaving" or "unknown"; static */
    size_t n_tokens;
    struct kvc_bytes *tokens;     /* owned; the keys ending the node's ranges */
    uint64_t load_bytes;          /* approximate size of its data */
    uint64_t hints_pending;       /* hints it holds for other nodes */
};

/* The keys in (start, end] live on replicas[0..n_replicas), in preference order. An
 * empty start means from the first key, an empty end to the last key. */
struct kvc_range_info {
    struct kvc_bytes start;
    struct kvc_bytes end;
    uint32_t *replicas;           /* node ids; owned */
    size_t n_replicas;
};

struct kvc_cluster_status {
    uint32_t self;                /* id of the node that answered */
    uint32_t replication_factor;
    struct kvc_node_info *nodes;
    size_t n_nodes;
    struct kvc_range_info *ranges;   /* in key order */
    size_t n_ranges;
    char *self_storage;           /* the answering node's storage: "" when writable, else
                                     why it refuses writes ("writes refused: disk full: ...");
                                     owned, never NULL */
};
/* NULL-safe; resets *s. */
void kvc_cluster_status_free(struct kvc_cluster_status *s);

/* Asks one node (any live one) for the membership and the ring, waiting at most the
 * client's timeout_ms. KVC_OK: *out owns the answer (kvc_cluster_status_free); otherwise
 * *out is zeroed. KVC_INVALID: the node does not know cluster_status (older server). */
int kvc_cluster_status(struct kvc_client *c, struct kvc_cluster_status *out,
                       struct kvc_err *err);

#ifdef __cplusplus
}
#endif
#endif
