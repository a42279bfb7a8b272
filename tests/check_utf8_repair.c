/* charset_repair_utf8: fetchd's one policy for upstream strings and the
 * error messages that quote them (README, "Where SPEC and fetchd
 * differ"). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "charset.h"

/* Repair in[0..n) and compare with want; returns whether a copy was made. */
static bool repairs_to(const char *in, size_t n, const char *want)
{
	char *copy = (char *)"unset";
	size_t len = 0;
	const char *out = charset_repair_utf8(in, n, &len, &copy);

	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_mem_eq(out, want, len);
	ck_assert_int_eq(out[len], '\0');
	if (copy == NULL) {
		ck_assert_ptr_eq(out, in);
		return false;
	}
	ck_assert_ptr_eq(out, copy);
	free(copy);
	return true;
}

START_TEST(test_valid_utf8_is_returned_as_it_is)
{
	ck_assert(!repairs_to("", 0, ""));
	ck_assert(!repairs_to("plain ascii", 11, "plain ascii"));
	ck_assert(!repairs_to("caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80", 14,
			      "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80"));
}
END_TEST

START_TEST(test_latin1_string_is_read_as_windows_1252)
{
	ck_assert(repairs_to("caf\xe9", 4, "caf\xc3\xa9"));
	/* 0x80-0x9f are windows-1252's (WHATWG): the euro sign, curly quotes */
	ck_assert(repairs_to("\x80 \x93q\x94", 5, "\xe2\x82\xac \xe2\x80\x9cq\xe2\x80\x9d"));
	/* no BOM sniffing: FF FE are two letters, not UTF-16 */
	ck_assert(repairs_to("\xff\xfeh", 3, "\xc3\xbf\xc3\xbeh"));
	ck_assert(repairs_to("\xef\xbb\xbf\xe9", 4, "\xc3\xaf\xc2\xbb\xc2\xbf\xc3\xa9"));
	/* the five bytes windows-1252 leaves undefined are the C1 controls */
	ck_assert(repairs_to("\x81\x9d", 2, "\xc2\x81\xc2\x9d"));
}
END_TEST

START_TEST(test_mixed_string_is_read_as_a_whole)
{
	/* one invalid byte makes the whole string latin-1, the UTF-8 é too */
	ck_assert(repairs_to("\xc3\xa9 \xe9", 4, "\xc3\x83\xc2\xa9 \xc3\xa9"));
	/* overlongs, surrogates and truncated sequences are not UTF-8 */
	ck_assert(repairs_to("\xc0\xaf", 2, "\xc3\x80\xc2\xaf"));
	ck_assert(repairs_to("\xed\xa0\x80", 3, "\xc3\xad\xc2\xa0\xe2\x82\xac"));
	ck_assert(repairs_to("x\xe2\x82", 3, "x\xc3\xa2\xe2\x80\x9a"));
}
END_TEST

START_TEST(test_nul_bytes_are_kept_with_the_length)
{
	static const char valid[] = "a\0b", latin1[] = "\xe9\0b";
	char *copy;
	size_t len;

	ck_assert_ptr_eq(charset_repair_utf8(valid, 3, &len, &copy), valid);
	ck_assert_ptr_null(copy);
	ck_assert_uint_eq(len, 3);
	ck_assert_ptr_nonnull(charset_repair_utf8(latin1, 3, &len, &copy));
	ck_assert_uint_eq(len, 4);
	ck_assert_mem_eq(copy, "\xc3\xa9\0b", 4);
	free(copy);
}
END_TEST

static Suite *utf8_repair_suite(void)
{
	Suite *s = suite_create("utf8_repair");
	TCase *tc = tcase_create("repair");

	tcase_add_test(tc, test_valid_utf8_is_returned_as_it_is);
	tcase_add_test(tc, test_latin1_string_is_read_as_windows_1252);
	tcase_add_test(tc, test_mixed_string_is_read_as_a_whole);
	tcase_add_test(tc, test_nul_bytes_are_kept_with_the_length);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(utf8_repair_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
