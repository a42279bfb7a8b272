/* JSON text written straight into one buffer, byte for byte what jansson's
 * dump writes (src/materialize.c used to build a json_t tree and dump it:
 * a third of a worker's time on small fetches). */
#include "jsonw.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"

void jsonw_init_charged(struct jsonw *w, size_t hint, struct budget_hold *hold)
{
	w->len = 0;
	w->oom = false;
	w->hold = hold;
	w->cap = hint < 64 ? 64 : hint;
	w->buf = NULL;
	if (budget_hold_charge(hold, w->cap) && (w->buf = malloc(w->cap)) == NULL)
		budget_hold_release(hold, w->cap);
	if (w->buf == NULL) {
		w->cap = 0;
		w->oom = true;
	}
}

void jsonw_init(struct jsonw *w, size_t hint)
{
	jsonw_init_charged(w, hint, NULL);
}

bool jsonw_reserve(struct jsonw *w, size_t n)
{
	size_t cap;
	char *b;

	if (w->oom)
		return false;
	assert(w->len <= w->cap);
	/* + 1: room for the NUL jsonw_finish adds */
	if (n < w->cap - w->len)
		return true;
	if (n > SIZE_MAX / 2 - w->len) {
		w->oom = true;
		return false;
	}
	/* doubling keeps many small appends linear; one append larger than
	 * that (a whole body) gets what it needs and an eighth more, not a
	 * doubling: the capacity is what the budget is charged */
	cap = w->cap ? w->cap * 2 : 64;
	if (cap - w->len <= n)
		cap = w->len + n + 1 + (w->len + n) / 8;
	if (!budget_hold_charge(w->hold, cap - w->cap)) {
		w->oom = true;
		return false;
	}
	b = realloc(w->buf, cap);
	if (b == NULL) {
		budget_hold_release(w->hold, cap - w->cap);
		w->oom = true;
		return false;
	}
	w->buf = b;
	w->cap = cap;
	assert(n < w->cap - w->len);
	return true;
}

void jsonw_raw(struct jsonw *w, const char *s, size_t n)
{
	if (!jsonw_reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

void jsonw_sep(struct jsonw *w)
{
	char last;

	if (w->oom || w->len == 0)
		return;
	last = w->buf[w->len - 1];
	if (last != '{' && last != '[')
		JSONW_LIT(w, ",");
}

/* Nonzero when one of the 8 bytes is below 0x20, '"' or '\\' (the
 * classic has-less-than and has-zero-byte tricks; exact as a yes/no). */
static uint64_t word_needs_escape(uint64_t x)
{
	const uint64_t ones = UINT64_C(0x0101010101010101);
	const uint64_t high = UINT64_C(0x8080808080808080);
	uint64_t quote = x ^ (ones * '"'), bslash = x ^ (ones * '\\');

	return (((x - ones * 0x20) & ~x) | ((quote - ones) & ~quote) |
		((bslash - ones) & ~bslash)) &
	       high;
}

static bool byte_needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

/* The length of s escaped, for one exact reservation. */
static size_t escaped_len(const unsigned char *p, size_t n)
{
	size_t out = n, i = 0;

	while (i < n) {
		if (n - i >= 8) {
			uint64_t x;

			memcpy(&x, p + i, sizeof(x));
			if (word_needs_escape(x) == 0) {
				i += 8;
				continue;
			}
		}
		switch (p[i]) {
		case '"':
		case '\\':
		case '\b':
		case '\f':
		case '\n':
		case '\r':
		case '\t':
			out += 1; /* "\n" */
			break;
		default:
			if (p[i] < 0x20)
				out += 5; /* "\u0001" */
			break;
		}
		i++;
	}
	return out;
}

/* Strings this long are measured first and reserved at once: growing by
 * doubling while escaping would charge up to twice their size. */
#define JSONW_MEASURE_FROM 4096

void jsonw_string_part(struct jsonw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;

	if (!jsonw_reserve(w, (n >= JSONW_MEASURE_FROM ? escaped_len(p, n) : n) + 1))
		return;
	while (p < end) {
		if (end - p >= 8) {
			uint64_t x;

			memcpy(&x, p, sizeof(x));
			if (word_needs_escape(x) == 0) {
				p += 8;
				continue;
			}
		}
		if (!byte_needs_escape(*p)) {
			p++;
			continue;
		}
		/* the escape takes up to 6 bytes for 1: keep room for the rest */
		if (!jsonw_reserve(w, (size_t)(end - run) + 6 + 1))
			return;
		memcpy(w->buf + w->len, run, (size_t)(p - run));
		w->len += (size_t)(p - run);
		char *o = w->buf + w->len;
		switch (*p) {
		case '"':
			memcpy(o, "\\\"", 2);
			w->len += 2;
			break;
		case '\\':
			memcpy(o, "\\\\", 2);
			w->len += 2;
			break;
		case '\b':
			memcpy(o, "\\b", 2);
			w->len += 2;
			break;
		case '\f':
			memcpy(o, "\\f", 2);
			w->len += 2;
			break;
		case '\n':
			memcpy(o, "\\n", 2);
			w->len += 2;
			break;
		case '\r':
			memcpy(o, "\\r", 2);
			w->len += 2;
			break;
		case '\t':
			memcpy(o, "\\t", 2);
			w->len += 2;
			break;
		default:
			memcpy(o, "\\u00", 4);
			o[4] = hex[*p >> 4];
			o[5] = hex[*p & 0xf];
			w->len += 6;
			break;
		}
		run = ++p;
	}
	memcpy(w->buf + w->len, run, (size_t)(end - run));
	w->len += (size_t)(end - run);
}

void jsonw_string_open(struct jsonw *w)
{
	JSONW_LIT(w, "\"");
}

void jsonw_string_close(struct jsonw *w)
{
	JSONW_LIT(w, "\"");
}

void jsonw_string(struct jsonw *w, const char *s, size_t n)
{
	if (!jsonw_reserve(w, n + 2))
		return;
	w->buf[w->len++] = '"';
	jsonw_string_part(w, s, n);
	jsonw_string_close(w);
}

void jsonw_key(struct jsonw *w, const char *key)
{
	jsonw_sep(w);
	jsonw_string(w, key, strlen(key));
	JSONW_LIT(w, ":");
}

/* Decimal digits of v at the end of buf (which ends at end); returns the
 * start. */
static char *utoa_back(unsigned long long v, char *end)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return end;
}

void jsonw_int(struct jsonw *w, long long v)
{
	char buf[24], *end = buf + sizeof(buf), *p;
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

	p = utoa_back(u, end);
	if (v < 0)
		*--p = '-';
	jsonw_raw(w, p, (size_t)(end - p));
}

/* jansson's jsonp_dtostr with precision 12. */
static void real_slow(struct jsonw *w, double v)
{
	char buf[40], *e, *start, *digits;
	int n = snprintf(buf, sizeof(buf), "%.12g", v);
	size_t len;

	if (n < 0 || (size_t)n >= sizeof(buf) - 3) {
		w->oom = true;
		return;
	}
	len = (size_t)n;
	if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL) {
		memcpy(buf + len, ".0", 3);
		len += 2;
	}
	e = strchr(buf, 'e');
	if (e != NULL) {
		start = e + 1;
		digits = start + 1;
		if (*start == '-')
			start++;
		while (*digits == '0')
			digits++;
		if (digits != start) {
			memmove(start, digits, len - (size_t)(digits - buf) + 1);
			len -= (size_t)(digits - start);
		}
	}
	jsonw_raw(w, buf, len);
}

void jsonw_real(struct jsonw *w, double v)
{
	char buf[32], *end = buf + sizeof(buf), *p = end;
	long long k;

	/* Fast path for whole thousandths below 1e9 (the timings): "%.12g"
	 * of the double nearest k/1000 prints k/1000 exactly, trailing zeros
	 * dropped. Anything else goes through snprintf as jansson does. */
	if (!(v >= 0.0 && v < 1e9) || signbit(v)) {
		real_slow(w, v);
		return;
	}
	k = (long long)(v * 1000.0 + 0.5);
	if ((double)k / 1000.0 != v) {
		real_slow(w, v);
		return;
	}
	unsigned frac = (unsigned)(k % 1000);
	if (frac == 0) {
		*--p = '0';
	} else {
		unsigned places = 3;
		while (frac % 10 == 0) {
			frac /= 10;
			places--;
		}
		for (; places > 0; places--) {
			*--p = (char)('0' + frac % 10);
			frac /= 10;
		}
	}
	*--p = '.';
	p = utoa_back((unsigned long long)(k / 1000), p);
	jsonw_raw(w, p, (size_t)(end - p));
}

void jsonw_bool(struct jsonw *w, bool v)
{
	if (v)
		JSONW_LIT(w, "true");
	else
		JSONW_LIT(w, "false");
}

void jsonw_null(struct jsonw *w)
{
	JSONW_LIT(w, "null");
}

char *jsonw_finish(struct jsonw *w, size_t *len)
{
	char *out;

	if (!jsonw_reserve(w, 1)) {
		jsonw_free(w);
		return NULL;
	}
	w->buf[w->len] = '\0';
	out = w->buf;
	*len = w->len;
	budget_hold_release(w->hold, w->cap - w->len);
	w->buf = NULL;
	w->len = w->cap = 0;
	return out;
}

void jsonw_free(struct jsonw *w)
{
	free(w->buf);
	budget_hold_release(w->hold, w->cap);
	w->buf = NULL;
	w->len = w->cap = 0;
}
