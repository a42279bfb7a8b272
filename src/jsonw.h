#ifndef FETCHD_JSONW_H
#define FETCHD_JSONW_H

#include <stdbool.h>
#include <stddef.h>

/* A JSON writer into one growing buffer: the bytes jansson's
 * json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(12)) gives for the same
 * values, without building a tree first. The caller writes the structure
 * ('{', '}', '[', ']') with jsonw_raw and puts jsonw_sep before each member
 * or element. Out of memory is sticky: every call after it does nothing
 * and jsonw_finish returns NULL. */
struct budget_hold;

struct jsonw {
	char *buf;
	size_t len;
	size_t cap;
	bool oom; /* out of memory, or the budget refused a growth */
	/* with a hold, every byte of capacity is charged to it before it is
	 * allocated; a refused charge sets oom (hold->failed tells which) */
	struct budget_hold *hold;
};

/* Start with room for about hint bytes. */
void jsonw_init(struct jsonw *w, size_t hint);

/* The same, charging the buffer's capacity to hold (may be NULL). The
 * finished buffer stays charged for its length (jsonw_finish gives the
 * rest back); jsonw_free gives everything back. */
void jsonw_init_charged(struct jsonw *w, size_t hint, struct budget_hold *hold);

/* Make room for n more bytes. Returns false when out of memory. */
bool jsonw_reserve(struct jsonw *w, size_t n);

void jsonw_raw(struct jsonw *w, const char *s, size_t n);

/* jsonw_raw of a string literal, its length counted by the compiler:
 * JSONW_LIT(w, ",\"status\":"). */
#define JSONW_LIT(w, lit) jsonw_raw((w), "" lit, sizeof(lit) - 1)

/* A ',' unless the last byte opened an object or an array. */
void jsonw_sep(struct jsonw *w);

/* A quoted string of valid UTF-8 (NUL bytes allowed): '"', '\\' and
 * control characters are escaped as jansson escapes them ("\n", "\u001F"),
 * nothing else. The caller guarantees the UTF-8 is valid. */
void jsonw_string(struct jsonw *w, const char *s, size_t n);

/* The same in pieces: open, any number of parts (each valid UTF-8 on its
 * own), close. */
void jsonw_string_open(struct jsonw *w);
void jsonw_string_part(struct jsonw *w, const char *s, size_t n);
void jsonw_string_close(struct jsonw *w);

/* sep, then "key": with key a NUL-terminated string (escaped). */
void jsonw_key(struct jsonw *w, const char *key);

void jsonw_int(struct jsonw *w, long long v);

/* A real as jansson writes it with JSON_REAL_PRECISION(12): "%.12g", then
 * ".0" when that has no '.' or 'e', and no '+' or leading zeros in the
 * exponent. Not NaN or infinity (jansson refuses those). */
void jsonw_real(struct jsonw *w, double v);

void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);

/* The finished buffer (malloc'd, NUL-terminated, length in *len), now the
 * caller's; NULL when out of memory (the buffer is then freed). With a
 * hold, *len bytes of it stay charged: the caller releases them when it
 * frees the buffer. */
char *jsonw_finish(struct jsonw *w, size_t *len);

/* Drop the buffer (on an error path). */
void jsonw_free(struct jsonw *w);

#endif
