/* tests/free_port.h -- a TCP port on one address that nothing holds now, for a test to hand
 * to a kvd it is about to start (or restart on the same port after a crash).
 *
 * Why not bind to port 0: the kernel answers from the ephemeral range (32768-60999 here),
 * the same range it takes local ports from for every outgoing connection, and the suite
 * runs tests in parallel that open thousands of them (test_admission alone 20,000). Between
 * our probe and kvd's bind, or while a crashed kvd is down, one of those connections can
 * take the port, and kvd then fails with "Address already in use" (a CI flake, 2026-12-01).
 * Ports below the ephemeral range are only ever taken by an explicit bind. */
#ifndef KV_TESTS_FREE_PORT_H
#define KV_TESTS_FREE_PORT_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KV_TEST_PORT_LO 20000
#define KV_TEST_PORT_HI 32767   /* below net.ipv4.ip_local_port_range's default start */

/* Returns a port in [KV_TEST_PORT_LO, KV_TEST_PORT_HI] that bound on host (dotted IPv4)
 * just now, or -1 when host is not an address of this machine or 200 tries all failed. */
static inline int kv_test_free_port(const char *host)
{
    static unsigned seed;
    if (!seed)
        seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    struct sockaddr_in a = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -1;
    for (int tries = 0; tries < 200; tries++) {
        int port = KV_TEST_PORT_LO + (int)(rand_r(&seed) % (KV_TEST_PORT_HI - KV_TEST_PORT_LO + 1));
        a.sin_port = htons((uint16_t)port);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return -1;
        int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
        if (rc == 0)
            return port;
    }
    return -1;
}
#endif
