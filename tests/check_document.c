/* The response document built by materialize_document, without HTTP:
 * body modes, field selection and hostile bodies. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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

	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "headers"), "x-name")),
			 "caf\xc3\xa9");
	json_decref(doc);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("document");
	TCase *tc = tcase_create("materialize");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_deeply_nested_json_body_is_left_unparsed);
	tcase_add_test(tc, test_json_body_of_any_type_is_parsed);
	tcase_add_test(tc, test_fields_select_only_what_was_asked);
	tcase_add_test(tc, test_body_mode_none_gives_neither_text_nor_base64);
	tcase_add_test(tc, test_latin1_header_value_is_read_as_iso_8859_1);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
