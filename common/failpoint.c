/* common/failpoint.c -- the failpoint table, its parser and the crash action (failpoint.h).
 *
 * The table is a fixed array written only by kv_failpoint_configure() (failpoint.h (3));
 * g_armed is published last with release order, so a hitting thread that sees it non-zero
 * sees the entries too. */
#include "common/failpoint.h"
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "common/log.h"

enum fp_action { FP_OFF, FP_CRASH };

struct fp_entry {
    char name[KV_FAILPOINT_NAME_MAX];
    enum fp_action action;
    uint64_t nth;                /* act at this hit; 0: not this form */
    unsigned pct;                /* act with this probability; 0: not this form */
    _Atomic uint64_t hits;
};

/* The points placed in kvd (failpoint.h): only to warn about a name that never fires. */
static const char *const g_known[] = {"commit.before_wal", "commit.after_wal",
                                      "ack.before_reply", "ack.after_write"};

static struct fp_entry g_fp[KV_FAILPOINT_MAX];
static _Atomic size_t g_armed;
static _Atomic uint64_t g_rng;   /* splitmix64 counter for the %P form */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static bool name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

/* A decimal in [lo, hi] filling exactly [s, e). */
static bool parse_uint(const char *s, const char *e, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (s == e || e - s > 19)
        return false;
    uint64_t v = 0;
    for (const char *p = s; p < e; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* One "name=action[@N|%P]" entry in [s, e), spaces around it already trimmed. */
static enum kv_status parse_entry(const char *s, const char *e, struct fp_entry *fp,
                                  struct kv_err *err)
{
    int len = (int)(e - s);
    const char *eq = memchr(s, '=', (size_t)(e - s));
    if (!eq)
        return kv_err_set(err, KV_INVALID, "failpoint '%.*s': expected name=action", len, s);
    size_t nlen = (size_t)(eq - s);
    if (nlen == 0 || nlen >= sizeof fp->name)
        return kv_err_set(err, KV_INVALID, "failpoint '%.*s': name must be 1..%d bytes", len,
                          s, KV_FAILPOINT_NAME_MAX - 1);
    for (const char *p = s; p < eq; p++)
        if (!name_char(*p))
            return kv_err_set(err, KV_INVALID, "failpoint '%.*s': bad character in name",
                              len, s);
    memset(fp, 0, sizeof *fp);
    memcpy(fp->name, s, nlen);
    const char *a = eq + 1, *mod = a;
    while (mod < e && *mod != '@' && *mod != '%')
        mod++;
    size_t alen = (size_t)(mod - a);
    if (alen == 5 && memcmp(a, "crash", 5) == 0)
        fp->action = FP_CRASH;
    else if (alen == 3 && memcmp(a, "off", 3) == 0)
        fp->action = FP_OFF;
    else
        return kv_err_set(err, KV_INVALID, "failpoint '%.*s': action must be crash or off",
                          len, s);
    if (mod == e) {
        fp->nth = fp->action == FP_CRASH ? 1 : 0;
        return KV_OK;
    }
    if (fp->action == FP_OFF)
        return kv_err_set(err, KV_INVALID, "failpoint '%.*s': off takes no @N or %%P", len, s);
    uint64_t v;
    if (*mod == '@') {
        if (!parse_uint(mod + 1, e, 1, UINT64_MAX / 2, &v))
            return kv_err_set(err, KV_INVALID, "failpoint '%.*s': @N needs N >= 1", len, s);
        fp->nth = v;
    } else {
        if (!parse_uint(mod + 1, e, 1, 100, &v))
            return kv_err_set(err, KV_INVALID, "failpoint '%.*s': %%P needs P in 1..100",
                              len, s);
        fp->pct = (unsigned)v;
    }
    return KV_OK;
}

enum kv_status kv_failpoint_configure(const char *spec, struct kv_err *err)
{
    static struct fp_entry next[KV_FAILPOINT_MAX];
    size_t n = 0;
    const char *p = spec ? spec : "";
    while (*p) {
        const char *e = strchr(p, ',');
        if (!e)
            e = p + strlen(p);
        const char *s = p, *t = e;
        while (s < t && *s == ' ')
            s++;
        while (t > s && t[-1] == ' ')
            t--;
        if (s < t) {
            if (n == KV_FAILPOINT_MAX)
                return kv_err_set(err, KV_INVALID, "failpoints: more than %d entries",
                                  KV_FAILPOINT_MAX);
            enum kv_status st = parse_entry(s, t, &next[n], err);
            if (st != KV_OK)
                return st;
            for (size_t i = 0; i < n; i++)
                if (strcmp(next[i].name, next[n].name) == 0)
                    return kv_err_set(err, KV_INVALID, "failpoint %s named twice",
                                      next[n].name);
            n++;
        }
        p = *e ? e + 1 : e;
    }
    atomic_store(&g_armed, 0);
    for (size_t i = 0; i < n; i++) {
        memcpy(g_fp[i].name, next[i].name, sizeof g_fp[i].name);
        g_fp[i].action = next[i].action;
        g_fp[i].nth = next[i].nth;
        g_fp[i].pct = next[i].pct;
        atomic_store(&g_fp[i].hits, 0);
    }
    atomic_store_explicit(&g_armed, n, memory_order_release);
    return KV_OK;
}

static struct fp_entry *find(const char *name)
{
    size_t n = atomic_load_explicit(&g_armed, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (strcmp(g_fp[i].name, name) == 0)
            return &g_fp[i];
    return NULL;
}

/* failpoint.h (1): one write(2) of a line, then SIGKILL, which cannot be caught. */
static void crash(const struct fp_entry *fp, uint64_t hit)
{
    char line[128];
    int n = snprintf(line, sizeof line, "failpoint %s: crash at hit %llu (SIGKILL)\n",
                     fp->name, (unsigned long long)hit);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n
                                                                        : sizeof line - 1);
        (void)w;
    }
    raise(SIGKILL);
    _exit(137);                  /* not reached: SIGKILL is neither caught nor blocked */
}

void kv_failpoint_hit(const char *name)
{
    if (atomic_load_explicit(&g_armed, memory_order_relaxed) == 0)
        return;
    struct fp_entry *fp = find(name);
    if (!fp)
        return;
    uint64_t hit = atomic_fetch_add(&fp->hits, 1) + 1;
    if (fp->action != FP_CRASH)
        return;
    bool act = fp->nth ? hit == fp->nth
                       : splitmix64(atomic_fetch_add(&g_rng, 1)) % 100 < fp->pct;
    if (act)
        crash(fp, hit);
}

void kv_failpoint_seed(uint64_t seed) { atomic_store(&g_rng, seed); }

uint64_t kv_failpoint_hits(const char *name)
{
    struct fp_entry *fp = find(name);
    return fp ? atomic_load(&fp->hits) : 0;
}

size_t kv_failpoint_describe(char *buf, size_t cap)
{
    size_t n = atomic_load_explicit(&g_armed, memory_order_acquire), used = 0;
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++) {
        const struct fp_entry *fp = &g_fp[i];
        char mod[32] = "";
        if (fp->action == FP_CRASH && fp->pct)
            snprintf(mod, sizeof mod, "%%%u", fp->pct);
        else if (fp->action == FP_CRASH && fp->nth > 1)
            snprintf(mod, sizeof mod, "@%llu", (unsigned long long)fp->nth);
        int w = snprintf(buf + used, cap - used, "%s%s=%s%s", i ? "," : "", fp->name,
                         fp->action == FP_CRASH ? "crash" : "off", mod);
        if (w < 0)
            break;
        used += (size_t)w < cap - used ? (size_t)w : cap - used - 1;
    }
    return n;
}

/* Before main: read KV_FAILPOINTS once (failpoint.h). A bad spec ends the program. */
__attribute__((constructor)) static void failpoint_from_env(void)
{
    const char *seed = getenv("KV_FAILPOINTS_SEED");
    atomic_store(&g_rng, seed ? strtoull(seed, NULL, 10)
                              : (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid());
    const char *spec = getenv("KV_FAILPOINTS");
    if (!spec || !*spec)
        return;
    struct kv_err err = {KV_OK, ""};
    if (kv_failpoint_configure(spec, &err) != KV_OK) {
        KV_ERROR("KV_FAILPOINTS: %s", err.msg);
        _exit(2);
    }
    char desc[1024];
    kv_failpoint_describe(desc, sizeof desc);
    size_t n = atomic_load(&g_armed);
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (size_t j = 0; j < sizeof g_known / sizeof g_known[0]; j++)
            known = known || strcmp(g_fp[i].name, g_known[j]) == 0;
        if (!known)
            KV_WARN("failpoint %s is not a point placed in kvd: it will never fire",
                    g_fp[i].name);
    }
#ifdef KV_FAILPOINTS
    KV_WARN("failpoints armed (test build): %s", desc);
#else
    KV_WARN("failpoints armed but this build has none compiled in (KV_FAILPOINTS off): %s",
            desc);
#endif
}
