/* tests/unit/test_config.c -- kvd's cluster settings: seeds, tokens, levels, the test-only
 * debug gate, and the three sources (defaults, INI file, flags) agreeing. */
#include <check.h>
#include "tests/check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "server/config.h"

static struct kv_config cfg_with(const char *name, const char *value)
{
    struct kv_config c;
    kv_config_default(&c);
    struct kv_err err = {0};
    ck_assert_msg(kv_config_set(&c, name, value, &err) == KV_OK, "%s = %s: %s", name, value,
                  err.msg);
    return c;
}

/* --- seeds ----------------------------------------------------------------------------- */

START_TEST(test_seeds_are_split_on_commas_trimmed_and_empty_entries_skipped)
{
    const char *spec = " 127.0.0.1:7379,\t10.0.0.2:7380 ,, [::1]:7381 ";
    char buf[128];
    const char *out[9];
    size_t n = 99;
    struct kv_err err = {0};
    ck_assert_int_eq(kv_config_seeds(spec, buf, out, 8, &n, &err), KV_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(out[0], "127.0.0.1:7379");
    ck_assert_str_eq(out[1], "10.0.0.2:7380");
    ck_assert_str_eq(out[2], "[::1]:7381");
    ck_assert_ptr_null(out[3]);
}
END_TEST

START_TEST(test_an_empty_seeds_setting_is_a_cluster_of_one)
{
    char buf[8];
    const char *out[3];
    size_t n = 99;
    ck_assert_int_eq(kv_config_seeds("", buf, out, 2, &n, NULL), KV_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(out[0]);
    ck_assert_int_eq(kv_config_seeds(" , ,", buf, out, 2, &n, NULL), KV_OK);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_a_seed_without_a_port_or_too_many_seeds_are_refused)
{
    char buf[128];
    const char *out[3];
    size_t n;
    struct kv_err err = {0};
    ck_assert_int_eq(kv_config_seeds("127.0.0.1", buf, out, 2, &n, &err), KV_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "seeds"));
    ck_assert_int_eq(kv_config_seeds("127.0.0.1:99999", buf, out, 2, &n, &err), KV_INVALID);
    ck_assert_int_eq(kv_config_seeds("1.1.1.1:1,2.2.2.2:2,3.3.3.3:3", buf, out, 2, &n, &err),
                     KV_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "more than 2"));
    /* validate runs the same parser on the setting. */
    struct kv_config c = cfg_with("seeds", "10.0.0.1:7379,nonsense");
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_INVALID);
    c = cfg_with("seeds", "10.0.0.1:7379, 10.0.0.2:7379");
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_OK);
}
END_TEST

/* --- tokens ---------------------------------------------------------------------------- */

static size_t tokens(const char *spec, struct kv_slice *out, uint8_t *buf, enum kv_status want)
{
    size_t n = 0;
    struct kv_err err = {0};
    enum kv_status st = kv_config_tokens(spec, buf, out, &n, &err);
    ck_assert_msg(st == want, "tokens '%s': %d (%s), want %d", spec, st, err.msg, want);
    return n;
}

static bool tok_is(struct kv_slice t, const void *bytes, size_t len)
{
    return t.len == len && memcmp(t.ptr, bytes, len) == 0;
}

START_TEST(test_tokens_are_split_on_commas_with_hex_escapes_for_any_byte)
{
    static struct kv_slice t[KV_CONFIG_MAX_TOKENS];
    static uint8_t buf[4096];
    ck_assert_uint_eq(tokens("user:2,user:5,user:8", t, buf, KV_OK), 3);
    ck_assert(tok_is(t[0], "user:2", 6) && tok_is(t[1], "user:5", 6) && tok_is(t[2], "user:8", 6));
    ck_assert_uint_eq(tokens("a\\x00b,\\xff,\\x7F\\x80", t, buf, KV_OK), 3);
    ck_assert(tok_is(t[0], "a\0b", 3));
    ck_assert(tok_is(t[1], "\xff", 1));
    ck_assert(tok_is(t[2], "\x7f\x80", 2));
    /* \, and \\ put a comma or a backslash inside a token. */
    ck_assert_uint_eq(tokens("x\\,y,back\\\\slash", t, buf, KV_OK), 2);
    ck_assert(tok_is(t[0], "x,y", 3));
    ck_assert(tok_is(t[1], "back\\slash", 10));
    ck_assert_uint_eq(tokens("", t, buf, KV_OK), 0);
}
END_TEST

START_TEST(test_bad_escapes_empty_and_overlong_tokens_are_refused)
{
    static struct kv_slice t[KV_CONFIG_MAX_TOKENS];
    static uint8_t buf[4096];
    tokens("a\\xZZ", t, buf, KV_INVALID);
    tokens("a\\x4", t, buf, KV_INVALID);
    tokens("a\\q", t, buf, KV_INVALID);
    tokens("a\\", t, buf, KV_INVALID);
    tokens("a,,b", t, buf, KV_INVALID);
    tokens("a,", t, buf, KV_INVALID);
    char longtok[KV_CONFIG_MAX_TOKEN_LEN + 2];
    memset(longtok, 'k', sizeof longtok - 1);
    longtok[sizeof longtok - 1] = '\0';
    tokens(longtok, t, buf, KV_INVALID);                       /* 257 bytes */
    longtok[KV_CONFIG_MAX_TOKEN_LEN] = '\0';
    ck_assert_uint_eq(tokens(longtok, t, buf, KV_OK), 1);      /* 256 bytes */
    /* \xNN counts as one byte towards the limit. */
    struct kv_config c = cfg_with("tokens", "ok,\\xGG");
    struct kv_err err = {0};
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "escape"));
}
END_TEST

/* --- levels ---------------------------------------------------------------------------- */

START_TEST(test_levels_parse_case_insensitively_with_dash_or_underscore)
{
    unsigned l = 99;
    ck_assert_int_eq(kv_config_level_parse("one", &l), 0);
    ck_assert_uint_eq(l, 1);
    ck_assert_int_eq(kv_config_level_parse("QUORUM", &l), 0);
    ck_assert_uint_eq(l, 4);
    ck_assert_int_eq(kv_config_level_parse("All", &l), 0);
    ck_assert_uint_eq(l, 5);
    ck_assert_int_eq(kv_config_level_parse("local-quorum", &l), 0);
    ck_assert_uint_eq(l, 7);
    ck_assert_int_eq(kv_config_level_parse("each_quorum", &l), 0);
    ck_assert_uint_eq(l, 8);
    ck_assert_int_eq(kv_config_level_parse("quorumx", &l), -1);
    ck_assert_int_eq(kv_config_level_parse("", &l), -1);
    ck_assert_str_eq(kv_config_level_name(3), "three");
    ck_assert_str_eq(kv_config_level_name(99), "unknown");
}
END_TEST

START_TEST(test_default_consistency_takes_a_level_and_refuses_default)
{
    struct kv_config c;
    kv_config_default(&c);
    ck_assert_uint_eq(c.default_consistency, 4);   /* QUORUM */
    ck_assert_uint_eq(c.replication_factor, 3);
    c = cfg_with("default-consistency", "one");
    ck_assert_uint_eq(c.default_consistency, 1);
    struct kv_err err = {0};
    ck_assert_int_eq(kv_config_set(&c, "default_consistency", "most", &err), KV_INVALID);
    c = cfg_with("default_consistency", "default");
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_INVALID);
    c = cfg_with("replication_factor", "0");
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_INVALID);
    c = cfg_with("replication_factor", "5");
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_OK);
}
END_TEST

/* A version's node field holds the node id in 16 bits (cluster/cluster.c (6)). */
START_TEST(test_node_ids_are_1_to_65535)
{
    struct kv_err err = {0};
    struct kv_config c = cfg_with("node_id", "65535");
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_OK);
    c = cfg_with("node_id", "65536");
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "1..65535"));
    c = cfg_with("node_id", "0");
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_INVALID);
}
END_TEST

/* --- the test-only debug gate -------------------------------------------------------------- */

START_TEST(test_a_clock_offset_without_debug_is_refused)
{
    struct kv_config c = cfg_with("debug_clock_offset_ms", "-3000");
    ck_assert_int_eq(c.debug_clock_offset_ms, -3000);
    ck_assert(!c.debug);
    struct kv_err err = {0};
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "debug = true"));
    ck_assert_int_eq(kv_config_set(&c, "debug", "true", &err), KV_OK);
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_OK);
    /* debug alone changes nothing, and an offset of 0 needs no debug. */
    c = cfg_with("debug", "yes");
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_OK);
    c = cfg_with("debug_clock_offset_ms", "0");
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_OK);
}
END_TEST

START_TEST(test_skipping_the_linearizable_write_back_without_debug_is_refused)
{
    struct kv_config c = cfg_with("debug_skip_writeback", "true");
    ck_assert(c.debug_skip_writeback);
    struct kv_err err = {0};
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "debug = true"));
    ck_assert_int_eq(kv_config_set(&c, "debug", "true", &err), KV_OK);
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_OK);
    ck_assert(!cfg_with("debug", "true").debug_skip_writeback);    /* never by default */
}
END_TEST

START_TEST(test_answering_linearizable_reads_from_one_replica_without_debug_is_refused)
{
    struct kv_config c = cfg_with("debug_linear_read_one", "true");
    ck_assert(c.debug_linear_read_one);
    struct kv_err err = {0};
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_INVALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "debug_linear_read_one"));
    ck_assert_ptr_nonnull(strstr(err.msg, "debug = true"));
    ck_assert_int_eq(kv_config_set(&c, "debug", "true", &err), KV_OK);
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_OK);
    ck_assert(!cfg_with("debug", "true").debug_linear_read_one);   /* never by default */
    ck_assert_int_eq(kv_config_set(&c, "debug_linear_read_one", "perhaps", &err), KV_INVALID);
}
END_TEST

START_TEST(test_debug_settings_reject_bad_values)
{
    struct kv_config c;
    kv_config_default(&c);
    ck_assert(!c.debug);
    ck_assert_int_eq(c.debug_clock_offset_ms, 0);
    struct kv_err err = {0};
    ck_assert_int_eq(kv_config_set(&c, "debug", "maybe", &err), KV_INVALID);
    ck_assert_int_eq(kv_config_set(&c, "debug_clock_offset_ms", "3s", &err), KV_INVALID);
    ck_assert_int_eq(kv_config_set(&c, "debug_clock_offset_ms", "", &err), KV_INVALID);
    ck_assert_int_eq(kv_config_set(&c, "debug_clock_offset_ms", "86400001", &err), KV_INVALID);
    ck_assert_int_eq(kv_config_set(&c, "debug_clock_offset_ms", "-86400000", &err), KV_OK);
    ck_assert_int_eq(c.debug_clock_offset_ms, -86400000);
    ck_assert_int_eq(kv_config_set(&c, "debug_clock_offset_ms", "+3000", &err), KV_OK);
    ck_assert_int_eq(c.debug_clock_offset_ms, 3000);
    ck_assert_int_eq(kv_config_set(&c, "debug", "off", &err), KV_OK);
    ck_assert(!c.debug);
}
END_TEST

/* --- sources --------------------------------------------------------------------------- */

START_TEST(test_flags_override_the_ini_file_for_cluster_settings)
{
    char path[] = "/tmp/kvd-config-test-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("node_id = 2\n[cluster]\nseeds = 10.0.0.1:7379\nregion = eu-west\n"
          "tokens = user:2,user\\x3a5\ndefault_consistency = all\n"
          "debug_clock_offset_ms = 1500\n", f);
    fclose(f);
    char *argv[] = {"kvd", "--config", path, "--default-consistency=one", "--debug", "true",
                    "--debug-clock-offset-ms=-250", NULL};
    struct kv_config c;
    kv_config_default(&c);
    bool help = true;
    struct kv_err err = {0};
    ck_assert_msg(kv_config_parse_args(&c, 7, argv, &help, &err) == KV_OK, "%s", err.msg);
    unlink(path);
    ck_assert(!help);
    ck_assert_uint_eq(c.node_id, 2);
    ck_assert_str_eq(c.seeds, "10.0.0.1:7379");
    ck_assert_str_eq(c.region, "eu-west");
    ck_assert_uint_eq(c.default_consistency, 1);
    ck_assert(c.debug);
    ck_assert_int_eq(c.debug_clock_offset_ms, -250);
    static struct kv_slice t[KV_CONFIG_MAX_TOKENS];
    static uint8_t buf[4096];
    ck_assert_uint_eq(tokens(c.tokens, t, buf, KV_OK), 2);
    ck_assert(tok_is(t[1], "user:5", 6));
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_OK);
}
END_TEST

START_TEST(test_a_config_file_with_a_lone_clock_offset_does_not_validate)
{
    char path[] = "/tmp/kvd-config-test-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("[debug]\ndebug_clock_offset_ms = 5000\n", f);
    fclose(f);
    char *argv[] = {"kvd", "--config", path, NULL};
    struct kv_config c;
    kv_config_default(&c);
    bool help;
    struct kv_err err = {0};
    ck_assert_int_eq(kv_config_parse_args(&c, 3, argv, &help, &err), KV_OK);
    unlink(path);
    ck_assert_int_eq(kv_config_validate(&c, &err), KV_INVALID);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("cluster_settings");
    tcase_add_test(tc, test_seeds_are_split_on_commas_trimmed_and_empty_entries_skipped);
    tcase_add_test(tc, test_an_empty_seeds_setting_is_a_cluster_of_one);
    tcase_add_test(tc, test_a_seed_without_a_port_or_too_many_seeds_are_refused);
    tcase_add_test(tc, test_tokens_are_split_on_commas_with_hex_escapes_for_any_byte);
    tcase_add_test(tc, test_bad_escapes_empty_and_overlong_tokens_are_refused);
    tcase_add_test(tc, test_levels_parse_case_insensitively_with_dash_or_underscore);
    tcase_add_test(tc, test_default_consistency_takes_a_level_and_refuses_default);
    tcase_add_test(tc, test_a_clock_offset_without_debug_is_refused);
    tcase_add_test(tc, test_skipping_the_linearizable_write_back_without_debug_is_refused);
    tcase_add_test(tc, test_answering_linearizable_reads_from_one_replica_without_debug_is_refused);
    tcase_add_test(tc, test_debug_settings_reject_bad_values);
    tcase_add_test(tc, test_flags_override_the_ini_file_for_cluster_settings);
    tcase_add_test(tc, test_a_config_file_with_a_lone_clock_offset_does_not_validate);
    tcase_add_test(tc, test_node_ids_are_1_to_65535);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kv_check_run(config_suite(), true);
}
