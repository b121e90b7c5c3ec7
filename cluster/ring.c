/* cluster/ring.c -- the order-preserving token ring (cluster/ring.h).
 *
 * Tokens live in one array sorted by kv_slice_cmp, each naming its owner by index into
 * the node array; a key is found by binary search. Replica selection walks clockwise from
 * the key's token in three passes (new region, new (region, rack), any new node).
 * (1) tokens[] is strictly increasing: no two tokens are equal, whoever owns them.
 * (2) tokens[i].owner indexes nodes[]; nodes[] is sorted by id, and every index is rewritten
 *     when a node is removed.
 * (3) The replica list of a token depends only on the token order and the nodes' labels,
 *     never on the order nodes were added, so every node computes the same list.
 * (4) The replica cache (kv_ring_build) is either absent or exact for every token at
 *     cache_rf; adding or removing a node drops it, and kv_ring_copy does not copy it.
 *     Without the cache, kv_ring_replicas walks the ring each call (early exits keep the
 *     walk short: a pass stops as soon as no candidate can remain). */
#include "cluster/ring.h"
#include <stdlib.h>
#include <string.h>
#include "common/hash.h"

struct ring_token {
    uint8_t *ptr;
    uint32_t len;
    uint32_t owner;                 /* index into nodes[] */
};

struct ring_node {
    uint32_t id;
    char *region, *rack;
    uint32_t region_ix;             /* equal labels, equal index; only compared */
    uint32_t pair_ix;               /* index of (region, rack) */
    size_t n_tokens;
};

struct kv_ring {
    struct ring_node *nodes;
    size_t n_nodes;
    struct ring_token *tokens;
    size_t n_tokens;
    size_t n_regions, n_pairs;      /* distinct labels among nodes that own tokens */
    size_t n_owning;                /* nodes with at least one token */
    unsigned cache_rf;              /* 0: no cache */
    size_t cache_count;             /* replicas per token in the cache */
    uint32_t *cache;                /* n_tokens * cache_count node ids */
};

static char *str_dup(const char *s)
{
    size_t n = strlen(s ? s : "");
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s ? s : "", n + 1);
    return d;
}

static struct kv_slice tok_slice(const struct ring_token *t)
{
    return kv_slice_of(t->ptr, t->len);
}

static void drop_cache(struct kv_ring *r)
{
    free(r->cache);
    r->cache = NULL;
    r->cache_rf = 0;
    r->cache_count = 0;
}

/* Recomputes the label indices and counts after any change of the node set. Indices are
 * assigned in id order among all nodes; only equality matters (invariant 3). */
static void relabel(struct kv_ring *r)
{
    r->n_regions = r->n_pairs = r->n_owning = 0;
    for (size_t i = 0; i < r->n_nodes; i++) {
        struct ring_node *n = &r->nodes[i];
        n->region_ix = (uint32_t)i;
        n->pair_ix = (uint32_t)i;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(r->nodes[j].region, n->region) != 0)
                continue;
            n->region_ix = r->nodes[j].region_ix;
            if (strcmp(r->nodes[j].rack, n->rack) == 0) {
                n->pair_ix = r->nodes[j].pair_ix;
                break;
            }
        }
    }
    /* Count distinct labels among nodes that own tokens (the only reachable ones). */
    for (size_t i = 0; i < r->n_nodes; i++) {
        const struct ring_node *n = &r->nodes[i];
        if (!n->n_tokens)
            continue;
        r->n_owning++;
        bool new_region = true, new_pair = true;
        for (size_t j = 0; j < i; j++) {
            if (!r->nodes[j].n_tokens)
                continue;
            if (r->nodes[j].region_ix == n->region_ix)
                new_region = false;
            if (r->nodes[j].pair_ix == n->pair_ix)
                new_pair = false;
        }
        r->n_regions += new_region;
        r->n_pairs += new_pair;
    }
}

struct kv_ring *kv_ring_new(void) { return calloc(1, sizeof(struct kv_ring)); }

void kv_ring_free(struct kv_ring *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_tokens; i++)
        free(r->tokens[i].ptr);
    for (size_t i = 0; i < r->n_nodes; i++) {
        free(r->nodes[i].region);
        free(r->nodes[i].rack);
    }
    free(r->tokens);
    free(r->nodes);
    free(r->cache);
    free(r);
}

struct kv_ring *kv_ring_copy(const struct kv_ring *r)
{
    struct kv_ring *c = kv_ring_new();
    if (!c)
        return NULL;
    c->nodes = calloc(r->n_nodes ? r->n_nodes : 1, sizeof *c->nodes);
    c->tokens = calloc(r->n_tokens ? r->n_tokens : 1, sizeof *c->tokens);
    if (!c->nodes || !c->tokens)
        goto oom;
    for (size_t i = 0; i < r->n_nodes; i++) {
        c->nodes[i] = r->nodes[i];
        c->nodes[i].region = str_dup(r->nodes[i].region);
        c->nodes[i].rack = str_dup(r->nodes[i].rack);
        c->n_nodes++;
        if (!c->nodes[i].region || !c->nodes[i].rack)
            goto oom;
    }
    for (size_t i = 0; i < r->n_tokens; i++) {
        c->tokens[i] = r->tokens[i];
        c->tokens[i].ptr = malloc(r->tokens[i].len);
        if (!c->tokens[i].ptr)
            goto oom;
        memcpy(c->tokens[i].ptr, r->tokens[i].ptr, r->tokens[i].len);
        c->n_tokens++;
    }
    c->n_regions = r->n_regions;
    c->n_pairs = r->n_pairs;
    c->n_owning = r->n_owning;
    return c;
oom:
    kv_ring_free(c);
    return NULL;
}

/* The index of the first token >= key, or n_tokens when every token is smaller. */
static size_t lower_bound(const struct kv_ring *r, struct kv_slice key)
{
    size_t lo = 0, hi = r->n_tokens;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kv_slice_cmp(tok_slice(&r->tokens[mid]), key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int cmp_slice_ptr(const void *a, const void *b)
{
    return kv_slice_cmp(**(const struct kv_slice *const *)a, **(const struct kv_slice *const *)b);
}

static int cmp_token(const void *a, const void *b)
{
    return kv_slice_cmp(tok_slice(a), tok_slice(b));
}

enum kv_status kv_ring_add_node(struct kv_ring *r, uint32_t id, const char *region,
                                const char *rack, const struct kv_slice *tokens, size_t n,
                                struct kv_err *err)
{
    size_t at = 0;
    while (at < r->n_nodes && r->nodes[at].id < id)
        at++;
    if (at < r->n_nodes && r->nodes[at].id == id)
        return kv_err_set(err, KV_INVALID, "ring: node %u is already in the ring", id);
    for (size_t i = 0; i < n; i++) {
        if (tokens[i].len == 0 || tokens[i].len > KV_RING_MAX_TOKEN)
            return kv_err_set(err, KV_INVALID, "ring: node %u token %zu has length %zu (1..%d)",
                              id, i, tokens[i].len, KV_RING_MAX_TOKEN);
        size_t p = lower_bound(r, tokens[i]);
        if (p < r->n_tokens && kv_slice_cmp(tok_slice(&r->tokens[p]), tokens[i]) == 0)
            return kv_err_set(err, KV_INVALID, "ring: node %u token %zu is owned by node %u", id,
                              i, r->nodes[r->tokens[p].owner].id);
    }
    if (n > 1) {
        const struct kv_slice **sorted = malloc(n * sizeof *sorted);
        if (!sorted)
            return kv_err_set(err, KV_NOMEM, "ring: out of memory");
        for (size_t i = 0; i < n; i++)
            sorted[i] = &tokens[i];
        qsort(sorted, n, sizeof *sorted, cmp_slice_ptr);
        bool dup = false;
        for (size_t i = 1; i < n && !dup; i++)
            dup = kv_slice_cmp(*sorted[i - 1], *sorted[i]) == 0;
        free(sorted);
        if (dup)
            return kv_err_set(err, KV_INVALID, "ring: node %u lists one token twice", id);
    }

    /* Allocate everything first so that failure leaves r unchanged. */
    struct ring_node nn = {.id = id, .region = str_dup(region), .rack = str_dup(rack),
                           .n_tokens = n};
    struct ring_node *nodes = realloc(r->nodes, (r->n_nodes + 1) * sizeof *nodes);
    if (nodes)
        r->nodes = nodes;
    struct ring_token *toks = realloc(r->tokens, (r->n_tokens + n + 1) * sizeof *toks);
    if (toks)
        r->tokens = toks;
    uint8_t **copies = calloc(n ? n : 1, sizeof *copies);
    bool ok = nn.region && nn.rack && nodes && toks && copies;
    for (size_t i = 0; ok && i < n; i++) {
        copies[i] = malloc(tokens[i].len);
        if (!copies[i])
            ok = false;
        else
            memcpy(copies[i], tokens[i].ptr, tokens[i].len);
    }
    if (!ok) {
        for (size_t i = 0; copies && i < n; i++)
            free(copies[i]);
        free(copies);
        free(nn.region);
        free(nn.rack);
        return kv_err_set(err, KV_NOMEM, "ring: out of memory");
    }

    memmove(&r->nodes[at + 1], &r->nodes[at], (r->n_nodes - at) * sizeof *r->nodes);
    r->nodes[at] = nn;
    r->n_nodes++;
    for (size_t i = 0; i < r->n_tokens; i++)
        if (r->tokens[i].owner >= at)
            r->tokens[i].owner++;
    for (size_t i = 0; i < n; i++)
        r->tokens[r->n_tokens++] =
            (struct ring_token){.ptr = copies[i], .len = (uint32_t)tokens[i].len,
                                .owner = (uint32_t)at};
    free(copies);
    qsort(r->tokens, r->n_tokens, sizeof *r->tokens, cmp_token);
    relabel(r);
    drop_cache(r);
    return KV_OK;
}

enum kv_status kv_ring_remove_node(struct kv_ring *r, uint32_t id)
{
    size_t at = 0;
    while (at < r->n_nodes && r->nodes[at].id != id)
        at++;
    if (at == r->n_nodes)
        return KV_NOT_FOUND;
    size_t w = 0;
    for (size_t i = 0; i < r->n_tokens; i++) {
        struct ring_token t = r->tokens[i];
        if (t.owner == at) {
            free(t.ptr);
            continue;
        }
        if (t.owner > at)
            t.owner--;
        r->tokens[w++] = t;
    }
    r->n_tokens = w;
    free(r->nodes[at].region);
    free(r->nodes[at].rack);
    memmove(&r->nodes[at], &r->nodes[at + 1], (r->n_nodes - at - 1) * sizeof *r->nodes);
    r->n_nodes--;
    relabel(r);
    drop_cache(r);
    return KV_OK;
}

size_t kv_ring_node_count(const struct kv_ring *r) { return r->n_nodes; }
size_t kv_ring_token_count(const struct kv_ring *r) { return r->n_tokens; }

/* The replica walk of invariant (2) in ring.h, from token index start, into out (node
 * indices). Each pass walks the whole ring once at most, and stops early when nothing it
 * could still pick remains. */
static size_t walk(const struct kv_ring *r, size_t start, size_t want, uint32_t *out)
{
    size_t got = 0, used_regions = 0, used_pairs = 0;
    for (int pass = 1; pass <= 3 && got < want; pass++) {
        for (size_t k = 0; k < r->n_tokens && got < want; k++) {
            if (pass == 1 && used_regions == r->n_regions)
                break;
            if (pass == 2 && used_pairs == r->n_pairs)
                break;
            if (pass == 3 && got == r->n_owning)
                break;
            size_t ti = start + k;
            if (ti >= r->n_tokens)
                ti -= r->n_tokens;
            uint32_t o = r->tokens[ti].owner;
            const struct ring_node *n = &r->nodes[o];
            bool chosen = false, region_used = false, pair_used = false;
            for (size_t j = 0; j < got; j++) {
                chosen |= out[j] == o;
                region_used |= r->nodes[out[j]].region_ix == n->region_ix;
                pair_used |= r->nodes[out[j]].pair_ix == n->pair_ix;
            }
            if (chosen || (pass == 1 && region_used) || (pass == 2 && pair_used))
                continue;
            out[got++] = o;
            used_regions += !region_used;
            used_pairs += !pair_used;
        }
    }
    return got;
}

static size_t token_replicas(const struct kv_ring *r, size_t ti, unsigned rf, uint32_t *out)
{
    if (!r->n_tokens || rf == 0)
        return 0;
    if (rf > KV_RING_MAX_RF)
        rf = KV_RING_MAX_RF;
    if (r->cache && r->cache_rf == rf) {
        memcpy(out, &r->cache[ti * r->cache_count], r->cache_count * sizeof *out);
        return r->cache_count;
    }
    uint32_t ix[KV_RING_MAX_RF];
    size_t got = walk(r, ti, rf, ix);
    for (size_t i = 0; i < got; i++)
        out[i] = r->nodes[ix[i]].id;
    return got;
}

enum kv_status kv_ring_build(struct kv_ring *r, unsigned rf)
{
    if (rf == 0 || rf > KV_RING_MAX_RF)
        return KV_INVALID;
    drop_cache(r);
    if (!r->n_tokens)
        return KV_OK;
    size_t count = rf < r->n_owning ? rf : r->n_owning;
    uint32_t *cache = malloc(r->n_tokens * count * sizeof *cache);
    if (!cache)
        return KV_NOMEM;
    for (size_t t = 0; t < r->n_tokens; t++)
        token_replicas(r, t, rf, &cache[t * count]);
    r->cache = cache;
    r->cache_rf = rf;
    r->cache_count = count;
    return KV_OK;
}

size_t kv_ring_replicas(const struct kv_ring *r, struct kv_slice key, unsigned rf,
                        uint32_t *out)
{
    if (!r->n_tokens)
        return 0;
    size_t ti = lower_bound(r, key);
    return token_replicas(r, ti == r->n_tokens ? 0 : ti, rf, out);
}

size_t kv_ring_range_count(const struct kv_ring *r)
{
    return r->n_tokens ? r->n_tokens + 1 : 0;
}

void kv_ring_range(const struct kv_ring *r, size_t i, struct kv_slice *start,
                   struct kv_slice *end)
{
    *start = kv_slice_of(NULL, 0);
    *end = kv_slice_of(NULL, 0);
    if (i > r->n_tokens || !r->n_tokens)
        return;
    if (i > 0)
        *start = tok_slice(&r->tokens[i - 1]);
    if (i < r->n_tokens)
        *end = tok_slice(&r->tokens[i]);
}

size_t kv_ring_range_replicas(const struct kv_ring *r, size_t i, unsigned rf, uint32_t *out)
{
    if (!r->n_tokens || i > r->n_tokens)
        return 0;
    return token_replicas(r, i == r->n_tokens ? 0 : i, rf, out);
}

size_t kv_ring_range_of(const struct kv_ring *r, struct kv_slice key)
{
    return lower_bound(r, key);
}

struct kv_slice kv_ring_token_at(const struct kv_ring *r, size_t i, uint32_t *owner)
{
    if (i >= r->n_tokens) {
        if (owner)
            *owner = 0;
        return kv_slice_of(NULL, 0);
    }
    if (owner)
        *owner = r->nodes[r->tokens[i].owner].id;
    return tok_slice(&r->tokens[i]);
}

bool kv_ring_node_at(const struct kv_ring *r, size_t i, uint32_t *id, const char **region,
                     const char **rack, size_t *n_tokens)
{
    if (i >= r->n_nodes)
        return false;
    const struct ring_node *n = &r->nodes[i];
    if (id)
        *id = n->id;
    if (region)
        *region = n->region;
    if (rack)
        *rack = n->rack;
    if (n_tokens)
        *n_tokens = n->n_tokens;
    return true;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

void kv_ring_default_tokens(uint32_t node_id, size_t count, uint8_t *buf,
                            struct kv_slice *out)
{
    for (size_t i = 0; i < count; i++) {
        uint8_t in[8];
        put_be32(in, node_id);
        put_be32(in + 4, (uint32_t)i);
        uint64_t h = kv_hash64(in, sizeof in);
        uint8_t *t = buf + 8 * i;
        for (int b = 0; b < 8; b++)
            t[b] = (uint8_t)(h >> (56 - 8 * b));
        out[i] = kv_slice_of(t, 8);
    }
}
