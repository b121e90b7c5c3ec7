/* tests/integration/harness.h -- starting and stopping real kvd processes for tests.
 *
 * (1) Every process is started with fork+exec and stopped by its PID, never by name.
 * (2) Ports are picked free on the node's host (127.0.0.1 unless kvd_start_on names another
 *     loopback address such as 127.0.0.2) at start; data lives in a fresh mkdtemp
 *     directory that kvd_cleanup removes.
 * (3) The kvd binary comes from the KVD_BIN environment variable (set by ctest); kvd logs
 *     at warn unless KVD_TEST_LOG_LEVEL says otherwise. */
#ifndef KV_TESTS_HARNESS_H
#define KV_TESTS_HARNESS_H
#include <stdbool.h>
#include <sys/types.h>

#define KVD_MAX_EXTRA 32

struct kvd_proc {
    pid_t pid;
    int port, http_port;
    char dir[256];
    char addr[64];        /* "HOST:PORT" for kvc_opts.addrs */
    char extra[KVD_MAX_EXTRA][160];   /* extra flags kept for restarts */
    int n_extra;
    char host[32];        /* "127.0.0.1" unless kvd_start_on chose another */
};

/* Creates a data dir and starts kvd with extra flags (NULL-terminated, may be NULL); waits
 * until the client port accepts connections. Returns 0 or -1. */
int kvd_start(struct kvd_proc *p, const char *const *extra);
/* kvd_start with a 1 MiB ASan quarantine for that kvd only (the caller's ASAN_OPTIONS are
 * restored after the start): in sanitized builds freed memory is otherwise held back and
 * reads as RSS growth, which the RSS-bounding tests must not mistake for kvd's. */
int kvd_start_lean(struct kvd_proc *p, const char *const *extra);
/* Like kvd_start, listening on host (NULL: 127.0.0.1). */
int kvd_start_on(struct kvd_proc *p, const char *host, const char *const *extra);
/* Starts the same node again (same dir, host and ports; p->port may be changed first, see
 * kvd_move) after a stop. */
int kvd_restart(struct kvd_proc *p);
/* Picks a new free client port (and addr) for the next kvd_restart; 0 or -1. */
int kvd_move(struct kvd_proc *p);
/* Replaces the extra flags kept for restarts (NULL-terminated, may be NULL). */
void kvd_set_extra(struct kvd_proc *p, const char *const *extra);
/* Sends sig without waiting (SIGSTOP, SIGCONT); 0 or -1. */
int kvd_signal(struct kvd_proc *p, int sig);
/* True when a socket can be bound to host and connected to (e.g. 127.0.0.2 on Linux). */
bool kvd_host_usable(const char *host);
/* Finds the line of /metrics whose series (name plus labels, exactly as rendered, e.g.
 * "kvd_cluster_hints_pending" or "kvd_cluster_nodes{state=\"up\"}") is series and stores
 * its value; 0, or -1 when the node does not answer or has no such series. */
int kvd_metric(const struct kvd_proc *p, const char *series, double *out);
/* The resident set of process pid (VmRSS of /proc/PID/status) in KiB; -1 when unreadable. */
long kvd_rss_kib(pid_t pid);
/* Sends sig (0: none, just wait) and waits for the process; returns its exit status
 * (or 128+signal). A paused (SIGSTOP) process is continued after sig so it can act on it. */
int kvd_stop(struct kvd_proc *p, int sig);
/* Stops the process if it still runs (SIGKILL) and removes the data directory. */
void kvd_cleanup(struct kvd_proc *p);
/* One HTTP GET to the node's admin port; *body is malloc'd. Returns the status code or -1. */
int kvd_http_get(const struct kvd_proc *p, const char *path, char **body);
/* A raw TCP connection to the client port (for malformed input); -1 on failure. */
int kvd_connect_raw(const struct kvd_proc *p);
#endif
