/* fetch_map_curl_error: libcurl's codes to fetchd's errors. Every TLS code
 * of libcurl 7.88 is tls_error. (51, CURLE_PEER_FAILED_VERIFICATION before
 * 7.62, no longer exists: 7.88 calls it CURLE_OBSOLETE51 and reports
 * verification failures as 60; it maps to upstream_error like any code
 * libcurl never returns.) */
#include <check.h>
#include <curl/curl.h>
#include <stdlib.h>

#include "errors.h"
#include "fetch.h"

START_TEST(test_every_curl_tls_code_is_tls_error)
{
	static const struct {
		int code;
		CURLcode name;
	} tls[] = {
		{35, CURLE_SSL_CONNECT_ERROR},
		{53, CURLE_SSL_ENGINE_NOTFOUND},
		{54, CURLE_SSL_ENGINE_SETFAILED},
		{58, CURLE_SSL_CERTPROBLEM},
		{59, CURLE_SSL_CIPHER},
		{60, CURLE_PEER_FAILED_VERIFICATION},
		{64, CURLE_USE_SSL_FAILED},
		{66, CURLE_SSL_ENGINE_INITFAILED},
		{77, CURLE_SSL_CACERT_BADFILE},
		{80, CURLE_SSL_SHUTDOWN_FAILED},
		{82, CURLE_SSL_CRL_BADFILE},
		{83, CURLE_SSL_ISSUER_ERROR},
		{90, CURLE_SSL_PINNEDPUBKEYNOTMATCH},
		{91, CURLE_SSL_INVALIDCERTSTATUS},
		{98, CURLE_SSL_CLIENTCERT},
	};

	for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++) {
		/* the numbers are libcurl's ABI: the names must still mean them */
		ck_assert_int_eq((int)tls[i].name, tls[i].code);
		ck_assert_msg(fetch_map_curl_error(tls[i].code) == ERR_TLS_ERROR,
			      "curl code %d (%s) should be tls_error", tls[i].code,
			      curl_easy_strerror(tls[i].name));
	}
}
END_TEST

START_TEST(test_curl_51_is_gone_and_not_tls_error)
{
	ck_assert_int_eq(CURLE_OBSOLETE51, 51);
	ck_assert_int_eq(fetch_map_curl_error(51), ERR_UPSTREAM_ERROR);
}
END_TEST

START_TEST(test_other_codes_map_to_their_errors)
{
	ck_assert_int_eq(fetch_map_curl_error(CURLE_COULDNT_RESOLVE_HOST), ERR_DNS_FAILURE);
	ck_assert_int_eq(fetch_map_curl_error(CURLE_COULDNT_RESOLVE_PROXY), ERR_DNS_FAILURE);
	ck_assert_int_eq(fetch_map_curl_error(CURLE_COULDNT_CONNECT), ERR_CONNECT_FAILED);
	ck_assert_int_eq(fetch_map_curl_error(CURLE_OPERATION_TIMEDOUT), ERR_UPSTREAM_TIMEOUT);
	ck_assert_int_eq(fetch_map_curl_error(CURLE_FILESIZE_EXCEEDED), ERR_RESPONSE_TOO_LARGE);
	/* a send or receive failure alone is not TLS: fetch_run decides
	 * from the hop (https, no response byte) */
	ck_assert_int_eq(fetch_map_curl_error(CURLE_RECV_ERROR), ERR_UPSTREAM_ERROR);
	ck_assert_int_eq(fetch_map_curl_error(CURLE_SEND_ERROR), ERR_UPSTREAM_ERROR);
	ck_assert_int_eq(fetch_map_curl_error(CURLE_GOT_NOTHING), ERR_UPSTREAM_ERROR);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fetch_errors");
	TCase *tc = tcase_create("mapping");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_every_curl_tls_code_is_tls_error);
	tcase_add_test(tc, test_curl_51_is_gone_and_not_tls_error);
	tcase_add_test(tc, test_other_codes_map_to_their_errors);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
