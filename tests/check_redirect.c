/* The redirect rules of SPEC section 2 (the Fetch standard's method
 * rewriting, credentials across origins). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "redirect.h"

static void expect(long status, const char *method, const char *want_method, bool want_body)
{
	const char *next;
	bool keep;

	redirect_next_method(status, method, &next, &keep);
	ck_assert_msg(strcmp(next, want_method) == 0, "%ld %s -> %s, want %s", status, method, next,
		      want_method);
	ck_assert_msg(keep == want_body, "%ld %s: keep_body %d, want %d", status, method, keep,
		      want_body);
}

START_TEST(test_303_turns_every_method_but_head_into_bodyless_get)
{
	expect(303, "POST", "GET", false);
	expect(303, "PUT", "GET", false);
	expect(303, "DELETE", "GET", false);
	expect(303, "PATCH", "GET", false);
	expect(303, "GET", "GET", true);
	expect(303, "HEAD", "HEAD", true);
}
END_TEST

START_TEST(test_301_and_302_turn_only_post_into_get)
{
	expect(301, "POST", "GET", false);
	expect(302, "POST", "GET", false);
	expect(301, "PUT", "PUT", true);
	expect(302, "DELETE", "DELETE", true);
	expect(302, "GET", "GET", true);
}
END_TEST

START_TEST(test_307_and_308_keep_method_and_body)
{
	expect(307, "POST", "POST", true);
	expect(308, "POST", "POST", true);
	expect(307, "PATCH", "PATCH", true);
	expect(308, "PUT", "PUT", true);
}
END_TEST

START_TEST(test_only_redirect_statuses_are_followed)
{
	ck_assert(redirect_is_redirect(301));
	ck_assert(redirect_is_redirect(302));
	ck_assert(redirect_is_redirect(303));
	ck_assert(redirect_is_redirect(307));
	ck_assert(redirect_is_redirect(308));
	ck_assert(!redirect_is_redirect(300));
	ck_assert(!redirect_is_redirect(304));
	ck_assert(!redirect_is_redirect(305));
	ck_assert(!redirect_is_redirect(200));
}
END_TEST

START_TEST(test_same_origin_compares_scheme_host_and_effective_port)
{
	ck_assert(redirect_same_origin("http://a.example/x", "http://A.EXAMPLE/y?z"));
	ck_assert(redirect_same_origin("http://a.example/x", "http://a.example:80/"));
	ck_assert(redirect_same_origin("https://a.example/", "https://a.example:443/p"));
	ck_assert(!redirect_same_origin("http://a.example/", "https://a.example/"));
	ck_assert(!redirect_same_origin("http://a.example/", "http://b.example/"));
	ck_assert(!redirect_same_origin("http://127.0.0.1:8000/", "http://127.0.0.1:8001/"));
	ck_assert(!redirect_same_origin("not a url", "not a url"));
}
END_TEST

START_TEST(test_credential_headers_are_recognised_case_insensitively)
{
	ck_assert(redirect_is_credential_header("Authorization"));
	ck_assert(redirect_is_credential_header("cookie"));
	ck_assert(redirect_is_credential_header("PROXY-AUTHORIZATION"));
	ck_assert(!redirect_is_credential_header("Accept"));
	ck_assert(!redirect_is_credential_header("X-Authorization-Hint"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("redirect");
	TCase *tc = tcase_create("rules");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_303_turns_every_method_but_head_into_bodyless_get);
	tcase_add_test(tc, test_301_and_302_turn_only_post_into_get);
	tcase_add_test(tc, test_307_and_308_keep_method_and_body);
	tcase_add_test(tc, test_only_redirect_statuses_are_followed);
	tcase_add_test(tc, test_same_origin_compares_scheme_host_and_effective_port);
	tcase_add_test(tc, test_credential_headers_are_recognised_case_insensitively);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
