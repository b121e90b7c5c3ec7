/* client/calls.c -- the synchronous calls: one op submitted and polled to completion.
 *
 * (1) A read (get, scan, cluster status) whose connection broke after it was sent
 *     (KVC_CONN with the op marked lost), or that the node refused because it is
 *     stopping (KVC_SHUTDOWN), is sent once more, to another node (the failed one is
 *     avoided now), with what is left of the call's timeout. Reads have no side effect,
 *     so resending cannot apply anything twice.
 * (2) A write is never resent after an outcome-unknown failure: after KVC_CONN,
 *     KVC_TIMEOUT or KVC_SHUTDOWN only the caller can decide (kv/client.h, invariant 2).
 * (3) Any call, a write or a CAS too, is resent after KVC_OVERLOADED, which a node answers
 *     only before it started the request (docs/operations.md "Admission control"): after
 *     a pause of at least the node's retry_after_ms, growing with each attempt and
 *     jittered so shed clients do not come back in step; never past the call's deadline
 *     (then the caller gets the OVERLOADED answer).
 * (4) Pipelined ops (kvc_submit) are never resent; the caller sees KVC_CONN or
 *     KVC_OVERLOADED (op->retry_after_ms) and may resubmit. */
#include <string.h>
#include <time.h>
#include "client/internal.h"
#include "common/clock.h"

#define BACKOFF_MIN_MS 5u
#define BACKOFF_MAX_MS 2000u

static bool is_read(const struct kvc_op *op)
{
    return op->type == KVC_OP_GET || op->type == KVC_OP_SCAN || op->type == KVC__OP_STATUS;
}

static int submit_one(struct kvc_client *c, struct kvc_op *op, struct kvc_err *err)
{
    if (op->type != KVC__OP_STATUS)
        return kvc_submit(c, op, NULL, NULL, err);
    struct kvc__status_op *so = (struct kvc__status_op *)op;
    kvc_cluster_status_free(&so->st);
    memset(&op->err, 0, sizeof op->err);
    op->done = false;
    op->next_ = NULL;
    op->flags_ = 0;
    return kvc__submit(c, op, NULL, NULL, err);
}

static uint32_t rnd(struct kvc_client *c)
{
    if (!c->rng)
        c->rng = kv_clock_mono_ns() ^ (uint64_t)(uintptr_t)c ^ 0x9E3779B97F4A7C15ULL;
    c->rng ^= c->rng << 13;     /* xorshift64: jitter needs spread, not secrecy */
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return (uint32_t)(c->rng >> 32);
}

/* (3): the pause before resend number `attempt` (1, 2, ...): between the node's hint and
 * a ceiling that doubles per attempt. */
static uint64_t backoff_ms(struct kvc_client *c, uint32_t hint_ms, int attempt)
{
    uint64_t lo = hint_ms ? hint_ms : 1;
    uint64_t hi = (lo > BACKOFF_MIN_MS ? lo : BACKOFF_MIN_MS) << (attempt < 10 ? attempt : 10);
    if (hi > BACKOFF_MAX_MS)
        hi = lo > BACKOFF_MAX_MS ? lo : BACKOFF_MAX_MS;
    return lo + rnd(c) % (hi - lo + 1);
}

/* Waits until mono ns `until`, still serving the client's other ops in flight. */
static void pause_until(struct kvc_client *c, uint64_t until)
{
    for (uint64_t now; (now = kv_clock_mono_ns()) < until;) {
        uint64_t left_ms = (until - now + 999999u) / 1000000u;
        if (kvc_pending(c)) {
            kvc_poll(c, (int)left_ms, NULL);
        } else {
            struct timespec ts = {(time_t)((until - now) / 1000000000u),
                                  (long)((until - now) % 1000000000u)};
            nanosleep(&ts, NULL);
        }
    }
}

static int run_one(struct kvc_client *c, struct kvc_op *op, const struct kvc_call *o,
                   struct kvc_err *err)
{
    if (o)
        op->call = *o;
    uint32_t tmo = op->call.timeout_ms ? op->call.timeout_ms : c->opts.timeout_ms;
    uint64_t deadline = kv_clock_mono_ns() + (uint64_t)tmo * 1000000u;
    bool resent_read = false;
    for (int attempt = 0;; attempt++) {
        int rc = submit_one(c, op, err);
        if (rc != KVC_OK)
            return rc;
        /* Every op has a deadline, so this ends; a negative poll concerns other ops. */
        while (!op->done)
            kvc_poll(c, -1, NULL);
        int code = op->err.code;
        uint64_t now = kv_clock_mono_ns(), at = now;
        if (code == KVC_OVERLOADED) {                                   /* (3) */
            at = now + backoff_ms(c, op->retry_after_ms, attempt + 1) * 1000000u;
        } else if (!resent_read && is_read(op) &&                       /* (1) */
                   ((code == KVC_CONN && (op->flags_ & KVC__F_LOST)) || code == KVC_SHUTDOWN)) {
            resent_read = true;
        } else {
            break;
        }
        if (at + 1000000u >= deadline)
            break;
        pause_until(c, at);
        op->call.timeout_ms = (uint32_t)((deadline - kv_clock_mono_ns()) / 1000000u);
        if (op->call.timeout_ms == 0)
            break;
    }
    if (err)
        *err = op->err;
    return op->err.code;
}

int kvc_put(struct kvc_client *c, const void *key, size_t key_len, const void *val,
            size_t val_len, const struct kvc_call *o, struct kvc_err *err)
{
    struct kvc_op op = {.type = KVC_OP_PUT, .key = key, .key_len = key_len, .value = val,
                        .value_len = val_len};
    return run_one(c, &op, o, err);
}

int kvc_get(struct kvc_client *c, const void *key, size_t key_len, struct kvc_value *out,
            const struct kvc_call *o, struct kvc_err *err)
{
    struct kvc_op op = {.type = KVC_OP_GET, .key = key, .key_len = key_len};
    int rc = run_one(c, &op, o, err);
    *out = op.result;   /* zeroed unless KVC_OK */
    return rc;
}

int kvc_cas(struct kvc_client *c, const void *key, size_t key_len, const void *expected,
            size_t expected_len, bool expect_absent, const void *val, size_t val_len,
            const struct kvc_call *o, bool *applied, struct kvc_value *current,
            struct kvc_err *err)
{
    struct kvc_op op = {.type = KVC_OP_CAS, .key = key, .key_len = key_len, .value = val,
                        .value_len = val_len, .expected = expected,
                        .expected_len = expected_len, .expect_absent = expect_absent};
    int rc = run_one(c, &op, o, err);      /* resent only after OVERLOADED (2), (3) */
    if (applied)
        *applied = rc == KVC_OK && op.cas_applied;
    if (current)
        *current = op.result;
    else
        kvc_value_free(&op.result);
    return rc;
}

int kvc_delete(struct kvc_client *c, const void *key, size_t key_len, const struct kvc_call *o,
               struct kvc_err *err)
{
    struct kvc_op op = {.type = KVC_OP_DELETE, .key = key, .key_len = key_len};
    return run_one(c, &op, o, err);
}

int kvc_scan(struct kvc_client *c, const struct kvc_scan_args *a, const struct kvc_call *o,
             struct kvc_scan_result *out, struct kvc_err *err)
{
    struct kvc_op op = {.type = KVC_OP_SCAN, .scan = *a};
    int rc = run_one(c, &op, o, err);
    *out = op.scan_result;
    return rc;
}

int kvc_cluster_status(struct kvc_client *c, struct kvc_cluster_status *out,
                       struct kvc_err *err)
{
    struct kvc__status_op so;
    memset(&so, 0, sizeof so);
    so.op.type = KVC__OP_STATUS;
    int rc = run_one(c, &so.op, NULL, err);
    if (rc != KVC_OK)
        kvc_cluster_status_free(&so.st);
    *out = so.st;
    return rc;
}

int kvc_exec(struct kvc_client *c, struct kvc_op *ops, size_t n, struct kvc_err *err)
{
    (void)err;   /* each op carries its own status; nothing fails the batch as a whole */
    for (size_t i = 0; i < n; i++)
        if (kvc_submit(c, &ops[i], NULL, NULL, &ops[i].err) != KVC_OK)
            ops[i].done = true;   /* never queued; its err says why */
    /* Every op in flight has a deadline, so this ends; a negative poll only means some
     * ops found no node, and those are done. */
    for (size_t i = 0;;) {
        while (i < n && ops[i].done)
            i++;
        if (i == n)
            return KVC_OK;
        kvc_poll(c, -1, NULL);
    }
}
