/* tests/integration/harness.c -- fork/exec/kill of kvd processes for integration tests. */
#include "tests/integration/harness.h"
#include "tests/free_port.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *host_of(const struct kvd_proc *p)
{
    return p->host[0] ? p->host : "127.0.0.1";
}

static int free_port_on(const char *host) { return kv_test_free_port(host); }

static int connect_to(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int kvd_connect_raw(const struct kvd_proc *p) { return connect_to(host_of(p), p->port); }

bool kvd_host_usable(const char *host)
{
    int port = free_port_on(host);
    if (port < 0)
        return false;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool ok = l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0;
    if (ok) {
        int c = connect_to(host, port);
        ok = c >= 0;
        if (c >= 0)
            close(c);
    }
    if (l >= 0)
        close(l);
    return ok;
}

static int spawn(struct kvd_proc *p)
{
    const char *bin = getenv("KVD_BIN");
    if (!bin) {
        fprintf(stderr, "harness: KVD_BIN is not set\n");
        return -1;
    }
    char listen[64], http[64];
    snprintf(listen, sizeof listen, "%s:%d", host_of(p), p->port);
    snprintf(http, sizeof http, "%s:%d", host_of(p), p->http_port);
    const char *level = getenv("KVD_TEST_LOG_LEVEL");   /* e.g. debug, to chase a failure */
    const char *argv[KVD_MAX_EXTRA + 12] = {bin, "--listen", listen, "--http", http,
                                            "--data-dir", p->dir, "--log-level",
                                            level && *level ? level : "warn"};
    int argc = 9;
    for (int i = 0; i < p->n_extra && argc < KVD_MAX_EXTRA + 11; i++)
        argv[argc++] = p->extra[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    p->pid = pid;
    for (int i = 0; i < 1000; i++) {   /* up to 10 s: sanitizer builds start slowly */
        int fd = connect_to(host_of(p), p->port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "harness: kvd exited during start-up (status %d)\n", st);
            p->pid = 0;
            return -1;
        }
        usleep(10000);
    }
    fprintf(stderr, "harness: kvd did not open port %d\n", p->port);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    p->pid = 0;
    return -1;
}

void kvd_set_extra(struct kvd_proc *p, const char *const *extra)
{
    p->n_extra = 0;
    for (; extra && *extra && p->n_extra < KVD_MAX_EXTRA; extra++)
        snprintf(p->extra[p->n_extra++], sizeof p->extra[0], "%s", *extra);
}

int kvd_start_on(struct kvd_proc *p, const char *host, const char *const *extra)
{
    memset(p, 0, sizeof *p);
    snprintf(p->host, sizeof p->host, "%s", host ? host : "127.0.0.1");
    strcpy(p->dir, "/tmp/kvd-test-XXXXXX");
    if (!mkdtemp(p->dir)) {
        p->dir[0] = '\0';
        return -1;
    }
    kvd_set_extra(p, extra);
    p->port = free_port_on(p->host);
    p->http_port = free_port_on(p->host);
    while (p->http_port == p->port && p->port > 0)
        p->http_port = free_port_on(p->host);
    if (p->port < 0 || p->http_port < 0)
        return -1;
    snprintf(p->addr, sizeof p->addr, "%s:%d", p->host, p->port);
    return spawn(p);
}

int kvd_start(struct kvd_proc *p, const char *const *extra)
{
    return kvd_start_on(p, NULL, extra);
}

int kvd_restart(struct kvd_proc *p) { return spawn(p); }

int kvd_move(struct kvd_proc *p)
{
    int port = free_port_on(host_of(p));
    while (port == p->port || port == p->http_port)
        port = free_port_on(host_of(p));
    if (port < 0)
        return -1;
    p->port = port;
    snprintf(p->addr, sizeof p->addr, "%s:%d", host_of(p), p->port);
    return 0;
}

int kvd_signal(struct kvd_proc *p, int sig)
{
    if (p->pid <= 0)
        return -1;
    return kill(p->pid, sig);
}

int kvd_stop(struct kvd_proc *p, int sig)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    if (sig && sig != SIGKILL && sig != SIGSTOP)
        kill(p->pid, SIGCONT);
    int st = 0;
    while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR) {
    }
    p->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void kvd_cleanup(struct kvd_proc *p)
{
    if (p->pid > 0)
        kvd_stop(p, SIGKILL);
    if (p->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", p->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "harness: could not remove %s\n", p->dir);
        p->dir[0] = '\0';
    }
}

int kvd_http_get(const struct kvd_proc *p, const char *path, char **body)
{
    *body = NULL;
    int fd = connect_to(host_of(p), p->http_port);
    if (fd < 0)
        return -1;
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path,
                     host_of(p));
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    int code = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
        code = -1;
    char *b = strstr(buf, "\r\n\r\n");
    *body = strdup(b ? b + 4 : "");
    free(buf);
    return code;
}

int kvd_start_lean(struct kvd_proc *p, const char *const *extra)
{
    const char *prev = getenv("ASAN_OPTIONS");
    char *saved = prev ? strdup(prev) : NULL;
    char opts[512];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=1", prev ? prev : "", prev ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    int rc = kvd_start(p, extra);
    if (saved) {
        setenv("ASAN_OPTIONS", saved, 1);
        free(saved);
    } else {
        unsetenv("ASAN_OPTIONS");
    }
    return rc;
}

long kvd_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

int kvd_metric(const struct kvd_proc *p, const char *series, double *out)
{
    char *body = NULL;
    if (kvd_http_get(p, "/metrics", &body) != 200) {
        free(body);
        return -1;
    }
    size_t n = strlen(series);
    int rc = -1;
    for (char *line = body; line && *line;) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            *out = strtod(line + n + 1, NULL);
            rc = 0;
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(body);
    return rc;
}
