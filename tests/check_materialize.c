/* Materialization over real HTTP: the real fetchd binary against the
 * upstream test server (its /fixture bodies, /cookie-chain, /link, ...),
 * asserting the exact value of every response field that SPEC section 2
 * ("Fields") defines: encoding, apparent_encoding, text, content_base64,
 * json, size, cookies, links, header values, body_mode x fields. Each test
 * starts its own processes; every HTTP call has a timeout (harness.h). */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "base64.h"
#include "harness.h"
#include "testlib.h"

#define TEST_TIMEOUT_S 120
#define TIMING_TEST_TIMEOUT_S 300
#define BIG_BODY 8388608 /* 8 MiB, under the default max_response_bytes (10M) */
#define TIMING_RUNS 3

/* ---- the fixtures' bodies as text (what fetchd must decode them to) ---- */

/* /fixture?name=latin1-declared: ISO-8859-1 declared, and it holds 0x92,
 * which WHATWG's iso-8859-1 (= windows-1252) decodes to U+2019. */
static const char latin1_declared_text[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"fr\"><head><title>Le café</title></head><body>\n"
	"<p>L’été dernier, à la fenêtre du café, le garçon mène une vie tranquil"
	"le. Il prépare la crème brûlée ; la façade est décorée et les clients é"
	"coutent la mélodie d’une chanson française.</p>\n"
	"<p>Où est la bibliothèque ? Voilà : près de l’église, après le théâtre,"
	" à côté du garçon qui reçoit ses amis.</p>\n"
	"</body></html>\n";
#define LATIN1_DECLARED_SIZE 393

static const char cp1251_meta_text[] =
	"<!DOCTYPE html>\n"
	"<html><head><meta charset=\"windows-1251\"><title>Привет</title></head>"
	"<body>\n"
	"<p>Съешь же ещё этих мягких французских булок, да выпей чаю. Широкая эл"
	"ектрификация южных губерний даст мощный толчок подъёму сельского хозяйс"
	"тва.</p>\n"
	"<p>В чащах юга жил бы цитрус? Да, но фальшивый экземпляр!</p>\n"
	"</body></html>\n";
#define CP1251_META_SIZE 320

static const char xml_decl_text[] = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r>café</r>";
#define XML_DECL_SIZE 54

static const char utf8_undeclared_text[] = "Déjà vu : naïve façade, cœur, Ærøskøbing, 日本語 ✓\n";
#define UTF8_UNDECLARED_SIZE 64

static const char cp1252_undeclared_text[] =
	"Le prix du menu est de 15 € (quinze euros), service compris. « Très bon"
	" rapport qualité-prix », écrit le critique ; le chef répond : “C’est no"
	"tre cœur de métier…”\n"
	"Les œufs brouillés, la crème fraîche et le pâté de campagne sont prépar"
	"és à la maison. Un café coûte 2 € ; un thé, 3 € ; le gâteau du jour, 6 "
	"€. À bientôt, chère clientèle ! Nous sommes ouverts du mardi au dimanch"
	"e, et la terrasse est chauffée l’hiver.\n";
#define CP1252_UNDECLARED_SIZE 416

/* /fixture?name=br: "hello brotli\n" x 100, brotli-compressed (31 bytes). */
#define BR_RAW_BASE64 "GxMF+B2pU5+7cC1WhianFUDY6CRb2lsYGA0cTGb5BQ=="
#define BR_RAW_SIZE 31

/* /utf8 is "héllo wörld\n" with charset=utf-8. */
#define UTF8_TEXT "héllo wörld\n"
#define UTF8_TEXT_JSON "héllo wörld\\n" /* the same inside a JSON text */
#define UTF8_BASE64 "aMOpbGxvIHfDtnJsZAo="
#define UTF8_SIZE 14

/* /json is {"hello":"world","n":1} (application/json). */
#define JSON_BODY "{\"hello\":\"world\",\"n\":1}"
#define JSON_BASE64 "eyJoZWxsbyI6IndvcmxkIiwibiI6MX0="

/* /bytes?n=300: byte i is i % 251. */
#define BYTES300_BASE64                                                                            \
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"     \
	"P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9"     \
	"fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8"     \
	"vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+foA"     \
	"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8w"

/* ---- helpers ---- */

/* Fetch one upstream path; body_mode and fields (JSON text) may be NULL
 * for the defaults. The answer must be a 200 document. */
static void fetch_opts(const char *path, const char *body_mode, const char *fields,
		       struct http_resp *r)
{
	char *url = up_url(&up, path);
	json_t *req = json_pack("{s:s}", "url", url);

	ck_assert_msg(req != NULL, "json_pack failed");
	if (body_mode != NULL)
		json_object_set_new(req, "body_mode", json_string(body_mode));
	if (fields != NULL) {
		json_t *f = json_loads(fields, 0, NULL);

		ck_assert_msg(f != NULL, "bad fields %s", fields);
		json_object_set_new(req, "fields", f);
	}
	fetch(&daemon_, req, r);
	free(url);
	expect_status(r, 200);
}

/* The same with the defaults. */
static void fetch_doc(const char *path, struct http_resp *r)
{
	fetch_opts(path, NULL, NULL, r);
}

/* {"name": "value", ...} from a Cookie request header ("a=1; b=2"). */
static json_t *cookie_header_object(const char *header)
{
	json_t *obj = json_object();
	const char *p = header;

	while (obj != NULL && *p != '\0') {
		const char *end = strchr(p, ';'), *eq;
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		char *pair;

		while (*p == ' ' && len > 0) {
			p++;
			len--;
		}
		pair = strndup(p, len);
		ck_assert_ptr_nonnull(pair);
		eq = strchr(pair, '=');
		if (eq != NULL) {
			pair[eq - pair] = '\0';
			json_object_set_new(obj, pair, json_string(eq + 1));
		}
		free(pair);
		if (end == NULL)
			break;
		p = end + 1;
	}
	return obj;
}

/* One windows-1252 byte as UTF-8 (WHATWG's table: 0x81, 0x8D, 0x8F, 0x90
 * and 0x9D map to the C1 controls); returns the length written. */
static size_t cp1252_to_utf8(unsigned char b, char *out)
{
	static const unsigned short c1[32] = {
		0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
		0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
		0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
		0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};
	unsigned cp = b >= 0x80 && b < 0xA0 ? c1[b - 0x80] : b;

	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	out[0] = (char)(0xE0 | cp >> 12);
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[2] = (char)(0x80 | (cp & 0x3F));
	return 3;
}

/* ---- 1. charsets: declared, <meta>, BOM, XML declaration, sniffed ---- */

START_TEST(test_latin1_declared_page)
{
	struct http_resp r;

	fetch_doc("/fixture?name=latin1-declared", &r);
	expect_str(&r, "headers.content-type", "text/html; charset=ISO-8859-1");
	expect_str(&r, "encoding", "iso-8859-1");
	expect_str(&r, "apparent_encoding", "windows-1252");
	expect_str(&r, "text", latin1_declared_text);
	expect_absent(&r, "content_base64");
	expect_absent(&r, "json");
	expect_int(&r, "size", LATIN1_DECLARED_SIZE);
	expect_bool(&r, "truncated", false);
	http_resp_free(&r);
}
END_TEST

START_TEST(test_cp1251_charset_only_in_meta)
{
	struct http_resp r;

	fetch_doc("/fixture?name=cp1251-meta", &r);
	expect_str(&r, "headers.content-type", "text/html");
	expect_null(&r, "encoding");
	expect_str(&r, "apparent_encoding", "windows-1251");
	expect_str(&r, "text", cp1251_meta_text);
	expect_absent(&r, "content_base64");
	expect_int(&r, "size", CP1251_META_SIZE);
	http_resp_free(&r);
}
END_TEST

/* The BOM says utf-8 and is not part of text; it stays in the raw bytes. */
START_TEST(test_utf8_bom_is_dropped_from_text)
{
	struct http_resp r;

	fetch_doc("/fixture?name=utf8-bom", &r);
	expect_null(&r, "encoding");
	expect_str(&r, "apparent_encoding", "utf-8");
	expect_str(&r, "text", "héllo");
	expect_absent(&r, "content_base64");
	expect_int(&r, "size", 9);
	http_resp_free(&r);

	fetch_opts("/fixture?name=utf8-bom", "base64", NULL, &r);
	expect_str(&r, "content_base64", "77u/aMOpbGxv");
	expect_absent(&r, "text");
	expect_int(&r, "size", 9);
	http_resp_free(&r);
}
END_TEST

START_TEST(test_xml_encoding_declaration)
{
	struct http_resp r;

	fetch_doc("/fixture?name=xml-decl", &r);
	expect_str(&r, "headers.content-type", "application/xml");
	expect_null(&r, "encoding");
	expect_str(&r, "apparent_encoding", "windows-1252");
	expect_str(&r, "text", xml_decl_text);
	expect_absent(&r, "content_base64");
	expect_absent(&r, "json");
	expect_int(&r, "size", XML_DECL_SIZE);
	http_resp_free(&r);
}
END_TEST

START_TEST(test_undeclared_utf8)
{
	struct http_resp r;

	fetch_doc("/fixture?name=utf8-undeclared", &r);
	expect_null(&r, "encoding");
	expect_str(&r, "apparent_encoding", "utf-8");
	expect_str(&r, "text", utf8_undeclared_text);
	expect_int(&r, "size", UTF8_UNDECLARED_SIZE);
	http_resp_free(&r);
}
END_TEST

START_TEST(test_undeclared_windows_1252)
{
	struct http_resp r;

	fetch_doc("/fixture?name=cp1252-undeclared", &r);
	expect_null(&r, "encoding");
	expect_str(&r, "apparent_encoding", "windows-1252");
	expect_str(&r, "text", cp1252_undeclared_text);
	expect_int(&r, "size", CP1252_UNDECLARED_SIZE);
	http_resp_free(&r);
}
END_TEST

/* "ab\xff\xfecd" declared utf-8: each invalid byte is one U+FFFD. */
START_TEST(test_invalid_bytes_become_replacement_characters)
{
	struct http_resp r;

	fetch_opts("/invalid-utf8", NULL, "[\"encoding\", \"text\", \"content_base64\", \"size\"]",
		   &r);
	expect_json(&r, "",
		    "{\"encoding\": \"utf-8\", \"text\": \"ab\\ufffd\\ufffdcd\", \"size\": 6}");
	http_resp_free(&r);

	/* body_mode text says the same; base64 keeps the bytes */
	fetch_opts("/invalid-utf8", "text", "[\"text\", \"content_base64\"]", &r);
	expect_json(&r, "", "{\"text\": \"ab\\ufffd\\ufffdcd\"}");
	http_resp_free(&r);
	fetch_opts("/invalid-utf8", "base64", "[\"text\", \"content_base64\"]", &r);
	expect_json(&r, "", "{\"content_base64\": \"YWL//mNk\"}");
	http_resp_free(&r);
}
END_TEST

/* ---- 2. JSON bodies ---- */

START_TEST(test_json_body_is_parsed)
{
	struct http_resp r;

	fetch_doc("/json", &r);
	expect_str(&r, "headers.content-type", "application/json");
	expect_null(&r, "encoding");
	expect_str(&r, "apparent_encoding", "utf-8");
	expect_str(&r, "text", JSON_BODY);
	expect_json(&r, "json", JSON_BODY);
	expect_absent(&r, "content_base64");
	expect_int(&r, "size", (long long)strlen(JSON_BODY));
	http_resp_free(&r);
}
END_TEST

/* application/problem+json is JSON (a +json suffix), and a 4xx upstream
 * answer is still a 200 document. */
START_TEST(test_problem_json_is_parsed)
{
	struct http_resp r;

	fetch_doc("/problem", &r);
	expect_int(&r, "status", 422);
	expect_str(&r, "reason", "Unprocessable Content");
	expect_bool(&r, "ok", false);
	expect_str(&r, "headers.content-type", "application/problem+json");
	expect_null(&r, "encoding");
	expect_str(&r, "text", "{\"title\":\"bad\"}");
	expect_json(&r, "json", "{\"title\": \"bad\"}");
	expect_absent(&r, "content_base64");
	expect_int(&r, "size", 15);
	http_resp_free(&r);
}
END_TEST

/* ---- 3. binary and compressed bodies ---- */

START_TEST(test_binary_body_is_base64_only)
{
	struct http_resp r;

	fetch_doc("/bytes?n=300", &r);
	expect_str(&r, "headers.content-type", "application/octet-stream");
	expect_null(&r, "encoding");
	expect_str(&r, "content_base64", BYTES300_BASE64);
	expect_absent(&r, "text");
	expect_absent(&r, "json");
	expect_int(&r, "size", 300);
	http_resp_free(&r);
}
END_TEST

START_TEST(test_gzip_body_decompressed_or_raw)
{
	bool bad = false;
	char want[1101];
	struct http_resp r;
	unsigned char *raw;
	size_t len = 0;
	json_t *b64;
	char *url = up_url(&up, "/gzip");

	for (int i = 0; i < 100; i++)
		memcpy(want + i * 11, "hello gzip\n", 11);
	want[1100] = '\0';
	fetch_doc("/gzip", &r);
	expect_str(&r, "headers.content-encoding", "gzip");
	expect_null(&r, "encoding");
	expect_str(&r, "text", want);
	expect_absent(&r, "content_base64");
	expect_int(&r, "size", 1100);
	http_resp_free(&r);

	/* decompress false: the gzip bytes, never text, size = compressed length */
	fetch(&daemon_, json_pack("{s:s, s:b}", "url", url, "decompress", 0), &r);
	expect_status(&r, 200);
	expect_absent(&r, "text");
	expect_absent(&r, "json");
	b64 = json_path(r.json, "content_base64");
	ck_assert_msg(json_is_string(b64), "content_base64: %s; body: %.1000s", describe(b64),
		      body_of(&r));
	raw = (unsigned char *)base64_decode(json_string_value(b64), json_string_length(b64), &len,
					     &bad);
	ck_assert_msg(raw != NULL && len > 18 && len < 1100 && raw[0] == 0x1f && raw[1] == 0x8b,
		      "the raw body is not the gzip stream (%zu bytes)", len);
	expect_int(&r, "size", (long long)len);
	free(raw);
	http_resp_free(&r);
	free(url);
}
END_TEST

START_TEST(test_br_body_decompressed_or_raw)
{
	char want[1301];
	struct http_resp r;
	char *url = up_url(&up, "/fixture?name=br");

	for (int i = 0; i < 100; i++)
		memcpy(want + i * 13, "hello brotli\n", 13);
	want[1300] = '\0';
	fetch_doc("/fixture?name=br", &r);
	expect_str(&r, "headers.content-encoding", "br");
	expect_str(&r, "encoding", "utf-8");
	expect_str(&r, "text", want);
	expect_absent(&r, "content_base64");
	expect_int(&r, "size", 1300);
	http_resp_free(&r);

	fetch(&daemon_, json_pack("{s:s, s:b}", "url", url, "decompress", 0), &r);
	expect_status(&r, 200);
	expect_absent(&r, "text");
	expect_str(&r, "content_base64", BR_RAW_BASE64);
	expect_int(&r, "size", BR_RAW_SIZE);
	http_resp_free(&r);
	free(url);
}
END_TEST

/* ---- 4. cookies, links, header values ---- */

/* Three redirects, each setting one cookie; the final hop echoes the
 * Cookie header it got. */
START_TEST(test_cookies_from_every_hop_of_a_3_hop_chain)
{
	struct http_resp r;
	json_t *got, *sent;
	char *want_url = up_url(&up, "/cookie-chain?n=3&i=4");

	fetch_doc("/cookie-chain?n=3", &r);
	expect_int(&r, "status", 200);
	expect_str(&r, "url", want_url);
	expect_json(&r, "cookies", "{\"c1\": \"1\", \"c2\": \"2\", \"c3\": \"3\"}");
	ck_assert_msg(json_array_size(json_path(r.json, "history")) == 3,
		      "history: want 3 hops, got %s", describe(json_path(r.json, "history")));
	for (int i = 0; i < 3; i++) {
		char *p_status = str_printf("history.%d.status", i);
		char *p_cookie = str_printf("history.%d.headers.set-cookie", i);
		char *w_cookie = str_printf("c%d=%d; Path=/", i + 1, i + 1);

		expect_int(&r, p_status, 302);
		expect_str(&r, p_cookie, w_cookie);
		free(p_status);
		free(p_cookie);
		free(w_cookie);
	}
	expect_int(&r, "json.hops", 3);
	got = json_path(r.json, "json.cookie");
	ck_assert_msg(json_is_string(got), "the last hop got no Cookie header: %s; body: %.1000s",
		      describe(got), body_of(&r));
	sent = cookie_header_object(json_string_value(got));
	ck_assert_msg(json_equal(sent, json_path(r.json, "cookies")),
		      "the last hop got Cookie \"%s\", want c1=1, c2=2 and c3=3",
		      json_string_value(got));
	json_decref(sent);
	http_resp_free(&r);
	free(want_url);
}
END_TEST

/* A relative link resolves against the final URL, an absolute one stays. */
START_TEST(test_link_header_with_two_links)
{
	struct http_resp r;
	char *prev = up_url(&up, "/prev");
	char *want = str_printf("{\"next\": {\"url\": \"https://example.org/next\","
				" \"rel\": \"next\"},"
				" \"prev\": {\"url\": \"%s\", \"rel\": \"prev\"}}",
				prev);

	fetch_doc("/link", &r);
	expect_json(&r, "links", want);
	http_resp_free(&r);
	free(want);
	free(prev);
}
END_TEST

/* X-Name: caf\xe9 (latin-1 on the wire). SPEC: strings taken from upstream
 * are made valid UTF-8; README ("Where SPEC and fetchd differ") says how:
 * bytes that are not UTF-8 are read as ISO-8859-1, the historical header
 * charset (RFC 9110 section 5.5), decoded the WHATWG way, so the value is
 * "caf\u00e9", not "caf\ufffd". */
START_TEST(test_latin1_response_header_value)
{
	struct http_resp r;

	fetch_opts("/latin1-header", NULL, "[\"headers\", \"header_list\"]", &r);
	expect_str(&r, "headers.x-name", "caf\xc3\xa9");
	ck_assert_msg(json_is_array(json_path(r.json, "header_list")), "header_list: %s",
		      describe(json_path(r.json, "header_list")));
	{
		json_t *list = json_path(r.json, "header_list"), *pair;
		size_t i;
		bool seen = false;

		json_array_foreach (list, i, pair) {
			const char *name = json_string_value(json_array_get(pair, 0));
			const char *value = json_string_value(json_array_get(pair, 1));

			if (name == NULL || strcmp(name, "X-Name") != 0)
				continue;
			ck_assert_msg(value != NULL && strcmp(value, "caf\xc3\xa9") == 0,
				      "header_list X-Name: want \"caf\\u00e9\", got %s",
				      describe(pair));
			seen = true;
		}
		ck_assert_msg(seen, "X-Name missing from header_list: %s", describe(list));
	}
	http_resp_free(&r);
}
END_TEST

/* ---- 5. body_mode x fields ---- */

/* body_mode on a text body (/utf8), a binary one (/bytes?n=300) and a JSON
 * one: which of text / content_base64 / json each gives, and their values.
 * The fields asked for are the body fields plus size. */
START_TEST(test_body_mode_matrix)
{
	static const struct {
		const char *path, *mode, *want;
	} cases[] = {
		{"/utf8", "auto", "{\"text\": \"" UTF8_TEXT_JSON "\", \"size\": 14}"},
		{"/utf8", "text", "{\"text\": \"" UTF8_TEXT_JSON "\", \"size\": 14}"},
		{"/utf8", "base64", "{\"content_base64\": \"" UTF8_BASE64 "\", \"size\": 14}"},
		{"/utf8", "none", "{\"size\": 14}"},
		{"/bytes?n=300", "auto",
		 "{\"content_base64\": \"" BYTES300_BASE64 "\", \"size\": 300}"},
		{"/bytes?n=300", "base64",
		 "{\"content_base64\": \"" BYTES300_BASE64 "\", \"size\": 300}"},
		{"/bytes?n=300", "none", "{\"size\": 300}"},
		{"/json", "auto",
		 "{\"text\": \"{\\\"hello\\\":\\\"world\\\",\\\"n\\\":1}\", \"json\": " JSON_BODY
		 ", \"size\": 23}"},
		{"/json", "text",
		 "{\"text\": \"{\\\"hello\\\":\\\"world\\\",\\\"n\\\":1}\", \"json\": " JSON_BODY
		 ", \"size\": 23}"},
		{"/json", "base64", "{\"content_base64\": \"" JSON_BASE64 "\", \"size\": 23}"},
		{"/json", "none", "{\"size\": 23}"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_resp r;

		fetch_opts(cases[i].path, cases[i].mode,
			   "[\"text\", \"content_base64\", \"json\", \"size\"]", &r);
		ck_assert_msg(r.json != NULL, "%s body_mode %s: not JSON: %.1000s", cases[i].path,
			      cases[i].mode, body_of(&r));
		{
			json_t *w = json_loads(cases[i].want, 0, NULL);

			ck_assert_msg(w != NULL, "bad expectation %s", cases[i].want);
			ck_assert_msg(json_equal(r.json, w),
				      "%s body_mode %s: want %s, got %.1000s", cases[i].path,
				      cases[i].mode, cases[i].want, body_of(&r));
			json_decref(w);
		}
		http_resp_free(&r);
	}
}
END_TEST

/* body_mode text on bytes: always text (decoded with the apparent
 * encoding, never failing), never content_base64. /bytes?n=128 is bytes
 * 0..127: valid UTF-8 (ASCII), so its text is exactly those code points,
 * NUL included (U+0000 in the JSON). */
START_TEST(test_body_mode_text_on_a_binary_body)
{
	struct http_resp r;
	json_t *text;

	fetch_opts("/bytes?n=128", "text", NULL, &r);
	/* text holds U+0000: parse again with JSON_ALLOW_NUL */
	json_decref(r.json);
	r.json = json_loadb(r.body, r.body_len, JSON_ALLOW_NUL, NULL);
	ck_assert_msg(r.json != NULL, "not JSON: %.1000s", body_of(&r));
	expect_null(&r, "encoding");
	expect_str(&r, "apparent_encoding", "utf-8");
	expect_absent(&r, "content_base64");
	expect_int(&r, "size", 128);
	text = json_path(r.json, "text");
	ck_assert_msg(json_is_string(text) && json_string_length(text) == 128,
		      "text: want the 128 bytes 0..127, got %s", describe(text));
	for (size_t i = 0; i < 128; i++)
		ck_assert_msg((unsigned char)json_string_value(text)[i] == i,
			      "text byte %zu: want %zu, got %u", i, i,
			      (unsigned char)json_string_value(text)[i]);
	http_resp_free(&r);

	/* bytes 0..250, 0..48: not UTF-8 and no charset anywhere, so
	 * windows-1252 (nothing better is apparent in them), byte by byte */
	fetch_opts("/bytes?n=300", "text",
		   "[\"encoding\", \"apparent_encoding\", \"text\", \"content_base64\", "
		   "\"size\"]",
		   &r);
	json_decref(r.json);
	r.json = json_loadb(r.body, r.body_len, JSON_ALLOW_NUL, NULL);
	ck_assert_msg(r.json != NULL, "not JSON: %.1000s", body_of(&r));
	expect_null(&r, "encoding");
	expect_str(&r, "apparent_encoding", "windows-1252");
	expect_absent(&r, "content_base64");
	expect_int(&r, "size", 300);
	text = json_path(r.json, "text");
	ck_assert_msg(json_is_string(text), "text: %s", describe(text));
	{
		char want[300 * 3];
		size_t n = 0;

		for (size_t i = 0; i < 300; i++)
			n += cp1252_to_utf8((unsigned char)(i % 251), want + n);
		ck_assert_msg(json_string_length(text) == n &&
				      memcmp(json_string_value(text), want, n) == 0,
			      "text: want bytes 0..250, 0..48 decoded as windows-1252 (%zu bytes), "
			      "got %zu bytes: %s",
			      n, json_string_length(text), describe(text));
	}
	http_resp_free(&r);
}
END_TEST

/* fields selects exactly the listed top-level fields; a field that does
 * not apply (text of a binary body) is absent; encoding is present (null
 * when undeclared); cookies and links are {} when empty. */
START_TEST(test_fields_subsets)
{
	static const struct {
		const char *path, *mode, *fields, *want;
	} cases[] = {
		{"/json", NULL, "[\"status\"]", "{\"status\": 200}"},
		{"/json", NULL, "[]", "{}"},
		{"/utf8", NULL, "[\"text\"]", "{\"text\": \"" UTF8_TEXT_JSON "\"}"},
		{"/utf8", "base64", "[\"content_base64\"]",
		 "{\"content_base64\": \"" UTF8_BASE64 "\"}"},
		{"/json", NULL, "[\"json\"]", "{\"json\": " JSON_BODY "}"},
		{"/utf8", NULL, "[\"content_base64\"]", "{}"},
		{"/bytes?n=3", NULL, "[\"text\", \"json\"]", "{}"},
		{"/bytes?n=3", NULL, "[\"content_base64\"]", "{\"content_base64\": \"AAEC\"}"},
		{"/utf8", NULL, "[\"encoding\", \"apparent_encoding\"]",
		 "{\"encoding\": \"utf-8\", \"apparent_encoding\": \"utf-8\"}"},
		{"/bytes?n=3", NULL, "[\"encoding\", \"cookies\", \"links\"]",
		 "{\"encoding\": null, \"cookies\": {}, \"links\": {}}"},
		{"/fixture?name=cp1251-meta", NULL, "[\"apparent_encoding\"]",
		 "{\"apparent_encoding\": \"windows-1251\"}"},
		{"/fixture?name=latin1-declared", "none", "[\"encoding\", \"text\", \"size\"]",
		 "{\"encoding\": \"iso-8859-1\", \"size\": 393}"},
		{"/json", "none", "[\"json\", \"text\", \"content_base64\", \"size\"]",
		 "{\"size\": 23}"},
		{"/json", "base64", "[\"json\", \"content_base64\"]",
		 "{\"content_base64\": \"" JSON_BASE64 "\"}"},
		{"/problem", NULL, "[\"status\", \"reason\", \"ok\", \"json\"]",
		 "{\"status\": 422, \"reason\": \"Unprocessable Content\", \"ok\": false,"
		 " \"json\": {\"title\": \"bad\"}}"},
		{"/headers", NULL, "[\"cookies\", \"history\"]",
		 "{\"cookies\": {\"a\": \"1\", \"b\": \"2\"}, \"history\": []}"},
		{"/status/204", NULL, "[\"status\", \"text\", \"size\", \"encoding\"]",
		 "{\"status\": 204, \"text\": \"\", \"size\": 0, \"encoding\": null}"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_resp r;
		json_t *w;

		fetch_opts(cases[i].path, cases[i].mode, cases[i].fields, &r);
		w = json_loads(cases[i].want, 0, NULL);
		ck_assert_msg(w != NULL, "bad expectation %s", cases[i].want);
		ck_assert_msg(json_equal(r.json, w),
			      "%s body_mode %s fields %s: want %s, got %.1000s", cases[i].path,
			      cases[i].mode ? cases[i].mode : "(auto)", cases[i].fields,
			      cases[i].want, body_of(&r));
		json_decref(w);
		http_resp_free(&r);
	}
}
END_TEST

/* Without fields, the document has exactly the SPEC's fields: those that
 * apply, and no others. */
START_TEST(test_full_document_has_exactly_the_documented_fields)
{
	static const char *const text_keys[] = {
		"url",	      "status",	     "reason",	"ok",	    "http_version",
		"headers",    "header_list", "history", "encoding", "apparent_encoding",
		"text",	      "cookies",     "links",	"size",	    "truncated",
		"elapsed_ms", "timing",	     "remote",	"worker",   "tls"};
	static const struct {
		const char *path, *extra;
	} cases[] = {{"/utf8", NULL}, {"/json", "json"}, {"/bytes?n=10", "content_base64"}};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct http_resp r;
		json_t *want = json_object();
		const char *key;
		json_t *v;

		for (size_t i = 0; i < sizeof(text_keys) / sizeof(text_keys[0]); i++)
			json_object_set_new(want, text_keys[i], json_true());
		if (strcmp(cases[c].path, "/bytes?n=10") == 0)
			json_object_del(want, "text");
		if (cases[c].extra != NULL)
			json_object_set_new(want, cases[c].extra, json_true());
		fetch_doc(cases[c].path, &r);
		json_object_foreach (r.json, key, v)
			ck_assert_msg(json_object_get(want, key) != NULL,
				      "%s: unexpected field \"%s\"; body: %.1000s", cases[c].path,
				      key, body_of(&r));
		json_object_foreach (want, key, v)
			ck_assert_msg(json_object_get(r.json, key) != NULL,
				      "%s: field \"%s\" missing; body: %.1000s", cases[c].path, key,
				      body_of(&r));
		expect_json(&r, "cookies", "{}");
		expect_json(&r, "links", "{}");
		expect_json(&r, "history", "[]");
		expect_bool(&r, "truncated", false);
		json_decref(want);
		http_resp_free(&r);
	}
}
END_TEST

/* ---- 6. fields: ["status"] skips the heavy work ---- */

static size_t discard_cb(char *data, size_t size, size_t n, void *arg)
{
	(void)data;
	*(size_t *)arg += size * n;
	return size * n;
}

/* POST body to fetchd's /v1/fetch and time it from send to the last byte of
 * the answer, which is counted, not kept or parsed (so the client's own
 * JSON parsing is not in the figure). */
static double timed_fetch_ms(int port, const char *body, size_t *answer_len)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	char *url = str_printf("http://127.0.0.1:%d/v1/fetch", port);
	long code = 0;
	uint64_t start;
	double ms;
	CURLcode rc;

	ck_assert_ptr_nonnull(h);
	*answer_len = 0;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, answer_len);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)HARNESS_HTTP_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	start = now_ms();
	rc = curl_easy_perform(h);
	ms = (double)(now_ms() - start);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	free(url);
	ck_assert_msg(rc == CURLE_OK && code == 200, "timed fetch: curl %d, HTTP %ld", (int)rc,
		      code);
	return ms;
}

START_TEST(test_fields_status_is_faster_on_an_8mb_body)
{
	char *url = up_url(&up, "/text?n=8388608");
	char *full = str_printf("{\"url\": \"%s\"}", url);
	char *status = str_printf("{\"url\": \"%s\", \"fields\": [\"status\"]}", url);
	double best_full = 1e18, best_status = 1e18;
	size_t len;
	struct http_resp r;

	/* the full document really is the whole body, and status alone is
	 * {"status":200} */
	fetch(&daemon_,
	      json_pack("{s:s, s:[s, s, s]}", "url", url, "fields", "text", "size", "truncated"),
	      &r);
	expect_status(&r, 200);
	expect_int(&r, "size", BIG_BODY);
	expect_bool(&r, "truncated", false);
	ck_assert_msg(json_string_length(json_path(r.json, "text")) == BIG_BODY,
		      "text is not the whole 8 MiB body");
	http_resp_free(&r);
	fetch(&daemon_, json_pack("{s:s, s:[s]}", "url", url, "fields", "status"), &r);
	expect_json(&r, "", "{\"status\": 200}");
	http_resp_free(&r);

	for (int i = 0; i < TIMING_RUNS; i++) {
		double ms = timed_fetch_ms(daemon_.port, full, &len);

		ck_assert_msg(len > BIG_BODY, "the full document is %zu bytes", len);
		if (ms < best_full)
			best_full = ms;
		ms = timed_fetch_ms(daemon_.port, status, &len);
		ck_assert_msg(len == strlen("{\"status\":200}"), "the status document is %zu bytes",
			      len);
		if (ms < best_status)
			best_status = ms;
	}
	fprintf(stderr,
		"check_materialize: 8 MiB body, best of %d: full document %.0f ms, "
		"fields [\"status\"] %.0f ms (%.2f x)\n",
		TIMING_RUNS, best_full, best_status, best_full > 0 ? best_status / best_full : 0.0);
	ck_assert_msg(best_status <= 0.8 * best_full,
		      "fields [\"status\"] took %.0f ms, the full document %.0f ms: want at most "
		      "0.8 x",
		      best_status, best_full);
	free(status);
	free(full);
	free(url);
}
END_TEST

/* ---- 7. no cookie survives its fetch on a worker ---- */

START_TEST(test_consecutive_fetches_on_one_worker_share_no_cookies)
{
	struct http_resp r;

	fetchd_start(&daemon_, &(struct fetchd_opts){.extra_config = "[pool]\nthreads = 1\n",
						     .allow_loopback = true});
	fetch_doc("/cookie?name=a&value=1", &r);
	expect_json(&r, "cookies", "{\"a\": \"1\"}");
	expect_null(&r, "json.cookie");
	expect_int(&r, "worker", 1);
	http_resp_free(&r);

	fetch_doc("/cookie", &r);
	expect_int(&r, "worker", 1);
	expect_null(&r, "json.cookie");
	expect_json(&r, "cookies", "{}");
	http_resp_free(&r);

	/* nor do the cookies of a whole redirect chain */
	fetch_doc("/cookie-chain?n=3", &r);
	expect_json(&r, "cookies", "{\"c1\": \"1\", \"c2\": \"2\", \"c3\": \"3\"}");
	expect_int(&r, "worker", 1);
	http_resp_free(&r);
	fetch_doc("/cookie-chain?n=0", &r);
	expect_int(&r, "worker", 1);
	expect_json(&r, "json", "{\"cookie\": null, \"hops\": 0}");
	expect_json(&r, "cookies", "{}");
	http_resp_free(&r);
}
END_TEST

static Suite *materialize_suite(void)
{
	Suite *s = suite_create("materialize");
	TCase *tc = tcase_create("fields");

	tcase_add_checked_fixture(tc, setup_default, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_latin1_declared_page);
	tcase_add_test(tc, test_cp1251_charset_only_in_meta);
	tcase_add_test(tc, test_utf8_bom_is_dropped_from_text);
	tcase_add_test(tc, test_xml_encoding_declaration);
	tcase_add_test(tc, test_undeclared_utf8);
	tcase_add_test(tc, test_undeclared_windows_1252);
	tcase_add_test(tc, test_invalid_bytes_become_replacement_characters);
	tcase_add_test(tc, test_json_body_is_parsed);
	tcase_add_test(tc, test_problem_json_is_parsed);
	tcase_add_test(tc, test_binary_body_is_base64_only);
	tcase_add_test(tc, test_gzip_body_decompressed_or_raw);
	tcase_add_test(tc, test_br_body_decompressed_or_raw);
	tcase_add_test(tc, test_cookies_from_every_hop_of_a_3_hop_chain);
	tcase_add_test(tc, test_link_header_with_two_links);
	tcase_add_test(tc, test_latin1_response_header_value);
	tcase_add_test(tc, test_body_mode_matrix);
	tcase_add_test(tc, test_body_mode_text_on_a_binary_body);
	tcase_add_test(tc, test_fields_subsets);
	tcase_add_test(tc, test_full_document_has_exactly_the_documented_fields);
	suite_add_tcase(s, tc);

	tc = tcase_create("timing");
	tcase_add_checked_fixture(tc, setup_default, teardown_default);
	tcase_set_timeout(tc, TIMING_TEST_TIMEOUT_S);
	tcase_add_test(tc, test_fields_status_is_faster_on_an_8mb_body);
	suite_add_tcase(s, tc);

	tc = tcase_create("own_config");
	tcase_add_checked_fixture(tc, setup_upstream_only, teardown_default);
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_test(tc, test_consecutive_fetches_on_one_worker_share_no_cookies);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_init();
	return run_suite(materialize_suite(), CK_NORMAL);
}
