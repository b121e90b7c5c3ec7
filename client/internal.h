/* client/internal.h -- what the files of libkvclient share; never installed.
 *
 * The library is four small pieces: inflight.c (the table of ops waiting for an answer),
 * conn.c (one non-blocking socket and its buffers), ops.c (kvc_op <-> protobuf) and
 * client.c (addresses, failover and the public calls). Names shared between the files
 * carry the kvc__ prefix; the linker version script keeps them out of the shared library.
 *
 * (1) An op is in exactly one place at a time: the in-flight table (linked through
 *     op->next_ inside its bucket), the client's done list (linked through op->next_), or
 *     nowhere (finished and handed back). So next_ is never needed twice.
 * (2) The in-flight table holds only ops whose request is encoded in, or already sent
 *     from, the current connection's out-buffer.
 * (3) No callback runs while the table is being walked: completions go to the done list
 *     first and callbacks run from there, so a callback may call kvc_submit safely. */
#ifndef KV_CLIENT_INTERNAL_H
#define KV_CLIENT_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kv/client.h"
#include "common/buf.h"
#include "common/status.h"
#include "proto/kv.pb-c.h"

/* Fills err (may be NULL) and returns code; the client-side twin of kv_err_set. */
int kvc__err(struct kvc_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --- inflight.c: ops by request id ------------------------------------------------------ */

struct kvc__table {
    struct kvc_op **buckets;   /* power-of-two count; chains through op->next_ */
    size_t nbuckets;
    size_t count;
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
/* The earliest deadline_ns_ of the ops in the table, or UINT64_MAX when empty. */
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
/* Waits with poll(2) for the events this state needs, at most timeout_ms (-1: forever).
 * Returns the revents (0 on timeout) or -1 on a poll error other than EINTR. */
int kvc__conn_wait(struct kvc__conn *cn, int timeout_ms);

/* --- ops.c: requests and responses -------------------------------------------------------- */

/* Checks op's arguments against the client-side limits (no I/O). */
int kvc__op_validate(const struct kvc_op *op, uint32_t max_frame, struct kvc_err *err);
/* Appends op's request (with op->id_ and a server timeout of timeout_ms) as one frame to
 * out; scratch is reused for compression. On error out is unchanged. */
int kvc__op_encode(const struct kvc_op *op, uint32_t timeout_ms, uint32_t compress_threshold,
                   uint32_t max_frame, struct kv_vec *scratch, struct kv_vec *out,
                   struct kvc_err *err);
/* Fills op->err and op->result / op->scan_result from a decoded response. */
void kvc__op_fill(struct kvc_op *op, const Kv__Response *resp, uint32_t max_value);
#endif
