/* tests/integration/harness.c -- fork/exec/kill of kvd processes for integration tests. */
#include "tests/integration/harness.h"
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

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int kvd_connect_raw(const struct kvd_proc *p) { return connect_port(p->port); }

static int spawn(struct kvd_proc *p)
{
    const char *bin = getenv("KVD_BIN");
    if (!bin) {
        fprintf(stderr, "harness: KVD_BIN is not set\n");
        return -1;
    }
    char listen[64], http[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", p->port);
    snprintf(http, sizeof http, "127.0.0.1:%d", p->http_port);
    const char *argv[32] = {bin, "--listen", listen, "--http", http, "--data-dir", p->dir,
                            "--log-level", "warn"};
    int argc = 9;
    for (int i = 0; i < p->n_extra && argc < 31; i++)
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
        int fd = connect_port(p->port);
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

int kvd_start(struct kvd_proc *p, const char *const *extra)
{
    memset(p, 0, sizeof *p);
    strcpy(p->dir, "/tmp/kvd-test-XXXXXX");
    if (!mkdtemp(p->dir))
        return -1;
    for (; extra && *extra && p->n_extra < 8; extra++)
        snprintf(p->extra[p->n_extra++], sizeof p->extra[0], "%s", *extra);
    p->port = free_port();
    p->http_port = free_port();
    snprintf(p->addr, sizeof p->addr, "127.0.0.1:%d", p->port);
    return spawn(p);
}

int kvd_restart(struct kvd_proc *p) { return spawn(p); }

int kvd_stop(struct kvd_proc *p, int sig)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
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
    int fd = connect_port(p->http_port);
    if (fd < 0)
        return -1;
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
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
