/* client/bench/workload.h -- YCSB core workloads A-F: operation mixes, key choosers.
 *
 * Keys are "user" followed by 16 hex digits of a 64-bit FNV-1a hash of the record number
 * (YCSB's hashed insert order), so records spread over the key space; the scan workload
 * (E) reads consecutive keys from a chosen start, as YCSB does.
 * Generators are per thread (no shared state), seeded from the thread index. */
#ifndef KV_BENCH_WORKLOAD_H
#define KV_BENCH_WORKLOAD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum wl_op { WL_READ, WL_UPDATE, WL_INSERT, WL_SCAN, WL_RMW, WL_NOPS };
enum wl_dist { WL_UNIFORM, WL_ZIPFIAN, WL_LATEST };

struct wl_mix {
    char name;                 /* 'a'..'f' */
    double p[WL_NOPS];         /* probabilities, summing to 1 */
    enum wl_dist dist;
};
/* The standard mix for workload letter w ('a'..'f'); NULL when unknown. */
const struct wl_mix *wl_mix_of(char w);
const char *wl_op_name(enum wl_op op);

struct wl_rng {
    uint64_t s;
};
void wl_rng_seed(struct wl_rng *r, uint64_t seed);
uint64_t wl_rng_next(struct wl_rng *r);
double wl_rng_unit(struct wl_rng *r);

/* YCSB's zipfian generator (Gray et al., theta 0.99) over [0, n). */
struct wl_zipf {
    uint64_t n;
    double theta, alpha, zetan, eta, zeta2;
};
void wl_zipf_init(struct wl_zipf *z, uint64_t n);
uint64_t wl_zipf_next(struct wl_zipf *z, struct wl_rng *r);

/* Writes the key of record number i into buf (>= 21 bytes); returns its length. */
size_t wl_key(uint64_t i, char *buf);

struct wl_gen {
    const struct wl_mix *mix;
    struct wl_rng rng;
    struct wl_zipf zipf;
    uint64_t records;          /* records loaded (the key space) */
    uint64_t *insert_next;     /* shared counter of the next record number to insert */
};
void wl_gen_init(struct wl_gen *g, const struct wl_mix *mix, uint64_t records,
                 uint64_t *insert_next, uint64_t seed);
enum wl_op wl_gen_op(struct wl_gen *g);
/* The record number an operation other than insert works on. */
uint64_t wl_gen_record(struct wl_gen *g);
#endif
