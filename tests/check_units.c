#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "units.h"

static uint64_t size_of(const char *s)
{
	uint64_t v = UINT64_C(0xdeadbeef);

	ck_assert_msg(units_parse_size(s, &v) == 0, "'%s' should parse", s);
	return v;
}

static uint64_t ms_of(const char *s)
{
	uint64_t v = UINT64_C(0xdeadbeef);

	ck_assert_msg(units_parse_duration_ms(s, &v) == 0, "'%s' should parse", s);
	return v;
}

START_TEST(test_size_bare_number_is_bytes)
{
	ck_assert_uint_eq(size_of("0"), 0);
	ck_assert_uint_eq(size_of("512"), 512);
	ck_assert_uint_eq(size_of("512B"), 512);
}
END_TEST

START_TEST(test_size_suffix_k_is_kibibytes)
{
	ck_assert_uint_eq(size_of("64K"), 64 * 1024);
	ck_assert_uint_eq(size_of("64k"), 64 * 1024);
	ck_assert_uint_eq(size_of("64KB"), 64 * 1024);
	ck_assert_uint_eq(size_of("64KiB"), 64 * 1024);
}
END_TEST

START_TEST(test_size_suffix_m_is_mebibytes)
{
	ck_assert_uint_eq(size_of("10M"), UINT64_C(10) * 1024 * 1024);
	ck_assert_uint_eq(size_of("1m"), UINT64_C(1) << 20);
	ck_assert_uint_eq(size_of("256MiB"), UINT64_C(256) << 20);
}
END_TEST

START_TEST(test_size_suffix_g_is_gibibytes)
{
	ck_assert_uint_eq(size_of("1G"), UINT64_C(1) << 30);
	ck_assert_uint_eq(size_of("3g"), UINT64_C(3) << 30);
	ck_assert_uint_eq(size_of("17179869183G"), UINT64_C(17179869183) << 30);
}
END_TEST

START_TEST(test_size_rejects_garbage)
{
	static const char *const bad[] = {"",	  "K",	  "abc",  "10X", "10 M", " 10M",  "10M ",
					  "1.5M", "10MM", "0x10", "+5",	 "5iB",	 "10MBs", "1T"};
	uint64_t v = 7;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(units_parse_size(bad[i], &v) == -1, "'%s' should fail", bad[i]);
	ck_assert_uint_eq(v, 7);
}
END_TEST

START_TEST(test_size_rejects_negative)
{
	uint64_t v;

	ck_assert_int_eq(units_parse_size("-1", &v), -1);
	ck_assert_int_eq(units_parse_size("-1M", &v), -1);
}
END_TEST

START_TEST(test_size_rejects_overflow)
{
	uint64_t v;

	ck_assert_uint_eq(size_of("18446744073709551615"), UINT64_MAX);
	ck_assert_int_eq(units_parse_size("18446744073709551616", &v), -1);
	ck_assert_int_eq(units_parse_size("99999999999999999999999", &v), -1);
	ck_assert_int_eq(units_parse_size("17179869184G", &v), -1);
	ck_assert_int_eq(units_parse_size("18014398509481984K", &v), -1);
}
END_TEST

START_TEST(test_duration_bare_number_is_seconds)
{
	ck_assert_uint_eq(ms_of("5"), 5000);
	ck_assert_uint_eq(ms_of("0"), 0);
}
END_TEST

START_TEST(test_duration_ms_s_m_h_suffixes)
{
	ck_assert_uint_eq(ms_of("250ms"), 250);
	ck_assert_uint_eq(ms_of("5s"), 5000);
	ck_assert_uint_eq(ms_of("2m"), 120000);
	ck_assert_uint_eq(ms_of("1h"), 3600000);
	ck_assert_uint_eq(ms_of("5S"), 5000);
	ck_assert_uint_eq(ms_of("250MS"), 250);
}
END_TEST

START_TEST(test_duration_decimals_allowed)
{
	ck_assert_uint_eq(ms_of("1.5s"), 1500);
	ck_assert_uint_eq(ms_of("0.25"), 250);
	ck_assert_uint_eq(ms_of("0.5m"), 30000);
	ck_assert_uint_eq(ms_of("1.5ms"), 1);
	ck_assert_uint_eq(ms_of("0.0015s"), 1);
	ck_assert_uint_eq(ms_of("1.1234567890123s"), 1123);
}
END_TEST

START_TEST(test_duration_rejects_garbage)
{
	static const char *const bad[] = {"",	  "s",	 "abc", "5x",	 "5 s",	 " 5s",
					  "5s ",  "1.s", ".5s", "1..5s", "5sec", "5ss",
					  "0x10", "+5",	 "5d",	"1,5s"};
	uint64_t v = 7;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(units_parse_duration_ms(bad[i], &v) == -1, "'%s' should fail",
			      bad[i]);
	ck_assert_uint_eq(v, 7);
}
END_TEST

START_TEST(test_duration_rejects_negative)
{
	uint64_t v;

	ck_assert_int_eq(units_parse_duration_ms("-1", &v), -1);
	ck_assert_int_eq(units_parse_duration_ms("-5s", &v), -1);
}
END_TEST

START_TEST(test_duration_rejects_overflow)
{
	uint64_t v;

	ck_assert_uint_eq(ms_of("18446744073709551615ms"), UINT64_MAX);
	ck_assert_int_eq(units_parse_duration_ms("18446744073709551616ms", &v), -1);
	ck_assert_int_eq(units_parse_duration_ms("18446744073709552s", &v), -1);
	ck_assert_int_eq(units_parse_duration_ms("18446744073709551615.9s", &v), -1);
	ck_assert_int_eq(units_parse_duration_ms("99999999999999999999h", &v), -1);
}
END_TEST

static Suite *units_suite(void)
{
	Suite *s = suite_create("units");
	TCase *tc = tcase_create("size");

	tcase_add_test(tc, test_size_bare_number_is_bytes);
	tcase_add_test(tc, test_size_suffix_k_is_kibibytes);
	tcase_add_test(tc, test_size_suffix_m_is_mebibytes);
	tcase_add_test(tc, test_size_suffix_g_is_gibibytes);
	tcase_add_test(tc, test_size_rejects_garbage);
	tcase_add_test(tc, test_size_rejects_negative);
	tcase_add_test(tc, test_size_rejects_overflow);
	suite_add_tcase(s, tc);

	tc = tcase_create("duration");
	tcase_add_test(tc, test_duration_bare_number_is_seconds);
	tcase_add_test(tc, test_duration_ms_s_m_h_suffixes);
	tcase_add_test(tc, test_duration_decimals_allowed);
	tcase_add_test(tc, test_duration_rejects_garbage);
	tcase_add_test(tc, test_duration_rejects_negative);
	tcase_add_test(tc, test_duration_rejects_overflow);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(units_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
