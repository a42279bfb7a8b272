/* The elastic pool of src/executor.c: workers above min_threads start when
 * a task finds none idle and leave after thread_idle_timeout; never more
 * than threads, never fewer than min_threads, no task lost while workers
 * come and go; a reconfigure moves both bounds live. Workers are started
 * by the pool's spawner, so the loop thread (this one) never waits for a
 * thread. The timeout is 200 ms; waits are bounded polls of the stats. */
#include "executor.h"

#include <check.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "clock.h"
#include "exectest.h"

#define IDLE_MS 200
#define WAIT_MS 10000 /* a generous bound for a loaded 2-core box under TSan */
#define N_TASKS 4000

struct job {
	struct executor_task task;
	struct gate *gate; /* NULL: run returns at once */
	int ran;	   /* on the worker; read after done */
	int done;	   /* on the loop */
};

static struct event_base *base;
static struct gate gate;
static struct job *jobs;
static unsigned n_done; /* on the loop */

static void job_run(struct executor_task *t, void *ctx, unsigned worker_id)
{
	struct job *j = (struct job *)((char *)t - offsetof(struct job, task));

	(void)ctx;
	(void)worker_id;
	if (j->gate != NULL)
		gate_pass(j->gate);
	j->ran++;
}

static void job_done(struct executor_task *t)
{
	struct job *j = (struct job *)((char *)t - offsetof(struct job, task));

	j->done++;
	n_done++;
}

static void submit(struct executor *ex, unsigned from, unsigned to, struct gate *g)
{
	for (unsigned i = from; i < to; i++) {
		jobs[i].task.run = job_run;
		jobs[i].task.done = job_done;
		jobs[i].gate = g;
		ck_assert_int_eq(executor_submit(ex, &jobs[i].task), 0);
	}
}

static void pump_until_done(unsigned n)
{
	while (n_done < n)
		event_base_loop(base, EVLOOP_ONCE);
}

/* Poll until the pool has want live workers; the ms it took, or -1. */
static long wait_live(struct executor *ex, unsigned want)
{
	uint64_t start = clock_now_ns();

	while (clock_now_ns() - start < (uint64_t)WAIT_MS * 1000000) {
		if (stats(ex).live == want)
			return (long)((clock_now_ns() - start) / 1000000);
		sleep_ms(5);
	}
	return -1;
}

static struct executor *start(unsigned threads, unsigned min, unsigned queue_limit)
{
	struct executor_params p = {.threads = threads,
				    .min_threads = min,
				    .queue_limit = queue_limit,
				    .stack_size = 64 * 1024,
				    .idle_timeout_ms = IDLE_MS};
	struct executor *ex = executor_start(base, &p, NULL, NULL, NULL);

	ck_assert_ptr_nonnull(ex);
	return ex;
}

static void setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	jobs = calloc(N_TASKS, sizeof(*jobs));
	ck_assert_ptr_nonnull(jobs);
	gate_init(&gate);
	n_done = 0;
}

static void teardown(void)
{
	gate_destroy(&gate);
	free(jobs);
	event_base_free(base);
}

START_TEST(test_starts_with_min_threads_and_grows_on_demand)
{
	struct executor *ex = start(8, 1, 16);
	struct executor_stats st;

	ck_assert_uint_eq(stats(ex).live, 1);
	/* five held tasks: one on the first worker, four on new ones */
	submit(ex, 0, 5, &gate);
	gate_wait_arrivals(&gate, 5);
	st = stats(ex);
	ck_assert_uint_eq(st.live, 5);
	ck_assert_uint_eq(st.busy, 5);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_eq(st.spawned, 4);
	gate_open(&gate);
	pump_until_done(5);
	executor_free(ex);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(jobs[i].ran + jobs[i].done, 2);
}
END_TEST

START_TEST(test_shrinks_to_min_threads_after_the_idle_timeout)
{
	struct executor *ex = start(8, 2, 16);
	uint64_t released;
	long ms;

	submit(ex, 0, 6, &gate);
	gate_wait_arrivals(&gate, 6);
	ck_assert_uint_eq(stats(ex).live, 6);
	/* before the open: no worker can be idle from before this */
	released = clock_now_ns();
	gate_open(&gate);
	pump_until_done(6);
	ms = wait_live(ex, 2);
	ck_assert_msg(ms >= 0, "still %u live workers %d ms after the tasks", stats(ex).live,
		      WAIT_MS);
	ck_assert_msg((clock_now_ns() - released) / 1000000 >= IDLE_MS - 5,
		      "workers left %llu ms after their last task, before the %d ms timeout",
		      (unsigned long long)((clock_now_ns() - released) / 1000000), IDLE_MS);
	ck_assert_uint_eq(stats(ex).retired, 4);
	/* and no fewer than min_threads, however long they wait */
	sleep_ms(3 * IDLE_MS);
	ck_assert_uint_eq(stats(ex).live, 2);
	ck_assert_uint_eq(stats(ex).idle, 2);
	executor_free(ex);
}
END_TEST

START_TEST(test_never_more_than_threads_and_the_rest_queue)
{
	struct executor *ex = start(4, 0, 100);
	struct executor_stats st;

	submit(ex, 0, 20, &gate);
	gate_wait_arrivals(&gate, 4);
	sleep_ms(50);
	st = stats(ex);
	ck_assert_uint_eq(st.live, 4);
	ck_assert_uint_eq(st.busy, 4);
	ck_assert_uint_eq(st.queued, 16);
	ck_assert_uint_eq(st.threads, 4);
	gate_open(&gate);
	pump_until_done(20);
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(jobs[i].ran + jobs[i].done, 2);
	ck_assert_msg(wait_live(ex, 0) >= 0, "min_threads = 0 kept %u workers", stats(ex).live);
	executor_free(ex);
}
END_TEST

START_TEST(test_an_empty_pool_starts_a_worker_for_the_next_task)
{
	struct executor *ex = start(4, 0, 4);

	ck_assert_uint_eq(stats(ex).live, 0);
	submit(ex, 0, 1, NULL);
	pump_until_done(1);
	ck_assert_msg(wait_live(ex, 0) >= 0, "the worker did not leave");
	submit(ex, 1, 2, NULL);
	pump_until_done(2);
	ck_assert_int_eq(jobs[1].ran, 1);
	ck_assert_uint_eq(stats(ex).spawned, 2);
	executor_free(ex);
}
END_TEST

START_TEST(test_reconfigure_moves_min_and_max_live)
{
	struct executor *ex = start(8, 1, 16);
	struct executor_params p = {.threads = 8,
				    .min_threads = 6,
				    .queue_limit = 16,
				    .stack_size = 64 * 1024,
				    .idle_timeout_ms = IDLE_MS};

	ck_assert_int_eq(executor_reconfigure(ex, &p), 0);
	ck_assert_msg(wait_live(ex, 6) >= 0, "min_threads 6: %u live", stats(ex).live);
	p.threads = 3;
	p.min_threads = 3;
	ck_assert_int_eq(executor_reconfigure(ex, &p), 0);
	ck_assert_msg(wait_live(ex, 3) >= 0, "threads 3: %u live", stats(ex).live);
	/* a fixed pool of 3 now: 5 held tasks, 3 run */
	submit(ex, 0, 5, &gate);
	gate_wait_arrivals(&gate, 3);
	sleep_ms(50);
	ck_assert_uint_eq(stats(ex).live, 3);
	ck_assert_uint_eq(stats(ex).queued, 2);
	gate_open(&gate);
	pump_until_done(5);
	sleep_ms(2 * IDLE_MS);
	ck_assert_uint_eq(stats(ex).live, 3);
	executor_free(ex);
}
END_TEST

/* Waves of short tasks with the pool growing and shrinking under them (a
 * 1 ms timeout): each runs and is done exactly once. */
START_TEST(test_no_task_is_lost_while_workers_come_and_go)
{
	struct executor_params p = {
		.threads = 16, .min_threads = 0, .queue_limit = N_TASKS, .idle_timeout_ms = 1};
	struct executor *ex = executor_start(base, &p, NULL, NULL, NULL);
	unsigned sent = 0;

	ck_assert_ptr_nonnull(ex);
	while (sent < N_TASKS) {
		unsigned wave = 1 + sent % 97;

		if (sent + wave > N_TASKS)
			wave = N_TASKS - sent;
		submit(ex, sent, sent + wave, NULL);
		sent += wave;
		pump_until_done(sent - wave / 2);
		if (sent % 5 == 0)
			sleep_ms(2);
	}
	pump_until_done(N_TASKS);
	for (unsigned i = 0; i < N_TASKS; i++) {
		ck_assert_int_eq(jobs[i].ran, 1);
		ck_assert_int_eq(jobs[i].done, 1);
	}
	ck_assert_uint_le(stats(ex).live, 16);
	ck_assert_uint_eq(stats(ex).completed, N_TASKS);
	executor_free(ex);
}
END_TEST

static Suite *elastic_suite(void)
{
	Suite *s = suite_create("executor_elastic");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_starts_with_min_threads_and_grows_on_demand);
	tcase_add_test(tc, test_shrinks_to_min_threads_after_the_idle_timeout);
	tcase_add_test(tc, test_never_more_than_threads_and_the_rest_queue);
	tcase_add_test(tc, test_an_empty_pool_starts_a_worker_for_the_next_task);
	tcase_add_test(tc, test_reconfigure_moves_min_and_max_live);
	tcase_add_test(tc, test_no_task_is_lost_while_workers_come_and_go);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(elastic_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
