/* tests/sim/wgl.c -- the Wing-Gong-Lowe linearizability search (wgl.h): depth-first over
 * the history's call/return entries, lifting an operation out when it can linearize next,
 * with a cache of (set of linearized operations, register state) pairs already explored
 * so that each configuration is searched once (Lowe's improvement). */
#include "tests/sim/wgl.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct went {
    int op;                     /* index into the key's op list */
    bool call;
    uint64_t t;
    struct went *prev, *next, *match;
};

struct wcache {
    uint64_t *keys;             /* per slot: words of bitset, then the state */
    uint8_t *used;
    size_t cap, n, words;
};

static uint64_t wc_hash(const uint64_t *b, size_t words, int64_t state)
{
    uint64_t h = (uint64_t)state * 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < words; i++)
        h = (h ^ b[i]) * 0x100000001b3ull + (h >> 29);
    return h;
}

/* Inserts (b, state); false when it was there already. */
static bool wc_insert(struct wcache *c, const uint64_t *b, int64_t state)
{
    size_t w = c->words + 1;
    if (2 * (c->n + 1) > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4096;
        uint64_t *keys = malloc(cap * w * sizeof *keys);
        uint8_t *used = calloc(cap, 1);
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->used[i])
                continue;
            const uint64_t *kk = c->keys + i * w;
            size_t j = (size_t)wc_hash(kk, c->words, (int64_t)kk[c->words]) & (cap - 1);
            while (used[j])
                j = (j + 1) & (cap - 1);
            used[j] = 1;
            memcpy(keys + j * w, kk, w * sizeof *keys);
        }
        free(c->keys);
        free(c->used);
        c->keys = keys;
        c->used = used;
        c->cap = cap;
    }
    size_t j = (size_t)wc_hash(b, c->words, state) & (c->cap - 1);
    while (c->used[j]) {
        const uint64_t *kk = c->keys + j * w;
        if ((int64_t)kk[c->words] == state && memcmp(kk, b, c->words * sizeof *b) == 0)
            return false;
        j = (j + 1) & (c->cap - 1);
    }
    c->used[j] = 1;
    memcpy(c->keys + j * w, b, c->words * sizeof *b);
    c->keys[j * w + c->words] = (uint64_t)state;
    c->n++;
    return true;
}

static bool step(const struct wgl_op *h, int64_t s, int64_t *next)
{
    switch (h->kind) {
    case WGL_READ:
        *next = s;
        return h->value == s;
    case WGL_WRITE:
        *next = h->value;
        return true;
    case WGL_DELETE:
        *next = -1;
        return true;
    default:
        if (h->applied == 1) {
            *next = h->value;
            return s == h->expect;
        }
        if (h->applied == 0) {
            *next = s;
            return s != h->expect;
        }
        *next = s == h->expect ? h->value : s;
        return true;
    }
}

static int went_cmp(const void *a, const void *b)
{
    const struct went *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->call == y->call ? 0 : x->call ? 1 : -1;   /* returns first at a tie */
}

int wgl_check(const struct wgl_op *ops, size_t n, size_t budget)
{
    if (n == 0)
        return 1;
    struct went *e = calloc(2 * n, sizeof *e);
    for (size_t i = 0; i < n; i++) {
        e[2 * i] = (struct went){.op = (int)i, .call = true, .t = ops[i].call};
        e[2 * i + 1] = (struct went){.op = (int)i, .call = false, .t = ops[i].ret};
    }
    qsort(e, 2 * n, sizeof *e, went_cmp);
    struct went **byop = calloc(2 * n, sizeof *byop);
    for (size_t i = 0; i < 2 * n; i++)
        byop[2 * (size_t)e[i].op + (e[i].call ? 0 : 1)] = &e[i];
    for (size_t i = 0; i < n; i++) {
        byop[2 * i]->match = byop[2 * i + 1];
        byop[2 * i + 1]->match = byop[2 * i];
    }
    struct went head = {0};
    head.next = &e[0];
    e[0].prev = &head;
    for (size_t i = 0; i + 1 < 2 * n; i++) {
        e[i].next = &e[i + 1];
        e[i + 1].prev = &e[i];
    }
    size_t words = (n + 63) / 64;
    uint64_t *lin = calloc(words, sizeof *lin);
    struct wcache cache = {.words = words};
    struct frame {
        struct went *ent;
        int64_t state;
    } *stack = malloc(n * sizeof *stack);
    size_t depth = 0;
    int64_t state = -1;
    int result = 1;
    struct went *ent = head.next;
    while (head.next) {
        if (ent->call) {
            int64_t next;
            bool ok = step(&ops[ent->op], state, &next);
            if (ok) {
                lin[ent->op / 64] |= 1ull << (ent->op % 64);
                bool fresh = wc_insert(&cache, lin, next);
                if (fresh) {
                    stack[depth++] = (struct frame){ent, state};
                    state = next;
                    /* lift */
                    ent->prev->next = ent->next;
                    if (ent->next)
                        ent->next->prev = ent->prev;
                    struct went *m = ent->match;
                    m->prev->next = m->next;
                    if (m->next)
                        m->next->prev = m->prev;
                    ent = head.next;
                    if (cache.n > budget) {
                        result = -1;
                        break;
                    }
                    continue;
                }
                lin[ent->op / 64] &= ~(1ull << (ent->op % 64));
            }
            ent = ent->next;
        } else {
            if (!depth) {
                result = 0;
                break;
            }
            struct frame f = stack[--depth];
            ent = f.ent;
            state = f.state;
            lin[ent->op / 64] &= ~(1ull << (ent->op % 64));
            /* unlift */
            struct went *m = ent->match;
            m->prev->next = m;
            if (m->next)
                m->next->prev = m;
            ent->prev->next = ent;
            if (ent->next)
                ent->next->prev = ent;
            ent = ent->next;
        }
    }
    free(stack);
    free(lin);
    free(cache.keys);
    free(cache.used);
    free(byop);
    free(e);
    return result;
}
