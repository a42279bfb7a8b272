/* libFuzzer harness: a client body -> request_parse_body -> request_from_json
 * against the default configuration, as server.c does for POST /v1/fetch
 * (and, for a {"requests": [...]} body, for each item as POST /v1/batch
 * does). Checks the contract of request.h on both outcomes. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort on a broken contract so libFuzzer records the input. */
static void check(int ok)
{
	if (!ok)
		abort();
}

static int has_ctl(const char *s)
{
	return strchr(s, '\r') != NULL || strchr(s, '\n') != NULL;
}

static void bind_one(const json_t *obj, const struct fetchd_config *cfg)
{
	struct request_error err;
	struct fetch_request *r;

	memset(&err, 0xA5, sizeof(err));
	r = request_from_json(obj, cfg, &err);
	if (r == NULL) {
		check(err.code == ERR_INVALID_REQUEST || err.code == ERR_UNSUPPORTED_SCHEME);
		check(memchr(err.message, '\0', sizeof(err.message)) != NULL);
		check(err.message[0] != '\0');
		return;
	}
	check(r->url != NULL && r->method != NULL);
	/* CURLU hands the scheme back lower-cased. */
	check(strncmp(r->url, "http://", 7) == 0 || strncmp(r->url, "https://", 8) == 0);
	check(!has_ctl(r->url));
	for (const char *m = r->method; *m != '\0'; m++)
		check(!(*m >= 'a' && *m <= 'z'));
	check(r->n_headers == 0 || r->headers != NULL);
	for (size_t i = 0; i < r->n_headers; i++) {
		check(r->headers[i].name != NULL && r->headers[i].value != NULL);
		check(!has_ctl(r->headers[i].name) && !has_ctl(r->headers[i].value));
	}
	check(r->body != NULL || r->body_len == 0);
	check(r->max_redirects <= cfg->max_redirects);
	check(r->max_bytes <= cfg->max_response_bytes);
	check(r->timeout_ms <= cfg->timeout_ms);
	check(r->connect_timeout_ms <= r->timeout_ms);
	check((r->fields & ~(unsigned)FIELD_ALL) == 0);
	request_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fetchd_config *cfg = NULL;
	struct request_error err;
	json_t *doc = NULL;
	json_t *items;

	cfg = config_new();
	if (cfg == NULL)
		abort();

	memset(&err, 0, sizeof(err));
	doc = request_parse_body((const char *)data, size, &err);
	if (doc == NULL) {
		check(err.code == ERR_INVALID_JSON || err.code == ERR_INVALID_REQUEST);
		check(memchr(err.message, '\0', sizeof(err.message)) != NULL);
		goto out;
	}

	bind_one(doc, cfg);

	items = json_is_object(doc) ? json_object_get(doc, "requests") : NULL;
	if (json_is_array(items)) {
		size_t i;
		json_t *item;

		json_array_foreach (items, i, item) {
			if (i >= 64)
				break;
			bind_one(item, cfg);
		}
	}

out:
	json_decref(doc);
	config_free(cfg);
	return 0;
}
