/* tests/integration/harness.h -- starting and stopping real kvd processes for tests.
 *
 * (1) Every process is started with fork+exec and stopped by its PID, never by name.
 * (2) Ports are picked free on 127.0.0.1 at start; data lives in a fresh mkdtemp directory
 *     that kvd_cleanup removes.
 * (3) The kvd binary comes from the KVD_BIN environment variable (set by ctest). */
#ifndef KV_TESTS_HARNESS_H
#define KV_TESTS_HARNESS_H
#include <stdbool.h>
#include <sys/types.h>

struct kvd_proc {
    pid_t pid;
    int port, http_port;
    char dir[256];
    char addr[64];        /* "127.0.0.1:PORT" for kvc_opts.addrs */
    char extra[8][64];    /* extra flags kept for restarts */
    int n_extra;
};

/* Creates a data dir and starts kvd with extra flags (NULL-terminated, may be NULL); waits
 * until the client port accepts connections. Returns 0 or -1. */
int kvd_start(struct kvd_proc *p, const char *const *extra);
/* Starts the same node again (same dir and ports) after a stop. */
int kvd_restart(struct kvd_proc *p);
/* Sends sig (0: none, just wait) and waits for the process; returns its exit status
 * (or 128+signal). */
int kvd_stop(struct kvd_proc *p, int sig);
/* Stops the process if it still runs (SIGKILL) and removes the data directory. */
void kvd_cleanup(struct kvd_proc *p);
/* One HTTP GET to the node's admin port; *body is malloc'd. Returns the status code or -1. */
int kvd_http_get(const struct kvd_proc *p, const char *path, char **body);
/* A raw TCP connection to the client port (for malformed input); -1 on failure. */
int kvd_connect_raw(const struct kvd_proc *p);
#endif
