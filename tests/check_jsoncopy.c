/* The json field's copier (src/jsoncopy.c) against jansson: for every
 * input, jsoncopy accepts exactly what json_loadb(JSON_DECODE_ANY |
 * JSON_ALLOW_NUL) accepts and writes exactly what json_dumps writes of the
 * tree; and it stops, rolls back and stays within its budget. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "budget.h"
#include "jsoncopy.h"
#include "jsonw.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12))

/* jsoncopy and jansson agree on in[0..n): both refuse it, or both accept
 * it and write the same bytes. */
static void check_same(const char *in, size_t n)
{
	json_t *tree = json_loadb(in, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	struct jsonw w;
	enum jsoncopy_result r;
	size_t len;
	char *got, *want;

	jsonw_init(&w, 0);
	jsonw_raw(&w, "<", 1);
	r = jsoncopy(&w, in, n, NULL, NULL);
	got = jsonw_finish(&w, &len);
	ck_assert_ptr_nonnull(got);
	if (tree == NULL) {
		ck_assert_msg(r == JSONCOPY_INVALID, "jansson refuses %.*s, jsoncopy gave %d: %s",
			      (int)n, in, r, got);
		ck_assert_msg(len == 1, "a refused input leaves nothing: %s", got);
	} else {
		want = json_dumps(tree, DUMP_FLAGS);
		ck_assert_ptr_nonnull(want);
		ck_assert_msg(r == JSONCOPY_OK, "jansson accepts %.*s (%s), jsoncopy gave %d",
			      (int)n, in, want, r);
		ck_assert_msg(len == strlen(want) + 1 && memcmp(got + 1, want, len - 1) == 0,
			      "input %.*s: got %s, want %s", (int)n, in, got + 1, want);
		free(want);
		json_decref(tree);
	}
	free(got);
}

static void same(const char *in)
{
	check_same(in, strlen(in));
}

START_TEST(test_values_are_written_as_jansson_dumps_them)
{
	static const char *const inputs[] = {
		"0",
		"-0",
		"1",
		"-1",
		"123456789012345678",
		"9223372036854775807",
		"-9223372036854775808",
		"1.0",
		"-0.0",
		"1e2",
		"1E+2",
		"1e-2",
		"0.1",
		"3.14159265358979",
		"1e-400",
		"2.5e300",
		"123456789012.5",
		"true",
		"false",
		"null",
		"\"\"",
		"\"a\"",
		"\"\\u00e9\\u20ac\"",
		"\"\\ud83d\\ude00\"",
		"\"\\u0000x\"",
		"\"\\u0001\\u001f\"",
		"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
		"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
		"\"\x7f\"",
		"[]",
		"{}",
		"[1,2,3]",
		" [ 1 , [ ] , { } ] ",
		"{\"a\":1,\"b\":[true,null]}",
		"\t\r\n{\"x\" : {\"y\" : {\"z\" : \"deep\"}}}\n",
		"[{\"\":0},{\"\":0}]",
		"{\"\\u00e9\":\"\\u00e9\"}",
		"[1.5,-2,\"s\",{\"k\":[{}]}]",
	};

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		same(inputs[i]);
}
END_TEST

START_TEST(test_what_jansson_refuses_is_refused)
{
	static const char *const inputs[] = {
		"",
		" ",
		"[",
		"]",
		"{",
		"}",
		"[1,]",
		"[,1]",
		"{\"a\"}",
		"{\"a\":}",
		"{\"a\":1,}",
		"{1:2}",
		"01",
		"-",
		"1.",
		".5",
		"1e",
		"1e+",
		"+1",
		"0x10",
		"NaN",
		"Infinity",
		"tru",
		"nul",
		"truex",
		"[1] [2]",
		"1 2",
		"\"abc",
		"\"\\x\"",
		"\"\\u12\"",
		"\"\\u12G4\"",
		"\"\\udc00\"",
		"\"\\ud800\"",
		"\"\\ud800\\u0041\"",
		"\"a\x01\"",
		"\"\xff\"",
		"\"\xc3\"",
		"\"\xed\xa0\x80\"",
		"\"\xc0\xaf\"",
		"{\"a\\u0000b\":1}",
		"9223372036854775808",
		"-9223372036854775809",
		"1e400",
		"-1e400",
		"[1}",
		"{\"a\":1]",
		"'a'",
		"[1,2",
		"{\"a\":1",
	};

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		same(inputs[i]);
	check_same("[1]\0", 4);	   /* a NUL after the value */
	check_same("\"a\0b\"", 5); /* a raw NUL in a string */
}
END_TEST

/* jansson's depth limit, 2048: the same on both sides of it. */
START_TEST(test_nesting_depth_limit_matches_jansson)
{
	for (size_t depth = 2046; depth <= 2050; depth++) {
		char *in = malloc(depth * 2 + 1);

		ck_assert_ptr_nonnull(in);
		memset(in, '[', depth);
		memset(in + depth, ']', depth);
		check_same(in, depth * 2);
		for (size_t i = 0; i < depth; i++)
			in[i] = i % 2 ? '[' : '{';
		free(in);
	}
}
END_TEST

/* A repeated member name is kept as sent (the one documented
 * difference): a reader of the document takes the last value, as jansson
 * would have kept it. */
START_TEST(test_repeated_member_name_is_kept_and_reads_as_the_last)
{
	static const char in[] = "{\"a\":1,\"b\":2,\"a\":3}";
	struct jsonw w;
	size_t len;
	char *got;
	json_t *back;

	jsonw_init(&w, 0);
	ck_assert_int_eq(jsoncopy(&w, in, strlen(in), NULL, NULL), JSONCOPY_OK);
	got = jsonw_finish(&w, &len);
	ck_assert_str_eq(got, in);
	back = json_loads(got, 0, NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(back, "a")), 3);
	json_decref(back);
	free(got);
}
END_TEST

static int stop_calls;

static bool stop_on_second_call(void *arg)
{
	(void)arg;
	return ++stop_calls >= 2;
}

/* A long body is abandoned when stop() says so, and nothing of it stays
 * in the writer. */
START_TEST(test_stop_abandons_the_copy_and_rolls_back)
{
	size_t k = 512 * 1024, n = 2 * k + 1, len;
	char *in = malloc(n);
	struct jsonw w;
	char *got;

	ck_assert_ptr_nonnull(in);
	in[0] = '[';
	for (size_t i = 0; i < k; i++)
		memcpy(in + 1 + 2 * i, i + 1 < k ? "0," : "0]", 2);
	stop_calls = 0;
	jsonw_init(&w, 0);
	jsonw_raw(&w, "x", 1);
	ck_assert_int_eq(jsoncopy(&w, in, n, stop_on_second_call, NULL), JSONCOPY_STOPPED);
	ck_assert_int_eq(stop_calls, 2);
	got = jsonw_finish(&w, &len);
	ck_assert_str_eq(got, "x");
	free(got);
	free(in);
}
END_TEST

/* A budget too small for the output refuses the copy; what was charged is
 * given back. */
START_TEST(test_copy_is_charged_to_the_budget)
{
	struct budget *b = budget_new(4096);
	struct budget_hold hold = {.budget = b};
	char in[20000];
	struct jsonw w;

	memset(in, ' ', sizeof(in));
	in[0] = '"';
	memset(in + 1, 'a', 10000);
	in[10001] = '"';
	jsonw_init_charged(&w, 64, &hold);
	ck_assert_int_eq(jsoncopy(&w, in, sizeof(in), NULL, NULL), JSONCOPY_NO_MEMORY);
	ck_assert(hold.failed);
	ck_assert(hold.never_fits);
	ck_assert_uint_le(budget_used(b), 4096);
	jsonw_free(&w);
	ck_assert_uint_eq(budget_used(b), 0);
	ck_assert_uint_eq(hold.held, 0);
	budget_free(b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("jsoncopy");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_values_are_written_as_jansson_dumps_them);
	tcase_add_test(tc, test_what_jansson_refuses_is_refused);
	tcase_add_test(tc, test_nesting_depth_limit_matches_jansson);
	tcase_add_test(tc, test_repeated_member_name_is_kept_and_reads_as_the_last);
	tcase_add_test(tc, test_stop_abandons_the_copy_and_rolls_back);
	tcase_add_test(tc, test_copy_is_charged_to_the_budget);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
