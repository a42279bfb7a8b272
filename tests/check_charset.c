#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "charset.h"

/* Realistic samples: uchardet guesses short ones wrongly. */
static const char *const test_french =
	"Le château se dresse au sommet de la colline, entouré de forêts épaisses où les "
	"promeneurs aiment s'égarer à l'automne. Chaque été, des milliers de visiteurs français "
	"et étrangers viennent découvrir ses salles décorées, ses jardins à la française et la "
	"célèbre galerie des glaces. Le guide raconte l'histoire des seigneurs qui l'ont habité : "
	"leurs fêtes, leurs procès, leurs déboires financiers. À la fin de la visite, on peut "
	"déguster une crêpe ou un café crème à la terrasse, près de la fontaine où jouent les "
	"enfants.\n";

static const char *const test_russian =
	"Москва является столицей Российской Федерации и крупнейшим городом страны. Здесь "
	"расположены органы государственной власти, многочисленные музеи, театры и "
	"университеты. Каждый год город посещают миллионы туристов, которые приезжают "
	"посмотреть на Красную площадь, Кремль и храм Василия Блаженного. Московское метро "
	"считается одним из самых красивых в мире: многие станции украшены мозаикой, "
	"скульптурами и люстрами.\n";

/* Next code point of UTF-8 text known to be valid. */
static uint32_t test_next_cp(const unsigned char **p)
{
	const unsigned char *s = *p;
	uint32_t cp;

	if (s[0] < 0x80) {
		cp = s[0];
		*p += 1;
	} else if (s[0] < 0xE0) {
		cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
		*p += 2;
	} else {
		cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) |
		     (s[2] & 0x3F);
		*p += 3;
	}
	return cp;
}

/* Latin-1 / windows-1251 bytes of UTF-8 text made of ASCII plus Latin-1 or
 * Russian letters, written by hand so the inputs do not come from iconv. */
static unsigned char *test_encode(const char *utf8, int cyrillic, size_t *len)
{
	const unsigned char *p = (const unsigned char *)utf8;
	unsigned char *out = malloc(strlen(utf8) + 1);
	size_t n = 0;

	ck_assert_ptr_nonnull(out);
	while (*p) {
		uint32_t cp = test_next_cp(&p);

		if (cp < 0x80)
			out[n++] = (unsigned char)cp;
		else if (!cyrillic && cp < 0x100)
			out[n++] = (unsigned char)cp;
		else if (cyrillic && cp >= 0x410 && cp <= 0x44F)
			out[n++] = (unsigned char)(0xC0 + (cp - 0x410));
		else if (cyrillic && cp == 0x401)
			out[n++] = 0xA8;
		else if (cyrillic && cp == 0x451)
			out[n++] = 0xB8;
		else
			ck_abort_msg("no byte for U+%04X", (unsigned)cp);
	}
	*len = n;
	return out;
}

static void test_decodes_to(const char *body, size_t len, const char *charset, const char *want,
			    size_t want_len)
{
	size_t out_len = 12345;
	char *out = charset_decode((const unsigned char *)body, len, charset, &out_len);

	ck_assert_ptr_nonnull(out);
	ck_assert_msg(out_len == want_len && memcmp(out, want, want_len) == 0,
		      "%s: got %zu bytes '%s', want %zu bytes '%s'", charset, out_len, out,
		      want_len, want);
	ck_assert_int_eq(out[out_len], '\0');
	free(out);
}

#define DECODES_TO(body, charset, want)                                                            \
	test_decodes_to((body), sizeof(body) - 1, (charset), (want), sizeof(want) - 1)

static void test_sanitizes_to(const char *s, size_t len, const char *want, size_t want_len)
{
	size_t out_len = 12345;
	char *out = charset_utf8_sanitize((const unsigned char *)s, len, &out_len);

	ck_assert_ptr_nonnull(out);
	ck_assert_msg(out_len == want_len && memcmp(out, want, want_len) == 0,
		      "got %zu bytes '%s', want %zu bytes '%s'", out_len, out, want_len, want);
	ck_assert_int_eq(out[out_len], '\0');
	free(out);
}

#define SANITIZES_TO(s, want) test_sanitizes_to((s), sizeof(s) - 1, (want), sizeof(want) - 1)

static const char *test_detect(const char *body, size_t len, size_t *bom_len)
{
	return charset_detect((const unsigned char *)body, len, bom_len);
}

#define DETECT(body, bom_len) test_detect((body), sizeof(body) - 1, (bom_len))

#define FFFD "\xEF\xBF\xBD"

/* ---- labels ---- */

START_TEST(test_label_latin1_and_us_ascii_map_to_windows_1252)
{
	static const char *const labels[] = {
		"latin1",	"iso-8859-1", "iso8859-1",	"l1",
		"us-ascii",	"ascii",      "ansi_x3.4-1968", "cp1252",
		"windows-1252", "ISO-8859-1", "  Latin1\t",	"US-ASCII",
	};
	size_t i;

	for (i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		ck_assert_str_eq(charset_whatwg_name(labels[i]), "windows-1252");
}
END_TEST

START_TEST(test_label_aliases_map_to_whatwg_names)
{
	ck_assert_str_eq(charset_whatwg_name("utf8"), "utf-8");
	ck_assert_str_eq(charset_whatwg_name("UTF-8"), "utf-8");
	ck_assert_str_eq(charset_whatwg_name("unicode-1-1-utf-8"), "utf-8");
	ck_assert_str_eq(charset_whatwg_name("cp1251"), "windows-1251");
	ck_assert_str_eq(charset_whatwg_name("Windows-1251"), "windows-1251");
	ck_assert_str_eq(charset_whatwg_name("gb2312"), "gbk");
	ck_assert_str_eq(charset_whatwg_name("GB18030"), "gb18030");
	ck_assert_str_eq(charset_whatwg_name("sjis"), "shift_jis");
	ck_assert_str_eq(charset_whatwg_name("ms_kanji"), "shift_jis");
	ck_assert_str_eq(charset_whatwg_name("x-sjis"), "shift_jis");
	ck_assert_str_eq(charset_whatwg_name("Shift_JIS"), "shift_jis");
	ck_assert_str_eq(charset_whatwg_name("koi8"), "koi8-r");
	ck_assert_str_eq(charset_whatwg_name("koi8_r"), "koi8-r");
	ck_assert_str_eq(charset_whatwg_name("utf-16"), "utf-16le");
	ck_assert_str_eq(charset_whatwg_name("UTF-16BE"), "utf-16be");
	ck_assert_str_eq(charset_whatwg_name("iso-8859-9"), "windows-1254");
	ck_assert_str_eq(charset_whatwg_name("tis-620"), "windows-874");
	ck_assert_str_eq(charset_whatwg_name("ks_c_5601-1987"), "euc-kr");
	ck_assert_str_eq(charset_whatwg_name("big5-hkscs"), "big5");
	ck_assert_str_eq(charset_whatwg_name("x-mac-ukrainian"), "x-mac-cyrillic");
	ck_assert_str_eq(charset_whatwg_name("iso-8859-15"), "iso-8859-15");
}
END_TEST

START_TEST(test_label_unknown_or_unsupported_is_null)
{
	ck_assert_ptr_null(charset_whatwg_name(NULL));
	ck_assert_ptr_null(charset_whatwg_name(""));
	ck_assert_ptr_null(charset_whatwg_name("   "));
	ck_assert_ptr_null(charset_whatwg_name("bogus"));
	ck_assert_ptr_null(charset_whatwg_name("utf-7"));
	ck_assert_ptr_null(charset_whatwg_name("utf 8"));
	ck_assert_ptr_null(charset_whatwg_name("iso-8859-12"));
	ck_assert_ptr_null(charset_whatwg_name("x-user-defined"));
	ck_assert_ptr_null(charset_whatwg_name("iso-2022-kr"));
	ck_assert_ptr_null(charset_whatwg_name("a-label-much-longer-than-any-real-label"));
}
END_TEST

/* ---- detection ---- */

START_TEST(test_detect_boms_set_bom_len)
{
	size_t bom = 99;

	ck_assert_str_eq(DETECT("\xEF\xBB\xBFhello", &bom), "utf-8");
	ck_assert_uint_eq(bom, 3);
	ck_assert_str_eq(DETECT("\xFF\xFEh\0i\0", &bom), "utf-16le");
	ck_assert_uint_eq(bom, 2);
	ck_assert_str_eq(DETECT("\xFE\xFF\0h\0i", &bom), "utf-16be");
	ck_assert_uint_eq(bom, 2);
	/* A BOM wins over a meta declaration. */
	ck_assert_str_eq(DETECT("\xEF\xBB\xBF<meta charset=windows-1251>", &bom), "utf-8");
	ck_assert_uint_eq(bom, 3);
	ck_assert_str_eq(DETECT("plain ascii", &bom), "utf-8");
	ck_assert_uint_eq(bom, 0);
}
END_TEST

START_TEST(test_detect_bom_only_body)
{
	size_t bom = 99;

	ck_assert_str_eq(DETECT("\xEF\xBB\xBF", &bom), "utf-8");
	ck_assert_uint_eq(bom, 3);
	ck_assert_str_eq(DETECT("\xFF\xFE", &bom), "utf-16le");
	ck_assert_uint_eq(bom, 2);
	ck_assert_str_eq(DETECT("\xFE\xFF", &bom), "utf-16be");
	ck_assert_uint_eq(bom, 2);
	DECODES_TO("\xEF\xBB\xBF", "utf-8", "");
	DECODES_TO("\xFF\xFE", "windows-1252", "");
}
END_TEST

START_TEST(test_detect_empty_body_is_utf8)
{
	size_t bom = 99;

	ck_assert_str_eq(charset_detect(NULL, 0, &bom), "utf-8");
	ck_assert_uint_eq(bom, 0);
	ck_assert_str_eq(DETECT("", &bom), "utf-8");
	ck_assert_uint_eq(bom, 0);
	DECODES_TO("", "utf-8", "");
	DECODES_TO("", "shift_jis", "");
}
END_TEST

START_TEST(test_detect_meta_charset_on_cp1251_page)
{
	static const char head[] = "<!DOCTYPE html>\n<html><head>\n"
				   "<meta charset=\"windows-1251\">\n"
				   "<title>Москва</title></head><body><p>";
	char *page_utf8;
	unsigned char *page;
	size_t len, bom = 99, out_len;
	char *text;

	page_utf8 = malloc(strlen(head) + strlen(test_russian) + 1);
	ck_assert_ptr_nonnull(page_utf8);
	memcpy(page_utf8, head, strlen(head));
	memcpy(page_utf8 + strlen(head), test_russian, strlen(test_russian) + 1);
	page = test_encode(page_utf8, 1, &len);

	ck_assert_str_eq(charset_detect(page, len, &bom), "windows-1251");
	ck_assert_uint_eq(bom, 0);
	text = charset_decode(page, len, "windows-1251", &out_len);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(out_len, strlen(page_utf8));
	ck_assert_str_eq(text, page_utf8);
	free(text);
	free(page);
	free(page_utf8);
}
END_TEST

START_TEST(test_detect_meta_http_equiv_content_type)
{
	ck_assert_str_eq(DETECT("<html><head><meta http-equiv=\"Content-Type\" "
				"content=\"text/html; charset=KOI8-R\"></head>\xF0\xD2\xC9",
				NULL),
			 "koi8-r");
	/* Unquoted, upper case, content before http-equiv, single quotes. */
	ck_assert_str_eq(DETECT("<META CONTENT='text/html;charset=windows-1251' "
				"HTTP-EQUIV=content-type>\xCC\xEE",
				NULL),
			 "windows-1251");
	ck_assert_str_eq(DETECT("<meta http-equiv=content-type content=\"text/html; "
				"charset = 'iso-8859-2'\">\xB1",
				NULL),
			 "iso-8859-2");
}
END_TEST

START_TEST(test_detect_meta_content_without_http_equiv_is_ignored)
{
	/* HTML 13.2.3.2: a content charset needs the Content-Type pragma. */
	ck_assert_str_eq(DETECT("<meta name=x content=\"text/html; charset=koi8-r\">ok", NULL),
			 "utf-8");
}
END_TEST

START_TEST(test_detect_meta_utf16_means_utf8)
{
	ck_assert_str_eq(DETECT("<meta charset=\"utf-16\">caf\xC3\xA9", NULL), "utf-8");
	ck_assert_str_eq(DETECT("<meta charset=utf-16be>caf\xE9 au lait", NULL), "utf-8");
}
END_TEST

START_TEST(test_detect_meta_skips_comments_and_unknown_labels)
{
	ck_assert_str_eq(DETECT("<!-- <meta charset=koi8-r> --><meta charset=bogus>"
				"<meta charset=windows-1250>\x9A",
				NULL),
			 "windows-1250");
	ck_assert_str_eq(DETECT("<script x='<meta charset=koi8-r>'></script>plain", NULL), "utf-8");
}
END_TEST

START_TEST(test_detect_meta_after_first_1024_bytes_is_ignored)
{
	char body[2048];
	static const char meta[] = "<meta charset=koi8-r>";

	memset(body, ' ', sizeof(body));
	memcpy(body + 1100, meta, sizeof(meta) - 1);
	ck_assert_str_eq(charset_detect((unsigned char *)body, sizeof(body), NULL), "utf-8");
	memcpy(body + 100, meta, sizeof(meta) - 1);
	ck_assert_str_eq(charset_detect((unsigned char *)body, sizeof(body), NULL), "koi8-r");
}
END_TEST

START_TEST(test_detect_xml_declaration_iso_8859_1_is_windows_1252)
{
	ck_assert_str_eq(
		DETECT("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<a>caf\xE9</a>", NULL),
		"windows-1252");
	ck_assert_str_eq(
		DETECT("<?xml version='1.0' encoding='Shift_JIS' standalone='yes'?><a/>", NULL),
		"shift_jis");
	/* Not at the start: not a declaration. */
	ck_assert_str_eq(DETECT(" <?xml version=\"1.0\" encoding=\"koi8-r\"?><a/>", NULL), "utf-8");
}
END_TEST

START_TEST(test_detect_undeclared_utf8_with_accents)
{
	ck_assert_str_eq(
		charset_detect((const unsigned char *)test_french, strlen(test_french), NULL),
		"utf-8");
	ck_assert_str_eq(DETECT("na\xC3\xAFve caf\xC3\xA9 \xE2\x82\xAC 5 \xF0\x9F\x98\x80", NULL),
			 "utf-8");
}
END_TEST

START_TEST(test_detect_utf8_cut_mid_character_is_still_utf8)
{
	/* "café €" cut inside the euro sign, as a max_bytes cut leaves it. */
	ck_assert_str_eq(DETECT("caf\xC3\xA9 \xE2\x82", NULL), "utf-8");
	ck_assert_str_eq(DETECT("caf\xC3\xA9 \xF0\x9F\x98", NULL), "utf-8");
	/* An invalid byte before the end is not a cut. */
	ck_assert(!charset_utf8_valid((const unsigned char *)"caf\xC3\xA9 \xE2\x82", 9));
}
END_TEST

START_TEST(test_detect_undeclared_windows_1252_french)
{
	size_t len, out_len;
	unsigned char *body = test_encode(test_french, 0, &len);
	char *text;

	ck_assert_uint_gt(len, 400);
	/* uchardet 0.0.7 answers ISO-8859-1, which WHATWG reads as windows-1252. */
	ck_assert_str_eq(charset_detect(body, len, NULL), "windows-1252");
	text = charset_decode(body, len, "windows-1252", &out_len);
	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, test_french);
	free(text);
	free(body);
}
END_TEST

START_TEST(test_detect_undeclared_windows_1251_russian)
{
	size_t len, out_len;
	unsigned char *body = test_encode(test_russian, 1, &len);
	char *text;

	ck_assert_uint_gt(len, 300);
	/* uchardet 0.0.7 answers WINDOWS-1251. */
	ck_assert_str_eq(charset_detect(body, len, NULL), "windows-1251");
	text = charset_decode(body, len, "cp1251", &out_len);
	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, test_russian);
	free(text);
	free(body);
}
END_TEST

/* ---- decoding ---- */

START_TEST(test_decode_latin1_is_windows_1252)
{
	DECODES_TO("caf\xE9", "latin1", "caf\xC3\xA9");
	DECODES_TO("caf\xE9", "ISO-8859-1", "caf\xC3\xA9");
	DECODES_TO("\x93quoted\x94", "us-ascii", "\xE2\x80\x9Cquoted\xE2\x80\x9D");
}
END_TEST

START_TEST(test_decode_windows_1252_0x80_is_euro_and_0x81_is_c1_control)
{
	DECODES_TO("\x80", "windows-1252", "\xE2\x82\xAC");
	DECODES_TO("\x81", "windows-1252", "\xC2\x81");
	DECODES_TO("\x8D\x8F\x90\x9D", "windows-1252", "\xC2\x8D\xC2\x8F\xC2\x90\xC2\x9D");
	DECODES_TO("\x9F\xA0\xFF", "windows-1252", "\xC5\xB8\xC2\xA0\xC3\xBF");
}
END_TEST

START_TEST(test_decode_windows_1250_undefined_byte_is_c1_control)
{
	/* glibc's CP1250 rejects 0x81; WHATWG's index maps it to U+0081. */
	DECODES_TO("a\x81\x9A", "windows-1250", "a\xC2\x81\xC5\xA1");
}
END_TEST

START_TEST(test_decode_single_byte_maps_each_byte_alone_as_whatwg)
{
	/* glibc's CP1255 composes alef + qamats into U+FB2F; WHATWG does not. */
	DECODES_TO("\xE0\xC8", "windows-1255", "\xD7\x90\xD6\xB8");
	/* Where glibc's tables differ from the WHATWG indexes. */
	DECODES_TO("\xCA", "windows-1255", "\xD6\xBA");
	DECODES_TO("\xAE\xBE", "koi8-u", "ўЎ");
	DECODES_TO("\xFF", "x-mac-cyrillic", "€");
	/* A byte the index leaves undefined. */
	DECODES_TO("a\xA5"
		   "b",
		   "iso-8859-3", "a" FFFD "b");
}
END_TEST

START_TEST(test_decode_single_byte_cyrillic)
{
	DECODES_TO("\xF0\xD2\xC9\xD7\xC5\xD4", "koi8-r", "Привет");
	DECODES_TO("\xCF\xF0\xE8\xE2\xE5\xF2", "windows-1251", "Привет");
	DECODES_TO("\xBF\xE0\xD8\xD2\xD5\xE2", "iso-8859-5", "Привет");
}
END_TEST

START_TEST(test_decode_keeps_nul_bytes)
{
	DECODES_TO("a\0b\xE9", "windows-1252", "a\0b\xC3\xA9");
	DECODES_TO("a\0b", "utf-8", "a\0b");
	DECODES_TO("a\0b", "koi8-r", "a\0b");
}
END_TEST

START_TEST(test_decode_invalid_utf8_one_replacement_per_maximal_subpart)
{
	DECODES_TO("a\x80z", "utf-8", "a" FFFD "z");
	DECODES_TO("\xC0\xAF", "utf-8", FFFD FFFD);		      /* overlong lead */
	DECODES_TO("\xE0\x80\x80", "utf-8", FFFD FFFD FFFD);	      /* overlong */
	DECODES_TO("\xED\xA0\x80", "utf-8", FFFD FFFD FFFD);	      /* surrogate */
	DECODES_TO("\xF4\x90\x80\x80", "utf-8", FFFD FFFD FFFD FFFD); /* > U+10FFFF */
	DECODES_TO("\xF5\xFF", "utf-8", FFFD FFFD);
	DECODES_TO("\xE2\x82z", "utf-8", FFFD "z"); /* valid prefix, then ASCII */
	DECODES_TO("\xF0\x9F\x98x", "utf-8", FFFD "x");
	DECODES_TO("\xE2\x82\xE2\x82\xAC", "utf-8", FFFD "\xE2\x82\xAC");
	SANITIZES_TO("ok \xC3\xA9 \xF0\x9F\x98\x80", "ok \xC3\xA9 \xF0\x9F\x98\x80");
	SANITIZES_TO("\xFF\xFE", FFFD FFFD);
}
END_TEST

START_TEST(test_decode_truncated_utf8_at_end_is_one_replacement)
{
	DECODES_TO("caf\xC3", "utf-8", "caf" FFFD);
	DECODES_TO("x\xE2\x82", "utf-8", "x" FFFD);
	DECODES_TO("x\xF0\x9F\x98", "utf-8", "x" FFFD);
}
END_TEST

START_TEST(test_utf8_valid_is_rfc_3629_strict)
{
	ck_assert(charset_utf8_valid((const unsigned char *)"", 0));
	ck_assert(charset_utf8_valid((const unsigned char *)"plain", 5));
	ck_assert(charset_utf8_valid((const unsigned char *)"\xF4\x8F\xBF\xBF", 4));
	ck_assert(charset_utf8_valid((const unsigned char *)"\xED\x9F\xBF", 3));
	ck_assert(!charset_utf8_valid((const unsigned char *)"\xF4\x90\x80\x80", 4));
	ck_assert(!charset_utf8_valid((const unsigned char *)"\xED\xA0\x80", 3));
	ck_assert(!charset_utf8_valid((const unsigned char *)"\xC1\xBF", 2));
	ck_assert(!charset_utf8_valid((const unsigned char *)"\xE0\x9F\xBF", 3));
	ck_assert(!charset_utf8_valid((const unsigned char *)"\xF0\x8F\xBF\xBF", 4));
	ck_assert(!charset_utf8_valid((const unsigned char *)"abc\xC3", 4));
	ck_assert(!charset_utf8_valid((const unsigned char *)"abcdefgh\x80", 9));
}
END_TEST

START_TEST(test_decode_drops_bom_and_bom_overrides_charset)
{
	DECODES_TO("\xEF\xBB\xBF"
		   "caf\xC3\xA9",
		   "utf-8", "caf\xC3\xA9");
	DECODES_TO("\xEF\xBB\xBF"
		   "caf\xC3\xA9",
		   "windows-1252", "caf\xC3\xA9");
	DECODES_TO("\xFF\xFE"
		   "h\0\xE9\0",
		   "windows-1252", "h\xC3\xA9");
	DECODES_TO("\xFE\xFF"
		   "\0h\0\xE9",
		   "utf-8", "h\xC3\xA9");
}
END_TEST

START_TEST(test_decode_utf16_odd_byte_and_lone_surrogate)
{
	DECODES_TO("h\0i\0", "utf-16le", "hi");
	DECODES_TO("\0h\0i", "utf-16be", "hi");
	DECODES_TO("h\0i", "utf-16le", "h" FFFD);
	DECODES_TO("\x3D\xD8\x00\xDE", "utf-16le", "\xF0\x9F\x98\x80");
	DECODES_TO("\x3D\xD8h\0", "utf-16le", FFFD "h");
	DECODES_TO("\x00\xDEh\0", "utf-16le", FFFD "h");
}
END_TEST

START_TEST(test_decode_shift_jis_sample)
{
	/* "日本語のテスト" */
	DECODES_TO("\x93\xFA\x96\x7B\x8C\xEA\x82\xCC\x83\x65\x83\x58\x83\x67", "shift_jis",
		   "日本語のテスト");
	DECODES_TO("\x93\xFA\x96\x7B", "sjis", "日本");
	DECODES_TO("a\\b~", "shift_jis", "a\\b~");
	DECODES_TO("\xB1\xB2", "shift_jis", "ｱｲ");
	DECODES_TO("\x80", "shift_jis", "\xC2\x80");
}
END_TEST

START_TEST(test_decode_invalid_byte_in_multibyte_charset_continues)
{
	DECODES_TO("\x93\xFA\xFF\x96\x7B", "shift_jis", "日" FFFD "本");
	DECODES_TO("\x93 x", "shift_jis", FFFD " x");
	DECODES_TO("\xC6\xFC\xFF\xCB\xDC", "euc-jp", "日" FFFD "本");
	DECODES_TO("\xC4\xE3\xFF\xBA\xC3", "gbk", "你" FFFD "好");
	DECODES_TO("\x80", "gb18030", "\xE2\x82\xAC");
	DECODES_TO("\xA4\xA4\xFF\xA4\xE5", "big5", "中" FFFD "文");
	DECODES_TO("\xC7\xD1\xFF\xB1\xDB", "euc-kr", "한" FFFD "글");
}
END_TEST

START_TEST(test_decode_truncated_multibyte_at_end_is_one_replacement)
{
	DECODES_TO("\x93\xFA\x96", "shift_jis", "日" FFFD);
	DECODES_TO("a\x81\x30\x81", "gb18030", "a" FFFD);
	DECODES_TO("a\xC6", "euc-jp", "a" FFFD);
}
END_TEST

START_TEST(test_decode_iso_2022_jp)
{
	DECODES_TO("\x1B$B;z\x1B(B ok", "iso-2022-jp", "字 ok");
}
END_TEST

START_TEST(test_decode_unknown_label_is_null)
{
	size_t out_len = 7;

	ck_assert_ptr_null(charset_decode((const unsigned char *)"abc", 3, "bogus", &out_len));
	ck_assert_ptr_null(charset_decode((const unsigned char *)"abc", 3, NULL, &out_len));
	ck_assert_ptr_null(
		charset_decode((const unsigned char *)"abc", 3, "x-user-defined", &out_len));
}
END_TEST

/* ---- linear time ---- */

static double test_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds to detect and decode size bytes of sample repeated; best of 3. */
static double test_time_detect_decode(const unsigned char *sample, size_t sample_len, size_t size,
				      const char *want)
{
	unsigned char *body = malloc(size);
	double best = 1e9;
	size_t i;
	int round;

	ck_assert_ptr_nonnull(body);
	for (i = 0; i < size; i += sample_len)
		memcpy(body + i, sample, size - i < sample_len ? size - i : sample_len);
	for (round = 0; round < 3; round++) {
		double t0 = test_now(), t;
		const char *enc = charset_detect(body, size, NULL);
		size_t out_len;
		char *text = charset_decode(body, size, enc, &out_len);

		t = test_now() - t0;
		ck_assert_str_eq(enc, want);
		ck_assert_ptr_nonnull(text);
		ck_assert_uint_ge(out_len, size);
		free(text);
		if (t < best)
			best = t;
	}
	free(body);
	return best;
}

static void test_linear(const unsigned char *sample, size_t sample_len, const char *want)
{
	double t1 = test_time_detect_decode(sample, sample_len, 1 << 20, want);
	double t10 = test_time_detect_decode(sample, sample_len, 10 << 20, want);
	/* A floor of 5 ms keeps a very fast 1 MB run (and the page faults of
	 * the first 10 MB buffer) from making the bound tight; a quadratic
	 * decoder would still be 100 times over it. */
	double bound = 40 * (t1 > 0.005 ? t1 : 0.005);

	printf("charset %s: detect+decode 1 MB %.2f ms, 10 MB %.2f ms\n", want, t1 * 1e3,
	       t10 * 1e3);
	ck_assert_msg(t10 < bound, "10 MB took %.2f ms, 1 MB %.2f ms: not linear", t10 * 1e3,
		      t1 * 1e3);
}

START_TEST(test_detect_and_decode_10mb_undeclared_body_is_linear)
{
	size_t fr_len, ru_len;
	unsigned char *fr = test_encode(test_french, 0, &fr_len);
	unsigned char *ru = test_encode(test_russian, 1, &ru_len);

	/* Undeclared UTF-8: the whole body is validated, then sanitized. */
	test_linear((const unsigned char *)test_french, strlen(test_french), "utf-8");
	test_linear((const unsigned char *)test_russian, strlen(test_russian), "utf-8");
	/* Undeclared windows-1252: uchardet on 64 KiB, then the table decoder. */
	test_linear(fr, fr_len, "windows-1252");
	/* Undeclared windows-1251: uchardet on 64 KiB, then iconv. */
	test_linear(ru, ru_len, "windows-1251");
	free(fr);
	free(ru);
}
END_TEST

static Suite *charset_suite(void)
{
	Suite *s = suite_create("charset");
	TCase *labels = tcase_create("labels");
	TCase *detect = tcase_create("detect");
	TCase *decode = tcase_create("decode");
	TCase *speed = tcase_create("speed");

	tcase_add_test(labels, test_label_latin1_and_us_ascii_map_to_windows_1252);
	tcase_add_test(labels, test_label_aliases_map_to_whatwg_names);
	tcase_add_test(labels, test_label_unknown_or_unsupported_is_null);
	suite_add_tcase(s, labels);

	tcase_add_test(detect, test_detect_boms_set_bom_len);
	tcase_add_test(detect, test_detect_bom_only_body);
	tcase_add_test(detect, test_detect_empty_body_is_utf8);
	tcase_add_test(detect, test_detect_meta_charset_on_cp1251_page);
	tcase_add_test(detect, test_detect_meta_http_equiv_content_type);
	tcase_add_test(detect, test_detect_meta_content_without_http_equiv_is_ignored);
	tcase_add_test(detect, test_detect_meta_utf16_means_utf8);
	tcase_add_test(detect, test_detect_meta_skips_comments_and_unknown_labels);
	tcase_add_test(detect, test_detect_meta_after_first_1024_bytes_is_ignored);
	tcase_add_test(detect, test_detect_xml_declaration_iso_8859_1_is_windows_1252);
	tcase_add_test(detect, test_detect_undeclared_utf8_with_accents);
	tcase_add_test(detect, test_detect_utf8_cut_mid_character_is_still_utf8);
	tcase_add_test(detect, test_detect_undeclared_windows_1252_french);
	tcase_add_test(detect, test_detect_undeclared_windows_1251_russian);
	suite_add_tcase(s, detect);

	tcase_add_test(decode, test_decode_latin1_is_windows_1252);
	tcase_add_test(decode, test_decode_windows_1252_0x80_is_euro_and_0x81_is_c1_control);
	tcase_add_test(decode, test_decode_windows_1250_undefined_byte_is_c1_control);
	tcase_add_test(decode, test_decode_single_byte_maps_each_byte_alone_as_whatwg);
	tcase_add_test(decode, test_decode_single_byte_cyrillic);
	tcase_add_test(decode, test_decode_keeps_nul_bytes);
	tcase_add_test(decode, test_decode_invalid_utf8_one_replacement_per_maximal_subpart);
	tcase_add_test(decode, test_decode_truncated_utf8_at_end_is_one_replacement);
	tcase_add_test(decode, test_utf8_valid_is_rfc_3629_strict);
	tcase_add_test(decode, test_decode_drops_bom_and_bom_overrides_charset);
	tcase_add_test(decode, test_decode_utf16_odd_byte_and_lone_surrogate);
	tcase_add_test(decode, test_decode_shift_jis_sample);
	tcase_add_test(decode, test_decode_invalid_byte_in_multibyte_charset_continues);
	tcase_add_test(decode, test_decode_truncated_multibyte_at_end_is_one_replacement);
	tcase_add_test(decode, test_decode_iso_2022_jp);
	tcase_add_test(decode, test_decode_unknown_label_is_null);
	suite_add_tcase(s, decode);

	/* Sanitizer builds are slow; the assertion is relative, not absolute. */
	tcase_set_timeout(speed, 120);
	tcase_add_test(speed, test_detect_and_decode_10mb_undeclared_body_is_linear);
	suite_add_tcase(s, speed);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(charset_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
