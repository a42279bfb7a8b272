/* The memory budget (src/budget.c): charges stop at the limit, a hold
 * tells "busy" from "never fits", and concurrent charges from many threads
 * never pass the limit (run under ThreadSanitizer too). */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "budget.h"

START_TEST(test_charges_stop_at_the_limit)
{
	struct budget *b = budget_new(100);

	ck_assert(budget_charge(b, 60));
	ck_assert(budget_charge(b, 40));
	ck_assert(!budget_charge(b, 1));
	ck_assert_uint_eq(budget_used(b), 100);
	budget_release(b, 50);
	ck_assert(!budget_charge(b, 51));
	ck_assert(budget_charge(b, 50));
	budget_release(b, 100);
	ck_assert_uint_eq(budget_used(b), 0);
	ck_assert(!budget_charge(b, 101));
	budget_free(b);
}
END_TEST

START_TEST(test_force_passes_the_limit_and_blocks_charges)
{
	struct budget *b = budget_new(100);

	ck_assert(budget_charge(b, 90));
	budget_force(b, 30);
	ck_assert_uint_eq(budget_used(b), 120);
	ck_assert(!budget_charge(b, 1));
	budget_release(b, 120);
	ck_assert(budget_charge(b, 100));
	budget_release(b, 100);
	budget_free(b);
}
END_TEST

START_TEST(test_a_lower_limit_on_reload_keeps_what_is_charged)
{
	struct budget *b = budget_new(100);

	ck_assert(budget_charge(b, 80));
	budget_set_limit(b, 50);
	ck_assert_uint_eq(budget_limit(b), 50);
	ck_assert(!budget_charge(b, 1));
	budget_release(b, 80);
	ck_assert(budget_charge(b, 50));
	budget_release(b, 50);
	budget_free(b);
}
END_TEST

/* Busy: others hold bytes, retrying later can work. Never fits: this
 * holder alone would need more than the whole budget. */
START_TEST(test_hold_tells_busy_from_never_fits)
{
	struct budget *b = budget_new(100);
	struct budget_hold mine = {.budget = b}, other = {.budget = b};

	ck_assert(budget_hold_charge(&other, 70));
	ck_assert(budget_hold_charge(&mine, 20));
	ck_assert(!budget_hold_charge(&mine, 20));
	ck_assert(mine.failed);
	ck_assert(!mine.never_fits);
	ck_assert(!budget_hold_charge(&mine, 81));
	ck_assert(mine.never_fits);
	ck_assert_uint_eq(mine.held, 20);
	budget_hold_force(&mine, 5);
	ck_assert_uint_eq(mine.held, 25);
	budget_hold_release(&mine, 25);
	budget_hold_release(&other, 70);
	ck_assert_uint_eq(budget_used(b), 0);
	budget_free(b);
}
END_TEST

START_TEST(test_no_budget_charges_nothing)
{
	struct budget_hold none = {.budget = NULL};

	ck_assert(budget_charge(NULL, 1u << 30));
	ck_assert(budget_hold_charge(&none, 1u << 30));
	ck_assert_uint_eq(none.held, 0);
	budget_hold_release(&none, 0);
}
END_TEST

#define THREADS 8
#define ROUNDS 20000

struct race {
	struct budget *b;
	atomic_ulong granted;
	atomic_ulong over; /* times used was seen above the limit */
};

static void *race_thread(void *arg)
{
	struct race *r = arg;

	for (unsigned i = 0; i < ROUNDS; i++) {
		size_t n = 1 + i % 37;

		if (!budget_charge(r->b, n))
			continue;
		atomic_fetch_add(&r->granted, 1);
		if (budget_used(r->b) > budget_limit(r->b))
			atomic_fetch_add(&r->over, 1);
		budget_release(r->b, n);
	}
	return NULL;
}

START_TEST(test_concurrent_charges_never_pass_the_limit)
{
	struct race r = {.b = budget_new(100)};
	pthread_t t[THREADS];

	atomic_init(&r.granted, 0);
	atomic_init(&r.over, 0);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, race_thread, &r), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_uint_eq(atomic_load(&r.over), 0);
	ck_assert_uint_gt(atomic_load(&r.granted), 0);
	ck_assert_uint_eq(budget_used(r.b), 0);
	budget_free(r.b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("budget");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_charges_stop_at_the_limit);
	tcase_add_test(tc, test_force_passes_the_limit_and_blocks_charges);
	tcase_add_test(tc, test_a_lower_limit_on_reload_keeps_what_is_charged);
	tcase_add_test(tc, test_hold_tells_busy_from_never_fits);
	tcase_add_test(tc, test_no_budget_charges_nothing);
	tcase_add_test(tc, test_concurrent_charges_never_pass_the_limit);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
