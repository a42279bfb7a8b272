/* The arithmetic of src/capacity.c: the descriptor budget of a
 * configuration (max_connections, the workers' sockets, idle upstream
 * connections spread over the workers, the default derived from the fd
 * limit) and the kernel's task limits, with the sentences that refuse what
 * does not fit. Pure functions: no process, no clock. */
#include "capacity.h"

#include <check.h>
#include <stdint.h>
#include <string.h>

static char msg[512];

START_TEST(test_idle_connections_are_spread_one_share_per_worker)
{
	struct capacity_fd_budget b;

	ck_assert_int_eq(capacity_fd_budget(4096, 16, 800, 1048576, &b, msg, sizeof(msg)), 0);
	ck_assert_uint_eq(b.idle_per_worker, 50);
	ck_assert_uint_eq(b.idle, 800);
	ck_assert_uint_eq(b.worker_fds, 16 * CAPACITY_FDS_PER_WORKER);
	ck_assert_uint_eq(b.total,
			  4096 + 16 * CAPACITY_FDS_PER_WORKER + 800 + CAPACITY_FDS_RESERVE);
}
END_TEST

START_TEST(test_fewer_idle_connections_than_workers_still_give_each_one)
{
	struct capacity_fd_budget b;

	ck_assert_int_eq(capacity_fd_budget(100, 2000, 500, 1048576, &b, msg, sizeof(msg)), 0);
	ck_assert_uint_eq(b.idle_per_worker, 1);
	ck_assert_uint_eq(b.idle, 2000);
}
END_TEST

START_TEST(test_derived_idle_is_five_per_worker_when_the_limit_is_roomy)
{
	struct capacity_fd_budget b;

	ck_assert_int_eq(capacity_fd_budget(4096, 16, 0, 1048576, &b, msg, sizeof(msg)), 0);
	ck_assert_uint_eq(b.idle_per_worker, CAPACITY_IDLE_PER_WORKER_MAX);
	ck_assert_uint_eq(b.idle, 16 * CAPACITY_IDLE_PER_WORKER_MAX);
}
END_TEST

START_TEST(test_derived_idle_takes_half_of_what_the_limit_leaves)
{
	struct capacity_fd_budget b;
	/* 20000 - (4096 + 2000 x 5 + 64) = 5840 left, half is 2920 */
	ck_assert_int_eq(capacity_fd_budget(4096, 2000, 0, 20000, &b, msg, sizeof(msg)), 0);
	ck_assert_uint_eq(b.idle_per_worker, 1);
	ck_assert_uint_eq(b.idle, 2000);
	ck_assert_uint_le(b.total, 20000);
}
END_TEST

START_TEST(test_inline_mode_counts_one_handle)
{
	struct capacity_fd_budget b;

	ck_assert_int_eq(capacity_fd_budget(10, 0, 0, 1024, &b, msg, sizeof(msg)), 0);
	ck_assert_uint_eq(b.worker_fds, CAPACITY_FDS_PER_WORKER);
	ck_assert_uint_eq(b.idle_per_worker, CAPACITY_IDLE_PER_WORKER_MAX);
}
END_TEST

START_TEST(test_a_budget_over_the_limit_is_refused_naming_the_numbers)
{
	struct capacity_fd_budget b;

	ck_assert_int_eq(capacity_fd_budget(4096, 16384, 0, 65536, &b, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "the configuration needs 102464 file descriptors: max_connections = "
			      "4096, 16384 workers x 5 = 81920, 16384 idle upstream connections "
			      "(1 per worker), 64 of fetchd's own; the limit (RLIMIT_NOFILE hard, "
			      "fs.nr_open) is 65536");
}
END_TEST

START_TEST(test_the_budget_exactly_at_the_limit_fits)
{
	struct capacity_fd_budget b;
	uint64_t need = 1000 + 10 * CAPACITY_FDS_PER_WORKER + 10 + CAPACITY_FDS_RESERVE;

	ck_assert_int_eq(capacity_fd_budget(1000, 10, 10, need, &b, msg, sizeof(msg)), 0);
	ck_assert_uint_eq(b.total, need);
	ck_assert_int_eq(capacity_fd_budget(1000, 10, 10, need - 1, &b, msg, sizeof(msg)), -1);
}
END_TEST

START_TEST(test_threads_over_pid_max_are_refused_naming_the_limit)
{
	struct capacity_machine m = {.threads_max = 192739, .pid_max = 32768, .nproc = UINT64_MAX};

	ck_assert_int_eq(capacity_check_threads(16352, &m, msg, sizeof(msg)), 0);
	ck_assert_int_eq(capacity_check_threads(16353, &m, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "16353 worker threads over every pool need up to 32770 kernel "
			      "tasks (2 each: the worker and its resolver thread, and 64 more), "
			      "more than kernel.pid_max = 32768 allows: at most 16352 threads");
}
END_TEST

START_TEST(test_the_smallest_task_limit_is_the_one_named)
{
	struct capacity_machine m = {.threads_max = 5000, .pid_max = 4194304, .nproc = 9000};

	ck_assert_int_eq(capacity_check_threads(4000, &m, msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "kernel.threads-max = 5000"));
	m.nproc = 1000;
	ck_assert_int_eq(capacity_check_threads(4000, &m, msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "RLIMIT_NPROC (ulimit -u) = 1000"));
	ck_assert_ptr_nonnull(strstr(msg, "at most 468 threads"));
}
END_TEST

START_TEST(test_unknown_limits_refuse_nothing)
{
	struct capacity_machine m = {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX};

	ck_assert_int_eq(capacity_check_threads(65536, &m, msg, sizeof(msg)), 0);
}
END_TEST

START_TEST(test_this_machine_is_read)
{
	struct capacity_machine m;

	capacity_read_machine(&m);
	ck_assert_uint_gt(m.pid_max, 0);
	ck_assert_uint_gt(m.fd_hard, 0);
	ck_assert_uint_le(m.fd_soft, m.fd_hard);
}
END_TEST

static Suite *capacity_suite(void)
{
	Suite *s = suite_create("capacity");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_idle_connections_are_spread_one_share_per_worker);
	tcase_add_test(tc, test_fewer_idle_connections_than_workers_still_give_each_one);
	tcase_add_test(tc, test_derived_idle_is_five_per_worker_when_the_limit_is_roomy);
	tcase_add_test(tc, test_derived_idle_takes_half_of_what_the_limit_leaves);
	tcase_add_test(tc, test_inline_mode_counts_one_handle);
	tcase_add_test(tc, test_a_budget_over_the_limit_is_refused_naming_the_numbers);
	tcase_add_test(tc, test_the_budget_exactly_at_the_limit_fits);
	tcase_add_test(tc, test_threads_over_pid_max_are_refused_naming_the_limit);
	tcase_add_test(tc, test_the_smallest_task_limit_is_the_one_named);
	tcase_add_test(tc, test_unknown_limits_refuse_nothing);
	tcase_add_test(tc, test_this_machine_is_read);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(capacity_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
