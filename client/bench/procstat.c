/* client/bench/procstat.c -- CPU time of server processes, from /proc (procstat.h). */
#include "client/bench/procstat.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CPU time (user + system) of a process, in clock ticks, from /proc/PID/stat. */
static int64_t proc_cpu_ticks(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');   /* the command name may contain spaces */
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (int64_t)(ut + st);
}

int64_t bench_servers_cpu(const char *pids)
{
    if (!pids)
        return -1;
    int64_t total = 0;
    char *copy = strdup(pids), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int64_t v = proc_cpu_ticks(strtol(tok, NULL, 10));
        if (v < 0) {
            total = -1;
            break;
        }
        total += v;
    }
    free(copy);
    return total;
}

