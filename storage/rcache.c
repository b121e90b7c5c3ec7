/* storage/rcache.c -- the record cache (rcache.h): striped hash tables with LRU eviction.
 *
 * (1) A key's stripe is chosen by its 64-bit hash; within the stripe, entries chain in a
 *     power-of-two bucket array that doubles when entries outnumber buckets, and sit on
 *     one LRU list (head: most recent). Each stripe owns capacity / STRIPES bytes.
 * (2) An entry is one allocation: header, key bytes, record bytes. Its charge is all
 *     three, so the budget bounds real memory, not just payload.
 * (3) gen starts at 1 and only grows; a ticket is the gen a miss saw, or 0 while a write
 *     was in progress. Every write_begin, write_end and clear bumps gen, so a ticket taken
 *     before any of them can no longer insert (rcache.h (2)). */
#include "storage/rcache.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "common/hash.h"

#define STRIPES 64u
#define MIN_BUCKETS 64u

struct ent {
    struct ent *chain;                   /* next in the bucket */
    struct ent *prev, *next;             /* LRU list */
    uint64_t hash;
    uint32_t klen, vlen;
    uint8_t bytes[];                     /* key, then record */
};

struct stripe {
    pthread_mutex_t mu;
    struct ent **buckets;                /* owned; nbuckets, a power of two */
    size_t nbuckets, entries;
    struct ent *lru_head, *lru_tail;
    size_t bytes, capacity;
    uint64_t gen;                        /* (3) */
    uint32_t writing;                    /* writes between begin and end */
    uint64_t hits, misses, inserts, evictions;
};

struct kv_rcache {
    struct stripe s[STRIPES];
};

static size_t charge(uint32_t klen, uint32_t vlen) { return sizeof(struct ent) + klen + vlen; }

enum kv_status kv_rcache_new(size_t capacity, struct kv_rcache **out, struct kv_err *err)
{
    *out = NULL;
    if (!capacity)
        return KV_OK;
    struct kv_rcache *c = calloc(1, sizeof *c);
    if (!c)
        return kv_err_set(err, KV_NOMEM, "record cache: out of memory");
    for (unsigned i = 0; i < STRIPES; i++) {
        struct stripe *s = &c->s[i];
        s->buckets = calloc(MIN_BUCKETS, sizeof *s->buckets);
        if (!s->buckets) {
            kv_rcache_free(c);
            return kv_err_set(err, KV_NOMEM, "record cache: out of memory");
        }
        s->nbuckets = MIN_BUCKETS;
        s->capacity = capacity / STRIPES;
        s->gen = 1;
        pthread_mutex_init(&s->mu, NULL);
    }
    *out = c;
    return KV_OK;
}

static void drop_all(struct stripe *s)
{
    for (struct ent *e = s->lru_head, *n; e; e = n) {
        n = e->next;
        free(e);
    }
    memset(s->buckets, 0, s->nbuckets * sizeof *s->buckets);
    s->lru_head = s->lru_tail = NULL;
    s->entries = s->bytes = 0;
}

void kv_rcache_free(struct kv_rcache *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < STRIPES; i++) {
        struct stripe *s = &c->s[i];
        if (!s->buckets)
            continue;
        drop_all(s);
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(c);
}

static struct stripe *stripe_of(struct kv_rcache *c, uint64_t h)
{
    return &c->s[h >> 58];   /* top 6 bits pick the stripe, the low bits the bucket */
}

/* The link that points at key's entry (*link is NULL when absent). Under s->mu. */
static struct ent **find(struct stripe *s, struct kv_slice key, uint64_t h)
{
    struct ent **link = &s->buckets[h & (s->nbuckets - 1)];
    for (; *link; link = &(*link)->chain) {
        const struct ent *e = *link;
        if (e->hash == h && e->klen == key.len && memcmp(e->bytes, key.ptr, key.len) == 0)
            break;
    }
    return link;
}

static void lru_unlink(struct stripe *s, struct ent *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->lru_tail = e->prev;
}

static void lru_push_front(struct stripe *s, struct ent *e)
{
    e->prev = NULL;
    e->next = s->lru_head;
    if (s->lru_head)
        s->lru_head->prev = e;
    else
        s->lru_tail = e;
    s->lru_head = e;
}

/* Unlinks *link's entry from its bucket and the LRU list and frees it. Under s->mu. */
static void remove_at(struct stripe *s, struct ent **link)
{
    struct ent *e = *link;
    *link = e->chain;
    lru_unlink(s, e);
    s->entries--;
    s->bytes -= charge(e->klen, e->vlen);
    free(e);
}

static void remove_key(struct stripe *s, struct kv_slice key, uint64_t h)
{
    struct ent **link = find(s, key, h);
    if (*link)
        remove_at(s, link);
}

/* Doubles the bucket array; on allocation failure the chains just grow longer. */
static void grow(struct stripe *s)
{
    size_t n = s->nbuckets * 2;
    struct ent **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (struct ent *e = s->buckets[i], *next; e; e = next) {
            next = e->chain;
            struct ent **head = &b[e->hash & (n - 1)];
            e->chain = *head;
            *head = e;
        }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

bool kv_rcache_lookup(struct kv_rcache *c, struct kv_slice key, struct kv_buf *out,
                      uint64_t *ticket)
{
    *ticket = 0;
    if (!c)
        return false;
    uint64_t h = kv_hash64(key.ptr, key.len);
    struct stripe *s = stripe_of(c, h);
    pthread_mutex_lock(&s->mu);
    struct ent *e = s->writing ? NULL : *find(s, key, h);
    void *copy = e ? malloc(e->vlen ? e->vlen : 1) : NULL;
    if (copy) {
        memcpy(copy, e->bytes + e->klen, e->vlen);
        out->ptr = copy;
        out->len = e->vlen;
        out->free_fn = free;
        if (s->lru_head != e) {
            lru_unlink(s, e);
            lru_push_front(s, e);
        }
        s->hits++;
    } else {
        s->misses++;
        *ticket = s->writing ? 0 : s->gen;
    }
    pthread_mutex_unlock(&s->mu);
    return copy != NULL;
}

void kv_rcache_insert(struct kv_rcache *c, struct kv_slice key, struct kv_slice val,
                      uint64_t ticket)
{
    if (!c || !ticket || val.len > KV_RCACHE_MAX_RECORD || key.len > UINT32_MAX)
        return;
    uint64_t h = kv_hash64(key.ptr, key.len);
    struct stripe *s = stripe_of(c, h);
    size_t need = charge((uint32_t)key.len, (uint32_t)val.len);
    if (need > s->capacity)
        return;
    /* Copied before taking the lock, so the critical section stays a few pointer moves. */
    struct ent *e = malloc(need);
    if (!e)
        return;
    e->hash = h;
    e->klen = (uint32_t)key.len;
    e->vlen = (uint32_t)val.len;
    memcpy(e->bytes, key.ptr, key.len);
    if (val.len)
        memcpy(e->bytes + key.len, val.ptr, val.len);
    pthread_mutex_lock(&s->mu);
    if (s->gen != ticket || s->writing) {
        pthread_mutex_unlock(&s->mu);
        free(e);
        return;
    }
    remove_key(s, key, h);   /* two readers of one key: the later copy replaces the first */
    while (s->bytes + need > s->capacity && s->lru_tail) {
        struct ent *victim = s->lru_tail;
        remove_at(s, find(s, kv_slice_of(victim->bytes, victim->klen), victim->hash));
        s->evictions++;
    }
    if (s->entries >= s->nbuckets)
        grow(s);
    struct ent **head = &s->buckets[h & (s->nbuckets - 1)];
    e->chain = *head;
    *head = e;
    lru_push_front(s, e);
    s->entries++;
    s->bytes += need;
    s->inserts++;
    pthread_mutex_unlock(&s->mu);
}

/* write_begin and write_end: drop the key, bump gen (3), count the write in or out. */
static void on_write(struct kv_rcache *c, struct kv_slice key, int delta)
{
    if (!c)
        return;
    uint64_t h = kv_hash64(key.ptr, key.len);
    struct stripe *s = stripe_of(c, h);
    pthread_mutex_lock(&s->mu);
    remove_key(s, key, h);
    s->gen++;
    s->writing += (uint32_t)delta;
    pthread_mutex_unlock(&s->mu);
}

void kv_rcache_write_begin(struct kv_rcache *c, struct kv_slice key) { on_write(c, key, 1); }
void kv_rcache_write_end(struct kv_rcache *c, struct kv_slice key) { on_write(c, key, -1); }

void kv_rcache_clear(struct kv_rcache *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < STRIPES; i++) {
        struct stripe *s = &c->s[i];
        pthread_mutex_lock(&s->mu);
        drop_all(s);
        s->gen++;
        pthread_mutex_unlock(&s->mu);
    }
}

void kv_rcache_stats(struct kv_rcache *c, struct kv_rcache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    for (unsigned i = 0; i < STRIPES; i++) {
        struct stripe *s = &c->s[i];
        pthread_mutex_lock(&s->mu);
        out->hits += s->hits;
        out->misses += s->misses;
        out->inserts += s->inserts;
        out->evictions += s->evictions;
        out->bytes += s->bytes;
        out->entries += s->entries;
        out->capacity += s->capacity;
        pthread_mutex_unlock(&s->mu);
    }
}
