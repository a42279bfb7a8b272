#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "links.h"

#define BASE "http://h.example/a/b?c"

/* Assert that links_parse(header, base) equals want exactly (want is
 * consumed). */
static void assert_links(const char *header, const char *base, json_t *want)
{
	json_t *got = links_parse(header, base);

	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(got);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(want, JSON_SORT_KEYS);

		ck_abort_msg("header '%s'\n got: %s\nwant: %s", header, g, w);
	}
	json_decref(got);
	json_decref(want);
}

/* The "url" that a single link with reference ref resolves to. */
static char *resolved(const char *ref, const char *base)
{
	char header[512];
	json_t *got, *entry;
	char *url;

	snprintf(header, sizeof(header), "<%s>; rel=x", ref);
	got = links_parse(header, base);
	ck_assert_ptr_nonnull(got);
	entry = json_object_get(got, "x");
	ck_assert_msg(entry != NULL, "'%s' did not parse", header);
	url = strdup(json_string_value(json_object_get(entry, "url")));
	json_decref(got);
	return url;
}

static void assert_resolves(const char *ref, const char *base, const char *want)
{
	char *url = resolved(ref, base);

	ck_assert_msg(strcmp(url, want) == 0, "'%s' against '%s': got '%s', want '%s'", ref,
		      base ? base : "(none)", url, want);
	free(url);
}

START_TEST(test_two_links_absolute_and_relative)
{
	assert_links("<https://example.org/p2>; rel=\"next\", </prev>; rel=prev",
		     "https://example.org/p1?page=1",
		     json_pack("{s:{s:s,s:s},s:{s:s,s:s}}", "next", "url", "https://example.org/p2",
			       "rel", "next", "prev", "url", "https://example.org/prev", "rel",
			       "prev"));
}
END_TEST

START_TEST(test_several_rels_put_link_under_each_type)
{
	assert_links("<https://e.example/9>; rel=\"next  last\"", BASE,
		     json_pack("{s:{s:s,s:s},s:{s:s,s:s}}", "next", "url", "https://e.example/9",
			       "rel", "next", "last", "url", "https://e.example/9", "rel", "last"));
}
END_TEST

START_TEST(test_registered_rel_lower_cased_extension_rel_kept)
{
	assert_links("<https://e.example/1>; rel=\"Next http://r.example/Rel\"", BASE,
		     json_pack("{s:{s:s,s:s},s:{s:s,s:s}}", "next", "url", "https://e.example/1",
			       "rel", "next", "http://r.example/Rel", "url", "https://e.example/1",
			       "rel", "http://r.example/Rel"));
}
END_TEST

START_TEST(test_params_kept_with_lower_cased_names)
{
	assert_links("<https://e.example/feed>; rel=alternate; TITLE=\"The feed\"; "
		     "type=application/rss+xml; title*=UTF-8'de'n%c3%a4chstes; hreflang=de; "
		     "crossorigin",
		     BASE,
		     json_pack("{s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s}}", "alternate", "url",
			       "https://e.example/feed", "rel", "alternate", "title", "The feed",
			       "type", "application/rss+xml", "title*", "UTF-8'de'n%c3%a4chstes",
			       "hreflang", "de", "crossorigin", ""));
}
END_TEST

START_TEST(test_first_occurrence_of_param_wins)
{
	assert_links("<https://e.example/1>; rel=first; REL=second; title=a; Title=b; url=x", BASE,
		     json_pack("{s:{s:s,s:s,s:s}}", "first", "url", "https://e.example/1", "rel",
			       "first", "title", "a"));
}
END_TEST

START_TEST(test_quoted_values_keep_commas_semicolons_and_escapes)
{
	assert_links("<https://e.example/1>; rel=\"next\"; title=\"a, b; c <d>\", "
		     "<https://e.example/2>; rel=prev; title=\"say \\\"hi\\\" \\\\ ok\"",
		     BASE,
		     json_pack("{s:{s:s,s:s,s:s},s:{s:s,s:s,s:s}}", "next", "url",
			       "https://e.example/1", "rel", "next", "title", "a, b; c <d>", "prev",
			       "url", "https://e.example/2", "rel", "prev", "title",
			       "say \"hi\" \\ ok"));
}
END_TEST

START_TEST(test_whitespace_variations_accepted)
{
	assert_links("  <https://e.example/1>;rel=next ,<https://e.example/2> ;  rel = \"prev\" "
		     ";title\t=\tx  ,, \t< https://e.example/3 >\t;\trel=last;",
		     BASE,
		     json_pack("{s:{s:s,s:s},s:{s:s,s:s,s:s},s:{s:s,s:s}}", "next", "url",
			       "https://e.example/1", "rel", "next", "prev", "url",
			       "https://e.example/2", "rel", "prev", "title", "x", "last", "url",
			       "https://e.example/3", "rel", "last"));
}
END_TEST

START_TEST(test_no_rel_keyed_by_resolved_url)
{
	assert_links("</about>; title=About, <https://e.example/x>; rel=\"\"", BASE,
		     json_pack("{s:{s:s,s:s},s:{s:s}}", "http://h.example/about", "url",
			       "http://h.example/about", "title", "About", "https://e.example/x",
			       "url", "https://e.example/x"));
}
END_TEST

START_TEST(test_malformed_entries_skipped_rest_kept)
{
	assert_links("https://e.example/no-lt>; rel=a, "
		     "<https://e.example/no-gt; rel=b, "
		     "<https://e.example/ok>; rel=ok, "
		     "<https://e.example/junk> junk; rel=c, "
		     "<https://e.example/noname>; =v; rel=d, "
		     "<https://e.example/badvalue>; rel=e f, "
		     "<https://e.example/open>; rel=g; title=\"unterminated, "
		     "<https://e.example/ok2>; rel=ok2, "
		     "<https://e.example/tail",
		     BASE,
		     json_pack("{s:{s:s,s:s},s:{s:s,s:s}}", "ok", "url", "https://e.example/ok",
			       "rel", "ok", "ok2", "url", "https://e.example/ok2", "rel", "ok2"));
}
END_TEST

START_TEST(test_empty_values_give_empty_object)
{
	assert_links("", BASE, json_object());
	assert_links(" \t ", BASE, json_object());
	assert_links(", ,,", BASE, json_object());
	assert_links("garbage", BASE, json_object());
	assert_links(NULL, BASE, json_object());
}
END_TEST

START_TEST(test_relative_references_resolved_against_base)
{
	assert_resolves("../x", BASE, "http://h.example/x");
	assert_resolves("d", BASE, "http://h.example/a/d");
	assert_resolves("/r", BASE, "http://h.example/r");
	assert_resolves("?q", BASE, "http://h.example/a/b?q");
	assert_resolves("#f", BASE, "http://h.example/a/b?c#f");
	assert_resolves("", BASE, "http://h.example/a/b?c");
	assert_resolves("//o.example/y", BASE, "http://o.example/y");
	assert_resolves("https://o.example/z?1", BASE, "https://o.example/z?1");
}
END_TEST

START_TEST(test_unresolvable_reference_kept_raw)
{
	assert_resolves("mailto:me@h.example", BASE, "mailto:me@h.example");
	assert_resolves("urn:isbn:0451450523", BASE, "urn:isbn:0451450523");
	assert_resolves("../x", NULL, "../x");
	assert_resolves("../x", "not a url", "../x");
	assert_resolves("https://o.example/z", NULL, "https://o.example/z");
}
END_TEST

START_TEST(test_later_link_with_same_key_wins)
{
	assert_links("<https://e.example/1>; rel=next, <https://e.example/2>; rel=\"next last\"",
		     BASE,
		     json_pack("{s:{s:s,s:s},s:{s:s,s:s}}", "next", "url", "https://e.example/2",
			       "rel", "next", "last", "url", "https://e.example/2", "rel", "last"));
}
END_TEST

START_TEST(test_invalid_utf8_is_read_as_latin1)
{
	/* A value that is not UTF-8 (latin-1 é, a truncated 4-byte sequence,
	 * an encoded surrogate, overlong forms of '/') is read as a whole as
	 * ISO-8859-1 (windows-1252), fetchd's one policy for upstream strings
	 * (charset_repair_utf8): the valid é and snowman beside them too. */
	assert_links("<https://e.example/1>; rel=next; "
		     "title=\"caf\xe9 \xf0\x9f\x98 \xed\xa0\x80 \xc3\xa9\xe2\x98\x83\"; "
		     "x=\xff; o=\"\xe0\x80\xaf\xc0\xaf\"",
		     BASE,
		     json_pack("{s:{s:s,s:s,s:s,s:s,s:s}}", "next", "url", "https://e.example/1",
			       "rel", "next", "title",
			       "caf\xc3\xa9 \xc3\xb0\xc5\xb8\xcb\x9c \xc3\xad\xc2\xa0\xe2\x82\xac "
			       "\xc3\x83\xc2\xa9\xc3\xa2\xcb\x9c\xc6\x92",
			       "x", "\xc3\xbf", "o",
			       "\xc3\xa0\xe2\x82\xac\xc2\xaf\xc3\x80\xc2\xaf"));
	assert_links("<https://e.example/1>; rel=n\xe9xt", BASE,
		     json_pack("{s:{s:s,s:s}}", "n\xc3\xa9xt", "url", "https://e.example/1", "rel",
			       "n\xc3\xa9xt"));
}
END_TEST

START_TEST(test_huge_header_caps_at_1000_links)
{
	const size_t n = 10000, each = 100;
	char *h = malloc(n * each + 1), *p = h;
	json_t *got;
	size_t i;

	ck_assert_ptr_nonnull(h);
	for (i = 0; i < n; i++) {
		int w = snprintf(p, each + 1,
				 "%s<https://e.example/page/%zu>; rel=\"r%zu\"; t=", i ? ", " : "",
				 i, i);

		ck_assert_int_gt(w, 0);
		ck_assert_uint_lt((size_t)w, each);
		memset(p + w, 't', each - (size_t)w);
		p += each;
	}
	*p = '\0';
	ck_assert_uint_ge(strlen(h), 1000000);
	got = links_parse(h, BASE);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(json_object_size(got), 1000);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(got, "r0"), "url")),
			 "https://e.example/page/0");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(got, "r999"), "url")),
			 "https://e.example/page/999");
	ck_assert_ptr_null(json_object_get(got, "r1000"));
	json_decref(got);
	free(h);
}
END_TEST

/* A 1 MB value: prefix, then unit repeated. */
static char *repeated(const char *prefix, const char *unit)
{
	size_t plen = strlen(prefix), ulen = strlen(unit), n = 1 << 20, i;
	char *h = malloc(plen + n + 1);

	ck_assert_ptr_nonnull(h);
	memcpy(h, prefix, plen);
	for (i = 0; i + ulen <= n; i += ulen)
		memcpy(h + plen + i, unit, ulen);
	h[plen + i] = '\0';
	return h;
}

START_TEST(test_pathological_headers_finish_and_stay_bounded)
{
	static const char *const cases[][3] = {
		/* prefix, repeated unit, expected number of keys */
		{"", "<", "0"},
		{"", "\"", "0"},
		{"", ",", "0"},
		{"<https://e.example/1>", ";", "1"},
		{"<https://e.example/1>; rel=\"", "a ", "0"},
		{"<https://e.example/1>; rel=x", "; p", "1"},
		{"<https://e.example/1>; rel=x; t=\"", "\\\"", "0"},
		/* every link-value's skip would read to the end without the
		 * once-per-header rule */
		{"", "<a>; t=\\\"x, ", "0"},
		{"", "<a>,", "1"},
		{"", "<b>; rel=c,", "1"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *h = repeated(cases[i][0], cases[i][1]);
		json_t *got = links_parse(h, BASE);

		ck_assert_ptr_nonnull(got);
		ck_assert_msg(json_object_size(got) == strtoul(cases[i][2], NULL, 10),
			      "case %zu: %zu keys", i, json_object_size(got));
		json_decref(got);
		free(h);
	}
}
END_TEST

START_TEST(test_params_capped_at_64_per_link)
{
	const size_t n = 100000;
	char *h = malloc(n * 10 + 64), *p = h;
	json_t *got, *entry;
	size_t i;

	ck_assert_ptr_nonnull(h);
	p += snprintf(p, 64, "<https://e.example/1>");
	for (i = 0; i < n; i++)
		p += snprintf(p, 10, "; p%zu", i);
	memcpy(p, "; rel=x", 8);
	got = links_parse(h, BASE);
	ck_assert_ptr_nonnull(got);
	entry = json_object_get(got, "x");
	ck_assert_ptr_nonnull(entry);
	/* "url", "rel" and the first 64 parameters. */
	ck_assert_uint_eq(json_object_size(entry), 66);
	ck_assert_str_eq(json_string_value(json_object_get(entry, "p63")), "");
	ck_assert_ptr_null(json_object_get(entry, "p64"));
	json_decref(got);
	free(h);
}
END_TEST

START_TEST(test_rel_types_capped_at_16_per_link)
{
	const size_t n = 100000;
	char *h = malloc(n * 8 + 64), *p = h;
	json_t *got;
	size_t i;

	ck_assert_ptr_nonnull(h);
	p += snprintf(p, 64, "<https://e.example/1>; rel=\"");
	for (i = 0; i < n; i++)
		p += snprintf(p, 8, "t%zu ", i);
	memcpy(p, "\"", 2);
	got = links_parse(h, BASE);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(json_object_size(got), 16);
	ck_assert_ptr_nonnull(json_object_get(got, "t0"));
	ck_assert_ptr_nonnull(json_object_get(got, "t15"));
	ck_assert_ptr_null(json_object_get(got, "t16"));
	json_decref(got);
	free(h);
}
END_TEST

static Suite *links_suite(void)
{
	Suite *s = suite_create("links");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_two_links_absolute_and_relative);
	tcase_add_test(tc, test_several_rels_put_link_under_each_type);
	tcase_add_test(tc, test_registered_rel_lower_cased_extension_rel_kept);
	tcase_add_test(tc, test_params_kept_with_lower_cased_names);
	tcase_add_test(tc, test_first_occurrence_of_param_wins);
	tcase_add_test(tc, test_quoted_values_keep_commas_semicolons_and_escapes);
	tcase_add_test(tc, test_whitespace_variations_accepted);
	tcase_add_test(tc, test_no_rel_keyed_by_resolved_url);
	tcase_add_test(tc, test_malformed_entries_skipped_rest_kept);
	tcase_add_test(tc, test_empty_values_give_empty_object);
	tcase_add_test(tc, test_later_link_with_same_key_wins);
	tcase_add_test(tc, test_invalid_utf8_is_read_as_latin1);
	suite_add_tcase(s, tc);

	tc = tcase_create("resolve");
	tcase_add_test(tc, test_relative_references_resolved_against_base);
	tcase_add_test(tc, test_unresolvable_reference_kept_raw);
	suite_add_tcase(s, tc);

	tc = tcase_create("bounds");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_huge_header_caps_at_1000_links);
	tcase_add_test(tc, test_pathological_headers_finish_and_stay_bounded);
	tcase_add_test(tc, test_params_capped_at_64_per_link);
	tcase_add_test(tc, test_rel_types_capped_at_16_per_link);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(links_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
