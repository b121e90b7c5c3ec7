/* cluster/ops.c -- what every coordinator op and replica job of cluster/ shares: the op
 * table (internal.h (1)), timers (3), the pending-job list (2), and sending, with a
 * request's deadline stamped on the way out and judged on the way in (cluster.h (7)). */
#include "cluster/internal.h"
#include <stdlib.h>
#include <string.h>

/* --- jobs ---------------------------------------------------------------------------- */

void kv_cluster__job_add(struct kv_cluster *c, struct kv_cluster__job *j,
                         void (*drop)(struct kv_cluster__job *j))
{
    j->drop = drop;
    j->next = c->jobs.next;
    j->prev = &c->jobs;
    c->jobs.next->prev = j;
    c->jobs.next = j;
}

void kv_cluster__job_remove(struct kv_cluster__job *j)
{
    j->prev->next = j->next;
    j->next->prev = j->prev;
    j->prev = j->next = j;
}

/* --- the op table -------------------------------------------------------------------- */

static size_t bucket_of(const struct kv_cluster *c, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (c->n_buckets - 1);
}

static bool grow_table(struct kv_cluster *c);

bool kv_cluster__ops_init(struct kv_cluster *c)
{
    c->jobs.next = c->jobs.prev = &c->jobs;
    return grow_table(c);
}

void kv_cluster__ops_free(struct kv_cluster *c)
{
    for (size_t i = 0; i < c->n_buckets; i++) {
        struct kv_coord_op *op;
        while ((op = c->buckets[i])) {
            kv_cluster__op_remove(c, op);
            kv_cluster__op_timer_cancel(op);
            op->vt->shutdown(op);
        }
    }
    free(c->buckets);
    c->buckets = NULL;
    c->n_buckets = 0;
    while (c->jobs.next != &c->jobs) {
        struct kv_cluster__job *j = c->jobs.next;
        kv_cluster__job_remove(j);
        j->drop(j);
    }
}

static bool grow_table(struct kv_cluster *c)
{
    size_t n = c->n_buckets ? c->n_buckets * 2 : 64;
    struct kv_coord_op **b = calloc(n, sizeof *b);
    if (!b)
        return false;
    struct kv_coord_op **old = c->buckets;
    size_t old_n = c->n_buckets;
    c->buckets = b;
    c->n_buckets = n;
    for (size_t i = 0; i < old_n; i++)
        for (struct kv_coord_op *op = old[i], *next; op; op = next) {
            next = op->hnext;
            size_t k = bucket_of(c, op->id);
            op->hnext = b[k];
            b[k] = op;
        }
    free(old);
    return true;
}

void kv_cluster__op_add(struct kv_cluster *c, struct kv_coord_op *op)
{
    /* An overloaded table is only slower: growth failing is not an error. */
    if (c->n_ops + 1 > c->n_buckets)
        (void)grow_table(c);
    op->c = c;
    op->id = ++c->next_op_id;
    size_t k = bucket_of(c, op->id);
    op->hnext = c->buckets[k];
    c->buckets[k] = op;
    c->n_ops++;
}

void kv_cluster__op_remove(struct kv_cluster *c, struct kv_coord_op *op)
{
    if (!c->n_buckets)
        return;
    for (struct kv_coord_op **p = &c->buckets[bucket_of(c, op->id)]; *p; p = &(*p)->hnext)
        if (*p == op) {
            *p = op->hnext;
            op->hnext = NULL;
            c->n_ops--;
            return;
        }
}

void kv_cluster__op_rekey(struct kv_cluster *c, struct kv_coord_op *op)
{
    kv_cluster__op_remove(c, op);
    kv_cluster__op_add(c, op);
}

static struct kv_coord_op *op_find(const struct kv_cluster *c, uint64_t id)
{
    if (!c->n_buckets)
        return NULL;
    for (struct kv_coord_op *op = c->buckets[bucket_of(c, id)]; op; op = op->hnext)
        if (op->id == id)
            return op;
    return NULL;
}

struct kv_coord_op *kv_cluster__op_find(const struct kv_cluster *c, uint64_t id)
{
    return op_find(c, id);
}

static void op_timer_fired(void *arg)
{
    struct kv_coord_op *op = arg;
    op->timer = 0;
    op->vt->timeout(op);
}

void kv_cluster__op_timer(struct kv_coord_op *op, uint64_t ms)
{
    kv_cluster__op_timer_cancel(op);
    op->timer = op->c->io.timer_start(op->c->io.ctx, ms, op_timer_fired, op);
}

void kv_cluster__op_timer_cancel(struct kv_coord_op *op)
{
    if (op->timer)
        op->c->io.timer_cancel(op->c->io.ctx, op->timer);
    op->timer = 0;
}

/* --- sending ------------------------------------------------------------------------- */

void kv_cluster__send(struct kv_cluster *c, uint32_t to, uint64_t op_id, Kv__PeerMessage *msg)
{
    msg->from = c->o.node_id;
    msg->hlc = kv_hlc_now(c->hlc, kv_cluster__now(c));
    msg->op_id = op_id;
    c->io.send(c->io.ctx, to, msg);
}

void kv_cluster__op_deadline_in(struct kv_coord_op *op, uint64_t ms)
{
    op->deadline = op->c->io.mono_ms(op->c->io.ctx) + ms;
}

void kv_cluster__send_op(struct kv_coord_op *op, uint32_t to, Kv__PeerMessage *msg)
{
    struct kv_cluster *c = op->c;
    if (op->deadline) {
        uint64_t now = c->io.mono_ms(c->io.ctx);
        /* Sent at or past its deadline (a last resend): 1 ms, so it still carries one. */
        uint64_t left = op->deadline > now ? op->deadline - now : 1;
        msg->timeout_ms = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
        msg->deadline_ms = kv_hlc_peek_ms(c->hlc, kv_cluster__now(c)) + msg->timeout_ms;
    }
    kv_cluster__send(c, to, op->id, msg);
}

uint64_t kv_cluster__msg_deadline(const struct kv_cluster *c, const Kv__PeerMessage *msg)
{
    if (!msg->timeout_ms)
        return 0;
    uint64_t now = c->io.mono_ms(c->io.ctx);
    /* (7): the budget bounds the time the work may wait here; the deadline on the
     * sender's hybrid clock catches time spent before it got here -- in a socket buffer of
     * a paused process, say -- which the budget alone cannot see. The message's HLC has
     * just been observed, so this node's clock is not behind the sender's; slack covers
     * how far the sender's may have lagged the cluster's fastest clock. */
    uint64_t wall = kv_hlc_peek_ms(c->hlc, kv_cluster__now(c));
    uint64_t last = msg->deadline_ms + c->o.deadline_slack_ms;
    if (last < msg->deadline_ms)            /* overflow of a hostile deadline_ms */
        last = UINT64_MAX;
    if (wall >= last)
        return now ? now : 1;
    uint64_t left = last - wall;
    if (left > msg->timeout_ms)
        left = msg->timeout_ms;
    return now + left;
}

bool kv_cluster__expired(struct kv_cluster *c, uint64_t deadline)
{
    if (!deadline || c->io.mono_ms(c->io.ctx) < deadline)
        return false;
    c->stats.expired_dropped++;
    return true;
}

struct kv_cluster__deadline kv_cluster__job_deadline(const struct kv_cluster *c,
                                                     const Kv__PeerMessage *msg)
{
    return (struct kv_cluster__deadline){kv_cluster__msg_deadline(c, msg), c->io.mono_ms,
                                         c->io.ctx};
}
