/* Keyed admission in the real executor (src/executor.c over src/lanes.c),
 * with threads: a key at per_key_limit holds only its own tasks, keys are
 * served round-robin, per_key_interval_ms spaces one key's starts and no
 * other's, executor_pause_key holds one key, a task held by its key can
 * be cancelled and leaves no lane behind, a reconfigure or the end of a
 * pause releases held tasks onto enough workers (in an elastic pool too),
 * a paced task in a pool that shrank to no worker still gets one, and
 * executor_free drops held tasks without their done.
 *
 * Tasks hold workers at a gate the test opens and the test waits for
 * arrivals under a condition variable; the loop is pumped with EVLOOP_ONCE
 * until the done callbacks it expects have run. A lost wake-up hangs a
 * test and Check's timeout fails it. Only pacing and pauses need the
 * clock: there, spacing is asserted tightly from below (the executor
 * never starts early) and loosely or by order from above (this runs under
 * ASan and TSan on a loaded 2-core machine). */
#include "executor.h"

#include <check.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "clock.h"
#include "exectest.h"

#define MS UINT64_C(1000000)
#define N_JOBS 64
#define WAIT_MS 10000 /* bound of the polls: a loaded 2-core box under TSan */

struct job {
	struct executor_task task;
	struct gate *gate; /* NULL: run returns at once */
	int index;
	int ran;  /* on the worker; read after done or executor_free */
	int done; /* on the loop */
};

/* What the runs saw, under lock: the order tasks started in, and how many
 * of the key "slow" ran at once. */
struct tally {
	pthread_mutex_t lock;
	unsigned ran;
	int run_order[N_JOBS];
	unsigned slow_now, slow_most;
};

static struct event_base *base;
static struct gate gate;
static struct tally tally;
static struct job jobs[N_JOBS];
static unsigned n_done; /* on the loop */

static void job_run(struct executor_task *t, void *ctx, unsigned worker_id)
{
	struct job *j = (struct job *)((char *)t - offsetof(struct job, task));
	int slow = t->key != NULL && strcmp(t->key, "slow") == 0;

	(void)ctx;
	(void)worker_id;
	pthread_mutex_lock(&tally.lock);
	tally.run_order[tally.ran++] = j->index;
	if (slow && ++tally.slow_now > tally.slow_most)
		tally.slow_most = tally.slow_now;
	pthread_mutex_unlock(&tally.lock);
	if (j->gate != NULL)
		gate_pass(j->gate);
	pthread_mutex_lock(&tally.lock);
	if (slow)
		tally.slow_now--;
	pthread_mutex_unlock(&tally.lock);
	j->ran++;
}

static void job_done(struct executor_task *t)
{
	struct job *j = (struct job *)((char *)t - offsetof(struct job, task));

	j->done++;
	n_done++;
}

/* Submit jobs[from..to) with key and gate g; every submit must succeed. */
static void submit(struct executor *ex, int from, int to, const char *key, struct gate *g)
{
	for (int i = from; i < to; i++) {
		jobs[i].task.run = job_run;
		jobs[i].task.done = job_done;
		jobs[i].task.key = key;
		jobs[i].gate = g;
		jobs[i].index = i;
		ck_assert_int_eq(executor_submit(ex, &jobs[i].task), 0);
	}
}

static void pump_until_done(unsigned n)
{
	while (n_done < n)
		event_base_loop(base, EVLOOP_ONCE);
}

/* Poll until no lane is left (a paced lane stays until its next time);
 * 0 when that happened within WAIT_MS. */
static int wait_no_keys(struct executor *ex)
{
	uint64_t start = clock_now_ns();

	while (stats(ex).keys != 0) {
		if (clock_now_ns() - start > (uint64_t)WAIT_MS * MS)
			return -1;
		sleep_ms(5);
	}
	return 0;
}

/* Poll until the pool has want live workers; 0 when within WAIT_MS. */
static int wait_live(struct executor *ex, unsigned want)
{
	uint64_t start = clock_now_ns();

	while (stats(ex).live != want) {
		if (clock_now_ns() - start > (uint64_t)WAIT_MS * MS)
			return -1;
		sleep_ms(5);
	}
	return 0;
}

static long ms_between(uint64_t from, uint64_t to)
{
	return (long)((int64_t)(to - from) / (int64_t)MS);
}

static struct executor *start(unsigned threads, unsigned min, unsigned limit, uint64_t interval_ms)
{
	struct executor_params p = {.threads = threads,
				    .min_threads = min,
				    .queue_limit = N_JOBS,
				    .stack_size = 64 * 1024,
				    .idle_timeout_ms = 10,
				    .per_key_limit = limit,
				    .per_key_interval_ms = interval_ms};
	struct executor *ex = executor_start(base, &p, NULL, NULL, NULL);

	ck_assert_ptr_nonnull(ex);
	return ex;
}

static void setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	memset(jobs, 0, sizeof(jobs));
	gate_init(&gate);
	pthread_mutex_init(&tally.lock, NULL);
	tally.ran = 0;
	tally.slow_now = 0;
	tally.slow_most = 0;
	n_done = 0;
}

static void teardown(void)
{
	pthread_mutex_destroy(&tally.lock);
	gate_destroy(&gate);
	event_base_free(base);
}

/* 6 tasks of "slow" held at the gate under a limit of 2, then 6 of
 * "fast": two of "slow" run, four wait in their lane holding no worker,
 * and "fast" runs to the end on the other workers meanwhile. */
START_TEST(test_a_key_at_its_limit_holds_no_other_key)
{
	struct executor *ex = start(8, 8, 2, 0);
	struct executor_stats st;

	submit(ex, 0, 6, "slow", &gate);
	submit(ex, 6, 12, "fast", NULL);
	gate_wait_arrivals(&gate, 2);
	pump_until_done(6); /* only "fast" can be done */
	for (int i = 6; i < 12; i++)
		ck_assert_int_eq(jobs[i].done, 1);
	ck_assert_uint_eq(gate_arrivals(&gate), 2);
	st = stats(ex);
	ck_assert_uint_eq(st.busy, 2);
	ck_assert_uint_eq(st.queued, 4);
	ck_assert_uint_eq(st.keys, 1); /* "fast" is gone */
	ck_assert_uint_eq(st.keys_at_limit, 1);
	ck_assert_uint_eq(st.key_waiting, 4);
	ck_assert_uint_eq(st.keys_paced, 0);
	gate_open(&gate);
	pump_until_done(12);
	for (int i = 0; i < 12; i++) {
		ck_assert_int_eq(jobs[i].ran, 1);
		ck_assert_int_eq(jobs[i].done, 1);
	}
	ck_assert_uint_eq(tally.slow_most, 2);
	st = stats(ex);
	ck_assert_uint_eq(st.keys, 0);
	ck_assert_uint_eq(st.keys_at_limit, 0);
	ck_assert_uint_eq(st.key_waiting, 0);
	ck_assert_uint_eq(st.completed, 12);
	executor_free(ex);
}
END_TEST

/* One worker, held; then 10 tasks of A and 2 of B: B's run second and
 * fourth, not after all of A's. */
START_TEST(test_keys_take_turns_on_one_worker)
{
	struct executor *ex = start(1, 1, 0, 0);
	const int want[] = {20, 0, 10, 1, 11, 2, 3, 4, 5, 6, 7, 8, 9};

	submit(ex, 20, 21, NULL, &gate);
	gate_wait_arrivals(&gate, 1);
	submit(ex, 0, 10, "A", NULL);
	submit(ex, 10, 12, "B", NULL);
	gate_open(&gate);
	pump_until_done(13);
	ck_assert_uint_eq(tally.ran, 13);
	for (int i = 0; i < 13; i++)
		ck_assert_msg(tally.run_order[i] == want[i], "run %d was task %d, want %d", i,
			      tally.run_order[i], want[i]);
	executor_free(ex);
}
END_TEST

/* 4 tasks of "p" at once, 200 ms apart: each start at least 200 ms after
 * the one before (190: the lower bound is the contract), and "q" and "r"
 * start before the second of "p". */
START_TEST(test_pacing_spaces_one_key_and_delays_no_other)
{
	struct executor *ex = start(4, 4, 0, 200);

	submit(ex, 0, 4, "p", NULL);
	submit(ex, 4, 5, "q", NULL);
	submit(ex, 5, 6, "r", NULL);
	pump_until_done(6);
	for (int i = 1; i < 4; i++) {
		long gap = ms_between(jobs[i - 1].task.started_ns, jobs[i].task.started_ns);

		ck_assert_msg(gap >= 190, "p%d started %ld ms after p%d", i, gap, i - 1);
		ck_assert_msg(gap < 2000, "p%d started %ld ms after p%d", i, gap, i - 1);
	}
	for (int i = 4; i < 6; i++)
		ck_assert_msg(jobs[i].task.started_ns < jobs[1].task.started_ns,
			      "task %d waited %ld ms, behind p's pacing", i,
			      ms_between(jobs[i].task.submitted_ns, jobs[i].task.started_ns));
	/* every lane goes once its last pacing time has passed */
	ck_assert_msg(wait_no_keys(ex) == 0, "%u keys left", stats(ex).keys);
	ck_assert_uint_eq(stats(ex).keys_paced, 0);
	executor_free(ex);
}
END_TEST

START_TEST(test_a_paused_key_waits_and_the_others_do_not)
{
	struct executor *ex = start(2, 2, 0, 0);
	uint64_t t0 = clock_now_ns();
	struct executor_stats st;

	ck_assert_int_eq(executor_pause_key(ex, "k", 300), 0);
	submit(ex, 0, 1, "k", NULL);
	submit(ex, 1, 2, "other", NULL);
	st = stats(ex);
	ck_assert_uint_eq(st.key_pauses, 1);
	ck_assert_uint_eq(st.key_pace_waits, 1);
	/* one snapshot: while "k" holds its task, it counts as paced */
	if (st.key_waiting == 1)
		ck_assert_uint_eq(st.keys_paced, 1);
	pump_until_done(2);
	ck_assert_msg(ms_between(t0, jobs[0].task.started_ns) >= 290,
		      "k started %ld ms after a 300 ms pause",
		      ms_between(t0, jobs[0].task.started_ns));
	ck_assert_msg(jobs[1].task.started_ns < jobs[0].task.started_ns,
		      "other started %ld ms after the pause, behind k",
		      ms_between(t0, jobs[1].task.started_ns));
	st = stats(ex);
	ck_assert_uint_eq(st.keys, 0);
	ck_assert_uint_eq(st.keys_paced, 0);
	ck_assert_uint_eq(st.key_waiting, 0);
	executor_free(ex);
}
END_TEST

/* Three tasks of a paused key on four idle workers: when the pause ends,
 * all three start, not one after the other. */
START_TEST(test_the_end_of_a_pause_starts_every_held_task)
{
	struct executor *ex = start(4, 4, 0, 0);

	ck_assert_int_eq(executor_pause_key(ex, "k", 100), 0);
	submit(ex, 0, 3, "k", &gate);
	ck_assert_uint_eq(stats(ex).key_waiting, 3);
	gate_wait_arrivals(&gate, 3);
	gate_open(&gate);
	pump_until_done(3);
	ck_assert_uint_eq(stats(ex).keys, 0);
	executor_free(ex);
}
END_TEST

START_TEST(test_cancel_of_a_task_held_by_its_key)
{
	struct executor *ex = start(2, 2, 1, 0);
	struct executor_stats st;

	submit(ex, 0, 1, "c", &gate);
	gate_wait_arrivals(&gate, 1);
	submit(ex, 1, 2, "c", &gate);
	st = stats(ex);
	ck_assert_uint_eq(st.key_waiting, 1);
	ck_assert_uint_eq(st.keys_at_limit, 1);
	ck_assert_uint_eq(st.key_limit_waits, 1);
	ck_assert_int_eq(executor_cancel(ex, &jobs[1].task), 0);
	ck_assert_int_eq(executor_cancel(ex, &jobs[1].task), -1);
	st = stats(ex);
	ck_assert_uint_eq(st.key_waiting, 0);
	ck_assert_uint_eq(st.keys_at_limit, 0);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_eq(st.cancelled, 1);
	ck_assert_uint_eq(st.keys, 1); /* the running task's */
	gate_open(&gate);
	pump_until_done(1);
	ck_assert_uint_eq(stats(ex).keys, 0);
	executor_free(ex);
	ck_assert_int_eq(jobs[0].done, 1);
	ck_assert_int_eq(jobs[1].ran, 0);
	ck_assert_int_eq(jobs[1].done, 0);
	ck_assert_uint_eq(n_done, 1);
}
END_TEST

/* A limit of 1, three tasks of "r" at the gate: one runs, the two
 * submitted after it started asked for no worker; raising the limit to 3
 * starts them. Fixed pool when min == 4, elastic when min == 1 (one
 * worker: the reconfigure must have the spawner start two). */
static void raise_limit(unsigned min)
{
	struct executor *ex = start(4, min, 1, 0);
	struct executor_params p = {.threads = 4,
				    .min_threads = min,
				    .queue_limit = N_JOBS,
				    .stack_size = 64 * 1024,
				    .idle_timeout_ms = 10,
				    .per_key_limit = 3};
	struct executor_stats st;

	submit(ex, 0, 1, "r", &gate);
	gate_wait_arrivals(&gate, 1);
	submit(ex, 1, 3, "r", &gate);
	st = stats(ex);
	ck_assert_uint_eq(st.live, min);
	ck_assert_uint_eq(st.key_waiting, 2);
	ck_assert_uint_eq(st.keys_at_limit, 1);
	ck_assert_int_eq(executor_reconfigure(ex, &p), 0);
	gate_wait_arrivals(&gate, 3);
	st = stats(ex);
	ck_assert_uint_eq(st.key_waiting, 0);
	ck_assert_uint_eq(st.keys_at_limit, 0);
	ck_assert_uint_eq(st.busy, 3);
	gate_open(&gate);
	pump_until_done(3);
	executor_free(ex);
}

START_TEST(test_raising_the_limit_releases_held_tasks)
{
	raise_limit(4);
}
END_TEST

START_TEST(test_raising_the_limit_starts_workers_for_held_tasks_in_an_elastic_pool)
{
	raise_limit(1);
}
END_TEST

/* min_threads 0: the worker of the first task leaves (10 ms idle) while
 * its key waits 500 ms; the second task, held by pacing, asked for no
 * worker when submitted, so the spawner must start one when its time
 * comes. */
START_TEST(test_a_paced_task_gets_a_worker_in_an_empty_pool)
{
	struct executor *ex = start(4, 0, 0, 500);
	struct executor_stats st;

	submit(ex, 0, 1, "g", NULL);
	pump_until_done(1);
	ck_assert_msg(wait_live(ex, 0) == 0, "%u workers stayed", stats(ex).live);
	submit(ex, 1, 2, "g", NULL);
	st = stats(ex);
	ck_assert_uint_eq(st.live, 0);
	if (st.key_waiting == 1) /* else the retirement took longer than 500 ms */
		ck_assert_uint_eq(st.keys_paced, 1);
	pump_until_done(2);
	ck_assert_msg(ms_between(jobs[0].task.started_ns, jobs[1].task.started_ns) >= 490,
		      "g1 started %ld ms after g0",
		      ms_between(jobs[0].task.started_ns, jobs[1].task.started_ns));
	ck_assert_uint_ge(stats(ex).spawned, 2);
	executor_free(ex);
}
END_TEST

/* Tasks held in lanes when the pool is freed: by a long pause, and by the
 * limit (frozen by a pause once their sibling has finished). They are
 * dropped without done; ASan's leak check sees the lanes go. */
START_TEST(test_free_drops_held_tasks_without_done)
{
	struct executor *ex = start(2, 2, 1, 0);
	struct executor_stats st;

	submit(ex, 0, 1, "h", &gate);
	gate_wait_arrivals(&gate, 1);
	submit(ex, 1, 3, "h", NULL); /* at the limit */
	ck_assert_int_eq(executor_pause_key(ex, "h", 60000), 0);
	ck_assert_int_eq(executor_pause_key(ex, "z", 60000), 0);
	submit(ex, 3, 5, "z", NULL);
	gate_open(&gate);
	pump_until_done(1);
	st = stats(ex);
	ck_assert_uint_eq(st.queued, 4);
	ck_assert_uint_eq(st.key_waiting, 4);
	ck_assert_uint_eq(st.keys, 2);
	ck_assert_uint_eq(st.keys_paced, 2);
	executor_free(ex);
	ck_assert_int_eq(jobs[0].done, 1);
	for (int i = 1; i < 5; i++) {
		ck_assert_int_eq(jobs[i].ran, 0);
		ck_assert_int_eq(jobs[i].done, 0);
	}
	ck_assert_uint_eq(n_done, 1);
}
END_TEST

static Suite *executor_keys_suite(void)
{
	Suite *s = suite_create("executor_keys");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_a_key_at_its_limit_holds_no_other_key);
	tcase_add_test(tc, test_keys_take_turns_on_one_worker);
	tcase_add_test(tc, test_pacing_spaces_one_key_and_delays_no_other);
	tcase_add_test(tc, test_a_paused_key_waits_and_the_others_do_not);
	tcase_add_test(tc, test_the_end_of_a_pause_starts_every_held_task);
	tcase_add_test(tc, test_cancel_of_a_task_held_by_its_key);
	tcase_add_test(tc, test_raising_the_limit_releases_held_tasks);
	tcase_add_test(tc, test_raising_the_limit_starts_workers_for_held_tasks_in_an_elastic_pool);
	tcase_add_test(tc, test_a_paced_task_gets_a_worker_in_an_empty_pool);
	tcase_add_test(tc, test_free_drops_held_tasks_without_done);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (evthread_use_pthreads() < 0)
		return EXIT_FAILURE;
	sr = srunner_create(executor_keys_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
