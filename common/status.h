/* common/status.h -- status codes and error values shared by every layer.
 *
 * Fallible functions return enum kv_status and take an optional struct kv_err * last.
 * (1) KV_OK is 0 and every error is negative, so "if (s != KV_OK)" and "if (s < 0)" agree.
 * (2) struct kv_err is fixed size: it never owns heap memory and needs no cleanup.
 * (3) The wire Status enum (proto/kv.proto) maps to this one in proto/codec.c only. */
#ifndef KV_COMMON_STATUS_H
#define KV_COMMON_STATUS_H
#include <stdarg.h>

#define KV_STATUS_MAP(X)                                            \
    X(OK, 0, "ok")                                                  \
    X(NOT_FOUND, -1, "key not found")                               \
    X(INVALID, -2, "invalid argument")                              \
    X(PROTO, -3, "malformed message")                               \
    X(TOO_LARGE, -4, "too large")                                   \
    X(IOERR, -5, "i/o error")                                       \
    X(CORRUPTION, -6, "corruption")                                 \
    X(UNAVAILABLE, -7, "not enough replicas")                       \
    X(TIMEOUT, -8, "timed out")                                     \
    X(INTERNAL, -9, "internal error")                               \
    X(AGAIN, -10, "try again")                                      \
    X(NOMEM, -11, "out of memory")                                  \
    X(CONN, -12, "connection error")                                \
    X(SHUTDOWN, -13, "shutting down")                               \
    X(NOSPACE, -14, "no space left on device")

enum kv_status {
#define X(n, c, s) KV_##n = c,
    KV_STATUS_MAP(X)
#undef X
};

struct kv_err {
    enum kv_status code;
    char msg[160];
};

/* Static name of a status, e.g. "not found"; never NULL. */
const char *kv_status_str(enum kv_status s);
/* Upper-case identifier of a status, e.g. "NOT_FOUND"; never NULL. */
const char *kv_status_name(enum kv_status s);

/* Fill err (may be NULL) and return code, so callers write "return kv_err_set(...)". */
enum kv_status kv_err_set(struct kv_err *err, enum kv_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void kv_err_clear(struct kv_err *err);
#endif
