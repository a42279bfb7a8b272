/* HTTPS through fetchd, as it behaves today: verification on by default,
 * [fetch] ca_file, the four bad certificates (unknown CA, expired, wrong
 * name, self-signed), verify_tls and allow_insecure, http_version over
 * HTTP/1.1 and HTTP/2, credentials dropped on an https -> http redirect,
 * a reload taking ca_file away, and TLS sessions shared between workers
 * (TLS 1.2 and 1.3).
 *
 * The infrastructure (certificates made at test time, the TLS upstream,
 * nginx for HTTP/2) is tests/tlslib.[ch]; the features added on top of
 * today's behaviour (http_version, the tls field, client certificates,
 * allow_downgrade, reload dropping TLS state) are in check_tls_features.c.
 * Only 127.0.0.1; every process is stopped by PID, every wait bounded. */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "harness.h"
#include "testlib.h"
#include "tlslib.h"

#define TEST_TIMEOUT_S 60
#define THREADS 4 /* fetchd's workers in the session-sharing tests */

/* ---- verification ---- */

START_TEST(test_verification_is_on_by_default_and_an_unknown_ca_is_tls_error)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	tls_upstream_start(&u, "leaf", false, NULL);
	tls_fetchd_start(&f, 2, false, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_tls_error(&r, "unable to get local issuer certificate");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

START_TEST(test_ca_file_trusts_the_private_ca)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;
	json_t *tls_ms;

	tls_upstream_start(&u, "leaf", false, NULL);
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	expect_str(&r, "url", url);
	/* the handshake took time: TLS was spoken */
	tls_ms = json_path(r.json, "timing.tls_ms");
	ck_assert_msg(json_is_number(tls_ms) && json_number_value(tls_ms) > 0,
		      "timing.tls_ms should be > 0 over https; body: %.1000s", body_of(&r));
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* Each bad certificate is refused even though ca_file trusts the CA: a
 * 502 tls_error whose curl_error says why. */
static void expect_leaf_refused(const char *leaf, const char *why)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	tls_upstream_start(&u, leaf, false, NULL);
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_tls_error(&r, why);
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}

START_TEST(test_expired_certificate_is_tls_error)
{
	expect_leaf_refused("expired", "certificate has expired");
}
END_TEST

/* a leaf for wrong.example only, by the trusted CA, at 127.0.0.1 */
START_TEST(test_wrong_name_is_tls_error)
{
	expect_leaf_refused("wrong-name", "subject name");
}
END_TEST

START_TEST(test_self_signed_certificate_is_tls_error)
{
	expect_leaf_refused("self-signed", "self-signed certificate");
}
END_TEST

/* An upstream that requires a client certificate refuses fetchd, which has
 * none to give (TLS 1.2: the refusal comes inside the handshake). */
START_TEST(test_upstream_requiring_a_client_certificate_is_tls_error)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	tls_upstream_start(&u, "leaf", true, "1.2");
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_error(&r, 502, "tls_error");
	expect_curl_code(&r);
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* ---- verify_tls and allow_insecure ---- */

START_TEST(test_verify_tls_false_without_allow_insecure_is_400)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	tls_upstream_start(&u, "leaf", false, NULL);
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, true, &r);
	expect_error(&r, 400, "invalid_request");
	expect_message_has(&r, "verify_tls");
	http_resp_free(&r);
	/* refused before any fetch: the upstream saw no handshake */
	ck_assert_int_eq(tls_stat(&u, "/tls-stats", "full"), 0);
	ck_assert_int_eq(tls_stat(&u, "/tls-stats", "resumed"), 0);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

START_TEST(test_allow_insecure_lets_verify_tls_false_fetch_every_bad_certificate)
{
	/* unknown CA (no ca_file here), expired, wrong name, self-signed */
	static const char *const certs[] = {"leaf", "expired", "wrong-name", "self-signed"};
	struct upstream u[4];
	struct fetchd f;

	for (int i = 0; i < 4; i++)
		tls_upstream_start(&u[i], certs[i], false, NULL);
	tls_fetchd_start(&f, 2, false, "allow_insecure = true\n");
	for (int i = 0; i < 4; i++) {
		char *url = tls_url(&u[i], "127.0.0.1", "/json");
		struct http_resp r;

		fetch_tls_url(&f, url, true, &r);
		ck_assert_msg(r.status == 200,
			      "%s with verify_tls false: want 200, got %ld: %.1000s", certs[i],
			      r.status, body_of(&r));
		expect_json_fetched(&r);
		http_resp_free(&r);
		/* allow_insecure only permits the opt-out: verification stays on */
		fetch_tls_url(&f, url, false, &r);
		ck_assert_msg(r.status == 502, "%s verified: want 502, got %ld: %.1000s", certs[i],
			      r.status, body_of(&r));
		expect_str(&r, "error.code", "tls_error");
		http_resp_free(&r);
		free(url);
	}
	fetchd_stop(&f);
	for (int i = 0; i < 4; i++)
		upstream_stop(&u[i]);
}
END_TEST

/* ---- HTTP versions ---- */

START_TEST(test_http_version_is_2_against_an_h2_server)
{
	struct h2_server s;
	struct fetchd f;
	struct http_resp r;
	char *url;

	h2_start(&s);
	tls_fetchd_start(&f, 2, true, NULL);
	url = str_printf("https://127.0.0.1:%d/", s.port);
	fetch_tls_url(&f, url, false, &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_str(&r, "http_version", "2");
	expect_str(&r, "text", "hello h2\n");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	h2_stop(&s);
}
END_TEST

START_TEST(test_http_version_is_1_1_against_the_tls_upstream)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	tls_upstream_start(&u, "leaf", false, NULL);
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	expect_str(&r, "http_version", "1.1");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* ---- redirects ---- */

/* Fetch the TLS upstream's /redirect?to=TO with credentials and a plain
 * header; r is the document of the final /echo. */
static void fetch_redirect_with_credentials(const struct fetchd *f, const struct upstream *u,
					    const char *to, struct http_resp *r)
{
	char *enc = url_encode(to);
	char *path = str_printf("/redirect?status=302&to=%s", enc);
	char *url = tls_url(u, "127.0.0.1", path);

	fetch(f,
	      json_pack("{s:s,s:{s:s,s:s,s:s,s:s}}", "url", url, "headers", "Authorization",
			"Bearer secret", "Cookie", "session=abc", "Proxy-Authorization",
			"Basic cHJveHk6cHc=", "X-Plain", "kept"),
	      r);
	expect_status(r, 200);
	expect_int(r, "status", 200);
	expect_int(r, "history.0.status", 302);
	expect_str(r, "history.0.url", url);
	expect_str(r, "json.path", "/echo");
	expect_str(r, "json.headers.x-plain", "kept");
	free(url);
	free(path);
	free(enc);
}

START_TEST(test_https_to_http_redirect_drops_credentials)
{
	struct upstream u, plain;
	struct fetchd f;
	struct http_resp r;
	char *to;

	tls_upstream_start(&u, "leaf", false, NULL);
	upstream_start(&plain);
	tls_fetchd_start(&f, 2, true, NULL);

	/* within the https origin they are kept: the echo can see them */
	fetch_redirect_with_credentials(&f, &u, "/echo", &r);
	expect_str(&r, "json.headers.authorization", "Bearer secret");
	expect_str(&r, "json.headers.cookie", "session=abc");
	expect_str(&r, "json.headers.proxy-authorization", "Basic cHJveHk6cHc=");
	http_resp_free(&r);

	/* https -> http is another origin */
	to = up_url(&plain, "/echo");
	fetch_redirect_with_credentials(&f, &u, to, &r);
	expect_str(&r, "url", to);
	expect_absent(&r, "json.headers.authorization");
	expect_absent(&r, "json.headers.cookie");
	expect_absent(&r, "json.headers.proxy-authorization");
	http_resp_free(&r);
	free(to);
	fetchd_stop(&f);
	upstream_stop(&plain);
	upstream_stop(&u);
}
END_TEST

/* ---- reload ---- */

/* The worker that fetched under ca_file keeps its connection and the TLS
 * session; once a reload has taken ca_file away, neither may carry the old
 * trust: the next fetch is verified again and fails. */
START_TEST(test_reload_without_ca_file_verifies_the_next_fetch_again)
{
	struct fetchd_opts o = {.allow_loopback = true, .keep_config = true};
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *ca = cert_path("ca.pem");
	char *conf = str_printf("[pool]\nthreads = 1\n[fetch]\nca_file = %s\n", ca);
	char *url;

	tls_upstream_start(&u, "leaf", false, NULL);
	o.extra_config = conf;
	fetchd_start(&f, &o);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	http_resp_free(&r);

	reload_with(&f, "[pool]\nthreads = 1\n", 1);
	fetch_tls_url(&f, url, false, &r);
	expect_tls_error(&r, "unable to get local issuer certificate");
	http_resp_free(&r);
	free(url);
	free(conf);
	free(ca);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* ---- TLS sessions shared between workers ---- */

/* One fetch makes a full handshake; then THREADS concurrent fetches hold
 * every worker, so THREADS - 1 of them open new connections on workers that
 * never talked to the upstream. With the share handle's SSL session cache
 * (CURL_LOCK_DATA_SSL_SESSION) they resume the first session: the upstream
 * counts one full handshake in all. */
static void check_sessions_shared(const char *max_version, long max_full)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	struct bg_request *bg[THREADS];
	char *url;
	long full, resumed;

	tls_upstream_start(&u, "leaf", false, max_version);
	tls_fetchd_start(&f, THREADS, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	http_resp_free(&r);
	ck_assert_int_eq(tls_stat(&u, "/tls-stats", "full"), 1);

	tls_hold(&f, &u, bg, THREADS, "sessions");
	tls_release(&u, "sessions", THREADS);
	join_held(bg, THREADS);

	full = tls_stat(&u, "/tls-stats", "full");
	resumed = tls_stat(&u, "/tls-stats", "resumed");
	ck_assert_msg(full <= max_full && full + resumed >= THREADS &&
			      resumed >= THREADS - max_full,
		      "TLS %s: want at most %ld full handshake(s), the other new connections "
		      "resumed; got %ld full and %ld resumed",
		      max_version != NULL ? max_version : "1.3", max_full, full, resumed);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}

/* TLS 1.3: one or two of the new connections sometimes make a full
 * handshake of their own (measured: "2 full, 2 resumed" 1 run in 6 plain,
 * 1 in 2 under ASan; "3 full, 1 resumed" 1 run in 15 plain, on this
 * branch and on the commit before it alike; TLS 1.2 never). libcurl 7.88
 * replaces the shared TLS 1.3 session each time a connection receives a
 * new ticket, and a worker that connects meanwhile may offer one the
 * server does not take. Without sharing every new connection is full ("4
 * full, 0 resumed"), which this still fails: at least one resumes. The
 * README's HTTPS section states the limit. */
START_TEST(test_tls13_sessions_are_shared_between_workers)
{
	check_sessions_shared(NULL, THREADS - 1);
}
END_TEST

START_TEST(test_tls12_sessions_are_shared_between_workers)
{
	check_sessions_shared("1.2", 1);
}
END_TEST

/* ---- the infrastructure itself ---- */

/* The mTLS upstream and the client certificates the next tests will hand
 * fetchd: the one by client-ca gets in, the one by another CA does not. */
START_TEST(test_upstream_requires_a_client_certificate_by_its_client_ca)
{
	struct upstream u;
	json_t *j = NULL;
	long status;

	tls_upstream_start(&u, "leaf", true, NULL);
	ck_assert_int_eq(tls_get(&u, "/json", "client", &status, &j), CURLE_OK);
	ck_assert_int_eq(status, 200);
	ck_assert_msg(json_is_string(json_object_get(j, "hello")),
		      "no /json from the mTLS upstream");
	json_decref(j);
	j = NULL;
	ck_assert_int_ne(tls_get(&u, "/json", "client-other", &status, &j), CURLE_OK);
	json_decref(j);
	j = NULL;
	ck_assert_int_ne(tls_get(&u, "/json", NULL, &status, &j), CURLE_OK);
	json_decref(j);
	upstream_stop(&u);
}
END_TEST

static Suite *tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("verification");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_verification_is_on_by_default_and_an_unknown_ca_is_tls_error);
	tcase_add_test(tc, test_ca_file_trusts_the_private_ca);
	tcase_add_test(tc, test_expired_certificate_is_tls_error);
	tcase_add_test(tc, test_wrong_name_is_tls_error);
	tcase_add_test(tc, test_self_signed_certificate_is_tls_error);
	tcase_add_test(tc, test_upstream_requiring_a_client_certificate_is_tls_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("insecure");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_verify_tls_false_without_allow_insecure_is_400);
	tcase_add_test(tc, test_allow_insecure_lets_verify_tls_false_fetch_every_bad_certificate);
	suite_add_tcase(s, tc);

	tc = tcase_create("http_version");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_http_version_is_2_against_an_h2_server);
	tcase_add_test(tc, test_http_version_is_1_1_against_the_tls_upstream);
	suite_add_tcase(s, tc);

	tc = tcase_create("redirects");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_https_to_http_redirect_drops_credentials);
	suite_add_tcase(s, tc);

	tc = tcase_create("reload");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_reload_without_ca_file_verifies_the_next_fetch_again);
	suite_add_tcase(s, tc);

	tc = tcase_create("sessions");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_tls13_sessions_are_shared_between_workers);
	tcase_add_test(tc, test_tls12_sessions_are_shared_between_workers);
	suite_add_tcase(s, tc);

	tc = tcase_create("infrastructure");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_upstream_requires_a_client_certificate_by_its_client_ca);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	make_certs();
	return run_suite(tls_suite(), CK_NORMAL);
}
