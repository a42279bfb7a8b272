/* Charset detection and decoding for the text field, on the worker:
 * sniffing in the order of SPEC section 2 (BOM, <meta charset>, the XML
 * declaration, UTF-8 validity, then uchardet) and decoding the WHATWG way
 * (labels mapped by the Encoding Standard's table, invalid bytes turned
 * into U+FFFD). Pure functions over their arguments: no shared state. */
#include "charset.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uchardet/uchardet.h>

/* How much of a body the HTML prescan and the XML declaration look at
 * (HTML Standard 13.2.3.2: "the first 1024 bytes"). */
#define CHARSET_PRESCAN_MAX 1024
/* How much of a body uchardet sees: enough for a confident guess, bounded. */
#define CHARSET_SNIFF_MAX (64 * 1024)
/* Longest label in the table is 21 bytes; anything longer is unknown. */
#define CHARSET_LABEL_MAX 32

/* Single-byte encodings whose undefined bytes 0x80-0x9F glibc rejects but
 * whose WHATWG index maps them to the C1 control of the same value. */
#define CHARSET_F_C1 0x1
/* Code units are two bytes: skip two on an invalid unit. */
#define CHARSET_F_UNIT2 0x2
/* A single-byte encoding: decoded through a table of its 128 upper bytes. */
#define CHARSET_F_SB 0x4

struct charset_encoding {
	const char *name;	/* WHATWG name */
	const char *iconv_name; /* glibc iconv's name; NULL: decoded here */
	unsigned flags;
	uint16_t x80; /* what a lone byte 0x80 is, where glibc rejects it */
};

/* The encodings of the WHATWG Encoding Standard (section 4.2, "Names and
 * labels") that glibc can decode. The "GBK decoder" is the gb18030 decoder,
 * the Big5 index is Big5-HKSCS, Shift_JIS is Windows-31J and EUC-KR is
 * windows-949 (Encoding Standard, sections 10-13). The "gb18030 decoder"
 * maps a lone 0x80 to U+20AC, the "Shift_JIS decoder" to U+0080; glibc
 * rejects both. */
static const struct charset_encoding charset_encodings[] = {
	{"utf-8", NULL, 0, 0},
	{"ibm866", "IBM866", CHARSET_F_SB, 0},
	{"iso-8859-2", "ISO-8859-2", CHARSET_F_SB, 0},
	{"iso-8859-3", "ISO-8859-3", CHARSET_F_SB, 0},
	{"iso-8859-4", "ISO-8859-4", CHARSET_F_SB, 0},
	{"iso-8859-5", "ISO-8859-5", CHARSET_F_SB, 0},
	{"iso-8859-6", "ISO-8859-6", CHARSET_F_SB, 0},
	{"iso-8859-7", "ISO-8859-7", CHARSET_F_SB, 0},
	{"iso-8859-8", "ISO-8859-8", CHARSET_F_SB, 0},
	{"iso-8859-8-i", "ISO-8859-8", CHARSET_F_SB, 0},
	{"iso-8859-10", "ISO-8859-10", CHARSET_F_SB, 0},
	{"iso-8859-13", "ISO-8859-13", CHARSET_F_SB, 0},
	{"iso-8859-14", "ISO-8859-14", CHARSET_F_SB, 0},
	{"iso-8859-15", "ISO-8859-15", CHARSET_F_SB, 0},
	{"iso-8859-16", "ISO-8859-16", CHARSET_F_SB, 0},
	{"koi8-r", "KOI8-R", CHARSET_F_SB, 0},
	{"koi8-u", "KOI8-U", CHARSET_F_SB, 0},
	{"macintosh", "MACINTOSH", CHARSET_F_SB, 0},
	{"windows-874", "CP874", CHARSET_F_SB | CHARSET_F_C1, 0},
	{"windows-1250", "CP1250", CHARSET_F_SB | CHARSET_F_C1, 0},
	{"windows-1251", "CP1251", CHARSET_F_SB | CHARSET_F_C1, 0},
	{"windows-1252", NULL, CHARSET_F_SB, 0},
	{"windows-1253", "CP1253", CHARSET_F_SB | CHARSET_F_C1, 0},
	{"windows-1254", "CP1254", CHARSET_F_SB | CHARSET_F_C1, 0},
	{"windows-1255", "CP1255", CHARSET_F_SB | CHARSET_F_C1, 0},
	{"windows-1256", "CP1256", CHARSET_F_SB | CHARSET_F_C1, 0},
	{"windows-1257", "CP1257", CHARSET_F_SB | CHARSET_F_C1, 0},
	{"windows-1258", "CP1258", CHARSET_F_SB | CHARSET_F_C1, 0},
	{"x-mac-cyrillic", "MAC-CYRILLIC", CHARSET_F_SB, 0},
	{"gbk", "GB18030", 0, 0x20AC},
	{"gb18030", "GB18030", 0, 0x20AC},
	{"big5", "BIG5-HKSCS", 0, 0},
	{"euc-jp", "EUC-JP", 0, 0},
	{"iso-2022-jp", "ISO-2022-JP", 0, 0},
	{"shift_jis", "CP932", 0, 0x0080},
	{"euc-kr", "CP949", 0, 0},
	{"utf-16be", "UTF-16BE", CHARSET_F_UNIT2, 0},
	{"utf-16le", "UTF-16LE", CHARSET_F_UNIT2, 0},
};

struct charset_label {
	const char *label;
	const char *name;
};

/* The Encoding Standard's label table (section 4.2), for the encodings
 * above; labels are lower case. */
static const struct charset_label charset_labels[] = {
	{"unicode-1-1-utf-8", "utf-8"},
	{"unicode11utf8", "utf-8"},
	{"unicode20utf8", "utf-8"},
	{"utf-8", "utf-8"},
	{"utf8", "utf-8"},
	{"x-unicode20utf8", "utf-8"},
	{"866", "ibm866"},
	{"cp866", "ibm866"},
	{"csibm866", "ibm866"},
	{"ibm866", "ibm866"},
	{"csisolatin2", "iso-8859-2"},
	{"iso-8859-2", "iso-8859-2"},
	{"iso-ir-101", "iso-8859-2"},
	{"iso8859-2", "iso-8859-2"},
	{"iso88592", "iso-8859-2"},
	{"iso_8859-2", "iso-8859-2"},
	{"iso_8859-2:1987", "iso-8859-2"},
	{"l2", "iso-8859-2"},
	{"latin2", "iso-8859-2"},
	{"csisolatin3", "iso-8859-3"},
	{"iso-8859-3", "iso-8859-3"},
	{"iso-ir-109", "iso-8859-3"},
	{"iso8859-3", "iso-8859-3"},
	{"iso88593", "iso-8859-3"},
	{"iso_8859-3", "iso-8859-3"},
	{"iso_8859-3:1988", "iso-8859-3"},
	{"l3", "iso-8859-3"},
	{"latin3", "iso-8859-3"},
	{"csisolatin4", "iso-8859-4"},
	{"iso-8859-4", "iso-8859-4"},
	{"iso-ir-110", "iso-8859-4"},
	{"iso8859-4", "iso-8859-4"},
	{"iso88594", "iso-8859-4"},
	{"iso_8859-4", "iso-8859-4"},
	{"iso_8859-4:1988", "iso-8859-4"},
	{"l4", "iso-8859-4"},
	{"latin4", "iso-8859-4"},
	{"csisolatincyrillic", "iso-8859-5"},
	{"cyrillic", "iso-8859-5"},
	{"iso-8859-5", "iso-8859-5"},
	{"iso-ir-144", "iso-8859-5"},
	{"iso8859-5", "iso-8859-5"},
	{"iso88595", "iso-8859-5"},
	{"iso_8859-5", "iso-8859-5"},
	{"iso_8859-5:1988", "iso-8859-5"},
	{"arabic", "iso-8859-6"},
	{"asmo-708", "iso-8859-6"},
	{"csiso88596e", "iso-8859-6"},
	{"csiso88596i", "iso-8859-6"},
	{"csisolatinarabic", "iso-8859-6"},
	{"ecma-114", "iso-8859-6"},
	{"iso-8859-6", "iso-8859-6"},
	{"iso-8859-6-e", "iso-8859-6"},
	{"iso-8859-6-i", "iso-8859-6"},
	{"iso-ir-127", "iso-8859-6"},
	{"iso8859-6", "iso-8859-6"},
	{"iso88596", "iso-8859-6"},
	{"iso_8859-6", "iso-8859-6"},
	{"iso_8859-6:1987", "iso-8859-6"},
	{"csisolatingreek", "iso-8859-7"},
	{"ecma-118", "iso-8859-7"},
	{"elot_928", "iso-8859-7"},
	{"greek", "iso-8859-7"},
	{"greek8", "iso-8859-7"},
	{"iso-8859-7", "iso-8859-7"},
	{"iso-ir-126", "iso-8859-7"},
	{"iso8859-7", "iso-8859-7"},
	{"iso88597", "iso-8859-7"},
	{"iso_8859-7", "iso-8859-7"},
	{"iso_8859-7:1987", "iso-8859-7"},
	{"sun_eu_greek", "iso-8859-7"},
	{"csiso88598e", "iso-8859-8"},
	{"csisolatinhebrew", "iso-8859-8"},
	{"hebrew", "iso-8859-8"},
	{"iso-8859-8", "iso-8859-8"},
	{"iso-8859-8-e", "iso-8859-8"},
	{"iso-ir-138", "iso-8859-8"},
	{"iso8859-8", "iso-8859-8"},
	{"iso88598", "iso-8859-8"},
	{"iso_8859-8", "iso-8859-8"},
	{"iso_8859-8:1988", "iso-8859-8"},
	{"visual", "iso-8859-8"},
	{"csiso88598i", "iso-8859-8-i"},
	{"iso-8859-8-i", "iso-8859-8-i"},
	{"logical", "iso-8859-8-i"},
	{"csisolatin6", "iso-8859-10"},
	{"iso-8859-10", "iso-8859-10"},
	{"iso-ir-157", "iso-8859-10"},
	{"iso8859-10", "iso-8859-10"},
	{"iso885910", "iso-8859-10"},
	{"l6", "iso-8859-10"},
	{"latin6", "iso-8859-10"},
	{"iso-8859-13", "iso-8859-13"},
	{"iso8859-13", "iso-8859-13"},
	{"iso885913", "iso-8859-13"},
	{"iso-8859-14", "iso-8859-14"},
	{"iso8859-14", "iso-8859-14"},
	{"iso885914", "iso-8859-14"},
	{"csisolatin9", "iso-8859-15"},
	{"iso-8859-15", "iso-8859-15"},
	{"iso8859-15", "iso-8859-15"},
	{"iso885915", "iso-8859-15"},
	{"iso_8859-15", "iso-8859-15"},
	{"l9", "iso-8859-15"},
	{"iso-8859-16", "iso-8859-16"},
	{"cskoi8r", "koi8-r"},
	{"koi", "koi8-r"},
	{"koi8", "koi8-r"},
	{"koi8-r", "koi8-r"},
	{"koi8_r", "koi8-r"},
	{"koi8-ru", "koi8-u"},
	{"koi8-u", "koi8-u"},
	{"csmacintosh", "macintosh"},
	{"mac", "macintosh"},
	{"macintosh", "macintosh"},
	{"x-mac-roman", "macintosh"},
	{"dos-874", "windows-874"},
	{"iso-8859-11", "windows-874"},
	{"iso8859-11", "windows-874"},
	{"iso885911", "windows-874"},
	{"tis-620", "windows-874"},
	{"windows-874", "windows-874"},
	{"cp1250", "windows-1250"},
	{"windows-1250", "windows-1250"},
	{"x-cp1250", "windows-1250"},
	{"cp1251", "windows-1251"},
	{"windows-1251", "windows-1251"},
	{"x-cp1251", "windows-1251"},
	{"ansi_x3.4-1968", "windows-1252"},
	{"ascii", "windows-1252"},
	{"cp1252", "windows-1252"},
	{"cp819", "windows-1252"},
	{"csisolatin1", "windows-1252"},
	{"ibm819", "windows-1252"},
	{"iso-8859-1", "windows-1252"},
	{"iso-ir-100", "windows-1252"},
	{"iso8859-1", "windows-1252"},
	{"iso88591", "windows-1252"},
	{"iso_8859-1", "windows-1252"},
	{"iso_8859-1:1987", "windows-1252"},
	{"l1", "windows-1252"},
	{"latin1", "windows-1252"},
	{"us-ascii", "windows-1252"},
	{"windows-1252", "windows-1252"},
	{"x-cp1252", "windows-1252"},
	{"cp1253", "windows-1253"},
	{"windows-1253", "windows-1253"},
	{"x-cp1253", "windows-1253"},
	{"cp1254", "windows-1254"},
	{"csisolatin5", "windows-1254"},
	{"iso-8859-9", "windows-1254"},
	{"iso-ir-148", "windows-1254"},
	{"iso8859-9", "windows-1254"},
	{"iso88599", "windows-1254"},
	{"iso_8859-9", "windows-1254"},
	{"iso_8859-9:1989", "windows-1254"},
	{"l5", "windows-1254"},
	{"latin5", "windows-1254"},
	{"windows-1254", "windows-1254"},
	{"x-cp1254", "windows-1254"},
	{"cp1255", "windows-1255"},
	{"windows-1255", "windows-1255"},
	{"x-cp1255", "windows-1255"},
	{"cp1256", "windows-1256"},
	{"windows-1256", "windows-1256"},
	{"x-cp1256", "windows-1256"},
	{"cp1257", "windows-1257"},
	{"windows-1257", "windows-1257"},
	{"x-cp1257", "windows-1257"},
	{"cp1258", "windows-1258"},
	{"windows-1258", "windows-1258"},
	{"x-cp1258", "windows-1258"},
	{"x-mac-cyrillic", "x-mac-cyrillic"},
	{"x-mac-ukrainian", "x-mac-cyrillic"},
	{"chinese", "gbk"},
	{"csgb2312", "gbk"},
	{"csiso58gb231280", "gbk"},
	{"gb2312", "gbk"},
	{"gb_2312", "gbk"},
	{"gb_2312-80", "gbk"},
	{"gbk", "gbk"},
	{"iso-ir-58", "gbk"},
	{"x-gbk", "gbk"},
	{"gb18030", "gb18030"},
	{"big5", "big5"},
	{"big5-hkscs", "big5"},
	{"cn-big5", "big5"},
	{"csbig5", "big5"},
	{"x-x-big5", "big5"},
	{"cseucpkdfmtjapanese", "euc-jp"},
	{"euc-jp", "euc-jp"},
	{"x-euc-jp", "euc-jp"},
	{"csiso2022jp", "iso-2022-jp"},
	{"iso-2022-jp", "iso-2022-jp"},
	{"csshiftjis", "shift_jis"},
	{"ms932", "shift_jis"},
	{"ms_kanji", "shift_jis"},
	{"shift-jis", "shift_jis"},
	{"shift_jis", "shift_jis"},
	{"sjis", "shift_jis"},
	{"windows-31j", "shift_jis"},
	{"x-sjis", "shift_jis"},
	{"cseuckr", "euc-kr"},
	{"csksc56011987", "euc-kr"},
	{"euc-kr", "euc-kr"},
	{"iso-ir-149", "euc-kr"},
	{"korean", "euc-kr"},
	{"ks_c_5601-1987", "euc-kr"},
	{"ks_c_5601-1989", "euc-kr"},
	{"ksc5601", "euc-kr"},
	{"ksc_5601", "euc-kr"},
	{"windows-949", "euc-kr"},
	{"unicodefffe", "utf-16be"},
	{"utf-16be", "utf-16be"},
	{"csunicode", "utf-16le"},
	{"iso-10646-ucs-2", "utf-16le"},
	{"ucs-2", "utf-16le"},
	{"unicode", "utf-16le"},
	{"unicodefeff", "utf-16le"},
	{"utf-16", "utf-16le"},
	{"utf-16le", "utf-16le"},
};

#define CHARSET_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* windows-1252 bytes 0x80-0x9F (WHATWG index-windows-1252); 0xA0-0xFF are
 * U+00A0-U+00FF. The five bytes Microsoft leaves undefined map to C1
 * controls, which glibc's CP1252 rejects. */
static const uint16_t charset_cp1252_c1[32] = {
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
	0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
	0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

/* ASCII whitespace (Infra: TAB, LF, FF, CR, SPACE). */
static bool charset_is_space(unsigned char c)
{
	return c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D || c == 0x20;
}

static unsigned char charset_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool charset_is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Encoding Standard 4.2 "get an encoding": trim ASCII whitespace, match
 * ASCII case-insensitively. n bytes of s, which need not be terminated. */
static const char *charset_lookup(const char *s, size_t n)
{
	char buf[CHARSET_LABEL_MAX];
	size_t i;

	while (n > 0 && charset_is_space((unsigned char)s[0])) {
		s++;
		n--;
	}
	while (n > 0 && charset_is_space((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(buf))
		return NULL;
	for (i = 0; i < n; i++)
		buf[i] = (char)charset_lower((unsigned char)s[i]);
	buf[n] = '\0';
	for (i = 0; i < CHARSET_NELEM(charset_labels); i++)
		if (strcmp(buf, charset_labels[i].label) == 0)
			return charset_labels[i].name;
	return NULL;
}

const char *charset_whatwg_name(const char *label)
{
	if (label == NULL)
		return NULL;
	return charset_lookup(label, strlen(label));
}

static const struct charset_encoding *charset_encoding_of(const char *name)
{
	size_t i;

	for (i = 0; i < CHARSET_NELEM(charset_encodings); i++)
		if (strcmp(name, charset_encodings[i].name) == 0)
			return &charset_encodings[i];
	return NULL;
}

/* ---- UTF-8 ---- */

enum charset_utf8_step {
	CHARSET_UTF8_OK,
	CHARSET_UTF8_BAD,	/* an invalid byte ends the subpart */
	CHARSET_UTF8_TRUNCATED, /* the input ends inside a valid prefix */
};

/* Look at the sequence starting at s[0] (n > 0 bytes available, s[0] >=
 * 0x80). *used is the sequence's length, or for an error the length of the
 * maximal subpart: the bytes that become one U+FFFD (Encoding Standard
 * 8.1.1 "UTF-8 decoder"; Unicode 15 section 3.9 "U+FFFD substitution of
 * maximal subparts"). RFC 3629 section 4 gives the byte ranges. */
static enum charset_utf8_step charset_utf8_step(const unsigned char *s, size_t n, size_t *used)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t need, i;

	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		*used = 1;
		return CHARSET_UTF8_BAD;
	}
	for (i = 1; i <= need; i++) {
		if (i >= n) {
			*used = i;
			return CHARSET_UTF8_TRUNCATED;
		}
		if (s[i] < lo || s[i] > hi) {
			*used = i;
			return CHARSET_UTF8_BAD;
		}
		lo = 0x80;
		hi = 0xBF;
	}
	*used = need + 1;
	return CHARSET_UTF8_OK;
}

/* Bytes of ASCII at s (at most n), eight at a time. */
static size_t charset_ascii_run(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i + 8 <= n) {
		uint64_t w;

		memcpy(&w, s + i, sizeof(w));
		if (w & UINT64_C(0x8080808080808080))
			break;
		i += 8;
	}
	while (i < n && s[i] < 0x80)
		i++;
	return i;
}

/* Length of the longest valid UTF-8 prefix of s; *last is the outcome of
 * the step that stopped there (CHARSET_UTF8_OK when the whole is valid),
 * *multibyte whether that prefix holds a non-ASCII character. The common
 * two- and three-byte forms are checked inline: this runs over whole
 * bodies. */
static size_t charset_utf8_prefix(const unsigned char *s, size_t len, enum charset_utf8_step *last,
				  bool *multibyte)
{
	size_t i = 0, used;
	bool mb = false;

	*last = CHARSET_UTF8_OK;
	while (i < len) {
		unsigned char c = s[i];
		enum charset_utf8_step st;

		if (c < 0x80) {
			i += charset_ascii_run(s + i, len - i);
			continue;
		}
		mb = true;
		if (c >= 0xC2 && c <= 0xDF && i + 1 < len && (s[i + 1] & 0xC0) == 0x80) {
			i += 2;
			continue;
		}
		if (c >= 0xE1 && c <= 0xEC && i + 2 < len && (s[i + 1] & 0xC0) == 0x80 &&
		    (s[i + 2] & 0xC0) == 0x80) {
			i += 3;
			continue;
		}
		st = charset_utf8_step(s + i, len - i, &used);
		if (st != CHARSET_UTF8_OK) {
			*last = st;
			*multibyte = mb;
			return i;
		}
		i += used;
	}
	*multibyte = mb;
	return len;
}

bool charset_utf8_valid(const unsigned char *s, size_t len)
{
	enum charset_utf8_step last;
	bool multibyte;

	if (len == 0)
		return true;
	return charset_utf8_prefix(s, len, &last, &multibyte) == len;
}

/* Sanitize s into out (which has room, see charset_utf8_sanitize) or, when
 * out is NULL, only count; returns the output length. Valid runs are
 * copied whole. */
static size_t charset_utf8_copy(const unsigned char *s, size_t len, char *out)
{
	enum charset_utf8_step last;
	size_t i = 0, o = 0, run, used;
	bool multibyte;

	while (i < len) {
		run = charset_utf8_prefix(s + i, len - i, &last, &multibyte);
		if (out != NULL)
			memcpy(out + o, s + i, run);
		i += run;
		o += run;
		if (i >= len)
			break;
		charset_utf8_step(s + i, len - i, &used);
		if (out != NULL)
			memcpy(out + o, "\xEF\xBF\xBD", 3);
		o += 3;
		i += used;
	}
	return o;
}

char *charset_utf8_sanitize(const unsigned char *s, size_t len, size_t *out_len)
{
	enum charset_utf8_step last;
	size_t n, valid = 0;
	bool multibyte;
	char *out;

	if (len > 0)
		valid = charset_utf8_prefix(s, len, &last, &multibyte);
	n = valid == len ? len : valid + charset_utf8_copy(s + valid, len - valid, NULL);
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	if (valid > 0)
		memcpy(out, s, valid);
	if (valid < len)
		charset_utf8_copy(s + valid, len - valid, out + valid);
	out[n] = '\0';
	if (out_len != NULL)
		*out_len = n;
	return out;
}

/* ---- detection ---- */

/* Encoding Standard 6 "BOM sniff". */
static const char *charset_bom_sniff(const unsigned char *s, size_t len, size_t *bom_len)
{
	if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
		*bom_len = 3;
		return "utf-8";
	}
	if (len >= 2 && s[0] == 0xFE && s[1] == 0xFF) {
		*bom_len = 2;
		return "utf-16be";
	}
	if (len >= 2 && s[0] == 0xFF && s[1] == 0xFE) {
		*bom_len = 2;
		return "utf-16le";
	}
	*bom_len = 0;
	return NULL;
}

/* Does s[0..n) start with the lower-case ASCII string lit, ignoring case? */
static bool charset_starts_with(const unsigned char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; lit[i] != '\0'; i++)
		if (i >= n || charset_lower(s[i]) != (unsigned char)lit[i])
			return false;
	return true;
}

/* A label declared inside the document's own ASCII bytes: those bytes are
 * not UTF-16, so utf-16be/le mean utf-8 (HTML 13.2.3.2, the prescan's
 * "processing" step; the same holds for an XML declaration). */
static const char *charset_declared(const char *s, size_t n)
{
	const char *name = charset_lookup(s, n);

	if (name != NULL && strncmp(name, "utf-16", 6) == 0)
		return "utf-8";
	return name;
}

/* HTML Standard, "algorithm for extracting a character encoding from a meta
 * element", on the (lower-cased) content attribute. NULL when it names none
 * we know. */
static const char *charset_from_content(const char *v, size_t n)
{
	size_t i = 0, start;

	for (;;) {
		const char *hit = NULL;
		char q;

		for (; i + 7 <= n; i++) {
			if (memcmp(v + i, "charset", 7) == 0) {
				hit = v + i;
				break;
			}
		}
		if (hit == NULL)
			return NULL;
		i += 7;
		while (i < n && charset_is_space((unsigned char)v[i]))
			i++;
		if (i >= n || v[i] != '=')
			continue;
		i++;
		while (i < n && charset_is_space((unsigned char)v[i]))
			i++;
		if (i >= n)
			return NULL;
		q = v[i];
		if (q == '"' || q == '\'') {
			const char *end = memchr(v + i + 1, q, n - i - 1);

			if (end == NULL)
				return NULL;
			return charset_lookup(v + i + 1, (size_t)(end - (v + i + 1)));
		}
		start = i;
		while (i < n && !charset_is_space((unsigned char)v[i]) && v[i] != ';')
			i++;
		return charset_lookup(v + start, i - start);
	}
}

struct charset_attr {
	char name[CHARSET_PRESCAN_MAX + 1];
	size_t name_len;
	char value[CHARSET_PRESCAN_MAX + 1];
	size_t value_len;
};

enum charset_attr_result {
	CHARSET_ATTR_FOUND,
	CHARSET_ATTR_NONE,
	CHARSET_ATTR_END, /* ran past the end: the prescan aborts */
};

/* HTML 13.2.3.2 "get an attribute", names and values lower-cased. *pos
 * moves past what was read. The buffers cannot overflow: n <= 1024. */
static enum charset_attr_result charset_get_attr(const unsigned char *s, size_t n, size_t *pos,
						 struct charset_attr *a)
{
	size_t p = *pos;
	unsigned char c, quote;

	a->name_len = 0;
	a->value_len = 0;
	while (p < n && (charset_is_space(s[p]) || s[p] == '/'))
		p++;
	if (p >= n)
		return CHARSET_ATTR_END;
	if (s[p] == '>') {
		*pos = p;
		return CHARSET_ATTR_NONE;
	}
	/* The name. */
	for (;; p++) {
		if (p >= n)
			return CHARSET_ATTR_END;
		c = s[p];
		if (c == '=' && a->name_len > 0) {
			p++;
			goto value;
		}
		if (charset_is_space(c))
			break;
		if (c == '/' || c == '>')
			goto done;
		a->name[a->name_len++] = (char)charset_lower(c);
	}
	while (p < n && charset_is_space(s[p]))
		p++;
	if (p >= n)
		return CHARSET_ATTR_END;
	if (s[p] != '=')
		goto done;
	p++;
value:
	while (p < n && charset_is_space(s[p]))
		p++;
	if (p >= n)
		return CHARSET_ATTR_END;
	c = s[p];
	if (c == '"' || c == '\'') {
		quote = c;
		for (p++; p < n && s[p] != quote; p++)
			a->value[a->value_len++] = (char)charset_lower(s[p]);
		if (p >= n)
			return CHARSET_ATTR_END;
		p++;
		goto done;
	}
	if (c == '>')
		goto done;
	for (; p < n && !charset_is_space(s[p]) && s[p] != '>'; p++)
		a->value[a->value_len++] = (char)charset_lower(s[p]);
	if (p >= n)
		return CHARSET_ATTR_END;
done:
	a->name[a->name_len] = '\0';
	a->value[a->value_len] = '\0';
	*pos = p;
	return CHARSET_ATTR_FOUND;
}

/* The attributes of a <meta> tag at *pos (HTML 13.2.3.2, the "<meta" step).
 * Returns the encoding, NULL for none; *stop is set when the input ends. */
static const char *charset_prescan_meta(const unsigned char *s, size_t n, size_t *pos, bool *stop,
					struct charset_attr *a)
{
	bool seen_equiv = false, seen_content = false, seen_charset = false;
	bool got_pragma = false, charset_set = false;
	int need_pragma = -1; /* null */
	const char *charset = NULL;
	enum charset_attr_result r;

	while ((r = charset_get_attr(s, n, pos, a)) == CHARSET_ATTR_FOUND) {
		if (strcmp(a->name, "http-equiv") == 0) {
			if (seen_equiv)
				continue;
			seen_equiv = true;
			if (strcmp(a->value, "content-type") == 0)
				got_pragma = true;
		} else if (strcmp(a->name, "content") == 0) {
			const char *e;

			if (seen_content)
				continue;
			seen_content = true;
			e = charset_from_content(a->value, a->value_len);
			if (e != NULL && !charset_set) {
				charset = e;
				charset_set = true;
				need_pragma = 1;
			}
		} else if (strcmp(a->name, "charset") == 0) {
			if (seen_charset)
				continue;
			seen_charset = true;
			if (!charset_set) {
				charset = charset_lookup(a->value, a->value_len);
				charset_set = true;
				need_pragma = 0;
			}
		}
	}
	if (r == CHARSET_ATTR_END) {
		*stop = true;
		return NULL;
	}
	if (need_pragma == -1 || (need_pragma == 1 && !got_pragma) || charset == NULL)
		return NULL;
	return strncmp(charset, "utf-16", 6) == 0 ? "utf-8" : charset;
}

/* HTML Standard 13.2.3.2 "prescan a byte stream to determine its encoding",
 * on the first 1024 bytes. NULL when it finds no encoding we know. */
static const char *charset_prescan(const unsigned char *body, size_t len)
{
	size_t n = len < CHARSET_PRESCAN_MAX ? len : CHARSET_PRESCAN_MAX;
	size_t p = 0;
	struct charset_attr *a = NULL;
	const char *found = NULL;
	bool stop = false;

	for (; p < n && !stop && found == NULL; p++) {
		const unsigned char *s = body + p;
		size_t left = n - p;

		if (s[0] != '<')
			continue;
		if (charset_starts_with(s, left, "<!--")) {
			/* To the '>' of the first "-->"; "<!-->" closes too. */
			for (p += 2; p + 2 < n; p++)
				if (body[p] == '-' && body[p + 1] == '-' && body[p + 2] == '>')
					break;
			if (p + 2 >= n)
				break;
			p += 2;
		} else if (charset_starts_with(s, left, "<meta") && left > 5 &&
			   (charset_is_space(s[5]) || s[5] == '/')) {
			if (a == NULL && (a = malloc(sizeof(*a))) == NULL)
				break;
			p += 5;
			found = charset_prescan_meta(body, n, &p, &stop, a);
		} else if ((left > 1 && charset_is_alpha(s[1])) ||
			   (left > 2 && s[1] == '/' && charset_is_alpha(s[2]))) {
			enum charset_attr_result r;

			if (a == NULL && (a = malloc(sizeof(*a))) == NULL)
				break;
			while (p < n && !charset_is_space(body[p]) && body[p] != '>')
				p++;
			while ((r = charset_get_attr(body, n, &p, a)) == CHARSET_ATTR_FOUND)
				;
			if (r == CHARSET_ATTR_END)
				stop = true;
		} else if (left > 1 && (s[1] == '!' || s[1] == '/' || s[1] == '?')) {
			const void *gt = memchr(s + 2, '>', left > 2 ? left - 2 : 0);

			if (gt == NULL)
				break;
			p = (size_t)((const unsigned char *)gt - body);
		}
	}
	free(a);
	return found;
}

/* The encoding pseudo-attribute of an XML declaration at the very start
 * (XML 1.0 section 4.3.3, EncodingDecl). NULL when absent or unknown. */
static const char *charset_xml_decl(const unsigned char *body, size_t len)
{
	size_t n = len < CHARSET_PRESCAN_MAX ? len : CHARSET_PRESCAN_MAX;
	const unsigned char *close;
	size_t i, end;
	unsigned char q;

	if (!charset_starts_with(body, n, "<?xml") || n < 6 || !charset_is_space(body[5]))
		return NULL;
	for (end = 6; end + 1 < n; end++)
		if (body[end] == '?' && body[end + 1] == '>')
			break;
	if (end + 1 >= n)
		return NULL;
	for (i = 6; i + 8 <= end; i++) {
		if (memcmp(body + i, "encoding", 8) != 0)
			continue;
		i += 8;
		while (i < end && charset_is_space(body[i]))
			i++;
		if (i >= end || body[i] != '=')
			return NULL;
		i++;
		while (i < end && charset_is_space(body[i]))
			i++;
		if (i >= end || (body[i] != '"' && body[i] != '\''))
			return NULL;
		q = body[i++];
		close = memchr(body + i, q, end - i);
		if (close == NULL)
			return NULL;
		return charset_declared((const char *)body + i, (size_t)(close - (body + i)));
	}
	return NULL;
}

/* uchardet's answer as a WHATWG name: mostly labels already ("WINDOWS-1251",
 * "ISO-8859-1" -> windows-1252 as in WHATWG); a few spellings of its own. */
static const char *charset_from_uchardet(const char *answer)
{
	if (answer == NULL || answer[0] == '\0')
		return NULL;
	if (strcasecmp(answer, "MAC-CYRILLIC") == 0)
		return "x-mac-cyrillic";
	if (strcasecmp(answer, "UHC") == 0 || strcasecmp(answer, "CP949") == 0)
		return "euc-kr";
	return charset_whatwg_name(answer);
}

static const char *charset_sniff(const unsigned char *body, size_t len)
{
	uchardet_t ud;
	const char *name = NULL;

	ud = uchardet_new();
	if (ud == NULL)
		return NULL;
	if (uchardet_handle_data(ud, (const char *)body,
				 len < CHARSET_SNIFF_MAX ? len : CHARSET_SNIFF_MAX) == 0) {
		uchardet_data_end(ud);
		name = charset_from_uchardet(uchardet_get_charset(ud));
	}
	uchardet_delete(ud);
	return name;
}

const char *charset_detect(const unsigned char *body, size_t len, size_t *bom_len)
{
	enum charset_utf8_step last;
	const char *name;
	size_t dummy, valid;
	bool multibyte;

	if (bom_len == NULL)
		bom_len = &dummy;
	*bom_len = 0;
	if (body == NULL || len == 0)
		return "utf-8";
	if ((name = charset_bom_sniff(body, len, bom_len)) != NULL)
		return name;
	if ((name = charset_prescan(body, len)) != NULL)
		return name;
	if ((name = charset_xml_decl(body, len)) != NULL)
		return name;
	/* A body cut mid-character (max_bytes) is still UTF-8 when what came
	 * before held UTF-8; a lone trailing lead byte after pure ASCII is as
	 * likely "caf\xE9" in windows-1252, so that goes on to uchardet. */
	valid = charset_utf8_prefix(body, len, &last, &multibyte);
	if (valid == len || (last == CHARSET_UTF8_TRUNCATED && multibyte))
		return "utf-8";
	if ((name = charset_sniff(body, len)) != NULL)
		return name;
	return "windows-1252";
}

/* ---- decoding ---- */

struct charset_buf {
	char *p;
	size_t len;
	size_t cap;
};

/* Room for n more bytes plus a NUL; the capacity doubles, so appends are
 * linear overall. */
static int charset_buf_reserve(struct charset_buf *b, size_t n)
{
	size_t cap = b->cap;
	char *p;

	if (n > SIZE_MAX - 1 - b->len)
		return -1;
	if (b->len + n + 1 <= cap)
		return 0;
	while (cap < b->len + n + 1) {
		if (cap > SIZE_MAX / 2)
			cap = b->len + n + 1;
		else
			cap = cap < 64 ? 64 : cap * 2;
	}
	p = realloc(b->p, cap);
	if (p == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static size_t charset_put_cp(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	out[0] = (char)(0xE0 | (cp >> 12));
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[2] = (char)(0x80 | (cp & 0x3F));
	return 3;
}

/* The UTF-8 form of bytes 0x80-0xFF of a single-byte encoding. */
struct charset_sb_table {
	unsigned char len[128];
	char utf8[128][4]; /* padded: the decoder copies four bytes at once */
};

static void charset_sb_set(struct charset_sb_table *t, unsigned char byte, uint32_t cp)
{
	memset(t->utf8[byte - 0x80], 0, sizeof(t->utf8[0]));
	t->len[byte - 0x80] = (unsigned char)charset_put_cp(t->utf8[byte - 0x80], cp);
}

/* index-windows-1252 (Encoding Standard 9, "Legacy single-byte encodings"). */
static void charset_sb_cp1252(struct charset_sb_table *t)
{
	unsigned c;

	for (c = 0x80; c < 0x100; c++)
		charset_sb_set(t, (unsigned char)c, c < 0xA0 ? charset_cp1252_c1[c - 0x80] : c);
}

/* Where glibc's single-byte tables differ from the WHATWG indexes
 * (index-koi8-u is KOI8-RU; index-x-mac-cyrillic has the euro sign;
 * index-windows-1255 has U+05BA). */
static const struct {
	const char *name;
	unsigned char byte;
	uint16_t cp;
} charset_sb_fixes[] = {
	{"koi8-u", 0xAE, 0x045E},
	{"koi8-u", 0xBE, 0x040E},
	{"x-mac-cyrillic", 0xFF, 0x20AC},
	{"windows-1255", 0xCA, 0x05BA},
};

/* The table of a single-byte encoding, asked of glibc one byte at a time
 * (with a fresh shift state each, so CP1255/CP1258 do not compose marks:
 * the WHATWG single-byte decoder maps each byte alone). A byte glibc
 * rejects is U+FFFD, or for the windows-* encodings in 0x80-0x9F the C1
 * control the WHATWG index gives it. -1 when glibc lacks the converter. */
static int charset_sb_iconv(struct charset_sb_table *t, const struct charset_encoding *enc)
{
	iconv_t cd = iconv_open("UTF-8", enc->iconv_name);
	unsigned c;

	if (cd == (iconv_t)-1)
		return -1;
	for (c = 0x80; c < 0x100; c++) {
		char byte = (char)c, utf8[8];
		char *in = &byte, *out = utf8;
		size_t in_left = 1, out_left = sizeof(utf8);
		size_t n;

		iconv(cd, NULL, NULL, NULL, NULL);
		if (iconv(cd, &in, &in_left, &out, &out_left) != (size_t)-1 &&
		    iconv(cd, NULL, NULL, &out, &out_left) != (size_t)-1 &&
		    (n = (size_t)(out - utf8)) > 0 && n <= 3) {
			memset(t->utf8[c - 0x80], 0, sizeof(t->utf8[0]));
			t->len[c - 0x80] = (unsigned char)n;
			memcpy(t->utf8[c - 0x80], utf8, n);
		} else if ((enc->flags & CHARSET_F_C1) && c < 0xA0) {
			charset_sb_set(t, (unsigned char)c, c);
		} else {
			charset_sb_set(t, (unsigned char)c, 0xFFFD);
		}
	}
	iconv_close(cd);
	for (c = 0; c < CHARSET_NELEM(charset_sb_fixes); c++)
		if (strcmp(enc->name, charset_sb_fixes[c].name) == 0)
			charset_sb_set(t, charset_sb_fixes[c].byte, charset_sb_fixes[c].cp);
	return 0;
}

/* Encoding Standard 9.1 "single-byte decoder". Sized exactly in a first
 * pass, plus slack for the fixed four-byte copies. */
static char *charset_decode_sb(const unsigned char *s, size_t len, const struct charset_sb_table *t,
			       size_t *out_len)
{
	size_t i, n = 0, o = 0;
	char *out;

	for (i = 0; i < len; i++)
		n += s[i] < 0x80 ? 1 : t->len[s[i] - 0x80];
	out = malloc(n + 4);
	if (out == NULL)
		return NULL;
	for (i = 0; i < len;) {
		size_t run = charset_ascii_run(s + i, len - i);

		memcpy(out + o, s + i, run);
		i += run;
		o += run;
		for (; i < len && s[i] >= 0x80; i++) {
			memcpy(out + o, t->utf8[s[i] - 0x80], 4);
			o += t->len[s[i] - 0x80];
		}
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

/* Decode a multi-byte encoding with glibc iconv, which has no replacement
 * mode: at EILSEQ write U+FFFD, skip one byte (one code unit for UTF-16)
 * and go on; EINVAL is a sequence truncated by the end of input: one U+FFFD
 * (Encoding Standard 4.1, error mode "replacement"). The iconv_t is per
 * call: decoders run on many threads at once. Returns NULL with
 * *unsupported set when glibc lacks the converter. */
static char *charset_decode_iconv(const unsigned char *s, size_t len,
				  const struct charset_encoding *enc, size_t *out_len,
				  bool *unsupported)
{
	struct charset_buf b = {NULL, 0, 0};
	iconv_t cd;
	char *in = (char *)s; /* iconv does not write through it */
	char *out;
	size_t in_left = len, out_left, r, skip;
	size_t unit = (enc->flags & CHARSET_F_UNIT2) ? 2 : 1;
	int err;

	*unsupported = false;
	cd = iconv_open("UTF-8", enc->iconv_name);
	if (cd == (iconv_t)-1) {
		*unsupported = true;
		return NULL;
	}
	if (charset_buf_reserve(&b, len < SIZE_MAX / 4 ? len * 2 + 16 : len) < 0)
		goto bad;
	while (in_left > 0) {
		out = b.p + b.len;
		out_left = b.cap - b.len - 1;
		r = iconv(cd, &in, &in_left, &out, &out_left);
		err = errno;
		b.len = (size_t)(out - b.p);
		if (r != (size_t)-1)
			break;
		if (err == E2BIG) {
			if (charset_buf_reserve(&b, b.cap - b.len + 16) < 0)
				goto bad;
			continue;
		}
		if (charset_buf_reserve(&b, 3) < 0)
			goto bad;
		if (err != EINVAL && enc->x80 != 0 && (unsigned char)*in == 0x80) {
			b.len += charset_put_cp(b.p + b.len, enc->x80);
			in++;
			in_left--;
			continue;
		}
		memcpy(b.p + b.len, "\xEF\xBF\xBD", 3);
		b.len += 3;
		skip = err == EINVAL ? in_left : (unit < in_left ? unit : in_left);
		in += skip;
		in_left -= skip;
	}
	/* Write out what a stateful decoder still holds (Big5-HKSCS keeps a
	 * base character waiting for a combining mark). */
	for (;;) {
		out = b.p + b.len;
		out_left = b.cap - b.len - 1;
		r = iconv(cd, NULL, NULL, &out, &out_left);
		b.len = (size_t)(out - b.p);
		if (r != (size_t)-1 || errno != E2BIG)
			break;
		if (charset_buf_reserve(&b, b.cap - b.len + 16) < 0)
			goto bad;
	}
	iconv_close(cd);
	b.p[b.len] = '\0';
	*out_len = b.len;
	return b.p;
bad:
	iconv_close(cd);
	free(b.p);
	return NULL;
}

char *charset_decode(const unsigned char *body, size_t len, const char *charset, size_t *out_len)
{
	const struct charset_encoding *enc;
	const char *name, *bom;
	size_t bom_len, dummy;
	char *out;
	bool unsupported;

	if (out_len == NULL)
		out_len = &dummy;
	name = charset_whatwg_name(charset);
	if (name == NULL)
		return NULL;
	if (body == NULL)
		len = 0;
	/* Encoding Standard 6 "decode": a BOM wins over the given encoding. */
	bom = charset_bom_sniff(body, len, &bom_len);
	if (bom != NULL) {
		name = bom;
		body += bom_len;
		len -= bom_len;
	}
	enc = charset_encoding_of(name);
	if (enc == NULL || strcmp(enc->name, "utf-8") == 0)
		return charset_utf8_sanitize(body, len, out_len);
	if (enc->flags & CHARSET_F_SB) {
		struct charset_sb_table t;

		/* Without the glibc converter, windows-1252: every byte maps. */
		if (enc->iconv_name == NULL || charset_sb_iconv(&t, enc) < 0)
			charset_sb_cp1252(&t);
		return charset_decode_sb(body, len, &t, out_len);
	}
	out = charset_decode_iconv(body, len, enc, out_len, &unsupported);
	if (out == NULL && unsupported) {
		struct charset_sb_table t;

		charset_sb_cp1252(&t);
		return charset_decode_sb(body, len, &t, out_len);
	}
	return out;
}

/* No BOM sniffing here, unlike charset_decode: "\xff\xfe" in a header is
 * two latin-1 letters, not the start of UTF-16. */
const char *charset_repair_utf8(const char *s, size_t len, size_t *out_len, char **copy)
{
	struct charset_sb_table t;

	*copy = NULL;
	if (charset_utf8_valid((const unsigned char *)s, len)) {
		*out_len = len;
		return s;
	}
	charset_sb_cp1252(&t);
	*copy = charset_decode_sb((const unsigned char *)s, len, &t, out_len);
	return *copy;
}
