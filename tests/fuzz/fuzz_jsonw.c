/* libFuzzer harness: src/jsonw.c must write exactly the bytes jansson
 * writes for the same values (json_dumps with JSON_COMPACT and
 * JSON_REAL_PRECISION(12)), since the documents were built with jansson
 * before. The input, when it is valid UTF-8, becomes a string written
 * whole and in two pieces; its first bytes also become an integer and a
 * real. */
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	json_t *str = json_stringn(s, size), *want;
	long long i = 0;
	double d = 0;
	size_t cut = size / 2, ours_len;
	struct jsonw w;
	char *ours, *theirs;

	if (str == NULL) /* not valid UTF-8: jsonw's callers never pass that */
		return 0;
	if (size >= sizeof(i))
		memcpy(&i, data, sizeof(i));
	if (size >= sizeof(d))
		memcpy(&d, data, sizeof(d));
	if (!isfinite(d))
		d = 0;
	/* the pieces must each be valid UTF-8: cut on a character boundary */
	while (cut > 0 && cut < size && (data[cut] & 0xC0) == 0x80)
		cut--;

	jsonw_init(&w, 16);
	jsonw_raw(&w, "[", 1);
	jsonw_sep(&w);
	jsonw_string(&w, s, size);
	jsonw_sep(&w);
	jsonw_string_open(&w);
	jsonw_string_part(&w, s, cut);
	jsonw_string_part(&w, s + cut, size - cut);
	jsonw_string_close(&w);
	jsonw_sep(&w);
	jsonw_int(&w, i);
	jsonw_sep(&w);
	jsonw_real(&w, d);
	jsonw_raw(&w, "]", 1);
	ours = jsonw_finish(&w, &ours_len);

	want = json_pack("[O, O, I, f]", str, str, (json_int_t)i, d);
	theirs = json_dumps(want, JSON_COMPACT | JSON_REAL_PRECISION(12));
	if (ours == NULL || theirs == NULL || strlen(theirs) != ours_len ||
	    memcmp(ours, theirs, ours_len) != 0)
		abort();
	free(ours);
	free(theirs);
	json_decref(want);
	json_decref(str);
	return 0;
}
