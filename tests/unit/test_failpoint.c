/* tests/unit/test_failpoint.c -- the failpoint spec parser, hit counting and the crash
 * action (common/failpoint.h). The crash runs in a forked child, which must die by
 * SIGKILL at exactly the hit the spec names and not one earlier. */
#include <check.h>
#include "tests/check_run.h"
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/failpoint.h"

START_TEST(test_a_good_spec_arms_each_point_with_its_form)
{
    struct kv_err err = {KV_OK, ""};
    ck_assert_int_eq(kv_failpoint_configure(" commit.before_wal=crash@3, ack.after_write=crash"
                                            ",x-y_z=crash%10,quiet=off",
                                            &err),
                     KV_OK);
    char desc[256];
    ck_assert_uint_eq(kv_failpoint_describe(desc, sizeof desc), 4);
    ck_assert_str_eq(desc,
                     "commit.before_wal=crash@3,ack.after_write=crash,x-y_z=crash%10,quiet=off");
    ck_assert_uint_eq(kv_failpoint_configure("", &err), KV_OK);
    ck_assert_uint_eq(kv_failpoint_describe(desc, sizeof desc), 0);
    ck_assert_str_eq(desc, "");
    ck_assert_uint_eq(kv_failpoint_configure(NULL, &err), KV_OK);
}
END_TEST

START_TEST(test_a_bad_entry_is_refused_by_name_and_keeps_the_old_table)
{
    struct kv_err err = {KV_OK, ""};
    ck_assert_int_eq(kv_failpoint_configure("keep=crash@7", &err), KV_OK);
    const char *bad[] = {"nothing", "=crash", "a=explode", "a=crash@0", "a=crash@", "a=crash@x",
                         "a=crash%0", "a=crash%101", "a=off@2", "a b=crash", "a=crash,a=off",
                         "a=crash@3@4", "a=crash%5@2",
                         "a_name_that_is_far_too_long_for_the_failpoint_table=crash"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        ck_assert_msg(kv_failpoint_configure(bad[i], &err) == KV_INVALID, "accepted '%s'",
                      bad[i]);
        ck_assert_msg(err.msg[0] != '\0', "no message for '%s'", bad[i]);
    }
    char desc[64];
    ck_assert_uint_eq(kv_failpoint_describe(desc, sizeof desc), 1);
    ck_assert_str_eq(desc, "keep=crash@7");
    char many[1024] = "";
    for (int i = 0; i <= KV_FAILPOINT_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sp%d=off", i ? "," : "", i);
    ck_assert_int_eq(kv_failpoint_configure(many, &err), KV_INVALID);
}
END_TEST

START_TEST(test_hits_are_counted_per_point_and_reset_by_configure)
{
    struct kv_err err;
    ck_assert_int_eq(kv_failpoint_configure("a=off,b=crash@1000000", &err), KV_OK);
    for (int i = 0; i < 5; i++)
        kv_failpoint_hit("a");
    kv_failpoint_hit("b");
    kv_failpoint_hit("not.armed");
    ck_assert_uint_eq(kv_failpoint_hits("a"), 5);
    ck_assert_uint_eq(kv_failpoint_hits("b"), 1);
    ck_assert_uint_eq(kv_failpoint_hits("not.armed"), 0);
    ck_assert_int_eq(kv_failpoint_configure("a=off", &err), KV_OK);
    ck_assert_uint_eq(kv_failpoint_hits("a"), 0);
    ck_assert_uint_eq(kv_failpoint_hits("b"), 0);
}
END_TEST

/* Forks a child that configures spec, then hits `name` up to `max` times, reporting each
 * survived hit as one byte on a pipe. Returns the child's wait status; *survived is the
 * number of hits it came back from. */
static int run_child_seeded(const char *spec, const char *name, int max, uint64_t seed,
                            int *survived)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        struct kv_err err;
        if (kv_failpoint_configure(spec, &err) != KV_OK)
            _exit(3);
        kv_failpoint_seed(seed);
        for (int i = 0; i < max; i++) {
            kv_failpoint_hit(name);
            if (write(fds[1], "x", 1) != 1)
                _exit(4);
        }
        _exit(0);
    }
    close(fds[1]);
    char buf[64];
    ssize_t n;
    *survived = 0;
    while ((n = read(fds[0], buf, sizeof buf)) > 0)
        *survived += (int)n;
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

static int run_child(const char *spec, const char *name, int max, int *survived)
{
    return run_child_seeded(spec, name, max, 0, survived);
}

START_TEST(test_crash_at_the_nth_hit_dies_by_sigkill_there_and_not_before)
{
    int survived;
    int st = run_child("commit.before_wal=crash@3", "commit.before_wal", 10, &survived);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %#x", st);
    ck_assert_int_eq(survived, 2);
    st = run_child("ack.after_write=crash", "ack.after_write", 10, &survived);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %#x", st);
    ck_assert_int_eq(survived, 0);
}
END_TEST

START_TEST(test_other_points_and_off_never_crash)
{
    int survived;
    int st = run_child("a=crash,b=off", "b", 50, &survived);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
    ck_assert_int_eq(survived, 50);
    st = run_child("a=crash", "c", 50, &survived);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
    ck_assert_int_eq(survived, 50);
}
END_TEST

START_TEST(test_crash_with_a_percentage_fires_at_about_that_rate)
{
    /* At 10% per hit the first crash comes after a geometric number of hits: over 40
     * children with distinct seeds the mean survived count is near 9 (P[mean outside
     * 3..30] is negligible), the counts differ, and 100% dies at once. */
    int total = 0, survived, first = -1;
    bool differ = false;
    for (int i = 0; i < 40; i++) {
        int st = run_child_seeded("p=crash%10", "p", 1000, 1000 + (uint64_t)i, &survived);
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %#x", st);
        total += survived;
        differ = differ || (first >= 0 && survived != first);
        first = i ? first : survived;
    }
    ck_assert(differ);
    int again;
    run_child_seeded("p=crash%10", "p", 1000, 1000, &again);
    ck_assert_int_eq(again, first);   /* same seed, same crash */
    ck_assert_msg(total >= 3 * 40 && total <= 30 * 40, "mean survived %.1f", total / 40.0);
    int st = run_child("p=crash%100", "p", 1000, &survived);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    ck_assert_int_eq(survived, 0);
}
END_TEST

START_TEST(test_the_macro_is_compiled_in_exactly_when_the_build_asks)
{
    struct kv_err err;
    ck_assert_int_eq(kv_failpoint_configure("m=off", &err), KV_OK);
    KV_FAILPOINT("m");
#ifdef KV_FAILPOINTS
    ck_assert_uint_eq(kv_failpoint_hits("m"), 1);
#else
    ck_assert_uint_eq(kv_failpoint_hits("m"), 0);
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("failpoint");
    TCase *t = tcase_create("failpoint");
    tcase_add_test(t, test_a_good_spec_arms_each_point_with_its_form);
    tcase_add_test(t, test_a_bad_entry_is_refused_by_name_and_keeps_the_old_table);
    tcase_add_test(t, test_hits_are_counted_per_point_and_reset_by_configure);
    tcase_add_test(t, test_crash_at_the_nth_hit_dies_by_sigkill_there_and_not_before);
    tcase_add_test(t, test_other_points_and_off_never_crash);
    tcase_add_test(t, test_crash_with_a_percentage_fires_at_about_that_rate);
    tcase_add_test(t, test_the_macro_is_compiled_in_exactly_when_the_build_asks);
    suite_add_tcase(s, t);
    return kv_check_run(s, true);
}
