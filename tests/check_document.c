/* The response document built by materialize_document, without HTTP:
 * body modes, field selection and hostile bodies. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "budget.h"
#include "materialize.h"

static struct header_field json_headers[] = {{(char *)"Content-Type", (char *)"application/json"}};

static json_t *build(const char *body, size_t len, struct header_field *h, size_t nh,
		     unsigned fields, enum body_mode mode)
{
	struct response_hop hop = {.url = (char *)"http://h.example/x",
				   .status = 200,
				   .reason = (char *)"OK",
				   .http_version = (char *)"1.1",
				   .headers = h,
				   .n_headers = nh};
	struct fetch_response resp = {.hops = &hop,
				      .n_hops = 1,
				      .body = (const unsigned char *)body,
				      .body_len = len,
				      .remote_ip = "127.0.0.1"};
	size_t doc_len;
	char *doc = materialize_document(&resp, fields, mode, &doc_len);
	json_t *parsed;

	ck_assert_ptr_nonnull(doc);
	parsed = json_loadb(doc, doc_len, JSON_ALLOW_NUL, NULL);
	ck_assert_ptr_nonnull(parsed);
	free(doc);
	return parsed;
}

static struct header_field text_headers[] = {
	{(char *)"Content-Type", (char *)"text/plain; charset=windows-1251"}};

/* materialize_document_limited over body with a budget of limit bytes and
 * the stop callback; returns the outcome, the hold left in *hold. */
static enum materialize_result build_limited(const char *body, size_t len, uint64_t limit,
					     bool (*stop)(void *), struct budget_hold *hold,
					     size_t *doc_len)
{
	struct response_hop hop = {.url = (char *)"http://h.example/x",
				   .status = 200,
				   .reason = (char *)"OK",
				   .http_version = (char *)"1.1",
				   .headers = text_headers,
				   .n_headers = 1};
	struct fetch_response resp = {
		.hops = &hop, .n_hops = 1, .body = (const unsigned char *)body, .body_len = len};
	struct materialize_limits lim = {.hold = hold, .stop = stop};
	enum materialize_result r;
	char *doc;

	hold->budget = budget_new(limit);
	r = materialize_document_limited(&resp, FIELD_ALL, BODY_MODE_AUTO, &lim, &doc, doc_len);
	ck_assert(r == MATERIALIZE_OK ? doc != NULL : doc == NULL);
	if (doc != NULL) {
		/* the finished document stays charged at its length */
		ck_assert_uint_eq(hold->held, *doc_len);
		ck_assert_uint_eq(budget_used(hold->budget), *doc_len);
		budget_hold_release(hold, *doc_len);
		free(doc);
	}
	ck_assert_uint_eq(budget_used(hold->budget), 0);
	budget_free(hold->budget);
	return r;
}

static bool stop_now(void *arg)
{
	(void)arg;
	return true;
}

static int polls;

static bool stop_after_text(void *arg)
{
	(void)arg;
	return ++polls >= 2; /* the second poll is inside the text field */
}

static char *bytes_of(int c, size_t n)
{
	char *b = malloc(n);

	ck_assert_ptr_nonnull(b);
	memset(b, c, n);
	return b;
}

/* Within a budget the document is built and charged at its length; a
 * budget it can never fit in refuses it and says so; nothing stays
 * charged either way. */
START_TEST(test_document_is_charged_to_its_budget)
{
	size_t n = 256 * 1024, len;
	char *body = bytes_of(0xE0, n); /* 2 bytes of UTF-8 each once decoded */
	struct budget_hold hold = {0};

	ck_assert_int_eq(build_limited(body, n, 64u << 20, NULL, &hold, &len), MATERIALIZE_OK);
	ck_assert_uint_gt(len, 2 * n);
	memset(&hold, 0, sizeof(hold));
	ck_assert_int_eq(build_limited(body, n, n, NULL, &hold, &len), MATERIALIZE_OVER_BUDGET);
	ck_assert(hold.never_fits);
	free(body);
}
END_TEST

/* The deadline (or a client that left) stops the build between fields and
 * inside long ones; what was charged is given back. */
START_TEST(test_stop_abandons_the_document)
{
	size_t n = 4 * 1024 * 1024, len;
	char *body = bytes_of(0xE0, n);
	struct budget_hold hold = {0};

	ck_assert_int_eq(build_limited(body, n, 1u << 30, stop_now, &hold, &len),
			 MATERIALIZE_STOPPED);
	memset(&hold, 0, sizeof(hold));
	polls = 0;
	ck_assert_int_eq(build_limited(body, n, 1u << 30, stop_after_text, &hold, &len),
			 MATERIALIZE_STOPPED);
	ck_assert_int_eq(polls, 2);
	free(body);
}
END_TEST

/* A JSON body nested far deeper than jansson's parser allows is not
 * parsed (no "json" field), and building the document neither crashes nor
 * overflows the stack. */
START_TEST(test_deeply_nested_json_body_is_left_unparsed)
{
	size_t depth = 200000, len = depth * 2;
	char *body = malloc(len);
	json_t *doc;

	for (size_t i = 0; i < depth; i++) {
		body[i] = '[';
		body[len - 1 - i] = ']';
	}
	doc = build(body, len, json_headers, 1, FIELD_ALL, BODY_MODE_AUTO);
	ck_assert_ptr_null(json_object_get(doc, "json"));
	ck_assert_uint_eq(json_string_length(json_object_get(doc, "text")), len);
	json_decref(doc);
	free(body);
}
END_TEST

START_TEST(test_json_body_of_any_type_is_parsed)
{
	json_t *doc = build("[1,\"a\",null]", 12, json_headers, 1, FIELD_JSON, BODY_MODE_AUTO);

	ck_assert_int_eq(json_array_size(json_object_get(doc, "json")), 3);
	ck_assert_int_eq(json_object_size(doc), 1);
	json_decref(doc);
}
END_TEST

START_TEST(test_fields_select_only_what_was_asked)
{
	json_t *doc = build("{}", 2, json_headers, 1, FIELD_STATUS | FIELD_SIZE, BODY_MODE_AUTO);

	ck_assert_int_eq(json_object_size(doc), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "status")), 200);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "size")), 2);
	json_decref(doc);
}
END_TEST

START_TEST(test_body_mode_none_gives_neither_text_nor_base64)
{
	json_t *doc = build("hello", 5, NULL, 0, FIELD_ALL, BODY_MODE_NONE);

	ck_assert_ptr_null(json_object_get(doc, "text"));
	ck_assert_ptr_null(json_object_get(doc, "content_base64"));
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "size")), 5);
	json_decref(doc);
}
END_TEST

START_TEST(test_latin1_header_value_is_read_as_iso_8859_1)
{
	struct header_field h[] = {{(char *)"X-Name", (char *)"caf\xe9"}};
	json_t *doc = build("", 0, h, 1, FIELD_HEADERS, BODY_MODE_AUTO);

	ck_assert_str_eq(
		json_string_value(json_object_get(json_object_get(doc, "headers"), "x-name")),
		"caf\xc3\xa9");
	json_decref(doc);
}
END_TEST

/* The document is written directly, not dumped by jansson: it must still
 * be exactly what jansson writes for the same values (re-dumping the
 * parsed document gives the same bytes), with repeated headers joined in
 * the place the name first took, latin-1 made UTF-8, control characters
 * escaped and later cookies of a name winning. */
START_TEST(test_document_bytes_are_what_jansson_would_write)
{
	struct header_field h0[] = {{(char *)"Location", (char *)"/next"}};
	struct header_field h1[] = {
		{(char *)"Content-Type", (char *)"text/plain; charset=utf-8"},
		{(char *)"X-Dup", (char *)"one"},
		{(char *)"X-Ctl", (char *)"a\tb\x01\"q\"\\"},
		{(char *)"x-dup", (char *)"two"},
		{(char *)"X-Latin", (char *)"caf\xe9"},
		{(char *)"X-Mixed", (char *)"\xc3\xa9"},
		{(char *)"x-mixed", (char *)"\xe9"},
	};
	struct response_hop hops[] = {
		{.url = (char *)"http://h.example/a",
		 .status = 302,
		 .reason = (char *)"Found",
		 .http_version = (char *)"1.1",
		 .headers = h0,
		 .n_headers = 1},
		{.url = (char *)"http://h.example/next",
		 .status = 200,
		 .reason = (char *)"OK",
		 .http_version = (char *)"1.1",
		 .headers = h1,
		 .n_headers = 7},
	};
	char *cookies[] = {(char *)"h.example\tFALSE\t/\tFALSE\t0\tsid\told",
			   (char *)"h.example\tFALSE\t/\tFALSE\t0\tlang\tfr",
			   (char *)"h.example\tFALSE\t/\tFALSE\t0\tsid\tnew"};
	struct fetch_response resp = {.hops = hops,
				      .n_hops = 2,
				      .body = (const unsigned char *)"line\n\"two\"\0"
								     "end",
				      .body_len = 14,
				      .cookies = cookies,
				      .n_cookies = 3,
				      .timing = {.queued_ms = 0.0191,
						 .dns_ms = 0,
						 .connect_ms = 1.25,
						 .ttfb_ms = 12.3456,
						 .total_ms = 1234567.8915},
				      .remote_ip = "127.0.0.1",
				      .remote_port = 8080,
				      .worker = 3};
	size_t len;
	char *doc = materialize_document(&resp, FIELD_ALL, BODY_MODE_AUTO, &len);
	json_t *parsed, *headers;
	char *again;

	ck_assert_ptr_nonnull(doc);
	ck_assert_uint_eq(strlen(doc), len);
	parsed = json_loadb(doc, len, JSON_ALLOW_NUL, NULL);
	ck_assert_ptr_nonnull(parsed);
	again = json_dumps(parsed, JSON_COMPACT | JSON_REAL_PRECISION(12));
	ck_assert_ptr_nonnull(again);
	ck_assert_str_eq(doc, again);
	headers = json_object_get(parsed, "headers");
	ck_assert_str_eq(json_string_value(json_object_get(headers, "x-dup")), "one, two");
	ck_assert_str_eq(json_string_value(json_object_get(headers, "x-ctl")), "a\tb\x01\"q\"\\");
	ck_assert_str_eq(json_string_value(json_object_get(headers, "x-latin")), "caf\xc3\xa9");
	/* each value is made UTF-8 on its own: the UTF-8 one is not
	 * re-read as latin-1 because a latin-1 one follows */
	ck_assert_str_eq(json_string_value(json_object_get(headers, "x-mixed")),
			 "\xc3\xa9, \xc3\xa9");
	ck_assert_ptr_nonnull(strstr(doc, "\"headers\":{\"content-type\":\"text/plain; "
					  "charset=utf-8\",\"x-dup\":\"one, two\",\"x-ctl\""));
	ck_assert_ptr_nonnull(strstr(doc, "\"cookies\":{\"sid\":\"new\",\"lang\":\"fr\"}"));
	ck_assert_ptr_nonnull(strstr(doc, "\"text\":\"line\\n\\\"two\\\"\\u0000end\""));
	ck_assert_ptr_nonnull(strstr(doc, "\"timing\":{\"queued_ms\":0.019,\"dns_ms\":0.0,"
					  "\"connect_ms\":1.25,\"tls_ms\":0.0,\"ttfb_ms\":12.346,"
					  "\"total_ms\":1234567.892}"));
	ck_assert_ptr_nonnull(strstr(doc, "\"history\":[{\"url\":\"http://h.example/a\","
					  "\"status\":302,\"reason\":\"Found\",\"headers\":"
					  "{\"location\":\"/next\"}}]"));
	free(again);
	json_decref(parsed);
	free(doc);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("document");
	TCase *tc = tcase_create("materialize");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_document_is_charged_to_its_budget);
	tcase_add_test(tc, test_stop_abandons_the_document);
	tcase_add_test(tc, test_deeply_nested_json_body_is_left_unparsed);
	tcase_add_test(tc, test_json_body_of_any_type_is_parsed);
	tcase_add_test(tc, test_fields_select_only_what_was_asked);
	tcase_add_test(tc, test_body_mode_none_gives_neither_text_nor_base64);
	tcase_add_test(tc, test_latin1_header_value_is_read_as_iso_8859_1);
	tcase_add_test(tc, test_document_bytes_are_what_jansson_would_write);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
