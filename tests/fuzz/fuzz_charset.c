/* libFuzzer harness for charset.c: detection on the whole input; decoding
 * with the detected charset and with a label picked by the first byte (or,
 * for the last slot, a label spelled by the next bytes); sanitizing. Every
 * UTF-8 output is checked against an independent validator, and
 * charset_utf8_valid against the same validator. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "charset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const labels[] = {
	"utf-8",	  "UTF-8",
	" utf8\t",	  "unicode-1-1-utf-8",
	"latin1",	  "ISO-8859-1",
	"us-ascii",	  "ascii",
	"windows-1252",	  "cp1252",
	"x-cp1252",	  "windows-1250",
	"windows-1251",	  "cp1251",
	"windows-1253",	  "windows-1254",
	"windows-1255",	  "windows-1256",
	"windows-1257",	  "windows-1258",
	"windows-874",	  "tis-620",
	"koi8-r",	  "koi8-u",
	"ibm866",	  "iso-8859-2",
	"iso-8859-5",	  "iso-8859-6",
	"iso-8859-7",	  "iso-8859-8",
	"iso-8859-8-i",	  "iso-8859-10",
	"iso-8859-13",	  "iso-8859-14",
	"iso-8859-15",	  "iso-8859-16",
	"macintosh",	  "x-mac-cyrillic",
	"utf-16",	  "utf-16le",
	"UTF-16BE",	  "unicode",
	"shift_jis",	  "sjis",
	"euc-jp",	  "iso-2022-jp",
	"euc-kr",	  "gbk",
	"gb2312",	  "gb18030",
	"big5",		  "big5-hkscs",
	"x-user-defined", "replacement",
	"iso-2022-kr",	  "utf-7",
	"utf-32",	  "",
	"bogus",	  NULL, /* label from input */
};
#define N_LABELS (sizeof(labels) / sizeof(labels[0]))

/* RFC 3629 section 4, written out independently of charset.c. */
static bool ref_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t need;
		unsigned char lo = 0x80, hi = 0xBF;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		} else {
			return false;
		}
		if (n - i - 1 < need)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= need; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xBF)
				return false;
		i += need + 1;
	}
	return true;
}

/* A decoder's or sanitizer's output: NUL-terminated at out_len and valid
 * UTF-8 by both validators. */
static void check_utf8_out(const char *out, size_t out_len)
{
	const unsigned char *u = (const unsigned char *)out;

	if (out[out_len] != '\0')
		abort();
	if (!ref_utf8_valid(u, out_len) || !charset_utf8_valid(u, out_len))
		abort();
}

static void decode_with(const unsigned char *body, size_t len, const char *label)
{
	size_t out_len = (size_t)-1;
	char *out;

	out = charset_decode(body, len, label, &out_len);
	if (out == NULL) {
		/* Only an unknown label may fail (ASan never returns NULL). */
		if (charset_whatwg_name(label) != NULL)
			abort();
		return;
	}
	if (charset_whatwg_name(label) == NULL)
		abort();
	check_utf8_out(out, out_len);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t bom_len = (size_t)-1;
	const char *detected;
	const char *label;
	char label_buf[40];
	size_t out_len;
	char *out;
	bool valid;

	/* The validator itself, on the raw bytes. */
	valid = ref_utf8_valid(data, size);
	if (charset_utf8_valid(data, size) != valid)
		abort();

	detected = charset_detect(data, size, &bom_len);
	if (detected == NULL || bom_len > size || bom_len > 3)
		abort();
	/* A WHATWG name maps to itself. */
	if (charset_whatwg_name(detected) == NULL ||
	    strcmp(charset_whatwg_name(detected), detected) != 0)
		abort();
	decode_with(data, size, detected);

	/* UTF-8 bytes decode to themselves, minus a BOM. */
	if (valid && strcmp(detected, "utf-8") == 0) {
		out = charset_decode(data, size, "utf-8", &out_len);
		if (out == NULL || out_len != size - bom_len ||
		    memcmp(out, data + bom_len, out_len) != 0)
			abort();
		free(out);
	}

	if (size > 0) {
		label = labels[data[0] % N_LABELS];
		if (label == NULL) {
			size_t avail = size >= 2 ? size - 2 : 0;
			size_t n = size >= 2 ? data[1] % sizeof(label_buf) : 0;

			if (n > avail)
				n = avail;
			memcpy(label_buf, data + 2, n);
			label_buf[n] = '\0';
			label = label_buf;
		}
		decode_with(data + 1, size - 1, label);
	}

	out = charset_utf8_sanitize(data, size, &out_len);
	if (out == NULL)
		abort();
	check_utf8_out(out, out_len);
	if (valid && (out_len != size || memcmp(out, data, size) != 0))
		abort();
	free(out);
	return 0;
}
