/* tests/unit/test_common.c -- HLC, versions, address parsing, server settings. */
#include <check.h>
#include "tests/check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/addr.h"
#include "common/hlc.h"
#include "common/version.h"
#include "server/config.h"

START_TEST(test_hlc_never_repeats_or_goes_back_when_the_wall_clock_does)
{
    struct kv_hlc c;
    kv_hlc_init(&c);
    uint64_t a = kv_hlc_now(&c, 1000);
    uint64_t b = kv_hlc_now(&c, 1000);
    uint64_t d = kv_hlc_now(&c, 900);   /* wall clock stepped back */
    ck_assert(b > a && d > b);
    ck_assert_uint_eq(kv_hlc_ms(d), 1000);
    uint64_t e = kv_hlc_now(&c, 2000);
    ck_assert_uint_eq(e, kv_hlc_make(2000, 0));
}
END_TEST

START_TEST(test_hlc_moves_past_an_observed_remote_stamp)
{
    struct kv_hlc c;
    kv_hlc_init(&c);
    kv_hlc_observe(&c, kv_hlc_make(5000, 3));
    uint64_t t = kv_hlc_now(&c, 1000);
    ck_assert(t > kv_hlc_make(5000, 3));
    kv_hlc_observe(&c, kv_hlc_make(10, 0));   /* an older stamp changes nothing */
    ck_assert(kv_hlc_now(&c, 1000) > t);
}
END_TEST

START_TEST(test_versions_order_by_timestamp_then_node)
{
    struct kv_version a = {10, 1}, b = {10, 2}, c = {11, 0};
    ck_assert_int_lt(kv_version_cmp(a, b), 0);
    ck_assert_int_lt(kv_version_cmp(b, c), 0);
    ck_assert_int_eq(kv_version_cmp(a, a), 0);
}
END_TEST

START_TEST(test_addresses_parse_v4_v6_and_localhost_and_refuse_garbage)
{
    struct sockaddr_storage sa;
    socklen_t len;
    ck_assert_int_eq(kv_addr_parse("127.0.0.2:7379", &sa, &len, NULL), KV_OK);
    ck_assert_int_eq(sa.ss_family, AF_INET);
    ck_assert_int_eq(kv_addr_parse("[::1]:1", &sa, &len, NULL), KV_OK);
    ck_assert_int_eq(sa.ss_family, AF_INET6);
    ck_assert_int_eq(kv_addr_parse("localhost:80", &sa, &len, NULL), KV_OK);
    const char *bad[] = {"", "127.0.0.1", "127.0.0.1:", ":80", "1.2.3.4:99999", "host:1",
                         "[::1]80", "1.2.3.4:8x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(kv_addr_parse(bad[i], &sa, &len, NULL) == KV_INVALID, "%s", bad[i]);
}
END_TEST

START_TEST(test_flags_override_the_config_file_wherever_they_appear)
{
    char path[] = "/tmp/kvd-conf-XXXXXX";
    int fd = mkstemp(path);
    const char *ini = "[storage]\nsync = always\nmax_value = 2048\n[net]\nlisten = 127.0.0.1:9\n";
    ck_assert_int_eq(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
    close(fd);
    struct kv_config c;
    kv_config_default(&c);
    char *argv[] = {"kvd", "--max-value", "4096", "--config", path, "--node-id=7", NULL};
    bool help;
    struct kv_err err;
    ck_assert_int_eq(kv_config_parse_args(&c, 6, argv, &help, &err), KV_OK);
    ck_assert(!help);
    ck_assert_int_eq(c.sync, KV_SYNC_ALWAYS);
    ck_assert_uint_eq(c.max_value, 4096);
    ck_assert_uint_eq(c.node_id, 7);
    ck_assert_str_eq(c.listen, "127.0.0.1:9");
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_OK);
    unlink(path);
}
END_TEST

START_TEST(test_bad_settings_are_refused_with_the_setting_named)
{
    struct kv_config c;
    kv_config_default(&c);
    struct kv_err err;
    ck_assert_int_eq(kv_config_set(&c, "no_such", "1", &err), KV_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "no_such"));
    ck_assert_int_eq(kv_config_set(&c, "max_value", "-5", &err), KV_INVALID);
    ck_assert_int_eq(kv_config_set(&c, "sync", "sometimes", &err), KV_INVALID);
    ck_assert_int_eq(kv_config_set(&c, "max-value", "99999999", &err), KV_OK);
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "max_frame"));
    char *argv[] = {"kvd", "--config", "/nonexistent/kvd.conf", NULL};
    bool help;
    ck_assert_int_eq(kv_config_parse_args(&c, 3, argv, &help, &err), KV_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/kvd.conf"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common");
    TCase *t = tcase_create("common");
    tcase_add_test(t, test_hlc_never_repeats_or_goes_back_when_the_wall_clock_does);
    tcase_add_test(t, test_hlc_moves_past_an_observed_remote_stamp);
    tcase_add_test(t, test_versions_order_by_timestamp_then_node);
    tcase_add_test(t, test_addresses_parse_v4_v6_and_localhost_and_refuse_garbage);
    tcase_add_test(t, test_flags_override_the_config_file_wherever_they_appear);
    tcase_add_test(t, test_bad_settings_are_refused_with_the_setting_named);
    suite_add_tcase(s, t);
    return kv_check_run(s, true);
}
