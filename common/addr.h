/* common/addr.h -- "host:port" addresses shared by the server and the client.
 *
 * Forms: IPv4 ("127.0.0.1:7379"), bracketed IPv6 ("[::1]:7379") and host names
 * ("kvd1:7379", "localhost:7379").
 * (1) kv_addr_parse is numeric only (plus "localhost" as 127.0.0.1) and never touches a
 *     resolver: kvd binds its listeners (listen, http) with it, so start-up never blocks
 *     on DNS and a listener is never bound to whatever a name resolves to today.
 * (2) Addresses of other nodes (seeds, advertise) may be host names: kv_addr_check only
 *     checks their syntax, and server/peer.c resolves them asynchronously
 *     (uv_getaddrinfo) at every connection attempt, so a node that comes back under a new
 *     IP address (a restarted container) is found again. */
#ifndef KV_COMMON_ADDR_H
#define KV_COMMON_ADDR_H
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "common/status.h"

/* Longest host part kv_addr_check accepts (RFC 1035 limit is 253). */
#define KV_ADDR_HOST_MAX 256

/* Splits "host:port" / "[v6]:port" into host (NUL-terminated, brackets removed) and port.
 * KV_INVALID: no port, an empty or too long host (hostsz), a port outside 0..65535. */
enum kv_status kv_addr_split(const char *s, char *host, size_t hostsz, uint16_t *port,
                             struct kv_err *err);
/* 0 and *out filled when host is a numeric IPv4/IPv6 address; -1 otherwise. */
int kv_addr_numeric(const char *host, uint16_t port, struct sockaddr_storage *out,
                    socklen_t *len);
/* Numeric host:port (or localhost:port) to a socket address, see (1). */
enum kv_status kv_addr_parse(const char *s, struct sockaddr_storage *out, socklen_t *len,
                             struct kv_err *err);
/* Syntax of a peer address, see (2): numeric, or a host name of letters, digits, '-',
 * '_' and dots. Resolves nothing. */
enum kv_status kv_addr_check(const char *s, struct kv_err *err);
#endif
