/* client/names.c -- status and consistency names, result destructors, the error helper.
 *
 * (1) Every KVC_x equals the server's KV_x (checked at compile time below), so a status
 *     crosses the library boundary as a plain int with no translation table to drift.
 * (2) Every KVC_CL_x equals the wire Kv__Consistency value, so ops.c copies it directly. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "client/internal.h"
#include "common/status.h"

#define KVC__SAME(a, b) _Static_assert((int)(a) == (int)(b), #a " must equal " #b)
KVC__SAME(KVC_OK, KV_OK);
KVC__SAME(KVC_NOT_FOUND, KV_NOT_FOUND);
KVC__SAME(KVC_INVALID, KV_INVALID);
KVC__SAME(KVC_PROTO, KV_PROTO);
KVC__SAME(KVC_TOO_LARGE, KV_TOO_LARGE);
KVC__SAME(KVC_IOERR, KV_IOERR);
KVC__SAME(KVC_CORRUPTION, KV_CORRUPTION);
KVC__SAME(KVC_UNAVAILABLE, KV_UNAVAILABLE);
KVC__SAME(KVC_TIMEOUT, KV_TIMEOUT);
KVC__SAME(KVC_INTERNAL, KV_INTERNAL);
KVC__SAME(KVC_OVERLOADED, KV_AGAIN);   /* the codec maps wire OVERLOADED to KV_AGAIN */
KVC__SAME(KVC_NOMEM, KV_NOMEM);
KVC__SAME(KVC_CONN, KV_CONN);
KVC__SAME(KVC_SHUTDOWN, KV_SHUTDOWN);
KVC__SAME(KVC_NOSPACE, KV_NOSPACE);

KVC__SAME(KVC_CL_DEFAULT, KV__CONSISTENCY__CONSISTENCY_DEFAULT);
KVC__SAME(KVC_CL_ONE, KV__CONSISTENCY__ONE);
KVC__SAME(KVC_CL_TWO, KV__CONSISTENCY__TWO);
KVC__SAME(KVC_CL_THREE, KV__CONSISTENCY__THREE);
KVC__SAME(KVC_CL_QUORUM, KV__CONSISTENCY__QUORUM);
KVC__SAME(KVC_CL_ALL, KV__CONSISTENCY__ALL);
KVC__SAME(KVC_CL_LOCAL_ONE, KV__CONSISTENCY__LOCAL_ONE);
KVC__SAME(KVC_CL_LOCAL_QUORUM, KV__CONSISTENCY__LOCAL_QUORUM);
KVC__SAME(KVC_CL_EACH_QUORUM, KV__CONSISTENCY__EACH_QUORUM);
KVC__SAME(KVC_CL_LINEARIZABLE, KV__CONSISTENCY__LINEARIZABLE);

int kvc__err(struct kvc_err *err, int code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *kvc_status_name(int code)
{
    switch (code) {
    case KVC_OK: return "OK";
    case KVC_NOT_FOUND: return "NOT_FOUND";
    case KVC_INVALID: return "INVALID";
    case KVC_PROTO: return "PROTO";
    case KVC_TOO_LARGE: return "TOO_LARGE";
    case KVC_IOERR: return "IOERR";
    case KVC_CORRUPTION: return "CORRUPTION";
    case KVC_UNAVAILABLE: return "UNAVAILABLE";
    case KVC_TIMEOUT: return "TIMEOUT";
    case KVC_INTERNAL: return "INTERNAL";
    case KVC_OVERLOADED: return "OVERLOADED";
    case KVC_NOMEM: return "NOMEM";
    case KVC_CONN: return "CONN";
    case KVC_SHUTDOWN: return "SHUTDOWN";
    case KVC_NOSPACE: return "NOSPACE";
    }
    return "UNKNOWN";
}

static const char *const cl_names[] = {
    [KVC_CL_DEFAULT] = "default",           [KVC_CL_ONE] = "one",
    [KVC_CL_TWO] = "two",                   [KVC_CL_THREE] = "three",
    [KVC_CL_QUORUM] = "quorum",             [KVC_CL_ALL] = "all",
    [KVC_CL_LOCAL_ONE] = "local_one",       [KVC_CL_LOCAL_QUORUM] = "local_quorum",
    [KVC_CL_EACH_QUORUM] = "each_quorum",   [KVC_CL_LINEARIZABLE] = "linearizable",
};

int kvc_consistency_parse(const char *s, enum kvc_consistency *out)
{
    if (!s)
        return -1;
    /* Accept "local-quorum" as well as "local_quorum": both appear in shell scripts. */
    char norm[32];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof norm)
        return -1;
    for (size_t i = 0; i <= n; i++)
        norm[i] = s[i] == '-' ? '_' : s[i];
    for (size_t i = 0; i < sizeof cl_names / sizeof cl_names[0]; i++)
        if (strcasecmp(norm, cl_names[i]) == 0) {
            *out = (enum kvc_consistency)i;
            return 0;
        }
    return -1;
}

const char *kvc_consistency_name(enum kvc_consistency c)
{
    if ((unsigned)c < sizeof cl_names / sizeof cl_names[0])
        return cl_names[c];
    return "unknown";
}

void kvc_value_free(struct kvc_value *v)
{
    if (!v)
        return;
    free(v->data);
    memset(v, 0, sizeof *v);
}

void kvc_scan_result_free(struct kvc_scan_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].key);
        free(r->items[i].value);
    }
    free(r->items);
    free(r->cursor);
    memset(r, 0, sizeof *r);
}
