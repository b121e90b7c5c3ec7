/* tests/unit/test_client_events.c -- libkvclient driven by the caller's event loop, against
 * the scripted fake server of client_fixture.h: callbacks run inside kvc_poll once per op,
 * kvc_fds + poll(2) + kvc_handle_events send what callbacks submit, ops expire at their
 * deadline even without events (and a short deadline behind a long one), and kvc_fds_epoch
 * moves whenever the set of sockets changes. Plain mode (token_aware off). */
#include <check.h>
#include "tests/check_run.h"
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "common/clock.h"
#include "kv/client.h"
#include "tests/unit/client_fixture.h"

static void count_cb(struct kvc_op *op, void *arg)
{
    (void)op;
    ++*(int *)arg;
}

START_TEST(test_client_callbacks_run_inside_poll_once_per_op)
{
    struct fake f;
    fake_start(&f, h_echo_get);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op ops[4];
    memset(ops, 0, sizeof ops);
    int calls = 0;
    struct kvc_err err;
    for (int i = 0; i < 4; i++) {
        ops[i].type = KVC_OP_GET;
        ops[i].key = "k";
        ops[i].key_len = 1;
        ck_assert_int_eq(kvc_submit(c, &ops[i], count_cb, &calls, &err), KVC_OK);
    }
    ck_assert_uint_eq(kvc_pending(c), 4);
    ck_assert(kvc_want_write(c));
    while (kvc_pending(c))
        ck_assert_int_ge(kvc_poll(c, 1000, &err), 0);
    ck_assert_int_eq(calls, 4);
    for (int i = 0; i < 4; i++)
        kvc_value_free(&ops[i].result);
    ck_assert_int_eq(kvc_poll(c, 0, &err), 0);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

/* The caller's own event loop: one poll(2) over kvc_fds, then kvc_handle_events. */
static int drive_once(struct kvc_client *c, int timeout_ms)
{
    struct pollfd fds[4];
    size_t n = kvc_fds(c, fds, 4);
    ck_assert_uint_le(n, 4);
    ck_assert_int_ge(poll(fds, n, timeout_ms), 0);
    struct kvc_err err;
    return kvc_handle_events(c, fds, n, &err);
}

struct chain {
    struct kvc_client *c;
    struct kvc_op next;
    int calls;
};

/* Submits c->next from inside the first op's callback. */
static void chain_cb(struct kvc_op *op, void *arg)
{
    (void)op;
    struct chain *ch = arg;
    if (ch->calls++ == 0) {
        struct kvc_err err;
        ck_assert_int_eq(kvc_submit(ch->c, &ch->next, chain_cb, ch, &err), KVC_OK);
    }
}

START_TEST(test_client_handle_events_completes_ops_and_sends_what_callbacks_submit)
{
    struct fake f;
    fake_start(&f, h_echo_get);
    struct kvc_client *c = connect_fake(&f);
    struct chain ch = {.c = c, .next = {.type = KVC_OP_GET, .key = "k2", .key_len = 2}};
    struct kvc_op op = {.type = KVC_OP_GET, .key = "k1", .key_len = 2};
    struct kvc_err err;
    ck_assert_int_eq(kvc_submit(c, &op, chain_cb, &ch, &err), KVC_OK);
    ck_assert(kvc_want_write(c));
    /* The first call has nothing to read: it sends the queued request. */
    ck_assert_int_eq(kvc_handle_events(c, NULL, 0, &err), 0);
    ck_assert(!kvc_want_write(c));
    uint64_t until = kv_clock_mono_ns() + 5000000000ull;
    while (!op.done && kv_clock_mono_ns() < until)
        ck_assert_int_ge(drive_once(c, 100), 0);
    ck_assert(op.done);
    ck_assert_msg(op.err.code == KVC_OK, "%s", op.err.msg);
    ck_assert_str_eq((const char *)op.result.data, "v:k1");
    /* The callback's op left before kvc_handle_events returned: no POLLOUT round. */
    ck_assert_uint_eq(kvc_pending(c), 1);
    ck_assert(!kvc_want_write(c));
    while (!ch.next.done && kv_clock_mono_ns() < until)
        ck_assert_int_ge(drive_once(c, 100), 0);
    ck_assert(ch.next.done);
    ck_assert_str_eq((const char *)ch.next.result.data, "v:k2");
    ck_assert_int_eq(ch.calls, 2);
    kvc_value_free(&op.result);
    kvc_value_free(&ch.next.result);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_handle_events_without_events_expires_ops_past_their_deadline)
{
    struct fake f;
    fake_start(&f, h_silent);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op op = {.type = KVC_OP_GET, .key = "k", .key_len = 1};
    op.call.timeout_ms = 50;
    struct kvc_err err;
    int calls = 0;
    uint64_t t0 = kv_clock_mono_ns();
    ck_assert_int_eq(kvc_submit(c, &op, count_cb, &calls, &err), KVC_OK);
    int completed = 0;
    while (!op.done && kv_clock_mono_ns() - t0 < 5000000000ull) {
        completed += kvc_handle_events(c, NULL, 0, &err);
        usleep(5000);
    }
    ck_assert(op.done);
    ck_assert_int_eq(op.err.code, KVC_TIMEOUT);
    ck_assert_ptr_nonnull(strstr(op.err.msg, "outcome unknown"));
    ck_assert_int_eq(completed, 1);
    ck_assert_int_eq(calls, 1);
    ck_assert_uint_ge(kv_clock_mono_ns() - t0, 50000000ull);
    ck_assert_uint_eq(kvc_pending(c), 0);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_short_deadline_behind_a_long_one_expires_on_time)
{
    struct fake f;
    fake_start(&f, h_silent);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op slow = {.type = KVC_OP_GET, .key = "a", .key_len = 1};
    struct kvc_op fast = {.type = KVC_OP_GET, .key = "b", .key_len = 1};
    slow.call.timeout_ms = 3000;
    fast.call.timeout_ms = 50;
    struct kvc_err err;
    uint64_t t0 = kv_clock_mono_ns();
    ck_assert_int_eq(kvc_submit(c, &slow, NULL, NULL, &err), KVC_OK);
    ck_assert_int_eq(kvc_submit(c, &fast, NULL, NULL, &err), KVC_OK);
    while (!fast.done)
        ck_assert_int_ge(kvc_poll(c, -1, &err), 0);
    ck_assert_int_eq(fast.err.code, KVC_TIMEOUT);
    ck_assert_uint_lt(kv_clock_mono_ns() - t0, 1000000000ull);
    ck_assert(!slow.done);
    ck_assert_uint_eq(kvc_pending(c), 1);
    kvc_close(c);   /* slow completes KVC_CONN */
    ck_assert(slow.done);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_fds_epoch_moves_when_a_socket_closes_and_when_one_opens)
{
    struct fake f;
    fake_start(&f, h_close_after_read);
    struct kvc_client *c = connect_fake(&f);
    struct pollfd fds[2];
    ck_assert_uint_eq(kvc_fds(c, fds, 2), 1);
    uint64_t e0 = kvc_fds_epoch(c);
    ck_assert_uint_eq(kvc_fds_epoch(c), e0);   /* nothing happened */
    struct kvc_op op = {.type = KVC_OP_GET, .key = "k", .key_len = 1};
    struct kvc_err err;
    ck_assert_int_eq(kvc_submit(c, &op, NULL, NULL, &err), KVC_OK);
    ck_assert_uint_eq(kvc_fds_epoch(c), e0);   /* same socket */
    uint64_t until = kv_clock_mono_ns() + 5000000000ull;
    while (!op.done && kv_clock_mono_ns() < until)
        drive_once(c, 100);
    ck_assert_int_eq(op.err.code, KVC_CONN);   /* the fake hung up */
    uint64_t e1 = kvc_fds_epoch(c);
    ck_assert_uint_ne(e1, e0);
    ck_assert_uint_eq(kvc_fds(c, fds, 2), 0);
    /* The next op opens a new socket (which may reuse the old number): the epoch moves. */
    struct kvc_op again = {.type = KVC_OP_GET, .key = "k", .key_len = 1};
    ck_assert_int_eq(kvc_submit(c, &again, NULL, NULL, &err), KVC_OK);
    ck_assert_uint_eq(kvc_fds(c, fds, 2), 1);
    ck_assert_uint_ne(kvc_fds_epoch(c), e1);
    while (!again.done && kv_clock_mono_ns() < until)
        drive_once(c, 100);
    ck_assert(again.done);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

static Suite *client_events_suite(void)
{
    Suite *s = suite_create("client_events");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_client_callbacks_run_inside_poll_once_per_op);
    tcase_add_test(tc, test_client_handle_events_completes_ops_and_sends_what_callbacks_submit);
    tcase_add_test(tc, test_client_handle_events_without_events_expires_ops_past_their_deadline);
    tcase_add_test(tc, test_client_short_deadline_behind_a_long_one_expires_on_time);
    tcase_add_test(tc, test_client_fds_epoch_moves_when_a_socket_closes_and_when_one_opens);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kv_check_run(client_events_suite(), true);
}
