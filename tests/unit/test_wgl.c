/* tests/unit/test_wgl.c -- the simulator's linearizability checker (tests/sim/wgl.h) on
 * small register histories whose answer is known by hand: it must accept what some order
 * explains and reject what none does, or the chaos runs' invariant (d) proves nothing. */
#include <check.h>
#include "tests/check_run.h"
#include <stdint.h>
#include <stdlib.h>
#include "tests/sim/wgl.h"

#define NEVER UINT64_MAX
#define W(c, r, v) {.call = (c), .ret = (r), .kind = WGL_WRITE, .value = (v)}
#define R(c, r, v) {.call = (c), .ret = (r), .kind = WGL_READ, .value = (v)}
#define D(c, r) {.call = (c), .ret = (r), .kind = WGL_DELETE, .value = -1}
#define CAS(c, r, e, v, a) {.call = (c), .ret = (r), .kind = WGL_CAS, .expect = (e), \
                            .value = (v), .applied = (a)}
#define CHECK(ops) wgl_check((ops), sizeof(ops) / sizeof *(ops), 100000)

START_TEST(test_sequential_and_overlapping_histories_that_some_order_explains_pass)
{
    const struct wgl_op seq[] = {R(1, 2, -1), W(3, 4, 7), R(5, 6, 7), D(7, 8), R(9, 10, -1)};
    ck_assert_int_eq(CHECK(seq), 1);
    /* The read overlaps the write: it may see either value. */
    const struct wgl_op old[] = {W(1, 2, 1), W(3, 6, 2), R(4, 5, 1)};
    const struct wgl_op new[] = {W(1, 2, 1), W(3, 6, 2), R(4, 5, 2)};
    ck_assert_int_eq(CHECK(old), 1);
    ck_assert_int_eq(CHECK(new), 1);
    ck_assert_int_eq(wgl_check(NULL, 0, 10), 1);
}
END_TEST

START_TEST(test_a_stale_read_after_a_completed_write_fails)
{
    const struct wgl_op stale[] = {W(1, 2, 1), W(3, 4, 2), R(5, 6, 1)};
    ck_assert_int_eq(CHECK(stale), 0);
    /* New then old: once a read saw 2, a later read cannot see 1 (the inversion). */
    const struct wgl_op inv[] = {W(1, 2, 1), W(3, 20, 2), R(4, 5, 2), R(6, 7, 1)};
    ck_assert_int_eq(CHECK(inv), 0);
    const struct wgl_op phantom[] = {R(1, 2, 9)};   /* a value nobody wrote */
    ck_assert_int_eq(CHECK(phantom), 0);
}
END_TEST

START_TEST(test_an_unknown_write_may_take_effect_late_or_never)
{
    /* Never returned: seen long after its call, or not at all; both are fine. */
    const struct wgl_op late[] = {W(1, NEVER, 5), R(10, 11, -1), R(20, 21, 5)};
    const struct wgl_op never[] = {W(1, NEVER, 5), R(10, 11, -1), R(20, 21, -1)};
    ck_assert_int_eq(CHECK(late), 1);
    ck_assert_int_eq(CHECK(never), 1);
    /* But once seen, it stays (until something else is written). */
    const struct wgl_op undone[] = {W(1, NEVER, 5), R(10, 11, 5), R(20, 21, -1)};
    ck_assert_int_eq(CHECK(undone), 0);
}
END_TEST

START_TEST(test_cas_outcomes_must_match_the_state_they_were_applied_to)
{
    const struct wgl_op ok[] = {W(1, 2, 1), CAS(3, 4, 1, 2, 1), R(5, 6, 2),
                                CAS(7, 8, 1, 3, 0), R(9, 10, 2)};
    ck_assert_int_eq(CHECK(ok), 1);
    /* Two CAS from the same expected value cannot both apply. */
    const struct wgl_op both[] = {W(1, 2, 1), CAS(3, 6, 1, 2, 1), CAS(4, 7, 1, 3, 1)};
    ck_assert_int_eq(CHECK(both), 0);
    /* A refused CAS whose expectation held at every possible instant is a lie. */
    const struct wgl_op refused[] = {W(1, 2, 1), CAS(3, 4, 1, 2, 0)};
    ck_assert_int_eq(CHECK(refused), 0);
    /* Unknown CAS: applies or not, whichever explains the reads. */
    const struct wgl_op unk[] = {W(1, 2, 1), CAS(3, NEVER, 1, 2, -1), R(5, 6, 2)};
    ck_assert_int_eq(CHECK(unk), 1);
}
END_TEST

START_TEST(test_a_search_over_its_budget_answers_undecided)
{
    /* Many mutually overlapping writes and a read no order explains: the search must
     * explore many configurations before it could say "no". */
    enum { N = 24 };
    struct wgl_op ops[N + 1];
    for (int i = 0; i < N; i++)
        ops[i] = (struct wgl_op)W((uint64_t)i + 1, 1000, i);
    ops[N] = (struct wgl_op)R(500, 501, 99);
    ck_assert_int_eq(wgl_check(ops, N + 1, 1000), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wgl");
    TCase *t = tcase_create("wgl");
    tcase_add_test(t, test_sequential_and_overlapping_histories_that_some_order_explains_pass);
    tcase_add_test(t, test_a_stale_read_after_a_completed_write_fails);
    tcase_add_test(t, test_an_unknown_write_may_take_effect_late_or_never);
    tcase_add_test(t, test_cas_outcomes_must_match_the_state_they_were_applied_to);
    tcase_add_test(t, test_a_search_over_its_budget_answers_undecided);
    suite_add_tcase(s, t);
    return kv_check_run(s, true);
}
