/* tests/sim/chaos_check.c -- the invariants a finished chaos run is judged by (chaos.h):
 * (a) no acknowledged write lost at its level, (b) replicas converged after the heal,
 * (d) LINEARIZABLE/CAS histories linearizable (tests/sim/wgl.h); plus the history file
 * jepsen/checker reads and the one-key dump for debugging a seed. ((c), one value per
 * version, is checked as answers arrive, in chaos.c.) */
#include "tests/sim/chaos_int.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster/ring.h"

/* --- checks --------------------------------------------------------------------------- */

/* Whether op w could have left value v (-1: none) as the key's state. */
static bool wrote(const struct hop *w, int64_t v)
{
    if (w->status == S_PENDING)
        return false;
    if (w->f == F_WRITE)
        return w->value == v;
    if (w->f == F_DELETE)
        return v == -1;
    if (w->f == F_CAS)
        return w->applied != 0 && w->value == v;
    return false;
}

static uint64_t ret_of(const struct hop *h) { return h->status == S_INFO ? UINT64_MAX : h->ret; }

static bool is_write(const struct hop *h) { return h->f != F_READ; }

/* An acknowledged write whose level promises it survives (QUORUM/ALL/LINEARIZABLE/cas). */
static bool acked_strong(const struct hop *h)
{
    if (h->status != S_OK || !is_write(h))
        return false;
    if (h->f == F_CAS)
        return h->applied == 1;
    return h->level == KV_LEVEL_QUORUM || h->level == KV_LEVEL_ALL ||
           h->level == KV_LEVEL_LINEARIZABLE;
}

/* (a) for one observation of key k: value v seen by an operation that returned at `ret`;
 * `after` is the latest call of an acknowledged strong write
 * that returned before the observation began (0: none). */
static void check_observation(struct chaos *ch, int k, int64_t v, uint64_t ret, uint64_t after,
                              const char *what, bool judge_lost)
{
    const char *name = ch->keys[k].name;
    if (v == -2) {
        violation(ch, "(a) %s of %s returned a value nobody wrote", what, name);
        return;
    }
    bool any = false, fresh = false, failed_src = false;
    for (size_t i = 0; i < ch->n_ops; i++) {
        const struct hop *w = &ch->ops[i];
        if (w->key != k || !is_write(w) || !wrote(w, v) || w->call > ret)
            continue;
        if (w->status == S_FAIL) {
            failed_src = true;
            continue;
        }
        any = true;
        if (ret_of(w) >= after)
            fresh = true;
    }
    if (v >= 0 && !any) {
        violation(ch, "(a) %s of %s returned %" PRId64 ", %s", what, name, v,
                  failed_src ? "the value of a write that definitely failed"
                             : "a value no write had written yet");
        return;
    }
    if (judge_lost && after && !fresh)
        violation(ch,
                  "(a) %s of %s returned %s%" PRId64 "%s, older than an acknowledged write "
                  "that completed before it began (lost write)",
                  what, name, v < 0 ? "nothing (" : "", v, v < 0 ? ")" : "");
}

/* The latest call among acknowledged strong writes of k that returned before t. */
static uint64_t last_acked_before(struct chaos *ch, int k, uint64_t t)
{
    uint64_t best = 0;
    for (size_t i = 0; i < ch->n_ops; i++) {
        const struct hop *w = &ch->ops[i];
        if (w->key == k && acked_strong(w) && w->ret < t && w->call > best)
            best = w->call;
    }
    return best;
}

void check_reads(struct chaos *ch)
{
    bool lww_judged = !ch->r->clock_jumps;
    for (size_t i = 0; i < ch->n_ops; i++) {
        const struct hop *h = &ch->ops[i];
        if (h->status != S_OK)
            continue;
        int cls = ch->keys[h->key].cls;
        bool strong = h->level == KV_LEVEL_QUORUM || h->level == KV_LEVEL_ALL ||
                      h->level == KV_LEVEL_LINEARIZABLE;
        bool judge = strong && (cls != KC_LWW || lww_judged);
        if (h->f == F_READ) {
            uint64_t after = judge ? last_acked_before(ch, h->key, h->call) : 0;
            char what[64];
            snprintf(what, sizeof what, "a %s%s read via node %u", h->final ? "final " : "",
                     kv_level_name(h->level), h->node);
            check_observation(ch, h->key, h->value, h->ret, after, what, judge);
        } else if (h->f == F_CAS && h->applied == 0) {
            check_observation(ch, h->key, h->current, h->ret, 0, "a cas's current value",
                              false);
        }
    }
}

static struct kv_ring *ring_of(struct chaos *ch)
{
    struct kv_ring *r = kv_ring_new();
    for (int i = 1; i <= ch->n; i++) {
        uint8_t buf[8 * 64];
        struct kv_slice tok[64];
        kv_ring_default_tokens((uint32_t)i, ch->copts.n_tokens, buf, tok);
        kv_ring_add_node(r, (uint32_t)i, "", "", tok, ch->copts.n_tokens, NULL);
    }
    kv_ring_build(r, ch->copts.rf);
    return r;
}

static bool same_item(const struct kv_store_item *a, const struct kv_store_item *b)
{
    return kv_version_cmp(a->rec.ver, b->rec.ver) == 0 && a->rec.tombstone == b->rec.tombstone &&
           a->rec.expires_at_ms == b->rec.expires_at_ms && a->rec.value.len == b->rec.value.len &&
           (a->rec.value.len == 0 || memcmp(a->rec.value.ptr, b->rec.value.ptr, a->rec.value.len) == 0);
}

/* (b) */
void check_converged(struct chaos *ch)
{
    struct kv_ring *ring = ring_of(ch);
    for (int k = 0; k < ch->n_keys; k++) {
        const char *name = ch->keys[k].name;
        uint32_t ids[KV_RING_MAX_RF];
        size_t n = kv_ring_replicas(ring, kv_slice_str(name), ch->copts.rf, ids);
        struct kv_store_item first = {0};
        int has_first = stored(ch, ids[0], name, &first);
        for (size_t i = 1; i < n; i++) {
            struct kv_store_item it = {0};
            int has = stored(ch, ids[i], name, &it);
            if (has != has_first || (has && !same_item(&first, &it)))
                violation(ch,
                          "(b) replicas of %s differ after the heal: node %u %s, node %u %s",
                          name, ids[0], has_first ? "has a record" : "has none", ids[i],
                          has ? (has_first ? "has another" : "has one") : "has none");
            kv_store_item_free(&it);
        }
        kv_store_item_free(&first);
    }
    kv_ring_free(ring);
}

/* --- (d): linearizability (tests/sim/wgl.h) ------------------------------------------ */

void check_linearizable(struct chaos *ch)
{
    const struct hop **list = malloc((ch->n_ops ? ch->n_ops : 1) * sizeof *list);
    struct wgl_op *wops = malloc((ch->n_ops ? ch->n_ops : 1) * sizeof *wops);
    for (int k = 0; k < ch->n_keys; k++) {
        if (ch->keys[k].cls == KC_LWW)
            continue;
        size_t n = 0;
        for (size_t i = 0; i < ch->n_ops; i++) {
            const struct hop *h = &ch->ops[i];
            if (h->key != k || h->status == S_FAIL || h->status == S_PENDING ||
                (h->status == S_INFO && h->f == F_READ))
                continue;
            list[n++] = h;
        }
        ch->r->lin_keys++;
        for (size_t i = 0; i < n; i++)
            wops[i] = (struct wgl_op){.call = list[i]->call, .ret = ret_of(list[i]),
                                      .kind = list[i]->f, .value = list[i]->value,
                                      .expect = list[i]->expect, .applied = list[i]->applied};
        int res = wgl_check(wops, n, WGL_BUDGET);
        if (res < 0)
            ch->r->lin_unknown++;
        else if (res == 0)
            violation(ch, "(d) the history of %s (%zu operations) is not linearizable",
                      ch->keys[k].name, n);
    }
    free(wops);
    free(list);
}

/* --- the history file ------------------------------------------------------------------ */

void write_history(struct chaos *ch)
{
    FILE *f = fopen(ch->o->history, "w");
    if (!f) {
        violation(ch, "cannot write the history %s", ch->o->history);
        return;
    }
    for (size_t i = 1; i < ch->n_ops; i++) {
        const struct hop *h = &ch->ops[i];
        if (ch->keys[h->key].cls == KC_LWW || h->status == S_PENDING)
            continue;
        char val[24] = "null", exp[24] = "null";
        int64_t v = h->f == F_DELETE ? -1 : h->value;
        if (v >= 0)
            snprintf(val, sizeof val, "%" PRId64, v);
        if (h->f == F_CAS && h->expect >= 0)
            snprintf(exp, sizeof exp, "%" PRId64, h->expect);
        const char *st = h->status == S_OK ? "ok" : h->status == S_FAIL ? "fail" : "info";
        fprintf(f,
                "{\"client\":%d,\"workload\":\"register\",\"key\":\"%s\",\"f\":\"%s\","
                "\"value\":%s,\"expect\":%s,\"applied\":%s,\"status\":\"%s\",\"call_ns\":%" PRIu64
                ",\"return_ns\":%" PRIu64 ",\"node\":%u,\"level\":\"linearizable\","
                "\"code\":\"%s\",\"err\":\"\"}\n",
                h->client, ch->keys[h->key].name, h->f == F_READ ? "read" : h->f == F_CAS ? "cas" : "write",
                val, exp,
                h->f != F_CAS || h->applied < 0 ? "null" : h->applied ? "true" : "false", st,
                h->call, h->ret, h->final ? 0u : h->node, status_name(h->code));
    }
    fclose(f);
}

/* With verbose, KVSIM_DUMP=key prints that key's operations (debugging a failing seed). */
void dump_key(struct chaos *ch)
{
    const char *want = getenv("KVSIM_DUMP");
    if (!want || !ch->o->log || !ch->o->verbose)
        return;
    for (size_t i = 1; i < ch->n_ops; i++) {
        const struct hop *h = &ch->ops[i];
        if (strcmp(ch->keys[h->key].name, want) != 0)
            continue;
        fprintf(ch->o->log,
                "  op %zu client %d node %u %s %s%s value %" PRId64 " expect %" PRId64
                " applied %d current %" PRId64 " -> %s %s  call %.3f ret %.3f ver %" PRIu64
                ".%u/%u\n",
                i, h->client, h->node, kv_level_name(h->level), f_name(h->f),
                h->final ? " (final)" : "", h->value, h->expect, h->applied, h->current,
                h->status == S_OK ? "ok" : h->status == S_FAIL ? "fail" : "info",
                status_name(h->code), h->call / 1e6, h->ret / 1e6, h->ver.hlc >> 16,
                (unsigned)(h->ver.hlc & 0xffff), h->ver.node);
    }
}
