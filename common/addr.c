/* common/addr.c -- host:port splitting, numeric parsing, and the syntax check for names. */
#include "common/addr.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum kv_status kv_addr_split(const char *s, char *host, size_t hostsz, uint16_t *port,
                             struct kv_err *err)
{
    const char *colon, *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return kv_err_set(err, KV_INVALID, "bad address '%s' (want [v6addr]:port)", s);
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return kv_err_set(err, KV_INVALID, "bad address '%s' (want host:port)", s);
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostsz)
        return kv_err_set(err, KV_INVALID, "bad host in address '%s'", s);
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || *end || colon[1] == '\0' || colon[1] == '-' || colon[1] == '+' || p < 0 ||
        p > 65535)
        return kv_err_set(err, KV_INVALID, "bad port in address '%s'", s);
    *port = (uint16_t)p;
    return KV_OK;
}

int kv_addr_numeric(const char *host, uint16_t port, struct sockaddr_storage *out,
                    socklen_t *len)
{
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return 0;
    }
    return -1;
}

enum kv_status kv_addr_parse(const char *s, struct sockaddr_storage *out, socklen_t *len,
                             struct kv_err *err)
{
    char host[64];
    uint16_t port;
    enum kv_status st = kv_addr_split(s, host, sizeof host, &port, err);
    if (st != KV_OK)
        return st;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (kv_addr_numeric(host, port, out, len) == 0)
        return KV_OK;
    return kv_err_set(err, KV_INVALID, "host '%s' is not a numeric IP address", host);
}

/* RFC 1123 host names: dot-separated labels of letters, digits and '-' (not first or last
 * in a label), 1..63 bytes each; '_' is tolerated because container and service names may
 * carry it (Docker Compose project prefixes). */
static bool valid_hostname(const char *h)
{
    size_t label = 0;
    char prev = '.';
    for (const char *p = h; *p; p++) {
        char c = *p;
        if (c == '.') {
            if (label == 0 || prev == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || (c == '-' && label > 0)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
        prev = c;
    }
    return label > 0 && prev != '-';
}

enum kv_status kv_addr_check(const char *s, struct kv_err *err)
{
    char host[KV_ADDR_HOST_MAX];
    uint16_t port;
    enum kv_status st = kv_addr_split(s, host, sizeof host, &port, err);
    if (st != KV_OK)
        return st;
    struct sockaddr_storage sa;
    socklen_t len;
    if (kv_addr_numeric(host, port, &sa, &len) == 0)
        return KV_OK;
    if (s[0] == '[')
        return kv_err_set(err, KV_INVALID, "'%s' is not an IPv6 address", host);
    if (!valid_hostname(host))
        return kv_err_set(err, KV_INVALID, "host '%s' in '%s' is neither an IP address nor a "
                          "host name", host, s);
    return KV_OK;
}
