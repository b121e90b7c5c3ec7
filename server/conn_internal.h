/* server/conn_internal.h -- struct kv_conn, shared by conn.c (reading, framing, output) and
 * admission.c (what each connection may hold); nothing else includes it.
 * Loop thread only. The numbered invariants are conn.c's. */
#ifndef KV_SERVER_CONN_INTERNAL_H
#define KV_SERVER_CONN_INTERNAL_H
#include "server/server.h"

struct kv_conn {
    uv_tcp_t tcp;
    struct kv_server *srv;
    struct kv_vec in;
    struct kv_vec out;           /* framed responses not yet handed to uv_write */
    size_t writing;              /* bytes inside uv_write requests */
    size_t want;                 /* bytes the frame at the front of `in` needs */
    int refs;                    /* the handle's, the dirty list's, each write's, each request's */
    int reqs;                    /* requests in flight */
    bool reading, closing, closed, close_after_flush, dirty;
    bool peer;                   /* another node sends PeerMessages on it */
    bool provisional;            /* accepted in the peer reserve (admission.h (2)) */
    bool in_paused;              /* (3), (6): input held back (not read, frames not handled) */
    bool resume_queued;          /* on srv->resume */
    bool shared;                 /* the pending read goes to srv->read_buf (5) */
    size_t shared_pre;           /* bytes of ours copied to the front of read_buf */
    size_t inflight_bytes;       /* (6) */
    size_t cur_frame;            /* size of the frame being handled; 0 once charged */
    uint64_t frame_start_ns;     /* (7): when the incomplete frame in `in` began; 0 none */
    uint64_t active_ns;          /* last read or answer (idle_timeout_ms) */
    uint64_t accepted_ns;
    struct kv_conn *prev, *next, *dirty_next, *resume_next;
};

static inline size_t kv__conn_pending_out(const struct kv_conn *c)
{
    return c->out.len + c->writing;
}

/* conn.c */
void kv__conn_close(struct kv_conn *c);   /* closes the handle now; idempotent */
void kv__conn_flush(struct kv_conn *c);   /* writes what c->out holds (conn.c (2)) */
void kv__conn_on_close(uv_handle_t *h);   /* close_cb: drops the handle's reference */

/* admission.c */
/* (6): adds or releases n request bytes on c and the node. */
void kv__adm_charge(struct kv_conn *c, size_t n, bool add);
/* (3), (6): true when a limit says c's input must be held back (*output: the output one). */
bool kv__conn_input_full(const struct kv_conn *c, bool *output);
/* True when every limit is back under half, so held input may go on. */
bool kv__conn_input_low(const struct kv_conn *c);
/* admission.h (2): one best-effort OVERLOADED frame, then the close. */
void kv__adm_reject(struct kv_conn *c);
#endif
