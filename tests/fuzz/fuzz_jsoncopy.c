/* libFuzzer harness: src/jsoncopy.c must accept exactly what jansson's
 * json_loadb(JSON_DECODE_ANY | JSON_ALLOW_NUL) accepts and write what
 * json_dumps writes of that tree, for any input without a repeated member
 * name (the one documented difference: jsoncopy keeps repeats as sent).
 * Inputs holding a raw NUL byte that jansson accepts are left out: its
 * stream takes a NUL right after a number for the end of input ("-1\0");
 * jsoncopy refuses it, as RFC 8259 does. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsoncopy.h"
#include "jsonw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Does the copy hold an object with a repeated name? Then jansson's tree
 * dropped a member and the outputs differ by design: reparse ours with
 * duplicates refused to tell. */
static int has_repeated_name(const char *doc, size_t len)
{
	json_t *strict = json_loadb(
		doc, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);

	if (strict == NULL)
		return 1;
	json_decref(strict);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	json_t *tree = json_loadb(in, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	struct jsonw w;
	enum jsoncopy_result r;
	size_t len;
	char *ours, *theirs;

	jsonw_init(&w, 16);
	r = jsoncopy(&w, in, size, NULL, NULL);
	ours = jsonw_finish(&w, &len);
	if (ours == NULL)
		abort();
	if (tree != NULL && memchr(in, '\0', size) != NULL) {
		json_decref(tree); /* jansson's NUL quirk: no verdict to compare */
		free(ours);
		return 0;
	}
	if (tree == NULL) {
		if (r != JSONCOPY_INVALID || len != 0)
			abort(); /* jansson refuses what jsoncopy took */
	} else {
		if (r != JSONCOPY_OK)
			abort(); /* jsoncopy refuses what jansson took */
		theirs = json_dumps(tree, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12));
		if (theirs == NULL)
			abort();
		if ((len != strlen(theirs) || memcmp(ours, theirs, len) != 0) &&
		    !has_repeated_name(ours, len))
			abort();
		free(theirs);
		json_decref(tree);
	}
	free(ours);
	return 0;
}
