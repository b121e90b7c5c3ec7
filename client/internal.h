/* client/internal.h -- what the files of libkvclient share; never installed.
 *
 * The library is small pieces: inflight.c (the table of ops waiting for an answer),
 * conn.c (one non-blocking socket and its buffers), ops.c (kvc_op <-> protobuf),
 * status.c (ClusterStatus <-> plain C), route.c (the ring as the client routes by it),
 * nodes.c (the node table: picking, connecting, failing over), client.c (connect, submit,
 * poll) and calls.c (the synchronous calls). Names shared between the files carry the
 * kvc__ prefix; the linker version script keeps them out of the shared library.
 *
 * (1) An op is in exactly one place at a time: one node's in-flight table (linked through
 *     op->next_ inside its bucket), the client's done list (linked through op->next_), or
 *     nowhere (finished and handed back). So next_ is never needed twice.
 * (2) A node's in-flight table holds only ops whose request is encoded in, or already
 *     sent from, that node's connection out-buffer. Ops move between nodes only while
 *     their bytes have provably not left the process (the connect failed).
 * (3) No callback runs while a table is being walked: completions go to the done list
 *     first and callbacks run from there, so a callback may call kvc_submit safely.
 * (4) Nodes are never removed while the client lives, so a node index stays valid; the
 *     seeds (opts.addrs, in order) are nodes[0..nseeds).
 * (5) The ring refresh is an op like the others (type KVC__OP_STATUS, embedded in the
 *     client) but is never counted: kvc_pending and kvc_poll see only the caller's ops. */
#ifndef KV_CLIENT_INTERNAL_H
#define KV_CLIENT_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include "kv/client.h"
#include "common/buf.h"
#include "common/status.h"
#include "proto/arena.h"
#include "proto/kv.pb-c.h"

/* Fills err (may be NULL) and returns code; the client-side twin of kv_err_set. */
int kvc__err(struct kvc_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --- inflight.c: ops by request id ------------------------------------------------------ */

struct kvc__table {
    struct kvc_op **buckets;   /* power-of-two count; chains through op->next_ */
    size_t nbuckets;
    size_t count;
    uint64_t earliest;         /* <= every deadline_ns_ in the table; UINT64_MAX when
                                  empty. Exact after a drain (inflight.c (3)). */
};
void kvc__table_init(struct kvc__table *t);
void kvc__table_destroy(struct kvc__table *t);   /* frees the buckets, not the ops */
/* 0, or -1 when out of memory (op not added). The id must not be in the table. */
int kvc__table_add(struct kvc__table *t, struct kvc_op *op);
/* Removes and returns the op with this id, or NULL (late or unknown answers). */
struct kvc_op *kvc__table_take(struct kvc__table *t, uint64_t id);
/* Moves every op for which pred(op, arg) is true (all when pred is NULL) to the list
 * *head..*tail (appending, FIFO), and returns how many moved. */
size_t kvc__table_drain(struct kvc__table *t, bool (*pred)(const struct kvc_op *, void *),
                        void *arg, struct kvc_op **head, struct kvc_op **tail);
/* No later than the earliest deadline_ns_ of the ops in the table (UINT64_MAX when
 * empty), in O(1): it may be earlier than any op still there, when that op has been
 * answered since; a drain makes it exact again. So "earliest > now" proves that no
 * deadline has passed, and "earliest <= now" calls for a drain that checks. */
uint64_t kvc__table_earliest(const struct kvc__table *t);

/* --- conn.c: one socket ------------------------------------------------------------------ */

enum kvc__conn_state {
    KVC__CLOSED,       /* no socket */
    KVC__CONNECTING,   /* non-blocking connect in progress */
    KVC__OPEN          /* connected; out-buffer drains, in-buffer fills */
};

struct kvc__conn {
    enum kvc__conn_state state;
    int fd;
    uint64_t connect_deadline_ns;
    struct kv_vec out;            /* framed requests not yet sent */
    struct kv_vec in;             /* bytes received; in.ptr[in_off..len) not yet decoded */
    size_t in_off;
    uint32_t max_frame;
    uint64_t epoch;               /* bumped at every socket this conn opens or closes
                                     (kvc_fds_epoch) */
    char peer[96];                /* "host:port" for messages */
};

void kvc__conn_init(struct kvc__conn *cn, uint32_t max_frame);
/* Closes the socket (if any) and empties both buffers; the struct stays reusable. */
void kvc__conn_reset(struct kvc__conn *cn);
void kvc__conn_destroy(struct kvc__conn *cn);
/* Starts a non-blocking connect to addr ("host:port" or "[v6]:port").
 * KVC_OK: state is CONNECTING or OPEN. KVC_CONN: the attempt failed at once (err says
 * why) and the conn is CLOSED, out-buffer kept so queued requests can go elsewhere. */
int kvc__conn_start(struct kvc__conn *cn, const char *addr, uint32_t timeout_ms,
                    struct kvc_err *err);
/* While CONNECTING: KVC_OK when the connect finished (now OPEN), 1 when it is
 * still in progress, KVC_CONN when it failed or its deadline passed. */
int kvc__conn_check_connect(struct kvc__conn *cn, uint64_t now_ns, struct kvc_err *err);
/* Sends as much of the out-buffer as the socket takes, in one send per call.
 * KVC_OK or KVC_CONN (the connection broke). */
int kvc__conn_flush(struct kvc__conn *cn, struct kvc_err *err);
/* One recv(2) into the in-buffer. Returns the bytes read (> 0), 0 when the socket has
 * nothing now, or KVC_CONN on EOF or error. *full is set when the read filled the space
 * offered, i.e. more may be waiting. */
int kvc__conn_read(struct kvc__conn *cn, bool *full, struct kvc_err *err);
/* Takes the next whole frame from the in-buffer. KVC_OK: *payload borrows it until the
 * next call (call kvc__conn_consume after use). 1: no whole frame yet. KVC_PROTO or
 * KVC_TOO_LARGE: the stream is broken and must be closed. */
int kvc__conn_next_frame(struct kvc__conn *cn, struct kv_slice *payload, size_t *frame_len,
                         struct kvc_err *err);
void kvc__conn_consume(struct kvc__conn *cn, size_t n);
/* The poll(2) events this state waits for: POLLOUT while connecting, else POLLIN plus
 * POLLOUT while the out-buffer holds bytes; 0 when closed. */
short kvc__conn_events(const struct kvc__conn *cn);
/* Waits with poll(2) for the events this state needs, at most timeout_ms (-1: forever).
 * Returns the revents (0 on timeout) or -1 on a poll error other than EINTR. */
int kvc__conn_wait(struct kvc__conn *cn, int timeout_ms);

/* --- ops.c: requests and responses -------------------------------------------------------- */

/* A cluster_status request: never submitted by callers (kvc__op_validate refuses it);
 * the op is the first member of a struct kvc__status_op, which receives the answer. */
#define KVC__OP_STATUS ((enum kvc_op_type)100)
struct kvc__status_op {
    struct kvc_op op;             /* first, so a kvc_op * of this type points here */
    struct kvc_cluster_status st; /* filled on KVC_OK; owned by whoever submitted it */
};
/* op->flags_: the op was sent and its connection broke before it was answered. */
#define KVC__F_LOST 1u

/* Checks op's arguments against the client-side limits (no I/O). */
int kvc__op_validate(const struct kvc_op *op, uint32_t max_frame, struct kvc_err *err);
/* Appends op's request (with op->id_ and a server timeout of timeout_ms) as one frame to
 * out; scratch is reused for compression. On error out is unchanged. */
int kvc__op_encode(const struct kvc_op *op, uint32_t timeout_ms, uint32_t compress_threshold,
                   uint32_t max_frame, struct kv_vec *scratch, struct kv_vec *out,
                   struct kvc_err *err);
/* Fills op->err and op->result / op->scan_result from a decoded response. */
void kvc__op_fill(struct kvc_op *op, const Kv__Response *resp, uint32_t max_value);

/* --- status.c: ClusterStatus to plain C ------------------------------------------------- */

/* KVC_OK: *out owns a deep copy of pb. KVC_NOMEM: *out is zeroed. */
int kvc__status_from_pb(const Kv__ClusterStatus *pb, struct kvc_cluster_status *out,
                        struct kvc_err *err);

/* --- route.c: the ring (pure: no sockets, no clock) -------------------------------------- */

struct kvc__range {
    struct kvc_bytes end;         /* inclusive upper bound; owned */
    bool to_last;                 /* empty end: runs to the last key (+infinity) */
    uint32_t *replicas;           /* node ids in preference order; owned */
    size_t n_replicas;
};
struct kvc__ring {
    struct kvc__range *ranges;    /* sorted by end, to_last ranges last; n == 0: unknown */
    size_t n;
};
/* memcmp order; a shorter key that is a prefix of a longer one sorts first. */
int kvc__key_cmp(const void *a, size_t alen, const void *b, size_t blen);
/* Builds the ring from st's ranges (ranges without replicas are dropped). KVC_OK or
 * KVC_NOMEM (*out empty). */
int kvc__ring_build(const struct kvc_cluster_status *st, struct kvc__ring *out);
void kvc__ring_free(struct kvc__ring *r);   /* resets to empty */
/* The range holding key: the first whose end >= key (a to_last end is above every key);
 * when every end is below key the ring wraps to range 0. NULL when the ring is empty. */
const struct kvc__range *kvc__ring_find(const struct kvc__ring *r, const void *key,
                                        size_t len);

/* --- the client, shared by nodes.c, client.c and calls.c ---------------------------------- */

#define KVC__NONE ((size_t)-1)

struct kvc__node {
    char *addr;                   /* owned; where the client connects */
    uint32_t id;                  /* ring id, when has_id */
    bool has_id;
    bool seed;                    /* given in opts.addrs */
    bool in_ring;                 /* named by the latest cluster status */
    bool ring_up;                 /* that status calls it up (true while unknown) */
    uint64_t avoid_until_ns;      /* it failed us (connect, broken connection, SHUTDOWN):
                                     picked only when nothing else is left until then */
    uint64_t last_used_ns;        /* for closing the least recently used idle socket */
    struct kvc__conn conn;
    struct kvc__table table;      /* ops whose request is in, or was sent from, conn */
};

struct kvc_client {
    struct kvc__node **nodes;
    size_t nnodes;
    size_t nseeds;
    size_t cur;                   /* the node "any node" picks stick to */
    size_t last_node;             /* where the last op went (kvc_fd) */
    struct kvc__ring ring;        /* empty: plain mode */
    uint64_t ring_next_ns;        /* when to ask for the ring again */
    struct kvc__status_op refresh;
    bool refreshing;              /* refresh.op is in flight */
    size_t refresh_node;          /* where its answer came from */
    size_t pending;               /* the caller's ops in flight (not the refresh) */
    struct kvc_op *done_head;     /* completed, callbacks not yet run */
    struct kvc_op *done_tail;
    uint64_t next_id;
    struct kvc_opts opts;         /* opts.addrs is not kept */
    struct kv_vec scratch;        /* LZ4 output, reused */
    struct kv_pb_arena arena;     /* each response is unpacked here (client.c) */
    struct pollfd *pfds;          /* kvc_poll's poll set, reused */
    size_t *pfd_node;
    size_t pfd_cap;
    struct kvc_err last_err;      /* why the last connect attempt failed */
    uint64_t rng;                 /* backoff jitter (calls.c); seeded per client */
};

/* nodes.c */
/* Appends a node for addr (copied); its index, or KVC__NONE when out of memory. */
size_t kvc__node_add(struct kvc_client *c, const char *addr, bool seed);
void kvc__nodes_free(struct kvc_client *c);
size_t kvc__node_by_id(const struct kvc_client *c, uint32_t id);
/* Avoid the node for ring_refresh_ms (and ask for the ring soon). */
void kvc__node_avoid(struct kvc_client *c, size_t i, uint64_t now);
/* The node for op: the first live replica of its key when the ring is known, else (and
 * for cluster_status) the sticky node or the next live one. KVC__NONE when every node is
 * being avoided. */
size_t kvc__pick(struct kvc_client *c, const struct kvc_op *op, uint64_t now);
/* The sticky node if usable, else the next usable one (it becomes sticky); KVC__NONE. */
size_t kvc__pick_any(struct kvc_client *c, uint64_t now);
/* Starts a connect to node i when it has none, closing an idle socket first if the
 * client is at max_conns. KVC_OK, or KVC_CONN (node avoided, err says why). */
int kvc__node_open(struct kvc_client *c, size_t i, uint64_t now, struct kvc_err *err);
/* Installs a cluster status answered by node `from` as the client's ring and nodes. */
void kvc__install_status(struct kvc_client *c, const struct kvc_cluster_status *st,
                         size_t from);
/* Forgets the ring (the nodes stay): plain mode. */
void kvc__drop_ring(struct kvc_client *c);

/* client.c */
void kvc__push_done(struct kvc_client *c, struct kvc_op *op);
/* Completes every op of node i with code/msg (setting flags on each) and closes its
 * connection. Returns how many of them were the caller's. */
size_t kvc__fail_node(struct kvc_client *c, size_t i, int code, const char *msg,
                      unsigned flags);
/* Queues op on a picked node (internal: no validation). */
int kvc__submit(struct kvc_client *c, struct kvc_op *op, kvc_done_fn cb, void *arg,
                struct kvc_err *err);
#endif
