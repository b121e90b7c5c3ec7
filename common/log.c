/* common/log.c -- leveled logging to stderr with a UTC timestamp. */
#include "common/log.h"
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static _Atomic int g_level = KV_LOG_INFO;
static const char *const g_names[] = {"debug", "info", "warn", "error"};

void kv_log_set_level(enum kv_log_level lvl) { atomic_store(&g_level, (int)lvl); }

int kv_log_parse_level(const char *s, enum kv_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, g_names[i]) == 0) {
            *out = (enum kv_log_level)i;
            return 0;
        }
    }
    return -1;
}

void kv_log(enum kv_log_level lvl, const char *fmt, ...)
{
    if ((int)lvl < atomic_load(&g_level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            g_names[lvl], msg);
}
