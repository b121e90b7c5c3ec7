/* common/addr.h -- "host:port" parsing shared by the server and the client.
 * Accepts IPv4 ("127.0.0.1:7379"), bracketed IPv6 ("[::1]:7379") and "localhost:7379";
 * no DNS: kvd's addresses are numeric so that start-up never blocks on a resolver. */
#ifndef KV_COMMON_ADDR_H
#define KV_COMMON_ADDR_H
#include <netinet/in.h>
#include <sys/socket.h>
#include "common/status.h"

enum kv_status kv_addr_parse(const char *s, struct sockaddr_storage *out, socklen_t *len,
                             struct kv_err *err);
#endif
