/* tests/unit/client_fixture.h -- a scripted fake kvd server on a thread, and the
 * handlers the client suites share (test_client.c, test_client_events.c).
 *
 * fake_start listens on 127.0.0.1 (port 0) and serves one connection at a time on its own
 * thread: the handler reads request frames and writes whatever responses the test scripts
 * (out of order, late, corrupt, or not at all). The client under test is the real library
 * over real sockets, in plain mode (token_aware off: no cluster_status request at connect).
 * The fields of struct fake are read by the test only after fake_stop, or under the
 * protocol of the test, never concurrently with the handler. */
#ifndef KV_TESTS_UNIT_CLIENT_FIXTURE_H
#define KV_TESTS_UNIT_CLIENT_FIXTURE_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kv/client.h"
#include "proto/codec.h"          /* Kv__Request, Kv__Response */

struct fake;
typedef void (*fake_handler)(struct fake *f, int fd);

struct fake {
    int lfd;
    int port;
    pthread_t th;
    atomic_bool stop;
    fake_handler handler;
    int conns;                 /* connections accepted (read after fake_stop) */
    /* scratch shared by handlers and tests (read after fake_stop, or under the protocol
     * of the test, never concurrently) */
    uint64_t ids[16];
    int nids;
    bool put_was_lz4;
    size_t put_wire_len;
    uint8_t *stored;           /* the put's wire value, echoed back by a get */
    size_t stored_len;
    uint32_t stored_raw_len;
    /* h_overload: answer the first `shed` requests OVERLOADED with retry_after_ms, and note
     * when each request arrived and the timeout it carried */
    int shed;
    uint32_t retry_after_ms;
    uint64_t at_ns[64];
    uint32_t timeout_ms[64];
    int seen;
};

/* Starts listening and serving with h; the port is in f->port. */
void fake_start(struct fake *f, fake_handler h);
/* Joins the thread, closes the listener and frees f->stored; f's counters stay readable. */
void fake_stop(struct fake *f);
/* One request frame read from fd (asserting it decodes); NULL when the client went away. */
Kv__Request *fake_read_req(int fd);
/* Writes r as one frame to fd; corrupt flips checksum bits on the way. */
void fake_send_resp(int fd, const Kv__Response *r, bool corrupt);
/* A port on 127.0.0.1 that nothing listens on (bound once, then released). */
int dead_port(void);
/* A connected plain-mode client (connect timeout 1 s); asserts that connecting works. */
struct kvc_client *connect_to(const char *addrs);
struct kvc_client *connect_fake(const struct fake *f);

/* Handlers. Each serves one accepted connection and returns when it is done with it. */
void h_reverse(struct fake *f, int fd);   /* reads 5 gets (ids in f->ids), answers in reverse */
/* First request: answered only after the second one arrives, and before it. */
void h_late(struct fake *f, int fd);
void h_close_after_read(struct fake *f, int fd);   /* reads one request, then hangs up */
void h_echo_get(struct fake *f, int fd);           /* answers every get with "v:" + key */
/* Answers the first request with a bad checksum, then waits for the client to hang up. */
void h_corrupt(struct fake *f, int fd);
/* Put: remember the wire value. Get: answer with it, compressed as it came. */
void h_store(struct fake *f, int fd);
/* Every request fails: gets NOT_FOUND, everything else TIMEOUT with figures. */
void h_errors(struct fake *f, int fd);
/* Reads every request and answers none, until the client hangs up. */
void h_silent(struct fake *f, int fd);
/* Sheds the first f->shed requests (OVERLOADED, f->retry_after_ms), then answers puts OK. */
void h_overload(struct fake *f, int fd);
#endif
