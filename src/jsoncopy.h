#ifndef FETCHD_JSONCOPY_H
#define FETCHD_JSONCOPY_H

#include <stdbool.h>
#include <stddef.h>

struct jsonw;

enum jsoncopy_result {
	JSONCOPY_OK,
	JSONCOPY_INVALID,   /* not JSON: nothing was written */
	JSONCOPY_STOPPED,   /* stop() said so: nothing was written */
	JSONCOPY_NO_MEMORY, /* w is out of memory or over its budget */
};

/* Validate the JSON text in[0..len) and write it into w, compact, in one
 * pass and without building a tree: the response document's `json` field.
 * The output is what jansson's json_dumps(json_loadb(in, JSON_DECODE_ANY |
 * JSON_ALLOW_NUL), JSON_COMPACT | JSON_REAL_PRECISION(12)) gives, with one
 * difference: an object member whose name repeats is kept as sent (jansson
 * keeps the first position with the last value; a JSON reader of the
 * document takes the last value either way).
 *
 * Why not jansson: its tree costs about 50 bytes per value (a 10 MB body of
 * `[{"":0},...]` took 500 MB and seconds of CPU). Here memory is the output
 * only (charged to w's budget) and time is linear in len.
 *
 * Accepted as jansson 2.14 accepts: any value at the top level, nesting up
 * to 2048 deep, strings of valid UTF-8 with \u0000 allowed (not in member
 * names), integers that fit a long long, reals that do not overflow.
 * stop (may be NULL) is polled every 64 KiB of input. On any result but
 * JSONCOPY_OK, w->len is back where it was. */
enum jsoncopy_result jsoncopy(struct jsonw *w, const char *in, size_t len, bool (*stop)(void *arg),
			      void *arg);

#endif
