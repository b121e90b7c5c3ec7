/* client/bench/workload.c -- YCSB mixes and key distributions. */
#include "client/bench/workload.h"
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static const struct wl_mix g_mixes[] = {
    {'a', {0.5, 0.5, 0, 0, 0}, WL_ZIPFIAN},      /* update heavy */
    {'b', {0.95, 0.05, 0, 0, 0}, WL_ZIPFIAN},    /* read mostly */
    {'c', {1, 0, 0, 0, 0}, WL_ZIPFIAN},          /* read only */
    {'d', {0.95, 0, 0.05, 0, 0}, WL_LATEST},     /* read latest */
    {'e', {0, 0, 0.05, 0.95, 0}, WL_ZIPFIAN},    /* short ranges */
    {'f', {0.5, 0, 0, 0, 0.5}, WL_ZIPFIAN},      /* read-modify-write */
};

const struct wl_mix *wl_mix_of(char w)
{
    for (size_t i = 0; i < sizeof g_mixes / sizeof g_mixes[0]; i++)
        if (g_mixes[i].name == w)
            return &g_mixes[i];
    return NULL;
}

const char *wl_op_name(enum wl_op op)
{
    static const char *const n[] = {"read", "update", "insert", "scan", "rmw"};
    return (unsigned)op < WL_NOPS ? n[op] : "?";
}

void wl_rng_seed(struct wl_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ULL + 7; }

uint64_t wl_rng_next(struct wl_rng *r)
{
    uint64_t x = r->s;   /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

double wl_rng_unit(struct wl_rng *r) { return (double)(wl_rng_next(r) >> 11) / 9007199254740992.0; }

static double zeta(uint64_t n, double theta)
{
    double s = 0;
    for (uint64_t i = 1; i <= n; i++)
        s += 1.0 / pow((double)i, theta);
    return s;
}

void wl_zipf_init(struct wl_zipf *z, uint64_t n)
{
    z->n = n ? n : 1;
    z->theta = 0.99;
    z->zeta2 = zeta(2, z->theta);
    z->alpha = 1.0 / (1.0 - z->theta);
    z->zetan = zeta(z->n, z->theta);
    z->eta = (1 - pow(2.0 / (double)z->n, 1 - z->theta)) / (1 - z->zeta2 / z->zetan);
}

uint64_t wl_zipf_next(struct wl_zipf *z, struct wl_rng *r)
{
    double u = wl_rng_unit(r);
    double uz = u * z->zetan;
    if (uz < 1.0)
        return 0;
    if (uz < 1.0 + pow(0.5, z->theta))
        return 1 < z->n ? 1 : 0;
    uint64_t v = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1, z->alpha));
    return v < z->n ? v : z->n - 1;
}

static uint64_t fnv1a64(uint64_t v)
{
    uint64_t h = 0xCBF29CE484222325ULL;
    for (int i = 0; i < 8; i++) {
        h ^= (v >> (i * 8)) & 0xff;
        h *= 0x100000001B3ULL;
    }
    return h;
}

size_t wl_key(uint64_t i, char *buf)
{
    /* "user%016llx", by hand: it runs once per op, and snprintf was a visible share of
     * the load generator's time (the keys are the same bytes either way). */
    static const char hex[] = "0123456789abcdef";
    uint64_t h = fnv1a64(i);
    memcpy(buf, "user", 4);
    for (int k = 0; k < 16; k++)
        buf[4 + k] = hex[(h >> (60 - 4 * k)) & 0xf];
    buf[20] = '\0';
    return 20;
}

void wl_gen_init(struct wl_gen *g, const struct wl_mix *mix, uint64_t records,
                 uint64_t *insert_next, uint64_t seed)
{
    g->mix = mix;
    g->records = records ? records : 1;
    g->insert_next = insert_next;
    wl_rng_seed(&g->rng, seed);
    wl_zipf_init(&g->zipf, g->records);
}

enum wl_op wl_gen_op(struct wl_gen *g)
{
    double u = wl_rng_unit(&g->rng), acc = 0;
    for (int op = 0; op < WL_NOPS; op++) {
        acc += g->mix->p[op];
        if (u < acc)
            return (enum wl_op)op;
    }
    return WL_READ;
}

uint64_t wl_gen_record(struct wl_gen *g)
{
    uint64_t have = __atomic_load_n(g->insert_next, __ATOMIC_RELAXED);
    if (have < 1)
        have = 1;
    switch (g->mix->dist) {
    case WL_UNIFORM:
        return wl_rng_next(&g->rng) % have;
    case WL_LATEST: {
        /* The most recently inserted records are the most popular. */
        uint64_t back = wl_zipf_next(&g->zipf, &g->rng);
        return back < have ? have - 1 - back : have - 1;
    }
    case WL_ZIPFIAN:
        break;
    }
    /* Scrambled zipfian: popular ranks spread over the key space, as in YCSB. */
    return fnv1a64(wl_zipf_next(&g->zipf, &g->rng)) % have;
}
