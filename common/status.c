/* common/status.c -- names of status codes and the kv_err helper. */
#include "common/status.h"
#include <stdio.h>
#include <string.h>

const char *kv_status_str(enum kv_status s)
{
    switch (s) {
#define X(n, c, str) case KV_##n: return str;
        KV_STATUS_MAP(X)
#undef X
    }
    return "unknown status";
}

const char *kv_status_name(enum kv_status s)
{
    switch (s) {
#define X(n, c, str) case KV_##n: return #n;
        KV_STATUS_MAP(X)
#undef X
    }
    return "UNKNOWN";
}

enum kv_status kv_err_set(struct kv_err *err, enum kv_status code, const char *fmt, ...)
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

void kv_err_clear(struct kv_err *err)
{
    if (err) {
        err->code = KV_OK;
        err->msg[0] = '\0';
    }
}
