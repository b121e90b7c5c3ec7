/* tests/sim/wgl.h -- is one register's history linearizable? A Wing-Gong-Lowe search, so
 * the simulator's chaos runs (chaos.c invariant (d)) need no Go (jepsen/checker's
 * porcupine reads the same histories when it is there).
 *
 * The register starts absent (-1). An operation took effect at some instant between its
 * call and its return; one that never returned (an outcome-unknown write) has ret
 * UINT64_MAX, so it may take effect at any time after its call, or never matter. Unknown
 * reads carry no information and should be left out by the caller. */
#ifndef KV_TESTS_SIM_WGL_H
#define KV_TESTS_SIM_WGL_H
#include <stddef.h>
#include <stdint.h>

enum { WGL_READ, WGL_WRITE, WGL_DELETE, WGL_CAS };

struct wgl_op {
    uint64_t call, ret;         /* distinct instants, ret > call; UINT64_MAX: no return */
    uint8_t kind;               /* WGL_* */
    int64_t value;              /* write/cas: the new value; read: the value read (-1: none) */
    int64_t expect;             /* cas: the expected value (-1: absence) */
    int applied;                /* cas: 1 applied, 0 not, -1 unknown */
};

/* 1 linearizable, 0 not, -1 undecided: the search cached more than budget configurations. */
int wgl_check(const struct wgl_op *ops, size_t n, size_t budget);
#endif
