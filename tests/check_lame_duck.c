/* Integration tests of [server] lame_duck, against the real binary: after
 * SIGTERM, /healthz answers 503 while fetches are still served, so a load
 * balancer stops sending work before fetchd stops accepting; then the
 * drain runs and fetchd exits 0. Only 127.0.0.1. */
#include <check.h>
#include <signal.h>
#include <stdlib.h>

#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 60

static void start_with_lame_duck(struct fetchd *f, const char *lame_duck)
{
	char *extra = str_printf("lame_duck = %s\n", lame_duck);
	struct fetchd_opts o = {.extra_config = extra, .allow_loopback = true};

	fetchd_start(f, &o);
	free(extra);
}

START_TEST(test_lame_duck_fails_healthz_and_still_serves)
{
	struct fetchd f;
	struct http_resp r;
	uint64_t t0;

	start_with_lame_duck(&f, "2s");
	get_ok(f.port, "/healthz", &r);
	expect_status(&r, 200);
	http_resp_free(&r);
	t0 = now_ms();
	ck_assert_int_eq(fetchd_signal(&f, SIGTERM), 0);
	sleep_ms(200);
	get_ok(f.port, "/healthz", &r);
	expect_status(&r, 503);
	expect_str(&r, "status", "draining");
	http_resp_free(&r);
	/* new connections and fetches are still taken */
	fetch_path(&f, &up, "/json", &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	http_resp_free(&r);
	ck_assert_msg(now_ms() - t0 < 1500, "the checks took too long to judge the lame duck");
	ck_assert_msg(fetchd_wait_exit(&f, 500) == -1, "fetchd left before its lame duck ended");
	expect_exit_0(&f);
	ck_assert_msg(now_ms() - t0 >= 2000, "fetchd exited %llu ms after SIGTERM, before 2 s",
		      (unsigned long long)(now_ms() - t0));
	fetchd_stop(&f);
}
END_TEST

START_TEST(test_second_sigterm_ends_the_lame_duck)
{
	struct fetchd f;
	uint64_t t0;

	start_with_lame_duck(&f, "60s");
	t0 = now_ms();
	ck_assert_int_eq(fetchd_signal(&f, SIGTERM), 0);
	sleep_ms(200);
	ck_assert_int_eq(fetchd_signal(&f, SIGTERM), 0);
	expect_exit_0(&f);
	ck_assert_msg(now_ms() - t0 < 20000, "a second SIGTERM did not end the lame duck");
	fetchd_stop(&f);
}
END_TEST

static Suite *lame_duck_suite(void)
{
	Suite *s = suite_create("lame_duck");
	TCase *tc = tcase_create("lame_duck");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_add_test(tc, test_lame_duck_fails_healthz_and_still_serves);
	tcase_add_test(tc, test_second_sigterm_ends_the_lame_duck);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(lame_duck_suite(), CK_NORMAL);
}
