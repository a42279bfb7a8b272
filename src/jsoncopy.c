/* The `json` field: the upstream's JSON validated and re-written compact
 * in one pass, straight into the document (see jsoncopy.h for why not a
 * jansson tree). An explicit stack of container kinds replaces recursion,
 * so deep input costs 2048 bits, never the worker's stack. */
#include "jsoncopy.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "charset.h"
#include "jsonw.h"

/* jansson's JSON_PARSER_MAX_DEPTH: deeper input is refused, as there. */
#define JSONCOPY_MAX_DEPTH 2048
/* Input between two calls of stop(). */
#define JSONCOPY_STOP_EVERY (64 * 1024)
/* A number token longer than this is copied to the heap to be converted. */
#define JSONCOPY_NUMBER_BUF 64

struct jsoncopy {
	struct jsonw *w;
	const unsigned char *in;
	size_t len, pos;
	size_t next_stop; /* pos at which stop() runs next */
	bool (*stop)(void *arg);
	void *arg;
	bool stopped;
	unsigned depth;
	/* bit d: the container at depth d + 1 is an object (else an array) */
	uint8_t is_object[JSONCOPY_MAX_DEPTH / 8];
};

static void skip_ws(struct jsoncopy *c)
{
	while (c->pos < c->len) {
		unsigned char ch = c->in[c->pos];

		if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
			return;
		c->pos++;
	}
}

/* -1 at the end of the input. */
static int peek(const struct jsoncopy *c)
{
	return c->pos < c->len ? c->in[c->pos] : -1;
}

/* Poll stop() once per JSONCOPY_STOP_EVERY bytes of input. */
static bool should_stop(struct jsoncopy *c)
{
	if (c->stop == NULL || c->pos < c->next_stop)
		return false;
	c->next_stop = c->pos + JSONCOPY_STOP_EVERY;
	if (c->stop(c->arg))
		c->stopped = true;
	return c->stopped;
}

static int hex4(const unsigned char *s)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned char h = s[i];

		v <<= 4;
		if (h >= '0' && h <= '9')
			v |= h - '0';
		else if (h >= 'a' && h <= 'f')
			v |= h - 'a' + 10;
		else if (h >= 'A' && h <= 'F')
			v |= h - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* A \uXXXX escape (pos at the backslash), with its low surrogate when it
 * is a high one, into UTF-8 in out. Returns the UTF-8 length, 0 when
 * invalid. */
static size_t unicode_escape(struct jsoncopy *c, char out[4], bool *nul)
{
	long cp;

	if (c->len - c->pos < 6 || (cp = hex4(c->in + c->pos + 2)) < 0)
		return 0;
	c->pos += 6;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return 0; /* a lone low surrogate */
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		long lo;

		if (c->len - c->pos < 6 || c->in[c->pos] != '\\' || c->in[c->pos + 1] != 'u' ||
		    (lo = hex4(c->in + c->pos + 2)) < 0xDC00 || lo > 0xDFFF)
			return 0;
		c->pos += 6;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	if (cp == 0)
		*nul = true;
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* A string (pos at its opening quote), re-escaped the way jansson dumps
 * strings. A member name may not hold U+0000 (jansson refuses it). */
static bool copy_string(struct jsoncopy *c, bool is_name)
{
	bool nul = false;

	c->pos++;
	jsonw_string_open(c->w);
	for (;;) {
		size_t run = c->pos;

		while (c->pos < c->len && c->in[c->pos] >= 0x20 && c->in[c->pos] != '"' &&
		       c->in[c->pos] != '\\')
			c->pos++;
		if (c->pos >= c->len || c->in[c->pos] < 0x20)
			return false; /* unterminated, or a raw control character */
		/* the run ends before an ASCII byte: it holds whole characters */
		if (!charset_utf8_valid(c->in + run, c->pos - run))
			return false;
		jsonw_string_part(c->w, (const char *)c->in + run, c->pos - run);
		if (c->in[c->pos] == '"') {
			c->pos++;
			break;
		}
		/* an escape */
		if (c->pos + 1 >= c->len)
			return false;
		char out[4];
		size_t n = 1;

		switch (c->in[c->pos + 1]) {
		case '"': out[0] = '"'; break;
		case '\\': out[0] = '\\'; break;
		case '/': out[0] = '/'; break;
		case 'b': out[0] = '\b'; break;
		case 'f': out[0] = '\f'; break;
		case 'n': out[0] = '\n'; break;
		case 'r': out[0] = '\r'; break;
		case 't': out[0] = '\t'; break;
		case 'u': n = 0; break;
		default: return false;
		}
		if (n == 0) {
			if ((n = unicode_escape(c, out, &nul)) == 0)
				return false;
		} else {
			c->pos += 2;
		}
		jsonw_string_part(c->w, out, n);
		if (should_stop(c))
			return false;
	}
	jsonw_string_close(c->w);
	return !(is_name && nul);
}

static bool copy_literal(struct jsoncopy *c, const char *lit, size_t n)
{
	if (c->len - c->pos < n || memcmp(c->in + c->pos, lit, n) != 0)
		return false;
	c->pos += n;
	jsonw_raw(c->w, lit, n);
	return true;
}

static bool is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

/* A number, by RFC 8259's grammar: an integer when it has neither a
 * fraction nor an exponent (and must fit a long long), else a real (that
 * must not overflow), written as jansson writes each. */
static bool copy_number(struct jsoncopy *c)
{
	size_t start = c->pos;
	bool real = false;
	char small[JSONCOPY_NUMBER_BUF], *tok = small, *end;

	if (peek(c) == '-')
		c->pos++;
	if (peek(c) == '0') {
		c->pos++;
	} else if (is_digit(peek(c))) {
		while (is_digit(peek(c)))
			c->pos++;
	} else {
		return false;
	}
	if (peek(c) == '.') {
		real = true;
		c->pos++;
		if (!is_digit(peek(c)))
			return false;
		while (is_digit(peek(c)))
			c->pos++;
	}
	if (peek(c) == 'e' || peek(c) == 'E') {
		real = true;
		c->pos++;
		if (peek(c) == '+' || peek(c) == '-')
			c->pos++;
		if (!is_digit(peek(c)))
			return false;
		while (is_digit(peek(c)))
			c->pos++;
	}
	size_t n = c->pos - start;
	bool ok;

	/* a token this long is rare (and at most the body): charged too */
	if (n >= sizeof(small)) {
		if (!budget_hold_charge(c->w->hold, n + 1)) {
			c->w->oom = true;
			return false;
		}
		if ((tok = malloc(n + 1)) == NULL) {
			budget_hold_release(c->w->hold, n + 1);
			c->w->oom = true;
			return false;
		}
	}
	memcpy(tok, c->in + start, n);
	tok[n] = '\0';
	errno = 0;
	if (real) {
		double v = strtod(tok, &end);

		/* overflow is refused, as jansson does; underflow is not */
		ok = !(errno == ERANGE && isinf(v));
		if (ok)
			jsonw_real(c->w, v);
	} else {
		long long v = strtoll(tok, &end, 10);

		ok = errno == 0;
		if (ok)
			jsonw_int(c->w, v);
	}
	if (tok != small) {
		free(tok);
		budget_hold_release(c->w->hold, n + 1);
	}
	return ok;
}

static void push(struct jsoncopy *c, bool object)
{
	unsigned d = c->depth++;

	if (object)
		c->is_object[d / 8] |= (uint8_t)(1u << (d % 8));
	else
		c->is_object[d / 8] &= (uint8_t) ~(1u << (d % 8));
}

static bool top_is_object(const struct jsoncopy *c)
{
	unsigned d = c->depth - 1;

	return c->is_object[d / 8] & (1u << (d % 8));
}

/* A member name and its colon, pos at the name's quote (after spaces). */
static bool copy_name(struct jsoncopy *c)
{
	if (peek(c) != '"' || !copy_string(c, true))
		return false;
	skip_ws(c);
	if (peek(c) != ':')
		return false;
	c->pos++;
	JSONW_LIT(c->w, ":");
	return true;
}

/* The whole text: values, and after each the ',' or closing bracket that
 * follows it in its container. */
static bool copy_text(struct jsoncopy *c)
{
	for (;;) {
		/* a value */
		skip_ws(c);
		if (should_stop(c))
			return false;
		switch (peek(c)) {
		case '{':
		case '[': {
			bool object = peek(c) == '{';

			if (c->depth == JSONCOPY_MAX_DEPTH)
				return false;
			c->pos++;
			jsonw_raw(c->w, object ? "{" : "[", 1);
			push(c, object);
			skip_ws(c);
			if (peek(c) == (object ? '}' : ']')) {
				c->pos++;
				jsonw_raw(c->w, object ? "}" : "]", 1);
				c->depth--;
				break; /* an empty container is a whole value */
			}
			if (object && !copy_name(c))
				return false;
			continue; /* its first value */
		}
		case '"':
			if (!copy_string(c, false))
				return false;
			break;
		case 't':
			if (!copy_literal(c, "true", 4))
				return false;
			break;
		case 'f':
			if (!copy_literal(c, "false", 5))
				return false;
			break;
		case 'n':
			if (!copy_literal(c, "null", 4))
				return false;
			break;
		default:
			if (!copy_number(c))
				return false;
			break;
		}
		/* after a value: close containers until one continues */
		for (;;) {
			skip_ws(c);
			if (c->depth == 0)
				return c->pos == c->len;
			bool object = top_is_object(c);
			int ch = peek(c);

			if (ch == ',') {
				c->pos++;
				JSONW_LIT(c->w, ",");
				if (object) {
					skip_ws(c);
					if (!copy_name(c))
						return false;
				}
				break;
			}
			if (ch != (object ? '}' : ']'))
				return false;
			c->pos++;
			jsonw_raw(c->w, object ? "}" : "]", 1);
			c->depth--;
		}
	}
}

enum jsoncopy_result jsoncopy(struct jsonw *w, const char *in, size_t len, bool (*stop)(void *arg),
			      void *arg)
{
	struct jsoncopy c = {
		.w = w,
		.in = (const unsigned char *)in,
		.len = len,
		.next_stop = JSONCOPY_STOP_EVERY,
		.stop = stop,
		.arg = arg,
	};
	size_t mark = w->len;
	bool ok;

	if (w->oom)
		return JSONCOPY_NO_MEMORY;
	ok = copy_text(&c);
	if (w->oom)
		return JSONCOPY_NO_MEMORY;
	if (ok)
		return JSONCOPY_OK;
	w->len = mark;
	return c.stopped ? JSONCOPY_STOPPED : JSONCOPY_INVALID;
}
