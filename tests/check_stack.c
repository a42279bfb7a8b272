/* The workers' stack ([pool] stack_size): the deepest documents a worker
 * builds (charset detection and iconv, brotli and gzip bodies, 2048-deep
 * JSON arrays and objects, a 2 MB json-bomb, links, cookies along
 * redirects, base64 and escaped bodies) run through a worker with the
 * smallest allowed stack without overflowing it (run under ASan by
 * scripts/test), and the stack a worker touches doing so, read from
 * /proc/PID/smaps, stays under half that floor (20 KiB plain, 24 KiB under
 * ASan, of 64 KiB).
 *
 * Integration tests: the real fetchd binary against the upstream test
 * server, on 127.0.0.1. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 240

/* A stack size no other mapping of fetchd has (not a multiple of 2 MiB, so
 * no transparent huge page inflates its Rss). */
#define MEASURE_STACK_KIB 1540

static const char *const deep_paths[] = {
	"/fixture?name=cp1251-meta",
	"/fixture?name=cp1252-undeclared",
	"/fixture?name=latin1-declared",
	"/fixture?name=utf8-bom",
	"/fixture?name=xml-decl",
	"/fixture?name=br",
	"/gzip",
	"/link",
	"/cookie-chain",
	"/json-bomb?n=2000000",
	"/nested?depth=2048",
	"/nested?depth=2048&obj=1",
	"/nested?depth=2049",
	"/control?n=1000000",
	"/text?n=3000000",
	"/invalid-utf8",
};

/* Every deep document through f: each a 200 document. */
static void fetch_deepest(const struct fetchd *f)
{
	struct http_resp r;
	char *url;

	for (size_t i = 0; i < sizeof(deep_paths) / sizeof(deep_paths[0]); i++) {
		fetch_path(f, &up, deep_paths[i], &r);
		ck_assert_msg(r.status == 200, "%s: status %ld: %.200s", deep_paths[i], r.status,
			      body_of(&r));
		http_resp_free(&r);
	}
	url = up_url(&up, "/bytes?n=1000000");
	fetch(f, json_pack("{s:s, s:s}", "url", url, "body_mode", "base64"), &r);
	expect_status(&r, 200);
	http_resp_free(&r);
	free(url);
	url = up_url(&up, "/echo");
	fetch(f,
	      json_pack("{s:s, s:s, s:{s:[i,i,{s:s}]}}", "url", url, "method", "POST", "json", "a",
			1, 2, "b", "c"),
	      &r);
	expect_status(&r, 200);
	http_resp_free(&r);
	free(url);
}

/* Rss in KiB of fetchd's mapping of size_kib (its one worker's stack), or
 * -1 when there is none. */
static long stack_rss_kib(pid_t pid, long size_kib)
{
	char path[64], line[256];
	long size = -1, rss = -1, v;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	fp = fopen(path, "re");
	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "Size: %ld kB", &v) == 1)
			size = v;
		else if (sscanf(line, "Rss: %ld kB", &v) == 1 && size == size_kib)
			rss = v > rss ? v : rss;
	}
	fclose(fp);
	return rss;
}

START_TEST(test_deepest_documents_fit_the_smallest_stack)
{
	char *extra = str_printf("[pool]\nthreads = 2\nstack_size = %d\n", CONFIG_STACK_MIN);

	fetchd_start(&daemon_,
		     &(struct fetchd_opts){.extra_config = extra, .allow_loopback = true});
	fetch_deepest(&daemon_);
	expect_serving(&daemon_, &up);
	/* an overflow is a SIGSEGV (or ASan's report) and no exit 0 */
	ck_assert_int_eq(fetchd_signal(&daemon_, SIGTERM), 0);
	expect_exit_0(&daemon_);
	free(extra);
}
END_TEST

START_TEST(test_worker_stack_use_is_under_half_the_floor)
{
	char *extra = str_printf("[pool]\nthreads = 1\nstack_size = %dK\n", MEASURE_STACK_KIB);
	long kib;

	fetchd_start(&daemon_,
		     &(struct fetchd_opts){.extra_config = extra, .allow_loopback = true});
	fetch_deepest(&daemon_);
	kib = stack_rss_kib(daemon_.pid, MEASURE_STACK_KIB);
	fprintf(stderr, "check_stack: the worker touched %ld KiB of its %d KiB stack\n", kib,
		MEASURE_STACK_KIB);
	ck_assert_msg(kib > 0, "no %d KiB mapping in fetchd's smaps", MEASURE_STACK_KIB);
	ck_assert_msg(kib * 2 <= CONFIG_STACK_MIN / 1024,
		      "the worker touched %ld KiB of stack: more than half the %d KiB floor", kib,
		      CONFIG_STACK_MIN / 1024);
	free(extra);
}
END_TEST

static Suite *stack_suite(void)
{
	Suite *s = suite_create("stack");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_add_test(tc, test_deepest_documents_fit_the_smallest_stack);
	tcase_add_test(tc, test_worker_stack_use_is_under_half_the_floor);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(stack_suite(), CK_NORMAL);
}
