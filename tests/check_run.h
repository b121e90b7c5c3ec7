/* tests/check_run.h -- the end of every Check suite's main(): run the suite and turn the
 * result into the exit status ctest reads (0 only when every test passed). Integration
 * suites run without fork (fork = false) so their fixtures see the kvd PIDs a failed test
 * started and can stop them. */
#ifndef KV_TESTS_CHECK_RUN_H
#define KV_TESTS_CHECK_RUN_H
#include <check.h>
#include <stdbool.h>

static inline int kv_check_run(Suite *s, bool fork)
{
    SRunner *r = srunner_create(s);
    if (!fork)
        srunner_set_fork_status(r, CK_NOFORK);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
#endif
