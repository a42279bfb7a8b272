/* Redirects from an allowed upstream to what the guard denies: other
 * loopback spellings, fetchd's own port, the metadata address, at the hop
 * that names them; and redirects to schemes fetchd refuses (file, gopher).
 *
 * Security tests: adversarial cases over real HTTP against a real fetchd
 * and the upstream test server (SPEC sections 2 and 3 [security]). No case
 * sends traffic anywhere but 127.0.0.0/8 and ::1.
 *
 * A shared fetchd (testlib.h: guard_d, main_d, big_d) is started once per
 * TCase, so the cases of a TCase hit the same daemon. Waits are bounded
 * polls; nothing sleeps for a fixed long time.
 *
 * Cases that name an off-machine address (10.0.0.1, 169.254.169.254,
 * fc00::1, ...) do not rely on fetchd's guard to keep it so: main()
 * re-executes this program under `unshare -n` (netns.h), in a network
 * namespace whose only interface is lo, and registers those cases only there.
 * Without root or a working unshare they are skipped, with a note saying why. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "harness.h"
#include "netns.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120

/* Set by main() when this process runs in a private network namespace
 * whose only interface is lo. */
static bool in_netns;

/* ---- redirects from the allowed upstream ---- */

/* A redirect from the allowed upstream to target: 403 naming hop 1, and
 * key (may be NULL) never hit. */
static void check_redirect_denied(const char *target, const char *key, const char *hop)
{
	char *url = redirect_to(target);
	struct http_resp r;

	fetch_url(&main_d, url, &r);
	ck_assert_msg(r.status != 200, "the redirect to %s was followed: %.1000s", target,
		      body_of(&r));
	expect_error(&r, 403, "destination_denied");
	expect_message_has(&r, hop);
	http_resp_free(&r);
	if (key != NULL)
		expect_no_hits(key);
	free(url);
}

START_TEST(test_redirect_to_other_loopback_address_is_denied_at_hop_1)
{
	char *target = str_printf("http://127.0.0.2:%d/count?key=r127002", up.port);

	check_redirect_denied(target, "r127002", "hop 1");
	free(target);
}
END_TEST

START_TEST(test_redirect_to_ipv6_loopback_is_denied)
{
	char *target = str_printf("http://[::1]:%d/count?key=rv6", up.port);

	check_redirect_denied(target, "rv6", "hop 1");
	free(target);
}
END_TEST

START_TEST(test_redirect_to_mapped_other_loopback_is_denied)
{
	char *target = str_printf("http://[::ffff:127.0.0.2]:%d/count?key=rmapped", up.port);

	check_redirect_denied(target, "rmapped", "hop 1");
	free(target);
}
END_TEST

START_TEST(test_redirect_to_integer_loopback_is_denied)
{
	char *target = str_printf("http://2130706434:%d/count?key=rint", up.port);

	check_redirect_denied(target, "rint", "hop 1");
	free(target);
}
END_TEST

START_TEST(test_second_redirect_to_denied_address_names_hop_2)
{
	char *target = str_printf("http://127.0.0.2:%d/count?key=rhop2", up.port);
	char *first = redirect_to(target);

	check_redirect_denied(first, "rhop2", "hop 2");
	free(first);
	free(target);
}
END_TEST

START_TEST(test_redirect_to_fetchd_own_port_is_denied)
{
	char *target = str_printf("http://127.0.0.1:%d/v1/stats", main_d.port);

	check_redirect_denied(target, NULL, "hop 1");
	free(target);
}
END_TEST

/* A redirect to a scheme fetchd never fetches: 502 naming the scheme. */
static void check_redirect_scheme_refused(const char *target, const char *scheme)
{
	char *url = redirect_to(target);
	struct http_resp r;

	fetch_url(&main_d, url, &r);
	expect_error(&r, 502, "upstream_error");
	expect_message_has(&r, scheme);
	expect_int(&r, "error.curl_code", 1); /* CURLE_UNSUPPORTED_PROTOCOL */
	ck_assert_msg(strstr(body_of(&r), "root:") == NULL, "local file content leaked: %.1000s",
		      body_of(&r));
	http_resp_free(&r);
	free(url);
}

START_TEST(test_redirect_to_file_url_is_502_naming_the_scheme)
{
	check_redirect_scheme_refused("file:///etc/passwd", "file");
}
END_TEST

START_TEST(test_redirect_to_gopher_is_502_naming_the_scheme)
{
	char *target = str_printf("gopher://127.0.0.1:%d/1count?key=gopher", up.port);

	check_redirect_scheme_refused(target, "gopher");
	expect_no_hits("gopher");
	free(target);
}
END_TEST

START_TEST(test_first_url_file_and_gopher_are_unsupported_scheme)
{
	static const char *const urls[] = {"file:///etc/passwd", "gopher://127.0.0.1/",
					   "dict://127.0.0.1:11211/stat", "FILE:///etc/passwd"};
	struct http_resp r;

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		fetch_url(&main_d, urls[i], &r);
		expect_error(&r, 400, "unsupported_scheme");
		http_resp_free(&r);
	}
}
END_TEST

/* Netns only: the metadata address behind a redirect. */
START_TEST(test_redirect_to_metadata_address_is_denied_at_hop_1)
{
	ck_assert_msg(in_netns, "off-machine case outside the private namespace");
	check_redirect_denied("http://169.254.169.254/latest/meta-data/", NULL, "hop 1");
	check_redirect_denied("http://10.0.0.1/", NULL, "hop 1");
}
END_TEST

static Suite *security_redirects_suite(void)
{
	Suite *s = suite_create("security_redirects");
	TCase *tc;

	tc = tcase_create("main");
	tcase_add_unchecked_fixture(tc, main_setup, main_teardown);
	tcase_add_checked_fixture(tc, main_settle, NULL);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_redirect_to_other_loopback_address_is_denied_at_hop_1);
	tcase_add_test(tc, test_redirect_to_ipv6_loopback_is_denied);
	tcase_add_test(tc, test_redirect_to_mapped_other_loopback_is_denied);
	tcase_add_test(tc, test_redirect_to_integer_loopback_is_denied);
	tcase_add_test(tc, test_second_redirect_to_denied_address_names_hop_2);
	tcase_add_test(tc, test_redirect_to_fetchd_own_port_is_denied);
	tcase_add_test(tc, test_redirect_to_file_url_is_502_naming_the_scheme);
	tcase_add_test(tc, test_redirect_to_gopher_is_502_naming_the_scheme);
	tcase_add_test(tc, test_first_url_file_and_gopher_are_unsupported_scheme);
	if (in_netns)
		tcase_add_test(tc, test_redirect_to_metadata_address_is_denied_at_hop_1);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	(void)argc;
	in_netns = netns_enter_private(argv, "the redirect to 169.254.169.254");
	harness_init();
	return run_suite(security_redirects_suite(), CK_ENV);
}
