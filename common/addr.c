/* common/addr.c -- numeric host:port parsing. */
#include "common/addr.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum kv_status kv_addr_parse(const char *s, struct sockaddr_storage *out, socklen_t *len,
                             struct kv_err *err)
{
    char host[64];
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
    if (hl == 0 || hl >= sizeof host)
        return kv_err_set(err, KV_INVALID, "bad host in address '%s'", s);
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || colon[1] == '\0' || port < 0 || port > 65535)
        return kv_err_set(err, KV_INVALID, "bad port in address '%s'", s);
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return KV_OK;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return KV_OK;
    }
    return kv_err_set(err, KV_INVALID, "host '%s' is not a numeric IP address", host);
}
