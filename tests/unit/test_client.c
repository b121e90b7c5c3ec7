/* tests/unit/test_client.c -- libkvclient's requests and responses against a scripted fake
 * server on a thread: pipelining and id matching, timeouts and late answers, connection
 * loss and failover, OVERLOADED and its retry pause, lz4 values, server errors, and the
 * consistency and status names.
 *
 * The fake server and its handlers are in client_fixture.c (client_fixture.h); the tests of
 * the caller-driven event loop (kvc_poll callbacks, kvc_fds / kvc_handle_events, deadline
 * expiry, the fds epoch) moved to test_client_events.c. These tests run the client in plain
 * mode (token_aware off: no cluster_status request at connect); routing over a fake
 * cluster is in test_client_routing.c. */
#include <check.h>
#include "tests/check_run.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/clock.h"
#include "kv/client.h"
#include "tests/unit/client_fixture.h"

/* --- tests ------------------------------------------------------------------------------ */

START_TEST(test_client_put_shed_as_overloaded_is_resent_after_the_nodes_pause_until_it_lands)
{
    struct fake f;
    fake_start(&f, h_overload);
    f.shed = 3;                 /* read by the handler only once the client connects */
    f.retry_after_ms = 20;
    struct kvc_client *c = connect_fake(&f);
    struct kvc_call call = {.timeout_ms = 3000};
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "k", 1, "v", 1, &call, &err), KVC_OK);
    kvc_close(c);
    fake_stop(&f);
    ck_assert_int_eq(f.seen, 4);
    for (int i = 1; i < 4; i++) {
        /* at least the node's pause between attempts, and each carries less of the deadline */
        ck_assert_uint_ge(f.at_ns[i] - f.at_ns[i - 1], 20u * 1000000u);
        ck_assert_uint_lt(f.timeout_ms[i], f.timeout_ms[i - 1]);
    }
}
END_TEST

START_TEST(test_client_overloaded_until_the_deadline_answers_overloaded_at_the_deadline)
{
    struct fake f;
    fake_start(&f, h_overload);
    f.shed = 1000;                 /* read by the handler only once the client connects */
    f.retry_after_ms = 30;
    struct kvc_client *c = connect_fake(&f);
    struct kvc_call call = {.timeout_ms = 400};
    struct kvc_err err;
    uint64_t t0 = kv_clock_mono_ns();
    ck_assert_int_eq(kvc_put(c, "k", 1, "v", 1, &call, &err), KVC_OVERLOADED);
    uint64_t took_ms = (kv_clock_mono_ns() - t0) / 1000000u;
    kvc_close(c);
    fake_stop(&f);
    ck_assert_msg(strstr(err.msg, "overloaded"), "message: %s", err.msg);
    ck_assert_int_ge(f.seen, 2);                 /* it did try again */
    ck_assert_int_le(f.seen, 400 / 30 + 1);      /* never sooner than the node asked */
    ck_assert_uint_le(took_ms, 400);             /* and never past the call's deadline */
}
END_TEST

START_TEST(test_client_pipelined_op_shed_as_overloaded_completes_with_the_nodes_hint)
{
    struct fake f;
    fake_start(&f, h_overload);
    f.shed = 1000;                 /* read by the handler only once the client connects */
    f.retry_after_ms = 25;
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op op = {.type = KVC_OP_PUT, .key = "k", .key_len = 1, .value = "v",
                        .value_len = 1};
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, &op, 1, &err), KVC_OK);
    ck_assert_int_eq(op.err.code, KVC_OVERLOADED);
    ck_assert_uint_eq(op.retry_after_ms, 25);
    kvc_close(c);
    fake_stop(&f);
    ck_assert_int_eq(f.seen, 1);                 /* (4): never resent by the library */
}
END_TEST

START_TEST(test_client_pipelined_answers_in_reverse_order_are_matched_by_id)
{
    struct fake f;
    fake_start(&f, h_reverse);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op ops[5];
    char keys[5][8];
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < 5; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        ops[i].type = KVC_OP_GET;
        ops[i].key = keys[i];
        ops[i].key_len = strlen(keys[i]);
    }
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, ops, 5, &err), KVC_OK);
    for (int i = 0; i < 5; i++) {
        char want[16];
        snprintf(want, sizeof want, "v:%s", keys[i]);
        ck_assert(ops[i].done);
        ck_assert_msg(ops[i].err.code == KVC_OK, "op %d: %s", i, ops[i].err.msg);
        ck_assert_str_eq((const char *)ops[i].result.data, want);
        ck_assert_uint_eq(ops[i].result.version, 42);
        kvc_value_free(&ops[i].result);
    }
    ck_assert_uint_eq(kvc_pending(c), 0);
    kvc_close(c);
    fake_stop(&f);
    ck_assert_int_eq(f.nids, 5);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            ck_assert_uint_ne(f.ids[i], f.ids[j]);
}
END_TEST

START_TEST(test_client_op_without_answer_times_out_and_its_late_answer_is_ignored)
{
    struct fake f;
    fake_start(&f, h_late);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op slow = {.type = KVC_OP_GET, .key = "slow", .key_len = 4};
    slow.call.timeout_ms = 100;
    struct kvc_err err;
    ck_assert_int_eq(kvc_submit(c, &slow, NULL, NULL, &err), KVC_OK);
    while (!slow.done)
        ck_assert_int_ge(kvc_poll(c, -1, &err), 0);
    ck_assert_int_eq(slow.err.code, KVC_TIMEOUT);
    ck_assert_ptr_nonnull(strstr(slow.err.msg, "outcome unknown"));
    ck_assert_ptr_null(slow.result.data);

    /* The server now answers "slow" first, then "fast": only "fast" may complete. */
    struct kvc_value v;
    ck_assert_int_eq(kvc_get(c, "fast", 4, &v, NULL, &err), KVC_OK);
    ck_assert_str_eq((const char *)v.data, "v:fast");
    ck_assert_ptr_null(slow.result.data);
    kvc_value_free(&v);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_connection_loss_completes_in_flight_ops_with_conn)
{
    struct fake f;
    fake_start(&f, h_close_after_read);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_op ops[3] = {
        {.type = KVC_OP_PUT, .key = "a", .key_len = 1, .value = "1", .value_len = 1},
        {.type = KVC_OP_GET, .key = "b", .key_len = 1},
        {.type = KVC_OP_DELETE, .key = "c", .key_len = 1},
    };
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, ops, 3, &err), KVC_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(ops[i].err.code, KVC_CONN);
        ck_assert_ptr_nonnull(strstr(ops[i].err.msg, "connection lost; outcome unknown"));
    }
    ck_assert_uint_eq(kvc_pending(c), 0);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_fails_over_to_the_second_address_when_the_first_refuses)
{
    struct fake f;
    fake_start(&f, h_echo_get);
    char addrs[64];
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,127.0.0.1:%d", dead_port(), f.port);
    struct kvc_client *c = connect_to(addrs);
    struct kvc_value v;
    struct kvc_err err;
    ck_assert_int_eq(kvc_get(c, "x", 1, &v, NULL, &err), KVC_OK);
    ck_assert_str_eq((const char *)v.data, "v:x");
    kvc_value_free(&v);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_reconnects_to_the_next_address_after_a_connection_breaks)
{
    struct fake a, b;
    fake_start(&a, h_close_after_read);
    fake_start(&b, h_echo_get);
    char addrs[64];
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,127.0.0.1:%d", a.port, b.port);
    struct kvc_client *c = connect_to(addrs);
    struct kvc_value v;
    struct kvc_err err;
    /* A write whose connection breaks is never resent: its outcome is unknown. */
    ck_assert_int_eq(kvc_put(c, "x", 1, "1", 1, NULL, &err), KVC_CONN);
    ck_assert_ptr_nonnull(strstr(err.msg, "outcome unknown"));
    ck_assert_int_eq(kvc_get(c, "y", 1, &v, NULL, &err), KVC_OK);
    ck_assert_str_eq((const char *)v.data, "v:y");
    kvc_value_free(&v);
    kvc_close(c);
    fake_stop(&a);
    fake_stop(&b);
    ck_assert_int_eq(a.conns, 1);
    ck_assert_int_eq(b.conns, 1);
}
END_TEST

START_TEST(test_client_get_whose_connection_breaks_is_retried_once_on_the_next_address)
{
    struct fake a, b;
    fake_start(&a, h_close_after_read);
    fake_start(&b, h_echo_get);
    char addrs[64];
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,127.0.0.1:%d", a.port, b.port);
    struct kvc_client *c = connect_to(addrs);
    struct kvc_value v;
    struct kvc_err err;
    ck_assert_int_eq(kvc_get(c, "x", 1, &v, NULL, &err), KVC_OK);
    ck_assert_str_eq((const char *)v.data, "v:x");
    kvc_value_free(&v);
    kvc_close(c);
    fake_stop(&a);
    fake_stop(&b);
    ck_assert_int_eq(a.conns, 1);
    ck_assert_int_eq(b.conns, 1);
}
END_TEST

START_TEST(test_client_pipelined_get_whose_connection_breaks_is_not_resent)
{
    struct fake a, b;
    fake_start(&a, h_close_after_read);
    fake_start(&b, h_echo_get);
    char addrs[64];
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,127.0.0.1:%d", a.port, b.port);
    struct kvc_client *c = connect_to(addrs);
    struct kvc_op op = {.type = KVC_OP_GET, .key = "x", .key_len = 1};
    struct kvc_err err;
    ck_assert_int_eq(kvc_exec(c, &op, 1, &err), KVC_OK);
    ck_assert_int_eq(op.err.code, KVC_CONN);
    ck_assert_ptr_nonnull(strstr(op.err.msg, "connection lost"));
    /* Resubmitting is the caller's choice; it goes past the failed address. */
    ck_assert_int_eq(kvc_exec(c, &op, 1, &err), KVC_OK);
    ck_assert_int_eq(op.err.code, KVC_OK);
    ck_assert_str_eq((const char *)op.result.data, "v:x");
    kvc_value_free(&op.result);
    kvc_close(c);
    fake_stop(&a);
    fake_stop(&b);
}
END_TEST

START_TEST(test_client_connect_fails_with_conn_when_no_address_answers)
{
    char addrs[64];
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,127.0.0.1:%d", dead_port(), dead_port());
    struct kvc_opts o;
    kvc_opts_default(&o);
    o.addrs = addrs;
    struct kvc_client *c = (struct kvc_client *)1;
    struct kvc_err err;
    ck_assert_int_eq(kvc_connect(&o, &c, &err), KVC_CONN);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(err.code, KVC_CONN);
    ck_assert_ptr_nonnull(strstr(err.msg, "2 addresses"));
}
END_TEST

START_TEST(test_client_response_with_a_bad_checksum_closes_the_connection_with_proto)
{
    struct fake f;
    fake_start(&f, h_corrupt);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_value v;
    struct kvc_err err;
    ck_assert_int_eq(kvc_get(c, "k", 1, &v, NULL, &err), KVC_PROTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "checksum"));
    ck_assert_int_eq(kvc_fd(c), -1);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_rejects_empty_and_oversized_keys_before_sending)
{
    struct fake f;
    fake_start(&f, h_echo_get);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "", 0, "v", 1, NULL, &err), KVC_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "key is empty"));
    static char big[KVC_MAX_KEY + 1];
    memset(big, 'k', sizeof big);
    struct kvc_value v;
    ck_assert_int_eq(kvc_get(c, big, sizeof big, &v, NULL, &err), KVC_TOO_LARGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "4096"));
    ck_assert_ptr_null(v.data);
    ck_assert_int_eq(kvc_delete(c, NULL, 3, NULL, &err), KVC_INVALID);
    struct kvc_scan_args sa = {.start = big, .start_len = sizeof big};
    struct kvc_scan_result sr;
    ck_assert_int_eq(kvc_scan(c, &sa, NULL, &sr, &err), KVC_TOO_LARGE);
    ck_assert_uint_eq(kvc_pending(c), 0);
    /* A key of exactly the limit is fine. */
    ck_assert_int_eq(kvc_get(c, big, KVC_MAX_KEY, &v, NULL, &err), KVC_OK);
    kvc_value_free(&v);
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_large_compressible_value_travels_lz4_and_comes_back_intact)
{
    struct fake f;
    fake_start(&f, h_store);
    struct kvc_client *c = connect_fake(&f);
    size_t n = 200000;
    uint8_t *val = malloc(n);
    for (size_t i = 0; i < n; i++)
        val[i] = (uint8_t)("abcdefgh"[i % 8] + (i / 5000) % 3);
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "big", 3, val, n, NULL, &err), KVC_OK);
    struct kvc_value v;
    ck_assert_int_eq(kvc_get(c, "big", 3, &v, NULL, &err), KVC_OK);
    ck_assert_uint_eq(v.len, n);
    ck_assert_int_eq(memcmp(v.data, val, n), 0);
    ck_assert_uint_eq(v.data[n], 0);
    kvc_value_free(&v);
    kvc_close(c);
    fake_stop(&f);
    ck_assert(f.put_was_lz4);
    ck_assert_uint_lt(f.put_wire_len, n / 4);
    free(val);
}
END_TEST

START_TEST(test_client_small_values_travel_uncompressed)
{
    struct fake f;
    fake_start(&f, h_store);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_err err;
    ck_assert_int_eq(kvc_put(c, "k", 1, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 32, NULL, &err), KVC_OK);
    kvc_close(c);
    fake_stop(&f);
    ck_assert(!f.put_was_lz4);
    ck_assert_uint_eq(f.put_wire_len, 32);
}
END_TEST

START_TEST(test_client_server_errors_carry_the_message_and_replica_figures)
{
    struct fake f;
    fake_start(&f, h_errors);
    struct kvc_client *c = connect_fake(&f);
    struct kvc_err err;
    struct kvc_value v = {.len = 7};
    ck_assert_int_eq(kvc_get(c, "k", 1, &v, NULL, &err), KVC_NOT_FOUND);
    ck_assert_ptr_null(v.data);
    ck_assert_uint_eq(v.len, 0);
    ck_assert_str_eq(err.msg, "key not found");
    ck_assert_int_eq(kvc_put(c, "k", 1, "v", 1, NULL, &err), KVC_TIMEOUT);
    ck_assert_str_eq(err.msg, "write timed out (acks 1, required 2)");
    kvc_close(c);
    fake_stop(&f);
}
END_TEST

START_TEST(test_client_consistency_names_parse_case_insensitively)
{
    enum kvc_consistency cl = KVC_CL_DEFAULT;
    ck_assert_int_eq(kvc_consistency_parse("QUORUM", &cl), 0);
    ck_assert_int_eq(cl, KVC_CL_QUORUM);
    ck_assert_int_eq(kvc_consistency_parse("local_quorum", &cl), 0);
    ck_assert_int_eq(cl, KVC_CL_LOCAL_QUORUM);
    ck_assert_int_eq(kvc_consistency_parse("Each-Quorum", &cl), 0);
    ck_assert_int_eq(cl, KVC_CL_EACH_QUORUM);
    ck_assert_int_eq(kvc_consistency_parse("linearizable", &cl), 0);
    ck_assert_int_eq(cl, KVC_CL_LINEARIZABLE);
    ck_assert_int_eq(kvc_consistency_parse("one", &cl), 0);
    ck_assert_int_eq(cl, KVC_CL_ONE);
    ck_assert_int_eq(kvc_consistency_parse("most", &cl), -1);
    ck_assert_int_eq(kvc_consistency_parse("", &cl), -1);
    ck_assert_int_eq(cl, KVC_CL_ONE);
    ck_assert_str_eq(kvc_consistency_name(KVC_CL_LOCAL_ONE), "local_one");
    ck_assert_str_eq(kvc_status_name(KVC_NOT_FOUND), "NOT_FOUND");
    ck_assert_str_eq(kvc_status_name(12345), "UNKNOWN");
}
END_TEST

static Suite *client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_client_pipelined_answers_in_reverse_order_are_matched_by_id);
    tcase_add_test(tc, test_client_op_without_answer_times_out_and_its_late_answer_is_ignored);
    tcase_add_test(tc, test_client_connection_loss_completes_in_flight_ops_with_conn);
    tcase_add_test(tc, test_client_fails_over_to_the_second_address_when_the_first_refuses);
    tcase_add_test(tc, test_client_reconnects_to_the_next_address_after_a_connection_breaks);
    tcase_add_test(tc, test_client_get_whose_connection_breaks_is_retried_once_on_the_next_address);
    tcase_add_test(tc, test_client_pipelined_get_whose_connection_breaks_is_not_resent);
    tcase_add_test(tc, test_client_connect_fails_with_conn_when_no_address_answers);
    tcase_add_test(tc, test_client_response_with_a_bad_checksum_closes_the_connection_with_proto);
    tcase_add_test(tc, test_client_rejects_empty_and_oversized_keys_before_sending);
    tcase_add_test(tc, test_client_large_compressible_value_travels_lz4_and_comes_back_intact);
    tcase_add_test(tc, test_client_small_values_travel_uncompressed);
    tcase_add_test(tc, test_client_server_errors_carry_the_message_and_replica_figures);
    tcase_add_test(tc, test_client_consistency_names_parse_case_insensitively);
    tcase_add_test(tc, test_client_put_shed_as_overloaded_is_resent_after_the_nodes_pause_until_it_lands);
    tcase_add_test(tc, test_client_overloaded_until_the_deadline_answers_overloaded_at_the_deadline);
    tcase_add_test(tc, test_client_pipelined_op_shed_as_overloaded_completes_with_the_nodes_hint);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kv_check_run(client_suite(), true);
}
