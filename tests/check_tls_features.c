/* What fetchd adds on top of libcurl's TLS defaults (issue 12): the
 * request field http_version and its fallback, the document's tls field,
 * client certificates to upstreams that require them (TLS 1.2 and 1.3),
 * [fetch] allow_downgrade, and a reload that drops pooled TLS connections
 * and cached TLS sessions when the trust changes.
 *
 * Infrastructure: tests/tlslib.[ch] (certificates made at test time, the
 * TLS upstream, nginx for HTTP/2). Only 127.0.0.1; every process is
 * stopped by PID, every wait bounded. */
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
#define THREADS 4 /* fetchd's workers where every one must open a connection */

/* POST /v1/fetch of url with "http_version": version (NULL: not given). */
static void fetch_version(const struct fetchd *f, const char *url, const char *version,
			  struct http_resp *r)
{
	json_t *obj = json_pack("{s:s}", "url", url);

	if (version != NULL)
		json_object_set_new(obj, "http_version", json_string(version));
	fetch(f, obj, r);
}

/* ---- http_version ---- */

/* nginx offers h2 and http/1.1 in ALPN: "1.1" offers only http/1.1. */
START_TEST(test_http_version_1_1_against_the_h2_server_is_1_1)
{
	struct h2_server s;
	struct fetchd f;
	struct http_resp r;
	char *url;

	h2_start(&s);
	tls_fetchd_start(&f, 1, true, NULL);
	url = str_printf("https://127.0.0.1:%d/", s.port);
	fetch_version(&f, url, "auto", &r);
	expect_status(&r, 200);
	expect_str(&r, "http_version", "2");
	http_resp_free(&r);
	/* libcurl does not put an HTTP/1.1 request on the pooled h2
	 * connection: a new one */
	fetch_version(&f, url, "1.1", &r);
	expect_status(&r, 200);
	expect_str(&r, "http_version", "1.1");
	expect_str(&r, "text", "hello h2\n");
	expect_bool(&r, "tls.new_connection", true);
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	h2_stop(&s);
}
END_TEST

START_TEST(test_http_version_auto_and_2_against_the_h2_server_are_2)
{
	struct h2_server s;
	struct fetchd f;
	struct http_resp r;
	char *url;

	h2_start(&s);
	tls_fetchd_start(&f, 2, true, NULL);
	url = str_printf("https://127.0.0.1:%d/", s.port);
	fetch_version(&f, url, "auto", &r);
	expect_status(&r, 200);
	expect_str(&r, "http_version", "2");
	http_resp_free(&r);
	fetch_version(&f, url, "2", &r);
	expect_status(&r, 200);
	expect_str(&r, "http_version", "2");
	expect_str(&r, "text", "hello h2\n");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	h2_stop(&s);
}
END_TEST

/* The TLS upstream offers no h2 in ALPN: curl speaks HTTP/1.1. */
START_TEST(test_http_version_2_against_an_http11_server_falls_back_to_1_1)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	tls_upstream_start(&u, "leaf", false, NULL);
	tls_fetchd_start(&f, 2, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_version(&f, url, "2", &r);
	expect_json_fetched(&r);
	expect_str(&r, "http_version", "1.1");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* Over http://, "2" is curl 7.88's h2c Upgrade; a server that does not
 * take it answers in HTTP/1.1. "1.1" sends no Upgrade. */
START_TEST(test_http_version_2_over_http_is_an_h2c_upgrade_that_falls_back)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	upstream_start(&u);
	tls_fetchd_start(&f, 2, false, NULL);
	url = up_url(&u, "/echo");
	fetch_version(&f, url, "2", &r);
	expect_status(&r, 200);
	expect_str(&r, "http_version", "1.1");
	expect_str(&r, "json.headers.upgrade", "h2c");
	http_resp_free(&r);
	fetch_version(&f, url, "1.1", &r);
	expect_status(&r, 200);
	expect_absent(&r, "json.headers.upgrade");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

START_TEST(test_a_bad_http_version_is_400_naming_the_field)
{
	static const char *const bad[] = {"3", "2.0", "HTTP/2", "AUTO", "1.0", ""};
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	upstream_start(&u);
	tls_fetchd_start(&f, 2, false, NULL);
	url = up_url(&u, "/count?key=bad");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fetch_version(&f, url, bad[i], &r);
		expect_error(&r, 400, "invalid_request");
		expect_message_has(&r, "http_version");
		http_resp_free(&r);
	}
	fetch(&f, json_pack("{s:s,s:i}", "url", url, "http_version", 2), &r);
	expect_error(&r, 400, "invalid_request");
	expect_message_has(&r, "http_version");
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&u, "bad", "hits"), 0);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* ---- the tls field ---- */

/* Does the array at path hold the string want? */
static bool array_has(const struct http_resp *r, const char *path, const char *want)
{
	json_t *a = json_path(r->json, path), *v;
	size_t i;

	json_array_foreach (a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
			return true;
	return false;
}

static void expect_str_has(const struct http_resp *r, const char *path, const char *needle)
{
	json_t *v = json_path(r->json, path);

	ck_assert_msg(json_is_string(v) && strstr(json_string_value(v), needle) != NULL,
		      "%s should contain \"%s\"; body: %.1000s", path, needle, body_of(r));
}

/* The tls field of a fetch of the leaf upstream: version, a cipher, the
 * peer certificate's names, SANs and expiry. */
static void check_tls_field(const char *max_version, const char *want_version)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	json_t *na;
	char *url;

	tls_upstream_start(&u, "leaf", false, max_version);
	/* one worker: the second fetch below surely reuses its connection
	 * (with two, it may land on the other one before the first is idle) */
	tls_fetchd_start(&f, 1, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	expect_str(&r, "tls.version", want_version);
	ck_assert_msg(json_string_length(json_path(r.json, "tls.cipher")) > 0,
		      "tls.cipher should be named; body: %.1000s", body_of(&r));
	expect_bool(&r, "tls.resumed", false);
	expect_bool(&r, "tls.new_connection", true);
	expect_str_has(&r, "tls.peer.subject", "CN=127.0.0.1");
	expect_str_has(&r, "tls.peer.issuer", "CN=fetchd test CA");
	ck_assert_msg(array_has(&r, "tls.peer.san", "IP:127.0.0.1") &&
			      array_has(&r, "tls.peer.san", "DNS:localhost"),
		      "tls.peer.san should hold IP:127.0.0.1 and DNS:localhost; body: %.1000s",
		      body_of(&r));
	/* mkcerts.sh makes leaves valid for 2 days: RFC 3339 UTC */
	na = json_path(r.json, "tls.peer.not_after");
	ck_assert_msg(json_is_string(na) && json_string_length(na) == 20 &&
			      json_string_value(na)[4] == '-' && json_string_value(na)[10] == 'T' &&
			      json_string_value(na)[19] == 'Z',
		      "tls.peer.not_after should be YYYY-MM-DDTHH:MM:SSZ; body: %.1000s",
		      body_of(&r));
	http_resp_free(&r);

	/* the same worker again: its pooled connection, no new handshake */
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	expect_str(&r, "tls.version", want_version);
	expect_bool(&r, "tls.new_connection", false);
	http_resp_free(&r);

	/* only when asked */
	fetch(&f, json_pack("{s:s,s:[s]}", "url", url, "fields", "status"), &r);
	expect_int(&r, "status", 200);
	expect_absent(&r, "tls");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}

START_TEST(test_tls_field_shows_tls13_and_the_peer_certificate)
{
	check_tls_field(NULL, "TLSv1.3");
}
END_TEST

START_TEST(test_tls_field_shows_tls12_when_the_server_stops_there)
{
	check_tls_field("1.2", "TLSv1.2");
}
END_TEST

START_TEST(test_tls_field_is_null_over_http)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *url;

	upstream_start(&u);
	tls_fetchd_start(&f, 2, false, NULL);
	url = up_url(&u, "/json");
	fetch_url(&f, url, &r);
	expect_status(&r, 200);
	expect_null(&r, "tls");
	http_resp_free(&r);
	fetch(&f, json_pack("{s:s,s:[s,s]}", "url", url, "fields", "status", "tls"), &r);
	expect_int(&r, "status", 200);
	expect_null(&r, "tls");
	http_resp_free(&r);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* The https hop of an https -> http chain has TLS; the document's is the
 * final hop's: null. */
START_TEST(test_tls_field_is_the_final_hops)
{
	struct upstream u, plain;
	struct fetchd f;
	struct http_resp r;
	char *to, *enc, *path, *url;

	tls_upstream_start(&u, "leaf", false, NULL);
	upstream_start(&plain);
	tls_fetchd_start(&f, 2, true, NULL);
	to = up_url(&plain, "/json");
	enc = url_encode(to);
	path = str_printf("/redirect?status=302&to=%s", enc);
	url = tls_url(&u, "127.0.0.1", path);
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	expect_int(&r, "history.0.status", 302);
	expect_null(&r, "tls");
	http_resp_free(&r);
	free(url);
	free(path);
	free(enc);
	free(to);
	fetchd_stop(&f);
	upstream_stop(&plain);
	upstream_stop(&u);
}
END_TEST

/* The sessions scenario of check_tls (TLS 1.2, where sharing is exact):
 * after one full handshake, THREADS concurrent fetches hold every worker;
 * the THREADS - 1 on workers that never talked to the upstream open new
 * connections and resume the shared session, and their documents say so. */
START_TEST(test_tls_field_shows_a_resumed_session_on_a_new_connection)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	struct bg_request *bg[THREADS];
	char *url;
	int resumed_new = 0, reused = 0;

	tls_upstream_start(&u, "leaf", false, "1.2");
	tls_fetchd_start(&f, THREADS, true, NULL);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	expect_bool(&r, "tls.resumed", false);
	http_resp_free(&r);

	tls_hold(&f, &u, bg, THREADS, "resumed");
	tls_release(&u, "resumed", THREADS);
	for (int i = 0; i < THREADS; i++) {
		json_t *rs, *nc;

		ck_assert_int_eq(bg_join(bg[i], &r), 0);
		expect_status(&r, 200);
		expect_str(&r, "tls.version", "TLSv1.2");
		rs = json_path(r.json, "tls.resumed");
		nc = json_path(r.json, "tls.new_connection");
		ck_assert_msg(json_is_boolean(rs) && json_is_boolean(nc),
			      "tls.resumed and tls.new_connection: %.1000s", body_of(&r));
		if (json_is_true(rs) && json_is_true(nc))
			resumed_new++;
		if (!json_is_true(nc))
			reused++;
		http_resp_free(&r);
	}
	ck_assert_msg(resumed_new == THREADS - 1 && reused == 1,
		      "want %d new connections that resumed and 1 reused; got %d and %d",
		      THREADS - 1, resumed_new, reused);
	ck_assert_int_eq(tls_stat(&u, "/tls-stats", "full"), 1);
	free(url);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* ---- client certificates ---- */

/* fetchd showing DIR/cert.pem with its key (cert NULL: none) to the mTLS
 * upstream (client-ca) at max_version; want_ok: 200, else tls_error. */
static void check_client_cert(const char *max_version, const char *cert, bool want_ok)
{
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *extra = NULL, *url;

	if (cert != NULL)
		extra = str_printf("client_cert = %s/%s.pem\nclient_key = %s/%s.key\n", cert_dir,
				   cert, cert_dir, cert);
	tls_upstream_start(&u, "leaf", true, max_version);
	tls_fetchd_start(&f, 2, true, extra);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	if (want_ok) {
		expect_json_fetched(&r);
	} else {
		expect_error(&r, 502, "tls_error");
		expect_curl_code(&r);
	}
	http_resp_free(&r);
	free(url);
	free(extra);
	fetchd_stop(&f);
	upstream_stop(&u);
}

START_TEST(test_client_certificate_by_the_upstreams_ca_is_accepted_tls12)
{
	check_client_cert("1.2", "client", true);
}
END_TEST

START_TEST(test_client_certificate_by_another_ca_is_tls_error_tls12)
{
	check_client_cert("1.2", "client-other", false);
}
END_TEST

START_TEST(test_no_client_certificate_is_tls_error_tls12)
{
	check_client_cert("1.2", NULL, false);
}
END_TEST

START_TEST(test_client_certificate_by_the_upstreams_ca_is_accepted_tls13)
{
	check_client_cert(NULL, "client", true);
}
END_TEST

/* TLS 1.3: the refusal comes after curl's handshake, as a receive error
 * with no response byte (fetch.c: refused_after_handshake). */
START_TEST(test_client_certificate_by_another_ca_is_tls_error_tls13)
{
	check_client_cert(NULL, "client-other", false);
}
END_TEST

START_TEST(test_no_client_certificate_is_tls_error_tls13)
{
	check_client_cert(NULL, NULL, false);
}
END_TEST

/* ---- allow_downgrade ---- */

/* Fetch the TLS upstream's redirect to the plain upstream's
 * /count?key=KEY. */
static void fetch_downgrade(const struct fetchd *f, const struct upstream *u,
			    const struct upstream *plain, const char *key, struct http_resp *r)
{
	char *count = str_printf("/count?key=%s", key);
	char *to = up_url(plain, count);
	char *enc = url_encode(to);
	char *path = str_printf("/redirect?status=302&to=%s", enc);
	char *url = tls_url(u, "127.0.0.1", path);

	fetch_tls_url(f, url, false, r);
	free(url);
	free(path);
	free(enc);
	free(to);
	free(count);
}

START_TEST(test_allow_downgrade_false_refuses_an_https_to_http_redirect)
{
	struct upstream u, plain;
	struct fetchd f;
	struct http_resp r;

	tls_upstream_start(&u, "leaf", false, NULL);
	upstream_start(&plain);
	tls_fetchd_start(&f, 2, true, "allow_downgrade = false\n");
	fetch_downgrade(&f, &u, &plain, "down", &r);
	expect_error(&r, 502, "upstream_error");
	expect_message_has(&r, "redirect from https to http is not allowed (hop 1)");
	expect_int(&r, "error.curl_code", CURLE_UNSUPPORTED_PROTOCOL);
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&plain, "down", "hits"), 0);
	fetchd_stop(&f);
	upstream_stop(&plain);
	upstream_stop(&u);
}
END_TEST

START_TEST(test_allow_downgrade_default_follows_an_https_to_http_redirect)
{
	struct upstream u, plain;
	struct fetchd f;
	struct http_resp r;

	tls_upstream_start(&u, "leaf", false, NULL);
	upstream_start(&plain);
	tls_fetchd_start(&f, 2, true, NULL);
	fetch_downgrade(&f, &u, &plain, "down", &r);
	expect_status(&r, 200);
	expect_int(&r, "status", 200);
	expect_int(&r, "history.0.status", 302);
	expect_int(&r, "json.hits", 1);
	http_resp_free(&r);
	ck_assert_int_eq(upstream_counter(&plain, "down", "hits"), 1);
	fetchd_stop(&f);
	upstream_stop(&plain);
	upstream_stop(&u);
}
END_TEST

/* ---- reload ---- */

static void copy_file(const char *from, const char *to)
{
	char buf[16384];
	FILE *in = fopen(from, "rb"), *out;
	size_t n;

	ck_assert_msg(in != NULL, "open %s", from);
	out = fopen(to, "wb");
	ck_assert_msg(out != NULL, "open %s", to);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		ck_assert_msg(fwrite(buf, 1, n, out) == n, "write %s", to);
	fclose(in);
	ck_assert_msg(fclose(out) == 0, "close %s", to);
}

/* ca_file names trust.pem, a copy of the test CA; every worker opens a
 * connection and caches the session. Then trust.pem becomes another CA at
 * the same path and fetchd reloads: its config text is unchanged, but the
 * CA's bytes are not, so no pooled connection and no cached session may
 * carry the old trust. Every fetch opens a new connection and fails
 * verification (with THREADS at once, every worker does). */
START_TEST(test_reload_with_another_ca_at_the_same_path_drops_connections_and_sessions)
{
	struct fetchd_opts o = {.allow_loopback = true, .keep_config = true};
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	struct bg_request *bg[THREADS];
	char *ca = cert_path("ca.pem"), *other = cert_path("client-ca.pem");
	char *trust = str_printf("%s/trust-%d.pem", cert_dir, (int)getpid());
	char *conf = str_printf("[pool]\nthreads = %d\n[fetch]\nca_file = %s\n", THREADS, trust);
	char *url;

	copy_file(ca, trust);
	tls_upstream_start(&u, "leaf", false, NULL);
	o.extra_config = conf;
	fetchd_start(&f, &o);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	http_resp_free(&r);
	tls_hold(&f, &u, bg, THREADS, "before");
	tls_release(&u, "before", THREADS);
	join_held(bg, THREADS);

	copy_file(other, trust);
	reload_with(&f, conf, 1);
	for (int i = 0; i < THREADS; i++)
		bg[i] = bg_post_obj(f.port, "/v1/fetch", json_pack("{s:s}", "url", url));
	for (int i = 0; i < THREADS; i++) {
		ck_assert_int_eq(bg_join(bg[i], &r), 0);
		expect_tls_error(&r, "unable to get local issuer certificate");
		http_resp_free(&r);
	}
	/* and one more, on whichever worker */
	fetch_tls_url(&f, url, false, &r);
	expect_tls_error(&r, "unable to get local issuer certificate");
	http_resp_free(&r);
	remove(trust);
	free(url);
	free(conf);
	free(trust);
	free(other);
	free(ca);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

/* A reload that changes nothing of TLS keeps the pool: the next fetch
 * reuses its connection. */
START_TEST(test_reload_without_tls_changes_keeps_pooled_connections)
{
	struct fetchd_opts o = {.allow_loopback = true, .keep_config = true};
	struct upstream u;
	struct fetchd f;
	struct http_resp r;
	char *ca = cert_path("ca.pem");
	char *conf = str_printf("[pool]\nthreads = 1\n[fetch]\nca_file = %s\n", ca);
	char *conf2 = str_printf("[pool]\nthreads = 1\n[fetch]\nca_file = %s\ntimeout = 20s\n", ca);
	char *url;

	tls_upstream_start(&u, "leaf", false, NULL);
	o.extra_config = conf;
	fetchd_start(&f, &o);
	url = tls_url(&u, "127.0.0.1", "/json");
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	expect_bool(&r, "tls.new_connection", true);
	http_resp_free(&r);
	reload_with(&f, conf2, 1);
	fetch_tls_url(&f, url, false, &r);
	expect_json_fetched(&r);
	expect_bool(&r, "tls.new_connection", false);
	http_resp_free(&r);
	ck_assert_int_eq(tls_stat(&u, "/tls-stats", "full"), 1);
	free(url);
	free(conf2);
	free(conf);
	free(ca);
	fetchd_stop(&f);
	upstream_stop(&u);
}
END_TEST

static Suite *tls_features_suite(void)
{
	Suite *s = suite_create("tls_features");
	TCase *tc = tcase_create("http_version");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_http_version_1_1_against_the_h2_server_is_1_1);
	tcase_add_test(tc, test_http_version_auto_and_2_against_the_h2_server_are_2);
	tcase_add_test(tc, test_http_version_2_against_an_http11_server_falls_back_to_1_1);
	tcase_add_test(tc, test_http_version_2_over_http_is_an_h2c_upgrade_that_falls_back);
	tcase_add_test(tc, test_a_bad_http_version_is_400_naming_the_field);
	suite_add_tcase(s, tc);

	tc = tcase_create("tls_field");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_tls_field_shows_tls13_and_the_peer_certificate);
	tcase_add_test(tc, test_tls_field_shows_tls12_when_the_server_stops_there);
	tcase_add_test(tc, test_tls_field_is_null_over_http);
	tcase_add_test(tc, test_tls_field_is_the_final_hops);
	tcase_add_test(tc, test_tls_field_shows_a_resumed_session_on_a_new_connection);
	suite_add_tcase(s, tc);

	tc = tcase_create("client_certificates");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_client_certificate_by_the_upstreams_ca_is_accepted_tls12);
	tcase_add_test(tc, test_client_certificate_by_another_ca_is_tls_error_tls12);
	tcase_add_test(tc, test_no_client_certificate_is_tls_error_tls12);
	tcase_add_test(tc, test_client_certificate_by_the_upstreams_ca_is_accepted_tls13);
	tcase_add_test(tc, test_client_certificate_by_another_ca_is_tls_error_tls13);
	tcase_add_test(tc, test_no_client_certificate_is_tls_error_tls13);
	suite_add_tcase(s, tc);

	tc = tcase_create("allow_downgrade");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_allow_downgrade_false_refuses_an_https_to_http_redirect);
	tcase_add_test(tc, test_allow_downgrade_default_follows_an_https_to_http_redirect);
	suite_add_tcase(s, tc);

	tc = tcase_create("reload");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc,
		       test_reload_with_another_ca_at_the_same_path_drops_connections_and_sessions);
	tcase_add_test(tc, test_reload_without_tls_changes_keeps_pooled_connections);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	make_certs();
	return run_suite(tls_features_suite(), CK_NORMAL);
}
