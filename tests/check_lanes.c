/* src/lanes.c alone, the executor's queue by admission key: no threads,
 * no clock, fake tasks with their key set and explicit `now` values. It
 * pins first come first served within a key, round-robin across keys, the
 * lane without a key (never limited, never paced, takes its turn), the
 * per-key limit, pacing and pauses (lanes_next_due, lanes_due), removal of
 * a held task, new rules releasing held tasks, a hash table grown by many
 * keys, and the totals the executor's stats show (queued, held, n_full,
 * n_paced, n_keyed and the wait counters). */
#include "lanes.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS UINT64_C(1000000)
#define T0 (UINT64_C(1000) * MS) /* an arbitrary start: the clock is ours */
#define INTERVAL (500 * MS)
#define MANY_KEYS 10000

static struct lanes ls;

static void setup(void)
{
	ck_assert_int_eq(lanes_init(&ls), 0);
}

static void teardown(void)
{
	/* frees the lanes only: the tasks lived on the test's stack */
	lanes_fini(&ls);
}

static void task_init(struct executor_task *t, const char *key)
{
	memset(t, 0, sizeof(*t));
	t->key = key;
}

/* Check the totals against what the test expects. */
static void check_totals(unsigned queued, unsigned held, unsigned n_full, unsigned n_paced,
			 unsigned n_keyed)
{
	ck_assert_uint_eq(ls.queued, queued);
	ck_assert_uint_eq(ls.held, held);
	ck_assert_uint_eq(ls.n_full, n_full);
	ck_assert_uint_eq(ls.n_paced, n_paced);
	ck_assert_uint_eq(ls.n_keyed, n_keyed);
}

START_TEST(test_one_key_is_first_come_first_served)
{
	struct executor_task t[3];

	for (int i = 0; i < 3; i++) {
		task_init(&t[i], "a");
		ck_assert_int_eq(lanes_push(&ls, &t[i], T0), 1);
	}
	check_totals(3, 0, 0, 0, 1);
	for (int i = 0; i < 3; i++)
		ck_assert_ptr_eq(lanes_pop(&ls, T0), &t[i]);
	ck_assert_ptr_null(lanes_pop(&ls, T0));
	check_totals(0, 0, 0, 0, 1); /* running: the lane stays */
	for (int i = 0; i < 3; i++)
		lanes_finished(&ls, &t[i], T0);
	check_totals(0, 0, 0, 0, 0);
	ck_assert(!lanes_any_ready(&ls));
}
END_TEST

START_TEST(test_keys_are_served_round_robin)
{
	const char *keys[] = {"a", "a", "a", "b", "b", "c"};
	/* pushed a1 a2 a3 b1 b2 c1: popped a1 b1 c1 a2 b2 a3 */
	const int order[] = {0, 3, 5, 1, 4, 2};
	struct executor_task t[6];

	for (int i = 0; i < 6; i++) {
		task_init(&t[i], keys[i]);
		ck_assert_int_eq(lanes_push(&ls, &t[i], T0), 1);
	}
	ck_assert_uint_eq(ls.n_keyed, 3);
	for (int i = 0; i < 6; i++) {
		struct executor_task *got = lanes_pop(&ls, T0);

		ck_assert_msg(got == &t[order[i]], "pop %d: task %d, want %d", i,
			      got != NULL ? (int)(got - t) : -1, order[i]);
	}
	ck_assert_ptr_null(lanes_pop(&ls, T0));
	for (int i = 0; i < 6; i++)
		lanes_finished(&ls, &t[i], T0);
	check_totals(0, 0, 0, 0, 0);
}
END_TEST

/* Under a limit of 1 and pacing, the tasks without a key all start at
 * once, and their lane takes its turn on the ring with the keyed ones. */
START_TEST(test_the_lane_without_a_key_is_never_held_and_takes_its_turn)
{
	struct executor_task n[3], a[2];

	lanes_set_rules(&ls, 1, INTERVAL, T0);
	task_init(&n[0], NULL);
	task_init(&a[0], "a");
	task_init(&n[1], NULL);
	task_init(&a[1], "a");
	task_init(&n[2], NULL);
	ck_assert_int_eq(lanes_push(&ls, &n[0], T0), 1);
	ck_assert_int_eq(lanes_push(&ls, &a[0], T0), 1);
	ck_assert_int_eq(lanes_push(&ls, &n[1], T0), 1);
	ck_assert_int_eq(lanes_push(&ls, &a[1], T0), 1);
	ck_assert_int_eq(lanes_push(&ls, &n[2], T0), 1);
	ck_assert_uint_eq(ls.n_keyed, 1); /* the unkeyed lane is not counted */
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &n[0]);
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &a[0]);
	/* "a" is paced and at its limit now; the unkeyed lane is neither */
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &n[1]);
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &n[2]);
	ck_assert_ptr_null(lanes_pop(&ls, T0));
	check_totals(1, 1, 0, 1, 1);
	ck_assert_uint_eq(lanes_next_due(&ls), T0 + INTERVAL);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(lanes_finished(&ls, &n[i], T0), 0);
	ck_assert_ptr_null(lanes_pop(&ls, T0));
	/* its time comes while a[0] still runs: at its limit, then */
	ck_assert_uint_eq(lanes_due(&ls, T0 + INTERVAL), 0);
	check_totals(1, 1, 1, 0, 1);
	ck_assert_int_eq(lanes_finished(&ls, &a[0], T0 + INTERVAL), 1);
	ck_assert_ptr_eq(lanes_pop(&ls, T0 + INTERVAL), &a[1]);
	lanes_finished(&ls, &a[1], T0 + INTERVAL);
	ck_assert_uint_eq(lanes_due(&ls, T0 + 2 * INTERVAL), 0);
	check_totals(0, 0, 0, 0, 0);
}
END_TEST

START_TEST(test_a_key_at_its_limit_is_held_and_the_others_go_on)
{
	struct executor_task a[3], b;

	lanes_set_rules(&ls, 2, 0, T0);
	for (int i = 0; i < 3; i++)
		task_init(&a[i], "a");
	task_init(&b, "b");
	ck_assert_int_eq(lanes_push(&ls, &a[0], T0), 1);
	ck_assert_int_eq(lanes_push(&ls, &a[1], T0), 1);
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &a[0]);
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &a[1]);
	/* two of "a" run: the third waits, and says so */
	ck_assert_int_eq(lanes_push(&ls, &a[2], T0), 0);
	check_totals(1, 1, 1, 0, 1);
	ck_assert_uint_eq(ls.limit_waits, 1);
	ck_assert(!lanes_any_ready(&ls));
	ck_assert_int_eq(lanes_push(&ls, &b, T0), 1);
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &b);
	ck_assert_ptr_null(lanes_pop(&ls, T0));
	ck_assert_int_eq(lanes_finished(&ls, &b, T0), 0);
	check_totals(1, 1, 1, 0, 1); /* "b" is gone */
	/* one of "a" finishes: its lane is ready, the held task next */
	ck_assert_int_eq(lanes_finished(&ls, &a[0], T0), 1);
	check_totals(1, 0, 0, 0, 1);
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &a[2]);
	ck_assert_int_eq(lanes_finished(&ls, &a[1], T0), 0);
	ck_assert_int_eq(lanes_finished(&ls, &a[2], T0), 0);
	check_totals(0, 0, 0, 0, 0);
	ck_assert_uint_eq(ls.limit_waits, 1);
	ck_assert_uint_eq(ls.pace_waits, 0);
}
END_TEST

START_TEST(test_a_paced_key_starts_once_per_interval)
{
	struct executor_task a[3], b;

	lanes_set_rules(&ls, 0, INTERVAL, T0);
	for (int i = 0; i < 3; i++)
		task_init(&a[i], "a");
	task_init(&b, "b");
	ck_assert_int_eq(lanes_push(&ls, &a[0], T0), 1);
	ck_assert_int_eq(lanes_push(&ls, &a[1], T0), 1);
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &a[0]);
	/* a[1] may start at T0 + INTERVAL, not before */
	check_totals(1, 1, 0, 1, 1);
	ck_assert_ptr_null(lanes_pop(&ls, T0));
	ck_assert_uint_eq(lanes_next_due(&ls), T0 + INTERVAL);
	/* another key is not held by it */
	ck_assert_int_eq(lanes_push(&ls, &b, T0 + 1), 1);
	ck_assert_ptr_eq(lanes_pop(&ls, T0 + 1), &b);
	ck_assert_uint_eq(lanes_next_due(&ls), T0 + INTERVAL); /* the earliest first */
	ck_assert_uint_eq(lanes_due(&ls, T0 + INTERVAL - 1), 0);
	ck_assert_ptr_null(lanes_pop(&ls, T0 + INTERVAL - 1));
	ck_assert_uint_eq(lanes_due(&ls, T0 + INTERVAL), 1);
	check_totals(1, 0, 0, 0, 2);
	ck_assert_ptr_eq(lanes_pop(&ls, T0 + INTERVAL), &a[1]);
	ck_assert_uint_eq(lanes_next_due(&ls), T0 + 1 + INTERVAL); /* "b" */
	/* a task pushed while its key waits for its time, none queued */
	ck_assert_int_eq(lanes_push(&ls, &a[2], T0 + INTERVAL), 0);
	/* two waits began: a[1] behind a[0], then a[2] behind a[1] */
	ck_assert_uint_eq(ls.pace_waits, 2);
	check_totals(1, 1, 0, 1, 2);
	lanes_finished(&ls, &b, T0 + INTERVAL);
	ck_assert_uint_eq(lanes_due(&ls, T0 + INTERVAL + 1), 0); /* "b" goes */
	check_totals(1, 1, 0, 1, 1);
	ck_assert_uint_eq(lanes_next_due(&ls), T0 + 2 * INTERVAL);
	ck_assert_uint_eq(lanes_due(&ls, T0 + 2 * INTERVAL), 1);
	check_totals(1, 0, 0, 0, 1);
	ck_assert_ptr_eq(lanes_pop(&ls, T0 + 2 * INTERVAL), &a[2]);
	for (int i = 0; i < 3; i++)
		lanes_finished(&ls, &a[i], T0 + 2 * INTERVAL);
	/* the lane waits for its next time with nothing queued, then goes */
	ck_assert_uint_eq(ls.n_keyed, 1);
	ck_assert_uint_eq(lanes_next_due(&ls), T0 + 3 * INTERVAL);
	ck_assert_uint_eq(lanes_due(&ls, T0 + 3 * INTERVAL), 0);
	check_totals(0, 0, 0, 0, 0);
	ck_assert_uint_eq(lanes_next_due(&ls), 0);
}
END_TEST

START_TEST(test_a_pause_holds_a_key_until_its_end)
{
	struct executor_task a, b;

	task_init(&a, "a");
	task_init(&b, "b");
	/* a pause of a key never seen makes its lane */
	ck_assert_int_eq(lanes_pause(&ls, "a", T0 + 300 * MS, T0), 1);
	check_totals(0, 0, 0, 0, 1);
	ck_assert_uint_eq(lanes_next_due(&ls), T0 + 300 * MS);
	ck_assert_int_eq(lanes_push(&ls, &a, T0), 0);
	check_totals(1, 1, 0, 1, 1);
	ck_assert_uint_eq(ls.pace_waits, 1);
	/* a shorter pause does not shorten it */
	ck_assert_int_eq(lanes_pause(&ls, "a", T0 + 100 * MS, T0), 0);
	ck_assert_uint_eq(lanes_next_due(&ls), T0 + 300 * MS);
	ck_assert_int_eq(lanes_push(&ls, &b, T0), 1);
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &b);
	ck_assert_ptr_null(lanes_pop(&ls, T0));
	ck_assert_uint_eq(lanes_due(&ls, T0 + 200 * MS), 0);
	ck_assert_ptr_null(lanes_pop(&ls, T0 + 200 * MS));
	ck_assert_uint_eq(lanes_due(&ls, T0 + 300 * MS), 1);
	check_totals(1, 0, 0, 0, 2);
	ck_assert_ptr_eq(lanes_pop(&ls, T0 + 300 * MS), &a);
	lanes_finished(&ls, &a, T0 + 300 * MS);
	lanes_finished(&ls, &b, T0 + 300 * MS);
	check_totals(0, 0, 0, 0, 0);
	ck_assert_uint_eq(ls.pauses, 1);
}
END_TEST

/* lanes_due counts the tasks that may start, not the lanes: the
 * executor wants a worker for each. */
START_TEST(test_the_end_of_a_pause_counts_the_tasks_that_may_start)
{
	struct executor_task a[4], b[4];

	for (int i = 0; i < 4; i++) {
		task_init(&a[i], "a");
		task_init(&b[i], "b");
	}
	lanes_pause(&ls, "a", T0 + 100 * MS, T0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(lanes_push(&ls, &a[i], T0), 0);
	ck_assert_uint_eq(lanes_due(&ls, T0 + 100 * MS), 4);
	/* under a limit of 3 with one running: 2 */
	lanes_set_rules(&ls, 3, 0, T0 + 100 * MS);
	ck_assert_ptr_eq(lanes_pop(&ls, T0 + 100 * MS), &a[0]);
	lanes_pause(&ls, "a", T0 + 200 * MS, T0 + 100 * MS);
	ck_assert_uint_eq(lanes_due(&ls, T0 + 200 * MS), 2);
	/* paced: one, the next waits for the interval */
	lanes_set_rules(&ls, 0, INTERVAL, T0 + 200 * MS);
	lanes_pause(&ls, "b", T0 + 300 * MS, T0 + 200 * MS);
	for (int i = 0; i < 4; i++)
		lanes_push(&ls, &b[i], T0 + 200 * MS);
	ck_assert_uint_eq(lanes_due(&ls, T0 + 300 * MS), 1);
}
END_TEST

START_TEST(test_a_longer_pause_extends_it)
{
	struct executor_task a;

	task_init(&a, "a");
	ck_assert_int_eq(lanes_pause(&ls, "a", T0 + 300 * MS, T0), 1);
	ck_assert_int_eq(lanes_push(&ls, &a, T0), 0);
	ck_assert_int_eq(lanes_pause(&ls, "a", T0 + 600 * MS, T0 + 10 * MS), 1);
	ck_assert_uint_eq(lanes_next_due(&ls), T0 + 600 * MS);
	ck_assert_uint_eq(lanes_due(&ls, T0 + 300 * MS), 0);
	ck_assert_ptr_null(lanes_pop(&ls, T0 + 300 * MS));
	check_totals(1, 1, 0, 1, 1);
	ck_assert_uint_eq(lanes_due(&ls, T0 + 600 * MS), 1);
	ck_assert_ptr_eq(lanes_pop(&ls, T0 + 600 * MS), &a);
	lanes_finished(&ls, &a, T0 + 600 * MS);
	check_totals(0, 0, 0, 0, 0);
	ck_assert_uint_eq(ls.pauses, 2);
}
END_TEST

START_TEST(test_a_pause_with_nothing_queued_is_freed_when_due)
{
	ck_assert_int_eq(lanes_pause(&ls, "z", T0 + 300 * MS, T0), 1);
	check_totals(0, 0, 0, 0, 1);
	ck_assert_uint_eq(lanes_due(&ls, T0 + 300 * MS), 0);
	check_totals(0, 0, 0, 0, 0);
	ck_assert_uint_eq(lanes_next_due(&ls), 0);
	/* a pause already over, and one of the unkeyed lane: nothing */
	ck_assert_int_eq(lanes_pause(&ls, "z", T0, T0 + 1), 0);
	ck_assert_int_eq(lanes_pause(&ls, NULL, T0 + 300 * MS, T0), 0);
	check_totals(0, 0, 0, 0, 0);
	ck_assert_uint_eq(lanes_next_due(&ls), 0);
	ck_assert_uint_eq(ls.pauses, 1);
}
END_TEST

START_TEST(test_removing_a_held_task_keeps_the_counts)
{
	struct executor_task a[4], b;

	lanes_set_rules(&ls, 1, 0, T0);
	for (int i = 0; i < 4; i++)
		task_init(&a[i], "a");
	task_init(&b, "b");
	lanes_push(&ls, &a[0], T0);
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &a[0]);
	for (int i = 1; i < 4; i++)
		ck_assert_int_eq(lanes_push(&ls, &a[i], T0), 0);
	check_totals(3, 3, 1, 0, 1);
	/* from the middle: the others keep their order */
	lanes_remove(&ls, &a[2], T0);
	check_totals(2, 2, 1, 0, 1);
	ck_assert_ptr_null(a[2].lane);
	lanes_remove(&ls, &a[3], T0);
	lanes_remove(&ls, &a[1], T0);
	check_totals(0, 0, 0, 0, 1); /* a[0] runs: the lane stays */
	ck_assert_int_eq(lanes_finished(&ls, &a[0], T0), 0);
	check_totals(0, 0, 0, 0, 0);
	/* a ready lane with nothing running goes with its last task */
	ck_assert_int_eq(lanes_push(&ls, &b, T0), 1);
	lanes_remove(&ls, &b, T0);
	check_totals(0, 0, 0, 0, 0);
	ck_assert(!lanes_any_ready(&ls));
	ck_assert_ptr_null(lanes_pop(&ls, T0));
}
END_TEST

START_TEST(test_removing_a_paced_task_keeps_the_counts)
{
	struct executor_task a[2];

	task_init(&a[0], "a");
	task_init(&a[1], "a");
	ck_assert_int_eq(lanes_pause(&ls, "a", T0 + 300 * MS, T0), 1);
	lanes_push(&ls, &a[0], T0);
	lanes_push(&ls, &a[1], T0);
	check_totals(2, 2, 0, 1, 1);
	lanes_remove(&ls, &a[0], T0);
	check_totals(1, 1, 0, 1, 1);
	lanes_remove(&ls, &a[1], T0);
	check_totals(0, 0, 0, 0, 1); /* the pause stays until its end */
	ck_assert_uint_eq(lanes_due(&ls, T0 + 300 * MS), 0);
	check_totals(0, 0, 0, 0, 0);
}
END_TEST

START_TEST(test_raising_the_limit_makes_a_full_lane_ready)
{
	struct executor_task a[3];

	lanes_set_rules(&ls, 1, 0, T0);
	for (int i = 0; i < 3; i++) {
		task_init(&a[i], "a");
		lanes_push(&ls, &a[i], T0);
	}
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &a[0]);
	check_totals(2, 2, 1, 0, 1);
	ck_assert(!lanes_any_ready(&ls));
	/* two more may start: the executor wants a worker for each */
	ck_assert_uint_eq(lanes_set_rules(&ls, 3, 0, T0), 2);
	check_totals(2, 0, 0, 0, 1);
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &a[1]);
	ck_assert_ptr_eq(lanes_pop(&ls, T0), &a[2]);
	ck_assert_ptr_null(lanes_pop(&ls, T0));
	/* and lowering it holds the next one back */
	lanes_set_rules(&ls, 1, 0, T0);
	for (int i = 0; i < 3; i++)
		lanes_finished(&ls, &a[i], T0);
	check_totals(0, 0, 0, 0, 0);
}
END_TEST

START_TEST(test_many_keys_grow_the_table_and_each_task_pops_once)
{
	static char keys[MANY_KEYS][16];
	struct executor_task *t = calloc(MANY_KEYS, sizeof(*t));
	unsigned char *seen = calloc(MANY_KEYS, 1);

	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(seen);
	for (unsigned i = 0; i < MANY_KEYS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "host-%u", i);
		t[i].key = keys[i];
		ck_assert_int_eq(lanes_push(&ls, &t[i], T0), 1);
	}
	check_totals(MANY_KEYS, 0, 0, 0, MANY_KEYS);
	ck_assert_uint_ge(ls.n_buckets, MANY_KEYS);
	for (unsigned i = 0; i < MANY_KEYS; i++) {
		struct executor_task *got = lanes_pop(&ls, T0);

		ck_assert_ptr_nonnull(got);
		ck_assert_uint_eq(seen[got - t]++, 0);
		/* round-robin over lanes made in this order: first come */
		ck_assert_ptr_eq(got, &t[i]);
	}
	ck_assert_ptr_null(lanes_pop(&ls, T0));
	for (unsigned i = 0; i < MANY_KEYS; i++)
		lanes_finished(&ls, &t[i], T0);
	check_totals(0, 0, 0, 0, 0);
	free(seen);
	free(t);
}
END_TEST

START_TEST(test_counters_count_waits_and_pauses)
{
	struct executor_task a[3], p[2];

	lanes_set_rules(&ls, 1, 0, T0);
	for (int i = 0; i < 3; i++)
		task_init(&a[i], "a");
	task_init(&p[0], "p");
	task_init(&p[1], "p");
	lanes_push(&ls, &a[0], T0);
	lanes_pop(&ls, T0);
	lanes_push(&ls, &a[1], T0);
	lanes_push(&ls, &a[2], T0);
	ck_assert_int_eq(lanes_pause(&ls, "p", T0 + 100 * MS, T0), 1);
	ck_assert_int_eq(lanes_pause(&ls, "p", T0 + 50 * MS, T0), 0);
	lanes_push(&ls, &p[0], T0);
	lanes_push(&ls, &p[1], T0);
	/* a wait is counted when it begins, not per task held: "a" began
	 * holding at a[1], "p" at p[0] */
	ck_assert_uint_eq(ls.limit_waits, 1);
	ck_assert_uint_eq(ls.pace_waits, 1);
	ck_assert_uint_eq(ls.pauses, 1);
	check_totals(4, 4, 1, 1, 2);
	/* dropped at shutdown: every waiting task comes out once */
	for (int i = 0; i < 4; i++)
		ck_assert_ptr_nonnull(lanes_drain(&ls));
	ck_assert_ptr_null(lanes_drain(&ls));
	ck_assert_uint_eq(ls.queued, 0);
	ck_assert_uint_eq(ls.held, 0);
}
END_TEST

static Suite *lanes_suite(void)
{
	Suite *s = suite_create("lanes");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_one_key_is_first_come_first_served);
	tcase_add_test(tc, test_keys_are_served_round_robin);
	tcase_add_test(tc, test_the_lane_without_a_key_is_never_held_and_takes_its_turn);
	tcase_add_test(tc, test_a_key_at_its_limit_is_held_and_the_others_go_on);
	tcase_add_test(tc, test_a_paced_key_starts_once_per_interval);
	tcase_add_test(tc, test_a_pause_holds_a_key_until_its_end);
	tcase_add_test(tc, test_the_end_of_a_pause_counts_the_tasks_that_may_start);
	tcase_add_test(tc, test_a_longer_pause_extends_it);
	tcase_add_test(tc, test_a_pause_with_nothing_queued_is_freed_when_due);
	tcase_add_test(tc, test_removing_a_held_task_keeps_the_counts);
	tcase_add_test(tc, test_removing_a_paced_task_keeps_the_counts);
	tcase_add_test(tc, test_raising_the_limit_makes_a_full_lane_ready);
	tcase_add_test(tc, test_many_keys_grow_the_table_and_each_task_pops_once);
	tcase_add_test(tc, test_counters_count_waits_and_pauses);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(lanes_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
