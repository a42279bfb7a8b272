/* The JSON writer against jansson: every string, integer and real must
 * come out as json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(12)) writes
 * it, and parse back to what went in. */
#include <check.h>
#include <float.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonw.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12))

/* Assert that what w holds equals jansson's dump of v (v is consumed). */
static void assert_same_as_jansson(struct jsonw *w, json_t *v)
{
	size_t len;
	char *got = jsonw_finish(w, &len);
	char *want = json_dumps(v, DUMP_FLAGS);

	ck_assert_ptr_nonnull(got);
	ck_assert_ptr_nonnull(want);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_msg(memcmp(got, want, len) == 0, "got %s, want %s", got, want);
	ck_assert_int_eq(got[len], '\0');
	json_decref(v);
	free(want);
	free(got);
}

static void check_string(const char *s, size_t n)
{
	struct jsonw w;
	json_t *v = json_stringn(s, n);

	ck_assert_ptr_nonnull(v);
	jsonw_init(&w, 0);
	jsonw_string(&w, s, n);
	assert_same_as_jansson(&w, v);
}

START_TEST(test_every_control_character_is_escaped_like_jansson)
{
	char s[3] = {'a', 0, 'b'};

	for (int c = 0; c < 0x20; c++) {
		s[1] = (char)c;
		check_string(s, 3);
		check_string(s + 1, 1);
	}
}
END_TEST

START_TEST(test_quote_backslash_slash_and_del)
{
	check_string("\"", 1);
	check_string("\\", 1);
	check_string("a/b", 3); /* no JSON_ESCAPE_SLASH */
	check_string("\x7f", 1);
	check_string("say \"hi\"\\n", 10);
	check_string("", 0);
}
END_TEST

START_TEST(test_multibyte_utf8_is_copied_not_escaped)
{
	const char *s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd";

	check_string(s, strlen(s));
}
END_TEST

/* The word-at-a-time scan must find an escape at every offset of a word,
 * and near the end of the string. */
START_TEST(test_escapes_at_every_alignment)
{
	char s[40];
	const char special[] = {'"', '\\', '\n', 0, 0x1f, 0x01};

	for (size_t len = 1; len < sizeof(s); len++) {
		for (size_t at = 0; at < len; at++) {
			for (size_t k = 0; k < sizeof(special); k++) {
				memset(s, 'x', len);
				s[at] = special[k];
				check_string(s, len);
			}
		}
	}
}
END_TEST

/* Bytes that look like escapes to a naive word test (0x20 after a borrow,
 * 0xa2 = '"' | 0x80, 0xdc = '\\' | 0x80) inside valid UTF-8. */
START_TEST(test_high_bytes_are_not_mistaken_for_escapes)
{
	const char *s = "\xc2\xa2\xc3\x9c\xc2\xa0 !#[]{}~\xc3\xbf\xc2\x80\xdf\xbf";

	check_string(s, strlen(s));
}
END_TEST

START_TEST(test_big_string_with_scattered_escapes)
{
	size_t n = 3 * 1024 * 1024 + 5;
	char *s = malloc(n);
	json_t *parsed;
	struct jsonw w;
	size_t len;
	char *out;

	for (size_t i = 0; i < n; i++)
		s[i] = (char)(i % 997 == 0 ? '\n' : i % 1009 == 0 ? '"' : 'a' + i % 26);
	check_string(s, n);
	/* and it parses back to the same bytes */
	jsonw_init(&w, 16);
	jsonw_string(&w, s, n);
	out = jsonw_finish(&w, &len);
	parsed = json_loadb(out, len, JSON_DECODE_ANY, NULL);
	ck_assert_ptr_nonnull(parsed);
	ck_assert_uint_eq(json_string_length(parsed), n);
	ck_assert(memcmp(json_string_value(parsed), s, n) == 0);
	json_decref(parsed);
	free(out);
	free(s);
}
END_TEST

/* The writer trusts its caller: bytes that are not UTF-8 pass through as
 * they are (materialize makes upstream bytes UTF-8 before writing). */
START_TEST(test_invalid_utf8_is_copied_as_is)
{
	struct jsonw w;
	size_t len;
	char *out;

	jsonw_init(&w, 0);
	jsonw_string(&w, "caf\xe9\xff", 5);
	out = jsonw_finish(&w, &len);
	ck_assert_uint_eq(len, 7);
	ck_assert(memcmp(out, "\"caf\xe9\xff\"", 7) == 0);
	free(out);
}
END_TEST

START_TEST(test_string_in_pieces)
{
	struct jsonw w;

	jsonw_init(&w, 0);
	jsonw_string_open(&w);
	jsonw_string_part(&w, "a\"", 2);
	jsonw_string_part(&w, ", ", 2);
	jsonw_string_part(&w, "\n", 1);
	jsonw_string_close(&w);
	assert_same_as_jansson(&w, json_string("a\", \n"));
}
END_TEST

START_TEST(test_integers_like_jansson)
{
	const long long values[] = {
		0, 1, -1, 9, 10, 99, 100, 65535, -65536, 1234567890123LL, LLONG_MAX, LLONG_MIN};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		struct jsonw w;

		jsonw_init(&w, 0);
		jsonw_int(&w, values[i]);
		assert_same_as_jansson(&w, json_integer(values[i]));
	}
}
END_TEST

static void check_real(double v)
{
	struct jsonw w;

	jsonw_init(&w, 0);
	jsonw_real(&w, v);
	assert_same_as_jansson(&w, json_real(v));
}

/* The timings: whole thousandths of a millisecond (the fast path). */
START_TEST(test_thousandths_like_jansson)
{
	for (long long k = 0; k < 200000; k++)
		check_real((double)k / 1000.0);
	for (long long k = 999999000000LL - 2000; k < 999999000000LL + 2000; k++)
		check_real((double)k / 1000.0);
	check_real(999999999.999);
	check_real(1e9);
}
END_TEST

START_TEST(test_other_reals_like_jansson)
{
	const double values[] = {-0.0,	 -1.5,		 0.1,	   1.0 / 3.0, 2.0 / 3.0,
				 1e-5,	 1e-7,		 1.5e-300, 1e12,      1e15,
				 1e21,	 1e300,		 DBL_MAX,  DBL_MIN,   0.0005,
				 0.0015, 123456789.0123, -1e-10,   5e-324,    12345678901234.5};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		check_real(values[i]);
}
END_TEST

START_TEST(test_structure_and_separators)
{
	struct jsonw w;
	json_t *want = json_pack("{s:[i,b,n,{}], s:{s:s}, s:[]}", "a", 1, 1, "b", "k", "v", "c");

	jsonw_init(&w, 1); /* grows from a tiny buffer */
	jsonw_raw(&w, "{", 1);
	jsonw_key(&w, "a");
	jsonw_raw(&w, "[", 1);
	jsonw_sep(&w);
	jsonw_int(&w, 1);
	jsonw_sep(&w);
	jsonw_bool(&w, true);
	jsonw_sep(&w);
	jsonw_null(&w);
	jsonw_sep(&w);
	jsonw_raw(&w, "{}", 2);
	jsonw_raw(&w, "]", 1);
	jsonw_key(&w, "b");
	jsonw_raw(&w, "{", 1);
	jsonw_key(&w, "k");
	jsonw_string(&w, "v", 1);
	jsonw_raw(&w, "}", 1);
	jsonw_key(&w, "c");
	jsonw_raw(&w, "[]", 2);
	jsonw_raw(&w, "}", 1);
	assert_same_as_jansson(&w, want);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("jsonw");
	TCase *tc = tcase_create("writer");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_every_control_character_is_escaped_like_jansson);
	tcase_add_test(tc, test_quote_backslash_slash_and_del);
	tcase_add_test(tc, test_multibyte_utf8_is_copied_not_escaped);
	tcase_add_test(tc, test_escapes_at_every_alignment);
	tcase_add_test(tc, test_high_bytes_are_not_mistaken_for_escapes);
	tcase_add_test(tc, test_big_string_with_scattered_escapes);
	tcase_add_test(tc, test_invalid_utf8_is_copied_as_is);
	tcase_add_test(tc, test_string_in_pieces);
	tcase_add_test(tc, test_integers_like_jansson);
	tcase_add_test(tc, test_thousandths_like_jansson);
	tcase_add_test(tc, test_other_reals_like_jansson);
	tcase_add_test(tc, test_structure_and_separators);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
