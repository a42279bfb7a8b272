/* libFuzzer harness: the input is a Link header value (repeated headers
 * already joined by ", "), parsed against a fixed base URL as
 * materialize.c does with the effective URL. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "links.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *value;
	json_t *links;
	const char *rel;
	json_t *link;

	value = malloc(size + 1);
	if (value == NULL)
		abort();
	memcpy(value, data, size);
	value[size] = '\0';

	links = links_parse(value, "http://h.example/a/b");
	/* NULL only on out of memory, which ASan's allocator never returns. */
	if (!json_is_object(links))
		abort();
	json_object_foreach (links, rel, link) {
		/* Every link carries the absolute URL it was resolved to. */
		if (!json_is_object(link) || !json_is_string(json_object_get(link, "url")))
			abort();
	}
	json_decref(links);
	free(value);
	return 0;
}
